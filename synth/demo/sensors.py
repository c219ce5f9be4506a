"""Demo stage "sensors": the demo site's devices and a simulated week of their readings and gate events.

Devices are placed round the demo building (read from the store, so any spec works): a
tower crane beside it, a hoist tied to a facade wall, a weather station on the roof slab,
two dust monitors at the site boundary, a noise monitor from a blacklisted supplier, and the
entrance gate. The week (``sitetwin.synth.sensor_feeds.demo_week``) holds dust, wind and noise
exceedances, one crane overload, a dust monitor that falls silent, and untrained workers.
It goes in the way history does (Parquet and CSV files through ``sensors.importer``), and
the warnings and findings come out of the same evaluation the ingest server runs.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sitetwin.data.store import open_store

DEMO_TIMEZONE = "Asia/Shanghai"
DEMO_WEEK_DAYS = 7                            # the simulated week ends on the demo's today
ROLES = {"crane": "DEMO-CRANE-01", "hoist": "DEMO-HOIST-01", "weather": "DEMO-WX-01", "dust_1": "DEMO-DUST-01",
         "dust_2": "DEMO-DUST-02", "noise": "DEMO-NOISE-01", "gate": "DEMO-GATE-01"}
BLACKLISTED_SUPPLIER = ("QuietSense Ltd", "calibration certificates found forged by the municipal metrology institute")


def run(ctx) -> dict:
    from sitetwin.synth.sensor_feeds import demo_week

    week_start = ctx.today - dt.timedelta(days=DEMO_WEEK_DAYS)
    week = demo_week(start=week_start, timezone=DEMO_TIMEZONE, devices=ROLES, seed=ctx.seed)
    assert week.start is not None and week.end is not None     # demo_week dates the week it makes
    now = week.end
    readings_path = ctx.workdir / "sensor-readings.parquet"
    attendance_path = ctx.workdir / "attendance.csv"
    readings = week.readings.copy()
    readings["measured_at"] = readings["measured_at"].dt.tz_localize("UTC")
    readings.to_parquet(readings_path, index=False)
    events = week.events.copy()
    events["at"] = events["at"].dt.tz_localize("UTC").map(lambda t: t.isoformat())
    events.to_csv(attendance_path, index=False)

    with open_store(ctx.db) as store:
        with store.transaction():
            devices = register_demo_devices(store, ctx.site_code, installed_on=week_start - dt.timedelta(days=14),
                                            now=now)
        from sitetwin.sensors.importer import import_file

        report_r = import_file(store, readings_path, now=now, findings=False)
        report_a = import_file(store, attendance_path, now=now, findings=False)
        # the week's safety education records (synth.training), in step with the gate's flags: they decide who
        # counts as trained, so the site's attendance warnings are computed again after them
        from sitetwin.sensors.training import import_file as import_training
        from sitetwin.sensors.warnings import evaluate_warnings
        from sitetwin.synth.training import demo_training

        training_path = ctx.workdir / "training.csv"
        demo_training(week.events, site_code=ctx.site_code, week_start=week_start,
                      untrained=week.incidents["untrained_workers"], seed=ctx.seed).to_csv(training_path, index=False)
        report_t = import_training(store, training_path, today=now.date(), source="demo")
        evaluate_warnings(store, site_code=ctx.site_code, device_ids=[], now=now, findings=False)
        from sitetwin.oversight.raising import raise_drafts
        from sitetwin.sensors.findings import raise_pending_findings
        from sitetwin.sensors.limits import site_limits
        from sitetwin.sensors.warnings import check_silence, list_warnings

        check_silence(store, site_code=ctx.site_code, now=now, findings=False)
        threshold = site_limits(store, ctx.site_code).auto_findings or "high"
        raised = raise_pending_findings(store, raise_drafts, site_code=ctx.site_code, min_severity=threshold, at=now)
        warnings = list_warnings(store, site_code=ctx.site_code)
        by_kind: dict[str, int] = {}
        for w in warnings:
            by_kind[w.kind] = by_kind.get(w.kind, 0) + 1
        from sitetwin.sensors.attendance import headcount

        heads = headcount(store, ctx.site_code, start=week.start, end=now, step_s=900, now=now)
    ctx.results["sensors"] = {"devices": devices, "week_start": week.start, "now": now, "incidents": week.incidents,
                              "readings_file": readings_path, "attendance_file": attendance_path,
                              "training_file": training_path}
    active = [w for w in warnings if w.active]
    return {"devices": len(devices), "readings": report_r.readings, "untrusted": report_r.untrusted,
            "gate events": report_a.events, "training records": report_t["inserted"], "warnings": len(warnings),
            "active": ", ".join(sorted(f"{w.kind}@{w.device_id}" for w in active)),
            "by kind": ", ".join(f"{k} {v}" for k, v in sorted(by_kind.items())),
            "findings": len(raised), "peak headcount": int(heads["on_site"].max()) if len(heads) else 0,
            "week": f"{week_start}..{week_start + dt.timedelta(days=DEMO_WEEK_DAYS - 1)} ({DEMO_TIMEZONE})"}


def register_demo_devices(store, site_code: str, *, installed_on: dt.date, now: dt.datetime | None = None) -> list[str]:
    """Register the demo devices round the site's building, with calibrations and tokens; return their ids."""
    from sitetwin.bim.queries import element_frame
    from sitetwin.sensors.limits import set_site_limits
    from sitetwin.sensors.registry import add_device, blacklist_supplier, issue_token, record_calibration

    elements = element_frame(store, site_code=site_code)
    solid = elements[elements["has_geometry"]]
    if solid.empty or solid["bbox_min_x_m"].isna().all():
        box = {"x0": 0.0, "x1": 30.0, "y0": 0.0, "y1": 18.0, "z0": 0.0, "z1": 15.0}
    else:
        box = {"x0": float(solid["bbox_min_x_m"].min()), "x1": float(solid["bbox_max_x_m"].max()),
               "y0": float(solid["bbox_min_y_m"].min()), "y1": float(solid["bbox_max_y_m"].max()),
               "z0": float(solid["bbox_min_z_m"].min()), "z1": float(solid["bbox_max_z_m"].max())}
    x0, x1, y0, y1, z1 = box["x0"], box["x1"], box["y0"], box["y1"], box["z1"]
    ground = 0.0
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    set_site_limits(store, site_code, {"timezone": DEMO_TIMEZONE})
    blacklist_supplier(store, BLACKLISTED_SUPPLIER[0], reason=BLACKLISTED_SUPPLIER[1], now=now)
    wall = _nearest(elements, "IfcWall", (x0 + 6.0, y0, ground + 1.5))
    roof = _nearest(elements, "IfcSlab", (cx, cy, z1))
    jib_height = round(z1 + 30.0, 1)
    specs: list[tuple[str, str, dict[str, Any]]] = [
        (ROLES["crane"], "crane", dict(name="Tower crane TC1 (flat-top, 50 m jib)", position_m=(cx, y1 + 8.0, ground),
                                       supplier="Zoomlion", device_model="T7020 monitor", interval_s=10.0,
                                       config={"geometry": {"jib_height_m": jib_height, "jib_length_m": 50.0,
                                                            "counter_jib_m": 14.0, "slew_zero_deg": 0.0,
                                                            "zone_margin_m": 2.0, "hook_zone_radius_m": 3.0}})),
        (ROLES["hoist"], "hoist", dict(name="Construction hoist SC200", position_m=(x0 + 6.0, y0 - 2.5, ground),
                                       host_global_id=wall, supplier="Guangxi Construction Machinery",
                                       device_model="SC200/200 monitor", interval_s=20.0,
                                       config={"geometry": {"mast_height_m": round(z1 + 3.0, 1),
                                                            "zone_radius_m": 3.0}})),
        (ROLES["weather"], "weather", dict(name="Roof weather station", host_global_id=roof,
                                           position_m=(cx, cy, z1 + 2.0), supplier="Vaisala",
                                           device_model="WXT536", interval_s=60.0)),
        (ROLES["dust_1"], "dust", dict(name="Dust monitor north-east boundary", position_m=(x1 + 15.0, y1 + 15.0, 2.5),
                                       supplier="Hebei Sailhero", device_model="SDM-100", interval_s=60.0)),
        (ROLES["dust_2"], "dust", dict(name="Dust monitor south-west boundary", position_m=(x0 - 15.0, y0 - 15.0, 2.5),
                                       supplier="Hebei Sailhero", device_model="SDM-100", interval_s=60.0)),
        (ROLES["noise"], "noise", dict(name="Noise monitor west boundary", position_m=(x0 - 15.0, cy, 2.5),
                                       supplier=BLACKLISTED_SUPPLIER[0], device_model="QS-N1", interval_s=60.0)),
        (ROLES["gate"], "gate", dict(name="Main gate, real-name turnstiles", position_m=(x0 - 20.0, y1 + 10.0, 0.0),
                                     supplier="Hikvision", device_model="DS-K3B turnstile", interval_s=86400.0)),
    ]
    ids = []
    for device_id, kind, kw in specs:
        add_device(store, device_id, site_code=site_code, device_type=kind, installed_on=installed_on, now=now, **kw)
        if kind != "gate":
            record_calibration(store, device_id, calibrated_on=installed_on - dt.timedelta(days=30),
                               valid_until=installed_on + dt.timedelta(days=335),
                               laboratory="Hubei Institute of Metrology", certificate=f"HBJL-{device_id}")
        issue_token(store, device_id, now=now)
        ids.append(device_id)
    return ids


def _nearest(elements, ifc_class: str, point) -> str | None:
    """The GlobalId of the element of ``ifc_class`` whose box centre is nearest ``point`` (ties: lowest GlobalId)."""
    rows = elements[(elements["ifc_class"] == ifc_class) & elements["bbox_min_x_m"].notna()]
    if rows.empty:
        return None
    d = ((((rows["bbox_min_x_m"] + rows["bbox_max_x_m"]) / 2 - point[0]) ** 2
          + ((rows["bbox_min_y_m"] + rows["bbox_max_y_m"]) / 2 - point[1]) ** 2)
         + ((rows["bbox_min_z_m"] + rows["bbox_max_z_m"]) / 2 - point[2]) ** 2).tolist()
    return min(zip(d, rows["global_id"].tolist()))[1]
