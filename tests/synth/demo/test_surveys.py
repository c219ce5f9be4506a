"""The demo's "surveys" stage: three epochs scanned, registered automatically and analysed."""

from __future__ import annotations

import datetime as dt

import pytest

from sitetwin.data.store import open_store


@pytest.mark.slow
def test_the_surveys_stage_adds_three_registered_epochs_with_progress(tmp_path):
    from sitetwin.app.demo import run_demo
    from sitetwin.synth.demo.surveys import demo_epochs
    from sitetwin.twin.progress import progress_report
    from sitetwin.twin.survey_store import list_surveys

    summary = run_demo(tmp_path / "demo.duckdb", tmp_path / "site", stages=["model", "surveys"])
    stage = next(s for s in summary["stages"] if s["name"] == "surveys")
    assert stage["facts"]["surveys"] == 3 and stage["facts"]["rmse_mm"] < 4.0
    assert stage["seconds"] < 90.0 * 2          # the budget is 90 s on a quiet machine
    with open_store(tmp_path / "demo.duckdb", read_only=True) as store:
        surveys = list_surveys(store)
        report = progress_report(store)
        epochs = demo_epochs(store, "DEMO")
    assert [s["epoch"] for s in surveys] == epochs
    assert epochs[-1] <= dt.date.fromisoformat(summary["today"])
    assert all(s["fitness"] > 0.5 for s in surveys)
    assert surveys[0]["built"] < surveys[1]["built"] < surveys[2]["built"]
    assert surveys[-1]["out_of_tolerance"] >= 3             # the moved elements
    assert report.late_elements
