"""Portfolio: the sites a regulator supervises, city -> district -> project, with per-district rollups,
each site's risk score and tier (its breakdown and trend on click), and links into each site's twin.

Served with ``sitetwin serve --lake URI``, the sites, figures and rollups come from the city lake
(``access.scoped_lake``, under the caller's scope from the store, as over a store); a site only the lake
holds is listed with its figures, and its links say that its details live on its project platform."""

from __future__ import annotations

from urllib.parse import urlencode

import dash
from dash import ALL, Input, Output, State, ctx, dcc, html

from sitetwin.dashboards import components as c
from sitetwin.dashboards import inputs as i
from sitetwin.dashboards.callbacks import callback
from sitetwin.dashboards.pages._labels import cell, columns, label, num, page_title
from sitetwin.dashboards.regulator import RISK_RANGE
from sitetwin.data.i18n import N_, Translator, format_percent

_ = Translator("dashboards.pages")
NAME = N_("Portfolio")

TIERS = ("A", "B", "C")
GROUPS = {"district": N_("district"), "enterprise": N_("enterprise")}

i.declare({
    "portfolio-risk-site.data": i.optional(i.site_code), "portfolio-refresh.data": i.optional(i.count),
    "portfolio-city.value": i.optional(i.text(i.TITLE_MAX)),
    "portfolio-district.value": i.optional(i.text(i.TITLE_MAX)),
    "portfolio-tiers.value": i.optional(i.list_of(i.one_of(TIERS))),
    "portfolio-risk.value": i.optional(i.span(*RISK_RANGE)),
    "portfolio-group.value": i.optional(i.one_of(tuple(GROUPS))),
})
i.declare_pattern("portfolio-risk-open", site=i.site_code)


def layout(site: str | None = None, **query):
    return html.Div([
        dcc.Store(id="portfolio-risk-site", data=site),
        dcc.Store(id="portfolio-refresh", data=0),
        dcc.Download(id="portfolio-download"),
        html.H1(_("Portfolio")),
        html.Div([
            c.control(_("city"), dcc.Dropdown(id="portfolio-city", placeholder=_("all cities"))),
            c.control(_("district"), dcc.Dropdown(id="portfolio-district", placeholder=_("all districts"))),
            c.control(_("tier"), dcc.Checklist(id="portfolio-tiers", options=list(TIERS), value=[], inline=True)),
            c.control(_("risk score"), dcc.RangeSlider(id="portfolio-risk", min=0, max=100, step=5, value=[0, 100],
                                                    marks={0: "0", 30: "30", 55: "55", 100: "100"},
                                                    allowCross=False), wide=True),
            html.Button(_("Score these sites now"), id="portfolio-record", className="button secondary", n_clicks=0,
                        title=_("store today's risk score of every listed site (regulators)")),
        ], className="controls"),
        html.Div(id="portfolio-msg", className="status-line"),
        html.Div(id="portfolio-summary", className="figures"),
        html.Div([
            html.Div([html.Div([html.H2(_("Per district"), id="portfolio-rollups-title"),
                                c.control(_("group by"), dcc.RadioItems(
                                    id="portfolio-group", value="district", inline=True,
                                    options=[{"label": _(t), "value": k} for k, t in GROUPS.items()]))],
                               className="controls"),
                      html.Div(id="portfolio-rollups")], className="card wide"),
            html.Div([html.H2(_("Sites")), html.Div(id="portfolio-sites")], className="card wide"),
            html.Div([
                html.H2(_("Risk breakdown"), id="portfolio-risk-title"),
                html.Div(id="portfolio-risk-body", children=c.empty(_("Click a site's score to see how it is made up."),
                                                                    id="portfolio-risk-empty")),
                html.Div([html.Button(_("Evaluation report (HTML)"), id="portfolio-report-html",
                                      className="button secondary", n_clicks=0),
                          html.Button(_("Evaluation report (PDF)"), id="portfolio-report-pdf",
                                      className="button secondary", n_clicks=0)],
                         style={"display": "flex", "gap": ".5rem", "marginTop": ".6rem"}),
                html.Div(id="portfolio-report-msg", className="status-line"),
            ], className="card wide", id="portfolio-risk-card"),
        ], className="grid"),
    ])


@callback(Output("portfolio-city", "options"), Output("portfolio-district", "options"),
          Output("portfolio-summary", "children"), Output("portfolio-rollups", "children"),
          Output("portfolio-sites", "children"), Output("portfolio-rollups-title", "children"),
          Input("portfolio-city", "value"), Input("portfolio-district", "value"), Input("portfolio-tiers", "value"),
          Input("portfolio-risk", "value"), Input("portfolio-refresh", "data"), Input("portfolio-group", "value"))
def fill(city, district, tiers, risk, refresh, group=None):
    """Sites in the caller's scope (oversight.portfolio), filtered, grouped, with the rollups per district or
    per construction enterprise (risk, findings, dangerous works, safety education coverage)."""
    by = group if group in GROUPS else "district"
    p = read_portfolio(city=city, district=district, tiers=tiers, risk_range=risk, by=by)
    sites = p["sites"]
    summary = [*([html.Div(_("Figures from the city lake."), id="portfolio-source", className="status-line")]
                 if p["lake"] else []),
               c.figure_num(num(len(sites)), _("sites shown (of {n})", n=num(p["all"])), id="portfolio-count"),
               c.figure_num(num(sum(r["open_findings"] for r in sites)), _("open findings")),
               c.figure_num(num(sum(r["overdue_findings"] for r in sites)), _("overdue"), id="portfolio-overdue"),
               c.figure_num(num(sum(r["hazards"] for r in sites)), _("hazards (30 days)")),
               c.figure_num(num(sum(1 for r in sites if r["tier"] == "C")), _("tier C"))]
    rollups = _enterprise_rollups(p["rollups"]) if by == "enterprise" else _rollups(p["rollups"])
    title = _("Per enterprise") if by == "enterprise" else _("Per district")
    return p["cities"], p["districts"], summary, rollups, _sites(sites), title


def read_portfolio(*, city=None, district=None, tiers=None, risk_range=None, by: str = "district") -> dict:
    """``regulator.portfolio`` from the store, or with a lake (``sitetwin serve --lake``) the same from the lake:
    each row then says whether only the lake holds the site (``elsewhere``: its pages are on its project
    platform); ``lake`` says which was read."""
    from sitetwin.dashboards.access import current_lake, scoped_lake, sites_in_scope
    from sitetwin.dashboards.regulator import filter_sites, portfolio
    from sitetwin.oversight.portfolio import portfolio_sites, rollup

    if current_lake() is None:
        return {**portfolio(city=city, district=district, tiers=tiers, risk_range=risk_range, by=by), "lake": False}
    with scoped_lake() as (lake, scope):
        everything = portfolio_sites(lake, scope)
        rollups = rollup(lake, scope, by=by, city=city or None, district=district or None)
    here = {r["site_code"] for r in sites_in_scope()}
    everything = [{**r, "elsewhere": r["site_code"] not in here} for r in everything]
    sites = [r for r in everything if (not city or r["city"] == city) and (not district or r["district"] == district)]
    cities = sorted({r["city"] for r in everything if r["city"]})
    districts = sorted({r["district"] for r in everything if r["district"] and (not city or r["city"] == city)})
    return {"sites": filter_sites(sites, tiers=tiers, risk_range=risk_range), "all": len(everything),
            "rollups": rollups, "cities": cities, "districts": districts, "lake": True}


def _rollups(rows):
    if not rows:
        return c.empty(_("No site in your scope."), id="portfolio-rollups-empty")
    return c.table(rows, columns([("city", N_("city")), ("district", N_("district")), ("sites", N_("sites")),
                                  ("open_findings", N_("open findings")), ("overdue_findings", N_("overdue")),
                                  ("open_critical", N_("critical")), ("awaiting_verification", N_("to verify")),
                                  ("hazards", N_("hazards")), ("mean_risk", N_("mean risk")),
                                  ("max_risk", N_("worst risk")), ("tier_a", "A"), ("tier_b", "B"), ("tier_c", "C"),
                                  ("unscored", N_("unscored"))]),
                   id="portfolio-rollup-table", cell=lambda k, r: cell(r.get(k)))


def _enterprise_rollups(rows):
    if not rows:
        return c.empty(_("No site in your scope."), id="portfolio-rollups-empty")
    shown = [{**r, "enterprise_code": r["enterprise_code"] or _("(no enterprise)"),
              "training_coverage": format_percent(r["training_coverage"])} for r in rows]
    return c.table(shown, columns([("enterprise_code", N_("enterprise")), ("name", N_("name")), ("sites", N_("sites")),
                                   ("open_findings", N_("open findings")), ("overdue_findings", N_("overdue")),
                                   ("open_critical", N_("critical")), ("hazards", N_("hazards")),
                                   ("dangerous_works", N_("dangerous works")),
                                   ("dangerous_works_overdue", N_("plan approval overdue")),
                                   ("training_coverage", N_("safety education coverage")),
                                   ("mean_risk", N_("mean risk")), ("max_risk", N_("worst risk")), ("tier_a", "A"),
                                   ("tier_b", "B"), ("tier_c", "C"), ("unscored", N_("unscored"))]),
                   id="portfolio-enterprise-table", cell=lambda k, r: cell(r.get(k)))


SITE_COLUMNS = [("site_code", N_("site")), ("name", N_("name")), ("project", N_("project")),
                ("contractor", N_("contractor")), ("open_findings", N_("open")), ("overdue_findings", N_("overdue")),
                ("open_critical", N_("critical")), ("hazards", N_("hazards")), ("risk_score", N_("risk")),
                ("tier", N_("tier")), ("links", N_("open in"))]


def _sites(rows):
    if not rows:
        return c.empty(_("No site matches these filters."), id="portfolio-sites-empty")
    body, city, district = [], object(), object()
    for r in rows:
        if r["city"] != city:
            city, district = r["city"], object()
            n = sum(1 for x in rows if x["city"] == city)
            body.append(html.Tr(html.Td(f"{city or _('(no city)')} · " + _.plural("{n} site", "{n} sites", n),
                                        colSpan=len(SITE_COLUMNS)), className="group-row"))
        if r["district"] != district:
            district = r["district"]
            n = sum(1 for x in rows if x["city"] == city and x["district"] == district)
            body.append(html.Tr(html.Td(f"{district or _('(no district)')} · " + _.plural("{n} site", "{n} sites", n),
                                        colSpan=len(SITE_COLUMNS)), className="group-row district"))
        body.append(html.Tr([html.Td(_site_cell(k, r)) for k, _h in SITE_COLUMNS],
                            className="overdue-row" if r["overdue_findings"] else None))
    return html.Table([html.Thead(html.Tr([html.Th(_(h)) for _k, h in SITE_COLUMNS])), html.Tbody(body)],
                      className="simple", id="portfolio-site-table")


def _site_cell(key, r):
    site = r["site_code"]
    if r.get("elsewhere") and key in ("risk_score", "links"):     # only the lake holds it: no pages here
        if key == "risk_score":
            return _("not scored") if r["risk_score"] is None else num(r["risk_score"], 1)
        return html.Span(_("details on its project platform"),
                         title=_("this platform holds the site's figures from the city lake; its twin, findings "
                                 "and hazards are on its project platform"), className="links elsewhere")
    if key == "risk_score":
        text = _("not scored") if r["risk_score"] is None else num(r["risk_score"], 1)
        return html.Button(text, id={"type": "portfolio-risk-open", "site": site}, n_clicks=0,
                           className="button secondary", title=_("show the breakdown and trend"))
    if key == "tier":
        return c.badge(r["tier"], f"tier-{r['tier']}") if r["tier"] else "–"
    if key == "overdue_findings" and r[key]:
        return c.badge(num(r[key]), "overdue")
    if key == "links":
        q = urlencode({"site": site})
        return html.Span([dcc.Link(_("overview"), href=f"/?{q}", id={"type": "portfolio-drill", "site": site}),
                          dcc.Link("3D", href=f"/twin?{q}"), dcc.Link(_("findings"), href=f"/findings?{q}"),
                          dcc.Link(_("hazards"), href=f"/hazards?{q}")], className="links")
    return cell(r.get(key))


@callback(Output("portfolio-risk-site", "data", allow_duplicate=True),
          Input({"type": "portfolio-risk-open", "site": ALL}, "n_clicks"), prevent_initial_call=True)
def pick(clicks):
    if not ctx.triggered_id or not any(clicks or []):
        raise dash.exceptions.PreventUpdate
    return ctx.triggered_id["site"]


@callback(Output("portfolio-risk-title", "children"), Output("portfolio-risk-body", "children"),
          Input("portfolio-risk-site", "data"), Input("portfolio-refresh", "data"))
def breakdown(site, refresh):
    """The live score with every component (oversight.risk: weight, basis, raw, subscore, points) and the trend."""
    from sitetwin.dashboards import figures as f
    from sitetwin.dashboards.regulator import risk_view
    from sitetwin.oversight.risk import basis_text, default_config, unit_text

    if not site:
        raise dash.exceptions.PreventUpdate
    v = risk_view(site)
    r = v.risk
    rows = [{"component": label("risk_component", x.name), "weight": x.weight, "basis": basis_text(x),
             "raw": _("no data") if x.no_data else x.raw, "unit": unit_text(x), "subscore": x.subscore,
             "points": x.points}
            for x in r.components]
    limits = {t: float(spec["below"]) for t, spec in default_config()["tiers"].items()}
    trend = f.risk_trend_figure(v.trend, {"as_of": r.as_of, "score": r.score}, limits)
    title = _("Risk breakdown: {name} ({site})", name=v.name or site, site=site)
    body = [
        html.Div([c.figure_num(num(r.score, 1), _("risk score (now)"), id="portfolio-risk-score"),
                  html.Div([c.badge(r.tier, f"tier-{r.tier}"),
                            html.Div(_("tier ({source}); computed {tier}", source=label("tier_source", r.tier_source),
                                       tier=r.computed_tier), className="figure-label")],
                           id="portfolio-risk-tier"),
                  c.figure_num(num(r.inspect_every_days), _("days between inspections")),
                  c.figure_num(num(r.premium_factor, 3), _("insurance premium factor"))], className="figures"),
        c.table(rows, columns([("component", N_("component")), ("weight", N_("weight")), ("basis", N_("basis")),
                               ("raw", N_("figure")), ("unit", N_("unit")), ("subscore", N_("subscore")),
                               ("points", N_("points"))]), id="portfolio-risk-table",
                cell=lambda k, row: cell(row[k], 2 if k in ("weight", "raw") else 1)),
        html.Div(html.Code(_formula(r), id="portfolio-risk-formula"), className="status-line"),
        html.H3(_.plural("Trend ({n} stored score)", "Trend ({n} stored scores)", len(v.trend))),
        dcc.Graph(id="portfolio-trend", figure=trend, style={"height": "240px"}, config={"displayModeBar": False}),
        html.Div(_("No stored scores yet: “Score these sites now” (or `sitetwin risk --record`) adds a point a day.")
                 if not v.trend else "", className="status-line"),
        html.Div(html.Span([dcc.Link(_("overview"), href=f"/?{urlencode({'site': site})}"),
                            dcc.Link(_("3D twin"), href=f"/twin?{urlencode({'site': site})}"),
                            dcc.Link(_("findings"), href=f"/findings?{urlencode({'site': site})}")],
                           className="links")),
    ]
    return title, body


def _formula(r) -> str:
    """The score written out as oversight.risk's ``formula()`` writes it, in the reader's language:
    ``0.30*72.0 + 0.20*50.0(no data) + ... = 41.3``."""
    terms = [f"{x.weight:.2f}*{x.subscore:.1f}" + (_("(no data)") if x.no_data else "") for x in r.components]
    return " + ".join(terms) + f" = {r.score:.1f}"


@callback(Output("portfolio-msg", "children"), Output("portfolio-refresh", "data"),
          Input("portfolio-record", "n_clicks"), State("portfolio-city", "value"), State("portfolio-district", "value"),
          State("portfolio-tiers", "value"), State("portfolio-risk", "value"), State("portfolio-refresh", "data"),
          prevent_initial_call=True)
def record(n, city, district, tiers, risk, refresh):
    """A regulator stores today's score of every listed site (oversight.risk.record_risk): the trend grows."""
    from sitetwin.dashboards.regulator import record_scores

    if not n:
        raise dash.exceptions.PreventUpdate
    listed = read_portfolio(city=city, district=district, tiers=tiers, risk_range=risk)["sites"]
    sites = [r["site_code"] for r in listed if not r.get("elsewhere")]    # scores are stored here, not in the lake
    done = record_scores(sites)
    return _.plural("Stored today's risk score of {n} site.", "Stored today's risk score of {n} sites.", done), (
        refresh or 0) + 1


@callback(Output("portfolio-download", "data"), Output("portfolio-report-msg", "children"),
          Input("portfolio-report-html", "n_clicks"), Input("portfolio-report-pdf", "n_clicks"),
          State("portfolio-risk-site", "data"), prevent_initial_call=True)
def report(n_html, n_pdf, site):
    """The chosen site's evaluation report (oversight.evaluation), as HTML or PDF; a PDF the server cannot
    write in the reader's language says why instead."""
    from sitetwin.dashboards.regulator import ReportUnavailable, evaluation_report

    if not site or not (n_html or n_pdf):
        raise dash.exceptions.PreventUpdate
    try:
        name, data = evaluation_report(site, "pdf" if ctx.triggered_id == "portfolio-report-pdf" else "html")
    except ReportUnavailable as exc:
        return dash.no_update, str(exc)
    return dcc.send_bytes(data, name), ""


dash.register_page(__name__, path="/portfolio", name=NAME, title=page_title(N_("portfolio")), order=6,
                   layout=layout)
