"""Parsing and checking posted batches: every bad input is refused whole, with its HTTP status and a clear reason."""

import datetime as dt
import json

import numpy as np
import pytest

from sitetwin.sensors.batch import DeviceRef, content_digest, iso, parse_batch, to_us
from sitetwin.sensors.config import default_limits
from sitetwin.sensors.errors import BatchError

NOW = dt.datetime(2026, 3, 16, 8, 0, 0)
CRANE = DeviceRef("CR1", "S1", "crane", installed_on=dt.date(2026, 3, 1))
GATE = DeviceRef("GT1", "S1", "gate")
DEVICES = {"CR1": CRANE, "GT1": GATE, "DU1": DeviceRef("DU1", "S1", "dust")}
LIMITS = default_limits().ingest


def parse(doc, device=CRANE, limits=LIMITS):
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return parse_batch(body, token_device=device, devices=DEVICES, limits=limits, now_us=to_us(NOW))


def refused(doc, device=CRANE, limits=LIMITS) -> BatchError:
    with pytest.raises(BatchError) as info:
        parse(doc, device, limits)
    return info.value


def test_both_reading_forms_offsets_and_epoch_seconds_become_utc_columns():
    batch = parse({"batch_id": "b-1", "readings": [
        {"at": "2026-03-16T07:59:00Z", "channel": "load_pct", "value": 42},
        {"at": "2026-03-16T15:59:30+08:00", "values": {"load_pct": 43.5, "wind_ms": 5.0}},
        {"at": (NOW - dt.timedelta(seconds=10) - dt.datetime(1970, 1, 1)).total_seconds(), "channel": "tilt_deg",
         "value": 0.1}]})
    assert batch.batch_key == "CR1/b-1" and batch.site_code == "S1"
    assert batch.reading_count == 4
    assert [iso(t) for t in batch.t_us] == ["2026-03-16T07:59:00Z", "2026-03-16T07:59:30Z", "2026-03-16T07:59:30Z",
                                            "2026-03-16T07:59:50Z"]
    assert batch.channel.tolist() == ["load_pct", "load_pct", "wind_ms", "tilt_deg"]
    np.testing.assert_allclose(batch.value, [42.0, 43.5, 5.0, 0.1])


def test_without_a_batch_id_the_key_is_the_content_hash_whatever_the_order():
    a = parse({"readings": [{"at": "2026-03-16T07:00:00Z", "channel": "load_pct", "value": 1},
                            {"at": "2026-03-16T07:00:01Z", "channel": "wind_ms", "value": 2}]})
    b = parse({"readings": [{"at": "2026-03-16T07:00:01Z", "channel": "wind_ms", "value": 2},
                            {"at": "2026-03-16T07:00:00Z", "channel": "load_pct", "value": 1}]})
    assert a.batch_key == b.batch_key and a.batch_id.startswith("sha256:")


def test_late_readings_within_the_age_limit_are_accepted():
    batch = parse({"readings": [{"at": "2026-03-04T08:00:00Z", "channel": "load_pct", "value": 10}]})
    assert batch.reading_count == 1


def test_malformed_json_is_a_400():
    error = refused(b'{"readings": [')
    assert error.status == 400 and "malformed JSON" in str(error)


@pytest.mark.parametrize("doc", [[1, 2], {"readings": [], "extra": 1}, {"readings": {"a": 1}}])
def test_a_batch_that_is_not_the_documented_shape_is_a_400(doc):
    assert refused(doc).status == 400


def test_an_unknown_device_and_another_devices_id_get_the_same_403_naming_no_device():
    unknown = refused({"device_id": "NOPE", "readings": [{"at": "2026-03-16T07:00:00Z", "channel": "x", "value": 1}]})
    other = refused({"device_id": "DU1", "readings": [{"at": "2026-03-16T07:00:00Z", "channel": "pm10_ugm3",
                                                       "value": 1}]})
    assert (unknown.status, str(unknown)) == (other.status, str(other)) == (403, str(other))
    assert not any(name in str(other) for name in ("NOPE", "DU1", "CR1"))


def test_nan_and_infinity_are_refused_naming_the_item():
    body = b'{"readings": [{"at": "2026-03-16T07:00:00Z", "channel": "load_pct", "value": 1},' \
           b'{"at": "2026-03-16T07:00:01Z", "channel": "load_pct", "value": NaN},' \
           b'{"at": "2026-03-16T07:00:02Z", "channel": "load_pct", "value": Infinity}]}'
    error = refused(body)
    assert error.status == 422
    assert any(p.startswith("readings[1]") and "NaN" in p for p in error.problems)
    assert any(p.startswith("readings[2]") for p in error.problems)
    assert "nothing stored" in str(error)


def test_a_time_in_the_future_or_far_past_or_without_offset_is_refused():
    error = refused({"readings": [
        {"at": "2026-03-16T09:00:00Z", "channel": "load_pct", "value": 1},      # an hour ahead of the clock
        {"at": "2025-01-01T00:00:00Z", "channel": "load_pct", "value": 1},      # older than 30 days
        {"at": "2026-03-16T07:00:00", "channel": "load_pct", "value": 1},       # no offset
        {"at": "2026-02-27T00:00:00Z", "channel": "load_pct", "value": 1}]})    # before installation
    text = " | ".join(error.problems)
    assert "in the future" in text and "too far in the past" in text and "no UTC offset" in text
    assert "before the device was installed" in text
    assert error.status == 422 and len(error.problems) == 4


def test_channels_a_device_does_not_have_and_implausible_values_are_refused():
    error = refused({"readings": [{"at": "2026-03-16T07:00:00Z", "channel": "pm10_ugm3", "value": 40},
                                  {"at": "2026-03-16T07:00:00Z", "channel": "load_pct", "value": 900}]})
    text = " | ".join(error.problems)
    assert "not one a crane device sends" in text and "outside its plausible range 0..400" in text


def test_two_values_for_one_channel_and_time_are_refused():
    error = refused({"readings": [{"at": "2026-03-16T07:00:00Z", "channel": "load_pct", "value": 40},
                                  {"at": "2026-03-16T15:00:00+08:00", "channel": "load_pct", "value": 41}]})
    assert "one value per channel and time" in error.problems[0]


def test_an_oversized_batch_is_a_413_by_count_and_by_bytes():
    small = dataclass_replace(LIMITS, max_items=3)
    many = {"readings": [{"at": "2026-03-16T07:00:00Z", "values": {"load_pct": 1, "wind_ms": 2}},
                         {"at": "2026-03-16T07:00:01Z", "values": {"load_pct": 1, "wind_ms": 2}}]}
    assert refused(many, limits=small).status == 413
    tiny = dataclass_replace(LIMITS, max_body_bytes=1024)
    big = {"readings": [{"at": "2026-03-16T07:00:00Z", "channel": "load_pct", "value": 1}] * 40}
    assert refused(big, limits=tiny).status == 413


def test_attendance_events_come_only_from_gates_and_are_checked():
    ok = parse({"events": [{"at": "2026-03-16T00:01:00Z", "worker_id": "W-1", "event": "in", "trained": True,
                            "trade": "rebar"}]}, device=GATE)
    assert ok.event_count == 1 and ok.reading_count == 0
    error = refused({"events": [{"at": "2026-03-16T00:01:00Z", "worker_id": "W-1", "event": "in", "trained": True}]})
    assert "only gate devices" in error.problems[0]
    error = refused({"events": [{"at": "2026-03-16T00:01:00Z", "worker_id": "W 1", "event": "enter",
                                 "trained": "yes"}]}, device=GATE)
    assert error.status == 422 and "worker_id" in error.problems[0]


def test_an_empty_batch_is_refused():
    assert refused({"readings": []}).status == 422


def test_the_content_digest_depends_on_values():
    t = np.array([1, 2], dtype=np.int64)
    c = np.array(["a", "b"], dtype=object)
    assert content_digest("D", t, c, np.array([1.0, 2.0]), {}) != content_digest("D", t, c, np.array([1.0, 2.5]), {})


def dataclass_replace(obj, **changes):
    import dataclasses

    return dataclasses.replace(obj, **changes)
