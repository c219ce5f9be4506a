"""Attendance: stays rebuilt from gate events, headcount by time, pseudonyms."""

import datetime as dt

import numpy as np
import pytest

from sitetwin.sensors.attendance import headcount, headcount_at, on_site, pseudonym, stays
from sitetwin.sensors.batch import to_us
from sitetwin.sensors.timeseries import store_batches

H = 3600 * 1_000_000
D0 = to_us(dt.datetime(2026, 3, 15, 23, 0))          # 07:00 local, 2026-03-16


def test_an_in_and_the_next_out_make_a_stay():
    s = stays(["A", "A"], ["in", "out"], [D0, D0 + 9 * H], [True, True], now_us=D0 + 20 * H)
    assert s.in_us.tolist() == [D0] and s.out_us.tolist() == [D0 + 9 * H] and not s.assumed_out[0]


def test_a_missed_exit_counts_at_most_a_shift_and_a_second_entry_closes_the_first_stay():
    s = stays(["A", "A", "B"], ["in", "in", "in"], [D0, D0 + 24 * H, D0], [True, True, True], max_shift_h=16,
              now_us=D0 + 26 * H)
    a = np.flatnonzero(s.worker_id == "A")
    assert s.out_us[a].tolist() == [D0 + 16 * H, -1]          # assumed gone after 16 h; the second stay is open
    assert s.assumed_out[a].tolist() == [True, False]
    b = np.flatnonzero(s.worker_id == "B")
    assert s.out_us[b].tolist() == [D0 + 16 * H]


def test_an_exit_without_an_entry_is_ignored_and_events_may_come_in_any_order():
    s = stays(["A", "A", "A"], ["out", "out", "in"], [D0 + 9 * H, D0 - H, D0], [True] * 3, now_us=D0 + 20 * H)
    assert len(s) == 1 and s.in_us[0] == D0 and s.out_us[0] == D0 + 9 * H


def test_headcount_counts_stays_and_untrained_workers_at_each_time():
    s = stays(["A", "A", "B", "B", "C"], ["in", "out", "in", "out", "in"],
              [D0, D0 + 8 * H, D0 + 2 * H, D0 + 4 * H, D0 + 3 * H], [True, True, False, False, True],
              now_us=D0 + 5 * H)
    total, untrained = headcount_at(s, [D0 - H, D0, D0 + 3 * H, D0 + 4 * H, D0 + 9 * H])
    assert total.tolist() == [0, 1, 3, 2, 1]
    assert untrained.tolist() == [0, 0, 1, 0, 0]


def test_headcount_and_who_is_on_site_from_the_store(sensor_store, make_batch):
    workers = [f"W-{i}" for i in range(5)]
    ats, kinds, who, trained = [], [], [], []
    for i, w in enumerate(workers):
        ats += [D0 + i * 600_000_000, D0 + 10 * H]
        kinds += ["in", "out"]
        who += [w, w]
        trained += [i != 4, i != 4]
    events = {"at_us": ats, "worker_id": who, "event": kinds, "trade": ["rebar"] * 10, "employer": ["E"] * 10,
              "trained": trained}
    store_batches(sensor_store, [make_batch("GT1", [], [], [], events=events)], source="http")
    frame = headcount(sensor_store, "S1", start=dt.datetime(2026, 3, 15, 22, 0), end=dt.datetime(2026, 3, 16, 10, 0),
                      step_s=3600)
    assert frame["on_site"].tolist() == [0, 1, 5, 5, 5, 5, 5, 5, 5, 5, 5, 0, 0]
    assert frame["untrained"].max() == 1
    here = on_site(sensor_store, "S1", at=dt.datetime(2026, 3, 16, 1, 0))
    assert sorted(r["worker_id"] for r in here) == workers
    assert [r["worker_id"] for r in here if not r["trained"]] == ["W-4"]


def test_a_pseudonym_is_stable_keyed_and_hides_the_real_id():
    a = pseudonym("420102199001011234", "site-secret")
    assert a == pseudonym(" 420102199001011234 ", "site-secret")
    assert a != pseudonym("420102199001011234", "other-secret")
    assert a.startswith("W-") and "1990" not in a
    with pytest.raises(ValueError):
        pseudonym("x", "")
