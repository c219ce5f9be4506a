"""The demo stage "panoramas": epochs from the schedule, storey stations, posed and mapped photos."""

from __future__ import annotations

import datetime as dt

import pytest


def test_schedule_epochs_spread_over_the_schedule_and_elements_are_built_by_their_task_finish(demo_store_path):
    from sitetwin.data.store import open_store
    from sitetwin.synth.demo.panoramas import built_by, schedule_epochs

    with open_store(demo_store_path, read_only=True) as store:
        epochs = schedule_epochs(store, "DEMO")
        model_id = store.scalar("SELECT model_id FROM models")
        finish = built_by(store, "DEMO", model_id)
        last = store.scalar("SELECT max(finish) FROM tasks WHERE site_code = 'DEMO'").date()
        column = store.scalar("SELECT e.global_id FROM elements e JOIN task_elements te USING (global_id) "
                              "JOIN tasks t USING (schedule_id, task_id) WHERE t.name = 'Level 0 columns' LIMIT 1")
    assert len(epochs) == 3 and epochs[-1]["epoch"] == last
    assert epochs[0]["epoch"] < epochs[1]["epoch"] < epochs[2]["epoch"]
    assert finish[column] == dt.date(2026, 3, 16)
    assert max(finish.values()) == last


@pytest.mark.slow
def test_the_demo_stage_renders_poses_maps_and_overlays_panoramas(tmp_path):
    from sitetwin.data.store import open_store
    from sitetwin.synth.demo import DemoContext
    from sitetwin.synth.demo.model import run as run_model
    from sitetwin.synth.demo.panoramas import run as run_panoramas

    db = tmp_path / "demo.duckdb"
    open_store(db).close()
    ctx = DemoContext(db=db, workdir=tmp_path / "work")
    ctx.workdir.mkdir()
    run_model(ctx)
    facts = run_panoramas(ctx)
    assert facts["panoramas"] >= 8 and facts["epochs"] == 3
    assert "control_points" in facts["pose sources"] and "given" in facts["pose sources"]
    assert facts["control-point position error (cm, max)"] < 5.0
    kept, tried = facts["refined from the photo's edges"].split("/")
    assert kept == tried == "3"                                  # one control-point station per epoch
    assert facts["position error after refinement (cm, max)"] < 1.0
    assert facts["measurement error (%, max)"] < 1.5
    made = ctx.results["panoramas"]
    for item in made:
        stem = item["file"][:-4]
        for suffix in ("", "_overlay", "_difference"):
            assert (tmp_path / "work" / "panoramas" / f"{stem.rsplit('/', 1)[-1]}{suffix}.jpg").exists()
    with open_store(db, read_only=True) as store:
        assert store.scalar("SELECT count(*) FROM panoramas") == len(made)
        assert store.scalar("SELECT count(*) FROM panorama_element_maps") == len(made)
        assert store.scalar("SELECT min(coverage) FROM panorama_element_maps") > 0.3
