"""What sensors publishes for other packages to read: the sensor state of a site's twin, dust means, device
summaries and counts.

``twin_state`` is what "lights up" the 3D view: each device with its position, its host
element (model_id, GlobalId, class, storey) and its worst active warning. The dashboard draws
it; nothing here draws.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sitetwin.bim.queries import element_frame
from sitetwin.data.store import Store, where_in

TWIN_STATE_SQL = """
WITH active AS (
    SELECT device_id, count(*) AS active_warnings,
           max(CASE severity WHEN 'critical' THEN 3 WHEN 'high' THEN 2 WHEN 'medium' THEN 1 ELSE 0 END) AS rank,
           string_agg(DISTINCT kind, ',' ORDER BY kind) AS kinds, min(started_at) AS since
    FROM sensor_warnings WHERE site_code = ? AND ended_at IS NULL GROUP BY device_id)
SELECT d.device_id, d.device_type, d.name, d.x_m, d.y_m, d.z_m, d.model_id, d.global_id, d.blacklisted,
       s.last_measured_at, s.last_received_at,
       coalesce(a.active_warnings, 0) AS active_warnings,
       CASE a.rank WHEN 3 THEN 'critical' WHEN 2 THEN 'high' WHEN 1 THEN 'medium' WHEN 0 THEN 'low' END AS severity,
       a.kinds AS warning_kinds, a.since AS warning_since
FROM devices d
LEFT JOIN device_status s ON s.device_id = d.device_id
LEFT JOIN active a ON a.device_id = d.device_id
WHERE d.site_code = ? AND d.removed_on IS NULL
ORDER BY a.rank DESC NULLS LAST, d.device_id
"""


def twin_state(store: Store, site_code: str) -> list[dict]:
    """One row per device on site: position (local frame, m), host element, last data, worst active warning."""
    rows = store.rows(TWIN_STATE_SQL, [site_code, site_code])
    hosts: dict = {}
    if any(r["global_id"] for r in rows):
        elements = element_frame(store, site_code=site_code)[["global_id", "ifc_class", "name", "storey"]]
        elements = elements.astype(object).where(elements.notna(), None)
        hosts = {g: {"ifc_class": c, "element_name": n, "storey": s} for g, c, n, s in elements.itertuples(index=False)}
    out = []
    for r in rows:
        host = hosts.get(r["global_id"], {"ifc_class": None, "element_name": None, "storey": None})
        # the host's facts sit right after its GlobalId, where consumers and --json output had them
        keys = list(r)
        at = keys.index("global_id") + 1
        out.append({**{k: r[k] for k in keys[:at]}, **host, **{k: r[k] for k in keys[at:]}})
    return out


def dust_means(store: Store, device_id: str, *, start: dt.datetime, end: dt.datetime,
               channel: str = "pm10_ugm3", window_s: float = 900.0, timezone: str | None = None):
    """Rolling and daily means of one dust channel: DataFrame measured_at, value, rolling_mean, daily_mean.

    ``rolling_mean`` is the trailing ``window_s`` mean at each reading; ``daily_mean`` the mean
    of the reading's whole local day (so far, for today). Noise (``noise_dba``) is averaged as
    energy (Leq).
    """
    import numpy as np
    import pandas as pd

    from sitetwin.sensors.batch import to_us
    from sitetwin.sensors.limits import site_limits
    from sitetwin.sensors.registry import get_device
    from sitetwin.sensors.rules import daily_means, rolling_mean
    from sitetwin.sensors.timeseries import read_series

    device = get_device(store, device_id)
    tz = timezone or site_limits(store, device.site_code).timezone
    from sitetwin.sensors.batch import from_us
    from sitetwin.sensors.rules import local_day_bounds

    # whole local days, so that each sample carries its day's full mean
    day_start = from_us(int(local_day_bounds(np.array([to_us(start)]), tz)[0][0]))
    day_end = from_us(int(local_day_bounds(np.array([to_us(end)]), tz)[1][0]))
    frame = read_series(store, device_id, [channel], start=min(start - dt.timedelta(seconds=window_s), day_start),
                        end=day_end, trusted_only=True)
    if frame.empty:
        return pd.DataFrame(columns=["measured_at", "value", "rolling_mean", "daily_mean"])
    t = np.array([to_us(x) for x in frame["measured_at"].dt.to_pydatetime()], dtype=np.int64)
    v = frame["value"].to_numpy(float)
    zeros = np.zeros(len(t), dtype=np.int64)
    energy = channel == "noise_dba"
    roll = rolling_mean(zeros, t, v, window_s, energy=energy)
    _, _, _, day_mean, _, day_of = daily_means(zeros, t, np.power(10, v / 10) if energy else v, tz)
    daily = day_mean[day_of]
    if energy:
        daily = 10 * np.log10(daily)
    out = pd.DataFrame({"measured_at": frame["measured_at"], "value": v, "rolling_mean": roll, "daily_mean": daily})
    return out[(out["measured_at"] >= start) & (out["measured_at"] <= end)].reset_index(drop=True)


def device_count(store: Store, site_code: str) -> int:
    """How many devices are on the site now (registered and not removed)."""
    return int(store.scalar("SELECT count(*) FROM devices WHERE site_code = ? AND removed_on IS NULL",
                            [site_code]) or 0)


def device_tokens(store: Store, device_id: str) -> list[dict]:
    """A device's API tokens, oldest first, as rows: token_id (the public handle; secrets are never kept),
    created_at, revoked_at (naive UTC; None while valid)."""
    return store.rows("SELECT token_id, created_at, revoked_at FROM device_tokens WHERE device_id = ? "
                      "ORDER BY created_at", [device_id])


def device_status(store: Store, device_id: str) -> dict | None:
    """When a device last measured and was last heard from: dict last_measured_at, last_received_at (naive UTC,
    latest trusted reading); None before its first reading."""
    return store.one("SELECT last_measured_at, last_received_at FROM device_status WHERE device_id = ?", [device_id])


def reading_count(store: Store, device_id: str) -> int:
    """How many readings the store holds from a device, trusted or not, over all channels."""
    return int(store.scalar("SELECT count(*) FROM readings WHERE device_id = ?", [device_id]) or 0)


# --------------------------------------------------------------------------------------
# per site, for one site or many at once (oversight scores thousands of sites)

def site_devices(store: Store, site_codes: Sequence[str] | None):
    """Every device registered on the given sites (None: every site), removed ones too; by site_code, device_id.

    DataFrame site_code, device_id, device_type, name (None when unnamed), interval_s (expected reporting
    interval, s), created_at (when registered, naive UTC), removed_on (the day it was removed; NaT while on
    site), last_measured_at (its latest trusted reading or gate event, naive UTC; NaT before the first).
    """
    where, params = where_in("d.site_code", site_codes)
    return store.df("SELECT d.site_code, d.device_id, d.device_type, d.name, d.interval_s, d.created_at, d.removed_on, "
                    f"s.last_measured_at FROM devices d LEFT JOIN device_status s USING (device_id) WHERE {where} "
                    "ORDER BY d.site_code, d.device_id", params)


def sensor_activity(store: Store, site_codes: Sequence[str] | None):
    """How many devices each of the given sites (None: every site) has registered (removed ones too), and when
    one of them last measured.

    DataFrame site_code, devices (count), last_measured_at (the latest trusted reading or gate event of any of
    its devices, naive UTC; NaT before the first); a site with neither devices nor data has no row. Ordered by
    site_code.
    """
    d_where, d_params = where_in("site_code", site_codes)
    return store.df(f"WITH d AS (SELECT site_code, count(*) AS devices FROM devices WHERE {d_where} GROUP BY 1), "
                    f"s AS (SELECT site_code, max(last_measured_at) AS last_measured_at FROM device_status "
                    f"WHERE {d_where} GROUP BY 1) "
                    "SELECT site_code, coalesce(d.devices, 0) AS devices, s.last_measured_at FROM d FULL JOIN s "
                    "USING (site_code) ORDER BY site_code", [*d_params, *d_params])


def reading_counts(store: Store, device_ids: Sequence[str], *, since: dt.datetime, until: dt.datetime):
    """What each of the given devices has sent: DataFrame device_id, readings (how many readings it took in
    [``since``, ``until``), naive UTC, trusted or not), channels (how many distinct channels it ever reported);
    a device that never reported has no row. Ordered by device_id."""
    where, params = where_in("device_id", device_ids)
    return store.df(f"SELECT device_id, count(*) FILTER (WHERE measured_at >= ? AND measured_at < ?) AS readings, "
                    f"count(DISTINCT channel) AS channels FROM readings WHERE {where} GROUP BY device_id "
                    "ORDER BY device_id", [since, until, *params])


def warnings_per_site(store: Store, site_codes: Sequence[str] | None, *, since: dt.datetime, until: dt.datetime):
    """How many warnings started in [``since``, ``until``) (naive UTC) on each of the given sites (None: every
    site), by severity.

    DataFrame site_code, severity (low | medium | high | critical), warnings (count); only severities that
    occur. Ordered by site_code, then severity from low to critical.
    """
    where, params = where_in("site_code", site_codes)
    return store.df(f"SELECT site_code, severity, count(*) AS warnings FROM sensor_warnings WHERE {where} "
                    "AND started_at >= ? AND started_at < ? GROUP BY site_code, severity ORDER BY site_code, "
                    "CASE severity WHEN 'low' THEN 0 WHEN 'medium' THEN 1 WHEN 'high' THEN 2 ELSE 3 END",
                    [*params, since, until])


def worker_hours(store: Store, site_codes: Sequence[str] | None, *, since: dt.datetime, until: dt.datetime,
                 max_stay_h: float):
    """Hours worked on each of the given sites (None: every site) from the gate events in [``since``, ``until``)
    (naive UTC).

    A stay is a worker's 'in' followed directly by an 'out' (both in the window), counted up to ``max_stay_h``
    hours. DataFrame site_code, worker_hours (sum of the stays, hours), workers (how many distinct workers had a
    stay); a site without events has no row. Ordered by site_code.
    """
    where, params = where_in("site_code", site_codes)
    return store.df(
        'WITH a AS (SELECT site_code, worker_id, event, "at", lead(event) OVER w AS next_event, '
        'lead("at") OVER w AS next_at FROM attendance_events '
        f'WHERE {where} AND "at" >= ? AND "at" < ? '
        'WINDOW w AS (PARTITION BY site_code, worker_id ORDER BY "at")) '
        'SELECT site_code, coalesce(sum(least(epoch(next_at - "at") / 3600.0, ?)) '
        "FILTER (WHERE event = 'in' AND next_event = 'out'), 0) AS worker_hours, "
        "count(DISTINCT worker_id) FILTER (WHERE event = 'in' AND next_event = 'out') AS workers "
        "FROM a GROUP BY site_code ORDER BY site_code", [*params, since, until, max_stay_h])


def attendance_summary(store: Store, site_codes: Sequence[str] | None, *, since: dt.datetime, until: dt.datetime):
    """Who came to each of the given sites (None: every site) by the gate events in [``since``, ``until``)
    (naive UTC).

    DataFrame site_code, days (distinct UTC days with an event), workers (distinct workers seen),
    trained_workers (of those, how many had an event marked with valid safety training); a site without events
    has no row. Ordered by site_code.
    """
    where, params = where_in("site_code", site_codes)
    return store.df('SELECT site_code, count(DISTINCT CAST("at" AS DATE)) AS days, count(DISTINCT worker_id) '
                    'AS workers, count(DISTINCT worker_id) FILTER (WHERE trained) AS trained_workers '
                    f'FROM attendance_events WHERE {where} AND "at" >= ? AND "at" < ? GROUP BY site_code '
                    "ORDER BY site_code", [*params, since, until])


def training_coverage(store: Store, site_code: str, start: dt.datetime | dt.date, end: dt.datetime | dt.date) -> dict:
    """How many of the workers who entered a site in [``start``, ``end``) (naive UTC; a date is its
    00:00 UTC) had valid safety training every time they entered.

    ``{"workers_on_site": n, "trained_valid": m, "coverage": m / n}``. Trained is the gate status
    (``sensors.training.effective_trained``: the worker's training records when they have any, else
    the gate's flag). ``coverage`` is None when the site keeps no training records (the figure would
    only repeat the gates' flags) or nobody entered; it is 0..1 otherwise.
    """
    return training_coverage_by_site(store, [site_code], start, end)[site_code]


def training_coverage_by_site(store: Store, site_codes: Sequence[str], start: dt.datetime | dt.date,
                              end: dt.datetime | dt.date) -> dict[str, dict]:
    """:func:`training_coverage` of each of ``site_codes`` (a dict keyed by site code), in a few queries
    whatever the number of sites (a portfolio's rollup)."""
    import numpy as np

    from sitetwin.sensors.training import effective_trained

    def moment(value) -> dt.datetime:
        return value if isinstance(value, dt.datetime) else dt.datetime.combine(value, dt.time())

    codes = list(dict.fromkeys(site_codes))
    out: dict[str, dict] = {s: {"workers_on_site": 0, "trained_valid": 0, "coverage": None} for s in codes}
    if not codes:
        return out
    where, params = where_in("site_code", codes)
    rows = store.execute(f'SELECT site_code, worker_id, epoch_us("at"), trained FROM attendance_events WHERE {where} '
                         "AND event = 'in' AND \"at\" >= ? AND \"at\" < ? ORDER BY site_code",
                         [*params, moment(start), moment(end)])
    if not rows:
        return out
    keeps = {r[0] for r in store.execute(f"SELECT DISTINCT site_code FROM training_records WHERE {where}", params)}
    site, workers, t_us, gate = (np.asarray(c) for c in zip(*rows))
    for code in np.unique(site).tolist():
        mine = site == code
        w = workers[mine]
        trained = effective_trained(store, code, w, t_us[mine].astype(np.int64), gate[mine].astype(bool)) \
            if code in keeps else gate[mine].astype(bool)
        everyone = set(w.tolist())
        n = len(everyone)
        m = n - len(set(w[~trained].tolist()))
        out[code] = {"workers_on_site": n, "trained_valid": m, "coverage": round(m / n, 4) if code in keeps else None}
    return out


def training_records(store: Store, site_codes: Sequence[str] | None, *, valid_on: dt.date | None = None):
    """Training records of the given sites (None: all): DataFrame site_code, worker_id, course, course_type,
    completed_on, hours, score, passed, valid_until, provider; with ``valid_on`` only passed records
    valid that day. Ordered by site, worker, day."""
    where, params = where_in("site_code", site_codes)
    sql = ("SELECT site_code, worker_id, course, course_type, completed_on, hours, score, passed, valid_until, "
           f"provider FROM training_records WHERE {where}")
    if valid_on is not None:
        sql += " AND passed AND completed_on <= ? AND valid_until >= ?"
        params = [*params, valid_on, valid_on]
    return store.df(sql + " ORDER BY site_code, worker_id, completed_on", params)
