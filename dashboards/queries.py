"""What the pages read, composed from what each package publishes (``<pkg>.queries``): one function per question.

Every function takes an open store and a site code the caller has already been admitted to
(``dashboards.access.site_store``), and returns plain records (lists of dicts, small tuples) or
pandas frames. No SQL here touches another package's tables: each package answers for its own,
counting and grouping in its SQL, and what spans packages (a hazard and its finding, an element's
plan and what the surveys saw of it) is combined here on GlobalId, model id or finding id.
Nothing here draws.

Progress at the latest survey is twin's report (``twin.progress``); the 4D state of every
element on any day (:func:`schedule_states`) follows the same rules, from bim's plan and twin's
element sightings.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sitetwin.bim import queries as bim_q
from sitetwin.data.clock import utcnow
from sitetwin.data.store import Store
from sitetwin.oversight import queries as oversight_q
from sitetwin.panorama import queries as panorama_q
from sitetwin.sensors import queries as sensors_q
from sitetwin.twin import queries as twin_q
from sitetwin.vision import queries as vision_q

STATUSES = ("built", "partial", "not_built", "out_of_tolerance")
OPEN_FINDING_STATUSES = oversight_q.OPEN_STATUSES
SEVERITY_RANK = {"low": 0, "medium": 1, "high": 2, "critical": 3}
ELEMENT_STATUS_COLUMNS = ("model_id", "global_id", "status", "points", "coverage", "mean_mm", "p95_mm", "max_mm")


def records(frame, *, dates: Iterable[str] = ()) -> list[dict[str, Any]]:
    """A package's DataFrame as the rows a page draws: Python values, None for NaN/NaT, datetimes as
    ``datetime`` (and the columns named in ``dates``, which hold days, as ``datetime.date``)."""
    import pandas as pd

    dates = set(dates)
    columns: dict[str, list] = {}
    for name in frame.columns:
        s = frame[name]
        if pd.api.types.is_datetime64_any_dtype(s.dtype):
            # numpy turns datetime64 into datetime / date objects and NaT into None, without a Python loop
            values = s.to_numpy(dtype="datetime64[D]" if name in dates else "datetime64[us]").astype(object).tolist()
        else:
            values = s.tolist()
            if s.hasnans:
                values = [None if missing else v for v, missing in zip(values, s.isna().tolist())]
        columns[name] = values
    names = list(columns)
    return [dict(zip(names, row)) for row in zip(*columns.values())]


# --------------------------------------------------------------------------------------
# the site

def site_card(store: Store, site_code: str) -> dict[str, Any]:
    """The site's identity and profile, with counts of what the twin holds for it."""
    site = store.one("SELECT * FROM sites WHERE site_code = ?", [site_code]) or {"site_code": site_code}
    profile = oversight_q.site_profile(store, site_code) or {}
    counts = {"models": len(bim_q.current_model_ids(store, site_code)),
              "elements": bim_q.current_element_count(store, site_code),
              "surveys": twin_q.survey_summary(store, site_code)["surveys"],
              "panoramas": panorama_q.panorama_count(store, site_code),
              "detections": vision_q.detection_summary(store, site_code)["detections"],
              "hazards": vision_q.hazard_count(store, site_code),
              "devices": sensors_q.device_count(store, site_code),
              "findings": oversight_q.finding_count(store, site_code)}
    return {"site": site, "profile": profile, "counts": counts}


def site_builders(store: Store, site_code: str) -> dict[str, Any]:
    """Who builds the site: ``{"contractor": enterprise row or None, "subcontractors": [rows + scope_of_work]}``
    (``data.queries.site_enterprises``)."""
    from sitetwin.data.queries import site_enterprises

    return site_enterprises(store, site_code)


TRAINING_WINDOW_DAYS = 30


def training_coverage(store: Store, site_code: str, *, now: dt.datetime | None = None,
                      days: int = TRAINING_WINDOW_DAYS) -> dict[str, Any]:
    """Workers who entered the site in the ``days`` before ``now`` (UTC) and how many of them had valid safety
    training (``sensors.queries.training_coverage``: coverage None when the site keeps no training records)."""
    end = now or utcnow()
    return {**sensors_q.training_coverage(store, site_code, end - dt.timedelta(days=days), end), "days": days}


def model_versions(store: Store, site_code: str) -> list[dict]:
    """Every version of every discipline model, newest first, with whether it is the current one."""
    current = set(bim_q.current_model_ids(store, site_code))
    models = sorted(bim_q.list_models(store, site_code=site_code), key=lambda m: (m["name"], -m["version"]))
    return [{"name": m["name"], "version": m["version"], "model_id": m["model_id"], "file_name": m["file_name"],
             "ifc_schema": m["ifc_schema"], "element_count": m["element_count"], "triangle_count": m["triangle_count"],
             "loaded_at": m["loaded_at"], "current": m["model_id"] in current} for m in models]


def current_model_ids(store: Store, site_code: str) -> list[str]:
    return bim_q.current_model_ids(store, site_code)


def surveys(store: Store, site_code: str) -> list[dict]:
    """The site's surveys, oldest epoch first, with registration figures and status counts (twin's reader)."""
    from sitetwin.twin.survey_store import list_surveys

    return list_surveys(store, site_code)


def survey_epochs(store: Store, site_code: str) -> list[dict]:
    """Surveys with an epoch, oldest first: survey_id, epoch, name."""
    return records(twin_q.survey_epochs(store, site_code), dates=("epoch",))


def survey_as_of(store: Store, site_code: str, day: dt.date | None) -> str | None:
    """The latest survey taken on or before ``day`` (None: the latest of all)."""
    return twin_q.survey_as_of(store, site_code, day)


def survey_in_site(store: Store, site_code: str, survey_id: str | None) -> str | None:
    """``survey_id`` if it is a survey of this site, else None (ids from the URL are checked, never trusted)."""
    return twin_q.survey_in_site(store, site_code, survey_id)


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
    det = vision_q.detection_summary(store, site_code)
    if det["detections"]:
        by_kind["detections"] = {"source": "detections", "entries": det["detections"],
                                 "last": det["last_captured_at"], "completeness": []}
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
    open_ids = oversight_q.finding_ids(store, site_code, status=OPEN_FINDING_STATUSES)
    total = vision_q.open_hazard_count(store, site_code, open_finding_ids=open_ids)
    rows = records(vision_q.open_hazards(store, site_code, open_finding_ids=open_ids, limit=limit))
    refs = _finding_refs(store, [r["finding_id"] for r in rows if r["finding_id"]])
    for r in rows:
        ref = refs.get(r.pop("finding_id"))
        r["finding_status"] = ref["status"] if ref else None
    return total, rows


def _finding_refs(store: Store, finding_ids: list[str]) -> dict[str, dict]:
    """finding_id -> {finding_id, ref, status} of those that exist."""
    return {r["finding_id"]: r for r in records(oversight_q.finding_refs(store, finding_ids))} if finding_ids else {}


# --------------------------------------------------------------------------------------
# elements

def element_attributes(store: Store, model_ids: list[str]) -> list[dict]:
    """Class, storey and name of every element of the given models (for colouring and filters)."""
    if not model_ids:
        return []
    frame = bim_q.element_frame(store, model_ids=list(model_ids))
    return records(frame[["model_id", "global_id", "ifc_class", "storey", "name"]])


def model_extent(store: Store, site_code: str) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """Min and max corner of the site's current elements (local frame, m); a unit box when there are none."""
    r = bim_q.element_extent(store, site_code=site_code)
    if r is None:
        return (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
    return (r["min_x_m"], r["min_y_m"], r["min_z_m"]), (r["max_x_m"], r["max_y_m"], r["max_z_m"])


def storeys(store: Store, site_code: str) -> list[dict]:
    """Storeys of the site's current models, bottom up (name, elevation): a name several models share once,
    at its lowest elevation."""
    frame = bim_q.storey_frame(store, bim_q.current_model_ids(store, site_code))
    if frame.empty:
        return []
    lowest = frame.groupby("name", dropna=False, sort=False)["elevation_m"].min().reset_index()
    return records(lowest.sort_values(["elevation_m", "name"], na_position="last", kind="stable"))


def ifc_classes(store: Store, site_code: str) -> list[str]:
    return bim_q.ifc_classes(store, site_code)


def element(store: Store, site_code: str, global_id: str) -> dict | None:
    """One element of the site's current models with its properties and quantities (JSON decoded)."""
    return bim_q.element_record(store, site_code, global_id)


def reference_lines_xyz(store: Store, site_code: str):
    """The site's alignments and other reference lines (bim) as one (n, 3) array in the local frame, metres,
    a NaN row between two lines ((0, 3) when it has none)."""
    return bim_q.reference_line_xyz(store, site_code, model_ids=bim_q.current_model_ids(store, site_code))


def partial_failing(store: Store, survey_id: str | None) -> set[tuple[str, str]]:
    """(model_id, global_id) of the elements a survey found ``partial`` and whose observed faces failed a check
    (twin's ``failed_checks``)."""
    if not survey_id:
        return set()
    failed = twin_q.failed_checks(store, survey_id)
    failed = failed[failed["status"] == "partial"]
    return set(zip(failed["model_id"].tolist(), failed["global_id"].tolist()))


def element_status(store: Store, survey_id: str | None) -> dict[tuple[str, str], dict]:
    """(model_id, global_id) -> status and deviation figures in one survey."""
    if not survey_id:
        return {}
    frame = twin_q.element_status(store, survey_id)[list(ELEMENT_STATUS_COLUMNS)]
    return {(r["model_id"], r["global_id"]): r for r in records(frame)}


def status_history(store: Store, site_code: str, global_id: str) -> list[dict]:
    """The element's status and deviation in every survey of the site, oldest first."""
    return records(twin_q.status_history(store, site_code, global_id), dates=("epoch",))


def element_histogram(store: Store, survey_id: str, global_id: str) -> list[dict]:
    return records(twin_q.element_histogram(store, survey_id, global_id))


def element_detections(store: Store, site_code: str, global_id: str, *, limit: int = 50) -> tuple[int, list[dict]]:
    total = vision_q.element_detection_count(store, site_code, global_id)
    return total, records(vision_q.element_detections(store, site_code, global_id, limit=limit))


def element_hazards(store: Store, site_code: str, global_id: str, *, limit: int = 20) -> list[dict]:
    return records(vision_q.element_hazards(store, site_code, global_id, limit=limit))


# --------------------------------------------------------------------------------------
# the schedule and progress

def planned_elements(store: Store, site_code: str) -> list[dict]:
    """Each scheduled element of the current models with its planned start/finish and the task that builds it."""
    return records(bim_q.planned_elements(store, site_code))


def schedule_dates(store: Store, site_code: str) -> tuple[dt.date, dt.date] | None:
    span = bim_q.work_span(store, site_code)
    if span is None:
        return None
    return _day(span["start"]), _day(span["finish"])


_progress_cache: dict[tuple, Any] = {}
PROGRESS_CACHE_SIZE = 16


def progress_inputs(store: Store, site_code: str) -> tuple:
    """What a site's progress depends on: its surveys, schedules and current models (cheap to read)."""
    s = twin_q.survey_summary(store, site_code)
    t = bim_q.schedule_summary(store, site_code)
    return (s["surveys"], str(s["last_created_at"]), t["schedules"], str(t["last_imported_at"]),
            tuple(current_model_ids(store, site_code)))


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

    ``built``: a survey on or before the day found it standing; ``late``: a survey between its
    planned finish and the day could see it and did not find it standing; ``due (not seen)``:
    planned finished, but no such survey tells; ``in progress``: between planned start and
    finish; ``not started``; ``unscheduled``: no task builds it. bim gives each current
    element's plan, twin what the surveys up to the day saw of it (counted in their SQL).
    """
    from sitetwin.twin.progress import MIN_VISIBLE_SHARE

    plan = bim_q.element_plan(store, site_code)
    seen = twin_q.element_sightings(store, site_code, day, min_visible_share=MIN_VISIBLE_SHARE)
    rows = records(plan.merge(seen, on=["model_id", "global_id"], how="left"), dates=("first_built", "last_missed"))
    return {(r["model_id"], r["global_id"]): schedule_state(
                r["planned_start"], r["planned_finish"], r["first_built"],
                r["last_missed"] is not None and r["earliest_finish"] is not None
                and r["last_missed"] >= _day(r["earliest_finish"]), day)
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
    return twin_q.deviation_table(store, site_code, survey_id, storeys=storeys, classes=classes)


def survey_tolerances(store: Store, survey_id: str) -> dict[str, float]:
    """The survey's per-class position tolerance in mm, as twin applied it (empty when not recorded)."""
    return twin_q.survey_tolerances(store, survey_id)


def unplanned_objects(store: Store, site_code: str, survey_id: str) -> list[dict]:
    return records(twin_q.unplanned_objects(store, site_code, survey_id))


# --------------------------------------------------------------------------------------
# panoramas

def panoramas(store: Store, site_code: str) -> list[dict]:
    """The site's panoramas (posed or not), oldest first, with their camera position in the local frame."""
    rows = records(panorama_q.panoramas(store, site_code))
    counts = vision_q.detections_per_panorama(store, [r["pano_id"] for r in rows])
    detections = dict(zip(counts["pano_id"].tolist(), counts["detections"].tolist()))
    for r in rows:
        T = json.loads(r.pop("T_model_from_camera")) if r.get("T_model_from_camera") else None
        r["detections"] = detections.get(r["pano_id"], 0)
        r["position_m"] = [T[0][3], T[1][3], T[2][3]] if T else None
    return rows


def pano_in_site(store: Store, site_code: str, pano_id: str | None) -> str | None:
    return panorama_q.pano_in_site(store, site_code, pano_id)


def detector_weights(store: Store) -> list[dict]:
    """Trained or exported detector weights recorded by vision, newest first, whose file still exists."""
    return records(vision_q.detector_weights(store))


def pano_detections(store: Store, pano_id: str) -> list[dict]:
    return records(vision_q.pano_detections(store, pano_id))


def footprints(store: Store, model_ids: list[str], *, storey: str | None = None) -> list[dict]:
    """Plan-view boxes (x, y extent, local frame) of slabs, walls and columns, for the floor-plan minimap."""
    if not model_ids:
        return []
    return records(bim_q.footprints(store, model_ids, storey=storey))


# --------------------------------------------------------------------------------------
# hazards and detections

def hazard_timeline(store: Store, site_code: str, *, rules: list[str] | None = None,
                    storeys: list[str] | None = None) -> list[dict]:
    """Hazards per day and rule (the timeline), filtered."""
    return records(vision_q.hazard_timeline(store, site_code, rules=rules, storeys=storeys), dates=("day",))


def hazard_counts(store: Store, site_code: str, by: str, *, rules: list[str] | None = None,
                  storeys: list[str] | None = None) -> list[dict]:
    """Hazard counts grouped by ``rule``, ``storey``, ``severity`` or element (``global_id``)."""
    return records(vision_q.hazard_counts(store, site_code, by, rules=rules, storeys=storeys))


def hazard_elements(store: Store, site_code: str, *, rules: list[str] | None = None,
                    storeys: list[str] | None = None, limit: int = 50) -> list[dict]:
    """Elements involved in hazards, most hazards first, with class, storey and the rules seen.

    vision counts the hazards per GlobalId; bim names the elements (class, name, and the storey
    where the hazards name none).
    """
    rows = records(vision_q.hazard_elements(store, site_code, rules=rules, storeys=storeys, limit=limit))
    labels: dict[str, dict] = {}
    for e in records(bim_q.element_labels(store, site_code, [r["global_id"] for r in rows])):
        labels.setdefault(e["global_id"], e)
    out = []
    for r in rows:
        e = labels.get(r["global_id"], {})
        out.append({"global_id": r["global_id"], "ifc_class": e.get("ifc_class"),
                    "storey": r["storey"] if r["storey"] is not None else e.get("storey"), "name": e.get("name"),
                    "hazards": r["hazards"], "rules": r["rules"], "last_seen": r["last_seen"]})
    return out


def hazards_with_evidence(store: Store, site_code: str, *, rules: list[str] | None = None,
                          storeys: list[str] | None = None, limit: int = 12) -> list[dict]:
    """The newest hazards that have evidence crops: id, rule, severity, when, where, and how many crops."""
    return records(vision_q.hazards_with_evidence(store, site_code, rules=rules, storeys=storeys, limit=limit))


def hazard_findings(store: Store, site_code: str, hazard_ids: list[str]) -> dict[str, dict]:
    """hazard_id -> its finding (finding_id, ref, status), through the hazard's link to it: set by the detector
    when it raised one, or by the workbench when a finding is raised from the hazard."""
    if not hazard_ids:
        return {}
    links = vision_q.hazard_finding_ids(store, site_code, hazard_ids)
    pairs = list(zip(links["hazard_id"].tolist(), links["finding_id"].tolist()))
    refs = _finding_refs(store, [f for _, f in pairs])
    return {h: dict(refs[f]) for h, f in pairs if f in refs}


def detection_counts(store: Store, site_code: str, *, by: str = "class_name") -> list[dict]:
    return records(vision_q.detection_counts(store, site_code, by=by))


def hazard_rules(store: Store, site_code: str) -> list[str]:
    return vision_q.hazard_rules(store, site_code)


def evidence_path(store: Store, hazard_id: str, index: int) -> Path | None:
    """The ``index``-th evidence crop of a hazard, as a file under the store's cache folder (None: none)."""
    crops = vision_q.evidence_crops(store, hazard_id)
    if not 0 <= index < len(crops):
        return None
    base = Path(store.cache_dir).resolve()
    path = (base / crops[index]).resolve()
    # evidence paths are relative to the cache; anything escaping it is not served
    if base not in path.parents or not path.is_file():
        return None
    return path


# --------------------------------------------------------------------------------------
# sensors

def sensor_state(store: Store, site_code: str) -> list[dict]:
    """Devices with position, host element and worst active warning (sensors' twin-state query)."""
    return sensors_q.twin_state(store, site_code)


def _day(value) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])
