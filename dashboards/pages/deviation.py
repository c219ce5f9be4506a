"""Deviation: where the building differs from the design in one survey: plan heatmap, histograms,
tolerance per class, the worst elements and the unplanned objects, filtered by storey and class."""

from __future__ import annotations

import dash
from dash import ALL, Input, Output, State, ctx, dcc, html

from sitetwin.dashboards import components as c
from sitetwin.dashboards import inputs as i
from sitetwin.dashboards.access import site_store
from sitetwin.dashboards.callbacks import callback
from sitetwin.dashboards.pages._labels import cell, columns, label, num, page_title, site_tz, when
from sitetwin.data.i18n import LANGUAGES, N_, Translator, current_language, format_percent, use_language

_ = Translator("dashboards.pages")
NAME = N_("Deviation")
HEAT_POINTS = 200_000          # scan points read for the heatmap and histogram (evenly thinned)
DEFAULT_TOLERANCE_MM = 8.0     # GB 50204 axis position, when the survey does not record its own
REGISTRATIONS = ("auto", "none")
REGISTRATION_LABELS = (N_("automatic"), N_("none (already in the site frame)"))

i.declare({
    "deviation-site.data": i.optional(i.site_code), "deviation-want-survey.data": i.optional(i.text(i.LABEL_MAX)),
    "deviation-survey.value": i.optional(i.object_id),
    "deviation-storeys.value": i.optional(i.list_of(i.text(i.TITLE_MAX, required=True))),
    "deviation-classes.value": i.optional(i.list_of(i.object_id)),
    "deviation-inbox.value": i.optional(i.list_of(i.text(i.TITLE_MAX, required=True), max_len=100)),
    "deviation-epoch.value": i.optional(i.day(blank_ok=True)),
    "deviation-register.value": i.optional(i.one_of(REGISTRATIONS)),
    "deviation-lang.data": i.optional(i.one_of(LANGUAGES)),
})
i.declare_pattern("deviation-open", element=i.object_id, site=i.site_code)


def layout(site: str | None = None, survey: str | None = None, **query):
    from sitetwin.dashboards.app import default_site

    site = default_site(site)
    if site is None:
        return c.site_missing("deviation")
    return html.Div([
        dcc.Store(id="deviation-site", data=site),
        dcc.Store(id="deviation-want-survey", data=survey),
        dcc.Store(id="deviation-lang", data=current_language()),     # the background job reads in it
        dcc.Download(id="deviation-download"),
        html.H1(_("Deviation from the design")),
        html.Div([
            c.control(_("survey"), dcc.Dropdown(id="deviation-survey", clearable=False), wide=False),
            c.control(_("storeys"), dcc.Dropdown(id="deviation-storeys", multi=True, placeholder=_("all storeys"))),
            c.control(_("classes"), dcc.Dropdown(id="deviation-classes", multi=True, placeholder=_("all classes"))),
            html.Button(_("Download CSV"), id="deviation-csv", className="button secondary", n_clicks=0),
        ], className="controls"),
        html.Details([
            html.Summary(_("Add a survey from the scan inbox")),
            html.Div([
                c.control(_("scan files (in the store's inbox folder)"),
                          dcc.Dropdown(id="deviation-inbox", multi=True), wide=True),
                c.control(_("epoch (YYYY-MM-DD)"), dcc.Input(id="deviation-epoch", type="text",
                                                             placeholder="2026-05-16")),
                c.control(_("registration"), dcc.RadioItems(id="deviation-register", value="auto", inline=True,
                                                            options=[{"label": _(text), "value": v} for v, text in
                                                                     zip(REGISTRATIONS, REGISTRATION_LABELS)])),
                html.Button(_("Add survey"), id="deviation-add", className="button", n_clicks=0),
                html.Button(_("Cancel"), id="deviation-add-cancel", className="button secondary", n_clicks=0),
            ], className="controls"),
            html.Progress(id="deviation-add-progress", value="0", max="6"),
            html.Span(id="deviation-add-step", className="status-line"),
            html.Div(id="deviation-add-msg", className="status-line"),
        ], id="deviation-add-box", className="card"),
        html.Div(id="deviation-body"),
    ])


@callback(Output("deviation-survey", "options"), Output("deviation-survey", "value"),
          Output("deviation-storeys", "options"), Output("deviation-classes", "options"),
          Output("deviation-inbox", "options"),
          Input("deviation-site", "data"), State("deviation-want-survey", "data"))
def setup(site, want):
    from sitetwin.dashboards import queries as q
    from sitetwin.dashboards.jobs import inbox_files_for

    with site_store(site) as store:
        tz = site_tz(store, site)
        surveys = q.surveys(store, site)
        storeys = q.storeys(store, site)
        classes = q.ifc_classes(store, site)
    inbox = inbox_files_for(site)         # only to those who may add a survey: the inbox is the store's, not the site's
    options = _survey_options(surveys, tz)
    ids = [s["survey_id"] for s in surveys]
    value = want if want in ids else (ids[-1] if ids else None)
    return options, value, [s["name"] for s in storeys], classes, inbox


@callback(Output("deviation-add-msg", "children"), Output("deviation-survey", "options", allow_duplicate=True),
          Output("deviation-survey", "value", allow_duplicate=True),
          Input("deviation-add", "n_clicks"), State("deviation-inbox", "value"), State("deviation-epoch", "value"),
          State("deviation-register", "value"), State("deviation-site", "data"), State("deviation-lang", "data"),
          background=True, prevent_initial_call=True,
          progress=[Output("deviation-add-progress", "value"), Output("deviation-add-progress", "max"),
                    Output("deviation-add-step", "children")],
          running=[(Output("deviation-add", "disabled"), True, False)],
          cancel=[Input("deviation-add-cancel", "n_clicks")])
def add_survey(set_progress, n, files, epoch, register, site, lang=None):
    """Register and analyse scans from the inbox in a background job (twin's add_survey), with progress.
    The job runs outside the page's request: it reads in the language the page was shown in."""
    if not n:
        raise dash.exceptions.PreventUpdate
    with use_language(lang or current_language()):
        return _add_survey(set_progress, files, epoch, register, site)


def _add_survey(set_progress, files, epoch, register, site):
    from sitetwin.dashboards import queries as q
    from sitetwin.dashboards.jobs import add_survey_from_inbox

    result = add_survey_from_inbox(site, files or [], epoch=epoch, register=register or "auto",
                                   progress=lambda done, total, msg: set_progress((str(done), str(total), msg)))
    with site_store(site) as store:
        tz = site_tz(store, site)
        surveys = q.surveys(store, site)
    options = _survey_options(surveys, tz)
    counts = ", ".join(f"{num(v)} {label('element_status', k)}" for k, v in result["statuses"].items())
    msg = (_("survey {survey}", survey=result["survey_id"])
           + (_(" (already added)") if result["reused"] else "")
           + _(": {points} points, fitness {fitness}, RMSE {rmse} m; {counts} ({seconds} s)",
               points=num(result["points"]), fitness=num(result["fitness"], 3), rmse=num(result["rmse_m"], 4),
               counts=counts, seconds=num(result["seconds"], 0)))
    return html.Span(msg, id="deviation-add-result"), options, result["survey_id"]


def _survey_options(surveys, tz):
    """The survey dropdown: newest first, labelled by epoch, id and status (the value is the id)."""
    return [{"label": f"{when(s['epoch'], tz)} · {s['survey_id']} ({label('survey_status', s['status'])})",
             "value": s["survey_id"]} for s in reversed(surveys)]


@callback(Output("deviation-body", "children"), Output("shell-state", "data", allow_duplicate=True),
          Input("deviation-survey", "value"), Input("deviation-storeys", "value"), Input("deviation-classes", "value"),
          State("deviation-site", "data"), prevent_initial_call=True)
def fill(survey_id, storeys, classes, site):
    from sitetwin.dashboards import figures as f
    from sitetwin.dashboards import queries as q
    from sitetwin.dashboards.scene import to_wire

    if not survey_id:
        return c.empty(_("No scan survey for this site yet: add one with `sitetwin survey add` to see how the "
                         "building deviates from the design."), id="deviation-empty"), {"survey": None}
    with site_store(site) as store:
        survey_id = q.survey_in_site(store, site, survey_id)
        if survey_id is None:
            raise dash.exceptions.PreventUpdate
        frame = q.deviation_table(store, site, survey_id, storeys=storeys, classes=classes)
        tolerances = q.survey_tolerances(store, survey_id)
        objects = q.unplanned_objects(store, site, survey_id)
        points = _points(store, survey_id)
        row = next((s for s in q.surveys(store, site) if s["survey_id"] == survey_id), None)
    chosen = set(frame["global_id"].tolist())
    if points is not None and len(points):
        pts = points[points["global_id"].isin(chosen)] if (storeys or classes) else points[points["element"] >= 0]
        xc, yc, mean, _count = f.deviation_grid(pts["x_m"].to_numpy(), pts["y_m"].to_numpy(),
                                           pts["distance_m"].to_numpy() * 1000.0)
        heat = to_wire(f.heatmap_figure(xc, yc, mean))
        hist = to_wire(f.distance_histogram(pts["distance_m"].to_numpy() * 1000.0))
    else:
        heat = hist = f.empty_figure(_("This survey's per-point file is missing: add the survey again."))
    tol = f.tolerance_table(frame, tolerances, DEFAULT_TOLERANCE_MM)
    worst = f.worst_elements(frame)
    summary = [html.Div([html.H2(_("Survey")), survey_summary(row)], className="card wide")] if row else []
    body = html.Div([
        *summary,
        html.Div([html.Div([html.H2(_("Plan heatmap (mean signed distance per 0.5 m cell)")),
                            dcc.Graph(id="deviation-heatmap", figure=heat, style={"height": "420px"})],
                           className="card"),
                  html.Div([html.H2(_("Signed distance of scan points")),
                            dcc.Graph(id="deviation-histogram", figure=hist, style={"height": "200px"}),
                            html.H2(_("Element mean deviation by class")),
                            dcc.Graph(id="deviation-class-histogram", figure=f.element_deviation_histogram(frame),
                                      style={"height": "200px"})], className="card")], className="grid"),
        html.Div([
            html.Div([html.H2(_("Tolerance per class")), c.table(tol, columns([
                ("ifc_class", N_("class")), ("tolerance_mm", N_("tolerance (mm)")), ("elements", N_("elements")),
                ("measured", N_("measured")), ("within_pct", N_("within tolerance (%)")),
                ("out_of_tolerance", N_("out of tolerance")), ("median_p95_mm", N_("median p95 (mm)")),
                ("worst_p95_mm", N_("worst p95 (mm)"))]), id="deviation-tolerance", cell=lambda k, r: cell(r.get(k)))
                if tol else c.empty(_("No element on the chosen storeys and classes."))], className="card"),
            html.Div([html.H2(_("Worst elements")), _worst(worst, site)], className="card"),
            html.Div([html.H2(_("Unplanned objects ({n})", n=num(len(objects)))), c.table(objects, columns([
                ("object_id", "#"), ("points", N_("points")), ("centroid_x_m", "x (m)"), ("centroid_y_m", "y (m)"),
                ("centroid_z_m", "z (m)"), ("size_x_m", "dx (m)"), ("size_y_m", "dy (m)"), ("size_z_m", "dz (m)"),
                ("nearest_global_id", N_("nearest element"))]), id="deviation-unplanned",
                cell=lambda k, r: cell(r.get(k), 2)) if objects else c.empty(
                _("No unplanned objects: every scan point lies near a model element."))], className="card"),
        ], className="grid"),
    ])
    return body, {"survey": survey_id}


def survey_summary(s: dict) -> html.Dl:
    """How the survey was placed: registration, fit, points, and where they apply the CRS its files declared,
    the similarity fit's scale (± its relative 1-sigma) and the offset between georeference and refined pose."""
    pairs = [(_("registration"), label("registration", s.get("registration_method"))),
             (_("points"), num(s.get("point_count"))),
             (_("fitness"), num(s.get("fitness"), 3) if s.get("fitness") is not None else None),
             (_("RMSE (m)"), num(s.get("rmse_m"), 4) if s.get("rmse_m") is not None else None),
             (_("coordinate reference system"), s.get("crs") or _("none declared"))]
    if s.get("scale") is not None:
        sigma = s.get("scale_sigma")
        pairs.append((_("scale"), num(s["scale"], 5) + (
            " ± " + format_percent(sigma, 3) if sigma is not None else "")))
    if s.get("georef_offset_m") is not None:
        pairs.append((_("georeference vs refined pose"), _(
            "{m} m, {deg}°", m=num(s["georef_offset_m"], 3),
            deg=num(s.get("georef_offset_deg"), 3) if s.get("georef_offset_deg") is not None else "–")))
    return c.facts(pairs, id="deviation-survey-summary")


def _points(store, survey_id):
    from sitetwin.twin.errors import SurveyError
    from sitetwin.twin.survey_store import survey_points

    try:
        return survey_points(store, survey_id, columns=["x_m", "y_m", "distance_m", "element", "global_id"],
                             max_points=HEAT_POINTS)
    except SurveyError:
        return None


def _worst(rows, site):
    if not rows:
        return c.empty(_("No measured element on the chosen storeys and classes."))

    def show(k, r):
        if k == "open":
            return html.Button("3D", id={"type": "deviation-open", "element": r["global_id"], "site": site}, n_clicks=0,
                               className="button secondary", title=_("open in the 3D twin"))
        if k == "status":
            return label("element_status", r.get(k))
        return cell(r.get(k), 1)

    return c.table(rows, columns([("global_id", N_("element")), ("ifc_class", N_("class")), ("storey", N_("storey")),
                                  ("status", N_("status")), ("mean_mm", N_("mean (mm)")), ("p95_mm", N_("p95 (mm)")),
                                  ("open", "")]), id="deviation-worst", cell=show)


@callback(Output("shell-url", "href", allow_duplicate=True),
          Input({"type": "deviation-open", "element": ALL, "site": ALL}, "n_clicks"), prevent_initial_call=True)
def open_in_twin(clicks):
    """A worst element's 3D button opens the 3D twin on it."""
    return c.twin_href(ctx.triggered_id, clicks, "deviation")


@callback(Output("deviation-download", "data"), Input("deviation-csv", "n_clicks"),
          State("deviation-survey", "value"), State("deviation-storeys", "value"),
          State("deviation-classes", "value"), State("deviation-site", "data"), prevent_initial_call=True)
def download(n, survey_id, storeys, classes, site):
    from sitetwin.dashboards import queries as q

    if not n or not survey_id:
        raise dash.exceptions.PreventUpdate
    with site_store(site) as store:
        survey_id = q.survey_in_site(store, site, survey_id)
        if survey_id is None:
            raise dash.exceptions.PreventUpdate
        frame = q.deviation_table(store, site, survey_id, storeys=storeys, classes=classes)
    return dcc.send_data_frame(frame.to_csv, f"{site}-{survey_id}-deviation.csv", index=False)


dash.register_page(__name__, path="/deviation", name=NAME, title=page_title(N_("deviation")), order=2,
                   layout=layout)
