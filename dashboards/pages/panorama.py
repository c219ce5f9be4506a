"""Panorama inspection: walk the site through its posed 360-degree photos with the design overlaid,
see detections, click a pixel to get its element, measure between two pixels, and move between
panoramas on a floor-plan minimap. A detector can be run on the panorama in the background.

Beside the minimap, the WebGL viewer (the twin page's bundle, loaded on these two pages only) shows the
site's model with the current panorama's camera: a marker at its position and an arrow along the view,
following every move to another panorama and every turn of the view."""

from __future__ import annotations

import dash
from dash import Input, Output, State, ctx, dcc, html, no_update

from sitetwin.dashboards import cards  # noqa: F401  (the element card's own callbacks)
from sitetwin.dashboards import components as c
from sitetwin.dashboards import inputs as i
from sitetwin.dashboards.access import object_store, site_store
from sitetwin.dashboards.callbacks import callback, clientside_callback
from sitetwin.dashboards.cards import FINDING_CATEGORIES, FINDING_SEVERITIES
from sitetwin.dashboards.pages._labels import label, num, page_title, site_tz, when
from sitetwin.data.i18n import LANGUAGES, N_, Translator, current_language, use_language

_ = Translator("dashboards.pages")
NAME = N_("Panoramas")

TURN_DEG = 30.0
TILT_DEG = 15.0
ZOOM = 1.25
OVERLAYS = ("none", "class", "status", "deviation")
CLICK_MODES = ("pick", "measure")
CLICK_MODE_LABELS = (N_("pick an element"), N_("measure"))
TURNS = (("left", "◀", N_("turn left")), ("right", "▶", N_("turn right")), ("up", "▲", N_("look up")),
         ("down", "▼", N_("look down")), ("zoomin", "+", N_("zoom in")), ("zoomout", "−", N_("zoom out")))
PIXELS_MAX = 1e6            # a view's or a panorama's pixel coordinates
MODEL_COLOUR = "#c9ced8"    # the model behind the camera marker: one light colour
CAMERA_COLOUR = "#e11d48"
MODEL_TEXT = {"loading": N_("Loading the model's geometry…"),
              "status": N_("{n} elements, {triangles} triangles; the red marker is this panorama's camera, its "
                           "arrow the direction of the view"),
              "error": N_("The 3D viewer could not show the model: {error}")}

_angle = i.finite_float(-1e6, 1e6)         # View.from_dict wraps the yaw and clamps the pitch and field of view
_pixel = i.finite_float(-PIXELS_MAX, PIXELS_MAX)
_click = i.optional(i.record(points=i.list_of(i.record(x=i.optional(_pixel), y=i.optional(_pixel),
                                                       customdata=i.optional(i.object_id), extra=True),
                                              min_len=1, max_len=100), required=("points",), extra=True))
i.declare({
    "panorama-site.data": i.optional(i.site_code), "panorama-want.data": i.optional(i.text(i.LABEL_MAX)),
    "panorama-view.data": i.optional(i.record(yaw_deg=_angle, pitch_deg=_angle, fov_deg=_angle)),
    "panorama-measure.data": i.optional(i.list_of(i.record(uv=i.tuple_of(_pixel, _pixel), required=("uv",)),
                                                  max_len=2)),
    "panorama-element.data": i.optional(i.object_id),
    "panorama-pixel.data": i.optional(i.record(pano_id=i.object_id, u=_pixel, v=_pixel,
                                               required=("pano_id", "u", "v"))),
    "panorama-select.value": i.optional(i.object_id), "panorama-weights.value": i.optional(i.object_id),
    "panorama-minimap.clickData": _click, "panorama-viewer.clickData": _click,
    "panorama-overlay.value": i.one_of(OVERLAYS),
    "panorama-layers.value": i.optional(i.list_of(i.one_of(["detections"]))),
    "panorama-click-mode.value": i.one_of(CLICK_MODES),
    "panorama-pixel-title.value": i.optional(i.text(i.TITLE_MAX)),
    "panorama-pixel-severity.value": i.optional(i.one_of(FINDING_SEVERITIES)),
    "panorama-pixel-category.value": i.optional(i.one_of(FINDING_CATEGORIES)),
    "panorama-lang.data": i.optional(i.one_of(LANGUAGES)),
    "panorama-camera.data": i.optional(i.record(position=i.list_of(i.finite_float(-1e7, 1e7), max_len=3),
                                                direction=i.list_of(i.finite_float(-2, 2), max_len=3),
                                                text=i.text(i.LABEL_MAX), required=("position", "direction"))),
})


def layout(site: str | None = None, pano: str | None = None, element: str | None = None, **query):
    from sitetwin.dashboards.app import default_site

    site = default_site(site)
    if site is None:
        return c.site_missing("panorama")
    return html.Div([
        dcc.Store(id="panorama-site", data=site),
        dcc.Store(id="panorama-want", data=pano),
        dcc.Store(id="panorama-view", data={"yaw_deg": 0.0, "pitch_deg": 0.0, "fov_deg": 90.0}),
        dcc.Store(id="panorama-measure", data=[]),
        dcc.Store(id="panorama-element", data=element),
        dcc.Store(id="panorama-pixel", data=None),
        dcc.Store(id="panorama-lang", data=current_language()),     # the background detector reads in it
        dcc.Store(id="panorama-camera", data=None),
        dcc.Store(id="panorama-model-config", data=model_config()),
        html.H1(_("Panorama inspection")),
        html.Div([
            html.Div([
                html.Div([c.control(_("panorama"), dcc.Dropdown(id="panorama-select", clearable=False), wide=True)],
                         className="controls"),
                dcc.Graph(id="panorama-minimap", style={"height": "300px"}, config={"displayModeBar": False}),
                html.Div(id="panorama-info", className="status-line"),
                html.Div(id="panorama-model", className="twin-viewer"),
                html.Div(id="panorama-model-status", className="status-line"),
                html.H3(_("Run a detector on this panorama")),
                dcc.Dropdown(id="panorama-weights", placeholder=_("trained weights")),
                html.Div([html.Button(_("Detect"), id="panorama-detect", className="button", n_clicks=0),
                          html.Button(_("Cancel"), id="panorama-detect-cancel", className="button secondary",
                                      n_clicks=0)], style={"display": "flex", "gap": ".5rem", "marginTop": ".4rem"}),
                html.Progress(id="panorama-detect-progress", value="0", max="4"),
                html.Div(id="panorama-detect-msg", className="status-line"),
            ], className="card"),
            html.Div([
                html.Div([
                    html.Div([html.Button(t, id=f"panorama-{k}", className="button secondary", n_clicks=0,
                                          title=_(tip)) for k, t, tip in TURNS],
                             style={"display": "flex", "gap": ".3rem"}),
                    c.control(_("overlay"), dcc.RadioItems(id="panorama-overlay", value="none", inline=True,
                                                           options=[{"label": label("overlay", o), "value": o}
                                                                    for o in OVERLAYS])),
                    dcc.Checklist(id="panorama-layers", value=["detections"], inline=True,
                                  options=[{"label": _("detections"), "value": "detections"}]),
                    c.control(_("click to"), dcc.RadioItems(id="panorama-click-mode", value="pick", inline=True,
                                                            options=[{"label": _(text), "value": v} for v, text in
                                                                     zip(CLICK_MODES, CLICK_MODE_LABELS)])),
                ], className="controls"),
                dcc.Loading(dcc.Graph(id="panorama-viewer", style={"height": "560px"},
                                      config={"displayModeBar": False, "scrollZoom": False}), delay_show=500),
                html.Div(id="panorama-status", className="status-line"),
                html.Div(id="panorama-result", className="status-line"),
                html.Details([
                    html.Summary(_("Raise a finding at the clicked pixel")),
                    html.Div([
                        dcc.Input(id="panorama-pixel-title", placeholder=_("title"), style={"width": "100%"}),
                        dcc.Dropdown(id="panorama-pixel-severity", value="medium", clearable=False, options=[
                            {"label": label("severity", v), "value": v} for v in FINDING_SEVERITIES]),
                        dcc.Dropdown(id="panorama-pixel-category", value="safety", clearable=False, options=[
                            {"label": label("category", v), "value": v} for v in FINDING_CATEGORIES]),
                        html.Button(_("Raise at this pixel"), id="panorama-pixel-raise", className="button",
                                    n_clicks=0),
                        html.Div(id="panorama-pixel-msg", className="status-line"),
                    ], style={"display": "grid", "gap": ".4rem"}),
                ], id="panorama-pixel-box"),
            ], className="card"),
        ], className="grid-2", style={"gridTemplateColumns": "minmax(16rem, 1fr) minmax(0, 3fr)"}),
        html.Div(c.empty(_("Click a pixel to see the element it shows."), id="panorama-card-empty"),
                 id="panorama-card", className="card element-card", style={"marginTop": "1rem"}),
    ])


def model_config() -> dict:
    """What the viewer script needs on this page: the bundle, the routes' prefix, the ids it writes to, the
    model's one colour and the texts in the reader's language (no camera bookmark in the address here)."""
    from sitetwin.dashboards.pages.twin import bundle_url

    return {"script": bundle_url(), "prefix": dash.get_relative_path("/viewer/"),
            "statusId": "panorama-model-status", "elementStore": "panorama-element", "height": "260px",
            "plain": MODEL_COLOUR, "cameraColour": CAMERA_COLOUR, "bookmark": False,
            "text": {k: _(v) for k, v in MODEL_TEXT.items()}}


@callback(Output("panorama-camera", "data"), Input("panorama-select", "value"), Input("panorama-view", "data"),
          prevent_initial_call=True)
def camera(pano_id, view_d):
    """The current panorama's camera in the site's frame (position, and the view's direction), for the 3D
    panel; None when it has no pose."""
    from sitetwin.dashboards.pano_view import View
    from sitetwin.oversight.bcf.camera import camera_from_panorama
    from sitetwin.panorama.pano_store import get_panorama

    if not pano_id:
        return None
    view = View.from_dict(view_d)
    with object_store("panoramas", "pano_id", pano_id) as (store, site):
        pano = get_panorama(store, pano_id)
    if not pano.posed:
        return None
    cam = camera_from_panorama(pano.T_model_from_camera, view.yaw_deg, view.pitch_deg, view.fov_deg)
    return {"position": [round(float(v), 4) for v in cam["position_m"]],
            "direction": [round(float(v), 5) for v in cam["direction"]], "text": pano.name or pano.pano_id}


# The 3D panel: the viewer's script is loaded once (on this page and the twin page only), then shown the
# site and the camera; it fetches the geometry once per site and moves the marker.
clientside_callback(
    """
    function(cam, site, config) {
        if (!site || !config) { return; }
        const dc = window.dash_clientside;
        let gl = false;
        try { gl = !!document.createElement('canvas').getContext('webgl2'); } catch (e) { gl = false; }
        if (!gl) { dc.set_props('panorama-model', {style: {display: 'none'}}); return; }
        const load = window.sitetwinViewer ? Promise.resolve() : (window._sitetwinViewerScript ||
            (window._sitetwinViewerScript = new Promise((resolve, reject) => {
                const s = document.createElement('script');
                s.src = config.script; s.onload = resolve;
                s.onerror = () => reject(new Error('viewer script ' + config.script));
                document.head.appendChild(s);
            })));
        load.then(() => window.sitetwinViewer.show('panorama-model', config, {site, camera: cam || null}))
            .catch((err) => {
                console.warn('sitetwin viewer:', err);
                dc.set_props('panorama-model-status', {children: config.text.error.replace('{error}', err.message)});
            });
    }
    """,
    Input("panorama-camera", "data"), State("panorama-site", "data"), State("panorama-model-config", "data"),
)


@callback(Output("panorama-select", "options"), Output("panorama-select", "value"),
          Output("panorama-weights", "options"), Output("panorama-weights", "value"),
          Input("panorama-site", "data"), State("panorama-want", "data"))
def setup(site, want):
    from sitetwin.dashboards import queries as q

    with site_store(site) as store:
        tz = site_tz(store, site)
        panos = q.panoramas(store, site)
        weights = q.detector_weights(store)
    options = [{"label": f"{n + 1}. {p['name'] or p['pano_id']} · {when(p['captured_at'], tz)}"
                        + ("" if p["position_m"] else _(" (not posed)")), "value": p["pano_id"]}
               for n, p in enumerate(panos)]
    ids = [p["pano_id"] for p in panos]
    value = want if want in ids else next((p["pano_id"] for p in panos if p["position_m"]), ids[0] if ids else None)
    wopts = [{"label": f"{w['run_id']} · {w['weights_name']} ({when(w['finished_at'], tz)})", "value": w["run_id"]}
             for w in weights]
    return options, value, wopts, (wopts[0]["value"] if wopts else None)


@callback(Output("panorama-minimap", "figure"), Output("panorama-info", "children"),
          Output("panorama-view", "data", allow_duplicate=True),
          Output("panorama-measure", "data", allow_duplicate=True),
          Output("shell-state", "data", allow_duplicate=True),
          Input("panorama-select", "value"), State("panorama-site", "data"), prevent_initial_call=True)
def choose(pano_id, site):
    """A panorama was chosen: redraw the minimap around it, reset the view and the measurement."""
    from sitetwin.dashboards import figures as f
    from sitetwin.dashboards import queries as q

    with site_store(site) as store:
        panos = q.panoramas(store, site)
        prints = q.footprints(store, q.current_model_ids(store, site))
    if not panos:
        return (f.empty_figure(_("No panoramas for this site yet: add some with `sitetwin pano add`.")),
                c.empty(_("No panoramas for this site yet."), id="panorama-empty"), no_update, no_update, no_update)
    pano = next((p for p in panos if p["pano_id"] == pano_id), None)
    info = "" if pano is None else (
        _("{name}: {width}×{height} px, pose {pose}", name=pano["name"] or pano["pano_id"], width=pano["width"],
          height=pano["height"], pose=label("pose", pano["pose_source"]))
        + (_(" (RMS {rms} px)", rms=num(pano["pose_rms_px"], 1)) if pano.get("pose_rms_px") else "")
        + _(", {n} detections", n=num(pano["detections"]))
        + ("" if pano["has_map"] else _("; no element map")))
    return (f.minimap_figure(prints, panos, pano_id), info, {"yaw_deg": 0.0, "pitch_deg": 0.0, "fov_deg": 90.0}, [],
            {"pano": pano_id})


@callback(Output("panorama-select", "value", allow_duplicate=True), Input("panorama-minimap", "clickData"),
          prevent_initial_call=True)
def from_minimap(click):
    point = (click or {}).get("points", [{}])[0]
    if not point.get("customdata"):
        raise dash.exceptions.PreventUpdate
    return point["customdata"]


@callback(Output("panorama-view", "data"),
          Input("panorama-left", "n_clicks"), Input("panorama-right", "n_clicks"), Input("panorama-up", "n_clicks"),
          Input("panorama-down", "n_clicks"), Input("panorama-zoomin", "n_clicks"),
          Input("panorama-zoomout", "n_clicks"), State("panorama-view", "data"), prevent_initial_call=True)
def turn(*args):
    from sitetwin.dashboards.pano_view import View

    view = View.from_dict(args[-1])
    d = view.to_dict()
    step = {"panorama-left": ("yaw_deg", TURN_DEG), "panorama-right": ("yaw_deg", -TURN_DEG),
            "panorama-up": ("pitch_deg", TILT_DEG), "panorama-down": ("pitch_deg", -TILT_DEG)}.get(ctx.triggered_id)
    if step:
        d[step[0]] += step[1]
    elif ctx.triggered_id == "panorama-zoomin":
        d["fov_deg"] /= ZOOM
    elif ctx.triggered_id == "panorama-zoomout":
        d["fov_deg"] *= ZOOM
    return View.from_dict(d).to_dict()


@callback(Output("panorama-viewer", "figure"), Output("panorama-status", "children"),
          Input("panorama-select", "value"), Input("panorama-view", "data"), Input("panorama-overlay", "value"),
          Input("panorama-layers", "value"), Input("panorama-measure", "data"), prevent_initial_call=True)
def show(pano_id, view_d, overlay, layers, measure):
    """The perspective view, with the overlay, detection boxes and the measurement drawn."""
    from sitetwin.dashboards import figures as f
    from sitetwin.dashboards import pano_view as pv
    from sitetwin.dashboards import queries as q
    from sitetwin.panorama.pano_store import get_panorama

    if not pano_id:
        return f.empty_figure(_("No panorama chosen.")), ""
    view = pv.View.from_dict(view_d)
    with object_store("panoramas", "pano_id", pano_id) as (store, site):
        pano = get_panorama(store, pano_id)
        dets = q.pano_detections(store, pano_id) if "detections" in (layers or []) else None
        image, note = pv.layered(store, pano, overlay=None if overlay == "none" else overlay, detections=dets)
    shapes = _measure_shapes(view, measure or [], pano.width, pano.height)
    fig = f.view_figure(pv.jpeg_uri(pv.render(image, view)), view.width, view.height, shapes)
    status = (_("looking {yaw}° (yaw), {pitch}° (pitch), field of view {fov}°", yaw=num(view.yaw_deg, 0),
                pitch=num(view.pitch_deg, 0), fov=num(view.fov_deg, 0))
              + (_("; {n} detections", n=num(len(dets))) if dets else "") + (f"; {_(note)}" if note else ""))
    return fig, status


def _measure_shapes(view, points, w, h):
    from sitetwin.dashboards import pano_view as pv

    if not points:
        return []
    uv, front = pv.pano_to_view(view, [p["uv"] for p in points], w, h)
    shapes = []
    for (x, y), ok in zip(uv.tolist(), front.tolist()):
        if ok:
            shapes.append(dict(type="circle", x0=x - 6, x1=x + 6, y0=y - 6, y1=y + 6,
                               line=dict(color="#ffd400", width=3)))
    if len(points) == 2 and all(front.tolist()):
        shapes.append(dict(type="line", x0=uv[0][0], y0=uv[0][1], x1=uv[1][0], y1=uv[1][1],
                           line=dict(color="#ffd400", width=3, dash="dot")))
    return shapes


@callback(Output("panorama-element", "data"), Output("panorama-measure", "data"),
          Output("panorama-result", "children"), Output("shell-state", "data", allow_duplicate=True),
          Output("panorama-pixel", "data"), Input("panorama-viewer", "clickData"),
          State("panorama-click-mode", "value"), State("panorama-select", "value"), State("panorama-view", "data"),
          State("panorama-measure", "data"), prevent_initial_call=True)
def click(data, mode, pano_id, view_d, measure):
    """A click on the view: the element behind the pixel, or an end of the measurement."""
    from sitetwin.dashboards import pano_view as pv
    from sitetwin.panorama.measure import measure as measure_between
    from sitetwin.panorama.pano_store import get_panorama

    point = (data or {}).get("points", [{}])[0]
    if point.get("x") is None or point.get("y") is None or not pano_id:
        raise dash.exceptions.PreventUpdate
    view = pv.View.from_dict(view_d)
    with object_store("panoramas", "pano_id", pano_id) as (store, site):
        pano = get_panorama(store, pano_id)
        u, v = pv.view_to_pano(view, float(point["x"]) + 0.5, float(point["y"]) + 0.5, pano.width, pano.height)
        if mode == "measure":
            pts = (measure or [])[-1:] if len(measure or []) < 2 else []
            pts = pts + [{"uv": [u, v]}]
            if len(pts) < 2:
                return (no_update, pts, _("first point at pixel ({u}, {v}); click the second point", u=num(u, 0),
                                          v=num(v, 0)), no_update, no_update)
            m = measure_between(store, pano_id, pts[0]["uv"], pts[1]["uv"])
            s = m.summary()
            return (no_update, pts, html.Span(_("distance {d} m ({method} depth)", d=num(s.get("distance_m", 0), 3),
                                                method=label("depth", s.get("method") or s.get("depth") or "model")),
                                              id="panorama-measure-result"), no_update, no_update)
        hit = pv.element_at(pv.element_map(store, pano), pano, u, v)
    pixel = {"pano_id": pano_id, "u": u, "v": v}
    if hit is None:
        return (None, no_update, _("pixel ({u}, {v}) shows no model element", u=num(u, 0), v=num(v, 0)),
                {"element": None}, pixel)
    return (hit.global_id, no_update, html.Span(_("pixel ({u}, {v}) shows {element}, {d} m away", u=num(u, 0),
                                                  v=num(v, 0), element=hit.global_id, d=num(hit.depth_m, 2)),
                                                id="panorama-pick-result"),
            {"element": hit.global_id}, pixel)


@callback(Output("panorama-card", "children"), Input("panorama-element", "data"), State("panorama-site", "data"))
def card(gid, site):
    from sitetwin.dashboards import queries as q
    from sitetwin.dashboards.access import scoped_store
    from sitetwin.dashboards.cards import element_card

    if not gid:
        return c.empty(_("Click a pixel to see the element it shows."), id="panorama-card-empty")
    with site_store(site) as store:
        el = q.element(store, site, gid)
        if el is None:
            return c.empty(_("No element {gid} in this site's current models.", gid=gid))
        survey_id = q.survey_as_of(store, site, None)
        history = q.status_history(store, site, gid)
        hist = q.element_histogram(store, survey_id, gid) if survey_id else []
        det = q.element_detections(store, site, gid, limit=10)
        hazards = q.element_hazards(store, site, gid)
        tz = site_tz(store, site)
    with scoped_store() as (store, scope):
        findings = q.element_findings(store, scope, site, gid)
    return element_card("panorama", el, survey_id=survey_id, history=history, histogram=hist, detections=det,
                        hazards=hazards, findings=findings, tz=tz)


@callback(Output("panorama-card-raise-msg", "children"), Input("panorama-card-raise", "n_clicks"),
          State("panorama-card-finding-title", "value"), State("panorama-card-severity", "value"),
          State("panorama-card-category", "value"), State("panorama-element", "data"), State("panorama-site", "data"),
          State("panorama-select", "value"), State("panorama-view", "data"), prevent_initial_call=True)
def raise_from_card(n, title, severity, category, gid, site, pano_id, view):
    """Raise a finding on the picked element, with the panorama view as its evidence (a BCF viewpoint later)."""
    from sitetwin.dashboards.cards import raise_on_element

    if not n or not gid:
        raise dash.exceptions.PreventUpdate
    from sitetwin.dashboards.pano_view import View

    look = View.from_dict(view).to_dict()            # the view's three angles, as the viewer uses them
    return raise_on_element(site, gid, title, severity, category,
                            evidence={"panorama": {"pano_id": pano_id, **look}} if pano_id else None)


@callback(Output("panorama-pixel-msg", "children"), Input("panorama-pixel-raise", "n_clicks"),
          State("panorama-pixel-title", "value"), State("panorama-pixel-severity", "value"),
          State("panorama-pixel-category", "value"), State("panorama-pixel", "data"), State("panorama-view", "data"),
          prevent_initial_call=True)
def raise_at_pixel(n, title, severity, category, pixel, view):
    """Raise a finding at the clicked pixel: its element and 3D point, with the panorama viewpoint as evidence
    (the BCF export turns that viewpoint into the topic's camera)."""
    from sitetwin.dashboards.regulator import raise_at_pixel as raise_it

    if not n:
        raise dash.exceptions.PreventUpdate
    if not pixel or not pixel.get("pano_id"):
        return _("Click a pixel of the view first (in “pick an element” mode).")
    return raise_it(pixel["pano_id"], view, float(pixel["u"]), float(pixel["v"]), title=title,
                    severity=severity or "medium", category=category or "safety")


@callback(Output("panorama-detect-msg", "children"), Input("panorama-detect", "n_clicks"),
          State("panorama-weights", "value"), State("panorama-select", "value"), State("panorama-site", "data"),
          State("panorama-lang", "data"), background=True, prevent_initial_call=True,
          progress=[Output("panorama-detect-progress", "value"), Output("panorama-detect-progress", "max")],
          running=[(Output("panorama-detect", "disabled"), True, False)],
          cancel=[Input("panorama-detect-cancel", "n_clicks")])
def detect(set_progress, n, run_id, pano_id, site, lang=None):
    """Run a trained detector on the panorama in a background job: detections, hazards and findings are stored.
    The job runs outside the page's request: it reads in the language the page was shown in."""
    from sitetwin.dashboards.jobs import detect_on_panorama

    if not n:
        raise dash.exceptions.PreventUpdate
    with use_language(lang or current_language()):
        if not run_id:
            return _("No trained detector in this store: train one with `sitetwin vision train` first.")
        return detect_on_panorama(site, pano_id, run_id,
                                  progress=lambda done, total: set_progress((str(done), str(total))))


dash.register_page(__name__, path="/panoramas", name=NAME, title=page_title(N_("panoramas")), order=4,
                   layout=layout)
