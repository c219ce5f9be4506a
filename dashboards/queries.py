"""Read queries the pages need and no other package offers (yet): one function per question, SQL only.

Every function takes an open store and a site code the caller has already been admitted
to (``dashboards.access.site_store``), binds every value, and returns plain records
(lists of dicts, small dataclasses or pandas frames). Nothing here draws.

Progress at the latest survey is twin's report (``twin.progress``); the 4D state of every
element on any day (:func:`schedule_states`) follows the same rules, from the schedule tables
and twin's element observations.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from sitetwin.data.clock import utcnow
from sitetwin.data.store import Store

STATUSES = ("built", "partial", "not_built", "out_of_tolerance")
OPEN_FINDING_STATUSES = ("open", "reopened", "rectification_submitted")
SEVERITY_RANK = {"low": 0, "medium": 1, "high": 2, "critical": 3}


# --------------------------------------------------------------------------------------
# the site

def site_card(store: Store, site_code: str) -> dict[str, Any]:
    """The site's identity and profile, with counts of what the twin holds for it."""
    site = store.one("SELECT * FROM sites WHERE site_code = ?", [site_code]) or {"site_code": site_code}
    profile = store.one("SELECT * FROM site_profiles WHERE site_code = ?", [site_code]) or {}
    counts = store.one(
        "SELECT (SELECT count(*) FROM current_models WHERE site_code = $s) AS models, "
        "(SELECT count(*) FROM current_elements WHERE site_code = $s) AS elements, "
        "(SELECT count(*) FROM surveys WHERE site_code = $s) AS surveys, "
        "(SELECT count(*) FROM panoramas WHERE site_code = $s) AS panoramas, "
        "(SELECT count(*) FROM detections WHERE site_code = $s) AS detections, "
        "(SELECT count(*) FROM hazards WHERE site_code = $s) AS hazards, "
        "(SELECT count(*) FROM devices WHERE site_code = $s AND removed_on IS NULL) AS devices, "
        "(SELECT count(*) FROM findings WHERE site_code = $s) AS findings", {"s": site_code})
    return {"site": site, "profile": profile, "counts": counts}


def model_versions(store: Store, site_code: str) -> list[dict]:
    """Every version of every discipline model, newest first, with whether it is the current one."""
    return store.rows(
        "SELECT m.name, m.version, m.model_id, m.file_name, m.ifc_schema, m.element_count, m.triangle_count, "
        "m.loaded_at, m.model_id IN (SELECT model_id FROM current_models WHERE site_code = ?) AS current "
        "FROM models m WHERE m.site_code = ? ORDER BY m.name, m.version DESC", [site_code, site_code])


def current_model_ids(store: Store, site_code: str) -> list[str]:
    return [r["model_id"] for r in store.rows(
        "SELECT model_id FROM current_models WHERE site_code = ? ORDER BY model_id", [site_code])]


def surveys(store: Store, site_code: str) -> list[dict]:
    """The site's surveys, oldest epoch first, with registration figures and status counts (twin's reader)."""
    from sitetwin.twin.survey_store import list_surveys

    return list_surveys(store, site_code)


def survey_epochs(store: Store, site_code: str) -> list[dict]:
    """Surveys with an epoch, oldest first: survey_id, epoch, name."""
    return store.rows("SELECT survey_id, epoch, name, status FROM surveys WHERE site_code = ? AND epoch IS NOT NULL "
                      "ORDER BY epoch, created_at, survey_id", [site_code])


def survey_as_of(store: Store, site_code: str, day: dt.date | None) -> str | None:
    """The latest survey taken on or before ``day`` (None: the latest of all)."""
    return store.scalar(
        "SELECT survey_id FROM surveys WHERE site_code = ? AND (? IS NULL OR coalesce(epoch, CAST(created_at AS DATE)) <= ?) "
        "ORDER BY coalesce(epoch, CAST(created_at AS DATE)) DESC, created_at DESC, survey_id LIMIT 1",
        [site_code, day, day])


def survey_in_site(store: Store, site_code: str, survey_id: str | None) -> str | None:
    """``survey_id`` if it is a survey of this site, else None (ids from the URL are checked, never trusted)."""
    if not survey_id:
        return None
    return store.scalar("SELECT survey_id FROM surveys WHERE survey_id = ? AND site_code = ?", [survey_id, site_code])


def data_freshness(store: Store, scope, site_code: str, *, now: dt.datetime | None = None) -> list[dict]:
    """Per data source: newest data, its age in days and completeness (oversight's catalogue, plus detections)."""
    from sitetwin.oversight.catalogue import catalogue

    now = now or utcnow()
    by_kind: dict[str, dict] = {}
    for e in catalogue(store, scope, site_code=site_code, as_of=now.date()):
        last = e["last_update"]
        if isinstance(last, dt.date) and not isinstance(last, dt.datetime):
            last = dt.datetime.combine(last, dt.time())
        k = by_kind.setdefault(e["kind"], {"source": e["kind"], "entries": 0, "last": None, "completeness": []})
        k["entries"] += 1
        if last is not None and (k["last"] is None or last > k["last"]):
            k["last"] = last
        if e["completeness"] is not None:
            k["completeness"].append(e["completeness"])
    det = store.one("SELECT count(*) AS n, max(captured_at) AS last FROM detections WHERE site_code = ?", [site_code])
    if det["n"]:
        by_kind["detections"] = {"source": "detections", "entries": det["n"], "last": det["last"], "completeness": []}
    out = []
    for kind in ("model", "schedule", "survey", "panoramas", "detections", "camera", "sensor", "findings"):
        k = by_kind.get(kind) or {"source": kind, "entries": 0, "last": None, "completeness": []}
        age = (now - k["last"]).total_seconds() / 86400 if k["last"] else None
        comp = k["completeness"]
        out.append({"source": kind, "entries": k["entries"], "last": k["last"],
                    "age_days": None if age is None else round(age, 1),
                    "completeness": round(sum(comp) / len(comp), 3) if comp else None})
    return out


def open_findings(store: Store, scope, site_code: str, *, global_id: str | None = None, limit: int | None = None):
    """Findings still to act on (open, reopened, rectification submitted), newest first (oversight's reader)."""
    from sitetwin.oversight.findings import list_findings

    return list_findings(store, scope, site_code=site_code, status=list(OPEN_FINDING_STATUSES), global_id=global_id,
                         limit=limit)


def element_findings(store: Store, scope, site_code: str, global_id: str):
    from sitetwin.oversight.findings import list_findings

    return list_findings(store, scope, site_code=site_code, global_id=global_id)


def open_hazards(store: Store, site_code: str, *, limit: int = 20) -> tuple[int, list[dict]]:
    """Hazards still going on (no end yet) or whose finding is not closed: how many, and the newest."""
    base = ("FROM hazards h LEFT JOIN finding_state f ON f.finding_id = h.finding_id WHERE h.site_code = ? "
            "AND (h.ended_at IS NULL OR f.status IN ('open', 'reopened', 'rectification_submitted'))")
    total = store.scalar(f"SELECT count(*) {base}", [site_code])
    rows = store.rows(f"SELECT h.hazard_id, h.rule, h.severity, h.message, h.started_at, h.storey, h.global_id, "
                      f"f.status AS finding_status {base} ORDER BY h.started_at DESC NULLS LAST LIMIT ?",
                      [site_code, limit])
    return int(total or 0), rows


# --------------------------------------------------------------------------------------
# elements

def element_attributes(store: Store, model_ids: list[str]) -> list[dict]:
    """Class, storey and name of every element of the given models (for colouring and filters)."""
    if not model_ids:
        return []
    marks = ", ".join("?" for _ in model_ids)
    return store.rows(f"SELECT model_id, global_id, ifc_class, storey, name FROM elements WHERE model_id IN ({marks})",
                      list(model_ids))


def model_extent(store: Store, site_code: str) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """Min and max corner of the site's current elements (local frame, m); a unit box when there are none."""
    r = store.one("SELECT min(bbox_min_x_m) AS x0, min(bbox_min_y_m) AS y0, min(bbox_min_z_m) AS z0, "
                  "max(bbox_max_x_m) AS x1, max(bbox_max_y_m) AS y1, max(bbox_max_z_m) AS z1 FROM current_elements "
                  "WHERE site_code = ?", [site_code])
    if r is None or r["x0"] is None:
        return (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
    return (r["x0"], r["y0"], r["z0"]), (r["x1"], r["y1"], r["z1"])


def storeys(store: Store, site_code: str) -> list[dict]:
    """Storeys of the site's current models, bottom up (name, elevation)."""
    return store.rows("SELECT name, min(elevation_m) AS elevation_m FROM storeys WHERE site_code = ? AND model_id IN "
                      "(SELECT model_id FROM current_models WHERE site_code = ?) GROUP BY name "
                      "ORDER BY elevation_m NULLS LAST, name", [site_code, site_code])


def ifc_classes(store: Store, site_code: str) -> list[str]:
    return [r["ifc_class"] for r in store.rows(
        "SELECT DISTINCT ifc_class FROM current_elements WHERE site_code = ? ORDER BY 1", [site_code])]


def element(store: Store, site_code: str, global_id: str) -> dict | None:
    """One element of the site's current models with its properties and quantities (JSON decoded)."""
    row = store.one("SELECT * FROM current_elements WHERE site_code = ? AND global_id = ? ORDER BY model_id LIMIT 1",
                    [site_code, global_id])
    if row is None:
        return None
    for k in ("properties", "quantities"):
        if isinstance(row.get(k), str):
            row[k] = json.loads(row[k])
    return row


def element_status(store: Store, survey_id: str | None) -> dict[tuple[str, str], dict]:
    """(model_id, global_id) -> status and deviation figures in one survey."""
    if not survey_id:
        return {}
    rows = store.rows("SELECT model_id, global_id, status, points, coverage, mean_mm, p95_mm, max_mm "
                      "FROM element_deviation WHERE survey_id = ?", [survey_id])
    return {(r["model_id"], r["global_id"]): r for r in rows}


def status_history(store: Store, site_code: str, global_id: str) -> list[dict]:
    """The element's status and deviation in every survey of the site, oldest first."""
    return store.rows(
        "SELECT s.survey_id, s.epoch, s.name, d.status, d.points, d.coverage, d.mean_mm, d.p95_mm, d.max_mm "
        "FROM element_deviation d JOIN surveys s USING (survey_id) WHERE d.site_code = ? AND d.global_id = ? "
        "ORDER BY s.epoch NULLS FIRST, s.created_at", [site_code, global_id])


def element_histogram(store: Store, survey_id: str, global_id: str) -> list[dict]:
    return store.rows("SELECT bin_lo_mm, bin_hi_mm, points FROM element_histograms WHERE survey_id = ? "
                      "AND global_id = ? ORDER BY bin_lo_mm", [survey_id, global_id])


def element_detections(store: Store, site_code: str, global_id: str, *, limit: int = 50) -> tuple[int, list[dict]]:
    total = store.scalar("SELECT count(*) FROM detections WHERE site_code = ? AND global_id = ?", [site_code, global_id])
    rows = store.rows("SELECT detection_id, class_name, confidence, captured_at, source_kind, pano_id, camera_id "
                      "FROM detections WHERE site_code = ? AND global_id = ? ORDER BY captured_at DESC NULLS LAST "
                      "LIMIT ?", [site_code, global_id, limit])
    return int(total or 0), rows


def element_hazards(store: Store, site_code: str, global_id: str, *, limit: int = 20) -> list[dict]:
    return store.rows("SELECT hazard_id, rule, severity, started_at, message FROM hazards WHERE site_code = ? "
                      "AND global_id = ? ORDER BY started_at DESC NULLS LAST LIMIT ?", [site_code, global_id, limit])


# --------------------------------------------------------------------------------------
# the schedule and progress

def planned_elements(store: Store, site_code: str) -> list[dict]:
    """Each scheduled element of the current models with its planned start/finish and the task that builds it."""
    return store.rows(
        "SELECT e.model_id, e.global_id, e.ifc_class, e.storey, min(t.start) AS planned_start, "
        "max(t.finish) AS planned_finish, arg_max(t.task_id, t.finish) AS task_id, arg_max(t.name, t.finish) AS task "
        "FROM current_elements e JOIN task_elements te ON te.site_code = e.site_code AND te.global_id = e.global_id "
        " AND (te.model_id IS NULL OR te.model_id = e.model_id) "
        "JOIN tasks t ON t.schedule_id = te.schedule_id AND t.task_id = te.task_id AND NOT t.is_summary "
        "WHERE e.site_code = ? GROUP BY e.model_id, e.global_id, e.ifc_class, e.storey", [site_code])


def schedule_dates(store: Store, site_code: str) -> tuple[dt.date, dt.date] | None:
    row = store.one("SELECT min(t.start) AS a, max(t.finish) AS b FROM tasks t JOIN schedules s USING (schedule_id) "
                    "WHERE s.site_code = ? AND NOT t.is_summary", [site_code])
    if row is None or row["a"] is None:
        return None
    return _day(row["a"]), _day(row["b"])


_progress_cache: dict[tuple, Any] = {}
PROGRESS_CACHE_SIZE = 16


def progress_inputs(store: Store, site_code: str) -> tuple:
    """What a site's progress depends on: its surveys, schedules and current models (cheap to read)."""
    s = store.one("SELECT count(*) AS n, max(created_at) AS last FROM surveys WHERE site_code = ?", [site_code])
    t = store.one("SELECT count(*) AS n, max(imported_at) AS last FROM schedules WHERE site_code = ?", [site_code])
    return (s["n"], str(s["last"]), t["n"], str(t["last"]), tuple(current_model_ids(store, site_code)))


def progress_report(store: Store, site_code: str):
    """Planned vs actual at the latest survey: S-curve, per storey and task, late elements (twin's report).

    twin computes it from every element observation of every survey (seconds for a large site
    with a hundred surveys); it changes only when a survey, a schedule or a model is added, so
    it is kept per store, site and those inputs.
    """
    from sitetwin.twin.progress import progress_report as report

    key = (str(store.path), site_code, progress_inputs(store, site_code))
    hit = _progress_cache.get(key)
    if hit is None:
        hit = report(store, site_code=site_code)
        if len(_progress_cache) >= PROGRESS_CACHE_SIZE:
            _progress_cache.pop(next(iter(_progress_cache)))
        _progress_cache[key] = hit
    return hit


SCHEDULE_STATES = ("built", "late", "in progress", "due (not seen)", "not started", "unscheduled")


def schedule_states(store: Store, site_code: str, day: dt.date) -> dict[tuple[str, str], str]:
    """(model_id, global_id) -> the element's 4D state on ``day``, by twin's rules of progress.

    ``built``: a survey on or before the day found it standing (``element_first_built``);
    ``late``: a survey between its planned finish and the day could see it and did not find
    it standing; ``due (not seen)``: planned finished, but no such survey tells; ``in progress``:
    between planned start and finish; ``not started``; ``unscheduled``: no task builds it.
    """
    from sitetwin.twin.progress import MIN_VISIBLE_SHARE

    rows = store.rows(
        "WITH plan AS (SELECT te.model_id, te.global_id, min(t.start) AS planned_start, "
        "  max(t.finish) AS planned_finish FROM task_elements te JOIN tasks t ON t.schedule_id = te.schedule_id "
        "  AND t.task_id = te.task_id WHERE te.site_code = $site AND NOT t.is_summary GROUP BY ALL), "
        "seen AS (SELECT d.model_id, d.global_id, s.epoch, d.status, d.visible_share FROM element_deviation d "
        "  JOIN surveys s USING (survey_id) WHERE s.site_code = $site AND s.status = 'analysed' "
        "  AND s.epoch IS NOT NULL AND s.epoch <= $day) "
        "SELECT e.model_id, e.global_id, any_value(p.planned_start) AS planned_start, "
        " any_value(p.planned_finish) AS planned_finish, min(w.epoch) FILTER (WHERE w.status IN "
        " ('built', 'out_of_tolerance')) AS first_built, count(w.epoch) FILTER (WHERE w.status NOT IN "
        " ('built', 'out_of_tolerance') AND w.visible_share >= $vis AND w.epoch >= CAST(p.planned_finish AS DATE)) "
        " AS misses FROM current_elements e "
        "LEFT JOIN plan p ON p.global_id = e.global_id AND (p.model_id IS NULL OR p.model_id = e.model_id) "
        "LEFT JOIN seen w ON w.model_id = e.model_id AND w.global_id = e.global_id "
        "WHERE e.site_code = $site GROUP BY e.model_id, e.global_id",
        {"site": site_code, "day": day, "vis": MIN_VISIBLE_SHARE})
    return {(r["model_id"], r["global_id"]): schedule_state(r["planned_start"], r["planned_finish"], r["first_built"],
                                                             r["misses"] > 0, day)
            for r in rows}


def schedule_state(planned_start, planned_finish, first_built, missed: bool, day: dt.date) -> str:
    """One element's 4D state on ``day`` (see :func:`schedule_states`)."""
    if first_built is not None and _day(first_built) <= day:
        return "built"
    if planned_finish is None:
        return "unscheduled"
    if _day(planned_finish) <= day:
        return "late" if missed else "due (not seen)"
    if planned_start is not None and _day(planned_start) <= day:
        return "in progress"
    return "not started"


# --------------------------------------------------------------------------------------
# deviation

def deviation_table(store: Store, site_code: str, survey_id: str, *, storeys: list[str] | None = None,
                    classes: list[str] | None = None):
    """The survey's per-element deviation (pandas), filtered by storey and class."""
    sql = ["SELECT global_id, model_id, ifc_class, storey, status, points, coverage, mean_mm, median_mm, p95_mm, "
           "max_mm, shift_mm, flatness_mm, verticality_mm FROM element_deviation WHERE site_code = ? AND survey_id = ?"]
    params: list[Any] = [site_code, survey_id]
    if storeys:
        sql.append(f"AND storey IN ({', '.join('?' for _ in storeys)})")
        params += list(storeys)
    if classes:
        sql.append(f"AND ifc_class IN ({', '.join('?' for _ in classes)})")
        params += list(classes)
    return store.df(" ".join(sql), params)


def survey_tolerances(store: Store, survey_id: str) -> dict[str, float]:
    """The survey's per-class position tolerance in mm, as twin applied it (empty when not recorded)."""
    raw = store.scalar("SELECT tolerances FROM surveys WHERE survey_id = ?", [survey_id])
    if not raw:
        return {}
    data = json.loads(raw) if isinstance(raw, str) else raw
    out = {}
    for cls, v in (data or {}).items():
        if isinstance(v, (int, float)):
            out[cls] = float(v)
        elif isinstance(v, dict):
            for name in ("position_mm", "axis_position_mm", "tolerance_mm", "position"):
                if isinstance(v.get(name), (int, float)):
                    out[cls] = float(v[name])
                    break
    return out


def unplanned_objects(store: Store, site_code: str, survey_id: str) -> list[dict]:
    return store.rows("SELECT object_id, points, storey, centroid_x_m, centroid_y_m, centroid_z_m, "
                      "max_x_m - min_x_m AS size_x_m, max_y_m - min_y_m AS size_y_m, max_z_m - min_z_m AS size_z_m, "
                      "nearest_global_id, distance_m FROM unplanned_objects WHERE site_code = ? AND survey_id = ? "
                      "ORDER BY points DESC", [site_code, survey_id])


# --------------------------------------------------------------------------------------
# panoramas

def panoramas(store: Store, site_code: str) -> list[dict]:
    """The site's panoramas (posed or not), oldest first, with their camera position in the local frame."""
    rows = store.rows("SELECT pano_id, name, captured_at, width, height, pose_source, pose_rms_px, model_id, "
                      "T_model_from_camera, (SELECT count(*) FROM panorama_element_maps m WHERE m.pano_id = p.pano_id) "
                      "AS has_map, (SELECT count(*) FROM detections d WHERE d.pano_id = p.pano_id) AS detections "
                      "FROM panoramas p WHERE site_code = ? ORDER BY captured_at NULLS LAST, pano_id", [site_code])
    for r in rows:
        T = json.loads(r.pop("T_model_from_camera")) if r.get("T_model_from_camera") else None
        r["position_m"] = [T[0][3], T[1][3], T[2][3]] if T else None
    return rows


def pano_in_site(store: Store, site_code: str, pano_id: str | None) -> str | None:
    if not pano_id:
        return None
    return store.scalar("SELECT pano_id FROM panoramas WHERE pano_id = ? AND site_code = ?", [pano_id, site_code])


def detector_weights(store: Store) -> list[dict]:
    """Trained or exported detector weights recorded by vision, newest first, whose file still exists."""
    rows = store.rows("SELECT run_id, kind, weights_path, finished_at, class_names FROM vision_runs "
                      "WHERE kind IN ('train', 'export') AND status = 'done' AND weights_path IS NOT NULL "
                      "ORDER BY finished_at DESC NULLS LAST")
    out = []
    for r in rows:
        if Path(r["weights_path"]).is_file():
            r["weights_name"] = Path(r["weights_path"]).name
            out.append(r)
    return out


def pano_detections(store: Store, pano_id: str) -> list[dict]:
    return store.rows("SELECT detection_id, class_name, confidence, x1, y1, x2, y2, global_id, ifc_class, storey "
                      "FROM detections WHERE pano_id = ? ORDER BY confidence DESC", [pano_id])


def footprints(store: Store, model_ids: list[str], *, storey: str | None = None) -> list[dict]:
    """Plan-view boxes (x, y extent, local frame) of slabs, walls and columns, for the floor-plan minimap."""
    if not model_ids:
        return []
    marks = ", ".join("?" for _ in model_ids)
    return store.rows(
        f"SELECT ifc_class, bbox_min_x_m AS x0, bbox_min_y_m AS y0, bbox_max_x_m AS x1, bbox_max_y_m AS y1 "
        f"FROM elements WHERE model_id IN ({marks}) AND has_geometry AND ifc_class IN ('IfcColumn', 'IfcWall', "
        f"'IfcWallStandardCase', 'IfcSlab') AND (? IS NULL OR storey = ?)", [*model_ids, storey, storey])


# --------------------------------------------------------------------------------------
# hazards and detections

def hazard_timeline(store: Store, site_code: str, *, rules: list[str] | None = None,
                    storeys: list[str] | None = None) -> list[dict]:
    """Hazards per day and rule (the timeline), filtered."""
    where, params = _hazard_filter(site_code, rules, storeys)
    return store.rows(f"SELECT CAST(started_at AS DATE) AS day, rule, severity, count(*) AS hazards FROM hazards "
                      f"WHERE {where} GROUP BY ALL ORDER BY day, rule", params)


def hazard_counts(store: Store, site_code: str, by: str, *, rules: list[str] | None = None,
                  storeys: list[str] | None = None) -> list[dict]:
    """Hazard counts grouped by ``rule``, ``storey``, ``severity`` or element (``global_id``)."""
    if by not in ("rule", "storey", "severity", "global_id"):
        raise ValueError(f"group hazards by rule, storey, severity or global_id, not {by!r}")
    where, params = _hazard_filter(site_code, rules, storeys)
    return store.rows(f"SELECT coalesce({by}, '(none)') AS key, count(*) AS hazards FROM hazards WHERE {where} "
                      f"GROUP BY 1 ORDER BY 2 DESC, 1", params)


def hazard_elements(store: Store, site_code: str, *, rules: list[str] | None = None,
                    storeys: list[str] | None = None, limit: int = 50) -> list[dict]:
    """Elements involved in hazards, most hazards first, with class, storey and the rules seen."""
    where, params = _hazard_filter(site_code, rules, storeys, alias="h.")
    return store.rows(
        f"SELECT h.global_id, any_value(e.ifc_class) AS ifc_class, any_value(coalesce(h.storey, e.storey)) AS storey, "
        f"any_value(e.name) AS name, count(*) AS hazards, string_agg(DISTINCT h.rule, ', ' ORDER BY h.rule) AS rules, "
        f"max(h.started_at) AS last_seen FROM hazards h LEFT JOIN current_elements e ON e.site_code = h.site_code "
        f"AND e.global_id = h.global_id WHERE {where} AND h.global_id IS NOT NULL GROUP BY h.global_id "
        f"ORDER BY hazards DESC, last_seen DESC LIMIT ?", [*params, limit])


def hazards_with_evidence(store: Store, site_code: str, *, rules: list[str] | None = None,
                          storeys: list[str] | None = None, limit: int = 12) -> list[dict]:
    """The newest hazards that have evidence crops: id, rule, severity, when, where, and how many crops."""
    where, params = _hazard_filter(site_code, rules, storeys)
    rows = store.rows(f"SELECT hazard_id, rule, severity, started_at, storey, global_id, message, evidence "
                      f"FROM hazards WHERE {where} AND json_array_length(evidence -> '$.crops') > 0 "
                      f"ORDER BY started_at DESC NULLS LAST LIMIT ?", [*params, limit])
    for r in rows:
        ev = json.loads(r.pop("evidence") or "{}")
        r["crops"] = len(ev.get("crops") or [])
    return rows


def hazard_findings(store: Store, site_code: str, hazard_ids: list[str]) -> dict[str, dict]:
    """hazard_id -> its finding (finding_id, ref, status), through ``hazards.finding_id``: set by the detector
    when it raised one, or by the workbench when a finding is raised from the hazard."""
    if not hazard_ids:
        return {}
    marks = ", ".join("?" for _ in hazard_ids)
    rows = store.rows(
        f"SELECT h.hazard_id, f.finding_id, f.site_code || '-' || f.number AS ref, f.status FROM hazards h "
        f"JOIN finding_state f ON f.finding_id = h.finding_id "
        f"WHERE h.site_code = ? AND h.hazard_id IN ({marks})", [site_code, *hazard_ids])
    return {r.pop("hazard_id"): r for r in rows}


def detection_counts(store: Store, site_code: str, *, by: str = "class_name") -> list[dict]:
    if by not in ("class_name", "storey", "source_kind"):
        raise ValueError(f"group detections by class_name, storey or source_kind, not {by!r}")
    return store.rows(f"SELECT coalesce({by}, '(none)') AS key, count(*) AS detections FROM detections "
                      f"WHERE site_code = ? GROUP BY 1 ORDER BY 2 DESC", [site_code])


def hazard_rules(store: Store, site_code: str) -> list[str]:
    return [r["rule"] for r in store.rows("SELECT DISTINCT rule FROM hazards WHERE site_code = ? ORDER BY 1",
                                          [site_code])]


def evidence_path(store: Store, hazard_id: str, index: int) -> Path | None:
    """The ``index``-th evidence crop of a hazard, as a file under the store's cache folder (None: none)."""
    raw = store.scalar("SELECT evidence FROM hazards WHERE hazard_id = ?", [hazard_id])
    crops = (json.loads(raw) if raw else {}).get("crops") or []
    if not 0 <= index < len(crops):
        return None
    base = Path(store.cache_dir).resolve()
    path = (base / crops[index]).resolve()
    # evidence paths are relative to the cache; anything escaping it is not served
    if base not in path.parents or not path.is_file():
        return None
    return path


def _hazard_filter(site_code: str, rules, storeys, alias: str = "") -> tuple[str, list]:
    where = [f"{alias}site_code = ?"]
    params: list[Any] = [site_code]
    if rules:
        where.append(f"{alias}rule IN ({', '.join('?' for _ in rules)})")
        params += list(rules)
    if storeys:
        where.append(f"{alias}storey IN ({', '.join('?' for _ in storeys)})")
        params += list(storeys)
    return " AND ".join(where), params


# --------------------------------------------------------------------------------------
# sensors

def sensor_state(store: Store, site_code: str) -> list[dict]:
    """Devices with position, host element and worst active warning (sensors' twin-state query)."""
    from sitetwin.sensors.queries import twin_state

    return twin_state(store, site_code)


def _day(value) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])
