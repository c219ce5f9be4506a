"""Progress across survey epochs: when each element was first seen built, against the schedule.

An element counts as built from the first survey that found it standing (``built`` or
``out_of_tolerance``). Planned progress on a date is the share of scheduled elements whose
task finishes by then; actual progress on a survey date the share first seen built by then.
Shares are by element count. An element is *late* when some survey on or after its planned
finish did not find it standing; ``days_late`` runs to its first sighting, or to the latest
survey for elements still missing (then it is a lower bound). Only surveys that could see an
element (``visible_share`` >= 5 %) can find it missing.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Any

import numpy as np

from sitetwin.bim.queries import element_frame, element_tasks
from sitetwin.data.store import Store

# A survey that saw less of an element's surface than this cannot call it missing.
MIN_VISIBLE_SHARE = 0.05


@dataclass(frozen=True)
class ProgressReport:
    site_code: str
    surveys: tuple[dict, ...]          # survey_id, epoch, built (count), in epoch order
    elements: int                      # scheduled elements with geometry in the site's current models
    by_storey: tuple[dict, ...]        # storey, elements, planned_pct, actual_pct (at the latest survey)
    by_task: tuple[dict, ...]          # task, dates, elements, planned_pct, actual_pct, late
    s_curve: tuple[dict, ...]          # date, planned_pct, actual_pct (None between surveys)
    late_elements: tuple[dict, ...]    # model_id, global_id, ifc_class, storey, task, planned_finish, ...
    first_built: tuple[dict, ...]      # model_id, global_id, first_built_epoch, survey_id


def progress_report(store: Store, *, site_code: str | None = None) -> ProgressReport:
    """Progress of a site (default: the store's only site) from its analysed surveys."""
    import pandas as pd

    from sitetwin.bim.mesh import resolve_site

    site_code = resolve_site(store, site_code)
    surveys = store.rows("SELECT survey_id, epoch FROM surveys WHERE site_code = ? AND status = 'analysed' "
                         "AND epoch IS NOT NULL ORDER BY epoch, created_at", [site_code])
    elements = element_frame(store, site_code=site_code)
    tasks = element_tasks(store, site_code)
    plan = elements.loc[elements["has_geometry"], ["model_id", "global_id", "ifc_class", "storey"]].merge(
        tasks, on=["model_id", "global_id"], how="inner")
    plan["planned_start"] = plan.pop("start").dt.normalize()
    plan["planned_finish"] = plan.pop("finish").dt.normalize()
    seen = store.df(
        "SELECT d.model_id, d.global_id, s.survey_id, s.epoch, d.status, d.visible_share FROM element_deviation d "
        "JOIN surveys s USING (survey_id) WHERE s.site_code = ? AND s.status = 'analysed' AND s.epoch IS NOT NULL",
        [site_code])
    first = store.df("SELECT model_id, global_id, first_built_epoch, first_built_survey FROM element_first_built "
                     "WHERE site_code = ?", [site_code])
    for r in surveys:
        r["epoch"] = r["epoch"].date() if isinstance(r["epoch"], _dt.datetime) else r["epoch"]
    epochs = [r["epoch"] for r in surveys]
    latest = epochs[-1] if epochs else None
    plan = plan.merge(first, on=["model_id", "global_id"], how="left")
    plan["planned_finish"] = pd.to_datetime(plan["planned_finish"]).dt.date
    plan["planned_start"] = pd.to_datetime(plan["planned_start"]).dt.date
    fb = pd.to_datetime(plan["first_built_epoch"])
    plan["first_built_epoch"] = [None if pd.isna(x) else x.date() for x in fb]
    total = len(plan)

    def pct(mask) -> float:
        return round(100.0 * float(np.sum(mask)) / total, 2) if total else 0.0

    def built_by(day):
        return np.array([f is not None and f <= day for f in plan["first_built_epoch"]], dtype=bool)

    def planned_by(day):
        return np.array([f is not None and f <= day for f in plan["planned_finish"]], dtype=bool)

    survey_rows = tuple({"survey_id": r["survey_id"], "epoch": r["epoch"],
                         "built": int(built_by(r["epoch"]).sum()),
                         "planned": int(planned_by(r["epoch"]).sum())} for r in surveys)
    dates = sorted(set(d for d in plan["planned_finish"] if d is not None) | set(epochs))
    s_curve = tuple({"date": d, "planned_pct": pct(planned_by(d)),
                     "actual_pct": pct(built_by(d)) if d in epochs else None} for d in dates)

    # late: some survey on or after the planned finish did not find it standing
    standing: dict[tuple[str, str], list[tuple[Any, bool, str]]] = {}
    for m, g, _, ep, st, vis in seen.itertuples(index=False):
        ep = ep.date() if hasattr(ep, "date") and callable(ep.date) else ep
        ok = st in ("built", "out_of_tolerance")
        # a survey that could not see the element says nothing about whether it was late
        if ok or (vis is not None and vis == vis and vis >= MIN_VISIBLE_SHARE):
            standing.setdefault((m, g), []).append((ep, ok, st))
    late_rows = []
    latest_status = {}
    for key, obs in standing.items():
        obs.sort(key=lambda o: o[0])
        latest_status[key] = obs[-1][2]
    late_flags = np.zeros(total, dtype=bool)
    for i, row in enumerate(plan.itertuples(index=False)):
        finish = row.planned_finish
        obs = standing.get((row.model_id, row.global_id), [])
        missed = [ep for ep, ok, _ in obs if ep >= finish and not ok]
        if not missed:
            continue
        late_flags[i] = True
        until = row.first_built_epoch or latest
        late_rows.append({"model_id": row.model_id, "global_id": row.global_id, "ifc_class": row.ifc_class,
                          "storey": row.storey, "task": row.task_name, "planned_finish": finish,
                          "first_built_epoch": row.first_built_epoch,
                          "days_late": (until - finish).days, "still_missing": row.first_built_epoch is None,
                          "latest_status": latest_status.get((row.model_id, row.global_id))})
    late_rows.sort(key=lambda r: (-r["days_late"], r["storey"] or "", r["global_id"]))

    by_storey, by_task = [], []
    if total:
        planned_now = planned_by(latest) if latest else np.zeros(total, bool)
        built_now = built_by(latest) if latest else np.zeros(total, bool)
        plan["_planned"], plan["_built"], plan["_late"] = planned_now, built_now, late_flags
        for storey, g in plan.groupby("storey", dropna=False, sort=False):
            by_storey.append({"storey": None if pd.isna(storey) else storey, "elements": len(g),
                              "planned_pct": round(100 * g["_planned"].mean(), 2),
                              "actual_pct": round(100 * g["_built"].mean(), 2), "late": int(g["_late"].sum())})
        for (task_id, name), g in plan.groupby(["task_id", "task_name"], sort=False):
            by_task.append({"task_id": task_id, "task": name, "planned_start": g["planned_start"].iloc[0],
                            "planned_finish": g["planned_finish"].iloc[0], "elements": len(g),
                            "planned_pct": round(100 * g["_planned"].mean(), 2),
                            "actual_pct": round(100 * g["_built"].mean(), 2), "late": int(g["_late"].sum())})
        by_storey.sort(key=lambda r: str(r["storey"]))
        by_task.sort(key=lambda r: (r["planned_finish"] or _dt.date.max, r["task"] or ""))
    first_rows = tuple({"model_id": r.model_id, "global_id": r.global_id,
                        "first_built_epoch": r.first_built_epoch, "survey_id": r.first_built_survey}
                       for r in plan.itertuples(index=False) if r.first_built_epoch is not None)
    return ProgressReport(site_code=site_code, surveys=survey_rows, elements=total, by_storey=tuple(by_storey),
                          by_task=tuple(by_task), s_curve=s_curve, late_elements=tuple(late_rows),
                          first_built=first_rows)
