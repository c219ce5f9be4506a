"""Open, migrate and write the twin's DuckDB store.

One DuckDB file per twin. DuckDB lets one process write at a time, so connections are
short-lived: the CLI opens, writes in one transaction and closes; readers (the dashboard)
open read-only and retry while a writer holds the lock.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
import tempfile
import time
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from sitetwin.data.errors import StoreError
from sitetwin.data.i18n import N_

DEFAULT_DB = "sitetwin.duckdb"
_MIGRATION_RE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


@functools.lru_cache(maxsize=1)
def _migrations_cached() -> tuple[Migration, ...]:
    return tuple(_read_migrations())


def migrations() -> list[Migration]:
    """The schema migrations shipped with sitetwin, in the order they apply."""
    return list(_migrations_cached())


def _read_migrations() -> list[Migration]:
    found = []
    for entry in resources.files("sitetwin.data.migrations").iterdir():
        match = _MIGRATION_RE.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise StoreError(N_("two schema migrations share a number: {versions}"), versions=versions)
    return found


class Store:
    """A connection to one twin's DuckDB file, plus the geometry cache beside it.

    Use as a context manager, or call :meth:`close`. Every value goes in as a bound
    parameter; :meth:`transaction` makes a group of writes all-or-nothing. Go through
    these methods rather than ``con.execute``: they consume each result, which DuckDB 2
    requires before the connection takes the next statement.
    """

    def __init__(self, con: Any, path: Path | None, read_only: bool, cache_dir: Path):
        self.con = con
        self.path = path
        self.read_only = read_only
        self.cache_dir = cache_dir

    @property
    def label(self) -> str:
        return str(self.path) if self.path else ":memory:"

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.con.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Store]:
        """All writes inside succeed together or leave the store exactly as it was."""
        if self.read_only:
            raise StoreError(N_("{store} is open read-only"), store=self.label)
        self.con.begin()
        try:
            yield self
        except BaseException:
            self.con.rollback()
            raise
        else:
            self.con.commit()

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """Run a statement and consume its result (DuckDB 2 refuses new work while one is pending)."""
        return self.con.execute(sql, _bind(params)).fetchall()

    def rows(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run a query and return its rows as dicts (column name -> value)."""
        cur = self.con.execute(sql, _bind(params))
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]

    def one(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> dict[str, Any] | None:
        found = self.rows(sql, params)
        return found[0] if found else None

    def scalar(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> Any:
        rows = self.con.execute(sql, _bind(params)).fetchall()
        return rows[0][0] if rows else None

    def df(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None):
        """Run a query and return a pandas DataFrame."""
        return self.con.execute(sql, _bind(params)).df()

    def insert_frame(self, table: str, frame: Any) -> int:
        """Append a pandas DataFrame or pyarrow Table to ``table`` by column name."""
        if not _IDENT_RE.match(table):
            raise StoreError(N_("not a table name: {table!r}"), table=table)
        columns = list(frame.column_names if hasattr(frame, "column_names") else frame.columns)
        if not columns or len(frame) == 0:
            return 0
        for c in columns:
            if not _IDENT_RE.match(c):
                raise StoreError(N_("not a column name: {column!r}"), column=c)
        view = f"_insert_{table}"
        self.con.register(view, frame)
        try:
            cols = ", ".join(f'"{c}"' for c in columns)
            self.execute(f'INSERT INTO "{table}" ({cols}) SELECT {cols} FROM "{view}"')
        finally:
            self.con.unregister(view)
        return len(frame)

    def tables(self) -> list[str]:
        return [r["table_name"] for r in self.rows(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
            "AND table_type = 'BASE TABLE' ORDER BY table_name")]

    def schema_version(self) -> int:
        return int(self.scalar("SELECT coalesce(max(version), 0) FROM schema_migrations") or 0)


_IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _bind(params: Sequence[Any] | dict[str, Any] | None) -> Any:
    if params is None:
        return None
    if isinstance(params, dict):
        return {k: _value(v) for k, v in params.items()}
    return [_value(v) for v in params]


def _value(v: Any) -> Any:
    # JSON columns take text; dicts and lists are serialised once, here.
    if isinstance(v, (dict, list)) and not isinstance(v, str):
        return json.dumps(v, default=str, separators=(",", ":"))
    return v


def cache_dir_for(path: Path) -> Path:
    """The geometry cache that belongs to a store file: ``<db>.cache/`` beside it."""
    return path.parent / f"{path.name}.cache"


def copy_store(src: str | Path, dst: str | Path) -> Path:
    """Copy a closed store file to ``dst`` with its cache folder (when it has one); returns ``dst``."""
    import shutil

    src, dst = Path(src), Path(dst)
    shutil.copy2(src, dst)
    if cache_dir_for(src).exists():
        shutil.copytree(cache_dir_for(src), cache_dir_for(dst))
    return dst


def open_store(
    path: str | Path = DEFAULT_DB,
    *,
    read_only: bool = False,
    create: bool = True,
    lock_timeout_s: float = 30.0,
    cache_dir: str | Path | None = None,
    upto: int | None = None,
) -> Store:
    """Open (and if needed create and migrate) the store at ``path``.

    ``upto``: migrate no further than that version (a store as an older sitetwin left it: what the
    tests of a migration start from).

    ``":memory:"`` opens an in-memory store with its geometry cache in a temporary folder.
    While another process writes, opening waits up to ``lock_timeout_s``.

    >>> with open_store(":memory:") as store:
    ...     store.schema_version() > 0
    True
    """
    import duckdb

    memory = str(path) == ":memory:"
    db_path = None if memory else Path(path)
    if db_path is not None:
        if db_path.is_dir():
            raise StoreError(N_("{path}: is a folder, not a store file; pass a file path such as {example}"),
                             path=db_path, example=db_path / DEFAULT_DB)
        if not db_path.exists() and (read_only or not create):
            raise StoreError(N_("{path}: no store there; create one with `sitetwin init --db {path}`"), path=db_path)
        if not db_path.parent.exists():
            raise StoreError(N_("{path}: folder {folder} does not exist"), path=db_path, folder=db_path.parent)
    if cache_dir is not None:
        cache = Path(cache_dir)
    elif db_path is not None:
        cache = cache_dir_for(db_path)
    else:
        cache = Path(tempfile.mkdtemp(prefix="sitetwin-cache-"))

    deadline = time.monotonic() + lock_timeout_s
    delay = 0.02
    while True:
        try:
            con = duckdb.connect(":memory:" if memory else str(db_path), read_only=read_only)
            break
        except duckdb.IOException as exc:
            text = str(exc)
            if "lock" in text.lower() and time.monotonic() < deadline:
                time.sleep(delay)
                # short polls: writers such as the ingest flusher free the store for a fraction of a
                # second at a time, and a longer sleep keeps missing those windows
                delay = min(delay * 2, 0.1)
                continue
            if "lock" in text.lower():
                raise StoreError(N_("{path}: another process is writing to this store; waited {waited_s:.0f} s for it"),
                                 path=db_path, waited_s=lock_timeout_s) from None
            raise StoreError(N_("{path}: not a DuckDB store ({reason})"), path=db_path,
                             reason=text.splitlines()[0]) from None
        except duckdb.Error as exc:
            raise StoreError(N_("{path}: cannot open as a DuckDB store ({reason})"), path=db_path,
                             reason=str(exc).splitlines()[0]) from None

    store = Store(con, db_path, read_only, cache)
    try:
        if read_only:
            _check_current(store)
        else:
            migrate(store, upto=upto)
    except BaseException:
        con.close()
        raise
    return store


def migrate(store: Store, *, upto: int | None = None) -> list[Migration]:
    """Apply every migration not yet recorded in ``schema_migrations`` (up to version ``upto`` if
    given); return those applied."""
    wanted = [m for m in migrations() if upto is None or m.version <= upto]
    try:   # the common case, a current store, costs one read (short-lived writers open often)
        done = {r[0] for r in store.execute("SELECT version FROM schema_migrations")}
    except Exception:
        done = set()
    if done >= {m.version for m in wanted}:
        return []
    store.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name VARCHAR NOT NULL,"
        " applied_at TIMESTAMP NOT NULL DEFAULT current_timestamp)")
    done = {r[0] for r in store.execute("SELECT version FROM schema_migrations")}
    applied = []
    for m in wanted:
        if m.version in done:
            continue
        with store.transaction():
            try:
                store.execute(m.sql)
            except Exception as exc:
                raise StoreError(N_("{store}: migration {version:04d}_{name} failed: {reason}"), store=store.label,
                                 version=m.version, name=m.name, reason=str(exc)) from exc
            store.execute("INSERT INTO schema_migrations (version, name) VALUES (?, ?)", [m.version, m.name])
        applied.append(m)
    return applied


def _check_current(store: Store) -> None:
    import duckdb

    try:
        have = store.schema_version()
    except duckdb.CatalogException:
        raise StoreError(N_("{store}: not a sitetwin store (no schema_migrations table); create one with "
                            "`sitetwin init`"), store=store.label) from None
    except duckdb.Error as exc:       # a store that could not be read is not "not a store": say what happened
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise StoreError(N_("{store}: could not read its schema version: {reason}"), store=store.label,
                         reason=first) from exc
    want = migrations()[-1].version
    if have < want:
        raise StoreError(N_("{store}: store schema is at version {have}, this sitetwin needs {want}; open it once "
                            "for writing (`sitetwin init --db {store}`) to migrate"), store=store.label, have=have,
                         want=want)


def in_transaction(store: Store) -> bool:
    """Whether an explicit transaction is open on the store's connection.

    DuckDB has no such flag, and a failed BEGIN aborts the transaction already open, so we
    cannot simply try: inside an explicit transaction ``txid_current()`` answers the same id
    twice, in autocommit mode every statement gets a fresh one.
    """
    first = store.scalar("SELECT txid_current()")
    return store.scalar("SELECT txid_current()") == first


@contextlib.contextmanager
def atomic(store: Store) -> Iterator[Store]:
    """All writes inside succeed together; inside a caller's transaction, they are part of it."""
    if in_transaction(store):
        yield store
    else:
        with store.transaction():
            yield store


@contextlib.contextmanager
def store_for(store: Store | str | Path) -> Iterator[Store]:
    """The store given, or the one at a path opened for the block only (and closed after).

    Long work that records its result at the end (training a detector, say) takes a path,
    so that it holds the store, and with it every other writer and reader, only while it
    writes.
    """
    if isinstance(store, Store):
        yield store
    else:
        with open_store(store) as opened:
            yield opened


def placeholders(values: Collection[Any]) -> str:
    """``?, ?, ?``: one bound parameter per value, for ``IN (...)`` and ``VALUES (...)``."""
    return ", ".join("?" for _ in values)


def where_in(column: str, values: Sequence[Any] | None) -> tuple[str, list[Any]]:
    """A ``column IN (?, ...)`` condition and its parameters (each value once).

    None means no restriction (``true``); an empty list matches nothing (``false``).
    """
    if values is None:
        return "true", []
    unique = list(dict.fromkeys(values))
    if not unique:
        return "false", []
    return f"{column} IN ({placeholders(unique)})", unique
