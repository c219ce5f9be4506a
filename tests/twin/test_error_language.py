"""Twin's errors read in the reader's language: a truncated LAS, a CRS that does not match, a bad control-point row
and a registration that misses the model, each refused in English by default and in Chinese under zh-CN, with the
same file names and figures; what is stored (``message_text``) stays English."""

from __future__ import annotations

import pickle
import re

import numpy as np
import pytest

from sitetwin.data.errors import message_text
from sitetwin.data.i18n import use_language
from sitetwin.twin.errors import ControlPointError, PointCloudError, RegistrationError
from sitetwin.twin.formats import read_scans

LAS = "pointcloud/las"


def test_a_truncated_las_reads_in_english_and_in_chinese_with_the_same_counts(shared_data, tmp_path):
    data = (shared_data / LAS / "simple.las").read_bytes()
    bad = tmp_path / "cut.las"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(PointCloudError) as info:
        read_scans(bad)
    english = str(info.value)
    done = int(re.search(r"read (\d+) of the 1065 points its header announces", english).group(1))
    assert english.startswith(f"{bad}: truncated") and done < 1065
    with use_language("zh-CN"):
        chinese = str(info.value)
    assert chinese.startswith(f"{bad}：LAS 文件已截断")
    assert f"文件头声明 1065 个点，只读到 {done} 个" in chinese
    assert "header announces" not in chinese      # only laspy's own reason, if any, stays as laspy said it


def test_a_file_that_declares_another_crs_is_refused_in_the_language_of_the_request(shared_data):
    path = shared_data / LAS / "file_with_both_wkt_and_geotiff_vlrs.las"
    with use_language("zh-CN"), pytest.raises(PointCloudError) as info:
        read_scans(path, crs="EPSG:4547")
    with use_language("zh-CN"):
        assert str(info.value) == (f"{path}：文件声明的坐标参考系为 EPSG:6880，而 --crs 指定为 EPSG:4547；"
                                   f"请去掉 --crs，或修正文件")
    # the language is the reader's, not the raiser's: the same error reads in English outside, and when stored
    assert str(info.value) == (f"{path}: the file declares CRS EPSG:6880 but --crs says EPSG:4547; leave --crs out, "
                               f"or fix the file")
    with use_language("zh-CN"):
        assert message_text(info.value) == str(info.value.text("en"))
        assert message_text(info.value).startswith(f"{path}: the file declares CRS EPSG:6880")


def test_a_control_point_row_that_is_not_a_number_names_its_line_in_either_language(tmp_path):
    from sitetwin.twin.registration import read_control_points

    path = tmp_path / "cp.csv"
    path.write_text("name,scan_x,scan_y,scan_z,model_x,model_y,model_z\n"
                    "CP1,0,0,0,10,20,0\n"
                    "CP2,1,0,zero,11,20,0\n", encoding="utf-8")
    with pytest.raises(ControlPointError) as info:
        read_control_points(path)
    assert str(info.value) == f"{path}: line 3: a coordinate is not a number"
    with use_language("zh-CN"):
        assert str(info.value) == f"{path}：第 3 行：有坐标不是数字"
    # pickled (a Ray worker's error reaching the driver) it keeps its fields, so it still reads in Chinese
    again = pickle.loads(pickle.dumps(info.value))
    with use_language("zh-CN"):
        assert str(again) == f"{path}：第 3 行：有坐标不是数字"


def test_a_cloud_that_misses_the_model_is_refused_with_its_method_and_hint_in_the_same_language(demo):
    from sitetwin.twin.distance import SurfaceIndex
    from sitetwin.twin.registration import check, register_transform

    lo, hi = demo.mesh.bounds()
    points = np.random.default_rng(0).uniform(lo, hi, (2000, 3)) + [500.0, 0.0, 0.0]   # 500 m beside the building
    result = register_transform(SurfaceIndex.from_mesh(demo.mesh), points, np.eye(4), method="none")
    with pytest.raises(RegistrationError) as info:
        check(result, label="far.las")
    assert str(info.value) == (
        "far.las: the cloud does not overlap the model: placed by the survey's own coordinates (--register none), "
        "only 0.0% of its points lie within 10 cm of a model surface; is it a scan of this site (and of the models "
        "given)? give control points (--control-points CP.csv) or a transform (--transform T.json)")
    with use_language("zh-CN"):
        assert str(info.value) == (
            "far.las：点云与模型不重叠：以实测自身坐标（--register none）放置后，仅 0.0% 的点位于模型表面 10 厘米以内；"
            "这是本工地（及所给模型）的扫描吗？请给出控制点（--control-points CP.csv）或变换矩阵（--transform T.json）")
