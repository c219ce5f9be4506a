"""Hazards and detections: when hazards happened, where (storeys, elements), of which kinds, with the
evidence crops the detectors saved, and what the detectors saw overall."""

from __future__ import annotations

import dash
from dash import ALL, Input, Output, State, ctx, dcc, html

from sitetwin.dashboards import components as c
from sitetwin.dashboards import inputs as i
from sitetwin.dashboards.access import site_store
from sitetwin.dashboards.callbacks import callback
from sitetwin.dashboards.pages._labels import cell, columns, label, num, page_title, severity, site_tz, when
from sitetwin.data.i18n import N_, Translator

_ = Translator("dashboards.pages")
NAME = N_("Hazards")
SEVERITY_FIGURES = (("critical", N_("critical")), ("high", N_("high")), ("medium", N_("medium")), ("low", N_("low")))
EVIDENCE_SHOWN = 12

i.declare({
    "hazards-site.data": i.optional(i.site_code), "hazards-refresh.data": i.optional(i.count),
    "hazards-rules.value": i.optional(i.list_of(i.object_id)),
    "hazards-storeys.value": i.optional(i.list_of(i.text(i.TITLE_MAX, required=True))),
})
i.declare_pattern("hazards-raise", hazard=i.object_id)
i.declare_pattern("hazards-open", element=i.object_id, site=i.site_code)


def layout(site: str | None = None, **query):
    from sitetwin.dashboards.app import default_site

    site = default_site(site)
    if site is None:
        return c.site_missing("hazards")
    return html.Div([
        dcc.Store(id="hazards-site", data=site),
        dcc.Store(id="hazards-refresh", data=0),
        html.H1(_("Hazards and detections")),
        html.Div([c.control(_("hazard types"), dcc.Dropdown(id="hazards-rules", multi=True,
                                                             placeholder=_("all types"))),
                  c.control(_("storeys"), dcc.Dropdown(id="hazards-storeys", multi=True,
                                                        placeholder=_("all storeys")))],
                 className="controls"),
        html.Div(id="hazards-summary", className="figures"),
        html.Div([
            html.Div([html.H2(_("Timeline")), dcc.Graph(id="hazards-timeline", style={"height": "300px"})],
                     className="card wide"),
            html.Div([html.H2(_("Per storey")), dcc.Graph(id="hazards-storey-counts", style={"height": "260px"})],
                     className="card"),
            html.Div([html.H2(_("Hazard types")), dcc.Graph(id="hazards-types", style={"height": "260px"})],
                     className="card"),
            html.Div([html.H2(_("What the detectors saw")),
                      dcc.Graph(id="hazards-detections", style={"height": "260px"})],
                     className="card"),
            html.Div([html.H2(_("Evidence")), html.Div(id="hazards-finding-msg", className="status-line"),
                      html.Div(id="hazards-evidence", className="evidence")], className="card wide"),
            html.Div([html.H2(_("Elements involved")), html.Div(id="hazards-elements")], className="card wide"),
        ], className="grid"),
    ])


@callback(Output("hazards-rules", "options"), Output("hazards-storeys", "options"), Input("hazards-site", "data"))
def setup(site):
    from sitetwin.dashboards import queries as q

    with site_store(site) as store:
        rules = [{"label": label("rule", r), "value": r} for r in q.hazard_rules(store, site)]
        return rules, [s["name"] for s in q.storeys(store, site)]


@callback(Output("hazards-summary", "children"), Output("hazards-timeline", "figure"),
          Output("hazards-storey-counts", "figure"), Output("hazards-types", "figure"),
          Output("hazards-detections", "figure"), Output("hazards-evidence", "children"),
          Output("hazards-elements", "children"),
          Input("hazards-site", "data"), Input("hazards-rules", "value"), Input("hazards-storeys", "value"),
          Input("hazards-refresh", "data"))
def fill(site, rules, storeys, refresh=None):
    from sitetwin.dashboards import figures as f
    from sitetwin.dashboards import queries as q

    with site_store(site) as store:
        tz = site_tz(store, site)
        timeline = q.hazard_timeline(store, site, rules=rules, storeys=storeys)
        per_storey = q.hazard_counts(store, site, "storey", rules=rules, storeys=storeys)
        per_rule = q.hazard_counts(store, site, "rule", rules=rules, storeys=storeys)
        per_severity = q.hazard_counts(store, site, "severity", rules=rules, storeys=storeys)
        detections = q.detection_counts(store, site)
        evidence = q.hazards_with_evidence(store, site, rules=rules, storeys=storeys, limit=EVIDENCE_SHOWN)
        elements = q.hazard_elements(store, site, rules=rules, storeys=storeys)
        linked = q.hazard_findings(store, site, [r["hazard_id"] for r in evidence])
    total = sum(r["hazards"] for r in per_rule)
    sev = {r["key"]: r["hazards"] for r in per_severity}
    summary = [c.figure_num(num(total), _("hazards"), id="hazards-total"),
               *[c.figure_num(num(sev.get(s, 0)), _(text)) for s, text in SEVERITY_FIGURES],
               c.figure_num(num(sum(r["detections"] for r in detections)), _("detections"),
                            id="hazards-detection-total")]
    if not total and not detections:
        empty = f.empty_figure(_("No detections for this site yet: run a detector with `sitetwin detect`."))
        return (summary, empty, empty, empty, empty,
                c.empty(_("No hazards: nothing has been detected on this site yet."), id="hazards-empty"), "")
    timeline = [{**r, "rule": label("rule", r["rule"])} for r in timeline]
    per_rule = [{**r, "key": label("rule", r["key"])} for r in per_rule]
    detections = [{**r, "key": label("detection", r["key"])} for r in detections]
    return (summary, f.timeline_figure(timeline), f.counts_figure(per_storey, "hazards", ""),
            f.counts_figure(per_rule, "hazards", ""), f.counts_figure(detections, "detections", ""),
            _evidence(evidence, linked, site, tz), _elements(elements, site, tz))


def _evidence(rows, linked=None, site=None, tz=None):
    if not rows:
        return c.empty(_("No evidence crops saved for these hazards."))
    linked = linked or {}
    return [html.Figure([html.Img(src=f"/media/evidence/{r['hazard_id']}/0", alt=label("rule", r["rule"]),
                                  id={"type": "hazards-crop", "hazard": r["hazard_id"]}),
                         html.Figcaption([severity(r["severity"]),
                                          f" {label('rule', r['rule'])} · {when(r['started_at'], tz)}"
                                          + (f" · {r['storey']}" if r.get("storey") else ""), html.Br(),
                                          _finding_link(r["hazard_id"], linked.get(r["hazard_id"]), site)])])
            for r in rows]


def _finding_link(hazard_id, finding, site):
    """The hazard's finding (a link to it on the findings page), or a button raising one from the hazard."""
    from urllib.parse import urlencode

    if finding:
        return dcc.Link(_("finding {ref} ({status})", ref=finding["ref"],
                          status=label("finding_status", finding["status"])),
                        href="/findings?" + urlencode({"site": site, "finding": finding["finding_id"]}),
                        id={"type": "hazards-finding-link", "hazard": hazard_id})
    return html.Button(_("Raise a finding"), id={"type": "hazards-raise", "hazard": hazard_id}, n_clicks=0,
                       className="button secondary", title=_("raise a finding with this detection as evidence"))


def _elements(rows, site, tz=None):
    if not rows:
        return c.empty(_("No hazard is tagged to a model element."))

    def show(k, r):
        if k == "open":
            return html.Button("3D", id={"type": "hazards-open", "element": r["global_id"], "site": site}, n_clicks=0,
                               className="button secondary", title=_("open in the 3D twin"))
        if k == "rules":
            rules = r.get(k)
            rules = rules.split(",") if isinstance(rules, str) else list(rules or [])
            return ", ".join(label("rule", x.strip()) for x in rules)
        return cell(r.get(k), tz=tz)

    return c.table(rows, columns([("global_id", N_("element")), ("ifc_class", N_("class")), ("name", N_("name")),
                                  ("storey", N_("storey")), ("hazards", N_("hazards")), ("rules", N_("types")),
                                  ("last_seen", N_("last seen")), ("open", "")]),
                   id="hazards-element-table", cell=show)


@callback(Output("hazards-finding-msg", "children"), Output("hazards-refresh", "data"),
          Input({"type": "hazards-raise", "hazard": ALL}, "n_clicks"), State("hazards-refresh", "data"),
          prevent_initial_call=True)
def raise_from_hazard(clicks, refresh):
    """The hazard's finding: linked when it has one, else raised (regulators) with the detection as evidence."""
    from urllib.parse import urlencode

    from sitetwin.dashboards.regulator import raise_from_hazard as raise_it

    if not ctx.triggered_id or not any(clicks or []):
        raise dash.exceptions.PreventUpdate
    f = raise_it(ctx.triggered_id["hazard"])
    site = f["ref"].rsplit("-", 1)[0]
    link = dcc.Link(f["ref"], href="/findings?" + urlencode({"site": site, "finding": f["finding_id"]}),
                    id="hazards-finding-new")
    before, after = ((_("Finding "), _(" raised from the hazard.")) if f["raised"]
                     else (_("This hazard already has finding "), _(".")))
    return html.Span([before, link, after]), (refresh or 0) + 1


@callback(Output("shell-url", "href", allow_duplicate=True),
          Input({"type": "hazards-open", "element": ALL, "site": ALL}, "n_clicks"), prevent_initial_call=True)
def open_in_twin(clicks):
    return c.twin_href(ctx.triggered_id, clicks)


dash.register_page(__name__, path="/hazards", name=NAME, title=page_title(N_("hazards and detections")), order=5,
                   layout=layout)
