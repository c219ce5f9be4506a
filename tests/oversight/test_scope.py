"""Scopes: which sites each role sees, and which actions it may take."""

from __future__ import annotations

import pytest

from sitetwin.oversight.errors import AccessDenied
from sitetwin.oversight.scope import PERMISSIONS, ROLES, Scope


def test_each_role_sees_the_sites_its_account_gives_it(sites_store, scopes):
    seen = {role: s.site_codes(sites_store) for role, s in scopes.items()}
    assert seen == {"admin": ["WH-JA-1", "WH-JA-2", "WH-WC-1", "WH-WC-2"],
                    "city_regulator": ["WH-JA-1", "WH-JA-2", "WH-WC-1", "WH-WC-2"],
                    "district_regulator": ["WH-JA-1", "WH-JA-2"],
                    "contractor": ["WH-JA-1"], "viewer": ["WH-JA-1"]}


def test_a_city_regulator_of_another_city_sees_nothing_here(sites_store):
    assert Scope.for_account("x", "city_regulator", city="Nijmegen").site_codes(sites_store) == []


def test_a_scope_with_no_site_rule_admits_nothing(sites_store):
    assert Scope.for_account("nobody", "viewer").site_codes(sites_store) == []
    assert Scope.for_account("c", "contractor", sites=set()).where() == ("FALSE", [])


def test_a_district_regulator_needs_a_district():
    with pytest.raises(AccessDenied, match="needs a district"):
        Scope.for_account("d", "district_regulator")


def test_site_rules_are_sql_parameters_never_text(sites_store):
    evil = Scope.for_account("e", "contractor", sites={"WH-JA-1' OR '1'='1"})
    sql, params = evil.where("site_code")
    assert "OR '1'='1" not in sql and params == ["WH-JA-1' OR '1'='1"]
    assert evil.site_codes(sites_store) == []


def test_regulator_only_actions_are_refused_to_contractors_and_viewers():
    for action in ("verify_close", "reopen", "set_tier", "raise", "import", "evaluate"):
        assert {r for r in ROLES if Scope("u", r).can(action)} == {"admin", "city_regulator", "district_regulator"}
    assert {r for r in ROLES if Scope("u", r).can("submit_rectification")} == {"admin", "contractor", "enterprise"}
    assert {r for r in ROLES if Scope("u", r).can("manage_accounts")} == {"admin"}
    assert all(Scope("u", r).can("read") for r in ROLES)
    assert all(Scope.system().can(a) for a in PERMISSIONS)


def test_a_site_that_does_not_exist_is_refused_like_one_out_of_scope(sites_store, scopes):
    for code in ("WH-WC-1", "NO-SUCH-SITE"):
        with pytest.raises(AccessDenied, match="is not in your scope"):
            scopes["contractor"].require_site(sites_store, code)


# --------------------------------------------------------------------------------------
# the enterprise tier: an enterprise account sees exactly its enterprise's sites, across districts and cities

def _credit(first17: str) -> str:
    from sitetwin.data.enterprises import credit_check_char

    return first17 + credit_check_char(first17)


@pytest.fixture
def enterprise_store(sites_store):
    """The four Wuhan sites and one in Xiaogan; CSCEC3 builds WH-JA-1, WH-WC-2 and XG-1, HBJG builds WH-JA-2
    and subcontracts on WH-WC-2; every site has one finding. An admin account exists."""
    import datetime as dt

    from sitetwin.data.enterprises import add_subcontractor, set_site_enterprise, upsert_enterprise
    from sitetwin.data.sites import upsert_site
    from sitetwin.oversight.accounts import add_account
    from sitetwin.oversight.findings import raise_finding

    store = sites_store
    with store.transaction():
        upsert_site(store, "XG-1", name="孝感项目", district="Xiaonan", city="Xiaogan")
        upsert_enterprise(store, "CSCEC3", name="中建三局集团有限公司", credit_code=_credit("91420000177572435"))
        upsert_enterprise(store, "HBJG", name="湖北建工劳务有限公司", credit_code=_credit("91420100MA4KL3N27"),
                          kind="labour_subcontractor")
        for site in ("WH-JA-1", "WH-WC-2", "XG-1"):
            set_site_enterprise(store, site, "CSCEC3")
        set_site_enterprise(store, "WH-JA-2", "HBJG")
        add_subcontractor(store, "WH-WC-2", "HBJG")
    for site in ("WH-JA-1", "WH-JA-2", "WH-WC-1", "WH-WC-2", "XG-1"):
        raise_finding(store, site_code=site, category="safety", severity="high", title=f"edge at {site}",
                      at=dt.datetime(2026, 3, 2, 9))
    add_account(store, Scope.system(), "root", "admin", password="correct horse battery")
    return store


def _enterprise_scope(store, username="cscec3.hq", enterprise="CSCEC3"):
    from sitetwin.oversight.accounts import add_account, add_token, authenticate

    add_account(store, Scope.system(), username, "enterprise", enterprise=enterprise, password=None)
    secret, _ = add_token(store, Scope.system(), username, "cli")
    return authenticate(store, secret)


def test_an_enterprise_account_sees_its_enterprises_sites_in_every_district_and_city(enterprise_store):
    scope = _enterprise_scope(enterprise_store)
    assert (scope.role, scope.enterprise, scope.via) == ("enterprise", "CSCEC3", "token")
    assert scope.site_codes(enterprise_store) == ["WH-JA-1", "WH-WC-2", "XG-1"]
    assert scope.admits_site("XG-1", "Xiaonan", "Xiaogan") and not scope.admits_site("WH-JA-2", "Jiang'an", "Wuhan")
    # a subcontractor's account sees the sites it builds, not those it subcontracts on
    assert _enterprise_scope(enterprise_store, "hbjg", "HBJG").site_codes(enterprise_store) == ["WH-JA-2"]


def test_an_enterprise_scope_follows_the_sites_it_builds(enterprise_store):
    from sitetwin.data.enterprises import set_site_enterprise

    scope = Scope.for_account("cscec3.hq", "enterprise", enterprise="CSCEC3")
    set_site_enterprise(enterprise_store, "WH-WC-1", "CSCEC3")
    assert scope.site_codes(enterprise_store) == ["WH-JA-1", "WH-WC-1", "WH-WC-2", "XG-1"]
    with pytest.raises(AccessDenied, match="needs an enterprise"):
        Scope.for_account("e", "enterprise")


def test_an_enterprise_account_needs_a_known_enterprise_and_only_it_names_one(enterprise_store):
    from sitetwin.oversight.accounts import add_account, grant_sites
    from sitetwin.oversight.errors import OversightError

    before = enterprise_store.rows("SELECT username FROM accounts ORDER BY 1")
    with pytest.raises(OversightError, match="needs --enterprise"):
        add_account(enterprise_store, Scope.system(), "e1", "enterprise")
    with pytest.raises(OversightError, match="no enterprise 'NOPE'"):
        add_account(enterprise_store, Scope.system(), "e2", "enterprise", enterprise="NOPE")
    with pytest.raises(OversightError, match="only an enterprise account"):
        add_account(enterprise_store, Scope.system(), "e3", "viewer", enterprise="CSCEC3")
    assert enterprise_store.rows("SELECT username FROM accounts ORDER BY 1") == before
    _enterprise_scope(enterprise_store)
    with pytest.raises(OversightError, match="link the sites to the enterprise"):
        grant_sites(enterprise_store, Scope.system(), "cscec3.hq", ["WH-WC-1"])
    assert enterprise_store.scalar("SELECT count(*) FROM account_sites") == 0


def test_an_enterprise_account_sees_exactly_its_sites_in_the_portfolio_and_findings(enterprise_store):
    from sitetwin.oversight.findings import list_findings
    from sitetwin.oversight.portfolio import portfolio_sites, rollup

    scope = _enterprise_scope(enterprise_store)
    assert [r["site_code"] for r in portfolio_sites(enterprise_store, scope)] == ["WH-JA-1", "WH-WC-2", "XG-1"]
    assert sorted(f.site_code for f in list_findings(enterprise_store, scope)) == ["WH-JA-1", "WH-WC-2", "XG-1"]
    assert [(r["city"], r["sites"]) for r in rollup(enterprise_store, scope, by="city")] == [("Wuhan", 2),
                                                                                             ("Xiaogan", 1)]
    with pytest.raises(AccessDenied, match="not in your scope"):
        list_findings(enterprise_store, scope, site_code="WH-JA-2")


def test_an_enterprise_account_reads_exactly_its_sites_from_the_city_lake(enterprise_store, tmp_path):
    from sitetwin.data.lake import open_lake, publish
    from sitetwin.oversight.portfolio import portfolio_sites

    scope = _enterprise_scope(enterprise_store)
    publish(enterprise_store, tmp_path / "lake")
    with open_lake(tmp_path / "lake", admit=scope.admits_site) as lake:
        assert lake.scalar("SELECT count(DISTINCT site_code) FROM findings") == 3
        assert [r["site_code"] for r in portfolio_sites(lake, scope)] == ["WH-JA-1", "WH-WC-2", "XG-1"]
        assert lake.rows("SELECT enterprise_code FROM enterprises ORDER BY 1") == [{"enterprise_code": "CSCEC3"},
                                                                                  {"enterprise_code": "HBJG"}]


def test_an_enterprise_account_exports_exactly_its_sites_and_may_not_import(enterprise_store, tmp_path):
    import pyarrow.parquet as pq

    from sitetwin.oversight.catalogue import export_package, import_package

    scope = _enterprise_scope(enterprise_store)
    manifest = export_package(enterprise_store, scope, tmp_path / "pkg")
    assert manifest["package"]["sites"] == ["WH-JA-1", "WH-WC-2", "XG-1"]
    assert sorted(pq.read_table(tmp_path / "pkg" / "findings.parquet")["site_code"].to_pylist()) == \
        ["WH-JA-1", "WH-WC-2", "XG-1"]
    with pytest.raises(AccessDenied, match="not in your scope"):
        export_package(enterprise_store, scope, tmp_path / "other", sites=["WH-JA-2"])
    with pytest.raises(AccessDenied, match="may not import"):
        import_package(enterprise_store, scope, tmp_path / "pkg")
