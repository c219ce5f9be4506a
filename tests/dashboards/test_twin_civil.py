"""The 3D twin of a civil site: its alignment drawn as a line in the reader's language and clipped to the
section box; a partial element that failed a check on what was seen of it gets its own status bin."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest


@pytest.fixture(scope="module")
def road(tmp_path_factory):
    from sitetwin.bim.load import load_model
    from sitetwin.data.store import open_store
    from sitetwin.synth.civil import write_road_model

    tmp = tmp_path_factory.mktemp("road")
    db = tmp / "road.duckdb"
    with open_store(db) as store:
        load_model(store, write_road_model(tmp / "road.ifc"), site_code="ROAD")
    return db


def test_the_road_alignment_is_one_line_trace_named_in_chinese_and_clipped_to_the_section_box(road):
    from sitetwin.bim.queries import reference_lines
    from sitetwin.dashboards.twin_view import ALIGNMENTS_LAYER, TwinParams, read_twin, twin_figure
    from sitetwin.data.i18n import use_language
    from sitetwin.data.store import open_store

    with open_store(road, read_only=True) as store, use_language("zh-CN"):
        (line,) = reference_lines(store, "ROAD")
        p = TwinParams(site="ROAD", mode="class", points=False, sensors=False)
        fig, _stats = twin_figure(read_twin(store, p), p)
        xyz = line["points_m"]
        x_mid = float(np.median(xyz[:, 0]))
        box = ((float(xyz[:, 0].min()) - 1, x_mid), (-1e4, 1e4), (-1e4, 1e4))
        pc = TwinParams(site="ROAD", mode="class", points=False, sensors=False, section=box)
        clipped, _stats = twin_figure(read_twin(store, pc), pc)
    (trace,) = [t for t in fig["data"] if t.get("meta") == ALIGNMENTS_LAYER]
    assert trace["mode"] == "lines" and trace["name"] != "alignments" and trace["name"]
    assert len(trace["x"]) == len(xyz)
    np.testing.assert_allclose(np.array(trace["x"], float), xyz[:, 0], atol=1e-3)
    (cut,) = [t for t in clipped["data"] if t.get("meta") == ALIGNMENTS_LAYER]
    drawn = np.array([v for v in cut["x"] if v is not None])
    assert 0 < len(drawn) < len(xyz) and drawn.max() <= x_mid + 1e-6


def test_an_alignment_wholly_outside_the_box_draws_nothing():
    from sitetwin.dashboards.twin_view import alignment_trace

    xyz = np.array([[0, 0, 0], [1, 0, 0], [np.nan] * 3, [5, 5, 0], [6, 5, 0]], float)
    assert alignment_trace(xyz, ((10, 20), (0, 1), (0, 1))) is None
    t = alignment_trace(xyz)
    assert t["x"] == [0.0, 1.0, None, 5.0, 6.0]


def test_a_partial_element_failing_a_check_has_its_own_status_bin(site_db, store_copy, tmp_path):
    from sitetwin.dashboards import queries as q
    from sitetwin.dashboards.twin_view import PARTIAL_FAILING, TwinParams, read_twin, twin_figure
    from sitetwin.data.store import open_store
    from sitetwin.twin.queries import survey_as_of, survey_status_counts
    from sitetwin.twin.survey_store import insert_rows

    day = site_db[1]["epochs"][-1]
    db = store_copy(site_db[0], tmp_path)
    with open_store(db) as store:      # the day's survey again, two partial elements' seen faces 24.7 mm off
        survey = survey_as_of(store, "DEMO", day)
        row = store.rows("SELECT * FROM surveys WHERE survey_id = ?", [survey])[0]
        again = survey + "P"
        elements = store.rows("SELECT * FROM element_deviation WHERE survey_id = ? ORDER BY global_id", [survey])
        failing = {e["global_id"] for e in elements if e["status"] == "partial"}
        failing = set(sorted(failing)[:2])
        check = '[{"check": "position", "value_mm": 24.7, "limit_mm": 10.0}]'
        insert_rows(store, "surveys", [{**row, "survey_id": again, "created_at": row["created_at"] + dt.timedelta(
            seconds=1)}])            # recorded through twin's writer, as a later survey of the same day
        insert_rows(store, "element_deviation", [{**e, "survey_id": again, "checks": check
                                                  if e["global_id"] in failing else e["checks"]} for e in elements])
    with open_store(db, read_only=True) as store:
        p = TwinParams(site="DEMO", mode="status", day=day, points=False, sensors=False)
        data = read_twin(store, p)
        _fig, stats = twin_figure(data, p)
        counts = survey_status_counts(store, [data.survey_id]).iloc[0]
        failing = q.partial_failing(store, data.survey_id)
    assert len(failing) == 2 == int(counts["partial_out_of_tolerance"])
    assert PARTIAL_FAILING in data.order and data.order.index(PARTIAL_FAILING) == data.order.index("partial") + 1
    assert int((data.values == PARTIAL_FAILING).sum()) == 2
    assert int((data.values == "partial").sum()) == int(counts["partial"]) - 2
    legend = {name: n for name, _color, n, _o in stats["legend"]}
    assert legend["partially built, out of tolerance"] == 2
