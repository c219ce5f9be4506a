"""Warnings: rule episodes, data gaps and untrained workers, kept in ``sensor_warnings``.

A warning is an episode (see ``sensors.rules``): a rule broken from ``started_at`` until
``ended_at`` (NULL while it lasts), graded by its peak. Evaluation is incremental and
idempotent: after new data for a series (device, channel) from time t, the warnings of
that series from t on (extended back to the start of any warning still running at t) are
recomputed from the stored readings and merged with those already stored. An episode still
running when its device fell silent ends at the last reading (the gap warning takes over). A
warning that
is still the same episode keeps its id, its finding and its ``detected_at``; one that late
data dissolved is removed (unless a finding was raised on it, which keeps it). Running it
twice changes nothing.

Data gaps are warnings too: a device silent for longer than ``gap_factor`` times its
interval, between two readings or since its last one (only trusted readings count, so a
blacklisted device shows as silent). ``check_silence`` sweeps for devices that have gone
quiet, since silence brings no data to trigger on.

Warnings at or above ``auto_findings`` severity are raised as findings, once each, through
the ``FindingSink`` the caller passes (``sensors.findings``; the application passes
``oversight.raising.raise_drafts``). Without a sink they stay pending.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sitetwin.data.clock import utcnow
from sitetwin.data.evidence import FindingSink
from sitetwin.data.i18n import N_
from sitetwin.data.store import Store, atomic, placeholders
from sitetwin.sensors.batch import from_us, to_us
from sitetwin.sensors.channels import label_of, unit_of
from sitetwin.sensors.config import Limits, Rule, severity_rank
from sitetwin.sensors.findings import raise_pending_findings
from sitetwin.sensors.limits import site_limits
from sitetwin.sensors.registry import Device, list_devices
from sitetwin.sensors.rules import Episodes, gaps, rule_episodes

US_PER_S = 1_000_000
_STAT_LABEL = {"value": "", "rolling_mean": "{w}-min mean", "rolling_leq": "{w}-min Leq", "daily_mean": "daily mean",
               "rate": "change per min over {w} min"}


@dataclass(frozen=True)
class SensorWarning:
    warning_id: str
    site_code: str
    device_id: str
    kind: str
    channel: str | None
    worker_id: str | None
    severity: str
    started_at: dt.datetime
    ended_at: dt.datetime | None
    peak_value: float | None
    limit_value: float | None
    unit: str | None
    message: str
    finding_id: str | None
    detected_at: dt.datetime

    @property
    def active(self) -> bool:
        return self.ended_at is None

    @property
    def duration_s(self) -> float | None:
        return None if self.ended_at is None else (self.ended_at - self.started_at).total_seconds()


@dataclass(frozen=True)
class EvaluationReport:
    inserted: int = 0
    updated: int = 0
    removed: int = 0
    findings: int = 0
    seconds: float = 0.0
    by_kind: dict = field(default_factory=dict)      # kind -> warnings inserted or updated


# ----------------------------------------------------------------------------- evaluation

def evaluate_warnings(store: Store, *, site_code: str | None = None, device_ids: Iterable[str] | None = None,
                      since: dt.datetime | None = None, now: dt.datetime | None = None, attendance: bool = True,
                      findings: bool | None = None, sink: FindingSink | None = None) -> EvaluationReport:
    """Recompute a site's warnings (or some devices') from ``since`` (default: all data) up to ``now``.

    With a ``sink``, findings are raised through it: ``findings`` None as the site's
    ``auto_findings`` setting says, True at that severity or else from "high" up, False never.
    """
    started = time.perf_counter()
    devices = _devices(store, site_code=site_code, device_ids=device_ids)
    since_us = to_us(since) if since is not None else None
    targets = {}
    for d in devices:
        for ch in _rule_channels(store, d):
            targets[(d.device_id, ch)] = since_us
    gap_targets = {d.device_id: since_us for d in devices}
    sites = {d.site_code: since_us for d in devices} if attendance else {}
    if site_code and attendance:
        sites.setdefault(site_code, since_us)
    return _evaluate(store, targets, gap_targets, sites, now=now, findings=findings, sink=sink, started=started)


def evaluate_touched(store: Store, report, *, now: dt.datetime | None = None, findings: bool | None = None,
                     sink: FindingSink | None = None) -> EvaluationReport:
    """Re-evaluate only what a ``store_batches`` report says changed (findings as in :func:`evaluate_warnings`)."""
    started = time.perf_counter()
    if not report.touched and not report.touched_sites:
        return EvaluationReport()
    gap_targets: dict[str, int] = {}
    for (device, _), t in report.touched.items():
        gap_targets[device] = min(t, gap_targets.get(device, t))
    return _evaluate(store, dict(report.touched), gap_targets, dict(report.touched_sites), now=now, findings=findings,
                     sink=sink, started=started)


def check_silence(store: Store, *, site_code: str | None = None, now: dt.datetime | None = None,
                  findings: bool | None = None, sink: FindingSink | None = None) -> EvaluationReport:
    """Open (or extend) gap warnings for devices silent now, which no new reading would trigger.

    Findings as in :func:`evaluate_warnings`.
    """
    started = time.perf_counter()
    now_dt = now or utcnow()
    rows = store.rows(
        "SELECT d.device_id, d.site_code, d.interval_s, d.installed_on, s.last_measured_at FROM devices d "
        "LEFT JOIN device_status s USING (device_id) WHERE (d.removed_on IS NULL OR d.removed_on >= ?) "
        + ("AND d.site_code = ?" if site_code else ""), [now_dt.date(), *([site_code] if site_code else [])])
    limits_cache: dict[str, Limits] = {}
    gap_targets = {}
    for r in rows:
        if r["site_code"] not in limits_cache:
            limits_cache[r["site_code"]] = site_limits(store, r["site_code"])
        limits = limits_cache[r["site_code"]]
        threshold = dt.timedelta(seconds=limits.gap_factor * float(r["interval_s"]))
        last = r["last_measured_at"]
        if last is None:
            if r["installed_on"] is None:
                continue
            last = dt.datetime.combine(r["installed_on"], dt.time())
        if now_dt - last > threshold:
            gap_targets[r["device_id"]] = to_us(last)
    if not gap_targets:
        return EvaluationReport(seconds=time.perf_counter() - started)
    return _evaluate(store, {}, gap_targets, {}, now=now_dt, findings=findings, sink=sink, started=started)


def _evaluate(store: Store, targets: dict, gap_targets: dict, site_targets: dict, *, now, findings, sink,
              started: float) -> EvaluationReport:
    now_dt = now or utcnow()
    now_us = to_us(now_dt)
    device_ids = sorted({d for d, _ in targets} | set(gap_targets))
    devices = {d.device_id: d for d in _devices(store, device_ids=device_ids)} if device_ids else {}
    limits_cache: dict[str, Limits] = {}

    def limits_of(site: str) -> Limits:
        if site not in limits_cache:
            limits_cache[site] = site_limits(store, site)
        return limits_cache[site]

    computed: list[tuple[tuple, int | None, list[dict]]] = []   # (key, replace_from_us, new warnings)
    computed += _rule_warnings(store, targets, devices, limits_of, now_us)
    computed += _gap_warnings(store, gap_targets, devices, limits_of, now_us)
    computed += _collision_warnings(store, targets, devices, limits_of, now_us)
    for site, t_from in site_targets.items():
        computed += _attendance_warnings(store, site, t_from, limits_of(site), now_us)
    report = _merge(store, computed, now_dt)
    raised = 0
    if findings is not False and sink is not None:

        sites = {k[0] for k, _, _ in computed}
        for site in sites:
            auto = limits_of(site).auto_findings
            threshold = auto if findings is None else (auto or "high")
            if threshold is None:
                continue
            raised += len(raise_pending_findings(store, sink, site_code=site, min_severity=threshold))
    return EvaluationReport(inserted=report[0], updated=report[1], removed=report[2], findings=raised,
                            seconds=round(time.perf_counter() - started, 4), by_kind=report[3])


def _devices(store: Store, *, site_code=None, device_ids=None) -> list[Device]:
    if device_ids is None:
        return list_devices(store, site_code=site_code)
    from sitetwin.sensors.registry import _device

    ids = sorted(set(device_ids))
    if not ids:
        return []
    return [_device(r) for r in store.rows(
        f"SELECT * FROM devices WHERE device_id IN ({placeholders(ids)}) ORDER BY device_id", ids)]


def _rule_channels(store: Store, device: Device) -> set[str]:
    limits = site_limits(store, device.site_code)
    channels = {r.channel for r in limits.rules_for(device.device_type, device.config)}
    if device.device_type == "crane" and limits.anti_collision is not None:
        channels.add("slew_deg")
    return channels


REACH_S = 300.0      # a warning that ended this long (plus the rule's merge gap and window) before new data is redone


def _replace_from(store: Store, keys: list[tuple], froms: list[int | None],
                  reach_us: list[int] | None = None) -> list[int | None]:
    """Extend each key's start back to the start of any of its warnings still running at that start, or
    ended less than ``reach_us`` before it: new data just after an episode's last sample (late data, or
    a series flushed in two parts) may continue that episode, so it is recomputed whole rather than
    raised a second time beside it."""
    import pyarrow as pa

    reach = reach_us or [0] * len(keys)
    bounded = [(k, f, r) for k, f, r in zip(keys, froms, reach) if f is not None]
    if not bounded:
        return list(froms)
    table = pa.table({"device_id": [k[1] for k, _, _ in bounded], "kind": [k[2] for k, _, _ in bounded],
                      "channel": [k[3] or "" for k, _, _ in bounded],
                      "worker_id": [k[4] or "" for k, _, _ in bounded],
                      "from_ts": pa.array([f - r for _, f, r in bounded], type=pa.timestamp("us"))})
    store.con.register("_sw_keys", table)
    try:
        rows = store.execute(
            "SELECT k.device_id, k.kind, k.channel, k.worker_id, epoch_us(min(w.started_at)) FROM _sw_keys k "
            "JOIN sensor_warnings w ON w.kind = k.kind AND coalesce(w.channel, '') = k.channel "
            "AND coalesce(w.worker_id, '') = k.worker_id AND (k.worker_id <> '' OR w.device_id = k.device_id) "
            "AND (w.ended_at IS NULL OR w.ended_at >= k.from_ts) GROUP BY 1, 2, 3, 4")
    finally:
        store.con.unregister("_sw_keys")
    earliest = {(r[0], r[1], r[2], r[3]): int(r[4]) for r in rows}
    out: list[int | None] = []
    for k, f in zip(keys, froms):
        if f is None:
            out.append(None)
            continue
        e = earliest.get((k[1], k[2], k[3] or "", k[4] or ""))
        out.append(min(f, e) if e is not None else f)
    return out


def _rule_warnings(store: Store, targets: dict, devices: dict, limits_of, now_us: int) -> list:
    import pyarrow as pa

    from sitetwin.sensors.rules import local_day_bounds

    # (device, rule) pairs with the time their episodes must be recomputed from
    pairs: list[tuple[Device, Rule, int | None]] = []
    for (device_id, channel), t_from in targets.items():
        device = devices.get(device_id)
        if device is None:
            continue
        limits = limits_of(device.site_code)
        for rule in limits.rules_for(device.device_type, device.config):
            if rule.channel != channel:
                continue
            f = t_from
            if f is not None and rule.statistic == "daily_mean":
                f = int(local_day_bounds(np.array([f]), limits.timezone)[0][0])
            pairs.append((device, rule, f))
    if not pairs:
        return []
    keys = [(d.site_code, d.device_id, r.kind, r.channel, None) for d, r, _ in pairs]
    froms = _replace_from(store, keys, [f for _, _, f in pairs],
                          [int((r.merge_gap_s + (r.window_s or 0.0) + REACH_S) * US_PER_S) for _, r, _ in pairs])
    # day-aligned starts for daily rules again, after extension
    for i, (d, r, _) in enumerate(pairs):
        if froms[i] is not None and r.statistic == "daily_mean":
            froms[i] = int(local_day_bounds(np.array([froms[i]]), limits_of(d.site_code).timezone)[0][0])
    # load each series once, from the earliest point any of its rules needs
    need: dict[tuple[str, str], int | None] = {}
    for (d, r, _), f in zip(pairs, froms):
        start = None if f is None else f - int(r.lookback_s * US_PER_S)
        key = (d.device_id, r.channel)
        if key not in need:
            need[key] = start
        else:
            known = need[key]
            need[key] = None if known is None or start is None else min(known, start)
    series_keys = sorted(need)
    index_of = {k: i for i, k in enumerate(series_keys)}
    floor = None if any(need[k] is None for k in series_keys) else min(v for v in need.values() if v is not None)
    table = pa.table({"device_id": [k[0] for k in series_keys], "channel": [k[1] for k in series_keys],
                      "sidx": list(range(len(series_keys))),
                      "from_ts": pa.array([need[k] for k in series_keys], type=pa.timestamp("us"))})
    store.con.register("_sw_series", table)
    try:
        data = store.con.execute(
            "SELECT s.sidx, epoch_us(r.measured_at) AS t, r.value FROM _sw_series s JOIN readings r "
            "ON r.device_id = s.device_id AND r.channel = s.channel "
            "WHERE r.trusted AND (s.from_ts IS NULL OR r.measured_at >= s.from_ts) AND r.measured_at >= ? "
            "ORDER BY s.sidx, t", [from_us(floor) if floor is not None else from_us(0)]).fetchnumpy()
    finally:
        store.con.unregister("_sw_series")
    sidx = np.asarray(data["sidx"], dtype=np.int64)
    t_all = np.asarray(data["t"], dtype=np.int64)
    v_all = np.asarray(data["value"], dtype=np.float64)
    bounds = np.searchsorted(sidx, np.arange(len(series_keys) + 1))
    # group (device, rule) pairs by (rule, timezone): one vectorised pass each
    groups: dict[tuple[Rule, str], list[int]] = defaultdict(list)
    for i, (d, r, _) in enumerate(pairs):
        groups[(r, limits_of(d.site_code).timezone)].append(i)
    out = []
    for (rule, tz), members in groups.items():
        parts_s, parts_t, parts_v, parts_f = [], [], [], []
        silent_since: dict[int, int] = {}
        for j, i in enumerate(members):
            d, _, _ = pairs[i]
            k = index_of[(d.device_id, rule.channel)]
            lo, hi = bounds[k], bounds[k + 1]
            threshold = limits_of(d.site_code).gap_factor * d.interval_s * US_PER_S
            if hi > lo and now_us - int(t_all[hi - 1]) > threshold:
                silent_since[j] = int(t_all[hi - 1])
            parts_s.append(np.full(hi - lo, j, dtype=np.int64))
            parts_t.append(t_all[lo:hi])
            parts_v.append(v_all[lo:hi])
            parts_f.append(np.full(hi - lo, froms[i] if froms[i] is not None else np.iinfo(np.int64).min,
                                   dtype=np.int64))
        s = np.concatenate(parts_s)
        t = np.concatenate(parts_t)
        v = np.concatenate(parts_v)
        f = np.concatenate(parts_f)
        eps = rule_episodes(rule, s, t, v, tz, now_us=now_us, valid_from_us=f) if len(t) else None
        per_member: dict[int, list[dict]] = defaultdict(list)
        if eps is not None:
            for e in range(len(eps)):
                j = int(eps.series[e])
                d = pairs[members[j]][0]
                per_member[j].append(_rule_row(d, rule, eps, e, silent_since=silent_since.get(j)))
        for j, i in enumerate(members):
            d, _, _ = pairs[i]
            out.append(((d.site_code, d.device_id, rule.kind, rule.channel, None), froms[i], per_member.get(j, [])))
    return out


def _rule_row(device: Device, rule: Rule, eps: Episodes, e: int, *, silent_since: int | None = None) -> dict:
    start, end = int(eps.start_us[e]), int(eps.end_us[e])
    cut = False
    if end < 0 and silent_since is not None:
        # the data end inside the episode and the device has gone silent: what came after is
        # unknown (the gap warning says so), so the episode ends at the last reading
        cut = True
        end = max(silent_since, start)
    peak, limit, severity = float(eps.peak[e]), float(eps.limit[e]), str(eps.severity[e])
    unit = unit_of(rule.channel) + ("/min" if rule.statistic == "rate" else "")
    what = label_of(rule.channel)
    stat = _STAT_LABEL[rule.statistic].format(w=f"{(rule.window_s or 0) / 60:g}")
    name = f"{what} {stat}".strip()
    lasting = f"for {_duration((end - start) / US_PER_S)}" if end >= 0 else "ongoing"
    if cut:
        lasting += " until the device fell silent"
    message = f"{name} {peak:.3g} {unit} above the {severity} limit {limit:g} {unit}, {lasting}".replace("  ", " ")
    return {"site_code": device.site_code, "device_id": device.device_id, "kind": rule.kind, "channel": rule.channel,
            "worker_id": None, "severity": severity, "start_us": start, "end_us": end, "peak_value": peak,
            "limit_value": limit, "unit": unit, "message": message}


def _collision_warnings(store: Store, targets: dict, devices: dict, limits_of, now_us: int) -> list:
    """Near misses between cranes whose swing zones overlap: jib lines closer in plan than the limits.

    Each crane's series is its smallest clearance to any such neighbour, at its own slewing
    readings; the neighbour's slewing angle is interpolated between its readings (no more than
    2 x max_skew_s apart), or its last one (no older than max_skew_s). New slewing data of one
    crane re-evaluate its neighbours too.
    """
    from sitetwin.sensors.crane import geometry_from_config, jib_clearance_m
    from sitetwin.sensors.rules import episodes

    touched = {d: f for (d, ch), f in targets.items()
               if ch == "slew_deg" and d in devices and devices[d].device_type == "crane"}
    out: list = []
    for site in sorted({devices[d].site_code for d in touched}):
        limits = limits_of(site)
        rule = limits.anti_collision
        if rule is None:
            continue
        geoms = {}
        for crane in list_devices(store, site_code=site, device_type="crane"):
            if crane.position_m is None:
                continue
            try:
                geoms[crane.device_id] = geometry_from_config("crane", crane.config, crane.position_m)
            except ValueError:
                continue

        names = sorted(geoms)
        xy = np.array([geoms[n].base_m[:2] for n in names], dtype=np.float64).reshape(-1, 2)
        reach = np.array([max(geoms[n].jib_length_m, geoms[n].counter_jib_m) for n in names])
        position = {n: i for i, n in enumerate(names)}
        partner_cache: dict[str, list[str]] = {}

        def neighbours(a: str, names: list[str] = names, xy: np.ndarray = xy, reach: np.ndarray = reach,
                       position: dict[str, int] = position,
                       partner_cache: dict[str, list[str]] = partner_cache) -> list[str]:
            """Cranes whose swing circle overlaps a's in plan."""
            if a not in partner_cache:
                i = position[a]
                near = np.hypot(*(xy - xy[i]).T) < reach + reach[i]
                near[i] = False
                partner_cache[a] = [names[j] for j in np.flatnonzero(near)]
            return partner_cache[a]

        partners = _Lazy(neighbours)
        todo: dict[str, int | None] = {}
        for a, f in touched.items():
            if devices[a].site_code != site or a not in position or not partners[a]:
                continue
            for x in (a, *partners[a]):
                if x in todo:
                    todo[x] = None if (todo[x] is None or f is None) else min(todo[x], f)
                else:
                    todo[x] = f
        if not todo:
            continue
        ids = sorted(todo)
        keys = [(site, x, rule.kind, rule.channel, None) for x in ids]
        froms = _replace_from(store, keys, [todo[x] for x in ids])
        skew = int(limits.collision_skew_s * US_PER_S)
        wanted = sorted(set(ids) | {p for x in ids for p in partners[x]})
        floor = 0 if any(f is None for f in froms) else min(f for f in froms if f is not None) - skew - US_PER_S
        rows = store.execute(
            f"SELECT device_id, epoch_us(measured_at), value FROM readings WHERE trusted AND channel = 'slew_deg' "
            f"AND device_id IN ({placeholders(wanted)}) AND measured_at >= ? "
            f"ORDER BY device_id, measured_at",
            [*wanted, from_us(floor)])
        grouped: dict[str, list] = defaultdict(list)
        for device_id, t_us, value in rows:
            grouped[device_id].append((t_us, value))
        series = {d: (np.array([p[0] for p in grouped[d]], dtype=np.int64),
                      np.array([p[1] for p in grouped[d]], dtype=np.float64)) for d in wanted}
        for x, f, key in zip(ids, froms, keys):
            t, v = series[x]
            found: list[dict] = []
            if len(t):
                best = np.full(len(t), np.inf)
                who = np.full(len(t), -1)
                for k, p in enumerate(partners[x]):
                    tp, vp = series.get(p, (np.zeros(0, dtype=np.int64), np.zeros(0)))
                    if not len(tp):
                        continue
                    # the neighbour's angle at our times: interpolated between its readings when they
                    # bracket ours closely enough, else its last reading if recent enough
                    idx = np.searchsorted(tp, t, side="right") - 1
                    prev = np.clip(idx, 0, len(tp) - 1)
                    nxt = np.clip(idx + 1, 0, len(tp) - 1)
                    bracket = (idx >= 0) & (idx + 1 < len(tp)) & (tp[nxt] - tp[prev] <= 2 * skew)
                    recent = (idx >= 0) & (t - tp[prev] <= skew)
                    unwrapped = np.degrees(np.unwrap(np.radians(vp)))
                    angle = np.where(bracket, np.interp(t, tp, unwrapped), vp[prev])
                    clearance = np.where(bracket | recent, jib_clearance_m(geoms[x], v, geoms[p], angle), np.inf)
                    better = clearance < best
                    best, who = np.where(better, clearance, best), np.where(better, k, who)
                s = np.where(np.isfinite(best), -best, np.nan)
                if f is not None:
                    s = np.where(t >= f, s, np.nan)
                eps = episodes(np.zeros(len(t), dtype=np.int64), t, s, rule)
                for e in range(len(eps)):
                    start, end = int(eps.start_us[e]), int(eps.end_us[e])
                    inside = (t >= start) & ((t < end) if end >= 0 else True)
                    at_peak = np.flatnonzero(inside)[np.nanargmax(s[inside])]
                    other = partners[x][int(who[at_peak])]
                    closest, limit = -float(eps.peak[e]), -float(eps.limit[e])
                    lasting = f"for {_duration((end - start) / US_PER_S)}" if end >= 0 else "ongoing"
                    found.append({"site_code": site, "device_id": x, "kind": rule.kind, "channel": rule.channel,
                                  "worker_id": None, "severity": str(eps.severity[e]), "start_us": start,
                                  "end_us": end, "peak_value": closest, "limit_value": limit, "unit": "m",
                                  "message": f"jib within {closest:.1f} m of {other}'s jib, under the "
                                             f"{eps.severity[e]} limit {limit:g} m, {lasting}"})
            out.append((key, f, found))
    return out


class _Lazy(dict):
    """A dict that computes missing values with a function (and keeps them)."""

    def __init__(self, compute):
        super().__init__()
        self._compute = compute

    def __missing__(self, key):
        value = self[key] = self._compute(key)
        return value


def _gap_warnings(store: Store, gap_targets: dict, devices: dict, limits_of, now_us: int) -> list:
    import pyarrow as pa

    if not gap_targets:
        return []
    ids = sorted(d for d in gap_targets if d in devices)
    if not ids:
        return []
    keys = [(devices[d].site_code, d, "gap", None, None) for d in ids]
    froms = _replace_from(store, keys, [gap_targets[d] for d in ids])
    table = pa.table({"device_id": ids, "sidx": list(range(len(ids))),
                      "from_ts": pa.array(froms, type=pa.timestamp("us"))})
    bounded = [f for f in froms if f is not None]
    floor = from_us(min(bounded)) if len(bounded) == len(froms) else from_us(0)
    store.con.register("_sw_gap", table)
    try:
        # the sample times of each device (readings of all channels, gate events) from its start
        data = store.con.execute("""
            WITH times AS (
                SELECT device_id, measured_at AS t FROM readings WHERE trusted AND measured_at >= ?
                    AND device_id IN (SELECT device_id FROM _sw_gap)
                UNION ALL SELECT device_id, "at" FROM attendance_events WHERE "at" >= ?
                    AND device_id IN (SELECT device_id FROM _sw_gap))
            SELECT s.sidx, epoch_us(x.t) AS t FROM _sw_gap s JOIN times x USING (device_id)
            WHERE s.from_ts IS NULL OR x.t >= s.from_ts ORDER BY s.sidx, t""", [floor, floor]).fetchnumpy()
        # and the last one before it: within a day if there is one (cheap), else searched further back
        before = {}
        for days in (1, None):
            pending = {i: f for i, f in enumerate(froms) if f is not None and i not in before}
            missing = list(pending)
            if not missing:
                break
            lo_bound = "AND x.t >= s.from_ts - INTERVAL 1 DAY" if days else ""
            rows = store.execute(f"""
                WITH times AS (
                    SELECT device_id, measured_at AS t FROM readings WHERE trusted
                        AND device_id IN (SELECT device_id FROM _sw_gap) {"AND measured_at >= ?" if days else ""}
                    UNION ALL SELECT device_id, "at" FROM attendance_events
                        WHERE device_id IN (SELECT device_id FROM _sw_gap))
                SELECT s.sidx, epoch_us(max(x.t)) FROM _sw_gap s JOIN times x USING (device_id)
                WHERE s.from_ts IS NOT NULL AND x.t < s.from_ts {lo_bound} GROUP BY s.sidx""",
                [from_us(min(pending.values()) - 86_400 * US_PER_S)] if days else None)
            for i, t_prev in rows:
                if i in set(missing):
                    before[int(i)] = int(t_prev)
    finally:
        store.con.unregister("_sw_gap")
    if before:
        data = {"sidx": np.concatenate([np.asarray(data["sidx"], dtype=np.int64), list(before)]),
                "t": np.concatenate([np.asarray(data["t"], dtype=np.int64), list(before.values())])}
        order = np.lexsort((data["t"], data["sidx"]))
        data = {"sidx": data["sidx"][order], "t": data["t"][order]}
    sidx = np.asarray(data["sidx"], dtype=np.int64)
    t = np.asarray(data["t"], dtype=np.int64)
    # a device that never reported is silent since the day it was installed
    have = set(sidx.tolist())
    extra_s, extra_t = [], []
    for i, d in enumerate(ids):
        dev = devices[d]
        if i not in have and dev.installed_on is not None:
            extra_s.append(i)
            extra_t.append(to_us(dt.datetime.combine(dev.installed_on, dt.time())))
    if extra_s:
        sidx = np.concatenate([sidx, extra_s])
        t = np.concatenate([t, extra_t])
        order = np.lexsort((t, sidx))
        sidx, t = sidx[order], t[order]
    threshold = np.array([int(limits_of(devices[d].site_code).gap_factor * devices[d].interval_s * US_PER_S)
                          for d in ids], dtype=np.int64)
    stop = np.array([to_us(dt.datetime.combine(devices[d].removed_on, dt.time())) + 86_400 * US_PER_S
                     if devices[d].removed_on else now_us for d in ids], dtype=np.int64)
    eps = gaps(sidx, t, threshold, now_us=now_us, end_us=stop) if len(t) else None
    per: dict[int, list[dict]] = defaultdict(list)
    if eps is not None:
        for e in range(len(eps)):
            i = int(eps.series[e])
            start = int(eps.start_us[e])
            f = froms[i]
            if f is not None and start < f and int(eps.end_us[e]) >= 0 and int(eps.end_us[e]) <= f:
                continue   # a gap wholly before the window: already recorded
            dev = devices[ids[i]]
            severity = limits_of(dev.site_code).gap_severity_for(dev.device_type)
            end = int(eps.end_us[e])
            silent = _duration(float(eps.peak[e]))
            message = (f"no trusted reading for {silent} (expected every {dev.interval_s:g} s)" if end >= 0 else
                       f"silent for {silent} and counting (expected every {dev.interval_s:g} s)")
            if dev.blacklisted:
                message += f"; its readings are not trusted ({dev.blacklist_reason})"
            per[i].append({"site_code": dev.site_code, "device_id": dev.device_id, "kind": "gap", "channel": None,
                           "worker_id": None, "severity": severity, "start_us": start, "end_us": end,
                           "peak_value": float(eps.peak[e]), "limit_value": float(eps.limit[e]), "unit": "s",
                           "message": message})
    out = []
    for i, _ in enumerate(ids):
        f = froms[i]
        # the gap that ends at the window's first reading may have started before it
        gap_rows = per.get(i, [])
        replace_from = f if f is None else min([f] + [r["start_us"] for r in gap_rows])
        out.append((keys[i], replace_from, gap_rows))
    return out


def _attendance_warnings(store: Store, site: str, t_from: int | None, limits: Limits, now_us: int) -> list:
    from sitetwin.sensors.attendance import stays

    shift = int(limits.max_shift_h * 3600 * US_PER_S)
    # untrained at the gate, or with training records (which may have lapsed whatever the gate says)
    workers = [r[0] for r in store.execute(
        'SELECT DISTINCT worker_id FROM attendance_events WHERE site_code = ? AND (NOT trained OR worker_id IN '
        '(SELECT worker_id FROM training_records WHERE site_code = ?))'
        + (' AND "at" >= ?' if t_from is not None else ''),
        [site, site, *([from_us(t_from - shift)] if t_from is not None else [])])]
    if not workers:
        return []
    keys = [(site, None, "untrained_worker", None, w) for w in workers]
    froms = _replace_from(store, keys, [t_from] * len(workers))
    lo = min((f for f in froms if f is not None), default=None)
    rows = store.execute(
        'SELECT worker_id, event, epoch_us("at"), trained, device_id, trade, employer FROM attendance_events '
        f'WHERE site_code = ? AND worker_id IN ({", ".join("?" for _ in workers)})'
        + (' AND "at" >= ?' if lo is not None else ''),
        [site, *workers, *([from_us(lo - shift)] if lo is not None else [])])
    cols = list(zip(*rows))
    from sitetwin.sensors.training import effective_trained

    trained = effective_trained(store, site, cols[0], cols[2], cols[3])    # the records, else the gate's flag
    s = stays(cols[0], cols[1], cols[2], trained, device_id=cols[4], trade=cols[5], employer=cols[6],
              max_shift_h=limits.max_shift_h, now_us=now_us)
    per: dict[str, list[dict]] = defaultdict(list)
    for i in np.flatnonzero(~s.trained):
        w = s.worker_id[i]
        f = froms[workers.index(w)]
        start, end = int(s.in_us[i]), int(s.out_us[i])
        if f is not None and start < f:
            continue
        who = ", ".join(x for x in (s.trade[i], s.employer[i]) if x)
        lasting = f"for {_duration((end - start) / US_PER_S)}" if end >= 0 else "still on site"
        per[w].append({"site_code": site, "device_id": s.device_id[i], "kind": "untrained_worker", "channel": None,
                       "worker_id": w, "severity": limits.untrained_severity, "start_us": start, "end_us": end,
                       "peak_value": None, "limit_value": None, "unit": None,
                       "message": f"worker {w}{f' ({who})' if who else ''} on site without valid safety training, "
                                  f"{lasting}"})
    return [(k, f, per.get(k[4], [])) for k, f in zip(keys, froms)]


def _merge(store: Store, computed: list, now_dt: dt.datetime) -> tuple[int, int, int, dict]:
    """Write computed warnings over the stored ones, key by key (see the module docstring).

    Set-based: one query reads the stored warnings of every key, and the changes go back in
    one UPDATE, one DELETE and one INSERT, however many series were evaluated.
    """
    import pandas as pd
    import pyarrow as pa

    if not computed:
        return 0, 0, 0, {}
    big = np.iinfo(np.int64).max
    keys = pa.table({
        "k": list(range(len(computed))),
        "site_code": [c[0][0] for c in computed],
        "device_id": [c[0][1] or "" if c[0][4] is None else "" for c in computed],
        "kind": [c[0][2] for c in computed], "channel": [c[0][3] or "" for c in computed],
        "worker_id": [c[0][4] or "" for c in computed],
        "from_ts": pa.array([c[1] for c in computed], type=pa.timestamp("us"))})
    store.con.register("_sw_merge", keys)
    try:
        old_rows = store.rows(
            "SELECT k.k, w.warning_id, w.device_id, w.severity, epoch_us(w.started_at) AS s, "
            "epoch_us(w.ended_at) AS e, w.peak_value, w.message, w.finding_id FROM _sw_merge k JOIN sensor_warnings w "
            "ON w.site_code = k.site_code AND w.kind = k.kind AND coalesce(w.channel, '') = k.channel "
            "AND coalesce(w.worker_id, '') = k.worker_id AND (k.device_id = '' OR w.device_id = k.device_id) "
            "AND (k.from_ts IS NULL OR w.started_at >= k.from_ts) ORDER BY k.k, w.started_at")
    finally:
        store.con.unregister("_sw_merge")
    old_by_key: dict[int, list[dict]] = defaultdict(list)
    for o in old_rows:
        old_by_key[o["k"]].append(o)
    updates, deletes, new_rows = [], [], []
    by_kind: dict[str, int] = defaultdict(int)
    for k, (key, _, rows) in enumerate(computed):
        old = old_by_key.get(k, [])
        if not old and not rows:
            continue
        matched: set[str] = set()
        for row in sorted(rows, key=lambda r: r["start_us"]):
            r_end = row["end_us"] if row["end_us"] >= 0 else big
            hit = next((o for o in old if o["warning_id"] not in matched
                        and o["s"] <= r_end and row["start_us"] <= (o["e"] if o["e"] is not None else big)), None)
            if hit is None:
                new_rows.append(row)
                continue
            matched.add(hit["warning_id"])
            same = (hit["s"] == row["start_us"] and hit["e"] == (None if row["end_us"] < 0 else row["end_us"])
                    and hit["severity"] == row["severity"] and _close(hit["peak_value"], row["peak_value"])
                    and hit["message"] == row["message"] and hit["device_id"] == row["device_id"])
            if not same:
                updates.append({**row, "warning_id": hit["warning_id"]})
                by_kind[key[2]] += 1
        deletes += [o["warning_id"] for o in old if o["warning_id"] not in matched and o["finding_id"] is None]
    with atomic(store):
        if updates:
            frame = _frame(updates)
            store.con.register("_sw_updates", frame)
            try:
                store.execute(
                    "UPDATE sensor_warnings SET device_id = u.device_id, severity = u.severity, "
                    "started_at = u.started_at, ended_at = u.ended_at, peak_value = u.peak_value, "
                    "limit_value = u.limit_value, unit = u.unit, message = u.message, updated_at = ? "
                    "FROM _sw_updates u WHERE sensor_warnings.warning_id = u.warning_id", [now_dt])
            finally:
                store.con.unregister("_sw_updates")
        if deletes:
            store.con.register("_sw_deletes", pd.DataFrame({"warning_id": deletes}))
            try:
                store.execute("DELETE FROM sensor_warnings WHERE warning_id IN (SELECT warning_id FROM _sw_deletes)")
            finally:
                store.con.unregister("_sw_deletes")
        inserted = 0
        if new_rows:
            frame = _frame(new_rows)
            frame = frame.drop_duplicates("warning_id")
            frame["detected_at"] = now_dt
            frame["updated_at"] = now_dt
            store.con.register("_sw_new", frame[["warning_id"]])
            try:
                existing = {r[0] for r in store.execute(
                    "SELECT warning_id FROM sensor_warnings WHERE warning_id IN (SELECT warning_id FROM _sw_new)")}
            finally:
                store.con.unregister("_sw_new")
            frame = frame[~frame["warning_id"].isin(existing)]
            store.insert_frame("sensor_warnings", frame)
            inserted = len(frame)
            for kind in frame["kind"]:
                by_kind[kind] += 1
    return inserted, len(updates), len(deletes), dict(by_kind)


def _frame(rows: list[dict]):
    import pandas as pd

    return pd.DataFrame({
        "warning_id": [r.get("warning_id") or _warning_id(r) for r in rows],
        "site_code": [r["site_code"] for r in rows], "device_id": [r["device_id"] for r in rows],
        "kind": [r["kind"] for r in rows], "channel": [r["channel"] for r in rows],
        "worker_id": [r["worker_id"] for r in rows], "severity": [r["severity"] for r in rows],
        "started_at": pd.to_datetime([r["start_us"] for r in rows], unit="us"),
        "ended_at": pd.to_datetime([r["end_us"] if r["end_us"] >= 0 else None for r in rows], unit="us"),
        "peak_value": pd.array([r["peak_value"] for r in rows], dtype="Float64"),
        "limit_value": pd.array([r["limit_value"] for r in rows], dtype="Float64"),
        "unit": [r["unit"] for r in rows], "message": [r["message"] for r in rows]})


def _warning_id(row: dict) -> str:
    key = f"{row['site_code']}|{row['device_id'] if row['worker_id'] is None else ''}|{row['kind']}|" \
          f"{row['channel'] or ''}|{row['worker_id'] or ''}|{row['start_us']}"
    return "sw-" + hashlib.sha1(key.encode()).hexdigest()[:16]


def _close(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(float(a) - float(b)) <= 1e-9 * max(1.0, abs(float(a)))


def _duration(seconds: float) -> str:
    seconds = max(0.0, float(seconds))
    if seconds < 120:
        return f"{seconds:.0f} s"
    minutes = seconds / 60
    if minutes < 120:
        return f"{minutes:.0f} min"
    hours = minutes / 60
    if hours < 48:
        return f"{int(hours)} h {int(minutes % 60)} min"
    return f"{hours / 24:.1f} days"


# ----------------------------------------------------------------------------- recording

def record_warning(store: Store, device_id: str, *, kind: str, severity: str, started_at: dt.datetime,
                   message: str, ended_at: dt.datetime | None = None, channel: str | None = None,
                   worker_id: str | None = None, peak_value: float | None = None, limit_value: float | None = None,
                   unit: str | None = None, now: dt.datetime | None = None) -> str:
    """Store a warning that comes from outside the rules (a supplier's monitoring platform, an inspector's
    note) on a registered device; returns its id. Times are naive UTC; ``ended_at`` None: still going on.

    The id is the one evaluation gives the same episode, so recording it twice stores it once. Evaluating
    the device's rules later recomputes their kinds from the readings: a recorded warning of a rule's kind
    (``pm10_15min``, ...) that the readings do not bear out is dropped then, unless a finding was raised on
    it. Refuses an unknown device, an unknown severity and an end before the start.
    """
    from sitetwin.sensors.config import SEVERITIES
    from sitetwin.sensors.errors import SensorError
    from sitetwin.sensors.registry import get_device

    device = get_device(store, device_id)
    if severity not in SEVERITIES:
        raise SensorError(N_("warning on {device_id}: severity {severity!r} is not one of {known}"),
                          device_id=device_id, severity=severity, known=", ".join(SEVERITIES))
    if ended_at is not None and ended_at < started_at:
        raise SensorError(N_("warning on {device_id}: ends ({ended_at}) before it starts ({started_at})"),
                          device_id=device_id, ended_at=ended_at, started_at=started_at)
    row = {"site_code": device.site_code, "device_id": device_id, "kind": kind, "channel": channel,
           "worker_id": worker_id, "severity": severity, "start_us": to_us(started_at),
           "end_us": to_us(ended_at) if ended_at is not None else -1, "peak_value": peak_value,
           "limit_value": limit_value, "unit": unit, "message": message}
    warning_id = _warning_id(row)
    when = now or utcnow()
    with atomic(store):
        if not store.scalar("SELECT count(*) FROM sensor_warnings WHERE warning_id = ?", [warning_id]):
            frame = _frame([row])
            frame["detected_at"] = when
            frame["updated_at"] = when
            store.insert_frame("sensor_warnings", frame)
    return warning_id


# ----------------------------------------------------------------------------- reading

def list_warnings(store: Store, *, site_code: str | None = None, device_id: str | None = None,
                  kind: str | None = None, active: bool | None = None, min_severity: str | None = None,
                  since: dt.datetime | None = None, limit: int | None = None) -> list[SensorWarning]:
    """Warnings, newest first; ``active`` True: only those still running."""
    sql = "SELECT * FROM sensor_warnings WHERE true"
    params: list[Any] = []
    for column, value in (("site_code", site_code), ("device_id", device_id), ("kind", kind)):
        if value:
            sql += f" AND {column} = ?"
            params.append(value)
    if active is True:
        sql += " AND ended_at IS NULL"
    elif active is False:
        sql += " AND ended_at IS NOT NULL"
    if min_severity:
        from sitetwin.sensors.config import SEVERITIES

        allowed = SEVERITIES[severity_rank(min_severity):]
        sql += f" AND severity IN ({placeholders(allowed)})"
        params += list(allowed)
    if since is not None:
        sql += " AND (ended_at IS NULL OR ended_at >= ?)"
        params.append(since)
    sql += " ORDER BY started_at DESC, warning_id"
    if limit:
        sql += " LIMIT ?"
        params.append(int(limit))
    return [_warning(r) for r in store.rows(sql, params)]


def _warning(r: dict) -> SensorWarning:
    return SensorWarning(warning_id=r["warning_id"], site_code=r["site_code"], device_id=r["device_id"],
                         kind=r["kind"], channel=r["channel"], worker_id=r["worker_id"], severity=r["severity"],
                         started_at=r["started_at"], ended_at=r["ended_at"], peak_value=r["peak_value"],
                         limit_value=r["limit_value"], unit=r["unit"], message=r["message"],
                         finding_id=r["finding_id"], detected_at=r["detected_at"])
