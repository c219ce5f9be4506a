"""Reading BCF files: every real file parses, and unsafe or broken files are refused by name."""

from __future__ import annotations

import io
import zipfile

import pytest

from sitetwin.oversight.bcf import read as bcf_read
from sitetwin.oversight.bcf.read import read_bcf
from sitetwin.oversight.errors import BcfError

MARKUP = """<?xml version="1.0" encoding="UTF-8"?>
<Markup><Topic Guid="{guid}" TopicType="Error" TopicStatus="Open"><Title>t</Title>
<CreationDate>2024-01-02T03:04:05Z</CreationDate><CreationAuthor>a</CreationAuthor></Topic>{extra}</Markup>"""
GUID = "11111111-2222-4333-8444-555555555555"


def make_zip(entries: dict[str, bytes | str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def good_entries(extra: str = "") -> dict:
    return {"bcf.version": '<Version VersionId="2.1"/>', f"{GUID}/markup.bcf": MARKUP.format(guid=GUID, extra=extra)}


def test_every_real_bcf_file_reads_with_its_topics_comments_and_viewpoints(bcf_files):
    counts = {f.name: read_bcf(f) for f in bcf_files}
    assert {n: (a.version, len(a.topics)) for n, a in counts.items()} == {
        "v2.0_Clippingplane.bcfzip": ("2.0", 1), "v2.0_ComponentSelection.bcfzip": ("2.0", 1),
        "v2.0_MaximumInformation.bcfzip": ("2.0", 2), "v2.0_MinimumInformation.bcfzip": ("2.0", 1),
        "v2.0_MultipleTopics.bcfzip": ("2.0", 3), "v2.0_OrthogonalCamera.bcfzip": ("2.0", 1),
        "v2.0_PerspectiveCamera.bcfzip": ("2.0", 1), "v3.0_DueDate.bcf": ("3.0", 1), "v3.0_Labels.bcf": ("3.0", 1),
        "HB_Nutsvoorzieningen_interne_modelkwaliteit.bcfzip": ("2.0", 2),
        "ROOT-Compleet_interne_modelkwaliteit.bcfzip": ("2.0", 6),
        "ROOT-Vebo_interne_modelkwaliteit.bcfzip": ("2.0", 1)}


def test_the_maximum_information_case_keeps_labels_links_documents_replies_and_three_viewpoints(shared_data):
    a = read_bcf(shared_data / "bcf/bcf-xml/v2.0_MaximumInformation.bcfzip")
    t = next(t for t in a.topics if t.title == "Maximum Content")
    assert t.labels == ("Structural", "IT Development") and t.priority == "High"
    assert t.reference_links == ("https://bim--it.net",) and t.assigned_to == "linhard@iabi.eu"
    assert [d["description"] for d in t.document_references] == ["GitHub BCF Specification", "Markup.xsd Schema"]
    assert t.related_topics == ("5019d939-62a4-45d9-b205-fab602c98fe8",)          # lower-cased Guid
    assert t.bim_snippet["snippet_type"] == "JSON"
    assert len(t.comments) == 4 and len(t.viewpoints) == 3
    reply = next(c for c in t.comments if c.reply_to)
    assert reply.reply_to == "780fae52-c432-42be-adea-ff3e7a8cd8e1"
    assert next(c for c in t.comments if c.viewpoint_guid).viewpoint_guid == "8dc86298-9737-40b4-a448-98a9e953293a"
    assert all(v.snapshot.startswith(b"\x89PNG") for v in t.viewpoints)


def test_bcf_3_due_dates_labels_and_visibility_exceptions_are_read(shared_data):
    due = read_bcf(shared_data / "bcf/bcf-xml/v3.0_DueDate.bcf").topics[0]
    assert due.due_date.isoformat() == "2021-03-15T11:00:00" and due.server_assigned_id == "8"
    labels = read_bcf(shared_data / "bcf/bcf-xml/v3.0_Labels.bcf").topics[0]
    assert labels.labels == ("Architects",)
    vp = labels.viewpoints[0]
    assert vp.visibility_default is True
    assert {c.ifc_guid for c in vp.visibility_exceptions} == {"1m5wAJelDFdhn6qBdOGjos", "1bbI761TbBCOoIa5Kt6PXt"}
    assert vp.camera.aspect_ratio == 1.0 and vp.camera.field_of_view_deg == 60.0


def test_bcf_2_0_components_with_selected_attributes_become_a_selection(shared_data):
    a = read_bcf(shared_data / "bcf/bcf-xml/v2.0_ComponentSelection.bcfzip")
    vp = a.topics[0].viewpoints[0]
    assert [c.ifc_guid for c in vp.selection] == ["1GU8BMEqHBQxVAbwRD$4Jj", "0AQJSsoeDDvwVqSNcwjy55",
                                                  "3DOu_tSXP6evQgY8Ml4CtC"]
    assert vp.camera.kind == "perspective" and vp.camera.position[0] == pytest.approx(-16.4296623429377)


def test_solibri_part_ids_are_read_as_the_elements_global_id(shared_data):
    a = read_bcf(shared_data / "bcf/schependomlaan/HB_Nutsvoorzieningen_interne_modelkwaliteit.bcfzip")
    guids = set().union(*[v.component_guids() for t in a.topics for v in t.viewpoints])
    assert guids and all(len(g) == 22 for g in guids)


def test_orthogonal_cameras_and_clipping_planes_are_read(shared_data):
    ortho = read_bcf(shared_data / "bcf/bcf-xml/v2.0_OrthogonalCamera.bcfzip").topics[0].viewpoints[0].camera
    assert ortho.kind == "orthogonal" and ortho.view_to_world_scale == 1.0 and ortho.direction == (0.0, 0.0, -1.0)
    clip = read_bcf(shared_data / "bcf/bcf-xml/v2.0_Clippingplane.bcfzip").topics[0].viewpoints[0]
    assert clip.clipping_planes == (((0.0, 0.0, 7.665119721718699), (0.0, 0.0, 1.0)),)


@pytest.mark.parametrize("name", ["../evil.bcf", "/etc/passwd", "a/../../evil", "..\\..\\evil.txt", "C:/x/evil.bcf"])
def test_an_entry_that_points_outside_the_archive_is_refused(name):
    entries = good_entries()
    entries[name] = "x"
    with pytest.raises(BcfError, match="path traversal"):
        read_bcf(make_zip(entries))


def test_a_snapshot_reference_that_leaves_the_topic_folder_is_refused():
    extra = f'<Viewpoints Guid="{GUID}"><Snapshot>../../secret.png</Snapshot></Viewpoints>'
    with pytest.raises(BcfError, match="leaves the topic folder"):
        read_bcf(make_zip(good_entries(extra)))


def test_a_zip_bomb_entry_is_refused_before_it_is_expanded():
    entries = good_entries()
    entries[f"{GUID}/snapshot.png"] = b"\0" * (4 << 20)          # 4 MiB of zeros: ~1000-fold compression
    with pytest.raises(BcfError, match="zip bomb"):
        read_bcf(make_zip(entries))


def test_an_oversized_entry_is_refused(monkeypatch):
    monkeypatch.setattr(bcf_read, "MAX_ENTRY_BYTES", 10_000)
    entries = good_entries()
    entries[f"{GUID}/big.png"] = bytes(range(256)) * 100            # 25.6 kB
    with pytest.raises(BcfError, match="oversized"):
        read_bcf(make_zip(entries))


def test_an_archive_larger_than_allowed_in_total_is_refused(monkeypatch):
    monkeypatch.setattr(bcf_read, "MAX_TOTAL_BYTES", 2_000)
    entries = good_entries()
    for i in range(5):
        entries[f"{GUID}/doc{i}.txt"] = bytes(range(256)) * 2
    with pytest.raises(BcfError, match="oversized"):
        read_bcf(make_zip(entries))


@pytest.mark.parametrize("markup, message", [
    ("<Markup><Topic Guid='x'><Title>unclosed", "not well-formed XML"),
    ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>'
     '<Markup><Topic Guid="g"><Title>&lol2;</Title></Topic></Markup>', "DOCTYPE"),
    ("<Topics/>", "expected <Markup>"),
    ("<Markup><Topic Guid='11111111-2222-4333-8444-555555555555'/></Markup>", "has no <Title>"),
    ("<Markup><Topic Guid='11111111-2222-4333-8444-555555555555'><Title>t</Title>"
     "<CreationDate>yesterday</CreationDate></Topic></Markup>", "not an xs:dateTime"),
])
def test_malformed_markup_is_refused_naming_the_entry(markup, message):
    with pytest.raises(BcfError, match=message) as err:
        read_bcf(make_zip({"bcf.version": '<Version VersionId="2.1"/>', f"{GUID}/markup.bcf": markup}))
    assert "markup.bcf" in str(err.value)


def test_a_file_that_is_not_a_zip_or_not_bcf_is_refused(tmp_path):
    with pytest.raises(BcfError, match="not a zip archive"):
        read_bcf(b"<Markup/>")
    with pytest.raises(BcfError, match="not a BCF file"):
        read_bcf(make_zip({"readme.txt": "hello"}))
    with pytest.raises(BcfError, match="not supported"):
        read_bcf(make_zip({"bcf.version": '<Version VersionId="4.0"/>'}))
