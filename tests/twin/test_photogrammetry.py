"""Photogrammetry: reality meshes read as surveys, and unscaled clouds placed by a similarity with its scale."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from PIL import Image

from sitetwin.data.store import open_store
from sitetwin.synth.georef_scans import drone_cloud, sfm_mesh, unscaled
from sitetwin.twin import registration as reg
from sitetwin.twin.distance import SurfaceIndex
from sitetwin.twin.errors import PointCloudError, RegistrationError
from sitetwin.twin.formats import read_scans
from sitetwin.twin.survey import add_survey


def _two_panels(texture: bool):
    """Two squares side by side, 1 m2 (x in 0..1) and 3 m2 (x in 1..4 by 0..1 ... scaled to 3 m2)."""
    v = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0],
                  [1, 0, 0], [4, 0, 0], [4, 1, 0], [1, 1, 0]], dtype=float)
    f = np.array([[0, 1, 2], [0, 2, 3], [4, 5, 6], [4, 6, 7]])
    if texture:
        # the texture's left half red, right half blue; the small panel maps to the left half
        img = np.zeros((8, 8, 3), np.uint8)
        img[:, :4] = (220, 30, 30)
        img[:, 4:] = (30, 40, 210)
        uv = np.array([[0.05, 0.1], [0.45, 0.1], [0.45, 0.9], [0.05, 0.9],
                       [0.55, 0.1], [0.95, 0.1], [0.95, 0.9], [0.55, 0.9]])
        visual = trimesh.visual.TextureVisuals(uv=uv, image=Image.fromarray(img))
        return trimesh.Trimesh(v, f, visual=visual, process=False)
    colours = np.array([[255, 0, 0, 255]] * 4 + [[0, 0, 255, 255]] * 2 + [[0, 255, 0, 255]] * 2, np.uint8)
    return trimesh.Trimesh(v, f, vertex_colors=colours, process=False)


def test_a_textured_obj_is_sampled_by_area_with_each_point_coloured_from_the_texture(tmp_path):
    path = tmp_path / "reality.obj"
    _two_panels(texture=True).export(str(path))
    scan = read_scans(path, mesh_points=40_000)[0]
    assert scan.format == "obj" and scan.point_count == 40_000 and not scan.station_known
    small = scan.xyz[:, 0] < 1.0
    assert small.mean() == pytest.approx(0.25, abs=0.01)                 # 1 m2 of 4 m2
    assert np.all(np.abs(scan.xyz[:, 2]) < 1e-9)
    assert np.all(scan.rgb[small, 0] > 150) and np.all(scan.rgb[small, 2] < 80)      # red half of the texture
    assert np.all(scan.rgb[~small, 2] > 150) and np.all(scan.rgb[~small, 0] < 80)    # blue half


def test_a_ply_mesh_with_vertex_colours_gives_them_interpolated(tmp_path):
    path = tmp_path / "reality.ply"
    _two_panels(texture=False).export(str(path))
    scan = read_scans(path, mesh_points=20_000)[0]
    assert scan.format == "ply" and scan.point_count == 20_000
    small = scan.xyz[:, 0] < 1.0
    assert np.all(scan.rgb[small] == [255, 0, 0])
    # the large panel blends blue (x = 1..4 at y = 0) into green (y = 1): the colour follows y
    big = ~small
    green_share = scan.rgb[big, 1] / 255.0
    assert np.corrcoef(green_share, scan.xyz[big, 1])[0, 1] > 0.9


def test_a_point_cloud_ply_is_still_read_as_points(tmp_path):
    path = tmp_path / "dense.ply"
    trimesh.PointCloud(np.random.default_rng(0).uniform(0, 5, (1234, 3))).export(str(path))
    scan = read_scans(path)[0]
    assert scan.point_count == 1234


def test_a_mesh_without_faces_is_refused_in_one_line_naming_the_file(tmp_path):
    path = tmp_path / "vertices_only.obj"
    path.write_text("".join(f"v {x} {x * 2} 0\n" for x in range(10)))
    with pytest.raises(PointCloudError, match=r"vertices_only\.obj: the mesh has no faces \(10 vertices only\)") \
            as info:
        read_scans(path)
    assert "\n" not in str(info.value)


def test_umeyama_recovers_a_similarity_and_control_points_take_a_scale():
    rng = np.random.default_rng(2)
    model = rng.uniform(0, 30, (8, 3))
    _, T_true = unscaled(model, scale=0.0371, seed=5)
    scan = reg.apply(np.linalg.inv(T_true), model)
    T, s = reg.similarity_fit(scan, model)
    assert s == pytest.approx(1 / 0.0371, rel=1e-9) and np.allclose(T, T_true, atol=1e-6)
    T_cp, residuals = reg.register_control_points(scan, model, with_scale=True)
    assert reg.transform_scale(T_cp) == pytest.approx(1 / 0.0371, rel=1e-9)
    assert max(r["residual_mm"] for r in residuals) < 0.01


@pytest.fixture(scope="module")
def demo_index(demo):
    return SurfaceIndex.from_mesh(demo.mesh)


def test_a_scale_fit_on_one_plane_is_refused_as_degenerate():
    # a cloud of one flat field: sliding and scaling within the plane change nothing
    field = SurfaceIndex(np.array([[0, 0, 0], [40, 0, 0], [40, 30, 0], [0, 30, 0]], float),
                         np.array([[0, 1, 2], [0, 2, 3]]))
    rng = np.random.default_rng(0)
    pts = np.column_stack([rng.uniform(5, 35, 8000), rng.uniform(5, 25, 8000), rng.normal(0, 0.003, 8000)])
    quality = reg.scale_quality(field, pts, np.eye(4))
    assert quality["scale_lever"] < 0.01 and quality["scale_inliers"] > 7000
    fit = reg.Registration("similarity", np.eye(4), 1.0, 0.003, 0.02, 1.0, details={"scale": 1.0, **quality})
    with pytest.raises(RegistrationError, match=r"field\.obj: the scale cannot be determined.*degenerate.*one plane"):
        reg.check_scale(fit, label="field.obj")


def test_a_scale_fit_with_too_few_inliers_or_too_uncertain_a_scale_is_refused(demo, demo_index):
    pts = drone_cloud(demo.mesh, seed=4, keep_fraction=0.5)[0]
    few = reg.scale_quality(demo_index, pts[:300], np.eye(4))
    fit = reg.Registration("similarity", np.eye(4), 1.0, 0.002, 0.02, 1.0, details={"scale": 1.0, **few})
    with pytest.raises(RegistrationError, match=r"cannot be determined.*only \d+ points lie within 2 cm"):
        reg.check_scale(fit, label="sfm.ply")
    good = reg.scale_quality(demo_index, pts[::4], np.eye(4))
    assert 0 < good["scale_sigma"] < 1e-3 and good["scale_lever"] > 0.2
    strict = reg.RegistrationConfig(max_scale_uncertainty=good["scale_sigma"] / 10)
    fit = reg.Registration("similarity", np.eye(4), 1.0, 0.002, 0.02, 1.0, details={"scale": 1.0, **good})
    with pytest.raises(RegistrationError, match=r"its uncertainty is .*% \(1 sigma, bootstrap\), over the"):
        reg.check_scale(fit, strict, label="sfm.ply")
    reg.check_scale(fit, label="sfm.ply")          # the default limit takes it


@pytest.mark.slow
def test_similarity_registration_finds_the_scale_within_0_1_percent_on_a_simulated_sfm_cloud(demo, demo_index):
    # what a drone saw of 60 % of the building, 5 mm noise, in arbitrary units (0.2371 per metre) and orientation
    pts, _ = drone_cloud(demo.mesh, seed=1, keep_fraction=0.6, noise_m=0.005)
    sfm, T_true = unscaled(pts, scale=0.2371, seed=2)
    result = reg.register_similarity(demo_index, sfm, label="sfm.ply")
    scale = reg.transform_scale(result.T_model_from_survey)
    assert scale / reg.transform_scale(T_true) - 1 == pytest.approx(0.0, abs=0.001)
    assert result.details["scale_sigma"] < 0.001
    dt, dr = reg.pose_error(result.T_model_from_survey, T_true, points=sfm)
    assert dt < 0.01 and dr < 0.05


@pytest.mark.slow
def test_a_reality_mesh_in_unknown_units_is_added_with_scale_and_its_uncertainty(writable_store, demo, tmp_path):
    path = tmp_path / "reality.obj"
    T_true = sfm_mesh(path, demo.mesh, scale=3.7, seed=3, keep_fraction=0.7)
    with open_store(writable_store) as store:
        report = add_survey(store, [path], model_ids=[demo.model_id], fit_scale=True)
        row = store.one("SELECT scale, scale_sigma, registration_method FROM surveys WHERE survey_id = ?",
                        [report.survey_id])
    r = report.registration
    assert r["method"] == "similarity"
    assert r["scale"] / reg.transform_scale(T_true) - 1 == pytest.approx(0.0, abs=0.001)
    assert row["scale"] == pytest.approx(r["scale"]) and 0 < row["scale_sigma"] < 0.002
    assert report.scans[0]["points"] == 1_000_000
