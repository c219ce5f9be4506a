"""The portfolio rolled up per enterprise: risk, findings, dangerous works and training coverage of the
sites each construction enterprise builds."""

from __future__ import annotations

import datetime as dt

import pytest

from sitetwin.data.enterprises import credit_check_char, set_site_enterprise, upsert_enterprise
from sitetwin.data.sites import upsert_site
from sitetwin.oversight.dangerous_works import add_work
from sitetwin.oversight.findings import raise_finding
from sitetwin.oversight.portfolio import rollup
from sitetwin.oversight.risk import record_risk
from sitetwin.oversight.scope import Scope
from sitetwin.sensors.registry import add_device
from sitetwin.sensors.training import import_file

SYSTEM = Scope.system()
DAY = dt.date(2026, 3, 20)
BUILDS = {"CSCEC3": ["WH-JA-1", "WH-WC-2", "XG-1"], "HBJG": ["WH-JA-2"]}


@pytest.fixture
def city(sites_store, feed, tmp_path):
    """Five sites, two enterprises (WH-WC-1 has none); findings, gate events on two CSCEC3 sites, training
    records on one of them, dangerous works, and risk scores recorded for DAY."""
    store = sites_store
    with store.transaction():
        upsert_site(store, "XG-1", name="孝感项目", district="Xiaonan", city="Xiaogan")
        upsert_enterprise(store, "CSCEC3", name="中建三局集团有限公司",
                          credit_code="91420000177572435" + credit_check_char("91420000177572435"))
        upsert_enterprise(store, "HBJG", name="湖北建工劳务有限公司", kind="labour_subcontractor",
                          credit_code="91420100MA4KL3N27" + credit_check_char("91420100MA4KL3N27"))
        for code, sites in BUILDS.items():
            for s in sites:
                set_site_enterprise(store, s, code)
        add_device(store, "GT-JA1", site_code="WH-JA-1", device_type="gate", interval_s=86400.0)
        add_device(store, "GT-XG1", site_code="XG-1", device_type="gate", interval_s=86400.0)
    for i, site in enumerate(["WH-JA-1", "WH-JA-1", "XG-1", "WH-JA-2", "WH-WC-1"]):
        raise_finding(store, site_code=site, category="safety", severity=("critical", "high")[i % 2],
                      title=f"finding {i}", at=dt.datetime(2026, 3, 10, 9))
    # four workers at WH-JA-1 on 18 March (Shanghai 08:00), three at XG-1
    at = dt.datetime(2026, 3, 18, 0)
    feed(store, "GT-JA1", events=[(at, f"W-{i}", "in", True) for i in range(4)])
    feed(store, "GT-XG1", events=[(at, f"X-{i}", "in", True) for i in range(3)])
    # WH-JA-1 keeps records: W-0 and W-1 valid, W-2 failed, W-3 none (its gate flag says trained)
    path = tmp_path / "training.csv"
    path.write_text("site_code,worker_id,course,course_type,completed_on,hours,score\n"
                    "WH-JA-1,W-0,三级安全教育,三级安全教育,2026-03-01,24,90\n"
                    "WH-JA-1,W-1,三级安全教育,三级安全教育,2026-03-01,24,75\n"
                    "WH-JA-1,W-2,三级安全教育,三级安全教育,2026-03-01,24,40\n", encoding="utf-8")
    import_file(store, path, today=DAY)
    add_work(store, SYSTEM, "WH-JA-1", code="DW-01", work_type="foundation_pit", title="基坑开挖",
             responsible="张工", planned_start="2026-03-05", planned_end="2026-05-01")       # overdue: no plan
    add_work(store, SYSTEM, "XG-1", code="DW-01", work_type="scaffolding", title="悬挑脚手架", responsible="李工",
             planned_start="2026-01-05", planned_end="2026-02-01", plan_approved_on="2026-01-02",
             plan_approved_by="总监", actual_start="2026-01-05", actual_end="2026-02-01")    # finished
    add_work(store, SYSTEM, "WH-JA-2", code="DW-01", work_type="lifting_installation", title="塔吊安装",
             responsible="王工", planned_start="2026-04-01", planned_end="2026-04-03")
    record_risk(store, SYSTEM, as_of=DAY)
    return store


def test_the_rollup_per_enterprise_sums_its_sites_findings_works_and_training(city):
    rows = {r["enterprise_code"]: r for r in rollup(city, SYSTEM, by="enterprise", as_of=DAY)}
    assert list(rows) == ["CSCEC3", "HBJG", None]                   # WH-WC-1 has no enterprise
    cscec = rows["CSCEC3"]
    assert cscec["name"] == "中建三局集团有限公司" and cscec["sites"] == 3 and cscec["site_codes"] == BUILDS["CSCEC3"]
    assert (cscec["open_findings"], cscec["open_critical"]) == (3, 2)
    assert (cscec["dangerous_works"], cscec["dangerous_works_overdue"]) == (1, 1)
    # 7 workers entered CSCEC3's sites; W-2 failed its exam: 6 trained, coverage over both sites
    assert (cscec["workers_on_site"], cscec["trained_valid"]) == (7, 6)
    assert cscec["training_coverage"] == pytest.approx(6 / 7, abs=1e-4)
    scores = {r["site_code"]: r["score"] for r in city.rows("SELECT site_code, score FROM risk_scores")}
    assert cscec["mean_risk"] == pytest.approx(sum(scores[s] for s in BUILDS["CSCEC3"]) / 3, abs=0.01)
    assert cscec["max_risk"] == pytest.approx(max(scores[s] for s in BUILDS["CSCEC3"]), abs=1e-9)
    hbjg = rows["HBJG"]
    assert (hbjg["sites"], hbjg["open_findings"], hbjg["dangerous_works"]) == (1, 1, 1)
    assert hbjg["training_coverage"] is None and hbjg["workers_on_site"] == 0    # no records, nobody at the gate


def test_an_enterprise_account_rolls_up_only_its_own_sites(city):
    scope = Scope.for_account("cscec3.hq", "enterprise", enterprise="CSCEC3")
    rows = rollup(city, scope, by="enterprise", as_of=DAY)
    assert [(r["enterprise_code"], r["sites"], r["open_findings"]) for r in rows] == [("CSCEC3", 3, 3)]


def test_the_city_lake_gives_the_same_rollup_per_enterprise_as_the_store(city, tmp_path):
    from sitetwin.data.lake import open_lake, publish

    publish(city, tmp_path / "lake")
    scope = Scope.for_account("cscec3.hq", "enterprise", enterprise="CSCEC3", sites=BUILDS["CSCEC3"])
    want = rollup(city, scope, by="enterprise", as_of=DAY)
    with open_lake(tmp_path / "lake", admit=scope.admits_site) as lake:
        got = rollup(lake, scope, by="enterprise", as_of=DAY)
    assert got == want and got[0]["training_coverage"] == pytest.approx(6 / 7, abs=1e-4)
