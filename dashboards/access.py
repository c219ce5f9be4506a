"""Who is asking, in one place: every page, callback, media file and download goes through here.

The caller is resolved from the session cookie (a ``sts_`` token from
``oversight.accounts.login``) into an ``oversight.Scope``. While the store has no accounts
at all, the workbench runs open as the local owner with the admin scope, as the CLI does
(``oversight.accounts.local_owner_scope``); once an account exists, every request needs a
session.

Enforcement has three layers, all installed by :func:`install`:

1. a Flask ``before_request`` hook refuses every request without a caller (HTML pages are
   redirected to ``/login``, Dash's JSON endpoints, media and downloads get 401) and checks
   the CSRF double-submit token on every POST;
2. callbacks read data only through :func:`site_store` (or :func:`scoped_store`), which
   opens a short read-only connection and refuses a site outside the caller's scope with
   ``oversight.AccessDenied``; the app's ``on_error`` turns that into a message and no
   update, so nothing of the site leaves the server;
3. media and download routes are registered with :func:`scoped_route`, which resolves the
   object's site and applies the same check before the handler runs.

``tests/dashboards/test_access.py`` walks every registered route and every registered
callback for every role.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import html
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sitetwin.dashboards.connections import READ_LOCK_TIMEOUT_S, data_version, read_store, write_store
from sitetwin.data.clock import utcnow
from sitetwin.data.store import Store

SESSION_COOKIE = "sitetwin_session"
CSRF_COOKIE = "_csrf_token"          # the names dash-renderer reads and sends (Dash's defaults)
CSRF_HEADER = "X-CSRFToken"
CALLER_CACHE_S = 10.0                # a caller resolved for a token is reused this long (or until the store changes)
STALE_CALLER_S = 300.0               # ... and this long while a writer holds the store (see resolve_caller)
BUSY_WAIT_S = 1.0                    # how long to wait for the lock before using that last-known caller
# Paths anyone may fetch: the login form and the static JavaScript/CSS bundles (no site data).
PUBLIC_PREFIXES = ("/login", "/logout", "/_dash-component-suites/", "/assets/", "/_favicon.ico")
JSON_PREFIXES = ("/_dash-", "/media/", "/download/")

_DB: contextvars.ContextVar[str | None] = contextvars.ContextVar("sitetwin_dashboard_db", default=None)
_caller_cache: dict[tuple, tuple[float, Caller | None]] = {}
_last_known: dict[tuple, tuple[float, Caller | None]] = {}


@dataclass(frozen=True)
class Caller:
    """The person (or local owner) behind a request, and what their role lets them see."""

    scope: Any                 # oversight.Scope
    open_store: bool           # the store has no accounts: local owner, admin scope
    token: str | None = None

    @property
    def label(self) -> str:
        return f"{self.scope.actor} ({self.scope.role})"


# --------------------------------------------------------------------------------------
# which store, which caller

def bind_db(fn: Callable, db: str) -> Callable:
    """Run ``fn`` with ``db`` as the current store (callbacks may run outside Flask: background jobs)."""

    @functools.wraps(fn)
    def run(*args, **kwargs):
        token = _DB.set(db)
        try:
            return fn(*args, **kwargs)
        finally:
            _DB.reset(token)

    return run


def current_db() -> str:
    db = _DB.get()
    if db is not None:
        return db
    import flask

    return flask.current_app.config["SITETWIN_DB"]


def _request_token() -> str | None:
    import flask

    if flask.has_request_context():
        return flask.request.cookies.get(SESSION_COOKIE)
    import dash

    try:
        return (dash.ctx.cookies or {}).get(SESSION_COOKIE)
    except Exception:      # outside any callback
        return None


def resolve_caller(db: str | Path, token: str | None) -> Caller | None:
    """The caller a session token stands for (None: not logged in, or the session is gone).

    While another process holds the store's write lock (a long survey import), a caller
    resolved in the last ``STALE_CALLER_S`` seconds is reused after a short wait, so that the
    pages, and the polls of the background job doing the writing, keep being answered.
    """
    from sitetwin.data.errors import StoreError

    key = (str(db), token, data_version(db))
    hit = _caller_cache.get(key)
    now = time.monotonic()
    if hit is not None and now - hit[0] < CALLER_CACHE_S:
        return hit[1]
    known = _last_known.get((str(db), token))
    fresh = known is not None and now - known[0] < STALE_CALLER_S
    try:
        caller = _read_caller(db, token, lock_timeout_s=BUSY_WAIT_S if fresh else READ_LOCK_TIMEOUT_S)
    except StoreError:
        if fresh and known is not None:
            return known[1]
        raise
    if len(_caller_cache) > 256:
        _caller_cache.clear()
    _caller_cache[key] = (now, caller)
    _last_known[(str(db), token)] = (now, caller)
    return caller


def _read_caller(db, token: str | None, *, lock_timeout_s: float) -> Caller | None:
    from sitetwin.oversight.accounts import authenticate, has_accounts, local_owner_scope
    from sitetwin.oversight.errors import AuthError

    with read_store(db, lock_timeout_s=lock_timeout_s) as store:
        if not has_accounts(store):
            return Caller(local_owner_scope(store), True, None)
        if not token:
            return None
        try:
            return Caller(authenticate(store, token), False, token)
        except AuthError:
            return None


def current_caller() -> Caller | None:
    return resolve_caller(current_db(), _request_token())


def require_caller() -> Caller:
    from sitetwin.oversight.errors import AuthError

    caller = current_caller()
    if caller is None:
        raise AuthError("not logged in (or the session expired); log in again at /login")
    return caller


# --------------------------------------------------------------------------------------
# the only ways callbacks reach data

@contextlib.contextmanager
def scoped_store() -> Iterator[tuple[Store, Any]]:
    """A short read-only connection and the caller's scope, for reads across the sites in scope."""
    caller = require_caller()
    with read_store(current_db()) as store:
        yield store, caller.scope


@contextlib.contextmanager
def site_store(site_code: str | None, action: str = "read") -> Iterator[Store]:
    """A short read-only connection, once the caller may ``action`` on ``site_code``."""
    from sitetwin.oversight.errors import AccessDenied

    if not site_code:
        raise AccessDenied("no site chosen; pick one of your sites")
    caller = require_caller()
    with read_store(current_db()) as store:
        caller.scope.require_site(store, site_code, action)
        yield store


@contextlib.contextmanager
def site_write_store(site_code: str, action: str) -> Iterator[tuple[Store, Any]]:
    """A short read-write connection for the few writes the app makes (raising a finding)."""
    caller = require_caller()
    with write_store(current_db()) as store:
        caller.scope.require_site(store, site_code, action)
        yield store, caller.scope


@contextlib.contextmanager
def object_write_store(table: str, key_column: str, key: str | None, action: str) -> Iterator[tuple[Store, str, Any]]:
    """A short read-write connection, the object's site and the caller's scope, once the caller may
    ``action`` on that site (an unknown object is refused like one out of scope)."""
    from sitetwin.oversight.errors import AccessDenied

    caller = require_caller()
    with write_store(current_db()) as store:
        site = site_of(store, table, key_column, key) if key else None
        if site is None or not caller.scope.admits(store, site):
            raise AccessDenied(f"{caller.label}: {key_column} {key!r} is not in your scope")
        from sitetwin.oversight.audit import guard

        # a refused action is logged (audit "denied") before it is raised
        guard(store, caller.scope, action, site, what=f"{table[:-1]} {key}", object_kind=table[:-1], object_id=key)
        yield store, site, caller.scope


@contextlib.contextmanager
def write_store_for() -> Iterator[Store]:
    """A short read-write connection for writes the library scopes itself (scoring, escalation)."""
    require_caller()
    with write_store(current_db()) as store:
        yield store


def sites_in_scope() -> list[dict]:
    """The caller's sites (code, name, district, city), sorted by code."""
    with scoped_store() as (store, scope):
        cond, params = scope.where("site_code")
        return store.rows(f"SELECT site_code, name, district, city FROM sites WHERE {cond} ORDER BY site_code",
                          params)


def site_of(store: Store, table: str, key_column: str, key: str) -> str | None:
    """The site an object belongs to (for routes and callbacks addressed by an object id)."""
    if table not in OBJECT_TABLES or OBJECT_TABLES[table] != key_column:
        raise ValueError(f"no object lookup for {table}.{key_column}")
    return _site_readers()[table](store, key)


OBJECT_TABLES = {"panoramas": "pano_id", "hazards": "hazard_id", "surveys": "survey_id", "detections": "detection_id",
                 "findings": "finding_id"}


def _site_readers() -> dict:
    """Table -> the owning package's reader of an object's site (each package answers for its own tables)."""
    from sitetwin.oversight.queries import finding_site
    from sitetwin.panorama.queries import panorama_site
    from sitetwin.twin.queries import survey_site
    from sitetwin.vision.queries import detection_site, hazard_site

    return {"panoramas": panorama_site, "hazards": hazard_site, "surveys": survey_site, "detections": detection_site,
            "findings": finding_site}


@contextlib.contextmanager
def object_store(table: str, key_column: str, key: str | None) -> Iterator[tuple[Store, str]]:
    """A read-only connection and the object's site, once the caller may read that site.

    An unknown object is refused with the same words as one out of scope, so ids cannot be probed.
    """
    from sitetwin.oversight.errors import AccessDenied

    caller = require_caller()
    with read_store(current_db()) as store:
        site = site_of(store, table, key_column, key) if key else None
        if site is None or not caller.scope.admits(store, site):
            raise AccessDenied(f"{caller.label}: {key_column} {key!r} is not in your scope")
        yield store, site


# --------------------------------------------------------------------------------------
# the Flask side: guard, login, logout, scoped routes

def install(server, db: str) -> None:
    """Install the request guard, CSRF check and the login/logout pages on the app's Flask server."""
    import flask

    server.config["SITETWIN_DB"] = str(db)

    @server.before_request
    def _guard():
        path = flask.request.path
        if path.startswith(PUBLIC_PREFIXES):
            return None
        if flask.request.method == "POST" and not _csrf_ok():
            return flask.jsonify({"error": "missing or wrong CSRF token; reload the page"}), 403
        from sitetwin.data.errors import StoreError

        try:
            caller = current_caller()
        except StoreError as exc:        # a writer holds the store for longer than a page should wait
            return flask.jsonify({"error": str(exc)}), 503
        if caller is None:
            if path.startswith(JSON_PREFIXES):
                return flask.jsonify({"error": "log in first", "login": "/login"}), 401
            return flask.redirect("/login?next=" + quote(flask.request.full_path.rstrip("?"), safe="/?=&"))
        flask.g.sitetwin_caller = caller
        return None

    @server.after_request
    def _csrf_cookie(response):
        if CSRF_COOKIE not in flask.request.cookies and response.mimetype == "text/html":
            response.set_cookie(CSRF_COOKIE, csrf_token(), samesite="Strict", httponly=False,
                                secure=flask.request.is_secure)
        return response

    @server.route("/login", methods=["GET", "POST"])
    def login_page():
        return _login(flask)

    @server.route("/logout", methods=["GET", "POST"])
    def logout_page():
        from sitetwin.oversight.accounts import logout

        token = flask.request.cookies.get(SESSION_COOKIE)
        if token:
            with write_store(flask.current_app.config["SITETWIN_DB"]) as store:
                logout(store, token)
        _caller_cache.clear()
        _last_known.clear()
        response = flask.redirect("/login")
        response.delete_cookie(SESSION_COOKIE)
        return response


def csrf_token() -> str:
    """This browser's CSRF token: its cookie, or a new one set on this response."""
    import flask

    token = flask.request.cookies.get(CSRF_COOKIE) or flask.g.get("sitetwin_csrf")
    if not token:
        token = flask.g.sitetwin_csrf = secrets.token_urlsafe(24)
    return token


def _csrf_ok() -> bool:
    import flask

    cookie = flask.request.cookies.get(CSRF_COOKIE)
    header = flask.request.headers.get(CSRF_HEADER)
    if flask.request.path == "/login":
        form = flask.request.form.get("csrf")
        return bool(cookie and secrets.compare_digest(cookie, form or ""))
    return bool(cookie and header and secrets.compare_digest(cookie, header))


def _safe_next(target: str | None) -> str:
    # only paths on this server: never "//evil.example" or "https://..."
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _login(flask):
    from sitetwin.oversight.accounts import has_accounts, login
    from sitetwin.oversight.errors import AuthError

    db = flask.current_app.config["SITETWIN_DB"]
    nxt = _safe_next(flask.request.values.get("next"))
    with read_store(db) as store:
        accounts = has_accounts(store)
    if not accounts:
        return _login_html(nxt, None, open_store=True)
    if flask.request.method == "GET":
        return _login_html(nxt, None)
    if not _csrf_ok():
        return _login_html(nxt, "the form expired; try again"), 403
    username = flask.request.form.get("username", "").strip()
    password = flask.request.form.get("password", "")
    try:
        with write_store(db) as store:
            session = login(store, username, password, source=flask.request.remote_addr or "web")
    except AuthError as exc:
        return _login_html(nxt, str(exc)), 401
    response = flask.redirect(nxt)
    max_age = int((session.expires_at - utcnow()).total_seconds())
    response.set_cookie(SESSION_COOKIE, session.token, max_age=max_age, httponly=True, samesite="Lax",
                        secure=flask.request.is_secure)
    return response




_LOGIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>sitetwin - log in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;background:#f3f4f6;margin:0;color:#1f2937}}
main{{max-width:22rem;margin:12vh auto;background:#fff;padding:2rem;border-radius:.5rem;
box-shadow:0 1px 3px rgba(0,0,0,.12)}}
h1{{font-size:1.3rem;margin:0 0 1rem}} label{{display:block;margin:.8rem 0 .2rem;font-size:.9rem}}
input{{width:100%;box-sizing:border-box;padding:.5rem;border:1px solid #cbd5e1;border-radius:.3rem}}
button{{margin-top:1.2rem;width:100%;padding:.6rem;border:0;border-radius:.3rem;background:#1d4ed8;color:#fff;
font-size:1rem;cursor:pointer}} .error{{color:#b91c1c;font-size:.9rem}} .note{{font-size:.9rem;color:#475569}}
</style></head><body><main id="login">
<h1>sitetwin workbench</h1>{body}</main></body></html>"""


def _login_html(nxt: str, error: str | None, *, open_store: bool = False) -> str:
    if open_store:
        body = ('<p class="note" id="login-open">This store has no accounts yet, so the workbench runs open as '
                'the local owner (admin). Create accounts with <code>sitetwin user add</code> to require a login.</p>'
                f'<p><a href="{html.escape(nxt)}">Open the workbench</a></p>')
        return _LOGIN_PAGE.format(body=body)
    csrf = csrf_token()
    err = f'<p class="error" id="login-error">{html.escape(error)}</p>' if error else ""
    body = (f'{err}<form method="post" action="/login">'
            f'<input type="hidden" name="next" value="{html.escape(nxt)}">'
            f'<input type="hidden" name="csrf" value="{html.escape(csrf)}">'
            '<label for="login-username">User name</label>'
            '<input id="login-username" name="username" autocomplete="username" required>'
            '<label for="login-password">Password</label>'
            '<input id="login-password" name="password" type="password" autocomplete="current-password" required>'
            '<button id="login-submit" type="submit">Log in</button></form>')
    return _LOGIN_PAGE.format(body=body)


def scoped_route(server, rule: str, *, table: str, key: str, endpoint: str | None = None):
    """Register a GET route whose ``<key>`` argument names an object of ``table``.

    The handler runs as ``handler(store, site_code, **route_args)`` only when the caller may
    read the object's site; otherwise the answer is 404 (the same as for an unknown id).
    """
    import flask

    def deco(handler):
        @functools.wraps(handler)
        def view(**kwargs):
            from sitetwin.oversight.errors import AccessDenied

            try:
                with object_store(table, key, kwargs.get(key)) as (store, site):
                    return handler(store, site, **kwargs)
            except AccessDenied:
                return flask.jsonify({"error": "not found"}), 404

        server.add_url_rule(rule, endpoint or handler.__name__, view, methods=["GET"])
        return handler

    return deco
