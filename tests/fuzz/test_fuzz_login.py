"""Fuzzing the login form (issue 14, items 3 and 4): any ``next``, any user name, never a 500.

Through the Flask test client of a real workbench (a store with one admin account), 200 examples
each: the login page renders any ``next`` as a local path, and a login POST answers 302, 401 or
429 only; a 302 leads to a path on this server (what a browser would make of the ``Location``,
tabs and line breaks dropped, backslashes read as slashes), and only a 302 adds a session.
``safe_next`` itself gets 500 examples of text built from the pieces redirect tricks are made of.
"""

from __future__ import annotations

import html
import itertools
import re
from urllib.parse import urljoin, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

PW = "correct horse battery"
BASE = "http://localhost"
PIECES = ["/", "//", "\\", "\t", "\n", "\r", " ", "\x00", "\x0b", "\x7f", "\u3000", "\u2028", "\ufeff", "\uff0f",
          "evil.example", "http:", "https://", "javascript:", "%0d%0a", "%2F", "%5C", "%09", ".", "..", "?", "#",
          "@", ":", "findings", "site=DEMO", "&", "=", "\u00e9", "\ud800"]
KNOWN = ["/\t/evil.example", "//evil.example", "/\r\nSet-Cookie:x", "https://evil.example", "/\\evil.example",
         "/findings?site=DEMO"]
# what a form can carry (a browser cannot send a lone surrogate) and what safe_next may be handed at all
sendable = st.characters(blacklist_categories=("Cs",))
next_values = st.one_of(st.lists(st.sampled_from(PIECES[:-1]), max_size=8).map("".join),
                        st.text(sendable, max_size=40), st.sampled_from(KNOWN))
any_next = st.one_of(next_values, st.lists(st.sampled_from(PIECES), max_size=8).map("".join), st.text(max_size=40))
usernames = st.one_of(st.just("ada"), st.just("ada"), st.text(sendable, max_size=70),
                      st.lists(st.sampled_from(["ada", "'", "\x00", "\n", " ", "%", "x" * 70]),
                               max_size=4).map("".join))
_addresses = (f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}" for i in itertools.count(1))


def browser_target(location: str) -> tuple[str, str]:
    """(scheme://host, path) a browser goes to for ``location`` on BASE: it drops tabs and line breaks
    and reads backslashes as slashes (the WHATWG URL parser) before resolving."""
    cleaned = re.sub(r"[\t\n\r]", "", location).strip("\x00 \x1f").replace("\\", "/")
    parts = urlsplit(urljoin(BASE + "/", cleaned))
    return f"{parts.scheme}://{parts.netloc}", parts.path


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """A workbench on a store with one admin; argon2 at its lowest cost here, so that 200 logins take seconds
    (the cost is a parameter of the hash: the real argon2 checks every password)."""
    from argon2 import PasswordHasher

    from sitetwin.dashboards.app import create_app
    from sitetwin.data.store import open_store
    from sitetwin.oversight import accounts

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
        mp.setattr(accounts, "_DUMMY_HASH", None)
        db = tmp_path_factory.mktemp("fuzz-login") / "login.duckdb"
        with open_store(db) as store:
            accounts.add_account(store, accounts.local_owner_scope(store), "ada", "admin", password=PW)
        app = create_app(db)
        app.server.testing = True
        yield app


def _sessions(app) -> int:
    from sitetwin.dashboards.connections import read_store

    with read_store(app.server.config["SITETWIN_DB"]) as store:
        return store.scalar("SELECT count(*) FROM sessions")


@settings(max_examples=500)
@given(any_next)
def test_safe_next_only_ever_answers_a_local_path(target):
    from sitetwin.dashboards.access import safe_next

    safe = safe_next(target)
    assert safe == "/" or safe == target
    assert browser_target(safe)[0] == BASE
    assert not browser_target(safe)[1].startswith("//")


def test_any_next_and_user_name_get_an_answer_and_a_local_redirect(app):
    client = app.server.test_client()          # one browser, seen from a new address each time
    client.get("/login")
    logins = []

    @settings(max_examples=200)
    @given(nxt=next_values, username=usernames, in_query=st.booleans())
    def attempt(nxt, username, in_query):
        address = {"REMOTE_ADDR": next(_addresses)}
        if in_query:
            page = client.get("/login", query_string={"next": nxt}, environ_base=address)
            assert page.status_code == 200
            _assert_form_next_is_local(page)
        form = {"username": username, "password": PW, "csrf": client.get_cookie("_csrf_token").value}
        if not in_query:
            form["next"] = nxt
        resp = client.post("/login", data=form, query_string={"next": nxt} if in_query else None,
                           headers={"Origin": BASE}, environ_base=address)
        assert resp.status_code in (302, 401, 429), resp.get_data(as_text=True)[:300]
        if resp.status_code == 302:
            logins.append(username)
            origin, path = browser_target(resp.headers["Location"])
            assert origin == BASE and path.startswith("/") and not path.startswith("//"), resp.headers["Location"]
        else:
            _assert_form_next_is_local(resp)

    before = _sessions(app)
    attempt()
    assert logins and {u.strip() for u in logins} == {"ada"}     # the form strips blanks around the name
    assert _sessions(app) == before + len(logins)        # a refused login opened no session


def _assert_form_next_is_local(page):
    shown = html.unescape(re.search(r'name="next" value="([^"]*)"', page.get_data(as_text=True)).group(1))
    assert browser_target(shown)[0] == BASE and not browser_target(shown)[1].startswith("//"), shown
