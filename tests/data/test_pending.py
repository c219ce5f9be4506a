"""Work being prepared beside the store: recorded, updated, cleared; a dead worker shows as failed."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sitetwin.data.pending import clear_pending, mark_pending, pending_path, read_pending, update_pending


def test_work_is_marked_updated_and_cleared(tmp_path):
    db = tmp_path / "site.duckdb"
    assert read_pending(db) == []
    mark_pending(db, "vision", "detections and hazards", pages=("/hazards", "/panoramas"))
    update_pending(db, "vision", state="running", message="training: epoch 3 of 35", progress=3 / 35)
    [item] = read_pending(db)
    assert (item.key, item.state, item.message) == ("vision", "running", "training: epoch 3 of 35")
    assert item.progress == pytest.approx(3 / 35)
    assert item.concerns("/hazards") and item.concerns("/panoramas") and not item.concerns("/progress")
    assert pending_path(db).parent == tmp_path / "site.duckdb.cache"
    clear_pending(db, "vision")
    assert read_pending(db) == []


def test_work_for_every_page_concerns_every_page_and_updates_of_unknown_work_do_nothing(tmp_path):
    db = tmp_path / "site.duckdb"
    mark_pending(db, "scores", "risk scores")
    update_pending(db, "nothing-like-it", state="running")
    [item] = read_pending(db)
    assert item.concerns("/") and item.concerns("/portfolio") and item.state == "waiting"
    with pytest.raises(ValueError, match="state 'sleeping'"):
        update_pending(db, "scores", state="sleeping")


def test_running_work_whose_process_is_gone_reads_as_failed_with_its_log(tmp_path):
    db = tmp_path / "site.duckdb"
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True)
    mark_pending(db, "vision", "detections", state="running", pid=int(finished.stdout), log=tmp_path / "bg.log")
    [item] = read_pending(db)
    assert item.state == "failed" and str(tmp_path / "bg.log") in item.message


def test_a_torn_or_foreign_file_reads_as_nothing_pending(tmp_path):
    db = tmp_path / "site.duckdb"
    pending_path(db).parent.mkdir(parents=True)
    pending_path(db).write_text('{"vision": {"key": "vis')
    assert read_pending(db) == []
    pending_path(db).write_text("[1, 2]")
    assert read_pending(db) == []
