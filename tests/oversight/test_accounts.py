"""Accounts: argon2 passwords, sessions, API tokens, throttled logins, the local owner."""

from __future__ import annotations

import datetime as dt

import pytest

from sitetwin.oversight import accounts
from sitetwin.oversight.accounts import (
    add_account,
    add_token,
    authenticate,
    caller_scope,
    disable_account,
    list_accounts,
    local_owner_scope,
    login,
    logout,
    revoke_token,
    set_password,
)
from sitetwin.oversight.errors import AccessDenied, AuthError, OversightError
from sitetwin.oversight.scope import Scope

ADMIN = Scope.system("setup")
PW = "correct horse battery"


@pytest.fixture
def people(sites_store):
    add_account(sites_store, ADMIN, "dora", "district_regulator", password=PW, district="Jiang'an", city="Wuhan")
    add_account(sites_store, ADMIN, "cole", "contractor", password=PW, sites=["WH-JA-1"])
    add_account(sites_store, ADMIN, "gate-1", "contractor", sites=["WH-JA-1"])            # machine: no password
    return sites_store


def test_passwords_are_stored_as_argon2id_hashes_only(people):
    stored = people.scalar("SELECT password_hash FROM accounts WHERE username = 'dora'")
    assert stored.startswith("$argon2id$") and PW not in stored
    assert "m=19456,t=2,p=1" in stored


def test_a_login_opens_a_session_whose_token_gives_the_accounts_scope(people):
    session = login(people, "dora", PW)
    assert session.token.startswith("sts_") and len(session.token) > 40
    assert people.scalar("SELECT count(*) FROM sessions WHERE session_id = ?", [session.token]) == 0   # only a hash
    scope = authenticate(people, session.token)
    assert (scope.actor, scope.role, scope.district, scope.via) == ("dora", "district_regulator", "Jiang'an", "session")
    assert scope.site_codes(people) == ["WH-JA-1", "WH-JA-2"]


def test_a_session_expires_and_ends_at_logout(people):
    session = login(people, "cole", PW)
    later = dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(hours=accounts.SESSION_HOURS, minutes=1)
    with pytest.raises(AuthError, match="expired"):
        authenticate(people, session.token, now=later)
    logout(people, session.token)
    with pytest.raises(AuthError, match="expired or unknown"):
        authenticate(people, session.token)


def test_a_wrong_password_or_unknown_user_fails_with_the_same_words(people):
    with pytest.raises(AuthError, match="wrong user name or password") as a:
        login(people, "dora", "not the password")
    with pytest.raises(AuthError, match="wrong user name or password") as b:
        login(people, "nobody", "not the password")
    assert str(a.value).split("'")[2] == str(b.value).split("'")[2]


def test_guessing_one_users_password_from_one_source_slows_down_then_recovers(people):
    # the CLI's path (no in-memory throttle): the same rule over the login_attempts rows
    t0 = dt.datetime(2024, 5, 1, 9, 0)
    for i in range(accounts.FREE_FAILURES_PER_PAIR):
        with pytest.raises(AuthError, match="wrong user name"):
            login(people, "dora", f"guess {i}", source="10.0.0.9", now=t0 + dt.timedelta(seconds=i))
    last = t0 + dt.timedelta(seconds=accounts.FREE_FAILURES_PER_PAIR - 1)
    with pytest.raises(accounts.LoginThrottled, match="too many failed logins") as refused:
        login(people, "dora", PW, source="10.0.0.9", now=last + dt.timedelta(seconds=0.5))
    assert refused.value.retry_after_s == 1 and "10.0.0.9" not in str(refused.value)
    # the owner from another source is not locked out
    assert login(people, "dora", PW, source="192.168.1.5", now=last + dt.timedelta(seconds=0.6)).username == "dora"
    # the throttled attempt was not checked, so not written
    assert people.scalar("SELECT count(*) FROM login_attempts WHERE username = 'dora' AND NOT success") == 3
    assert login(people, "dora", PW, source="10.0.0.9", now=last + dt.timedelta(seconds=1.5)).username == "dora"


def test_one_source_trying_many_users_is_throttled(people, monkeypatch):
    monkeypatch.setattr(accounts, "FREE_FAILURES_PER_SOURCE", 3)
    t0 = dt.datetime(2024, 5, 1, 9, 0)
    for i, user in enumerate(["a1", "a2", "a3"]):
        with pytest.raises(AuthError, match="wrong user name"):
            login(people, user, "x", source="203.0.113.7", now=t0 + dt.timedelta(seconds=i))
    with pytest.raises(AuthError, match="too many failed logins from here"):
        login(people, "cole", PW, source="203.0.113.7", now=t0 + dt.timedelta(seconds=2.5))
    assert login(people, "cole", PW, source="198.51.100.2", now=t0 + dt.timedelta(seconds=3)).username == "cole"


def test_api_tokens_act_as_their_account_until_revoked(people):
    token, record = add_token(people, ADMIN, "gate-1", "gate reader east", days=30)
    assert token.startswith(f"stk_{record.token_id}_")
    scope = authenticate(people, token)
    assert (scope.actor, scope.role, scope.via, scope.sites) == ("gate-1", "contractor", "token",
                                                                 frozenset({"WH-JA-1"}))
    assert people.scalar("SELECT last_used_at FROM api_tokens WHERE token_id = ?", [record.token_id]) is not None
    with pytest.raises(AuthError, match="unknown API token"):
        authenticate(people, token[:-3] + "abc")
    revoke_token(people, ADMIN, record.token_id)
    with pytest.raises(AuthError, match="revoked or expired"):
        authenticate(people, token)


def test_disabling_an_account_ends_its_sessions_and_tokens(people):
    session = login(people, "cole", PW)
    token, _ = add_token(people, ADMIN, "cole", "laptop")
    disable_account(people, ADMIN, "cole")
    for t in (session.token, token):
        with pytest.raises(AuthError):
            authenticate(people, t)
    with pytest.raises(AuthError, match="wrong user name or password, or the account is disabled"):
        login(people, "cole", PW)


def test_changing_a_password_ends_existing_sessions(people):
    session = login(people, "dora", PW)
    set_password(people, authenticate(people, session.token), "dora", "another long secret")
    with pytest.raises(AuthError):
        authenticate(people, session.token)
    assert login(people, "dora", "another long secret").username == "dora"


def test_only_admins_manage_accounts_and_a_user_may_change_only_their_own_password(people, scopes):
    for role in ("city_regulator", "district_regulator", "contractor", "viewer"):
        with pytest.raises(AccessDenied, match="may not manage accounts"):
            add_account(people, scopes[role], "mallory", "admin", password=PW)
        with pytest.raises(AccessDenied):
            list_accounts(people, scopes[role])
    with pytest.raises(AccessDenied):
        set_password(people, authenticate(people, login(people, "cole", PW).token), "dora", "taken over!!")
    assert people.scalar("SELECT count(*) FROM accounts WHERE username = 'mallory'") == 0


@pytest.mark.parametrize("args, message", [
    (("x", "admin"), "2-64 letters"),
    (("bob", "superuser"), "role 'superuser'"),
    (("bob", "contractor"), "needs at least one site"),
    (("bob", "district_regulator"), "needs --district"),
    (("bob", "viewer", "short"), "at least 10 characters"),
    (("dora", "viewer", PW), "already exists"),
])
def test_bad_accounts_are_refused(people, args, message, snapshot):
    before = snapshot(people)
    username, role, *pw = args
    with pytest.raises(OversightError, match=message):
        add_account(people, ADMIN, username, role, password=pw[0] if pw else PW)
    assert snapshot(people) == before


def test_the_local_owner_is_admin_only_while_there_are_no_accounts(sites_store):
    owner = caller_scope(sites_store, None)
    assert owner.role == "admin" and owner.via == "local" and owner.actor.startswith("local:")
    add_account(sites_store, owner, "ada", "admin", password=PW)
    with pytest.raises(AuthError, match="has accounts: pass --token"):
        local_owner_scope(sites_store)
    with pytest.raises(AuthError, match="not a sitetwin token"):
        caller_scope(sites_store, "hunter2")


def test_the_account_count_includes_disabled_accounts(people):
    from sitetwin.oversight.queries import account_count

    assert account_count(people) == 3
    disable_account(people, ADMIN, "gate-1")
    assert account_count(people) == 3
