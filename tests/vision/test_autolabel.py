"""vision.autolabel: model elements projected into a posed panorama become YOLO boxes and masks."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from sitetwin.vision.autolabel import AutolabelConfig, autolabel_panoramas, labels_for_view
from sitetwin.vision.datasets import read_yolo
from sitetwin.vision.errors import VisionError
from sitetwin.vision.panoramic import PanoViews


@pytest.fixture(scope="module")
def posed_store(demo_store_path, demo_site, tmp_path_factory):
    """A copy of the demo store with one rendered, posed panorama on Level 1."""
    from sitetwin.data.store import open_store
    from sitetwin.panorama.camera import pose_matrix
    from sitetwin.panorama.io import save_image
    from sitetwin.panorama.pano_store import add_panorama
    from sitetwin.panorama.render import render_equirect

    folder = tmp_path_factory.mktemp("autolabel")
    db = folder / "site.duckdb"
    shutil.copyfile(demo_store_path, db)
    shutil.copytree(demo_store_path.parent / f"{demo_store_path.name}.cache", folder / "site.duckdb.cache")
    T = pose_matrix([9.0, 9.0, 3.5 + 1.6], 20.0)
    render = render_equirect(demo_site.mesh, T, 1024, 512, seed=4)
    path = save_image(folder / "l1.jpg", render.image)
    with open_store(db) as store:
        pano_id = add_panorama(store, path, site_code="DEMO", pose=T).pano_id
    return db, pano_id, T


def test_columns_in_view_get_the_box_their_outline_projects_to(posed_store, demo_site, tmp_path):
    from sitetwin.data.store import open_store

    db, pano_id, T = posed_store
    views = PanoViews(size=320, ring=4, low_ring=0, slices=0)
    with open_store(db, read_only=True) as store:
        report = autolabel_panoramas(store, [pano_id], tmp_path / "labels", views=views,
                                     config=AutolabelConfig(min_pixels=150))
        bbox = {r["global_id"]: r for r in store.rows(
            "SELECT global_id, bbox_min_x_m AS x0, bbox_min_y_m AS y0, bbox_min_z_m AS z0, bbox_max_x_m AS x1, "
            "bbox_max_y_m AS y1, bbox_max_z_m AS z1 FROM elements WHERE ifc_class = 'IfcColumn'")}
    assert report.images >= 3 and report.per_class.get("column", 0) >= 4
    ds = read_yolo(tmp_path / "labels")
    assert not ds.errors and len(ds.samples) == report.images
    # recompute one view's labels and compare each whole column box with its projected outline
    from sitetwin.panorama.element_map import element_map_perspective

    cam = views.cameras()[0]
    emap = element_map_perspective(demo_site.mesh, cam, T, scene=demo_site.sampler.scene)
    classes = [("column" if demo_site.classes.get(g) == "IfcColumn" else None) for g in demo_site.mesh.global_ids]
    found = [label for label in labels_for_view(emap.element_index, classes, demo_site.mesh.global_ids,
                                                AutolabelConfig(min_pixels=150))]
    checked = 0
    for lab in found:
        x1, y1, x2, y2 = lab.xyxy
        if x1 <= 1 or y1 <= 1 or x2 >= cam.width - 1 or y2 >= cam.height - 1:
            continue                                           # cut by the view's border
        b = bbox[lab.global_id]
        corners = np.array([[x, y, z] for x in (b["x0"], b["x1"]) for y in (b["y0"], b["y1"])
                            for z in (b["z0"], b["z1"])])
        local = (corners - T[:3, 3]) @ T[:3, :3]
        uv, front = cam.project(local / np.linalg.norm(local, axis=1, keepdims=True))
        if not front.all():
            continue
        px1, py1 = uv.min(0)
        px2, py2 = uv.max(0)
        inter = max(0, min(x2, px2) - max(x1, px1)) * max(0, min(y2, py2) - max(y1, py1))
        union = (x2 - x1) * (y2 - y1) + (px2 - px1) * (py2 - py1) - inter
        if inter / union > 0.8:
            checked += 1
    assert checked >= 2


def test_masks_are_written_as_polygons_and_unbuilt_elements_are_left_out(posed_store, demo_site, tmp_path):
    from sitetwin.data.store import open_store

    db, pano_id, _ = posed_store
    views = PanoViews(size=320, ring=4, low_ring=0, slices=0)
    no_columns = {g for g, c in demo_site.classes.items() if c != "IfcColumn"}
    with open_store(db, read_only=True) as store:
        masks = autolabel_panoramas(store, [pano_id], tmp_path / "masks", views=views,
                                    config=AutolabelConfig(min_pixels=150, masks=True))
        without = autolabel_panoramas(store, [pano_id], tmp_path / "no-columns", views=views,
                                      config=AutolabelConfig(min_pixels=150), element_ids=no_columns)
    ds = read_yolo(tmp_path / "masks")
    assert ds.warnings and all(i.kind == "polygon" for i in ds.warnings)
    assert len(ds.warnings) == masks.labels
    assert "column" not in without.names and without.labels > 0


def test_a_panorama_without_a_pose_cannot_be_labelled(posed_store, tmp_path):
    from sitetwin.data.store import open_store

    db, _, _ = posed_store
    with open_store(db, read_only=True) as store:
        with pytest.raises(Exception, match="no panorama|not found|unknown|no such"):
            autolabel_panoramas(store, ["P-does-not-exist"], tmp_path / "x")
        with pytest.raises(VisionError, match="no panoramas"):
            autolabel_panoramas(store, [], tmp_path / "y")
