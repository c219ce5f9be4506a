"""An account's own settings: the workbench language, set by the person or an admin, kept private."""

from __future__ import annotations

import pytest

from sitetwin.data.i18n import LanguageError
from sitetwin.oversight.accounts import add_account, local_owner_scope
from sitetwin.oversight.errors import AccessDenied, OversightError
from sitetwin.oversight.preferences import account_language, set_account_language
from sitetwin.oversight.scope import Scope

PW = "preferences pw 123"


@pytest.fixture
def people(sites_store):
    store = sites_store
    owner = local_owner_scope(store)
    add_account(store, owner, "ada", "admin", password=PW)
    admin = Scope.for_account("ada", "admin")
    add_account(store, admin, "dora", "district_regulator", password=PW, district="Jiang'an", city="Wuhan")
    add_account(store, admin, "cole", "contractor", password=PW, sites=["WH-JA-1"])
    return store, admin


def test_a_person_sets_their_own_language_and_it_reads_back_normalised(people):
    store, _admin = people
    dora = Scope.for_account("dora", "district_regulator", district="Jiang'an", city="Wuhan")
    assert account_language(store, "dora") is None
    set_account_language(store, dora, "dora", "zh_CN")
    assert account_language(store, "dora") == "zh-CN"
    set_account_language(store, dora, "dora", "en-GB")
    assert account_language(store, "dora") == "en"
    assert store.scalar("SELECT count(*) FROM account_settings") == 1


def test_an_admin_or_the_system_sets_anyones_language(people):
    store, admin = people
    set_account_language(store, admin, "cole", "zh-CN")
    set_account_language(store, Scope.system("demo"), "dora", "zh-Hans")
    assert (account_language(store, "cole"), account_language(store, "dora")) == ("zh-CN", "zh-CN")
    audit = store.rows("SELECT actor, object_id FROM audit_log WHERE object_kind = 'account' "
                       "AND CAST(detail AS VARCHAR) LIKE '%language%'")
    assert audit == [{"actor": "ada", "object_id": "cole"}]      # the system scope is not audited


def test_a_non_admin_cannot_change_another_accounts_language(people):
    store, _admin = people
    cole = Scope.for_account("cole", "contractor", sites={"WH-JA-1"})
    with pytest.raises(AccessDenied, match="may not manage accounts"):
        set_account_language(store, cole, "dora", "en")
    assert account_language(store, "dora") is None


def test_an_unknown_language_or_account_is_refused_and_nothing_is_stored(people):
    store, admin = people
    with pytest.raises(LanguageError, match=r"account dora: language: unknown language 'fr'"):
        set_account_language(store, admin, "dora", "fr")
    with pytest.raises(OversightError, match="no account 'nobody'"):
        set_account_language(store, admin, "nobody", "en")
    assert store.scalar("SELECT count(*) FROM account_settings") == 0


def test_account_settings_never_leave_the_platform(people):
    from sitetwin.data.exchange import PRIVATE_TABLES, site_tables

    store, admin = people
    set_account_language(store, admin, "dora", "zh-CN")
    assert "account_settings" in PRIVATE_TABLES
    assert "account_settings" not in site_tables(store)


def test_the_cli_sets_an_accounts_language(tmp_path):
    from tests.oversight.test_cli import PW as CLI_PW
    from tests.oversight.test_cli import _empty_store, make_cli

    cli = make_cli()
    db = _empty_store(tmp_path / "site.duckdb")
    code, _, exc = cli(["user", "add", "ada", "--role", "admin", "--password-stdin", "--db", str(db)],
                       input=CLI_PW + "\n")
    assert code == 0, exc
    _c, login, _e = cli(["login", "ada", "--password-stdin", "--db", str(db)], input=CLI_PW + "\n")
    code, out, exc = cli(["accounts", "language", "ada", "zh_cn", "--db", str(db)], token=login["token"])
    assert code == 0, exc
    assert out == {"username": "ada", "language": "zh-CN"}
    code, _out, exc = cli(["accounts", "language", "ada", "klingon", "--db", str(db)], token=login["token"])
    assert code != 0 and "unknown language 'klingon'" in str(exc)
