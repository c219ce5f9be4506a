"""What the schedule says about each element: its task and when it should stand.

An element's planned finish is the latest finish of the (non-summary) tasks linked to it
in ``task_elements``; elements no task names have no planned date.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence

import numpy as np

from sitetwin.data.store import Store


def element_plan(store: Store, site_code: str, model_ids: Sequence[str]):
    """One row per element of the models: model_id, global_id, ifc_class, storey, has_geometry,
    task_id, task_name, wbs, planned_start, planned_finish (timestamps, NULL when unscheduled)."""
    placeholders = ", ".join("?" for _ in model_ids)
    return store.df(
        "WITH links AS ("
        "  SELECT te.model_id, te.global_id, t.task_id, t.name AS task_name, t.wbs, t.start, t.finish,"
        "         row_number() OVER (PARTITION BY te.model_id, te.global_id"
        "                            ORDER BY t.finish DESC NULLS LAST, t.task_id) AS rn"
        "  FROM task_elements te JOIN tasks t ON t.schedule_id = te.schedule_id AND t.task_id = te.task_id"
        "  WHERE te.site_code = ? AND NOT t.is_summary)"
        " SELECT e.model_id, e.global_id, e.ifc_class, e.storey, e.has_geometry,"
        "        l.task_id, l.task_name, l.wbs, l.start AS planned_start, l.finish AS planned_finish"
        f" FROM elements e LEFT JOIN links l ON l.model_id = e.model_id AND l.global_id = e.global_id AND l.rn = 1"
        f" WHERE e.site_code = ? AND e.model_id IN ({placeholders})"
        " ORDER BY e.model_id, e.global_id", [site_code, site_code, *model_ids])


def planned_mask(plan, mesh, epoch: _dt.date | None) -> tuple[np.ndarray, np.ndarray]:
    """(planned, scheduled) bool per mesh element: planned = should stand by ``epoch`` (its task
    finishes on or before that day, or it has no task); scheduled = some task names it."""
    finish = {}
    for m, g, f in zip(plan["model_id"], plan["global_id"], plan["planned_finish"]):
        finish[(m, g)] = f
    k = len(mesh.global_ids)
    planned = np.ones(k, dtype=bool)
    scheduled = np.zeros(k, dtype=bool)
    for i, (m, g) in enumerate(zip(mesh.model_ids.tolist(), mesh.global_ids.tolist())):
        f = finish.get((m, g))
        if f is None or f != f:       # None or NaT
            continue
        scheduled[i] = True
        if epoch is not None:
            planned[i] = _as_date(f) <= epoch
    return planned, scheduled


def _as_date(value) -> _dt.date:
    if hasattr(value, "to_pydatetime"):
        value = value.to_pydatetime()
    if isinstance(value, _dt.datetime):
        return value.date()
    return value
