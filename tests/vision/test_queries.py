"""What vision publishes for other packages to read: a run's detections, and the runs, hazards and cameras
the CLI lists."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest

from sitetwin.data.sites import upsert_site
from sitetwin.vision.detection_store import Camera, RunRecord, add_camera, insert_detections, insert_hazards, record_run
from sitetwin.vision.queries import list_cameras, list_hazards, list_runs, run_detections

T0 = dt.datetime(2026, 5, 4, 9, 0)


def _box(detection_id: str, run_id: str, class_name: str, x1: float, **more) -> dict:
    return {"detection_id": detection_id, "site_code": "S", "source_kind": "panorama", "source_ref": "P1",
            "class_name": class_name, "confidence": 0.9, "x1": x1, "y1": 10.0, "x2": x1 + 20.0, "y2": 80.0,
            "pano_id": "P1", "run_id": run_id, **more}


def test_a_runs_detections_come_back_by_id_and_by_class(store):
    upsert_site(store, "S")
    insert_detections(store, [_box("D2", "R1", "person", 100.0, global_id="G1", storey="Level 1", z_m=3.5),
                              _box("D1", "R1", "person", 50.0),
                              _box("D3", "R1", "hard_hat", 52.0),
                              _box("D4", "R2", "person", 10.0)])
    everything = run_detections(store, "R1")
    assert everything["detection_id"].tolist() == ["D1", "D2", "D3"]
    people = run_detections(store, "R1", class_name="person").set_index("detection_id")
    assert people.index.tolist() == ["D1", "D2"]
    assert (people.loc["D2", "x1"], people.loc["D2", "x2"], people.loc["D2", "storey"]) == (100.0, 120.0, "Level 1")
    assert people.loc["D2", "global_id"] == "G1" and people.loc["D2", "z_m"] == 3.5
    assert pd.isna(people.loc["D1", "global_id"]) and pd.isna(people.loc["D1", "storey"])   # untagged
    assert run_detections(store, "R9").empty


def test_runs_list_oldest_first_and_filter_by_kind(store):
    upsert_site(store, "S")
    record_run(store, RunRecord("RB", "detect", T0 + dt.timedelta(hours=1), T0 + dt.timedelta(hours=1, seconds=30),
                                site_code="S", parent_run_id="RA", weights_path="w.pt"))
    record_run(store, RunRecord("RA", "train", T0, T0 + dt.timedelta(minutes=5), metrics={"map50": 0.61}))
    runs = list_runs(store)
    assert [r["run_id"] for r in runs] == ["RA", "RB"]
    assert json.loads(runs[0]["metrics"]) == {"map50": 0.61} and runs[0]["seconds"] == 300.0
    detect = list_runs(store, kind="detect")
    assert [(r["run_id"], r["site_code"], r["parent_run_id"], r["status"]) for r in detect] == \
        [("RB", "S", "RA", "done")]
    assert list_runs(store, kind="eval") == []


def test_hazards_list_newest_first_by_site_and_rule(store):
    def hazard(hazard_id, site, rule, start, **more):
        return {"hazard_id": hazard_id, "site_code": site, "rule": rule, "severity": "high", "message": rule,
                "started_at": start, **more}

    insert_hazards(store, [hazard("H1", "S", "no_hard_hat", T0),
                           hazard("H2", "S", "unprotected_edge", T0 + dt.timedelta(hours=2), distance_m=0.8,
                                  storey="Level 2", finding_id="F1"),
                           hazard("H3", "S", "no_hard_hat", None),
                           hazard("H4", "T", "no_hard_hat", T0 + dt.timedelta(hours=5))])
    assert [h["hazard_id"] for h in list_hazards(store)] == ["H4", "H2", "H1", "H3"]
    site = list_hazards(store, site_code="S")
    assert [h["hazard_id"] for h in site] == ["H2", "H1", "H3"]
    assert (site[0]["distance_m"], site[0]["storey"], site[0]["finding_id"]) == (0.8, "Level 2", "F1")
    assert site[1]["distance_m"] is None and site[1]["finding_id"] is None
    assert [h["hazard_id"] for h in list_hazards(store, site_code="S", rule="no_hard_hat")] == ["H1", "H3"]


def test_cameras_list_by_site_and_id_with_their_focal_length(store):
    for site in ("S", "T"):
        upsert_site(store, site)
    for site, cam, fx in (("T", "C1", 800.0), ("S", "C2", 1000.0), ("S", "C1", 900.0)):
        add_camera(store, Camera(site, cam, 1920, 1080, fx, fx, 960.0, 540.0, np.eye(4), name=f"{site} {cam}",
                                 source_url="rtsp://cam" if cam == "C2" else None))
    cams = list_cameras(store)
    assert [(c["site_code"], c["camera_id"]) for c in cams] == [("S", "C1"), ("S", "C2"), ("T", "C1")]
    assert (cams[1]["fx"], cams[1]["width"], cams[1]["height"], cams[1]["source_url"]) == (1000.0, 1920, 1080,
                                                                                           "rtsp://cam")
    assert cams[0]["source_url"] is None and cams[0]["fx"] == 900.0 and cams[0]["name"] == "S C1"


# --------------------------------------------------------------------------------------
# what the workbench reads: counts, hazards with their findings, evidence, detector weights

def _detection(detection_id: str, site: str, class_name: str, confidence: float, at, **more) -> dict:
    return {"detection_id": detection_id, "site_code": site, "source_kind": "panorama", "source_ref": "P1",
            "class_name": class_name, "confidence": confidence, "captured_at": at, "x1": 10.0, "y1": 10.0,
            "x2": 30.0, "y2": 90.0, **more}


def _hazard(hazard_id: str, site: str, rule: str, severity: str, start, **more) -> dict:
    return {"hazard_id": hazard_id, "site_code": site, "rule": rule, "severity": severity, "message": f"{rule} seen",
            "started_at": start, **more}


DAY = dt.timedelta(days=1)


def _site_with_hazards(store) -> None:
    """Site A: three detections (two on panorama P1 and element G1), three hazards (H1 with a crop and finding F1,
    H2 still going on, H3 closed with finding F2); site B: one detection and one hazard, both on G1."""
    insert_detections(store, [
        _detection("DA1", "A", "person", 0.9, T0, pano_id="P1", global_id="G1", storey="Level 1"),
        _detection("DA2", "A", "head", 0.8, T0 + dt.timedelta(hours=1), pano_id="P1", global_id="G1",
                   storey="Level 1"),
        _detection("DA3", "A", "person", 0.7, T0 + DAY, pano_id="P2", global_id="G2"),
        _detection("DB1", "B", "person", 0.6, T0 + 2 * DAY, global_id="G1")])
    insert_hazards(store, [
        _hazard("H1", "A", "no_hard_hat", "high", T0, ended_at=T0, global_id="G1", storey="Level 1",
                detection_ids=["DA2"], evidence={"crops": ["vision/evidence/R1/H1.jpg"], "pano_id": "P1"},
                finding_id="F1", pano_id="P1", x_m=1.0, y_m=2.0, z_m=0.0),
        _hazard("H2", "A", "no_hard_hat", "medium", T0 + DAY, global_id="G1", evidence={"crops": []}),
        _hazard("H3", "A", "machinery_zone", "critical", T0 + 2 * DAY, ended_at=T0 + 2 * DAY, global_id="G2",
                storey="Level 2", finding_id="F2"),
        _hazard("HB", "B", "no_vest", "low", T0, global_id="G1")])


def test_site_counts_and_the_site_of_a_hazard_or_a_detection(store):
    from sitetwin.vision.queries import detection_site, detection_summary, hazard_count, hazard_site

    _site_with_hazards(store)
    assert detection_summary(store, "A") == {"detections": 3, "last_captured_at": T0 + DAY}
    assert detection_summary(store, "C") == {"detections": 0, "last_captured_at": None}
    assert hazard_count(store, "A") == 3 and hazard_count(store, "B") == 1 and hazard_count(store, "C") == 0
    assert (hazard_site(store, "HB"), hazard_site(store, "H9")) == ("B", None)
    assert (detection_site(store, "DA3"), detection_site(store, "D9")) == ("A", None)


def test_open_hazards_are_those_going_on_or_with_a_finding_still_open(store):
    from sitetwin.vision.queries import open_hazard_count, open_hazards

    _site_with_hazards(store)
    assert open_hazard_count(store, "A") == 1
    assert open_hazards(store, "A")["hazard_id"].tolist() == ["H2"]
    assert open_hazard_count(store, "A", open_finding_ids=["F1"]) == 2
    rows = open_hazards(store, "A", open_finding_ids=["F1", "F1"])
    assert rows["hazard_id"].tolist() == ["H2", "H1"]                  # newest first
    assert rows["finding_id"].tolist()[1] == "F1" and pd.isna(rows["finding_id"].tolist()[0])
    assert open_hazards(store, "A", open_finding_ids=["F1", "F2"], limit=1)["hazard_id"].tolist() == ["H3"]


def test_one_hazard_comes_back_with_its_evidence_and_detections_decoded(store):
    from sitetwin.vision.queries import evidence_crops, hazard

    _site_with_hazards(store)
    h = hazard(store, "H1")
    assert (h["site_code"], h["rule"], h["severity"], h["finding_id"], h["pano_id"]) == \
        ("A", "no_hard_hat", "high", "F1", "P1")
    assert h["detection_ids"] == ["DA2"] and h["evidence"]["crops"] == ["vision/evidence/R1/H1.jpg"]
    assert (h["x_m"], h["y_m"], h["z_m"], h["started_at"]) == (1.0, 2.0, 0.0, T0)
    assert hazard(store, "H3")["detection_ids"] == [] and hazard(store, "H3")["evidence"] == {}
    assert hazard(store, "H9") is None
    assert evidence_crops(store, "H1") == ["vision/evidence/R1/H1.jpg"]
    assert evidence_crops(store, "H2") == evidence_crops(store, "H3") == evidence_crops(store, "H9") == []


def test_a_finding_raised_for_a_hazard_is_linked_to_it_and_an_unknown_hazard_is_refused(store):
    from sitetwin.vision.detection_store import link_finding
    from sitetwin.vision.errors import VisionError
    from sitetwin.vision.queries import hazard

    _site_with_hazards(store)
    link_finding(store, "H2", "F7")
    assert hazard(store, "H2")["finding_id"] == "F7" and hazard(store, "H1")["finding_id"] == "F1"
    with pytest.raises(VisionError, match="hazard 'H9': no such hazard"):
        link_finding(store, "H9", "F8")


def test_hazards_group_by_day_rule_storey_and_element_within_the_filters(store):
    from sitetwin.vision.queries import hazard_counts, hazard_elements, hazard_rules, hazard_timeline

    _site_with_hazards(store)
    timeline = hazard_timeline(store, "A")
    assert [(d.date(), r, s, n) for d, r, s, n in timeline.itertuples(index=False)] == [
        (T0.date(), "no_hard_hat", "high", 1), ((T0 + DAY).date(), "no_hard_hat", "medium", 1),
        ((T0 + 2 * DAY).date(), "machinery_zone", "critical", 1)]
    by_rule = hazard_counts(store, "A", "rule")
    assert list(by_rule.itertuples(index=False, name=None)) == [("no_hard_hat", 2), ("machinery_zone", 1)]
    by_storey = hazard_counts(store, "A", "storey")
    assert list(by_storey.itertuples(index=False, name=None)) == [("(none)", 1), ("Level 1", 1), ("Level 2", 1)]
    assert hazard_counts(store, "A", "global_id", rules=["no_hard_hat"], storeys=["Level 1"])["key"].tolist() == \
        ["G1"]
    with pytest.raises(ValueError, match="group hazards by"):
        hazard_counts(store, "A", "site_code")
    elements = hazard_elements(store, "A").set_index("global_id")
    assert elements.index.tolist() == ["G1", "G2"]                      # most hazards first
    g1 = elements.loc["G1"]
    assert (g1["hazards"], g1["rules"], g1["storey"], g1["last_seen"]) == (2, "no_hard_hat", "Level 1", T0 + DAY)
    assert hazard_elements(store, "A", limit=1).index.size == 1
    assert hazard_rules(store, "A") == ["machinery_zone", "no_hard_hat"] and hazard_rules(store, "C") == []


def test_hazards_with_evidence_count_their_crops_and_link_to_their_findings(store):
    from sitetwin.vision.queries import element_hazards, hazard_finding_ids, hazards_with_evidence

    _site_with_hazards(store)
    shown = hazards_with_evidence(store, "A")
    assert shown["hazard_id"].tolist() == ["H1"] and shown["crops"].tolist() == [1]
    assert hazards_with_evidence(store, "A", rules=["machinery_zone"]).empty
    links = hazard_finding_ids(store, "A", ["H1", "H2", "H3", "HB"])
    assert sorted(links.itertuples(index=False, name=None)) == [("H1", "F1"), ("H3", "F2")]
    assert hazard_finding_ids(store, "A", []).empty
    assert element_hazards(store, "A", "G1")["hazard_id"].tolist() == ["H2", "H1"]
    assert element_hazards(store, "A", "G1", limit=1)["hazard_id"].tolist() == ["H2"]


def test_detections_count_per_element_panorama_and_class_without_fetching_them(store):
    from sitetwin.vision.queries import (
        detection_counts,
        detections_per_panorama,
        element_detection_count,
        element_detections,
        pano_detections,
    )

    _site_with_hazards(store)
    assert element_detection_count(store, "A", "G1") == 2 and element_detection_count(store, "B", "G1") == 1
    assert element_detections(store, "A", "G1")["detection_id"].tolist() == ["DA2", "DA1"]   # newest first
    assert element_detections(store, "A", "G1", limit=1)["detection_id"].tolist() == ["DA2"]
    on_p1 = pano_detections(store, "P1")
    assert on_p1["detection_id"].tolist() == ["DA1", "DA2"] and on_p1["confidence"].tolist() == [0.9, 0.8]
    per_pano = detections_per_panorama(store, ["P1", "P2", "P9"])
    assert dict(per_pano.itertuples(index=False, name=None)) == {"P1": 2, "P2": 1}
    assert detections_per_panorama(store, []).empty
    assert list(detection_counts(store, "A").itertuples(index=False, name=None)) == [("person", 2), ("head", 1)]
    assert dict(detection_counts(store, "A", by="storey").itertuples(index=False, name=None)) == \
        {"Level 1": 2, "(none)": 1}
    with pytest.raises(ValueError, match="group detections by"):
        detection_counts(store, "A", by="confidence")


def test_detector_weights_are_the_finished_training_runs_whose_file_exists(store, tmp_path):
    from sitetwin.vision.queries import detector_weights

    real, export = tmp_path / "best.pt", tmp_path / "best.onnx"
    real.write_bytes(b"pt")
    export.write_bytes(b"onnx")
    record_run(store, RunRecord("RT", "train", T0, T0 + DAY, weights_path=str(real), class_names=("person",)))
    record_run(store, RunRecord("RE", "export", T0, T0 + 2 * DAY, weights_path=str(export)))
    record_run(store, RunRecord("RG", "train", T0, T0 + 3 * DAY, weights_path=str(tmp_path / "gone.pt")))
    record_run(store, RunRecord("RF", "train", T0, T0 + 4 * DAY, weights_path=str(real), status="failed"))
    record_run(store, RunRecord("RD", "detect", T0, T0 + 5 * DAY, weights_path=str(real)))
    weights = detector_weights(store)
    assert weights["run_id"].tolist() == ["RE", "RT"]                  # newest first
    assert weights["weights_name"].tolist() == ["best.onnx", "best.pt"]
    assert json.loads(weights.set_index("run_id").loc["RT", "class_names"]) == ["person"]


def test_hazards_and_detections_are_counted_per_site_in_a_window(store):
    from sitetwin.vision.queries import detections_per_site, hazards_per_site

    for code in ("S", "T", "U"):
        upsert_site(store, code)
    day = dt.datetime(2024, 6, 1)
    insert_detections(store, [{**_box(f"D{i}", "R1", "person", 10.0), "site_code": site, "captured_at": at}
                              for i, (site, at) in enumerate([("S", day), ("S", day + dt.timedelta(hours=3)),
                                                              ("S", day + dt.timedelta(days=2)), ("T", day),
                                                              ("T", day - dt.timedelta(days=9)),
                                                              ("U", day + dt.timedelta(days=40))])])
    insert_hazards(store, [{"hazard_id": f"H{i}", "site_code": site, "rule": "no_hard_hat", "severity": "high",
                            "message": "m", "started_at": at}
                           for i, (site, at) in enumerate([("S", day), ("S", day + dt.timedelta(days=1)),
                                                           ("T", day - dt.timedelta(days=1))])])
    since, until = day - dt.timedelta(days=1), day + dt.timedelta(days=29)
    det = detections_per_site(store, None, since=since, until=until, days=True)
    assert det.to_dict("records") == [
        {"site_code": "S", "detections": 3, "last_captured_at": day + dt.timedelta(days=2), "detection_days": 2},
        {"site_code": "T", "detections": 1, "last_captured_at": day, "detection_days": 1}]
    only_t = detections_per_site(store, ["T", "U"], since=since, until=until)
    assert list(only_t.columns) == ["site_code", "detections", "last_captured_at"]
    assert only_t["detections"].tolist() == [1]
    assert hazards_per_site(store, None, since=since, until=until).to_dict("records") == [
        {"site_code": "S", "hazards": 2}, {"site_code": "T", "hazards": 1}]
    assert hazards_per_site(store, ["S"], since=day + dt.timedelta(hours=1), until=until)["hazards"].tolist() == [1]
    assert hazards_per_site(store, [], since=since, until=until).empty


def test_each_camera_shows_its_newest_detection_and_its_days_with_detections(store):
    from sitetwin.data.clock import utcnow
    from sitetwin.vision.queries import camera_activity

    upsert_site(store, "S")
    for cid in ("gate-1", "crane-1"):
        add_camera(store, Camera("S", cid, 1280, 720, 1000.0, 1000.0, 640.0, 360.0, np.eye(4),
                                 name="Gate" if cid == "gate-1" else None))
    # noon five days ago: the detection 0.1 day after it falls on the same day whatever the hour the test runs
    day = utcnow().replace(hour=12, minute=0, second=0, microsecond=0) - dt.timedelta(days=5)
    insert_detections(store, [{**_box(f"D{i}", "R1", "person", 10.0), "source_kind": "camera", "camera_id": "gate-1",
                               "captured_at": day + dt.timedelta(days=d)} for i, d in enumerate([-9, 0, 0.1, 3, 12])])
    frame = camera_activity(store, "S", since=day - dt.timedelta(days=1), until=day + dt.timedelta(days=6))
    assert frame["camera_id"].tolist() == ["crane-1", "gate-1"]
    gate = frame.set_index("camera_id").loc["gate-1"]
    assert (gate["name"], gate["last_captured_at"], gate["detection_days"]) == ("Gate", day + dt.timedelta(days=3), 2)
    crane = frame.set_index("camera_id").loc["crane-1"]
    assert crane["detection_days"] == 0 and pd.isna(crane["last_captured_at"]) and pd.isna(crane["name"])
    assert camera_activity(store, "S", since=day - dt.timedelta(days=9), until=day).empty    # added after that


def test_the_elements_seen_at_a_stage_are_those_sighted_at_it_or_later_before_a_time(store):
    from sitetwin.vision.detection_store import insert_stage_observations
    from sitetwin.vision.queries import elements_seen_at_stage

    upsert_site(store, "S")
    day = dt.datetime(2024, 6, 1)
    insert_stage_observations(store, [
        {"site_code": "S", "model_id": "m", "global_id": g, "stage": stage, "stage_rank": rank, "observed_at": at,
         "confidence": 0.9, "detection_id": "D"}
        for g, stage, rank, at in [("A", "concrete", 3, day), ("B", "rebar", 2, day), ("C", "concrete", 3, None),
                                   ("D", "concrete", 3, day + dt.timedelta(days=5)), ("A", "concrete", 3, day)]])
    assert elements_seen_at_stage(store, "S", min_rank=3, before=day + dt.timedelta(days=1)) == ["A", "C"]
    assert elements_seen_at_stage(store, "S", min_rank=2, before=day + dt.timedelta(days=9)) == ["A", "B", "C", "D"]
