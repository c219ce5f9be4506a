"""Panorama errors and warnings read in the reader's language; what is stored stays English."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from PIL import Image

from sitetwin.data.errors import message_text
from sitetwin.data.i18n import use_language
from sitetwin.panorama.camera import pose_matrix
from sitetwin.panorama.errors import PanoramaImageError, PoseError, PoseWarning
from sitetwin.panorama.io import read_panorama
from sitetwin.panorama.pose import check_extent, read_control_points, solve_control_points


def test_a_control_point_row_that_is_not_numbers_is_refused_in_english_and_in_chinese(tmp_path):
    path = tmp_path / "points.csv"
    path.write_text("label,u,v,x_m,y_m,z_m\nA,10,20,three,4,5\n", encoding="utf-8")
    with pytest.raises(PoseError) as err:
        read_control_points(path)
    assert str(err.value) == f"{path} line 2: u, v, x_m, y_m, z_m must be numbers, got 10, 20, three, 4, 5"
    with use_language("zh-CN"):
        chinese = str(err.value)
    assert chinese == f"{path} 第 2 行：u、v、x_m、y_m、z_m 必须是数字，收到的是 10, 20, three, 4, 5"
    assert message_text(err.value) == str(err.value)          # the stored text is the English one


def test_an_image_that_is_not_two_to_one_is_refused_in_the_readers_language(tmp_path):
    path = tmp_path / "photo.png"
    Image.fromarray(np.zeros((200, 300, 3), np.uint8)).save(path)
    with pytest.raises(PanoramaImageError) as err:
        read_panorama(path)
    assert str(err.value).startswith(f"{path}: 300x200 is not an equirectangular panorama (width must be twice")
    with use_language("zh-CN"):
        chinese = str(err.value)
    assert chinese.startswith(f"{path}：300x200 不是等距柱状投影全景图（宽度必须是高度的两倍，2:1）")
    assert "360x180" in chinese


def test_too_few_control_points_name_the_image_in_chinese_too():
    uv = np.array([[10.0, 20.0], [30.0, 40.0], [50.0, 60.0]])
    xyz = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    with pytest.raises(PoseError) as err:
        solve_control_points(uv, xyz, 400, 200)
    assert str(err.value).startswith("control points: 3 control point(s) given; a panorama's pose needs at least 4")
    with use_language("zh-CN"):
        assert str(err.value).startswith("控制点：只给了 3 个控制点；全景图的位姿至少需要 4 个")


def test_a_pose_warning_reads_in_chinese_while_its_record_stays_english():
    bounds = np.array([[0.0, 0.0, 0.0], [30.0, 18.0, 15.0]])
    with use_language("zh-CN"), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PoseWarning)
        record = check_extent(pose_matrix([80, 10, 1.6]), bounds, label="pano X")
        shown = str(caught[0].message)
    assert record is not None and record.startswith("pano X: camera at (80.00, 10.00, 1.60) m stands outside")
    assert shown.startswith("pano X：相机位于 (80.00, 10.00, 1.60) m，超出模型范围（0.0..30.0, 0.0..18.0, 0.0..15.0) m")
    assert isinstance(caught[0].message, PoseWarning)
