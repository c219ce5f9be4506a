"""History import: readings and attendance events from CSV or Parquet files, one transaction per file.

Readings come long (``device_id, measured_at, channel, value``) or wide (``device_id,
measured_at`` and one column per channel; an empty cell is no reading). Attendance files
have ``device_id`` (the gate), ``worker_id`` (or ``person_id`` with a pseudonymisation key:
real ids are hashed on the way in and never stored), ``event`` (in/out), ``at``,
``trained`` and optionally ``trade`` and ``employer``. The time column may be named
``measured_at``, ``at``, ``time`` or ``timestamp``; times need a UTC offset unless a
``timezone`` is given for the whole file.

A file is checked whole before anything is written: unknown devices, channels a device does
not have, values that are missing, NaN or implausible, times in the future, too old, or
before a device was installed. One problem refuses the file, naming the rows; the store is
left as it was. Importing the same file again stores nothing twice (each device's part of a
file is one batch keyed by the file's sha256, and copies of stored readings are skipped).
"""

from __future__ import annotations

import datetime as dt
import functools
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sitetwin.data.clock import utcnow
from sitetwin.data.errors import Phrase
from sitetwin.data.evidence import FindingSink
from sitetwin.data.files import file_sha256
from sitetwin.data.i18n import N_
from sitetwin.data.store import Store, atomic, placeholders
from sitetwin.sensors.batch import (
    MAX_PROBLEMS,
    US_PER_DAY,
    Batch,
    DeviceRef,
    check_events,
    check_readings,
    content_digest,
    to_us,
)
from sitetwin.sensors.config import Limits
from sitetwin.sensors.errors import SensorError, joined, row

TIME_COLUMNS = ("measured_at", "at", "time", "timestamp")
_READING_RESERVED = {"device_id", "site_code", *TIME_COLUMNS, "channel", "value"}
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}


@dataclass(frozen=True)
class ImportReport:
    file: str
    kind: str                      # readings | attendance
    rows: int
    devices: tuple[str, ...]
    readings: int = 0              # stored
    events: int = 0                # stored
    copies: int = 0                # readings already stored, skipped
    already_imported: int = 0      # device batches of this file stored before
    untrusted: int = 0
    warnings: dict = field(default_factory=dict)   # evaluation report


def import_file(store: Store, path: str | Path, *, kind: str = "auto", timezone: str | None = None,
                now: dt.datetime | None = None, evaluate: bool = True, findings: bool | None = None,
                sink: FindingSink | None = None, pseudonym_key: str | bytes | None = None) -> ImportReport:
    """Import one CSV or Parquet file (see the module docstring) and re-evaluate the warnings it touches.

    Findings for the warnings are raised through ``sink`` as ``sensors.warnings.evaluate_warnings`` says.
    """
    path = Path(path)
    if not path.is_file():
        raise SensorError(N_("{path}: no such file"), path=path)
    if kind not in ("auto", "readings", "attendance"):
        raise SensorError(N_("{path}: kind {kind!r} must be auto, readings or attendance"), path=path, kind=kind)
    frame, fmt = _read(path)
    digest = file_sha256(path)
    if frame.empty:
        raise SensorError(N_("{path}: no rows to import"), path=path)
    columns = set(frame.columns)
    if kind == "auto":
        kind = "attendance" if {"event"} <= columns and ({"worker_id"} & columns or {"person_id"} & columns) \
            else "readings"
    time_col = next((c for c in TIME_COLUMNS if c in columns), None)
    if time_col is None:
        raise SensorError(N_("{path}: no time column (one of {columns})"), path=path, columns=", ".join(TIME_COLUMNS))
    if "device_id" not in columns:
        raise SensorError(N_("{path}: no device_id column"), path=path)
    now_dt = now or utcnow()
    now_us = to_us(now_dt)
    t_us, bad_time = _times(frame[time_col], timezone, path)
    problems = [Phrase(N_("{item}: {problem}"), item=row(i), problem=msg) for i, msg in bad_time[:MAX_PROBLEMS]]
    device_ids = frame["device_id"].astype(str).str.strip().to_numpy(dtype=object)
    known = {r["device_id"]: r for r in store.rows(
        f"SELECT device_id, site_code, device_type, installed_on, removed_on FROM devices WHERE device_id IN "
        f"({placeholders(set(device_ids.tolist()))})", sorted(set(device_ids.tolist())))}
    unknown = sorted(set(device_ids.tolist()) - set(known))
    if unknown:
        rows = [int(i) + 1 for i in np.flatnonzero(np.isin(device_ids, unknown))[:5]]
        raise SensorError(N_("{path}: unknown device {devices} (rows {rows}); register devices with "
                             "`sitetwin device add` first"), path=path,
                          devices=", ".join(unknown[:10]) + (" ..." if len(unknown) > 10 else ""),
                          rows=", ".join(map(str, rows)))
    refs = {d: DeviceRef(d, r["site_code"], r["device_type"], r["installed_on"], r["removed_on"])
            for d, r in known.items()}
    if "site_code" in columns:
        sites = frame["site_code"].astype(str).to_numpy(dtype=object)
        wrong = np.flatnonzero(sites != np.array([refs[d].site_code for d in device_ids], dtype=object))
        for i in wrong[:MAX_PROBLEMS]:
            problems.append(Phrase(N_("{item}: site_code {site_code} is not device {device_id}'s site {device_site}"),
                                   item=row(i), site_code=sites[i], device_id=device_ids[i],
                                   device_site=refs[device_ids[i]].site_code))
    from sitetwin.sensors.limits import site_limits

    limits_by_site: dict[str, Limits] = {}
    for ref in refs.values():
        if ref.site_code not in limits_by_site:
            limits_by_site[ref.site_code] = site_limits(store, ref.site_code)
    max_age = min(lim.ingest.max_import_age_days for lim in limits_by_site.values())
    max_future = min(lim.ingest.max_future_s for lim in limits_by_site.values())
    min_us = now_us - int(max_age * US_PER_DAY)
    batch_id = f"file:{digest[:24]}"
    batches: list[Batch] = []
    if kind == "readings":
        long = _long_readings(frame, time_col, t_us, device_ids, problems, path)
        rows_idx, dev, chan, val, tt = long
        for d in sorted(set(dev.tolist())):
            sel = np.flatnonzero(dev == d)
            ok_time = tt[sel] != np.iinfo(np.int64).min
            sel = sel[ok_time]
            problems += check_readings(refs[d], tt[sel], chan[sel], val[sel], now_us=now_us, min_us=min_us,
                                       max_future_s=max_future,
                                       where=lambda i, sel=sel: row(int(rows_idx[sel[i]])))
            if not problems:
                sha = content_digest(d, tt[sel], chan[sel], val[sel], {})
                batches.append(Batch(batch_key=f"{d}/{batch_id}", batch_id=batch_id, device_id=d,
                                     site_code=refs[d].site_code, content_sha256=sha, t_us=tt[sel],
                                     channel=chan[sel], value=val[sel]))
    else:
        workers = _workers(frame, pseudonym_key, path)
        for d in sorted(set(device_ids.tolist())):
            sel = np.flatnonzero(device_ids == d)
            items, kept = [], []
            for i in sel.tolist():
                if t_us[i] == np.iinfo(np.int64).min:
                    continue
                kept.append(int(i))
                items.append({"at": t_us[i] / 1e6, "worker_id": workers[i], "event": _text(frame, "event", i),
                              "trained": _bool(frame, "trained", i), "trade": _text(frame, "trade", i),
                              "employer": _text(frame, "employer", i)})
            local: list[Phrase] = []
            ev = check_events(items, refs[d], now_us=now_us, min_us=min_us, max_future_s=max_future, problems=local,
                              where=functools.partial(_kept_row, kept))
            problems += local
            if not local:
                sha = content_digest(d, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=object), np.zeros(0), ev)
                batches.append(Batch(batch_key=f"{d}/{batch_id}", batch_id=batch_id, device_id=d,
                                     site_code=refs[d].site_code, content_sha256=sha, t_us=np.zeros(0, dtype=np.int64),
                                     channel=np.zeros(0, dtype=object), value=np.zeros(0), events=ev))
    if problems:
        shown = problems[:MAX_PROBLEMS]
        if len(problems) > len(shown):
            raise SensorError(N_("{path}: {n} problem(s), nothing imported: {problems}; and {more} more"), path=path,
                              n=len(problems), problems=joined(list(shown)), more=len(problems) - len(shown))
        raise SensorError(N_("{path}: {n} problem(s), nothing imported: {problems}"), path=path, n=len(problems),
                          problems=joined(list(shown)))
    from sitetwin.sensors.timeseries import store_batches
    from sitetwin.sensors.warnings import evaluate_touched

    with atomic(store):
        stored = store_batches(store, batches, source=fmt, received_at=utcnow())
        evaluation = evaluate_touched(store, stored, now=now_dt, findings=findings, sink=sink) if evaluate else None
    return ImportReport(file=str(path), kind=kind, rows=len(frame), devices=tuple(sorted(refs)),
                        readings=stored.readings, events=stored.events, copies=stored.copies,
                        already_imported=stored.duplicate_batches, untrusted=stored.untrusted,
                        warnings={} if evaluation is None else {"inserted": evaluation.inserted,
                                                                "updated": evaluation.updated,
                                                                "removed": evaluation.removed,
                                                                "findings": evaluation.findings,
                                                                "by_kind": evaluation.by_kind})


def _read(path: Path):
    import pandas as pd

    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            table = pq.read_table(path)
            frame = table.to_pandas()
            return frame, "parquet"
        if suffix in (".csv", ".txt"):
            return pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True), "csv"
    except Exception as exc:  # noqa: BLE001 - any reader failure is a bad file for the user
        raise SensorError(N_("{path}: not a readable {format} file ({reason})"), path=path, format=suffix[1:].upper(),
                          reason=(str(exc).splitlines() or [""])[0]) from None
    raise SensorError(N_("{path}: import reads .csv or .parquet files, not {suffix}"), path=path,
                      suffix=suffix or Phrase(N_("files without a suffix")))


def _times(column, timezone: str | None, path: Path) -> tuple[np.ndarray, list[tuple[int, Phrase]]]:
    """UTC microseconds per row (int64 min where unreadable) and the unreadable rows."""
    import pandas as pd

    missing = np.iinfo(np.int64).min
    problems: list[tuple[int, Phrase]] = []
    if pd.api.types.is_datetime64_any_dtype(column.dtype):
        series = column
        if getattr(series.dt, "tz", None) is None:
            if timezone is None:
                raise SensorError(N_("{path}: its timestamps carry no timezone; give one (--timezone UTC, "
                                     "--timezone Asia/Shanghai)"), path=path)
            series = series.dt.tz_localize(timezone, ambiguous="raise", nonexistent="raise")
        return series.dt.tz_convert("UTC").dt.as_unit("us").astype("int64").to_numpy(), problems
    text = column.astype(str).str.strip().to_numpy(dtype=object)
    out = np.full(len(text), missing, dtype=np.int64)
    tz = None
    if timezone is not None:
        import zoneinfo

        try:
            tz = zoneinfo.ZoneInfo(timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise SensorError(N_("{path}: timezone {timezone!r} is not an IANA zone name such as Asia/Shanghai"),
                              path=path, timezone=timezone) from None
    cache: dict[str, int | Phrase] = {}
    for i, value in enumerate(text):
        got = cache.get(value)
        if got is None:
            got = _parse_time(value, tz)
            cache[value] = got
        if isinstance(got, Phrase):
            problems.append((i, got))
        else:
            out[i] = got
    return out, problems


def _parse_time(value: str, tz) -> int | Phrase:
    """UTC microseconds of a file's time, or what is wrong with it."""
    if not value:
        return Phrase(N_("no time"))
    try:
        stamp = dt.datetime.fromisoformat(value)
    except ValueError:
        try:
            return int(round(float(value) * 1_000_000))
        except ValueError:
            return Phrase(N_("time {value!r} is not ISO 8601 or epoch seconds"), value=value)
    if stamp.tzinfo is None:
        if tz is None:
            return Phrase(N_("time {value!r} has no UTC offset; add one or give the file's timezone"), value=value)
        stamp = stamp.replace(tzinfo=tz)
    return to_us(stamp.astimezone(dt.UTC))


def _long_readings(frame, time_col: str, t_us, device_ids, problems: list[Phrase], path: Path):
    """(row index, device, channel, value, time) arrays for long or wide files."""
    if "channel" in frame.columns and "value" in frame.columns:
        extra = sorted(set(frame.columns) - _READING_RESERVED)
        if extra:
            raise SensorError(N_("{path}: unexpected column {columns} in a long readings file "
                                 "(device_id, {time_column}, channel, value)"), path=path, columns=", ".join(extra),
                              time_column=time_col)
        values, bad = _numbers(frame["value"], allow_empty=False)
        for i in bad[:MAX_PROBLEMS]:
            problems.append(Phrase(N_("{item}: value {value!r} is not a finite number"), item=row(i),
                                   value=frame["value"].iloc[i]))
        channel = frame["channel"].astype(str).str.strip().to_numpy(dtype=object)
        rows = np.arange(len(frame))
        return rows, device_ids, channel, values, t_us
    channels = [c for c in frame.columns if c not in _READING_RESERVED]
    if not channels:
        raise SensorError(N_("{path}: no channel columns (a wide file has device_id, {time_column} and one column per "
                             "channel; a long one has channel and value)"), path=path, time_column=time_col)
    parts = []
    for c in channels:
        values, bad = _numbers(frame[c], allow_empty=True)
        for i in bad[:MAX_PROBLEMS]:
            problems.append(Phrase(N_("{item}: {column} {value!r} is not a finite number"), item=row(i), column=c,
                                   value=frame[c].iloc[i]))
        present = ~np.isnan(values) | np.isin(np.arange(len(values)), bad)
        idx = np.flatnonzero(present)
        parts.append((idx, np.full(len(idx), c, dtype=object), values[idx]))
    rows = np.concatenate([p[0] for p in parts])
    order = np.argsort(rows, kind="stable")
    rows = rows[order]
    chan = np.concatenate([p[1] for p in parts])[order]
    vals = np.concatenate([p[2] for p in parts])[order]
    return rows, device_ids[rows], chan, vals, t_us[rows]


def _numbers(column, *, allow_empty: bool) -> tuple[np.ndarray, list[int]]:
    """Floats per row; NaN for empty cells (when allowed); rows whose text is not a finite number."""
    import pandas as pd

    if pd.api.types.is_numeric_dtype(column.dtype):
        # Parquet: a null (NaN once in pandas) is an empty cell; infinities are never readings
        values = column.to_numpy(dtype=np.float64, na_value=np.nan)
        bad = ~np.isfinite(values) & ~(np.isnan(values) & allow_empty)
        return values, np.flatnonzero(bad).tolist()
    text = column.astype(str).str.strip()
    values = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64)
    empty = (text == "").to_numpy()
    bad = ~np.isfinite(values) & ~(empty & allow_empty)
    values = np.where(empty, np.nan, values)
    return values, np.flatnonzero(bad).tolist()


def _workers(frame, key, path: Path) -> np.ndarray:
    from sitetwin.sensors.attendance import pseudonym

    if "person_id" in frame.columns:
        key = key or os.environ.get("SITETWIN_PSEUDONYM_KEY")
        if not key:
            raise SensorError(N_("{path}: holds real person ids; give a pseudonymisation key (--pseudonym-key-env, "
                                 "SITETWIN_PSEUDONYM_KEY) so that only pseudonyms are stored"), path=path)
        return np.array([pseudonym(str(p), key) for p in frame["person_id"]], dtype=object)
    if "worker_id" not in frame.columns:
        raise SensorError(N_("{path}: an attendance file needs worker_id (a pseudonym) or person_id"), path=path)
    return frame["worker_id"].astype(str).str.strip().to_numpy(dtype=object)


def _kept_row(kept: list[int], i: int) -> Phrase:
    """The file's row of the i-th event kept for checking."""
    return row(kept[i])


def _text(frame, column: str, i: int):
    if column not in frame.columns:
        return None
    value = frame[column].iloc[i]
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    value = str(value).strip()
    return value or None


def _bool(frame, column: str, i: int):
    if column not in frame.columns:
        return None
    value = frame[column].iloc[i]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    return value



