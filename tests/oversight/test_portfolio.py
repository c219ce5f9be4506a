"""The portfolio: per-site figures and rollups per district and city, within the caller's scope."""

from __future__ import annotations

import datetime as dt

import pytest

from sitetwin.oversight.errors import AccessDenied, OversightError
from sitetwin.oversight.findings import raise_finding, submit_rectification, verify_close
from sitetwin.oversight.portfolio import portfolio_sites, rollup, set_site_profile, site_portrait
from sitetwin.oversight.risk import record_risk
from sitetwin.oversight.scope import Scope
from sitetwin.vision.detection_store import insert_detections, insert_hazards

SYSTEM = Scope.system()
DAY = dt.date(2024, 6, 30)


@pytest.fixture
def portfolio_store(sites_store):
    s = sites_store
    # WH-JA-1: 2 critical open (1 overdue); WH-JA-2: 1 closed within the window; WH-WC-1: 3 low open
    raise_finding(s, site_code="WH-JA-1", category="safety", severity="critical", title="a", at=dt.datetime(2024, 6, 1))
    raise_finding(s, site_code="WH-JA-1", category="safety", severity="critical", title="b",
                  at=dt.datetime(2024, 6, 29))
    closed = raise_finding(s, site_code="WH-JA-2", category="quality", severity="high", title="c",
                           at=dt.datetime(2024, 6, 10))
    submit_rectification(s, closed, scope=SYSTEM, note="ok", evidence={"photos": ["p"]}, at=dt.datetime(2024, 6, 12))
    verify_close(s, closed, scope=SYSTEM, at=dt.datetime(2024, 6, 14))
    for i in range(3):
        raise_finding(s, site_code="WH-WC-1", category="environment", severity="low", title=f"d{i}",
                      at=dt.datetime(2024, 6, 20))
    person = {"site_code": "WH-WC-1", "source_kind": "camera", "source_ref": "c", "class_name": "person",
              "confidence": 0.8, "x1": 0, "y1": 0, "x2": 1, "y2": 1}
    recent = [{**person, "detection_id": f"D{i:015d}", "captured_at": dt.datetime(2024, 6, 25, 9, i)} for i in range(5)]
    insert_detections(s, recent + [{**person, "detection_id": "Dold", "captured_at": dt.datetime(2024, 4, 1)}])
    insert_hazards(s, [{"hazard_id": "H1", "site_code": "WH-JA-1", "rule": "unprotected_edge", "severity": "critical",
                        "message": "edge", "started_at": dt.datetime(2024, 6, 28, 10)}])
    record_risk(s, SYSTEM, as_of=DAY)
    return s


def test_each_site_shows_its_findings_detections_hazards_and_risk(portfolio_store):
    rows = {r["site_code"]: r for r in portfolio_sites(portfolio_store, SYSTEM, as_of=DAY)}
    ja1, ja2, wc1 = rows["WH-JA-1"], rows["WH-JA-2"], rows["WH-WC-1"]
    assert (ja1["open_findings"], ja1["overdue_findings"], ja1["open_critical"], ja1["hazards"]) == (2, 1, 2, 1)
    assert (ja2["open_findings"], ja2["closed_in_window"], ja2["mean_days_to_close"]) == (0, 1, pytest.approx(4.0))
    assert (wc1["open_findings"], wc1["detections"]) == (3, 5)          # the April detection is outside the window
    assert ja1["risk_score"] > wc1["risk_score"] > 0 and ja1["tier"] in ("B", "C")
    assert rows["WH-WC-2"]["open_findings"] == 0 and rows["WH-WC-2"]["tier"] == "B"


def test_rollups_per_district_and_city_add_up_the_sites(portfolio_store):
    by_district = {r["district"]: r for r in rollup(portfolio_store, SYSTEM, as_of=DAY)}
    assert by_district["Jiang'an"]["sites"] == 2 and by_district["Jiang'an"]["open_findings"] == 2
    assert by_district["Jiang'an"]["closed_in_window"] == 1 and by_district["Jiang'an"]["hazards"] == 1
    assert by_district["Wuchang"]["open_findings"] == 3 and by_district["Wuchang"]["detections"] == 5
    city = rollup(portfolio_store, SYSTEM, by="city", as_of=DAY)
    assert len(city) == 1 and city[0]["sites"] == 4 and city[0]["open_findings"] == 5
    assert city[0]["tier_a"] + city[0]["tier_b"] + city[0]["tier_c"] + city[0]["unscored"] == 4
    scores = [r["risk_score"] for r in portfolio_sites(portfolio_store, SYSTEM, as_of=DAY)]
    assert city[0]["mean_risk"] == pytest.approx(sum(scores) / 4, abs=0.01)


def test_the_portfolio_shows_only_the_callers_sites(portfolio_store, scopes):
    assert [r["site_code"] for r in portfolio_sites(portfolio_store, scopes["district_regulator"], as_of=DAY)] == [
        "WH-JA-1", "WH-JA-2"]
    assert [r["site_code"] for r in portfolio_sites(portfolio_store, scopes["contractor"], as_of=DAY)] == ["WH-JA-1"]
    assert [r["district"] for r in rollup(portfolio_store, scopes["viewer"], as_of=DAY)] == ["Jiang'an"]
    assert rollup(portfolio_store, scopes["viewer"], as_of=DAY)[0]["sites"] == 1


def test_filters_and_bad_groupings(portfolio_store):
    assert [r["site_code"] for r in portfolio_sites(portfolio_store, SYSTEM, district="Wuchang", as_of=DAY)] == [
        "WH-WC-1", "WH-WC-2"]
    with pytest.raises(OversightError, match="roll up by 'province'"):
        rollup(portfolio_store, SYSTEM, by="province")


def test_site_profiles_are_set_by_regulators_and_shown_in_the_portfolio(portfolio_store, scopes, snapshot):
    set_site_profile(portfolio_store, scopes["district_regulator"], "WH-JA-1", project="Riverside",
                     contractor="Changjiang Build", latitude=30.6, longitude=114.3)
    row = portfolio_sites(portfolio_store, SYSTEM, as_of=DAY)[0]
    assert (row["project"], row["contractor"], row["latitude"]) == ("Riverside", "Changjiang Build", 30.6)
    before = snapshot(portfolio_store)
    with pytest.raises(AccessDenied):
        set_site_profile(portfolio_store, scopes["contractor"], "WH-JA-1", contractor="me")
    with pytest.raises(OversightError, match="latitude 123"):
        set_site_profile(portfolio_store, SYSTEM, "WH-JA-1", latitude=123)
    with pytest.raises(OversightError, match="no field owner"):
        set_site_profile(portfolio_store, SYSTEM, "WH-JA-1", owner="x")
    assert snapshot(portfolio_store) == before


def test_the_site_portrait_gathers_risk_trend_findings_and_catalogue(portfolio_store, scopes):
    p = site_portrait(portfolio_store, scopes["contractor"], "WH-JA-1", as_of=DAY)
    assert p["site"]["site_code"] == "WH-JA-1" and p["findings"]["by_status"] == {"open": 2}
    assert p["findings"]["overdue"] == 1 and len(p["trend"]) == 1 and p["risk"].score == p["trend"][0]["score"]
    assert p["data_quality"]["site_code"] == "WH-JA-1"
    with pytest.raises(AccessDenied):
        site_portrait(portfolio_store, scopes["contractor"], "WH-JA-2")
