"""Orientation refinement from image content: model edges aligned with photo edges, only when it clearly helps."""

from __future__ import annotations

import math

import numpy as np
import pytest

from panorama.camera import pose_matrix, rotation_from_ypr
from panorama.refine import refine_orientation
from panorama.render import RayScene, render_equirect

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
    from panorama.io import read_panorama

    scene, _ = scene_and_photo
    landscape = read_panorama(shared_data / "panorama" / "examplepano.jpg").pixels
    result = refine_orientation(landscape, demo_mesh, TRUE, scene=scene)
    assert not result.accepted
    np.testing.assert_array_equal(result.T_model_from_camera, TRUE)
