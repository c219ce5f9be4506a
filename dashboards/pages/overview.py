"""Site overview: what the site is, which model versions and surveys it has, progress against plan,
open hazards and findings, and how fresh each data source is."""

from __future__ import annotations

import dash
from dash import Input, Output, dcc, html

from sitetwin.dashboards import components as c
from sitetwin.dashboards import inputs as i
from sitetwin.dashboards.access import scoped_store, site_store
from sitetwin.dashboards.callbacks import callback
from sitetwin.dashboards.pages._labels import cell, columns, label, num, page_title, severity, site_tz, when
from sitetwin.data.i18n import N_, Translator, format_percent

_ = Translator("dashboards.pages")
NAME = N_("Overview")

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
            html.Div([html.H2(_("Site")), html.Div(id="overview-card")], className="card"),
            html.Div([html.H2(_("Safety education")), html.Div(id="overview-training")], className="card"),
            html.Div([html.H2(_("Progress against plan")), html.Div(id="overview-progress")], className="card"),
            html.Div([html.H2(_("Open hazards")), html.Div(id="overview-hazards")], className="card"),
            html.Div([html.H2(_("Open findings")), html.Div(id="overview-findings")], className="card"),
            html.Div([html.H2(_("Model versions")), html.Div(id="overview-models")], className="card"),
            html.Div([html.H2(_("Latest surveys")), html.Div(id="overview-surveys")], className="card"),
            html.Div([html.H2(_("Data freshness")), html.Div(id="overview-freshness")], className="card wide"),
        ], className="grid"),
    ])


@callback(Output("overview-title", "children"), Output("overview-card", "children"),
          Output("overview-progress", "children"), Output("overview-hazards", "children"),
          Output("overview-findings", "children"), Output("overview-models", "children"),
          Output("overview-surveys", "children"), Output("overview-freshness", "children"),
          Output("overview-training", "children"), Input("overview-site", "data"))
def fill(site):
    from sitetwin.dashboards import queries as q

    with site_store(site) as store:
        tz = site_tz(store, site)
        card = q.site_card(store, site)
        models = q.model_versions(store, site)
        surveys = q.surveys(store, site)
        prog = q.progress_report(store, site)
        n_hazards, hazards = q.open_hazards(store, site, limit=8)
        builders = q.site_builders(store, site)
        training = q.training_coverage(store, site)
    with scoped_store() as (store, scope):
        findings = q.open_findings(store, scope, site)
        fresh = q.data_freshness(store, scope, site)
    s, p, n = card["site"], card["profile"], card["counts"]
    title = f"{s.get('name') or site} ({site})"
    card_view = [c.facts([(_("code"), site), (_("name"), s.get("name")), (_("district"), s.get("district")),
                          (_("city"), s.get("city")), (_("address"), s.get("address")),
                          (_("construction enterprise"), _enterprise(builders["contractor"])),
                          (_("subcontractors"), "; ".join(_enterprise(e) for e in builders["subcontractors"]) or None),
                          (_("contractor"), p.get("contractor")),
                          (_("planned"), f"{when(p.get('planned_start'), tz)} → {when(p.get('planned_finish'), tz)}"
                           if p.get("planned_start") else None)], id="overview-facts"),
                 html.Div([c.figure_num(num(n["elements"]), _("elements")),
                           c.figure_num(num(n["surveys"]), _("surveys")),
                           c.figure_num(num(n["panoramas"]), _("panoramas")),
                           c.figure_num(num(n["detections"]), _("detections")),
                           c.figure_num(num(n["devices"]), _("devices"))], className="figures")]
    return (title, card_view, _progress(prog, tz), _hazards(n_hazards, hazards, site, tz), _findings(findings, tz),
            _models(models, tz), _surveys(surveys, tz), _freshness(fresh, tz), _training(training))


def _enterprise(e) -> str | None:
    """An enterprise as the overview names it: its name and code, and a subcontractor's scope of work."""
    if not e:
        return None
    text = f"{e['name']} ({e['enterprise_code']})"
    return text + (f" · {e['scope_of_work']}" if e.get("scope_of_work") else "")


def _training(cov):
    """Workers on site in the window and how many had valid safety education (sensors' training coverage)."""
    if not cov["workers_on_site"]:
        return c.empty(_("Nobody entered the site in the last {n} days.", n=num(cov["days"])),
                       id="overview-training-empty")
    figures = [c.figure_num(num(cov["workers_on_site"]), _("workers on site ({n} days)", n=num(cov["days"]))),
               c.figure_num(num(cov["trained_valid"]), _("with valid safety education"))]
    if cov["coverage"] is None:
        return html.Div([html.Div(figures, className="figures"),
                         html.P(_("The site keeps no training records: the gates' flags only."), className="muted")],
                        id="overview-training-figures")
    figures.append(c.figure_num(format_percent(cov["coverage"]), _("coverage"), id="overview-training-coverage"))
    return html.Div(figures, className="figures", id="overview-training-figures")


def _progress(prog, tz=None):
    """Planned and seen-built shares at the latest survey (twin's progress report)."""
    if not prog.elements:
        return c.empty(_("No schedule linked to the model: import one with `sitetwin bim schedule` to compare "
                         "progress against plan."), id="overview-progress-empty")
    if not prog.surveys:
        return c.empty(_("{n} scheduled elements, but no analysed survey yet: actual progress needs a "
                         "scan survey (`sitetwin survey add`).", n=num(prog.elements)), id="overview-progress-empty")
    last = prog.surveys[-1]
    missing = sum(1 for e in prog.late_elements if e["still_missing"])
    return html.Div([
        html.Div([c.figure_num(num(100.0 * last["planned"] / prog.elements, 1), _("% planned done"),
                               id="overview-planned-pct"),
                  c.figure_num(num(100.0 * last["built"] / prog.elements, 1), _("% seen built"),
                               id="overview-actual-pct"),
                  c.figure_num(num(missing), _("elements late"), id="overview-late")], className="figures"),
        html.Div(_("at the survey of {epoch} ({survey}), {n} scheduled elements", epoch=when(last["epoch"], tz),
                   survey=last["survey_id"], n=num(prog.elements)), className="status-line"),
    ])


def _hazards(total, rows, site, tz=None):
    if not rows:
        return c.empty(_("No open hazards. Hazards come from the detectors on panoramas and site cameras "
                         "(`sitetwin vision detect`)."), id="overview-hazards-empty")

    def show(k, r):
        if k == "severity":
            return severity(r[k])
        if k == "rule":
            return label("rule", r[k])
        return cell(r.get(k), tz=tz)

    return html.Div([
        html.Div(_("{n} open", n=num(total)), className="figure-num", id="overview-hazard-count"),
        c.table(rows, columns([("rule", N_("hazard type")), ("severity", N_("severity")),
                               ("started_at", N_("started")), ("storey", N_("storey"))]), cell=show),
        dcc.Link(_("All hazards and detections →"), href=f"/hazards?site={site}"),
    ])


def _findings(findings, tz=None):
    if not findings:
        return c.empty(_("No open findings."), id="overview-findings-empty")
    rows = [{"ref": f.ref, "severity": f.severity, "category": f.category, "title": f.title, "status": f.status,
             "due": f.due, "overdue": f.overdue_days or ""} for f in findings[:10]]

    def show(k, r):
        if k == "severity":
            return severity(r[k])
        if k == "status":
            return label("finding_status", r[k])
        return cell(r.get(k), tz=tz)

    return html.Div([html.Div(_("{n} open", n=num(len(findings))), className="figure-num",
                              id="overview-finding-count"),
                     c.table(rows, columns([("ref", N_("ref")), ("severity", N_("severity")), ("title", N_("title")),
                                            ("status", N_("status")), ("due", N_("due")),
                                            ("overdue", N_("days overdue"))]), cell=show)])


def _models(models, tz=None):
    if not models:
        return c.empty(_("No design model yet: load one with `sitetwin bim load`."))
    return c.table(models, columns([("name", N_("model")), ("version", N_("version")), ("model_id", N_("id")),
                                    ("ifc_schema", N_("schema")), ("element_count", N_("elements")),
                                    ("loaded_at", N_("loaded")), ("current", N_("current"))]),
                   id="overview-model-table",
                   cell=lambda k, r: (_("yes") if r[k] else "") if k == "current" else cell(r.get(k), tz=tz))


def _surveys(surveys, tz=None):
    if not surveys:
        return c.empty(_("No scan survey yet: add one with `sitetwin survey add` to see deviation and as-built "
                         "status."), id="overview-surveys-empty")
    rows = list(reversed(surveys))[:6]
    return c.table(rows, columns([("epoch", N_("epoch")), ("survey_id", N_("survey")), ("point_count", N_("points")),
                                  ("rmse_m", N_("RMSE (m)")), ("built", N_("built")), ("not_built", N_("not built")),
                                  ("out_of_tolerance", N_("out of tol."))]),
                   cell=lambda k, r: cell(r.get(k), 4, tz) if k == "rmse_m" else cell(r.get(k), tz=tz))


def _freshness(rows, tz=None):
    def show(k, r):
        if k == "age_days":
            if r["last"] is None:
                return html.Span(_("no data"), className="missing")
            stale = r["age_days"] > STALE_DAYS.get(r["source"], 30)
            return html.Span(_("{n} days", n=num(r["age_days"], 1)), className="stale" if stale else "ok")
        if k == "completeness":
            return "–" if r[k] is None else format_percent(r[k])
        if k == "source":
            return label("source", r[k])
        return cell(r.get(k), tz=tz)

    return c.table(rows, columns([("source", N_("source")), ("entries", N_("entries")), ("last", N_("newest data")),
                                  ("age_days", N_("age")), ("completeness", N_("completeness"))]),
                   id="overview-freshness-table", cell=show)


dash.register_page(__name__, path="/", name=NAME, title=page_title(N_("site overview")), order=0, layout=layout)
