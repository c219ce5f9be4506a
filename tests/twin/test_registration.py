"""Placing a survey on the model: control points, given transforms, automatic registration, refusals."""

from __future__ import annotations

import numpy as np
import pytest

from sitetwin.synth import random_pose
from sitetwin.twin import registration as reg
from sitetwin.twin.errors import ControlPointError, RegistrationError


def test_control_points_recover_the_pose_and_report_each_pairs_residual():
    rng = np.random.default_rng(4)
    T = random_pose(rng)
    model = rng.uniform(0, 30, (6, 3))
    scan = reg.apply(np.linalg.inv(T), model) + rng.normal(0, 0.001, (6, 3))
    T_est, residuals = reg.register_control_points(scan, model, names=[f"P{i}" for i in range(6)])
    dt, dr = reg.pose_error(T_est, T, points=model)
    assert dt < 0.003 and dr < 0.01
    assert [r["name"] for r in residuals] == [f"P{i}" for i in range(6)]
    assert all(0 <= r["residual_mm"] < 4 for r in residuals)


def test_fewer_than_three_control_points_are_refused():
    with pytest.raises(ControlPointError, match="2 control point pair.*at least 3"):
        reg.register_control_points(np.zeros((2, 3)), np.ones((2, 3)))


def test_collinear_control_points_are_refused_with_how_far_off_the_line_they_are():
    line = np.outer(np.arange(5.0), [1.0, 2.0, 0.5]) + np.random.default_rng(0).normal(0, 0.004, (5, 3))
    with pytest.raises(ControlPointError, match=r"collinear \(all within \d+ mm of one line\)"):
        reg.register_control_points(line, line + 10.0)


def test_a_mistyped_control_point_is_refused_by_its_residual():
    rng = np.random.default_rng(1)
    model = rng.uniform(0, 20, (5, 3))
    scan = model.copy()
    scan[3] += [0.0, 0.5, 0.0]                   # half a metre off
    with pytest.raises(ControlPointError, match=r"pair CP\d is off by \d+ mm"):
        reg.register_control_points(scan, model)


def test_control_point_files_take_local_or_world_columns(tmp_path):
    (tmp_path / "cp.csv").write_text("name,scan_x,scan_y,scan_z,world_x,world_y,world_z\nA,1,2,3,101,202,303\n")
    scan, target, names, frame = reg.read_control_points(tmp_path / "cp.csv")
    assert frame == "world" and names == ["A"] and target.tolist() == [[101, 202, 303]]
    (tmp_path / "bad.csv").write_text("x,y,z\n1,2,3\n")
    with pytest.raises(ControlPointError, match=r"bad\.csv: columns must be scan_x"):
        reg.read_control_points(tmp_path / "bad.csv")


@pytest.mark.parametrize("matrix, message", [
    (np.eye(3), "expected a 4x4"),
    (np.diag([2.0, 1.0, 1.0, 1.0]), "not a rotation"),
    (np.diag([-1.0, 1.0, 1.0, 1.0]), "not a rotation"),
    (np.full((4, 4), np.nan), "NaN or inf"),
])
def test_a_given_transform_must_be_rigid(matrix, message):
    with pytest.raises(RegistrationError, match=message):
        reg.check_transform(matrix)


def test_a_registration_without_overlap_or_with_poor_fitness_is_refused():
    T = np.eye(4)
    far = reg.Registration("transform", T, fitness=0.0, rmse_m=float("inf"), inlier_distance_m=0.02, overlap=0.0)
    with pytest.raises(RegistrationError, match="does not overlap the model"):
        reg.check(far, label="site.laz")
    poor = reg.Registration("auto", T, fitness=0.1, rmse_m=0.009, inlier_distance_m=0.02, overlap=0.4)
    with pytest.raises(RegistrationError, match=r"automatic registration failed: fitness 0\.100.*control points"):
        reg.check(poor)
    twin = reg.Registration("auto", T, 0.7, 0.002, 0.02, 0.7, details={"margin": 0.0004,
                                                                         "runner_up_offset": "35 m / 180.0 deg"})
    with pytest.raises(RegistrationError, match="ambiguous.*35 m / 180.0 deg"):
        reg.check(twin)


def test_automatic_registration_finds_a_random_pose_within_5_mm_and_0_05_degrees(analysed, epoch_survey, demo):
    _, report = analysed
    T_est = np.array(report.registration["T_model_from_survey"])
    corners = np.array([[x, y, z] for x in demo.mesh.bounds()[:, 0] for y in demo.mesh.bounds()[:, 1]
                        for z in demo.mesh.bounds()[:, 2]])
    dt, dr = reg.pose_error(T_est, epoch_survey.T_true, points=reg.apply(np.linalg.inv(epoch_survey.T_true), corners))
    assert dt < 0.005 and dr < 0.05
    assert report.registration["method"] == "auto"
    assert report.registration["fitness"] > 0.5 and report.registration["rmse_mm"] < 4.0
    # the mirror pose of this near-symmetric frame is told apart, with room to spare
    assert report.registration["details"]["margin"] > 0.002


def test_rotation_angles_are_exact_for_tiny_rotations():
    from scipy.spatial.transform import Rotation

    R = Rotation.from_rotvec([0.0, 0.0, np.radians(0.001)]).as_matrix()
    assert reg.rotation_angle_deg(R) == pytest.approx(0.001, rel=1e-6)
