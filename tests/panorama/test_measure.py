"""Measurement on panoramas: model depth, scan depth, the floor plane from camera height, heights, clearances."""

from __future__ import annotations

import numpy as np
import pytest

from sitetwin.panorama.camera import pose_matrix, project_points
from sitetwin.panorama.errors import PanoramaError
from sitetwin.panorama.measure import (
    ScanDepth,
    clearance,
    distance,
    floor_point,
    height_above_floor,
    level_pose,
    model_point,
    parse_uv,
)
from sitetwin.panorama.render import RayScene

W, H = 4096, 2048


@pytest.fixture(scope="module")
def room_scene(room):
    return RayScene(room)


def _click(T, point):
    """The pixel a user clicks on a model point: the centre of the pixel holding it."""
    uv, _ = project_points(np.asarray(point, dtype=float)[None], T, W, H)
    return np.floor(uv[0]) + 0.5


def test_the_distance_between_two_clicked_corners_is_within_one_percent(room, room_scene):
    T = pose_matrix([3.0, 4.0, 1.5], 10.0)
    a = (6.8, 1.8, 0.0)                 # the column's foot corner
    b = (10.0, 8.0, 0.0)                # the far room corner on the floor
    pa = model_point(room_scene, T, _click(T, a), W, H)
    pb = model_point(room_scene, T, _click(T, b), W, H)
    m = distance(pa, pb)
    true = float(np.linalg.norm(np.subtract(a, b)))
    assert abs(m.distance_m - true) / true < 0.01
    assert m.vertical_m == pytest.approx(0.0, abs=0.01)
    assert pa.method == "model" and pa.global_id in (room.global_ids[0], room.global_ids[6])
    assert 0 < m.uncertainty_m < 0.02


def test_snapping_lands_exactly_on_the_model_corner(room_scene):
    T = pose_matrix([3.0, 4.0, 1.5], 10.0)
    corner = (6.8, 2.2, 3.0)            # the column's top corner at the ceiling, between its two visible faces
    near = _click(T, corner) + (1.0, 1.0)
    p = model_point(room_scene, T, near, W, H, snap_px=3.0)
    assert p.method == "model_corner"
    np.testing.assert_allclose(p.point_m, corner, atol=1e-5)


def test_the_floor_plane_from_camera_height_alone_measures_without_a_model():
    T = level_pose(1.6)
    a, b = np.array([3.0, -1.0, 0.0]), np.array([5.0, 2.5, 0.0])
    pa = floor_point(T, _click(T, a), W, H, 0.0)
    pb = floor_point(T, _click(T, b), W, H, 0.0)
    m = distance(pa, pb)
    assert abs(m.distance_m - np.linalg.norm(a - b)) < 0.01
    assert pa.method == "floor" and pa.point_m[2] == pytest.approx(0.0, abs=1e-9)
    assert floor_point(T, (100.0, 500.0), W, H, 0.0) is None        # above the horizon: not the floor


def test_a_height_follows_from_the_foot_and_top_pixels(room):
    T = pose_matrix([3.0, 4.0, 1.5], 10.0)
    foot, top = (6.8, 1.8, 0.0), (6.8, 1.8, 3.0)
    h = height_above_floor(T, _click(T, foot), _click(T, top), W, H, 0.0)
    assert h["height_m"] == pytest.approx(3.0, abs=0.02)
    assert h["distance_m"] == pytest.approx(np.hypot(3.8, 2.2), abs=0.02)


def test_clearance_below_a_soffit_and_up_to_the_ceiling(room_scene):
    down = clearance(room_scene, (5.0, 5.0, 3.0), direction="down")
    assert down["clearance_m"] == pytest.approx(3.0, abs=1e-3)
    up = clearance(room_scene, (5.0, 5.0, 0.0), direction="up")
    assert up["clearance_m"] == pytest.approx(3.0, abs=1e-3)
    assert clearance(room_scene, (50.0, 5.0, 0.0), direction="up") is None


def test_scan_depth_measures_what_was_built_not_what_was_designed(room):
    """A wall built 6 cm off its design position: scan depth sees it, model depth does not."""
    T = pose_matrix([3.0, 4.0, 1.5])
    rng = np.random.default_rng(0)
    wall = np.column_stack([np.full(60000, 10.06), rng.uniform(0, 8, 60000), rng.uniform(0, 3, 60000)])
    floor = np.column_stack([rng.uniform(0, 10, 60000), rng.uniform(0, 8, 60000), np.zeros(60000)])
    points = np.concatenate([wall, floor]) + rng.normal(0, 0.002, (120000, 3))
    scan = ScanDepth(points, T)
    uv = _click(T, (10.0, 5.0, 1.2))
    p = scan.point(uv, T, W, H)
    assert p.method == "scan" and p.support >= 3
    assert p.point_m[0] == pytest.approx(10.06, abs=0.01)
    assert model_point(RayScene(room), T, uv, W, H).point_m[0] == pytest.approx(10.0, abs=0.01)
    assert scan.point(_click(T, (5.0, 5.0, 3.0)), T, W, H) is None     # the ceiling was not scanned


def test_pixels_are_parsed_and_checked():
    assert parse_uv("12.5,300") == (12.5, 300.0)
    with pytest.raises(PanoramaError, match="expected U,V"):
        parse_uv("12;300")
    with pytest.raises(PanoramaError, match="outside the 4096x2048 image"):
        floor_point(level_pose(1.6), (5000.0, 1500.0), W, H, 0.0)
    with pytest.raises(PanoramaError, match="camera height must be positive"):
        level_pose(0.0)


def test_measure_on_a_stored_panorama_uses_model_depth_or_the_floor(demo_store_path, tmp_path, demo_mesh):
    from sitetwin.data.store import copy_store, open_store
    from sitetwin.panorama.io import save_image
    from sitetwin.panorama.measure import measure
    from sitetwin.panorama.pano_store import add_panorama
    from sitetwin.panorama.render import render_equirect

    db = copy_store(demo_store_path, tmp_path / "m.duckdb")
    T = pose_matrix([13.4, 7.0, 1.6], 25.0)
    photo = render_equirect(demo_mesh, T, 2048, 1024, seed=1)
    path = save_image(tmp_path / "p.jpg", photo.image)
    a, b = np.array([12.2, 6.2, 0.0]), np.array([17.8, 11.8, 0.0])     # column foot corners on the ground slab
    ua, _ = project_points(a[None], T, 2048, 1024)
    ub, _ = project_points(b[None], T, 2048, 1024)
    with open_store(db) as store:
        pid = add_panorama(store, path, model_id=store.scalar("SELECT model_id FROM models"), pose=T).pano_id
        m = measure(store, pid, ua[0], ub[0])
        f = measure(store, pid, ua[0], ub[0], depth="floor", camera_height_m=1.6)
        with pytest.raises(PanoramaError, match="scan depth needs a survey"):
            measure(store, pid, ua[0], ub[0], depth="scan")
        from sitetwin.panorama.pano_store import set_pose

        set_pose(store, pid, pose_matrix([13.4, 7.0, 14.0 + 1.6]))        # on the roof: the zenith is sky
        with pytest.raises(PanoramaError, match="sees no model surface"):
            measure(store, pid, (1024.5, 5.5), (1024.5, 1000.5))
    true = float(np.linalg.norm(a - b))
    assert abs(m.distance_m - true) / true < 0.01 and m.start.method == "model"
    assert abs(f.distance_m - true) / true < 0.01 and f.start.method == "floor"


def test_measure_takes_scan_depth_from_a_registered_survey_through_twin(demo_store_path, tmp_path, demo_mesh):
    """A synthetic analysed survey (twin's tables and Parquet layout) whose slab was cast 15 mm high."""
    import pandas as pd

    from sitetwin.data.store import cache_dir_for, copy_store, open_store
    from sitetwin.panorama.io import save_image
    from sitetwin.panorama.measure import measure
    from sitetwin.panorama.pano_store import add_panorama
    from sitetwin.twin.survey_store import insert_rows

    db = copy_store(demo_store_path, tmp_path / "s.duckdb")
    T = pose_matrix([13.4, 7.0, 1.6], 25.0)
    rng = np.random.default_rng(0)
    slab = np.column_stack([rng.uniform(8, 20, 400_000), rng.uniform(2, 13, 400_000), np.full(400_000, 0.015)])
    rel = "surveys/S00000000ab1/points.parquet"
    path = cache_dir_for(db) / rel
    path.parent.mkdir(parents=True)
    pd.DataFrame({"x_m": slab[:, 0].astype(np.float32), "y_m": slab[:, 1].astype(np.float32),
                  "z_m": slab[:, 2].astype(np.float32)}).to_parquet(path)
    a, b = np.array([10.0, 9.0, 0.0]), np.array([17.0, 11.0, 0.0])     # both in clear view of the camera
    ua, _ = project_points(a[None], T, 2048, 1024)
    ub, _ = project_points(b[None], T, 2048, 1024)
    image = save_image(tmp_path / "p.jpg", np.full((1024, 2048, 3), 128, np.uint8))
    with open_store(db) as store:
        insert_rows(store, "surveys", [{"survey_id": "S00000000ab1", "site_code": "DEMO",
                                        "model_ids": [store.scalar("SELECT model_id FROM models")],
                                        "epoch": "2026-04-01", "registration_method": "transform",
                                        "T_model_from_survey": np.eye(4).tolist(), "point_count": len(slab),
                                        "points_file": rel, "status": "analysed"}])
        pid = add_panorama(store, image, site_code="DEMO", pose=T).pano_id
        scan = measure(store, pid, ua[0], ub[0], survey_id="S00000000ab1")
        model = measure(store, pid, ua[0], ub[0], depth="model")
    assert scan.start.method == scan.end.method == "scan" and scan.details["survey_id"] == "S00000000ab1"
    assert scan.start.point_m[2] == pytest.approx(0.015, abs=0.004)
    assert model.start.point_m[2] == pytest.approx(0.0, abs=0.002)
    true = float(np.linalg.norm(a - b))
    assert abs(scan.distance_m - true) / true < 0.01
