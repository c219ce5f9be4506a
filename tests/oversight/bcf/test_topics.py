"""Findings to BCF and back: import from real tools' files, export, the round trip, refusals."""

from __future__ import annotations

import datetime as dt
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from sitetwin.data.sites import set_origin
from sitetwin.oversight.bcf import add_viewpoint, export_bcf, finding_viewpoints, import_bcf, read_bcf
from sitetwin.oversight.errors import AccessDenied, BcfError
from sitetwin.oversight.findings import (
    comment,
    finding_history,
    get_finding,
    list_findings,
    raise_finding,
    reopen,
    submit_rectification,
    verify_close,
)
from sitetwin.oversight.scope import Scope

SYSTEM = Scope.system()
T0 = dt.datetime(2024, 5, 1, 9, 0)


def posed_panorama(store, tmp_path, width: int, T: np.ndarray) -> str:
    """A plain equirectangular image of ``width`` x ``width / 2`` pixels added to WH-JA-1 with the pose ``T``
    (panorama camera -> site local frame); returns its pano_id."""
    from PIL import Image

    from sitetwin.panorama.pano_store import add_panorama

    path = tmp_path / f"pano-{width}.jpg"
    Image.new("RGB", (width, width // 2), (128, 128, 128)).save(path, quality=80)
    return add_panorama(store, path, site_code="WH-JA-1", pose=T).pano_id


def bcf_content(store) -> dict:
    """What a BCF round trip must keep: topics, comments, viewpoints and component GlobalIds."""
    topics = {r["finding_id"]: (r["title"], r["status"]) for r in store.rows(
        "SELECT finding_id, title, status FROM finding_state")}
    comments = {r["event_id"]: (r["finding_id"], r["note"], r["actor"], r["occurred_at"]) for r in store.rows(
        "SELECT event_id, finding_id, note, actor, occurred_at FROM finding_events WHERE kind = 'comment'")}
    viewpoints = {}
    for r in store.rows("SELECT viewpoint_id, finding_id, components, camera FROM finding_viewpoints"):
        comps = json.loads(r["components"])
        guids = {c["ifc_guid"] for c in comps["selection"] + comps["visibility"]["exceptions"] if c.get("ifc_guid")}
        for col in comps["coloring"]:
            guids |= {c["ifc_guid"] for c in col["components"] if c.get("ifc_guid")}
        cam = json.loads(r["camera"]) if r["camera"] else None
        viewpoints[r["viewpoint_id"]] = (r["finding_id"], frozenset(guids),
                                        tuple(np.round(cam["position_m"], 6)) if cam else None)
    return {"topics": topics, "comments": comments, "viewpoints": viewpoints}


def test_every_real_bcf_file_imports_as_findings_with_comments_and_viewpoints(sites_store, bcf_files):
    totals = {"topics": 0, "comments": 0, "viewpoints": 0}
    for f in bcf_files:
        r = import_bcf(sites_store, SYSTEM, f, site_code="WH-JA-1")
        assert len(r.created) == r.topics == len(read_bcf(f).topics), f.name
        totals["topics"] += r.topics
        totals["comments"] += r.comments_added
        totals["viewpoints"] += r.viewpoints_added
    assert totals == {"topics": 21, "comments": 18, "viewpoints": 20}
    assert sites_store.scalar("SELECT count(*) FROM findings WHERE source = 'bcf'") == 21
    snapshots = [Path(sites_store.cache_dir) / r["snapshot"] for r in sites_store.rows(
        "SELECT snapshot FROM finding_viewpoints WHERE snapshot IS NOT NULL")]
    assert len(snapshots) == 20 and all(p.read_bytes()[:4] == b"\x89PNG" for p in snapshots)


def test_bcf_fields_map_onto_findings(sites_store, shared_data):
    import_bcf(sites_store, SYSTEM, shared_data / "bcf/bcf-xml/v2.0_MaximumInformation.bcfzip", site_code="WH-JA-1")
    import_bcf(sites_store, SYSTEM, shared_data / "bcf/bcf-xml/v3.0_DueDate.bcf", site_code="WH-JA-1")
    maximum = get_finding(sites_store, SYSTEM, "63e78882-7c6a-4bf7-8982-fc478afb9c97")
    assert (maximum.severity, maximum.category, maximum.labels) == ("high", "quality", ("Structural", "IT Development"))
    assert maximum.raised_by == "dangl@iabi.eu" and maximum.source == "bcf"
    notes = [e.note for e in finding_history(sites_store, SYSTEM, maximum.finding_id) if e.kind == "comment"]
    assert len(notes) == 4 and notes[0].startswith("This is an unmodified topic")
    due = get_finding(sites_store, SYSTEM, "fffc1b9d-1f64-46ee-ad84-4fd4a0640e5f")
    assert due.due == dt.date(2021, 3, 15) and due.status == "open"


def test_schependomlaan_issues_land_on_the_elements_of_the_loaded_model(vebo_store, shared_data):
    r = import_bcf(vebo_store, SYSTEM, shared_data / "bcf/schependomlaan/ROOT-Vebo_interne_modelkwaliteit.bcfzip",
                   site_code="NIJ-01")
    assert (r.components, r.components_in_model, r.warnings) == (2, 2, ())
    f = get_finding(vebo_store, SYSTEM, r.created[0])
    model = vebo_store.scalar("SELECT model_id FROM models WHERE name = 'vebo'")
    assert f.model_id == model and f.storey == "02 tweede verdieping"
    assert f.global_id in ("2idEjti6zFIgYm2tBrhV$n", "3yp24Y_VTA$gEU$IkhzuVa")
    # the issue's camera stands within a few metres of the element and looks towards it
    vp = finding_viewpoints(vebo_store, SYSTEM, f.finding_id)[0]
    to_element = np.asarray(f.location_m) - np.asarray(vp["camera"]["position_m"])
    assert np.linalg.norm(to_element) < 5.0
    assert np.dot(to_element / np.linalg.norm(to_element), vp["camera"]["direction"]) > 0.8


def test_importing_the_same_file_twice_adds_nothing(sites_store, shared_data):
    path = shared_data / "bcf/bcf-xml/v2.0_MaximumInformation.bcfzip"
    import_bcf(sites_store, SYSTEM, path, site_code="WH-JA-1")
    before = bcf_content(sites_store)
    events = sites_store.scalar("SELECT count(*) FROM finding_events")
    again = import_bcf(sites_store, SYSTEM, path, site_code="WH-JA-1")
    assert (again.created, again.comments_added, again.viewpoints_added) == ((), 0, 0)
    assert len(again.updated) == 2 and bcf_content(sites_store) == before
    assert sites_store.scalar("SELECT count(*) FROM finding_events") == events


def _findings_in_every_state(store, scopes):
    reg, con = scopes["district_regulator"], scopes["contractor"]
    ids = {}
    ids["open"] = raise_finding(store, site_code="WH-JA-1", category="safety", severity="critical",
                                title="Open edge at level 3", location_m=(4.0, 2.0, 9.0), at=T0,
                                labels=["edge"], evidence={"crops": ["crop1.jpg"]})
    ids["submitted"] = raise_finding(store, site_code="WH-JA-1", category="quality", severity="medium",
                                     title="Column out of plumb", description="p95 38 mm", at=T0,
                                     global_id="2O2Fr$t4X7Zf8NOew3FLOH")
    submit_rectification(store, ids["submitted"], scope=con, note="re-cast", evidence={"photos": ["p.jpg"]})
    ids["closed"] = raise_finding(store, site_code="WH-JA-2", category="environment", severity="low",
                                  title="Dust", at=T0)
    submit_rectification(store, ids["closed"], scope=scopes["admin"], note="sprinklers", evidence={"photos": ["d"]})
    verify_close(store, ids["closed"], scope=reg, note="checked on camera 3")
    ids["reopened"] = raise_finding(store, site_code="WH-JA-1", category="progress", severity="high",
                                    title="Slab 2 late", at=T0)
    submit_rectification(store, ids["reopened"], scope=con, note="poured", evidence={"photos": ["x"]})
    reopen(store, ids["reopened"], scope=reg, note="only half poured")
    comment(store, ids["open"], "please send a photo", scope=reg)
    add_viewpoint(store, ids["open"], scope=reg, camera={"kind": "perspective", "position_m": [1.0, 2.0, 10.0],
                                                         "direction": [0.6, 0.0, -0.8], "up": [0.8, 0.0, 0.6],
                                                         "fov_deg": 50.0, "aspect_ratio": 1.5},
                  selection=["1bbI761TbBCOoIa5Kt6PXt", "1m5wAJelDFdhn6qBdOGjos"],
                  snapshot=b"\x89PNG\r\n\x1a\n" + b"\0" * 32)
    return ids


def test_the_round_trip_keeps_every_topic_comment_viewpoint_and_global_id(sites_store, scopes, tmp_path, bcf_files):
    for version in ("2.1", "3.0"):
        _round_trip(sites_store, scopes, tmp_path, version, bcf_files, first=version == "2.1")


def _round_trip(sites_store, scopes, tmp_path, version, bcf_files, first):
    from sitetwin.data.sites import upsert_site
    from sitetwin.data.store import open_store

    if first:
        for code in [r["site_code"] for r in sites_store.rows("SELECT site_code FROM sites")]:
            set_origin(sites_store, code, (1000, 2000, 5))
        _findings_in_every_state(sites_store, scopes)
        for f in bcf_files:                      # and everything real tools wrote
            import_bcf(sites_store, SYSTEM, f, site_code="WH-JA-1")
    target = tmp_path / f"out.{version}.bcfzip"
    report = export_bcf(sites_store, scopes["city_regulator"], target, version=version)
    assert report.topics == 25 and report.viewpoints == 20 + 1 + 1     # imported + added + one generated (element)
    with open_store(":memory:") as other:
        for code, origin in (("WH-JA-1", (1000, 2000, 5)), ("WH-JA-2", (1000, 2000, 5))):
            upsert_site(other, code)
            set_origin(other, code, origin)
        # a BCF file names no site: each site's topics go to their own import
        for site in ("WH-JA-1", "WH-JA-2"):
            ids = [f.finding_id for f in list_findings(sites_store, SYSTEM, site_code=site)]
            part = tmp_path / f"{site}.bcfzip"
            export_bcf(sites_store, SYSTEM, part, finding_ids=ids, version=version)
            import_bcf(other, SYSTEM, part, site_code=site)
        mine, theirs = bcf_content(sites_store), bcf_content(other)
        assert theirs["topics"] == mine["topics"]
        assert theirs["comments"].keys() >= mine["comments"].keys()
        assert {k: theirs["comments"][k] for k in mine["comments"]} == {
            k: v for k, v in mine["comments"].items()}
        stored = {k: v for k, v in theirs["viewpoints"].items() if k in mine["viewpoints"]}
        assert stored == mine["viewpoints"]
        assert len(theirs["viewpoints"]) == len(mine["viewpoints"]) + 1
        status_events = other.scalar("SELECT count(*) FROM finding_events e JOIN findings f USING (finding_id) "
                                     "WHERE e.kind = 'comment' AND f.source = 'cli'")
        assert status_events == 0


def test_a_status_change_made_in_a_bim_tool_comes_back_as_an_imported_event(sites_store, scopes, tmp_path):
    ids = _findings_in_every_state(sites_store, scopes)
    path = tmp_path / "out.bcfzip"
    export_bcf(sites_store, SYSTEM, path, finding_ids=[ids["submitted"]], version="3.0")
    # the tool (say BIMcollab) closes the topic: rewrite TopicStatus as it would
    with zipfile.ZipFile(path) as zf:
        entries = {n: zf.read(n) for n in zf.namelist()}
    name = f"{ids['submitted']}/markup.bcf"
    entries[name] = entries[name].replace(b'TopicStatus="Resolved"', b'TopicStatus="Closed"').replace(
        b"<Comments>", b"<ModifiedDate>2099-01-01T00:00:00Z</ModifiedDate><Comments>", 0)
    changed = tmp_path / "changed.bcfzip"
    with zipfile.ZipFile(changed, "w") as zf:
        for n, d in entries.items():
            zf.writestr(n, d)
    import_bcf(sites_store, scopes["district_regulator"], changed, site_code="WH-JA-1")
    f = get_finding(sites_store, SYSTEM, ids["submitted"])
    assert f.status == "verified_closed"
    last = finding_history(sites_store, SYSTEM, f.finding_id)[-1]
    assert (last.kind, last.actor) == ("imported", "dora")


def test_generated_viewpoints_look_at_the_finding(sites_store, scopes, tmp_path):
    ids = _findings_in_every_state(sites_store, scopes)
    path = tmp_path / "one.bcfzip"
    export_bcf(sites_store, SYSTEM, path, finding_ids=[ids["reopened"], ids["closed"]])
    a = read_bcf(path)
    # no location, no element, no panorama: nothing to look at, so no viewpoint is invented
    assert all(not t.viewpoints for t in a.topics)
    loc = raise_finding(sites_store, site_code="WH-JA-1", category="safety", severity="low", title="Loose board",
                        location_m=(10.0, 5.0, 3.0))
    export_bcf(sites_store, SYSTEM, path, finding_ids=[loc])
    cam = read_bcf(path).topics[0].viewpoints[0].camera
    to_target = np.array([10.0, 5.0, 3.0]) - np.array(cam.position)          # origin is 0 here
    assert np.dot(to_target / np.linalg.norm(to_target), cam.direction) == pytest.approx(1.0, abs=1e-9)


def test_a_panorama_finding_exports_the_view_the_regulator_looked_through(sites_store, tmp_path):
    from sitetwin.oversight.bcf.camera import camera_from_panorama

    T = np.eye(4)
    T[:3, :3] = [[0, -1, 0], [1, 0, 0], [0, 0, 1]]     # camera forward (+x) points along model +y
    T[:3, 3] = [3.0, 4.0, 1.6]
    pano_id = posed_panorama(sites_store, tmp_path, 2048, T)
    fid = raise_finding(sites_store, site_code="WH-JA-1", category="safety", severity="high", title="No helmet",
                        evidence={"panorama": {"pano_id": pano_id, "yaw_deg": 90.0, "pitch_deg": 0.0, "fov_deg": 90.0}})
    path = tmp_path / "pano.bcfzip"
    export_bcf(sites_store, SYSTEM, path, finding_ids=[fid], version="3.0")
    c = read_bcf(path).topics[0].viewpoints[0].camera
    assert c.position == pytest.approx((3.0, 4.0, 1.6))
    assert c.direction == pytest.approx((-1.0, 0.0, 0.0), abs=1e-12)     # yaw 90 (left) of +y is -x
    assert c.up == pytest.approx((0.0, 0.0, 1.0), abs=1e-12)
    assert c.field_of_view_deg == pytest.approx(camera_from_panorama(T, 90, 0, 90)["fov_deg"])


def _bad_zip(tmp_path, good: Path, extra: dict) -> Path:
    with zipfile.ZipFile(good) as zf:
        entries = {n: zf.read(n) for n in zf.namelist()}
    entries.update(extra)
    path = tmp_path / "bad.bcfzip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for n, d in entries.items():
            zf.writestr(n, d)
    return path


@pytest.mark.parametrize("extra, message", [
    ({"../../outside.txt": b"x"}, "path traversal"),
    ({"33b0e849-72f1-434c-88e1-b7b3b8c27f38/huge.png": b"\0" * (5 << 20)}, "zip bomb"),
    ({"f5d76cd4-46bc-450c-a513-c1f62ac24026/markup.bcf": b"<Markup><Topic>"}, "not well-formed"),
])
def test_a_bad_bcf_file_writes_nothing_at_all(sites_store, snapshot, tmp_path, shared_data, extra, message):
    import_bcf(sites_store, SYSTEM, shared_data / "bcf/bcf-xml/v2.0_MinimumInformation.bcfzip", site_code="WH-JA-1")
    before = snapshot(sites_store)
    files_before = sorted(Path(sites_store.cache_dir).rglob("*"))
    bad = _bad_zip(tmp_path, shared_data / "bcf/bcf-xml/v2.0_MultipleTopics.bcfzip", extra)
    with pytest.raises(BcfError, match=message) as err:
        import_bcf(sites_store, SYSTEM, bad, site_code="WH-JA-1")
    assert "bad.bcfzip" in str(err.value)
    assert snapshot(sites_store) == before
    assert sorted(Path(sites_store.cache_dir).rglob("*")) == files_before


def test_a_topic_already_on_another_site_is_refused_before_anything_is_written(sites_store, snapshot, shared_data):
    import_bcf(sites_store, SYSTEM, shared_data / "bcf/bcf-xml/v2.0_MultipleTopics.bcfzip", site_code="WH-WC-1")
    before = snapshot(sites_store)
    files_before = sorted(Path(sites_store.cache_dir).rglob("*"))
    with pytest.raises(BcfError, match="already a finding of site WH-WC-1"):
        import_bcf(sites_store, SYSTEM, shared_data / "bcf/bcf-xml/v2.0_MultipleTopics.bcfzip", site_code="WH-JA-1")
    assert snapshot(sites_store) == before
    assert sorted(Path(sites_store.cache_dir).rglob("*")) == files_before


def test_a_failure_late_in_an_import_rolls_back_and_removes_the_snapshots_it_wrote(sites_store, snapshot,
                                                                                   shared_data, monkeypatch):
    from sitetwin.oversight.bcf import topics as topics_mod

    real, calls = topics_mod._sync_status, []

    def fail_on_third(*args, **kwargs):           # the third topic's last step fails (disk full, say)
        calls.append(1)
        if len(calls) == 3:
            raise OSError("no space left on device")
        return real(*args, **kwargs)

    monkeypatch.setattr(topics_mod, "_sync_status", fail_on_third)
    before = snapshot(sites_store)
    with pytest.raises(OSError):
        import_bcf(sites_store, SYSTEM, shared_data / "bcf/bcf-xml/v2.0_MultipleTopics.bcfzip", site_code="WH-JA-1")
    assert len(calls) == 3
    assert snapshot(sites_store) == before
    assert list(Path(sites_store.cache_dir).rglob("*.png")) == []


@pytest.mark.parametrize("role", ["contractor", "viewer"])
def test_only_regulators_import_bcf(sites_store, scopes, shared_data, snapshot, role):
    before = snapshot(sites_store)
    with pytest.raises(AccessDenied):
        import_bcf(sites_store, scopes[role], shared_data / "bcf/bcf-xml/v3.0_Labels.bcf", site_code="WH-JA-1")
    assert snapshot(sites_store) == before


def test_export_keeps_to_the_callers_scope(sites_store, scopes, tmp_path):
    ids = _findings_in_every_state(sites_store, scopes)
    path = tmp_path / "mine.bcfzip"
    r = export_bcf(sites_store, scopes["contractor"], path)
    assert r.topics == 3 and {t.guid for t in read_bcf(path).topics} == {ids["open"], ids["submitted"],
                                                                         ids["reopened"]}
    with pytest.raises(AccessDenied):
        export_bcf(sites_store, scopes["contractor"], path, finding_ids=[ids["closed"]])
    with pytest.raises(AccessDenied):
        export_bcf(sites_store, scopes["viewer"], path)
    exports = sites_store.rows("SELECT actor, site_code FROM audit_log WHERE action = 'export'")
    assert exports == [{"actor": "cole", "site_code": "WH-JA-1"}]


def test_a_hazard_seen_in_a_panorama_exports_a_view_centred_on_its_box(sites_store, tmp_path):
    T = np.eye(4)
    T[:3, 3] = [3.0, 4.0, 1.6]
    pano_id = posed_panorama(sites_store, tmp_path, 4000, T)
    # vision's evidence: a box centred at u = 1000 (azimuth +90 deg: left, +y) on the horizon (v = 1000)
    fid = raise_finding(sites_store, site_code="WH-JA-1", category="safety", severity="high", title="No hard hat",
                        evidence={"pano_id": pano_id, "box_px": [950.0, 900.0, 1050.0, 1100.0], "hazard_id": "H1"},
                        source="hazard", source_ref="H1")     # as vision's sink raises it, before H1 is stored
    path = tmp_path / "hazard.bcfzip"
    export_bcf(sites_store, SYSTEM, path, finding_ids=[fid])
    c = read_bcf(path).topics[0].viewpoints[0].camera
    assert c.position == pytest.approx((3.0, 4.0, 1.6))
    assert c.direction == pytest.approx((0.0, 1.0, 0.0), abs=1e-9)
