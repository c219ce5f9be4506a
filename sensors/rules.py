"""Warning rules over time series: statistics and episodes, vectorised over many series at once. Pure numpy.

Every function takes readings of several series concatenated and sorted by (series, time):
``series`` (n,) int, ``t_us`` (n,) int64 UTC microseconds, ``v`` (n,) float64. A statistic is
one value per sample (NaN where it is not defined: outside the rule's hours, too little
history); an *episode* is a run of samples whose statistic is above the rule's lowest
limit. It starts at its first such sample and ends at the first sample back under the limit
(or is open, ``end_us = -1``, when the data end inside it). Its peak grades its severity. Runs
closer than the rule's ``merge_gap_s`` merge into one episode: the wind must stay under the
limit that long before lifting resumes, so gusts around it make one warning, not fifty.

Rolling means are trailing time windows (``(t - window, t]``); a mean needs samples that span
at least half its window. Noise uses the energy mean (Leq = 10 log10 mean 10^(L/10)). A rate
is the change over the trailing window, per minute, compared by size. Daily means are per
calendar day in the site's timezone; their episodes run from local midnight to midnight.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sitetwin.sensors.config import Rule

US_PER_S = 1_000_000


@dataclass(frozen=True)
class Episodes:
    """Episodes found in many series: all arrays (m,)."""

    series: np.ndarray      # int, series index
    start_us: np.ndarray    # int64
    end_us: np.ndarray      # int64, -1 while open
    peak: np.ndarray        # float64, largest statistic in the episode (largest size for rates)
    severity: np.ndarray    # object: low | medium | high | critical
    limit: np.ndarray       # float64, the limit of that severity

    def __len__(self) -> int:
        return int(len(self.series))


def empty_episodes() -> Episodes:
    z = np.zeros(0, dtype=np.int64)
    return Episodes(z, z, z, np.zeros(0), np.zeros(0, dtype=object), np.zeros(0))


def _keys(series: np.ndarray, t_us: np.ndarray, window_us: int) -> tuple[np.ndarray, int]:
    """Monotone int64 keys (series, time) with room for a window between series."""
    t0 = int(t_us.min())
    span = int(t_us.max()) - t0 + window_us + 1
    return series.astype(np.int64) * span + (t_us - t0), span


def window_start(series: np.ndarray, t_us: np.ndarray, window_us: int) -> np.ndarray:
    """(n,) index of the first sample of the same series with time > t - window (trailing window)."""
    if len(t_us) == 0:
        return np.zeros(0, dtype=np.int64)
    keys, _ = _keys(series, t_us, window_us)
    return np.searchsorted(keys, keys - window_us, side="right")


def rolling_mean(series, t_us, v, window_s: float, *, energy: bool = False, min_span: float = 0.5) -> np.ndarray:
    """Trailing time-window mean (or energy mean of decibels) per sample; NaN with too little history."""
    series, t_us, v = _arrays(series, t_us, v)
    if len(v) == 0:
        return np.zeros(0)
    w = int(window_s * US_PER_S)
    lo = window_start(series, t_us, w)
    x = np.power(10.0, v / 10.0) if energy else v
    csum = np.concatenate([[0.0], np.cumsum(x)])
    idx = np.arange(len(v))
    mean = (csum[idx + 1] - csum[lo]) / (idx + 1 - lo)
    if energy:
        mean = 10.0 * np.log10(mean)
    covered = (t_us - t_us[lo]) >= min_span * w
    return np.where(covered, mean, np.nan)


def rate_per_min(series, t_us, v, window_s: float, *, min_span: float = 0.5) -> np.ndarray:
    """Change over the trailing window per minute (signed); NaN with too little history."""
    series, t_us, v = _arrays(series, t_us, v)
    if len(v) == 0:
        return np.zeros(0)
    w = int(window_s * US_PER_S)
    lo = window_start(series, t_us, w)
    dt_min = (t_us - t_us[lo]) / (60.0 * US_PER_S)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = (v - v[lo]) / dt_min
    return np.where((t_us - t_us[lo]) >= min_span * w, rate, np.nan)


def local_hours(t_us: np.ndarray, timezone: str) -> np.ndarray:
    """(n,) float local hour of day (0..24) in ``timezone``."""
    import pandas as pd

    if len(t_us) == 0:
        return np.zeros(0)
    local = pd.DatetimeIndex(pd.to_datetime(np.asarray(t_us, dtype=np.int64), unit="us", utc=True)).tz_convert(timezone)
    return local.hour.to_numpy() + local.minute.to_numpy() / 60.0 + local.second.to_numpy() / 3600.0


def in_hours(t_us: np.ndarray, hours: tuple[int, int], timezone: str) -> np.ndarray:
    """(n,) bool: local time within [from, to) hours, wrapping past midnight when from > to."""
    h = local_hours(t_us, timezone)
    a, b = hours
    return (h >= a) & (h < b) if a < b else (h >= a) | (h < b)


def local_day_bounds(t_us: np.ndarray, timezone: str) -> tuple[np.ndarray, np.ndarray]:
    """(n,) UTC microseconds of the local midnights that start and end each sample's day."""
    import pandas as pd

    if len(t_us) == 0:
        z = np.zeros(0, dtype=np.int64)
        return z, z
    utc = pd.DatetimeIndex(pd.to_datetime(np.asarray(t_us, dtype=np.int64), unit="us", utc=True)).as_unit("us")
    start = utc.tz_convert(timezone).normalize()
    end = (start.tz_localize(None) + pd.Timedelta(days=1)).tz_localize(timezone, ambiguous=False,
                                                                     nonexistent="shift_forward")
    return start.as_unit("us").asi8, end.as_unit("us").asi8


def daily_means(series, t_us, v, timezone: str):
    """Mean per (series, local day).

    Returns series (d,), day_start_us (d,), day_end_us (d,), mean (d,), count (d,) and, per
    sample, the index of its day (n,).
    """
    series, t_us, v = _arrays(series, t_us, v)
    if len(v) == 0:
        z = np.zeros(0, dtype=np.int64)
        return z, z, z, np.zeros(0), z, z
    start, end = local_day_bounds(t_us, timezone)
    keys = np.stack([series, start])
    uniq, inverse, counts = np.unique(keys, axis=1, return_inverse=True, return_counts=True)
    inverse = inverse.ravel()
    sums = np.bincount(inverse, weights=v, minlength=uniq.shape[1])
    ends = np.zeros(uniq.shape[1], dtype=np.int64)
    ends[inverse] = end
    return uniq[0], uniq[1], ends, sums / counts, counts, inverse


def _window(rule: Rule) -> float:
    assert rule.window_s is not None, f"rule {rule.kind}: no window_s"   # the limits file requires one here
    return rule.window_s


def statistic(rule: Rule, series, t_us, v, timezone: str) -> np.ndarray:
    """The rule's statistic per sample (NaN where undefined or outside its hours); not for daily means."""
    series, t_us, v = _arrays(series, t_us, v)
    if rule.statistic == "value":
        s = v.copy()
    elif rule.statistic == "rolling_mean":
        s = rolling_mean(series, t_us, v, _window(rule))
    elif rule.statistic == "rolling_leq":
        s = rolling_mean(series, t_us, v, _window(rule), energy=True)
    elif rule.statistic == "rate":
        s = np.abs(rate_per_min(series, t_us, v, _window(rule)))
    else:
        raise ValueError(f"rule {rule.kind}: statistic {rule.statistic} is computed per day, use daily_episodes")
    if rule.hours is not None and len(s):
        s = np.where(in_hours(t_us, rule.hours, timezone), s, np.nan)
    return s


def episodes(series, t_us, s, rule: Rule, *, t_end_us=None, now_us: int | None = None) -> Episodes:
    """Runs of samples with ``s`` above the rule's lowest limit, graded by their peak.

    Without ``t_end_us`` an episode ends at the next sample of its series (open after the
    last). With it (one end per sample, e.g. day ends) an episode ends at its last sample's
    end, open while that end is after ``now_us``.
    """
    series = np.asarray(series, dtype=np.int64)
    t_us = np.asarray(t_us, dtype=np.int64)
    s = np.asarray(s, dtype=np.float64)
    n = len(s)
    if n == 0:
        return empty_episodes()
    flag = np.nan_to_num(s, nan=-np.inf) > rule.lowest_limit
    if not flag.any():
        return empty_episodes()
    new_series = np.ones(n, dtype=bool)
    new_series[1:] = series[1:] != series[:-1]
    prev_flag = np.zeros(n, dtype=bool)
    prev_flag[1:] = flag[:-1]
    starts = np.flatnonzero(flag & (new_series | ~prev_flag))
    last_of_series = np.ones(n, dtype=bool)
    last_of_series[:-1] = new_series[1:]
    next_flag = np.zeros(n, dtype=bool)
    next_flag[:-1] = flag[1:]
    ends = np.flatnonzero(flag & (last_of_series | ~next_flag))   # last flagged index of each run
    peak = np.maximum.reduceat(np.where(flag, s, -np.inf), starts)
    # reduceat runs to the next start; samples between a run's end and the next start are unflagged (-inf)
    if t_end_us is None:
        has_next = ~last_of_series[ends]
        end_us = np.where(has_next, t_us[np.minimum(ends + 1, n - 1)], -1)
    else:
        t_end = np.asarray(t_end_us, dtype=np.int64)
        end_us = t_end[ends]
        if now_us is not None:
            end_us = np.where(end_us > now_us, -1, end_us)
    start_us = t_us[starts]
    run_series = series[starts]
    if rule.merge_gap_s and len(starts) > 1:
        # a run that starts within merge_gap_s of the previous run's end continues it
        gap_ok = (run_series[1:] == run_series[:-1]) & (end_us[:-1] >= 0) & \
                 ((start_us[1:] - end_us[:-1]) < rule.merge_gap_s * US_PER_S)
        first = np.flatnonzero(np.concatenate([[True], ~gap_ok]))
        last = np.concatenate([first[1:] - 1, [len(starts) - 1]])
        peak = np.maximum.reduceat(peak, first)
        start_us, run_series, end_us = start_us[first], run_series[first], end_us[last]
    keep = np.ones(len(start_us), dtype=bool)
    if rule.min_duration_s:
        closed = end_us >= 0
        keep &= ~closed | ((end_us - start_us) >= rule.min_duration_s * US_PER_S)
    limits = np.array([lv[0] for lv in rule.levels])
    sev_names = np.array([lv[1] for lv in rule.levels], dtype=object)
    level = np.clip(np.searchsorted(limits, peak, side="left") - 1, 0, len(limits) - 1)
    return Episodes(run_series[keep], start_us[keep], end_us[keep], peak[keep], sev_names[level][keep],
                    limits[level][keep])


def rule_episodes(rule: Rule, series, t_us, v, timezone: str, *, now_us: int | None = None,
                  valid_from_us=None) -> Episodes:
    """Statistic and episodes of one rule over many series.

    ``valid_from_us`` (per sample, or a scalar) masks samples before it: their statistic is
    history for later samples, not something to start an episode on.
    """
    series, t_us, v = _arrays(series, t_us, v)
    if rule.statistic == "daily_mean":
        d_series, d_start, d_end, d_mean, _, day_of = daily_means(series, t_us, v, timezone)
        if valid_from_us is not None and len(d_series):
            vf = np.broadcast_to(np.asarray(valid_from_us, dtype=np.int64), t_us.shape)
            day_from = np.full(len(d_series), np.iinfo(np.int64).min, dtype=np.int64)
            np.maximum.at(day_from, day_of, vf)
            d_mean = np.where(d_start >= day_from, d_mean, np.nan)
        return episodes(d_series, d_start, d_mean, rule, t_end_us=d_end, now_us=now_us)
    s = statistic(rule, series, t_us, v, timezone)
    if valid_from_us is not None:
        s = np.where(t_us >= np.asarray(valid_from_us, dtype=np.int64), s, np.nan)
    return episodes(series, t_us, s, rule)


def gaps(series, t_us, threshold_us, *, now_us: int, end_us=None) -> Episodes:
    """Silences longer than ``threshold_us`` (per series, scalar or (k,)) between samples, and since the last one.

    ``series``/``t_us`` are one series' sample times (sorted); ``end_us`` (per series, or
    None) stops looking after a device was removed. Peak and limit are in seconds.
    """
    series = np.asarray(series, dtype=np.int64)
    t_us = np.asarray(t_us, dtype=np.int64)
    n = len(t_us)
    if n == 0:
        return empty_episodes()
    nseries = max(int(series.max()) + 1, np.size(threshold_us), 0 if end_us is None else np.size(end_us))
    thr = np.broadcast_to(np.asarray(threshold_us, dtype=np.int64), (nseries,))
    stop = np.full(nseries, now_us, dtype=np.int64)
    if end_us is not None:
        stop = np.minimum(stop, np.broadcast_to(np.asarray(end_us, dtype=np.int64), (nseries,)))
    same = series[1:] == series[:-1]
    dt = np.diff(t_us)
    inner = np.flatnonzero(same & (dt > thr[series[:-1]]))
    last = np.flatnonzero(np.append(~same, True))
    silent = stop[series[last]] - t_us[last]
    tail = last[silent > thr[series[last]]]
    start = np.concatenate([t_us[inner], t_us[tail]])
    end = np.concatenate([t_us[inner + 1], np.where(stop[series[tail]] < now_us, stop[series[tail]], -1)])
    length = np.concatenate([dt[inner], stop[series[tail]] - t_us[tail]]) / US_PER_S
    which = np.concatenate([series[inner], series[tail]])
    order = np.lexsort((start, which))
    limit = thr[which] / US_PER_S
    return Episodes(which[order], start[order], end[order], length[order], np.zeros(len(order), dtype=object),
                    limit[order])


def _arrays(series, t_us, v):
    return (np.asarray(series, dtype=np.int64), np.asarray(t_us, dtype=np.int64), np.asarray(v, dtype=np.float64))
