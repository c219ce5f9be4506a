"""Danger zones of a site's cranes and hoists as vertical cylinders in the local frame (contract 5).

``crane_zones(store, site_code)`` gives every installed crane's swing zone and every hoist's
zone. With ``at`` (UTC) it keeps the devices on site that day and adds, for each crane
whose monitor reported within ``hook_max_age_s`` before ``at``, the fall zone under its
hook, placed from the slewing angle, trolley radius, hook height and tilt read then. Vision's
hazard rules take these as machinery zones: ``zone.contains(points)`` tells who is inside.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from sitetwin.data.store import Store
from sitetwin.sensors.crane import (
    HoistGeometry,
    Zone,
    geometry_from_config,
    hoist_zone,
    hook_position,
    hook_zone,
    swing_zone,
)
from sitetwin.sensors.registry import list_devices


def crane_zones(store: Store, site_code: str, at: dt.datetime | None = None, *,
                hook_max_age_s: float = 120.0) -> list[Zone]:
    """Zones of the site's cranes and hoists (metres, local frame); see the module docstring."""
    zones: list[Zone] = []
    for device in list_devices(store, site_code=site_code):
        if device.device_type not in ("crane", "hoist") or device.position_m is None:
            continue
        if at is not None:
            day = at.date()
            if (device.installed_on and device.installed_on > day) or (device.removed_on and device.removed_on < day):
                continue
        elif device.removed_on is not None:
            continue
        geometry = geometry_from_config(device.device_type, device.config, device.position_m)
        if isinstance(geometry, HoistGeometry):       # the device is a hoist
            zones.append(hoist_zone(device.device_id, geometry))
            continue
        zones.append(swing_zone(device.device_id, geometry))
        if at is not None:
            hook = hook_at(store, device.device_id, geometry, at, max_age_s=hook_max_age_s)
            if hook is not None:
                zones.append(hook_zone(device.device_id, geometry, hook))
    return zones


def hook_at(store: Store, device_id: str, geometry, at: dt.datetime, *, max_age_s: float = 120.0) -> np.ndarray | None:
    """(3,) hook position at ``at`` from the latest trusted readings, or None when the monitor was silent."""
    rows = store.rows(
        "SELECT channel, arg_max(value, measured_at) AS value FROM readings WHERE device_id = ? AND trusted "
        "AND channel IN ('slew_deg', 'trolley_m', 'hook_height_m', 'tilt_deg', 'tilt_dir_deg') "
        "AND measured_at <= ? AND measured_at >= ? GROUP BY channel",
        [device_id, at, at - dt.timedelta(seconds=max_age_s)])
    values = {r["channel"]: r["value"] for r in rows}
    if "slew_deg" not in values or "trolley_m" not in values:
        return None
    return hook_position(geometry, values["slew_deg"], values["trolley_m"], values.get("hook_height_m", np.nan),
                         tilt_deg=values.get("tilt_deg"), tilt_dir_deg=values.get("tilt_dir_deg"))[0]


def hook_track(store: Store, device_id: str, *, start: dt.datetime, end: dt.datetime):
    """The hook's path between two times: a pandas DataFrame of measured_at and x_m, y_m, z_m (local frame)."""
    from sitetwin.sensors.registry import get_device
    from sitetwin.sensors.timeseries import wide_series

    device = get_device(store, device_id)
    geometry = geometry_from_config("crane", device.config, device.position_m)
    frame = wide_series(store, device_id, ["slew_deg", "trolley_m", "hook_height_m", "tilt_deg", "tilt_dir_deg"],
                        start=start, end=end, tolerance_s=max(device.interval_s * 3, 30.0))
    if frame.empty:
        return frame.assign(x_m=[], y_m=[], z_m=[])
    xyz = hook_position(geometry, frame["slew_deg"].to_numpy(float), frame["trolley_m"].to_numpy(float),
                        frame["hook_height_m"].to_numpy(float), tilt_deg=frame["tilt_deg"].to_numpy(float),
                        tilt_dir_deg=frame["tilt_dir_deg"].to_numpy(float))
    return frame.assign(x_m=xyz[:, 0], y_m=xyz[:, 1], z_m=xyz[:, 2])
