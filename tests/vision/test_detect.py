"""vision.detect and vision.panoramic: letterboxing, tiling, merging across tiles, views and the seam."""

from __future__ import annotations

import numpy as np
import pytest

from sitetwin.vision.boxes import batched_nms, box_iou, letterbox, merge_boxes
from sitetwin.vision.detect import tile_origins
from sitetwin.vision.panoramic import PanoViews


def test_letterbox_maps_boxes_back_to_the_original_pixels_exactly():
    image = np.zeros((360, 640, 3), np.uint8)
    blob, lb = letterbox(image, 320)
    assert blob.shape == (3, 320, 320) and lb.scale == pytest.approx(0.5)
    assert lb.pad_y == 70 and lb.pad_x == 0
    net = np.array([[10.0, 80.0, 110.0, 170.0]])        # a box in network pixels
    np.testing.assert_allclose(lb.to_image(net), [[20.0, 20.0, 220.0, 200.0]])
    rect, lb2 = letterbox(image, (384, 640))            # a 16:9 graph: no scaling, 12 px bands
    assert rect.shape == (3, 384, 640) and lb2.scale == 1.0 and lb2.pad_y == 12


@pytest.mark.parametrize("length,tile,overlap,wrap", [(4096, 640, 0.2, True), (2048, 640, 0.2, False),
                                                      (700, 640, 0.2, False), (640, 640, 0.0, False)])
def test_tiles_cover_every_pixel_with_the_overlap_asked_for(length, tile, overlap, wrap):
    starts = tile_origins(length, tile, overlap, wrap)
    covered = np.zeros(length, int)
    for s in starts:
        covered[np.arange(s, s + tile) % length if wrap else np.arange(s, min(s + tile, length))] += 1
    assert covered.min() >= 1
    if len(starts) > 1:
        gaps = np.diff(starts)
        assert gaps.max() <= tile * (1 - overlap) + 1          # neighbours share at least the overlap
    if not wrap:
        assert starts[0] == 0 and starts[-1] + tile >= length and starts[-1] + tile <= max(length, tile)


def test_a_box_cut_by_the_seam_merges_with_its_whole_twin_across_it():
    W = 4096.0
    xyxy = np.array([[4050.0, 900, 4130, 1100],     # across the seam, unwrapped past the width
                     [-46.0 + W, 902, 34 + W, 1098],  # the same object, seen by another view
                     [10.0, 900, 90, 1100]])          # another object near the seam's far side
    rank = np.array([0.9, 0.8, 0.7])
    keep = merge_boxes(xyxy, rank, np.zeros(3, int), 0.5, wrap_width=W)
    assert keep.tolist() == [0, 2]
    # a box at x = 4050..4130 and its copy at -46..34 (shifted by a turn) are the same box
    same = merge_boxes(np.array([[4050.0, 900, 4130, 1100], [-46.0, 900, 34, 1100]]), np.array([0.9, 0.8]),
                       np.zeros(2, int), 0.5, wrap_width=W)
    assert same.tolist() == [0]


def test_boxes_of_different_classes_never_suppress_each_other():
    xyxy = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [1, 1, 10, 10.0]])
    keep = batched_nms(xyxy, np.array([0.9, 0.8, 0.7]), np.array([0, 1, 0]), 0.5)
    assert sorted(keep.tolist()) == [0, 1]
    assert box_iou(xyxy[0], xyxy[2:])[0] == pytest.approx(81 / 100)


def test_the_panorama_views_see_every_direction_round_the_horizon_and_below():
    from sitetwin.panorama.camera import angles_to_bearing

    views = PanoViews()
    cams = views.cameras()
    assert len(cams) == views.ring + views.low_ring + views.slices
    az = np.radians(np.arange(0, 360, 5))
    for el_deg in (-70, -40, -10, 0, 20, 40):
        bearings = angles_to_bearing(az, np.full(len(az), np.radians(el_deg)))
        seen = np.zeros(len(az), bool)
        for cam in cams:
            uv, front = cam.project(bearings)
            inside = front & (uv[:, 0] >= 0) & (uv[:, 0] < cam.width) & (uv[:, 1] >= 0) & (uv[:, 1] < cam.height)
            seen |= inside
        assert seen.all(), f"elevation {el_deg} deg has blind azimuths"
