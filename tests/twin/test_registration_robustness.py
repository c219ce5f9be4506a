"""Automatic registration in hard cases, each with the truth: little overlap, a symmetric building, clutter."""

from __future__ import annotations

import numpy as np
import pytest

from sitetwin.synth import random_pose, simulate_survey
from sitetwin.synth.georef_scans import add_clutter, room_scan, symmetric_building
from sitetwin.twin import registration as reg
from sitetwin.twin.distance import SurfaceIndex
from sitetwin.twin.errors import RegistrationError


@pytest.fixture(scope="module")
def demo_index(demo):
    return SurfaceIndex.from_mesh(demo.mesh)


@pytest.mark.slow
def test_one_room_of_a_storey_20_percent_of_its_floor_is_placed_within_5_mm_and_0_05_degrees(demo, demo_index):
    # Level 1's west end: 6 m x 18 m of the storey's 30 m x 18 m, with the stair in its north bay
    lo, hi = np.array([0.0, 0.0, 3.5]), np.array([6.0, 18.0, 7.0])
    (blo, bhi) = demo.mesh.bounds()
    share = (hi[0] - lo[0]) * (hi[1] - lo[1]) / ((bhi[0] - blo[0] - 0.4) * (bhi[1] - blo[1] - 0.4))
    assert share == pytest.approx(0.2, abs=0.005)
    T = random_pose(np.random.default_rng(11), centre_m=(lo + hi) / 2)
    sim = room_scan(demo.mesh, lo, hi, seed=2, T_model_from_survey=T)
    pts = sim.points_in_survey_frame()
    seen = np.unique(sim.truth_element()[sim.truth_element() >= 0])
    assert len(seen) < 0.2 * demo.mesh.element_count            # the scan sees a small part of the model
    result = reg.register_auto(demo_index, pts, point_station=np.zeros(len(pts), int),
                               stations=np.array([sim.scans[0].T_survey_from_scan[:3, 3]]))
    reg.check(result, label="room.e57")
    dt, dr = reg.pose_error(result.T_model_from_survey, T, points=pts)
    assert dt < 0.005 and dr < 0.05


def test_a_symmetric_building_with_two_equally_good_poses_is_refused_with_the_reason():
    mesh = symmetric_building()
    lo, hi = mesh.bounds()
    c = (lo + hi) / 2
    stations = np.array([[c[0] - 18, c[1] - 12, 1.6], [c[0] + 20, c[1] - 11, 1.6], [c[0] + 3, c[1] + 14, 1.6]])
    T = random_pose(np.random.default_rng(5), centre_m=c)
    sim = simulate_survey(mesh, stations_m=stations, angular_step_deg=0.4, seed=1, T_model_from_survey=T)
    pts = sim.points_in_survey_frame()
    index = SurfaceIndex.from_mesh(mesh)
    result = reg.register_auto(index, pts)
    # both poses explain the points: the truth and the building turned 180 degrees about its centre
    runner = result.details["runner_up"]
    assert abs(result.fitness - runner["fitness"]) < 0.01
    assert "180" in result.details["runner_up_offset"] or "179" in result.details["runner_up_offset"]
    with pytest.raises(RegistrationError, match=r"sym\.las: automatic registration is ambiguous: a pose .* away "
                                                r"explains almost as many points.*too symmetric"):
        reg.check(result, label="sym.las")


@pytest.mark.slow
def test_a_survey_of_40_percent_clutter_is_placed_within_5_mm_and_0_05_degrees(demo, demo_index, epoch_survey):
    sim = epoch_survey.sim
    model_pts = sim.points_in_model_frame()[::2]
    cluttered, is_clutter = add_clutter(model_pts, demo.mesh.bounds(), fraction=0.4, seed=3)
    assert is_clutter.mean() == pytest.approx(0.4, abs=0.001)
    T = epoch_survey.T_true
    pts = reg.apply(np.linalg.inv(T), cluttered)
    result = reg.register_auto(demo_index, pts)
    reg.check(result, label="cluttered.las")
    dt, dr = reg.pose_error(result.T_model_from_survey, T, points=pts[~is_clutter])
    assert dt < 0.005 and dr < 0.05
