"""``sitetwin pano``: add, element-map, measure and view, with one JSON document on --json and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from sitetwin.panorama.camera import pose_matrix, project_points

STATION = pose_matrix([13.4, 7.0, 1.6], 25.0)


@pytest.fixture(scope="module")
def cli_site(demo_store_path, demo_mesh, tmp_path_factory):
    """A demo store copy, a rendered photo at STATION and its pose file."""
    from sitetwin.data.store import copy_store
    from sitetwin.panorama.io import save_image
    from sitetwin.panorama.render import render_equirect

    folder = tmp_path_factory.mktemp("cli")
    db = copy_store(demo_store_path, folder / "site.duckdb")
    photo = render_equirect(demo_mesh, STATION, 1024, 512, seed=4)
    image = save_image(folder / "station.jpg", photo.image)
    (folder / "pose.json").write_text(json.dumps({"position_m": [13.4, 7.0, 1.6], "yaw_deg": 25.0}))
    return folder, db, image


def invoke(*args):
    from typer.testing import CliRunner

    import sitetwin.app.cli

    if not any(getattr(g, "name", None) == "pano" for g in sitetwin.app.cli.app.registered_groups):
        sitetwin.app.cli._register_commands()
    result = CliRunner().invoke(sitetwin.app.cli.app, [str(a) for a in args])
    return result


def test_add_then_element_map_measure_and_view_over_the_cli(cli_site):
    folder, db, image = cli_site
    added = invoke("pano", "add", image, "--db", db, "--model", _model(db), "--pose", folder / "pose.json", "--json")
    assert added.exit_code == 0, added.output
    doc = json.loads(added.stdout)
    pid = doc["pano_id"]
    assert doc["pose_source"] == "given" and doc["pose"]["position_m"] == [13.4, 7.0, 1.6]

    mapped = invoke("pano", "element-map", "--db", db, "--pano", pid, "--overlay", folder / "overlay.jpg", "--json")
    assert mapped.exit_code == 0, mapped.output
    doc = json.loads(mapped.stdout)
    assert doc["coverage"] > 0.99 and doc["element_count"] > 40
    assert {e["ifc_class"] for e in doc["elements"]} >= {"IfcColumn", "IfcSlab", "IfcBeam"}
    assert Image.open(folder / "overlay.jpg").size == (1024, 512)

    a, b = np.array([12.2, 6.2, 0.0]), np.array([17.8, 11.8, 0.0])
    uv, _ = project_points(np.stack([a, b]), STATION, 1024, 512)
    measured = invoke("pano", "measure", "--db", db, "--pano", pid, "--from", f"{uv[0, 0]},{uv[0, 1]}",
                      "--to", f"{uv[1, 0]},{uv[1, 1]}", "--json")
    assert measured.exit_code == 0, measured.output
    doc = json.loads(measured.stdout)
    true = float(np.linalg.norm(a - b))
    assert abs(doc["distance_m"] - true) / true < 0.01
    assert doc["from"]["method"] == "model" and doc["from"]["global_id"]

    viewed = invoke("pano", "view", "--db", db, "--pano", pid, "--yaw", 30, "--pitch", -10, "--fov", 90,
                    "--out", folder / "view.jpg", "--width", 320, "--height", 240, "--json")
    assert viewed.exit_code == 0, viewed.output
    doc = json.loads(viewed.stdout)
    assert Image.open(folder / "view.jpg").size == (320, 240)
    assert doc["fx"] == pytest.approx(160.0) and len(doc["pano_box"]) == 4

    listed = invoke("pano", "list", "--db", db, "--json")
    assert [p["pano_id"] for p in json.loads(listed.stdout)] == [pid]


def test_a_cli_error_is_one_line_and_leaves_the_store_unchanged(cli_site, tmp_path):
    folder, db, _ = cli_site
    Image.fromarray(np.zeros((90, 120, 3), np.uint8)).save(tmp_path / "square-ish.jpg")
    before = _count(db)
    result = subprocess.run([sys.executable, "-m", "sitetwin.app.cli", "pano", "add", str(tmp_path / "square-ish.jpg"),
                             "--db", str(db), "--pose", str(folder / "pose.json"), "--json"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stdout == ""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "not an equirectangular panorama" in lines[0]
    assert _count(db) == before


def _model(db):
    from sitetwin.data.store import open_store

    with open_store(db, read_only=True) as store:
        return store.scalar("SELECT model_id FROM models")


def _count(db):
    from sitetwin.data.store import open_store

    with open_store(db, read_only=True) as store:
        return store.scalar("SELECT count(*) FROM panoramas")


def test_add_with_control_points_and_refine_reports_how_far_the_edges_moved_the_camera(cli_site, demo_store_path,
                                                                                       demo_mesh, tmp_path):
    from sitetwin.data.store import copy_store
    from sitetwin.panorama.io import read_panorama
    from sitetwin.panorama.render import render_equirect

    _, _, image = cli_site
    db = copy_store(demo_store_path, tmp_path / "site.duckdb")
    depth = render_equirect(demo_mesh, STATION, 1024, 512, seed=4).depth_m
    verts = np.unique(demo_mesh.vertices.astype(np.float64), axis=0)
    uv, rng_m = project_points(verts, STATION, 1024, 512)
    col, row = np.floor(uv[:, 0]).astype(int) % 1024, np.clip(np.floor(uv[:, 1]).astype(int), 0, 511)
    seen = np.flatnonzero((np.abs(depth[row, col] - rng_m) < 0.02 * rng_m) & (rng_m > 6))
    rng = np.random.default_rng(2)
    pick = [int(rng.choice(seen[(uv[seen, 0] * 8 // 1024) == s])) for s in range(8)
            if np.any((uv[seen, 0] * 8 // 1024) == s)]
    clicked = uv[pick] + rng.normal(0.0, 1.0, (len(pick), 2))
    lines = ["label,u,v,x_m,y_m,z_m"] + [f"c{i},{u:.3f},{v:.3f},{x:.4f},{y:.4f},{z:.4f}"
                                         for i, ((u, v), (x, y, z)) in enumerate(zip(clicked, verts[pick]))]
    (tmp_path / "cp.csv").write_text("\n".join(lines) + "\n")
    assert read_panorama(image).width == 1024
    added = invoke("pano", "add", image, "--db", db, "--model", _model(db), "--control-points", tmp_path / "cp.csv",
                   "--refine", "--json")
    assert added.exit_code == 0, added.output
    refined = json.loads(added.stdout)["pose"]["refined"]
    assert refined["method"] == "pose" and refined["accepted"] is True, refined
    assert 0.1 < np.linalg.norm(refined["delta_position_cm"]) < 10 and refined["edges_matched"] > 0.5

    from sitetwin.app.commands.panorama import _refined

    assert _refined(json.loads(added.stdout)["pose"]).startswith("moved ")
    assert _refined({"refined": {"accepted": True, "method": "orientation", "delta_ypr_deg": [0.3, 0.4, 0.0]}}) \
        == "turned 0.50 deg"
    assert _refined({"refined": {"accepted": False, "reason": "no clear improvement"}}) == "kept"
    assert _refined({}) is None
