"""Progress: planned vs actual as an S-curve, completion per storey and per task, the late elements,
and a 4D playback of the schedule against what the surveys saw."""

from __future__ import annotations

import datetime as dt

import dash
from dash import ALL, Input, Output, State, ctx, dcc, html

from sitetwin.dashboards import components as c
from sitetwin.dashboards import inputs as i
from sitetwin.dashboards.access import site_store
from sitetwin.dashboards.callbacks import callback
from sitetwin.dashboards.pages._labels import cell, columns, label, num, page_title, site_tz, when
from sitetwin.data.i18n import N_, Translator

_ = Translator("dashboards.pages")
NAME = N_("Progress")
PLAYBACK_BUDGET = 60_000       # triangles per playback frame: most elements as boxes, so frames stay light
PLAY_INTERVAL_MS = 1200
DAYS_MAX = 10_000              # playback days (weeks of the schedule and survey epochs)

i.declare({
    "progress-site.data": i.optional(i.site_code), "progress-want-date.data": i.optional(i.text(i.LABEL_MAX)),
    "progress-days.data": i.optional(i.list_of(i.day(), max_len=DAYS_MAX)),
    "progress-day.value": i.optional(i.int_in(0, DAYS_MAX)), "progress-tick.disabled": i.optional(i.boolean),
})
i.declare_pattern("progress-open", element=i.object_id, site=i.site_code)


def layout(site: str | None = None, date: str | None = None, **query):
    # progress is reported at the latest survey (twin's report); ``date`` starts the 4D playback
    from sitetwin.dashboards.app import default_site

    site = default_site(site)
    if site is None:
        return c.site_missing("progress")
    return html.Div([
        dcc.Store(id="progress-site", data=site),
        dcc.Store(id="progress-want-date", data=date),
        dcc.Store(id="progress-days", data=[]),
        html.H1(_("Progress against the schedule")),
        html.Div(id="progress-summary", className="figures"),
        html.Div([
            html.Div([html.H2(_("S-curve")), dcc.Graph(id="progress-scurve", style={"height": "320px"})],
                     className="card"),
            html.Div([html.H2(_("By storey")), dcc.Graph(id="progress-storeys", style={"height": "320px"})],
                     className="card"),
            html.Div([html.H2(_("By task")), html.Div(id="progress-tasks")], className="card"),
            html.Div([html.H2(_("Late elements")), html.Div(id="progress-late")], className="card"),
            html.Div([
                html.H2(_("4D playback")),
                html.Div([html.Button(_("▶ Play"), id="progress-play", className="button", n_clicks=0),
                          html.Div(dcc.Slider(id="progress-day", min=0, max=0, step=1, value=0, marks={},
                                              updatemode="mouseup"), style={"flex": "1"}),
                          html.Span(id="progress-day-label", className="status-line")],
                         style={"display": "flex", "gap": "1rem", "alignItems": "center"}),
                dcc.Interval(id="progress-tick", interval=PLAY_INTERVAL_MS, disabled=True),
                dcc.Graph(id="progress-4d", style={"height": "480px"}, config={"displaylogo": False}),
            ], className="card wide"),
        ], className="grid"),
    ])


@callback(Output("progress-days", "data"), Output("progress-day", "max"), Output("progress-day", "marks"),
          Output("progress-day", "value"), Input("progress-site", "data"), State("progress-want-date", "data"))
def setup(site, want):
    """Playback days: every week of the schedule, plus the survey epochs (marked)."""
    from sitetwin.dashboards import queries as q

    with site_store(site) as store:
        epochs = [q._day(e["epoch"]) for e in q.survey_epochs(store, site)]
        span = q.schedule_dates(store, site)
    if span:
        first, last = span
        weeks = [first + dt.timedelta(days=7 * i) for i in range((last - first).days // 7 + 2)]
    else:
        weeks = epochs or [q.utcnow().date()]
    days, marks, start = c.day_slider(epochs, weeks, want)
    return [d.isoformat() for d in days], len(days) - 1, marks, start if want else 0


@callback(Output("progress-summary", "children"), Output("progress-scurve", "figure"),
          Output("progress-storeys", "figure"), Output("progress-tasks", "children"),
          Output("progress-late", "children"), Input("progress-site", "data"))
def fill(site):
    """Planned vs actual at the latest survey: twin's progress report, drawn."""
    from sitetwin.dashboards import figures as f
    from sitetwin.dashboards import queries as q

    with site_store(site) as store:
        tz = site_tz(store, site)
        prog = q.progress_report(store, site)
    if not prog.elements:
        msg = c.empty(_("No schedule linked to the model: import one with `sitetwin bim schedule` (or load an IFC "
                        "with a work schedule) to follow progress."), id="progress-empty")
        return msg, f.empty_figure(_("No schedule.")), f.empty_figure(_("No schedule.")), "", ""
    last = prog.surveys[-1] if prog.surveys else None
    still = [e for e in prog.late_elements if e["still_missing"]]
    if last:
        summary = [c.figure_num(num(100.0 * last["planned"] / prog.elements, 1), _("% planned done"),
                                id="progress-planned-pct"),
                   c.figure_num(num(100.0 * last["built"] / prog.elements, 1), _("% seen built"),
                                id="progress-actual-pct"),
                   c.figure_num(num(len(still)), _("elements still late"), id="progress-late-count"),
                   c.figure_num(num(len(prog.late_elements) - len(still)), _("built late")),
                   c.figure_num(num(prog.elements), _("scheduled elements")),
                   html.Div(_("at the survey of {epoch} ({survey})", epoch=when(last["epoch"], tz),
                              survey=last["survey_id"]), className="status-line")]
    else:
        summary = [c.figure_num(num(prog.elements), _("scheduled elements")),
                   c.empty(_("No analysed survey yet: actual progress needs a scan survey (`sitetwin survey add`)."),
                           id="progress-nosurvey")]
    tasks = c.table(list(prog.by_task), columns([
        ("task", N_("task")), ("planned_finish", N_("planned finish")), ("elements", N_("elements")),
        ("planned_pct", N_("planned (%)")), ("actual_pct", N_("built (%)")), ("late", N_("late"))]),
        id="progress-task-table", cell=lambda k, r: cell(r.get(k), tz=tz))
    return (summary, f.s_curve_figure(prog.s_curve, last["epoch"] if last else None),
            f.completion_figure(list(prog.by_storey), "storey"), tasks, _late(list(prog.late_elements), site, tz))


def _late(rows, site, tz=None):
    if not rows:
        return c.empty(_("No element is late against the schedule."), id="progress-late-empty")

    def show(k, r):
        if k == "open":
            return html.Button("3D", id={"type": "progress-open", "element": r["global_id"], "site": site}, n_clicks=0,
                               className="button secondary", title=_("open in the 3D twin"))
        if k == "latest_status":
            return label("element_status", r.get(k))
        return cell(r.get(k), tz=tz)

    return c.table(rows[:25], columns([("global_id", N_("element")), ("ifc_class", N_("class")),
                                       ("storey", N_("storey")), ("task", N_("task")),
                                       ("planned_finish", N_("planned finish")), ("days_late", N_("days late")),
                                       ("first_built_epoch", N_("seen built")),
                                       ("latest_status", N_("latest status")), ("open", "")]),
                   id="progress-late-table", cell=show)


@callback(Output("shell-url", "href", allow_duplicate=True),
          Input({"type": "progress-open", "element": ALL, "site": ALL}, "n_clicks"), prevent_initial_call=True)
def open_in_twin(clicks):
    return c.twin_href(ctx.triggered_id, clicks, "schedule")


@callback(Output("progress-tick", "disabled"), Output("progress-play", "children"),
          Input("progress-play", "n_clicks"), State("progress-tick", "disabled"), prevent_initial_call=True)
def play(n, disabled):
    playing = bool(disabled)      # it was stopped: start it
    return not playing, _("❚❚ Pause") if playing else _("▶ Play")


@callback(Output("progress-day", "value", allow_duplicate=True),
          Output("progress-tick", "disabled", allow_duplicate=True),
          Output("progress-play", "children", allow_duplicate=True),
          Input("progress-tick", "n_intervals"), State("progress-day", "value"), State("progress-days", "data"),
          prevent_initial_call=True)
def advance(_n, value, days):
    nxt = int(value or 0) + 1
    if nxt >= len(days or []):
        return dash.no_update, True, _("▶ Play")
    return nxt, dash.no_update, dash.no_update


@callback(Output("progress-4d", "figure"), Output("progress-day-label", "children"),
          Output("shell-state", "data", allow_duplicate=True),
          Input("progress-day", "value"), Input("progress-days", "data"), State("progress-site", "data"),
          prevent_initial_call=True)
def frame(index, days, site):
    """One frame of the 4D playback: the model coloured by its schedule state on the day."""
    from sitetwin.dashboards.scene import to_wire
    from sitetwin.dashboards.twin_view import TwinParams, read_twin, twin_figure

    if not days:
        raise dash.exceptions.PreventUpdate
    day = dt.date.fromisoformat(days[min(int(index or 0), len(days) - 1)])
    p = TwinParams(site=site, mode="schedule", day=day, points=False, sensors=False, budget=PLAYBACK_BUDGET)
    with site_store(site) as store:
        data = read_twin(store, p)
    fig, _stats = twin_figure(data, p)
    fig = to_wire(fig)
    fig["layout"]["uirevision"] = f"progress:{site}"
    counts = {}
    for v in data.values.tolist():
        counts[v] = counts.get(v, 0) + 1
    text = f"{day}: " + ", ".join(f"{num(counts[k])} {label('legend', k)}" for k in data.order if counts.get(k))
    return fig, text, {"date": day.isoformat()}


dash.register_page(__name__, path="/progress", name=NAME, title=page_title(N_("progress")), order=3, layout=layout)
