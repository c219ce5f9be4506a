"""``sitetwin survey add|deviation|list`` and ``sitetwin progress``: the JSON contract and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from sitetwin.twin.formats import write_las

SITETWIN = [sys.executable, "-m", "sitetwin.app.cli"]

STATUSES = ("built", "partial", "not_built", "out_of_tolerance")   # partial_out_of_tolerance counts within partial


def run(*args):
    return subprocess.run([*SITETWIN, *map(str, args)], capture_output=True, text=True, timeout=300)


def test_survey_add_prints_the_id_the_registration_and_the_status_counts(writable_store, demo, epoch_survey,
                                                                         tmp_path):
    sim = epoch_survey.sim
    pts = np.concatenate([s.points @ s.T_survey_from_scan[:3, :3].T + s.T_survey_from_scan[:3, 3]
                          for s in sim.scans[:2]])
    write_las(tmp_path / "s.laz", pts, scale_m=0.0001)
    (tmp_path / "T.json").write_text(json.dumps(epoch_survey.T_true.tolist()))
    result = run("survey", "add", tmp_path / "s.laz", "--db", writable_store, "--model", demo.model_id,
                 "--epoch", "2026-05-10", "--transform", tmp_path / "T.json", "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["survey_id"].startswith("S") and doc["epoch"] == "2026-05-10"
    assert doc["registration"]["method"] == "transform" and doc["registration"]["fitness"] > 0.5
    assert sum(doc["status_counts"][s] for s in STATUSES) == demo.mesh.element_count
    listed = json.loads(run("survey", "list", "--db", writable_store, "--json").stdout)
    assert [s["survey_id"] for s in listed] == [doc["survey_id"]]


def test_survey_deviation_gives_one_record_per_element_with_the_contract_fields(analysed, demo):
    db, report = analysed
    result = run("survey", "deviation", "--db", db, "--survey", report.survey_id, "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert len(rows) == demo.mesh.element_count
    for field in ("global_id", "ifc_class", "points", "coverage", "mean_mm", "p95_mm", "status"):
        assert field in rows[0]
    assert {r["status"] for r in rows} <= {"built", "partial", "not_built", "out_of_tolerance"}
    moved = json.loads(run("survey", "deviation", "--db", db, "--survey", report.survey_id,
                           "--status", "out_of_tolerance", "--json").stdout)
    assert moved and all(r["checks"] for r in moved)


def test_progress_prints_one_json_document(analysed):
    db, _ = analysed
    result = run("progress", "--db", db, "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert set(doc) >= {"surveys", "by_storey", "by_task", "s_curve", "late_elements"}
    assert len(doc["surveys"]) == 1


def test_a_refused_survey_is_one_error_line_and_exit_1(writable_store, demo, tmp_path):
    (tmp_path / "cp.csv").write_text("scan_x,scan_y,scan_z,model_x,model_y,model_z\n0,0,0,0,0,0\n1,1,1,1,1,1\n")
    write_las(tmp_path / "s.las", np.random.default_rng(0).uniform(0, 10, (100, 3)))
    result = run("survey", "add", tmp_path / "s.las", "--db", writable_store, "--model", demo.model_id,
                 "--control-points", tmp_path / "cp.csv", "--json")
    assert result.returncode == 1 and result.stdout == ""
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "cp.csv" in lines[0] and "at least 3" in lines[0]


def test_survey_warm_fills_the_kernel_cache_and_says_what_it_compiled():
    # after a plain `pip install` the user runs it once; here (make setup warmed the cache) it only loads
    from sitetwin.twin.distance import KERNELS

    result = subprocess.run([sys.executable, "-m", "sitetwin.app.cli", "survey", "warm", "--json"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert sorted(doc) == sorted(KERNELS) and set(doc.values()) <= {"loaded", "compiled"}
    again = json.loads(subprocess.run([sys.executable, "-m", "sitetwin.app.cli", "survey", "warm", "--json"],
                                      capture_output=True, text=True, timeout=300).stdout)
    assert set(again.values()) == {"loaded"}                  # a second process compiles nothing
