"""Schedules: MS Project XML, CSV task maps, and IfcTask schedules inside a model."""

from __future__ import annotations

import pytest

from sitetwin.bim.errors import BimError
from sitetwin.bim.load import load_model
from sitetwin.bim.schedule import read_msproject_xml, read_task_map
from sitetwin.bim.schedule_store import import_schedule_file
from sitetwin.data.sites import upsert_site

MSP = "schedule/schependomlaan/Uitvoering_Schependomlaan_18-02-2015.xml"
EVENTLOG = "schedule/schependomlaan/eventlog_IFC_schependomlaan_asplanned.csv"


def test_the_real_ms_project_schedule_gives_157_tasks(shared_data):
    schedule = read_msproject_xml(shared_data / MSP)
    assert len(schedule.tasks) == 157
    last = schedule.tasks[-1]
    assert last.name == "Opleveren" and last.finish.date().isoformat() == "2015-12-17"
    assert all(t.start is not None for t in schedule.tasks)


def test_importing_the_ms_project_schedule_stores_its_tasks(shared_data, store):
    upsert_site(store, "NIJ")
    result = import_schedule_file(store, shared_data / MSP, site_code="NIJ")
    assert result["tasks"] == 157
    assert store.scalar("SELECT count(*) FROM tasks") == 157
    again = import_schedule_file(store, shared_data / MSP, site_code="NIJ")
    assert store.scalar("SELECT count(*) FROM tasks") == 157 and again["warnings"]


def test_the_event_log_is_a_task_map_with_its_own_dated_tasks(shared_data):
    schedule = read_task_map(shared_data / EVENTLOG)
    assert len(schedule.links) == 7166
    assert len(schedule.tasks) == 73
    first = next(t for t in schedule.tasks if t.task_id == "ST00060")
    assert first.name == "Stellen bruggetjes" and first.start.isoformat() == "2015-02-26T00:00:00"


def test_links_to_globalids_not_in_the_models_are_kept_and_reported(shared_data, store):
    upsert_site(store, "NIJ")
    result = import_schedule_file(store, shared_data / EVENTLOG, site_code="NIJ")
    assert result["links"] == 7166 and result["linked_to_model"] == 0
    assert "none of its 7166 GlobalIds" in result["warnings"][0]


def test_a_csv_map_without_dates_links_to_an_existing_schedule(shared_data, store, tmp_path, box_model):
    report = load_model(store, box_model(), site_code="S")
    gid = store.scalar("SELECT global_id FROM elements LIMIT 1")
    import_schedule_file(store, shared_data / MSP, site_code="S")
    schedule_id = store.scalar("SELECT schedule_id FROM schedules")
    csv = tmp_path / "map.csv"
    csv.write_text(f"GlobalId,UID\n{gid},211\n")
    result = import_schedule_file(store, csv, site_code="S", schedule_id=schedule_id)
    assert result["linked_to_model"] == 1
    assert store.one("SELECT model_id, task_id FROM task_elements") == {"model_id": report.model_id, "task_id": "211"}


def test_a_csv_map_naming_unknown_tasks_is_refused_and_nothing_is_linked(shared_data, store, tmp_path):
    upsert_site(store, "S")
    import_schedule_file(store, shared_data / MSP, site_code="S")
    schedule_id = store.scalar("SELECT schedule_id FROM schedules")
    csv = tmp_path / "map.csv"
    csv.write_text("GlobalId,UID\n0123456789012345678901,99999\n")
    with pytest.raises(BimError, match="99999"):
        import_schedule_file(store, csv, site_code="S", schedule_id=schedule_id)
    assert store.scalar("SELECT count(*) FROM task_elements") == 0


@pytest.mark.parametrize("text, message", [
    ("a,b\n1,2\n", "needs a GlobalId column"),
    ("GlobalId,Task\nshort,T1\n", "not an IFC GlobalId"),
])
def test_bad_csv_maps_are_refused_with_the_reason(tmp_path, text, message):
    csv = tmp_path / "bad.csv"
    csv.write_text(text)
    with pytest.raises(BimError, match=message):
        read_task_map(csv)


def test_a_file_that_is_not_ms_project_xml_is_refused(tmp_path):
    bad = tmp_path / "plan.xml"
    bad.write_text("<root><a/></root>")
    with pytest.raises(BimError, match="not an MS Project XML"):
        read_msproject_xml(bad)
    bad.write_text("<Project><unclosed>")
    with pytest.raises(BimError, match="not well-formed"):
        read_msproject_xml(bad)


def test_the_demo_models_ifc_schedule_links_every_physical_element_to_a_dated_task(demo_store_path):
    from sitetwin.data.store import open_store

    with open_store(demo_store_path, read_only=True) as s:
        tasks = s.rows("SELECT task_id, start, finish FROM tasks")
        assert len(tasks) >= 12 and all(t["start"] and t["finish"] and t["start"] <= t["finish"] for t in tasks)
        unlinked = s.scalar("SELECT count(*) FROM elements e WHERE has_geometry AND NOT EXISTS "
                            "(SELECT 1 FROM task_elements l WHERE l.global_id = e.global_id)")
        assert unlinked == 0
        assert s.scalar("SELECT count(*) FROM task_elements WHERE model_id IS NULL") == 0
