"""Panoramas in the store: import with pose and time, one transaction per import, element maps by pano id."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from PIL import Image

from sitetwin.panorama.camera import pose_matrix, project_points
from sitetwin.panorama.errors import PanoramaError, PanoramaImageError, PoseError, PoseWarning
from sitetwin.panorama.io import save_image, write_e57_panorama
from sitetwin.panorama.pano_store import (
    add_panorama,
    add_panoramas,
    compute_element_map,
    get_panorama,
    list_panoramas,
    load_element_map,
    load_image,
    pano_id_for,
    set_pose,
)
from sitetwin.panorama.pose import ControlPoints

STATION = pose_matrix([13.4, 7.0, 1.6], 25.0)
TABLES = ("panoramas", "panorama_control_points", "panorama_element_maps", "panorama_elements")


@pytest.fixture
def demo_store(demo_store_path, tmp_path):
    """A writable copy of the demo store (site DEMO, one model)."""
    from sitetwin.data.store import copy_store, open_store

    db = copy_store(demo_store_path, tmp_path / "demo.duckdb")
    with open_store(db) as store:
        yield store


@pytest.fixture(scope="module")
def station_photo(demo_mesh, tmp_path_factory):
    from sitetwin.panorama.render import render_equirect

    result = render_equirect(demo_mesh, STATION, 1024, 512, seed=5)
    path = save_image(tmp_path_factory.mktemp("photos") / "station.jpg", result.image, quality=92)
    return path, result


def _counts(store):
    return {t: store.scalar(f"SELECT count(*) FROM {t}") for t in TABLES}


def _model(store):
    return store.scalar("SELECT model_id FROM models")


def test_a_panorama_is_stored_with_site_time_pose_and_checksum(demo_store, station_photo):
    path, _ = station_photo
    report = add_panorama(demo_store, path, model_id=_model(demo_store), pose=STATION,
                          captured_at=dt.datetime(2026, 4, 1, 10, 0))
    p = get_panorama(demo_store, report.pano_id)
    assert p.site_code == "DEMO" and p.model_id == _model(demo_store)
    assert (p.width, p.height) == (1024, 512)
    assert p.captured_at == dt.datetime(2026, 4, 1, 10, 0)
    np.testing.assert_allclose(p.T_model_from_camera, STATION)
    assert p.pose_source == "given" and p.pano_id == pano_id_for("DEMO", p.sha256)
    assert load_image(p).shape == (512, 1024, 3)
    # the same image again, without a pose, changes nothing
    again = add_panorama(demo_store, path, model_id=_model(demo_store))
    assert again.reused and again.pano_id == report.pano_id
    assert [x.pano_id for x in list_panoramas(demo_store, "DEMO")] == [report.pano_id]


def test_control_points_are_solved_and_stored_with_their_residuals(demo_store, station_photo, demo_mesh):
    path, photo = station_photo
    verts = np.unique(demo_mesh.vertices.astype(np.float64), axis=0)
    uv, rng_m = project_points(verts, STATION, 1024, 512)
    col, row = np.floor(uv[:, 0]).astype(int) % 1024, np.clip(np.floor(uv[:, 1]).astype(int), 0, 511)
    pool = np.flatnonzero((np.abs(photo.depth_m[row, col] - rng_m) < 0.02 * rng_m) & (rng_m > 2) & (rng_m < 15))
    pick = [int(pool[(uv[pool, 0] * 6 // 1024) == s][0]) for s in range(6) if np.any((uv[pool, 0] * 6 // 1024) == s)]
    cps = ControlPoints(uv[pick], verts[pick], tuple(f"p{i}" for i in range(len(pick))))
    report = add_panorama(demo_store, path, model_id=_model(demo_store), control_points=cps)
    assert report.pose_source == "control_points"
    assert np.linalg.norm(np.array(report.pose["position_m"]) - STATION[:3, 3]) < 0.01
    rows = demo_store.rows("SELECT * FROM panorama_control_points WHERE pano_id = ? ORDER BY point_index",
                           [report.pano_id])
    assert len(rows) == len(pick) and all(r["inlier"] for r in rows)
    assert max(r["residual_px"] for r in rows) < 0.05
    stored = demo_store.one("SELECT pose_points, pose_inliers, pose_rms_px FROM panoramas WHERE pano_id = ?",
                            [report.pano_id])
    assert stored["pose_points"] == len(pick) and stored["pose_rms_px"] < 0.05


def test_bad_images_leave_the_store_as_it_was(demo_store, station_photo, tmp_path):
    path, _ = station_photo
    add_panorama(demo_store, path, model_id=_model(demo_store), pose=STATION)
    before = _counts(demo_store)
    Image.fromarray(np.zeros((300, 400, 3), np.uint8)).save(tmp_path / "four-by-three.jpg")
    (tmp_path / "truncated.jpg").write_bytes(path.read_bytes()[:5000])
    for bad in ("four-by-three.jpg", "truncated.jpg"):
        with pytest.raises(PanoramaImageError, match=bad):
            add_panoramas(demo_store, [path, tmp_path / bad],   # the good one is not written either
                          model_id=_model(demo_store))
        assert _counts(demo_store) == before


def test_bad_control_points_leave_the_store_as_it_was(demo_store, station_photo):
    path, _ = station_photo
    before = _counts(demo_store)
    few = ControlPoints(np.array([[10.0, 10.0], [20.0, 30.0], [40.0, 50.0]]), np.eye(3), ("a", "b", "c"))
    with pytest.raises(PoseError, match="at least 4"):
        add_panorama(demo_store, path, model_id=_model(demo_store), control_points=few)
    outside = ControlPoints(np.array([[10.0, 10.0], [2000.0, 30.0], [40.0, 50.0], [60.0, 70.0]]),
                            np.array([[0, 0, 0], [5, 0, 0], [0, 5, 0], [0, 0, 5.0]]), tuple("abcd"))
    with pytest.raises(PoseError, match="outside the 1024x512 image: b"):
        add_panorama(demo_store, path, model_id=_model(demo_store), control_points=outside)
    assert _counts(demo_store) == before


def test_an_unknown_model_is_refused(demo_store, station_photo):
    with pytest.raises(PanoramaError, match="no model 'nope'"):
        add_panorama(demo_store, station_photo[0], model_id="nope", pose=STATION)
    assert _counts(demo_store)["panoramas"] == 0


def test_a_pose_outside_the_model_warns_but_imports(demo_store, station_photo):
    with pytest.warns(PoseWarning, match="outside the model's extent"):
        report = add_panorama(demo_store, station_photo[0], model_id=_model(demo_store),
                              pose=pose_matrix([200.0, 7.0, 1.6]))
    assert report.warnings and "outside" in report.warnings[0]
    assert get_panorama(demo_store, report.pano_id).pose["warnings"] == list(report.warnings)


def test_an_e57_panorama_imports_with_its_pose_and_image_beside_the_store(demo_store, station_photo, tmp_path):
    _, photo = station_photo
    T_file = pose_matrix([3.0, 1.0, 0.0], 90.0)          # the E57 file frame, placed in the site
    T_cam_file = np.linalg.inv(T_file) @ STATION
    e57 = write_e57_panorama(tmp_path / "scan.e57", photo.image, T_cam_file, name="st-1",
                             captured_at=dt.datetime(2026, 4, 2, 11, 0))
    [report] = add_panoramas(demo_store, [e57], model_id=_model(demo_store), T_model_from_file=T_file)
    p = get_panorama(demo_store, report.pano_id)
    assert p.pose_source == "e57" and p.name == "st-1"
    np.testing.assert_allclose(p.T_model_from_camera, STATION, atol=1e-9)
    assert abs((p.captured_at - dt.datetime(2026, 4, 2, 11, 0)).total_seconds()) < 1e-3
    assert p.file.exists() and p.file.parent.name == p.pano_id and p.source.endswith("scan.e57#images2D/0")
    assert load_image(p).shape == (512, 1024, 3)


def test_the_element_map_is_stored_compactly_and_loads_by_pano_id(demo_store, station_photo):
    path, photo = station_photo
    report = add_panorama(demo_store, path, model_id=_model(demo_store), pose=STATION)
    with pytest.raises(PanoramaError, match="no element map"):
        load_element_map(demo_store, report.pano_id)
    computed = compute_element_map(demo_store, report.pano_id)
    loaded = load_element_map(demo_store, report.pano_id)
    gid = lambda m: np.where(m.element_index >= 0, m.global_ids[np.maximum(m.element_index, 0)], "")  # noqa: E731
    np.testing.assert_array_equal(gid(loaded), gid(computed))
    np.testing.assert_array_equal(gid(loaded), np.where(photo.element_index >= 0,
                                                        photo.global_ids[np.maximum(photo.element_index, 0)], ""))
    row = demo_store.one("SELECT * FROM panorama_element_maps WHERE pano_id = ?", [report.pano_id])
    assert row["element_count"] == len(loaded.global_ids) == demo_store.scalar(
        "SELECT count(*) FROM panorama_elements WHERE pano_id = ?", [report.pano_id])
    assert row["coverage"] > 0.99
    hit = loaded.at(512.5, 300.5)
    assert hit is not None and hit.global_id == photo.global_ids[photo.element_index[300, 512]]
    # a new pose makes the old map stale: it is dropped, and recomputed on request
    set_pose(demo_store, report.pano_id, pose_matrix([14.0, 7.5, 1.6], 60.0))
    with pytest.raises(PanoramaError, match="no element map"):
        load_element_map(demo_store, report.pano_id)
    assert load_element_map(demo_store, report.pano_id, compute=True).coverage > 0.99


def test_an_unposed_panorama_has_no_element_map(demo_store, shared_data):
    report = add_panorama(demo_store, shared_data / "panorama" / "examplepano.jpg", site_code="DEMO")
    assert report.pose_source == "none" and (report.width, report.height) == (4096, 2048)
    with pytest.raises(PanoramaError, match="has no pose"):
        compute_element_map(demo_store, report.pano_id)
    with pytest.raises(PanoramaError, match="no panorama 'P000'"):
        get_panorama(demo_store, "P000")


def test_refine_corrects_an_orientation_a_degree_off_when_importing(demo_store, station_photo):
    import math

    from sitetwin.panorama.camera import rotation_from_ypr

    off = STATION.copy()
    off[:3, :3] = STATION[:3, :3] @ rotation_from_ypr(1.0, 0.0, 0.0)
    report = add_panorama(demo_store, station_photo[0], model_id=_model(demo_store), pose=off, refine=True)
    stored = get_panorama(demo_store, report.pano_id).T_model_from_camera
    R = stored[:3, :3].T @ STATION[:3, :3]
    assert math.degrees(math.acos(min(1.0, (np.trace(R) - 1) / 2))) < 0.3      # 1024-px photo: 0.35 deg/px
    assert report.pose["refined"]["accepted"] is True


def test_refine_with_control_points_corrects_the_camera_position_too(demo_store, station_photo, demo_mesh):
    path, photo = station_photo
    verts = np.unique(demo_mesh.vertices.astype(np.float64), axis=0)
    uv, rng_m = project_points(verts, STATION, 1024, 512)
    col, row = np.floor(uv[:, 0]).astype(int) % 1024, np.clip(np.floor(uv[:, 1]).astype(int), 0, 511)
    seen = np.flatnonzero((np.abs(photo.depth_m[row, col] - rng_m) < 0.02 * rng_m) & (rng_m > 6))
    rng = np.random.default_rng(2)
    pick = [int(rng.choice(seen[(uv[seen, 0] * 8 // 1024) == s])) for s in range(8)
            if np.any((uv[seen, 0] * 8 // 1024) == s)]
    clicked = uv[pick] + rng.normal(0.0, 1.0, (len(pick), 2))
    cps = ControlPoints(clicked, verts[pick], tuple(f"p{i}" for i in range(len(pick))))
    plain = add_panorama(demo_store, path, model_id=_model(demo_store), control_points=cps, name="plain")
    refined = add_panorama(demo_store, path, model_id=_model(demo_store), control_points=cps, refine=True)
    assert refined.pose["refined"]["method"] == "pose"
    assert refined.pose["refined"]["accepted"] is True, refined.pose["refined"]["reason"]
    before = np.linalg.norm(np.asarray(plain.pose["position_m"]) - STATION[:3, 3])
    stored = get_panorama(demo_store, refined.pano_id).T_model_from_camera
    after = np.linalg.norm(stored[:3, 3] - STATION[:3, 3])
    # a 1024-px photo (0.35 deg per px): 1.9 cm to about 1 cm; test_refine checks the accuracy at 2048 px
    assert before > 0.015 and after < 0.7 * before
    assert refined.pose["refined"]["delta_position_cm"] == pytest.approx(
        (100 * (stored[:3, 3] - np.asarray(plain.pose["position_m"]))).tolist(), abs=0.02)


def test_a_pose_refinement_given_up_for_too_few_model_edges_keeps_the_solved_pose(demo_store, station_photo,
                                                                                 demo_mesh, monkeypatch):
    """refine_pose stops before matching (no matched share, no agreement measure): the import records why."""
    from dataclasses import replace

    from sitetwin.panorama import refine

    path, photo = station_photo
    verts = np.unique(demo_mesh.vertices.astype(np.float64), axis=0)
    uv, rng_m = project_points(verts, STATION, 1024, 512)
    col, row = np.floor(uv[:, 0]).astype(int) % 1024, np.clip(np.floor(uv[:, 1]).astype(int), 0, 511)
    seen = np.flatnonzero((np.abs(photo.depth_m[row, col] - rng_m) < 0.02 * rng_m) & (rng_m > 6))
    pick = [int(seen[(uv[seen, 0] * 8 // 1024) == s][0]) for s in range(8) if np.any((uv[seen, 0] * 8 // 1024) == s)]
    cps = ControlPoints(uv[pick], verts[pick], tuple(f"p{i}" for i in range(len(pick))))
    never_enough = replace(refine.DEFAULT_POSE_REFINE_CONFIG, min_edge_points=10 ** 9)
    refine_pose = refine.refine_pose
    monkeypatch.setattr(refine, "refine_pose", lambda *a, **k: refine_pose(*a, **k, config=never_enough))
    report = add_panorama(demo_store, path, model_id=_model(demo_store), control_points=cps, refine=True)
    refined = report.pose["refined"]
    assert refined["method"] == "pose" and refined["accepted"] is False
    assert "too few to align on" in refined["reason"]
    assert refined["edges_matched"] is None and refined["agreement_chi2"] is None


def test_control_points_that_fix_the_camera_poorly_import_with_a_warning(demo_store, station_photo, demo_mesh):
    path, photo = station_photo
    verts = np.unique(demo_mesh.vertices.astype(np.float64), axis=0)
    uv, rng_m = project_points(verts, STATION, 1024, 512)
    col, row = np.floor(uv[:, 0]).astype(int) % 1024, np.clip(np.floor(uv[:, 1]).astype(int), 0, 511)
    seen = (np.abs(photo.depth_m[row, col] - rng_m) < 0.02 * rng_m) & (rng_m > 2)
    # five corners, all in one quarter of the view: the camera's position along that direction is loose
    pool = np.flatnonzero(seen & (uv[:, 0] > 100) & (uv[:, 0] < 356))
    pick = pool[np.linspace(0, len(pool) - 1, 5).astype(int)]
    cps = ControlPoints(uv[pick], verts[pick], tuple(f"p{i}" for i in range(len(pick))))
    with pytest.warns(PoseWarning, match=r"fix the camera position only to about \d+\.\d cm per pixel"):
        report = add_panorama(demo_store, path, model_id=_model(demo_store), control_points=cps)
    assert report.pose_source == "control_points" and "nearer the camera" in report.warnings[-1]
    assert report.pose["position_sigma_cm_per_deg"] > 30 and report.pose["weak_geometry"] is True
