"""3D twin: the model coloured by class, storey, status, deviation or schedule state on a day, with the
scan points, the site's sensors, a storey filter and a section box; click an element for its card.

The model is drawn by the WebGL viewer (``dashboards/viewer_src``, bundled into
``assets/sitetwin-viewer.js`` and loaded on this page only): every element in full from the site's
geometry buffers, recoloured per element from ``/viewer/<site>/colours.json``. Where the browser has no
WebGL 2 (or ``?view=plotly``), the plotly overview below draws it instead, with a message saying why."""

from __future__ import annotations

import datetime as dt

import dash
from dash import Input, Output, Patch, State, dcc, html

from sitetwin.dashboards import cards  # noqa: F401  (the element card's own callbacks)
from sitetwin.dashboards import components as c
from sitetwin.dashboards import inputs as i
from sitetwin.dashboards.access import site_store
from sitetwin.dashboards.callbacks import callback, clientside_callback
from sitetwin.dashboards.pages._labels import label, num, page_title, site_tz, when
from sitetwin.data.i18n import N_, Translator

_ = Translator("dashboards.pages")
NAME = N_("3D twin")
MODE_LABELS = {"class": N_("IFC class"), "storey": N_("storey"), "status": N_("as-built status"),
               "deviation": N_("deviation"), "schedule": N_("schedule on the day")}
BUDGETS = {N_("overview (60k triangles)"): 60_000, N_("balanced (150k)"): 150_000, N_("fine (400k)"): 400_000,
           N_("full (2M)"): 2_000_000}
BUDGET_MIN = 1_000            # triangles: the least detail a budget may ask for
LAYERS = ("points", "sensors", "section", "see-through")
LAYER_LABELS = (N_("scan points"), N_("sensors"), N_("section box"), N_("unbuilt see-through"))
DAYS_MAX = 10_000          # days on the slider (survey epochs and the schedule's finish days)
RENDERERS = ("webgl", "plotly", "none")     # the WebGL viewer; plotly asked for (?view=plotly); no WebGL: plotly
VIEWER_SCRIPT = "sitetwin-viewer.js"     # in assets/, left out of every page (app.py): this one and /panoramas load it
VIEWER_TEXT = {"loading": N_("Loading the model's geometry…"),
               "status": N_("{n} elements, every one in full: {triangles} triangles drawn ({ghosts} not built yet, "
                            "drawn see-through)"),
               "error": N_("The 3D viewer could not show the model: {error}")}

i.declare({
    "twin-site.data": i.optional(i.site_code), "twin-element.data": i.optional(i.object_id),
    "twin-want-date.data": i.optional(i.text(i.LABEL_MAX)),     # from the URL: day_slider ignores one not a day
    "twin-dates.data": i.optional(i.list_of(i.day(), max_len=DAYS_MAX)),
    "twin-figure-key.data": i.optional(i.object_id), "twin-drawn.data": i.optional(i.object_id),
    "twin-renderer.data": i.optional(i.one_of(RENDERERS)),
    "twin-mode.value": i.one_of(MODE_LABELS), "twin-date.value": i.optional(i.int_in(0, DAYS_MAX)),
    "twin-storeys.value": i.optional(i.list_of(i.text(i.TITLE_MAX, required=True))),
    "twin-layers.value": i.optional(i.list_of(i.one_of(LAYERS))),
    "twin-section-x.value": i.optional(i.span()), "twin-section-y.value": i.optional(i.span()),
    "twin-section-z.value": i.optional(i.span()), "twin-budget.value": i.int_in(BUDGET_MIN, max(BUDGETS.values())),
    "twin-graph.clickData": i.optional(i.record(
        points=i.list_of(i.record(curveNumber=i.optional(i.int_in(0, 10**6)),
                                  pointNumber=i.optional(i.int_in(0, 10**9)), extra=True), min_len=1, max_len=100),
        required=("points",), extra=True)),
})


def layout(site: str | None = None, element: str | None = None, mode: str | None = None, date: str | None = None,
           view: str | None = None, **query):
    from sitetwin.dashboards.app import default_site

    site = default_site(site)
    if site is None:
        return c.site_missing("twin")
    return html.Div([
        dcc.Store(id="twin-site", data=site),
        dcc.Store(id="twin-element", data=element),
        dcc.Store(id="twin-dates", data=[]),
        dcc.Store(id="twin-want-date", data=date),
        dcc.Store(id="twin-figure-key"),
        dcc.Store(id="twin-drawn"),
        dcc.Store(id="twin-renderer", data="plotly" if view == "plotly" else None),
        dcc.Store(id="twin-viewer-config", data=viewer_config()),
        html.Div([
            c.control(_("colour by"), dcc.RadioItems(id="twin-mode", options=[{"label": _(v), "value": k}
                                                                              for k, v in MODE_LABELS.items()],
                                                     value=mode if mode in MODE_LABELS else "status", inline=True)),
            c.control(_("day (survey epochs marked)"), dcc.Slider(id="twin-date", min=0, max=0, step=1, value=0,
                                                              marks={}, included=False, updatemode="mouseup"),
                      wide=True),
            html.Div(id="twin-date-label", className="status-line"),
        ], className="controls"),
        html.Div([
            c.control(_("storeys"), dcc.Dropdown(id="twin-storeys", multi=True, placeholder=_("all storeys"))),
            c.control(_("layers"), dcc.Checklist(id="twin-layers", value=["points", "sensors"], inline=True,
                                                 options=[{"label": _(text), "value": v}
                                                          for v, text in zip(LAYERS, LAYER_LABELS)])),
            c.control(_("section x (m)"), dcc.RangeSlider(id="twin-section-x", min=0, max=1, value=[0, 1], marks=None,
                                                       tooltip={"placement": "bottom"}, updatemode="mouseup")),
            c.control(_("section y (m)"), dcc.RangeSlider(id="twin-section-y", min=0, max=1, value=[0, 1], marks=None,
                                                       tooltip={"placement": "bottom"}, updatemode="mouseup")),
            c.control(_("section z (m)"), dcc.RangeSlider(id="twin-section-z", min=0, max=1, value=[0, 1], marks=None,
                                                       tooltip={"placement": "bottom"}, updatemode="mouseup")),
            html.Div(c.control(_("detail"), dcc.Dropdown(id="twin-budget", clearable=False, value=60_000,
                                                         options=[{"label": _(k), "value": v}
                                                                  for k, v in BUDGETS.items()])),
                     id="twin-budget-box"),        # the plotly overview's triangle budget: hidden for the viewer
        ], className="controls"),
        html.Div([
            html.Div([html.Div(_("This browser cannot draw with WebGL 2 (it is turned off or the graphics driver "
                                 "is blocked): the model is shown as the plotly overview below, with boxes for "
                                 "small elements. Turn on hardware acceleration for the full 3D viewer."),
                               id="twin-webgl-missing", className="notice", style=HIDDEN),
                      html.Div(id="twin-viewer", className="twin-viewer", style=HIDDEN),
                      html.Div([html.Div(id="twin-legend", className="legend"),
                                dcc.Loading(dcc.Graph(id="twin-graph", style={"height": "70vh"},
                                                      config={"displaylogo": False, "scrollZoom": True}),
                                            delay_show=400)], id="twin-plotly", style=HIDDEN),
                      html.Div(id="twin-view-status", className="status-line"),
                      html.Div(id="twin-layers-status", className="status-line")], className="card"),
            html.Div(c.empty(_("Click an element in the model to see its card."), id="twin-card-empty"),
                     id="twin-card", className="card element-card"),
        ], className="grid-2"),
    ])


HIDDEN = {"display": "none"}


def viewer_config() -> dict:
    """What the viewer script needs: where it is (its hash makes a rebuilt bundle a new address), the
    routes' prefix, the ids it writes to, and its texts in the reader's language."""
    return {"script": bundle_url(),
            "prefix": dash.get_relative_path("/viewer/"), "statusId": "twin-view-status",
            "elementStore": "twin-element", "height": "70vh", "text": {k: _(v) for k, v in VIEWER_TEXT.items()},
            "modes": list(MODE_LABELS)}


def bundle_url() -> str:
    """The viewer bundle's address (its sources hash makes a rebuilt bundle a new address); the pages that
    show the viewer (this one, the panorama page) load it themselves: no other page does."""
    return dash.get_asset_url(VIEWER_SCRIPT) + "?v=" + _bundle_version()


def _bundle_version() -> str:
    """The sources hash on the bundle's first line (short), read once."""
    global _VERSION
    if _VERSION is None:
        from pathlib import Path

        path = Path(__file__).resolve().parents[1] / "assets" / VIEWER_SCRIPT
        try:
            with open(path, encoding="utf-8") as f:
                first = f.readline()
            _VERSION = first.split("sources-sha256:", 1)[1][:12] if "sources-sha256:" in first else "0"
        except OSError:
            _VERSION = "0"
    return _VERSION


_VERSION: str | None = None


# Which view draws the model: the WebGL viewer where the browser has WebGL 2, else the plotly overview
# with a message; ?view=plotly asks for the plotly overview.
clientside_callback(
    """
    function(site, asked) {
        const hide = {display: 'none'}, show = {};
        let gl = false;
        if (asked !== 'plotly') {
            try { gl = !!document.createElement('canvas').getContext('webgl2'); } catch (e) { gl = false; }
        }
        const renderer = asked === 'plotly' ? 'plotly' : (gl ? 'webgl' : 'none');
        return [renderer, renderer === 'webgl' ? hide : show, renderer === 'webgl' ? show : hide,
                renderer === 'none' ? show : hide, renderer === 'webgl' ? hide : show];
    }
    """,
    Output("twin-renderer", "data"), Output("twin-plotly", "style"), Output("twin-viewer", "style"),
    Output("twin-webgl-missing", "style"), Output("twin-budget-box", "style"),
    Input("twin-site", "data"), State("twin-renderer", "data"),
)


# The WebGL viewer follows every control: its script is loaded once (on this page only), then shown the
# state; it fetches what changed (geometry once, colours per mode and day) and writes picks to twin-element.
clientside_callback(
    """
    function(renderer, mode, dayIndex, days, storeys, layers, sx, sy, sz, element, site, config) {
        if (renderer !== 'webgl' || !site || !config) { return; }
        layers = layers || [];
        const day = days && days.length ? days[Math.min(dayIndex || 0, days.length - 1)] : null;
        const section = layers.includes('section') && sx && sy && sz
            ? {lo: [sx[0], sy[0], sz[0]], hi: [sx[1], sy[1], sz[1]]} : null;
        const state = {site, mode, day, storeys: storeys || [], section, element: element || null,
                       points: layers.includes('points'), sensors: layers.includes('sensors')};
        const load = window.sitetwinViewer ? Promise.resolve() : (window._sitetwinViewerScript ||
            (window._sitetwinViewerScript = new Promise((resolve, reject) => {
                const s = document.createElement('script');
                s.src = config.script; s.onload = resolve;
                s.onerror = () => reject(new Error('viewer script ' + config.script));
                document.head.appendChild(s);
            })));
        const fallback = (err) => {
            console.warn('sitetwin viewer:', err);
            const dc = window.dash_clientside;
            if (!window.sitetwinViewer || !window.sitetwinViewer.session('twin-viewer')) {
                dc.set_props('twin-viewer', {style: {display: 'none'}});
                dc.set_props('twin-plotly', {style: {}});
                dc.set_props('twin-webgl-missing', {style: {}});
                dc.set_props('twin-budget-box', {style: {}});
                dc.set_props('twin-renderer', {data: 'none'});
            }
        };
        load.then(() => window.sitetwinViewer.show('twin-viewer', config, state)).catch(fallback);
    }
    """,
    Input("twin-renderer", "data"), Input("twin-mode", "value"), Input("twin-date", "value"),
    Input("twin-dates", "data"), Input("twin-storeys", "value"), Input("twin-layers", "value"),
    Input("twin-section-x", "value"), Input("twin-section-y", "value"), Input("twin-section-z", "value"),
    Input("twin-element", "data"), State("twin-site", "data"), State("twin-viewer-config", "data"),
)


@callback(Output("twin-dates", "data"), Output("twin-date", "max"), Output("twin-date", "marks"),
          Output("twin-date", "value"), Output("twin-storeys", "options"),
          Output("twin-section-x", "min"), Output("twin-section-x", "max"), Output("twin-section-x", "value"),
          Output("twin-section-y", "min"), Output("twin-section-y", "max"), Output("twin-section-y", "value"),
          Output("twin-section-z", "min"), Output("twin-section-z", "max"), Output("twin-section-z", "value"),
          Input("twin-site", "data"), State("twin-want-date", "data"))
def setup(site, want):
    """Days for the slider (survey epochs, labelled, and the schedule's finish dates), storeys, model extent."""
    from sitetwin.dashboards import queries as q
    with site_store(site) as store:
        epochs = [q._day(e["epoch"]) for e in q.survey_epochs(store, site)]
        plan = q.planned_elements(store, site)
        storeys = q.storeys(store, site)
        bounds = q.model_extent(store, site)
    days, marks, value = c.day_slider(epochs, [r["planned_finish"] for r in plan], want)
    (x0, y0, z0), (x1, y1, z1) = [[round(v - 0.5, 1) for v in bounds[0]], [round(v + 0.5, 1) for v in bounds[1]]]
    return ([d.isoformat() for d in days], max(0, len(days) - 1), marks, value,
            [{"label": s["name"], "value": s["name"]} for s in storeys],
            x0, x1, [x0, x1], y0, y1, [y0, y1], z0, z1, [z0, z1])


VIEW_INPUTS = [Input("twin-mode", "value"), Input("twin-date", "value"), Input("twin-dates", "data"),
               Input("twin-storeys", "value"), Input("twin-layers", "value"), Input("twin-section-x", "value"),
               Input("twin-section-y", "value"), Input("twin-section-z", "value"), Input("twin-budget", "value")]


def _params(mode, day_index, days, storeys, layers, sx, sy, sz, budget, site, element=None):
    from sitetwin.dashboards.twin_view import TwinParams

    if not days:
        raise dash.exceptions.PreventUpdate
    day = dt.date.fromisoformat(days[min(int(day_index or 0), len(days) - 1)])
    layers = layers or []
    section = (tuple(sx), tuple(sy), tuple(sz)) if "section" in layers and sx and sy and sz else None
    return TwinParams(site=site, mode=mode, day=day, storeys=tuple(storeys or ()), section=section,
                      points="points" in layers, sensors="sensors" in layers, budget=int(budget),
                      see_through="see-through" in layers, selected=element)


@callback(Output("twin-graph", "figure"), Output("twin-view-status", "children"), Output("twin-figure-key", "data"),
          Output("twin-date-label", "children"), Output("twin-legend", "children"),
          Output("shell-state", "data", allow_duplicate=True),
          *VIEW_INPUTS, Input("twin-renderer", "data"), State("twin-site", "data"), State("twin-element", "data"),
          prevent_initial_call=True)
def draw(mode, day_index, days, storeys, layers, sx, sy, sz, budget, renderer, site, element):
    """The model, coloured; scan points and sensors follow in ``draw_layers`` so that the model shows first.

    Where the WebGL viewer draws (renderer "webgl"), only the day's label: the viewer colours the model and
    writes the status line itself."""
    from sitetwin.dashboards.scene import to_wire
    from sitetwin.dashboards.twin_view import read_twin, twin_figure

    p = _params(mode, day_index, days, storeys, layers, sx, sy, sz, budget, site, element)
    if renderer == "webgl":
        return (dash.no_update, dash.no_update, dash.no_update, _day_label(site, p.day), dash.no_update,
                {"mode": mode, "date": p.day.isoformat()})
    with site_store(site) as store:
        tz = site_tz(store, site)
        data = read_twin(store, p, points=False)
    fig, stats = twin_figure(data, p, layers=False)
    fig = to_wire(fig)
    if data.geom.element_count == 0:
        status = _("No design model for this site yet: load one with `sitetwin bim load`.")
    else:
        status = (_("{n} elements shown ({full} in full, {boxes} as boxes", n=num(stats["elements"]),
                    full=num(stats["full"]), boxes=num(stats["boxes"]))
                  + (_("; {n} small ones left out at this detail: narrow the view or raise it",
                       n=num(stats["left_out"])) if stats["left_out"] else "")
                  + _("), {n} triangles", n=num(stats["triangles"]))
                  + (_("; survey {survey} of {epoch}", survey=data.survey_id, epoch=when(data.survey_epoch, tz))
                     if data.survey_id else "")
                  + (". " + _(data.note) if data.note else ""))
    day_label = p.day.isoformat() + (_(" · survey of {epoch}", epoch=when(data.survey_epoch, tz))
                                     if data.survey_epoch else "")
    legend = [html.Span([html.Span(className="swatch", style={"background": color, "opacity": max(opacity, 0.4)}),
                         f"{label('legend', name)} ({num(count)})"], className="legend-item",
                        id={"type": "twin-legend-item", "bin": name})
              for name, color, count, opacity in stats["legend"]]
    return fig, status, stats["key"], day_label, legend, {"mode": mode, "date": p.day.isoformat()}


def _day_label(site: str, day: dt.date) -> str:
    """The day, and the survey the status and deviation colours read on it."""
    from sitetwin.dashboards import queries as q
    from sitetwin.twin.queries import survey_epoch

    with site_store(site) as store:
        tz = site_tz(store, site)
        survey_id = q.survey_as_of(store, site, day)
        epoch = survey_epoch(store, survey_id) if survey_id else None
    return day.isoformat() + (_(" · survey of {epoch}", epoch=when(epoch, tz)) if epoch else "")


# The scan points and sensors are asked for once the browser has drawn the model (a promise that
# resolves two frames after the figure of this key is in the graph): the model shows first.
clientside_callback(
    """
    function(key) {
        if (!key) { return window.dash_clientside.no_update; }
        return new Promise(resolve => {
            const started = Date.now();
            const check = () => {
                const gd = document.querySelector('#twin-graph .js-plotly-plot');
                const ok = gd && gd.layout && gd.layout.meta && gd.layout.meta.key === key && gd._fullData;
                if (ok || Date.now() - started > 60000) {
                    requestAnimationFrame(() => requestAnimationFrame(() => resolve(key)));
                } else { setTimeout(check, 50); }
            };
            check();
        });
    }
    """,
    Output("twin-drawn", "data"),
    Input("twin-figure-key", "data"),
    prevent_initial_call=True,
)


@callback(Output("twin-graph", "figure", allow_duplicate=True), Output("twin-layers-status", "children"),
          Input("twin-drawn", "data"), *[State(i.component_id, i.component_property) for i in VIEW_INPUTS],
          State("twin-site", "data"), prevent_initial_call=True)
def draw_layers(key, mode, day_index, days, storeys, layers, sx, sy, sz, budget, site):
    """Scan points (decimated, coloured by signed distance) and sensor devices, added to the drawn model."""
    from sitetwin.dashboards.scene import to_wire
    from sitetwin.dashboards.twin_view import layer_traces, layers_status, read_twin

    p = _params(mode, day_index, days, storeys, layers, sx, sy, sz, budget, site)
    if not (p.points or p.sensors):
        raise dash.exceptions.PreventUpdate
    with site_store(site) as store:
        data = read_twin(store, p, model=False)
    traces = layer_traces(data, p)
    if not traces:
        return dash.no_update, _(data.note) if data.note else ""
    patch = Patch()
    for t in to_wire({"data": traces})["data"]:
        patch["data"].append(t)
    return patch, layers_status(traces, data.survey_id, data.note and _(data.note))


@callback(Output("twin-element", "data"), Output("shell-state", "data", allow_duplicate=True),
          Output("twin-graph", "figure", allow_duplicate=True),
          Input("twin-graph", "clickData"), State("twin-figure-key", "data"), State("twin-site", "data"),
          prevent_initial_call=True)
def select(click, key, site):
    """Picking: the clicked vertex's element becomes the selection (highlighted, in the URL, in the card)."""
    from sitetwin.dashboards import scene
    from sitetwin.dashboards.queries import current_model_ids
    from sitetwin.dashboards.twin_view import selected_trace

    point = (click or {}).get("points", [{}])[0]
    index = scene.pick(key, point.get("curveNumber"), point.get("pointNumber"))
    if index is None:
        raise dash.exceptions.PreventUpdate
    with site_store(site) as store:
        geom = scene.site_geometry(store, site, current_model_ids(store, site))
    if index >= len(geom.global_ids):         # a figure of another site's model: nothing of this one was clicked
        raise dash.exceptions.PreventUpdate
    gid = str(geom.global_ids[index])
    patch = Patch()
    trace = selected_trace(geom, index)
    patch["data"][0] = scene.to_wire({"data": [trace]})["data"][0]
    scene.set_pick_trace(key, 0, _owner(trace, index))
    return gid, {"element": gid}, patch


def _owner(trace, index):
    import numpy as np

    return np.full(len(trace["x"]), index, np.int32)


@callback(Output("twin-card", "children"), Input("twin-element", "data"), Input("twin-date", "value"),
          State("twin-dates", "data"), State("twin-site", "data"))
def card(gid, day_index, days, site):
    from sitetwin.dashboards import queries as q
    from sitetwin.dashboards.access import scoped_store
    from sitetwin.dashboards.cards import element_card

    if not gid:
        return c.empty(_("Click an element in the model to see its card."), id="twin-card-empty")
    day = dt.date.fromisoformat(days[min(int(day_index or 0), len(days) - 1)]) if days else None
    with site_store(site) as store:
        el = q.element(store, site, gid)
        if el is None:
            return c.empty(_("No element {gid} in this site's current models.", gid=gid), id="twin-card-empty")
        survey_id = q.survey_as_of(store, site, day)
        history = q.status_history(store, site, gid)
        hist = q.element_histogram(store, survey_id, gid) if survey_id else []
        n_det, detections = q.element_detections(store, site, gid, limit=10)
        hazards = q.element_hazards(store, site, gid)
        tz = site_tz(store, site)
    with scoped_store() as (store, scope):
        findings = q.element_findings(store, scope, site, gid)
    return element_card("twin", el, survey_id=survey_id, history=history, histogram=hist,
                        detections=(n_det, detections), hazards=hazards, findings=findings, tz=tz)


@callback(Output("twin-card-raise-msg", "children"), Input("twin-card-raise", "n_clicks"),
          State("twin-card-finding-title", "value"), State("twin-card-severity", "value"),
          State("twin-card-category", "value"), State("twin-element", "data"), State("twin-site", "data"),
          prevent_initial_call=True)
def raise_from_card(n, title, severity, category, gid, site):
    """A regulator raises a finding on the element (oversight's raise_finding, under the caller's scope)."""
    from sitetwin.dashboards.cards import raise_on_element

    if not n or not gid:
        raise dash.exceptions.PreventUpdate
    return raise_on_element(site, gid, title, severity, category)


dash.register_page(__name__, path="/twin", name=NAME, title=page_title(NAME), order=1, layout=layout)
