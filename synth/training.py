"""Made-up safety education records (安全教育培训) for the demo week's workers, in step with its gate flags.

Every worker of the week (``synth.sensor_feeds.demo_week``) has passed the three-level safety
education (三级安全教育) some weeks before; crane operators, electricians and scaffolders also hold a
special course (专项); a few failed a pre-job exam once and passed the retake. The scripted
untrained workers keep the story the gate tells: the first one's training lapses after the week's
second day (the gate calls them untrained from the third), the second has no record at all, so
the gate's own flag (untrained on one day) still counts for them.

>>> from sitetwin.synth.sensor_feeds import demo_week
>>> week = demo_week(start=dt.date(2026, 3, 9), timezone="Asia/Shanghai", devices=roles)   # doctest: +SKIP
>>> records = demo_training(week.events, site_code="DEMO", week_start=dt.date(2026, 3, 9),
...                         untrained=week.incidents["untrained_workers"])                   # doctest: +SKIP
>>> records.to_csv("training.csv", index=False)   # sitetwin training import training.csv   # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np

# trade (synth.sensor_feeds.WORKFORCE) -> the special course (专项) it needs
SPECIAL_TRADES = {"crane_operator": "塔式起重机司机及信号司索专项培训", "electrical": "施工现场临时用电专项培训",
                  "scaffolding": "脚手架搭拆专项培训"}
PROVIDER = "项目安全教育在线平台"


def demo_training(events, *, site_code: str, week_start: dt.date, untrained: Sequence[str] = (), seed: int = 0):
    """Training records (a pandas DataFrame of ``sensors.training.FIELDS``) for the workers in ``events``
    (the week's gate events: worker_id, trade). ``untrained``: the week's scripted untrained workers
    (``demo_week``'s incidents): the first lapses after day 1, the others get no record."""
    import pandas as pd

    rng = np.random.default_rng([seed, 16])
    first = events.drop_duplicates("worker_id").sort_values("worker_id")
    rows: list[dict] = []
    lapsing = untrained[0] if untrained else None
    for worker, trade in zip(first["worker_id"], first["trade"]):
        if worker in untrained and worker != lapsing:
            continue
        if worker == lapsing:
            done = week_start - dt.timedelta(days=364)
            rows.append(_row(site_code, worker, "入场三级安全教育", "三级安全教育", done, 24, 84.0,
                             valid_until=week_start + dt.timedelta(days=1)))
            continue
        done = week_start - dt.timedelta(days=int(rng.integers(14, 120)))
        rows.append(_row(site_code, worker, "入场三级安全教育", "三级安全教育", done, 24,
                         float(rng.integers(70, 99))))
        if rng.random() < 0.08:
            retake = done + dt.timedelta(days=2)
            rows.append(_row(site_code, worker, "岗前安全培训", "岗前", done, 8, float(rng.integers(40, 60))))
            rows.append(_row(site_code, worker, "岗前安全培训", "岗前", retake, 8, float(rng.integers(75, 95))))
        special = SPECIAL_TRADES.get(str(trade or "").lower())
        if special is not None:
            rows.append(_row(site_code, worker, special, "专项", done + dt.timedelta(days=3), 16,
                             float(rng.integers(75, 99))))
    return pd.DataFrame(rows, columns=["site_code", "worker_id", "course", "course_type", "completed_on", "hours",
                                       "score", "passed", "valid_until", "provider"])


def _row(site: str, worker: str, course: str, kind: str, done: dt.date, hours: float, score: float, *,
         valid_until: dt.date | None = None) -> dict:
    return {"site_code": site, "worker_id": worker, "course": course, "course_type": kind,
            "completed_on": done.isoformat(), "hours": hours, "score": score, "passed": None,
            "valid_until": valid_until.isoformat() if valid_until else None, "provider": PROVIDER}
