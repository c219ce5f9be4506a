"""Readings and attendance events into the store, idempotently; time series back out.

``store_batches`` is the one way data enters: the ingest server's flusher, the CSV/Parquet
importer and the demo all call it. In one transaction it

- skips batches whose key is already in ``ingest_batches`` (a retried batch is stored once),
- skips readings already stored under (device_id, channel, measured_at), and events
  already stored under (site, worker, event, at): late and out-of-order data are simply
  inserted; a copy is ignored and the first stored value wins,
- flags readings of blacklisted devices (``trusted = false``) and readings outside every
  valid calibration (``uncalibrated``),
- keeps ``device_status`` (last trusted reading per device) in step.

It returns what it touched, so that warnings are re-evaluated only where data changed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sitetwin.data.clock import utcnow
from sitetwin.data.i18n import N_
from sitetwin.data.store import Store, atomic, placeholders
from sitetwin.sensors.batch import Batch, from_us

# Device types whose readings must be covered by a valid calibration certificate.
CALIBRATED_TYPES = ("dust", "noise", "weather", "crane", "hoist")


@dataclass(frozen=True)
class StoreReport:
    batches: int = 0                 # batches newly stored
    duplicate_batches: int = 0       # batches whose key was stored before (skipped whole)
    readings: int = 0                # readings stored
    copies: int = 0                  # readings skipped as copies of stored ones
    events: int = 0                  # attendance events stored
    untrusted: int = 0               # readings stored flagged as not trusted
    touched: dict = field(default_factory=dict)        # (device_id, channel) -> earliest new trusted reading (us)
    touched_sites: dict = field(default_factory=dict)  # site_code -> earliest new attendance event (us)
    stored_keys: tuple = ()


def store_batches(store: Store, batches: Sequence[Batch], *, source: str,
                  received_at: dt.datetime | Sequence[dt.datetime] | None = None,
                  stored_at: dt.datetime | None = None) -> StoreReport:
    """Store checked batches in one transaction (or the caller's); see the module docstring.

    ``received_at``: when the batches were acknowledged, one time for all or one per batch (UTC).
    """
    import pyarrow as pa

    if not batches:
        return StoreReport()
    stored_at = stored_at or utcnow()
    if received_at is None or isinstance(received_at, dt.datetime):
        received = [received_at or stored_at] * len(batches)
    else:
        received = list(received_at)
        if len(received) != len(batches):
            raise ValueError(f"received_at: {len(received)} times for {len(batches)} batches")
    first: dict[str, Batch] = {}
    arrived: dict[str, dt.datetime] = {}
    for b, r in zip(batches, received):
        first.setdefault(b.batch_key, b)
        arrived.setdefault(b.batch_key, r)
    unique = list(first.values())
    n_per = [b.reading_count for b in unique]
    batch_table = pa.table({
        "batch_key": [b.batch_key for b in unique], "site_code": [b.site_code for b in unique],
        "device_id": [b.device_id for b in unique], "content_sha256": [b.content_sha256 for b in unique],
        "received_at": pa.array([arrived[b.batch_key] for b in unique], type=pa.timestamp("us")),
        "ord": list(range(len(unique)))})
    n_all = sum(n_per)
    t_all = np.concatenate([b.t_us for b in unique]) if n_all else np.zeros(0, dtype=np.int64)

    def repeated(values: list[str]):
        # dictionary-encoded, then cast in Arrow: no Python string per reading
        indices = pa.array(np.repeat(np.arange(len(values), dtype=np.int32), n_per))
        return pa.DictionaryArray.from_arrays(indices, pa.array(values, type=pa.string())).cast(pa.string())

    reading_table = pa.table({
        "batch_key": repeated([b.batch_key for b in unique]),
        "site_code": repeated([b.site_code for b in unique]),
        "device_id": repeated([b.device_id for b in unique]),
        "channel": pa.array(np.concatenate([b.channel for b in unique]) if n_all else np.zeros(0, dtype=object),
                            type=pa.string()),
        "measured_at": pa.array(t_all, type=pa.timestamp("us")),
        "value": pa.array(np.concatenate([b.value for b in unique]) if n_all else np.zeros(0), type=pa.float64()),
        "ord": pa.array(np.arange(len(t_all), dtype=np.int64)),
    })
    ev_cols: dict[str, list[Any]] = {"batch_key": [], "site_code": [], "device_id": [], "worker_id": [], "trade": [],
                                     "employer": [], "trained": [], "event": [], "at": [], "ord": []}
    for b in unique:
        k = b.event_count
        if not k:
            continue
        ev_cols["batch_key"] += [b.batch_key] * k
        ev_cols["site_code"] += [b.site_code] * k
        ev_cols["device_id"] += [b.device_id] * k
        for key in ("worker_id", "trade", "employer", "trained", "event"):
            ev_cols[key] += list(b.events[key])
        ev_cols["at"] += list(b.events["at_us"])
    ev_cols["ord"] = list(range(len(ev_cols["at"])))
    event_table = pa.table({**{k: pa.array(v, type=pa.string()) for k, v in ev_cols.items()
                               if k not in ("trained", "at", "ord")},
                            "trained": pa.array(ev_cols["trained"], type=pa.bool_()),
                            "at": pa.array(ev_cols["at"], type=pa.timestamp("us")),
                            "ord": pa.array(ev_cols["ord"], type=pa.int64())})
    lo = from_us(int(t_all.min())) if len(t_all) else None
    hi = from_us(int(t_all.max())) if len(t_all) else None
    ev_t = ev_cols["at"]
    ev_lo = from_us(min(ev_t)) if ev_t else None
    ev_hi = from_us(max(ev_t)) if ev_t else None

    # Copies within this call need weeding out only when a device has several batches in it.
    devices_in_call = [b.device_id for b in unique]
    dedup = "QUALIFY row_number() OVER (PARTITION BY r.device_id, r.channel, r.measured_at ORDER BY r.ord) = 1" \
        if len(set(devices_in_call)) < len(devices_in_call) else ""
    con = store.con
    names = ("_st_batches", "_st_readings", "_st_events")
    for name, table in zip(names, (batch_table, reading_table, event_table)):
        con.register(name, table)
    try:
        with atomic(store):
            store.execute(
                "CREATE OR REPLACE TEMP TABLE _st_new_batches AS SELECT s.* FROM _st_batches s "
                "WHERE NOT EXISTS (SELECT 1 FROM ingest_batches b WHERE b.batch_key = s.batch_key)")
            unknown = [r[0] for r in store.execute(
                "SELECT DISTINCT device_id FROM _st_new_batches WHERE device_id NOT IN (SELECT device_id FROM devices) "
                "ORDER BY 1")]
            if unknown:
                from sitetwin.sensors.errors import DeviceError

                raise DeviceError(N_("batches of unknown device {devices}: register the device first "
                                     "(nothing of these batches was stored)"), devices=", ".join(unknown))
            store.execute(f"""
                CREATE OR REPLACE TEMP TABLE _st_new_readings AS
                WITH fresh AS (
                    SELECT r.* FROM _st_readings r SEMI JOIN _st_new_batches b USING (batch_key)
                    {dedup}
                )
                SELECT f.site_code, f.device_id, f.channel, f.measured_at, f.value,
                       NOT d.blacklisted AS trusted,
                       nullif(concat_ws(',',
                           CASE WHEN d.blacklisted THEN 'blacklisted' END,
                           CASE WHEN d.device_type IN ({placeholders(CALIBRATED_TYPES)}) AND NOT EXISTS (
                               SELECT 1 FROM device_calibrations c WHERE c.device_id = f.device_id
                               AND CAST(f.measured_at AS DATE) BETWEEN c.calibrated_on AND c.valid_until)
                           THEN 'uncalibrated' END), '') AS flags,
                       f.batch_key
                FROM fresh f JOIN devices d USING (device_id)
                WHERE NOT EXISTS (
                    SELECT 1 FROM readings x
                    WHERE x.measured_at BETWEEN ? AND ? AND x.device_id = f.device_id AND x.channel = f.channel
                      AND x.measured_at = f.measured_at)""", [*CALIBRATED_TYPES, lo, hi])
            store.execute("""
                CREATE OR REPLACE TEMP TABLE _st_new_events AS
                SELECT e.site_code, e.device_id, e.worker_id, e.trade, e.employer, e.trained, e.event, e."at",
                       e.batch_key
                FROM _st_events e SEMI JOIN _st_new_batches b USING (batch_key)
                WHERE NOT EXISTS (
                    SELECT 1 FROM attendance_events x
                    WHERE x."at" BETWEEN ? AND ? AND x.site_code = e.site_code AND x.worker_id = e.worker_id
                      AND x.event = e.event AND x."at" = e."at")
                QUALIFY row_number() OVER (PARTITION BY e.site_code, e.worker_id, e.event, e."at" ORDER BY e.ord) = 1
                """, [ev_lo, ev_hi])
            store.execute("INSERT INTO readings SELECT * FROM _st_new_readings")
            store.execute("INSERT INTO attendance_events SELECT * FROM _st_new_events")
            store.execute("""
                INSERT INTO ingest_batches (batch_key, site_code, device_id, source, content_sha256, readings, events,
                                            received_at, stored_at)
                SELECT b.batch_key, b.site_code, b.device_id, ?, b.content_sha256,
                       coalesce(r.n, 0), coalesce(e.n, 0), b.received_at, ?
                FROM _st_new_batches b
                LEFT JOIN (SELECT batch_key, count(*) AS n FROM _st_new_readings GROUP BY 1) r USING (batch_key)
                LEFT JOIN (SELECT batch_key, count(*) AS n FROM _st_new_events GROUP BY 1) e USING (batch_key)
                """, [source, stored_at])
            store.execute("""
                INSERT INTO device_status (device_id, site_code, last_measured_at, last_received_at)
                SELECT device_id, any_value(site_code), max(t), ? FROM (
                    SELECT device_id, site_code, measured_at AS t FROM _st_new_readings WHERE trusted
                    UNION ALL SELECT device_id, site_code, "at" FROM _st_new_events) GROUP BY device_id
                ON CONFLICT (device_id) DO UPDATE SET
                    last_measured_at = greatest(device_status.last_measured_at, excluded.last_measured_at),
                    last_received_at = excluded.last_received_at""", [max(received)])
            counts = store.one("SELECT (SELECT count(*) FROM _st_new_batches) AS batches, "
                               "(SELECT count(*) FROM _st_new_readings) AS readings, "
                               "(SELECT count(*) FROM _st_new_readings WHERE NOT trusted) AS untrusted, "
                               "(SELECT count(*) FROM _st_new_events) AS events")
            assert counts is not None       # counts are always one row
            fresh_readings = store.scalar(
                "SELECT count(*) FROM _st_readings r SEMI JOIN _st_new_batches b USING (batch_key)")
            touched = {(r[0], r[1]): int(r[2]) for r in store.execute(
                "SELECT device_id, channel, epoch_us(min(measured_at)) FROM _st_new_readings WHERE trusted "
                "GROUP BY 1, 2")}
            touched_sites = {r[0]: int(r[1]) for r in store.execute(
                "SELECT site_code, epoch_us(min(\"at\")) FROM _st_new_events GROUP BY 1")}
            stored_keys = tuple(r[0] for r in store.execute("SELECT batch_key FROM _st_new_batches"))
            for temp in ("_st_new_batches", "_st_new_readings", "_st_new_events"):
                store.execute(f"DROP TABLE {temp}")
    finally:
        for name in names:
            con.unregister(name)
    return StoreReport(batches=int(counts["batches"]), duplicate_batches=len(batches) - int(counts["batches"]),
                       readings=int(counts["readings"]), copies=int(fresh_readings) - int(counts["readings"]),
                       events=int(counts["events"]), untrusted=int(counts["untrusted"]), touched=touched,
                       touched_sites=touched_sites, stored_keys=stored_keys)


def read_series(store: Store, device_id: str, channels: Sequence[str] | None = None, *,
                start: dt.datetime | None = None, end: dt.datetime | None = None, trusted_only: bool = False):
    """Readings of one device as a pandas DataFrame (measured_at UTC, channel, value, trusted, flags)."""
    sql = "SELECT measured_at, channel, value, trusted, flags FROM readings WHERE device_id = ?"
    params: list = [device_id]
    if channels:
        sql += f" AND channel IN ({placeholders(channels)})"
        params += list(channels)
    if start is not None:
        sql += " AND measured_at >= ?"
        params.append(start)
    if end is not None:
        sql += " AND measured_at <= ?"
        params.append(end)
    if trusted_only:
        sql += " AND trusted"
    return store.df(sql + " ORDER BY channel, measured_at", params)


def wide_series(store: Store, device_id: str, channels: Sequence[str], *, start: dt.datetime | None = None,
                end: dt.datetime | None = None, tolerance_s: float | None = None):
    """One row per time the first channel was read, other channels joined as of that time (pandas)."""
    import pandas as pd

    long = read_series(store, device_id, channels, start=start, end=end, trusted_only=True)
    if long.empty:
        return pd.DataFrame(columns=["measured_at", *channels])
    base = long[long["channel"] == channels[0]][["measured_at", "value"]].rename(columns={"value": channels[0]})
    base = base.sort_values("measured_at")
    for c in channels[1:]:
        other = long[long["channel"] == c][["measured_at", "value"]].rename(columns={"value": c})
        other = other.sort_values("measured_at")
        base = pd.merge_asof(base, other, on="measured_at", direction="backward",
                             tolerance=pd.Timedelta(seconds=tolerance_s) if tolerance_s else None)
    return base.reset_index(drop=True)
