"""Element maps: every pixel's element and range, checked against an independent ray cast; compact storage."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sitetwin.panorama.camera import PerspectiveCamera, equirect_to_bearing, pose_matrix
from sitetwin.panorama.element_map import compact, element_map, element_map_perspective, read_map_files, write_map_files


def _embree_hits(mesh, origin, dirs):
    """Element and range of the first hit per ray, by trimesh's embree ray caster (not Open3D)."""
    import trimesh

    tm = trimesh.Trimesh(np.asarray(mesh.vertices, dtype=np.float64), mesh.faces, process=False)
    origins = np.repeat(np.asarray(origin, dtype=np.float64)[None], len(dirs), 0)
    tri, ray, loc = tm.ray.intersects_id(origins, dirs, multiple_hits=False, return_locations=True)
    elem = np.full(len(dirs), -1)
    rng = np.full(len(dirs), np.inf)
    elem[ray] = mesh.face_element[tri]
    rng[ray] = np.linalg.norm(loc - origins[ray], axis=1)
    return elem, rng


def test_an_element_maps_global_ids_match_the_elements_rays_really_hit(demo_mesh):
    T = pose_matrix([13.4, 7.0, 3.5 + 1.6], 25.0, 2.0, -1.0)
    W, H = 1024, 512
    emap = element_map(demo_mesh, T, W, H)
    rng = np.random.default_rng(0)
    rows, cols = rng.integers(0, H, 4000), rng.integers(0, W, 4000)
    dirs = equirect_to_bearing(np.stack([cols + 0.5, rows + 0.5], 1), W, H) @ T[:3, :3].T
    elem, dist = _embree_hits(demo_mesh, T[:3, 3], dirs)
    ours = emap.element_index[rows, cols]
    gid_ours = np.where(ours >= 0, emap.global_ids[np.maximum(ours, 0)], "")
    gid_true = np.where(elem >= 0, demo_mesh.global_ids[np.maximum(elem, 0)], "")
    agree = gid_ours == gid_true
    assert agree.mean() > 0.995          # rays grazing an edge between two elements may differ
    both = agree & (ours >= 0)
    assert np.abs(emap.depth_m[rows, cols][both] - dist[both]).max() < 2e-3
    assert emap.coverage > 0.99


def test_at_names_the_element_and_gives_its_3d_point(room):
    T = pose_matrix([3.0, 4.0, 1.5])
    emap = element_map(room, T, 512, 256)
    hit = emap.at(256.5, 128.5)       # straight ahead: the wall at x = 10
    assert hit.global_id == room.global_ids[3] and hit.model_id == "room"
    assert hit.point_m[0] == pytest.approx(10.0, abs=1e-3)
    assert hit.depth_m == pytest.approx(7.0, abs=0.01)
    assert emap.mask(room.global_ids[1]).sum() > 0
    with pytest.raises(ValueError, match="outside"):
        emap.at(10.0, 300.0)


def test_element_records_cover_the_sphere_and_rank_by_size(room):
    emap = element_map(room, pose_matrix([3.0, 4.0, 1.5]), 1024, 512)
    records = emap.elements()
    assert {r["global_id"] for r in records} == set(room.global_ids.tolist())
    assert sum(r["solid_angle_sr"] for r in records) == pytest.approx(4 * math.pi, rel=1e-5)   # midpoint rule
    floor = next(r for r in records if r["index"] == 0)
    assert floor["min_depth_m"] == pytest.approx(1.5, abs=0.01)
    assert floor["center_v"] > 256          # below the horizon


def test_a_perspective_element_map_agrees_with_the_panorama_map(room):
    T = pose_matrix([2.0, 6.0, 1.4], -30.0)
    cam = PerspectiveCamera.from_fov(320, 240, 70.0, yaw_deg=10.0, pitch_deg=-15.0)
    view = element_map_perspective(room, cam, T)
    pano = element_map(room, T, 2048, 1024)
    uu, vv = np.meshgrid(np.arange(320) + 0.5, np.arange(240) + 0.5)
    p = cam.to_pano(np.stack([uu, vv], -1).reshape(-1, 2), 2048, 1024)
    seen = pano.element_index[np.floor(p[:, 1]).astype(int), np.floor(p[:, 0]).astype(int) % 2048]
    assert (seen == view.element_index.ravel()).mean() > 0.98
    assert view.at(160.5, 120.5).global_id in set(room.global_ids.tolist())
    solid = view.pixel_solid_angles().sum()
    assert solid == pytest.approx(4 * math.asin(math.sin(math.radians(35)) * math.sin(math.atan(120 / cam.fy))),
                                  rel=1e-3)


def test_compact_storage_round_trips_ids_exactly_and_ranges_within_a_twentieth_of_a_percent(room, tmp_path):
    emap = element_map(room, pose_matrix([3.0, 4.0, 1.5], 20.0), 1024, 512)
    index, records = compact(emap)
    assert index.dtype == np.uint16 and index.max() == len(records)
    index_name, depth_name = write_map_files(tmp_path, index, emap.depth_m)
    assert index_name == "element_index.png"
    back, depth = read_map_files(tmp_path, index_name, depth_name)
    np.testing.assert_array_equal(back, index)
    lookup = {r["map_index"]: r["global_id"] for r in records}
    restored = np.vectorize(lambda i: lookup.get(int(i), ""))(back[::37, ::41])
    expected = np.where(emap.element_index[::37, ::41] >= 0,
                        emap.global_ids[np.maximum(emap.element_index[::37, ::41], 0)], "")
    np.testing.assert_array_equal(restored, expected)
    rel = np.abs(depth - emap.depth_m) / emap.depth_m
    assert rel.max() < 5e-4
    stored = sum(p.stat().st_size for p in tmp_path.iterdir())
    assert stored < 0.05 * emap.element_index.nbytes * 2     # far smaller than raw int32 + float32
