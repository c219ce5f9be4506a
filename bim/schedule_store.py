"""Write schedules into the store and import schedule files (MS Project XML, CSV task maps)."""

from __future__ import annotations

from pathlib import Path

from sitetwin.bim.errors import BimError
from sitetwin.bim.schedule import Schedule, read_msproject_xml, read_task_map
from sitetwin.data.errors import Note
from sitetwin.data.i18n import N_
from sitetwin.data.store import Store


def store_schedule(store: Store, site_code: str, schedule: Schedule, *, model_id: str | None = None) -> int:
    """Write a schedule, its tasks and element links; returns the number of tasks written.

    Runs inside the caller's transaction when there is one. Links name GlobalIds; those that
    match an element of the site's current models get its model id.
    """
    import pandas as pd

    if store.scalar("SELECT count(*) FROM schedules WHERE schedule_id = ?", [schedule.schedule_id]):
        return 0
    store.execute("INSERT INTO schedules (schedule_id, site_code, name, source, file_name, model_id) "
                  "VALUES (?, ?, ?, ?, ?, ?)",
                  [schedule.schedule_id, site_code, schedule.name, schedule.source, schedule.file_name, model_id])
    if schedule.tasks:
        store.insert_frame("tasks", pd.DataFrame({
            "site_code": site_code, "schedule_id": schedule.schedule_id,
            "task_id": [t.task_id for t in schedule.tasks], "parent_id": [t.parent_id for t in schedule.tasks],
            "wbs": [t.wbs for t in schedule.tasks], "name": [t.name for t in schedule.tasks],
            "outline_level": pd.array([t.outline_level for t in schedule.tasks], dtype="Int32"),
            "is_summary": [t.is_summary for t in schedule.tasks],
            "start": pd.to_datetime([t.start for t in schedule.tasks]),
            "finish": pd.to_datetime([t.finish for t in schedule.tasks])}).drop_duplicates("task_id"))
    _insert_links(store, site_code, schedule.schedule_id, schedule.links)
    return len(schedule.tasks)


def _insert_links(store: Store, site_code: str, schedule_id: str, links) -> None:
    """Task -> GlobalId links; each gets the model id of the site's current element with that GlobalId."""
    import pandas as pd

    if not links:
        return
    frame = pd.DataFrame(list(dict.fromkeys(links)), columns=["task_id", "global_id"])
    frame["site_code"] = site_code
    frame["schedule_id"] = schedule_id
    store.con.register("_links", frame)
    try:
        store.execute(
            "INSERT OR IGNORE INTO task_elements (site_code, schedule_id, task_id, model_id, global_id) "
            "SELECT l.site_code, l.schedule_id, l.task_id, "
            "  (SELECT min(e.model_id) FROM current_elements e WHERE e.site_code = l.site_code "
            "   AND e.global_id = l.global_id), l.global_id FROM _links l")
    finally:
        store.con.unregister("_links")


def import_schedule_file(store: Store, path: str | Path, *, site_code: str, schedule_id: str | None = None) -> dict:
    """Import an MS Project XML schedule, or a CSV map from GlobalIds to tasks, in one transaction.

    A CSV map that carries task names/dates becomes a schedule of its own; one without
    them links elements to the tasks of ``schedule_id``.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".xml":
        schedule = read_msproject_xml(path)
    elif suffix == ".csv":
        schedule = read_task_map(path)
    else:
        raise BimError(N_("{path}: expected an MS Project .xml or a .csv task map"), path=path)
    warnings: list[Note] = []
    with store.transaction():
        if schedule.tasks or schedule_id is None:
            if not schedule.tasks:
                raise BimError(N_("{path}: the CSV names no task dates; give --schedule with the id of the schedule "
                                  "whose tasks it links to"), path=path)
            written = store_schedule(store, site_code, schedule)
            target = schedule.schedule_id
            if not written:
                warnings.append(Note(N_("{file}: already imported as schedule {schedule_id}"), file=path.name,
                                     schedule_id=target))
        else:
            target = schedule_id
            if not store.scalar("SELECT count(*) FROM schedules WHERE schedule_id = ? AND site_code = ?",
                                [schedule_id, site_code]):
                raise BimError(N_("{path}: no schedule {schedule_id!r} in site {site_code}"), path=path,
                               schedule_id=schedule_id, site_code=site_code)
            known = {r["task_id"] for r in store.rows("SELECT task_id FROM tasks WHERE schedule_id = ?", [schedule_id])}
            unknown = sorted({t for t, _ in schedule.links} - known)
            if unknown:
                raise BimError(N_("{path}: {n} task id(s) not in schedule {schedule_id}: {task_ids}"), path=path,
                               n=len(unknown), schedule_id=schedule_id,
                               task_ids=", ".join(unknown[:5]) + (" ..." if len(unknown) > 5 else ""))
            _insert_links(store, site_code, schedule_id, schedule.links)
        counts = store.one("SELECT count(*) AS links, count(model_id) AS found FROM task_elements "
                           "WHERE schedule_id = ?", [target])
        assert counts is not None       # a count is always one row
        tasks = store.scalar("SELECT count(*) FROM tasks WHERE schedule_id = ?", [target])
    if counts["links"] and not counts["found"]:
        warnings.append(Note(N_("{file}: none of its {n} GlobalIds is an element of site {site_code}'s models; the "
                                "links are kept for models loaded later"), file=path.name, n=counts["links"],
                             site_code=site_code))
    return {"schedule_id": target, "source": schedule.source, "tasks": int(tasks), "links": int(counts["links"]),
            "linked_to_model": int(counts["found"]), "warnings": warnings}
