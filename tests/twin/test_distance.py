"""Exact signed point-to-model distance with element attribution, checked against trimesh's closest points."""

from __future__ import annotations

import numpy as np
import pytest

from sitetwin.twin.distance import SurfaceIndex
from sitetwin.twin.sampling import sample_surface


@pytest.fixture(scope="module")
def index(demo):
    return SurfaceIndex.from_mesh(demo.mesh)


@pytest.fixture(scope="module")
def mixed_points(demo):
    """Points near the surfaces (3 mm noise) and scattered through and around the building."""
    rng = np.random.default_rng(0)
    s = sample_surface(demo.mesh, spacing_m=0.3, seed=1)
    near = s.points + s.normals * rng.normal(0, 0.003, (len(s.points), 1))
    lo, hi = demo.mesh.bounds()
    far = rng.uniform(lo - 5.0, hi + 5.0, (1000, 3))
    return np.concatenate([near, far]), s


def test_distances_match_trimeshs_exact_closest_points_near_and_far(demo, index, mixed_points):
    import trimesh

    points, _ = mixed_points
    rng = np.random.default_rng(2)
    pick = np.r_[rng.choice(len(points) - 1000, 1000, replace=False), np.arange(len(points) - 1000, len(points))]
    tm = trimesh.Trimesh(demo.mesh.vertices.astype(float), demo.mesh.faces, process=False)
    _, ref, _ = trimesh.proximity.closest_point(tm, points[pick])
    got = index.query(points[pick])
    err = np.abs(np.abs(got.distance_m) - ref)
    # trimesh prunes its candidates heuristically and can miss the nearest triangle: where the two
    # disagree, settle it by brute force over every triangle
    doubt = np.flatnonzero(err > 1e-6 + 5e-7 * ref)
    if len(doubt):
        from trimesh.triangles import closest_point

        tri = demo.mesh.vertices[demo.mesh.faces].astype(float)
        for i in doubt:
            p = points[pick][i]
            ref[i] = np.linalg.norm(closest_point(tri, np.repeat(p[None], len(tri), 0)) - p, axis=1).min()
        err = np.abs(np.abs(got.distance_m) - ref)
    # exact up to float32 output: a micrometre, a little more far away
    assert (err <= 1e-6 + 5e-7 * ref).all(), (err.max(), len(doubt))
    # the grid answers near points itself; far ones come from the hierarchy, just as exactly
    assert index.cell_m == pytest.approx(0.3)


def test_points_in_front_of_a_face_are_positive_and_behind_negative(demo, index, mixed_points):
    _, s = mixed_points
    # faces where two elements touch (a column's top under a beam) are never seen: leave them out
    exposed = index.query(s.points, other_within_m=0.01).other_m >= 0.01
    assert exposed.mean() > 0.6
    inside = s.points[exposed] - 0.004 * s.normals[exposed]
    outside = s.points[exposed] + 0.004 * s.normals[exposed]
    r_in, r_out = index.query(inside), index.query(outside)
    # windows are frame and glass solids in contact within one element: a few of their faces
    # have their own element's other solid just in front
    assert (r_out.distance_m > 0).mean() > 0.995
    # thin parts (2 cm toe boards, window frames) put a few inside points nearer the far face
    assert (r_in.distance_m < 0).mean() > 0.98
    assert np.median(r_out.distance_m) == pytest.approx(0.004, abs=1e-6)
    assert np.median(r_in.distance_m) == pytest.approx(-0.004, abs=1e-6)


def test_each_point_is_attributed_to_the_element_it_was_sampled_on(index, mixed_points):
    _, s = mixed_points
    r = index.query(s.points + 0.002 * s.normals)
    assert (r.element == s.element).mean() > 0.99
    assert (r.on_face == (r.triangle >= 0)).mean() > 0.9


def test_a_face_shared_by_two_elements_goes_to_the_one_the_scanner_sees():
    # two unit squares on z = 0: element 0 faces up, element 1 faces down (a slab top over a column top)
    v = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], float)
    faces = np.array([[0, 1, 2], [0, 2, 3], [0, 2, 1], [0, 3, 2]])
    index = SurfaceIndex(v, faces, np.array([0, 0, 1, 1]))
    p = np.array([[0.5, 0.4, 0.001], [0.5, 0.4, -0.001]])
    above = index.query(p, point_station=np.array([0, 0]), stations=np.array([[0.5, 0.5, 2.0]]))
    below = index.query(p, point_station=np.array([0, 0]), stations=np.array([[0.5, 0.5, -2.0]]))
    assert above.element.tolist() == [0, 0] and below.element.tolist() == [1, 1]
    # with no station, the face a point lies in front of wins
    assert index.query(p).element.tolist() == [0, 1]
    assert index.query(p, other_within_m=0.01).other_m == pytest.approx([0.001, 0.001], abs=1e-6)


def test_exact_far_off_gives_inf_beyond_one_cell_and_the_same_answer_inside(index, mixed_points):
    points, _ = mixed_points
    a = index.query(points)
    b = index.query(points, exact_far=False)
    inside = np.abs(a.distance_m) < index.cell_m
    assert np.array_equal(a.distance_m[inside], b.distance_m[inside])
    assert np.isinf(b.distance_m[np.abs(a.distance_m) > 2 * index.cell_m]).all()
    assert (b.triangle[np.isinf(b.distance_m)] == -1).all()


def test_an_empty_mesh_answers_inf_and_bad_shapes_are_refused():
    empty = SurfaceIndex(np.zeros((0, 3)), np.zeros((0, 3), int))
    r = empty.query(np.zeros((4, 3)))
    assert np.isinf(r.distance_m).all() and (r.element == -1).all()
    with pytest.raises(ValueError, match=r"\(n, 3\)"):
        empty.query(np.zeros((4, 2)))
