"""Site overview: what the site is, which model versions and surveys it has, progress against plan,
open hazards and findings, and how fresh each data source is."""

from __future__ import annotations

import dash
from dash import Input, Output, dcc, html

from sitetwin.dashboards import components as c
from sitetwin.dashboards import inputs as i
from sitetwin.dashboards.access import scoped_store, site_store
from sitetwin.dashboards.callbacks import callback

STALE_DAYS = {"detections": 7, "sensor": 1, "survey": 60, "camera": 7}   # older than this shows as stale

i.declare({"overview-site.data": i.optional(i.site_code)})


def layout(site: str | None = None, **query):
    from sitetwin.dashboards.app import default_site

    site = default_site(site)
    if site is None:
        return c.site_missing("overview")
    return html.Div([
        dcc.Store(id="overview-site", data=site),
        html.H1(id="overview-title"),
        html.Div([
            html.Div([html.H2("Site"), html.Div(id="overview-card")], className="card"),
            html.Div([html.H2("Progress against plan"), html.Div(id="overview-progress")], className="card"),
            html.Div([html.H2("Open hazards"), html.Div(id="overview-hazards")], className="card"),
            html.Div([html.H2("Open findings"), html.Div(id="overview-findings")], className="card"),
            html.Div([html.H2("Model versions"), html.Div(id="overview-models")], className="card"),
            html.Div([html.H2("Latest surveys"), html.Div(id="overview-surveys")], className="card"),
            html.Div([html.H2("Data freshness"), html.Div(id="overview-freshness")], className="card wide"),
        ], className="grid"),
    ])


@callback(Output("overview-title", "children"), Output("overview-card", "children"),
          Output("overview-progress", "children"), Output("overview-hazards", "children"),
          Output("overview-findings", "children"), Output("overview-models", "children"),
          Output("overview-surveys", "children"), Output("overview-freshness", "children"),
          Input("overview-site", "data"))
def fill(site):
    from sitetwin.dashboards import queries as q

    with site_store(site) as store:
        card = q.site_card(store, site)
        models = q.model_versions(store, site)
        surveys = q.surveys(store, site)
        prog = q.progress_report(store, site)
        n_hazards, hazards = q.open_hazards(store, site, limit=8)
    with scoped_store() as (store, scope):
        findings = q.open_findings(store, scope, site)
        fresh = q.data_freshness(store, scope, site)
    s, p, n = card["site"], card["profile"], card["counts"]
    title = f"{s.get('name') or site} ({site})"
    card_view = [c.facts([("code", site), ("name", s.get("name")), ("district", s.get("district")),
                          ("city", s.get("city")), ("contractor", p.get("contractor")),
                          ("planned", f"{c.fmt(p.get('planned_start'))} → {c.fmt(p.get('planned_finish'))}"
                           if p.get("planned_start") else None)], id="overview-facts"),
                 html.Div([c.figure_num(n["elements"], "elements"), c.figure_num(n["surveys"], "surveys"),
                           c.figure_num(n["panoramas"], "panoramas"), c.figure_num(n["detections"], "detections"),
                           c.figure_num(n["devices"], "devices")], className="figures")]
    return (title, card_view, _progress(prog), _hazards(n_hazards, hazards, site), _findings(findings),
            _models(models), _surveys(surveys), _freshness(fresh))


def _progress(prog):
    """Planned and seen-built shares at the latest survey (twin's progress report)."""
    if not prog.elements:
        return c.empty("No schedule linked to the model: import one with `sitetwin bim schedule` to compare "
                       "progress against plan.", id="overview-progress-empty")
    if not prog.surveys:
        return c.empty(f"{prog.elements} scheduled elements, but no analysed survey yet: actual progress needs a "
                       "scan survey (`sitetwin survey add`).", id="overview-progress-empty")
    last = prog.surveys[-1]
    missing = sum(1 for e in prog.late_elements if e["still_missing"])
    return html.Div([
        html.Div([c.figure_num(round(100.0 * last["planned"] / prog.elements, 1), "% planned done",
                               id="overview-planned-pct"),
                  c.figure_num(round(100.0 * last["built"] / prog.elements, 1), "% seen built",
                               id="overview-actual-pct"),
                  c.figure_num(missing, "elements late", id="overview-late")], className="figures"),
        html.Div(f"at the survey of {c.fmt(last['epoch'])} ({last['survey_id']}), {prog.elements} scheduled elements",
                 className="status-line"),
    ])


def _hazards(total, rows, site):
    if not rows:
        return c.empty("No open hazards. Hazards come from the detectors on panoramas and site cameras "
                       "(`sitetwin vision detect`).", id="overview-hazards-empty")
    return html.Div([
        html.Div(f"{total} open", className="figure-num", id="overview-hazard-count"),
        c.table(rows, [("rule", "rule"), ("severity", "severity"), ("started_at", "started"), ("storey", "storey")],
                cell=lambda k, r: c.severity(r[k]) if k == "severity" else c.fmt(r.get(k))),
        dcc.Link("All hazards and detections →", href=f"/hazards?site={site}"),
    ])


def _findings(findings):
    if not findings:
        return c.empty("No open findings.", id="overview-findings-empty")
    rows = [{"ref": f.ref, "severity": f.severity, "category": f.category, "title": f.title, "status": f.status,
             "due": f.due, "overdue": f.overdue_days or ""} for f in findings[:10]]
    return html.Div([html.Div(f"{len(findings)} open", className="figure-num", id="overview-finding-count"),
                     c.table(rows, [("ref", "ref"), ("severity", "severity"), ("title", "title"), ("status", "status"),
                                    ("due", "due"), ("overdue", "days overdue")],
                             cell=lambda k, r: c.severity(r[k]) if k == "severity" else c.fmt(r.get(k)))])


def _models(models):
    if not models:
        return c.empty("No design model yet: load one with `sitetwin bim load`.")
    return c.table(models, [("name", "model"), ("version", "version"), ("model_id", "id"), ("ifc_schema", "schema"),
                            ("element_count", "elements"), ("loaded_at", "loaded"), ("current", "current")],
                   id="overview-model-table",
                   cell=lambda k, r: ("yes" if r[k] else "") if k == "current" else c.fmt(r.get(k)))


def _surveys(surveys):
    if not surveys:
        return c.empty("No scan survey yet: add one with `sitetwin survey add` to see deviation and as-built status.",
                       id="overview-surveys-empty")
    rows = list(reversed(surveys))[:6]
    return c.table(rows, [("epoch", "epoch"), ("survey_id", "survey"), ("point_count", "points"),
                          ("rmse_m", "RMSE (m)"), ("built", "built"), ("not_built", "not built"),
                          ("out_of_tolerance", "out of tol.")],
                   cell=lambda k, r: c.fmt(r.get(k), 4) if k == "rmse_m" else c.fmt(r.get(k)))


def _freshness(rows):
    def cell(k, r):
        if k == "age_days":
            if r["last"] is None:
                return html.Span("no data", className="missing")
            stale = r["age_days"] > STALE_DAYS.get(r["source"], 30)
            return html.Span(f"{r['age_days']:.1f} days", className="stale" if stale else "ok")
        if k == "completeness":
            return "–" if r[k] is None else f"{100 * r[k]:.0f} %"
        return c.fmt(r.get(k))

    return c.table(rows, [("source", "source"), ("entries", "entries"), ("last", "newest data"),
                          ("age_days", "age"), ("completeness", "completeness")],
                   id="overview-freshness-table", cell=cell)


dash.register_page(__name__, path="/", name="Overview", title="sitetwin · site overview", order=0, layout=layout)
