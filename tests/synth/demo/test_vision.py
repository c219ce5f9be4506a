"""The demo stage "vision": a detector trained on renders of the demo model finds and tags hazards in its panoramas.

Slow (minutes): run with ``pytest -m slow tests/synth/demo/test_vision.py``.
"""

from __future__ import annotations

import pytest


@pytest.mark.slow
def test_the_demo_detector_reaches_its_targets_and_finds_the_open_edge_hazards(tmp_path, capsys):
    from sitetwin.app.demo import run_demo
    from sitetwin.data.store import open_store
    from sitetwin.synth.demo.vision import VisionDemoConfig

    summary = run_demo(tmp_path / "demo.duckdb", tmp_path / "work", stages=["model", "vision"])
    facts = next(s for s in summary["stages"] if s["name"] == "vision")["facts"]
    with capsys.disabled():
        print("\nvision demo:", facts)
    # a fixed number of epochs (never ultralytics' time mode), so the figure does not depend on machine load
    assert facts["epochs"] == VisionDemoConfig().epochs
    assert facts["map50_heldout"] >= 0.8           # the target, on renders never trained on
    assert set(facts["map50_per_class"]) == {"person", "hard_hat", "head", "vest"}
    assert abs(facts["map50_heldout_onnx"] - facts["map50_heldout"]) <= 0.03
    assert abs(facts["map50_heldout_onnx_int8"] - facts["map50_heldout"]) <= 0.05
    assert facts["tagged_correctly"] >= 0.9
    assert facts["people_found"] >= 0.8 * facts["people_in_scenes"]
    with open_store(tmp_path / "demo.duckdb", read_only=True) as store:
        rules = {r["rule"] for r in store.rows("SELECT DISTINCT rule FROM hazards")}
        edges = store.rows("SELECT h.global_id, e.object_type FROM hazards h JOIN elements e USING (global_id) "
                           "WHERE rule = 'unprotected_edge'")
        open_findings = store.scalar("SELECT count(*) FROM finding_state WHERE source = 'hazard' AND status = 'open'")
    assert "unprotected_edge" in rules and "no_hard_hat" in rules
    assert edges and all(e["object_type"] == "SlabEdge" for e in edges)
    assert open_findings == facts["findings"] > 0
