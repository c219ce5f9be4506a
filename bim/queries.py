"""What bim publishes for other packages to read: models and their versions, elements, storeys, schedules and
the plan of each element (DataFrames for tables, dicts for one record; site local frame, metres)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sitetwin.data.store import Store, placeholders, where_in


def list_elements(store: Store, *, model_id: str | None = None, site_code: str | None = None,
                  ifc_class: str | None = None, storey: str | None = None, limit: int = 0) -> list[dict]:
    """Elements of one model, or of the current models of a site (all sites when neither is given)."""
    where: list[str] = []
    params: list[str | int] = []
    source = "elements" if model_id else "current_elements"
    for column, value in (("model_id", model_id), ("site_code", site_code), ("ifc_class", ifc_class),
                          ("storey", storey)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    sql = (f"SELECT site_code, model_id, global_id, ifc_class, predefined_type, name, object_type, storey, "
           f"storey_global_id, type_name, material, properties, quantities, has_geometry, triangle_count, "
           f"bbox_min_x_m, bbox_min_y_m, bbox_min_z_m, bbox_max_x_m, bbox_max_y_m, bbox_max_z_m FROM {source}"
           + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY model_id, global_id")
    if limit and limit > 0:
        sql += " LIMIT ?"
        params.append(int(limit))
    return store.rows(sql, params)


def list_models(store: Store, *, site_code: str | None = None, current: bool = False) -> list[dict]:
    """Models as rows (model_id, site_code, name, version, file_name, ifc_schema, length_unit, element_count,
    triangle_count, loaded_at): every version, or with ``current`` only the newest of each discipline model;
    of one site or of all. Ordered by site_code, name, version."""
    sql = ("SELECT model_id, site_code, name, version, file_name, ifc_schema, length_unit, element_count, "
           f"triangle_count, loaded_at FROM {'current_models' if current else 'models'}")
    params: list = []
    if site_code is not None:
        sql += " WHERE site_code = ?"
        params.append(site_code)
    return store.rows(sql + " ORDER BY site_code, name, version", params)


def current_model_ids(store: Store, site_code: str | None = None) -> list[str]:
    """Ids of the current models (the newest version of each discipline model), of one site or of all, sorted."""
    if site_code is None:
        return [r[0] for r in store.execute("SELECT model_id FROM current_models ORDER BY model_id")]
    return [r[0] for r in store.execute("SELECT model_id FROM current_models WHERE site_code = ? ORDER BY model_id",
                                        [site_code])]


def model_record(store: Store, model_id: str) -> dict | None:
    """One model's ``models`` row (model_id, site_code, name, version, file_name, sha256, ifc_schema, length_unit,
    length_unit_m, georef and failures as JSON text, element_count, triangle_count, loaded_at), or None."""
    return store.one("SELECT * FROM models WHERE model_id = ?", [model_id])


ELEMENT_FRAME_COLUMNS = ("site_code", "model_id", "global_id", "ifc_class", "predefined_type", "name", "object_type",
                         "storey", "has_geometry", "bbox_min_x_m", "bbox_min_y_m", "bbox_min_z_m", "bbox_max_x_m",
                         "bbox_max_y_m", "bbox_max_z_m")


def element_frame(store: Store, *, site_code: str | None = None, model_ids: Sequence[str] | None = None):
    """The elements of the models ``model_ids`` (any version; only those of ``site_code`` when it is given too),
    else of the current models of ``site_code``.

    DataFrame ``ELEMENT_FRAME_COLUMNS``: site_code, model_id, global_id, ifc_class, predefined_type, name,
    object_type, storey (NaN when unknown), has_geometry, bbox_min_x_m .. bbox_max_z_m (the element's box in the
    site's local frame, metres; NaN without geometry). One row per (model_id, global_id), in load order: models
    as they were loaded, each model's elements as its file lists them.
    """
    if model_ids is None and site_code is None:
        raise ValueError("element_frame needs a site_code or model_ids")
    columns = ", ".join(ELEMENT_FRAME_COLUMNS)
    params: Sequence[str | None]
    if model_ids is None:
        where, params = "model_id IN (SELECT model_id FROM current_models WHERE site_code = ?)", [site_code]
    else:
        ids = list(model_ids)
        if not ids:
            return store.df(f"SELECT {columns} FROM elements WHERE false")
        where, params = f"model_id IN ({placeholders(ids)})", ids
        if site_code is not None:
            where, params = where + " AND site_code = ?", [*ids, site_code]
    # load order, not id order: callers that walk the elements in turn (slab edges, scene samplers) depend on
    # meeting them as the model's file lists them
    return store.df(f"SELECT {columns} FROM elements WHERE {where} ORDER BY rowid", params)


def current_element(store: Store, site_code: str, global_id: str) -> dict | None:
    """One element of the site's current models by GlobalId, or None: model_id, global_id, ifc_class, name, storey,
    has_geometry, bbox_min_x_m .. bbox_max_z_m (site local frame, metres; None without geometry)."""
    return store.one("SELECT model_id, global_id, ifc_class, name, storey, has_geometry, bbox_min_x_m, bbox_min_y_m, "
                     "bbox_min_z_m, bbox_max_x_m, bbox_max_y_m, bbox_max_z_m FROM current_elements "
                     "WHERE site_code = ? AND global_id = ?", [site_code, global_id])


def element_extent(store: Store, *, site_code: str | None = None, model_id: str | None = None) -> dict | None:
    """The box round the element boxes of one model, else of the site's current models: dict min_x_m, min_y_m,
    min_z_m, max_x_m, max_y_m, max_z_m (site local frame, metres); None when no element has a box."""
    if model_id is not None:
        where, params = "model_id = ?", [model_id]
    elif site_code is not None:
        where, params = "model_id IN (SELECT model_id FROM current_models WHERE site_code = ?)", [site_code]
    else:
        raise ValueError("element_extent needs a site_code or a model_id")
    row = store.one("SELECT min(bbox_min_x_m) AS min_x_m, min(bbox_min_y_m) AS min_y_m, min(bbox_min_z_m) AS min_z_m, "
                    "max(bbox_max_x_m) AS max_x_m, max(bbox_max_y_m) AS max_y_m, max(bbox_max_z_m) AS max_z_m "
                    f"FROM elements WHERE {where}", params)
    return None if row is None or row["min_x_m"] is None else row


def storey_frame(store: Store, model_ids: Sequence[str]):
    """The storeys of the models: DataFrame model_id, global_id, name, elevation_m (site local frame, metres; NaN
    when unknown), lowest first (unknown last; equal ones in load order)."""
    ids = list(model_ids)
    if not ids:
        return store.df("SELECT model_id, global_id, name, elevation_m FROM storeys WHERE false")
    return store.df(f"SELECT model_id, global_id, name, elevation_m FROM storeys "
                    f"WHERE model_id IN ({placeholders(ids)}) "
                    f"ORDER BY elevation_m NULLS LAST, rowid", ids)


def element_tasks(store: Store, site_code: str):
    """The task of each element a schedule of the site links: of the non-summary tasks linked to it, the one that
    finishes last (undated last, ties to the lowest task_id).

    DataFrame model_id (None for a link to a GlobalId in no model), global_id, task_id, task_name, wbs, start,
    finish (timestamps, NaT when undated); one row per linked (model_id, global_id), ordered by them.
    """
    return store.df(
        "WITH links AS ("
        "  SELECT te.model_id, te.global_id, t.task_id, t.name AS task_name, t.wbs, t.start, t.finish,"
        "         row_number() OVER (PARTITION BY te.model_id, te.global_id"
        "                            ORDER BY t.finish DESC NULLS LAST, t.task_id) AS rn"
        "  FROM task_elements te JOIN tasks t ON t.schedule_id = te.schedule_id AND t.task_id = te.task_id"
        "  WHERE te.site_code = ? AND NOT t.is_summary)"
        " SELECT model_id, global_id, task_id, task_name, wbs, start, finish FROM links WHERE rn = 1"
        " ORDER BY model_id, global_id", [site_code])


def element_finish(store: Store, site_code: str, *, model_id: str | None = None):
    """When each GlobalId a schedule of the site links should stand: the latest finish of all the tasks (summary
    tasks too) linked to it. With ``model_id``, only links to that model or to no model count.

    DataFrame global_id, finish (timestamp; NaT when none of its tasks has a finish), ordered by global_id.
    """
    sql = ("SELECT te.global_id, max(t.finish) AS finish FROM task_elements te "
           "JOIN tasks t USING (schedule_id, task_id) WHERE te.site_code = ?")
    params: list = [site_code]
    if model_id is not None:
        sql += " AND (te.model_id = ? OR te.model_id IS NULL)"
        params.append(model_id)
    return store.df(sql + " GROUP BY te.global_id ORDER BY te.global_id", params)


def schedule_span(store: Store, site_code: str) -> dict:
    """The site's schedule span: dict start (earliest task start), finish (latest task finish), as datetimes;
    None for each when no task has one."""
    row = store.one("SELECT min(start) AS start, max(finish) AS finish FROM tasks WHERE site_code = ?", [site_code])
    return row or {"start": None, "finish": None}


# --------------------------------------------------------------------------------------
# what the workbench reads (one function per question)

def current_element_count(store: Store, site_code: str) -> int:
    """How many elements the site's current models hold."""
    return int(store.scalar("SELECT count(*) FROM current_elements WHERE site_code = ?", [site_code]) or 0)


def ifc_classes(store: Store, site_code: str) -> list[str]:
    """The IFC classes of the site's current elements, sorted."""
    return [r[0] for r in store.execute("SELECT DISTINCT ifc_class FROM current_elements WHERE site_code = ? "
                                        "ORDER BY 1", [site_code])]


def element_record(store: Store, site_code: str, global_id: str) -> dict | None:
    """Everything known of one element of the site's current models (the lowest model_id when two current
    models share the GlobalId), or None: the ``elements`` row (see migration 0001: ifc_class, name, storey,
    type and material, bbox_*_m in the site's local frame, metres, ...) with ``properties`` ({pset: {name:
    value}}) and ``quantities`` ({qto: {name: value}}) decoded from JSON."""
    import json

    row = store.one("SELECT * FROM current_elements WHERE site_code = ? AND global_id = ? ORDER BY model_id LIMIT 1",
                    [site_code, global_id])
    if row is None:
        return None
    for k in ("properties", "quantities"):
        if isinstance(row.get(k), str):
            row[k] = json.loads(row[k])
    return row


def element_labels(store: Store, site_code: str, global_ids: Sequence[str]):
    """Class, storey and name of the site's current elements with the given GlobalIds.

    DataFrame model_id, global_id, ifc_class, storey, name (missing when unknown); one row per current element
    (a GlobalId two current models share has two), ordered by global_id, model_id.
    """
    ids = list(dict.fromkeys(global_ids))
    if not ids:
        return store.df("SELECT model_id, global_id, ifc_class, storey, name FROM current_elements WHERE false")
    return store.df(f"SELECT model_id, global_id, ifc_class, storey, name FROM current_elements WHERE site_code = ? "
                    f"AND global_id IN ({placeholders(ids)}) ORDER BY global_id, model_id",
                    [site_code, *ids])


def footprints(store: Store, model_ids: Sequence[str], *, storey: str | None = None):
    """Plan-view boxes of the slabs, walls and columns with geometry of the given models (of one storey, or all).

    DataFrame ifc_class, x0, y0, x1, y1 (the element box's x and y extent in the site's local frame, metres).
    """
    ids = list(model_ids)
    if not ids:
        return store.df("SELECT ifc_class, bbox_min_x_m AS x0, bbox_min_y_m AS y0, bbox_max_x_m AS x1, "
                        "bbox_max_y_m AS y1 FROM elements WHERE false")
    marks = ", ".join("?" for _ in ids)
    return store.df(
        f"SELECT ifc_class, bbox_min_x_m AS x0, bbox_min_y_m AS y0, bbox_max_x_m AS x1, bbox_max_y_m AS y1 "
        f"FROM elements WHERE model_id IN ({marks}) AND has_geometry AND ifc_class IN ('IfcColumn', 'IfcWall', "
        f"'IfcWallStandardCase', 'IfcSlab') AND (? IS NULL OR storey = ?)", [*ids, storey, storey])


def planned_elements(store: Store, site_code: str):
    """Each current element of the site that a non-summary task builds, with its plan.

    DataFrame model_id, global_id, ifc_class, storey, planned_start (earliest start of its tasks),
    planned_finish (latest finish; timestamps, NaT when undated), task_id, task (id and name of the task that
    finishes last). A link without a model_id counts for every current element with that GlobalId.
    """
    return store.df(
        "SELECT e.model_id, e.global_id, e.ifc_class, e.storey, min(t.start) AS planned_start, "
        "max(t.finish) AS planned_finish, arg_max(t.task_id, t.finish) AS task_id, arg_max(t.name, t.finish) AS task "
        "FROM current_elements e JOIN task_elements te ON te.site_code = e.site_code AND te.global_id = e.global_id "
        " AND (te.model_id IS NULL OR te.model_id = e.model_id) "
        "JOIN tasks t ON t.schedule_id = te.schedule_id AND t.task_id = te.task_id AND NOT t.is_summary "
        "WHERE e.site_code = ? GROUP BY e.model_id, e.global_id, e.ifc_class, e.storey", [site_code])


def element_plan(store: Store, site_code: str):
    """Every current element of the site with when the non-summary tasks linked to it start and finish.

    DataFrame model_id, global_id, planned_start, planned_finish (timestamps of one linked plan: a link
    naming the element's model, or one naming no model; NaT when unscheduled), earliest_finish (the earliest
    planned finish of all its linked plans). One row per current element.
    """
    return store.df(
        "WITH plan AS (SELECT te.model_id, te.global_id, min(t.start) AS planned_start, "
        "  max(t.finish) AS planned_finish FROM task_elements te JOIN tasks t ON t.schedule_id = te.schedule_id "
        "  AND t.task_id = te.task_id WHERE te.site_code = $site AND NOT t.is_summary GROUP BY ALL) "
        "SELECT e.model_id, e.global_id, any_value(p.planned_start) AS planned_start, "
        " any_value(p.planned_finish) AS planned_finish, min(p.planned_finish) AS earliest_finish "
        "FROM current_elements e "
        "LEFT JOIN plan p ON p.global_id = e.global_id AND (p.model_id IS NULL OR p.model_id = e.model_id) "
        "WHERE e.site_code = $site GROUP BY e.model_id, e.global_id", {"site": site_code})


def work_span(store: Store, site_code: str) -> dict | None:
    """When the work of the site's schedules starts and ends (summary tasks left out): dict start (earliest
    task start), finish (latest task finish), as datetimes; None when no task has a start."""
    row = store.one("SELECT min(t.start) AS start, max(t.finish) AS finish FROM tasks t JOIN schedules s "
                    "USING (schedule_id) WHERE s.site_code = ? AND NOT t.is_summary", [site_code])
    if row is None or row["start"] is None:
        return None
    return row


def schedule_summary(store: Store, site_code: str) -> dict:
    """How many schedules the site has and when the newest was imported: dict schedules (int),
    last_imported_at (naive UTC datetime; None without schedules)."""
    row = store.one("SELECT count(*) AS schedules, max(imported_at) AS last_imported_at FROM schedules "
                    "WHERE site_code = ?", [site_code])
    return row or {"schedules": 0, "last_imported_at": None}


def model_element(store: Store, site_code: str, model_id: str, global_id: str) -> dict | None:
    """One element of one model of the site (any version, current or not) by GlobalId, or None: model_id,
    global_id, ifc_class, name, storey, has_geometry, bbox_min_x_m .. bbox_max_z_m (site local frame, metres;
    None without geometry)."""
    return store.one("SELECT model_id, global_id, ifc_class, name, storey, has_geometry, bbox_min_x_m, bbox_min_y_m, "
                     "bbox_min_z_m, bbox_max_x_m, bbox_max_y_m, bbox_max_z_m FROM elements "
                     "WHERE site_code = ? AND model_id = ? AND global_id = ?", [site_code, model_id, global_id])


def element_boxes(store: Store, site_code: str, global_ids: Sequence[str]):
    """Where the site's current elements with the given GlobalIds are.

    DataFrame model_id, global_id, storey (None when unknown), bbox_min_x_m .. bbox_max_z_m (the element's box in
    the site's local frame, metres; NaN without geometry); one row per current element (a GlobalId two current
    models share has two), ordered by global_id, model_id.
    """
    ids = list(dict.fromkeys(global_ids))
    columns = ("model_id, global_id, storey, bbox_min_x_m, bbox_min_y_m, bbox_min_z_m, bbox_max_x_m, bbox_max_y_m, "
               "bbox_max_z_m")
    if not ids:
        return store.df(f"SELECT {columns} FROM current_elements WHERE false")
    return store.df(f"SELECT {columns} FROM current_elements WHERE site_code = ? "
                    f"AND global_id IN ({placeholders(ids)}) ORDER BY global_id, model_id",
                    [site_code, *ids])


def model_element_counts(store: Store, model_ids: Sequence[str]):
    """How many elements each of the given models holds, and how many of them are placed (have geometry and a
    storey).

    DataFrame model_id, elements, placed (counts); a model without elements has no row. Ordered by model_id.
    """
    where, params = where_in("model_id", list(model_ids))
    return store.df(f"SELECT model_id, count(*) AS elements, "
                    f"count(*) FILTER (WHERE has_geometry AND storey IS NOT NULL) AS placed FROM elements "
                    f"WHERE {where} GROUP BY model_id ORDER BY model_id", params)


def linked_element_counts(store: Store, site_codes: Sequence[str]):
    """How many of each site's current elements have geometry, and how many current elements with geometry
    (distinct GlobalIds) a schedule task of the site links to.

    DataFrame site_code, elements, linked (counts); a site with neither has no row. Ordered by site_code.
    """
    codes = list(dict.fromkeys(site_codes))
    marks = ", ".join("?" for _ in codes)
    if not codes:
        return store.df("SELECT site_code, 0 AS elements, 0 AS linked FROM current_elements WHERE false")
    return store.df(
        f"WITH el AS (SELECT site_code, count(*) AS elements FROM current_elements "
        f" WHERE site_code IN ({marks}) AND has_geometry GROUP BY site_code), "
        f"li AS (SELECT te.site_code, count(DISTINCT te.global_id) AS linked FROM task_elements te "
        f" JOIN current_elements e ON e.model_id = te.model_id AND e.global_id = te.global_id "
        f" WHERE te.site_code IN ({marks}) AND e.has_geometry GROUP BY te.site_code) "
        f"SELECT site_code, coalesce(el.elements, 0) AS elements, coalesce(li.linked, 0) AS linked "
        f"FROM el FULL JOIN li USING (site_code) ORDER BY site_code", [*codes, *codes])


def elements_due(store: Store, site_code: str, *, before: dt.datetime):
    """The elements the site's schedules say are built before ``before``: those linked to a non-summary task
    finishing before it.

    DataFrame model_id (None for a link to a GlobalId in no model), global_id, finish (the task's finish, naive
    UTC); one row per distinct (model_id, global_id, finish), ordered by them.
    """
    return store.df("SELECT DISTINCT te.model_id, te.global_id, t.finish FROM tasks t JOIN task_elements te "
                    "ON te.schedule_id = t.schedule_id AND te.task_id = t.task_id "
                    "WHERE t.site_code = ? AND t.finish < ? AND NOT t.is_summary "
                    "ORDER BY te.model_id, te.global_id, t.finish", [site_code, before])


def task_count(store: Store, site_code: str) -> int:
    """How many tasks the site's schedules hold, summary tasks included."""
    return int(store.scalar("SELECT count(*) FROM tasks WHERE site_code = ?", [site_code]) or 0)


def schedule_links(store: Store, site_code: str, *, imported_before: dt.datetime | None = None):
    """The site's schedules (only those imported before ``imported_before`` when it is given), with how much of
    them is linked to the model; by import time, then schedule_id.

    DataFrame schedule_id, name, imported_at (naive UTC), tasks (non-summary tasks), linked_tasks (tasks, summary
    ones too, with at least one link to an element of a model).
    """
    return store.df(
        "SELECT s.schedule_id, s.name, s.imported_at, "
        "(SELECT count(*) FROM tasks t WHERE t.schedule_id = s.schedule_id AND NOT t.is_summary) AS tasks, "
        "(SELECT count(DISTINCT te.task_id) FROM task_elements te WHERE te.schedule_id = s.schedule_id "
        " AND te.model_id IS NOT NULL) AS linked_tasks FROM schedules s WHERE s.site_code = ? "
        "AND (? IS NULL OR s.imported_at < ?) ORDER BY s.imported_at, s.schedule_id",
        [site_code, imported_before, imported_before])


def reference_lines(store: Store, site_code: str, *, model_ids: Sequence[str] | None = None) -> list[dict]:
    """The reference lines (alignment axes) of the site's current models, or of ``model_ids`` (of that site).

    A list of dicts, by model then GlobalId: model_id, global_id, ifc_class (IfcAlignment), name, note (why a 3D
    axis was kept as its plan; None), kind (``axis``:
    the 3D axis; ``plan``: horizontal layout only, at the alignment's placement height, or at the median height of an
    incomplete 3D axis), length_m, and points_m:
    (n, 3) float64 numpy array, the polyline in the site's local frame, metres. The 3D view draws them as lines
    (``Scatter3d`` with ``mode="lines"``); scans are never compared to them.
    """
    import numpy as np

    if model_ids is None:
        where, params = "model_id IN (SELECT model_id FROM current_models WHERE site_code = ?)", [site_code]
    else:
        ids = list(model_ids)
        if not ids:
            return []
        where, params = f"site_code = ? AND model_id IN ({placeholders(ids)})", [site_code, *ids]
    rows = store.rows("SELECT model_id, global_id, ifc_class, name, kind, note, length_m, points_m "
                      f"FROM reference_lines WHERE {where} ORDER BY model_id, global_id", params)
    for r in rows:
        r["points_m"] = np.asarray(r["points_m"], dtype=np.float64).reshape(-1, 3)
    return rows


def reference_line_xyz(store: Store, site_code: str, *, model_ids: Sequence[str] | None = None):
    """All reference lines of the site (as :func:`reference_lines` selects them) as one (n, 3) float64 array, site
    local frame, metres, one NaN row between two lines: what one plotly ``scatter3d`` trace with ``mode="lines"``
    draws (NaN breaks the line). (0, 3) when the site has none."""
    import numpy as np

    parts: list[np.ndarray] = []
    for line in reference_lines(store, site_code, model_ids=model_ids):
        if parts:
            parts.append(np.full((1, 3), np.nan))
        parts.append(line["points_m"])
    return np.concatenate(parts) if parts else np.zeros((0, 3))
