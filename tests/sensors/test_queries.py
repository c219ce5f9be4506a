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
