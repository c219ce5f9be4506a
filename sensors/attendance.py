"""Real-name attendance, pseudonymised: who is on site, headcount by time, untrained workers.

Gate readers send entry and exit events (``in``/``out``) with a pseudonymous worker id, the
worker's trade and employer, and whether their safety training is complete and valid. A
national id never enters the store: gateways hash it with :func:`pseudonym` and a site key
first.

Presence is rebuilt from events: an ``in`` opens a stay and the next ``out`` closes it. A
second ``in`` without an ``out`` (a missed exit) closes the first stay at the second entry;
an ``out`` with no stay open is ignored; a stay with no ``out`` counts for at most
``max_shift_h`` hours. A worker on site without valid training is a warning
(``untrained_worker``) for the length of the stay, and becomes a finding.

Whether a worker is trained comes from the site's training records when the worker has any
(``sensors.training.effective_trained``: a passed record valid on the day of the event), else
from the gate's own flag on the event.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sitetwin.data.store import Store
from sitetwin.sensors.batch import from_us, to_us

US_PER_H = 3600 * 1_000_000


def pseudonym(real_id: str, key: bytes | str) -> str:
    """A stable pseudonym for a worker's real id (HMAC-SHA256 with the site's secret key)."""
    if isinstance(key, str):
        key = key.encode("utf-8")
    if not key:
        raise ValueError("a pseudonym needs a non-empty secret key")
    return "W-" + hmac.new(key, real_id.strip().encode("utf-8"), hashlib.sha256).hexdigest()[:16]


@dataclass(frozen=True)
class Stays:
    """Stays on site: all arrays (m,). ``out_us`` is -1 while the worker is still on site."""

    worker_id: np.ndarray
    device_id: np.ndarray
    trade: np.ndarray
    employer: np.ndarray
    trained: np.ndarray
    in_us: np.ndarray
    out_us: np.ndarray
    assumed_out: np.ndarray    # bool: closed by the max-shift rule or a second entry, not by an exit

    def __len__(self) -> int:
        return int(len(self.in_us))


def stays(worker_id, event, t_us, trained, *, device_id=None, trade=None, employer=None, max_shift_h: float = 16.0,
          now_us: int) -> Stays:
    """Rebuild stays from events (any order). Pure; see the module docstring for the rules."""
    worker_id = np.asarray(worker_id, dtype=object)
    n = len(worker_id)
    event = np.asarray(event, dtype=object)
    t_us = np.asarray(t_us, dtype=np.int64)
    trained = np.asarray(trained, dtype=bool)
    device_id = np.asarray(device_id if device_id is not None else [None] * n, dtype=object)
    trade = np.asarray(trade if trade is not None else [None] * n, dtype=object)
    employer = np.asarray(employer if employer is not None else [None] * n, dtype=object)
    max_shift = int(max_shift_h * US_PER_H)
    order = np.lexsort((np.where(event == "in", 0, 1), t_us, worker_id.astype(str)))
    out: dict[str, list] = {k: [] for k in ("worker_id", "device_id", "trade", "employer", "trained", "in_us",
                                            "out_us", "assumed_out")}
    open_row: dict | None = None

    def close(row: dict, at: int, assumed: bool) -> None:
        for k in ("worker_id", "device_id", "trade", "employer", "trained", "in_us"):
            out[k].append(row[k])
        out["out_us"].append(at)
        out["assumed_out"].append(assumed)

    current = None
    for i in order.tolist():
        w = worker_id[i]
        if w != current:
            if open_row is not None:
                _finish(open_row, close, max_shift, now_us)
            open_row, current = None, w
        t = int(t_us[i])
        if event[i] == "in":
            if open_row is not None:
                close(open_row, min(t, open_row["in_us"] + max_shift), True)
            open_row = {"worker_id": w, "device_id": device_id[i], "trade": trade[i], "employer": employer[i],
                        "trained": bool(trained[i]), "in_us": t}
        elif open_row is not None:
            if t - open_row["in_us"] > max_shift:
                close(open_row, open_row["in_us"] + max_shift, True)
            else:
                close(open_row, t, False)
            open_row = None
    if open_row is not None:
        _finish(open_row, close, max_shift, now_us)
    return Stays(**{k: np.asarray(v, dtype=np.int64 if k in ("in_us", "out_us") else
                                  (bool if k in ("trained", "assumed_out") else object)) for k, v in out.items()})


def _finish(row: dict, close, max_shift: int, now_us: int) -> None:
    if now_us - row["in_us"] > max_shift:
        close(row, row["in_us"] + max_shift, True)
    else:
        close(row, -1, False)


def headcount_at(s: Stays, times_us) -> tuple[np.ndarray, np.ndarray]:
    """(k,) workers on site and (k,) untrained workers on site at each time."""
    times = np.asarray(times_us, dtype=np.int64)
    ends = np.where(s.out_us < 0, np.iinfo(np.int64).max, s.out_us)

    def count(mask):
        starts = np.sort(s.in_us[mask])
        stops = np.sort(ends[mask])
        return np.searchsorted(starts, times, side="right") - np.searchsorted(stops, times, side="right")

    return count(np.ones(len(s), dtype=bool)), count(~s.trained)


def site_stays(store: Store, site_code: str, *, start: dt.datetime | None = None, end: dt.datetime | None = None,
               max_shift_h: float = 16.0, now: dt.datetime | None = None) -> Stays:
    """Stays of a site's workers overlapping [start, end] (UTC), from the stored events."""
    from sitetwin.data.clock import utcnow

    sql = 'SELECT worker_id, event, epoch_us("at") AS t, trained, device_id, trade, employer FROM attendance_events ' \
          'WHERE site_code = ?'
    params: list = [site_code]
    if start is not None:
        sql += ' AND "at" >= ?'
        params.append(start - dt.timedelta(hours=max_shift_h))
    if end is not None:
        sql += ' AND "at" <= ?'
        params.append(end)
    rows = store.execute(sql, params)
    cols: list[Sequence[Any]] = list(zip(*rows)) if rows else [[] for _ in range(7)]
    if rows:
        from sitetwin.sensors.training import effective_trained

        cols[3] = effective_trained(store, site_code, cols[0], cols[2], cols[3]).tolist()
    now_us = to_us(now or utcnow())
    result = stays(cols[0], cols[1], cols[2], cols[3], device_id=cols[4], trade=cols[5], employer=cols[6],
                   max_shift_h=max_shift_h, now_us=now_us)
    if start is None:
        return result
    keep = (result.out_us < 0) | (result.out_us >= to_us(start))
    return Stays(**{k: getattr(result, k)[keep] for k in result.__dataclass_fields__})


def headcount(store: Store, site_code: str, *, start: dt.datetime, end: dt.datetime, step_s: float = 900.0,
              now: dt.datetime | None = None, max_shift_h: float | None = None):
    """Workers on site (and untrained ones) every ``step_s`` from start to end: a pandas DataFrame.

    Columns: at (UTC), on_site, untrained. Times in UTC; convert with the site's timezone to show.
    """
    import pandas as pd

    from sitetwin.sensors.limits import site_limits

    if end <= start:
        raise ValueError(f"headcount: end {end} must be after start {start}")
    if max_shift_h is None:
        max_shift_h = site_limits(store, site_code).max_shift_h
    s = site_stays(store, site_code, start=start, end=end, max_shift_h=max_shift_h, now=now or end)
    times = np.arange(to_us(start), to_us(end) + 1, int(step_s * 1_000_000), dtype=np.int64)
    on_site, untrained = headcount_at(s, times)
    return pd.DataFrame({"at": [from_us(t) for t in times.tolist()], "on_site": on_site, "untrained": untrained})


def on_site(store: Store, site_code: str, *, at: dt.datetime, max_shift_h: float | None = None) -> list[dict]:
    """Who is on site at ``at``: worker pseudonym, trade, employer, trained, since (UTC)."""
    from sitetwin.sensors.limits import site_limits

    if max_shift_h is None:
        max_shift_h = site_limits(store, site_code).max_shift_h
    s = site_stays(store, site_code, start=at, end=at, max_shift_h=max_shift_h, now=at)
    t = to_us(at)
    here = (s.in_us <= t) & ((s.out_us < 0) | (s.out_us > t))
    return [{"worker_id": s.worker_id[i], "trade": s.trade[i], "employer": s.employer[i], "trained": bool(s.trained[i]),
             "since": from_us(int(s.in_us[i])), "gate": s.device_id[i]} for i in np.flatnonzero(here)]
