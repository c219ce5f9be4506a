"""Accounts, sessions, API tokens and login throttling: how a caller becomes a ``Scope``.

- Passwords are hashed with argon2id (argon2-cffi) at OWASP's baseline cost (19 MiB,
  2 passes); the hash string carries its parameters, so raising the cost later still
  verifies old hashes (and :func:`login` rehashes them).
- A session token (``sts_...``) comes from :func:`login` and lasts ``SESSION_HOURS``; an
  API token (``stk_<id>_<secret>``) is for machines that push data and lasts until it
  expires or is revoked. Only a SHA-256 of either secret is stored: they are long random
  strings, so a slow hash adds nothing there.
- Login is throttled by progressive delay, per (user name, source) pair and per source, never
  per user name alone (that would let anyone lock an owner out of their account): after
  ``FREE_FAILURES_PER_PAIR`` failures of one name from one source, or ``FREE_FAILURES_PER_SOURCE``
  from one source over all names, each further attempt waits ``BACKOFF_BASE_S`` doubled per
  failure, up to ``BACKOFF_MAX_S``, counted from the last failure; a source is forgotten after
  ``THROTTLE_WINDOW_S`` without a failure, and a success clears its pair. A throttled attempt
  is refused (:class:`LoginThrottled`, with the seconds to wait) before the password is
  checked; the refusal never names the source.
- Where the failures are remembered: a long-running server (the workbench) passes a
  :class:`LoginThrottle`, which keeps them in its own memory (a bounded dict under a lock), so a
  throttled attempt costs no store access at all and cannot queue behind, or hold up, the
  store's write lock; several server processes each keep their own. Without one (the CLI, one
  process per attempt), the same rule is applied to the ``login_attempts`` rows of the pair and
  the source. Either way ``login_attempts`` gets one row per attempt that was checked against a
  password (the audit trail), and none for a throttled one.

The CLI identifies its caller with ``--token`` or ``SITETWIN_TOKEN`` (see
:func:`caller_scope`); while a store has no accounts at all, the local user who owns the
file acts as admin, so that the first admin account can be made.
"""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import hmac
import math
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from sitetwin.data.clock import utcnow
from sitetwin.data.errors import Phrase
from sitetwin.data.i18n import N_
from sitetwin.data.store import Store, atomic
from sitetwin.data.text import printable
from sitetwin.oversight import audit
from sitetwin.oversight.errors import AccessDenied, AuthError, OversightError
from sitetwin.oversight.scope import ROLES, Scope

SESSION_HOURS = 12
THROTTLE_WINDOW_S = 15 * 60       # a pair or source without a failure for this long is forgotten
FREE_FAILURES_PER_PAIR = 3        # failed logins of one user name from one source before the delays begin
FREE_FAILURES_PER_SOURCE = 20     # ... of any user names from one source (a proxy: see TRUSTED_PROXIES in the web)
BACKOFF_BASE_S = 1.0              # the first delay; it doubles with each further failure ...
BACKOFF_MAX_S = 300.0             # ... up to this
THROTTLE_MAX_KEYS = 20_000        # pairs and sources a LoginThrottle remembers (the oldest go first)
PASSWORD_MIN_LENGTH = 10
ARGON2 = {"time_cost": 2, "memory_cost": 19_456, "parallelism": 1}   # OWASP baseline for argon2id
_USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{1,63}$")
_hasher = None


@dataclass(frozen=True)
class Account:
    username: str
    role: str
    display_name: str | None
    city: str | None
    district: str | None
    sites: tuple[str, ...]
    created_at: dt.datetime
    disabled: bool
    enterprise: str | None = None      # role enterprise: its enterprise; ``sites`` are then that enterprise's


@dataclass(frozen=True)
class Session:
    token: str                 # give this to the caller once; it is not stored
    username: str
    expires_at: dt.datetime


@dataclass(frozen=True)
class ApiToken:
    token_id: str
    username: str
    name: str
    created_at: dt.datetime
    expires_at: dt.datetime | None
    revoked: bool
    last_used_at: dt.datetime | None


def password_hasher():
    global _hasher
    if _hasher is None:
        from argon2 import PasswordHasher

        _hasher = PasswordHasher(**ARGON2)
    return _hasher


def has_accounts(store: Store) -> bool:
    return bool(store.scalar("SELECT count(*) FROM accounts"))


def local_owner_scope(store: Store) -> Scope:
    """The admin scope of the local file owner, valid only while the store has no accounts."""
    if has_accounts(store):
        raise AuthError(N_("{store} has accounts: pass --token or set SITETWIN_TOKEN "
                           "(a session from `sitetwin login USER`, or an API token)"), store=store.label)
    return Scope(actor=f"local:{_os_user()}", role="admin", all_sites=True, via="local")


def caller_scope(store: Store, token: str | None) -> Scope:
    """Who the CLI (or any client) is: the token's account, or the local owner of an account-less store."""
    if token:
        return authenticate(store, token)
    return local_owner_scope(store)


# --------------------------------------------------------------------------------------
# accounts

def add_account(store: Store, scope: Scope, username: str, role: str, *, password: str | None = None,
                display_name: str | None = None, city: str | None = None, district: str | None = None,
                sites: tuple[str, ...] | list[str] = (), enterprise: str | None = None) -> Account:
    """Create an account (admin only). ``password`` may be None for a machine account used through tokens.
    An ``enterprise`` account names its enterprise (``enterprise``) and sees that enterprise's sites."""
    scope.require("manage_accounts")
    if not _USERNAME_RE.fullmatch(username or ""):
        raise OversightError(N_("username {username!r}: use 2-64 letters, digits, '_', '.', '@' or '-'"),
                             username=username)
    if role not in ROLES:
        raise OversightError(N_("role {role!r}: use one of {roles}"), role=role, roles=", ".join(ROLES))
    if role == "district_regulator" and not district:
        raise OversightError(N_("account {username}: a district regulator needs --district"), username=username)
    if role == "contractor" and not sites:
        raise OversightError(N_("account {username}: a contractor needs at least one site (--site)"),
                             username=username)
    if role == "enterprise":
        from sitetwin.data.queries import enterprise as enterprise_row

        if not enterprise:
            raise OversightError(N_("account {username}: an enterprise account needs --enterprise"),
                                 username=username)
        if enterprise_row(store, enterprise) is None:
            raise OversightError(N_("account {username}: no enterprise {enterprise!r}"), username=username,
                                 enterprise=enterprise)
    elif enterprise is not None:
        raise OversightError(N_("account {username}: only an enterprise account names an enterprise"),
                             username=username)
    hashed = _hash_password(username, password) if password is not None else None
    sites = sorted(set(sites))
    unknown = [s for s in sites if not store.scalar("SELECT count(*) FROM sites WHERE site_code = ?", [s])]
    if unknown:
        raise OversightError(N_("account {username}: no site {sites}"), username=username, sites=", ".join(unknown))
    with atomic(store):
        if store.scalar("SELECT count(*) FROM accounts WHERE username = ?", [username]):
            raise OversightError(N_("account {username!r} already exists"), username=username)
        store.execute("INSERT INTO accounts (username, role, display_name, city, district, password_hash, created_at, "
                      "enterprise_code) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                      [username, role, display_name, city, district, hashed, utcnow(), enterprise])
        for s in sites:
            store.execute("INSERT INTO account_sites (username, site_code) VALUES (?, ?)", [username, s])
        audit.record(store, scope, "write", "account", username, detail={"op": "add", "role": role})
    return get_account(store, username)


def get_account(store: Store, username: str) -> Account:
    row = store.one("SELECT * FROM accounts WHERE username = ?", [username])
    if row is None:
        raise OversightError(N_("no account {username!r}"), username=username)
    sites = tuple(r["site_code"] for r in store.rows(
        "SELECT site_code FROM account_sites WHERE username = ? ORDER BY site_code", [username]))
    enterprise = row.get("enterprise_code")
    if row["role"] == "enterprise" and enterprise:
        from sitetwin.data.queries import enterprise_sites

        sites = tuple(enterprise_sites(store, enterprise))
    return Account(row["username"], row["role"], row["display_name"], row["city"], row["district"], sites,
                   row["created_at"], row["disabled_at"] is not None, enterprise)


def list_accounts(store: Store, scope: Scope) -> list[Account]:
    scope.require("manage_accounts")
    names = [r["username"] for r in store.rows("SELECT username FROM accounts ORDER BY username")]
    audit.record(store, scope, "view", "accounts", None, detail={"count": len(names)})
    return [get_account(store, n) for n in names]


def set_password(store: Store, scope: Scope, username: str, password: str) -> None:
    """Admins set anyone's password; everyone else only their own."""
    if scope.actor != username:
        scope.require("manage_accounts")
    get_account(store, username)
    hashed = _hash_password(username, password)
    with atomic(store):
        store.execute("UPDATE accounts SET password_hash = ? WHERE username = ?", [hashed, username])
        store.execute("UPDATE sessions SET revoked_at = ? WHERE username = ? AND revoked_at IS NULL",
                      [utcnow(), username])
        audit.record(store, scope, "write", "account", username, detail={"op": "password"})


def disable_account(store: Store, scope: Scope, username: str) -> None:
    """Disable an account and end its sessions and tokens."""
    scope.require("manage_accounts")
    get_account(store, username)
    now = utcnow()
    with atomic(store):
        store.execute("UPDATE accounts SET disabled_at = ? WHERE username = ?", [now, username])
        store.execute("UPDATE sessions SET revoked_at = ? WHERE username = ? AND revoked_at IS NULL", [now, username])
        store.execute("UPDATE api_tokens SET revoked_at = ? WHERE username = ? AND revoked_at IS NULL", [now, username])
        audit.record(store, scope, "write", "account", username, detail={"op": "disable"})


def grant_sites(store: Store, scope: Scope, username: str, sites: list[str]) -> Account:
    scope.require("manage_accounts")
    if get_account(store, username).role == "enterprise":
        raise OversightError(N_("account {username}: an enterprise account sees the sites its enterprise builds; "
                                "link the sites to the enterprise instead"), username=username)
    with atomic(store):
        for s in sites:
            if not store.scalar("SELECT count(*) FROM sites WHERE site_code = ?", [s]):
                raise OversightError(N_("no site {site_code!r}"), site_code=s)
            store.execute("INSERT OR IGNORE INTO account_sites (username, site_code) VALUES (?, ?)", [username, s])
        audit.record(store, scope, "write", "account", username, detail={"op": "grant", "sites": sites})
    return get_account(store, username)


# --------------------------------------------------------------------------------------
# login, sessions, tokens

class LoginThrottled(AuthError):
    """A login refused before its password was checked: too many recent failures from its source."""

    def __init__(self, message: str, retry_after_s: int, /, **fields):
        super().__init__(message, **fields)
        self.retry_after_s = retry_after_s


def backoff_s(failures: int, free: int) -> float:
    """Seconds an attempt waits after ``failures`` failed ones in a row, of which ``free`` cost nothing."""
    if failures < free:
        return 0.0
    return min(BACKOFF_BASE_S * 2.0 ** min(failures - free, 60), BACKOFF_MAX_S)


def _refusal(pair_wait_s: float, source_wait_s: float) -> LoginThrottled | None:
    wait = max(pair_wait_s, source_wait_s)
    if wait <= 0:
        return None
    seconds = max(1, math.ceil(wait))
    # never the source itself: behind a proxy it is not even the caller's, and it helps no one
    what = Phrase(N_("for this user name from here") if pair_wait_s >= source_wait_s else N_("from here"))
    return LoginThrottled(N_("too many failed logins {what}; try again in {seconds} s"), seconds, what=what,
                          seconds=seconds)


def _name_key(username: str) -> str:
    # no account name is longer than 64 characters: a longer one need not be kept whole
    return username[:65]


class LoginThrottle:
    """Recent failed logins by (user name, source) pair and by source, in this process's memory.

    For a long-running server: ``login(..., throttle=...)`` asks it before reading the store, so
    a throttled attempt costs no store access. Thread-safe; keeps at most ``max_keys`` pairs and
    sources (the longest quiet go first). ``clock`` gives seconds on a monotonic scale.

    >>> t = LoginThrottle()
    >>> t.check("ada", "10.0.0.9")          # nothing failed yet: passes
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, max_keys: int = THROTTLE_MAX_KEYS):
        self._clock = clock
        self._max_keys = max_keys
        self._lock = threading.Lock()
        self._failures: OrderedDict[tuple[str, ...], tuple[int, float]] = OrderedDict()  # key -> (count, last)

    def check(self, username: str, source: str) -> None:
        """Raise :class:`LoginThrottled` when an attempt of ``username`` from ``source`` must wait."""
        now = self._clock()
        with self._lock:
            pair = self._wait(("pair", source, _name_key(username)), FREE_FAILURES_PER_PAIR, now)
            by_source = self._wait(("source", source), FREE_FAILURES_PER_SOURCE, now)
        refusal = _refusal(pair, by_source)
        if refusal is not None:
            raise refusal

    def failed(self, username: str, source: str) -> None:
        """Count a failed attempt (a wrong password, an unknown or disabled account)."""
        now = self._clock()
        with self._lock:
            for key in (("pair", source, _name_key(username)), ("source", source)):
                count, _ = self._live(key, now)
                self._failures[key] = (count + 1, now)
                self._failures.move_to_end(key)
            while len(self._failures) > self._max_keys:
                self._failures.popitem(last=False)

    def succeeded(self, username: str, source: str) -> None:
        """A correct password clears its pair (not its source: one valid account must not reset a guesser)."""
        with self._lock:
            self._failures.pop(("pair", source, _name_key(username)), None)

    def _live(self, key: tuple[str, ...], now: float) -> tuple[int, float]:
        hit = self._failures.get(key)
        if hit is None or now - hit[1] > THROTTLE_WINDOW_S:
            return 0, now
        return hit

    def _wait(self, key: tuple[str, ...], free: int, now: float) -> float:
        count, last = self._live(key, now)
        return last + backoff_s(count, free) - now if count else 0.0


def login(store: Store, username: str, password: str, *, source: str = "cli",
          now: dt.datetime | None = None, throttle: LoginThrottle | None = None) -> Session:
    """Check a password and open a session; throttled against guessing (see the module docstring).

    ``throttle`` is a server's in-memory :class:`LoginThrottle`; without one, the recent failures
    are read from ``login_attempts``. A throttled attempt raises :class:`LoginThrottled` and
    writes nothing.
    """
    now = now or utcnow()
    username = username if isinstance(username, str) else ""
    password = password if isinstance(password, str) else ""
    if throttle is not None:
        throttle.check(username, source)
    else:
        _check_stored_failures(store, username, source, now)
    valid_name = _USERNAME_RE.fullmatch(username) is not None
    row = store.one("SELECT password_hash, disabled_at FROM accounts WHERE username = ?",
                    [username]) if valid_name else None
    ok = _verify(row["password_hash"] if row else None, password)
    if not ok or row is None or row["disabled_at"] is not None:
        if throttle is not None:
            throttle.failed(username, source)
        _attempt(store, printable(_name_key(username)), source, now, False)
        who = repr(username) if valid_name else Phrase(N_("this user name"))
        raise AuthError(N_("login failed for {who}: wrong user name or password, or the account is disabled"),
                        who=who)
    token = "sts_" + secrets.token_urlsafe(32)
    expires = now + dt.timedelta(hours=SESSION_HOURS)
    with atomic(store):
        _attempt(store, username, source, now, True)
        store.execute("INSERT INTO sessions (session_id, username, created_at, expires_at) VALUES (?, ?, ?, ?)",
                      [_sha(token), username, now, expires])
        if password_hasher().check_needs_rehash(row["password_hash"]):
            store.execute("UPDATE accounts SET password_hash = ? WHERE username = ?",
                          [password_hasher().hash(password), username])
    if throttle is not None:
        throttle.succeeded(username, source)
    acc = get_account(store, username)
    audit.record(store, _scope_of(acc, "session"), "login", "session", None, detail={"source": source})
    return Session(token, username, expires)


def _check_stored_failures(store: Store, username: str, source: str, now: dt.datetime) -> None:
    """The throttle's rule over the ``login_attempts`` rows (for processes that keep no memory: the CLI)."""
    last_ok = store.scalar("SELECT max(attempted_at) FROM login_attempts WHERE username = ? AND source = ? "
                           "AND success", [username, source])
    pair = _stored_run(store, "username = ? AND source = ? AND attempted_at > ?",
                       [username, source, last_ok or dt.datetime.min], now)
    by_source = _stored_run(store, "source = ?", [source], now)
    refusal = _refusal(_stored_wait(pair, FREE_FAILURES_PER_PAIR, now),
                       _stored_wait(by_source, FREE_FAILURES_PER_SOURCE, now))
    if refusal is not None:
        raise refusal


def _stored_run(store: Store, where: str, params: list, now: dt.datetime) -> tuple[int, dt.datetime | None]:
    """The failures in a row (no gap over THROTTLE_WINDOW_S, the last within it of ``now``): (count, last)."""
    # beyond a few dozen failures the delay is at its cap: the newest 64 are enough
    times = [r[0] for r in store.execute(
        f"SELECT attempted_at FROM login_attempts WHERE {where} AND NOT success AND attempted_at <= ? "
        "ORDER BY attempted_at DESC LIMIT 64", [*params, now])]
    count, later = 0, now
    for at in times:
        if (later - at).total_seconds() > THROTTLE_WINDOW_S:
            break
        count, later = count + 1, at
    return count, (times[0] if count else None)


def _stored_wait(run: tuple[int, dt.datetime | None], free: int, now: dt.datetime) -> float:
    count, last = run
    if not count or last is None:
        return 0.0
    return (last - now).total_seconds() + backoff_s(count, free)


def logout(store: Store, token: str) -> None:
    with atomic(store):
        store.execute("UPDATE sessions SET revoked_at = ? WHERE session_id = ? AND revoked_at IS NULL",
                      [utcnow(), _sha(token)])


def add_token(store: Store, scope: Scope, username: str, name: str, *, days: int | None = 365) -> tuple[str, ApiToken]:
    """Create an API token for ``username`` (admin only); returns the secret token (shown once) and its record."""
    scope.require("manage_accounts")
    if get_account(store, username).disabled:
        raise OversightError(N_("account {username} is disabled"), username=username)
    if not (name or "").strip():
        raise OversightError(N_("name the token after the machine or job that uses it"))
    token_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    token = f"stk_{token_id}_{secret}"
    now = utcnow()
    expires = now + dt.timedelta(days=days) if days else None
    with atomic(store):
        store.execute("INSERT INTO api_tokens (token_id, username, name, secret_hash, created_at, expires_at) "
                      "VALUES (?, ?, ?, ?, ?, ?)", [token_id, username, name, _sha(token), now, expires])
        audit.record(store, scope, "write", "api_token", token_id, detail={"op": "add", "user": username})
    return token, ApiToken(token_id, username, name, now, expires, False, None)


def list_tokens(store: Store, scope: Scope, username: str | None = None) -> list[ApiToken]:
    scope.require("manage_accounts")
    rows = store.rows("SELECT * FROM api_tokens WHERE (? IS NULL OR username = ?) ORDER BY created_at",
                      [username, username])
    return [ApiToken(r["token_id"], r["username"], r["name"], r["created_at"], r["expires_at"],
                     r["revoked_at"] is not None, r["last_used_at"]) for r in rows]


def revoke_token(store: Store, scope: Scope, token_id: str) -> None:
    scope.require("manage_accounts")
    with atomic(store):
        if not store.scalar("SELECT count(*) FROM api_tokens WHERE token_id = ?", [token_id]):
            raise OversightError(N_("no API token {token_id!r}"), token_id=token_id)
        store.execute("UPDATE api_tokens SET revoked_at = ? WHERE token_id = ? AND revoked_at IS NULL",
                      [utcnow(), token_id])
        audit.record(store, scope, "write", "api_token", token_id, detail={"op": "revoke"})


def authenticate(store: Store, token: str, *, now: dt.datetime | None = None) -> Scope:
    """The scope of a session or API token; ``AuthError`` if it is unknown, expired or revoked."""
    now = now or utcnow()
    token = (token or "").strip()
    if token.startswith("sts_"):
        row = store.one("SELECT username, expires_at, revoked_at FROM sessions WHERE session_id = ?", [_sha(token)])
        if row is None or row["revoked_at"] is not None or row["expires_at"] <= now:
            raise AuthError(N_("session expired or unknown; log in again with `sitetwin login USER`"))
        via = "session"
    elif token.startswith("stk_") and token.count("_") >= 2:
        token_id = token.split("_", 2)[1]
        row = store.one("SELECT username, secret_hash, expires_at, revoked_at FROM api_tokens WHERE token_id = ?",
                        [token_id])
        if row is None or not hmac.compare_digest(row["secret_hash"], _sha(token)):
            raise AuthError(N_("unknown API token"))
        if row["revoked_at"] is not None or (row["expires_at"] is not None and row["expires_at"] <= now):
            raise AuthError(N_("API token {token_id} is revoked or expired; ask an admin for a new one"),
                            token_id=token_id)
        if not store.read_only:
            store.execute("UPDATE api_tokens SET last_used_at = ? WHERE token_id = ?", [now, token_id])
        via = "token"
    else:
        raise AuthError(N_("not a sitetwin token (expected sts_... from `sitetwin login` or stk_... from "
                           "`sitetwin token add`)"))
    acc = get_account(store, row["username"])
    if acc.disabled:
        raise AuthError(N_("account {username} is disabled"), username=acc.username)
    return _scope_of(acc, via)


def _scope_of(acc: Account, via: str) -> Scope:
    try:
        return Scope.for_account(acc.username, acc.role, city=acc.city, district=acc.district, sites=acc.sites,
                                 via=via, enterprise=acc.enterprise)
    except AccessDenied as exc:
        raise AuthError(exc.template, **exc.fields) from None


def _attempt(store: Store, username: str, source: str, at: dt.datetime, success: bool) -> None:
    store.execute("INSERT INTO login_attempts (username, source, attempted_at, success) VALUES (?, ?, ?, ?)",
                  [username, source, at, success])


_DUMMY_HASH = None


def _verify(hashed: str | None, password: str) -> bool:
    global _DUMMY_HASH
    from argon2.exceptions import InvalidHashError, VerificationError

    if hashed is None:
        # spend the same time on an unknown user as on a known one, so timing does not tell them apart
        if _DUMMY_HASH is None:
            _DUMMY_HASH = password_hasher().hash(secrets.token_hex(8))
        hashed = _DUMMY_HASH
        try:
            password_hasher().verify(hashed, password or "")
        except (VerificationError, InvalidHashError):
            pass
        return False
    try:
        return password_hasher().verify(hashed, password or "")
    except (VerificationError, InvalidHashError):
        return False


def _hash_password(username: str, password: str) -> str:
    if len(password or "") < PASSWORD_MIN_LENGTH:
        raise OversightError(N_("account {username}: a password needs at least {n} characters"), username=username,
                             n=PASSWORD_MIN_LENGTH)
    if password.lower() == username.lower():
        raise OversightError(N_("account {username}: the password must differ from the user name"),
                             username=username)
    return password_hasher().hash(password)


def _sha(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:   # no user name in the environment (some containers)
        return "owner"
