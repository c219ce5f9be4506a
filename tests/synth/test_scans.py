"""The scan simulator: noise, occlusion, clutter, poses; and the demo site's as-built story."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from sitetwin.synth.scans import CLUTTER, TERRAIN, clip_below, random_pose
from sitetwin.twin.distance import SurfaceIndex


def test_points_lie_on_the_surfaces_they_hit_with_the_range_noise_asked_for(demo, epoch_survey):
    sim = epoch_survey.sim
    truth = sim.truth_element()
    on_model = truth >= 0
    res = SurfaceIndex.from_mesh(demo.mesh).query(sim.points_in_model_frame()[on_model])
    moved = np.linalg.norm(sim.displacement_m, axis=1)[truth[on_model]] > 0
    d = res.distance_m[~moved]
    # range noise of 3 mm seen along each surface's normal: a little less than 3 mm
    assert 1.5 < 1.4826 * np.median(np.abs(d - np.median(d))) * 1000 < 3.1
    assert (res.element[~moved] == truth[on_model][~moved]).mean() > 0.98


def test_the_survey_holds_clutter_and_terrain_the_model_does_not(epoch_survey):
    truth = epoch_survey.sim.truth_element()
    assert 0.001 < (truth == CLUTTER).mean() < 0.2
    assert 0.01 < (truth == TERRAIN).mean() < 0.5


def test_scans_are_levelled_in_their_own_frame_and_the_survey_sits_at_its_pose(epoch_survey):
    sim = epoch_survey.sim
    T_model_from_scan = sim.T_model_from_survey @ sim.scans[0].T_survey_from_scan
    assert T_model_from_scan[2, 2] == pytest.approx(1.0)          # scanner upright in the model
    assert np.allclose(T_model_from_scan[:3, 3], sim.stations_m[0])
    assert not np.allclose(sim.T_model_from_survey, np.eye(4))


def test_random_poses_keep_to_their_bounds():
    rng = np.random.default_rng(0)
    for _ in range(50):
        T = random_pose(rng, max_shift_m=5.0, max_tilt_deg=5.0)
        assert np.degrees(np.arccos(np.clip(T[2, 2], -1, 1))) <= 5.0 + 1e-9
        assert np.abs(T[:3, 3]).max() <= 5.0 + 1e-9
        assert np.allclose(T[:3, :3] @ T[:3, :3].T, np.eye(3))


def test_half_built_elements_are_clipped_at_half_their_height():
    tri = np.array([[[0, 0, 0], [1, 0, 0], [0, 0, 2]], [[0, 0, 1.5], [1, 0, 1.5], [0, 0, 2.0]]], float)
    kept, owner = clip_below(tri, np.array([1.0, 1.0]))
    assert owner.tolist() == [0, 0] and kept[:, :, 2].max() == pytest.approx(1.0)   # a quad: two triangles
    area = 0.5 * np.linalg.norm(np.cross(kept[:, 1] - kept[:, 0], kept[:, 2] - kept[:, 0]), axis=1).sum()
    assert area == pytest.approx(0.75)             # the triangle below z = 1 of a 1 x 2 right triangle


def test_the_demo_story_is_the_same_whatever_order_the_model_was_tessellated_in(demo, as_built, demo_store_path):
    from sitetwin.data.store import open_store
    from sitetwin.synth.demo.surveys import draw_as_built

    order = np.random.default_rng(0).permutation(demo.mesh.element_count)

    class Shuffled:                                    # the same elements, listed in another order
        global_ids = demo.mesh.global_ids[order]
        model_ids = demo.mesh.model_ids[order]
        element_count = demo.mesh.element_count
        vertices, faces = demo.mesh.vertices, demo.mesh.faces
        face_element = np.argsort(order)[demo.mesh.face_element]

    with open_store(demo_store_path, read_only=True) as store:
        again = draw_as_built(store, Shuffled, [demo.model_id], seed=0)
    assert np.array_equal(again.displacement_m, as_built.displacement_m[order])
    assert np.array_equal(again.finish, as_built.finish[order], equal_nan=True)
    built, partial = as_built.state(dt.date(2026, 5, 10))
    assert 0 < partial.sum() < built.sum() < demo.mesh.element_count
