"""``sitetwin demo``: build the built-in demo site, stage by stage, into a fresh store.

The stages live in ``sitetwin.synth.demo`` (``run(ctx) -> facts``, listed in ``STAGES``);
they run in order and share what they made through ``ctx.results``. One command always
shows the whole product.
"""

from __future__ import annotations

import datetime as dt
import shutil
import time
from pathlib import Path

from sitetwin.data.errors import SitetwinError
from sitetwin.synth.demo import STAGES, DemoContext


def run_demo(db: str | Path, workdir: str | Path, *, fresh: bool = True, stages: list[str] | None = None,
             seed: int = 0, today: dt.date | None = None) -> dict:
    """Run the demo stages (all, or those named) and return a summary.

    ``today`` pins the demo's date (default: the real date), so a run can be repeated exactly.
    """
    from sitetwin.data.clikit import err_console
    from sitetwin.data.store import cache_dir_for, open_store

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
    for name, stage in chosen:
        started = time.perf_counter()
        with console.status(f"demo: {name} ..."):
            facts = stage(ctx) or {}
        summary["stages"].append({"name": name, "seconds": round(time.perf_counter() - started, 2), "facts": facts})
    return summary
