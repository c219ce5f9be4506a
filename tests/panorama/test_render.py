"""Rendered panoramas and perspective photos: exact ranges and ids, shaded and noisy images, extras."""

from __future__ import annotations

import numpy as np
import pytest

from sitetwin.panorama.camera import PerspectiveCamera, equirect_to_bearing, pose_matrix
from sitetwin.panorama.render import Extra, RayScene, RenderSettings, render_equirect, render_perspective

W, H = 1024, 512


@pytest.fixture(scope="module")
def room_render(room):
    return render_equirect(room, pose_matrix([3.0, 4.0, 1.5], yaw_deg=0.0), W, H, seed=3)


def test_a_pixel_looking_at_a_wall_reports_that_wall_and_its_exact_range(room_render):
    # a pixel a little right of centre and above the horizon sees the wall at x = 10
    u, v = 560.5, 230.5
    b = equirect_to_bearing(np.array([u, v]), W, H)
    expected = (10.0 - 3.0) / b[0]
    assert room_render.element_index[int(v), int(u)] == 3
    assert room_render.depth_m[int(v), int(u)] == pytest.approx(expected, abs=1e-3)
    assert room_render.global_ids[3] == room_render.global_ids[room_render.element_index[int(v), int(u)]]


def test_the_zenith_sees_the_ceiling_and_the_nadir_the_floor(room_render):
    assert room_render.element_index[0, 0] == 1
    assert room_render.depth_m[0, 0] == pytest.approx(1.5, abs=2e-3)
    assert room_render.element_index[H - 1, W // 3] == 0
    assert room_render.depth_m[H - 1, W // 3] == pytest.approx(1.5, abs=2e-3)


def test_ids_and_ranges_agree_with_an_independent_embree_ray_cast(room):
    import trimesh

    T = pose_matrix([2.5, 5.5, 1.2], yaw_deg=37.0, pitch_deg=4.0, roll_deg=-2.0)
    result = render_equirect(room, T, W, H)
    rng = np.random.default_rng(0)
    rows, cols = rng.integers(0, H, 3000), rng.integers(0, W, 3000)
    dirs = equirect_to_bearing(np.stack([cols + 0.5, rows + 0.5], 1), W, H) @ T[:3, :3].T
    tm = trimesh.Trimesh(room.vertices.astype(np.float64), room.faces, process=False)
    origins = np.repeat(T[None, :3, 3], len(dirs), 0)
    tri, ray, loc = tm.ray.intersects_id(origins, dirs, multiple_hits=False, return_locations=True)
    elem = np.full(len(dirs), -1)
    rng_m = np.full(len(dirs), np.inf)
    elem[ray] = room.face_element[tri]
    rng_m[ray] = np.linalg.norm(loc - origins[ray], axis=1)
    agree = result.element_index[rows, cols] == elem
    assert agree.mean() > 0.995     # only rays grazing an edge may disagree
    assert np.abs(result.depth_m[rows, cols][agree] - rng_m[agree]).max() < 2e-3


def test_images_are_shaded_textured_and_noisy_not_flat(room, room_render):
    image = room_render.image.astype(float)
    lum = image.mean(axis=2)
    idx = room_render.element_index
    # Lambert shading: walls facing different ways differ in brightness
    means = [lum[idx == e].mean() for e in (2, 3, 4, 5)]
    assert max(means) - min(means) > 8.0
    # texture and noise: inside one wall, the image varies
    assert lum[idx == 3].std() > 4.0
    # one seed gives one image; another seed changes the noise, not the scene
    again = render_equirect(room, pose_matrix([3.0, 4.0, 1.5]), W, H, seed=3)
    np.testing.assert_array_equal(again.image, room_render.image)
    other = render_equirect(room, pose_matrix([3.0, 4.0, 1.5]), W, H, seed=4)
    diff = other.image.astype(float) - image
    assert 1.5 < np.abs(diff).mean() < 12.0
    assert abs(diff.mean()) < 0.3
    np.testing.assert_array_equal(other.element_index, idx)


def test_noise_free_settings_give_a_smooth_image(room):
    quiet = RenderSettings(read_noise_dn=0.0, shot_noise=0.0, texture_amplitude=0.0)
    a = render_equirect(room, pose_matrix([3.0, 4.0, 1.5]), W, H, seed=1, settings=quiet)
    b = render_equirect(room, pose_matrix([3.0, 4.0, 1.5]), W, H, seed=2, settings=quiet)
    np.testing.assert_array_equal(a.image, b.image)


def test_extra_meshes_get_their_own_ids_colours_and_ranges(room):
    import trimesh

    worker = trimesh.creation.box(extents=(0.5, 0.5, 1.8))
    worker.apply_translation((6.0, 4.0, 0.9))
    helmet = trimesh.creation.box(extents=(0.3, 0.3, 0.15))
    helmet.apply_translation((6.0, 4.0, 1.875))
    extras = [Extra.from_mesh(worker, id="worker-1", color=(40, 60, 200)),
              Extra.from_mesh(helmet, id="worker-1/helmet", color=(250, 220, 0))]
    T = pose_matrix([3.0, 4.0, 1.5])
    result = render_equirect(room, T, W, H, extra=extras)
    assert result.extra_ids == ("worker-1", "worker-1/helmet")
    body = result.extra_mask("worker-1")
    hat = result.extra_mask("worker-1/helmet")
    assert body.sum() > 500 and hat.sum() > 20
    assert (result.element_index[body] == -1).all()
    r, g, b = result.image[body].astype(float).mean(0)
    assert b > r + 30 and b > g + 20          # blue overalls
    r, g, b = result.image[hat].astype(float).mean(0)
    assert r > b + 60 and g > b + 60          # yellow helmet
    # straight ahead at the horizon: the body's front face at x = 5.75
    assert result.depth_m[H // 2, W // 2] == pytest.approx(2.75, abs=5e-3)
    assert result.extra_index[H // 2, W // 2] == 0


def test_a_modelmesh_like_extra_keeps_one_id_per_part(room):
    from sitetwin.bim.geometry import ModelMesh
    from tests.panorama.conftest import box_mesh

    v1, f1 = box_mesh((5.0, 3.0, 0.0), (5.4, 3.4, 1.0))
    v2, f2 = box_mesh((5.0, 4.6, 0.0), (5.4, 5.0, 1.0))
    figure = ModelMesh(np.concatenate([v1, v2]).astype(np.float32), np.concatenate([f1, f2 + 8]).astype(np.int32),
                       np.repeat([0, 1], 12).astype(np.int32), np.array(["crate-a", "crate-b"]),
                       np.array(["x", "x"]), np.zeros(3))
    result = render_equirect(room, pose_matrix([3.0, 4.0, 0.5]), W, H, extra=[figure])
    assert result.extra_ids == ("crate-a", "crate-b")
    assert result.extra_mask("crate-a").sum() > 100 and result.extra_mask("crate-b").sum() > 100


def test_a_perspective_render_matches_the_panorama_through_the_exact_mapping(room):
    T = pose_matrix([2.5, 5.5, 1.2], yaw_deg=20.0)
    cam = PerspectiveCamera.from_fov(320, 240, 80.0, yaw_deg=-35.0, pitch_deg=12.0)
    scene = RayScene(room)
    view = render_perspective(room, cam, T, scene=scene)
    pano = render_equirect(room, T, 2048, 1024, scene=scene)
    uu, vv = np.meshgrid(np.arange(320) + 0.5, np.arange(240) + 0.5)
    puv = cam.to_pano(np.stack([uu, vv], -1).reshape(-1, 2), 2048, 1024)
    seen = pano.element_index[np.floor(puv[:, 1]).astype(int), np.floor(puv[:, 0]).astype(int) % 2048]
    assert (seen == view.element_index.reshape(-1)).mean() > 0.98   # pano pixels are coarser than the view
    depth = pano.depth_m[np.floor(puv[:, 1]).astype(int), np.floor(puv[:, 0]).astype(int) % 2048]
    same = seen == view.element_index.reshape(-1)
    assert np.median(np.abs(depth[same] - view.depth_m.reshape(-1)[same])) < 0.01


def test_rendering_refuses_a_size_that_is_not_two_to_one_and_a_transform_that_is_not_rigid(room):
    with pytest.raises(ValueError, match="2:1"):
        render_equirect(room, np.eye(4), 640, 480)
    bad = np.eye(4)
    bad[0, 0] = 2.0
    with pytest.raises(ValueError, match="not a rotation"):
        render_equirect(room, bad, 64, 32)
    with pytest.raises(ValueError, match="one colour per element"):
        render_equirect(room, np.eye(4), 64, 32, element_colors=np.zeros((3, 3)))


def test_the_demo_building_renders_from_a_storey_station(demo_mesh):
    T = pose_matrix([9.0, 7.0, 3.5 + 1.6], yaw_deg=20.0)
    result = render_equirect(demo_mesh, T, 1024, 512, seed=0)
    assert (result.element_index >= 0).mean() > 0.95     # inside a storey, the model fills the view
    finite = np.isfinite(result.depth_m)
    assert 0.5 < np.median(result.depth_m[finite]) < 20.0
    assert len(np.unique(result.element_index[result.element_index >= 0])) > 40
    assert result.image.std() > 10.0
