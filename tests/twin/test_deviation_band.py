"""The survey's deviation stops its distance search at the analysis band (CloudCompare's ``-MAX_DIST``): every
answer within the band, every per-element figure and every unplanned object is what the exact far search gave;
points beyond the band are unassigned as before, now with no distance searched for them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sitetwin.twin.deviation import analyse
from sitetwin.twin.tolerances import DEFAULT

BAND_M = DEFAULT.status.band_m


@pytest.fixture(scope="module")
def both(demo, epoch_survey):
    """The demo epoch survey (12 stations, clutter and terrain) analysed with the band shortcut and without."""
    sim = epoch_survey.sim
    pts = sim.points_in_model_frame()
    station = np.concatenate([np.full(len(s.points), i) for i, s in enumerate(sim.scans)])
    k = demo.mesh.element_count
    kw = dict(classes=demo.classes, planned=np.ones(k, bool), stations_m=sim.stations_m, point_station=station,
              storey_levels=[("Level 0", 0.0), ("Level 1", 3.5)])
    return (analyse(demo.mesh, pts, **kw), analyse(demo.mesh, pts, exact_far=True, **kw))


def test_answers_within_the_band_are_unchanged_by_the_band_shortcut(both):
    banded, exact = both
    within = np.abs(exact.distance_m) <= BAND_M
    assert 0.5 < within.mean() < 0.999                       # both kinds of point are there
    assert np.array_equal(banded.distance_m[within], exact.distance_m[within])
    assert np.array_equal(banded.nearest[within], exact.nearest[within])
    assert np.array_equal(banded.element, exact.element)


def test_points_beyond_the_band_are_reported_unassigned_as_before(both):
    banded, exact = both
    beyond = np.abs(exact.distance_m) > BAND_M
    assert beyond.sum() > 1000
    assert (banded.element[beyond] == -1).all() and (exact.element[beyond] == -1).all()
    assert np.isinf(banded.distance_m[beyond]).all() and (banded.distance_m[beyond] > 0).all()
    assert np.array_equal(banded.cluster, exact.cluster)     # the same terrain and the same unplanned objects


def test_per_element_figures_and_histograms_are_the_same_with_the_band_shortcut(both):
    banded, exact = both
    pd.testing.assert_frame_equal(banded.elements, exact.elements)
    pd.testing.assert_frame_equal(banded.histograms, exact.histograms)
    assert banded.noise_mm == exact.noise_mm and banded.loa == exact.loa


def test_each_unplanned_object_keeps_its_exact_distance_and_nearest_element(both):
    banded, exact = both
    assert len(exact.unplanned) >= 3
    pd.testing.assert_frame_equal(banded.unplanned, exact.unplanned)
    assert (exact.unplanned["distance_m"] > BAND_M).all() and (exact.unplanned["nearest_element"] >= 0).all()
