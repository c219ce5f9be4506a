"""Warnings from stored data: thresholds, rolling means, gaps, untrained workers; incremental and idempotent."""

import datetime as dt

import numpy as np
import pytest

from sitetwin.oversight.raising import raise_drafts
from sitetwin.sensors.batch import from_us, to_us
from sitetwin.sensors.findings import raise_pending_findings
from sitetwin.sensors.limits import set_site_limits, site_limits
from sitetwin.sensors.registry import blacklist_supplier
from sitetwin.sensors.timeseries import store_batches
from sitetwin.sensors.warnings import check_silence, evaluate_touched, evaluate_warnings, list_warnings

S = 1_000_000
T = to_us(dt.datetime(2026, 3, 16, 2, 0, 0))          # 10:00 local (Asia/Shanghai)
NOW = dt.datetime(2026, 3, 16, 6, 0, 0)


def crane_load(values, start=T, step_s=10):
    return start + np.arange(len(values)) * step_s * S, np.asarray(values, dtype=float)


def store_load(store, make_batch, values, *, start=T, step_s=10, batch_id=None):
    t, v = crane_load(values, start, step_s)
    return store_batches(store, [make_batch("CR1", t, "load_pct", v, batch_id=batch_id)], source="http")


def warnings_of(store, kind):
    return sorted(list_warnings(store, site_code="S1", kind=kind), key=lambda w: w.started_at)


def test_an_overload_becomes_one_warning_with_its_peak_and_duration(sensor_store, make_batch):
    values = [40] * 30 + [95, 104, 108, 106, 97] + [40] * 30
    report = store_load(sensor_store, make_batch, values)
    evaluation = evaluate_touched(sensor_store, report, now=from_us(T + 650 * S), findings=False)
    [w] = warnings_of(sensor_store, "overload")
    assert w.device_id == "CR1" and w.channel == "load_pct"
    assert w.started_at == from_us(T + 300 * S) and w.ended_at == from_us(T + 350 * S)
    assert w.duration_s == 50.0
    assert w.peak_value == 108.0 and w.severity == "high" and w.limit_value == 100.0
    assert "108 % of rated" in w.message and "for 50 s" in w.message
    assert evaluation.by_kind == {"overload": 1}


def test_evaluating_again_changes_nothing_and_keeps_ids(sensor_store, make_batch):
    store_load(sensor_store, make_batch, [40] * 10 + [105] * 3 + [40] * 10)
    first = evaluate_warnings(sensor_store, site_code="S1", now=NOW, findings=False)
    ids = [w.warning_id for w in list_warnings(sensor_store, site_code="S1")]
    assert {w.kind for w in list_warnings(sensor_store, site_code="S1")} == {"overload", "gap"}
    again = evaluate_warnings(sensor_store, site_code="S1", now=NOW, findings=False)
    assert first.inserted >= 1
    assert (again.inserted, again.updated, again.removed) == (0, 0, 0)
    assert [w.warning_id for w in list_warnings(sensor_store, site_code="S1")] == ids


def test_data_arriving_in_pieces_gives_the_same_warnings_as_all_at_once(sensor_store, make_batch):
    values = [40] * 20 + [101, 103] + [40] * 5 + [112, 115, 111] + [40] * 20 + [99, 99, 99]
    t, v = crane_load(values)
    # in four out-of-order pieces, evaluated after each
    for piece in (slice(30, 45), slice(0, 10), slice(45, None), slice(10, 30)):
        report = store_batches(sensor_store, [make_batch("CR1", t[piece], "load_pct", v[piece])], source="http")
        evaluate_touched(sensor_store, report, now=NOW, findings=False)
    pieces = [(w.started_at, w.ended_at, w.peak_value, w.severity) for w in warnings_of(sensor_store, "overload")]
    # the same data at once, in a second store
    from sitetwin.data.sites import upsert_site
    from sitetwin.data.store import open_store
    from sitetwin.sensors.registry import add_device

    store = open_store(":memory:")
    upsert_site(store, "S1")
    add_device(store, "CR1", site_code="S1", device_type="crane", position_m=(0, 0, 0), interval_s=10,
               config={"geometry": {"jib_height_m": 40, "jib_length_m": 50}})
    store_batches(store, [make_batch("CR1", t, "load_pct", v)], source="http")
    evaluate_warnings(store, site_code="S1", now=NOW, findings=False)
    whole = [(w.started_at, w.ended_at, w.peak_value, w.severity)
             for w in sorted(list_warnings(store, site_code="S1", kind="overload"), key=lambda w: w.started_at)]
    assert pieces == whole
    assert [p[2:] for p in whole] == [(103.0, "high"), (115.0, "critical"), (99.0, "low")]
    assert whole[-1][1] == from_us(int(t[-1]))   # the crane fell silent inside it: it ends at the last reading
    store.close()


def test_an_episode_running_at_the_last_reading_is_open_unless_the_device_fell_silent(sensor_store, make_batch):
    report = store_load(sensor_store, make_batch, [40, 40, 104, 105])            # last reading at T + 30 s
    evaluate_touched(sensor_store, report, now=from_us(T + 40 * S), findings=False)
    [w] = warnings_of(sensor_store, "overload")
    assert w.active and "ongoing" in w.message
    check_silence(sensor_store, now=from_us(T + 600 * S), findings=False)       # silent for 9.5 min (> 3 x 10 s)
    evaluate_warnings(sensor_store, site_code="S1", now=from_us(T + 600 * S), findings=False)
    [w] = warnings_of(sensor_store, "overload")
    assert w.ended_at == from_us(T + 30 * S) and "until the device fell silent" in w.message
    [gap] = warnings_of(sensor_store, "gap")
    assert gap.active and gap.started_at == from_us(T + 30 * S)


def test_a_late_reading_under_the_limit_splits_an_episode(sensor_store, make_batch):
    t, v = crane_load([40, 105, 106, 107, 108, 40])
    keep = [0, 1, 2, 4, 5]
    report = store_batches(sensor_store, [make_batch("CR1", t[keep], "load_pct", v[keep])], source="http")
    evaluate_touched(sensor_store, report, now=NOW, findings=False)
    assert len(warnings_of(sensor_store, "overload")) == 1
    late = store_batches(sensor_store, [make_batch("CR1", t[3], "load_pct", 50.0)], source="http")
    evaluate_touched(sensor_store, late, now=NOW, findings=False)
    split = warnings_of(sensor_store, "overload")
    assert [(w.peak_value, w.duration_s) for w in split] == [(106.0, 20.0), (108.0, 10.0)]


def test_a_fifteen_minute_dust_mean_over_the_limit_is_a_warning_with_its_duration(sensor_store, make_batch):
    minutes = np.arange(120)
    pm10 = np.where((minutes >= 30) & (minutes < 60), 400.0, 60.0)
    report = store_batches(sensor_store, [make_batch("DU1", T + minutes * 60 * S, "pm10_ugm3", pm10)], source="http")
    evaluate_touched(sensor_store, report, now=NOW, findings=False)
    [w] = warnings_of(sensor_store, "pm10_15min")
    # the 15-min mean first exceeds 150 once 4 of its 15 samples are at 400 (4*400+11*60)/15 = 150.7
    assert w.started_at == from_us(T + 33 * 60 * S)
    # and falls back under once only 3 remain (128): at minute 71
    assert w.ended_at == from_us(T + 71 * 60 * S)
    assert w.peak_value == pytest.approx(400.0) and w.severity == "high"


def test_night_noise_is_judged_by_its_20_minute_leq_against_the_night_limit(sensor_store, make_batch):
    night = to_us(dt.datetime(2026, 3, 16, 14, 0))          # 22:00 local
    minutes = np.arange(0, 90)
    level = np.where(minutes < 60, 60.0, 45.0)             # 60 dB(A) for an hour: over 55 by night, under 70 by day
    report = store_batches(sensor_store, [make_batch("DU1", night + minutes * 60 * S, "noise_dba", level)],
                           source="http")
    evaluate_touched(sensor_store, report, now=dt.datetime(2026, 3, 16, 16, 0), findings=False)
    [w] = warnings_of(sensor_store, "noise_night")
    assert w.peak_value == pytest.approx(60.0, abs=0.01) and w.severity == "medium"
    assert warnings_of(sensor_store, "noise_day") == []


def test_a_device_silent_past_its_interval_is_a_gap_warning_closed_when_it_reports(sensor_store, make_batch):
    store_load(sensor_store, make_batch, [40] * 6)                       # until T + 50 s
    check_silence(sensor_store, now=from_us(T + 600 * S), findings=False)
    [gap] = warnings_of(sensor_store, "gap")
    assert gap.device_id == "CR1" and gap.active and gap.started_at == from_us(T + 50 * S)
    assert gap.limit_value == 30.0 and gap.severity == "high"           # 3 x 10 s; cranes' gaps are high
    report = store_load(sensor_store, make_batch, [40] * 3, start=T + 900 * S)
    evaluate_touched(sensor_store, report, now=from_us(T + 930 * S), findings=False)
    [closed] = warnings_of(sensor_store, "gap")
    assert closed.warning_id == gap.warning_id and closed.ended_at == from_us(T + 900 * S)
    assert closed.peak_value == 850.0


def test_a_blacklisted_device_shows_as_silent_not_as_clean(sensor_store, make_batch):
    blacklist_supplier(sensor_store, "Sailhero", reason="forged certificates")
    store_batches(sensor_store, [make_batch("DU1", T + np.arange(60) * 60 * S, "pm10_ugm3", 900.0)], source="http")
    sensor_store.execute("UPDATE devices SET installed_on = DATE '2026-03-15' WHERE device_id = 'DU1'")
    check_silence(sensor_store, now=NOW, findings=False)
    assert warnings_of(sensor_store, "pm10_15min") == []               # untrusted data raise nothing...
    [gap] = [w for w in warnings_of(sensor_store, "gap") if w.device_id == "DU1"]   # ...and count as no data
    assert gap.device_id == "DU1" and gap.active and "not trusted" in gap.message


def test_untrained_workers_on_site_are_warnings_and_become_findings(sensor_store, make_batch):
    day = to_us(dt.datetime(2026, 3, 15, 23, 0))          # 07:00 local
    events = {"at_us": [day, day + 60 * S, day + 10 * 3600 * S, day + 10 * 3600 * S + 60 * S],
              "worker_id": ["W-1", "W-2", "W-1", "W-2"], "event": ["in", "in", "out", "out"],
              "trade": ["rebar"] * 4, "employer": ["Acme"] * 4, "trained": [True, False, True, False]}
    report = store_batches(sensor_store, [make_batch("GT1", [], [], [], events=events)], source="http")
    evaluation = evaluate_touched(sensor_store, report, now=NOW, sink=raise_drafts)   # as the site's settings say
    [w] = warnings_of(sensor_store, "untrained_worker")
    assert w.worker_id == "W-2" and w.device_id == "GT1" and w.severity == "high"
    assert w.duration_s == 10 * 3600
    assert evaluation.findings == 1
    finding = sensor_store.one("SELECT category, severity, source, source_ref, title FROM findings "
                               "WHERE finding_id = ?", [w.finding_id])
    assert finding == {"category": "safety", "severity": "high", "source": "sensor", "source_ref": w.warning_id,
                       "title": "Untrained worker on site"}


def test_a_crane_overload_finding_is_located_at_the_hook(sensor_store, make_batch):
    t = T + np.arange(6) * 10 * S
    batches = [make_batch("CR1", t, "load_pct", [40, 40, 120, 120, 40, 40]),
               make_batch("CR1", t, "slew_deg", 90.0), make_batch("CR1", t, "trolley_m", 30.0),
               make_batch("CR1", t, "hook_height_m", 5.0)]
    report = store_batches(sensor_store, batches, source="http")
    evaluate_touched(sensor_store, report, now=NOW, sink=raise_drafts)
    [w] = warnings_of(sensor_store, "overload")
    finding = sensor_store.one("SELECT x_m, y_m, z_m, severity FROM findings WHERE finding_id = ?", [w.finding_id])
    # base (10, 20, 0); slew 0 points along +y (slew_zero 90), +90 turns to -x: hook at (10 - 30, 20, 5)
    assert finding["severity"] == "critical"
    assert (finding["x_m"], finding["y_m"], finding["z_m"]) == pytest.approx((-20.0, 20.0, 5.0), abs=1e-9)


def test_without_a_sink_warnings_stay_pending_until_raised_once(sensor_store, make_batch):
    report = store_load(sensor_store, make_batch, [40, 120, 120, 40])
    evaluation = evaluate_touched(sensor_store, report, now=NOW)
    [w] = warnings_of(sensor_store, "overload")
    assert evaluation.findings == 0 and w.finding_id is None
    raised = raise_pending_findings(sensor_store, raise_drafts, site_code="S1", warning_ids=[w.warning_id])
    assert raised == [(w.warning_id, warnings_of(sensor_store, "overload")[0].finding_id)]
    assert raise_pending_findings(sensor_store, raise_drafts, site_code="S1", warning_ids=[w.warning_id]) == []
    assert sensor_store.scalar("SELECT count(*) FROM findings WHERE source_ref = ?", [w.warning_id]) == 1


def test_site_limits_change_what_is_a_warning(sensor_store, make_batch):
    set_site_limits(sensor_store, "S1", {"rules": [{"kind": "overload", "levels": [[80, "medium"]]}]})
    assert site_limits(sensor_store, "S1").rule("overload").levels == ((80.0, "medium"),)
    report = store_load(sensor_store, make_batch, [40, 85, 40])
    evaluate_touched(sensor_store, report, now=NOW, findings=False)
    [w] = warnings_of(sensor_store, "overload")
    assert (w.severity, w.limit_value) == ("medium", 80.0)


def test_two_cranes_whose_jibs_come_close_raise_an_anti_collision_warning_on_both(sensor_store, make_batch):
    from sitetwin.sensors.registry import add_device

    # CR1 at (10, 20), jib 50 m pointing +y at slew 0; CR2 at (80, 20), jib 40 m along +x at slew 0
    add_device(sensor_store, "CR2", site_code="S1", device_type="crane", position_m=(80.0, 20.0, 0.0), interval_s=10.0,
               config={"geometry": {"jib_height_m": 50.0, "jib_length_m": 40.0}})
    t = T + np.arange(8) * 10 * S
    # CR1 turns from +y (slew 0) towards +x (slew -90) and back; CR2 turns its jib round to -x (180) and back
    slew1 = [0.0, -30.0, -60.0, -85.0, -90.0, -60.0, -30.0, 0.0]
    slew2 = [0.0, 90.0, 150.0, 175.0, 180.0, 180.0, 90.0, 0.0]
    report = store_batches(sensor_store, [make_batch("CR1", t, "slew_deg", slew1),
                                          make_batch("CR2", t + 2 * S, "slew_deg", slew2)], source="http")
    evaluate_touched(sensor_store, report, now=from_us(T + 80 * S), findings=False)
    near = {w.device_id: w for w in warnings_of(sensor_store, "collision_risk")}
    assert set(near) == {"CR1", "CR2"}
    # at slew -90 CR1's jib runs along y = 20 to x = 60; CR2's (slew 180) from x = 80 back to x = 40: they overlap
    assert near["CR1"].peak_value == 0.0 and near["CR1"].severity == "critical" and near["CR1"].limit_value == 2.0
    assert "CR2" in near["CR1"].message and "CR1" in near["CR2"].message
    assert near["CR2"].started_at >= from_us(T + 20 * S)
