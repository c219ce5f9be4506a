"""Writing BCF 2.1 and 3.0: valid against buildingSMART's schemas, element order as the tools expect."""

from __future__ import annotations

import datetime as dt
import io
import zipfile

import pytest
from lxml import etree

from sitetwin.oversight.bcf.model import Archive, Camera, Comment, Component, Topic, Viewpoint
from sitetwin.oversight.bcf.read import read_bcf
from sitetwin.oversight.bcf.write import write_bcf
from sitetwin.oversight.errors import BcfError

SCHEMA_OF = {"bcf.version": "version.xsd", "project.bcfp": "project.xsd", "extensions.xml": "extensions.xsd",
             "documents.xml": "documents.xsd"}


def schema_for(name: str) -> str | None:
    if name in SCHEMA_OF:
        return SCHEMA_OF[name]
    if name.endswith("/markup.bcf"):
        return "markup.xsd"
    if name.endswith(".bcfv"):
        return "visinfo.xsd"
    return None


def invalid_entries(data: bytes, xsd_dir) -> list[str]:
    schemas = {}
    problems = []
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for name in zf.namelist():
            xsd = schema_for(name)
            if xsd is None:
                continue
            if xsd not in schemas:
                schemas[xsd] = etree.XMLSchema(etree.parse(str(xsd_dir / xsd)))
            if not schemas[xsd].validate(etree.fromstring(zf.read(name))):
                problems.append(f"{name}: {schemas[xsd].error_log.last_error}")
    return problems


def sample_archive() -> Archive:
    vp = Viewpoint(guid="aaaaaaaa-0000-4000-8000-000000000001",
                   camera=Camera("perspective", (1.0, 2.0, 3.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0), 200.0),
                   selection=(Component("2O2Fr$t4X7Zf8NOew3FLOH", "sitetwin"),), visibility_default=True,
                   coloring=(("FF8800", (Component("2O2Fr$t4X7Zf8NOew3FLOH"),)),),
                   clipping_planes=(((0.0, 0.0, 2.0), (0.0, 0.0, 1.0)),), lines=(((0, 0, 0), (1, 1, 1)),),
                   snapshot=b"\x89PNG\r\n\x1a\nfake", snapshot_ext="png", index=0)
    topic = Topic(guid="bbbbbbbb-0000-4000-8000-000000000002", title="Guard rail missing",
                  creation_date=dt.datetime(2024, 5, 1, 9), creation_author="dora", topic_type=None,
                  topic_status=None, priority="High", labels=("safety", "edge"),
                  due_date=dt.datetime(2024, 5, 8), description="   ",
                  comments=(Comment("cccccccc-0000-4000-8000-000000000003", dt.datetime(2024, 5, 2), "cole", "",
                                    viewpoint_guid=vp.guid),),
                  viewpoints=(vp,), header_files=({"filename": "a.ifc", "date": "2024-01-01T00:00:00Z"},))
    return Archive(version="2.1", topics=(topic,), project_id="WH-JA-1", project_name="Riverside")


@pytest.mark.parametrize("version", ["2.1", "3.0"])
def test_a_written_file_is_valid_against_the_official_schemas(bcf_xsd, version):
    data = write_bcf(sample_archive(), version=version)
    assert invalid_entries(data, bcf_xsd / version) == []


@pytest.mark.parametrize("version", ["2.1", "3.0"])
def test_every_real_bcf_file_rewritten_is_valid(bcf_xsd, bcf_files, version):
    for f in bcf_files:
        assert invalid_entries(write_bcf(read_bcf(f), version=version), bcf_xsd / version) == [], f.name


def test_bcf_2_1_puts_comments_and_viewpoints_beside_the_topic_and_3_0_inside_it():
    a = sample_archive()
    for version, topic_children, markup_children in (
            ("2.1", ["Title", "Priority", "Labels", "Labels", "CreationDate", "CreationAuthor", "DueDate"],
             ["Header", "Topic", "Comment", "Viewpoints"]),
            ("3.0", ["Title", "Priority", "Labels", "CreationDate", "CreationAuthor", "DueDate", "Comments",
                     "Viewpoints"], ["Header", "Topic"])):
        with zipfile.ZipFile(io.BytesIO(write_bcf(a, version=version))) as zf:
            root = etree.fromstring(zf.read(f"{a.topics[0].guid}/markup.bcf"))
            names = set(zf.namelist())
        assert [c.tag for c in root] == markup_children
        assert [c.tag for c in root.find("Topic")] == topic_children
        assert ("extensions.xml" in names) == (version == "3.0")
        assert root.find("Topic").get("TopicType") == "Issue" and root.find("Topic").get("TopicStatus") == "Open"


def test_limits_of_each_version_are_respected():
    a = sample_archive()
    with zipfile.ZipFile(io.BytesIO(write_bcf(a, version="2.1"))) as zf:
        vis = etree.fromstring(zf.read(f"{a.topics[0].guid}/Viewpoint_{a.topics[0].viewpoints[0].guid}.bcfv"))
    assert float(vis.findtext("PerspectiveCamera/FieldOfView")) == 60.0        # release_2_1 allows 45..60
    assert vis.find("Components/Visibility") is not None                         # required in 2.1
    assert vis.find("PerspectiveCamera/AspectRatio") is None
    with zipfile.ZipFile(io.BytesIO(write_bcf(a, version="3.0"))) as zf:
        vis = etree.fromstring(zf.read(f"{a.topics[0].guid}/Viewpoint_{a.topics[0].viewpoints[0].guid}.bcfv"))
    assert float(vis.findtext("PerspectiveCamera/AspectRatio")) == pytest.approx(4 / 3)
    assert vis.find("Components/Coloring/Color/Components/Component").get("IfcGuid") == "2O2Fr$t4X7Zf8NOew3FLOH"


@pytest.mark.parametrize("version", ["2.1", "3.0"])
def test_what_is_written_reads_back_the_same(version):
    a = sample_archive()
    b = read_bcf(write_bcf(a, version=version))
    ta, tb = a.topics[0], b.topics[0]
    assert (tb.guid, tb.title, tb.priority, tb.labels, tb.due_date) == (ta.guid, ta.title, ta.priority, ta.labels,
                                                                       ta.due_date)
    assert [c.guid for c in tb.comments] == [c.guid for c in ta.comments]
    va, vb = ta.viewpoints[0], tb.viewpoints[0]
    assert vb.component_guids() == va.component_guids() and vb.camera.position == va.camera.position
    assert vb.clipping_planes == va.clipping_planes and vb.snapshot == va.snapshot


def test_an_unknown_version_is_refused(tmp_path):
    with pytest.raises(BcfError, match="writes 2.1 and 3.0"):
        write_bcf(sample_archive(), version="2.0")
    with pytest.raises(BcfError, match="does not exist"):
        write_bcf(sample_archive(), tmp_path / "missing" / "x.bcfzip")
