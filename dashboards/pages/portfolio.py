"""Portfolio: the sites a regulator supervises, city -> district -> project, with per-district rollups,
each site's risk score and tier (its breakdown and trend on click), and links into each site's twin."""

from __future__ import annotations

from urllib.parse import urlencode

import dash
from dash import ALL, Input, Output, State, ctx, dcc, html

from sitetwin.dashboards import components as c
from sitetwin.dashboards import inputs as i
from sitetwin.dashboards.callbacks import callback
from sitetwin.dashboards.regulator import RISK_RANGE

TIERS = ("A", "B", "C")

i.declare({
    "portfolio-risk-site.data": i.optional(i.site_code), "portfolio-refresh.data": i.optional(i.count),
    "portfolio-city.value": i.optional(i.text(i.TITLE_MAX)),
    "portfolio-district.value": i.optional(i.text(i.TITLE_MAX)),
    "portfolio-tiers.value": i.optional(i.list_of(i.one_of(TIERS))),
    "portfolio-risk.value": i.optional(i.span(*RISK_RANGE)),
})
i.declare_pattern("portfolio-risk-open", site=i.site_code)


def layout(site: str | None = None, **query):
    return html.Div([
        dcc.Store(id="portfolio-risk-site", data=site),
        dcc.Store(id="portfolio-refresh", data=0),
        dcc.Download(id="portfolio-download"),
        html.H1("Portfolio"),
        html.Div([
            c.control("city", dcc.Dropdown(id="portfolio-city", placeholder="all cities")),
            c.control("district", dcc.Dropdown(id="portfolio-district", placeholder="all districts")),
            c.control("tier", dcc.Checklist(id="portfolio-tiers", options=list(TIERS), value=[], inline=True)),
            c.control("risk score", dcc.RangeSlider(id="portfolio-risk", min=0, max=100, step=5, value=[0, 100],
                                                    marks={0: "0", 30: "30", 55: "55", 100: "100"},
                                                    allowCross=False), wide=True),
            html.Button("Score these sites now", id="portfolio-record", className="button secondary", n_clicks=0,
                        title="store today's risk score of every listed site (regulators)"),
        ], className="controls"),
        html.Div(id="portfolio-msg", className="status-line"),
        html.Div(id="portfolio-summary", className="figures"),
        html.Div([
            html.Div([html.H2("Per district"), html.Div(id="portfolio-rollups")], className="card wide"),
            html.Div([html.H2("Sites"), html.Div(id="portfolio-sites")], className="card wide"),
            html.Div([
                html.H2("Risk breakdown", id="portfolio-risk-title"),
                html.Div(id="portfolio-risk-body", children=c.empty("Click a site's score to see how it is made up.",
                                                                    id="portfolio-risk-empty")),
                html.Div([html.Button("Evaluation report (HTML)", id="portfolio-report-html",
                                      className="button secondary", n_clicks=0),
                          html.Button("Evaluation report (PDF)", id="portfolio-report-pdf",
                                      className="button secondary", n_clicks=0)],
                         style={"display": "flex", "gap": ".5rem", "marginTop": ".6rem"}),
            ], className="card wide", id="portfolio-risk-card"),
        ], className="grid"),
    ])


@callback(Output("portfolio-city", "options"), Output("portfolio-district", "options"),
          Output("portfolio-summary", "children"), Output("portfolio-rollups", "children"),
          Output("portfolio-sites", "children"),
          Input("portfolio-city", "value"), Input("portfolio-district", "value"), Input("portfolio-tiers", "value"),
          Input("portfolio-risk", "value"), Input("portfolio-refresh", "data"))
def fill(city, district, tiers, risk, refresh):
    """Sites in the caller's scope (oversight.portfolio), filtered, grouped, with the district rollups."""
    from sitetwin.dashboards.regulator import portfolio

    p = portfolio(city=city, district=district, tiers=tiers, risk_range=risk)
    sites = p["sites"]
    summary = [c.figure_num(len(sites), f"sites shown (of {p['all']})", id="portfolio-count"),
               c.figure_num(sum(r["open_findings"] for r in sites), "open findings"),
               c.figure_num(sum(r["overdue_findings"] for r in sites), "overdue", id="portfolio-overdue"),
               c.figure_num(sum(r["hazards"] for r in sites), "hazards (30 days)"),
               c.figure_num(sum(1 for r in sites if r["tier"] == "C"), "tier C")]
    return p["cities"], p["districts"], summary, _rollups(p["rollups"]), _sites(sites)


def _rollups(rows):
    if not rows:
        return c.empty("No site in your scope.", id="portfolio-rollups-empty")
    return c.table(rows, [("city", "city"), ("district", "district"), ("sites", "sites"),
                          ("open_findings", "open findings"), ("overdue_findings", "overdue"),
                          ("open_critical", "critical"), ("awaiting_verification", "to verify"),
                          ("hazards", "hazards"), ("mean_risk", "mean risk"), ("max_risk", "worst risk"),
                          ("tier_a", "A"), ("tier_b", "B"), ("tier_c", "C"), ("unscored", "unscored")],
                   id="portfolio-rollup-table")


SITE_COLUMNS = [("site_code", "site"), ("name", "name"), ("project", "project"), ("contractor", "contractor"),
                ("open_findings", "open"), ("overdue_findings", "overdue"), ("open_critical", "critical"),
                ("hazards", "hazards"), ("risk_score", "risk"), ("tier", "tier"), ("links", "open in")]


def _sites(rows):
    if not rows:
        return c.empty("No site matches these filters.", id="portfolio-sites-empty")
    body, city, district = [], object(), object()
    for r in rows:
        if r["city"] != city:
            city, district = r["city"], object()
            n = sum(1 for x in rows if x["city"] == city)
            body.append(html.Tr(html.Td(f"{city or '(no city)'} · {n} site{'s' * (n != 1)}",
                                        colSpan=len(SITE_COLUMNS)), className="group-row"))
        if r["district"] != district:
            district = r["district"]
            n = sum(1 for x in rows if x["city"] == city and x["district"] == district)
            body.append(html.Tr(html.Td(f"{district or '(no district)'} · {n} site{'s' * (n != 1)}",
                                        colSpan=len(SITE_COLUMNS)), className="group-row district"))
        body.append(html.Tr([html.Td(_site_cell(k, r)) for k, _ in SITE_COLUMNS],
                            className="overdue-row" if r["overdue_findings"] else None))
    return html.Table([html.Thead(html.Tr([html.Th(h) for _, h in SITE_COLUMNS])), html.Tbody(body)],
                      className="simple", id="portfolio-site-table")


def _site_cell(key, r):
    site = r["site_code"]
    if key == "risk_score":
        label = "not scored" if r["risk_score"] is None else f"{r['risk_score']:.1f}"
        return html.Button(label, id={"type": "portfolio-risk-open", "site": site}, n_clicks=0,
                           className="button secondary", title="show the breakdown and trend")
    if key == "tier":
        return c.badge(r["tier"], f"tier-{r['tier']}") if r["tier"] else "–"
    if key == "overdue_findings" and r[key]:
        return c.badge(str(r[key]), "overdue")
    if key == "links":
        q = urlencode({"site": site})
        return html.Span([dcc.Link("overview", href=f"/?{q}", id={"type": "portfolio-drill", "site": site}),
                          dcc.Link("3D", href=f"/twin?{q}"), dcc.Link("findings", href=f"/findings?{q}"),
                          dcc.Link("hazards", href=f"/hazards?{q}")], className="links")
    return c.fmt(r.get(key))


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
    from sitetwin.oversight.risk import default_config

    if not site:
        raise dash.exceptions.PreventUpdate
    v = risk_view(site)
    r = v.risk
    rows = [{"component": x.name, "weight": x.weight, "basis": x.basis,
             "raw": "no data" if x.no_data else x.raw, "unit": x.unit, "subscore": x.subscore, "points": x.points}
            for x in r.components]
    limits = {t: float(spec["below"]) for t, spec in default_config()["tiers"].items()}
    trend = f.risk_trend_figure(v.trend, {"as_of": r.as_of, "score": r.score}, limits)
    title = f"Risk breakdown: {v.name or site} ({site})"
    body = [
        html.Div([c.figure_num(round(r.score, 1), "risk score (now)", id="portfolio-risk-score"),
                  html.Div([c.badge(r.tier, f"tier-{r.tier}"),
                            html.Div(f"tier ({r.tier_source}); computed {r.computed_tier}", className="figure-label")],
                           id="portfolio-risk-tier"),
                  c.figure_num(r.inspect_every_days, "days between inspections"),
                  c.figure_num(f"{r.premium_factor:.3f}", "premium factor")], className="figures"),
        c.table(rows, [("component", "component"), ("weight", "weight"), ("basis", "basis"), ("raw", "figure"),
                       ("unit", "unit"), ("subscore", "subscore"), ("points", "points")], id="portfolio-risk-table",
                cell=lambda k, row: c.fmt(row[k], 2 if k in ("weight", "raw") else 1)),
        html.Div(html.Code(r.formula(), id="portfolio-risk-formula"), className="status-line"),
        html.H3(f"Trend ({len(v.trend)} stored score{'s' * (len(v.trend) != 1)})"),
        dcc.Graph(id="portfolio-trend", figure=trend, style={"height": "240px"}, config={"displayModeBar": False}),
        html.Div("No stored scores yet: “Score these sites now” (or `sitetwin risk --record`) adds a point a day."
                 if not v.trend else "", className="status-line"),
        html.Div(html.Span([dcc.Link("overview", href=f"/?{urlencode({'site': site})}"),
                            dcc.Link("3D twin", href=f"/twin?{urlencode({'site': site})}"),
                            dcc.Link("findings", href=f"/findings?{urlencode({'site': site})}")], className="links")),
    ]
    return title, body


@callback(Output("portfolio-msg", "children"), Output("portfolio-refresh", "data"),
          Input("portfolio-record", "n_clicks"), State("portfolio-city", "value"), State("portfolio-district", "value"),
          State("portfolio-tiers", "value"), State("portfolio-risk", "value"), State("portfolio-refresh", "data"),
          prevent_initial_call=True)
def record(n, city, district, tiers, risk, refresh):
    """A regulator stores today's score of every listed site (oversight.risk.record_risk): the trend grows."""
    from sitetwin.dashboards.regulator import portfolio, record_scores

    if not n:
        raise dash.exceptions.PreventUpdate
    sites = [r["site_code"] for r in portfolio(city=city, district=district, tiers=tiers, risk_range=risk)["sites"]]
    done = record_scores(sites)
    return f"Stored today's risk score of {done} site{'s' * (done != 1)}.", (refresh or 0) + 1


@callback(Output("portfolio-download", "data"), Input("portfolio-report-html", "n_clicks"),
          Input("portfolio-report-pdf", "n_clicks"), State("portfolio-risk-site", "data"), prevent_initial_call=True)
def report(n_html, n_pdf, site):
    """The chosen site's evaluation report (oversight.evaluation), as HTML or PDF."""
    from sitetwin.dashboards.regulator import evaluation_report

    if not site or not (n_html or n_pdf):
        raise dash.exceptions.PreventUpdate
    name, data = evaluation_report(site, "pdf" if ctx.triggered_id == "portfolio-report-pdf" else "html")
    return dcc.send_bytes(data, name)


dash.register_page(__name__, path="/portfolio", name="Portfolio", title="sitetwin · portfolio", order=6,
                   layout=layout)
