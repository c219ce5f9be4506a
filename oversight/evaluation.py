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
import uuid
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from sitetwin.bim.queries import linked_element_counts, list_models
from sitetwin.data.clock import utcnow
from sitetwin.data.store import Store, atomic
from sitetwin.data.text import printable
from sitetwin.oversight import audit
from sitetwin.oversight.errors import SchemeError
from sitetwin.oversight.scope import Scope
from sitetwin.panorama.queries import panorama_summary
from sitetwin.sensors.queries import attendance_summary, site_devices
from sitetwin.twin.queries import site_surveys
from sitetwin.vision.queries import detections_per_site

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
    note: str


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
            raise SchemeError(f"{where}: cannot read the scheme ({exc})") from None
    else:
        where = f"oversight/schemes/{scheme}.yaml"
        try:
            text = resources.files("sitetwin.oversight").joinpath(f"schemes/{scheme}.yaml").read_text(encoding="utf-8")
        except (FileNotFoundError, OSError):
            names = sorted(p.name[:-5] for p in resources.files("sitetwin.oversight").joinpath("schemes").iterdir()
                           if p.name.endswith(".yaml"))
            raise SchemeError(f"no evaluation scheme {str(scheme)!r} "
                              f"(packaged: {', '.join(names)}; or give a file)") from None
    try:
        data = json.loads(text) if where.endswith(".json") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise SchemeError(f"{where}: not valid {'JSON' if where.endswith('.json') else 'YAML'} ({exc})") from None
    check_scheme(data, where)
    return data


def check_scheme(s: Any, where: str = "scheme") -> None:
    def need(cond, key, expected):
        if not cond:
            raise SchemeError(f"{where}: {key} must be {expected}")

    need(isinstance(s, dict), "the scheme", "a mapping")
    for key in ("id", "version", "title"):
        need(isinstance(s.get(key), str) and s[key].strip(), key, "a non-empty string")
    sections = s.get("sections")
    need(isinstance(sections, dict) and sections, "sections", "a mapping of section -> {max_points}")
    for name, sec in sections.items():
        need(isinstance(sec, dict) and _num(sec.get("max_points")) and sec["max_points"] > 0,
             f"sections.{name}.max_points", "a positive number")
    items = s.get("items")
    need(isinstance(items, list) and items, "items", "a non-empty list")
    seen, totals = set(), {k: 0.0 for k in sections}
    for i, it in enumerate(items):
        key = f"items[{i}]"
        need(isinstance(it, dict), key, "a mapping")
        need(isinstance(it.get("id"), str) and it["id"] not in seen, f"{key}.id", "a string used once")
        seen.add(it["id"])
        key = f"item {it['id']}"
        need(it.get("section") in sections, f"{key}.section", f"one of {', '.join(sections)}")
        need(_num(it.get("points")) and it["points"] > 0, f"{key}.points", "a positive number")
        need(it.get("metric") in METRICS, f"{key}.metric", f"one of {', '.join(METRICS)}")
        need(isinstance(it.get("title"), str), f"{key}.title", "a string")
        rule = it.get("rule")
        need(isinstance(rule, dict) and rule.get("type") in RULES, f"{key}.rule.type", f"one of {', '.join(RULES)}")
        if rule["type"] == "ladder":
            steps = rule.get("steps")
            need(isinstance(steps, list) and steps and all(isinstance(x, list) and len(x) == 2 and _num(x[0])
                                                           and _num(x[1]) for x in steps),
                 f"{key}.rule.steps", "a list of [threshold, points] pairs")
            need(max(x[1] for x in steps) <= it["points"], f"{key}.rule.steps", f"points at most {it['points']}")
            need(rule.get("direction", "up") in ("up", "down"), f"{key}.rule.direction", "up or down")
        if rule["type"] == "linear":
            need(_num(rule.get("zero")) and _num(rule.get("full")) and rule["zero"] != rule["full"],
                 f"{key}.rule", "numbers zero and full that differ")
        totals[it["section"]] += it["points"]
    for name, sec in sections.items():
        need(abs(totals[name] - sec["max_points"]) < 1e-9, f"sections.{name}",
             f"items adding up to its max_points {sec['max_points']} (they add up to {totals[name]})")
    grades = s.get("grades")
    need(isinstance(grades, list) and grades and all(isinstance(g, dict) and isinstance(g.get("grade"), str)
                                                     and _num(g.get("min_total", 0)) for g in grades),
         "grades", "a list of {grade, min_total, min_basic}")
    need(grades[-1].get("min_total", 0) == 0 and grades[-1].get("min_basic", 0) == 0, "grades",
         "ending with a grade every site reaches (min_total 0)")


def _num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def score_item(item: dict, value: Any) -> tuple[float, str]:
    """Points for one item's metric value under its rule, and a note (pure)."""
    rule, full = item["rule"], float(item["points"])
    if value is None:
        return 0.0, "no data"
    if rule["type"] == "boolean":
        ok = bool(value)
        return (full, "yes") if ok else (0.0, "no")
    v = float(value)
    if rule["type"] == "ladder":
        down = rule.get("direction", "up") == "down"
        earned = [p for t, p in rule["steps"] if (v <= t if down else v >= t)]
        pts = float(max(earned, default=0.0))
        return pts, f"{_fmt(v)} {'<=' if down else '>='} step for {pts:g}" if earned else f"{_fmt(v)}: below every step"
    frac = (v - rule["zero"]) / (rule["full"] - rule["zero"])
    frac = min(1.0, max(0.0, frac))
    return round(full * frac, 2), f"{_fmt(v)} -> {frac:.0%} of {full:g}"


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
        pts, note = score_item(it, metrics[it["metric"]])
        items.append(ItemResult(id=it["id"], section=it["section"], title=it["title"], metric=it["metric"],
                                value=metrics[it["metric"]], points=pts, max_points=float(it["points"]), note=note))
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
                    risk=risk)
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
# reports

_CSS = """body{font-family:system-ui,sans-serif;margin:2em;color:#222}h1{font-size:1.4em}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}
th{background:#f2f2f2}.grade{font-size:1.6em;font-weight:bold;padding:.2em .6em;border-radius:.3em;color:#fff}
.excellent{background:#1b7f3b}.good{background:#3c8dbc}.pass{background:#c8901a}.fail{background:#b03a2e}
.num{text-align:right}.muted{color:#777}code{background:#f6f6f6;padding:2px 4px}"""


# Longest text a report cell shows: a name or note stored by anyone cannot blow the report up.
REPORT_TEXT_MAX = 500


def _safe(value: Any, limit: int = REPORT_TEXT_MAX) -> str:
    """``value`` as text any report can carry (``data.text.printable``), cut to ``limit`` characters."""
    text = printable(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def report_html(ev: Evaluation, *, site_name: str | None = None) -> str:
    """A self-contained HTML report: grade, points per item, the risk breakdown and the premium formula.

    Every text is escaped after ``printable`` (no control characters reach the page) and cut to
    ``REPORT_TEXT_MAX`` characters.
    """
    def e(value: Any) -> str:
        return html.escape(_safe(value))
    rows = "".join(
        f"<tr><td>{e(i.id)}</td><td>{e(i.section)}</td><td>{e(i.title)}</td><td>{e(_value(i.value))}</td>"
        f"<td class=num>{i.points:g} / {i.max_points:g}</td><td class=muted>{e(i.note)}</td></tr>" for i in ev.items)
    risk_rows = ""
    if ev.risk is not None:
        risk_rows = "".join(
            f"<tr><td>{e(c.name)}</td><td class=num>{c.weight:.2f}</td><td>{e(c.basis)}</td>"
            f"<td class=num>{'no data' if c.no_data else _value(c.raw)}</td><td class=num>{c.subscore:.1f}</td>"
            f"<td class=num>{c.points:.1f}</td></tr>" for c in ev.risk.components)
    maxes = " + ".join(f"{e(k)} {v:g}" for k, v in ev.max_points.items())
    return f"""<!DOCTYPE html><html lang=en><head><meta charset=utf-8>
<title>Evaluation {e(ev.site_code)} {ev.as_of}</title><style>{_CSS}</style></head><body>
<h1>{e(ev.scheme_title)}</h1>
<p>Site <b>{e(ev.site_code)}</b>{' — ' + e(site_name) if site_name else ''}, as of {ev.as_of}.
Scheme {e(ev.scheme_id)} version {e(ev.scheme_version)} ({maxes} points).</p>
<p><span class="grade {e(ev.grade)}">{e(ev.grade)}</span>
&nbsp; total <b>{ev.total_points:g}</b>: basic {ev.basic_points:g}, promotion {ev.promotion_points:g}</p>
<h2>Items</h2><table><tr><th>item</th><th>section</th><th>what</th><th>measured</th><th>points</th><th>how</th></tr>
{rows}</table>
<h2>Risk score {ev.risk_score:.1f} (tier {e(ev.risk_tier)})</h2>
<p>score = Σ weight × subscore; subscore = 100 × min(1, raw / saturation); no data counts as
{'' if ev.risk is None else ''}the configured no-data subscore.</p>
<table><tr><th>component</th><th>weight</th><th>basis</th><th>raw</th><th>subscore</th><th>points</th></tr>
{risk_rows}</table>
{'<p><code>' + e(ev.risk.formula()) + '</code></p>' if ev.risk is not None else ''}
<h2>Insurance premium factor {ev.premium_factor:.3f}</h2>
<p><code>{e(ev.premium_formula)}</code></p>
<p class=muted>Generated by sitetwin on {utcnow().isoformat(timespec='seconds')} UTC.</p>
</body></html>
"""


def report_pdf(ev: Evaluation, target: str | Path, *, site_name: str | None = None) -> Path:
    """The same report as a PDF (matplotlib, no network): a summary page and a risk page."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages

    target = Path(target)
    a4 = (8.27, 11.69)
    # stored text is plain text: printable, cut short, and never parsed as mathtext ("$...$" would be)
    t, text = _safe, _pdf_text
    title = t(f"Evaluation {ev.site_code} {ev.as_of}", 200)
    with PdfPages(target, metadata={"Title": title, "Creator": "sitetwin"}) as pdf:
        fig = plt.figure(figsize=a4)
        text(fig, 0.07, 0.95, t(ev.scheme_title, 120), fontsize=13, weight="bold", wrap=True)
        text(fig, 0.07, 0.92, t(f"Site {ev.site_code}{' - ' + t(site_name, 80) if site_name else ''}, as of "
                                f"{ev.as_of}; scheme {ev.scheme_id} v{ev.scheme_version}", 160), fontsize=9)
        text(fig, 0.07, 0.885, t(f"Grade: {ev.grade.upper()}    total {ev.total_points:g}  (basic "
                                 f"{ev.basic_points:g}, promotion {ev.promotion_points:g})", 160),
             fontsize=12, weight="bold")
        ax = fig.add_axes((0.05, 0.08, 0.9, 0.78))
        ax.axis("off")
        cells = [[t(i.id, 12), t(i.title, 52), t(_value(i.value), 14), f"{i.points:g}/{i.max_points:g}"]
                 for i in ev.items]
        table = ax.table(cellText=cells, colLabels=["item", "what", "measured", "points"], loc="upper left",
                         colWidths=[0.08, 0.62, 0.16, 0.14], cellLoc="left")
        for cell in table.get_celld().values():
            cell.get_text().set_parse_math(False)
        table.auto_set_font_size(False)
        table.set_fontsize(7.5)
        table.scale(1, 1.35)
        pdf.savefig(fig)
        plt.close(fig)

        fig = plt.figure(figsize=a4)
        text(fig, 0.07, 0.95, t(f"Risk score {ev.risk_score:.1f} (tier {ev.risk_tier})", 120), fontsize=13,
             weight="bold")
        if ev.risk is not None:
            ax = fig.add_axes((0.25, 0.62, 0.65, 0.28))
            names = [t(c.name, 40).replace("$", r"\$") for c in ev.risk.components]   # tick labels: mathtext on
            ax.barh(names, [c.points for c in ev.risk.components],
                    color=["#bbbbbb" if c.no_data else "#c0504d" for c in ev.risk.components])
            ax.set_xlabel("points of the score (weight x subscore); grey: no data")
            ax.invert_yaxis()
            y = 0.56
            for c in ev.risk.components:
                text(fig, 0.07, y, t(f"{c.name}: {c.basis}", 110), fontsize=7.5)
                y -= 0.02
            text(fig, 0.07, y - 0.02, t(ev.risk.formula(), 120), fontsize=7.5, family="monospace")
            y -= 0.04
        else:
            y = 0.6
        text(fig, 0.07, y - 0.04, f"Insurance premium factor {ev.premium_factor:.3f}", fontsize=12, weight="bold")
        text(fig, 0.07, y - 0.07, t(ev.premium_formula, 200), fontsize=8, family="monospace")
        pdf.savefig(fig)
        plt.close(fig)
    return target


def _pdf_text(fig, x: float, y: float, value: str, **kw) -> None:
    if kw.get("wrap"):        # matplotlib measures wrapped text as mathtext whatever parse_math says: escape "$"
        fig.text(x, y, value.replace("$", r"\$"), **kw)
    else:
        fig.text(x, y, value, parse_math=False, **kw)


def _value(v) -> str:
    if v is None:
        return "no data"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)
