"""Tolerances per IFC class (GB 50204 defaults), overrides from JSON, and USIBD levels of accuracy."""

from __future__ import annotations

import json

import pytest

from sitetwin.twin.errors import SurveyError
from sitetwin.twin.tolerances import DEFAULT, level_of_accuracy, load_tolerances


def test_the_defaults_are_gb_50204s_permitted_deviations():
    column = DEFAULT.for_class("IfcColumn")
    assert column.position_mm == 8.0 and column.verticality_mm == 10.0 and column.verticality_tall_mm == 12.0
    assert (column.section_plus_mm, column.section_minus_mm, column.flatness_mm) == (10.0, 5.0, 8.0)
    assert DEFAULT.for_class("IfcWall").position_mm == DEFAULT.for_class("IfcBeam").position_mm == 8.0
    assert DEFAULT.for_class("IfcSlab").elevation_mm == 10.0
    assert DEFAULT.for_class("IfcFurniture") == DEFAULT.by_class["*"]


def test_a_json_file_overrides_one_class_and_keeps_the_rest(tmp_path):
    (tmp_path / "t.json").write_text(json.dumps({"IfcWall": {"position_mm": 12}, "status": {"built_coverage": 0.5}}))
    tol = load_tolerances(tmp_path / "t.json")
    assert tol.for_class("IfcWall").position_mm == 12.0
    assert tol.for_class("IfcWall").verticality_mm == 10.0
    assert tol.status.built_coverage == 0.5 and tol.status.band_m == DEFAULT.status.band_m


@pytest.mark.parametrize("data, message", [
    ({"IfcWall": {"position": 5}}, r"IfcWall\.position is not a tolerance"),
    ({"IfcWall": {"position_mm": -1}}, r"IfcWall\.position_mm must be a number >= 0"),
    ({"Walls": {"position_mm": 5}}, r"'Walls' is not an IFC class"),
    ({"status": {"built_coverage": 0.01, "partial_coverage": 0.2}}, "partial_coverage <= built_coverage"),
    ([1, 2], "expected a JSON object"),
])
def test_bad_tolerance_files_name_the_key_and_the_valid_range(tmp_path, data, message):
    (tmp_path / "t.json").write_text(json.dumps(data))
    with pytest.raises(SurveyError, match=message):
        load_tolerances(tmp_path / "t.json")


@pytest.mark.parametrize("sigma_mm, loa", [(0.3, "LOA50"), (1.5, "LOA40"), (3.0, "LOA30"), (10.0, "LOA20"),
                                           (30.0, "LOA10")])
def test_the_level_of_accuracy_is_judged_at_two_sigma(sigma_mm, loa):
    assert level_of_accuracy(sigma_mm) == loa


def test_civil_defaults_are_cjj_1s_permitted_deviations_with_their_source():
    from sitetwin.twin.tolerances import TOLERANCE_SOURCES

    pavement, kerb = DEFAULT.for_class("IfcPavement"), DEFAULT.for_class("IfcKerb")
    assert (pavement.elevation_mm, pavement.position_mm, pavement.flatness_mm) == (15.0, 20.0, 5.0)
    assert (kerb.position_mm, kerb.elevation_mm) == (10.0, 10.0)
    fill = DEFAULT.for_class("IfcEarthworksFill")
    assert (fill.elevation_plus_mm, fill.elevation_minus_mm, fill.position_mm, fill.flatness_mm) == (10.0, 20.0, 30.0,
                                                                                                      15.0)
    assert all(DEFAULT.for_class(c).section_plus_mm is None for c in ("IfcPavement", "IfcKerb", "IfcCourse"))
    assert TOLERANCE_SOURCES["IfcKerb"] == "CJJ 1-2008 table 16.11.1"
    assert "GB 50092" in TOLERANCE_SOURCES["IfcPavement"]
    assert DEFAULT.for_class("IfcGeographicElement") == DEFAULT.by_class["*"]      # no code figure: configurable


def test_an_elevation_limit_may_differ_up_and_down_and_falls_back_to_the_symmetric_one():
    from sitetwin.twin.tolerances import elevation_limit

    fill = DEFAULT.for_class("IfcEarthworksFill")
    assert (elevation_limit(fill, 12.0), elevation_limit(fill, -12.0)) == (10.0, 20.0)
    assert (elevation_limit(DEFAULT.for_class("IfcSlab"), 12.0), elevation_limit(DEFAULT.for_class("IfcSlab"), -3.0)) \
        == (10.0, 10.0)
    tol = load_tolerances({"IfcSite": {"elevation_plus_mm": 5, "elevation_minus_mm": None}})
    assert (elevation_limit(tol.for_class("IfcSite"), 6.0), elevation_limit(tol.for_class("IfcSite"), -6.0)) == (5.0,
                                                                                                              20.0)
