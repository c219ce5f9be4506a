"""What the schedule says about each element: its task and when it should stand.

An element's planned finish is the latest finish of the (non-summary) tasks linked to it
in ``task_elements``; elements no task names have no planned date.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence

import numpy as np

from sitetwin.bim.queries import element_frame, element_tasks
from sitetwin.data.store import Store


def element_plan(store: Store, site_code: str, model_ids: Sequence[str]):
    """One row per element of the models: model_id, global_id, ifc_class, storey, has_geometry,
    task_id, task_name, wbs, planned_start, planned_finish (timestamps, NaT when unscheduled)."""
    elements = element_frame(store, site_code=site_code, model_ids=model_ids)
    tasks = element_tasks(store, site_code).rename(columns={"start": "planned_start", "finish": "planned_finish"})
    plan = elements[["model_id", "global_id", "ifc_class", "storey", "has_geometry"]].merge(
        tasks, on=["model_id", "global_id"], how="left")
    return plan.sort_values(["model_id", "global_id"], kind="stable", ignore_index=True)


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
