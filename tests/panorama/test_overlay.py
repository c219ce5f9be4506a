"""Overlays of the design on photos, and the edge difference between model prediction and photo."""

from __future__ import annotations

import numpy as np
import pytest

from sitetwin.panorama.camera import pose_matrix
from sitetwin.panorama.element_map import element_map
from sitetwin.panorama.overlay import (
    CLASS_COLORS,
    STATUS_COLORS,
    boundaries,
    class_color,
    colors_by_class,
    deviation_color,
    difference,
    overlay,
)
from sitetwin.panorama.render import render_equirect

T = pose_matrix([3.0, 4.0, 1.5], 20.0)


@pytest.fixture(scope="module")
def photo_and_map(room):
    return render_equirect(room, T, 1024, 512, seed=2), element_map(room, T, 1024, 512)


def test_a_fill_blends_each_element_with_its_colour(room, photo_and_map):
    photo, emap = photo_and_map
    column = room.global_ids[6]
    out = overlay(photo.image, emap, {column: (255, 0, 0)}, style="fill", alpha=0.5)
    mask = emap.mask(column)
    expected = photo.image[mask].astype(float) * 0.5 + np.array([255, 0, 0]) * 0.5
    assert np.abs(out[mask].astype(float) - expected).max() <= 1.0
    np.testing.assert_array_equal(out[~mask], photo.image[~mask])        # other elements untouched


def test_an_outline_follows_element_boundaries_only(room, photo_and_map):
    photo, emap = photo_and_map
    colors = {g: (0, 255, 0) for g in room.global_ids.tolist()}
    out = overlay(photo.image, emap, colors, style="outline", thickness=1)
    changed = np.any(out != photo.image, axis=2)
    edges = boundaries(emap.element_index, emap.depth_m)
    assert changed.sum() > 500
    assert (changed & ~edges).sum() == 0


def test_overlay_resamples_a_coarser_map_to_the_photo(room, photo_and_map):
    photo, _ = photo_and_map
    coarse = element_map(room, T, 256, 128)
    out = overlay(photo.image, coarse, {room.global_ids[0]: (0, 0, 255)}, style="fill")
    assert out.shape == photo.image.shape
    assert np.any(out != photo.image)


def test_colours_by_class_come_from_the_store(demo_store_path):
    from sitetwin.data.store import open_store

    with open_store(demo_store_path, read_only=True) as store:
        coloring = colors_by_class(store, "DEMO")
        gid = store.scalar("SELECT global_id FROM elements WHERE ifc_class = 'IfcColumn' LIMIT 1")
    assert coloring.colors[gid] == CLASS_COLORS["IfcColumn"]
    assert "IfcRailing" in coloring.legend
    assert class_color("IfcSomethingNew") == class_color("IfcSomethingNew")


def test_deviation_colours_run_from_green_to_red():
    assert deviation_color(2.0) == (40, 185, 80)
    assert deviation_color(-30.0)[0] > 200 and deviation_color(-30.0)[1] < 80
    assert deviation_color(None) == STATUS_COLORS["unknown"]


def test_the_difference_confirms_a_right_pose_better_than_a_wrong_one(room, photo_and_map):
    photo, emap = photo_and_map
    right = difference(photo.image, emap)
    wrong = difference(photo.image, element_map(room, pose_matrix([3.0, 4.0, 1.5], 22.0), 1024, 512))
    assert right.supported_share > 0.8
    # a 2 degree yaw error slides horizontal edges along themselves, but moves the vertical ones off
    assert wrong.supported_share < right.supported_share - 0.05
    column = room.global_ids[6]
    assert right.per_element[column][1] > 0.9 and wrong.per_element[column][1] < 0.7
    assert right.image.shape == photo.image.shape


def test_the_difference_shows_an_element_the_photo_lacks(room):
    """Built without the column: the design's column edges find no support in the photo."""
    built = np.ones(room.element_count, bool)
    built[6] = False
    photo = render_equirect(room.subset(built), T, 1024, 512, seed=3)
    result = difference(photo.image, element_map(room, T, 1024, 512))
    column = room.global_ids[6]
    assert result.per_element[column][1] < 0.3
    walls = [result.per_element[g][1] for g in room.global_ids[2:6].tolist() if g in result.per_element]
    assert np.median(walls) > 0.7


def test_colours_by_status_and_deviation_come_from_a_survey(store):
    from sitetwin.panorama.overlay import colors_by_deviation, colors_by_status
    from sitetwin.twin.survey_store import insert_rows

    insert_rows(store, "surveys", [{"survey_id": "S1", "site_code": "DEMO", "model_ids": ["m1"], "epoch": "2026-04-01",
                                    "registration_method": "transform", "T_model_from_survey": np.eye(4).tolist(),
                                    "point_count": 10, "status": "analysed"}])
    insert_rows(store, "element_deviation", [
        {"site_code": "DEMO", "survey_id": "S1", "model_id": "m1", "global_id": gid, "points": 10, "p95_mm": p95,
         "status": status}
        for gid, status, p95 in (("A", "built", 3.0), ("B", "not_built", None), ("C", "out_of_tolerance", 42.0))])
    status = colors_by_status(store, "DEMO")
    assert status.colors == {"A": STATUS_COLORS["built"], "B": STATUS_COLORS["not_built"],
                             "C": STATUS_COLORS["out_of_tolerance"]}
    assert status.details == {"survey_id": "S1"}
    deviation = colors_by_deviation(store, "DEMO", "S1")
    assert deviation.colors["A"] == deviation_color(3.0) and deviation.colors["B"] == STATUS_COLORS["unknown"]
    assert deviation.colors["C"][0] > 200 and deviation.colors["C"][1] < 80
