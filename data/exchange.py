"""Export store tables to Parquet and import them back (one file per table plus a manifest).

The manifest records the schema version and row counts, so a package made by one
platform (project, district, city) can be checked before another one takes it in.
Imports are one transaction: all tables arrive, or none.

Most tables that travel carry a ``site_code`` (:func:`site_tables`). A few records belong to
no one site but go with the sites that name them (:data:`LINKED_TABLES`): an enterprise
travels with every site it builds or subcontracts on. :func:`package_tables` lists both kinds,
:func:`site_source` gives any of them as rows with a ``site_code`` (a linked row once per
site naming it), and :func:`site_rows` the rows to carry for a set of sites.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sitetwin.data.errors import StoreError
from sitetwin.data.files import file_sha256
from sitetwin.data.i18n import N_
from sitetwin.data.store import Store

MANIFEST = "manifest.json"
# Tables that never leave a platform, neither in an exchange package nor in the city lake: accounts and what
# proves who someone is (sessions, tokens, login attempts, device tokens), the audit log, the schema's record.
PRIVATE_TABLES = frozenset({"accounts", "account_sites", "sessions", "api_tokens", "login_attempts", "audit_log",
                            "device_tokens", "account_settings", "schema_migrations"})


# table -> the SQL of its rows with the site_code of each site that names them (a row may belong to several)
LINKED_TABLES: dict[str, str] = {
    "enterprises": "SELECT l.site_code, e.* FROM enterprises e JOIN (SELECT site_code, enterprise_code FROM sites "
                   "WHERE enterprise_code IS NOT NULL UNION SELECT site_code, enterprise_code "
                   "FROM site_subcontractors) l USING (enterprise_code)",
}


# What an import runs in its transaction after the rows are in: the owners of tables kept from other tables'
# rows (oversight's finding_current, from finding_events) register here (``@after_import``) and bring them up
# to date from the tables read (name -> pyarrow Table). data knows none of them.
AFTER_IMPORT: list[Callable[[Store, dict[str, Any]], None]] = []


def after_import(fn: Callable[[Store, dict[str, Any]], None]) -> Callable[[Store, dict[str, Any]], None]:
    """Register ``fn(store, tables)`` to run at the end of every :func:`import_tables` transaction."""
    if fn not in AFTER_IMPORT:
        AFTER_IMPORT.append(fn)
    return fn


def site_tables(store: Store) -> list[str]:
    """The tables whose rows may leave a platform, sorted: those with a ``site_code`` column (each row
    belongs to one site), less :data:`PRIVATE_TABLES`. Exchange packages and the city lake carry these."""
    rows = store.rows("SELECT DISTINCT table_name FROM information_schema.columns WHERE column_name = 'site_code' "
                      "AND table_schema = 'main' AND table_name IN (SELECT table_name FROM information_schema.tables "
                      "WHERE table_type = 'BASE TABLE') ORDER BY 1")
    return [r["table_name"] for r in rows if r["table_name"] not in PRIVATE_TABLES]


def package_tables(store: Store) -> list[str]:
    """What an exchange package and the city lake carry: :func:`site_tables` and then the
    :data:`LINKED_TABLES` the store has."""
    have = set(store.tables())
    return site_tables(store) + [t for t in LINKED_TABLES if t in have]


def site_source(table: str) -> str:
    """A FROM item giving ``table``'s rows with their ``site_code``: the table itself, or for a linked
    table a subquery with one row per (site, row). ``table`` comes from :func:`package_tables`."""
    return f"({LINKED_TABLES[table]})" if table in LINKED_TABLES else f'"{table}"'


def site_rows(store: Store, table: str, sites: list[str]):
    """The rows of ``table`` (one of :func:`package_tables`) that travel with ``sites``: a pyarrow Table of
    the table's own columns (a linked row once, however many of the sites name it)."""
    import pyarrow as pa

    columns = ", ".join(f'"{c}"' for c in _columns(store, table))
    store.con.register("_exchange_sites", pa.table({"site_code": pa.array(list(sites), pa.string())}))
    try:
        distinct = "DISTINCT " if table in LINKED_TABLES else ""
        return store.con.sql(f"SELECT {distinct}{columns} FROM {site_source(table)} "
                             f"WHERE site_code IN (SELECT site_code FROM _exchange_sites)").to_arrow_table()
    finally:
        store.con.unregister("_exchange_sites")


def export_sites(store: Store, out_dir: str | Path, sites: list[str]) -> dict:
    """Write what travels with ``sites`` (:func:`package_tables`, enterprises included) as a package in
    ``out_dir``; returns the manifest. The caller checks that the sites are the caller's to export."""
    import shutil
    import tempfile

    from sitetwin.data.store import open_store

    work = Path(tempfile.mkdtemp(prefix="sitetwin-package-"))
    try:
        with open_store(":memory:", cache_dir=work / "cache") as pkg:
            tables = [t for t in package_tables(store) if t in pkg.tables()]
            with pkg.transaction():
                for t in tables:
                    pkg.insert_frame(t, site_rows(store, t, sites))
            return export_tables(pkg, out_dir, tables)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def export_tables(store: Store, out_dir: str | Path, tables: list[str] | None = None) -> dict:
    """Write each table as ``<table>.parquet`` in ``out_dir``; returns the manifest."""
    import pyarrow.parquet as pq

    out = Path(out_dir)
    available = [t for t in store.tables() if t != "schema_migrations"]
    chosen = list(tables) if tables else available
    unknown = sorted(set(chosen) - set(available))
    if unknown:
        raise StoreError(N_("{store}: no table {tables} (tables: {available})"), store=store.label,
                         tables=", ".join(unknown), available=", ".join(available))
    out.mkdir(parents=True, exist_ok=True)
    exported: dict[str, dict[str, Any]] = {}
    manifest = {"format": "sitetwin-parquet/1", "schema_version": store.schema_version(),
                "exported_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "tables": exported}
    for table in chosen:
        arrow = store.con.sql(f'SELECT * FROM "{table}"').to_arrow_table()
        target = out / f"{table}.parquet"
        tmp = target.with_suffix(".parquet.tmp")
        pq.write_table(arrow, tmp)
        os.replace(tmp, target)
        exported[table] = {"file": target.name, "rows": arrow.num_rows, "sha256": file_sha256(target)}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return manifest


def import_tables(store: Store, in_dir: str | Path, tables: list[str] | None = None) -> dict[str, dict[str, int]]:
    """Append the Parquet files of an export to the store's tables, skipping rows already there.

    Returns ``{table: {"read": n, "inserted": m}}``. Nothing is written unless every file
    reads and fits its table.
    """
    import pyarrow.parquet as pq

    src = Path(in_dir)
    if not src.is_dir():
        raise StoreError(N_("{path}: not a folder of Parquet files"), path=src)
    manifest_path = src / MANIFEST
    files: dict[str, Path]
    if manifest_path.exists():
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            files = {t: src / meta["file"] for t, meta in manifest["tables"].items()}
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreError(N_("{path}: damaged manifest ({reason})"), path=manifest_path, reason=str(exc)) from None
        if manifest.get("schema_version", 0) > store.schema_version():
            raise StoreError(N_("{path}: exported from a newer schema (version {version}) than {store} has "
                                "({have}); upgrade sitetwin first"), path=src, version=manifest["schema_version"],
                             store=store.label, have=store.schema_version())
        for table, path in files.items():
            expected = manifest["tables"][table].get("sha256")
            if not path.exists():
                raise StoreError(N_("{path}: listed in the manifest but missing"), path=path)
            if expected and file_sha256(path) != expected:
                raise StoreError(N_("{path}: contents differ from the manifest's checksum; the package is damaged"),
                                 path=path)
    else:
        files = {p.stem: p for p in sorted(src.glob("*.parquet"))}
    if tables:
        missing = sorted(set(tables) - set(files))
        if missing:
            raise StoreError(N_("{path}: no Parquet file for table {tables}"), path=src, tables=", ".join(missing))
        files = {t: files[t] for t in tables}
    if not files:
        raise StoreError(N_("{path}: no Parquet files to import"), path=src)
    known = set(store.tables())
    loaded = {}
    for table, path in files.items():
        if table not in known or table == "schema_migrations":
            raise StoreError(N_("{path}: no table {table!r} in {store}"), path=path, table=table, store=store.label)
        try:
            loaded[table] = pq.read_table(path)
        except Exception as exc:
            raise StoreError(N_("{path}: not a readable Parquet file ({reason})"), path=path, reason=str(exc)) from None
        columns = set(_columns(store, table))
        extra = sorted(set(loaded[table].column_names) - columns)
        if extra:
            raise StoreError(N_("{path}: columns {columns} do not exist in table {table}"), path=path,
                             columns=", ".join(extra), table=table)

    report = {}
    with store.transaction():
        for table, arrow in loaded.items():
            before = store.scalar(f'SELECT count(*) FROM "{table}"')
            cols = ", ".join(f'"{c}"' for c in arrow.column_names)
            store.con.register("_import", arrow)
            try:
                if _has_key(store, table):
                    store.execute(f'INSERT OR IGNORE INTO "{table}" ({cols}) SELECT {cols} FROM _import')
                else:
                    store.execute(f'INSERT INTO "{table}" ({cols}) SELECT {cols} FROM _import '
                                      f'EXCEPT SELECT {cols} FROM "{table}"')
            except Exception as exc:
                raise StoreError(N_("{path}: rows do not fit table {table} ({reason})"), path=files[table], table=table,
                                 reason=str(exc).splitlines()[0]) from None
            finally:
                store.con.unregister("_import")
            after = store.scalar(f'SELECT count(*) FROM "{table}"')
            report[table] = {"read": arrow.num_rows, "inserted": int(after - before)}
        for fn in AFTER_IMPORT:
            fn(store, loaded)
    return report


def _columns(store: Store, table: str) -> list[str]:
    return [r["column_name"] for r in store.rows(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position", [table])]


def _has_key(store: Store, table: str) -> bool:
    return bool(store.scalar(
        "SELECT count(*) FROM duckdb_constraints() "
        "WHERE table_name = ? AND constraint_type IN ('PRIMARY KEY', 'UNIQUE')", [table]))


