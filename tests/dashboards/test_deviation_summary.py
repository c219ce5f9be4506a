"""The deviation page's survey summary says how the survey was placed: the CRS its files declared, a
similarity fit's scale with its uncertainty, the georeference's offset from the refined pose (twin's
survey_store reads them from migration 0013's columns)."""

from __future__ import annotations

import json

import pytest


@pytest.fixture(scope="module")
def placed(site_db, store_copy, tmp_path_factory):
    """A copy of the demo site whose latest survey was placed from a georeference and scaled (as twin records it)."""
    from sitetwin.data.store import open_store

    db = store_copy(site_db[0], tmp_path_factory.mktemp("placed"))
    from sitetwin.twin.survey_store import insert_rows

    with open_store(db) as store:      # the latest survey again, recorded with a placement (through twin's writer)
        latest = store.rows("SELECT * FROM surveys ORDER BY epoch DESC LIMIT 1")[0]
        sid = latest["survey_id"] + "G"
        insert_rows(store, "surveys", [{**latest, "survey_id": sid, "crs": "EPSG:4547", "scale": 1.00042,
                                        "scale_sigma": 0.00031, "georef_offset_m": 0.0123,
                                        "georef_offset_deg": 0.021}])
    return db, sid


def test_get_survey_and_list_surveys_carry_the_placement(placed):
    from sitetwin.data.store import open_store
    from sitetwin.twin.survey_store import get_survey, list_surveys

    db, sid = placed
    with open_store(db, read_only=True) as store:
        s = get_survey(store, sid)
        rows = {r["survey_id"]: r for r in list_surveys(store, "DEMO")}
    assert (s.crs, s.scale, s.scale_sigma, s.georef_offset_m, s.georef_offset_deg) == (
        "EPSG:4547", pytest.approx(1.00042), pytest.approx(0.00031), pytest.approx(0.0123), pytest.approx(0.021))
    assert rows[sid]["crs"] == "EPSG:4547" and rows[sid]["scale"] == pytest.approx(1.00042)
    other = next(r for k, r in rows.items() if k != sid)
    assert other["crs"] is None and other["scale"] is None and other["georef_offset_m"] is None


def test_the_survey_summary_shows_scale_and_georeference_offset_in_chinese(placed, app):
    from sitetwin.dashboards.pages.deviation import survey_summary
    from sitetwin.data.i18n import use_language
    from sitetwin.data.store import open_store
    from sitetwin.twin.survey_store import list_surveys

    db, sid = placed
    with open_store(db, read_only=True) as store:
        rows = {r["survey_id"]: r for r in list_surveys(store, "DEMO")}
    with use_language("zh-CN"):
        text = json.dumps(survey_summary(rows[sid]).to_plotly_json(), default=lambda o: o.to_plotly_json(),
                          ensure_ascii=False)
        plain = json.dumps(survey_summary(next(r for k, r in rows.items() if k != sid)).to_plotly_json(),
                           default=lambda o: o.to_plotly_json(), ensure_ascii=False)
    assert "EPSG:4547" in text and "1.00042 ± 0.031%" in text
    assert "0.012 米，0.021°" in text and "地理参考与精配准位姿之差" in text
    assert "未声明" in plain and "±" not in plain and "地理参考" not in plain
