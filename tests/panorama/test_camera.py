"""Camera conventions: pixels <-> bearings, poses, perspective cameras and exact mappings, cube faces."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sitetwin.panorama.camera import (
    CUBE_FACES,
    PerspectiveCamera,
    bearing_to_equirect,
    cube_face_camera,
    cube_faces,
    equirect_pixel_distance,
    equirect_to_bearing,
    look_at,
    perspective_view,
    pixel_bearings,
    pose_matrix,
    project_points,
    render_view,
    rotation_from_ypr,
    ypr_from_rotation,
)


def test_the_image_centre_looks_forward_and_the_top_row_looks_up():
    W, H = 4096, 2048
    np.testing.assert_allclose(equirect_to_bearing([W / 2, H / 2], W, H), [1, 0, 0], atol=1e-12)
    np.testing.assert_allclose(equirect_to_bearing([0, H / 2], W, H), [-1, 0, 0], atol=1e-12)
    # a quarter to the right of centre is the camera's right (-y), since y points left
    np.testing.assert_allclose(equirect_to_bearing([3 * W / 4, H / 2], W, H), [0, -1, 0], atol=1e-12)
    np.testing.assert_allclose(equirect_to_bearing([123.0, 0.0], W, H), [0, 0, 1], atol=1e-12)


def test_pixels_and_bearings_round_trip_including_the_seam():
    W, H = 2048, 1024
    rng = np.random.default_rng(0)
    uv = np.column_stack([rng.uniform(0, W, 1000), rng.uniform(1, H - 1, 1000)])
    back = bearing_to_equirect(equirect_to_bearing(uv, W, H), W, H)
    assert equirect_pixel_distance(back, uv, W).max() < 1e-8
    assert equirect_pixel_distance([[0.2, 10.0]], [[W - 0.3, 10.0]], W)[0] == pytest.approx(0.5)


def test_pixel_bearings_are_the_bearings_of_pixel_centres():
    b = pixel_bearings(64, 32)
    np.testing.assert_allclose(b[5, 7], equirect_to_bearing([7.5, 5.5], 64, 32), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(b, axis=2), 1.0, atol=1e-6)


def test_yaw_pitch_roll_round_trip_and_mean_what_they_say():
    for ypr in [(30.0, 10.0, -5.0), (-170.0, -45.0, 20.0), (0.0, 0.0, 0.0)]:
        np.testing.assert_allclose(ypr_from_rotation(rotation_from_ypr(*ypr)), ypr, atol=1e-9)
    R = rotation_from_ypr(90.0, 0.0, 0.0)
    np.testing.assert_allclose(R[:, 0], [0, 1, 0], atol=1e-12)          # yaw 90: forward along +y
    R = rotation_from_ypr(0.0, 30.0, 0.0)
    assert R[2, 0] == pytest.approx(math.sin(math.radians(30)))        # pitch up: forward rises


def test_projecting_a_model_point_and_casting_its_pixel_meet_again():
    T = pose_matrix([2.0, -1.0, 1.5], 40.0, 5.0, -3.0)
    p = np.array([[7.0, 3.0, 0.2]])
    uv, rng = project_points(p, T, 4096, 2048)
    d = T[:3, :3] @ equirect_to_bearing(uv[0], 4096, 2048)
    np.testing.assert_allclose(T[:3, 3] + d * rng[0], p[0], atol=1e-9)


def test_look_at_points_the_forward_axis_at_the_target():
    T = look_at([1, 2, 3], [4, 6, 3])
    np.testing.assert_allclose(T[:3, 0], [0.6, 0.8, 0.0], atol=1e-12)
    np.testing.assert_allclose(T[:3, 2], [0, 0, 1], atol=1e-12)


def test_a_perspective_pixel_maps_exactly_to_the_panorama_and_back():
    cam = PerspectiveCamera.from_fov(800, 600, 75.0, yaw_deg=-120.0, pitch_deg=25.0, roll_deg=4.0)
    rng = np.random.default_rng(1)
    uv = np.column_stack([rng.uniform(0, 800, 500), rng.uniform(0, 600, 500)])
    pano = cam.to_pano(uv, 4096, 2048)
    back, front = cam.from_pano(pano, 4096, 2048)
    assert front.all()
    assert np.abs(back - uv).max() < 1e-7
    # the centre of the view is its yaw/pitch direction
    centre = cam.to_pano([[400.0, 300.0]], 4096, 2048)[0]
    expected = bearing_to_equirect(rotation_from_ypr(-120.0, 25.0, 4.0)[:, 0], 4096, 2048)
    assert equirect_pixel_distance(centre, expected, 4096) < 1e-8


def test_a_box_across_the_seam_maps_to_one_contiguous_panorama_box():
    cam = PerspectiveCamera.from_fov(640, 480, 60.0, yaw_deg=180.0)     # looks at the seam
    u1, v1, u2, v2 = cam.box_to_pano((300, 200, 340, 280), 4096, 2048)
    assert 0 <= u1 < 4096 and u2 > 4096          # crosses the seam: u2 wraps
    assert (u2 - u1) == pytest.approx(40 / cam.fx * 4096 / (2 * math.pi), rel=0.05)
    assert v1 < 1024 < v2


def test_a_box_holding_the_zenith_spans_every_azimuth():
    cam = PerspectiveCamera.from_fov(512, 512, 90.0, pitch_deg=90.0)
    u1, v1, u2, v2 = cam.box_to_pano((200, 200, 312, 312), 2048, 1024)
    assert (u1, v1, u2) == (0.0, 0.0, 2048.0)
    assert 0 < v2 < 1024 * 0.1


def test_a_perspective_view_shows_the_panorama_pixels_it_maps_to():
    W, H = 1024, 512
    rng = np.random.default_rng(2)
    pano = np.repeat(np.repeat(rng.integers(0, 255, (H // 8, W // 8, 3), dtype=np.uint8), 8, 0), 8, 1)
    cam = PerspectiveCamera.from_fov(200, 150, 60.0, yaw_deg=35.0, pitch_deg=-20.0)
    view = render_view(pano, cam, nearest=True)
    uv = np.column_stack([rng.uniform(5, 195, 300), rng.uniform(5, 145, 300)])
    uv = np.floor(uv) + 0.5
    p = cam.to_pano(uv, W, H)
    expect = pano[np.floor(p[:, 1]).astype(int), np.floor(p[:, 0]).astype(int) % W]
    got = view[(uv[:, 1] - 0.5).astype(int), (uv[:, 0] - 0.5).astype(int)]
    assert np.mean(np.all(expect == got, axis=1)) > 0.99      # nearest sampling: exactly those pixels


def test_the_real_panorama_yields_six_cube_faces(shared_data):
    from sitetwin.panorama.io import read_panorama

    pano = read_panorama(shared_data / "panorama" / "examplepano.jpg").pixels
    faces = cube_faces(pano, 256)
    assert set(faces) == set(CUBE_FACES)
    for face in faces.values():
        assert face.shape == (256, 256, 3) and face.dtype == np.uint8
    # an outdoor landscape: blue sky above, grey-brown ground below
    up, down = faces["up"].reshape(-1, 3).astype(float), faces["down"].reshape(-1, 3).astype(float)
    assert (up[:, 2] - up[:, 0]).mean() > 50
    assert abs((down[:, 2] - down[:, 0]).mean()) < 20
    # the front face's central 32 x 32 pixels (11.25 deg) show the panorama's central 128 x 128
    centre = pano[960:1088, 1984:2112].reshape(-1, 3).astype(float).mean(0)
    assert np.abs(faces["front"][112:144, 112:144].reshape(-1, 3).astype(float).mean(0) - centre).max() < 6
    view = perspective_view(pano, 90.0, 0.0, 90.0, 256, 256)
    diff = np.abs(view.astype(int) - faces["left"])        # side faces reuse the front map, shifted
    assert diff.max() <= 4 and diff.mean() < 0.05
    assert cube_face_camera("right", 256).yaw_deg == -90.0


def test_bad_camera_parameters_are_refused():
    with pytest.raises(ValueError, match="fov_deg"):
        PerspectiveCamera.from_fov(100, 100, 190.0)
    with pytest.raises(ValueError, match="2h"):
        cube_faces(np.zeros((100, 150, 3), np.uint8), 32)
    with pytest.raises(ValueError, match="no cube face"):
        cube_face_camera("sideways", 32)
