"""The workbench's 2D figures name their axes in the reader's language, never by a frame's column name."""

from __future__ import annotations

import pandas as pd

from sitetwin.dashboards import figures as f
from sitetwin.data.i18n import use_language


def _elements() -> pd.DataFrame:
    return pd.DataFrame({"ifc_class": ["IfcWall", "IfcWall", "IfcSlab"], "mean_mm": [1.5, -2.0, 4.0],
                         "p95_mm": [3.0, 5.0, 8.0]})


def test_element_histogram_axis_names_the_statistic_in_chinese_not_the_column():
    with use_language("zh-CN"):
        fig = f.element_deviation_histogram(_elements())
    title = fig["layout"]["xaxis"]["title"]["text"]
    assert "mean_mm" not in title and "构件" in title and "毫米" in title
    assert sorted(t["name"] for t in fig["data"]) == ["IfcSlab", "IfcWall"]
    assert len(fig["data"][1]["x"]) == 2


def test_element_histogram_axis_reads_english_by_default():
    fig = f.element_deviation_histogram(_elements(), column="p95_mm")
    assert fig["layout"]["xaxis"]["title"]["text"] == "element p95 |distance| (mm)"
