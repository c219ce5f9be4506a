"""The demo site, stage by stage: a generated building and everything the twin does with it.

Each stage is a function ``run(ctx: DemoContext) -> dict`` (facts to show) in a module here;
the stages run in the order of ``STAGES`` (``sitetwin.app.demo`` runs them) and pass what
they made to later stages through ``ctx.results`` or the store. Each opens the store only
while it writes, so that a slow stage can run beside the workbench: stages marked ``slow``
do, when the demo opens the workbench, and report how far along they are through
``ctx.progress``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sitetwin.synth.demo import model, oversight, panoramas, sensors, surveys, vision, works

DEMO_SITE = "DEMO"
# The story: the building's schedule began on the Monday about this many days before the
# demo's "today", so the last survey is recent and the sensors' week ends today.
SCHEDULE_DAYS_BEFORE_TODAY = 102


def _quiet(message: str, share: float | None = None) -> None:
    """The progress hook of a stage nobody watches."""


@dataclass
class DemoContext:
    db: Path                      # the store file; stages open it themselves, briefly
    workdir: Path                 # where generated files go
    site_code: str = DEMO_SITE
    seed: int = 0
    results: dict[str, Any] = field(default_factory=dict)   # what earlier stages made (ids, paths)
    today: dt.date = field(default_factory=dt.date.today)   # the demo's "now": every stage dates from it
    # how far along the running stage is: (what it is doing, share done 0-1 or None)
    progress: Callable[[str, float | None], None] = _quiet

    @property
    def schedule_start(self) -> dt.date:
        """First day of the demo building's schedule: a Monday, about 102 days before today."""
        day = self.today - dt.timedelta(days=SCHEDULE_DAYS_BEFORE_TODAY)
        return day - dt.timedelta(days=day.weekday())

    def now(self) -> dt.datetime:
        """Noon of the demo's today (naive, local to the site)."""
        return dt.datetime.combine(self.today, dt.time(12, 0))


@dataclass(frozen=True)
class Stage:
    name: str
    run: Callable[[DemoContext], dict[str, Any] | None]
    label: str                        # what it makes, for people ("detections and hazards")
    slow: bool = False                # minutes, not seconds: may run while the workbench is open
    pages: tuple[str, ...] = ()       # the workbench pages that show what it makes


# In order: each stage may use what the earlier ones made. The quick ones come first, so the
# workbench can open on them while the slow ones finish.
STAGES: tuple[Stage, ...] = (
    Stage("model", model.run, "the design model and its schedule"),
    Stage("surveys", surveys.run, "scan surveys, deviation and progress"),
    Stage("panoramas", panoramas.run, "posed panoramas"),       # at the survey epochs, from the scan stations
    Stage("sensors", sensors.run, "sensor data and warnings"),
    Stage("works", works.run, "the register of dangerous works", pages=("/works",)),
    Stage("oversight", oversight.run, "the regulators' portfolio, findings and reports"),
    Stage("vision", vision.run, "detections and hazards from the demo detector", slow=True,
          pages=("/", "/panoramas", "/hazards", "/findings", "/portfolio")),
    Stage("scores", oversight.rescore, "today's risk scores with the detector's hazards", slow=True,
          pages=("/portfolio",)),
)

__all__ = ["DEMO_SITE", "STAGES", "DemoContext", "Stage"]
