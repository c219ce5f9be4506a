"""The demo runner: slow stages in a second process, recorded as pending for the workbench, stopped with it."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time

import pytest

from sitetwin.app.demo import Background, run_demo
from sitetwin.data.errors import SitetwinError
from sitetwin.data.pending import mark_pending, read_pending
from sitetwin.synth.demo import STAGES

DAY = dt.date(2026, 5, 18)


def test_the_quick_stages_come_first_and_the_slow_ones_say_what_pages_wait_for_them():
    slow = [s.name for s in STAGES if s.slow]
    assert slow == ["vision", "scores"]
    assert [s.name for s in STAGES][-len(slow):] == slow        # nothing quick waits behind a slow stage
    assert all(s.pages and s.label for s in STAGES if s.slow)


def test_an_unknown_stage_is_refused_before_anything_is_deleted(tmp_path):
    db = tmp_path / "keep.duckdb"
    db.write_bytes(b"not touched")
    with pytest.raises(SitetwinError, match="no demo stage nope"):
        run_demo(db, tmp_path / "work", stages=["model", "nope"])
    assert db.read_bytes() == b"not touched"


def test_in_the_background_a_slow_stage_is_pending_while_it_runs_and_gone_when_it_landed(tmp_path):
    db = tmp_path / "demo.duckdb"
    summary = run_demo(db, tmp_path / "work", stages=["model", "scores"], today=DAY, background=True)
    bg = summary.pop("process")
    try:
        assert [s["name"] for s in summary["stages"]] == ["model"]
        assert summary["background"]["stages"] == ["scores"]
        [waiting] = read_pending(db)
        assert waiting.key == "scores" and waiting.pid == bg.process.pid and waiting.concerns("/portfolio")
        assert bg.process.wait(timeout=240) == 0, bg.log.read_text()[-2000:]
    finally:
        bg.stop(db)
    assert read_pending(db) == []                         # landed: the pages show it
    assert '"name": "scores"' in bg.log.read_text()       # the second process's summary is its log


def test_stopping_the_workbench_stops_the_slow_stages_and_says_so(tmp_path):
    db = tmp_path / "demo.duckdb"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    mark_pending(db, "vision", "detections", state="running", pid=sleeper.pid, log=tmp_path / "bg.log")
    started = time.monotonic()
    Background(sleeper, ("vision",), tmp_path / "bg.log").stop(db)
    assert sleeper.poll() is not None and time.monotonic() - started < 15
    [item] = read_pending(db)
    assert item.state == "failed" and "stopped with the workbench" in item.message
