"""Issue 14, BCF: what is already stored cannot stop an export, evidence reads only the site's own panoramas,
and text read from a file is checked as typed text is.

The stores here hold what versions before issue 14 let in (a NUL in a comment, control
characters in a title, a 2 MB comment, another site's panorama or a malformed view in the
evidence), written past today's entry checks the way those versions wrote them. Every export
must succeed and be valid against buildingSMART's schemas (``../shared/data/bcf/xsd``); the
evaluation report's HTML and PDF must survive the same kind of text.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path

import numpy as np
import pytest
from lxml import etree

from sitetwin.data.text import NOTE_MAX
from sitetwin.oversight import findings as fmod
from sitetwin.oversight.bcf import export_bcf, import_bcf, read_bcf, write_bcf
from sitetwin.oversight.bcf.model import Archive, Camera, Comment, Component, Topic, Viewpoint
from sitetwin.oversight.errors import BcfError
from sitetwin.oversight.findings import comment, raise_finding
from sitetwin.oversight.scope import Scope

SYSTEM = Scope.system()
T0 = dt.datetime(2024, 5, 1, 9, 0)
OWN, OTHER = "WH-JA-1", "WH-WC-1"
HOSTILE = ["NUL \x00 here", "escape \x1b[31m red", "bell \x07 and form feed \x0c", "=HYPERLINK(\"http://evil\")",
           "x" * 2_000_000, "C1 \x85 and DEL \x7f", "$\\foo$ not math"]


def invalid_entries(data: bytes, xsd_dir: Path) -> list[str]:
    """Each XML entry of a BCF file that buildingSMART's schema for it refuses, with the reason."""
    schema_of = {"bcf.version": "version.xsd", "project.bcfp": "project.xsd", "extensions.xml": "extensions.xsd",
                 "documents.xml": "documents.xsd"}
    schemas: dict[str, etree.XMLSchema] = {}
    problems = []
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for name in zf.namelist():
            xsd = schema_of.get(name) or ("markup.xsd" if name.endswith("/markup.bcf") else
                                          "visinfo.xsd" if name.endswith(".bcfv") else None)
            if xsd is None:
                continue
            if xsd not in schemas:
                schemas[xsd] = etree.XMLSchema(etree.parse(str(xsd_dir / xsd)))
            if not schemas[xsd].validate(etree.fromstring(zf.read(name))):
                problems.append(f"{name}: {schemas[xsd].error_log.last_error}")
    return problems


def store_like_an_old_version(store, finding_id: str, note: str, actor: str = "cole") -> None:
    """Append a comment as versions before issue 14 did: no text check, the hash chain intact."""
    last = store.one("SELECT seq, hash, site_code FROM finding_events WHERE finding_id = ? ORDER BY seq DESC LIMIT 1",
                     [finding_id])
    event = {"event_id": str(uuid.uuid4()), "finding_id": finding_id, "site_code": last["site_code"],
             "seq": last["seq"] + 1, "occurred_at": T0 + dt.timedelta(hours=last["seq"]), "actor": actor,
             "kind": "comment", "status": None, "due": None, "escalation_level": None, "note": note,
             "evidence": None, "viewpoint_id": None, "prev_hash": last["hash"]}
    event["hash"] = fmod._event_digest(event)
    cols = list(event)
    store.execute(f"INSERT INTO finding_events ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})",
                  [event[c] for c in cols])


def _panorama(store, tmp_path, site: str, position) -> str:
    from PIL import Image

    from sitetwin.panorama.pano_store import add_panorama

    path = tmp_path / f"pano-{site}.jpg"
    Image.new("RGB", (256, 128), (120, 120, 120)).save(path, quality=80)
    T = np.eye(4)
    T[:3, 3] = position
    return add_panorama(store, path, site_code=site, pose=T).pano_id


@pytest.fixture
def poisoned(sites_store):
    """Findings on two sites of one contractor whose titles, comments and site name hold what old versions stored."""
    from sitetwin.data.sites import upsert_site

    s = sites_store
    upsert_site(s, OWN, name="Riverside \x00 \x1b tower")
    ids = []
    for site in (OWN, "WH-JA-2"):
        fid = raise_finding(s, site_code=site, category="safety", severity="high", title="Guard rail missing",
                            description="see photo", labels=["edge"], global_id="2O2Fr$t4X7Zf8NOew3FLOH",
                            location_m=(1.0, 2.0, 3.0), at=T0)
        comment(s, fid, "a clean comment", scope=SYSTEM, at=T0 + dt.timedelta(minutes=5))
        for note in HOSTILE:
            store_like_an_old_version(s, fid, note)
        ids.append(fid)
    s.execute("UPDATE findings SET title = ?, description = ?, labels = ? WHERE finding_id = ?",
              ["Rail \x00 missing\x1f", "desc \x08", json.dumps(["ed\x00ge", " "]), ids[0]])
    return s, ids


@pytest.mark.parametrize("version", ["2.1", "3.0"])
def test_control_character_in_comment_cannot_break_bcf_export(poisoned, bcf_xsd, tmp_path, version):
    store, ids = poisoned
    path = tmp_path / "site.bcfzip"
    report = export_bcf(store, SYSTEM, path, site_code=OWN, version=version, snapshots=False)
    data = path.read_bytes()
    assert report.topics == 1 and report.comments == 1 + len(HOSTILE)
    assert invalid_entries(data, bcf_xsd / version) == []
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        markup = etree.fromstring(zf.read(f"{ids[0]}/markup.bcf"))
    comments = [c.findtext("Comment") for c in markup.iter("Comment") if c.find("Date") is not None]
    assert comments[:3] == ["a clean comment", "NUL \ufffd here", "escape \ufffd[31m red"]
    assert markup.findtext(".//Title") == "Rail \ufffd missing\ufffd"
    assert len(comments[5]) == 2_000_000           # stored text is carried whole, only made printable


@pytest.mark.parametrize("version", ["2.1", "3.0"])
def test_a_contractors_all_my_sites_export_survives_a_poisoned_site(poisoned, bcf_xsd, tmp_path, version):
    store, ids = poisoned
    cole = Scope.for_account("cole", "contractor", sites={OWN, "WH-JA-2"})
    path = tmp_path / "mine.bcfzip"
    report = export_bcf(store, cole, path, version=version)
    assert report.topics == 2 and _topics_of(path) == set(ids)
    assert invalid_entries(path.read_bytes(), bcf_xsd / version) == []


def _topics_of(path: Path) -> set[str]:
    with zipfile.ZipFile(path) as zf:
        return {n.split("/")[0] for n in zf.namelist() if n.endswith("/markup.bcf")}


def test_the_cli_exports_a_poisoned_store_without_a_traceback(tmp_path):
    from sitetwin.data.sites import upsert_site
    from sitetwin.data.store import open_store

    db = tmp_path / "old.duckdb"
    with open_store(db) as s:
        upsert_site(s, OWN, name="site \x00", district="Jiang'an", city="Wuhan")
        fid = raise_finding(s, site_code=OWN, category="safety", severity="high", title="Rail", at=T0)
        store_like_an_old_version(s, fid, "NUL \x00 in a comment")
    sitetwin = str(Path(sys.executable).with_name("sitetwin"))
    env = {k: v for k, v in os.environ.items() if k != "SITETWIN_TOKEN"}
    run = subprocess.run([sitetwin, "bcf", "export", str(tmp_path / "out.bcfzip"), "--site", OWN, "--db", str(db),
                          "--no-snapshots", "--json"], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr and json.loads(run.stdout)["topics"] == 1


def test_evaluation_html_and_pdf_survive_control_characters_math_and_huge_text(sites_store, tmp_path):
    from sitetwin.oversight.evaluation import evaluate, load_scheme, report_html, report_pdf

    scheme = load_scheme("provincial")
    scheme = {**scheme, "title": "Scheme \x00 $\\foo$ " + "t" * 100_000,
              "items": [{**scheme["items"][0], "title": "item \x07 $^^^$"}, *scheme["items"][1:]]}
    ev = evaluate(sites_store, SYSTEM, OWN, scheme=scheme, as_of="2024-06-30", record=False)
    name = "Riverside \x00\x1b $\\foo$ " + "n" * 2_000_000
    page = report_html(ev, site_name=name)
    assert not any(ch in page for ch in "\x00\x07\x1b") and "Riverside \ufffd\ufffd $\\foo$" in page
    assert len(page) < 20_000
    pdf = report_pdf(ev, tmp_path / "r.pdf", site_name=name)
    assert pdf.read_bytes()[:5] == b"%PDF-"


# --------------------------------------------------------------------------------------
# item 2 at export: only the finding's own site's panorama is read

def test_export_reads_no_other_sites_panorama_and_survives_a_malformed_stored_view(sites_store, bcf_xsd, tmp_path):
    s = sites_store
    other = _panorama(s, tmp_path, OTHER, [500.0, 600.0, 7.0])
    own = _panorama(s, tmp_path, OWN, [3.0, 4.0, 1.6])
    ids = [raise_finding(s, site_code=OWN, category="safety", severity="high", title=f"f{i}",
                         location_m=(1.0, 1.0, 1.0), at=T0) for i in range(4)]
    stored = [{"panorama": {"pano_id": other, "yaw_deg": 0.0}}, {"pano_id": other, "box_px": [1, 2, 3, 4]},
              {"panorama": {"pano_id": own, "yaw_deg": "abc"}}, {"panorama": {"pano_id": "made-up"}}]
    for fid, evidence in zip(ids, stored):      # as versions before issue 14 stored them
        s.execute("UPDATE findings SET evidence = ? WHERE finding_id = ?", [json.dumps(evidence), fid])
    path = tmp_path / "pano.bcfzip"
    report = export_bcf(s, SYSTEM, path, site_code=OWN, version="3.0", snapshots=False)
    assert report.topics == 4 and invalid_entries(path.read_bytes(), bcf_xsd / "3.0") == []
    cameras = {t.guid: t.viewpoints[0].camera for t in read_bcf(path).topics}
    for fid in ids:       # a 3D view onto the location: nowhere near the other site's panorama
        assert np.linalg.norm(np.subtract(cameras[fid].position, (500.0, 600.0, 7.0))) > 100
    assert len(report.warnings) == 4
    assert not any(other in w or own in w or "made-up" in w for w in report.warnings)
    assert any("panorama view is malformed" in w for w in report.warnings)
    assert sum("is not a panorama of site WH-JA-1" in w for w in report.warnings) == 3


def test_broken_stored_viewpoints_and_bcf_fields_do_not_stop_the_export(sites_store, bcf_xsd, tmp_path):
    s = sites_store
    fid = raise_finding(s, site_code=OWN, category="safety", severity="high", title="t", at=T0,
                        location_m=(1.0, 1.0, 1.0))
    bcf = {"index": "not a number", "header_files": ["x", {"filename": "a\x00.ifc", "date": "yesterday",
                                                          "ifc_project": "bad"}],
           "related_topics": ["not-a-guid"], "document_references": [{"guid": "BAD", "url": " "}],
           "topic_type": "  ", "priority": "\x00", "due_date": "soon", "imported_due": None}
    s.execute("UPDATE findings SET bcf = ? WHERE finding_id = ?", [json.dumps(bcf), fid])
    rows = [("camera", {"position_m": "abc"}), ("components", {"coloring": [{"color": "red", "components": [
        {"ifc_guid": "2O2Fr$t4X7Zf8NOew3FLOH"}]}], "selection": [{"ifc_guid": "x\x00"}]})]
    for i, (col, value) in enumerate(rows):
        s.execute(f"INSERT INTO finding_viewpoints (viewpoint_id, finding_id, site_code, idx, {col}, snapshot, "
                  f"created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                  [str(uuid.uuid4()), fid, OWN, i, json.dumps(value), "../../../etc/passwd", T0])
    for version in ("2.1", "3.0"):
        path = tmp_path / f"broken-{version}.bcfzip"
        report = export_bcf(s, SYSTEM, path, version=version, snapshots=False)
        assert report.viewpoints == 1 and report.snapshots == 0
        assert any("a stored viewpoint cannot be read" in w for w in report.warnings)
        assert invalid_entries(path.read_bytes(), bcf_xsd / version) == [], version


@pytest.mark.parametrize("version", ["2.1", "3.0"])
def test_the_writer_turns_what_no_schema_allows_into_valid_defaults(bcf_xsd, version):
    nan = float("nan")
    vp = Viewpoint(guid="not a guid", camera=Camera("perspective", (nan, 0, 0), (0, 0, 0), (0, 0, 1), nan),
                   selection=(Component("2O2Fr$t4X7Zf8NOew3FLOH\x00"),), coloring=(("ff8800", (Component(None),)),),
                   clipping_planes=(((0, 0, float("inf")), (0, 0, 1)),), lines=(((0, 0, 0), (1, 1, 1)),),
                   index=2 ** 40)
    topic = Topic(guid="TOPIC", title=" \x00 ", creation_date=dt.datetime(1, 1, 1), creation_author=" ",
                  labels=("a\x00", " "), reference_links=(" ",), server_assigned_id=" ", stage="\x01",
                  comments=(Comment("c", T0, "", "text \x00", viewpoint_guid="nope"),), viewpoints=(vp,),
                  bim_snippet={"snippet_type": "x", "reference": " "}, related_topics=("zzz",),
                  document_references=({"guid": "G", "document_guid": "nope", "url": "u\x00"},))
    data = write_bcf(Archive(version=version, topics=(topic,), project_id=" ", project_name="\x00"), version=version)
    assert invalid_entries(data, bcf_xsd / version) == []


# --------------------------------------------------------------------------------------
# text read from a BCF file is checked where it enters

def _one_topic_file(**changes) -> bytes:
    topic = Topic(guid="bbbbbbbb-0000-4000-8000-000000000002", title="Guard rail missing", creation_date=T0,
                  creation_author="dora", comments=(Comment("cccccccc-0000-4000-8000-000000000003", T0, "cole",
                                                            "fine"),))
    comments = changes.pop("comments", None)
    if comments is not None:
        topic = Topic(**{**topic.__dict__, "comments": comments})
    return write_bcf(Archive(version="2.1", topics=(Topic(**{**topic.__dict__, **changes}),)), version="2.1")


@pytest.mark.parametrize("changes, message", [
    ({"title": "C1 \x85 control"}, "Title: control character U+0085"),
    ({"title": "t" * 201}, "Title: 201 characters, more than the 200 allowed"),
    ({"creation_author": "dora\x7f"}, "CreationAuthor: control character U+007F"),
    ({"labels": ("l" * 121,)}, "Label: 121 characters"),
    ({"comments": (Comment("cccccccc-0000-4000-8000-000000000003", T0, "cole", "c" * (NOTE_MAX + 1)),)},
     "comment cccccccc-0000-4000-8000-000000000003: Comment: 10,001 characters"),
    ({"labels": tuple(f"label {i}" for i in range(60))}, "labels: 60 of them"),
])
def test_a_bcf_file_with_control_characters_or_overlong_text_is_refused_by_name(sites_store, snapshot, changes,
                                                                              message):
    data = _one_topic_file(**changes)
    before = snapshot(sites_store)
    with pytest.raises(BcfError, match=message.replace("+", r"\+")) as caught:
        import_bcf(sites_store, SYSTEM, data, site_code=OWN, name="hostile.bcfzip")
    assert str(caught.value).startswith("hostile.bcfzip")
    assert snapshot(sites_store) == before


def test_line_breaks_in_a_one_line_field_of_a_file_become_spaces(sites_store):
    data = _one_topic_file(title="Guard rail\n missing", description="line one\nline two")
    r = import_bcf(sites_store, SYSTEM, data, site_code=OWN)
    row = sites_store.one("SELECT title, description FROM findings WHERE finding_id = ?", [r.created[0]])
    assert row == {"title": "Guard rail missing", "description": "line one\nline two"}


@pytest.mark.parametrize("old, new, message", [
    (b"<X>1.0</X>", b"<X>INF</X>", "finite"),
    (b"<X>1.0</X>", b"<X>NaN</X>", "finite"),
    (b"<FieldOfView>60.0</FieldOfView>", b"<FieldOfView>1e999</FieldOfView>", "not numeric"),
    (b"<Date>2024-05-01T09:00:00Z</Date>", b"<Date>0001-01-01T00:00:00+14:00</Date>", "out of range"),
])
def test_non_finite_numbers_and_out_of_range_dates_in_a_file_are_refused(sites_store, snapshot, old, new, message):
    vp = Viewpoint(guid="aaaaaaaa-0000-4000-8000-000000000001",
                   camera=Camera("perspective", (1.0, 2.0, 3.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0), 60.0))
    data = _one_topic_file(viewpoints=(vp,))
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(buf, "w") as dst:
        for name in src.namelist():
            body = src.read(name)
            dst.writestr(name, body.replace(old, new, 1) if old in body else body)
    assert buf.getvalue() != data
    before = snapshot(sites_store)
    with pytest.raises(BcfError, match=message):
        import_bcf(sites_store, SYSTEM, buf.getvalue(), site_code=OWN)
    assert snapshot(sites_store) == before
