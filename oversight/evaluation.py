"""Smart-site evaluation: a scheme as data (items, points, rules, grades), per-site results,
HTML and PDF reports, and the insurance premium factor from the risk score.

A scheme is a YAML or JSON file (``oversight/schemes/provincial.yaml`` is the packaged
one: 80 basic + 70 promotion points). Each item reads one metric of ``METRICS``, computed
from the store as of a day, and turns it into points by its rule (``boolean``,
``ladder``, ``linear``). Grades are the first of the scheme's ``grades`` whose minimum
total and minimum basic points the site reaches. A metric without data scores nothing
and says so.

The premium factor comes from the risk score (``oversight.risk.premium_factor``); the
report shows the formula with the numbers filled in.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import math
import threading
import uuid
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sitetwin.bim.queries import linked_element_counts, list_models
from sitetwin.data.clock import utcnow
from sitetwin.data.errors import Phrase
from sitetwin.data.i18n import (
    N_,
    SOURCE_LANGUAGE,
    Translator,
    current_language,
    format_date,
    format_datetime,
    format_number,
    format_percent,
    use_language,
)
from sitetwin.data.store import Store, atomic
from sitetwin.data.text import printable
from sitetwin.oversight import audit
from sitetwin.oversight.errors import OversightError, SchemeError
from sitetwin.oversight.risk import basis_text, component_text
from sitetwin.oversight.scope import Scope
from sitetwin.panorama.queries import panorama_summary
from sitetwin.sensors.queries import attendance_summary, site_devices
from sitetwin.twin.queries import site_surveys
from sitetwin.vision.queries import detections_per_site

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_ = Translator("oversight")

# metric -> what it measures (the unit is in the words)
METRICS: dict[str, str] = {
    "model_loaded": "the site has a current design model (true/false)",
    "schedule_linked_share": "share of the current model's elements linked to schedule tasks",
    "attendance_days_30d": "days with attendance records in the last 30 days",
    "trained_share_30d": "share of workers seen in 30 days with valid safety training",
    "detection_days_30d": "days with detections in the last 30 days",
    "environment_reporting_share": "share of dust and noise monitors that reported in the last day",
    "lifting_monitoring": "a tower crane or hoist monitor is installed (true/false)",
    "closed_share_90d": "share of findings raised in 90 days that are verified closed",
    "overdue_open": "open findings past their due date",
    "survey_age_days": "days since the latest scan survey",
    "in_tolerance_share": "share of surveyed elements within tolerance (latest survey)",
    "posed_panoramas": "panoramas with a pose in the model",
    "hazard_rate": "hazards per 1000 worker-hours in 30 days",
    "data_quality": "the site's data-quality measure (0..1, oversight.catalogue)",
    "risk_score": "the site's risk score (0..100, oversight.risk)",
    "on_time_share_90d": "share of findings closed in 90 days whose rectification came by the due date",
    "exchanged_30d": "an exchange package for the site was made in the last 30 days (true/false)",
}
RULES = ("boolean", "ladder", "linear")


@dataclass(frozen=True)
class ItemResult:
    id: str
    section: str
    title: str
    metric: str
    value: Any
    points: float
    max_points: float
    note: str                     # stored, English: "0.6 >= step for 4"
    title_zh: str | None = None   # the scheme's Chinese title of the item (``title_zh``), if it has one
    note_msg: str = field(default="", compare=False, repr=False)        # the note's message and fields,
    note_fields: dict = field(default_factory=dict, compare=False, repr=False)  # for the report's language


@dataclass(frozen=True)
class Evaluation:
    evaluation_id: str
    site_code: str
    scheme_id: str
    scheme_version: str
    scheme_title: str
    as_of: dt.date
    items: tuple[ItemResult, ...]
    basic_points: float
    promotion_points: float
    total_points: float
    max_points: dict
    grade: str
    risk_score: float
    risk_tier: str
    premium_factor: float
    premium_formula: str
    risk: Any = None              # the oversight.risk.RiskScore it used (breakdown for the report)
    scheme_title_zh: str | None = None


# --------------------------------------------------------------------------------------
# schemes

def load_scheme(scheme: str | Path = "provincial") -> dict:
    """A packaged scheme by name, or a YAML/JSON file; checked item by item."""
    import copy

    path = Path(scheme)
    if not (path.suffix.lower() in (".yaml", ".yml", ".json") or path.exists()):
        return copy.deepcopy(_packaged_scheme(str(scheme)))
    return _load_scheme(path)


@lru_cache(maxsize=8)
def _packaged_scheme(name: str) -> dict:
    return _load_scheme(Path(name))


def _load_scheme(scheme: Path) -> dict:
    import yaml

    path = Path(scheme)
    if path.suffix.lower() in (".yaml", ".yml", ".json") or path.exists():
        where = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise SchemeError(N_("{where}: cannot read the scheme ({error})"), where=where, error=str(exc)) from None
    else:
        where = f"oversight/schemes/{scheme}.yaml"
        try:
            text = resources.files("sitetwin.oversight").joinpath(f"schemes/{scheme}.yaml").read_text(encoding="utf-8")
        except (FileNotFoundError, OSError):
            names = sorted(p.name[:-5] for p in resources.files("sitetwin.oversight").joinpath("schemes").iterdir()
                           if p.name.endswith(".yaml"))
            raise SchemeError(N_("no evaluation scheme {scheme!r} (packaged: {names}; or give a file)"),
                              scheme=str(scheme), names=", ".join(names)) from None
    try:
        data = json.loads(text) if where.endswith(".json") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise SchemeError(N_("{where}: not valid {format} ({error})"), where=where,
                          format="JSON" if where.endswith(".json") else "YAML", error=str(exc)) from None
    check_scheme(data, where)
    return data


def check_scheme(s: Any, where: str = "scheme") -> None:
    def need(cond, key: str | Phrase, expected: str | Phrase):
        if not cond:
            raise SchemeError(N_("{where}: {key} must be {expected}"), where=where, key=key, expected=expected)

    def one_of(names) -> Phrase:
        return Phrase(N_("one of {names}"), names=", ".join(names))

    need(isinstance(s, dict), Phrase(N_("the scheme")), Phrase(N_("a mapping")))
    for key in ("id", "version", "title"):
        need(isinstance(s.get(key), str) and s[key].strip(), key, Phrase(N_("a non-empty string")))
    need(isinstance(s.get("title_zh", ""), str), "title_zh", Phrase(N_("a string (the Chinese title)")))
    sections = s.get("sections")
    need(isinstance(sections, dict) and sections, "sections",
         Phrase(N_("a mapping of section -> {shape}"), shape="{max_points}"))
    for name, sec in sections.items():
        need(isinstance(sec, dict) and _num(sec.get("max_points")) and sec["max_points"] > 0,
             f"sections.{name}.max_points", Phrase(N_("a positive number")))
    items = s.get("items")
    need(isinstance(items, list) and items, "items", Phrase(N_("a non-empty list")))
    seen, totals = set(), {k: 0.0 for k in sections}
    for i, it in enumerate(items):
        key = f"items[{i}]"
        need(isinstance(it, dict), key, Phrase(N_("a mapping")))
        need(isinstance(it.get("id"), str) and it["id"] not in seen, f"{key}.id", Phrase(N_("a string used once")))
        seen.add(it["id"])

        def at(part: str, item: str = it["id"]) -> Phrase:
            return Phrase(N_("item {item}.{part}"), item=item, part=part)
        need(it.get("section") in sections, at("section"), one_of(sections))
        need(_num(it.get("points")) and it["points"] > 0, at("points"), Phrase(N_("a positive number")))
        need(it.get("metric") in METRICS, at("metric"), one_of(METRICS))
        need(isinstance(it.get("title"), str), at("title"), Phrase(N_("a string")))
        need(isinstance(it.get("title_zh", ""), str), at("title_zh"), Phrase(N_("a string (the Chinese title)")))
        rule = it.get("rule")
        need(isinstance(rule, dict) and rule.get("type") in RULES, at("rule.type"), one_of(RULES))
        if rule["type"] == "ladder":
            steps = rule.get("steps")
            need(isinstance(steps, list) and steps and all(isinstance(x, list) and len(x) == 2 and _num(x[0])
                                                           and _num(x[1]) for x in steps),
                 at("rule.steps"), Phrase(N_("a list of [threshold, points] pairs")))
            need(max(x[1] for x in steps) <= it["points"], at("rule.steps"),
                 Phrase(N_("points at most {points}"), points=it["points"]))
            need(rule.get("direction", "up") in ("up", "down"), at("rule.direction"), Phrase(N_("up or down")))
        if rule["type"] == "linear":
            need(_num(rule.get("zero")) and _num(rule.get("full")) and rule["zero"] != rule["full"],
                 at("rule"), Phrase(N_("numbers zero and full that differ")))
        totals[it["section"]] += it["points"]
    for name, sec in sections.items():
        need(abs(totals[name] - sec["max_points"]) < 1e-9, f"sections.{name}",
             Phrase(N_("items adding up to its max_points {max_points} (they add up to {total})"),
                    max_points=sec["max_points"], total=totals[name]))
    grades = s.get("grades")
    need(isinstance(grades, list) and grades and all(isinstance(g, dict) and isinstance(g.get("grade"), str)
                                                     and _num(g.get("min_total", 0)) for g in grades),
         "grades", Phrase(N_("a list of {shape}"), shape="{grade, min_total, min_basic}"))
    need(grades[-1].get("min_total", 0) == 0 and grades[-1].get("min_basic", 0) == 0, "grades",
         Phrase(N_("ending with a grade every site reaches (min_total 0)")))


def _num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def score_item(item: dict, value: Any) -> tuple[float, str]:
    """Points for one item's metric value under its rule, and a note (pure; the note is English)."""
    pts, msg, fields = _score(item, value)
    return pts, _note_en(msg, fields)


# The notes an item's score can carry: stored in English, shown in the report's language.
_NOTES = {"no data": N_("no data"), "yes": N_("yes"), "no": N_("no"),
          "ladder_up": N_("{value} >= step for {points}"), "ladder_down": N_("{value} <= step for {points}"),
          "below": N_("{value}: below every step"), "linear": N_("{value} -> {share} of {full}")}


def _score(item: dict, value: Any) -> tuple[float, str, dict]:
    rule, full = item["rule"], float(item["points"])
    if value is None:
        return 0.0, "no data", {}
    if rule["type"] == "boolean":
        return (full, "yes", {}) if bool(value) else (0.0, "no", {})
    v = float(value)
    if rule["type"] == "ladder":
        down = rule.get("direction", "up") == "down"
        earned = [p for t, p in rule["steps"] if (v <= t if down else v >= t)]
        pts = float(max(earned, default=0.0))
        if not earned:
            return pts, "below", {"value": v}
        return pts, "ladder_down" if down else "ladder_up", {"value": v, "points": pts}
    frac = (v - rule["zero"]) / (rule["full"] - rule["zero"])
    frac = min(1.0, max(0.0, frac))
    return round(full * frac, 2), "linear", {"value": v, "share": frac, "full": full}


def _note_en(msg: str, fields: dict) -> str:
    f = {"value": _fmt(fields["value"])} if "value" in fields else {}
    if "points" in fields:
        f["points"] = f"{fields['points']:g}"
    if "share" in fields:
        f["share"], f["full"] = f"{fields['share']:.0%}", f"{fields['full']:g}"
    return _NOTES[msg].format(**f)


def _note(item: ItemResult) -> str:
    """An item's note in the current language (the stored English note where it has no parts)."""
    if not item.note_msg:
        return _(item.note)
    fields = item.note_fields
    f = {"value": _num_text(fields["value"])} if "value" in fields else {}
    if "points" in fields:
        f["points"] = format_number(fields["points"])
    if "share" in fields:
        f["share"], f["full"] = format_percent(fields["share"]), format_number(fields["full"])
    return _(_NOTES[item.note_msg], **f)


def _fmt(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"


# --------------------------------------------------------------------------------------
# metrics

def site_metrics(store: Store, site_code: str, *, as_of: dt.date | str | None = None) -> dict[str, Any]:
    """Every metric of ``METRICS`` for one site as of a day (None where there is no data)."""
    from sitetwin.oversight.catalogue import data_quality
    from sitetwin.oversight.risk import _day, _first, _plain, compute_risk, site_figures

    day = _day(as_of)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time())
    d30, d90 = end - dt.timedelta(days=30), end - dt.timedelta(days=90)
    system = Scope.system("evaluation")
    m: dict[str, Any] = {}
    counts = linked_element_counts(store, [site_code])
    elements, linked = _first(counts, "elements", 0), _first(counts, "linked", 0)
    m["model_loaded"] = any(r["loaded_at"] < end for r in list_models(store, site_code=site_code, current=True))
    m["schedule_linked_share"] = linked / elements if elements else None
    attendance = attendance_summary(store, [site_code], since=d30, until=end)
    workers = _first(attendance, "workers", 0)
    m["attendance_days_30d"] = int(_first(attendance, "days", 0))
    m["trained_share_30d"] = _first(attendance, "trained_workers", 0) / workers if workers else None
    m["detection_days_30d"] = int(_first(detections_per_site(store, [site_code], since=d30, until=end, days=True),
                                         "detection_days", 0))
    devices = site_devices(store, [site_code])
    on_site = devices[devices["removed_on"].isna()]
    env = on_site[on_site["device_type"].isin(["dust", "noise"])]
    fresh = (env["last_measured_at"] >= end - dt.timedelta(days=1)) & (env["last_measured_at"] < end)
    m["environment_reporting_share"] = int(fresh.sum()) / len(env) if len(env) else None
    m["lifting_monitoring"] = bool(on_site["device_type"].isin(["crane", "hoist"]).any())
    f = store.one(
        "WITH ev AS (SELECT finding_id, arg_max(status, seq) FILTER (WHERE status IS NOT NULL) AS status, "
        "arg_max(due, seq) FILTER (WHERE due IS NOT NULL) AS due, "
        "min(occurred_at) FILTER (WHERE kind = 'rectification_submitted') AS submitted_at, "
        "max(occurred_at) FILTER (WHERE status = 'verified_closed') AS closed_at "
        "FROM finding_events WHERE site_code = ? AND occurred_at < ? GROUP BY finding_id) "
        "SELECT count(*) FILTER (WHERE f.raised_at >= ?) AS raised_90, "
        "count(*) FILTER (WHERE f.raised_at >= ? AND ev.status = 'verified_closed') AS closed_of_raised_90, "
        "count(*) FILTER (WHERE ev.status IN ('open', 'reopened') AND ev.due < ?) AS overdue, "
        "count(*) FILTER (WHERE ev.closed_at >= ?) AS closed_90, "
        "count(*) FILTER (WHERE ev.closed_at >= ? AND (ev.due IS NULL OR CAST(ev.submitted_at AS DATE) <= ev.due)) "
        "AS on_time_90 FROM findings f JOIN ev USING (finding_id) WHERE f.site_code = ? AND f.raised_at < ?",
        [site_code, end, d90, d90, day, d90, d90, site_code, end])
    assert f is not None        # a count is always one row
    m["closed_share_90d"] = f["closed_of_raised_90"] / f["raised_90"] if f["raised_90"] else None
    m["overdue_open"] = int(f["overdue"])
    m["on_time_share_90d"] = f["on_time_90"] / f["closed_90"] if f["closed_90"] else None
    figures = site_figures(store, site_code, day)
    survey = figures["deviation"]["detail"].get("survey_id")
    if survey:
        surveys = site_surveys(store, [site_code])
        epoch = _plain(surveys.loc[surveys["survey_id"] == survey, "day"].iloc[0]).date()
        m["survey_age_days"] = (day - epoch).days
        m["in_tolerance_share"] = 1.0 - figures["deviation"]["raw"]
    else:
        m["survey_age_days"], m["in_tolerance_share"] = None, None
    m["posed_panoramas"] = int(_first(panorama_summary(store, [site_code], added_before=end), "posed", 0))
    hz = figures["hazards"]
    m["hazard_rate"] = hz["raw"] if hz["raw"] is not None and hz["unit"].endswith("worker-hours") else None
    m["data_quality"] = data_quality(store, system, site_code=site_code, as_of=day)[0]["quality"]
    m["risk_score"] = compute_risk(store, system, site_code, as_of=day).score
    m["exchanged_30d"] = bool(store.scalar(
        "SELECT count(*) FROM exchange_packages WHERE site_code = ? AND direction = 'export' AND done_at >= ? "
        "AND done_at < ?", [site_code, d30, end]))
    return m


# --------------------------------------------------------------------------------------
# evaluating

def evaluate(store: Store, scope: Scope, site_code: str, *, scheme: str | Path | dict = "provincial",
             as_of: dt.date | str | None = None, record: bool = True) -> Evaluation:
    """Evaluate one site under a scheme; with ``record`` (regulators) the result is stored."""
    from sitetwin.oversight.risk import _day, compute_risk, premium_factor

    audit.guard(store, scope, "evaluate" if record else "read", site_code, object_kind="evaluation")
    s = scheme if isinstance(scheme, dict) else load_scheme(scheme)
    if isinstance(scheme, dict):
        check_scheme(s)
    day = _day(as_of)
    metrics = site_metrics(store, site_code, as_of=day)
    items = []
    for it in s["items"]:
        pts, msg, fields = _score(it, metrics[it["metric"]])
        items.append(ItemResult(id=it["id"], section=it["section"], title=it["title"], metric=it["metric"],
                                value=metrics[it["metric"]], points=pts, max_points=float(it["points"]),
                                note=_note_en(msg, fields), title_zh=it.get("title_zh") or None, note_msg=msg,
                                note_fields=fields))
    by_section = {k: round(sum(i.points for i in items if i.section == k), 2) for k in s["sections"]}
    total = round(sum(by_section.values()), 2)
    basic = by_section.get("basic", 0.0)
    grade = next(g["grade"] for g in s["grades"]
                 if total >= g.get("min_total", 0) and basic >= g.get("min_basic", 0))
    risk = compute_risk(store, Scope.system("evaluation"), site_code, as_of=day)
    factor, formula = premium_factor(risk.score)
    ev = Evaluation(evaluation_id=str(uuid.uuid4()), site_code=site_code, scheme_id=s["id"],
                    scheme_version=str(s["version"]), scheme_title=s["title"], as_of=day, items=tuple(items),
                    basic_points=basic, promotion_points=by_section.get("promotion", 0.0), total_points=total,
                    max_points={k: v["max_points"] for k, v in s["sections"].items()}, grade=grade,
                    risk_score=risk.score, risk_tier=risk.tier, premium_factor=factor, premium_formula=formula,
                    risk=risk, scheme_title_zh=s.get("title_zh") or None)
    if record:
        with atomic(store):
            store.execute("INSERT INTO evaluations (evaluation_id, site_code, scheme_id, scheme_version, as_of, "
                          "evaluated_at, evaluated_by, basic_points, promotion_points, total_points, grade, items, "
                          "risk_score, premium_factor) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                          [ev.evaluation_id, site_code, ev.scheme_id, ev.scheme_version, day, utcnow(), scope.actor,
                           ev.basic_points, ev.promotion_points, total, grade,
                           [{"id": i.id, "value": _jsonable(i.value), "points": i.points, "note": i.note}
                            for i in items], risk.score, factor])
            audit.record(store, scope, "write", "evaluation", ev.evaluation_id, site_code=site_code,
                         detail={"grade": grade, "total": total})
    else:
        audit.record(store, scope, "view", "evaluation", None, site_code=site_code, detail={"grade": grade})
    return ev


def list_evaluations(store: Store, scope: Scope, *, site_code: str | None = None) -> list[dict]:
    """Stored evaluations of the sites in scope, newest first."""
    audit.guard(store, scope, "read")
    if site_code is not None:
        audit.guard(store, scope, "read", site_code, object_kind="evaluation")
    cond, params = scope.where("site_code")
    rows = store.rows(f"SELECT evaluation_id, site_code, scheme_id, as_of, evaluated_by, basic_points, "
                      f"promotion_points, total_points, grade, risk_score, premium_factor FROM evaluations "
                      f"WHERE {cond} AND (? IS NULL OR site_code = ?) ORDER BY evaluated_at DESC",
                      [*params, site_code, site_code])
    audit.record(store, scope, "view", "evaluations", None, site_code=site_code, detail={"count": len(rows)})
    return rows


def _jsonable(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


# --------------------------------------------------------------------------------------
# reports (in the current language: i18n.use_language, or ``lang=``)

# Names shown for stored keys; a key not listed here (a custom scheme's section, a new risk component)
# is shown as it is stored.
SECTION_NAMES = {"basic": N_("basic"), "promotion": N_("promotion")}
GRADE_NAMES = {"excellent": N_("excellent"), "good": N_("good"), "pass": N_("pass"), "fail": N_("fail")}
SEVERITY_NAMES = {"low": N_("low"), "medium": N_("medium"), "high": N_("high"), "critical": N_("critical")}
STATUS_NAMES = {"open": N_("open"), "rectification_submitted": N_("rectification submitted"),
                "verified_closed": N_("verified and closed"), "reopened": N_("reopened")}
CATEGORY_NAMES = {"safety": N_("safety"), "quality": N_("quality"), "progress": N_("progress"),
                  "environment": N_("environment")}

# CJK fonts the PDF report can set Chinese in, best first. TrueType outlines first (Debian's fonts-wqy-microhei):
# matplotlib embeds a font as TrueType (pdf.fonttype 42), and the CFF outlines of Noto Sans CJK's collection end
# up declared as TrueType in the PDF (matplotlib issue 20870: poppler reads them, warning; stricter readers may
# not). Noto CJK (fonts-noto-cjk, real bold faces) is the fallback.
CJK_FAMILIES = ("WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "AR PL UMing CN", "Noto Sans CJK SC", "Noto Serif CJK SC",
                "Source Han Sans SC", "Source Han Sans CN")
CJK_PACKAGE = "fonts-wqy-microhei"


class ReportError(OversightError):
    """A report that cannot be written here (a PDF in Chinese without a CJK font installed)."""


def _name(names: dict[str, str], key: str) -> str:
    return _(names[key]) if key in names else key


def item_title(i: ItemResult) -> str:
    """An item's title in the current language (the scheme's ``title_zh`` in zh-CN, where it has one)."""
    return i.title_zh if current_language() == "zh-CN" and i.title_zh else i.title


def grade_name(grade: str) -> str:
    """A grade as the current language names it (a custom scheme's own grade names as they are)."""
    return _name(GRADE_NAMES, grade)


def scheme_title(ev: Evaluation) -> str:
    """The scheme's title in the current language."""
    return ev.scheme_title_zh if current_language() == "zh-CN" and ev.scheme_title_zh else ev.scheme_title


def _num_text(v: float) -> str:
    """A measured value as the report shows it: three significant digits, in the locale's digits."""
    if not math.isfinite(v):
        return "–"
    digits = max(0, 2 - int(math.floor(math.log10(abs(v))))) if v and abs(v) < 1000 else 0
    return format_number(round(v, digits), None if digits else 0)


def _value(v) -> str:
    if v is None:
        return _("no data")
    if isinstance(v, bool):
        return _("yes") if v else _("no")
    if isinstance(v, (int, float)):
        return _num_text(float(v))
    return str(v)


def _risk_formula(ev: Evaluation) -> str:
    text = ev.risk.formula()
    return text if current_language() == SOURCE_LANGUAGE else text.replace("(no data)", _("(no data)"))


def _premium_formula(ev: Evaluation) -> str:
    text = ev.premium_formula
    if current_language() == SOURCE_LANGUAGE:
        return text
    return text.replace("factor =", _("factor") + " =").replace("(risk ", "(" + _("risk score") + " ")


def _finding_rows(findings) -> list[dict]:
    out = []
    for f in findings or ():
        get = f.get if isinstance(f, dict) else (lambda k, f=f: getattr(f, k, None))
        ref = get("ref") or f"{get('site_code')}-{get('number')}"
        out.append({"ref": ref, "severity": _name(SEVERITY_NAMES, str(get("severity"))),
                    "status": _name(STATUS_NAMES, str(get("status"))),
                    "category": _name(CATEGORY_NAMES, str(get("category"))),
                    "due": format_date(get("due")), "title": get("title") or ""})
    return out


# Longest text a report cell shows: a name or note stored by anyone cannot blow the report up.
REPORT_TEXT_MAX = 500


def _safe(value: Any, limit: int = REPORT_TEXT_MAX) -> str:
    """``value`` as text any report can carry (``data.text.printable``), cut to ``limit`` characters."""
    text = printable(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


_CSS = """body{font-family:system-ui,"Noto Sans CJK SC","PingFang SC","Microsoft YaHei",sans-serif;margin:2em;
color:#222}h1{font-size:1.4em}table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}th{background:#f2f2f2}
.grade{font-size:1.6em;font-weight:bold;padding:.2em .6em;border-radius:.3em;color:#fff}
.excellent{background:#1b7f3b}.good{background:#3c8dbc}.pass{background:#c8901a}.fail{background:#b03a2e}
.num{text-align:right}.muted{color:#777}code{background:#f6f6f6;padding:2px 4px}"""


def report_html(ev: Evaluation, *, site_name: str | None = None, findings=None, lang: str | None = None,
                address: str | None = None,
                time_zone: str | None = None) -> str:
    """A self-contained HTML report: grade, points per item, the risk breakdown, the premium formula
    and (given ``findings``: ``Finding`` records or dicts) the site's findings.

    In ``lang`` (default: the current language); the generation time in ``time_zone`` (the site's).
    Every text is escaped after ``printable`` (no control characters reach the page) and cut to
    ``REPORT_TEXT_MAX`` characters.
    """
    with use_language(lang or current_language()) as language:
        return _report_html(ev, site_name, findings, language, time_zone, address)


def _report_html(ev: Evaluation, site_name, findings, language: str, time_zone, address=None) -> str:
    def e(value: Any) -> str:
        return html.escape(_safe(value))

    def th(*names: str) -> str:
        return "<tr>" + "".join(f"<th>{e(n)}</th>" for n in names) + "</tr>"

    rows = "".join(
        f"<tr><td>{e(i.id)}</td><td>{e(_name(SECTION_NAMES, i.section))}</td><td>{e(item_title(i))}</td>"
        f"<td>{e(_value(i.value))}</td><td class=num>{e(format_number(i.points))} / {e(format_number(i.max_points))}"
        f"</td><td class=muted>{e(_note(i))}</td></tr>" for i in ev.items)
    risk_rows = ""
    if ev.risk is not None:
        risk_rows = "".join(
            f"<tr><td>{e(component_text(c.name))}</td><td class=num>{e(format_number(c.weight, 2))}</td>"
            f"<td>{e(basis_text(c))}</td><td class=num>{e(_('no data') if c.no_data else _value(c.raw))}</td>"
            f"<td class=num>{e(format_number(c.subscore, 1))}</td><td class=num>{e(format_number(c.points, 1))}</td>"
            f"</tr>" for c in ev.risk.components)
    maxes = " + ".join(f"{e(_name(SECTION_NAMES, k))} {e(format_number(v))}" for k, v in ev.max_points.items())
    site = f"<b>{e(ev.site_code)}</b>" + (" — " + e(site_name) if site_name else "")
    grade = _name(GRADE_NAMES, ev.grade)
    frows = _finding_rows(findings)
    found = ""
    if findings is not None:
        found = (f"<h2>{e(_('Findings ({n})', n=len(frows)))}</h2><table>"
                 + th(_("finding"), _("severity"), _("status"), _("category"), _("due"), _("title"))
                 + "".join(f"<tr><td>{e(r['ref'])}</td><td>{e(r['severity'])}</td><td>{e(r['status'])}</td>"
                           f"<td>{e(r['category'])}</td><td>{e(r['due'])}</td><td>{e(r['title'])}</td></tr>"
                           for r in frows) + "</table>")
    # every message outside the page's f-string: the catalog's extractor reads calls, not f-string insides
    title = _("Evaluation {site} {day}", site=ev.site_code, day=format_date(ev.as_of))
    intro = _("Site {site}, as of {day}.", site=site, day=e(format_date(ev.as_of)))
    if address:
        intro += " " + e(_("Address: {address}", address=address))
    scheme = _("Scheme {scheme} version {version}", scheme=ev.scheme_id, version=ev.scheme_version)
    totals = _("total {total}: basic {basic}, promotion {promotion}", total=format_number(ev.total_points),
               basic=format_number(ev.basic_points), promotion=format_number(ev.promotion_points))
    items_title = _("Items")
    items_head = th(_("item"), _("section"), _("what"), _("measured"), _("points"), _("how"))
    risk_title = _("Risk score {score} (tier {tier})", score=format_number(ev.risk_score, 1), tier=ev.risk_tier)
    risk_how = _("score = Σ weight × subscore; subscore = 100 × min(1, raw / saturation); no data counts as the "
                 "configured no-data subscore.")
    risk_head = th(_("component"), _("weight"), _("basis"), _("raw"), _("subscore"), _("points"))
    formula = "<p><code>" + e(_risk_formula(ev)) + "</code></p>" if ev.risk is not None else ""
    premium = _("Insurance premium factor {factor}", factor=format_number(ev.premium_factor, 3))
    generated = _("Generated by sitetwin on {when}.",
                  when=format_datetime(utcnow(), tz=time_zone) + ("" if time_zone else " UTC"))
    return f"""<!DOCTYPE html><html lang={language}><head><meta charset=utf-8>
<title>{e(title)}</title><style>{_CSS}</style></head><body>
<h1>{e(scheme_title(ev))}</h1>
<p>{intro}
{e(scheme)} ({maxes}).</p>
<p><span class="grade {e(ev.grade)}">{e(grade)}</span>
&nbsp; {e(totals)}</p>
<h2>{e(items_title)}</h2><table>{items_head}
{rows}</table>
<h2>{e(risk_title)}</h2>
<p>{e(risk_how)}</p>
<table>{risk_head}
{risk_rows}</table>
{formula}
<h2>{e(premium)}</h2>
<p><code>{e(_premium_formula(ev))}</code></p>
{found}
<p class=muted>{e(generated)}</p>
</body></html>
"""


@lru_cache(maxsize=1)
def _installed_font_names() -> frozenset[str]:
    """The font families matplotlib knows, after looking on disk once more: its cache may predate
    fonts installed since (``make fonts``)."""
    from matplotlib import font_manager as fm

    files = {f.fname for f in fm.fontManager.ttflist}
    for path in fm.findSystemFonts():
        low = path.lower()
        if path not in files and any(k in low for k in ("cjk", "wqy", "sourcehan", "uming")):
            try:
                fm.fontManager.addfont(path)
            except (OSError, RuntimeError, ValueError):
                continue
    return frozenset(f.name for f in fm.fontManager.ttflist)


def cjk_font_family() -> str | None:
    """The first of :data:`CJK_FAMILIES` installed here (matplotlib's font manager, no network)."""
    names = _installed_font_names()
    return next((f for f in CJK_FAMILIES if f in names), None)


def _has_bold(family: str) -> bool:
    from matplotlib import font_manager as fm

    _installed_font_names()
    return any(f.name == family and _weight(f.weight) >= 600 for f in fm.fontManager.ttflist)


def _weight(w: Any) -> int:
    named = {"normal": 400, "regular": 400, "book": 400, "medium": 500, "semibold": 600, "demibold": 600,
             "bold": 700, "heavy": 800, "black": 900}
    return int(w) if isinstance(w, (int, float)) else named.get(str(w).lower(), 400)


def require_pdf_font(lang: str | None = None) -> None:
    """Refuse now (:class:`ReportError`, naming the package) if a PDF in ``lang`` (default: the current
    language) could not be set here: before anything is evaluated or stored."""
    _pdf_families(lang or current_language())


def _pdf_families(language: str) -> list[str]:
    cjk = cjk_font_family()
    if language == "zh-CN":
        if cjk is None:
            raise ReportError(N_("the zh-CN PDF report needs a CJK font: install Debian's {package} "
                                 "(make fonts, or apt-get install {package})"), package=CJK_PACKAGE)
        return [cjk]            # Noto Sans CJK has Latin too: one font to embed and no fallback to look up
    # English text in DejaVu Sans; Chinese site names and titles fall back to the CJK font if there is one
    return ["DejaVu Sans"] + ([cjk] if cjk else [])


def report_pdf(ev: Evaluation, target: str | Path, *, site_name: str | None = None, findings=None,
               address: str | None = None,
               lang: str | None = None, time_zone: str | None = None) -> Path:
    """The same report as a PDF: a summary page, a risk page, and the findings (given ``findings``).

    Laid out here (:class:`_PdfPages`: lines wrapped by measured width, CJK between any two characters,
    tables continued on new pages with their header) and drawn with matplotlib; fonts embedded as
    subsets (``pdf.fonttype`` 42). Chinese needs a CJK font (:data:`CJK_FAMILIES`): without one a zh-CN
    report is refused with :class:`ReportError`, naming the package to install.
    """
    with use_language(lang or current_language()) as language, _PDF_LOCK:
        return _report_pdf(ev, Path(target), site_name, findings, language, time_zone, address)


# matplotlib's rc parameters (pdf.fonttype, read while the file is written) are process-wide: one PDF at a time
_PDF_LOCK = threading.Lock()


def _report_pdf(ev: Evaluation, target: Path, site_name, findings, language: str, time_zone, address=None) -> Path:
    import matplotlib
    from matplotlib.backends.backend_pdf import PdfPages

    families = _pdf_families(language)
    t = _safe
    title = t(_("Evaluation {site} {day}", site=ev.site_code, day=format_date(ev.as_of)), 200)
    with matplotlib.rc_context({"pdf.fonttype": 42, "font.family": families}), \
            PdfPages(target, metadata={"Title": title, "Creator": "sitetwin"}) as pdf:
        doc = _PdfPages(pdf, families)
        doc.paragraph(t(scheme_title(ev), 200), size=13, bold=True)
        site = ev.site_code + (" — " + t(site_name, 120) if site_name else "")
        doc.paragraph(t(_("Site {site}, as of {day}.", site=site, day=format_date(ev.as_of))
                        + " " + _("Scheme {scheme} version {version}", scheme=ev.scheme_id,
                                  version=ev.scheme_version), 300), size=9)
        if address:
            doc.paragraph(t(_("Address: {address}", address=address), 240), size=9)
        doc.paragraph(_("Grade: {grade}", grade=_name(GRADE_NAMES, ev.grade)) + "    "
                      + _("total {total}: basic {basic}, promotion {promotion}", total=format_number(ev.total_points),
                          basic=format_number(ev.basic_points), promotion=format_number(ev.promotion_points)),
                      size=12, bold=True, after=8)
        doc.table([_("item"), _("what"), _("measured"), _("points"), _("how")],
                  [[t(i.id, 12), t(item_title(i)), t(_value(i.value), 20),
                    f"{format_number(i.points)}/{format_number(i.max_points)}", t(_note(i), 80)] for i in ev.items],
                  widths=[0.07, 0.43, 0.14, 0.1, 0.26], size=7.5)

        doc.new_page()
        doc.paragraph(_("Risk score {score} (tier {tier})", score=format_number(ev.risk_score, 1), tier=ev.risk_tier),
                      size=13, bold=True, after=6)
        if ev.risk is not None:
            comps = ev.risk.components
            doc.bar_chart([t(component_text(c.name), 40) for c in comps], [c.points for c in comps],
                          ["#bbbbbb" if c.no_data else "#c0504d" for c in comps],
                          _("points of the score (weight × subscore); grey: no data"))
            doc.table([_("component"), _("weight"), _("basis"), _("raw"), _("subscore"), _("points")],
                      [[t(component_text(c.name), 40), format_number(c.weight, 2), t(basis_text(c), 200),
                        _("no data") if c.no_data else _value(c.raw), format_number(c.subscore, 1),
                        format_number(c.points, 1)] for c in comps],
                      widths=[0.2, 0.09, 0.41, 0.1, 0.1, 0.1], size=7.5)
            doc.paragraph(t(_risk_formula(ev), 400), size=7.5, after=10)
        doc.paragraph(_("Insurance premium factor {factor}", factor=format_number(ev.premium_factor, 3)),
                      size=12, bold=True)
        doc.paragraph(t(_premium_formula(ev), 300), size=8, after=10)
        doc.paragraph(_("Generated by sitetwin on {when}.", when=format_datetime(utcnow(), tz=time_zone)
                        + ("" if time_zone else " UTC")), size=7, color="#777777")
        if findings is not None:
            rows = _finding_rows(findings)
            doc.new_page()
            doc.paragraph(_("Findings ({n})", n=len(rows)), size=13, bold=True, after=6)
            doc.table([_("finding"), _("severity"), _("status"), _("due"), _("title")],
                      [[t(r["ref"], 40), r["severity"], r["status"], r["due"], t(r["title"])] for r in rows],
                      widths=[0.13, 0.09, 0.14, 0.14, 0.5], size=7.5)
        doc.close()
    return target


class _PdfPages:
    """A4 pages laid out top to bottom: wrapped paragraphs, tables that continue on the next page
    under their header, a bar chart. Positions are in points (the figure is 72 dpi)."""

    W, H, MARGIN = 595.28, 841.89, 42.0
    LEADING = 1.3            # line height / font size
    PAD = 2.5                # cell padding, points

    def __init__(self, pdf, families: list[str]) -> None:
        from matplotlib.font_manager import FontProperties

        self._pdf, self._fp, self._families = pdf, FontProperties, families
        self._bold = [f for f in families if _has_bold(f)] if _has_bold(families[0]) else []
        self._widths: dict[tuple[str, float, bool], float] = {}
        self.page = 0
        self.fig = self._start_page()
        self._saved = False

    # ---- pages
    def _start_page(self) -> Figure:
        # no pyplot: its figures are process-global state, and the workbench writes reports from many threads
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=(self.W / 72, self.H / 72), dpi=72)
        self.fig = fig
        self._renderer = FigureCanvasAgg(fig).get_renderer()          # measures text as the PDF will set it
        self.page += 1
        self.y = self.H - self.MARGIN
        self._draw_text(f"{self.page}", self.W / 2, self.MARGIN / 2, 7, False, "#999999", ha="center")
        return fig

    def new_page(self) -> None:
        self._flush()
        self._start_page()
        self._saved = False

    def close(self) -> None:
        self._flush()

    def _flush(self) -> None:
        if not self._saved:
            self._pdf.savefig(self.fig)
            self._saved = True

    def _room(self, height: float) -> None:
        if self.y - height < self.MARGIN and self.y < self.H - self.MARGIN - 1:
            self.new_page()

    # ---- text
    def _prop(self, size: float, bold: bool):
        # bold from the families that have a bold face; without one (WenQuanYi Micro Hei) headings go by size
        if bold and self._bold:
            return self._fp(family=self._bold, size=size, weight="bold")
        return self._fp(family=self._families, size=size, weight="normal")

    def _width(self, token: str, size: float, bold: bool) -> float:
        """A token's width: the sum of its characters' (each measured once; kerning left out, which
        the 3 % margin of :meth:`wrap` covers)."""
        total = 0.0
        for ch in token:
            key = (ch, size, bold)
            w = self._widths.get(key)
            if w is None:
                w = self._renderer.get_text_width_height_descent(ch, self._prop(size, bold), ismath=False)[0]
                self._widths[key] = w
            total += w
        return total

    def wrap(self, text: str, width: float, size: float, bold: bool = False) -> list[str]:
        """``text`` in lines no wider than ``width`` points: latin words kept whole (cut only when one
        is wider than a line), CJK broken between any two characters, closing punctuation never
        starting a line."""
        lines: list[str] = []
        width *= 0.97
        for para in str(text).split("\n"):
            line, used = "", 0.0
            for tok in _tokens(para):
                w = self._width(tok, size, bold)
                if used + w <= width or not line.strip() or (tok in _NO_LINE_START and used + w <= width * 1.08):
                    if not line and tok.isspace():
                        continue
                    if w > width and len(tok) > 1:          # a word wider than a line: cut it
                        for ch in tok:
                            cw = self._width(ch, size, bold)
                            if used + cw > width and line:
                                lines.append(line)
                                line, used = "", 0.0
                            line, used = line + ch, used + cw
                        continue
                    line, used = line + tok, used + w
                else:
                    lines.append(line.rstrip())
                    line, used = ("", 0.0) if tok.isspace() else (tok, w)
            lines.append(line.rstrip())
        return lines or [""]

    def _draw_text(self, text: str, x: float, y: float, size: float, bold: bool, color: str = "#222222",
                   **kw) -> None:
        self.fig.text(x / self.W, y / self.H, text, fontproperties=self._prop(size, bold), color=color,
                      parse_math=False, va="baseline", **kw)

    def paragraph(self, text: str, *, size: float = 9, bold: bool = False, after: float = 4,
                  color: str = "#222222", indent: float = 0.0) -> None:
        lead = size * self.LEADING
        for line in self.wrap(text, self.W - 2 * self.MARGIN - indent, size, bold):
            self._room(lead)
            self.y -= lead
            self._draw_text(line, self.MARGIN + indent, self.y + size * 0.25, size, bold, color)
        self.y -= after

    # ---- tables
    def _pitch(self, size: float, bold: bool) -> float:
        """The line pitch of a multi-line text at ``linespacing=1`` (matplotlib gives every line of a text
        with a numeric line spacing the same height: the font's ascent + descent times the spacing)."""
        key = ("\n pitch", size, bold)
        if key not in self._widths:
            prop = self._prop(size, bold)
            one = self.fig.text(0, 0, "x", fontproperties=prop, linespacing=1.0)
            two = self.fig.text(0, 0, "x\nx", fontproperties=prop, linespacing=1.0)
            self._widths[key] = (two.get_window_extent(self._renderer).height
                                 - one.get_window_extent(self._renderer).height)
            one.remove()
            two.remove()
        return self._widths[key]

    def table(self, header: list[str], rows: list[list[str]], *, widths: list[float], size: float = 7.5) -> None:
        """A table over the page's width (``widths``: shares), continued on new pages under its header.

        Each column of a page is drawn as one multi-line text (matplotlib draws a text in milliseconds,
        a 300-row table has thousands of cell lines): rows sit on a grid of whole lines, a row taking its
        tallest cell's lines plus one, half a line of padding above and below. A row taller than a page
        is cut to fit."""
        from matplotlib.lines import Line2D
        from matplotlib.patches import Rectangle

        total = self.W - 2 * self.MARGIN
        cols = [w * total / sum(widths) for w in widths]
        lead = size * self.LEADING
        max_lines = max(1, int((self.H - 2 * self.MARGIN) / lead) - 6)

        def cells(values: list[str], bold: bool) -> list[list[str]]:
            return [self.wrap(v, c - 2 * self.PAD, size, bold)[:max_lines] for v, c in zip(values, cols)]

        head = cells(header, True)
        head_n = max(len(c) for c in head)
        spacing = lead / self._pitch(size, False)

        def page(block: list[list[list[str]]]) -> None:
            """Draw the header and ``block`` (rows of cells) from ``self.y`` down."""
            top = self.y
            x0, x1 = self.MARGIN / self.W, (self.MARGIN + total) / self.W
            self.fig.add_artist(Rectangle((x0, (top - (head_n + 1) * lead) / self.H), x1 - x0,
                                          (head_n + 1) * lead / self.H, transform=self.fig.transFigure,
                                          color="#f0f0f0", lw=0))
            texts: list[list[str]] = [[""] for _ in cols]        # half a line above the first row
            bold_texts: list[list[str]] = [[""] for _ in cols]
            slots = 0
            for k, row in enumerate([head, *block]):
                n = max(len(c) for c in row)
                for j, cell in enumerate(row):
                    lines = cell + [""] * (n - len(cell)) + [""]
                    (bold_texts if k == 0 else texts)[j] += lines
                    if k == 0:
                        texts[j] += [""] * len(lines)
                slots += n + 1
                y = top - slots * lead
                self.fig.add_artist(Line2D([x0, x1], [y / self.H] * 2, transform=self.fig.transFigure,
                                           color="#bbbbbb", lw=0.4))
            x = self.MARGIN
            for j, col in enumerate(cols):
                for lines, bold in ((texts[j], False), (bold_texts[j], True)):
                    if any(lines):
                        self.fig.text((x + self.PAD) / self.W, (top + lead / 2) / self.H, "\n".join(lines),
                                      fontproperties=self._prop(size, bold), linespacing=spacing, va="top",
                                      parse_math=False, color="#222222")
                x += col
            self.y = top - slots * lead

        block: list[list[list[str]]] = []
        room = int((self.y - self.MARGIN) / lead) - (head_n + 1)
        if room < 2:
            self.new_page()
            room = int((self.y - self.MARGIN) / lead) - (head_n + 1)
        for row in rows:
            body = cells(row, False)
            need = max(len(c) for c in body) + 1
            if need > room and block:
                page(block)
                self.new_page()
                block, room = [], int((self.y - self.MARGIN) / lead) - (head_n + 1)
            block.append(body)
            room -= need
        page(block)
        self.y -= 8

    # ---- a chart
    def bar_chart(self, labels: list[str], values: list[float], colors: list[str], xlabel: str) -> None:
        height = 22.0 * len(labels) + 40
        self._room(height)
        left = self.MARGIN + 130
        ax = self.fig.add_axes(((left) / self.W, (self.y - height + 30) / self.H,
                                (self.W - self.MARGIN - left) / self.W, (height - 36) / self.H))
        ax.barh(range(len(labels)), values, color=colors)
        ax.set_yticks(range(len(labels)))
        ax.set_yticklabels(labels, fontproperties=self._prop(8, False))
        for tick in ax.get_yticklabels():
            tick.set_parse_math(False)
        ax.set_xlabel(xlabel, fontproperties=self._prop(8, False))
        ax.invert_yaxis()
        self.y -= height + 6


_NO_LINE_START = set("，。、；：？！）》」』】〕,.;:?!)%")


def _tokens(text: str) -> list[str]:
    """Latin words (with what sticks to them), runs of spaces, and single other characters (CJK)."""
    import re

    return re.findall(r"[0-9A-Za-z\u00c0-\u024f_\-.,:;!?'\"/%()\[\]<>=+*#@&|~^`{}]+|\s+|.", text)
