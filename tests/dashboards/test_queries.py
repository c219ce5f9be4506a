"""The workbench's read queries on the generated site: progress, freshness, hazards, evidence files."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from sitetwin.data.clock import utcnow


@pytest.fixture(scope="module")
def ro(site_db):
    from sitetwin.data.store import open_store

    with open_store(site_db[0], read_only=True) as store:
        yield store


def test_the_progress_report_finds_the_injected_late_elements(ro, site_db):
    from sitetwin.dashboards import queries as q

    _, facts = site_db
    report = q.progress_report(ro, "DEMO")
    assert [s["survey_id"] for s in report.surveys] == [s["survey_id"] for s in facts["surveys"]]
    late = {e["global_id"] for e in report.late_elements}
    # a survey can only call an element missing where it could see it (twin: visible share >= 5 %)
    seen_missing = set()
    for survey in facts["surveys"]:
        for g in survey["late"]:
            vis = ro.scalar("SELECT visible_share FROM element_deviation WHERE survey_id = ? AND global_id = ?",
                            [survey["survey_id"], g])
            if vis is not None and vis >= 0.05:
                seen_missing.add(g)
    assert len(seen_missing) >= 3
    assert seen_missing <= late
    # whatever is reported late was missed by a survey on or after its planned finish
    for e in report.late_elements:
        missed = ro.scalar("SELECT count(*) FROM element_deviation d JOIN surveys s USING (survey_id) "
                           "WHERE d.global_id = ? AND s.epoch >= ? AND d.status NOT IN ('built', 'out_of_tolerance')",
                           [e["global_id"], e["planned_finish"]])
        assert missed >= 1


def test_4d_states_on_the_last_survey_day_agree_with_the_progress_report(ro, site_db):
    from sitetwin.dashboards import queries as q

    day = site_db[1]["epochs"][-1]
    report = q.progress_report(ro, "DEMO")
    states = q.schedule_states(ro, "DEMO", day)
    late_now = {g for (m, g), st in states.items() if st == "late"}
    assert late_now == {e["global_id"] for e in report.late_elements if e["still_missing"]}
    built = sum(1 for st in states.values() if st == "built")
    scheduled_built = report.surveys[-1]["built"]
    assert built >= scheduled_built > 0          # unscheduled elements seen standing count as built too


def test_before_any_survey_nothing_is_built_or_late(ro, site_db):
    from sitetwin.dashboards import queries as q

    day = site_db[1]["epochs"][0] - dt.timedelta(days=1)
    states = q.schedule_states(ro, "DEMO", day)
    counts = {s: list(states.values()).count(s) for s in q.SCHEDULE_STATES}
    assert counts["built"] == counts["late"] == 0
    assert counts["due (not seen)"] > 0 and counts["not started"] > 0


def test_the_s_curve_rises_and_its_survey_points_match_the_built_share(ro, site_db):
    from sitetwin.dashboards import queries as q

    report = q.progress_report(ro, "DEMO")
    planned = [p["planned_pct"] for p in report.s_curve]
    assert planned == sorted(planned) and planned[-1] == pytest.approx(100.0)
    seen = {p["date"]: p["actual_pct"] for p in report.s_curve if p["actual_pct"] is not None}
    assert sorted(seen) == site_db[1]["epochs"]
    for s in report.surveys:
        assert seen[s["epoch"]] == pytest.approx(100.0 * s["built"] / report.elements, abs=0.01)
    assert sum(r["elements"] for r in report.by_storey) == report.elements


@pytest.mark.parametrize("day,finish,first,missed,expected", [
    (dt.date(2026, 4, 1), dt.date(2026, 4, 10), None, False, "in progress"),
    (dt.date(2026, 3, 1), dt.date(2026, 4, 10), None, False, "not started"),
    (dt.date(2026, 5, 1), dt.date(2026, 4, 10), None, True, "late"),
    (dt.date(2026, 5, 1), dt.date(2026, 4, 10), None, False, "due (not seen)"),
    (dt.date(2026, 5, 1), dt.date(2026, 4, 10), dt.date(2026, 4, 20), True, "built"),
    (dt.date(2026, 3, 25), dt.date(2026, 4, 10), dt.date(2026, 3, 24), False, "built"),
    (dt.date(2026, 4, 15), dt.date(2026, 4, 10), dt.date(2026, 4, 20), True, "late"),
    (dt.date(2026, 5, 1), None, None, False, "unscheduled"),
])
def test_schedule_state_on_a_day(day, finish, first, missed, expected):
    from sitetwin.dashboards.queries import schedule_state

    assert schedule_state(dt.datetime(2026, 3, 20), finish, first, missed, day) == expected


def test_data_freshness_names_every_source_and_its_age(ro, site_db):
    from sitetwin.dashboards import queries as q
    from sitetwin.oversight.scope import Scope

    now = utcnow() + dt.timedelta(hours=1)      # the catalogue counts what was stored before "now"
    rows = {r["source"]: r for r in q.data_freshness(ro, Scope.system(), "DEMO", now=now)}
    assert set(rows) >= {"model", "schedule", "survey", "panoramas", "detections", "sensor", "findings"}
    survey_age = (now - dt.datetime.combine(site_db[1]["epochs"][-1], dt.time())).total_seconds() / 86400
    assert rows["survey"]["age_days"] == pytest.approx(survey_age, abs=0.1)
    assert rows["panoramas"]["entries"] == 1 and rows["panoramas"]["completeness"] == pytest.approx(1.0)
    assert rows["detections"]["entries"] == sum(p["detections"] for p in site_db[1]["panoramas"])
    assert rows["camera"]["last"] is None and rows["camera"]["age_days"] is None


def test_open_hazards_are_those_whose_finding_is_still_open(ro, site_db):
    from sitetwin.dashboards import queries as q

    hazards = [h for p in site_db[1]["panoramas"] for h in p["hazards"]]
    total, rows = q.open_hazards(ro, "DEMO")
    assert total == len(hazards) and {r["hazard_id"] for r in rows} == set(hazards)
    assert all(r["finding_status"] == "open" for r in rows)


def test_hazard_groupings_agree(ro):
    from sitetwin.dashboards import queries as q

    by_rule = q.hazard_counts(ro, "DEMO", "rule")
    by_storey = q.hazard_counts(ro, "DEMO", "storey")
    timeline = q.hazard_timeline(ro, "DEMO")
    assert sum(r["hazards"] for r in by_rule) == sum(r["hazards"] for r in by_storey) == \
        sum(r["hazards"] for r in timeline) == ro.scalar("SELECT count(*) FROM hazards WHERE site_code = 'DEMO'")
    assert q.hazard_counts(ro, "DEMO", "rule", rules=["unprotected_edge"]) == []
    with pytest.raises(ValueError):
        q.hazard_counts(ro, "DEMO", "site_code; DROP TABLE hazards")


def test_an_evidence_path_outside_the_cache_is_never_served(store, tmp_path):
    from sitetwin.dashboards.queries import evidence_path
    from sitetwin.vision.detection_store import insert_hazards

    store.cache_dir = tmp_path / "cache"
    crop = store.cache_dir / "vision" / "evidence" / "R1" / "H1.jpg"
    crop.parent.mkdir(parents=True)
    crop.write_bytes(b"\xff\xd8jpeg")
    (tmp_path / "outside.txt").write_text("secret")
    (store.cache_dir / "vision" / "link.txt").symlink_to(tmp_path / "outside.txt")
    insert_hazards(store, [{"hazard_id": hid, "site_code": "X", "rule": "no_hard_hat", "severity": "high",
                            "message": "m", "evidence": json.dumps({"crops": crops})}
                           for hid, crops in (("H1", ["vision/evidence/R1/H1.jpg"]), ("H2", ["../outside.txt"]),
                                              ("H3", ["/etc/passwd"]), ("H4", ["vision/link.txt"]))])
    assert evidence_path(store, "H1", 0) == crop.resolve()
    assert evidence_path(store, "H2", 0) is None and evidence_path(store, "H3", 0) is None
    assert evidence_path(store, "H1", 1) is None and evidence_path(store, "H9", 0) is None
    # a link inside the cache that leads out of it is refused as well
    assert evidence_path(store, "H4", 0) is None


def test_detector_weights_lists_only_files_that_exist(store, tmp_path):
    from sitetwin.dashboards.queries import detector_weights
    from sitetwin.vision.detection_store import RunRecord, record_run

    real = tmp_path / "best.onnx"
    real.write_bytes(b"onnx")
    now = utcnow()
    for run, path in (("R1", real), ("R2", tmp_path / "gone.pt")):
        record_run(store, RunRecord(run_id=run, kind="train", started_at=now, finished_at=now, weights_path=str(path),
                                    status="done"))
    assert [w["run_id"] for w in detector_weights(store)] == ["R1"]
