"""Untrained-worker warnings follow the training records, not only the gate's flag."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sitetwin.sensors.batch import to_us
from sitetwin.sensors.timeseries import store_batches
from sitetwin.sensors.training import import_file
from sitetwin.sensors.warnings import evaluate_warnings, list_warnings

H = 3600 * 1_000_000
D0 = to_us(dt.datetime(2026, 3, 15, 23, 0))          # 07:00 local (Asia/Shanghai) on 16 March
NOW = dt.datetime(2026, 3, 21)
HEADER = "site_code,worker_id,course,course_type,completed_on,hours,score,passed,valid_until\n"


def gate_days(store, make_batch, worker, days, trained):
    """``worker`` enters at 07:00 and leaves at 17:00 local on each of ``days`` (0 = 16 March)."""
    at = [t for d in days for t in (D0 + d * 24 * H, D0 + d * 24 * H + 10 * H)]
    n = len(at)
    events = {"at_us": at, "worker_id": [worker] * n, "event": ["in", "out"] * len(days), "trade": ["rebar"] * n,
              "employer": ["E"] * n, "trained": [trained] * n}
    store_batches(store, [make_batch("GT1", [], [], [], events=events)], source="http")


def records(store, tmp_path: Path, *lines):
    path = tmp_path / "training.csv"
    path.write_text(HEADER + "".join(f"{line}\n" for line in lines), encoding="utf-8")
    import_file(store, path, today=dt.date(2026, 3, 20))


def untrained(store):
    return sorted((w.worker_id, w.started_at, w.ended_at) for w in list_warnings(store, site_code="S1",
                                                                               kind="untrained_worker"))


def test_a_worker_whose_training_lapsed_is_warned_about_though_the_gate_says_trained(sensor_store, make_batch,
                                                                                   tmp_path):
    gate_days(sensor_store, make_batch, "W-A", range(4), trained=True)
    records(sensor_store, tmp_path, "S1,W-A,三级,three_level,2025-03-18,24,90,,2026-03-17")   # lapsed after the 17th
    evaluate_warnings(sensor_store, site_code="S1", device_ids=[], now=NOW, findings=False)
    # the stays of 18 and 19 March (07:00-17:00 local = 23:00-09:00 UTC), none on the 16th or 17th
    assert untrained(sensor_store) == [("W-A", dt.datetime(2026, 3, 17, 23), dt.datetime(2026, 3, 18, 9)),
                                       ("W-A", dt.datetime(2026, 3, 18, 23), dt.datetime(2026, 3, 19, 9))]


def test_a_worker_with_valid_records_is_not_warned_about_though_the_gate_says_untrained(sensor_store, make_batch,
                                                                                      tmp_path):
    gate_days(sensor_store, make_batch, "W-B", range(2), trained=False)
    evaluate_warnings(sensor_store, site_code="S1", device_ids=[], now=NOW, findings=False)
    assert len(untrained(sensor_store)) == 2                          # the gate's flag, without records
    records(sensor_store, tmp_path, "S1,W-B,三级,three_level,2026-03-01,24,88,,2027-02-28")
    evaluate_warnings(sensor_store, site_code="S1", device_ids=[], now=NOW, findings=False)
    assert untrained(sensor_store) == []                              # the records decide, and withdraw them


def test_a_failed_exam_does_not_count_as_training(sensor_store, make_batch, tmp_path):
    gate_days(sensor_store, make_batch, "W-C", [0], trained=True)
    records(sensor_store, tmp_path, "S1,W-C,三级,three_level,2026-03-01,24,40,,")                # 40 < pass mark
    evaluate_warnings(sensor_store, site_code="S1", device_ids=[], now=NOW, findings=False)
    assert [w for w, *_ in untrained(sensor_store)] == ["W-C"]
