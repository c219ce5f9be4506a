"""The generated city's enterprises: every site has its construction enterprise, credit codes pass their
check, and one contractor's sites span the city's districts."""

from __future__ import annotations

from sitetwin.data.enterprises import check_credit_code
from sitetwin.data.queries import enterprise_sites, enterprises, site_enterprises
from sitetwin.data.sites import upsert_site
from sitetwin.synth.city import ENTERPRISES, WUHAN_DISTRICTS, assign_enterprise, credit_code


def test_every_made_up_credit_code_passes_the_national_check():
    codes = [credit_code(n) for n in range(len(ENTERPRISES))]
    assert [check_credit_code(c) for c in codes] == codes and len(set(codes)) == len(codes)
    assert all(code.isascii() and code.isalnum() for code, _, _ in ENTERPRISES)


def test_sites_are_shared_out_among_four_contractors_across_districts(store):
    sites = [f"WH-{WUHAN_DISTRICTS[i % 13][0]}-{i + 1:02d}" for i in range(12)]
    for i, code in enumerate(sites):
        upsert_site(store, code, district=WUHAN_DISTRICTS[i % 13][1], city="Wuhan")
        assign_enterprise(store, code, i)
    frame = enterprises(store)
    assert dict(zip(frame["enterprise_code"], frame["sites"])) == {"WHJC": 3, "HBCT": 3, "WHDH": 3, "HBHJ": 3,
                                                                   "WHHS": 0}
    assert enterprise_sites(store, "WHJC") == sorted([sites[0], sites[4], sites[8]])   # three districts
    assert enterprise_sites(store, "WHHS", subcontracted=True) == sorted(sites[2::3])
    assert site_enterprises(store, sites[0])["contractor"]["name"] == "武汉江城建设集团有限公司"
