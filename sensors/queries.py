"""Read-side queries for the workbench: the sensor state of a site's twin, dust means, device summaries.

``twin_state`` is what "lights up" the 3D view: each device with its position, its host
element (model_id, GlobalId, class, storey) and its worst active warning. The dashboard draws
it; nothing here draws.
"""

from __future__ import annotations

import datetime as dt

from sitetwin.data.store import Store

TWIN_STATE_SQL = """
WITH active AS (
    SELECT device_id, count(*) AS active_warnings,
           max(CASE severity WHEN 'critical' THEN 3 WHEN 'high' THEN 2 WHEN 'medium' THEN 1 ELSE 0 END) AS rank,
           string_agg(DISTINCT kind, ',' ORDER BY kind) AS kinds, min(started_at) AS since
    FROM sensor_warnings WHERE site_code = ? AND ended_at IS NULL GROUP BY device_id)
SELECT d.device_id, d.device_type, d.name, d.x_m, d.y_m, d.z_m, d.model_id, d.global_id,
       e.ifc_class, e.name AS element_name, e.storey, d.blacklisted,
       s.last_measured_at, s.last_received_at,
       coalesce(a.active_warnings, 0) AS active_warnings,
       CASE a.rank WHEN 3 THEN 'critical' WHEN 2 THEN 'high' WHEN 1 THEN 'medium' WHEN 0 THEN 'low' END AS severity,
       a.kinds AS warning_kinds, a.since AS warning_since
FROM devices d
LEFT JOIN current_elements e ON e.site_code = d.site_code AND e.global_id = d.global_id
LEFT JOIN device_status s ON s.device_id = d.device_id
LEFT JOIN active a ON a.device_id = d.device_id
WHERE d.site_code = ? AND d.removed_on IS NULL
ORDER BY a.rank DESC NULLS LAST, d.device_id
"""


def twin_state(store: Store, site_code: str) -> list[dict]:
    """One row per device on site: position (local frame, m), host element, last data, worst active warning."""
    return store.rows(TWIN_STATE_SQL, [site_code, site_code])


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
    from sitetwin.sensors.registry import get_device
    from sitetwin.sensors.rules import daily_means, rolling_mean
    from sitetwin.sensors.timeseries import read_series
    from sitetwin.sensors.warnings import site_limits

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
