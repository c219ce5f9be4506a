"""What panorama publishes for other packages to read: the elements an element map sees, and its files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sitetwin.bim.queries import current_model_ids
from sitetwin.panorama.camera import pose_matrix
from sitetwin.panorama.io import save_image
from sitetwin.panorama.pano_store import add_panorama, compute_element_map
from sitetwin.panorama.queries import element_map_files, map_elements

STATION = pose_matrix([13.4, 7.0, 1.6], 25.0)


@pytest.fixture
def mapped(demo_store_path, demo_mesh, tmp_path):
    """A copy of the demo store with one posed panorama (512 x 256) and no element map yet."""
    from sitetwin.data.store import copy_store, open_store
    from sitetwin.panorama.render import render_equirect

    photo = render_equirect(demo_mesh, STATION, 512, 256, seed=5)
    path = save_image(tmp_path / "station.jpg", photo.image, quality=92)
    with open_store(copy_store(demo_store_path, tmp_path / "demo.duckdb")) as store:
        pano_id = add_panorama(store, path, site_code="DEMO", pose=STATION).pano_id
        yield store, pano_id


def test_the_map_elements_count_every_pixel_of_the_map_largest_first(mapped):
    store, pano_id = mapped
    assert map_elements(store, pano_id) == [] and element_map_files(store, pano_id) is None
    emap = compute_element_map(store, pano_id)
    rows = map_elements(store, pano_id)
    seen, pixels = np.unique(emap.element_index[emap.element_index >= 0], return_counts=True)
    assert {r["global_id"] for r in rows} == set(emap.global_ids[seen].tolist())
    by_gid = {r["global_id"]: r["pixels"] for r in rows}
    assert by_gid == dict(zip(emap.global_ids[seen].tolist(), pixels.tolist()))
    assert [r["pixels"] for r in rows] == sorted(by_gid.values(), reverse=True)
    assert {r["model_id"] for r in rows} == set(current_model_ids(store, "DEMO"))    # posed without a model: all
    # a full sphere is 4 pi sr: the elements' solid angles add up to the map's coverage of it
    assert sum(r["solid_angle_sr"] for r in rows) == pytest.approx(4 * np.pi * emap.coverage, rel=0.02)
    assert all(0 < r["min_depth_m"] <= r["median_depth_m"] < 60 for r in rows)


def test_the_map_files_lie_in_the_store_cache_folder(mapped):
    store, pano_id = mapped
    compute_element_map(store, pano_id)
    files = element_map_files(store, pano_id)
    assert set(files) == {"index_file", "depth_file"}
    for rel in files.values():
        assert not Path(rel).is_absolute() and (Path(store.cache_dir) / rel).is_file()
    assert files["index_file"].endswith(".png") and files["depth_file"].endswith(".npz")
    assert element_map_files(store, "P000") is None and map_elements(store, "P000") == []


def test_a_sites_panoramas_come_oldest_first_with_their_pose_and_whether_they_have_a_map(mapped, tmp_path):
    import datetime as dt
    import json

    from sitetwin.panorama.pano_store import get_panorama
    from sitetwin.panorama.queries import (
        element_map_created_at,
        pano_in_site,
        panorama_count,
        panorama_site,
        panoramas,
    )

    store, posed = mapped
    image = np.zeros((128, 256, 3), np.uint8)
    image[:, :128] = 200
    unposed = add_panorama(store, save_image(tmp_path / "unposed.jpg", image), site_code="DEMO", name="gate",
                           captured_at=dt.datetime(2026, 5, 1, 9, 30)).pano_id
    frame = panoramas(store, "DEMO")
    assert frame["pano_id"].tolist() == [unposed, posed]              # unknown capture time last
    rows = frame.set_index("pano_id")
    assert (rows.loc[unposed, "name"], rows.loc[unposed, "width"], rows.loc[unposed, "height"]) == ("gate", 256, 128)
    assert rows.loc[unposed, "captured_at"] == dt.datetime(2026, 5, 1, 9, 30)
    assert pd.isna(rows.loc[posed, "captured_at"])
    assert rows.loc[posed, "pose_source"] == get_panorama(store, posed).pose_source
    assert np.allclose(json.loads(rows.loc[posed, "T_model_from_camera"]), STATION)
    assert pd.isna(rows.loc[unposed, "T_model_from_camera"])
    assert rows["has_map"].tolist() == [0, 0] and element_map_created_at(store, posed) is None
    compute_element_map(store, posed)
    assert panoramas(store, "DEMO").set_index("pano_id")["has_map"].to_dict() == {unposed: 0, posed: 1}
    assert isinstance(element_map_created_at(store, posed), dt.datetime)
    assert panorama_count(store, "DEMO") == 2 and panorama_count(store, "ELSEWHERE") == 0
    assert panoramas(store, "ELSEWHERE").empty
    assert (pano_in_site(store, "DEMO", posed), pano_in_site(store, "ELSEWHERE", posed)) == (posed, None)
    assert pano_in_site(store, "DEMO", None) is None
    assert (panorama_site(store, unposed), panorama_site(store, "P000")) == ("DEMO", None)


def test_a_panoramas_pose_and_each_sites_panorama_summary(store, tmp_path):
    import datetime as dt

    from sitetwin.data.sites import upsert_site
    from sitetwin.panorama.queries import panorama_pose, panorama_summary

    for code in ("S", "T"):
        upsert_site(store, code)
    images = []
    for i in range(3):
        image = np.zeros((64, 128, 3), np.uint8)
        image[:, : 20 * (i + 1)] = 200                      # three different images
        images.append(save_image(tmp_path / f"p{i}.jpg", image))
    posed = add_panorama(store, images[0], site_code="S", pose=STATION, captured_at=dt.datetime(2026, 5, 1, 9)).pano_id
    unposed = add_panorama(store, images[1], site_code="S").pano_id
    add_panorama(store, images[2], site_code="T", captured_at=dt.datetime(2026, 4, 1))
    pose = panorama_pose(store, posed)
    assert (pose["site_code"], pose["width"], pose["height"]) == ("S", 128, 64)
    assert np.allclose(pose["T_model_from_camera"], STATION)
    assert panorama_pose(store, unposed)["T_model_from_camera"] is None and panorama_pose(store, "P-none") is None
    summary = panorama_summary(store, None).set_index("site_code")
    assert summary[["panoramas", "posed"]].to_dict("index") == {"S": {"panoramas": 2, "posed": 1},
                                                               "T": {"panoramas": 1, "posed": 0}}
    assert summary.loc["T", "last_at"] == pd.Timestamp("2026-04-01")
    # S's unposed panorama has no capture time: the time it was added counts, and that is the newest
    added = store.scalar("SELECT added_at FROM panoramas WHERE pano_id = ?", [unposed])
    assert summary.loc["S", "last_at"] == pd.Timestamp(max(added, dt.datetime(2026, 5, 1, 9)))
    assert panorama_summary(store, ["S"], added_before=dt.datetime(2000, 1, 1)).empty
    assert panorama_summary(store, ["T"])["panoramas"].tolist() == [1]
