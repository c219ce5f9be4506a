"""Findings for sensor warnings: what each should say, raised through a ``FindingSink``.

sensors sits below oversight: it drafts the finding a warning deserves (see
``sitetwin.data.evidence``) and the sink the application passes in raises it
(``oversight.raising.raise_drafts``). A draft carries the device's host element (model_id,
GlobalId) and position, or for a crane overload the hook position at the peak, plus the
warning's figures as evidence; ``source="sensor"`` and ``source_ref`` the warning id. Each
warning is raised at most once: its ``finding_id`` is written back in the same transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sitetwin.data.evidence import FindingDraft, FindingSink
from sitetwin.data.i18n import N_
from sitetwin.data.store import Store, atomic, placeholders
from sitetwin.sensors.config import SEVERITIES, severity_rank
from sitetwin.sensors.errors import SensorError
from sitetwin.sensors.limits import site_limits

# Finding category per warning kind when no rule says otherwise (gaps: by device type).
_ENVIRONMENT_TYPES = ("dust", "noise", "weather")
_TITLES = {"gap": "{what} {device} silent", "untrained_worker": "Untrained worker on site",
           "overload": "{what} {device} overloaded", "moment_overload": "{what} {device} load moment exceeded",
           "wind": "{what} {device}: wind above the working limit", "tilt": "{what} {device}: mast tilt",
           "tilt_rate": "{what} {device}: mast tilting fast",
           "collision_risk": "{what} {device}: jib close to another crane's"}


def raise_pending_findings(store: Store, sink: FindingSink, *, site_code: str, min_severity: str = "high",
                           warning_ids: Iterable[str] | None = None,
                           at: dt.datetime | None = None) -> list[tuple[str, str]]:
    """Raise, through ``sink``, a finding for each warning of the site at or above ``min_severity`` that has none.

    ``warning_ids`` restricts it to those warnings (any severity). Returns (warning_id,
    finding_id) pairs.
    """
    if min_severity not in SEVERITIES:
        raise SensorError(N_("severity {severity!r} is not one of {known}"), severity=min_severity,
                          known=", ".join(SEVERITIES))
    sql = ("SELECT w.*, d.device_type, d.name AS device_name, d.model_id AS host_model_id, "
           "d.global_id AS host_global_id, d.x_m, d.y_m, d.z_m, d.config "
           "FROM sensor_warnings w JOIN devices d USING (device_id) WHERE w.site_code = ? AND w.finding_id IS NULL")
    params: list = [site_code]
    if warning_ids is not None:
        ids = list(warning_ids)
        if not ids:
            return []
        sql += f" AND w.warning_id IN ({placeholders(ids)})"
        params += ids
    else:
        allowed = SEVERITIES[severity_rank(min_severity):]
        sql += f" AND w.severity IN ({placeholders(allowed)})"
        params += list(allowed)
    rows = store.rows(sql + " ORDER BY w.started_at, w.warning_id", params)
    if not rows:
        return []
    limits = site_limits(store, site_code)
    categories = {r.kind: r.category for r in limits.rules}
    drafts = [_draft(store, w, site_code, categories, at) for w in rows]
    with atomic(store):
        raised = sink(store, drafts)
        pairs = [(w["warning_id"], raised[w["warning_id"]]) for w in rows]
        for warning_id, finding_id in pairs:
            store.execute("UPDATE sensor_warnings SET finding_id = ? WHERE warning_id = ?", [finding_id, warning_id])
    return pairs


def _draft(store: Store, w: dict, site_code: str, categories: dict[str, str], at: dt.datetime | None) -> FindingDraft:
    kind = w["kind"]
    if kind == "gap":
        category = "environment" if w["device_type"] in _ENVIRONMENT_TYPES else "safety"
    else:
        category = categories.get(kind, "safety")
    location = None
    if w["x_m"] is not None:
        location = (w["x_m"], w["y_m"], w["z_m"])
    if kind in ("overload", "moment_overload") and w["device_type"] == "crane":
        location = _hook_at_peak(store, w) or location
    what = {"crane": "Crane", "hoist": "Hoist", "dust": "Dust monitor", "noise": "Noise monitor",
            "weather": "Weather station", "gate": "Gate"}.get(w["device_type"], "Device")
    title = _TITLES.get(kind, "{what} {device}: " + kind.replace("_", " ")).format(what=what, device=w["device_id"])
    evidence = {"warning_id": w["warning_id"], "device_id": w["device_id"], "kind": kind,
                "channel": w["channel"], "worker_id": w["worker_id"], "peak_value": w["peak_value"],
                "limit_value": w["limit_value"], "unit": w["unit"],
                "started_at": w["started_at"].isoformat() + "Z",
                "ended_at": w["ended_at"].isoformat() + "Z" if w["ended_at"] else None}
    return FindingDraft(site_code=site_code, category=category, severity=w["severity"], title=title,
                        description=w["message"], raised_by="sensors", global_id=w["host_global_id"],
                        model_id=w["host_model_id"], location_m=location, evidence=evidence, source="sensor",
                        source_ref=w["warning_id"], at=at)


def _hook_at_peak(store: Store, w: dict) -> tuple[float, float, float] | None:
    """Where the hook was when the load peaked, local frame; None without slew/trolley readings."""
    import json

    import numpy as np

    from sitetwin.sensors.crane import geometry_from_config, hook_position

    end = w["ended_at"] or w["started_at"] + dt.timedelta(hours=1)
    peak = store.one("SELECT measured_at FROM readings WHERE device_id = ? AND channel = ? AND trusted "
                     "AND measured_at >= ? AND measured_at <= ? ORDER BY value DESC, measured_at LIMIT 1",
                     [w["device_id"], w["channel"], w["started_at"], end])
    if peak is None:
        return None
    values = {}
    for channel in ("slew_deg", "trolley_m", "hook_height_m", "tilt_deg", "tilt_dir_deg"):
        row = store.one("SELECT value FROM readings WHERE device_id = ? AND channel = ? AND trusted "
                        "AND measured_at <= ? AND measured_at >= ? ORDER BY measured_at DESC LIMIT 1",
                        [w["device_id"], channel, peak["measured_at"], peak["measured_at"] - dt.timedelta(minutes=5)])
        values[channel] = row["value"] if row else None
    if values["slew_deg"] is None or values["trolley_m"] is None:
        return None
    config = json.loads(w["config"]) if isinstance(w["config"], str) else (w["config"] or {})
    geometry = geometry_from_config("crane", config, (w["x_m"], w["y_m"], w["z_m"]))
    hook = hook_position(geometry, values["slew_deg"], values["trolley_m"],
                         np.nan if values["hook_height_m"] is None else values["hook_height_m"],
                         tilt_deg=values["tilt_deg"], tilt_dir_deg=values["tilt_dir_deg"])[0]
    return float(hook[0]), float(hook[1]), float(hook[2])
