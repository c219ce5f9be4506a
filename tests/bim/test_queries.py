"""What bim publishes for other packages to read: models and their versions, elements, storeys, schedules."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from sitetwin.bim.load import load_model
from sitetwin.bim.queries import (
    current_element,
    current_model_ids,
    element_extent,
    element_finish,
    element_frame,
    element_tasks,
    list_models,
    model_record,
    schedule_span,
    storey_frame,
)
from sitetwin.bim.schedule import Schedule, Task
from sitetwin.bim.schedule_store import store_schedule

WALL = ("IfcWall", "W1", (0.0, 0.0, 0.0), (4.0, 3.0, 0.2))
SLAB = ("IfcSlab", "S1", (5.0, 0.0, 0.0), (4.0, 0.3, 4.0))
UNKNOWN_GID = "0123456789012345678901"


@pytest.fixture
def two_versions(box_model, store):
    """Site S with model 'arch' in two versions: v1 a wall, v2 the wall and a slab."""
    v1 = load_model(store, box_model("v1.ifc", boxes=(WALL,), seed=5), site_code="S", name="arch")
    v2 = load_model(store, box_model("v2.ifc", boxes=(WALL, SLAB), seed=5), site_code="S", name="arch")
    gids = dict(zip(*[element_frame(store, site_code="S")[c] for c in ("name", "global_id")]))
    return v1, v2, gids


def test_models_list_every_version_and_the_current_ones_only_the_newest(two_versions, store):
    v1, v2, _ = two_versions
    assert [(m["model_id"], m["version"]) for m in list_models(store)] == [(v1.model_id, 1), (v2.model_id, 2)]
    assert [m["model_id"] for m in list_models(store, current=True)] == [v2.model_id]
    assert list_models(store, site_code="ELSEWHERE") == []
    assert current_model_ids(store, "S") == current_model_ids(store) == [v2.model_id]
    record = model_record(store, v1.model_id)
    assert (record["site_code"], record["name"], record["version"], record["element_count"]) == ("S", "arch", 1, 1)
    assert model_record(store, "000000000000") is None


def test_the_element_frame_holds_current_elements_or_those_of_the_models_named(two_versions, store):
    v1, v2, gids = two_versions
    current = element_frame(store, site_code="S").set_index("name")
    assert sorted(current.index) == ["S1", "W1"] and set(current["model_id"]) == {v2.model_id}
    slab = current.loc["S1"]
    assert slab["ifc_class"] == "IfcSlab" and bool(slab["has_geometry"])
    assert (slab["bbox_max_x_m"] - slab["bbox_min_x_m"], slab["bbox_max_z_m"] - slab["bbox_min_z_m"]) == \
        pytest.approx((4.0, 0.3), abs=1e-6)
    assert slab["bbox_min_x_m"] == pytest.approx(5.0, abs=1e-6)
    old = element_frame(store, model_ids=[v1.model_id])
    assert old["global_id"].tolist() == [gids["W1"]] and old["model_id"].tolist() == [v1.model_id]
    assert element_frame(store, site_code="ELSEWHERE", model_ids=[v1.model_id]).empty
    assert element_frame(store, model_ids=[]).empty


def test_one_current_element_and_the_extent_of_a_model_or_a_site(two_versions, store):
    v1, v2, gids = two_versions
    slab = current_element(store, "S", gids["S1"])
    assert slab["model_id"] == v2.model_id and slab["ifc_class"] == "IfcSlab"
    assert slab["bbox_max_x_m"] == pytest.approx(9.0, abs=1e-6)
    assert current_element(store, "S", UNKNOWN_GID) is None
    site = element_extent(store, site_code="S")
    assert (site["min_x_m"], site["max_x_m"], site["max_z_m"]) == pytest.approx((0.0, 9.0, 3.0), abs=1e-6)
    wall_only = element_extent(store, model_id=v1.model_id)
    assert (wall_only["max_x_m"], wall_only["max_y_m"]) == pytest.approx((4.0, 0.2), abs=1e-6)
    assert element_extent(store, site_code="ELSEWHERE") is None


def test_storeys_come_with_their_elevation_in_the_local_frame(two_versions, store):
    _, v2, _ = two_versions
    storeys = storey_frame(store, [v2.model_id])
    assert storeys[["name", "elevation_m"]].values.tolist() == [["Level 0", 0.0]]
    assert storey_frame(store, []).empty


def test_each_element_gets_its_latest_finishing_task_and_its_latest_finish_overall(two_versions, store):
    v1, v2, gids = two_versions
    day = dt.datetime
    tasks = (Task("T1", "Shell", day(2026, 5, 1), day(2026, 6, 30), is_summary=True),
             Task("T2", "Walls", day(2026, 5, 1), day(2026, 5, 10), parent_id="T1", wbs="1.1"),
             Task("T3", "Wall finish", day(2026, 5, 11), day(2026, 5, 20), parent_id="T1", wbs="1.2"),
             Task("T4", "Slab", None, None, parent_id="T1", wbs="1.3"))
    links = (("T1", gids["W1"]), ("T2", gids["W1"]), ("T3", gids["W1"]), ("T4", gids["S1"]), ("T2", UNKNOWN_GID))
    store_schedule(store, "S", Schedule("sched1", "plan", "csv", tasks, links))

    found = element_tasks(store, "S").set_index("global_id")
    assert found.loc[gids["W1"], "task_id"] == "T3" and found.loc[gids["W1"], "wbs"] == "1.2"
    assert found.loc[gids["W1"], "finish"] == pd.Timestamp(2026, 5, 20)
    assert found.loc[gids["S1"], "task_id"] == "T4" and pd.isna(found.loc[gids["S1"], "finish"])
    assert pd.isna(found.loc[UNKNOWN_GID, "model_id"]) and found.loc[UNKNOWN_GID, "task_name"] == "Walls"
    assert found.loc[gids["W1"], "model_id"] == v2.model_id

    finish = element_finish(store, "S").set_index("global_id")["finish"]
    assert finish[gids["W1"]] == pd.Timestamp(2026, 6, 30)      # the summary task counts here
    assert finish[UNKNOWN_GID] == pd.Timestamp(2026, 5, 10) and pd.isna(finish[gids["S1"]])
    # the links went to the current model; another model keeps only the links to no model
    assert element_finish(store, "S", model_id=v1.model_id)["global_id"].tolist() == [UNKNOWN_GID]
    assert len(element_finish(store, "S", model_id=v2.model_id)) == 3

    assert schedule_span(store, "S") == {"start": day(2026, 5, 1), "finish": day(2026, 6, 30)}
    assert schedule_span(store, "ELSEWHERE") == {"start": None, "finish": None}


# --------------------------------------------------------------------------------------
# what the workbench reads: counts, classes, one element's record, plan-view boxes, the plan per element

def _plan(store, gids) -> None:
    day = dt.datetime
    tasks = (Task("T1", "Shell", day(2026, 5, 1), day(2026, 6, 30), is_summary=True),
             Task("T2", "Walls", day(2026, 5, 1), day(2026, 5, 10), parent_id="T1"),
             Task("T3", "Wall finish", day(2026, 5, 11), day(2026, 5, 20), parent_id="T1"),
             Task("T4", "Slab", None, None, parent_id="T1"))
    links = (("T1", gids["W1"]), ("T2", gids["W1"]), ("T3", gids["W1"]), ("T4", gids["S1"]), ("T2", UNKNOWN_GID))
    store_schedule(store, "S", Schedule("sched1", "plan", "csv", tasks, links))


def test_the_current_elements_counted_classed_and_one_of_them_in_full(two_versions, store):
    from sitetwin.bim.queries import current_element_count, element_labels, element_record, ifc_classes

    _, v2, gids = two_versions
    assert current_element_count(store, "S") == 2 and current_element_count(store, "ELSEWHERE") == 0
    assert ifc_classes(store, "S") == ["IfcSlab", "IfcWall"] and ifc_classes(store, "ELSEWHERE") == []
    wall = element_record(store, "S", gids["W1"])
    assert (wall["model_id"], wall["name"], wall["ifc_class"], wall["storey"]) == (v2.model_id, "W1", "IfcWall",
                                                                                  "Level 0")
    assert isinstance(wall["properties"], dict) and isinstance(wall["quantities"], dict)
    assert wall["bbox_max_x_m"] == pytest.approx(4.0, abs=1e-6)
    assert element_record(store, "S", UNKNOWN_GID) is None
    labels = element_labels(store, "S", [gids["S1"], UNKNOWN_GID, gids["W1"], gids["S1"]])
    assert labels["global_id"].tolist() == sorted([gids["S1"], gids["W1"]])
    assert labels.set_index("name")["ifc_class"].to_dict() == {"W1": "IfcWall", "S1": "IfcSlab"}
    assert set(labels["model_id"]) == {v2.model_id} and element_labels(store, "S", []).empty


def test_footprints_are_the_plan_boxes_of_slabs_walls_and_columns(two_versions, store):
    from sitetwin.bim.queries import footprints

    v1, v2, _ = two_versions
    boxes = footprints(store, [v2.model_id]).sort_values("x0")
    assert boxes["ifc_class"].tolist() == ["IfcWall", "IfcSlab"]
    assert boxes[["x0", "x1"]].to_numpy().ravel().tolist() == pytest.approx([0.0, 4.0, 5.0, 9.0], abs=1e-6)
    assert footprints(store, [v1.model_id])["ifc_class"].tolist() == ["IfcWall"]      # the old version: a wall
    assert len(footprints(store, [v2.model_id], storey="Level 0")) == 2
    assert footprints(store, [v2.model_id], storey="Level 9").empty and footprints(store, []).empty


def test_each_current_element_gets_its_plan_from_the_work_tasks_only(two_versions, store):
    from sitetwin.bim.queries import element_plan, planned_elements, schedule_summary, work_span

    _, v2, gids = two_versions
    assert schedule_summary(store, "S") == {"schedules": 0, "last_imported_at": None}
    assert work_span(store, "S") is None
    _plan(store, gids)
    planned = planned_elements(store, "S").set_index("global_id")
    assert sorted(planned.index) == sorted([gids["W1"], gids["S1"]])
    wall = planned.loc[gids["W1"]]
    assert (wall["model_id"], wall["ifc_class"], wall["storey"]) == (v2.model_id, "IfcWall", "Level 0")
    assert (wall["planned_start"], wall["planned_finish"]) == (pd.Timestamp(2026, 5, 1), pd.Timestamp(2026, 5, 20))
    assert (wall["task_id"], wall["task"]) == ("T3", "Wall finish")       # the summary task T1 does not count
    assert pd.isna(planned.loc[gids["S1"], "planned_finish"])
    plan = element_plan(store, "S").set_index("global_id")
    assert sorted(plan.index) == sorted([gids["W1"], gids["S1"]])
    assert (plan.loc[gids["W1"], "planned_start"], plan.loc[gids["W1"], "planned_finish"],
            plan.loc[gids["W1"], "earliest_finish"]) == (pd.Timestamp(2026, 5, 1), pd.Timestamp(2026, 5, 20),
                                                         pd.Timestamp(2026, 5, 20))
    assert plan.loc[gids["S1"], ["planned_start", "planned_finish", "earliest_finish"]].isna().all()
    assert work_span(store, "S") == {"start": dt.datetime(2026, 5, 1), "finish": dt.datetime(2026, 5, 20)}
    summary = schedule_summary(store, "S")
    assert summary["schedules"] == 1 and isinstance(summary["last_imported_at"], dt.datetime)
    assert work_span(store, "ELSEWHERE") is None


def _records_site(store):
    """Site R with model 'frame' (v1 a column; v2, current, three walls and a slab, the slab without a box)."""
    from sitetwin.bim.load import add_model_records
    from sitetwin.data.sites import upsert_site

    upsert_site(store, "R")
    v1 = add_model_records(store, [{"global_id": "C1", "ifc_class": "IfcColumn", "storey": "L1", "triangle_count": 12,
                                    "bbox_min_x_m": 0, "bbox_min_y_m": 0, "bbox_min_z_m": 0, "bbox_max_x_m": 1,
                                    "bbox_max_y_m": 1, "bbox_max_z_m": 3}],
                           site_code="R", name="frame", loaded_at=dt.datetime(2026, 3, 1))
    walls = [{"global_id": f"W{i}", "ifc_class": "IfcWall", "storey": storey, "triangle_count": 12,
              "bbox_min_x_m": i, "bbox_min_y_m": 0, "bbox_min_z_m": 0, "bbox_max_x_m": i + 0.2, "bbox_max_y_m": 4,
              "bbox_max_z_m": 3} for i, storey in enumerate(["L1", "L1", None])]
    v2 = add_model_records(store, [*walls, {"global_id": "S1", "ifc_class": "IfcSlab", "storey": "L1",
                                            "properties": {"Pset_SlabCommon": {"IsExternal": False}}}],
                           site_code="R", name="frame", model_id="frame-v2", file_name="frame.ifc")
    return v1, v2


def test_a_model_given_as_element_records_is_stored_as_the_next_version(store):
    from sitetwin.bim.queries import element_boxes, model_element, model_element_counts

    v1, v2 = _records_site(store)
    assert len(v1) == 12 and v2 == "frame-v2"
    models = {m["model_id"]: m for m in list_models(store, site_code="R")}
    assert (models[v1]["version"], models[v2]["version"], models[v2]["file_name"]) == (1, 2, "frame.ifc")
    assert (models[v2]["element_count"], models[v2]["triangle_count"]) == (4, 36)
    assert models[v1]["loaded_at"] == dt.datetime(2026, 3, 1) and models[v2]["loaded_at"] > models[v1]["loaded_at"]
    assert [m["model_id"] for m in list_models(store, site_code="R", current=True)] == [v2]
    slab = model_element(store, "R", v2, "S1")
    assert (slab["ifc_class"], slab["storey"], slab["has_geometry"]) == ("IfcSlab", "L1", False)
    assert slab["bbox_min_x_m"] is None
    assert model_element(store, "R", v1, "C1")["bbox_max_z_m"] == 3.0       # an older version's element too
    assert model_element(store, "R", v2, "C1") is None and model_element(store, "X", v2, "S1") is None
    boxes = element_boxes(store, "R", ["W2", "S1", "C1", "W2"])              # C1 is in no current model
    assert boxes["global_id"].tolist() == ["S1", "W2"]
    assert boxes.set_index("global_id").loc["W2", "bbox_min_x_m"] == 2.0 and pd.isna(boxes["storey"].iloc[1])
    assert pd.isna(boxes.set_index("global_id").loc["S1", "bbox_min_x_m"]) and element_boxes(store, "R", []).empty
    counts = model_element_counts(store, [v2, v1, "none"])
    assert counts.to_dict("records") == [{"model_id": v1, "elements": 1, "placed": 1},
                                         {"model_id": v2, "elements": 4, "placed": 2}]   # W2 has no storey, S1 no box


def test_element_records_are_checked_before_anything_is_stored(store):
    from sitetwin.bim.errors import BimError
    from sitetwin.bim.load import add_model_records

    _records_site(store)
    before = list_models(store, site_code="R")
    for records, kwargs, message in [
        ([{"global_id": "A"}], {}, "lacks ifc_class"),
        ([{"global_id": "A", "ifc_class": "IfcWall", "colour": "red"}], {}, "unknown fields colour"),
        ([{"global_id": "A", "ifc_class": "IfcWall"}] * 2, {}, "GlobalId A given twice"),
        ([{"global_id": "A", "ifc_class": "IfcWall"}], {"model_id": "frame-v2"}, "already stored"),
        ([{"global_id": "A", "ifc_class": "IfcWall"}], {"site_code": "NOPE"}, "no site 'NOPE'"),
    ]:
        with pytest.raises(BimError, match=message):
            add_model_records(store, records, **{"site_code": "R", "name": "frame", **kwargs})
    assert list_models(store, site_code="R") == before


def test_schedule_figures_due_elements_links_and_task_counts(store):
    from sitetwin.bim.queries import elements_due, linked_element_counts, schedule_links, task_count

    _, v2 = _records_site(store)
    tasks = (Task("T1", "walls", None, dt.datetime(2026, 4, 10)), Task("T2", "slab", None, dt.datetime(2026, 6, 1)),
             Task("P", "phase", None, dt.datetime(2026, 4, 1), is_summary=True))
    links = (("T1", "W0"), ("T1", "W1"), ("T1", "GONE"), ("T2", "S1"), ("P", "W2"))
    store_schedule(store, "R", Schedule("SCH1", "build", "csv", tasks, links))
    store_schedule(store, "R", Schedule("SCH2", "empty", "csv", ()))
    due = elements_due(store, "R", before=dt.datetime(2026, 5, 1))
    # T1's elements, the link to a GlobalId in no model too; not T2's (later) nor the summary task's
    assert due["global_id"].tolist() == ["W0", "W1", "GONE"]                 # by model_id, no model last
    assert due["model_id"].tolist()[:2] == [v2, v2] and pd.isna(due["model_id"].iloc[2])
    assert (due["finish"] == pd.Timestamp("2026-04-10")).all()
    assert task_count(store, "R") == 3 and task_count(store, "X") == 0
    # W0, W1 (walls with geometry) and W2 (linked by the summary task) of R's 3 walls with geometry; the slab has none
    assert linked_element_counts(store, ["R", "X"]).to_dict("records") == [{"site_code": "R", "elements": 3,
                                                                           "linked": 3}]
    sch = schedule_links(store, "R").set_index("schedule_id")      # linked tasks: the summary task's link too
    assert sch[["name", "tasks", "linked_tasks"]].to_dict("index") == {
        "SCH1": {"name": "build", "tasks": 2, "linked_tasks": 3}, "SCH2": {"name": "empty", "tasks": 0,
                                                                           "linked_tasks": 0}}
    assert schedule_links(store, "R", imported_before=dt.datetime(2000, 1, 1)).empty
