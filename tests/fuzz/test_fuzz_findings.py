"""Fuzzing the findings' text and evidence fields (issue 14): stored safely, or refused with the store unchanged.

Any text (control characters, NUL, lone surrogates, U+FFFE, C1 controls, formula-like
``=``/``+``/``-``/``@`` openings, ``$...$``, texts at and beyond ``TITLE_MAX`` and ``NOTE_MAX``)
goes into a finding's title, description and labels and then into a comment; any JSON goes into
its evidence and a panorama view. 200 examples per test, one store per test.

Properties: each call either stores clean text (no character ``clean_text`` refuses, within its
cap) or raises ``FindingError`` (text: ``FindingTextError``, also a ``TextError``) and leaves the
findings, their events and the audit log exactly as they were. Whatever was stored then goes out:
the finding's BCF export (2.1 or 3.0) succeeds and is valid against buildingSMART's schemas, the
evaluation report's HTML carries it with no control character, and, once per test, the PDF.
"""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from sitetwin.data.sites import upsert_site
from sitetwin.data.store import open_store
from sitetwin.data.text import LABEL_MAX, NOTE_MAX, TITLE_MAX, TextError
from sitetwin.oversight.bcf import export_bcf
from sitetwin.oversight.errors import FindingError
from sitetwin.oversight.evaluation import evaluate, report_html, report_pdf
from sitetwin.oversight.findings import FindingTextError, comment, get_finding, raise_finding
from sitetwin.oversight.scope import Scope

EXAMPLES = 200
SITE, OTHER = "FZ-1", "FZ-2"
SYSTEM = Scope.system()
TABLES = ("findings", "finding_events", "audit_log")
NOT_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")

HOSTILE_CHARS = st.sampled_from(list("\x00\x01\x07\x08\x0b\x0c\x0e\x1b\x1f\x7f\x80\x85\x9f\ud800\udfff\ufffe\uffff"
                                     "\ufffd\u2028\n\r\t =+-@$\\<>&\"'"))
TEXT = st.one_of(
    st.text(st.one_of(st.characters(exclude_categories=()), HOSTILE_CHARS), max_size=40),
    st.builds(lambda c, n: c * n, st.sampled_from(["x", "é", "\x00", " ", "=", "\n"]),
              st.sampled_from([LABEL_MAX, TITLE_MAX, TITLE_MAX + 1, NOTE_MAX, NOTE_MAX + 1, 300_000])),
    st.sampled_from(["=HYPERLINK(\"http://evil\",\"x\")", "+1+1", "-2+3", "@SUM(A1)", "$\\foo$", "<script>", ""]),
)
NUMBER = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10 ** 30, 10 ** 30), st.booleans(),
                   TEXT, st.none())
JSON = st.recursive(st.one_of(st.none(), st.booleans(), st.floats(), st.integers(-10 ** 20, 10 ** 20), TEXT),
                    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(TEXT, inner, max_size=4)),
                    max_leaves=12)


def _digest(store) -> str:
    h = hashlib.sha256()
    for t in TABLES:
        h.update(repr(store.rows(f'SELECT * FROM "{t}" ORDER BY ALL')).encode("utf-8", "surrogatepass"))
    return h.hexdigest()


def _clean(text: str, limit: int) -> bool:
    return NOT_TEXT.search(text) is None and len(text) <= limit


@pytest.fixture
def world(tmp_path, shared_data):
    """A store with two sites, a posed panorama on each, the evaluation of the first, and the schemas."""
    from PIL import Image

    from sitetwin.panorama.pano_store import add_panorama

    xsd = shared_data / "bcf" / "xsd"
    schemas = {v: {n: etree.XMLSchema(etree.parse(str(xsd / v / n))) for n in ("markup.xsd", "visinfo.xsd")}
               for v in ("2.1", "3.0")}
    with open_store(tmp_path / "fuzz.duckdb") as s:
        panos = {}
        for site in (SITE, OTHER):
            upsert_site(s, site, district="D", city="C")
            image = tmp_path / f"{site}.jpg"
            Image.new("RGB", (256, 128), (100, 100, 100)).save(image)
            T = np.eye(4)
            T[:3, 3] = [1.0, 2.0, 1.5]
            panos[site] = add_panorama(s, image, site_code=site, pose=T).pano_id
        ev = evaluate(s, SYSTEM, SITE, as_of="2024-06-30", record=False)
        yield {"store": s, "panos": panos, "evaluation": ev, "schemas": schemas, "tmp": tmp_path}


def _export_is_valid(world, fid: str, version: str) -> None:
    out = Path(world["tmp"]) / "one.bcfzip"
    export_bcf(world["store"], SYSTEM, out, finding_ids=[fid], version=version, snapshots=False)
    schemas = world["schemas"][version]
    with zipfile.ZipFile(io.BytesIO(out.read_bytes())) as zf:
        for name in zf.namelist():
            xsd = "markup.xsd" if name.endswith("markup.bcf") else "visinfo.xsd" if name.endswith(".bcfv") else None
            if xsd:
                assert schemas[xsd].validate(etree.fromstring(zf.read(name))), (name, schemas[xsd].error_log)


def test_any_text_in_a_finding_and_its_comment_is_stored_clean_or_refused(world):
    store, seen = world["store"], []

    @settings(max_examples=EXAMPLES)
    @given(title=TEXT, description=TEXT, labels=st.lists(TEXT, max_size=3), note=TEXT,
           version=st.sampled_from(["2.1", "3.0"]))
    def run(title, description, labels, note, version):
        before = _digest(store)
        try:
            fid = raise_finding(store, site_code=SITE, category="safety", severity="high", title=title,
                                description=description, labels=labels)
        except FindingError as exc:
            assert isinstance(exc, TextError) or "title" in str(exc), exc   # text problems, or no title at all
            assert _digest(store) == before
            return
        f = get_finding(store, SYSTEM, fid)
        assert _clean(f.title, TITLE_MAX) and f.title and "\n" not in f.title
        assert _clean(f.description, NOTE_MAX) and all(_clean(x, LABEL_MAX) and x for x in f.labels)
        stored = _digest(store)
        try:
            comment(store, fid, note, scope=SYSTEM)
        except FindingError as exc:
            assert isinstance(exc, FindingTextError) or "needs text" in str(exc), exc
            assert _digest(store) == stored
        else:
            notes = [r["note"] for r in store.rows("SELECT note FROM finding_events WHERE finding_id = ? AND "
                                                   "kind = 'comment'", [fid])]
            assert len(notes) == 1 and _clean(notes[0], NOTE_MAX)
        _export_is_valid(world, fid, version)
        page = report_html(world["evaluation"], site_name=f.title + f.description)
        assert NOT_TEXT.search(page) is None
        seen.append(f.title)

    run()
    assert len(seen) > 20
    pdf = report_pdf(world["evaluation"], Path(world["tmp"]) / "r.pdf", site_name=" ".join(seen))
    assert pdf.read_bytes()[:5] == b"%PDF-"


def test_any_evidence_and_view_is_stored_for_the_own_site_or_refused(world):
    store, panos = world["store"], world["panos"]
    outcomes = {"stored": 0, "refused": 0}

    @settings(max_examples=EXAMPLES)
    # the site's own panorama twice as often: stored examples are rarer (the view and the extras must pass too)
    @given(pano=st.sampled_from([panos[SITE], panos[SITE], panos[OTHER], "made-up", None]),
           view=st.dictionaries(st.sampled_from(["yaw_deg", "pitch_deg", "fov_deg", "depth_m", "pixel_uv", "box_px",
                                                 "camera"]), NUMBER, max_size=4),
           extra=st.dictionaries(TEXT, JSON, max_size=3), top_pano=st.booleans(),
           version=st.sampled_from(["2.1", "3.0"]))
    def run(pano, view, extra, top_pano, version):
        evidence = {**extra, "panorama": {"pano_id": pano, **view}}
        if top_pano:
            evidence = {**extra, "pano_id": pano}
        before = _digest(store)
        try:
            fid = raise_finding(store, site_code=SITE, category="safety", severity="high", title="fuzz",
                                evidence=evidence, location_m=(1.0, 1.0, 1.0))
        except FindingError as exc:
            assert panos[SITE] not in str(exc) and panos[OTHER] not in str(exc)
            assert _digest(store) == before
            outcomes["refused"] += 1
            return
        outcomes["stored"] += 1
        assert pano == panos[SITE]                     # only the site's own panorama is ever stored
        stored = get_finding(store, SYSTEM, fid).evidence
        view_stored = stored.get("panorama", {})
        assert 0 <= view_stored.get("yaw_deg", 0) < 360 and -90 <= view_stored.get("pitch_deg", 0) <= 90
        assert 1 <= view_stored.get("fov_deg", 60) < 179
        _export_is_valid(world, fid, version)

    run()
    assert outcomes["stored"] >= 5 and outcomes["refused"] >= 5, outcomes      # both ways were explored
