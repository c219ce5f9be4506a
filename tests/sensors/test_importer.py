"""History import from CSV and Parquet: formats, timezones, idempotency, and every bad input refused whole."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from sitetwin.sensors.errors import SensorError
from sitetwin.sensors.importer import import_file
from sitetwin.sensors.warnings import list_warnings

NOW = dt.datetime(2026, 3, 17, 0, 0)


def write_csv(path, text):
    path.write_text(text.strip() + "\n", encoding="utf-8")
    return path


def test_a_long_csv_is_imported_and_importing_it_again_stores_nothing(sensor_store, tmp_path):
    path = write_csv(tmp_path / "crane.csv", """
device_id,measured_at,channel,value
CR1,2026-03-16T10:00:00+08:00,load_pct,40
CR1,2026-03-16T10:00:10+08:00,load_pct,104
CR1,2026-03-16T10:00:20+08:00,load_pct,40
CR1,2026-03-16T10:00:00+08:00,wind_ms,4.5
""")
    report = import_file(sensor_store, path, now=NOW, findings=False)
    assert (report.kind, report.rows, report.readings, report.devices) == ("readings", 4, 4, ("CR1",))
    assert report.warnings["by_kind"].get("overload") == 1
    again = import_file(sensor_store, path, now=NOW, findings=False)
    assert (again.readings, again.already_imported) == (0, 1)
    assert sensor_store.scalar("SELECT count(*) FROM readings") == 4
    [w] = list_warnings(sensor_store, kind="overload")
    assert w.started_at == dt.datetime(2026, 3, 16, 2, 0, 10) and w.peak_value == 104.0


def test_a_wide_csv_with_empty_cells_and_a_timezone_for_naive_times(sensor_store, tmp_path):
    path = write_csv(tmp_path / "dust.csv", """
device_id,time,pm10_ugm3,pm2_5_ugm3,noise_dba
DU1,2026-03-16 10:00:00,55,20,61
DU1,2026-03-16 10:01:00,56,,62
""")
    with pytest.raises(SensorError, match="no UTC offset"):
        import_file(sensor_store, path, now=NOW)
    report = import_file(sensor_store, path, now=NOW, timezone="Asia/Shanghai", findings=False)
    assert report.readings == 5
    first = sensor_store.one("SELECT min(measured_at) AS t FROM readings")["t"]
    assert first == dt.datetime(2026, 3, 16, 2, 0)


def test_a_parquet_file_with_utc_timestamps(sensor_store, tmp_path):
    times = pd.date_range("2026-03-16T02:00Z", periods=30, freq="60s")
    frame = pd.DataFrame({"device_id": "WX1", "measured_at": times, "channel": "wind_ms",
                          "value": np.linspace(3, 9, 30)})
    path = tmp_path / "wx.parquet"
    frame.to_parquet(path, index=False)
    report = import_file(sensor_store, path, now=NOW, findings=False)
    assert report.readings == 30
    assert sensor_store.scalar("SELECT max(value) FROM readings WHERE device_id = 'WX1'") == pytest.approx(9.0)


def test_an_attendance_csv_with_real_ids_is_pseudonymised_on_the_way_in(sensor_store, tmp_path):
    path = write_csv(tmp_path / "gate.csv", """
device_id,person_id,event,at,trained,trade,employer
GT1,420102199001011234,in,2026-03-16T07:01:00+08:00,true,rebar,Acme
GT1,420102199001011234,out,2026-03-16T17:30:00+08:00,true,rebar,Acme
GT1,420102199202025678,in,2026-03-16T07:05:00+08:00,false,general,Acme
""")
    with pytest.raises(SensorError, match="pseudonymisation key"):
        import_file(sensor_store, path, now=NOW)
    report = import_file(sensor_store, path, now=NOW, pseudonym_key="site-secret", findings=False)
    assert (report.kind, report.events) == ("attendance", 3)
    stored = sensor_store.execute("SELECT DISTINCT worker_id FROM attendance_events")
    assert len(stored) == 2 and all(w[0].startswith("W-") for w in stored)
    assert "4201021990" not in str(sensor_store.rows("SELECT * FROM attendance_events"))
    assert [w.kind for w in list_warnings(sensor_store, site_code="S1")] == ["untrained_worker"]


@pytest.mark.parametrize("name, text, message", [
    ("unknown.csv", "device_id,measured_at,channel,value\nNOPE,2026-03-16T02:00:00Z,load_pct,1", "unknown device NOPE"),
    ("nan.csv", "device_id,measured_at,channel,value\nCR1,2026-03-16T02:00:00Z,load_pct,1\n"
                "CR1,2026-03-16T02:00:10Z,load_pct,NaN", "row 2: value 'NaN' is not a finite number"),
    ("blank.csv", "device_id,measured_at,channel,value\nCR1,2026-03-16T02:00:00Z,load_pct,", "not a finite number"),
    ("future.csv", "device_id,measured_at,channel,value\nCR1,2026-03-18T02:00:00Z,load_pct,1", "in the future"),
    ("ancient.csv", "device_id,measured_at,channel,value\nCR1,1999-03-16T02:00:00Z,load_pct,1", "too far in the past"),
    ("early.csv", "device_id,measured_at,channel,value\nCR1,2026-02-01T02:00:00Z,load_pct,1", "before the device"),
    ("channel.csv", "device_id,measured_at,channel,value\nDU1,2026-03-16T02:00:00Z,load_pct,1", "not one a dust"),
    ("range.csv", "device_id,measured_at,channel,value\nDU1,2026-03-16T02:00:00Z,pm10_ugm3,-5", "plausible range"),
    ("time.csv", "device_id,measured_at,channel,value\nCR1,yesterday,load_pct,1", "row 1: time 'yesterday'"),
    ("notime.csv", "device_id,channel,value\nCR1,load_pct,1", "no time column"),
    ("dup.csv", "device_id,measured_at,channel,value\nCR1,2026-03-16T02:00:00Z,load_pct,1\n"
                "CR1,2026-03-16T10:00:00+08:00,load_pct,2", "one value per channel and time"),
    ("events.csv", "device_id,worker_id,event,at,trained\nGT1,W-1,enter,2026-03-16T02:00:00Z,true", "'in' or 'out'"),
    ("empty.csv", "device_id,measured_at,channel,value", "no rows"),
    ("table.xlsx", "not really", "reads .csv or .parquet"),
])
def test_a_bad_file_is_refused_whole_naming_the_problem_and_the_store_is_unchanged(sensor_store, tmp_path, fingerprint,
                                                                                   name, text, message):
    good = write_csv(tmp_path / "good.csv", "device_id,measured_at,channel,value\nCR1,2026-03-16T01:00:00Z,load_pct,5")
    import_file(sensor_store, good, now=NOW, findings=False)
    before = fingerprint(sensor_store)
    path = tmp_path / name
    path.write_text(text + "\n", encoding="utf-8")
    with pytest.raises(SensorError, match=message):
        import_file(sensor_store, path, now=NOW, findings=False)
    assert fingerprint(sensor_store) == before


def test_one_bad_row_among_good_ones_stores_none_of_them(sensor_store, tmp_path, fingerprint):
    rows = "\n".join(f"CR1,2026-03-16T02:{m:02d}:00Z,load_pct,{m}" for m in range(50))
    path = write_csv(tmp_path / "mixed.csv", "device_id,measured_at,channel,value\n" + rows +
                     "\nCR1,2026-03-16T03:00:00Z,load_pct,999")
    before = fingerprint(sensor_store)
    with pytest.raises(SensorError, match="row 51"):
        import_file(sensor_store, path, now=NOW)
    assert fingerprint(sensor_store) == before


def test_a_truncated_parquet_file_is_refused(sensor_store, tmp_path):
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"PAR1\x00\x00garbage")
    with pytest.raises(SensorError, match="not a readable PARQUET file"):
        import_file(sensor_store, path, now=NOW)
