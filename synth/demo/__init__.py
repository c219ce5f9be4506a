"""The demo site, stage by stage: a generated building and everything the twin does with it.

Each stage is a module here with ``run(ctx: DemoContext) -> dict`` (facts to show); the
stages run in the order of ``STAGES`` (``sitetwin.app.demo`` runs them) and pass what they
made to later stages through ``ctx.results``. Each opens the store briefly itself.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sitetwin.synth.demo import model, oversight, panoramas, sensors, surveys, vision

DEMO_SITE = "DEMO"
# The story: the building's schedule began on the Monday about this many days before the
# demo's "today", so the last survey is recent and the sensors' week ends today.
SCHEDULE_DAYS_BEFORE_TODAY = 102


@dataclass
class DemoContext:
    db: Path                      # the store file; stages open it themselves, briefly
    workdir: Path                 # where generated files go
    site_code: str = DEMO_SITE
    seed: int = 0
    results: dict[str, Any] = field(default_factory=dict)   # what earlier stages made (ids, paths)
    today: dt.date = field(default_factory=dt.date.today)   # the demo's "now": every stage dates from it

    @property
    def schedule_start(self) -> dt.date:
        """First day of the demo building's schedule: a Monday, about 102 days before today."""
        day = self.today - dt.timedelta(days=SCHEDULE_DAYS_BEFORE_TODAY)
        return day - dt.timedelta(days=day.weekday())

    def now(self) -> dt.datetime:
        """Noon of the demo's today (naive, local to the site)."""
        return dt.datetime.combine(self.today, dt.time(12, 0))


Stage = Callable[[DemoContext], "dict[str, Any] | None"]

# In order: each stage may use what the earlier ones made.
STAGES: list[tuple[str, Stage]] = [
    ("model", model.run),
    ("surveys", surveys.run),
    ("panoramas", panoramas.run),     # at the survey epochs, from the scan stations
    ("sensors", sensors.run),
    ("vision", vision.run),
    ("oversight", oversight.run),     # last: scores what every other stage made
]

__all__ = ["DEMO_SITE", "DemoContext", "STAGES", "Stage"]
