"""Storing batches: idempotent by batch and by reading, late and out-of-order data accepted, trust flags set."""

import datetime as dt

import numpy as np

from sitetwin.sensors.batch import to_us
from sitetwin.sensors.registry import blacklist_supplier, record_calibration
from sitetwin.sensors.timeseries import read_series, store_batches, wide_series

T = to_us(dt.datetime(2026, 3, 16, 2, 0, 0))
S = 1_000_000


def test_the_same_batch_twice_is_stored_once(sensor_store, make_batch):
    batch = make_batch("CR1", T + np.arange(5) * S, "load_pct", [10, 20, 30, 40, 50], batch_id="cr1-1")
    first = store_batches(sensor_store, [batch], source="http")
    second = store_batches(sensor_store, [batch, batch], source="http")
    assert (first.batches, first.readings) == (1, 5)
    assert (second.batches, second.duplicate_batches, second.readings) == (0, 2, 0)
    assert sensor_store.scalar("SELECT count(*) FROM readings") == 5
    assert sensor_store.one("SELECT readings, source FROM ingest_batches WHERE batch_key = 'CR1/cr1-1'") == \
        {"readings": 5, "source": "http"}


def test_a_reading_sent_again_in_another_batch_is_a_copy_and_the_first_value_wins(sensor_store, make_batch):
    store_batches(sensor_store, [make_batch("CR1", T, "load_pct", 10.0, batch_id="a")], source="http")
    report = store_batches(sensor_store, [make_batch("CR1", [T, T + S], "load_pct", [99.0, 11.0], batch_id="b")],
                           source="http")
    assert (report.readings, report.copies) == (1, 1)
    values = read_series(sensor_store, "CR1", ["load_pct"])["value"].tolist()
    assert values == [10.0, 11.0]


def test_late_and_out_of_order_readings_are_accepted_in_time_order(sensor_store, make_batch):
    store_batches(sensor_store, [make_batch("CR1", T + 100 * S, "load_pct", 3.0)], source="http")
    store_batches(sensor_store, [make_batch("CR1", [T + 50 * S, T], "load_pct", [2.0, 1.0])], source="http")
    frame = read_series(sensor_store, "CR1", ["load_pct"])
    assert frame["value"].tolist() == [1.0, 2.0, 3.0]
    status = sensor_store.one("SELECT last_measured_at FROM device_status WHERE device_id = 'CR1'")
    assert status["last_measured_at"] == dt.datetime(2026, 3, 16, 2, 1, 40)     # the latest, not the last sent


def test_readings_of_blacklisted_devices_are_stored_flagged_and_untrusted(sensor_store, make_batch):
    blacklist_supplier(sensor_store, "Sailhero", reason="forged certificates")
    report = store_batches(sensor_store, [make_batch("DU1", T, "pm10_ugm3", 50.0)], source="http")
    assert report.untrusted == 1 and report.touched == {}
    row = sensor_store.one("SELECT trusted, flags FROM readings WHERE device_id = 'DU1'")
    assert row == {"trusted": False, "flags": "blacklisted,uncalibrated"}
    assert sensor_store.scalar("SELECT last_measured_at FROM device_status WHERE device_id = 'DU1'") is None


def test_readings_outside_every_valid_calibration_are_flagged_uncalibrated(sensor_store, make_batch):
    record_calibration(sensor_store, "DU1", calibrated_on="2026-01-01", valid_until="2026-03-15")
    day = 86_400 * S
    store_batches(sensor_store, [make_batch("DU1", [T - 2 * day, T], "pm10_ugm3", [40.0, 41.0])], source="http")
    flags = sensor_store.execute("SELECT flags FROM readings ORDER BY measured_at")
    assert [f[0] for f in flags] == [None, "uncalibrated"]
    assert sensor_store.scalar("SELECT count(*) FROM readings WHERE NOT trusted") == 0


def test_attendance_events_are_stored_once(sensor_store, make_batch):
    events = {"at_us": [T, T + 3600 * S], "worker_id": ["W-1", "W-1"], "event": ["in", "out"],
              "trade": ["rebar", "rebar"], "employer": ["E", "E"], "trained": [True, True]}
    batch = make_batch("GT1", [], [], [], events=events)
    assert store_batches(sensor_store, [batch], source="http").events == 2
    other = make_batch("GT1", [], [], [], events=events, batch_id="again")
    assert store_batches(sensor_store, [other], source="http").events == 0
    assert sensor_store.scalar("SELECT count(*) FROM attendance_events") == 2


def test_a_store_that_fails_half_way_keeps_nothing(sensor_store, make_batch, fingerprint):
    store_batches(sensor_store, [make_batch("CR1", T, "load_pct", 1.0)], source="http")
    before = fingerprint(sensor_store)
    good = make_batch("CR1", T + S, "load_pct", 2.0)
    ghost = make_batch("GHOST", T, "load_pct", 1.0)          # not a registered device: the join drops it...
    sensor_store.execute("CREATE TABLE boom (x INTEGER CHECK (x > 0))")
    try:
        with sensor_store.transaction():
            store_batches(sensor_store, [good, ghost], source="http")
            sensor_store.execute("INSERT INTO boom VALUES (-1)")   # ...and a later failure rolls everything back
    except Exception:
        pass
    assert fingerprint(sensor_store) == before


def test_wide_series_joins_channels_as_of_the_first(sensor_store, make_batch):
    store_batches(sensor_store, [make_batch("CR1", T + np.arange(3) * 10 * S, "slew_deg", [0.0, 10.0, 20.0]),
                                 make_batch("CR1", T + np.arange(3) * 10 * S + 2 * S, "trolley_m", [5.0, 6.0, 7.0])],
                  source="http")
    frame = wide_series(sensor_store, "CR1", ["slew_deg", "trolley_m"])
    assert frame["slew_deg"].tolist() == [0.0, 10.0, 20.0]
    assert frame["trolley_m"].isna().tolist() == [True, False, False]
    assert frame["trolley_m"].tolist()[1:] == [5.0, 6.0]


def test_batches_of_an_unknown_device_are_refused_not_dropped(sensor_store, make_batch, fingerprint):
    import pytest

    from sitetwin.sensors.errors import DeviceError

    before = fingerprint(sensor_store)
    with pytest.raises(DeviceError, match="unknown device GHOST"):
        store_batches(sensor_store, [make_batch("CR1", T, "load_pct", 1.0), make_batch("GHOST", T, "load_pct", 1.0)],
                      source="http")
    assert fingerprint(sensor_store) == before
