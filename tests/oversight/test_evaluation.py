"""Evaluation: the scheme as data, item rules, grades, stored results, HTML and PDF reports, premium."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import yaml

from sitetwin.oversight.errors import AccessDenied, SchemeError
from sitetwin.oversight.evaluation import (
    evaluate,
    list_evaluations,
    load_scheme,
    report_html,
    report_pdf,
    score_item,
    site_metrics,
)
from sitetwin.oversight.findings import raise_finding, submit_rectification, verify_close
from sitetwin.oversight.scope import Scope
from sitetwin.sensors.registry import add_device

SYSTEM = Scope.system()
DAY = dt.date(2024, 6, 30)


def test_the_provincial_scheme_has_80_basic_and_70_promotion_points():
    s = load_scheme("provincial")
    points = {sec: sum(i["points"] for i in s["items"] if i["section"] == sec) for sec in s["sections"]}
    assert points == {"basic": 80, "promotion": 70}
    assert [g["grade"] for g in s["grades"]] == ["excellent", "good", "pass", "fail"]


@pytest.mark.parametrize("rule, value, points", [
    ({"type": "boolean"}, True, 10.0), ({"type": "boolean"}, False, 0.0), ({"type": "boolean"}, None, 0.0),
    ({"type": "ladder", "steps": [[0.5, 3], [0.9, 10]]}, 0.7, 3.0),
    ({"type": "ladder", "steps": [[0.5, 3], [0.9, 10]]}, 0.95, 10.0),
    ({"type": "ladder", "steps": [[0.5, 3], [0.9, 10]]}, 0.2, 0.0),
    ({"type": "ladder", "direction": "down", "steps": [[3, 3], [1, 6], [0, 10]]}, 2, 3.0),
    ({"type": "ladder", "direction": "down", "steps": [[3, 3], [1, 6], [0, 10]]}, 0, 10.0),
    ({"type": "linear", "zero": 0.5, "full": 1.0}, 0.75, 5.0),
    ({"type": "linear", "zero": 10, "full": 1}, 3.25, 7.5),          # lower is better
    ({"type": "linear", "zero": 0.5, "full": 1.0}, 2.0, 10.0),
])
def test_item_rules_turn_a_metric_into_points(rule, value, points):
    assert score_item({"points": 10, "rule": rule}, value)[0] == pytest.approx(points)


def test_a_scheme_from_a_file_is_checked_key_by_key(tmp_path):
    good = {"id": "tiny", "version": "1", "title": "Tiny scheme", "sections": {"basic": {"max_points": 10}},
            "items": [{"id": "A", "section": "basic", "points": 10, "metric": "model_loaded", "title": "model",
                       "rule": {"type": "boolean"}}],
            "grades": [{"grade": "pass", "min_total": 5}, {"grade": "fail", "min_total": 0}]}
    (tmp_path / "tiny.json").write_text(json.dumps(good))
    assert load_scheme(tmp_path / "tiny.json")["id"] == "tiny"
    bad_cases = [
        ({"metric": "vibes"}, "item A.metric must be one of"),
        ({"points": 5}, "items adding up to its max_points 10"),
        ({"rule": {"type": "ladder", "steps": [[1, 20]]}}, "points at most 10"),
        ({"section": "bonus"}, "item A.section must be one of basic"),
    ]
    for change, message in bad_cases:
        bad = json.loads(json.dumps(good))
        bad["items"][0].update(change)
        (tmp_path / "bad.yaml").write_text(yaml.safe_dump(bad))
        with pytest.raises(SchemeError, match=message):
            load_scheme(tmp_path / "bad.yaml")
    with pytest.raises(SchemeError, match="no evaluation scheme 'national'"):
        load_scheme("national")


def test_metrics_come_from_the_stores_tables(sites_store, feed):
    s = sites_store
    f1 = raise_finding(s, site_code="WH-JA-1", category="safety", severity="high", title="a",
                       at=dt.datetime(2024, 6, 1))
    submit_rectification(s, f1, scope=SYSTEM, note="ok", evidence={"p": 1}, at=dt.datetime(2024, 6, 5))  # due 06-08
    verify_close(s, f1, scope=SYSTEM, at=dt.datetime(2024, 6, 6))
    raise_finding(s, site_code="WH-JA-1", category="safety", severity="critical", title="b", at=dt.datetime(2024, 6, 1))
    june = dt.datetime(2024, 6, 1)
    add_device(s, "C1", site_code="WH-JA-1", device_type="crane", interval_s=10, now=june, position_m=(0, 0, 0),
               config={"geometry": {"jib_height_m": 40.0, "jib_length_m": 50.0, "counter_jib_m": 12.0}})
    add_device(s, "N1", site_code="WH-JA-1", device_type="noise", interval_s=60, now=june)
    add_device(s, "N2", site_code="WH-JA-1", device_type="dust", interval_s=60, now=june)
    add_device(s, "g", site_code="WH-JA-1", device_type="gate", interval_s=86400, now=june)
    feed(s, "N1", readings=[(dt.datetime(2024, 6, 30, 10), "noise_dba", 62.0)])      # N1 reported, N2 did not
    feed(s, "g", events=[(dt.datetime(2024, 6, 28, 7), w, "in", trained)
                         for w, trained in (("w1", True), ("w2", True), ("w3", False), ("w4", True))])
    m = site_metrics(s, "WH-JA-1", as_of=DAY)
    assert m["closed_share_90d"] == pytest.approx(0.5) and m["on_time_share_90d"] == 1.0 and m["overdue_open"] == 1
    assert m["lifting_monitoring"] is True and m["environment_reporting_share"] == pytest.approx(0.5)
    assert m["trained_share_30d"] == pytest.approx(0.75) and m["attendance_days_30d"] == 1
    assert m["model_loaded"] is False and m["survey_age_days"] is None and 0 <= m["risk_score"] <= 100


def test_evaluating_a_site_scores_grades_stores_and_prices_it(sites_store, scopes):
    ev = evaluate(sites_store, scopes["district_regulator"], "WH-JA-1", as_of=DAY)
    assert len(ev.items) == 17 and ev.max_points == {"basic": 80, "promotion": 70}
    assert ev.total_points == pytest.approx(sum(i.points for i in ev.items))
    b9 = next(i for i in ev.items if i.id == "B9")
    assert (b9.value, b9.points) == (0, 8.0)              # no overdue findings
    assert ev.grade == "fail" and ev.basic_points < 48
    assert ev.premium_factor == pytest.approx(1 + 0.25 * (ev.risk_score - 50) / 50, abs=1e-3)
    stored = list_evaluations(sites_store, scopes["contractor"], site_code="WH-JA-1")
    assert len(stored) == 1 and stored[0]["grade"] == "fail" and stored[0]["total_points"] == ev.total_points


def test_only_regulators_record_evaluations_but_everyone_in_scope_may_preview(sites_store, scopes, snapshot):
    before = snapshot(sites_store)
    with pytest.raises(AccessDenied, match="may not evaluate"):
        evaluate(sites_store, scopes["contractor"], "WH-JA-1", as_of=DAY)
    assert evaluate(sites_store, scopes["contractor"], "WH-JA-1", as_of=DAY, record=False).grade == "fail"
    with pytest.raises(AccessDenied):
        evaluate(sites_store, scopes["contractor"], "WH-WC-1", as_of=DAY, record=False)
    assert snapshot(sites_store) == before


def test_reports_show_grade_items_risk_breakdown_and_premium_formula(sites_store, tmp_path):
    ev = evaluate(sites_store, SYSTEM, "WH-JA-1", as_of=DAY, record=False)
    page = report_html(ev, site_name="site <WH-JA-1>")
    assert "site &lt;WH-JA-1&gt;" in page and "<script" not in page
    assert page.count("<tr>") == 1 + 17 + 1 + 8          # header + items, header + risk components
    assert ev.premium_formula in page and ev.risk.formula() in page
    pdf = report_pdf(ev, tmp_path / "r.pdf")
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF") and data.count(b"/Type /Page") - data.count(b"/Type /Pages") == 2
