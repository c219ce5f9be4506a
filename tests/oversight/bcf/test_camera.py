"""Viewpoint cameras: from panorama poses, onto elements, between the local and the IFC world frame."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sitetwin.oversight.bcf.camera import camera_from_panorama, camera_looking_at, from_bcf, to_bcf
from sitetwin.oversight.errors import BcfError


def test_a_level_panorama_view_looks_along_the_yawed_camera_axis():
    T = np.eye(4)
    T[:3, 3] = [1.0, 2.0, 1.5]
    c = camera_from_panorama(T, yaw_deg=0.0, pitch_deg=0.0, fov_deg=90.0, aspect_ratio=1.0)
    assert c["position_m"] == [1.0, 2.0, 1.5]
    assert c["direction"] == pytest.approx([1.0, 0.0, 0.0]) and c["up"] == pytest.approx([0.0, 0.0, 1.0])
    assert c["fov_deg"] == pytest.approx(90.0)              # square view: vertical = horizontal
    left = camera_from_panorama(T, yaw_deg=90.0)             # yaw is anticlockwise: +y is left of +x
    assert left["direction"] == pytest.approx([0.0, 1.0, 0.0], abs=1e-12)


def test_pitch_tilts_direction_and_up_together_and_they_stay_perpendicular():
    c = camera_from_panorama(np.eye(4), yaw_deg=30.0, pitch_deg=-20.0, fov_deg=80.0, aspect_ratio=16 / 9)
    d, u = np.array(c["direction"]), np.array(c["up"])
    assert math.degrees(math.asin(d[2])) == pytest.approx(-20.0)
    assert np.dot(d, u) == pytest.approx(0.0, abs=1e-12) and u[2] > 0
    vfov = math.degrees(2 * math.atan(math.tan(math.radians(40)) * 9 / 16))
    assert c["fov_deg"] == pytest.approx(vfov)


def test_a_view_onto_an_element_centres_it_and_frames_its_size():
    c = camera_looking_at([10.0, 5.0, 3.0], size_m=6.0, fov_deg=60.0)
    to_target = np.array([10.0, 5.0, 3.0]) - np.array(c["position_m"])
    dist = np.linalg.norm(to_target)
    assert np.dot(to_target / dist, c["direction"]) == pytest.approx(1.0)
    # 6 m across fits inside the vertical field of view at that distance
    assert 2 * dist * math.tan(math.radians(30)) > 6.0
    assert c["position_m"][2] > 3.0                           # seen from above


def test_bcf_cameras_are_in_the_world_frame_and_stored_ones_in_the_local_frame():
    local = camera_looking_at([1.0, 2.0, 3.0])
    origin = [191000.0, 441000.0, 12.0]
    world = to_bcf(local, origin)
    assert np.array(world.position) - np.array(local["position_m"]) == pytest.approx(origin)
    assert world.direction == pytest.approx(local["direction"])
    back = from_bcf(world, origin)
    assert back["position_m"] == pytest.approx(local["position_m"], abs=1e-9)


def test_a_pose_that_is_not_a_4x4_matrix_is_refused():
    with pytest.raises(BcfError, match="4x4"):
        camera_from_panorama(np.eye(3))
