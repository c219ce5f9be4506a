"""What twin publishes for other packages to read: surveys and each element's status in one."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

from sitetwin.twin.queries import element_status, latest_analysed_survey
from sitetwin.twin.survey_store import insert_rows


def _survey(survey_id: str, site_code: str, epoch: str | None, status: str) -> dict:
    return {"survey_id": survey_id, "site_code": site_code, "model_ids": ["m1"], "epoch": epoch,
            "registration_method": "transform", "T_model_from_survey": np.eye(4).tolist(), "point_count": 10,
            "status": status}


def test_the_latest_analysed_survey_is_the_newest_epoch_not_the_newest_row(store):
    insert_rows(store, "surveys", [_survey("SA", "S", "2026-04-01", "analysed"),
                                   _survey("SB", "S", "2026-05-01", "analysed"),
                                   _survey("SC", "S", "2026-06-01", "registered"),
                                   _survey("SD", "S", None, "analysed"),
                                   _survey("TX", "T", None, "analysed")])
    assert latest_analysed_survey(store, "S") == "SB"
    assert latest_analysed_survey(store, "T") == "TX"             # without epochs, surveys still count
    assert latest_analysed_survey(store, "U") is None


def test_element_status_gives_every_deviation_figure_of_one_survey(store):
    insert_rows(store, "element_deviation", [
        {"site_code": "S", "survey_id": "SA", "model_id": "m1", "global_id": "A", "points": 120, "coverage": 0.8,
         "mean_mm": 1.5, "median_mm": 1.0, "p95_mm": 4.0, "max_mm": -6.0, "shift_mm": 2.5, "status": "built"},
        {"site_code": "S", "survey_id": "SA", "model_id": "m1", "global_id": "B", "points": 0, "status": "not_built"},
        {"site_code": "S", "survey_id": "SB", "model_id": "m1", "global_id": "A", "points": 5, "status": "partial"}])
    rows = element_status(store, "SA").set_index("global_id")
    assert sorted(rows.index) == ["A", "B"]
    a = rows.loc["A"]
    assert (a["status"], a["points"], a["median_mm"], a["shift_mm"], a["max_mm"]) == ("built", 120, 1.0, 2.5, -6.0)
    assert rows.loc["B", "status"] == "not_built" and math.isnan(rows.loc["B", "shift_mm"])
    assert element_status(store, "SZ").empty


# --------------------------------------------------------------------------------------
# what the workbench reads: surveys by day, element histories, sightings, deviation tables

def _surveys_and_deviation(store) -> None:
    """Site S: SA (2026-04-01) and SB (2026-05-01) analysed, SC without an epoch (added 2026-06-01), SR registered
    on 2026-05-20; site T: TX. Elements A (built in both), B (missed by SA, standing in SB), C (hidden from SA,
    missed by SB)."""
    import datetime as dt

    def survey(survey_id, site, epoch, status, created, **more):
        return {**_survey(survey_id, site, epoch, status), "name": f"survey {survey_id}",
                "created_at": dt.datetime.fromisoformat(created), **more}

    tolerances = {"IfcColumn": 8, "IfcWall": {"position_mm": 10}, "IfcSlab": {"flatness_mm": 5}}
    insert_rows(store, "surveys", [survey("SA", "S", "2026-04-01", "analysed", "2026-04-02 10:00"),
                                   survey("SB", "S", "2026-05-01", "analysed", "2026-05-02 10:00",
                                          tolerances=json.dumps(tolerances)),
                                   survey("SR", "S", "2026-05-20", "registered", "2026-05-21 10:00"),
                                   survey("SC", "S", None, "analysed", "2026-06-01 10:00"),
                                   survey("TX", "T", "2026-05-01", "analysed", "2026-05-02 11:00")])

    def dev(survey_id, gid, status, vis, **more):
        return {"site_code": "S", "survey_id": survey_id, "model_id": "m1", "global_id": gid, "status": status,
                "visible_share": vis, "points": 100 if status != "not_built" else 0, "ifc_class": "IfcWall",
                "storey": "Level 1", **more}

    insert_rows(store, "element_deviation", [
        dev("SA", "A", "built", 0.5, mean_mm=1.0, p95_mm=3.0), dev("SA", "B", "not_built", 0.5),
        dev("SA", "C", "not_built", 0.01), dev("SB", "A", "built", 0.6, mean_mm=2.0, p95_mm=4.0),
        dev("SB", "B", "out_of_tolerance", 0.6, ifc_class="IfcColumn", storey="Level 2", shift_mm=14.0),
        dev("SB", "C", "not_built", 0.6), dev("SR", "C", "built", 0.9)])
    insert_rows(store, "element_histograms", [
        {"site_code": "S", "survey_id": "SB", "model_id": "m1", "global_id": "A", "bin_lo_mm": lo,
         "bin_hi_mm": lo + 2.0, "points": n} for lo, n in ((2.0, 5), (-2.0, 40), (0.0, 55))])
    insert_rows(store, "unplanned_objects", [
        {"site_code": "S", "survey_id": "SB", "object_id": i, "points": n, "centroid_x_m": x, "centroid_y_m": 1.0,
         "centroid_z_m": 0.5, "min_x_m": x - 0.5, "min_y_m": 0.0, "min_z_m": 0.0, "max_x_m": x + 0.5, "max_y_m": 2.0,
         "max_z_m": 1.0, "storey": "Level 1", "nearest_global_id": "A", "distance_m": 0.7}
        for i, n, x in ((1, 300, 4.0), (2, 900, 8.0))])


def test_surveys_by_site_day_and_id(store):
    import datetime as dt

    from sitetwin.twin.queries import (
        survey_as_of,
        survey_epoch,
        survey_epochs,
        survey_in_site,
        survey_site,
        survey_summary,
    )

    _surveys_and_deviation(store)
    epochs = survey_epochs(store, "S")
    assert epochs["survey_id"].tolist() == ["SA", "SB", "SR"]          # SC has no epoch
    assert [d.date() for d in epochs["epoch"]] == [dt.date(2026, 4, 1), dt.date(2026, 5, 1), dt.date(2026, 5, 20)]
    assert epochs["status"].tolist() == ["analysed", "analysed", "registered"]
    assert survey_as_of(store, "S", dt.date(2026, 4, 30)) == "SA"
    assert survey_as_of(store, "S", dt.date(2026, 5, 1)) == "SB"
    assert survey_as_of(store, "S", None) == "SC"                      # counted on the day it was added
    assert survey_as_of(store, "S", dt.date(2026, 3, 1)) is None
    assert (survey_in_site(store, "S", "SA"), survey_in_site(store, "S", "TX"), survey_in_site(store, "S", None)) \
        == ("SA", None, None)
    assert (survey_site(store, "TX"), survey_site(store, "ZZ")) == ("T", None)
    assert (survey_epoch(store, "SB"), survey_epoch(store, "SC")) == (dt.date(2026, 5, 1), None)
    assert survey_summary(store, "S") == {"surveys": 4, "last_created_at": dt.datetime(2026, 6, 1, 10, 0)}
    assert survey_summary(store, "U") == {"surveys": 0, "last_created_at": None}


def test_an_elements_history_and_histogram(store):
    from sitetwin.twin.queries import element_histogram, status_history

    _surveys_and_deviation(store)
    history = status_history(store, "S", "B")
    assert history["survey_id"].tolist() == ["SA", "SB"]
    assert history["status"].tolist() == ["not_built", "out_of_tolerance"]
    assert history["name"].tolist() == ["survey SA", "survey SB"]
    a = status_history(store, "S", "A")
    assert a["mean_mm"].tolist() == [1.0, 2.0] and a["p95_mm"].tolist() == [3.0, 4.0]
    assert status_history(store, "T", "A").empty
    bins = element_histogram(store, "SB", "A")
    assert bins.values.tolist() == [[-2.0, 0.0, 40], [0.0, 2.0, 55], [2.0, 4.0, 5]]
    assert element_histogram(store, "SA", "A").empty


def test_sightings_up_to_a_day_give_the_first_standing_and_the_last_miss(store):
    import datetime as dt

    from sitetwin.twin.queries import element_sightings

    _surveys_and_deviation(store)

    def seen(day, **kw):
        frame = element_sightings(store, "S", day, **kw).set_index("global_id")
        return {g: tuple(None if pd.isna(v) else v.date() for v in frame.loc[g, ["first_built", "last_missed"]])
                for g in frame.index}

    april, may = dt.date(2026, 4, 1), dt.date(2026, 5, 1)
    # SR is only registered: what it saw does not count; C was hidden from SA (visible share 1 %)
    assert seen(dt.date(2026, 6, 30)) == {"A": (april, None), "B": (may, april), "C": (None, may)}
    assert seen(dt.date(2026, 4, 15)) == {"A": (april, None), "B": (None, april), "C": (None, None)}
    assert seen(dt.date(2026, 6, 30), min_visible_share=0.0)["C"] == (None, may)
    assert seen(dt.date(2026, 6, 30), min_visible_share=0.55)["B"] == (may, None)
    assert element_sightings(store, "S", dt.date(2026, 3, 1)).empty


def test_deviation_tables_filter_by_storey_and_class_and_unplanned_objects_come_largest_first(store):
    from sitetwin.twin.queries import deviation_table, survey_tolerances, unplanned_objects

    _surveys_and_deviation(store)
    table = deviation_table(store, "S", "SB")
    assert sorted(table["global_id"]) == ["A", "B", "C"]
    assert "shift_mm" in table and "flatness_mm" in table and "verticality_mm" in table
    columns = deviation_table(store, "S", "SB", classes=["IfcColumn"])
    assert columns["global_id"].tolist() == ["B"] and columns["shift_mm"].tolist() == [14.0]
    assert sorted(deviation_table(store, "S", "SB", storeys=["Level 1"], classes=["IfcWall"])["global_id"]) == \
        ["A", "C"]
    assert deviation_table(store, "T", "SB").empty
    assert survey_tolerances(store, "SB") == {"IfcColumn": 8.0, "IfcWall": 10.0}
    assert survey_tolerances(store, "SA") == {}
    objects = unplanned_objects(store, "S", "SB")
    assert objects["object_id"].tolist() == [2, 1]
    assert objects[["size_x_m", "size_y_m", "size_z_m"]].values.tolist() == [[1.0, 2.0, 1.0], [1.0, 2.0, 1.0]]
    assert objects["centroid_x_m"].tolist() == [8.0, 4.0] and objects["distance_m"].tolist() == [0.7, 0.7]


def test_status_counts_per_survey_count_every_element_compared(store):
    from sitetwin.twin.queries import survey_status_counts

    statuses = {"SA": ["built"] * 3 + ["partial", "out_of_tolerance", "not_built", "not_built"], "SB": ["built"]}
    failed = '[{"check": "position", "value_mm": 24.7, "limit_mm": 8.0}]'   # a partial element seen displaced
    insert_rows(store, "element_deviation", [
        {"site_code": "S", "survey_id": sid, "model_id": "m1", "global_id": f"G{i}", "points": 1, "status": s,
         "checks": failed if s == "partial" else None}
        for sid, ss in statuses.items() for i, s in enumerate(ss)])
    counts = survey_status_counts(store, ["SB", "SA", "SX"])
    assert counts.to_dict("records") == [
        {"survey_id": "SA", "built": 3, "partial": 1, "not_built": 2, "out_of_tolerance": 1,
         "partial_out_of_tolerance": 1},
        {"survey_id": "SB", "built": 1, "partial": 0, "not_built": 0, "out_of_tolerance": 0,
         "partial_out_of_tolerance": 0}]
    assert survey_status_counts(store, []).empty


def test_site_surveys_give_each_surveys_day_time_and_mean_coverage(store):
    import datetime as dt

    from sitetwin.twin.queries import site_surveys

    added = {"SA": dt.datetime(2026, 4, 3, 8), "SB": dt.datetime(2026, 4, 2, 15), "TA": dt.datetime(2026, 5, 1)}
    surveys = [{**_survey("SA", "S", "2026-04-01", "analysed"), "fitness": 0.9},
               _survey("SB", "S", None, "registered"), _survey("TA", "T", None, "analysed")]
    insert_rows(store, "surveys", [{**s, "created_at": added[s["survey_id"]]} for s in surveys])
    insert_rows(store, "element_deviation", [
        {"site_code": "S", "survey_id": "SA", "model_id": "m1", "global_id": g, "points": 1, "status": "built",
         "coverage": c} for g, c in (("A", 0.5), ("B", 1.0), ("C", None))])
    frame = site_surveys(store, ["S"])
    assert frame["survey_id"].tolist() == ["SA", "SB"]                 # by day: 04-01 (its epoch), then 04-02
    sa, sb = (frame.set_index("survey_id").loc[s] for s in ("SA", "SB"))
    assert (sa["day"], sa["surveyed_at"], sa["mean_coverage"], sa["fitness"]) == (
        pd.Timestamp("2026-04-01"), pd.Timestamp("2026-04-01"), 0.75, 0.9)
    assert (sb["day"], sb["surveyed_at"]) == (pd.Timestamp("2026-04-02"), pd.Timestamp("2026-04-02 15:00"))
    assert pd.isna(sb["epoch"]) and pd.isna(sb["mean_coverage"]) and pd.isna(sb["fitness"])
    assert site_surveys(store, ["S"], created_before=dt.datetime(2026, 4, 3))["survey_id"].tolist() == ["SB"]
    assert site_surveys(store, None)["survey_id"].tolist() == ["SA", "SB", "TA"]
