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
    assert {r for r in ROLES if Scope("u", r).can("submit_rectification")} == {"admin", "contractor"}
    assert {r for r in ROLES if Scope("u", r).can("manage_accounts")} == {"admin"}
    assert all(Scope("u", r).can("read") for r in ROLES)
    assert all(Scope.system().can(a) for a in PERMISSIONS)


def test_a_site_that_does_not_exist_is_refused_like_one_out_of_scope(sites_store, scopes):
    for code in ("WH-WC-1", "NO-SUCH-SITE"):
        with pytest.raises(AccessDenied, match="is not in your scope"):
            scopes["contractor"].require_site(sites_store, code)
