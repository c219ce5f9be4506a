"""``sitetwin demo``: build the built-in demo site, stage by stage, into a fresh store.

Each capability contributes one stage (``run(ctx) -> facts``) listed in ``STAGES``; stages
run in order and share what they made through ``ctx.results``. One command always shows
the whole product.
"""

from __future__ import annotations

import datetime as dt
import importlib
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from data.errors import SitetwinError

DEMO_SITE = "DEMO"
# The story: the building's schedule began on the Monday about this many days before the
# demo's "today", so the last survey is recent and the sensors' week ends today.
SCHEDULE_DAYS_BEFORE_TODAY = 102

# (name, "module:function"); each function takes a DemoContext and returns a dict of facts to show.
STAGES: list[tuple[str, str]] = [
    ("model", "bim.demo:run"),
    ("surveys", "twin.demo_surveys:run"),
    ("panoramas", "panorama.demo:run"),       # at the survey epochs, from the scan stations
    ("sensors", "sensors.demo:run"),
    ("vision", "vision.demo:run"),
    ("oversight", "oversight.demo:run"),      # last: scores what every other stage made
]


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


def run_demo(db: str | Path, workdir: str | Path, *, fresh: bool = True, stages: list[str] | None = None,
             seed: int = 0, today: dt.date | None = None) -> dict:
    """Run the demo stages (all, or those named) and return a summary.

    ``today`` pins the demo's date (default: the real date), so a run can be repeated exactly.
    """
    from data.clikit import err_console
    from data.store import cache_dir_for, open_store

    db, workdir = Path(db), Path(workdir)
    if fresh:
        for path in (db, db.with_name(db.name + ".wal")):
            path.unlink(missing_ok=True)
        shutil.rmtree(cache_dir_for(db), ignore_errors=True)
        shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True, exist_ok=True)
    open_store(db).close()   # create and migrate
    ctx = DemoContext(db=db, workdir=workdir, seed=seed, today=today or dt.date.today())
    chosen = [s for s in STAGES if stages is None or s[0] in stages]
    if stages:
        unknown = sorted(set(stages) - {name for name, _ in STAGES})
        if unknown:
            raise SitetwinError(f"no demo stage {', '.join(unknown)} (stages: {', '.join(n for n, _ in STAGES)})")
    summary = {"db": str(db), "workdir": str(workdir), "site_code": ctx.site_code, "today": ctx.today.isoformat(),
               "stages": []}
    console = err_console()
    for name, target in chosen:
        module, func = target.split(":")
        started = time.perf_counter()
        with console.status(f"demo: {name} ..."):
            facts = getattr(importlib.import_module(module), func)(ctx) or {}
        summary["stages"].append({"name": name, "seconds": round(time.perf_counter() - started, 2), "facts": facts})
    return summary
