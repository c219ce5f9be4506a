"""``sitetwin demo``: build the built-in demo site, stage by stage, into a fresh store.

The stages live in ``sitetwin.synth.demo`` (``STAGES``); they run in order and share what
they made through ``ctx.results`` and the store. One command always shows the whole
product.

With ``background=True`` (``sitetwin demo --serve``) the quick stages run here and the slow
ones (training the demo detector takes minutes) in a second process, so that the workbench
opens on what is ready. The slow stages are recorded as pending beside the store
(``sitetwin.data.pending``) with their progress, and the pages that will show their results
say "being prepared" until they land.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sitetwin.data.errors import SitetwinError
from sitetwin.data.i18n import N_
from sitetwin.data.pending import clear_pending, mark_pending, update_pending
from sitetwin.synth.demo import STAGES, DemoContext, Stage


@dataclass
class Background:
    """The slow stages running in a second process."""

    process: subprocess.Popen
    stages: tuple[str, ...]
    log: Path

    def stop(self, db: str | Path) -> None:
        """Stop it (the workbench is closing) and say so where the pages read it."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for name in self.stages:
            update_pending(db, name, state="failed", message="stopped with the workbench; run `sitetwin demo` again")


def run_demo(db: str | Path, workdir: str | Path, *, fresh: bool = True, stages: list[str] | None = None,
             seed: int = 0, today: dt.date | None = None, background: bool = False) -> dict[str, Any]:
    """Run the demo stages (all, or those named) and return a summary.

    ``today`` pins the demo's date (default: the real date), so a run can be repeated exactly.
    With ``background``, slow stages are started in a second process instead (the summary's
    ``background`` says which, and where their log is); the caller owns that process
    (``summary["process"]``).
    """
    from sitetwin.data.store import cache_dir_for, open_store

    db, workdir = Path(db), Path(workdir)
    chosen = _chosen(stages)
    if fresh:
        for path in (db, db.with_name(db.name + ".wal")):
            path.unlink(missing_ok=True)
        shutil.rmtree(cache_dir_for(db), ignore_errors=True)
        shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True, exist_ok=True)
    open_store(db).close()   # create and migrate
    ctx = DemoContext(db=db, workdir=workdir, seed=seed, today=today or dt.date.today())
    now = [s for s in chosen if not (background and s.slow)]
    later = [s for s in chosen if background and s.slow]
    summary: dict[str, Any] = {"db": str(db), "workdir": str(workdir), "site_code": ctx.site_code,
                               "today": ctx.today.isoformat(), "stages": []}
    for stage in now:
        summary["stages"].append(_run_stage(ctx, stage))
    if later:
        bg = _start_background(ctx, later)
        summary["background"] = {"stages": list(bg.stages), "log": str(bg.log), "pid": bg.process.pid}
        summary["process"] = bg
    return summary


def _chosen(names: list[str] | None) -> list[Stage]:
    if names:
        unknown = sorted(set(names) - {s.name for s in STAGES})
        if unknown:
            raise SitetwinError(N_("no demo stage {names} (stages: {stages})"), names=", ".join(unknown),
                                stages=", ".join(s.name for s in STAGES))
    return [s for s in STAGES if names is None or s.name in names]


def _run_stage(ctx: DemoContext, stage: Stage) -> dict[str, Any]:
    """Run one stage, keeping its pending record (when the workbench is waiting for it) up to date."""
    from sitetwin.data.clikit import err_console

    def progress(message: str, share: float | None = None) -> None:
        update_pending(ctx.db, stage.name, message=message, progress=share)

    ctx.progress = progress
    update_pending(ctx.db, stage.name, state="running", message="started")
    started = time.perf_counter()
    try:
        with err_console().status(f"demo: {stage.name} ..."):
            facts = stage.run(ctx) or {}
    except BaseException as exc:
        update_pending(ctx.db, stage.name, state="failed", message=f"{type(exc).__name__}: {exc}"[:500])
        raise
    clear_pending(ctx.db, stage.name)
    return {"name": stage.name, "seconds": round(time.perf_counter() - started, 2), "facts": facts}


def _start_background(ctx: DemoContext, stages: list[Stage]) -> Background:
    """The slow stages, in order, in a second ``sitetwin demo`` on the same store and date."""
    log = ctx.workdir / "demo-background.log"
    for s in stages:
        mark_pending(ctx.db, s.name, s.label, pages=s.pages, state="waiting", message="waiting for its turn",
                     log=log)
    command = [sys.executable, "-m", "sitetwin.app", "demo", "--db", str(ctx.db), "--workdir", str(ctx.workdir),
               "--no-fresh", "--today", ctx.today.isoformat(), "--seed", str(ctx.seed),
               "--stages", ",".join(s.name for s in stages), "--json"]
    with open(log, "ab") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    for s in stages:
        update_pending(ctx.db, s.name, pid=process.pid)
    return Background(process, tuple(s.name for s in stages), log)
