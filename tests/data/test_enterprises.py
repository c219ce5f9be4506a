"""Enterprises: credit codes checked per GB 32100-2015, sites linked to their construction enterprise,
the sites' time zone, and enterprises travelling in exchange packages and the city lake."""

from __future__ import annotations

import json

import pytest

from sitetwin.data.enterprises import (
    EnterpriseError,
    add_subcontractor,
    check_credit_code,
    credit_check_char,
    import_enterprises,
    set_site_enterprise,
    upsert_enterprise,
)
from sitetwin.data.errors import StoreError
from sitetwin.data.exchange import export_sites, import_tables, package_tables
from sitetwin.data.lake import open_lake, publish
from sitetwin.data.queries import enterprise_sites, enterprises, site_enterprises, site_time_zone
from sitetwin.data.sites import set_time_zone, upsert_site
from sitetwin.data.store import open_store


def credit(first17: str) -> str:
    return first17 + credit_check_char(first17)


CSCEC3 = credit("91420000177572435")      # a general contractor registered in Hubei (420000)
HBJG = credit("91420100MA4KL3N27")        # a subcontractor registered in Wuhan (420100)


def fill(store) -> None:
    with store.transaction():
        upsert_site(store, "WH-1", name="武汉长江中心", district="Jiang'an", city="Wuhan")
        upsert_site(store, "WH-2", district="Wuchang", city="Wuhan")
        upsert_site(store, "XG-1", district="Xiaonan", city="Xiaogan")
        upsert_enterprise(store, "CSCEC3", name="中建三局集团有限公司", credit_code=CSCEC3)
        upsert_enterprise(store, "HBJG", name="湖北建工劳务有限公司", credit_code=HBJG, kind="labour_subcontractor")
        set_site_enterprise(store, "WH-1", "CSCEC3")
        set_site_enterprise(store, "XG-1", "CSCEC3")
        set_site_enterprise(store, "WH-2", "HBJG")
        add_subcontractor(store, "WH-1", "HBJG", scope_of_work="劳务")


def test_the_check_character_follows_the_standards_example():
    assert check_credit_code("91350100M000100Y43") == "91350100M000100Y43"
    assert check_credit_code(" 91350100m000100y43 ") == "91350100M000100Y43"      # typed in lower case


@pytest.mark.parametrize("code, says", [
    ("91350100M000100Y44", "check character is '4', expected '3'"),
    ("91350100M000100Y4", "has 17 characters"),
    ("91350100M0001O0Y43", "holds 'O'"),
    ("913501A0M000100Y43", "characters 3-8"),
])
def test_a_bad_credit_code_is_refused_saying_why(code, says):
    with pytest.raises(EnterpriseError, match="credit_code") as err:
        check_credit_code(code)
    assert says in str(err.value)


def test_an_enterprise_with_a_bad_credit_code_leaves_the_store_unchanged(store):
    fill(store)
    before = store.rows("SELECT * FROM enterprises ORDER BY ALL")
    mistyped = CSCEC3[:-1] + ("0" if CSCEC3[-1] != "0" else "1")
    with pytest.raises(EnterpriseError, match="expected"):
        upsert_enterprise(store, "BAD", name="某建筑公司", credit_code=mistyped)
    with pytest.raises(EnterpriseError, match="belongs to enterprise CSCEC3"):
        upsert_enterprise(store, "COPY", name="另一家公司", credit_code=CSCEC3)
    assert store.rows("SELECT * FROM enterprises ORDER BY ALL") == before


def test_an_enterprises_sites_span_districts_and_cities(store):
    fill(store)
    assert enterprise_sites(store, "CSCEC3") == ["WH-1", "XG-1"]
    assert enterprise_sites(store, "HBJG") == ["WH-2"]
    assert enterprise_sites(store, "HBJG", subcontracted=True) == ["WH-1", "WH-2"]
    who = site_enterprises(store, "WH-1")
    assert who["contractor"]["name"] == "中建三局集团有限公司"
    assert [(s["enterprise_code"], s["scope_of_work"]) for s in who["subcontractors"]] == [("HBJG", "劳务")]
    assert enterprises(store)[["enterprise_code", "sites"]].values.tolist() == [["CSCEC3", 2], ["HBJG", 1]]
    with pytest.raises(EnterpriseError, match="no enterprise 'NOPE'"):
        set_site_enterprise(store, "WH-2", "NOPE")


def test_a_bad_row_in_an_enterprise_file_names_file_row_and_field_and_stores_nothing(store, tmp_path):
    fill(store)
    path = tmp_path / "enterprises.json"
    path.write_text(json.dumps([{"enterprise_code": "WHCJ", "name": "武汉城建集团", "credit_code": credit(
        "91420100300012345"), "sites": ["WH-2"]}, {"enterprise_code": "X2", "name": "某公司",
                                                     "credit_code": "91420100300012345Z"}]), encoding="utf-8")
    before = (store.rows("SELECT * FROM enterprises ORDER BY ALL"), store.rows("SELECT * FROM sites ORDER BY ALL"))
    with pytest.raises(EnterpriseError) as err:
        import_enterprises(store, path)
    assert str(err.value).startswith(f"{path}: row 2: credit_code")
    assert (store.rows("SELECT * FROM enterprises ORDER BY ALL"), store.rows("SELECT * FROM sites ORDER BY ALL")) \
        == before
    path.write_text(json.dumps({"enterprises": [{"enterprise_code": "WHCJ", "name": "武汉城建集团",
                                                 "credit_code": credit("91420100300012345"), "sites": ["WH-2"]}]}),
                    encoding="utf-8")
    assert import_enterprises(store, path) == {"enterprises": 1, "sites": 1}
    assert enterprise_sites(store, "WHCJ") == ["WH-2"]


def test_a_site_keeps_its_time_zone_and_shanghai_is_the_default(store):
    fill(store)
    assert site_time_zone(store, "WH-1") == "Asia/Shanghai"
    upsert_site(store, "URC-1", city="Urumqi", time_zone="Asia/Urumqi")
    assert site_time_zone(store, "URC-1") == "Asia/Urumqi"
    with pytest.raises(StoreError, match="time_zone: 'Mars/Olympus' is not an IANA time zone"):
        set_time_zone(store, "WH-1", "Mars/Olympus")
    assert site_time_zone(store, "WH-1") == "Asia/Shanghai"
    assert site_time_zone(store, "NOWHERE") == "Asia/Shanghai"


def test_an_exchange_package_carries_the_enterprises_of_its_sites_only(store, tmp_path):
    fill(store)
    upsert_enterprise(store, "OTHER", name="无关企业", credit_code=credit("91110000100000000"))
    manifest = export_sites(store, tmp_path / "pkg", ["WH-2"])
    assert manifest["tables"]["enterprises"]["rows"] == 1 and "enterprises" in package_tables(store)
    with open_store(":memory:") as city:
        report = import_tables(city, tmp_path / "pkg")
        assert report["enterprises"] == {"read": 1, "inserted": 1}
        assert city.rows("SELECT enterprise_code, name, credit_code FROM enterprises") == [
            {"enterprise_code": "HBJG", "name": "湖北建工劳务有限公司", "credit_code": HBJG}]
        assert enterprise_sites(city, "HBJG") == ["WH-2"]


def test_the_city_lake_carries_each_enterprise_once_and_a_scoped_reader_only_its_sites_ones(store, tmp_path):
    fill(store)
    lake = tmp_path / "lake"
    report = publish(store, lake)
    written = {(w["table"], w["site_code"]): w["rows"] for w in report["written"]}
    assert written[("enterprises", "WH-1")] == 2          # its contractor and its subcontractor
    with open_lake(lake) as city:
        assert city.scalar("SELECT count(*) FROM enterprises") == 2
        assert enterprise_sites(city, "CSCEC3") == ["WH-1", "XG-1"]
    with open_lake(lake, admit=lambda site, district, city: site == "WH-2") as one:
        assert one.rows("SELECT enterprise_code FROM enterprises") == [{"enterprise_code": "HBJG"}]
    assert publish(store, lake)["written"] == []          # unchanged: nothing rewritten
