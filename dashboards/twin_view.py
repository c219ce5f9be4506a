"""The 3D twin view: what to read for it (:func:`read_twin`) and the plotly figure (:func:`twin_figure`).

Colour modes, each over the site's current models on a chosen day:

- ``class`` and ``storey``: the design's own attributes;
- ``status``: as-built status in the latest survey on or before the day (twin's ``element_deviation``);
  a ``partial`` element whose observed faces failed a check has a bin of its own;
- ``deviation``: that survey's p95 of |signed distance| per element, in bands (mm);
- ``schedule``: the 4D state on the day from the schedule and the first survey that saw the
  element standing: built, late, in progress, not started, unscheduled.

Scan points of that survey are drawn on top (decimated evenly by twin's ``survey_points``),
coloured by signed distance. Alignments (bim's reference lines) are drawn as lines, clipped to the
section box. Sensor devices are drawn at their positions; a device with an
active warning lights up, and so does the element it is mounted on.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from sitetwin.dashboards import scene
from sitetwin.dashboards.scene import Bin, SceneGeometry
from sitetwin.data.i18n import N_, Translator, format_number

_ = Translator("dashboards")

MODES = ("class", "storey", "status", "deviation", "schedule")
MAX_POINTS = 20_000            # scan points sent to the browser (software WebGL draws 10k in about a second)
TERRAIN_CLUSTER = -2           # twin's points.parquet: cluster -2 is the ground (not drawn)
GHOST_OPACITY = 0.25           # elements not there (yet), when asked to be see-through (software WebGL: slow)
DISTANCE_CLIP_MM = 30.0        # colour scale of signed distances: +-this
POINTS_COLORSCALE = "RdBu"     # plotly's named scale of the scan points' signed distances
GHOSTED = {"status": ("not_built", "unknown"), "schedule": ("not started", "unscheduled", "due (not seen)"),
           "deviation": ("not measured",)}
SELECTED_COLOR = "rgb(255,215,0)"
WARNING_COLOR = "rgb(255,110,0)"        # orange: apart from every status colour
# Each layer's trace carries its kind in ``meta`` (its ``name`` is in the reader's language).
POINTS_LAYER, SENSORS_LAYER, WARNED_LAYER = "scan points", "sensors", "sensor warning on element"
ALIGNMENTS_LAYER = "alignments"
ALIGNMENT_COLOR = "rgb(30,64,175)"
PARTIAL_FAILING = "partial_out_of_tolerance"      # a status bin: partial, and failing a check on what was seen
PARTIAL_FAILING_COLOR = "rgb(240,110,150)"
NOTES = {"status": N_("No survey on or before this day: every element is shown as not surveyed."),
         "deviation": N_("No survey on or before this day: deviation is not measured."),
         "schedule": N_("No schedule linked to the model: every element is unscheduled.")}
SEVERITY_COLORS = {None: "rgb(120,130,150)", "low": "rgb(14,165,233)", "medium": "rgb(245,158,11)",
                   "high": "rgb(239,68,68)", "critical": "rgb(190,18,60)"}


@dataclass(frozen=True)
class TwinParams:
    """What the user asked to see. ``section`` is ((x0, x1), (y0, y1), (z0, z1)) in the local frame, metres."""

    site: str
    mode: str = "class"
    day: dt.date | None = None
    storeys: tuple[str, ...] = ()
    section: tuple[tuple[float, float], ...] | None = None
    points: bool = True
    sensors: bool = True
    budget: int = scene.DEFAULT_TRIANGLE_BUDGET
    see_through: bool = False          # what is not there yet drawn see-through (costly without a GPU)
    selected: str | None = None
    max_points: int = MAX_POINTS

    def key_params(self) -> dict:
        return {"site": self.site, "mode": self.mode, "day": str(self.day), "storeys": list(self.storeys),
                "section": self.section, "points": self.points, "sensors": self.sensors, "budget": self.budget,
                "see_through": self.see_through, "selected": self.selected}


@dataclass
class TwinData:
    geom: SceneGeometry
    values: np.ndarray                       # (k,) object: each element's bin value in this mode
    order: list                              # bin values in legend order
    colors: dict                             # bin value -> CSS colour
    survey_id: str | None = None
    survey_epoch: dt.date | None = None
    devices: list[dict] = field(default_factory=list)
    points: Any = None                       # pandas frame x_m, y_m, z_m, distance_m (or None)
    alignments: Any = None                   # (n, 3) reference lines, NaN rows between lines (or None)
    note: str = ""


def read_twin(store, p: TwinParams, *, points: bool = True, model: bool = True) -> TwinData:
    """Everything the figure needs, read while the connection is open (geometry comes from the cache).

    ``points=False`` skips the scan points; ``model=False`` reads only what the layers need
    (geometry, survey, points, devices), not the colours.
    """
    from sitetwin.dashboards import queries as q
    from sitetwin.twin.queries import survey_epoch

    if p.mode not in MODES:
        raise ValueError(f"colour mode {p.mode!r}: use one of {', '.join(MODES)}")
    model_ids = q.current_model_ids(store, p.site)
    geom = scene.site_geometry(store, p.site, model_ids)
    k = geom.element_count
    data = TwinData(geom, np.array([""] * k, dtype=object), [], {})
    survey_id = q.survey_as_of(store, p.site, p.day) if p.mode in ("status", "deviation") or p.points else None
    if not model:
        p = replace(p, mode="class")
    if survey_id:
        data.survey_id = survey_id
        data.survey_epoch = survey_epoch(store, survey_id)
    data.values, data.order, data.colors, data.note = mode_values(store, p.site, p.mode, p.day, geom, survey_id)
    if model:
        xyz = q.reference_lines_xyz(store, p.site)
        data.alignments = xyz if len(xyz) else None
    if p.sensors:
        data.devices = q.sensor_state(store, p.site)
    if p.points and points and survey_id:
        from sitetwin.twin.errors import SurveyError
        from sitetwin.twin.survey_store import survey_points

        try:
            pts = survey_points(store, survey_id, columns=["x_m", "y_m", "z_m", "distance_m", "cluster"],
                                max_points=p.max_points)
            data.points = pts[pts["cluster"] != TERRAIN_CLUSTER].reset_index(drop=True)
        except SurveyError as exc:
            data.note = _("Scan points not shown: {problem}", problem=exc)
    return data


def mode_values(store, site: str, mode: str, day: dt.date | None, geom: Any,
                survey_id: str | None) -> tuple[np.ndarray, list, dict, str]:
    """The colour rules of every 3D view (the plotly twin and the WebGL viewer): each element's bin value in
    colour ``mode`` (``(k,)`` object, in ``geom``'s element order), the bin values in legend order, their CSS
    colours, and a note in the reader's language ("" when none). ``geom`` is a ``SceneGeometry`` or anything
    with its per-element ``global_ids``, ``model_ids``, ``ifc_class`` and ``storey`` arrays. ``survey_id`` is
    the survey the status and deviation modes read (None: none on or before the day); ``day`` is the schedule
    mode's day (None: today).
    """
    from sitetwin.dashboards import queries as q
    from sitetwin.panorama.overlay import STATUS_COLORS, class_color

    note = ""
    keys = list(zip(geom.model_ids.tolist(), geom.global_ids.tolist()))
    if mode == "class":
        values = geom.ifc_class
        classes = sorted(set(geom.ifc_class.tolist()))
        order, colors = classes, {c: scene.rgb(class_color(c)) for c in classes}
    elif mode == "storey":
        values = geom.storey
        order = [s["name"] for s in q.storeys(store, site)] + ["(no storey)"]
        colors = {s: scene.PALETTE[i % len(scene.PALETTE)] for i, s in enumerate(order)}
    elif mode == "status":
        st = q.element_status(store, survey_id)
        failing = q.partial_failing(store, survey_id)
        values = np.array([PARTIAL_FAILING if key in failing else st.get(key, {}).get("status") or "unknown"
                           for key in keys], dtype=object)
        order = [*q.STATUSES, "unknown"]
        order.insert(order.index("partial") + 1, PARTIAL_FAILING)
        colors = {s: scene.rgb(STATUS_COLORS[s]) for s in order if s in STATUS_COLORS}
        colors[PARTIAL_FAILING] = PARTIAL_FAILING_COLOR
        if not survey_id:
            note = _(NOTES["status"])
    elif mode == "deviation":
        st = q.element_status(store, survey_id)
        values = np.array([scene.deviation_band(st.get(key, {}).get("p95_mm")) for key in keys], dtype=object)
        order, colors = scene.deviation_bins()
        if not survey_id:
            note = _(NOTES["deviation"])
    else:   # schedule
        states = q.schedule_states(store, site, day or q.utcnow().date())
        values = np.array([states.get(key, "unscheduled") for key in keys], dtype=object)
        order = list(q.SCHEDULE_STATES)
        colors = dict(scene.SCHEDULE_COLORS)
        if set(values.tolist()) <= {"unscheduled"}:
            note = _(NOTES["schedule"])
    return np.asarray(values, dtype=object), order, colors, note


def element_bins(values: np.ndarray, order: list, colors: dict, mode: str, *,
                 see_through: bool = False) -> tuple[np.ndarray, list[Bin]]:
    """Each element's bin (``(k,)`` int64 into the bins, -1: a value outside ``order``, not drawn) and the bins
    in legend order, their labels (English, as the legend's keys), colours, and whether their elements are not
    there (yet): ``boxes`` (the plotly twin draws those as boxes, the WebGL viewer as ghosts)."""
    index = {v: i for i, v in enumerate(order)}
    bin_of = np.array([index.get(v, -1) for v in np.asarray(values, dtype=object).tolist()], dtype=np.int64)
    ghosted = GHOSTED.get(mode, ())
    bins = [Bin(_label(v, mode), colors.get(v, "rgb(150,150,150)"),
                GHOST_OPACITY if v in ghosted and see_through else 1.0, v in ghosted) for v in order]
    return bin_of, bins


def visible_elements(geom: SceneGeometry, p: TwinParams) -> np.ndarray:
    vis = np.ones(geom.element_count, bool)
    if p.storeys:
        vis &= np.isin(geom.storey.astype(str), list(p.storeys))
    if p.section:
        (x0, x1), (y0, y1), (z0, z1) = p.section
        lo, hi = geom.lo, geom.hi
        vis &= (hi[:, 0] >= x0) & (lo[:, 0] <= x1) & (hi[:, 1] >= y0) & (lo[:, 1] <= y1) & \
               (hi[:, 2] >= z0) & (lo[:, 2] <= z1)
    return vis


def twin_figure(d: TwinData, p: TwinParams, *, layers: bool = True) -> tuple[dict, dict]:
    """The figure (a plotly dict, arrays as numpy) and figures about what was drawn (LOD, bins, legend).

    With ``layers=False`` only the model is drawn: the scan points and sensors (:func:`layer_traces`)
    can follow in a second response, so that the model appears first.
    """
    geom = d.geom
    vis = visible_elements(geom, p)
    lit = _lit_elements(d, geom) & vis
    bin_of, bins = element_bins(d.values, d.order, d.colors, p.mode, see_through=p.see_through)
    bin_of[~vis | lit] = -1
    traces, owners, stats = scene.merged_traces(geom, bin_of, bins, budget=p.budget)

    sel = geom.index_of(p.selected) if p.selected else None
    all_traces = [selected_trace(geom, sel)]
    all_owners: list = [np.full(len(all_traces[0]["x"]), sel, np.int32) if sel is not None else None]
    all_traces += traces
    all_owners += owners
    if lit.any():
        v, f, owner, _faces = scene.gather(geom, np.flatnonzero(lit), np.zeros(0, np.int64))
        warned = scene.mesh_trace(v, f, _("sensor warning on element"), WARNING_COLOR, showlegend=False)
        warned["meta"] = WARNED_LAYER
        all_traces.append(warned)
        all_owners.append(owner)
        stats["bins"][WARNED_LAYER] = np.flatnonzero(lit)
        stats["legend"].append((WARNED_LAYER, WARNING_COLOR, int(lit.sum()), 1.0))
    if d.alignments is not None:
        line = alignment_trace(d.alignments, p.section)
        if line is not None:
            all_traces.append(line)
            all_owners.append(None)
    extra = layer_traces(d, p) if layers else []
    all_traces += extra
    all_owners += [None] * len(extra)
    key = scene.figure_key({**p.key_params(), "survey": d.survey_id, "models": list(geom.key)})
    scene.remember_picks(key, all_owners)
    layout = scene_layout(geom, p, key, d)
    n_points = point_count(extra)
    stats.update(points=n_points, survey_id=d.survey_id, key=key, traces=len(all_traces))
    return {"data": all_traces, "layout": layout}, stats


def point_count(traces: list[dict]) -> int:
    """How many scan points ``traces`` draw (the traces of :data:`POINTS_LAYER`, whatever their names)."""
    return sum(len(t["x"]) for t in traces if t.get("meta") == POINTS_LAYER)


def layers_status(traces: list[dict], survey_id: str | None, note: str | None) -> str:
    """The line under the view: how many scan points ``traces`` draw (counted by their kind, not by their
    translated names) and ``note`` (already in the reader's language)."""
    n = point_count(traces)
    return (_("{n} scan points of survey {survey}", n=format_number(n), survey=survey_id) if n else "") + (
        "; " + note if note else "")

def layer_traces(d: TwinData, p: TwinParams) -> list[dict]:
    """The scan points (in the storeys and section box shown) and the sensor devices, as traces."""
    out = []
    if d.points is not None and len(d.points):
        pts = _points_in_view(d.points, d.geom, visible_elements(d.geom, p), p)
        if len(pts):
            out.append(points_trace(pts))
    if d.devices:
        out.append(devices_trace(d.devices, d.geom))
    return out


def selected_trace(geom: SceneGeometry, element: int | None) -> dict:
    """Trace 0 of every twin figure: the selected element in full detail (an empty, hidden trace when none)."""
    if element is None:
        return dict(type="mesh3d", x=[], y=[], z=[], i=[], j=[], k=[], name="selected", visible=False,
                    showlegend=False, hoverinfo="skip")
    v, f, _owner, _faces = scene.gather(geom, np.array([element]), np.zeros(0, np.int64))
    trace = scene.mesh_trace(v, f, _("selected: {ifc_class}", ifc_class=geom.ifc_class[element]), SELECTED_COLOR)
    trace["showlegend"] = False
    return trace


def _lit_elements(d: TwinData, geom: SceneGeometry) -> np.ndarray:
    lit = np.zeros(geom.element_count, bool)
    for dev in d.devices:
        if dev.get("active_warnings") and dev.get("global_id"):
            i = geom.index_of(dev["global_id"])
            if i is not None:
                lit[i] = True
    return lit


def _label(value, mode: str) -> str:
    if mode == "status":
        return scene.STATUS_LABELS.get(value, str(value))
    return str(value)


def _points_in_view(points, geom: SceneGeometry, vis: np.ndarray, p: TwinParams):
    xyz = points[["x_m", "y_m", "z_m"]].to_numpy(np.float32)
    keep = np.ones(len(xyz), bool)
    if p.section:
        for axis, (a, b) in enumerate(p.section):
            keep &= (xyz[:, axis] >= a) & (xyz[:, axis] <= b)
    if p.storeys and vis.any():
        z0, z1 = geom.lo[vis, 2].min(), geom.hi[vis, 2].max()
        keep &= (xyz[:, 2] >= z0) & (xyz[:, 2] <= z1)
    return points[keep]


def distance_rgb(distance_m: np.ndarray) -> np.ndarray:
    """(n, 3) uint8: the colours :func:`points_trace` gives signed distances (metres), computed here: plotly's
    ``RdBu`` scale over +-``DISTANCE_CLIP_MM``, blue inside the solid, red standing proud (for the WebGL viewer)."""
    from plotly.colors import PLOTLY_SCALES, unlabel_rgb  # type: ignore[import-untyped]  # no stubs

    stops = PLOTLY_SCALES[POINTS_COLORSCALE]
    at = np.array([float(s) for s, _c in stops])
    rgb = np.array([unlabel_rgb(c) for _s, c in stops], dtype=np.float64)
    mm = np.clip(np.asarray(distance_m, np.float64) * 1000.0, -DISTANCE_CLIP_MM, DISTANCE_CLIP_MM)
    t = np.nan_to_num((mm + DISTANCE_CLIP_MM) / (2 * DISTANCE_CLIP_MM), nan=0.5)
    return np.stack([np.interp(t, at, rgb[:, c]) for c in range(3)], axis=1).round().astype(np.uint8)


def points_trace(points) -> dict:
    mm = np.clip(points["distance_m"].to_numpy(np.float32) * 1000.0, -DISTANCE_CLIP_MM, DISTANCE_CLIP_MM)
    return dict(type="scatter3d", mode="markers", name=_("scan points"), meta=POINTS_LAYER,
                x=points["x_m"].to_numpy(np.float32),
                y=points["y_m"].to_numpy(np.float32), z=points["z_m"].to_numpy(np.float32), hoverinfo="skip",
                # plotly's RdBu runs blue (low) to red (high): inside the solid blue, standing proud red
                marker=dict(size=1.6, color=mm.astype(np.float32), colorscale=POINTS_COLORSCALE,
                            cmin=-DISTANCE_CLIP_MM, cmax=DISTANCE_CLIP_MM,
                            colorbar=dict(title=dict(text=_("signed distance (mm)")), len=0.5, x=1.0, thickness=12)))


def alignment_trace(xyz: np.ndarray, section=None) -> dict | None:
    """The reference lines as one line trace; with a section box ``((x0, x1), (y0, y1), (z0, z1))`` the
    vertices outside it become breaks (a segment is drawn only when both its ends are inside). None when
    nothing is left to draw."""
    xyz = np.asarray(xyz, np.float64).copy()
    if section:
        inside = np.ones(len(xyz), bool)
        for axis, (a, b) in enumerate(section):
            inside &= (xyz[:, axis] >= a) & (xyz[:, axis] <= b)
        xyz[~inside] = np.nan
    finite: np.ndarray = np.asarray(np.isfinite(xyz).all(axis=1), bool)
    # a line needs two consecutive drawn vertices
    if not (finite[1:] & finite[:-1]).any():
        return None
    return dict(type="scatter3d", mode="lines", name=_("alignments"), meta=ALIGNMENTS_LAYER,
                # plain lists, None at the breaks (JSON null: a gap in every plotly version)
                **{c: [round(float(v), 4) if ok else None for v, ok in zip(xyz[:, i], finite.tolist())]
                   for i, c in enumerate("xyz")},
                line=dict(color=ALIGNMENT_COLOR, width=4), hoverinfo="name", connectgaps=False)


def devices_trace(devices: list[dict], geom: SceneGeometry) -> dict:
    xs, ys, zs, colors, texts, sizes = [], [], [], [], [], []
    for dev in devices:
        pos = [dev.get("x_m"), dev.get("y_m"), dev.get("z_m")]
        if any(v is None for v in pos):
            gid = dev.get("global_id")
            i = geom.index_of(gid) if gid else None
            if i is None:
                continue
            pos = ((geom.lo[i] + geom.hi[i]) / 2).tolist()
        xs.append(pos[0])
        ys.append(pos[1])
        zs.append(pos[2])
        warned = bool(dev.get("active_warnings"))
        colors.append(SEVERITY_COLORS.get(dev.get("severity") if warned else None, SEVERITY_COLORS[None]))
        sizes.append(9 if warned else 6)
        texts.append(f"{dev['device_id']} ({dev['device_type']})"
                     + ("<br>" + _("{n} active: {kinds}", n=dev["active_warnings"], kinds=dev.get("warning_kinds"))
                        if warned else ""))
    return dict(type="scatter3d", mode="markers", name=_("sensors"), meta=SENSORS_LAYER, x=xs, y=ys, z=zs, text=texts,
                hovertemplate="%{text}<extra></extra>",
                marker=dict(size=sizes, color=colors, symbol="diamond", line=dict(width=1, color="#111")))


def scene_layout(geom: SceneGeometry, p: TwinParams, key: str, d: TwinData) -> dict:
    axis = dict(showbackground=True, backgroundcolor="rgb(244,246,250)", gridcolor="rgb(220,224,232)",
                zerolinecolor="rgb(200,205,215)")
    titles = {"xaxis": _("x (m)"), "yaxis": _("y (m)"), "zaxis": _("z (m)")}
    axes = {name: dict(axis, title=dict(text=titles[name])) for name in ("xaxis", "yaxis", "zaxis")}
    if p.section:
        for name, rng in zip(("xaxis", "yaxis", "zaxis"), p.section):
            axes[name].update(range=list(rng), autorange=False)
    return dict(template="none", margin=dict(l=0, r=0, t=0, b=0), paper_bgcolor="rgba(0,0,0,0)",
                uirevision=f"{p.site}:{'/'.join(geom.key)}",
                legend=dict(x=0.01, y=0.99, bgcolor="rgba(255,255,255,0.7)", itemsizing="constant"),
                scene=dict(aspectmode="data", camera=dict(eye=dict(x=1.35, y=-1.55, z=0.95)), **axes),
                meta={"key": key, "site": p.site, "survey": d.survey_id})


def with_selected(p: TwinParams, global_id: str | None) -> TwinParams:
    return replace(p, selected=global_id)
