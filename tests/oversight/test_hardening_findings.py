"""Issue 14, findings: text is checked where it enters, and evidence names only the finding's own site's records.

Item 1 (entry half): a control character or an over-long text in any field of a finding, comment or
note is refused by name and stores nothing. Item 2: a panorama, detection or hazard named in
evidence must belong to the finding's site; the refusal reads the same for an unknown id and
another site's id and lists none; a view's angles must be finite and in range. Every path is
covered: raising, commenting, rectifying, and the sink that vision and sensors raise through.
"""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pytest

from sitetwin.data.evidence import FindingDraft
from sitetwin.data.text import NOTE_MAX, TITLE_MAX, TextError
from sitetwin.oversight.errors import FindingError
from sitetwin.oversight.findings import (
    FindingTextError,
    comment,
    get_finding,
    raise_finding,
    reopen,
    submit_rectification,
    verify_close,
)
from sitetwin.oversight.raising import raise_drafts
from sitetwin.oversight.scope import Scope

SYSTEM = Scope.system()
T0 = dt.datetime(2024, 5, 1, 9, 0)
OWN, OTHER = "WH-JA-1", "WH-WC-1"


def _raise(store, site=OWN, **kw):
    kw.setdefault("title", "Guard rail missing at slab edge")
    return raise_finding(store, site_code=site, category=kw.pop("category", "safety"),
                         severity=kw.pop("severity", "high"), at=kw.pop("at", T0), **kw)


def _panorama(store, tmp_path, site: str) -> str:
    """A small posed panorama of ``site``; returns its pano_id."""
    from PIL import Image

    from sitetwin.panorama.pano_store import add_panorama

    path = tmp_path / f"pano-{site}.jpg"
    Image.new("RGB", (256, 128), (120, 120, 120)).save(path, quality=80)
    T = np.eye(4)
    T[:3, 3] = [1.0, 2.0, 1.6]
    return add_panorama(store, path, site_code=site, pose=T).pano_id


def _vision_records(store):
    """One detection and one hazard on each of the two sites (vision's own writers)."""
    from sitetwin.vision.detection_store import insert_detections, insert_hazards

    det = {"source_kind": "camera", "source_ref": "c", "class_name": "person", "confidence": 0.8,
           "x1": 0, "y1": 0, "x2": 1, "y2": 1, "captured_at": T0}
    insert_detections(store, [{**det, "site_code": OWN, "detection_id": "D-own"},
                              {**det, "site_code": OTHER, "detection_id": "D-other"}])
    insert_hazards(store, [{"hazard_id": h, "site_code": s, "rule": "unprotected_edge", "severity": "high",
                            "message": "edge", "started_at": T0} for h, s in (("H-own", OWN), ("H-other", OTHER))])


# --------------------------------------------------------------------------------------
# item 1: text checked where it enters

@pytest.mark.parametrize("field, kw", [
    ("title", {"title": "Guard rail\x00 missing"}),
    ("title", {"title": "Guard rail\x1b[31m missing"}),
    ("title", {"title": "two\nlines"}),
    ("description", {"description": "see \x07 attached"}),
    ("label", {"labels": ["ed\x0cge"]}),
    ("global_id", {"global_id": "2O2Fr$t4X7Zf8NOew\x00FLOH"}),
    ("storey", {"storey": "Level\x85 3"}),
])
def test_control_character_in_a_new_finding_is_refused_by_name_and_stores_nothing(sites_store, snapshot, field, kw):
    _raise(sites_store)
    before = snapshot(sites_store)
    with pytest.raises(FindingTextError, match=rf"^{field}: ") as caught:
        _raise(sites_store, **kw)
    assert isinstance(caught.value, TextError) and isinstance(caught.value, FindingError)
    assert snapshot(sites_store) == before


def test_control_character_in_comment_is_refused_and_the_history_is_unchanged(sites_store, snapshot, scopes):
    fid = _raise(sites_store)
    before = snapshot(sites_store)
    for note in ("ok\x00", "bell\x07", "del\x7f", "c1 \x9b", "lone surrogate \ud800"):
        with pytest.raises(FindingTextError, match="comment: control character"):
            comment(sites_store, fid, note, scope=scopes["admin"])
    assert snapshot(sites_store) == before
    # line breaks and tabs are fine in a comment, and it is stored normalised
    comment(sites_store, fid, "  first line\r\n\tsecond line  ", scope=scopes["admin"])
    assert sites_store.scalar("SELECT note FROM finding_events WHERE kind = 'comment'") == "first line\n\tsecond line"


def test_a_two_megabyte_comment_is_refused_and_a_long_one_within_the_cap_is_kept(sites_store, snapshot, scopes):
    fid = _raise(sites_store)
    before = snapshot(sites_store)
    with pytest.raises(FindingTextError, match=re.escape(f"comment: 2,000,000 characters, more than the "
                                                         f"{NOTE_MAX:,} allowed")):
        comment(sites_store, fid, "x" * 2_000_000, scope=scopes["admin"])
    assert snapshot(sites_store) == before
    comment(sites_store, fid, "y" * NOTE_MAX, scope=scopes["admin"])
    with pytest.raises(FindingTextError, match=f"title: {TITLE_MAX + 1} characters"):
        _raise(sites_store, title="t" * (TITLE_MAX + 1))
    assert get_finding(sites_store, SYSTEM, _raise(sites_store, title="t" * TITLE_MAX)).title == "t" * TITLE_MAX


def test_every_note_of_the_lifecycle_is_checked(sites_store, snapshot, scopes):
    fid = _raise(sites_store)
    submit_rectification(sites_store, fid, scope=scopes["admin"], note="done", evidence={"photos": ["a.jpg"]})
    before = snapshot(sites_store)
    with pytest.raises(FindingTextError, match="note: control character U\\+0000"):
        verify_close(sites_store, fid, scope=scopes["admin"], note="ok\x00")
    with pytest.raises(FindingTextError, match="note: control character"):
        reopen(sites_store, fid, scope=scopes["admin"], note="again\x01")
    with pytest.raises(FindingTextError, match="evidence.photos\\[0\\]: control character"):
        comment(sites_store, fid, "photo", scope=scopes["admin"], evidence={"photos": ["a\x00.jpg"]})
    with pytest.raises(FindingError, match="nested more than"):
        comment(sites_store, fid, "deep", scope=scopes["admin"], evidence={"a": [[[[[[[[[[1]]]]]]]]]]})
    with pytest.raises(FindingError, match="viewpoint_id"):
        comment(sites_store, fid, "vp", scope=scopes["admin"], viewpoint_id="../../etc")
    assert snapshot(sites_store) == before


# --------------------------------------------------------------------------------------
# item 2: evidence names only the finding's own site

def test_another_sites_panorama_in_evidence_is_refused_like_an_unknown_one(sites_store, snapshot, tmp_path, scopes):
    other = _panorama(sites_store, tmp_path, OTHER)
    own = _panorama(sites_store, tmp_path, OWN)
    fid = _raise(sites_store)
    before = snapshot(sites_store)
    messages = []
    for pano_id in (other, "made-up-pano"):
        for evidence in ({"panorama": {"pano_id": pano_id, "yaw_deg": 10.0}}, {"pano_id": pano_id}):
            with pytest.raises(FindingError) as caught:
                _raise(sites_store, evidence=evidence)
            messages.append(str(caught.value))
            with pytest.raises(FindingError) as caught:
                comment(sites_store, fid, "see this", scope=scopes["district_regulator"], evidence=evidence)
            messages.append(str(caught.value))
    assert snapshot(sites_store) == before
    assert messages[:4] == messages[4:]               # unknown and another site's read the same
    assert not any(other in m or own in m for m in messages)    # and no existing id is named
    assert "not a panorama of site WH-JA-1" in messages[0]
    ok = _raise(sites_store, evidence={"panorama": {"pano_id": own, "yaw_deg": 10.0}})
    assert get_finding(sites_store, SYSTEM, ok).evidence["panorama"]["pano_id"] == own


@pytest.mark.parametrize("view, message", [
    ({"yaw_deg": "abc"}, "yaw_deg must be a finite number"),
    ({"yaw_deg": float("nan")}, "plain JSON"),
    ({"yaw_deg": True}, "yaw_deg must be a finite number"),
    ({"pitch_deg": 90.5}, "pitch_deg 90.5: must lie between -90 and 90"),
    ({"fov_deg": 0.5}, "fov_deg 0.5: must lie between 1 and 179"),
    ({"fov_deg": 179}, "fov_deg 179.0: must be below 179"),
    ({"fov_deg": 10 ** 400}, "plain JSON"),
    ({"pixel_uv": [1, "x"]}, "pixel_uv must be a finite number"),
    ({"depth_m": -1}, "depth_m -1: must lie between 0"),
    ({"pano_id": None}, "must be a mapping with a 'pano_id'"),
    ({"camera": {"position_m": [0, 0, 0]}}, "unknown key 'camera'"),
])
def test_a_malformed_panorama_view_is_refused_and_stores_nothing(sites_store, snapshot, tmp_path, view, message):
    own = _panorama(sites_store, tmp_path, OWN)
    before = snapshot(sites_store)
    with pytest.raises(FindingError, match=re.escape(message)):
        _raise(sites_store, evidence={"panorama": {"pano_id": own, **view}})
    assert snapshot(sites_store) == before


def test_a_view_is_stored_with_its_yaw_normalised(sites_store, tmp_path):
    own = _panorama(sites_store, tmp_path, OWN)
    fid = _raise(sites_store, evidence={"panorama": {"pano_id": own, "yaw_deg": -90, "pitch_deg": -90,
                                                     "fov_deg": 1}})
    assert get_finding(sites_store, SYSTEM, fid).evidence["panorama"] == {
        "pano_id": own, "yaw_deg": 270.0, "pitch_deg": -90.0, "fov_deg": 1.0}


def test_another_sites_detection_or_hazard_in_evidence_is_refused(sites_store, snapshot):
    _vision_records(sites_store)
    before = snapshot(sites_store)
    for evidence, key in (({"detections": ["D-other"]}, "detections"), ({"detections": ["nope"]}, "detections"),
                          ({"detection_ids": ["D-own", "D-other"]}, "detection_ids"),
                          ({"hazard_id": "H-other"}, "hazard_id"), ({"hazard_id": "H-none"}, "hazard_id")):
        with pytest.raises(FindingError, match=f"evidence '{key}': .*not a (detection|hazard) of site WH-JA-1") as c:
            _raise(sites_store, evidence=evidence)
        assert "D-other" not in str(c.value) and "H-other" not in str(c.value)
    assert snapshot(sites_store) == before
    fid = _raise(sites_store, evidence={"detections": ["D-own"], "hazard_id": "H-own"})
    assert get_finding(sites_store, SYSTEM, fid).evidence == {"detections": ["D-own"], "hazard_id": "H-own"}


def test_the_sink_path_goes_through_the_same_checks(sites_store, snapshot, tmp_path):
    other = _panorama(sites_store, tmp_path, OTHER)
    own = _panorama(sites_store, tmp_path, OWN)
    draft = FindingDraft(site_code=OWN, category="safety", severity="high", title="Worker without a hard hat",
                         source="hazard", source_ref="H-new", raised_by="vision",
                         evidence={"pano_id": own, "box_px": [1, 2, 3, 4], "hazard_id": "H-new"})
    before = snapshot(sites_store)
    for bad in ({"evidence": {"pano_id": other}}, {"title": "hard hat\x00"},
                {"evidence": {"hazard_id": "H-other-ref"}}, {"evidence": {"pano_id": own, "box_px": [1, 2]}}):
        with pytest.raises(FindingError):
            raise_drafts(sites_store, [draft, FindingDraft(**{**draft.__dict__, "source_ref": "H2", **bad})])
        assert snapshot(sites_store) == before          # all or none
    # a hazard raising its own finding is named before vision stores it; a long machine title is cut
    raised = raise_drafts(sites_store, [draft, FindingDraft(**{**draft.__dict__, "source_ref": "W1",
                                                              "source": "sensor", "evidence": {},
                                                              "title": "Dust monitor " + "d" * 300})])
    titles = [get_finding(sites_store, SYSTEM, fid).title for fid in raised.values()]
    assert titles[0] == "Worker without a hard hat" and len(titles[1]) == TITLE_MAX and titles[1].endswith("…")


def test_a_snapshot_in_evidence_must_stay_inside_the_cache_folder(sites_store, snapshot):
    before = snapshot(sites_store)
    for ref in ("/etc/passwd.png", "../../secret.png", "C:/x.png", "a/../../b.png"):
        with pytest.raises(FindingError, match="evidence 'snapshot'"):
            _raise(sites_store, evidence={"snapshot": ref})
    assert snapshot(sites_store) == before
