"""The dangerous-works register (危大工程): checked steps, imports that keep all or nothing, scope, the hazards
and findings it raises, and its travel in exchange packages and the city lake."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from sitetwin.bim.load import add_model_records
from sitetwin.data.clock import utcnow
from sitetwin.oversight.dangerous_works import (
    ZONE_RULE,
    WorksError,
    Zone,
    add_work,
    approve_plan,
    check_site,
    check_zones,
    finish_work,
    get_work,
    import_works,
    list_works,
    raise_overdue_findings,
    register_summary,
    review_work,
    start_work,
    work_history,
)
from sitetwin.oversight.errors import AccessDenied
from sitetwin.oversight.findings import get_finding
from sitetwin.oversight.scope import Scope
from sitetwin.vision.detection_store import insert_detections
from sitetwin.vision.queries import hazard, list_hazards

SYSTEM = Scope.system()
SITE = "WH-JA-1"
TODAY = utcnow().date()
PIT = {"polygon_m": [[0, 0], [40, 0], [40, 25], [0, 25]], "z_min_m": -10.0, "z_max_m": 2.0}
SLAB = "2O2Fr$t4X7Zf8NOew3FLOH"
TABLES = ("dangerous_works", "dangerous_work_events", "findings", "finding_events")


def days(n: int) -> dt.date:
    return TODAY + dt.timedelta(days=n)


@pytest.fixture
def works_store(sites_store):
    """The four-site store with a model on WH-JA-1 holding one slab (box 10..20 x 10..20 x 3..3.3 m)."""
    with sites_store.transaction():
        add_model_records(sites_store, [{"global_id": SLAB, "ifc_class": "IfcSlab", "storey": "Level 1",
                                         "bbox_min_x_m": 10.0, "bbox_min_y_m": 10.0, "bbox_min_z_m": 3.0,
                                         "bbox_max_x_m": 20.0, "bbox_max_y_m": 20.0, "bbox_max_z_m": 3.3}],
                          site_code=SITE, name="structure", model_id="m1", version=1, file_name="a.ifc")
    return sites_store


def rows(store, tables=TABLES):
    return {t: store.execute(f'SELECT * FROM "{t}" ORDER BY ALL') for t in tables}


def pit(store, scope=SYSTEM, *, code="DW-01", start=-10, **kw):
    fields = dict(code=code, work_type="基坑工程", scale="超过一定规模", title="Basement excavation 9.5 m deep",
                  responsible="Li Wei", planned_start=days(start), planned_end=days(start + 60), zone=PIT)
    fields.update(kw)
    return add_work(store, scope, SITE, **fields)


# --------------------------------------------------------------------------------------
# the steps

def test_a_beyond_scale_pit_is_registered_planned_with_its_expert_review_pending(works_store):
    w = get_work(works_store, SYSTEM, pit(works_store))
    assert (w.work_type, w.scale, w.review_state, w.state) == ("foundation_pit", "beyond_scale", "pending", "planned")
    assert w.zone == Zone(((0.0, 0.0), (40.0, 0.0), (40.0, 25.0), (0.0, 25.0)), -10.0, 2.0)
    assert w.overdue_days == 10 and w.needs_review


def test_a_beyond_scale_plan_is_approved_only_after_its_expert_review_passed(works_store):
    wid = pit(works_store)
    with pytest.raises(WorksError, match="approved only after its expert review passed"):
        approve_plan(works_store, SYSTEM, wid, by="Zhang Min", on=days(-5))
    assert review_work(works_store, SYSTEM, wid, passed=False, on=days(-8)).review_state == "failed"
    with pytest.raises(WorksError, match="review_state is failed"):
        approve_plan(works_store, SYSTEM, wid, by="Zhang Min", on=days(-5))
    review_work(works_store, SYSTEM, wid, passed=True, on=days(-6))
    with pytest.raises(WorksError, match="before the expert review"):
        approve_plan(works_store, SYSTEM, wid, by="Zhang Min", on=days(-7))
    approved = approve_plan(works_store, SYSTEM, wid, by="Zhang Min", on=days(-5))
    assert (approved.state, approved.plan_approved_on, approved.overdue_days) == ("approved", days(-5), 0)
    with pytest.raises(WorksError, match="already approved"):
        review_work(works_store, SYSTEM, wid, passed=True)
    assert start_work(works_store, SYSTEM, wid, on=days(-4)).state == "active"
    assert finish_work(works_store, SYSTEM, wid, on=days(-1)).state == "finished"
    history = work_history(works_store, SYSTEM, wid)
    assert [e["kind"] for e in history] == ["registered", "reviewed", "reviewed", "approved", "started", "finished"]
    assert [e["on_day"] for e in history][1:] == [days(-8), days(-6), days(-5), days(-4), days(-1)]


def test_works_cannot_start_before_approval_finish_before_starting_or_be_dated_in_the_future(works_store):
    wid = add_work(works_store, SYSTEM, SITE, code="SC-1", work_type="scaffolding", title="Cantilevered scaffold",
                   responsible="Wang Fang", planned_start=days(-3), planned_end=days(30))
    assert get_work(works_store, SYSTEM, wid).review_state == "not_required"
    with pytest.raises(WorksError, match="cannot start before their special plan is approved"):
        start_work(works_store, SYSTEM, wid, on=days(-1))
    with pytest.raises(WorksError, match="cannot finish before they started"):
        finish_work(works_store, SYSTEM, wid, on=days(-1))
    with pytest.raises(WorksError, match="an expert review is for works beyond a certain scale"):
        review_work(works_store, SYSTEM, wid, passed=True)
    with pytest.raises(WorksError, match="in the future"):
        approve_plan(works_store, SYSTEM, wid, by="Zhang Min", on=days(2))
    approve_plan(works_store, SYSTEM, wid, by="Zhang Min", on=days(-2))
    with pytest.raises(WorksError, match="before the plan's approval"):
        start_work(works_store, SYSTEM, wid, on=days(-3))
    assert get_work(works_store, SYSTEM, wid).state == "approved"


def test_a_record_may_arrive_with_its_steps_taken_and_each_is_checked(works_store):
    wid = pit(works_store, review_state="passed", review_on=days(-12), plan_approved_on=days(-11),
              plan_approved_by="Zhang Min", actual_start=days(-10))
    assert get_work(works_store, SYSTEM, wid).state == "active"
    with pytest.raises(WorksError, match="actual_start: works cannot start before their special plan is approved"):
        pit(works_store, code="DW-02", actual_start=days(-10))
    with pytest.raises(WorksError, match="already registered on site WH-JA-1"):
        pit(works_store)


# --------------------------------------------------------------------------------------
# imports

CSV_HEADER = ("code,work_type,scale,title,responsible,planned_start,planned_end,review_state,review_on,"
              "plan_approved_on,plan_approved_by,actual_start,global_ids,zone_polygon_m,zone_z_min_m,zone_z_max_m\n")


def csv_row(code="DW-01", work_type="foundation_pit", scale="beyond_scale", planned=(-10, 50), review=("", ""),
            approved=("", ""), started="", gids="", zone="0 0; 40 0; 40 25; 0 25", z=(-10, 2)):
    d = {k: (days(v).isoformat() if isinstance(v, int) else v) for k, v in
         dict(ps=planned[0], pe=planned[1], ro=review[1], pa=approved[0], st=started).items()}
    return (f"{code},{work_type},{scale},Works {code},Li Wei,{d['ps']},{d['pe']},{review[0]},{d['ro']},{d['pa']},"
            f"{approved[1]},{d['st']},{gids},{zone},{z[0]},{z[1]}\n")


def test_a_csv_register_is_imported_whole(works_store, tmp_path):
    path = tmp_path / "register.csv"
    path.write_text(CSV_HEADER + csv_row()
                    + csv_row("TC-1", "起重吊装及起重机械安装拆卸工程", "dangerous", (-20, 5),
                              approved=(-21, "Zhang Min"), started=-20, gids=SLAB, zone="", z=("", ""))
                    + csv_row("FW-3", "formwork_support", "超危", (5, 20), review=("passed", -1),
                              approved=(-1, "Zhang Min")), encoding="utf-8")
    report = import_works(works_store, SYSTEM, path, site_code=SITE)
    assert report["works"] == 3 and report["sites"] == [SITE]
    works = {w.code: w for w in list_works(works_store, SYSTEM, site_code=SITE)}
    assert {c: w.state for c, w in works.items()} == {"DW-01": "planned", "TC-1": "active", "FW-3": "approved"}
    assert works["TC-1"].work_type == "lifting_installation" and works["TC-1"].global_ids == (SLAB,)
    assert works["TC-1"].zone is None and works["DW-01"].zone.z_max_m == 2.0
    assert [w.code for w in list_works(works_store, SYSTEM, site_code=SITE, overdue=True)] == ["DW-01"]
    summary = register_summary(works_store, [SITE])[0]
    assert (summary["works"], summary["beyond_scale"], summary["overdue"], summary["active_dangerous"]) == (3, 2, 1, 1)


def test_a_json_register_with_zones_and_elements_is_imported_whole(works_store, tmp_path):
    path = tmp_path / "register.json"
    path.write_text(json.dumps({"works": [
        {"site_code": SITE, "code": "DM-1", "work_type": "demolition", "title": "Old canteen", "responsible": "Wu",
         "planned_start": str(days(3)), "planned_end": str(days(9)), "global_ids": [SLAB],
         "zone": {"polygon_m": [[0, 0], [5, 0], [5, 5]], "z_min_m": 0, "z_max_m": 8}}]}), encoding="utf-8")
    assert import_works(works_store, SYSTEM, path)["works"] == 1
    w = list_works(works_store, SYSTEM, site_code=SITE)[0]
    assert (w.work_type, w.scale, w.global_ids, len(w.zone.polygon_m)) == ("demolition", "dangerous", (SLAB,), 3)


@pytest.mark.parametrize("row, message", [
    (csv_row(work_type="pile_driving"), r"register.csv: row 2, field work_type: unknown work type 'pile_driving'"),
    (csv_row(planned=(10, 5)), r"register.csv: row 2, field planned_end: .* is before planned_start"),
    (csv_row(scale="dangerous", approved=(-12, "Zhang"), started=-13),
     r"register.csv: row 2, field actual_start: .* is before the plan's approval"),
    (csv_row(gids="0000000000000000000000"),
     r"register.csv: row 2, field global_ids: '0000000000000000000000' is not an element of site WH-JA-1"),
    (csv_row(zone="0 0; 1 1"), r"register.csv: row 2, field zone.polygon_m: needs 3 to 200 vertices"),
    (csv_row(z=(5, 2)), r"register.csv: row 2, field zone.z_max_m: 2.0 is not above z_min_m 5.0"),
    (csv_row(code="DW-00"), r"register.csv: row 2, field code: 'DW-00' repeats row 1"),
    # found inside the transaction, after row 1 went in: row 1 goes too
    (csv_row(code="DW-EXISTING"), r"register.csv: row 2, field code: 'DW-EXISTING' is already registered"),
])
def test_a_bad_row_names_file_row_and_field_and_nothing_of_the_file_is_stored(works_store, tmp_path, row, message):
    pit(works_store, code="DW-EXISTING")
    before = rows(works_store)
    path = tmp_path / "register.csv"
    path.write_text(CSV_HEADER + csv_row(code="DW-00") + row, encoding="utf-8")
    with pytest.raises(WorksError, match=message):
        import_works(works_store, SYSTEM, path, site_code=SITE)
    assert rows(works_store) == before


def test_an_unknown_or_foreign_site_in_a_file_stores_nothing(works_store, tmp_path, scopes):
    before = rows(works_store)
    path = tmp_path / "register.json"
    good = {"code": "A", "work_type": "scaffolding", "title": "t", "responsible": "r",
            "planned_start": str(days(1)), "planned_end": str(days(2))}
    path.write_text(json.dumps([{**good, "site_code": SITE}, {**good, "site_code": "WH-XX-9"}]), encoding="utf-8")
    with pytest.raises(AccessDenied, match=r"register.json: row 2, field site_code: site 'WH-XX-9' is unknown or "
                                           r"not in your scope"):
        import_works(works_store, SYSTEM, path)
    # the contractor owns WH-JA-1 only: a row of WH-WC-1 reads exactly as an unknown site
    path.write_text(json.dumps([{**good, "site_code": SITE}, {**good, "site_code": "WH-WC-1"}]), encoding="utf-8")
    with pytest.raises(AccessDenied, match=r"row 2, field site_code: site 'WH-WC-1' is unknown or not in your scope"):
        import_works(works_store, scopes["contractor"], path)
    # a file for one site may not carry another's rows
    with pytest.raises(WorksError, match=r"row 2, field site_code: 'WH-WC-1' is not the site being imported"):
        import_works(works_store, SYSTEM, path, site_code=SITE)
    assert rows(works_store) == before


# --------------------------------------------------------------------------------------
# scope

def test_viewers_read_the_register_and_only_site_parties_write_it(works_store, scopes):
    wid = pit(works_store, scopes["contractor"])
    assert [w.code for w in list_works(works_store, scopes["viewer"], site_code=SITE)] == ["DW-01"]
    before = rows(works_store)
    with pytest.raises(AccessDenied, match="vic \\(viewer\\) may not review dangerous works"):
        review_work(works_store, scopes["viewer"], wid, passed=True, on=days(-1))
    with pytest.raises(AccessDenied, match="may not register dangerous works"):
        pit(works_store, scopes["viewer"], code="DW-02")
    assert rows(works_store) == before
    reviewed = review_work(works_store, scopes["district_regulator"], wid, passed=True, on=days(-1))
    assert reviewed.review_state == "passed"


def test_an_id_from_another_site_is_refused_like_an_unknown_one(works_store, scopes):
    foreign = add_work(works_store, SYSTEM, "WH-WC-1", code="DW-01", work_type="curtain_wall", title="Facade",
                       responsible="Zhou", planned_start=days(-5), planned_end=days(40))
    before = rows(works_store)
    for work in (foreign, "00000000-0000-0000-0000-000000000000"):
        with pytest.raises(AccessDenied, match="is not in your scope"):
            approve_plan(works_store, scopes["contractor"], work, by="cole", on=days(-1))
        with pytest.raises(AccessDenied, match="is not in your scope"):
            get_work(works_store, scopes["contractor"], work)
    with pytest.raises(AccessDenied, match="not in your scope"):
        add_work(works_store, scopes["contractor"], "WH-WC-1", code="X", work_type="other", title="t",
                 responsible="r", planned_start=days(1), planned_end=days(2))
    assert rows(works_store) == before
    assert {w.site_code for w in list_works(works_store, scopes["contractor"])} == set()
    assert {w.site_code for w in list_works(works_store, scopes["city_regulator"])} == {"WH-WC-1"}


# --------------------------------------------------------------------------------------
# what the register raises

def test_an_overdue_plan_approval_raises_one_finding_however_often_it_is_checked(works_store):
    late = pit(works_store)                                                # planned start 10 days ago
    pit(works_store, code="DW-02", start=5)                                # not due yet
    raised = raise_overdue_findings(works_store, SYSTEM, site_code=SITE)
    assert [r["code"] for r in raised] == ["DW-01"]
    f = get_finding(works_store, SYSTEM, raised[0]["finding_id"])
    assert (f.category, f.severity, f.source, f.source_ref) == ("safety", "high", "dangerous_works",
                                                                 f"{late}:overdue_approval")
    assert "DW-01" in f.title and "without an approved special plan" in f.title
    assert raise_overdue_findings(works_store, SYSTEM, site_code=SITE) == []
    assert works_store.scalar("SELECT count(*) FROM findings") == 1


def _people(store, points, at):
    insert_detections(store, [{"detection_id": f"D{i:015d}", "site_code": SITE, "source_kind": "camera",
                               "source_ref": "cam-1", "camera_id": "cam-1", "captured_at": at, "class_name": "person",
                               "confidence": 0.9, "x1": 0, "y1": 0, "x2": 10, "y2": 30, "x_m": x, "y_m": y, "z_m": z}
                              for i, (x, y, z) in enumerate(points)])


def test_a_person_in_the_zone_of_unapproved_works_raises_one_hazard_with_its_finding(works_store):
    pit(works_store)                                                       # unapproved, period begun
    approved = add_work(works_store, SYSTEM, SITE, code="SC-1", work_type="scaffolding", title="Scaffold",
                        responsible="Wang", planned_start=days(-10), planned_end=days(30),
                        zone={"polygon_m": [[100, 0], [110, 0], [110, 10], [100, 10]], "z_min_m": 0, "z_max_m": 30},
                        plan_approved_on=days(-11), plan_approved_by="Zhang")
    at = dt.datetime.combine(days(-1), dt.time(9))
    # inside the pit (twice), outside it in plan, inside in plan but above its heights, inside approved works
    _people(works_store, [(5, 5, -8), (39.9, 24.9, 0.5), (45, 5, -5), (5, 5, 6), (105, 5, 12)], at)
    since, until = at - dt.timedelta(hours=1), at + dt.timedelta(hours=1)
    out = check_zones(works_store, SYSTEM, SITE, since=since, until=until)
    assert len(out["hazards"]) == 1 and out["seen"] == 1
    h = hazard(works_store, out["hazards"][0])
    assert h["rule"] == ZONE_RULE and h["severity"] == "high" and "DW-01" in h["message"]
    assert h["detection_ids"] == ["D000000000000000", "D000000000000001"]
    assert (h["x_m"], h["y_m"], h["z_m"]) == pytest.approx((5, 5, -8), abs=1e-9)
    assert h["finding_id"] == out["findings"][h["hazard_id"]]
    assert get_finding(works_store, SYSTEM, h["finding_id"]).source == "hazard"
    again = check_zones(works_store, SYSTEM, SITE, since=since, until=until)
    assert again["hazards"] == [] and again["seen"] == 1
    assert len(list_hazards(works_store, site_code=SITE, rule=ZONE_RULE)) == 1
    assert get_work(works_store, SYSTEM, approved).state == "approved"


def test_a_work_without_a_polygon_is_judged_on_its_elements_box_grown_by_the_margin(works_store):
    add_work(works_store, SYSTEM, SITE, code="FW-1", work_type="formwork_support", title="High formwork L1",
             responsible="Wang", planned_start=days(-3), planned_end=days(30), global_ids=[SLAB])
    at = dt.datetime.combine(days(-1), dt.time(10))
    # the slab's box is 10..20 x 10..20 x 3..3.3; grown by 2 m: 8..22 x 8..22 x 1..5.3
    _people(works_store, [(8.5, 21.5, 1.5), (7.5, 15, 3), (15, 15, 5.5)], at)
    out = check_zones(works_store, SYSTEM, SITE, since=at - dt.timedelta(hours=1), until=at + dt.timedelta(hours=1),
                      raise_findings=False)
    h = hazard(works_store, out["hazards"][0])
    assert len(out["hazards"]) == 1 and h["detection_ids"] == ["D000000000000000"] and h["global_id"] == SLAB
    assert h["finding_id"] is None


def test_the_daily_check_raises_overdue_findings_and_zone_hazards_and_is_for_site_parties(works_store, scopes):
    pit(works_store)
    _people(works_store, [(5, 5, 0)], dt.datetime.combine(days(-2), dt.time(9)))
    report = check_site(works_store, scopes["contractor"], SITE)
    assert report.overdue == ("DW-01",) and len(report.findings) == 1 and len(report.hazards) == 1
    with pytest.raises(AccessDenied, match="may not check dangerous works"):
        check_site(works_store, scopes["viewer"], SITE)


# --------------------------------------------------------------------------------------
# exchange and the lake

def test_dangerous_works_travel_in_an_exchange_package_and_the_city_lake(works_store, tmp_path, store_factory):
    from sitetwin.data.lake import open_lake, publish
    from sitetwin.oversight.catalogue import export_package, import_package

    wid = pit(works_store)
    review_work(works_store, SYSTEM, wid, passed=True, on=days(-3))
    manifest = export_package(works_store, SYSTEM, tmp_path / "project", sites=[SITE], level="project")
    assert manifest["tables"]["dangerous_works"]["rows"] == 1
    assert manifest["tables"]["dangerous_work_events"]["rows"] == 2

    district = store_factory()
    regulator = Scope.for_account("dora", "district_regulator", district="Jiang'an", city="Wuhan")
    report = import_package(district, regulator, tmp_path / "project", level="district")
    assert report["tables"]["dangerous_works"]["inserted"] == 1
    assert import_package(district, regulator, tmp_path / "project",
                          level="district")["tables"]["dangerous_works"]["inserted"] == 0
    there = get_work(district, regulator, wid)
    assert (there.code, there.review_state, there.zone) == ("DW-01", "passed", get_work(works_store, SYSTEM, wid).zone)
    assert [e["kind"] for e in work_history(district, regulator, wid)] == ["registered", "reviewed"]

    publish(works_store, tmp_path / "lake")
    with open_lake(tmp_path / "lake") as lake:
        assert [w.code for w in list_works(lake, SYSTEM, site_code=SITE)] == ["DW-01"]
        assert register_summary(lake, [SITE])[0]["overdue"] == 1


def test_a_viewer_cannot_make_the_register_raise_findings_or_hazards(works_store, scopes):
    pit(works_store)
    _people(works_store, [(5, 5, 0)], dt.datetime.combine(days(-1), dt.time(9)))
    before = rows(works_store)
    with pytest.raises(AccessDenied, match="may not raise findings for dangerous works"):
        raise_overdue_findings(works_store, scopes["viewer"], site_code=SITE)
    with pytest.raises(AccessDenied, match="may not check dangerous works"):
        check_zones(works_store, scopes["viewer"], SITE, since=dt.datetime.combine(days(-2), dt.time()),
                    until=dt.datetime.combine(days(1), dt.time()))
    assert rows(works_store) == before and list_hazards(works_store, site_code=SITE) == []
