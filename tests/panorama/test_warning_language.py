"""A panorama import's warnings read in the reader's language; the report's str and the stored record
stay the English they always were."""

from __future__ import annotations

import warnings

import pytest
from PIL import Image

from sitetwin.data.errors import Note
from sitetwin.data.i18n import use_language
from sitetwin.panorama.camera import pose_matrix
from sitetwin.panorama.errors import PoseWarning
from sitetwin.panorama.pano_store import add_panorama, get_panorama


@pytest.fixture
def demo_store(demo_store_path, tmp_path):
    from sitetwin.data.store import copy_store, open_store

    db = copy_store(demo_store_path, tmp_path / "demo.duckdb")
    with open_store(db) as store:
        yield store


def test_a_camera_outside_the_model_warns_in_chinese_and_is_stored_in_english(demo_store, tmp_path):
    path = tmp_path / "far.jpg"
    Image.new("RGB", (512, 256), (128, 128, 128)).save(path, quality=80)
    with use_language("zh-CN"), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PoseWarning)
        report = add_panorama(demo_store, path, site_code="DEMO", pose=pose_matrix([200.0, 7.0, 1.6]))
        (line,) = report.warnings
        shown, issued = str(line), str(caught[0].message)
    assert isinstance(line, Note)
    assert line.startswith("panorama far.jpg: camera at (200.00, 7.00, 1.60) m stands outside the model's extent (")
    assert line.endswith("check the pose and its frame")
    assert shown == issued and shown.startswith("全景图 far.jpg：相机位于 (200.00, 7.00, 1.60) m，超出模型范围")
    stored = get_panorama(demo_store, report.pano_id).pose["warnings"]
    assert stored == [line] and type(stored[0]) is str          # the record is plain English


def test_a_refinement_refused_says_why_in_chinese_in_the_report_and_in_english_in_the_store(demo_store, tmp_path):
    path = tmp_path / "blank.jpg"
    Image.new("RGB", (1024, 512), (128, 128, 128)).save(path, quality=80)     # no edge to align on
    report = add_panorama(demo_store, path, site_code="DEMO", pose=pose_matrix([13.4, 7.0, 1.6], 25.0), refine=True)
    refined = report.pose["refined"]
    reason = refined["reason"]
    assert not refined["accepted"] and isinstance(reason, Note)
    stored = get_panorama(demo_store, report.pano_id).pose["refined"]["reason"]
    assert stored == reason and type(stored) is str
    with use_language("zh-CN"):
        chinese = str(reason)
    assert chinese != stored and any("\u4e00" <= ch <= "\u9fff" for ch in chinese)
