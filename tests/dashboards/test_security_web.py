"""The workbench's web defences (issue 14, items 1, 3, 4, 5 and 8), most of them over a real HTTP server.

- Redirects after a login stay on this server whatever ``next`` says (real server, ``http.client``,
  no redirect following): tabs, backslashes, ``//host``, schemes and line breaks end at a local path.
- Login throttling slows down a guesser by (user, source) and by source, never locks the owner out
  from elsewhere, needs no store lock for a throttled attempt, believes ``X-Forwarded-For`` only from
  a trusted proxy, and never says the source address.
- A session revoked by another process reads nothing on the next request, even while a writer holds
  the store (so the guard falls back to its last-known caller).
- The CSRF token is bound to the session, POSTs from another origin are refused, ``/logout`` needs a
  POST with the token, every response carries the security headers, evidence is cached privately,
  and a request body over the limit gets a 413.
"""

from __future__ import annotations

import html
import http.client
import json
import re
import subprocess
import sys
import threading
import time
from http.cookies import SimpleCookie
from urllib.parse import urlencode, urljoin, urlsplit

import pytest

PASSWORD = "correct horse battery"
EVIL = "http://evil.example"
HOSTILE_NEXT = [
    "/\t/evil.example", "//evil.example", "/\r\nSet-Cookie:x", "/%0d%0aSet-Cookie:x", "https://evil.example",
    "/\\evil.example", "\\\\evil.example", " //evil.example", "/\n/evil.example", "///evil.example",
    "http:evil.example", "javascript:alert(1)", "/.//evil.example", "/\u3000/evil.example", "//evil.example/%2F..",
    "/\x00", "", "findings", "/findings?site=DEMO",
]

# A second process ends a session (or disables its account) and then holds the store's write lock for a
# while, as a long import does: the workbench cannot re-read the session before the data read gets in.
REVOKE_AND_HOLD = """
import sys, time
from sitetwin.data.store import open_store
from sitetwin.oversight.accounts import disable_account, logout
from sitetwin.oversight.scope import Scope

db, how, who, hold_s = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
store = open_store(db)
with store.transaction():
    if how == "logout":
        logout(store, who)
    else:
        disable_account(store, Scope.system("test"), who)
print("held", flush=True)
time.sleep(hold_s)
store.close()
"""


@pytest.fixture(scope="module")
def accounts_db(site_db, store_copy, tmp_path_factory):
    """A copy of the generated site with accounts: ada (admin); cole, carl, cleo and dina (contractors of DEMO)."""
    from sitetwin.data.store import open_store
    from sitetwin.oversight.accounts import add_account, local_owner_scope

    db = store_copy(site_db[0], tmp_path_factory.mktemp("security-web"))
    with open_store(db) as store:
        owner = local_owner_scope(store)
        add_account(store, owner, "ada", "admin", password=PASSWORD)
        for user in ("cole", "carl", "cleo", "dina"):
            add_account(store, owner, user, "contractor", password=PASSWORD, sites=["DEMO"])
    return db


@pytest.fixture(scope="module")
def secured(accounts_db):
    from sitetwin.dashboards.app import create_app

    app = create_app(accounts_db)
    app.server.testing = True
    return app


@pytest.fixture(scope="module")
def served(secured):
    from sitetwin.dashboards.app import BackgroundServer

    server = BackgroundServer(secured)
    yield server
    server.stop()


# --------------------------------------------------------------------------------------
# a browser without a browser: http.client, a cookie jar, no redirect following

class Http:
    def __init__(self, base: str):
        self.base = base
        parts = urlsplit(base)
        self.host, self.port = parts.hostname, parts.port
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, *, body: bytes | None = None, headers: dict | None = None):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        sent = dict(headers or {})
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        try:
            conn.request(method, path, body=body, headers=sent)
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        for header in resp.headers.get_all("Set-Cookie") or []:
            jar = SimpleCookie()
            jar.load(header)
            for name, morsel in jar.items():
                if morsel["max-age"] == "0" or "1970" in morsel["expires"]:
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        return resp.status, resp.headers, data

    def post_form(self, path: str, fields: dict, *, origin: str | None = None):
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Origin": origin or self.base}
        return self.request("POST", path, body=urlencode(fields).encode(), headers=headers)

    def login(self, user: str, password: str = PASSWORD, nxt: str = "/"):
        self.request("GET", "/login")
        return self.post_form("/login", {"username": user, "password": password, "next": nxt,
                                         "csrf": self.cookies["_csrf_token"]})


def stays_here(location: str, base: str) -> bool:
    """Whether a Location header leads a browser to a path on ``base`` (and to nothing else)."""
    if any(ord(c) < 0x21 or ord(c) == 0x7F or c == "\\" for c in location):
        return False
    parts = urlsplit(location)
    if parts.scheme or parts.netloc or not parts.path.startswith("/") or parts.path.startswith("//"):
        return False
    resolved = urlsplit(urljoin(base + "/", location))
    return (resolved.scheme, resolved.netloc) == tuple(urlsplit(base)[:2])


# --------------------------------------------------------------------------------------
# item 3: redirects after a login

@pytest.mark.parametrize("nxt", HOSTILE_NEXT)
def test_a_login_cannot_redirect_to_another_host_or_crash_on_a_hostile_next(served, nxt):
    client = Http(served.url)
    status, headers, page = client.request("GET", "/login?" + urlencode({"next": nxt}))
    assert status == 200
    form_next = html.unescape(re.search(r'name="next" value="([^"]*)"', page.decode()).group(1))
    assert stays_here(form_next, served.url), form_next
    status, headers, page = client.login("cole", nxt=nxt)
    assert status == 302, page[:300]
    assert stays_here(headers["Location"], served.url), headers["Location"]
    assert all(not h.strip().startswith("x") for h in headers.get_all("Set-Cookie") or [])


def test_a_safe_next_keeps_the_page_the_caller_wanted(served):
    status, headers, _ = Http(served.url).login("cole", nxt="/findings?site=DEMO&finding=F1")
    assert status == 302 and headers["Location"] == "/findings?site=DEMO&finding=F1"


# --------------------------------------------------------------------------------------
# item 4: login throttling

def _client_from(app, address: str, forwarded_for: str | None = None):
    http_client = app.server.test_client()
    http_client.environ_base["REMOTE_ADDR"] = address
    if forwarded_for:
        http_client.environ_base["HTTP_X_FORWARDED_FOR"] = forwarded_for
    http_client.get("/login")
    return http_client


def _post_login(http_client, user, password):
    return http_client.post("/login", data={"username": user, "password": password, "next": "/",
                                            "csrf": http_client.get_cookie("_csrf_token").value},
                            headers={"Origin": "http://localhost"})


def test_a_flood_of_wrong_passwords_cannot_lock_the_owner_out_from_another_address(secured):
    from sitetwin.oversight import accounts

    attacker = _client_from(secured, "203.0.113.77")
    statuses = [_post_login(attacker, "carl", f"guess {i}").status_code
                for i in range(accounts.FREE_FAILURES_PER_PAIR + 3)]
    assert statuses[:accounts.FREE_FAILURES_PER_PAIR] == [401] * accounts.FREE_FAILURES_PER_PAIR
    assert statuses[-1] == 429
    refused = _post_login(attacker, "carl", PASSWORD)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    text = refused.get_data(as_text=True)
    assert "too many failed logins" in text and "203.0.113.77" not in text
    owner = _client_from(secured, "198.51.100.7")
    assert _post_login(owner, "carl", PASSWORD).status_code == 302


def test_a_throttled_login_attempt_never_waits_for_the_stores_lock(secured, accounts_db):
    from sitetwin.data.store import open_store
    from sitetwin.oversight import accounts

    attacker = _client_from(secured, "203.0.113.78")
    for i in range(accounts.FREE_FAILURES_PER_PAIR):
        assert _post_login(attacker, "cleo", f"guess {i}").status_code == 401
    with open_store(accounts_db, read_only=True) as store:
        rows_before = store.scalar("SELECT count(*) FROM login_attempts")
    holder = subprocess.Popen([sys.executable, "-c", REVOKE_AND_HOLD, str(accounts_db), "logout", "sts_none", "8"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        t = time.perf_counter()
        for _ in range(10):
            assert _post_login(attacker, "cleo", "guess again").status_code == 429
        elapsed = time.perf_counter() - t
    finally:
        holder.kill()
        holder.wait(10)
    assert elapsed < 2.0, f"ten throttled attempts took {elapsed:.1f} s: they waited for the store"
    with open_store(accounts_db, read_only=True) as store:
        assert store.scalar("SELECT count(*) FROM login_attempts") == rows_before   # none was checked: none written


def test_the_login_refusals_never_echo_the_source_address(secured):
    client = _client_from(secured, "192.0.2.201")
    for i in range(6):
        text = _post_login(client, f"nobody{i % 2}", "wrong").get_data(as_text=True)
        assert "192.0.2.201" not in text


def test_behind_a_trusted_proxy_callers_are_throttled_by_their_own_address(accounts_db, monkeypatch):
    from sitetwin.dashboards.app import create_app
    from sitetwin.oversight import accounts

    monkeypatch.setenv("SITETWIN_TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1")
    app = create_app(accounts_db)
    proxy = "10.1.2.3"
    attacker = _client_from(app, proxy, "203.0.113.80")
    for i in range(accounts.FREE_FAILURES_PER_SOURCE + 2):   # every name from one caller: the source throttle
        _post_login(attacker, f"user{i}", "wrong")
    assert _post_login(attacker, "ada", PASSWORD).status_code == 429
    # another caller behind the same proxy is someone else
    assert _post_login(_client_from(app, proxy, "spoofed, 198.51.100.20"), "ada", PASSWORD).status_code == 302


def test_forwarded_for_from_an_untrusted_peer_is_ignored(accounts_db, monkeypatch):
    from sitetwin.dashboards.app import create_app
    from sitetwin.oversight import accounts

    monkeypatch.delenv("SITETWIN_TRUSTED_PROXIES", raising=False)
    app = create_app(accounts_db)
    for i in range(accounts.FREE_FAILURES_PER_PAIR + 1):      # a new made-up address each time: still one source
        resp = _post_login(_client_from(app, "203.0.113.81", f"198.51.100.{i}"), "ada", "wrong")
    assert resp.status_code == 429


def test_client_address_takes_the_nearest_untrusted_hop():
    from sitetwin.dashboards.access import client_address, trusted_networks

    nets = trusted_networks("10.0.0.0/8,::1")
    assert client_address("10.0.0.5", "1.2.3.4, 5.6.7.8, 10.0.0.9", nets) == "5.6.7.8"
    assert client_address("203.0.113.1", "5.6.7.8", nets) == "203.0.113.1"            # not a proxy of ours
    assert client_address("10.0.0.5", "not-an-ip, 10.0.0.9", nets) == "10.0.0.9"     # stops at a broken hop
    assert client_address("::1", "[2001:db8::1]:443", nets) == "2001:db8::1"
    assert client_address("10.0.0.5", "", nets) == "10.0.0.5"
    with pytest.raises(ValueError, match="SITETWIN_TRUSTED_PROXIES: 'proxy.local'"):
        trusted_networks("10.0.0.1, proxy.local")


# --------------------------------------------------------------------------------------
# item 5: revocation counts on the next request

def _overview(access_helpers, app, client):
    return client.call(_overview_body(access_helpers, app))


@pytest.mark.parametrize("how, via", [("logout", "callback"), ("disable", "media")])
def test_a_session_revoked_by_another_process_reads_nothing_while_a_writer_holds_the_store(
        accounts_db, access_helpers, site_db, how, via):
    from sitetwin.dashboards.app import create_app

    app = create_app(accounts_db)
    app.server.testing = True
    client = access_helpers.Client(app)
    user = "carl" if how == "logout" else "dina"
    assert client.login(user, PASSWORD).status_code == 302
    hazard = site_db[1]["panoramas"][0]["hazards"][0]

    def read():
        if via == "media":
            resp = client.http.get(f"/media/evidence/{hazard}/0")
            return resp.status_code, resp.data
        resp = _overview(access_helpers, app, client)
        return resp.status_code, resp.data

    status, data = read()
    assert status == 200 and (b"Riverside Tower" in data or data[:2] == b"\xff\xd8")   # served while valid
    session = client.http.get_cookie("sitetwin_session").value
    holder = subprocess.Popen([sys.executable, "-c", REVOKE_AND_HOLD, str(accounts_db), how,
                               session if how == "logout" else user, "3"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        status, data = read()       # the guard cannot re-read the session within its wait: its last-known caller
    finally:
        holder.wait(30)
    assert b"Riverside Tower" not in data and data[:2] != b"\xff\xd8"
    if via == "media":
        assert status == 401 and b"session has ended" in data
    else:
        assert b"session has ended" in data
    assert read()[0] == 401                                           # and from then on, plainly


# --------------------------------------------------------------------------------------
# item 8: CSRF bound to the session, origin checked, logout by POST, headers, private caching

def _finding_events(db) -> int:
    from sitetwin.data.store import open_store

    with open_store(db, read_only=True) as store:
        return store.scalar("SELECT count(*) FROM finding_events") + store.scalar("SELECT count(*) FROM findings")


def _comment_call(access_helpers, app, accounts_db):
    """A callback that writes (a workflow step with a note on a DEMO finding), as a body."""
    from sitetwin.data.store import open_store

    with open_store(accounts_db, read_only=True) as store:
        finding = store.scalar("SELECT finding_id FROM findings WHERE site_code = 'DEMO' ORDER BY number LIMIT 1")
    callbacks = access_helpers._callbacks(app)
    key = next(k for k in callbacks if k.startswith("..findings-action-msg.children"))
    return access_helpers._body(key, callbacks[key], lambda i, p: access_helpers._value(
        i, p, "DEMO", None, None, None, None, finding))


def test_a_csrf_cookie_and_header_of_the_attackers_choosing_post_nothing(secured, accounts_db, access_helpers):
    client = access_helpers.Client(secured)
    assert client.login("ada", PASSWORD).status_code == 302
    body = _comment_call(access_helpers, secured, accounts_db)
    before = _finding_events(accounts_db)
    client.http.set_cookie("_csrf_token", "chosen-by-the-attacker")
    resp = client.http.post("/_dash-update-component", json=body,
                            headers={"X-CSRFToken": "chosen-by-the-attacker", "Origin": EVIL})
    assert resp.status_code == 403
    resp = client.http.post("/_dash-update-component", json=body,       # the same pair, from our own origin
                            headers={"X-CSRFToken": "chosen-by-the-attacker", "Origin": client.ORIGIN})
    assert resp.status_code == 403 and "CSRF" in resp.get_json()["error"]
    assert _finding_events(accounts_db) == before


def test_a_csrf_token_of_another_session_is_refused(secured, access_helpers):
    one, other = access_helpers.Client(secured), access_helpers.Client(secured)
    one.login("ada", PASSWORD)
    other.login("ada", PASSWORD)
    assert one.csrf != other.csrf
    resp = one.http.post("/_dash-update-component", json={"output": "x.y", "inputs": []},
                         headers={"X-CSRFToken": other.csrf, "Origin": one.ORIGIN})
    assert resp.status_code == 403


def test_a_login_form_token_of_the_attackers_choosing_is_refused(secured):
    http_client = secured.server.test_client()
    http_client.set_cookie("_csrf_token", "mine")
    resp = http_client.post("/login", data={"username": "ada", "password": PASSWORD, "csrf": "mine"},
                            headers={"Origin": "http://localhost"})
    assert resp.status_code == 403 and "form expired" in resp.get_data(as_text=True)
    assert http_client.get_cookie("sitetwin_session") is None


@pytest.mark.parametrize("headers", [{"Origin": EVIL}, {"Referer": EVIL + "/page"}, {"Origin": "null"},
                                     {"Origin": "http://localhost.evil.example"}])
def test_a_post_from_another_origin_is_refused_even_with_the_right_token(secured, accounts_db, access_helpers,
                                                                         headers):
    client = access_helpers.Client(secured)
    client.login("ada", PASSWORD)
    body = _comment_call(access_helpers, secured, accounts_db)
    before = _finding_events(accounts_db)
    resp = client.http.post("/_dash-update-component", json=body, headers={"X-CSRFToken": client.csrf, **headers})
    assert resp.status_code == 403 and "another site" in resp.get_json()["error"]
    assert _finding_events(accounts_db) == before
    login = secured.server.test_client().post("/login", data={"username": "ada", "password": PASSWORD},
                                              headers=headers)
    assert login.status_code == 403


def test_a_same_origin_post_with_the_bound_token_is_served(secured, access_helpers):
    client = access_helpers.Client(secured)
    client.login("ada", PASSWORD)
    body = _overview_body(access_helpers, secured)
    # our page's Origin, our page as Referer, or neither (not a browser: the bound token decides)
    for extra in ({"Origin": client.ORIGIN}, {"Referer": client.ORIGIN + "/findings"}, {}):
        resp = client.http.post("/_dash-update-component", json=body, headers={"X-CSRFToken": client.csrf, **extra})
        assert resp.status_code == 200 and b"Riverside Tower" in resp.data, extra


def _overview_body(access_helpers, app):
    callbacks = access_helpers._callbacks(app)
    key = next(k for k in callbacks if k.startswith("..overview-title.children"))
    return access_helpers._body(key, callbacks[key], lambda i, p: "DEMO" if i == "overview-site" else None)


def test_a_link_or_a_forged_post_cannot_log_anyone_out(secured, access_helpers):
    client = access_helpers.Client(secured)
    client.login("cole", PASSWORD)
    page = client.http.get("/logout")
    assert page.status_code == 200 and b'method="post"' in page.data          # GET only asks
    assert client.http.get("/").status_code == 200
    assert client.http.post("/logout", headers={"Origin": client.ORIGIN}).status_code == 403   # no token
    assert client.http.post("/logout", data={"csrf": client.csrf}, headers={"Origin": EVIL}).status_code == 403
    assert client.http.get("/").status_code == 200
    resp = client.http.post("/logout", data={"csrf": client.csrf}, headers={"Origin": client.ORIGIN})
    assert resp.status_code == 302 and resp.headers["Location"] == "/login"
    assert client.http.get("/").status_code == 302


def test_the_shells_logout_is_a_post_form_with_the_sessions_token(secured, access_helpers):
    client = access_helpers.Client(secured)
    client.login("cole", PASSWORD)
    layout = json.dumps(client.http.get("/_dash-layout").get_json())
    assert '"shell-logout-form"' in layout and '"method": "post"' in layout and client.csrf in layout


def _check_headers(headers, path):
    csp = headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp, path
    script_src = next(p for p in csp.split(";") if p.strip().startswith("script-src"))
    assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src, (path, script_src)
    assert headers["X-Frame-Options"] == "DENY", path
    assert headers["Referrer-Policy"] in ("same-origin", "no-referrer"), path
    assert headers["X-Content-Type-Options"] == "nosniff", path


def test_every_response_carries_the_security_headers(served, site_db):
    client = Http(served.url)
    status, _, _ = client.login("cole")
    assert status == 302
    hazard = site_db[1]["panoramas"][0]["hazards"][0]
    paths = ["/", "/login", "/logout", "/findings?site=DEMO", "/_dash-layout", "/_dash-dependencies",
             f"/media/evidence/{hazard}/0", "/media/evidence/HXXXX/0", "/no/such/page", "/assets/style.css"]
    for path in paths:
        status, headers, _ = client.request("GET", path)
        assert status < 500, path
        _check_headers(headers, path)
    status, headers, _ = Http(served.url).request("POST", "/_dash-update-component", body=b"{}",
                                                  headers={"Content-Type": "application/json"})
    assert status in (401, 403)
    _check_headers(headers, "POST without a session")


def test_evidence_crops_are_cached_privately_only(served, site_db):
    client = Http(served.url)
    client.login("cole")
    hazard = site_db[1]["panoramas"][0]["hazards"][0]
    status, headers, data = client.request("GET", f"/media/evidence/{hazard}/0")
    assert status == 200 and data[:2] == b"\xff\xd8"
    cache = headers["Cache-Control"]
    assert "private" in cache and "public" not in cache
    assert "cookie" in headers.get("Vary", "").lower()


def test_a_request_body_over_the_limit_is_refused_with_413(served, secured, access_helpers):
    client = Http(served.url)
    client.login("cole")
    big = json.dumps({"output": "x.y", "inputs": [{"id": "a", "property": "value", "value": "x" * (2 << 20)}]})
    status, headers, data = client.request("POST", "/_dash-update-component", body=big.encode(), headers={
        "Content-Type": "application/json", "X-CSRFToken": client.cookies["_csrf_token"], "Origin": served.url})
    assert status == 413
    assert "too large" in json.loads(data)["error"]
    limit = secured.server.config["MAX_CONTENT_LENGTH"]
    assert limit == 1 << 20


def test_the_request_limit_is_configurable_and_checked(accounts_db, monkeypatch):
    from sitetwin.dashboards.access import request_limit
    from sitetwin.dashboards.app import create_app

    monkeypatch.setenv("SITETWIN_MAX_REQUEST_BYTES", "4096")
    app = create_app(accounts_db)
    resp = app.server.test_client().post("/_dash-update-component", data=b"x" * 5000,
                                         headers={"Content-Type": "application/json"})
    assert resp.status_code == 413 and "4,096 bytes" in resp.get_json()["error"]
    for bad in ("lots", "-1", "10"):
        with pytest.raises(ValueError, match="SITETWIN_MAX_REQUEST_BYTES"):
            request_limit(bad)


def test_many_logins_at_once_all_get_an_answer(served):
    """Logins, wrong and right, from threads at once: each answered (302, 401 or 429), none lost or 500."""
    results: list[int] = []

    def one(i):
        status, _, _ = Http(served.url).login("ada" if i % 2 else "nobody", PASSWORD if i % 2 else "wrong")
        results.append(status)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 8 and set(results) <= {302, 401, 429} and 302 in results


@pytest.mark.browser
def test_logging_in_and_out_in_a_browser_under_the_content_security_policy(browser, served):
    from selenium.webdriver.common.by import By

    driver = browser.driver
    driver.delete_all_cookies()
    driver.get_log("browser")
    driver.get(served.url + "/overview?site=DEMO")
    deadline = time.monotonic() + 30
    while "login" not in driver.current_url and time.monotonic() < deadline:
        time.sleep(0.2)
    driver.find_element(By.ID, "login-username").send_keys("cole")
    driver.find_element(By.ID, "login-password").send_keys(PASSWORD)
    driver.find_element(By.ID, "login-submit").click()
    while time.monotonic() < deadline:
        found = driver.find_elements(By.ID, "shell-logout")
        if found and found[0].is_displayed():
            break
        time.sleep(0.2)
    else:
        pytest.fail("the shell with its logout button did not appear after the login")
    assert urlsplit(driver.current_url).path == "/overview"
    driver.find_element(By.ID, "shell-logout").click()
    while "/login" not in driver.current_url and time.monotonic() < deadline:
        time.sleep(0.2)
    assert urlsplit(driver.current_url).path == "/login"
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE" and "favicon" not in e["message"]]
    assert errors == []
    # and the policy is in force: a script injected into the page does not run, and the browser says why
    driver.execute_script("const s = document.createElement('script'); s.textContent = 'window.__injected = 1;';"
                          "document.body.appendChild(s);")
    assert driver.execute_script("return window.__injected === undefined;")
    assert any("Content Security Policy" in e["message"] for e in driver.get_log("browser"))
