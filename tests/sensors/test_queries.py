"""Read-side queries: the twin's sensor state and dust means."""

import datetime as dt

import numpy as np
import pytest

from sitetwin.sensors.batch import to_us
from sitetwin.sensors.queries import dust_means, twin_state
from sitetwin.sensors.timeseries import store_batches
from sitetwin.sensors.warnings import evaluate_touched


def test_twin_state_gives_each_device_its_worst_active_warning(sensor_store, make_batch):
    t0 = to_us(dt.datetime(2026, 3, 16, 2, 0))
    t = t0 + np.arange(4) * 10_000_000
    report = store_batches(sensor_store, [make_batch("CR1", t, "load_pct", [40, 95, 112, 115]),
                                          make_batch("CR1", t, "wind_ms", [4, 12, 12, 12])], source="http")
    evaluate_touched(sensor_store, report, now=dt.datetime(2026, 3, 16, 2, 0, 35), findings=False)
    state = {r["device_id"]: r for r in twin_state(sensor_store, "S1")}
    assert set(state) == {"CR1", "HO1", "DU1", "WX1", "GT1"}
    crane = state["CR1"]
    assert (crane["severity"], crane["warning_kinds"], crane["active_warnings"]) == ("critical", "overload,wind", 2)
    assert (crane["x_m"], crane["y_m"], crane["z_m"]) == (10.0, 20.0, 0.0)
    assert state["DU1"]["severity"] is None and state["DU1"]["active_warnings"] == 0
    assert list(state)[0] == "CR1"          # the worst first


def test_dust_means_give_rolling_and_daily_means_of_one_channel(sensor_store, make_batch):
    t0 = to_us(dt.datetime(2026, 3, 15, 16, 0))            # local midnight
    minutes = np.arange(0, 24 * 60, 5)
    pm10 = np.where(minutes < 12 * 60, 50.0, 150.0)
    store_batches(sensor_store, [make_batch("DU1", t0 + minutes * 60_000_000, "pm10_ugm3", pm10)], source="http")
    frame = dust_means(sensor_store, "DU1", start=dt.datetime(2026, 3, 16, 4, 0), end=dt.datetime(2026, 3, 16, 6, 0))
    assert frame["measured_at"].min() == dt.datetime(2026, 3, 16, 4, 0)
    assert frame["daily_mean"].iloc[0] == pytest.approx(100.0)
    rolling = frame.set_index("measured_at")["rolling_mean"]
    assert rolling[dt.datetime(2026, 3, 16, 4, 0)] == pytest.approx((50 + 50 + 150) / 3)   # 12:00 local: (11:45, 12:00]
    assert rolling[dt.datetime(2026, 3, 16, 4, 15)] == pytest.approx(150.0)


def test_device_tokens_status_and_reading_count_describe_one_device(sensor_store, make_batch):
    from sitetwin.sensors.queries import device_status, device_tokens, reading_count
    from sitetwin.sensors.registry import issue_token, revoke_tokens, token_handle

    first = issue_token(sensor_store, "DU1", now=dt.datetime(2026, 3, 1, 8, 0))
    issue_token(sensor_store, "DU1", now=dt.datetime(2026, 3, 2, 8, 0))
    revoke_tokens(sensor_store, "DU1", token_id=token_handle(first), now=dt.datetime(2026, 3, 3, 8, 0))
    tokens = device_tokens(sensor_store, "DU1")
    assert [t["created_at"] for t in tokens] == [dt.datetime(2026, 3, 1, 8, 0), dt.datetime(2026, 3, 2, 8, 0)]
    assert tokens[0]["token_id"] == token_handle(first) and tokens[0]["revoked_at"] == dt.datetime(2026, 3, 3, 8, 0)
    assert tokens[1]["revoked_at"] is None and device_tokens(sensor_store, "WX1") == []

    assert device_status(sensor_store, "DU1") is None and reading_count(sensor_store, "DU1") == 0
    t = to_us(dt.datetime(2026, 3, 16, 2, 0)) + np.arange(3) * 60_000_000
    store_batches(sensor_store, [make_batch("DU1", t, "pm10_ugm3", [40.0, 45.0, 50.0]),
                                 make_batch("DU1", t, "pm25_ugm3", [20.0, 22.0, 25.0])], source="http")
    status = device_status(sensor_store, "DU1")
    assert status["last_measured_at"] == dt.datetime(2026, 3, 16, 2, 2)
    assert reading_count(sensor_store, "DU1") == 6 and reading_count(sensor_store, "CR1") == 0


def test_twin_state_names_the_host_element_of_a_device_mounted_on_one(demo_store_path, tmp_path):
    from sitetwin.bim.queries import element_frame
    from sitetwin.data.store import copy_store, open_store
    from sitetwin.sensors.registry import add_device

    with open_store(copy_store(demo_store_path, tmp_path / "demo.duckdb")) as store:
        slabs = element_frame(store, site_code="DEMO").query("ifc_class == 'IfcSlab' and storey == 'Roof'")
        roof = slabs.iloc[0]
        add_device(store, "WX9", site_code="DEMO", device_type="weather", host_global_id=roof["global_id"],
                   interval_s=60.0)
        add_device(store, "DU9", site_code="DEMO", device_type="dust", position_m=(1.0, 2.0, 3.0), interval_s=60.0)
        state = {r["device_id"]: r for r in twin_state(store, "DEMO")}
    wx = state["WX9"]
    assert (wx["model_id"], wx["global_id"], wx["ifc_class"], wx["storey"]) == \
        (roof["model_id"], roof["global_id"], "IfcSlab", "Roof")
    assert wx["element_name"] == roof["name"]
    # the host's centre is the device's position when none is given
    assert wx["z_m"] == pytest.approx((roof["bbox_min_z_m"] + roof["bbox_max_z_m"]) / 2)
    assert list(wx)[7:12] == ["global_id", "ifc_class", "element_name", "storey", "blacklisted"]
    assert (state["DU9"]["ifc_class"], state["DU9"]["element_name"], state["DU9"]["storey"]) == (None, None, None)


def test_the_device_count_leaves_out_removed_devices(sensor_store):
    from sitetwin.sensors.queries import device_count
    from sitetwin.sensors.registry import remove_device

    assert device_count(sensor_store, "S1") == 5 and device_count(sensor_store, "S2") == 0
    remove_device(sensor_store, "GT1", removed_on="2026-03-20")
    assert device_count(sensor_store, "S1") == 4


def _gate_events(rows):
    """Batch events from (at, worker_id, event, trained) rows."""
    return {"at_us": [to_us(at) for at, *_ in rows], "worker_id": [w for _, w, _, _ in rows],
            "event": [e for _, _, e, _ in rows], "trade": [None] * len(rows), "employer": [None] * len(rows),
            "trained": [t for *_, t in rows]}


def test_devices_their_activity_and_their_readings_per_site(sensor_store, make_batch):
    import pandas as pd

    from sitetwin.sensors.queries import reading_counts, sensor_activity, site_devices
    from sitetwin.sensors.registry import remove_device

    t0 = dt.datetime(2026, 3, 16, 2, 0)
    minutes = np.arange(0, 120, 10)
    store_batches(sensor_store, [make_batch("DU1", to_us(t0) + minutes * 60_000_000, "pm10_ugm3", 50.0),
                                 make_batch("DU1", to_us(t0 - dt.timedelta(days=3)), "pm2_5_ugm3", 20.0),
                                 make_batch("WX1", to_us(t0), "wind_ms", 3.0)], source="http")
    remove_device(sensor_store, "HO1", removed_on="2026-03-20")
    devices = site_devices(sensor_store, ["S1"]).set_index("device_id")
    assert list(devices.index) == ["CR1", "DU1", "GT1", "HO1", "WX1"]
    assert devices.loc["DU1", "last_measured_at"] == t0 + dt.timedelta(minutes=110)
    assert devices.loc["HO1", "removed_on"] == pd.Timestamp("2026-03-20") and pd.isna(devices.loc["CR1", "removed_on"])
    assert (devices.loc["GT1", "device_type"], devices.loc["GT1", "interval_s"]) == ("gate", 86400.0)
    assert pd.isna(devices.loc["CR1", "last_measured_at"]) and site_devices(sensor_store, ["S9"]).empty
    activity = sensor_activity(sensor_store, None).to_dict("records")
    assert activity == [{"site_code": "S1", "devices": 5, "last_measured_at": t0 + dt.timedelta(minutes=110)}]
    counts = reading_counts(sensor_store, ["DU1", "WX1", "CR1"], since=t0, until=t0 + dt.timedelta(hours=1))
    assert counts.to_dict("records") == [{"device_id": "DU1", "readings": 6, "channels": 2},
                                         {"device_id": "WX1", "readings": 1, "channels": 1}]


def test_warnings_recorded_from_outside_count_per_site_and_severity(sensor_store):
    from sitetwin.sensors.errors import DeviceError, SensorError
    from sitetwin.sensors.queries import warnings_per_site
    from sitetwin.sensors.warnings import list_warnings, record_warning

    day = dt.datetime(2026, 3, 16)
    ids = [record_warning(sensor_store, "DU1", kind="supplier_alarm", severity=sev,
                          started_at=day + dt.timedelta(hours=h), message="reported by the supplier's platform")
           for h, sev in enumerate(["high", "low", "high", "critical"])]
    again = record_warning(sensor_store, "DU1", kind="supplier_alarm", severity="high", started_at=day,
                           message="reported by the supplier's platform")
    assert again == ids[0] and len(set(ids)) == 4 and len(list_warnings(sensor_store, site_code="S1")) == 4
    w = list_warnings(sensor_store, device_id="DU1", kind="supplier_alarm", min_severity="critical")[0]
    assert (w.severity, w.started_at, w.active, w.site_code) == ("critical", day + dt.timedelta(hours=3), True, "S1")
    frame = warnings_per_site(sensor_store, ["S1"], since=day, until=day + dt.timedelta(hours=3))
    assert frame.to_dict("records") == [{"site_code": "S1", "severity": "low", "warnings": 1},
                                        {"site_code": "S1", "severity": "high", "warnings": 2}]
    with pytest.raises(SensorError, match="severity 'severe'"):
        record_warning(sensor_store, "DU1", kind="k", severity="severe", started_at=day, message="m")
    with pytest.raises(SensorError, match="before it starts"):
        record_warning(sensor_store, "DU1", kind="k", severity="low", started_at=day, message="m",
                       ended_at=day - dt.timedelta(hours=1))
    with pytest.raises(DeviceError):
        record_warning(sensor_store, "XX9", kind="k", severity="low", started_at=day, message="m")
    assert len(list_warnings(sensor_store, site_code="S1")) == 4


def test_worker_hours_and_attendance_come_from_the_gate_events_in_a_window(sensor_store, make_batch):
    from sitetwin.sensors.queries import attendance_summary, worker_hours

    d = dt.datetime(2026, 3, 16, 0, 0)
    rows = [(d, "w1", "in", True), (d + dt.timedelta(hours=8), "w1", "out", True),
            (d + dt.timedelta(days=1), "w1", "in", True), (d + dt.timedelta(days=1, hours=20), "w1", "out", True),
            (d + dt.timedelta(hours=1), "w2", "in", False), (d + dt.timedelta(hours=2), "w2", "in", False),
            (d + dt.timedelta(hours=5), "w2", "out", False),
            (d + dt.timedelta(hours=3), "w3", "out", True)]            # an 'out' with no 'in' before it
    store_batches(sensor_store, [make_batch("GT1", [], [], [], events=_gate_events(rows))], source="http")
    until = d + dt.timedelta(days=3)
    hours = worker_hours(sensor_store, ["S1"], since=d, until=until, max_stay_h=14).to_dict("records")
    # w1: 8 h + 20 h counted as 14; w2: only the second 'in' is followed by an 'out' (3 h)
    assert hours == [{"site_code": "S1", "worker_hours": pytest.approx(8 + 14 + 3), "workers": 2}]
    first_day = worker_hours(sensor_store, None, since=d, until=d + dt.timedelta(days=1), max_stay_h=14)
    assert first_day["worker_hours"].tolist() == [pytest.approx(8 + 3)]
    seen = attendance_summary(sensor_store, ["S1"], since=d, until=until).to_dict("records")
    assert seen == [{"site_code": "S1", "days": 2, "workers": 3, "trained_workers": 2}]
    assert attendance_summary(sensor_store, ["S1"], since=until, until=until + dt.timedelta(days=1)).empty
