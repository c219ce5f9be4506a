"""sitetwin vision ... and sitetwin detect: one JSON document with --json, one error line, exit codes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

SITETWIN = [sys.executable, "-m", "sitetwin.app.cli"]


def run(*args, cwd=None):
    return subprocess.run([*SITETWIN, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_dataset_check_reports_the_polygon_lines_as_one_json_document(hardhat):
    result = run("vision", "dataset", "check", hardhat, "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["images"] == 50 and doc["errors"] == 0 and doc["warnings"] == 33
    assert doc["issues_by_kind"] == {"polygon": 33}
    assert {i["kind"] for i in doc["issues"]} == {"polygon"} and all(i["line"] >= 1 for i in doc["issues"])
    strict = run("vision", "dataset", "check", hardhat, "--strict", "--json")
    assert strict.returncode == 1 and json.loads(strict.stdout)["warnings"] == 33


def test_merge_then_split_writes_a_dataset_in_the_site_taxonomy(hardhat, tmp_path):
    merged = run("vision", "dataset", "merge", hardhat, "--out", tmp_path / "merged", "--json")
    assert merged.returncode == 0, merged.stderr
    doc = json.loads(merged.stdout)
    assert doc["names"][:4] == ["person", "hard_hat", "head", "vest"]
    assert doc["per_class"]["head"]["instances"] == 76 and doc["per_class"]["person"]["instances"] == 184
    split = run("vision", "dataset", "split", tmp_path / "merged", "--out", tmp_path / "split", "--train", "0.7",
                "--val", "0.3", "--seed", "1", "--json")
    assert split.returncode == 0, split.stderr
    assert {k: v["images"] for k, v in json.loads(split.stdout)["per_split"].items()} == {"train": 35, "val": 15}
    again = run("vision", "dataset", "split", tmp_path / "merged", "--out", tmp_path / "split", "--json")
    assert again.returncode == 1 and again.stdout == ""
    assert again.stderr.strip().startswith("error:") and "not empty" in again.stderr


def test_an_empty_dataset_is_one_error_line(tmp_path):
    (tmp_path / "empty" / "images").mkdir(parents=True)
    (tmp_path / "empty" / "data.yaml").write_text("names: [person]\n")
    result = run("vision", "dataset", "check", tmp_path / "empty", "--json")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.count("error:") == 1 and "empty dataset" in result.stderr


def test_detect_on_an_image_prints_one_json_document_and_a_corrupt_image_one_error_line(
        demo_store_path, tmp_path, hardhat_cycle, hardhat):
    db = tmp_path / "site.duckdb"
    shutil.copyfile(demo_store_path, db)
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules: []\n")          # plain detection: the hard-hat model has no vest class
    image = sorted((hardhat / "images").iterdir())[0]
    ok = run("detect", image, "--db", db, "--weights", hardhat_cycle["onnx"], "--imgsz", hardhat_cycle["imgsz"],
             "--conf", "0.001", "--rules", rules, "--json")
    assert ok.returncode == 0, ok.stderr
    doc = json.loads(ok.stdout)
    assert doc["source_kind"] == "image" and doc["frames"] == 1 and doc["status"] == "done"
    assert doc["detections"] == sum(doc["per_class"].values())
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg at all")
    err = run("detect", bad, "--db", db, "--weights", hardhat_cycle["onnx"], "--rules", rules, "--json")
    assert err.returncode == 1 and err.stdout == ""
    assert err.stderr.count("error:") == 1 and "bad.jpg: not a readable image" in err.stderr
    missing = run("detect", image, "--db", db, "--weights", tmp_path / "nothing.onnx", "--json")
    assert missing.returncode == 1 and "no such file" in missing.stderr and "nothing is downloaded" in missing.stderr
    runs = run("vision", "runs", "--db", db, "--json")
    assert [r["kind"] for r in json.loads(runs.stdout)] == ["detect"]


def test_a_registered_camera_tags_its_detections_onto_the_model(demo_store_path, tmp_path, hardhat_cycle, demo_site):
    from sitetwin.data.store import open_store
    from sitetwin.panorama.camera import PerspectiveCamera, pose_matrix
    from sitetwin.panorama.io import save_image
    from sitetwin.panorama.render import render_perspective
    from sitetwin.vision.hazards import HazardConfig
    from sitetwin.vision.pipeline import DetectConfig, detect_source

    db = tmp_path / "site.duckdb"
    shutil.copyfile(demo_store_path, db)
    cache = demo_store_path.parent / f"{demo_store_path.name}.cache"
    shutil.copytree(cache, tmp_path / "site.duckdb.cache")
    added = run("vision", "camera", "add", "CAM-1", "--width", 640, "--height", 480, "--position", "14,8,8.6",
                "--yaw", 30, "--pitch", -20, "--fov", 70, "--db", db, "--json")
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["fx"] == pytest.approx(320 / np.tan(np.radians(35)))
    twice = run("vision", "camera", "add", "CAM-1", "--width", 640, "--height", 480, "--position", "14,8,8.6",
                "--fov", 70, "--db", db)
    assert twice.returncode == 1 and "already exists" in twice.stderr
    cam = PerspectiveCamera.from_fov(640, 480, 70.0)
    frame = render_perspective(demo_site.mesh, cam, pose_matrix([14, 8, 8.6], 30, -20), seed=2)
    path = save_image(tmp_path / "cam1.jpg", frame.image)
    with open_store(db) as store:
        report = detect_source(store, path, hardhat_cycle["onnx"], camera_id="CAM-1",
                               config=DetectConfig(imgsz=hardhat_cycle["imgsz"], conf=0.001,
                                                   hazards=HazardConfig(rules=())))
        rows = store.rows("SELECT d.global_id, d.storey, d.z_m, e.storey AS element_storey, e.bbox_min_z_m, "
                          "e.bbox_max_z_m FROM detections d JOIN elements e USING (global_id) WHERE run_id = ?",
                          [report.run_id])
    assert report.source_kind == "camera" and report.tagged == len(rows) > 0
    for r in rows:      # each tag is an element's own storey, and its 3D point lies on that element
        assert r["storey"] == r["element_storey"]
        assert r["bbox_min_z_m"] - 0.05 <= r["z_m"] <= r["bbox_max_z_m"] + 0.05


def test_train_and_eval_from_the_command_line_record_their_runs(hardhat, tmp_path):
    db = tmp_path / "runs.duckdb"
    small = run("vision", "dataset", "split", hardhat, "--out", tmp_path / "small", "--train", "0.8", "--val", "0.2",
                "--json")
    assert small.returncode == 0, small.stderr
    trained = run("vision", "train", tmp_path / "small", "--out", tmp_path / "run", "--epochs", 1, "--imgsz", 96,
                  "--batch", 16, "--db", db, "--onnx", "--json")
    assert trained.returncode == 0, trained.stderr
    doc = json.loads(trained.stdout)
    assert doc["classes"] == ["hard_hat", "no_hard_hat", "no_head_wear", "person"] and doc["onnx"].endswith(".onnx")
    evaluated = run("vision", "eval", doc["onnx"], tmp_path / "small", "--out", tmp_path / "eval", "--imgsz", 96,
                    "--db", db, "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    ev = json.loads(evaluated.stdout)
    assert [r["class"] for r in ev["per_class"]] == doc["classes"]
    assert sum(r["instances"] for r in ev["per_class"]) == sum(r["instances"] for r in doc["per_class"])
    assert ev["confusion_matrix"].endswith("confusion_matrix.png")
    kinds = [r["kind"] for r in json.loads(run("vision", "runs", "--db", db, "--json").stdout)]
    assert kinds == ["train", "export", "eval"]
    bad = run("vision", "train", tmp_path / "small", "--out", tmp_path / "run2", "--imgsz", 100, "--json")
    assert bad.returncode == 1 and "imgsz: 100 is not a multiple of 32" in bad.stderr
