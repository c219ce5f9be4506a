"""Warning statistics and episodes, checked against brute-force references and hand-built series."""


import numpy as np
import pandas as pd
import pytest

from sitetwin.sensors.config import Rule, default_limits
from sitetwin.sensors.rules import daily_means, episodes, gaps, in_hours, rate_per_min, rolling_mean, rule_episodes

US = 1_000_000
T0 = 1_773_590_400 * US      # 2026-03-15T16:00Z: local midnight of 2026-03-16 in Asia/Shanghai


def brute_mean(t, v, window_s, energy=False):
    out = []
    for i in range(len(t)):
        sel = (t > t[i] - window_s * US) & (t <= t[i])
        x = np.power(10, v[sel] / 10) if energy else v[sel]
        m = x.mean()
        out.append(10 * np.log10(m) if energy else m)
    return np.array(out)


def test_rolling_means_match_a_brute_force_window_on_irregular_series():
    rng = np.random.default_rng(1)
    t = np.cumsum(rng.integers(20, 100, 300)) * US + T0
    v = rng.uniform(20, 200, 300)
    series = np.zeros(300, dtype=np.int64)
    got = rolling_mean(series, t, v, 900, min_span=0.0)
    np.testing.assert_allclose(got, brute_mean(t, v, 900), rtol=1e-9)
    leq = rolling_mean(series, t, v / 3, 1200, energy=True, min_span=0.0)
    np.testing.assert_allclose(leq, brute_mean(t, v / 3, 1200, energy=True), rtol=1e-9)


def test_windows_never_reach_into_the_previous_series():
    t = np.r_[np.arange(10), np.arange(10)] * 60 * US + T0
    series = np.r_[np.zeros(10), np.ones(10)].astype(np.int64)
    v = np.r_[np.full(10, 1000.0), np.full(10, 10.0)]
    m = rolling_mean(series, t, v, 900, min_span=0.0)
    assert np.allclose(m[10:], 10.0)


def test_a_mean_needs_history_spanning_half_its_window():
    t = np.arange(20) * 60 * US + T0
    m = rolling_mean(np.zeros(20, dtype=np.int64), t, np.ones(20), 900)
    assert np.isnan(m[:8]).all() and np.isfinite(m[8:]).all()      # 8 min = 480 s >= 450 s


def test_the_rate_is_the_change_over_the_window_per_minute():
    t = np.arange(0, 600, 10) * US + T0
    v = 0.1 + 0.001 * np.arange(60)          # +0.001 deg per 10 s = 0.006 deg/min
    r = rate_per_min(np.zeros(60, dtype=np.int64), t, v, 120)
    np.testing.assert_allclose(r[12:], 0.006, rtol=1e-9)


def test_daily_means_follow_local_days_including_a_23_hour_day():
    # Europe/Amsterdam moves to summer time on 2026-03-29: that local day lasts 23 hours
    start = int(pd.Timestamp("2026-03-28T00:00", tz="Europe/Amsterdam").value // 1000)
    t = start + np.arange(0, 3 * 24 * 3600, 3600) * US
    v = np.arange(len(t), dtype=float)
    s, d_start, d_end, mean, count, day_of = daily_means(np.zeros(len(t), dtype=np.int64), t, v, "Europe/Amsterdam")
    assert count.tolist() == [24, 23, 24, 1]
    assert ((d_end - d_start) / 3600 / US).tolist() == [24.0, 23.0, 24.0, 24.0]
    assert mean[0] == pytest.approx(np.mean(np.arange(24)))


def test_local_hours_wrap_past_midnight():
    t = T0 + (np.array([21.5, 22.0, 23.9, 24.5, 29.9, 30.0]) * 3600 * US).astype(np.int64)  # from local midnight
    assert in_hours(t, (22, 6), "Asia/Shanghai").tolist() == [False, True, True, True, True, False]


def test_an_episode_runs_from_the_first_sample_over_the_limit_to_the_first_back_under():
    rule = default_limits().rule("overload")
    t = np.arange(10) * 10 * US + T0
    v = np.array([50, 95, 105, 108, 99, 80, 50, 50, 112, 115], dtype=float)
    e = episodes(np.zeros(10, dtype=np.int64), t, v, rule)
    assert len(e) == 2
    assert ((e.start_us - T0) / US).tolist() == [10.0, 80.0]
    assert e.end_us[0] == T0 + 50 * US and e.end_us[1] == -1           # the second is still open
    assert e.peak.tolist() == [108.0, 115.0]
    assert e.severity.tolist() == ["high", "critical"]
    assert e.limit.tolist() == [100.0, 110.0]


def test_episodes_closer_than_the_merge_gap_become_one():
    rule = Rule("wind", "wind_ms", ("crane",), "value", ((10.8, "high"),), merge_gap_s=600.0)
    t = np.arange(0, 3600, 60) * US + T0
    v = np.full(60, 5.0)
    v[[10, 12, 14]] = 11.5        # gusts 2 min apart: one warning
    v[40] = 12.0                  # 26 min later: another
    e = episodes(np.zeros(60, dtype=np.int64), t, v, rule)
    assert ((e.start_us - T0) / 60 / US).tolist() == [10.0, 40.0]
    assert ((e.end_us - T0) / 60 / US).tolist() == [15.0, 41.0]
    assert e.peak.tolist() == [11.5, 12.0]


def test_short_episodes_are_dropped_by_min_duration():
    rule = Rule("x", "load_pct", ("crane",), "value", ((100.0, "high"),), min_duration_s=30.0)
    t = np.arange(10) * 10 * US + T0
    v = np.array([0, 101, 0, 0, 101, 101, 101, 101, 0, 0], dtype=float)
    e = episodes(np.zeros(10, dtype=np.int64), t, v, rule)
    assert ((e.start_us - T0) / US).tolist() == [40.0]


def test_a_daily_mean_episode_spans_whole_local_days():
    rule = default_limits().rule("pm10_daily")
    t = T0 + np.arange(0, 3 * 86400, 600) * US
    v = np.where((t >= T0 + 86400 * US) & (t < T0 + 2 * 86400 * US), 220.0, 80.0)
    e = rule_episodes(rule, np.zeros(len(t), dtype=np.int64), t, v, "Asia/Shanghai", now_us=int(t[-1]))
    assert len(e) == 1
    assert e.start_us[0] == T0 + 86400 * US and e.end_us[0] == T0 + 2 * 86400 * US
    assert e.peak[0] == pytest.approx(220.0) and e.severity[0] == "high"


def test_gaps_between_readings_and_since_the_last_one_are_found():
    t = np.array([0, 60, 120, 900, 960, 0, 60]) * US
    s = np.array([0, 0, 0, 0, 0, 1, 1])
    g = gaps(s, t, 180 * US, now_us=1000 * US)
    assert g.series.tolist() == [0, 1]
    assert (g.start_us / US).tolist() == [120.0, 60.0]
    assert g.end_us[0] == 900 * US and g.end_us[1] == -1
    assert g.peak.tolist() == [780.0, 940.0]


def test_a_removed_device_is_silent_only_until_it_was_removed():
    g = gaps(np.zeros(2, dtype=np.int64), np.array([0, 60]) * US, 180 * US, now_us=10_000 * US, end_us=5_000 * US)
    assert g.end_us.tolist() == [5_000 * US] and g.peak.tolist() == [4940.0]
