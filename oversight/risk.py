"""The site portrait: a transparent risk score, its tier (A/B/C) and the inspection frequency it sets.

The formula, and every number in it, is ``oversight/config/risk.yaml``::

    score     = sum_i weight_i * subscore_i                    (0 = no risk seen, 100 = worst)
    subscore  = 100 * min(1, raw / saturation)                 (no data: no_data_subscore, shown as such)

with these components (raw figure, as of a day ``D``, window = the ``window_days`` before it):

- **findings**: open findings weighted by severity (low 1, medium 3, high 8, critical 20);
  awaiting verification counts half, overdue counts twice. Status as of ``D`` (from the events).
- **hazards**: hazards (vision's ``hazards``) per 1000 worker-hours (sensors' attendance);
  without attendance, per day with detections. No data without either.
- **deviation**: share of elements out of tolerance in the latest survey up to ``D`` (twin).
- **progress**: share of elements whose schedule task finished before ``D`` and that neither
  the latest survey nor the detectors (``observed_stages``, concrete) have seen built.
- **data**: half the share of missing sources (model, schedule, survey in 60 days,
  panoramas, detections in 7 days, sensors reporting in a day), half the staleness
  (days since anything new, over ``stale_days``).
- **sensors**: sensor warnings started in the window, weighted by severity.
- **dangerous_works**: the register of dangerous works (``oversight.dangerous_works``) as of ``D``:
  works whose planned start passed without an approved special plan (weighted most), works beyond
  a certain scale under way, other dangerous works under way. No data: the site registered none.
- **training**: the share of workers on site in the window without valid safety training
  (``sensors.queries.training_coverage``). No data without attendance or training records.

Other packages' data comes through their read functions (``<package>.queries``); a site
without surveys or sensors still gets a score, and its breakdown says "no data".
A regulator's tier decision (``set_tier``) overrides the computed tier until it expires.

Each component keeps its figures in ``detail`` (stored with the score, language-neutral) and an English
``basis`` line; :func:`basis_text` and :func:`unit_text` write them in the reader's language.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from sitetwin.bim.queries import elements_due, list_models, schedule_summary, task_count
from sitetwin.data.clock import utcnow
from sitetwin.data.errors import Phrase
from sitetwin.data.i18n import N_, SOURCE_LANGUAGE, Translator, current_language, format_number
from sitetwin.data.store import Store, atomic
from sitetwin.oversight import audit
from sitetwin.oversight.dangerous_works import register_summary
from sitetwin.oversight.errors import OversightError, SchemeError
from sitetwin.oversight.scope import Scope
from sitetwin.panorama.queries import panorama_summary
from sitetwin.sensors.queries import sensor_activity, warnings_per_site, worker_hours
from sitetwin.twin.queries import element_status, site_surveys, survey_as_of, survey_status_counts
from sitetwin.vision.queries import detection_summary, detections_per_site, elements_seen_at_stage, hazards_per_site

_ = Translator("oversight")

COMPONENTS = ("findings", "hazards", "deviation", "progress", "data", "sensors", "dangerous_works", "training")
TIERS = ("A", "B", "C")
# A stay (gate 'in' to 'out') counts for at most this many worker-hours: a forgotten 'out' is not a double shift.
MAX_STAY_H = 14
# Construction stage rank from which a detector's sighting counts as built (3: concrete).
BUILT_STAGE_RANK = 3


@dataclass(frozen=True)
class RiskComponent:
    name: str
    weight: float
    raw: float | None              # the figure (None: no data)
    unit: str                      # what raw measures
    saturation: float
    subscore: float                # 0..100
    points: float                  # weight * subscore: this component's share of the score
    no_data: bool
    basis: str                     # one line: where the figure comes from
    detail: dict


@dataclass(frozen=True)
class RiskScore:
    site_code: str
    as_of: dt.date
    score: float
    computed_tier: str
    tier: str                      # effective: a regulator's decision overrides the computed tier
    tier_source: str               # computed | decision
    inspect_every_days: int
    premium_factor: float
    components: tuple[RiskComponent, ...]
    formula_version: str

    def formula(self) -> str:
        """The score written out, e.g. ``0.30*72.0 + 0.20*50.0(no data) + ... = 41.3``."""
        terms = [f"{c.weight:.2f}*{c.subscore:.1f}{'(no data)' if c.no_data else ''}" for c in self.components]
        return " + ".join(terms) + f" = {self.score:.1f}"


# --------------------------------------------------------------------------------------
# configuration

def load_config(path: str | Path | None = None) -> dict:
    """The risk configuration (default: the packaged ``config/risk.yaml``), checked key by key."""
    import yaml

    if path is None:
        text = resources.files("sitetwin.oversight").joinpath("config/risk.yaml").read_text(encoding="utf-8")
        where = "oversight/config/risk.yaml"
    else:
        where = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise SchemeError(N_("{where}: cannot read ({error})"), where=where, error=str(exc)) from None
    try:
        cfg = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SchemeError(N_("{where}: not valid YAML ({error})"), where=where, error=str(exc)) from None
    _check_config(cfg, where)
    return cfg


@lru_cache(maxsize=1)
def default_config() -> dict:
    return load_config()


def _check_config(cfg: Any, where: str) -> None:
    def need(cond: bool, key: str | Phrase, expected: str | Phrase):
        if not cond:
            raise SchemeError(N_("{where}: {key} must be {expected}"), where=where, key=key, expected=expected)

    need(isinstance(cfg, dict), Phrase(N_("the file")), Phrase(N_("a mapping")))
    need(isinstance(cfg.get("window_days"), int) and cfg["window_days"] > 0, "window_days",
         Phrase(N_("a positive integer")))
    need(_num(cfg.get("no_data_subscore")) and 0 <= cfg["no_data_subscore"] <= 100, "no_data_subscore",
         Phrase(N_("a number from 0 to 100")))
    comps = cfg.get("components")
    need(isinstance(comps, dict) and set(comps) == set(COMPONENTS), "components",
         Phrase(N_("a mapping with exactly {names}"), names=", ".join(COMPONENTS)))
    total = 0.0
    for name, c in comps.items():
        need(isinstance(c, dict) and _num(c.get("weight")) and 0 <= c["weight"] <= 1, f"components.{name}.weight",
             Phrase(N_("a number from 0 to 1")))
        total += c["weight"]
        for key in ("saturation", "per_day_saturation", "stale_days"):
            if key in c:
                need(_num(c[key]) and c[key] > 0, f"components.{name}.{key}", Phrase(N_("a positive number")))
        if "item_weights" in c:
            need(isinstance(c["item_weights"], dict) and all(_num(v) and v >= 0 for v in c["item_weights"].values())
                 and set(c["item_weights"]) == {"overdue_approval", "active_beyond_scale", "active_dangerous"},
                 f"components.{name}.item_weights",
                 Phrase(N_("a mapping of overdue_approval, active_beyond_scale, active_dangerous to numbers >= 0")))
        if "severity_weights" in c:
            need(isinstance(c["severity_weights"], dict) and set(c["severity_weights"]) ==
                 {"low", "medium", "high", "critical"}, f"components.{name}.severity_weights",
                 Phrase(N_("a mapping of low, medium, high, critical to numbers")))
    need(abs(total - 1.0) < 1e-6, "components.*.weight",
         Phrase(N_("weights summing to 1 (they sum to {total:.3f})"), total=total))
    tiers = cfg.get("tiers")
    need(isinstance(tiers, dict) and list(tiers) == list(TIERS), "tiers",
         Phrase(N_("A, B and C in that order")))
    bounds = [tiers[t].get("below") for t in TIERS]
    need(all(_num(b) for b in bounds) and bounds == sorted(bounds) and bounds[-1] > 100, "tiers.*.below",
         Phrase(N_("increasing numbers, the last above 100")))
    for t in TIERS:
        need(isinstance(tiers[t].get("inspect_every_days"), int) and tiers[t]["inspect_every_days"] > 0,
             f"tiers.{t}.inspect_every_days", Phrase(N_("a positive integer")))
    p = cfg.get("premium")
    need(isinstance(p, dict) and all(_num(p.get(k)) for k in ("pivot", "slope", "floor", "ceiling")), "premium",
         Phrase(N_("a mapping with numbers pivot, slope, floor and ceiling")))
    need(0 < p["floor"] <= 1 <= p["ceiling"], "premium.floor/ceiling", "floor <= 1 <= ceiling, floor > 0")


def _num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


# --------------------------------------------------------------------------------------
# the pure part

def tier_for(score: float, config: dict | None = None) -> str:
    cfg = config or default_config()
    for t in TIERS:
        if score < cfg["tiers"][t]["below"]:
            return t
    return TIERS[-1]


def premium_factor(score: float, config: dict | None = None) -> tuple[float, str]:
    """The insurance premium factor for a risk score, and the formula that gave it."""
    p = (config or default_config())["premium"]
    raw = 1 + p["slope"] * (score - p["pivot"]) / 50.0
    factor = min(max(raw, p["floor"]), p["ceiling"])
    text = (f"factor = clamp(1 + {p['slope']} * (risk {score:.1f} - {p['pivot']}) / 50, {p['floor']}, "
            f"{p['ceiling']}) = {factor:.3f}")
    return round(factor, 4), text


def score_components(figures: dict[str, dict], config: dict | None = None) -> tuple[float, tuple[RiskComponent, ...]]:
    """Turn raw figures (``site_figures``) into subscores and the total (pure; no store)."""
    cfg = config or default_config()
    comps = []
    for name in COMPONENTS:
        c, f = cfg["components"][name], figures[name]
        sat = float(f.get("saturation") or c.get("saturation") or 1.0)
        if f["raw"] is None:
            sub = float(cfg["no_data_subscore"])
        else:
            sub = 100.0 * min(1.0, max(0.0, f["raw"]) / sat)
        comps.append(RiskComponent(name=name, weight=float(c["weight"]), raw=f["raw"], unit=f["unit"],
                                   saturation=sat, subscore=round(sub, 2), points=round(c["weight"] * sub, 3),
                                   no_data=f["raw"] is None, basis=f["basis"], detail=f.get("detail", {})))
    total = round(sum(c.weight * c.subscore for c in comps), 2)
    return total, tuple(comps)


# --------------------------------------------------------------------------------------
# figures from the store

def site_figures(store: Store, site_code: str, as_of: dt.date, config: dict | None = None) -> dict[str, dict]:
    """The raw figure of every component for one site as of the end of ``as_of`` (see the module docstring)."""
    cfg = config or default_config()
    end = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time())
    start = end - dt.timedelta(days=cfg["window_days"])
    return {
        "findings": _findings_figure(store, site_code, as_of, end, cfg["components"]["findings"]),
        "hazards": _hazards_figure(store, site_code, start, end, cfg["components"]["hazards"]),
        "deviation": _deviation_figure(store, site_code, as_of),
        "progress": _progress_figure(store, site_code, as_of, end),
        "data": _data_figure(store, site_code, end, cfg["components"]["data"]),
        "sensors": _sensor_figure(store, site_code, start, end, cfg["components"]["sensors"]),
        "dangerous_works": _works_figure(store, site_code, as_of, cfg["components"]["dangerous_works"]),
        "training": _training_figure(store, site_code, start, end),
    }


def _findings_figure(store, site, as_of, end, c) -> dict:
    rows = store.rows(
        "WITH ev AS (SELECT finding_id, arg_max(status, seq) FILTER (WHERE status IS NOT NULL) AS status, "
        "arg_max(due, seq) FILTER (WHERE due IS NOT NULL) AS due FROM finding_events "
        "WHERE site_code = ? AND occurred_at < ? GROUP BY finding_id) "
        "SELECT f.severity, ev.status, ev.due FROM findings f JOIN ev USING (finding_id) "
        "WHERE f.site_code = ? AND f.raised_at < ? AND ev.status <> 'verified_closed'", [site, end, site, end])
    raw = 0.0
    by_sev = {s: 0 for s in c["severity_weights"]}
    overdue = {s: 0 for s in c["severity_weights"]}
    for r in rows:
        w = c["severity_weights"][r["severity"]]
        late = r["status"] in ("open", "reopened") and r["due"] is not None and r["due"] < as_of
        if r["status"] == "rectification_submitted":
            w *= c["submitted_factor"]
        if late:
            w *= c["overdue_factor"]
            overdue[r["severity"]] += 1
        by_sev[r["severity"]] += 1
        raw += w
    return {"raw": round(raw, 2), "unit": "weighted open findings",
            "basis": f"{len(rows)} open findings, {sum(overdue.values())} overdue",
            "detail": {"open_by_severity": by_sev, "overdue_by_severity": overdue}}


def _hazards_figure(store, site, start, end, c) -> dict:
    hazards = _first(hazards_per_site(store, [site], since=start, until=end), "hazards", 0)
    stays = worker_hours(store, [site], since=start, until=end, max_stay_h=MAX_STAY_H)
    hours = float(_first(stays, "worker_hours", 0) or 0)
    workers = int(_first(stays, "workers", 0) or 0)
    if hours > 0:
        return {"raw": round(hazards / hours * 1000, 3), "unit": "hazards per 1000 worker-hours",
                "basis": f"{hazards} hazards over {hours:.0f} worker-hours ({workers} workers)",
                "detail": {"hazards": hazards, "worker_hours": round(hours, 1), "workers": workers}}
    days = _first(detections_per_site(store, [site], since=start, until=end, days=True), "detection_days", 0)
    if days == 0:
        return _no_data("hazards per 1000 worker-hours", "no attendance and no detections in the window",
                        "no_activity")
    return {"raw": round(hazards / days, 3), "unit": "hazards per observed day", "saturation": c["per_day_saturation"],
            "basis": f"{hazards} hazards over {days} days with detections (no attendance data)",
            "detail": {"hazards": hazards, "observed_days": days}}


def _deviation_figure(store, site, as_of) -> dict:
    survey = survey_as_of(store, site, as_of)
    if survey is None:
        return _no_data("share out of tolerance", "no survey", "no_survey")
    counts = survey_status_counts(store, [survey])
    whole = _first(counts, "out_of_tolerance", 0)
    partial_failed = _first(counts, "partial_out_of_tolerance", 0)   # partial, and failing what was seen of it
    seen = whole + _first(counts, "built", 0) + _first(counts, "partial", 0)
    oot = whole + partial_failed
    if not seen:
        return _no_data("share out of tolerance", f"survey {survey} saw no built element", "nothing_built_seen",
                        survey_id=survey)
    return {"raw": round(oot / seen, 4), "unit": "share out of tolerance",
            "basis": f"{oot} of {seen} surveyed elements out of tolerance (survey {survey})",
            "detail": {"survey_id": survey, "out_of_tolerance": oot, "partial_out_of_tolerance": partial_failed,
                       "surveyed": seen}}


def _progress_figure(store, site, as_of, end) -> dict:
    due = _records(elements_due(store, site, before=end))
    if not task_count(store, site):
        return _no_data("share of due elements not built", "no schedule", "no_schedule")
    done: set[str] = set()
    sources = []
    survey = survey_as_of(store, site, as_of)
    if survey:
        sources.append(f"survey {survey}")
        status = element_status(store, survey)
        done |= set(status.loc[status["status"].isin(["built", "out_of_tolerance"]), "global_id"])
    seen = set(elements_seen_at_stage(store, site, min_rank=BUILT_STAGE_RANK, before=end))
    if seen:
        sources.append("detector stage observations")
    done |= seen
    if not sources:
        return _no_data("share of due elements not built", "a schedule, but no survey or detector observations",
                        "no_observations")
    if not due:
        return {"raw": 0.0, "unit": "share of due elements not built", "basis": "nothing due yet",
                "detail": {"due": 0, "survey_id": survey, "detector_observations": bool(seen)}}
    behind = [r for r in due if r["global_id"] not in done]
    late_days = max(((as_of - r["finish"].date()).days for r in behind), default=0)
    return {"raw": round(len(behind) / len(due), 4), "unit": "share of due elements not built",
            "basis": f"{len(behind)} of {len(due)} elements due by now not seen built ({', '.join(sources)})",
            "detail": {"due": len(due), "behind": len(behind), "max_delay_days": late_days, "survey_id": survey,
                       "detector_observations": bool(seen)}}


def _data_figure(store, site, end, c) -> dict:
    surveys = site_surveys(store, [site])
    checks = {
        "model": (max((m["loaded_at"] for m in list_models(store, site_code=site, current=True)), default=None), None),
        "schedule": (schedule_summary(store, site)["last_imported_at"], None),
        "survey": (_plain(surveys["surveyed_at"].max()) if len(surveys) else None, 60),
        "panoramas": (_first(panorama_summary(store, [site]), "last_at", None), None),
        "detections": (detection_summary(store, site)["last_captured_at"], 7),
        "sensors": (_first(sensor_activity(store, [site]), "last_measured_at", None), 1),
    }
    present, last = {}, None
    for name, (when, max_age_days) in checks.items():
        if isinstance(when, dt.date) and not isinstance(when, dt.datetime):
            when = dt.datetime.combine(when, dt.time())
        if when is not None and when >= end:
            when = None if max_age_days is not None else when       # data from after D does not count
        ok = when is not None and (max_age_days is None or (end - when).days < max_age_days)
        present[name] = bool(ok)
        if when is not None and when < end:
            last = when if last is None else max(last, when)
    events = store.scalar("SELECT max(occurred_at) FROM finding_events WHERE site_code = ? AND occurred_at < ?",
                          [site, end])
    if events is not None:
        last = events if last is None else max(last, events)
    completeness = sum(present.values()) / len(present)
    stale = (end - last).total_seconds() / 86400 if last else float(c["stale_days"])
    raw = 0.5 * (1 - completeness) + 0.5 * min(1.0, stale / c["stale_days"])
    missing = [k for k, v in present.items() if not v]
    return {"raw": round(raw, 4), "unit": "missing share / staleness (0..1)", "saturation": 1.0,
            "basis": f"{sum(present.values())} of {len(present)} sources reporting"
                     + (f" (missing: {', '.join(missing)})" if missing else "")
                     + (f"; last data {stale:.1f} days ago" if last else "; no data ever"),
            "detail": {"sources": present, "last_data_at": last.isoformat() if last else None,
                       "stale_days": round(stale, 2)}}


def _sensor_figure(store, site, start, end, c) -> dict:
    if not _first(sensor_activity(store, [site]), "devices", 0):
        return _no_data("weighted sensor warnings", "no sensors on this site", "no_sensors")
    rows = _records(warnings_per_site(store, [site], since=start, until=end))
    counts = {r["severity"]: r["warnings"] for r in rows}
    raw = sum(c["severity_weights"].get(s, 1) * n for s, n in counts.items())
    return {"raw": float(raw), "unit": "weighted sensor warnings",
            "basis": f"{sum(counts.values())} sensor warnings in the window", "detail": {"by_severity": counts}}


def _works_figure(store, site, as_of, c) -> dict:
    s = register_summary(store, [site], as_of=as_of)[0]
    if not s["works"]:
        return _no_data("weighted dangerous works", "no dangerous works registered", "no_works")
    w = c["item_weights"]
    raw = (w["overdue_approval"] * s["overdue"] + w["active_beyond_scale"] * s["active_beyond_scale"]
           + w["active_dangerous"] * s["active_dangerous"])
    return {"raw": float(raw), "unit": "weighted dangerous works",
            "basis": f"{s['works']} dangerous works registered: {s['overdue']} overdue for plan approval, "
                     f"{s['active_beyond_scale']} beyond scale and {s['active_dangerous']} other under way",
            "detail": {k: s[k] for k in ("works", "beyond_scale", "overdue", "active_beyond_scale", "active_dangerous",
                                         "planned", "approved", "active", "finished")}}


def _training_figure(store, site, start, end) -> dict:
    from sitetwin.sensors import queries as sq

    coverage_of = getattr(sq, "training_coverage", None)
    if coverage_of is None:      # an older sensors without training records
        return _no_data("share of workers without valid training", "no training records kept", "no_training_kept")
    cov = coverage_of(store, site, start, end)
    workers = int(cov.get("workers_on_site") or 0)
    if not workers:
        return _no_data("share of workers without valid training", "nobody on site in the window", "nobody_on_site")
    if cov.get("coverage") is None:
        return _no_data("share of workers without valid training", "no training records", "no_training_records")
    trained = int(cov.get("trained_valid") or 0)
    raw = 1.0 - float(cov["coverage"])
    return {"raw": round(raw, 4), "unit": "share of workers without valid training",
            "basis": f"{workers - trained} of {workers} workers on site without valid training",
            "detail": {"workers_on_site": workers, "trained_valid": trained, "coverage": float(cov["coverage"])}}


def _plain(value: Any) -> Any:
    """A DataFrame cell as the store gives it: None for NaN/NaT/NA, datetime for a timestamp, int or float."""
    import pandas as pd

    if value is None or (not isinstance(value, (str, list, dict, tuple)) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if hasattr(value, "item"):              # numpy scalars
        return value.item()
    return value


def _records(frame) -> list[dict]:
    """A DataFrame's rows as dicts of plain values (see ``_plain``)."""
    return [{k: _plain(v) for k, v in row.items()} for row in frame.to_dict("records")]


def _first(frame, column: str, default: Any) -> Any:
    """``column`` of a one-site frame's row as a plain value; ``default`` when the site has no row."""
    return default if frame.empty else _plain(frame[column].iloc[0])


def _no_data(unit: str, why: str, reason: str, **detail: Any) -> dict:
    return {"raw": None, "unit": unit, "basis": f"no data: {why}", "detail": {"no_data": reason, **detail}}


# --------------------------------------------------------------------------------------
# the breakdown as a person reads it

UNITS = frozenset((N_("weighted open findings"), N_("hazards per 1000 worker-hours"), N_("hazards per observed day"),
                   N_("share out of tolerance"), N_("share of due elements not built"),
                   N_("missing share / staleness (0..1)"), N_("weighted sensor warnings"),
                   N_("weighted dangerous works"), N_("share of workers without valid training")))
NO_DATA_REASONS = {
    "no_activity": N_("no data: no attendance and no detections in the window"),
    "no_survey": N_("no data: no survey"),
    "nothing_built_seen": N_("no data: survey {survey} saw no built element"),
    "no_schedule": N_("no data: no schedule"),
    "no_observations": N_("no data: a schedule, but no survey or detector observations"),
    "no_sensors": N_("no data: no sensors on this site"),
    "no_works": N_("no data: no dangerous works registered"),
    "no_training_kept": N_("no data: no safety education records kept"),
    "nobody_on_site": N_("no data: nobody on site in the window"),
    "no_training_records": N_("no data: no safety education records"),
}
SOURCE_NAMES = {"model": N_("model"), "schedule": N_("schedule"), "survey": N_("survey"),
                "panoramas": N_("panoramas"), "detections": N_("detections"), "sensors": N_("sensors"),
                "attendance": N_("attendance")}


COMPONENT_NAMES = {"findings": N_("open findings"), "hazards": N_("AI-detected hazards"),
                   "deviation": N_("deviation from the model"), "progress": N_("progress behind schedule"),
                   "data": N_("data missing or stale"), "sensors": N_("sensor warnings"),
                   "dangerous_works": N_("dangerous works"), "training": N_("safety education coverage")}


def component_text(name: str) -> str:
    """A component's name in the current language (a component this version does not know, as stored)."""
    return _(COMPONENT_NAMES[name]) if name in COMPONENT_NAMES else name


def formula_text(risk: RiskScore) -> str:
    """:meth:`RiskScore.formula` in the current language ("no data" translated)."""
    return risk.formula().replace("(no data)", f"({_('no data')})")


def unit_text(component: RiskComponent) -> str:
    """What a component's raw figure measures, in the current language (an unknown unit as stored)."""
    return _(component.unit) if component.unit in UNITS else component.unit


def basis_text(component: RiskComponent) -> str:
    """Where a component's figure comes from, one line in the current language, written from its ``detail``.

    A component stored before its detail carried these figures is shown by its stored (English) ``basis``.
    """
    if current_language() == SOURCE_LANGUAGE:
        return component.basis
    try:
        return _basis_from_detail(component.name, component.detail or {}) or component.basis
    except (KeyError, TypeError, ValueError):
        return component.basis


def _basis_from_detail(name: str, d: dict) -> str | None:
    n = format_number
    if "no_data" in d:
        msg = NO_DATA_REASONS.get(d["no_data"])
        return _(msg, survey=d.get("survey_id") or "") if msg else None
    if name == "findings":
        return _("{open} open findings, {overdue} overdue", open=n(sum(d["open_by_severity"].values())),
                 overdue=n(sum(d["overdue_by_severity"].values())))
    if name == "hazards":
        if "worker_hours" in d:
            return _("{hazards} hazards over {hours} worker-hours ({workers} workers)", hazards=n(d["hazards"]),
                     hours=n(d["worker_hours"], 0), workers=n(d["workers"]))
        return _("{hazards} hazards over {days} days with detections (no attendance data)", hazards=n(d["hazards"]),
                 days=n(d["observed_days"]))
    if name == "deviation":
        return _("{n} of {of} surveyed elements out of tolerance (survey {survey})", n=n(d["out_of_tolerance"]),
                 of=n(d["surveyed"]), survey=d["survey_id"])
    if name == "progress":
        if not d["due"]:
            return _("nothing due yet")
        if "survey_id" not in d:
            return None
        sources = ([_("survey {survey}", survey=d["survey_id"])] if d["survey_id"] else []) + (
            [_("detector stage observations")] if d.get("detector_observations") else [])
        return _("{n} of {of} elements due by now not seen built ({sources})", n=n(d["behind"]), of=n(d["due"]),
                 sources=_list(sources))
    if name == "data":
        present = d["sources"]
        out = _("{n} of {of} sources reporting", n=n(sum(bool(v) for v in present.values())), of=n(len(present)))
        missing = [k for k, v in present.items() if not v]
        if missing:
            out += _(" (missing: {sources})", sources=_list(_(SOURCE_NAMES[k]) if k in SOURCE_NAMES else k
                                                            for k in missing))
        if d.get("last_data_at") is None:
            return out + _("; no data ever")
        return out + _("; last data {days} days ago", days=n(d["stale_days"], 1))
    if name == "sensors":
        return _("{n} sensor warnings in the window", n=n(sum(d["by_severity"].values())))
    if name == "dangerous_works":
        return _("{works} dangerous works registered: {overdue} overdue for plan approval, {beyond} beyond a certain "
                 "scale and {other} other under way", works=n(d["works"]), overdue=n(d["overdue"]),
                 beyond=n(d["active_beyond_scale"]), other=n(d["active_dangerous"]))
    if name == "training":
        return _("{n} of {of} workers on site without valid safety education",
                 n=n(d["workers_on_site"] - d["trained_valid"]), of=n(d["workers_on_site"]))
    return None


def _list(items) -> str:
    return ("、" if current_language() == "zh-CN" else ", ").join(items)


# --------------------------------------------------------------------------------------
# the library entry points

def compute_risk(store: Store, scope: Scope, site_code: str, *, as_of: dt.date | str | None = None,
                 config: dict | None = None) -> RiskScore:
    """The risk score of one site as of a day (default today, UTC), with its full breakdown."""
    _require_site(store, scope, site_code, "read")
    cfg = config or default_config()
    day = _day(as_of)
    total, comps = score_components(site_figures(store, site_code, day, cfg), cfg)
    computed = tier_for(total, cfg)
    decision = _tier_decision(store, site_code, day)
    tier = decision["tier"] if decision else computed
    factor, _ = premium_factor(total, cfg)
    audit.record(store, scope, "view", "risk", site_code, site_code=site_code, detail={"as_of": day.isoformat()})
    return RiskScore(site_code=site_code, as_of=day, score=total, computed_tier=computed, tier=tier,
                     tier_source="decision" if decision else "computed",
                     inspect_every_days=cfg["tiers"][tier]["inspect_every_days"], premium_factor=factor,
                     components=comps, formula_version=cfg["formula_version"])


def record_risk(store: Store, scope: Scope, site_codes: list[str] | None = None, *,
                as_of: dt.date | str | None = None, config: dict | None = None) -> list[RiskScore]:
    """Compute and store the day's score for each site in scope (the trend is these rows)."""
    audit.guard(store, scope, "record_risk")
    codes = site_codes or scope.site_codes(store)
    for code in codes:
        audit.guard(store, scope, "record_risk", code)
    day = _day(as_of)
    cfg = config or default_config()
    scores = [compute_risk(store, scope, s, as_of=day, config=cfg) for s in codes]
    with atomic(store):
        for r in scores:
            store.execute("DELETE FROM risk_scores WHERE site_code = ? AND as_of = ?", [r.site_code, r.as_of])
            store.execute("INSERT INTO risk_scores (site_code, as_of, computed_at, score, computed_tier, tier, "
                          "breakdown, formula_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                          [r.site_code, r.as_of, utcnow(), r.score, r.computed_tier, r.tier,
                           {"components": [_component_json(c) for c in r.components], "formula": r.formula(),
                            "tier_source": r.tier_source, "premium_factor": r.premium_factor},
                           r.formula_version])
    return scores


def risk_trend(store: Store, scope: Scope, site_code: str, *, since: dt.date | str | None = None) -> list[dict]:
    """Stored scores of a site, oldest first: as_of, score, tiers and each component's subscore."""
    _require_site(store, scope, site_code, "read")
    rows = store.rows("SELECT as_of, score, computed_tier, tier, breakdown FROM risk_scores WHERE site_code = ? "
                      "AND (? IS NULL OR as_of >= ?) ORDER BY as_of", [site_code, since, since])
    out = []
    for r in rows:
        b = json.loads(r["breakdown"]) if isinstance(r["breakdown"], str) else r["breakdown"]
        out.append({"as_of": r["as_of"], "score": r["score"], "computed_tier": r["computed_tier"], "tier": r["tier"],
                    "subscores": {c["name"]: c["subscore"] for c in b["components"]}})
    audit.record(store, scope, "view", "risk_trend", site_code, site_code=site_code, detail={"points": len(out)})
    return out


def set_tier(store: Store, scope: Scope, site_code: str, tier: str, reason: str, *,
             valid_until: dt.date | str | None = None) -> str:
    """A regulator sets a site's tier (overriding the computed one) with a reason; regulators only."""
    _require_site(store, scope, site_code, "set_tier")
    if tier not in TIERS:
        raise OversightError(N_("tier {tier!r}: use one of {tiers}"), tier=tier, tiers=", ".join(TIERS))
    if not (reason or "").strip():
        raise OversightError(N_("site {site_code}: say why the tier changes"), site_code=site_code)
    until = _day(valid_until) if valid_until is not None else None
    decision_id = str(uuid.uuid4())
    with atomic(store):
        store.execute("INSERT INTO tier_decisions (decision_id, site_code, tier, reason, decided_by, decided_at, "
                      "valid_until) VALUES (?, ?, ?, ?, ?, ?, ?)",
                      [decision_id, site_code, tier, reason.strip(), scope.actor, utcnow(), until])
        audit.record(store, scope, "write", "tier", decision_id, site_code=site_code, detail={"tier": tier})
    return decision_id


def inspection_plan(store: Store, scope: Scope, *, as_of: dt.date | str | None = None,
                    config: dict | None = None) -> list[dict]:
    """For every site in scope: its tier (latest stored score, or a decision), how often to inspect, and when next.

    The last inspection is the newest finding raised by a person (not by a hazard rule or
    sensor) on the site; a site never inspected is due at once.
    """
    scope.require("read")
    cfg = config or default_config()
    day = _day(as_of)
    cond, params = scope.where("s.site_code")
    rows = store.rows(
        f"SELECT s.site_code, s.name, s.district, s.city, "
        f"(SELECT arg_max(tier, as_of) FROM risk_scores r WHERE r.site_code = s.site_code AND r.as_of <= ?) AS tier, "
        f"(SELECT max(as_of) FROM risk_scores r WHERE r.site_code = s.site_code AND r.as_of <= ?) AS scored_on, "
        f"(SELECT max(raised_at) FROM findings f WHERE f.site_code = s.site_code AND "
        f"coalesce(f.source, '') NOT IN ('hazard', 'sensor', 'bcf', 'dangerous_works') AND f.raised_at < ?) "
        f"AS last_inspection "
        f"FROM sites s WHERE {cond} ORDER BY s.site_code",
        [day, day, dt.datetime.combine(day + dt.timedelta(days=1), dt.time()), *params])
    plan = []
    for r in rows:
        decision = _tier_decision(store, r["site_code"], day)
        tier = decision["tier"] if decision else (r["tier"] or "C")
        every = cfg["tiers"][tier]["inspect_every_days"]
        last = r["last_inspection"].date() if r["last_inspection"] else None
        due = (last + dt.timedelta(days=every)) if last else day
        plan.append({"site_code": r["site_code"], "name": r["name"], "district": r["district"], "city": r["city"],
                     "tier": tier, "tier_source": "decision" if decision else ("score" if r["tier"] else "unscored"),
                     "inspect_every_days": every, "last_inspection": last, "next_due": due,
                     "overdue_days": max(0, (day - due).days)})
    audit.record(store, scope, "view", "inspection_plan", None, detail={"sites": len(plan)})
    return plan


def _tier_decision(store: Store, site_code: str, day: dt.date) -> dict | None:
    return store.one("SELECT tier, reason, decided_by FROM tier_decisions WHERE site_code = ? "
                     "AND CAST(decided_at AS DATE) <= ? AND (valid_until IS NULL OR valid_until >= ?) "
                     "ORDER BY decided_at DESC LIMIT 1", [site_code, day, day])


def _component_json(c: RiskComponent) -> dict:
    return {"name": c.name, "weight": c.weight, "raw": c.raw, "unit": c.unit, "saturation": c.saturation,
            "subscore": c.subscore, "points": c.points, "no_data": c.no_data, "basis": c.basis, "detail": c.detail}


def _require_site(store: Store, scope: Scope, site_code: str, action: str) -> None:
    audit.guard(store, scope, action, site_code)


def _day(value) -> dt.date:
    if value is None:
        return utcnow().date()
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        raise OversightError(N_("date {value!r}: use YYYY-MM-DD"), value=value) from None
