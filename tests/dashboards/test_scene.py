"""The model as merged, level-of-detail plotly traces, and picking back from a clicked vertex."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def geom(demo_store_path):
    from sitetwin.bim.mesh import load_mesh
    from sitetwin.dashboards.queries import element_attributes
    from sitetwin.dashboards.scene import prepare
    from sitetwin.data.store import open_store

    with open_store(demo_store_path, read_only=True) as store:
        mesh = load_mesh(store, site_code="DEMO")
        attrs = element_attributes(store, sorted(set(mesh.model_ids.tolist())))
    return mesh, prepare(mesh, attrs)


def _triangles(vertices, faces):
    """Sorted triangle corner coordinates (rounded to 0.1 mm), order-independent within and across faces."""
    tri = np.round(vertices[faces].astype(np.float64), 4)
    tri = np.sort(tri.view([("x", float), ("y", float), ("z", float)]).reshape(len(faces), 3), axis=1)
    return np.sort(tri.view(float).reshape(len(faces), 9), axis=0)


def test_preparing_groups_every_face_under_its_element(geom):
    mesh, g = geom
    assert g.element_count == mesh.element_count
    assert int(g.triangles.sum()) == mesh.triangle_count
    for e in (0, g.element_count // 2, g.element_count - 1):
        mine = mesh.faces[mesh.face_element == e]
        ours = g.faces[g.face_start[e]:g.face_start[e + 1]]
        assert np.array_equal(np.sort(mine, axis=0), np.sort(ours, axis=0))
        assert g.vert_lo[e] <= ours.min() and ours.max() < g.vert_hi[e]


def test_element_boxes_hold_their_vertices_and_classes_come_from_the_store(geom):
    mesh, g = geom
    used = g.faces.reshape(-1)
    owner = np.repeat(np.repeat(np.arange(g.element_count), g.triangles), 3)
    v = mesh.vertices[used]
    assert np.all(v >= g.lo[owner] - 1e-5) and np.all(v <= g.hi[owner] + 1e-5)
    assert set(g.ifc_class.tolist()) >= {"IfcColumn", "IfcBeam", "IfcSlab", "IfcWall"}
    assert "?" not in set(g.ifc_class.tolist())


def test_the_merged_mesh_with_an_ample_budget_carries_every_triangle_once_in_its_bins_colour(geom):
    from sitetwin.dashboards.scene import Bin, merged_traces

    mesh, g = geom
    classes = sorted(set(g.ifc_class.tolist()))
    bin_of = np.array([classes.index(c) for c in g.ifc_class.tolist()])
    traces, owners, stats = merged_traces(g, bin_of, [Bin(c, f"rgb({i},0,0)") for i, c in enumerate(classes)],
                                          budget=10_000_000)
    assert len(traces) == 1                          # one draw call for the whole model
    t, owner = traces[0], owners[0]
    assert stats["boxes"] == 0 and stats["triangles"] == mesh.triangle_count == len(t["i"])
    verts = np.column_stack([t["x"], t["y"], t["z"]])
    faces = np.column_stack([t["i"], t["j"], t["k"]])
    assert faces.min() >= 0 and faces.max() < len(verts)
    # each face's colour (a bin index through the stepped colour scale) is its element's class
    assert t["intensitymode"] == "cell" and len(t["intensity"]) == len(faces)
    assert len(owner) == len(faces)                  # picking reports faces of a cell-coloured mesh
    assert np.array_equal(np.asarray(t["intensity"]), bin_of[owner])
    for i, cls in enumerate(classes):
        mine = np.isin(mesh.face_element, np.flatnonzero(g.ifc_class == cls))
        ours = faces[np.asarray(t["intensity"]) == i]
        assert np.allclose(_triangles(verts, ours), _triangles(mesh.vertices, mesh.faces[mine]), atol=1e-4)
        assert set(stats["bins"][cls].tolist()) == set(np.flatnonzero(g.ifc_class == cls).tolist())
    scale = t["colorscale"]
    assert scale[2 * 3][1] == "rgb(3,0,0)" and t["cmin"] == -0.5 and t["cmax"] == len(classes) - 0.5


def test_bins_drawn_see_through_go_into_a_second_mesh(geom):
    from sitetwin.dashboards.scene import Bin, merged_traces

    _, g = geom
    bin_of = (g.ifc_class == "IfcSlab").astype(int)
    traces, owners, stats = merged_traces(g, bin_of, [Bin("other", "grey"), Bin("slabs", "red", 0.25, boxes=True)])
    assert stats["full"] + stats["boxes"] == g.element_count and stats["boxes"] >= (g.ifc_class == "IfcSlab").sum()
    assert [t["opacity"] for t in traces] == [1.0, 0.25]
    assert set(g.ifc_class[np.unique(owners[1])].tolist()) == {"IfcSlab"}
    assert "IfcSlab" not in set(g.ifc_class[np.unique(owners[0])].tolist())


def test_a_small_budget_keeps_the_largest_elements_whole_and_boxes_the_rest(geom):
    from sitetwin.dashboards.scene import BOX_TRIANGLES, Bin, detail_mask, merged_traces

    _, g = geom
    budget = 20_000
    visible = np.ones(g.element_count, bool)
    full = detail_mask(g, visible, budget)
    drawn = np.where(full, g.triangles, np.minimum(g.triangles, BOX_TRIANGLES)).sum()
    assert drawn <= budget
    heavy = g.triangles > BOX_TRIANGLES
    # every heavy element drawn in full is at least as large as every heavy one drawn as a box
    assert g.size_m[full & heavy].min() >= g.size_m[~full & heavy].max() - 1e-6
    traces, owners, stats = merged_traces(g, np.zeros(g.element_count, int), [Bin("all", "grey")], budget=budget)
    assert len(traces) == 1
    assert stats["triangles"] == drawn and stats["boxes"] == int((~full).sum())
    # a boxed element is its bounding box: 8 corners at its extent
    boxed = np.flatnonzero(~full)[0]
    t = traces[0]
    faces = np.column_stack([t["i"], t["j"], t["k"]])[owners[0] == boxed]
    assert len(faces) == BOX_TRIANGLES
    corners = np.column_stack([t["x"], t["y"], t["z"]])[np.unique(faces)]
    assert len(corners) == 8
    assert np.allclose(corners.min(0), g.lo[boxed]) and np.allclose(corners.max(0), g.hi[boxed])


def test_when_even_the_boxes_do_not_fit_the_smallest_elements_are_left_out(geom):
    from sitetwin.dashboards.scene import BOX_TRIANGLES, COVER_SHARE, level_of_detail

    _, g = geom
    budget = 3_000
    shown, full = level_of_detail(g, np.ones(g.element_count, bool), budget)
    assert 0 < shown.sum() < g.element_count
    assert g.size_m[shown].min() >= g.size_m[~shown].max() - 1e-6          # the largest are kept
    cost = np.where(full, g.triangles, np.minimum(g.triangles, BOX_TRIANGLES))[shown].sum()
    assert cost <= budget
    assert np.minimum(g.triangles, BOX_TRIANGLES)[shown].sum() <= budget * COVER_SHARE
    assert not (full & ~shown).any()


def test_picking_maps_a_clicked_vertex_back_to_its_element(geom):
    from sitetwin.dashboards import scene

    _, g = geom
    bin_of = (g.ifc_class == "IfcColumn").astype(int)
    traces, owners, _ = scene.merged_traces(g, bin_of, [scene.Bin("other", "grey"), scene.Bin("columns", "red")])
    key = scene.figure_key({"test": "picking"})
    scene.remember_picks(key, [None, *owners])
    column = int(np.flatnonzero(g.ifc_class == "IfcColumn")[3])
    face = int(np.flatnonzero(owners[0] == column)[0])
    assert scene.pick(key, 1, face) == column
    # that face's corners are the column's own
    t = traces[0]
    corner = np.array([t["x"][t["i"][face]], t["y"][t["i"][face]], t["z"][t["i"][face]]])
    assert np.all(corner >= g.lo[column] - 1e-5) and np.all(corner <= g.hi[column] + 1e-5)
    assert scene.pick(key, 0, 0) is None                 # trace without elements (points, sensors)
    assert scene.pick("unknown-key", 1, 0) is None
    assert scene.pick(key, 2, 10**9) is None


def test_deviation_bands_cover_the_magnitude_scale():
    from sitetwin.dashboards.scene import deviation_band, deviation_bins

    labels, colors = deviation_bins()
    assert deviation_band(None) == "not measured" and deviation_band(float("nan")) == "not measured"
    assert deviation_band(-3.0) == labels[0] and deviation_band(5.0) == labels[0]
    assert deviation_band(7.5) == labels[1] and deviation_band(-39.0) == labels[3] and deviation_band(41) == labels[4]
    assert set(labels) == set(colors)
