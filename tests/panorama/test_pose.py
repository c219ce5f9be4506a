"""Placing panoramas: given poses, control points (P3P + RANSAC + LM) with residuals, survey stations."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from sitetwin.panorama.camera import angular_distance_deg, pose_matrix, project_points
from sitetwin.panorama.errors import PoseError, PoseWarning
from sitetwin.panorama.pose import (
    check_extent,
    p3p,
    pose_from_dict,
    pose_from_station,
    read_control_points,
    read_pose_file,
    solve_control_points,
)

W, H = 4096, 2048


def _rotation_error_deg(A, B):
    R = A[:3, :3].T @ B[:3, :3]
    return math.degrees(math.acos(max(-1.0, min(1.0, (np.trace(R) - 1) / 2))))


def test_p3p_returns_the_true_pose_among_its_candidates():
    rng = np.random.default_rng(3)
    for _ in range(50):
        T = pose_matrix(rng.uniform(-5, 5, 3), rng.uniform(-180, 180), rng.uniform(-30, 30), rng.uniform(-30, 30))
        X = T[:3, 3] + rng.uniform(-10, 10, (3, 3))
        b = (X - T[:3, 3]) @ T[:3, :3]
        b /= np.linalg.norm(b, axis=1, keepdims=True)
        assert min(np.abs(S - T).max() for S in p3p(b, X)) < 1e-6


def test_rendered_panoramas_at_known_poses_are_recovered_from_control_points(demo_mesh):
    from sitetwin.panorama.render import RayScene, render_equirect

    scene = RayScene(demo_mesh)
    verts = np.unique(demo_mesh.vertices.astype(np.float64), axis=0)
    for k, T in enumerate([pose_matrix([13.4, 7.0, 1.6], 25.0, 1.5, -1.0), pose_matrix([20.5, 8.3, 5.1], -140.0)]):
        photo = render_equirect(demo_mesh, T, 1024, 512, seed=k, scene=scene)
        uv, rng_m = project_points(verts, T, W, H)
        small = np.floor(uv / 4).astype(int)
        seen = np.abs(photo.depth_m[np.clip(small[:, 1], 0, 511), small[:, 0] % 1024] - rng_m) < 0.02 * rng_m
        seen &= (rng_m > 1.5) & (rng_m < 20)
        pool = np.flatnonzero(seen)
        rng = np.random.default_rng(k)
        pick = [int(rng.choice(pool[(uv[pool, 0] * 8 // W) == s])) for s in range(8)
                if np.any((uv[pool, 0] * 8 // W) == s)]
        obs = uv[pick] + rng.normal(0, 1.0, (len(pick), 2))
        obs[2] += (180.0, -90.0)                                  # one gross mistake
        obs[:, 0] %= W
        sol = solve_control_points(obs, verts[pick], W, H, labels=[f"c{i}" for i in range(len(pick))])
        assert np.linalg.norm(sol.position_m - T[:3, 3]) < 0.02
        assert _rotation_error_deg(sol.T_model_from_camera, T) < 0.2
        assert not sol.inliers[2] and sol.inlier_count == len(pick) - 1
        assert sol.details["outliers"] == ["c2"]
        assert sol.rms_px < 2.0 and sol.residual_px[2] > 50
        assert sol.rms_deg == pytest.approx(sol.rms_px * 360 / W, rel=0.3)


def test_four_exact_control_points_give_the_exact_pose():
    T = pose_matrix([1.0, 2.0, 1.5], 70.0, -4.0, 2.0)
    X = np.array([[6.0, 2.0, 0.0], [1.0, 8.0, 3.0], [-4.0, 1.0, 2.0], [2.0, -5.0, 0.5]])
    uv, _ = project_points(X, T, W, H)
    sol = solve_control_points(uv, X, W, H)
    assert np.abs(sol.T_model_from_camera - T).max() < 1e-8
    assert sol.max_px < 1e-6


def test_fewer_than_four_control_points_are_refused():
    with pytest.raises(PoseError, match="3 control point.*at least 4"):
        solve_control_points([[10, 10], [20, 20], [30, 40]], np.eye(3), W, H)


def test_pixels_outside_the_image_are_refused_by_name():
    X = np.array([[6.0, 2.0, 0.0], [1.0, 8.0, 3.0], [-4.0, 1.0, 2.0], [2.0, -5.0, 0.5]])
    uv = np.array([[10.0, 10.0], [4100.0, 20.0], [30.0, 40.0], [50.0, -3.0]])
    with pytest.raises(PoseError, match=r"outside the 4096x2048 image: b \(4100, 20\), d \(50, -3\)"):
        solve_control_points(uv, X, W, H, labels=list("abcd"))


def test_degenerate_control_points_are_refused():
    uv = np.array([[100.0, 900.0], [900.0, 1000.0], [1700.0, 1100.0], [2500.0, 950.0], [3300.0, 1000.0]])
    line = np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 0.0], [2.0, 2.0, 0.0], [3.0, 3.0, 0.0], [4.0, 4.0, 0.0]])
    with pytest.raises(PoseError, match="one line"):
        solve_control_points(uv, line, W, H)
    same = np.array([[0.0, 0.0, 0.0], [5.0, 0.0, 0.0], [0.0, 5.0, 1.0], [0.0, 0.0, 0.0], [3.0, 3.0, 3.0]])
    with pytest.raises(PoseError, match="same model point"):
        solve_control_points(uv, same, W, H, labels=list("abcde"))
    uv_same = uv.copy()
    uv_same[3] = uv_same[1]
    with pytest.raises(PoseError, match="same pixel"):
        solve_control_points(uv_same, same + np.arange(5)[:, None], W, H)


def test_pairs_that_fit_no_camera_are_refused():
    rng = np.random.default_rng(9)
    uv = np.column_stack([rng.uniform(0, W, 8), rng.uniform(200, H - 200, 8)])
    X = rng.uniform(-10, 10, (8, 3))
    with pytest.raises(PoseError, match="no pose agrees with at least 4"):
        solve_control_points(uv, X, W, H)


def test_pose_files_in_their_three_forms(tmp_path):
    (tmp_path / "one.json").write_text(json.dumps({"position_m": [1, 2, 3], "yaw_deg": 90}))
    T = read_pose_file(tmp_path / "one.json")
    np.testing.assert_allclose(T[:3, 3], [1, 2, 3])
    np.testing.assert_allclose(T[:3, 0], [0, 1, 0], atol=1e-12)
    (tmp_path / "many.json").write_text(json.dumps({"poses": {"a.jpg": {"T_model_from_camera": np.eye(4).tolist()},
                                                              "b.jpg": {"position_m": [0, 0, 1.6]}}}))
    assert set(read_pose_file(tmp_path / "many.json")) == {"a.jpg", "b.jpg"}
    (tmp_path / "list.json").write_text(json.dumps([{"image": "c.jpg", "position_m": [0, 1, 2], "pitch_deg": 5}]))
    assert read_pose_file(tmp_path / "list.json")["c.jpg"][2, 0] == pytest.approx(math.sin(math.radians(5)))


def test_bad_pose_files_are_refused_with_what_is_wrong(tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(PoseError, match="not valid JSON"):
        read_pose_file(tmp_path / "bad.json")
    scaled = np.eye(4)
    scaled[:3, :3] *= 2.0
    with pytest.raises(PoseError, match="T_model_from_camera: the upper-left 3x3 is not a rotation"):
        pose_from_dict({"T_model_from_camera": scaled.tolist()})
    with pytest.raises(PoseError, match="unknown keys heading"):
        pose_from_dict({"position_m": [0, 0, 0], "heading": 3})
    with pytest.raises(PoseError, match="position_m"):
        pose_from_dict({"position_m": [0, 0]})


def test_control_point_csv_reads_and_groups_by_image(tmp_path):
    (tmp_path / "cp.csv").write_text("label,image,u,v,x_m,y_m,z_m\n"
                                     "A,a.jpg,10,20,1,2,3\nB,a.jpg,11,21,2,3,4\nC,b.jpg,12,22,3,4,5\n")
    cps = read_control_points(tmp_path / "cp.csv")
    assert set(cps) == {"a.jpg", "b.jpg"}
    assert cps["a.jpg"].labels == ("A", "B")
    np.testing.assert_allclose(cps["b.jpg"].xyz_m, [[3, 4, 5]])
    (tmp_path / "bad.csv").write_text("u,v,x,y,z\n1,2,3,4,5\n")
    with pytest.raises(PoseError, match="lacks column.*x_m"):
        read_control_points(tmp_path / "bad.csv")
    (tmp_path / "nan.csv").write_text("u,v,x_m,y_m,z_m\n1,2,three,4,5\n")
    with pytest.raises(PoseError, match="line 2: u, v, x_m, y_m, z_m must be numbers"):
        read_control_points(tmp_path / "nan.csv")


def test_a_pose_outside_the_model_extent_warns():
    bounds = np.array([[0.0, 0.0, 0.0], [30.0, 18.0, 15.0]])
    assert check_extent(pose_matrix([10, 10, 1.6]), bounds) is None
    with pytest.warns(PoseWarning, match="outside the model's extent"):
        message = check_extent(pose_matrix([80, 10, 1.6]), bounds, label="pano X")
    assert message.startswith("pano X: camera at (80.00, 10.00, 1.60) m")


def test_a_scan_station_places_the_panorama_with_its_mounting():
    T_scan = pose_matrix([5.0, 6.0, 1.5], 30.0)
    mount = pose_matrix([0.0, 0.0, 0.25], 180.0)     # camera 25 cm above the scanner, facing backwards
    T = pose_from_station(T_scan, mount)
    np.testing.assert_allclose(T[:3, 3], [5.0, 6.0, 1.75], atol=1e-12)
    assert angular_distance_deg(T[:3, 0], -T_scan[:3, 0]) < 1e-9


def test_survey_pose_reads_a_registered_survey_station_through_twin(store):
    """A synthetic survey row in twin's tables, read back through twin.survey_store.scan_stations."""
    from sitetwin.panorama.pose import survey_pose
    from sitetwin.twin.survey_store import insert_rows

    T_scan = pose_matrix([8.0, 4.0, 1.45], -60.0, 0.5, 0.2)
    insert_rows(store, "surveys", [{"survey_id": "S000000000aa", "site_code": "DEMO", "model_ids": ["m1"],
                                    "epoch": "2026-04-01", "registration_method": "transform",
                                    "T_model_from_survey": np.eye(4).tolist(), "point_count": 1000,
                                    "status": "registered"}])
    insert_rows(store, "scans", [
        {"survey_id": "S000000000aa", "site_code": "DEMO", "scan_index": i, "name": name, "file": f"scan{i}.e57",
         "file_sha256": "0" * 64, "format": "e57", "point_count": 500, "has_color": False, "has_intensity": False,
         "station_known": known, "T_model_from_scan": T_scan.tolist()}
        for i, (name, known) in enumerate([("station A", True), ("no station", False)])])
    sol = survey_pose(store, "S000000000aa", "station A")
    np.testing.assert_allclose(sol.T_model_from_camera, T_scan, atol=1e-12)
    assert sol.source == "survey" and sol.details == {"survey_id": "S000000000aa", "scan_index": 0,
                                                      "scan_name": "station A"}
    with pytest.raises(PoseError, match="say which one"):
        survey_pose(store, "S000000000aa")
    with pytest.raises(PoseError, match="no scan 7 .scans: 0 station A, 1 no station"):
        survey_pose(store, "S000000000aa", 7)
    with pytest.raises(PoseError, match="not the scanner"):
        survey_pose(store, "S000000000aa", 1)
    with pytest.raises(PoseError, match="survey S0000000zzzz"):
        survey_pose(store, "S0000000zzzz")


def _noisy_solves(T, X, n_runs, rng):
    """Position errors of solves from 1 px (per axis) clicks, and the solver's own prediction."""
    uv, _ = project_points(X, T, W, H)
    errors, predicted, weak = [], [], []
    for _ in range(n_runs):
        obs = uv + rng.normal(0.0, 1.0, uv.shape)
        obs[:, 0] %= W
        sol = solve_control_points(obs, X, W, H)
        errors.append(np.linalg.norm(sol.position_m - T[:3, 3]) * 100)
        predicted.append(sol.details["position_sigma_cm_per_px"])
        weak.append(sol.details["weak_geometry"])
    return np.sqrt(np.mean(np.square(errors))), float(np.median(predicted)), weak


def test_a_pose_reports_how_far_click_noise_moves_it_and_calls_far_one_sided_points_weak():
    rng = np.random.default_rng(11)
    T = pose_matrix([0.0, 0.0, 1.5], 30.0)
    around = np.array([[3.0, 0.5, 0.2], [0.4, 3.2, 2.6], [-2.8, 1.0, 0.1], [-0.5, -3.1, 2.8],
                       [2.2, -2.0, 2.9], [2.0, 2.4, 0.0], [-2.1, -1.9, 0.3], [-1.8, 2.2, 2.7]])
    ahead = np.array([[14.0, -3.0, 0.2], [15.0, -1.0, 2.9], [16.0, 1.0, 0.1], [14.5, 3.0, 2.8],
                      [15.5, 0.0, 1.4], [14.0, 2.0, 0.0], [16.0, -2.0, 2.5]])
    near_rms, near_pred, near_weak = _noisy_solves(T, around, 40, rng)
    far_rms, far_pred, far_weak = _noisy_solves(T, ahead, 40, rng)
    # the prediction is first-order error propagation: it matches the scatter of real solves
    assert near_pred == pytest.approx(near_rms, rel=0.3)
    assert far_pred == pytest.approx(far_rms, rel=0.3)
    assert far_pred > 5 * near_pred
    assert not any(near_weak) and all(far_weak)
