"""Orientation refinement from image content: model edges aligned with photo edges, only when it clearly helps."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sitetwin.panorama.camera import pose_matrix, rotation_from_ypr
from sitetwin.panorama.refine import refine_orientation
from sitetwin.panorama.render import RayScene, render_equirect

TRUE = pose_matrix([13.4, 7.0, 3.5 + 1.6], 25.0, 0.5, -0.3)


def _rot_deg(A, B):
    R = A[:3, :3].T @ B[:3, :3]
    return math.degrees(math.acos(max(-1.0, min(1.0, (np.trace(R) - 1) / 2))))


@pytest.fixture(scope="module")
def scene_and_photo(demo_mesh):
    scene = RayScene(demo_mesh)
    return scene, render_equirect(demo_mesh, TRUE, 2048, 1024, seed=3, scene=scene).image


def test_a_degree_of_rotation_error_is_refined_to_a_tenth(demo_mesh, scene_and_photo):
    scene, photo = scene_and_photo
    start = TRUE.copy()
    start[:3, :3] = TRUE[:3, :3] @ rotation_from_ypr(0.8, -0.5, 0.3)
    result = refine_orientation(photo, demo_mesh, start, scene=scene)
    assert result.accepted, result.reason
    assert _rot_deg(start, TRUE) > 0.9
    assert _rot_deg(result.T_model_from_camera, TRUE) < 0.12
    np.testing.assert_allclose(result.T_model_from_camera[:3, 3], TRUE[:3, 3])    # the position stays
    assert result.score_after_px < result.score_before_px


def test_a_photo_of_something_else_leaves_the_pose_unchanged(demo_mesh, scene_and_photo, shared_data):
    from sitetwin.panorama.io import read_panorama

    scene, _ = scene_and_photo
    landscape = read_panorama(shared_data / "panorama" / "examplepano.jpg").pixels
    result = refine_orientation(landscape, demo_mesh, TRUE, scene=scene)
    assert not result.accepted
    np.testing.assert_array_equal(result.T_model_from_camera, TRUE)


# --- full pose (rotation and camera centre), anchored by control points

def _corners(mesh, photo_depth, T, width, *, min_range, max_range=25.0):
    """Model corners visible from T in a rendered photo, with their exact pixels."""
    from sitetwin.panorama.camera import project_points

    verts = np.unique(np.asarray(mesh.vertices, dtype=np.float64), axis=0)
    uv, r = project_points(verts, T, width, width // 2)
    col = np.floor(uv[:, 0]).astype(int) % width
    row = np.clip(np.floor(uv[:, 1]).astype(int), 0, width // 2 - 1)
    seen = (np.abs(photo_depth[row, col] - r) < np.maximum(0.02, 0.003 * r)) & (r > min_range) & (r < max_range)
    return verts[seen], uv[seen]


def _far_control_points(mesh, photo_depth, T, width, rng, sigma_px):
    """Eight corners 7 m or more away, one per 45-degree sector, clicked with ``sigma_px`` noise."""
    xyz, uv = _corners(mesh, photo_depth, T, width, min_range=7.0)
    sector = (uv[:, 0] * 8 / width).astype(int)
    pick = [int(rng.choice(np.flatnonzero(sector == s))) for s in range(8) if np.any(sector == s)]
    obs = uv[pick] + rng.normal(0.0, sigma_px, (len(pick), 2))
    obs[:, 0] %= width
    return obs, xyz[pick]


@pytest.fixture(scope="module")
def true_photo(demo_mesh, scene_and_photo):
    scene, _ = scene_and_photo
    return render_equirect(demo_mesh, TRUE, 2048, 1024, seed=3, scene=scene)


def test_a_control_point_pose_from_far_points_gets_its_position_from_the_edges(demo_mesh, scene_and_photo,
                                                                                true_photo):
    from sitetwin.panorama.pose import solve_control_points
    from sitetwin.panorama.refine import refine_pose

    scene, _ = scene_and_photo
    uv, xyz = _far_control_points(demo_mesh, true_photo.depth_m, TRUE, 2048, np.random.default_rng(4), 1.5)
    sol = solve_control_points(uv, xyz, 2048, 1024)
    start_cm = 100 * np.linalg.norm(sol.position_m - TRUE[:3, 3])
    assert start_cm > 1.5                                   # far points at 2048 px: centimetres off
    result = refine_pose(true_photo.image, demo_mesh, sol.T_model_from_camera, uv[sol.inliers], xyz[sol.inliers],
                         scene=scene)
    assert result.accepted, result.reason
    assert result.method == "pose"
    after_cm = 100 * np.linalg.norm(result.T_model_from_camera[:3, 3] - TRUE[:3, 3])
    assert after_cm < 0.6 and after_cm < start_cm / 3
    # the rotation to about half a pixel (0.18 deg per px at 2048), from 0.35 deg
    assert _rot_deg(result.T_model_from_camera, TRUE) < min(0.12, _rot_deg(sol.T_model_from_camera, TRUE) / 2)
    assert result.matched_fraction > 0.6 > 0.2 > result.chance_fraction
    assert result.score_after_px < result.score_before_px
    np.testing.assert_allclose(np.asarray(result.delta_position_m),
                               result.T_model_from_camera[:3, 3] - sol.T_model_from_camera[:3, 3])


def test_edges_that_pull_the_pose_beyond_what_the_control_points_allow_are_refused(demo_mesh, scene_and_photo,
                                                                                  true_photo):
    from sitetwin.panorama.pose import solve_control_points
    from sitetwin.panorama.refine import refine_pose

    scene, _ = scene_and_photo
    # the points were measured for a camera 20 cm from where the photo was taken: they and the
    # photo disagree, and the points are tight (0.3 px), so the edges may not move the pose that far
    moved = TRUE.copy()
    moved[:3, 3] += (0.12, -0.16, 0.0)
    moved_photo = render_equirect(demo_mesh, moved, 2048, 1024, seed=3, scene=scene)
    uv, xyz = _far_control_points(demo_mesh, moved_photo.depth_m, moved, 2048, np.random.default_rng(5), 0.3)
    sol = solve_control_points(uv, xyz, 2048, 1024)
    result = refine_pose(true_photo.image, demo_mesh, sol.T_model_from_camera, uv[sol.inliers], xyz[sol.inliers],
                         scene=scene)
    assert not result.accepted
    assert "beyond what the control points allow" in result.reason and result.agreement_chi2 > 22.46
    np.testing.assert_array_equal(result.T_model_from_camera, sol.T_model_from_camera)


def test_a_photo_of_something_else_leaves_a_control_point_pose_unchanged(demo_mesh, scene_and_photo, true_photo,
                                                                         shared_data):
    import cv2

    from sitetwin.panorama.io import read_panorama
    from sitetwin.panorama.pose import solve_control_points
    from sitetwin.panorama.refine import refine_pose

    scene, _ = scene_and_photo
    uv, xyz = _far_control_points(demo_mesh, true_photo.depth_m, TRUE, 2048, np.random.default_rng(4), 1.0)
    sol = solve_control_points(uv, xyz, 2048, 1024)
    landscape = cv2.resize(read_panorama(shared_data / "panorama" / "examplepano.jpg").pixels, (2048, 1024))
    result = refine_pose(landscape, demo_mesh, sol.T_model_from_camera, uv, xyz, scene=scene)
    assert not result.accepted and "found in the photo" in result.reason
    # the landscape's foliage puts a third of any edges near one of its own: no more are found
    assert result.matched_fraction < result.chance_fraction + 0.1
    np.testing.assert_array_equal(result.T_model_from_camera, sol.T_model_from_camera)


def test_photo_edges_are_placed_to_a_fraction_of_a_pixel():
    from sitetwin.panorama.refine import _photo_edge_points

    # a vertical step at x = 200.3 and a horizontal one at y = 90.7, drawn with area coverage
    x = np.arange(512) + 0.5
    y = np.arange(256) + 0.5
    cover_x = np.clip(x - 200.3 + 0.5, 0, 1)
    cover_y = np.clip(y - 90.7 + 0.5, 0, 1)
    gray = 60 + 120 * np.maximum(cover_x[None, :] * (y[:, None] > 40), cover_y[:, None] * (x[None, :] < 150))
    image = np.repeat(np.clip(gray, 0, 255).astype(np.uint8)[..., None], 3, axis=2)
    edges, position, normal = _photo_edge_points(image)
    vertical = (np.abs(position[:, 0] - 200.3) < 2) & (position[:, 1] > 60) & (position[:, 1] < 230)
    horizontal = (np.abs(position[:, 1] - 90.7) < 2) & (position[:, 0] > 10) & (position[:, 0] < 130)
    assert vertical.sum() > 100 and horizontal.sum() > 80
    assert np.median(np.abs(position[vertical, 0] - 200.3)) < 0.15
    assert np.median(np.abs(position[horizontal, 1] - 90.7)) < 0.15
    assert np.all(np.abs(normal[vertical, 0]) > 0.9) and np.all(np.abs(normal[horizontal, 1]) > 0.9)
