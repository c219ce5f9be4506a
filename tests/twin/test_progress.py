"""Progress across two survey epochs of the demo site against its IFC schedule."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from sitetwin.data.store import copy_store, open_store
from sitetwin.twin.progress import progress_report

EPOCHS = (dt.date(2026, 4, 10), dt.date(2026, 5, 10))


@pytest.fixture(scope="module")
def progress_store(tmp_path_factory, demo_store_path, demo, as_built):
    """The demo store with two epochs added (scanned in the model's own frame: --register none)."""
    from sitetwin.synth import simulate_epoch
    from sitetwin.twin.formats import write_e57
    from sitetwin.twin.survey import add_survey

    folder = tmp_path_factory.mktemp("progress")
    db = copy_store(demo_store_path, folder / demo_store_path.name)
    with open_store(db) as store:
        for i, epoch in enumerate(EPOCHS):
            sim = simulate_epoch(demo.mesh, as_built, epoch, seed=20 + i, points_per_station=20_000)
            path = write_e57(folder / f"e{i}.e57", sim.scans)
            add_survey(store, [path], model_ids=[demo.model_id], epoch=epoch, register="none")
    return db


def test_each_element_is_first_seen_built_at_the_first_epoch_it_stood(progress_store, demo, as_built):
    with open_store(progress_store, read_only=True) as store:
        report = progress_report(store)
    assert [s["epoch"] for s in report.surveys] == list(EPOCHS)
    index = demo.mesh.element_index()
    first = {r["global_id"]: r["first_built_epoch"] for r in report.first_built}
    built1, partial1 = as_built.state(EPOCHS[0])
    built2, partial2 = as_built.state(EPOCHS[1])
    standing1 = built1 & ~partial1
    wrong = 0
    for gid, epoch in first.items():
        e = index[gid]
        assert built2[e], gid                      # nothing is ever seen before it stands
        wrong += epoch == EPOCHS[0] and not built1[e]
    assert wrong == 0
    seen_first = np.array([first.get(g) == EPOCHS[0] for g in demo.mesh.global_ids])
    assert seen_first[standing1].mean() > 0.85


def test_planned_and_actual_progress_per_storey_and_task_follow_the_schedule(progress_store):
    with open_store(progress_store, read_only=True) as store:
        report = progress_report(store)
        planned_by_2 = store.scalar(
            "SELECT count(DISTINCT te.global_id) FROM task_elements te JOIN tasks t USING (schedule_id, task_id) "
            "WHERE NOT t.is_summary AND CAST(t.finish AS DATE) <= ?", [EPOCHS[1]])
    assert report.surveys[-1]["planned"] == planned_by_2
    assert 0 < report.surveys[0]["built"] < report.surveys[1]["built"] <= report.elements
    level0 = next(r for r in report.by_storey if r["storey"] == "Level 0")
    assert level0["planned_pct"] == 100.0 and level0["actual_pct"] > 90.0
    roof = next(r for r in report.by_storey if r["storey"] == "Roof")
    assert roof["planned_pct"] == 0.0 and roof["actual_pct"] == 0.0
    tasks = {r["task"]: r for r in report.by_task}
    assert tasks["Level 0 ground slab"]["actual_pct"] == 100.0


def test_the_s_curve_rises_with_the_schedule_and_shows_actuals_on_survey_days(progress_store):
    with open_store(progress_store, read_only=True) as store:
        curve = progress_report(store).s_curve
    planned = [p["planned_pct"] for p in curve]
    assert planned == sorted(planned) and planned[-1] == 100.0
    actual = {p["date"]: p["actual_pct"] for p in curve if p["actual_pct"] is not None}
    assert set(actual) == set(EPOCHS)
    assert actual[EPOCHS[0]] < actual[EPOCHS[1]]


def test_late_elements_are_those_a_survey_after_their_planned_finish_could_not_find(progress_store, demo, as_built):
    with open_store(progress_store, read_only=True) as store:
        report = progress_report(store)
    index = demo.mesh.element_index()
    late = report.late_elements
    assert late and all(r["days_late"] >= 0 for r in late)
    truly_late = np.isnat(as_built.finish) | (as_built.finish > as_built.planned_finish)
    share = np.mean([truly_late[index[r["global_id"]]] for r in late])
    assert share > 0.6, share     # the rest stood but too little of them could be seen
    for r in late:
        assert r["planned_finish"] <= EPOCHS[1]
        if r["still_missing"]:
            assert r["days_late"] == (EPOCHS[1] - r["planned_finish"]).days


def test_a_site_without_surveys_reports_no_progress_yet(demo_store_path):
    with open_store(demo_store_path, read_only=True) as store:
        report = progress_report(store)
    assert report.surveys == () and report.late_elements == ()
    assert all(p["actual_pct"] is None for p in report.s_curve)


