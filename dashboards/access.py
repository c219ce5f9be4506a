"""Who is asking, in one place: every page, callback, media file and download goes through here.

The caller is resolved from the session cookie (a ``sts_`` token from
``oversight.accounts.login``) into an ``oversight.Scope``. While the store has no accounts
at all, the workbench runs open as the local owner with the admin scope, as the CLI does
(``oversight.accounts.local_owner_scope``); once an account exists, every request needs a
session.

Enforcement has three layers, all installed by :func:`install`:

1. a Flask ``before_request`` hook refuses every request without a caller (HTML pages are
   redirected to ``/login``, Dash's JSON endpoints, media and downloads get 401), refuses a
   body over ``MAX_CONTENT_LENGTH`` (413; 1 MiB unless ``SITETWIN_MAX_REQUEST_BYTES`` or the
   app config says otherwise), and on every POST checks that it comes from this
   server's pages: the ``Origin`` (else ``Referer``) names this host, and the CSRF token is the
   one bound to this browser's session (see *CSRF* below);
2. callbacks read data only through :func:`site_store` (or :func:`scoped_store`), which
   opens a short read-only connection, checks the session again *in that connection* and
   refuses a site outside the caller's scope with ``oversight.AccessDenied``; the app's
   ``on_error`` turns that into a message and no update, so nothing of the site leaves the
   server;
3. media and download routes are registered with :func:`scoped_route`, which resolves the
   object's site and applies the same checks before the handler runs.

Revocation (a logout, a password change, a disabled account, from any process) takes effect on
the next request that reads data: the caller the guard resolved may be a cached one (reused for
``CALLER_CACHE_S``, or up to ``STALE_CALLER_S`` while another process holds the store, so that
pages and job polls keep being answered), but every data connection re-reads the session before
anything is read, so a stale caller never gets data.

CSRF: the token is an HMAC, under a key kept beside the store (``<db>.cache/web-secret.key``,
made on first use; a per-process key if that folder cannot be written), of the session token,
or before a login of a random pre-session cookie. It travels in the ``_csrf_token`` cookie,
which dash-renderer sends back as the ``X-CSRFToken`` header (the login and logout forms carry
it as a field), so a cookie and header pair of someone else's choosing is worth nothing. A POST
with neither ``Origin`` nor ``Referer`` (not a browser: scripts and tests) is judged by the
token alone; ``Origin: null`` is refused.

Every response carries a Content-Security-Policy (scripts from this server and the hashes of
Dash's own inline scripts only; ``frame-ancestors 'none'``), ``X-Frame-Options: DENY``,
``Referrer-Policy: same-origin`` and ``X-Content-Type-Options: nosniff``; media and downloads are
cached privately. Behind a reverse proxy, name it in ``SITETWIN_TRUSTED_PROXIES`` (addresses or
networks, comma-separated; or the app config key of that name): only then are its
``X-Forwarded-For`` (the caller's address, for login throttling and the audit log),
``X-Forwarded-Host`` and ``X-Forwarded-Proto`` believed.

``tests/dashboards/test_access.py`` walks every registered route and every registered
callback for every role; ``tests/dashboards/test_security_web.py`` checks the rest over HTTP.
"""

from __future__ import annotations

import base64
import contextlib
import contextvars
import functools
import hashlib
import hmac
import html
import ipaddress
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from sitetwin.dashboards.connections import READ_LOCK_TIMEOUT_S, data_version, read_store, write_store
from sitetwin.data import i18n
from sitetwin.data.clock import utcnow
from sitetwin.data.i18n import N_, Translator
from sitetwin.data.store import Store, cache_dir_for

_ = Translator("dashboards")

log = logging.getLogger("sitetwin.dashboards")

SESSION_COOKIE = "sitetwin_session"
LANG_COOKIE = "sitetwin_lang"        # the language picked with the switcher (?lang=), for this browser
LANG_PARAM = "lang"                  # ?lang=zh-CN|en on any page: the switcher
LANG_COOKIE_MAX_AGE_S = 365 * 86_400
PRESESSION_COOKIE = "sitetwin_presession"   # binds the login form's CSRF token before there is a session
CSRF_COOKIE = "_csrf_token"          # the names dash-renderer reads and sends (Dash's defaults)
CSRF_HEADER = "X-CSRFToken"
CSRF_FIELD = "csrf"                  # the login and logout forms' hidden field
CALLER_CACHE_S = 10.0                # a caller resolved for a token is reused this long (or until the store changes)
STALE_CALLER_S = 300.0               # ... and this long while a writer holds the store, by the guard only
BUSY_WAIT_S = 1.0                    # how long the guard waits for the lock before using that last-known caller
MAX_REQUEST_BYTES = 1 << 20          # a request body larger than this is refused (413); app config MAX_CONTENT_LENGTH
MAX_REQUEST_ENV = "SITETWIN_MAX_REQUEST_BYTES"
TRUSTED_PROXIES_ENV = "SITETWIN_TRUSTED_PROXIES"
WEB_SECRET_FILE = "web-secret.key"
# Paths anyone may fetch: the login form and the static JavaScript/CSS bundles (no site data).
STATIC_PREFIXES = ("/_dash-component-suites/", "/assets/", "/_favicon.ico")
PUBLIC_PREFIXES = ("/login", "/logout", *STATIC_PREFIXES)
JSON_PREFIXES = ("/_dash-", "/media/", "/download/", "/viewer/")
PRIVATE_PREFIXES = ("/media/", "/download/", "/viewer/")     # cached by the browser only, never by a shared cache
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")

# the roles as the header and the refusals name them (oversight.scope.ROLES)
ROLE_LABELS = {"admin": N_("admin"), "city_regulator": N_("city regulator"),
               "district_regulator": N_("district regulator"), "contractor": N_("contractor"),
               "enterprise": N_("enterprise"), "viewer": N_("viewer")}

_DB: contextvars.ContextVar[str | None] = contextvars.ContextVar("sitetwin_dashboard_db", default=None)
_caller_cache: dict[tuple, tuple[float, Caller | None]] = {}
_last_known: dict[tuple, tuple[float, Caller | None]] = {}


@dataclass(frozen=True)
class Caller:
    """The person (or local owner) behind a request, and what their role lets them see."""

    scope: Any                 # oversight.Scope
    open_store: bool           # the store has no accounts: local owner, admin scope
    token: str | None = None
    language: str | None = None   # the account's language setting (oversight.preferences), if any

    @property
    def label(self) -> str:
        """Who, as the reader reads it: ``dora (district regulator)``."""
        role = ROLE_LABELS.get(self.scope.role)
        return f"{self.scope.actor} ({_(role) if role else self.scope.role})"


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
    pages, and the polls of the background job doing the writing, keep being answered. Such a
    caller only gets past the guard: every connection that reads data checks the session again
    (:func:`_checked`), so a session revoked meanwhile reads nothing.
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
    if len(_last_known) > 1024:
        _last_known.clear()
    _caller_cache[key] = (now, caller)
    _last_known[(str(db), token)] = (now, caller)
    return caller


def _read_caller(db, token: str | None, *, lock_timeout_s: float) -> Caller | None:
    from sitetwin.oversight.accounts import authenticate, has_accounts, local_owner_scope
    from sitetwin.oversight.errors import AuthError
    from sitetwin.oversight.preferences import account_language

    with read_store(db, lock_timeout_s=lock_timeout_s) as store:
        if not has_accounts(store):
            return Caller(local_owner_scope(store), True, None)
        if not token:
            return None
        try:
            scope = authenticate(store, token)
        except AuthError:
            return None
        return Caller(scope, False, token, account_language(store, scope.actor))


def _forget(db: str, token: str | None) -> None:
    """Drop what is cached for a session (it ended, or was found revoked)."""
    for key in [k for k in _caller_cache if k[0] == db and k[1] == token]:
        _caller_cache.pop(key, None)
    _last_known.pop((db, token), None)


def _checked(store: Store, caller: Caller) -> Caller:
    """``caller`` as the store says it is now, read through the connection about to serve data.

    The cached caller may be minutes old (see :func:`resolve_caller`); this is what makes a
    logout, a password change or a disabled account count on the very next data request.
    """
    from sitetwin.oversight.accounts import authenticate, has_accounts
    from sitetwin.oversight.errors import AuthError

    if caller.open_store:
        if not has_accounts(store):
            return caller
        _forget(current_db(), None)
        raise AuthError(_("This store has accounts now; log in at /login."))
    try:
        return Caller(authenticate(store, caller.token or ""), False, caller.token, caller.language)
    except AuthError:
        _forget(current_db(), caller.token)
        raise AuthError(_("Your session has ended (logged out, password changed or account disabled); "
                          "log in again at /login.")) from None


def current_caller() -> Caller | None:
    return resolve_caller(current_db(), _request_token())


def require_caller() -> Caller:
    from sitetwin.oversight.errors import AuthError

    caller = current_caller()
    if caller is None:
        raise AuthError(_("Not logged in (or the session expired); log in again at /login."))
    return caller


# --------------------------------------------------------------------------------------
# the only ways callbacks reach data

@contextlib.contextmanager
def scoped_store() -> Iterator[tuple[Store, Any]]:
    """A short read-only connection and the caller's scope, for reads across the sites in scope."""
    caller = require_caller()
    with read_store(current_db()) as store:
        yield store, _checked(store, caller).scope


@contextlib.contextmanager
def site_store(site_code: str | None, action: str = "read") -> Iterator[Store]:
    """A short read-only connection, once the caller may ``action`` on ``site_code``."""
    from sitetwin.oversight.errors import AccessDenied

    if not site_code:
        raise AccessDenied(_("No site chosen; pick one of your sites."))
    caller = require_caller()
    with read_store(current_db()) as store:
        _checked(store, caller).scope.require_site(store, site_code, action)
        yield store


@contextlib.contextmanager
def site_write_store(site_code: str, action: str) -> Iterator[tuple[Store, Any]]:
    """A short read-write connection for the few writes the app makes (raising a finding)."""
    caller = require_caller()
    with write_store(current_db()) as store:
        caller = _checked(store, caller)
        caller.scope.require_site(store, site_code, action)
        yield store, caller.scope


@contextlib.contextmanager
def object_write_store(table: str, key_column: str, key: str | None, action: str) -> Iterator[tuple[Store, str, Any]]:
    """A short read-write connection, the object's site and the caller's scope, once the caller may
    ``action`` on that site (an unknown object is refused like one out of scope)."""
    from sitetwin.oversight.errors import AccessDenied

    caller = require_caller()
    with write_store(current_db()) as store:
        caller = _checked(store, caller)
        site = site_of(store, table, key_column, key) if key else None
        if site is None or not caller.scope.admits(store, site):
            raise AccessDenied(_("{who}: {what} {key!r} is not in your scope", who=caller.label,
                                 what=key_column, key=key))
        from sitetwin.oversight.audit import guard

        # a refused action is logged (audit "denied") before it is raised
        guard(store, caller.scope, action, site, what=f"{table[:-1]} {key}", object_kind=table[:-1], object_id=key)
        yield store, site, caller.scope


@contextlib.contextmanager
def write_store_for() -> Iterator[Store]:
    """A short read-write connection for writes the library scopes itself (scoring, escalation)."""
    caller = require_caller()
    with write_store(current_db()) as store:
        _checked(store, caller)
        yield store


def sites_in_scope() -> list[dict]:
    """The caller's sites (code, name, district, city), sorted by code."""
    with scoped_store() as (store, scope):
        cond, params = scope.where("site_code")
        return store.rows(f"SELECT site_code, name, district, city FROM sites WHERE {cond} ORDER BY site_code",
                          params)


# --------------------------------------------------------------------------------------
# the city lake (``sitetwin serve --lake``): the portfolio's figures, read with DuckDB

LAKE_CONFIG = "SITETWIN_LAKE"        # the app config key naming the lake (None: the portfolio reads the store)
LAKE_CHECK_S = 5.0                   # how often a server looks whether the lake was published to or compacted
LAKE_TTL_S = 300.0                   # ... and reopens it after this long regardless


class _SharedLake:
    """One lake opened read-only for this process (``data.lake.open_lake``), read through a cursor per request.

    DuckDB wants one connection per thread: each reader gets a cursor on the lake's database, given the
    session variables the lake's views read (their file lists). A lake whose views read registered
    pyarrow datasets (a remote filesystem), which a cursor does not see, is read through the one
    connection, one reader at a time.

    Reopened when its ``_state`` files (a publish) or its compaction record change, looked at every
    ``LAKE_CHECK_S`` and at the latest after ``LAKE_TTL_S``; the lake before stays open until its last
    reader is done. The server never writes the lake: what a scoped read leaves behind (the audit
    spool) goes to the platform store's cache folder, which reaches its audit log as the CLI's do.
    """

    def __init__(self, uri: str, cache_dir: Path):
        self.uri = uri
        self.cache_dir = cache_dir
        self.lock = threading.Lock()
        self.store: Any = None            # the open LakeStore
        self.stamp: tuple | None = None
        self.opened = self.checked = 0.0
        self.users: dict[int, int] = {}   # id(store) -> readers in flight
        self.retired: dict[int, Any] = {}
        self.variables: dict[str, Any] = {}  # the open lake's session variables, set again in each cursor
        self.cursors = True               # False: its views read registered datasets; readers take turns
        self.turns = threading.Lock()

    def stamp_now(self) -> tuple:
        """What changes when the lake is published to or compacted: its state files and compaction record."""
        from pyarrow import fs as pafs

        from sitetwin.data.lake import COMPACT_RECORD, LAKE_FILE, STATE_DIR, lake_location

        loc = lake_location(self.uri)
        found = loc.fs.get_file_info([loc.path(LAKE_FILE), loc.path(COMPACT_RECORD)])
        try:
            found += loc.fs.get_file_info(pafs.FileSelector(loc.path(STATE_DIR), allow_not_found=True))
        except OSError:
            pass
        return tuple(sorted((i.path, i.size, i.mtime_ns) for i in found))

    @contextlib.contextmanager
    def reader(self) -> Iterator[Any]:
        from sitetwin.data.lake import LakeStore, open_lake

        with self.lock:
            now = time.monotonic()
            if self.store is None or now - self.opened > LAKE_TTL_S or now - self.checked > LAKE_CHECK_S:
                stamp = self.stamp_now()
                self.checked = now
                if self.store is None or stamp != self.stamp or now - self.opened > LAKE_TTL_S:
                    fresh = open_lake(self.uri, cache_dir=self.cache_dir)
                    try:
                        variables, cursors = self._readable(fresh)
                    except BaseException:
                        fresh.close()
                        raise
                    if self.store is not None:
                        self._retire(self.store)
                    self.store, self.stamp, self.opened = fresh, stamp, now
                    self.variables, self.cursors = variables, cursors
            shared, variables, cursors = self.store, self.variables, self.cursors
            self.users[id(shared)] = self.users.get(id(shared), 0) + 1
        try:
            if cursors:
                with contextlib.closing(self._cursor(shared, variables)) as cursor:
                    yield LakeStore(cursor, shared.location, self.cache_dir, False)
            else:
                with self.turns:
                    yield shared
        finally:
            with self.lock:
                self.users[id(shared)] -= 1
                if not self.users[id(shared)]:
                    del self.users[id(shared)]
                    old = self.retired.pop(id(shared), None)
                    if old is not None:
                        old.close()

    @staticmethod
    def _cursor(shared, variables: dict[str, Any]):
        cursor = shared.con.cursor()         # DuckDB: one connection per thread, on the same database
        cursor.execute("SET parquet_metadata_cache = true").fetchall()
        for name, value in variables.items():
            cursor.execute(f'SET VARIABLE "{name}" = ?', [value]).fetchall()
        return cursor

    @classmethod
    def _readable(cls, shared) -> tuple[dict[str, Any], bool]:
        """The lake's session variables, and whether a cursor given them reads every view."""
        import duckdb

        names = [r[0] for r in shared.con.execute("SELECT name FROM duckdb_variables()").fetchall()]
        variables = {n: shared.con.execute("SELECT getvariable(?)", [n]).fetchone()[0] for n in names}
        views = [r[0] for r in shared.con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal "
                                                  "AND schema_name = 'main'").fetchall()]
        with contextlib.closing(cls._cursor(shared, variables)) as cursor:
            try:
                for view in views:
                    cursor.execute(f'SELECT * FROM "{view}" LIMIT 0').fetchall()
            except duckdb.Error:
                return variables, False
        return variables, True

    def _retire(self, store) -> None:
        if self.users.get(id(store)):
            self.retired[id(store)] = store       # closed by its last reader
        else:
            store.close()


_lakes: dict[tuple[str, str], _SharedLake] = {}
_lakes_lock = threading.Lock()


def current_lake() -> str | None:
    """The lake the portfolio reads (``sitetwin serve --lake``), or None: it reads the store."""
    import flask

    if not flask.has_app_context():
        return None
    return flask.current_app.config.get(LAKE_CONFIG)


def _shared_lake(uri: str, db: str) -> _SharedLake:
    with _lakes_lock:
        key = (uri, db)
        if key not in _lakes:
            _lakes[key] = _SharedLake(uri, cache_dir_for(Path(db)))
        return _lakes[key]


@contextlib.contextmanager
def scoped_lake() -> Iterator[tuple[Store, Any]]:
    """The city lake (read-only, one per process) and the caller's scope, checked in the platform store
    first as :func:`scoped_store` does; queries filter by that scope over the lake's ``sites`` exactly
    as over a store's."""
    uri = current_lake()
    if uri is None:
        raise RuntimeError("scoped_lake: the workbench serves no lake")
    caller = require_caller()
    with read_store(current_db()) as store:
        scope = _checked(store, caller).scope
    import duckdb

    from sitetwin.data.lake import LakeError

    with _shared_lake(uri, current_db()).reader() as lake:
        try:
            yield lake, scope
        except duckdb.Error as exc:       # a file gone under a reader (republished meanwhile): one line, by name
            text = str(exc).strip().splitlines()
            raise LakeError(N_("{lake}: cannot read ({reason})"), lake=lake.label,
                            reason=text[0] if text else type(exc).__name__) from None


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
        caller = _checked(store, caller)
        site = site_of(store, table, key_column, key) if key else None
        if site is None or not caller.scope.admits(store, site):
            raise AccessDenied(_("{who}: {what} {key!r} is not in your scope", who=caller.label,
                                 what=key_column, key=key))
        yield store, site


# --------------------------------------------------------------------------------------
# the Flask side: guard, headers, login, logout, scoped routes

def install(server, db: str) -> None:
    """Install the request guard, the CSRF and origin checks, the security headers, the request size
    limit and the login/logout pages on the app's Flask server."""
    import flask
    from werkzeug.exceptions import RequestEntityTooLarge

    from sitetwin.oversight.accounts import LoginThrottle

    server.config["SITETWIN_DB"] = str(db)
    if server.config.get("MAX_CONTENT_LENGTH") is None:
        server.config["MAX_CONTENT_LENGTH"] = request_limit(os.environ.get(MAX_REQUEST_ENV))
    server.config["SITETWIN_TRUSTED_PROXIES"] = trusted_networks(
        server.config.get("SITETWIN_TRUSTED_PROXIES", os.environ.get(TRUSTED_PROXIES_ENV)))
    server.extensions["sitetwin_secret"] = (_as_bytes(server.config.get("SITETWIN_SECRET_KEY"))
                                            or _web_secret(Path(db)))
    server.extensions["sitetwin_login_throttle"] = LoginThrottle()

    @server.errorhandler(RequestEntityTooLarge)
    def _too_large(_exc):
        return _too_large_response(flask)

    @server.before_request
    def _language():
        # before the guard, so that its redirects and the login page are in the reader's language too
        if flask.request.path.startswith(STATIC_PREFIXES):
            return None
        try:
            lang = request_language(flask.request)
        except i18n.LanguageError as exc:
            return flask.Response(f"{exc}\n", status=400, mimetype="text/plain")
        flask.g.sitetwin_lang_token = i18n.activate(lang)
        return None

    @server.teardown_request
    def _language_reset(_exc):
        token = flask.g.pop("sitetwin_lang_token", None)
        if token is not None:
            with contextlib.suppress(ValueError):       # set in another context: nothing of ours to undo
                i18n.deactivate(token)

    @server.before_request
    def _guard():
        request = flask.request
        path = request.path
        limit = flask.current_app.config.get("MAX_CONTENT_LENGTH")
        if limit is not None and (request.content_length or 0) > limit:
            return _too_large_response(flask)
        if request.method not in SAFE_METHODS:
            if not _same_origin(request):
                return flask.jsonify({"error": "refused: this request came from another site's page "
                                               "(its Origin or Referer is not this server)"}), 403
            if path != "/login" and not _csrf_ok():      # the login form answers its own, as a page
                return flask.jsonify({"error": "missing or wrong CSRF token; reload the page"}), 403
        if path.startswith(PUBLIC_PREFIXES):
            return None
        from sitetwin.data.errors import StoreError

        try:
            caller = current_caller()
        except StoreError as exc:        # a writer holds the store for longer than a page should wait
            return flask.jsonify({"error": str(exc)}), 503
        if caller is None:
            if path.startswith(JSON_PREFIXES):
                return flask.jsonify({"error": "log in first", "login": "/login"}), 401
            return flask.redirect("/login?next=" + quote(request.full_path.rstrip("?"), safe="/?=&"))
        flask.g.sitetwin_caller = caller
        if caller.language and not _chosen_language(request):
            i18n.activate(caller.language)     # the account's setting wins over the browser's header
        return None

    @server.after_request
    def _harden(response):
        request = flask.request
        response.headers["Content-Security-Policy"] = content_security_policy(_script_hashes(flask.current_app))
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["X-Content-Type-Options"] = "nosniff"
        if request.path.startswith(PRIVATE_PREFIXES):
            response.cache_control.public = False
            response.cache_control.private = True
            response.vary.add("Cookie")
        if not request.path.startswith(STATIC_PREFIXES):
            _set_csrf_cookies(flask, response)
            _set_language_cookie(flask, response)
        return response

    @server.route("/login", methods=["GET", "POST"])
    def login_page():
        return _login(flask)

    @server.route("/logout", methods=["GET", "POST"])
    def logout_page():
        return _logout(flask)


def _chosen_language(request) -> str | None:
    """The language this browser picked with the switcher: ``?lang=`` now, else the cookie it set
    (an unreadable cookie counts as none; an unknown ``?lang=`` raises ``LanguageError``)."""
    asked = request.args.get(LANG_PARAM)
    if asked is not None:
        return i18n.normalize_language(asked, field=f"?{LANG_PARAM}=")
    kept = request.cookies.get(LANG_COOKIE)
    if kept:
        with contextlib.suppress(i18n.LanguageError):
            return i18n.normalize_language(kept, field=LANG_COOKIE)
    return None


def request_language(request, account_language: str | None = None) -> str:
    """The language of a request: the switcher's choice (``?lang=``, then its cookie), else the account's
    setting, else the browser's ``Accept-Language``, else English."""
    chosen = _chosen_language(request)
    if chosen:
        return chosen
    if account_language:
        return account_language
    return i18n.negotiate(request.headers.get("Accept-Language"))


def _set_language_cookie(flask, response) -> None:
    """Keep the switcher's choice for this browser; say which language the page is in."""
    request = flask.request
    response.vary.add("Accept-Language")
    response.vary.add("Cookie")
    if flask.g.get("sitetwin_lang_token") is not None:
        response.headers["Content-Language"] = i18n.current_language()
    asked = request.args.get(LANG_PARAM)
    if asked is None:
        return
    with contextlib.suppress(i18n.LanguageError):
        lang = i18n.normalize_language(asked)
        if request.cookies.get(LANG_COOKIE) != lang:
            response.set_cookie(LANG_COOKIE, lang, max_age=LANG_COOKIE_MAX_AGE_S, httponly=True, samesite="Lax",
                                secure=request.is_secure)


def language_href(target: str, lang: str) -> str:
    """``target`` (a local path with its query) with ``?lang=`` set to ``lang``: the switcher's links."""
    from urllib.parse import parse_qsl, urlencode

    parts = urlsplit(safe_next(target))
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != LANG_PARAM]
    return parts.path + "?" + urlencode([*query, (LANG_PARAM, lang)])


def request_limit(value: str | None) -> int:
    """The request body limit in bytes: ``SITETWIN_MAX_REQUEST_BYTES`` when set, else ``MAX_REQUEST_BYTES``."""
    if value is None or not value.strip():
        return MAX_REQUEST_BYTES
    try:
        limit = int(value)
    except ValueError:
        limit = 0
    if limit < 1024:
        raise ValueError(f"{MAX_REQUEST_ENV}={value!r}: give the largest request body in bytes, at least 1024")
    return limit


def _too_large_response(flask):
    limit = flask.current_app.config.get("MAX_CONTENT_LENGTH") or 0
    return flask.jsonify({"error": f"request body too large: the limit is {limit:,} bytes "
                                   "(MAX_CONTENT_LENGTH); send less at once"}), 413


def _as_bytes(value) -> bytes | None:
    if not value:
        return None
    return value if isinstance(value, bytes) else str(value).encode("utf-8")


# --------------------------------------------------------------------------------------
# security headers

def content_security_policy(script_hashes: list[str]) -> str:
    """The policy of every response: scripts only from this server and Dash's own inline scripts (by hash).

    Styles may be inline (React's style attributes, the stylesheets plotly.js injects); images
    may be ``data:``/``blob:`` (plotly's image export, rendered panoramas).
    """
    return "; ".join([
        "default-src 'self'",
        "script-src " + " ".join(["'self'", *script_hashes]),
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "worker-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ])


def _script_hashes(server) -> list[str]:
    """The CSP hashes of the inline scripts of the Dash app served by ``server`` (its renderer, clientside
    callbacks), computed once its setup has run."""
    cached = server.extensions.get("sitetwin_csp_hashes")
    if cached is not None:
        return cached
    app = _dash_app(server)
    if app is None:
        return ["'unsafe-inline'"]        # a bare Flask server (tests of this module): no Dash scripts to pin
    hashes = list(app.csp_hashes())
    if getattr(app, "_got_first_request", {}).get("setup_server"):
        server.extensions["sitetwin_csp_hashes"] = hashes
    return hashes


def _dash_app(server):
    """The Dash app on ``server``: Dash registers its setup as a before_request hook, a bound method."""
    import dash

    for fn in server.before_request_funcs.get(None, []):
        owner = getattr(fn, "__self__", None)
        if isinstance(owner, dash.Dash):
            return owner
    return None


# --------------------------------------------------------------------------------------
# where a request comes from: trusted proxies, same origin

def trusted_networks(value) -> tuple:
    """The reverse proxies whose forwarding headers are believed: addresses or networks, as a list or a
    comma-separated string (``SITETWIN_TRUSTED_PROXIES``); empty: none."""
    if not value:
        return ()
    items = [v.strip() for v in (value.split(",") if isinstance(value, str) else value)]
    networks = []
    for item in items:
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"{TRUSTED_PROXIES_ENV}: {item!r} is not an IP address or network "
                             "(give addresses or CIDR networks, comma-separated)") from None
    return tuple(networks)


def _ip(text: str | None):
    if not text:
        return None
    text = text.strip()
    if text.startswith("[") and "]" in text:            # [v6]:port
        text = text[1:text.index("]")]
    elif text.count(":") == 1:                          # v4:port
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _trusted(address, networks) -> bool:
    return address is not None and any(address in n for n in networks)


def client_address(remote_addr: str | None, forwarded_for: str | None, networks) -> str:
    """The caller's address: the peer's, or, when the peer is a trusted proxy, the nearest address in
    ``X-Forwarded-For`` that is not itself a trusted proxy (entries further left are the client's word)."""
    peer = _ip(remote_addr)
    if peer is None:
        return remote_addr or "unknown"
    if not forwarded_for or not _trusted(peer, networks):
        return str(peer)
    hops = [h for h in forwarded_for.split(",") if h.strip()]
    found = peer
    for hop in reversed(hops):
        address = _ip(hop)
        if address is None:
            return str(found)             # a hop the proxy did not write: stop at the last one it did
        found = address
        if not _trusted(address, networks):
            return str(address)
    return str(found)


def request_source() -> str:
    """The address of the caller of this request (see :func:`client_address`)."""
    import flask

    request = flask.request
    return client_address(request.remote_addr, ",".join(request.headers.getlist("X-Forwarded-For")),
                          flask.current_app.config.get("SITETWIN_TRUSTED_PROXIES", ()))


def _host(netloc: str) -> str:
    netloc = netloc.strip().lower()
    for default in (":80", ":443"):
        if netloc.endswith(default):
            return netloc[: -len(default)]
    return netloc


def _same_origin(request) -> bool:
    """Whether a state-changing request comes from this server's own pages (its Origin, else Referer)."""
    origin = request.headers.get("Origin")
    claimed = origin if origin is not None else request.headers.get("Referer")
    if claimed is None:
        return True                       # not a browser (browsers send Origin on every cross-site POST)
    try:
        parts = urlsplit(claimed.strip())
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False                      # Origin: null (sandboxed frames, data: pages) included
    hosts = {_host(request.host)}
    import flask

    networks = flask.current_app.config.get("SITETWIN_TRUSTED_PROXIES", ())
    forwarded = request.headers.get("X-Forwarded-Host")
    if forwarded and _trusted(_ip(request.remote_addr), networks):
        hosts.add(_host(forwarded.split(",")[0]))
    return _host(parts.netloc) in hosts


# --------------------------------------------------------------------------------------
# CSRF: a token bound to the session (or, before a login, to a pre-session cookie)

def _web_secret(db: Path) -> bytes:
    """The key of the CSRF tokens, kept beside the store so that a restart keeps the pages' tokens valid."""
    path = cache_dir_for(db) / WEB_SECRET_FILE
    try:
        with contextlib.suppress(FileNotFoundError):
            key = path.read_bytes()
            if len(key) >= 32:
                return key
            raise OSError(f"{path}: too short to be a key; delete it to have a new one made")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_bytes(32))
        try:
            os.link(tmp, path)            # the first server to get here makes the key; the others read it
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
        return path.read_bytes()
    except OSError as exc:
        log.warning("CSRF key not kept beside the store (%s); using one for this process only", exc)
        return secrets.token_bytes(32)


def _binding() -> tuple[str, str]:
    """What this browser's CSRF token is bound to: its session, or its pre-session cookie (made if need be)."""
    import flask

    override = flask.g.get("sitetwin_binding")
    if override is not None:
        return override
    session = flask.request.cookies.get(SESSION_COOKIE)
    if session:
        return "session", session
    pre = flask.request.cookies.get(PRESESSION_COOKIE) or flask.g.get("sitetwin_new_presession")
    if not pre:
        pre = flask.g.sitetwin_new_presession = secrets.token_urlsafe(32)
    return "pre", pre


def csrf_token() -> str:
    """This browser's CSRF token: an HMAC of what it is bound to (see the module docstring)."""
    import flask

    kind, value = _binding()
    key = flask.current_app.extensions["sitetwin_secret"]
    mac = hmac.new(key, f"{kind}:{value}".encode("utf-8", "replace"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode("ascii").rstrip("=")


def _csrf_ok() -> bool:
    import flask

    request = flask.request
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        sent = request.form.get(CSRF_FIELD)
    if not sent:
        return False
    return hmac.compare_digest(sent.encode("utf-8", "replace"), csrf_token().encode("ascii"))


def _set_csrf_cookies(flask, response) -> None:
    """Keep the browser's ``_csrf_token`` cookie equal to its bound token (after a login, a logout, a
    restart with a new key), and give it a pre-session cookie when it needs one."""
    request = flask.request
    token = csrf_token()
    secure = request.is_secure
    new_pre = flask.g.get("sitetwin_new_presession")
    if new_pre:
        response.set_cookie(PRESESSION_COOKIE, new_pre, httponly=True, samesite="Lax", secure=secure)
    if request.cookies.get(CSRF_COOKIE) != token:
        response.set_cookie(CSRF_COOKIE, token, samesite="Strict", httponly=False, secure=secure)


# --------------------------------------------------------------------------------------
# login and logout

def safe_next(target: object) -> str:
    """``target`` when it is a path on this server, else ``"/"``.

    Refused: anything with ASCII control characters, whitespace or backslashes (browsers drop
    tabs and line breaks and read ``\\`` as ``/``, which turns ``/\\t/evil.example`` into
    ``//evil.example``), a scheme or a host, a path that does not start with exactly one ``/``,
    and anything whose URI form (what Werkzeug writes into ``Location``) breaks these rules.
    """
    from werkzeug.urls import iri_to_uri

    if not isinstance(target, str) or not target or len(target) > 2048:
        return "/"
    for candidate in (target, _uri(iri_to_uri, target)):
        if candidate is None or not _local_path(candidate):
            return "/"
    return target


def _uri(iri_to_uri, target: str) -> str | None:
    try:
        return iri_to_uri(target)
    except (ValueError, UnicodeError):
        return None


def _local_path(text: str) -> bool:
    if any(ord(c) < 0x20 or ord(c) == 0x7F or c.isspace() or c == "\\" for c in text):
        return False
    try:
        parts = urlsplit(text)
    except ValueError:
        return False
    return (not parts.scheme and not parts.netloc and parts.path.startswith("/")
            and not parts.path.startswith("//"))



def _login(flask):
    from sitetwin.oversight.accounts import LoginThrottled, has_accounts, login
    from sitetwin.oversight.errors import AuthError

    db = flask.current_app.config["SITETWIN_DB"]
    request = flask.request
    nxt = safe_next(request.values.get("next"))
    throttle = flask.current_app.extensions["sitetwin_login_throttle"]
    username = request.form.get("username", "").strip() if request.method == "POST" else ""
    source = request_source()
    if request.method == "POST":
        if not _csrf_ok():
            return _login_html(nxt, _("The form expired; try again.")), 403
        try:                              # before any store access: a throttled attempt costs nothing there
            throttle.check(username, source)
        except LoginThrottled as exc:
            return _login_html(nxt, _throttled(exc)), 429, {"Retry-After": str(exc.retry_after_s)}
    if request.method != "POST":
        with read_store(db) as store:
            accounts = has_accounts(store)
        return _login_html(nxt, None, open_store=not accounts)
    password = request.form.get("password", "")
    try:
        with write_store(db) as store:
            if not has_accounts(store):
                return _login_html(nxt, None, open_store=True)
            session = login(store, username, password, source=source, throttle=throttle)
    except LoginThrottled as exc:
        return _login_html(nxt, _throttled(exc)), 429, {"Retry-After": str(exc.retry_after_s)}
    except AuthError:
        # oversight's one refusal for every reason (a wrong name, a wrong password, a disabled account)
        return _login_html(nxt, _("Login failed for {who}: wrong user name or password, or the account is "
                                  "disabled.", who=repr(username[:64]))), 401
    response = flask.redirect(nxt)
    max_age = int((session.expires_at - utcnow()).total_seconds())
    response.set_cookie(SESSION_COOKIE, session.token, max_age=max_age, httponly=True, samesite="Lax",
                        secure=request.is_secure)
    flask.g.sitetwin_binding = ("session", session.token)     # the CSRF cookie follows the new session
    return response


def _throttled(exc) -> str:
    """A throttled login, in the reader's language (the page never names the source)."""
    return _("Login refused: too many failed logins; try again in {n} s.", n=exc.retry_after_s)


def _logout(flask):
    """GET asks (a link or a bookmark cannot log anyone out); POST, with the token, ends the session."""
    from sitetwin.data.errors import StoreError
    from sitetwin.oversight.accounts import logout

    request = flask.request
    if request.method != "POST":
        question, button = html.escape(_("Log out of the sitetwin workbench?")), html.escape(_("Log out"))
        body = (f'<p class="note">{question}</p>'
                '<form method="post" action="/logout" id="logout-form">'
                f'<input type="hidden" name="{CSRF_FIELD}" value="{html.escape(csrf_token())}">'
                f'<button id="logout-submit" type="submit">{button}</button></form>')
        return _page(body, "/logout")
    token = request.cookies.get(SESSION_COOKIE)
    db = flask.current_app.config["SITETWIN_DB"]
    if token:
        try:
            with write_store(db) as store:
                logout(store, token)
        except StoreError as exc:
            return flask.jsonify({"error": f"not logged out: {exc}; try again"}), 503
    _forget(db, token)
    response = flask.redirect("/login")
    response.delete_cookie(SESSION_COOKIE)
    pre = request.cookies.get(PRESESSION_COOKIE) or secrets.token_urlsafe(32)
    if pre != request.cookies.get(PRESESSION_COOKIE):
        flask.g.sitetwin_new_presession = pre
    flask.g.sitetwin_binding = ("pre", pre)
    return response


def logout_form():
    """The shell's "Log out": a small POST form carrying the CSRF token (a plain link could be forged)."""
    from dash import dcc
    from dash import html as dhtml

    return dhtml.Form([dcc.Input(type="hidden", name=CSRF_FIELD, value=csrf_token()),
                       dhtml.Button(_("Log out"), type="submit", id="shell-logout")],     # styled in assets/style.css
                      method="post", action="/logout", id="shell-logout-form")


_LOGIN_PAGE = """<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;background:#f3f4f6;margin:0;color:#1f2937}}
main{{max-width:22rem;margin:12vh auto;background:#fff;padding:2rem;border-radius:.5rem;
box-shadow:0 1px 3px rgba(0,0,0,.12)}}
h1{{font-size:1.3rem;margin:0 0 1rem}} label{{display:block;margin:.8rem 0 .2rem;font-size:.9rem}}
input{{width:100%;box-sizing:border-box;padding:.5rem;border:1px solid #cbd5e1;border-radius:.3rem}}
button{{margin-top:1.2rem;width:100%;padding:.6rem;border:0;border-radius:.3rem;background:#1d4ed8;color:#fff;
font-size:1rem;cursor:pointer}} .error{{color:#b91c1c;font-size:.9rem}} .note{{font-size:.9rem;color:#475569}}
.languages{{float:right;font-size:.85rem}} .languages a,.languages span{{margin-left:.5rem}}
.languages span{{font-weight:600}}
</style></head><body><main id="login">
<nav class="languages" id="login-languages">{languages}</nav>
<h1>{heading}</h1>{body}</main></body></html>"""


def language_links(target: str) -> list[tuple[str, str, str | None]]:
    """The switcher's entries for a page at ``target``: (language, its own name, href; None for the current)."""
    here = i18n.current_language()
    return [(lang, i18n.LANGUAGE_NAMES[lang], None if lang == here else language_href(target, lang))
            for lang in i18n.LANGUAGES]


def _page(body: str, target: str) -> str:
    """The login / logout page around ``body``, in the request's language, with the language switcher."""
    links = []
    for lang, name, href in language_links(target):
        if href is None:
            links.append(f'<span lang="{lang}">{html.escape(name)}</span>')
        else:
            links.append(f'<a href="{html.escape(href)}" lang="{lang}" id="login-lang-{lang}">{html.escape(name)}</a>')
    return _LOGIN_PAGE.format(lang=i18n.current_language(), title=html.escape(_("sitetwin - log in")),
                              heading=html.escape(_("sitetwin workbench")), languages="".join(links), body=body)


def _login_html(nxt: str, error: str | None, *, open_store: bool = False) -> str:
    from urllib.parse import urlencode

    target = "/login" + ("?" + urlencode({"next": nxt}) if nxt != "/" else "")
    if open_store:
        # the template is escaped, then the command goes in as markup
        note = html.escape(_("This store has no accounts yet, so the workbench runs open as the local owner (admin). "
                             "Create accounts with {command} to require a login."), quote=False)
        note = note.format(command="<code>sitetwin user add</code>")
        open_text = _("Open the workbench")
        body = (f'<p class="note" id="login-open">{note}</p>'
                f'<p><a href="{html.escape(nxt)}">{html.escape(open_text)}</a></p>')
        return _page(body, target)
    csrf = csrf_token()
    err = f'<p class="error" id="login-error">{html.escape(error)}</p>' if error else ""
    user, password, submit = (html.escape(t) for t in (_("User name"), _("Password"), _("Log in")))
    body = (f'{err}<form method="post" action="/login">'
            f'<input type="hidden" name="next" value="{html.escape(nxt)}">'
            f'<input type="hidden" name="{CSRF_FIELD}" value="{html.escape(csrf)}">'
            f'<label for="login-username">{user}</label>'
            '<input id="login-username" name="username" autocomplete="username" required>'
            f'<label for="login-password">{password}</label>'
            '<input id="login-password" name="password" type="password" autocomplete="current-password" required>'
            f'<button id="login-submit" type="submit">{submit}</button></form>')
    return _page(body, target)


def scoped_route(server, rule: str, *, table: str, key: str, endpoint: str | None = None):
    """Register a GET route whose ``<key>`` argument names an object of ``table``.

    The handler runs as ``handler(store, site_code, **route_args)`` only when the caller may
    read the object's site; otherwise the answer is 404 (the same as for an unknown id), or 401
    when the session has ended since the guard let the request in.
    """
    return _guarded_route(server, rule, endpoint, lambda kwargs: object_store(table, key, kwargs.get(key)))


def site_route(server, rule: str, *, endpoint: str | None = None):
    """Register a GET route whose ``<site_code>`` argument names a site (the WebGL viewer's data).

    The handler runs as ``handler(store, site_code, **route_args)`` only when the caller may read the
    site; a site outside the caller's scope answers 404 exactly as an unknown one, and 401 when the
    session has ended since the guard let the request in.
    """
    @contextlib.contextmanager
    def opened(kwargs):
        with site_store(kwargs.get("site_code")) as store:
            yield (store,)

    return _guarded_route(server, rule, endpoint, opened)


def _guarded_route(server, rule: str, endpoint: str | None, opened):
    """The GET route of :func:`scoped_route` and :func:`site_route`: ``opened(route_args)`` checks the
    caller and yields the handler's leading arguments; a refusal is 404 as for an unknown id, an ended
    session 401."""
    import flask

    def deco(handler):
        @functools.wraps(handler)
        def view(**kwargs):
            from sitetwin.oversight.errors import AccessDenied, AuthError

            try:
                with opened(kwargs) as leading:
                    return handler(*leading, **kwargs)
            except AuthError as exc:
                return flask.jsonify({"error": str(exc), "login": "/login"}), 401
            except AccessDenied:
                return flask.jsonify({"error": "not found"}), 404

        server.add_url_rule(rule, endpoint or handler.__name__, view, methods=["GET"])
        return handler

    return deco
