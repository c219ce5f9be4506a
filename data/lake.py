"""The city lake: the site tables of many stores as Parquet, partitioned ``city=/district=/site=``
(Hive style) on any pyarrow filesystem, published incrementally and read back with DuckDB.

Layout under the lake's root (a local folder, ``file://`` or ``s3://`` URI)::

    _sitetwin_lake.json                                  format and schema version
    _state/site=<site>.json                              what was published of one site: per table its
                                                         partition file, row count and content digest
    <table>/city=<c>/district=<d>/site=<s>/part-0.parquet
    _compacted/current.json                              the last compaction: per table its district files and,
                                                         per site, the per-site file (path, size, mtime) it took
    _compacted/<table>/city=<c>/district=<d>/part-<key>.parquet   one table's rows of a district's sites

The tables are those an exchange package carries (``data.exchange.package_tables``): every table
with a ``site_code`` column except accounts, sessions, tokens and the audit log, and the linked
tables (enterprises), whose rows are written into the partition of every site that names them
(with that site's code) and read back once each. Partition
values are percent-encoded (``urllib.parse.quote``); a missing city or district is
``__HIVE_DEFAULT_PARTITION__``. Every file also holds its rows' own columns, ``site_code``
included, so a reader needs nothing from the paths.

:func:`publish` compares a content digest per table and site with the site's state file and
writes only what changed: a partition is written under a hidden temporary name and then
moved over the old file, so a reader sees the old partition or the new one, never half of
one. A site's tables are replaced one at a time (each whole); the state file is written last,
so an interrupted publish is finished by the next one.

:func:`compact` (``sitetwin lake compact``) writes each table's per-site files as one file per district, so a
city rollup opens a few dozen files rather than one per table and site (the cost of a per-site lake is per
file). It is exact by construction: a reader takes a site's rows from a compacted file only while that site's
per-site files are still the ones the compaction listed before reading them (same path, size and modification
time); a site republished, moved or emptied since is read from its own files, and its compacted rows left out.
The per-site files stay: they are what :func:`publish` compares against, and what a reader of few sites opens.

:func:`open_lake` returns a :class:`LakeStore`: the ``Store`` class over an in-memory DuckDB
database that has every migration's tables, where each lake table with files is replaced by a
view of the same name over its Parquet files (``read_parquet`` for local folders, a pyarrow
dataset for other filesystems). Queries written for a store, scope filters included, run on it
unchanged. It is read-only: accounts, sessions and the audit log there are empty tables.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from sitetwin.data.errors import StoreError
from sitetwin.data.exchange import LINKED_TABLES, package_tables, site_source
from sitetwin.data.i18n import N_
from sitetwin.data.store import Store, migrations, open_store

LAKE_FORMAT = "sitetwin-lake/1"
LAKE_FILE = "_sitetwin_lake.json"
STATE_DIR = "_state"
PART_FILE = "part-0.parquet"
NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"
COMPACT_DIR = "_compacted"
COMPACT_RECORD = f"{COMPACT_DIR}/current.json"
COMPACT_FORMAT = "sitetwin-lake-compaction/1"
COMPACT_ROW_GROUP = 131_072   # rows per row group of a compacted file (DuckDB reads row groups in parallel)
FILTER_SHARE = 4              # a reader admitting under 1/4 of a compacted file's sites reads their own files
_GLOB_CHARS = "*?[]{}"       # read_parquet takes every path as a pattern; a root with these goes through pyarrow
BATCH_ROWS = 250_000          # rows per Arrow batch while streaming a table out of the store


class LakeError(StoreError):
    """The lake could not be found, read or written, or belongs to another schema version."""


@dataclass(frozen=True)
class LakeLocation:
    """Where a lake lives: its URI as given, the pyarrow filesystem and the root path inside it."""

    uri: str
    fs: Any                 # pyarrow.fs.FileSystem
    root: str

    def path(self, *parts: str) -> str:
        return "/".join([self.root.rstrip("/"), *parts])

    @property
    def local(self) -> bool:
        from pyarrow.fs import LocalFileSystem

        return isinstance(self.fs, LocalFileSystem)


def lake_location(uri: str | Path, filesystem: Any = None) -> LakeLocation:
    """Resolve a lake URI: a local path (relative or absolute), ``file://...``, ``s3://bucket/prefix``,
    or any URI ``pyarrow.fs.FileSystem.from_uri`` knows. With ``filesystem`` (a pyarrow filesystem),
    ``uri`` is a path inside it."""
    from pyarrow import fs as pafs

    text = str(uri).strip()
    if not text:
        raise LakeError(N_("no lake given: pass --lake with a folder or a URI such as s3://bucket/city-lake"))
    if filesystem is not None:
        return LakeLocation(text, filesystem, text.rstrip("/") or "/")
    if "://" not in text:
        return LakeLocation(text, pafs.LocalFileSystem(), Path(text).expanduser().resolve().as_posix())
    try:
        fs, root = pafs.FileSystem.from_uri(text)
    except (ValueError, OSError) as exc:
        raise LakeError(N_("lake {lake}: not a URI pyarrow can open ({reason})"), lake=text,
                        reason=_first_line(exc)) from None
    return LakeLocation(text, fs, root.rstrip("/") or "/")


def partition_dir(table: str, city: str | None, district: str | None, site_code: str) -> str:
    """``<table>/city=<c>/district=<d>/site=<s>``, each value percent-encoded (relative to the root)."""
    return f"{table}/city={_enc(city)}/district={_enc(district)}/site={_enc(site_code)}"


def _enc(value: str | None) -> str:
    return quote(str(value), safe="") if value not in (None, "") else NULL_PARTITION


def _dec(value: str) -> str | None:
    return None if value == NULL_PARTITION else unquote(value)


def current_schema_version() -> int:
    return migrations()[-1].version


# --------------------------------------------------------------------------------------
# publishing

def publish(store: Store, lake: str | Path, *, sites: Iterable[str] | None = None, filesystem: Any = None,
            now: dt.datetime | None = None) -> dict:
    """Write the store's site tables into the lake, only the partitions whose rows changed.

    ``sites`` limits the publish to those site codes (default: every site of the store). Rows of
    a site code that ``sites`` (the table) does not know are not published; their count per table
    is reported under ``"orphans"``. A table that had rows of a site in the lake and has none now
    loses that partition.

    Returns ``{"lake", "sites", "written": [{"table", "site_code", "rows"}], "removed": [{"table",
    "site_code"}], "unchanged": n, "orphans": {table: rows}}``.
    """
    import pyarrow as pa

    loc = lake_location(lake, filesystem)
    version = store.schema_version()
    _prepare_lake(loc, version, now)
    known = {r["site_code"]: r for r in store.rows("SELECT site_code, district, city FROM sites ORDER BY site_code")}
    if sites is None:
        chosen = list(known)
    else:
        chosen = list(dict.fromkeys(sites))
        missing = [s for s in chosen if s not in known]
        if missing:
            raise LakeError(N_("{store}: no site {sites} in this store; nothing published"), store=store.label,
                            sites=", ".join(missing))
    tables = package_tables(store)
    report: dict[str, Any] = {"lake": loc.uri, "sites": chosen, "written": [], "removed": [], "unchanged": 0,
                              "orphans": {}}
    if not chosen:
        return report
    store.con.register("_lake_sites", pa.table({"site_code": pa.array(chosen, pa.string())}))
    try:
        digests = {t: _digests(store, t) for t in tables}
        for t in tables:
            orphans = store.scalar(f'SELECT count(*) FROM {site_source(t)} WHERE site_code IS NULL OR site_code NOT IN '
                                   f'(SELECT site_code FROM sites)')
            if orphans:
                report["orphans"][t] = int(orphans)
        states = {s: _read_state(loc, s) for s in chosen}
        # what to write: (table, site) whose digest or place differs from the state, or whose file went missing
        todo: dict[str, list[str]] = {}
        plans: dict[str, dict[str, dict]] = {s: {} for s in chosen}
        recorded = [(s, t, entry) for s in chosen for t, entry in states[s].get("tables", {}).items()]
        present = _exists(loc, [loc.path(e["path"]) for _, _, e in recorded])
        for s in chosen:
            site = known[s]
            old = states[s].get("tables", {})
            for t in tables:
                rows, digest = digests[t].get(s, (0, None))
                entry = old.get(t)
                where = f"{partition_dir(t, site['city'], site['district'], s)}/{PART_FILE}"
                if rows == 0:
                    if entry is not None:
                        plans[s][t] = {"remove": entry["path"]}
                    continue
                if entry is not None and entry.get("digest") == digest and entry.get("path") == where \
                        and present.get(loc.path(where), False):
                    report["unchanged"] += 1
                    continue
                todo.setdefault(t, []).append(s)
                plans[s][t] = {"path": where, "rows": rows, "digest": digest,
                               "replaces": entry["path"] if entry and entry.get("path") != where else None}
        for t, table_sites in todo.items():
            for s, arrow in _site_slices(store, t, table_sites):
                plan = plans[s][t]
                if arrow.num_rows != plan["rows"]:          # the store changed under us: refuse rather than guess
                    raise LakeError(N_("{store}: table {table} of site {site_code} changed while publishing; "
                                       "publish again"), store=store.label, table=t, site_code=s)
                _write_parquet(loc, plan["path"], arrow)
                if plan["replaces"]:
                    _delete(loc, plan["replaces"])
                report["written"].append({"table": t, "site_code": s, "rows": arrow.num_rows})
        for s in chosen:
            if not plans[s]:
                continue
            tables_state = dict(states[s].get("tables", {}))
            for t, plan in plans[s].items():
                if "remove" in plan:
                    _delete(loc, plan["remove"])
                    tables_state.pop(t, None)
                    report["removed"].append({"table": t, "site_code": s})
                else:
                    tables_state[t] = {"path": plan["path"], "rows": plan["rows"], "digest": plan["digest"]}
            site = known[s]
            _write_json(loc, _state_path(s), {"site_code": s, "city": site["city"], "district": site["district"],
                                              "schema_version": version, "source": store.label,
                                              "published_at": _iso(now), "tables": tables_state})
    finally:
        store.con.unregister("_lake_sites")
    return report


def _prepare_lake(loc: LakeLocation, version: int, now: dt.datetime | None) -> None:
    """Check the lake's format and schema version, or start a lake in an empty or new folder."""
    from pyarrow import fs as pafs

    meta = _lake_meta(loc)
    if meta is not None:
        _check_version(loc, meta, version, "publish")
        return
    try:
        info = loc.fs.get_file_info(loc.root)
        if info.type == pafs.FileType.File:
            raise LakeError(N_("lake {lake}: is a file, not a folder"), lake=loc.uri)
        if info.type == pafs.FileType.Directory and loc.fs.get_file_info(
                pafs.FileSelector(loc.root, recursive=False)):
            raise LakeError(N_("lake {lake}: the folder holds other files and no {file}; publish into an empty or "
                               "new folder"), lake=loc.uri, file=LAKE_FILE)
        loc.fs.create_dir(loc.root, recursive=True)
    except OSError as exc:
        raise LakeError(N_("lake {lake}: cannot write there ({reason})"), lake=loc.uri,
                        reason=_first_line(exc)) from None
    _write_json(loc, LAKE_FILE, {"format": LAKE_FORMAT, "schema_version": version, "created_at": _iso(now)})


def _lake_meta(loc: LakeLocation) -> dict | None:
    from pyarrow import fs as pafs

    path = loc.path(LAKE_FILE)
    try:
        if loc.fs.get_file_info(path).type != pafs.FileType.File:
            return None
        with loc.fs.open_input_stream(path) as fh:
            meta = json.loads(fh.read().decode("utf-8"))
    except OSError as exc:
        raise LakeError(N_("lake {lake}: cannot read {what} ({reason})"), lake=loc.uri, what=LAKE_FILE,
                        reason=_first_line(exc)) from None
    except ValueError as exc:
        raise LakeError(N_("lake {lake}: {file} is damaged ({reason})"), lake=loc.uri, file=LAKE_FILE,
                        reason=_first_line(exc)) from None
    if not isinstance(meta, dict) or meta.get("format") != LAKE_FORMAT:
        raise LakeError(N_("lake {lake}: {file} is not a {format} lake"), lake=loc.uri, file=LAKE_FILE,
                        format=LAKE_FORMAT)
    return meta


def _check_version(loc: LakeLocation, meta: dict, version: int, doing: str) -> None:
    have = meta.get("schema_version")
    if have != version:
        if doing == "publish":
            raise LakeError(N_("lake {lake}: holds schema version {have}, the store's is {version}; publish into "
                               "a new lake (or republish every store into an emptied one)"), lake=loc.uri,
                            have=have, version=version)
        raise LakeError(N_("lake {lake}: holds schema version {have}, this sitetwin's is {version}; publish into "
                           "a new lake (or republish every store into an emptied one)"), lake=loc.uri,
                        have=have, version=version)


def _digests(store: Store, table: str) -> dict[str, tuple[int, str]]:
    """site_code -> (rows, digest of the rows' contents and the table's columns), for the chosen sites."""
    columns = store.rows("SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ? "
                         "AND table_schema = 'main' ORDER BY ordinal_position", [table])
    shape = ",".join(f"{c['column_name']}:{c['data_type']}" for c in columns)
    # an order-free sum and xor of row hashes (DuckDB's hash of the whole row), with the count
    found = store.rows(f'SELECT site_code, count(*) AS n, sum(hash(t)::HUGEINT)::VARCHAR AS h, '
                       f'bit_xor(hash(t))::VARCHAR AS x FROM {site_source(table)} t '
                       f'WHERE site_code IN (SELECT site_code FROM _lake_sites) GROUP BY site_code')
    out = {}
    for r in found:
        text = f"{shape}|{r['n']}|{r['h']}|{r['x']}"
        out[r["site_code"]] = (int(r["n"]), hashlib.sha256(text.encode()).hexdigest()[:32])
    return out


def _site_slices(store: Store, table: str, sites: list[str]) -> Iterator[tuple[str, Any]]:
    """(site_code, Arrow table of its rows) for each of ``sites``, streamed from one ordered scan."""
    import numpy as np
    import pyarrow as pa

    wanted = pa.table({"site_code": pa.array(sites, pa.string())})
    store.con.register("_lake_wanted", wanted)
    try:
        reader = store.con.sql(
            f'SELECT * FROM {site_source(table)} WHERE site_code IN (SELECT site_code FROM _lake_wanted) '
            f'ORDER BY site_code').to_arrow_reader(BATCH_ROWS)
        current: str | None = None
        pending: list[Any] = []
        for batch in reader:
            codes = batch.column("site_code").to_numpy(zero_copy_only=False)
            cuts = [0, *(np.flatnonzero(codes[1:] != codes[:-1]) + 1).tolist(), len(codes)]
            for a, b in zip(cuts[:-1], cuts[1:]):
                if a == b:
                    continue
                code = codes[a]
                if code != current and pending:
                    assert current is not None
                    yield current, pa.Table.from_batches(pending)
                    pending = []
                current = code
                pending.append(batch.slice(a, b - a))
        if pending:
            assert current is not None
            yield current, pa.Table.from_batches(pending)
    finally:
        with contextlib.suppress(Exception):     # a scan left unfinished by an error must not block the store
            store.con.abort()
        store.con.unregister("_lake_wanted")


def _write_parquet(loc: LakeLocation, rel: str, arrow: Any, *, row_group_size: int | None = None) -> None:
    import pyarrow.parquet as pq

    target = loc.path(rel)
    folder = target.rsplit("/", 1)[0]
    tmp = f"{folder}/.tmp-{uuid.uuid4().hex}.parquet.tmp"   # hidden, and no reader's pattern matches it
    try:
        loc.fs.create_dir(folder, recursive=True)
        pq.write_table(arrow, tmp, filesystem=loc.fs, compression="zstd", row_group_size=row_group_size)
        loc.fs.move(tmp, target)
    except OSError as exc:
        _delete_quietly(loc, tmp)
        raise LakeError(N_("lake {lake}: cannot write {path} ({reason})"), lake=loc.uri, path=rel,
                        reason=_first_line(exc)) from None


def _write_json(loc: LakeLocation, rel: str, payload: dict) -> None:
    target = loc.path(rel)
    folder = target.rsplit("/", 1)[0]
    tmp = f"{folder}/.tmp-{uuid.uuid4().hex}.json.tmp"
    try:
        loc.fs.create_dir(folder, recursive=True)
        with loc.fs.open_output_stream(tmp) as fh:
            fh.write(json.dumps(payload, indent=1, default=str).encode("utf-8"))
        loc.fs.move(tmp, target)
    except OSError as exc:
        _delete_quietly(loc, tmp)
        raise LakeError(N_("lake {lake}: cannot write {path} ({reason})"), lake=loc.uri, path=rel,
                        reason=_first_line(exc)) from None


def _delete(loc: LakeLocation, rel: str) -> None:
    from pyarrow import fs as pafs

    path = loc.path(rel)
    try:
        if loc.fs.get_file_info(path).type == pafs.FileType.File:
            loc.fs.delete_file(path)
    except OSError as exc:
        raise LakeError(N_("lake {lake}: cannot remove {path} ({reason})"), lake=loc.uri, path=rel,
                        reason=_first_line(exc)) from None


def _delete_quietly(loc: LakeLocation, path: str) -> None:
    try:
        loc.fs.delete_file(path)
    except OSError:
        pass


def _exists(loc: LakeLocation, paths: list[str]) -> dict[str, bool]:
    from pyarrow import fs as pafs

    if not paths:
        return {}
    try:
        return {i.path: i.type == pafs.FileType.File for i in loc.fs.get_file_info(paths)}
    except OSError as exc:
        raise LakeError(N_("lake {lake}: cannot read ({reason})"), lake=loc.uri, reason=_first_line(exc)) from None


def _state_path(site_code: str) -> str:
    return f"{STATE_DIR}/site={_enc(site_code)}.json"


def _read_state(loc: LakeLocation, site_code: str) -> dict:
    path = loc.path(_state_path(site_code))
    try:
        with loc.fs.open_input_stream(path) as fh:
            state = json.loads(fh.read().decode("utf-8"))
    except FileNotFoundError:
        return {}
    except OSError as exc:
        if "not found" in str(exc).lower() or "no such file" in str(exc).lower():
            return {}
        raise LakeError(N_("lake {lake}: cannot read {what} ({reason})"), lake=loc.uri, what=_state_path(site_code),
                        reason=_first_line(exc)) from None
    except ValueError:
        return {}           # a damaged state file only costs a full republish of the site
    return state if isinstance(state, dict) else {}


def lake_sites(lake: str | Path, *, filesystem: Any = None) -> list[dict]:
    """What the lake holds per site (from the state files): site_code, city, district, published_at,
    source and per table the rows. Sorted by site code."""
    from pyarrow import fs as pafs

    loc = lake_location(lake, filesystem)
    if _lake_meta(loc) is None:
        raise LakeError(N_("lake {lake}: no sitetwin lake there (no {file}); make one with `sitetwin lake publish`"),
                        lake=loc.uri, file=LAKE_FILE)
    try:
        infos = loc.fs.get_file_info(pafs.FileSelector(loc.path(STATE_DIR), allow_not_found=True))
    except OSError as exc:
        raise LakeError(N_("lake {lake}: cannot read ({reason})"), lake=loc.uri, reason=_first_line(exc)) from None
    out = []
    for info in infos:
        name = info.base_name
        if info.type != pafs.FileType.File or not (name.startswith("site=") and name.endswith(".json")):
            continue
        code = _dec(name[len("site="):-len(".json")])
        state = _read_state(loc, code or "")
        if state:
            out.append({"site_code": state.get("site_code"), "city": state.get("city"),
                        "district": state.get("district"), "published_at": state.get("published_at"),
                        "source": state.get("source"),
                        "tables": {t: e.get("rows") for t, e in sorted(state.get("tables", {}).items())}})
    return sorted(out, key=lambda r: str(r["site_code"]))


# --------------------------------------------------------------------------------------
# compaction

def compact(lake: str | Path, *, filesystem: Any = None, now: dt.datetime | None = None) -> dict:
    """Write each table's per-site files as one Parquet file per district (``_compacted/...``), so that a
    reader opens a few files per table instead of one per site.

    Exact: each compacted file records the per-site files it was made of (path, size, modification
    time, as listed *before* they were read), and :func:`open_lake` takes a site's rows from the
    compacted file only while its per-site files are still exactly those; a site republished (or
    moved, or emptied) since is read from its own files instead, and its compacted rows are left out.
    A district whose per-site files are unchanged keeps its compacted file. Files are written under a
    hidden temporary name and moved into place, the record ``_compacted/current.json`` last; the
    compacted files of the previous record are kept (a reader opened before may still read them), older
    ones removed.

    Returns ``{"lake", "tables", "districts", "written": [{"table", "path", "sites", "rows"}], "kept": n,
    "removed": n, "sites": n}``.
    """
    import pyarrow.dataset as ds

    loc = lake_location(lake, filesystem)
    meta = _lake_meta(loc)
    if meta is None:
        raise LakeError(N_("lake {lake}: no sitetwin lake there (no {file}); nothing to compact"), lake=loc.uri,
                        file=LAKE_FILE)
    version = current_schema_version()
    _check_version(loc, meta, version, "read")
    previous = _read_compaction(loc)
    old_files = {f["path"]: f for entry in (previous or {}).get("tables", {}).values() for f in entry["files"]}
    report: dict[str, Any] = {"lake": loc.uri, "tables": 0, "districts": 0, "written": [], "kept": 0, "removed": 0,
                              "sites": 0}
    record: dict[str, Any] = {"format": COMPACT_FORMAT, "schema_version": version, "compacted_at": _iso(now),
                              "tables": {}}
    sites: set[str] = set()
    for table in _lake_tables(loc):
        listed = _partition_infos(loc, table)          # before reading: a file replaced later shows as newer
        groups: dict[tuple[str, str], list[tuple[str, int, int]]] = {}
        for rel, (size, mtime) in sorted(listed.items()):
            where = _where(rel)
            if where is None:
                continue
            city, district, _site = where
            groups.setdefault((_enc(city), _enc(district)), []).append((rel, size, mtime))
        files = []
        for (city_enc, district_enc), members in sorted(groups.items()):
            key = hashlib.sha256(json.dumps(members).encode()).hexdigest()[:20]
            rel_out = f"{COMPACT_DIR}/{table}/city={city_enc}/district={district_enc}/part-{key}.parquet"
            site_files: dict[str, list[Any]] = {}
            for rel, size, mtime in members:
                where = _where(rel)
                if where is not None:
                    site_files[where[2]] = [rel, size, mtime]
            entry: dict[str, Any] = {"path": rel_out, "city": _dec(city_enc), "district": _dec(district_enc),
                                     "sites": site_files}
            old = old_files.get(rel_out)
            if old is not None and _exists(loc, [loc.path(rel_out)]).get(loc.path(rel_out)):
                entry["rows"] = old.get("rows")
                report["kept"] += 1
            else:
                try:
                    arrow = ds.dataset([loc.path(rel) for rel, _, _ in members], filesystem=loc.fs,
                                       format="parquet").to_table()
                except (OSError, ValueError) as exc:
                    raise LakeError(N_("lake {lake}: cannot read {table} of district {district} to compact it "
                                       "({reason}); a publish may be running: compact again"), lake=loc.uri,
                                    table=table, district=_dec(district_enc), reason=_first_line(exc)) from None
                _write_parquet(loc, rel_out, arrow, row_group_size=COMPACT_ROW_GROUP)
                entry["rows"] = arrow.num_rows
                report["written"].append({"table": table, "path": rel_out, "sites": len(members),
                                          "rows": arrow.num_rows})
            sites.update(site_files)
            files.append(entry)
        if files:
            record["tables"][table] = {"files": files}
            report["tables"] += 1
            report["districts"] += len(files)
    _write_json(loc, COMPACT_RECORD, record)
    keep = {f["path"] for entry in record["tables"].values() for f in entry["files"]} | set(old_files)
    for rel in _compacted_files(loc):
        if rel not in keep:
            _delete(loc, rel)
            report["removed"] += 1
    report["sites"] = len(sites)
    return report


def _lake_tables(loc: LakeLocation) -> list[str]:
    """The table folders at the lake's root (not ``_state``, ``_compacted`` or hidden ones)."""
    from pyarrow import fs as pafs

    try:
        infos = loc.fs.get_file_info(pafs.FileSelector(loc.root, recursive=False))
    except OSError as exc:
        raise LakeError(N_("lake {lake}: cannot list ({reason})"), lake=loc.uri, reason=_first_line(exc)) from None
    return sorted(i.base_name for i in infos if i.type == pafs.FileType.Directory
                  and not i.base_name.startswith(("_", ".")))


def _compacted_files(loc: LakeLocation) -> list[str]:
    from pyarrow import fs as pafs

    base = loc.path(COMPACT_DIR)
    try:
        infos = loc.fs.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
    except OSError as exc:
        raise LakeError(N_("lake {lake}: cannot list {what} ({reason})"), lake=loc.uri, what=COMPACT_DIR,
                        reason=_first_line(exc)) from None
    return sorted(_relative(loc, i.path) for i in infos
                  if i.type == pafs.FileType.File and i.base_name.endswith(".parquet"))


def _read_compaction(loc: LakeLocation) -> dict | None:
    """The compaction record, or None when the lake was never compacted (or the record is unreadable:
    then the per-site files are read, which is always right)."""
    path = loc.path(COMPACT_RECORD)
    try:
        with loc.fs.open_input_stream(path) as fh:
            record = json.loads(fh.read().decode("utf-8"))
    except FileNotFoundError:
        return None
    except OSError as exc:
        if "not found" in str(exc).lower() or "no such file" in str(exc).lower():
            return None
        raise LakeError(N_("lake {lake}: cannot read {what} ({reason})"), lake=loc.uri, what=COMPACT_RECORD,
                        reason=_first_line(exc)) from None
    except ValueError:
        return None
    if not isinstance(record, dict) or record.get("format") != COMPACT_FORMAT \
            or record.get("schema_version") != current_schema_version():
        return None
    return record


def compaction_status(lake: str | Path, *, filesystem: Any = None) -> dict | None:
    """When the lake was last compacted and, per table, how many of its sites' per-site files are newer
    than that (read from their own files until the next compaction); None when never compacted."""
    loc = lake_location(lake, filesystem)
    if _lake_meta(loc) is None:
        raise LakeError(N_("lake {lake}: no sitetwin lake there (no {file})"), lake=loc.uri, file=LAKE_FILE)
    record = _read_compaction(loc)
    if record is None:
        return None
    tables = {}
    for table, entry in record["tables"].items():
        stale = _stale_sites(entry, _partition_infos(loc, table))
        tables[table] = {"files": len(entry["files"]), "sites": sum(len(f["sites"]) for f in entry["files"]),
                         "newer": len(stale)}
    return {"compacted_at": record.get("compacted_at"), "tables": tables}


def _stale_sites(entry: dict, listed: dict[str, tuple[int, int]]) -> set[str]:
    """Sites whose per-site files of one table are no longer those the compaction read: changed, gone, or new."""
    recorded: dict[str, tuple[int, int]] = {}
    stale: set[str] = set()
    for f in entry["files"]:
        for site, (rel, size, mtime) in f["sites"].items():
            recorded[rel] = (size, mtime)
            if listed.get(rel) != (size, mtime):
                stale.add(site)
    for rel in listed:
        if rel not in recorded:
            where = _where(rel)
            if where is not None:
                stale.add(where[2])
    return stale


# --------------------------------------------------------------------------------------
# reading

class LakeStore(Store):
    """A read-only ``Store`` whose tables are views over a lake's Parquet files."""

    def __init__(self, con: Any, location: LakeLocation, cache_dir: Path, owns_cache: bool):
        super().__init__(con, None, True, cache_dir)
        self.location = location
        self._owns_cache = owns_cache

    @property
    def label(self) -> str:
        return f"lake {self.location.uri}"

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self._owns_cache:
                shutil.rmtree(self.cache_dir, ignore_errors=True)


def open_lake(lake: str | Path, *, filesystem: Any = None, cache_dir: str | Path | None = None,
              admit: Callable[[str, str | None, str | None], bool] | None = None,
              compacted: bool = True) -> LakeStore:
    """Open a lake for reading, as a read-only :class:`LakeStore` (use as a context manager).

    ``admit(site_code, district, city)`` keeps only the partitions of the sites it admits (from
    their paths), so a scoped reader's tables hold nothing of other sites and it opens only its
    own files; queries still filter by scope as over a store. From a compacted district file it
    reads the whole file when it admits all of the file's sites, only the admitted sites' rows
    (a filter on ``site_code``) when it admits many of them, and those sites' own files when it
    admits few. ``cache_dir`` is where writes a read leaves behind go (the audit spool of a scoped
    read): pass the cache of the store whose accounts the caller came from, so that they reach its
    audit log. Without it a temporary folder is used and removed on close.

    With ``compacted`` (the default) the tables read the compacted files of :func:`compact` for the
    sites whose per-site files are unchanged since, and the per-site files of the others; without it,
    only per-site files.
    """
    loc = lake_location(lake, filesystem)
    meta = _lake_meta(loc)
    if meta is None:
        raise LakeError(N_("lake {lake}: no sitetwin lake there (no {file}); make one with "
                           "`sitetwin lake publish --db DB --lake {lake}`"), lake=loc.uri, file=LAKE_FILE)
    _check_version(loc, meta, current_schema_version(), "read")
    owns = cache_dir is None
    cache = Path(tempfile.mkdtemp(prefix="sitetwin-lake-")) if cache_dir is None else Path(cache_dir)
    base = open_store(":memory:", cache_dir=cache)
    store = LakeStore(base.con, loc, cache, owns)
    try:
        # a reader that queries more than once (a rollup after the scope check, a server) parses each
        # file's footer once; DuckDB checks a cached footer against the file's modification time
        store.execute("SET parquet_metadata_cache = true")
        record = _read_compaction(loc) if compacted else None
        for table in package_tables(store):
            listed = _partition_infos(loc, table)
            entry = (record or {}).get("tables", {}).get(table)
            sources = _plan_sources(listed, entry, admit)
            if any(sources.values()):
                _attach(store, loc, table, sources)
    except BaseException:
        store.close()
        raise
    return store


def _plan_sources(listed: dict[str, tuple[int, int]], entry: dict | None,
                  admit: Callable[[str, str | None, str | None], bool] | None) -> dict[str, Any]:
    """What one table's view reads: ``whole`` compacted files, ``filtered`` compacted files with the sites to
    keep of them, and per-site ``files`` (relative paths)."""
    whole: list[str] = []
    filtered: list[str] = []
    keep: set[str] = set()
    from_compacted: set[str] = set()
    taken: set[str] = set()                 # per-site files whose rows come from a compacted file
    if entry is not None:
        stale = _stale_sites(entry, listed)
        for f in entry["files"]:
            sites = set(f["sites"])
            live = {s for s in sites - stale if admit is None or admit(s, f["district"], f["city"])}
            if not live:
                continue
            if live == sites:
                whole.append(f["path"])
            elif len(live) * FILTER_SHARE < len(sites):
                continue                                   # a few sites of a big file: their own files are cheaper
            else:
                filtered.append(f["path"])
                keep |= live
            from_compacted |= live
            taken.update(f["sites"][site][0] for site in live)
    files = []
    for rel in sorted(listed):
        if rel in taken:
            continue
        where = _where(rel)
        if where is None or where[2] in from_compacted:
            continue
        city, district, site = where
        if admit is None or admit(site, district, city):
            files.append(rel)
    return {"whole": whole, "filtered": filtered, "keep": sorted(keep), "files": files}


def _partition_infos(loc: LakeLocation, table: str) -> dict[str, tuple[int, int]]:
    """The per-site partition files of one table: path relative to the root -> (size, modification time in ns)."""
    from pyarrow import fs as pafs

    try:
        infos = loc.fs.get_file_info(pafs.FileSelector(loc.path(table), recursive=True, allow_not_found=True))
    except OSError as exc:
        raise LakeError(N_("lake {lake}: cannot list {what} ({reason})"), lake=loc.uri, what=table,
                        reason=_first_line(exc)) from None
    return {_relative(loc, i.path): (int(i.size or 0), int(i.mtime_ns or 0)) for i in infos
            if i.type == pafs.FileType.File and i.base_name.endswith(".parquet") and not i.base_name.startswith(".")}


def _relative(loc: LakeLocation, path: str) -> str:
    root = loc.root.rstrip("/") + "/"
    return path[len(root):] if path.startswith(root) else path.lstrip("/")


def _where(rel: str) -> tuple[str | None, str | None, str] | None:
    """(city, district, site) of a per-site partition file (``<table>/city=/district=/site=/part``), or None."""
    parts = rel.rsplit("/", 4)[-4:-1]
    if len(parts) != 3 or not all(p.startswith(k + "=") for p, k in zip(parts, ("city", "district", "site"))):
        return None
    city, district, site = (_dec(p.split("=", 1)[1]) for p in parts)
    return None if site is None else (city, district, site)


def _attach(store: Store, loc: LakeLocation, table: str, sources: dict[str, Any]) -> None:
    """Replace the empty table by a view of the same name and column types over its files."""
    columns = store.rows("SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ? "
                         "AND table_schema = 'main' ORDER BY ordinal_position", [table])
    select = ", ".join(f'CAST("{c["column_name"]}" AS {c["data_type"]}) AS "{c["column_name"]}"' for c in columns)
    direct = loc.local and not any(ch in loc.root for ch in _GLOB_CHARS)

    def source(kind: str, rels: list[str]) -> str:
        paths = [loc.path(r) for r in rels]
        name = f"lake_{kind}_{table}"
        if direct:
            # the file list travels as a variable: bound, never spliced into the SQL (and bound as a list,
            # which Store.execute would send as JSON text)
            store.con.execute(f"SET VARIABLE {name} = ?", [paths]).fetchall()
            return f"read_parquet(getvariable('{name}'), hive_partitioning = false)"
        import pyarrow.dataset as ds

        try:
            dataset = ds.dataset(paths, filesystem=loc.fs, format="parquet")
        except (OSError, ValueError) as exc:
            raise LakeError(N_("lake {lake}: cannot read {what} ({reason})"), lake=loc.uri, what=table,
                            reason=_first_line(exc)) from None
        store.con.register(f"_{name}", dataset)
        return f"_{name}"

    parts = []
    if sources["whole"]:
        parts.append(f"SELECT * FROM {source('whole', sources['whole'])}")
    if sources["filtered"]:
        store.con.execute(f"SET VARIABLE lake_keep_{table} = ?", [sources["keep"]]).fetchall()
        parts.append(f"SELECT * FROM {source('filtered', sources['filtered'])} "
                     f"WHERE site_code IN (SELECT unnest(getvariable('lake_keep_{table}')))")
    if sources["files"]:
        parts.append(f"SELECT * FROM {source('files', sources['files'])}")
    body = "(" + " UNION ALL BY NAME ".join(parts) + ")"
    store.execute(f'DROP TABLE "{table}"')
    distinct = "DISTINCT " if table in LINKED_TABLES else ""     # a linked row sits in each of its sites' files
    store.execute(f'CREATE VIEW "{table}" AS SELECT {distinct}{select} FROM {body}')


def _iso(now: dt.datetime | None) -> str:
    from sitetwin.data.clock import utcnow

    return (now or utcnow()).isoformat(timespec="seconds")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
