"""The data catalogue, data quality, and exchange packages from project to district to city."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from sitetwin.bim.load import add_model_records
from sitetwin.oversight.accounts import add_account
from sitetwin.oversight.catalogue import PRIVATE_TABLES, catalogue, data_quality, export_package, import_package
from sitetwin.oversight.errors import AccessDenied, OversightError
from sitetwin.oversight.findings import comment, raise_finding, verify_history
from sitetwin.oversight.scope import Scope
from sitetwin.sensors.registry import add_device

SYSTEM = Scope.system()
DAY = dt.date(2024, 6, 30)


@pytest.fixture
def data_store(sites_store, feed):
    s = sites_store
    walls = [(True, "L1"), (True, "L2"), (True, None), (False, "L1")]      # (has geometry, storey)
    add_model_records(s, [{"global_id": f"g{i:021d}", "ifc_class": "IfcWall", "storey": storey, "has_geometry": geom,
                           "triangle_count": 10} for i, (geom, storey) in enumerate(walls)],
                      site_code="WH-JA-1", name="structure", model_id="m1", version=2, file_name="a.ifc",
                      loaded_at=dt.datetime(2024, 6, 20))
    add_device(s, "WH-JA-1-DUST-1", site_code="WH-JA-1", device_type="dust", interval_s=3600,
               now=dt.datetime(2024, 6, 1))
    # half of the 24 hourly readings expected in the last day; the last at 22:00
    feed(s, "WH-JA-1-DUST-1", readings=[(dt.datetime(2024, 6, 30, 2 * h), "pm10_ugm3", 40.0) for h in range(12)])
    raise_finding(s, site_code="WH-JA-1", category="safety", severity="low", title="x", location_m=(1, 2, 3),
                  at=dt.datetime(2024, 6, 29))
    s.execute("INSERT INTO site_profiles (site_code, data_owner) VALUES ('WH-JA-1', 'Changjiang Build Co.')")
    return s


def test_the_catalogue_lists_every_source_with_a_unified_id_owner_update_and_completeness(data_store):
    entries = {e["uid"]: e for e in catalogue(data_store, SYSTEM, site_code="WH-JA-1", as_of=DAY)}
    assert set(entries) == {"WH-JA-1/model/structure@v2", "WH-JA-1/sensor/WH-JA-1-DUST-1", "WH-JA-1/findings/all"}
    model = entries["WH-JA-1/model/structure@v2"]
    assert model["completeness"] == pytest.approx(2 / 4) and model["owner"] == "Changjiang Build Co."
    assert model["last_update"] == dt.datetime(2024, 6, 20)
    sensor = entries["WH-JA-1/sensor/WH-JA-1-DUST-1"]
    assert sensor["completeness"] == pytest.approx(12 / 24) and sensor["last_update"] == dt.datetime(2024, 6, 30, 22)
    assert entries["WH-JA-1/findings/all"]["completeness"] == 1.0


def test_data_quality_combines_coverage_completeness_and_freshness_per_site_and_district(data_store):
    q = {r["site_code"]: r for r in data_quality(data_store, SYSTEM, as_of=DAY)}
    ja1 = q["WH-JA-1"]
    assert ja1["coverage"] == pytest.approx(2 / 6, abs=1e-4) and ja1["freshness"] == 1.0
    assert ja1["completeness"] == pytest.approx((0.5 + 0.5 + 1.0) / 3, abs=1e-4)
    assert ja1["quality"] == pytest.approx(0.4 * 2 / 6 + 0.4 * 2 / 3 + 0.2, abs=1e-4)
    assert q["WH-JA-2"]["quality"] == 0.0 and "model" in q["WH-JA-2"]["missing"]
    districts = {r["district"]: r for r in data_quality(data_store, SYSTEM, by="district", as_of=DAY)}
    assert districts["Jiang'an"]["quality"] == pytest.approx(ja1["quality"] / 2, abs=1e-4)
    assert districts["Jiang'an"]["worst_site"] == "WH-JA-2"


def test_the_catalogue_keeps_to_the_callers_scope(data_store, scopes):
    assert {e["site_code"] for e in catalogue(data_store, scopes["contractor"])} == {"WH-JA-1"}
    with pytest.raises(AccessDenied):
        catalogue(data_store, scopes["contractor"], site_code="WH-WC-1")


def test_a_district_platform_imports_a_projects_package_and_a_city_the_districts(data_store, tmp_path, store_factory):
    fid = raise_finding(data_store, site_code="WH-JA-2", category="quality", severity="high", title="y")
    comment(data_store, fid, "see photo", scope=SYSTEM)
    add_account(data_store, SYSTEM, "secret.admin", "admin", password="never leaves the platform")
    manifest = export_package(data_store, SYSTEM, tmp_path / "project", district="Jiang'an", level="project")
    assert manifest["package"]["sites"] == ["WH-JA-1", "WH-JA-2"] and manifest["package"]["level"] == "project"
    assert not set(manifest["tables"]) & PRIVATE_TABLES
    assert manifest["tables"]["findings"]["rows"] == 2 and manifest["tables"]["sites"]["rows"] == 2
    assert manifest["tables"]["readings"]["rows"] == 12

    district = store_factory()
    regulator = Scope.for_account("dora", "district_regulator", district="Jiang'an", city="Wuhan")
    report = import_package(district, regulator, tmp_path / "project", level="district")
    assert report["tables"]["findings"]["inserted"] == 2 and report["tables"]["finding_events"]["inserted"] == 3
    assert verify_history(district, SYSTEM, fid).ok and district.scalar(
        "SELECT status FROM finding_state WHERE finding_id = ?", [fid]) == "open"
    again = import_package(district, regulator, tmp_path / "project", level="district")
    assert again["tables"]["findings"]["inserted"] == 0          # idempotent

    export_package(district, regulator, tmp_path / "district", level="district")
    city = store_factory()
    up = import_package(city, Scope.for_account("cyril", "city_regulator", city="Wuhan"), tmp_path / "district",
                        level="city")
    assert up["from_level"] == "district" and city.scalar("SELECT count(*) FROM findings") == 2
    assert city.scalar("SELECT count(*) FROM accounts") == 0


def test_packages_only_go_up_and_only_into_the_importers_scope(data_store, tmp_path, store_factory, snapshot):
    export_package(data_store, SYSTEM, tmp_path / "pkg", district="Jiang'an", level="project")
    other = store_factory()
    before = snapshot(other)
    with pytest.raises(AccessDenied, match="not in your scope"):
        import_package(other, Scope.for_account("w", "district_regulator", district="Wuchang", city="Wuhan"),
                       tmp_path / "pkg")
    with pytest.raises(OversightError, match="cannot be imported by a project platform|does not import"):
        import_package(other, SYSTEM, tmp_path / "pkg", level="project")
    with pytest.raises(AccessDenied):
        import_package(other, Scope.for_account("c", "contractor", sites={"WH-JA-1"}), tmp_path / "pkg")
    manifest = json.loads((tmp_path / "pkg" / "manifest.json").read_text())
    manifest["package"]["level"] = "city"
    (tmp_path / "pkg" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(OversightError, match="a city package cannot be imported by a district platform"):
        import_package(other, SYSTEM, tmp_path / "pkg")
    assert snapshot(other) == before
    with pytest.raises(AccessDenied):
        export_package(data_store, Scope.for_account("v", "viewer", sites={"WH-JA-1"}), tmp_path / "v")
