"""The workbench's read queries on the generated site: progress, freshness, hazards, evidence files."""

from __future__ import annotations

import datetime as dt
import json

import pytest


@pytest.fixture(scope="module")
def ro(site_db):
    from data.store import open_store

    with open_store(site_db[0], read_only=True) as store:
        yield store


def test_progress_reports_every_injected_late_element_as_late(ro, site_db):
    from dashboards import queries as q

    _, facts = site_db
    last = facts["surveys"][-1]
    prog = q.progress(ro, "DEMO", last["epoch"])
    assert prog.survey_id == last["survey_id"] and prog.as_of == last["epoch"]
    late = {e["global_id"] for e in prog.elements if e["late"]}
    assert set(last["late"]) <= late
    # nothing reported late was seen standing, and everything late was due
    for e in prog.elements:
        if e["late"]:
            assert e["due"] and e["status"] in ("not_built", "partial", "not seen")
    due = sum(1 for e in prog.elements if e["due"])
    assert prog.planned_done == due and 0 < prog.actual_pct < prog.planned_pct <= 100.0


def test_without_a_survey_nothing_is_called_late(ro, site_db):
    from dashboards import queries as q

    before = site_db[1]["epochs"][0] - dt.timedelta(days=1)
    prog = q.progress(ro, "DEMO", before)
    assert prog.survey_id is None and prog.built == 0
    assert not any(e["late"] for e in prog.elements) and prog.planned_done > 0


def test_the_s_curve_rises_and_its_survey_points_match_the_built_share(ro, site_db):
    from dashboards import queries as q

    _, facts = site_db
    curve = q.s_curve(ro, "DEMO")
    assert curve["planned_pct"] == sorted(curve["planned_pct"]) and curve["planned_pct"][-1] == pytest.approx(100.0)
    assert curve["actual_dates"] == facts["epochs"]
    for survey, pct in zip(facts["surveys"], curve["actual_pct"]):
        prog = q.progress(ro, "DEMO", survey["epoch"])
        assert pct == pytest.approx(prog.actual_pct, abs=0.01)


def test_completion_by_storey_adds_up_to_the_site(ro, site_db):
    from dashboards import queries as q

    prog = q.progress(ro, "DEMO", site_db[1]["epochs"][-1])
    rows = q.completion_by(prog, "storey")
    assert sum(r["elements"] for r in rows) == prog.scheduled
    assert sum(r["built"] for r in rows) == prog.built
    assert {r["storey"] for r in rows} >= {"Level 0", "Level 1"}


@pytest.mark.parametrize("day,finish,built,surveyed,expected", [
    (dt.date(2026, 4, 1), dt.date(2026, 4, 10), False, True, "in progress"),
    (dt.date(2026, 3, 1), dt.date(2026, 4, 10), False, True, "not started"),
    (dt.date(2026, 5, 1), dt.date(2026, 4, 10), False, True, "late"),
    (dt.date(2026, 5, 1), dt.date(2026, 4, 10), False, False, "due (no survey)"),
    (dt.date(2026, 5, 1), dt.date(2026, 4, 10), True, True, "built"),
    (dt.date(2026, 3, 1), dt.date(2026, 4, 10), True, True, "built"),
    (dt.date(2026, 5, 1), None, False, True, "unscheduled"),
])
def test_schedule_state_on_a_day(day, finish, built, surveyed, expected):
    from dashboards.queries import schedule_state

    assert schedule_state(dt.datetime(2026, 3, 20), finish, built, surveyed, day) == expected


def test_data_freshness_names_every_source_and_its_age(ro, site_db):
    from dashboards import queries as q
    from oversight.scope import Scope

    now = q.utcnow() + dt.timedelta(hours=1)      # the catalogue counts what was stored before "now"
    rows = {r["source"]: r for r in q.data_freshness(ro, Scope.system(), "DEMO", now=now)}
    assert set(rows) >= {"model", "schedule", "survey", "panoramas", "detections", "sensor", "findings"}
    survey_age = (now - dt.datetime.combine(site_db[1]["epochs"][-1], dt.time())).total_seconds() / 86400
    assert rows["survey"]["age_days"] == pytest.approx(survey_age, abs=0.1)
    assert rows["panoramas"]["entries"] == 1 and rows["panoramas"]["completeness"] == pytest.approx(1.0)
    assert rows["detections"]["entries"] == sum(p["detections"] for p in site_db[1]["panoramas"])
    assert rows["camera"]["last"] is None and rows["camera"]["age_days"] is None


def test_open_hazards_are_those_whose_finding_is_still_open(ro, site_db):
    from dashboards import queries as q

    hazards = [h for p in site_db[1]["panoramas"] for h in p["hazards"]]
    total, rows = q.open_hazards(ro, "DEMO")
    assert total == len(hazards) and {r["hazard_id"] for r in rows} == set(hazards)
    assert all(r["finding_status"] == "open" for r in rows)


def test_hazard_groupings_agree(ro):
    from dashboards import queries as q

    by_rule = q.hazard_counts(ro, "DEMO", "rule")
    by_storey = q.hazard_counts(ro, "DEMO", "storey")
    timeline = q.hazard_timeline(ro, "DEMO")
    assert sum(r["hazards"] for r in by_rule) == sum(r["hazards"] for r in by_storey) == \
        sum(r["hazards"] for r in timeline) == ro.scalar("SELECT count(*) FROM hazards WHERE site_code = 'DEMO'")
    assert q.hazard_counts(ro, "DEMO", "rule", rules=["unprotected_edge"]) == []
    with pytest.raises(ValueError):
        q.hazard_counts(ro, "DEMO", "site_code; DROP TABLE hazards")


def test_an_evidence_path_outside_the_cache_is_never_served(store, tmp_path):
    from dashboards.queries import evidence_path

    store.cache_dir = tmp_path / "cache"
    crop = store.cache_dir / "vision" / "evidence" / "R1" / "H1.jpg"
    crop.parent.mkdir(parents=True)
    crop.write_bytes(b"\xff\xd8jpeg")
    (tmp_path / "outside.txt").write_text("secret")
    (store.cache_dir / "vision" / "link.txt").symlink_to(tmp_path / "outside.txt")
    for hid, crops in (("H1", ["vision/evidence/R1/H1.jpg"]), ("H2", ["../outside.txt"]), ("H3", ["/etc/passwd"]),
                       ("H4", ["vision/link.txt"])):
        store.execute("INSERT INTO hazards (hazard_id, site_code, rule, severity, message, evidence) "
                      "VALUES (?, 'X', 'no_hard_hat', 'high', 'm', ?)", [hid, json.dumps({"crops": crops})])
    assert evidence_path(store, "H1", 0) == crop.resolve()
    assert evidence_path(store, "H2", 0) is None and evidence_path(store, "H3", 0) is None
    assert evidence_path(store, "H1", 1) is None and evidence_path(store, "H9", 0) is None
    # a link inside the cache that leads out of it is refused as well
    assert evidence_path(store, "H4", 0) is None


def test_detector_weights_lists_only_files_that_exist(store, tmp_path):
    from dashboards.queries import detector_weights

    real = tmp_path / "best.onnx"
    real.write_bytes(b"onnx")
    for run, path in (("R1", real), ("R2", tmp_path / "gone.pt")):
        store.execute("INSERT INTO vision_runs (run_id, kind, weights_path, started_at, finished_at, status) "
                      "VALUES (?, 'train', ?, now(), now(), 'done')", [run, str(path)])
    assert [w["run_id"] for w in detector_weights(store)] == ["R1"]
