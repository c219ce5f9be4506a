"""The risk score: each component's figure from the other packages' tables, the total, tiers, trend."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from sitetwin.bim.schedule import Schedule, Task
from sitetwin.bim.schedule_store import store_schedule
from sitetwin.oversight.errors import AccessDenied, SchemeError
from sitetwin.oversight.findings import raise_finding, submit_rectification, verify_close
from sitetwin.oversight.risk import (
    compute_risk,
    inspection_plan,
    load_config,
    premium_factor,
    record_risk,
    risk_trend,
    score_components,
    set_tier,
    tier_for,
)
from sitetwin.oversight.scope import Scope
from sitetwin.sensors.registry import add_device
from sitetwin.sensors.warnings import record_warning
from sitetwin.twin.survey_store import insert_rows
from sitetwin.vision.detection_store import insert_detections, insert_hazards

SYSTEM = Scope.system()
DAY = dt.date(2024, 6, 30)
SITE = "WH-JA-1"


def components(score):
    return {c.name: c for c in score.components}


def add_attendance(store, feed, workers: int, days: int, hours: float, trained: bool = True):
    if not store.scalar("SELECT count(*) FROM devices WHERE device_id = 'gate-1'"):
        add_device(store, "gate-1", site_code=SITE, device_type="gate", interval_s=86400)
    events = []
    for d in range(days):
        day = dt.datetime(2024, 6, 20 + d, 8, 0)
        for w in range(workers):
            for event, at in (("in", day), ("out", day + dt.timedelta(hours=hours))):
                events.append((at, f"w{w}", event, trained))
    feed(store, "gate-1", events=events, trade="rebar", employer="ACME")


def add_hazards(store, n: int, day0=dt.datetime(2024, 6, 21, 10)):
    insert_hazards(store, [{"hazard_id": f"H{i:015d}", "site_code": SITE, "rule": "no_hard_hat", "severity": "high",
                            "message": "no hard hat", "started_at": day0 + dt.timedelta(days=i)} for i in range(n)])


def add_detections(store, days: int):
    insert_detections(store, [{"detection_id": f"D{d:015d}", "site_code": SITE, "source_kind": "camera",
                               "source_ref": "cam-1", "captured_at": dt.datetime(2024, 6, 21 + d, 9),
                               "class_name": "person", "confidence": 0.9, "x1": 0, "y1": 0, "x2": 10, "y2": 10}
                              for d in range(days)])


def add_survey(store, statuses: dict[str, int], epoch=dt.date(2024, 6, 25), survey_id="S1", partial_failed=0):
    insert_rows(store, "surveys", [{"survey_id": survey_id, "site_code": SITE, "model_ids": "[]", "epoch": epoch,
                                    "registration_method": "transform", "T_model_from_survey": "[]",
                                    "point_count": 1000, "status": "analysed"}])
    gids = [f"g{i:021d}" for i in range(sum(statuses.values()))]
    status_of = [status for status, n in statuses.items() for _ in range(n)]
    insert_rows(store, "element_deviation", [{"site_code": SITE, "survey_id": survey_id, "model_id": "m1",
                                              "global_id": g, "points": 100, "status": s,
                                              "checks": '[{"check": "position", "value_mm": 24.9, "limit_mm": 10}]'
                                              if s == "partial" and status_of[:i].count("partial") < partial_failed
                                              else None}
                                             for i, (g, s) in enumerate(zip(gids, status_of))])


def test_a_site_with_no_data_still_gets_a_score_that_says_no_data(sites_store):
    r = compute_risk(sites_store, SYSTEM, SITE, as_of=DAY)
    c = components(r)
    assert [n for n, x in c.items() if x.no_data] == ["hazards", "deviation", "progress", "sensors",
                                                      "dangerous_works", "training"]
    assert all(c[n].subscore == 50.0 and c[n].basis.startswith("no data")
               for n in ("hazards", "sensors", "dangerous_works", "training"))
    assert c["findings"].subscore == 0.0
    assert c["data"].raw == 1.0 and c["data"].subscore == 100.0          # nothing ever reported
    # 0.25*0 + 0.17*50 + 0.12*50 + 0.08*50 + 0.08*100 + 0.12*50 + 0.12*50 + 0.06*50
    assert r.score == pytest.approx(41.5) and r.tier == "B" and r.inspect_every_days == 28
    assert r.formula().endswith("= 41.5") and r.formula_version == "risk-2"


def test_open_findings_weigh_by_severity_overdue_twice_and_awaiting_verification_half(sites_store):
    raise_finding(sites_store, site_code=SITE, category="safety", severity="critical", title="edge",
                  at=dt.datetime(2024, 6, 1))                                       # due 06-03: overdue on 06-30
    sub = raise_finding(sites_store, site_code=SITE, category="quality", severity="high", title="col",
                        at=dt.datetime(2024, 6, 28))
    submit_rectification(sites_store, sub, scope=SYSTEM, note="done", evidence={"photos": ["p"]},
                         at=dt.datetime(2024, 6, 29))
    closed = raise_finding(sites_store, site_code=SITE, category="quality", severity="critical", title="old",
                           at=dt.datetime(2024, 6, 1))
    submit_rectification(sites_store, closed, scope=SYSTEM, note="ok", evidence={"photos": ["p"]},
                         at=dt.datetime(2024, 6, 2))
    verify_close(sites_store, closed, scope=SYSTEM, at=dt.datetime(2024, 6, 3))
    f = components(compute_risk(sites_store, SYSTEM, SITE, as_of=DAY))["findings"]
    assert f.raw == pytest.approx(20 * 2 + 8 * 0.5)           # 44 weighted open findings
    assert f.subscore == pytest.approx(100 * 44 / 60, abs=0.01)
    assert f.detail["overdue_by_severity"]["critical"] == 1
    # on 2024-06-01 the closed one was still open and neither was overdue yet
    early = components(compute_risk(sites_store, SYSTEM, SITE, as_of="2024-06-01"))["findings"]
    assert early.raw == pytest.approx(20 + 20)
    awaiting = components(compute_risk(sites_store, SYSTEM, SITE, as_of="2024-06-02"))["findings"]
    assert awaiting.raw == pytest.approx(20 + 20 * 0.5)


def test_hazards_are_counted_per_thousand_worker_hours_from_attendance(sites_store, feed):
    add_attendance(sites_store, feed, workers=10, days=5, hours=8)      # 400 worker-hours
    add_hazards(sites_store, 2)
    h = components(compute_risk(sites_store, SYSTEM, SITE, as_of=DAY))["hazards"]
    assert h.raw == pytest.approx(5.0) and h.unit == "hazards per 1000 worker-hours"
    assert h.detail == {"hazards": 2, "worker_hours": 400.0, "workers": 10}
    assert h.subscore == pytest.approx(50.0)


def test_without_attendance_hazards_are_counted_per_day_with_detections(sites_store):
    add_detections(sites_store, days=4)
    add_hazards(sites_store, 2)
    h = components(compute_risk(sites_store, SYSTEM, SITE, as_of=DAY))["hazards"]
    assert h.raw == pytest.approx(0.5) and h.unit == "hazards per observed day"
    assert h.subscore == pytest.approx(100 * 0.5 / 5.0)


def test_deviation_is_the_out_of_tolerance_share_of_the_latest_survey_up_to_the_day(sites_store):
    add_survey(sites_store, {"built": 15, "partial": 3, "out_of_tolerance": 2, "not_built": 7})
    add_survey(sites_store, {"built": 19, "out_of_tolerance": 1}, epoch=dt.date(2024, 7, 15), survey_id="S2")
    d = components(compute_risk(sites_store, SYSTEM, SITE, as_of=DAY))["deviation"]
    assert d.raw == pytest.approx(2 / 20) and d.subscore == pytest.approx(100.0) and d.detail["survey_id"] == "S1"
    later = components(compute_risk(sites_store, SYSTEM, SITE, as_of="2024-07-20"))["deviation"]
    assert later.raw == pytest.approx(1 / 20) and later.subscore == pytest.approx(50.0)


def test_a_partial_element_failing_what_was_seen_of_it_counts_as_out_of_tolerance(sites_store):
    add_survey(sites_store, {"built": 15, "partial": 3, "out_of_tolerance": 2}, partial_failed=1)
    d = components(compute_risk(sites_store, SYSTEM, SITE, as_of=DAY))["deviation"]
    assert d.raw == pytest.approx(3 / 20)
    assert d.detail["out_of_tolerance"] == 3 and d.detail["partial_out_of_tolerance"] == 1


def test_progress_is_the_share_of_due_elements_not_seen_built(sites_store):
    add_survey(sites_store, {"built": 3, "not_built": 1})
    tasks = (Task("T1", None, None, dt.datetime(2024, 6, 10)), Task("T2", None, None, dt.datetime(2024, 8, 1)))
    # T1's four elements were due; the survey saw g0..g2 built, g3 not
    links = tuple(("T1", f"g{i:021d}") for i in range(4)) + (("T2", "later0000000000000000"),)
    store_schedule(sites_store, SITE, Schedule("P1", None, "csv", tasks, links))
    p = components(compute_risk(sites_store, SYSTEM, SITE, as_of=DAY))["progress"]
    assert p.raw == pytest.approx(0.25) and p.detail["due"] == 4 and p.detail["behind"] == 1
    assert p.detail["max_delay_days"] == 20 and p.detail["detector_observations"] is False
    assert p.subscore == pytest.approx(100 * 0.25 / 0.30, abs=0.01)


def test_sensor_warnings_weigh_by_severity_and_a_site_without_sensors_has_no_data(sites_store):
    add_device(sites_store, "D-1", site_code=SITE, device_type="dust", interval_s=60, now=dt.datetime(2024, 6, 1))
    for i, sev in enumerate(["high", "high", "low", "medium"]):
        record_warning(sites_store, "D-1", kind="pm10_15min", severity=sev, started_at=dt.datetime(2024, 6, 20 + i),
                       message="dust", now=dt.datetime(2024, 6, 20))
    s = components(compute_risk(sites_store, SYSTEM, SITE, as_of=DAY))["sensors"]
    assert s.raw == 4 + 4 + 1 + 2 and s.subscore == pytest.approx(100 * 11 / 40)
    assert components(compute_risk(sites_store, SYSTEM, "WH-JA-2", as_of=DAY))["sensors"].no_data


def test_a_reporting_site_scores_lower_on_data_than_a_silent_one(sites_store):
    add_detections(sites_store, days=5)
    add_survey(sites_store, {"built": 5})
    data = components(compute_risk(sites_store, SYSTEM, SITE, as_of=DAY))["data"]
    assert data.detail["sources"]["detections"] and data.detail["sources"]["survey"]
    # 4 of 6 sources missing; last data 2024-06-25 09:00, 5.625 days before the end of 06-30
    assert data.raw == pytest.approx(0.5 * (4 / 6) + 0.5 * (5.625 / 14), abs=1e-3)
    silent = components(compute_risk(sites_store, SYSTEM, "WH-JA-2", as_of=DAY))["data"]
    assert silent.raw == 1.0 and silent.subscore > data.subscore


def test_tiers_follow_the_score_and_a_regulators_decision_overrides_until_it_expires(sites_store, scopes):
    assert [tier_for(s) for s in (0, 29.9, 30, 54.9, 55, 100)] == ["A", "A", "B", "B", "C", "C"]
    for role in ("contractor", "viewer"):
        with pytest.raises(AccessDenied, match="may not set tier"):
            set_tier(sites_store, scopes[role], SITE, "A", "looks fine")
    today = dt.datetime.now(dt.UTC).date()
    set_tier(sites_store, scopes["district_regulator"], SITE, "C", "repeated edge-protection failures",
             valid_until=today + dt.timedelta(days=14))
    r = compute_risk(sites_store, SYSTEM, SITE, as_of=today)
    assert (r.computed_tier, r.tier, r.tier_source, r.inspect_every_days) == ("B", "C", "decision", 7)
    assert compute_risk(sites_store, SYSTEM, SITE, as_of=today + dt.timedelta(days=15)).tier == "B"
    assert compute_risk(sites_store, SYSTEM, SITE, as_of=today - dt.timedelta(days=1)).tier == "B"   # not yet decided
    with pytest.raises(AccessDenied):
        set_tier(sites_store, scopes["district_regulator"], "WH-WC-1", "A", "not my district")


def test_recorded_scores_form_the_trend_and_a_second_run_the_same_day_replaces_it(sites_store, scopes):
    raise_finding(sites_store, site_code=SITE, category="safety", severity="critical", title="x",
                  at=dt.datetime(2024, 6, 1))
    for day in ("2024-06-02", "2024-06-09", "2024-06-16"):
        record_risk(sites_store, scopes["district_regulator"], as_of=day)
    record_risk(sites_store, scopes["district_regulator"], [SITE], as_of="2024-06-16")
    trend = risk_trend(sites_store, scopes["contractor"], SITE)
    assert [str(t["as_of"]) for t in trend] == ["2024-06-02", "2024-06-09", "2024-06-16"]
    assert trend[0]["subscores"]["findings"] < trend[1]["subscores"]["findings"]      # became overdue
    assert sites_store.scalar("SELECT count(*) FROM risk_scores WHERE site_code = 'WH-WC-1'") == 0   # not in district
    with pytest.raises(AccessDenied):
        record_risk(sites_store, scopes["contractor"], [SITE])


def test_the_inspection_plan_comes_from_the_tier_and_the_last_inspection(sites_store):
    raise_finding(sites_store, site_code=SITE, category="safety", severity="low", title="x", source="inspection",
                  at=dt.datetime(2024, 6, 1))
    record_risk(sites_store, SYSTEM, as_of=DAY)
    plan = {p["site_code"]: p for p in inspection_plan(sites_store, SYSTEM, as_of=DAY)}
    assert plan[SITE]["tier"] == "B" and plan[SITE]["last_inspection"] == dt.date(2024, 6, 1)
    assert plan[SITE]["next_due"] == dt.date(2024, 6, 29) and plan[SITE]["overdue_days"] == 1
    assert plan["WH-JA-2"]["last_inspection"] is None and plan["WH-JA-2"]["next_due"] == DAY


def test_the_premium_factor_follows_its_formula():
    assert premium_factor(50.0)[0] == 1.0
    assert premium_factor(0.0)[0] == 0.75 and premium_factor(100.0)[0] == 1.25
    factor, text = premium_factor(70.0)
    assert factor == pytest.approx(1.1) and text.endswith("= 1.100") and "clamp(1 + 0.25" in text


def test_the_score_is_the_weighted_sum_of_subscores():
    figures = {n: {"raw": r, "unit": "u", "basis": "b"} for n, r in
               {"findings": 30.0, "hazards": 20.0, "deviation": None, "progress": 0.15, "data": 0.5,
                "sensors": 10.0, "dangerous_works": 5.0, "training": 0.05}.items()}
    total, comps = score_components(figures)
    sub = {c.name: c.subscore for c in comps}
    assert sub == {"findings": 50.0, "hazards": 100.0, "deviation": 50.0, "progress": 50.0, "data": 50.0,
                   "sensors": 25.0, "dangerous_works": 25.0, "training": 20.0}
    assert total == pytest.approx(0.25 * 50 + 0.17 * 100 + 0.12 * 50 + 0.08 * 50 + 0.08 * 50 + 0.12 * 25
                                  + 0.12 * 25 + 0.06 * 20)


@pytest.mark.parametrize("edit, message", [
    (("weight: 0.25", "weight: 0.50"), "weights summing to 1"),
    (("active_dangerous: 1 ", "active_dangerous: -1 "), "item_weights"),
    (("window_days: 30", "window_days: -3"), "window_days must be a positive integer"),
    (("  C: {below: 100.01", "  C: {below: 50"), "increasing numbers"),
    (("floor: 0.75", "floor: 1.5"), "floor <= 1 <= ceiling"),
])
def test_a_wrong_risk_configuration_is_refused_by_key(tmp_path, edit, message):
    from importlib import resources

    text = resources.files("sitetwin.oversight").joinpath("config/risk.yaml").read_text()
    assert edit[0] in text
    path = Path(tmp_path / "risk.yaml")
    path.write_text(text.replace(edit[0], edit[1], 1))
    with pytest.raises(SchemeError, match=message):
        load_config(path)


def test_dangerous_works_weigh_overdue_approvals_most_then_active_beyond_scale_works(sites_store):
    from sitetwin.oversight.dangerous_works import add_work

    def work(code, scale="dangerous", **kw):
        add_work(sites_store, SYSTEM, SITE, code=code, work_type="scaffolding", scale=scale, title=code,
                 responsible="Li", **kw)
    assert components(compute_risk(sites_store, SYSTEM, SITE, as_of=DAY))["dangerous_works"].no_data
    work("late", planned_start="2024-06-20", planned_end="2024-08-01")                      # not approved by 06-30
    work("big", "beyond_scale", planned_start="2024-06-01", planned_end="2024-09-01", review_state="passed",
         review_on="2024-05-30", plan_approved_on="2024-05-31", plan_approved_by="Zhang", actual_start="2024-06-02")
    work("small", planned_start="2024-06-10", planned_end="2024-07-10", plan_approved_on="2024-06-10",
         plan_approved_by="Zhang", actual_start="2024-06-11")
    work("done", planned_start="2024-06-01", planned_end="2024-06-15", plan_approved_on="2024-06-01",
         plan_approved_by="Zhang", actual_start="2024-06-02", actual_end="2024-06-15")
    d = components(compute_risk(sites_store, SYSTEM, SITE, as_of=DAY))["dangerous_works"]
    assert d.raw == pytest.approx(10 + 3 + 1) and d.subscore == pytest.approx(100 * 14 / 20)
    assert (d.detail["overdue"], d.detail["finished"], d.detail["works"]) == (1, 1, 4)
    # on 06-14 nothing was overdue yet and 'done' was still under way
    early = components(compute_risk(sites_store, SYSTEM, SITE, as_of="2024-06-14"))["dangerous_works"]
    assert early.raw == pytest.approx(3 + 1 + 1) and early.detail["overdue"] == 0


def test_training_is_the_share_of_workers_on_site_without_valid_training(sites_store, feed, tmp_path):
    from sitetwin.sensors.training import import_file

    add_attendance(sites_store, feed, workers=5, days=2, hours=8, trained=False)
    assert components(compute_risk(sites_store, SYSTEM, SITE, as_of=DAY))["training"].basis == \
        "no data: no training records"                          # the gates' flags alone are not training records
    path = tmp_path / "training.csv"
    path.write_text("site_code,worker_id,course,course_type,completed_on,hours,score,valid_until\n" + "".join(
        f"{SITE},w{w},Three-level education,three_level,2024-06-01,24,85,2025-05-31\n" for w in range(4)))
    import_file(sites_store, path)
    t = components(compute_risk(sites_store, SYSTEM, SITE, as_of=DAY))["training"]
    assert t.raw == pytest.approx(0.2) and t.subscore == pytest.approx(80.0)
    assert (t.detail["workers_on_site"], t.detail["trained_valid"]) == (5, 4)
    assert components(compute_risk(sites_store, SYSTEM, "WH-JA-2", as_of=DAY))["training"].basis == \
        "no data: nobody on site in the window"
