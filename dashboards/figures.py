"""2D figures of the workbench (plotly dicts) and the small aggregations they draw from.

Each function takes records or arrays already read from the store and returns a figure;
nothing here reads the store.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import numpy as np

from sitetwin.dashboards.components import PLOT_LAYOUT, label
from sitetwin.dashboards.scene import PALETTE
from sitetwin.data.i18n import N_, Translator

_ = Translator("dashboards")
EMPTY_COUNTS = {"hazards": N_("No hazards."), "detections": N_("No detections.")}
# the element statistics a histogram can draw, as the axis names them (the column names stay in the frame)
ELEMENT_STATISTICS = {"mean_mm": N_("element mean signed distance (mm)"),
                      "p95_mm": N_("element p95 |distance| (mm)"),
                      "rms_mm": N_("element RMS distance (mm)")}

DAY_MS = 86_400_000             # a day on a plotly date axis
HEAT_CELL_M = 0.5
HEAT_CLIP_MM = 20.0


def _layout(**kw) -> dict:
    out = dict(PLOT_LAYOUT)
    out.update(kw)
    return out


def empty_figure(text: str) -> dict:
    """A blank figure that says why it is blank."""
    return {"data": [], "layout": _layout(xaxis=dict(visible=False), yaxis=dict(visible=False),
                                          annotations=[dict(text=text, showarrow=False, x=0.5, y=0.5, xref="paper",
                                                            yref="paper", font=dict(size=13, color="#64748b"))])}


# --------------------------------------------------------------------------------------
# deviation

def deviation_grid(x: np.ndarray, y: np.ndarray, d_mm: np.ndarray, cell_m: float = HEAT_CELL_M):
    """Mean signed distance per plan cell: (x centres, y centres, (ny, nx) mean with NaN where empty, counts)."""
    x, y, d_mm = (np.asarray(a, np.float64) for a in (x, y, d_mm))
    if not len(x):
        return np.zeros(0), np.zeros(0), np.zeros((0, 0)), np.zeros((0, 0), int)
    x0, y0 = np.floor(x.min() / cell_m) * cell_m, np.floor(y.min() / cell_m) * cell_m
    nx = int(np.floor((x.max() - x0) / cell_m)) + 1
    ny = int(np.floor((y.max() - y0) / cell_m)) + 1
    ix = np.minimum(((x - x0) / cell_m).astype(int), nx - 1)
    iy = np.minimum(((y - y0) / cell_m).astype(int), ny - 1)
    flat = iy * nx + ix
    counts = np.bincount(flat, minlength=nx * ny).reshape(ny, nx)
    sums = np.bincount(flat, weights=d_mm, minlength=nx * ny).reshape(ny, nx)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return x0 + cell_m * (np.arange(nx) + 0.5), y0 + cell_m * (np.arange(ny) + 0.5), mean, counts


def heatmap_figure(xc, yc, mean_mm, *, title: str = "") -> dict:
    if not mean_mm.size:
        return empty_figure(_("No scan points on the chosen elements."))
    z = np.clip(mean_mm, -HEAT_CLIP_MM, HEAT_CLIP_MM).astype(np.float32)
    return {"data": [dict(type="heatmap", x=xc.astype(np.float32), y=yc.astype(np.float32), z=z, colorscale="RdBu",
                          zmin=-HEAT_CLIP_MM, zmax=HEAT_CLIP_MM, hoverongaps=False,
                          colorbar=dict(title=dict(text=_("mean signed distance (mm)"))),
                          hovertemplate=_("x %{x:.1f} m, y %{y:.1f} m: %{z:.1f} mm") + "<extra></extra>")],
            "layout": _layout(title=dict(text=title), xaxis=dict(title=dict(text=_("x (m)")), constrain="domain"),
                              yaxis=dict(title=dict(text=_("y (m)")), scaleanchor="x"))}


def distance_histogram(d_mm: np.ndarray, *, clip_mm: float = 40.0, bin_mm: float = 1.0) -> dict:
    d = np.clip(np.asarray(d_mm, np.float64), -clip_mm, clip_mm)
    if not len(d):
        return empty_figure(_("No scan points on the chosen elements."))
    edges = np.arange(-clip_mm, clip_mm + bin_mm, bin_mm)
    counts, _edges = np.histogram(d, bins=edges)
    return {"data": [dict(type="bar", x=(edges[:-1] + bin_mm / 2).astype(np.float32), y=counts.astype(np.int32),
                          marker=dict(color="#4e79a7"),
                          hovertemplate=_("%{x:.0f} mm: %{y} points") + "<extra></extra>")],
            "layout": _layout(bargap=0.02, xaxis=dict(title=dict(text=_("signed distance to the model (mm)"))),
                              yaxis=dict(title=dict(text=_("scan points"))))}


def element_deviation_histogram(frame, column: str = "mean_mm") -> dict:
    """Per-class histogram of an element figure (one trace per class)."""
    data = []
    measured = frame[frame[column].notna()] if len(frame) else frame
    for i, (cls, g) in enumerate(sorted(measured.groupby("ifc_class"), key=lambda kv: kv[0]) if len(measured) else []):
        data.append(dict(type="histogram", x=g[column].to_numpy(np.float32), name=cls, opacity=0.75,
                         marker=dict(color=PALETTE[i % len(PALETTE)]), xbins=dict(size=1.0)))
    if not data:
        return empty_figure(_("No measured element on the chosen storeys and classes."))
    title = _(ELEMENT_STATISTICS[column]) if column in ELEMENT_STATISTICS else _("element {column} (mm)", column=column)
    return {"data": data, "layout": _layout(barmode="overlay",
                                            xaxis=dict(title=dict(text=title)),
                                            yaxis=dict(title=dict(text=_("elements"))))}


def tolerance_table(frame, tolerances: dict[str, float], default_mm: float) -> list[dict]:
    """Per IFC class: elements, measured, within tolerance (share), out of tolerance, median and worst p95."""
    out: list[dict] = []
    if not len(frame):
        return out
    for cls, g in frame.groupby("ifc_class"):
        tol = tolerances.get(cls, default_mm)
        m = g[g["points"] > 0]
        p95 = m["p95_mm"].to_numpy(np.float64)
        within = int((np.abs(m["mean_mm"].to_numpy(np.float64)) <= tol).sum()) if len(m) else 0
        out.append({"ifc_class": cls, "tolerance_mm": tol, "elements": int(len(g)), "measured": int(len(m)),
                    "within": within, "within_pct": round(100.0 * within / len(m), 1) if len(m) else None,
                    "out_of_tolerance": int((g["status"] == "out_of_tolerance").sum()),
                    "median_p95_mm": round(float(np.median(p95)), 1) if len(p95) else None,
                    "worst_p95_mm": round(float(p95.max()), 1) if len(p95) else None})
    return sorted(out, key=lambda r: r["ifc_class"])


def worst_elements(frame, limit: int = 15) -> list[dict]:
    """Measured elements with the largest p95 |distance|, worst first."""
    if not len(frame):
        return []
    m = frame[frame["points"] > 0].sort_values("p95_mm", ascending=False).head(limit)
    return m.to_dict("records")


# --------------------------------------------------------------------------------------
# progress

def s_curve_figure(points: Sequence[dict], as_of: dt.date | None = None) -> dict:
    """Planned share of scheduled elements by date (a step line) and the share seen built at each survey."""
    if not points:
        return empty_figure(_("No schedule linked to the model."))
    seen = [p for p in points if p.get("actual_pct") is not None]
    data = [dict(type="scatter", mode="lines", line=dict(shape="hv", color="#4e79a7", width=2), name=_("planned"),
                 x=[p["date"].isoformat() for p in points], y=[p["planned_pct"] for p in points]),
            dict(type="scatter", mode="lines+markers", name=_("seen built (surveys)"),
                 line=dict(color="#e15759", width=2),
                 marker=dict(size=9), x=[p["date"].isoformat() for p in seen], y=[p["actual_pct"] for p in seen])]
    shapes = []
    if as_of:
        shapes.append(dict(type="line", xref="x", yref="paper", x0=as_of.isoformat(), x1=as_of.isoformat(), y0=0,
                           y1=1, line=dict(color="#64748b", dash="dot")))
    return {"data": data, "layout": _layout(shapes=shapes, yaxis=dict(title=dict(text=_("% of scheduled elements")),
                                                                      range=[0, 102]),
                                            xaxis=dict(title=dict(text=_("date"))), legend=dict(x=0.02, y=0.98))}


def completion_figure(rows: list[dict], key: str) -> dict:
    if not rows:
        return empty_figure(_("Nothing scheduled."))
    names = [str(r[key] if r[key] is not None else _("(none)")) for r in rows]
    return {"data": [dict(type="bar", name=_("planned"), x=names, y=[r["planned_pct"] for r in rows],
                          marker=dict(color="#a0c4e8")),
                     dict(type="bar", name=_("seen built"), x=names, y=[r["actual_pct"] for r in rows],
                          marker=dict(color="#e15759"))],
            "layout": _layout(barmode="group", yaxis=dict(title=dict(text=_("% complete")), range=[0, 105]),
                              legend=dict(orientation="h", y=1.1))}


# --------------------------------------------------------------------------------------
# hazards and detections

def timeline_figure(rows: list[dict]) -> dict:
    """Hazards per day, stacked by rule."""
    if not rows:
        return empty_figure(_("No hazards."))
    rules = sorted({r["rule"] for r in rows})
    days = sorted({r["day"] for r in rows})
    data = []
    for i, rule in enumerate(rules):
        per_day: dict[dt.date, int] = {}
        for r in rows:
            if r["rule"] == rule:
                per_day[r["day"]] = per_day.get(r["day"], 0) + r["hazards"]
        data.append(dict(type="bar", name=label("rule", rule), x=[d.isoformat() for d in days],
                         y=[per_day.get(d, 0) for d in days],
                         width=[DAY_MS * 0.8] * len(days), marker=dict(color=PALETTE[i % len(PALETTE)])))
    pad = dt.timedelta(days=1)
    return {"data": data, "layout": _layout(barmode="stack", yaxis=dict(title=dict(text=_("hazards"))),
                                            xaxis=dict(title=dict(text=_("day")), type="date",
                                                       range=[(days[0] - pad).isoformat(),
                                                              (days[-1] + pad).isoformat()]),
                                            legend=dict(orientation="h", y=1.12))}


def counts_figure(rows: list[dict], value: str, title: str, *, horizontal: bool = True) -> dict:
    if not rows:
        return empty_figure(_(EMPTY_COUNTS[value]) if value in EMPTY_COUNTS else _("Nothing to show."))
    keys = [str(r["key"]) for r in rows][::-1]
    vals = [r[value] for r in rows][::-1]
    bar: dict[str, Any] = (dict(type="bar", orientation="h", y=keys, x=vals) if horizontal
                           else dict(type="bar", x=keys, y=vals))
    bar["marker"] = dict(color="#4e79a7")
    return {"data": [bar], "layout": _layout(title=dict(text=title), margin=dict(l=110, r=20, t=40, b=40))}


# --------------------------------------------------------------------------------------
# panoramas

def minimap_figure(footprints: list[dict], panos: list[dict], selected: str | None) -> dict:
    """Plan view: element footprints as rectangles, panoramas as markers (click one to open it)."""
    shapes = [dict(type="rect", x0=f["x0"], y0=f["y0"], x1=f["x1"], y1=f["y1"], line=dict(width=0.5, color="#94a3b8"),
                   fillcolor="rgba(148,163,184,0.25)" if f["ifc_class"] == "IfcSlab" else "rgba(71,85,105,0.6)",
                   layer="below") for f in footprints]
    posed = [p for p in panos if p.get("position_m")]
    data = [dict(type="scatter", mode="markers+text", x=[p["position_m"][0] for p in posed],
                 y=[p["position_m"][1] for p in posed], text=[str(i + 1) for i in range(len(posed))],
                 textposition="top center", customdata=[p["pano_id"] for p in posed],
                 hovertext=[f"{p['name'] or p['pano_id']} ({p['captured_at']})" for p in posed],
                 hovertemplate="%{hovertext}<extra></extra>",
                 marker=dict(size=[16 if p["pano_id"] == selected else 11 for p in posed],
                             color=["#e15759" if p["pano_id"] == selected else "#1d4ed8" for p in posed],
                             line=dict(width=1, color="#fff")), name=_("panoramas"))]
    return {"data": data, "layout": _layout(shapes=shapes, showlegend=False, margin=dict(l=35, r=10, t=10, b=30),
                                            xaxis=dict(title=dict(text=_("x (m)")), constrain="domain"),
                                            yaxis=dict(title=dict(text=_("y (m)")), scaleanchor="x"),
                                            clickmode="event")}


def view_figure(image_uri: str, width: int, height: int, shapes: Sequence[dict] = ()) -> dict:
    """A perspective view as an image trace in pixel coordinates (clicks report the pixel)."""
    return {"data": [dict(type="image", source=image_uri, x0=0, y0=0, dx=1, dy=1, hoverinfo="x+y",
                          hovertemplate=_("pixel %{x:.0f}, %{y:.0f}") + "<extra></extra>")],
            "layout": _layout(margin=dict(l=0, r=0, t=0, b=0), xaxis=dict(visible=False, range=[0, width]),
                              yaxis=dict(visible=False, range=[height, 0], scaleanchor="x"), shapes=list(shapes),
                              dragmode=False, clickmode="event")}


# --------------------------------------------------------------------------------------
# risk

def risk_trend_figure(trend: Sequence[dict], now: dict | None, tier_limits: dict[str, float]) -> dict:
    """A site's stored risk scores over time (and today's live score), with the tier bands behind them.

    ``trend`` rows are oversight's ``risk_trend`` (as_of, score, subscores); ``now`` is
    ``{"as_of", "score"}`` of the live score; ``tier_limits`` maps tier -> upper score.
    """
    data = []
    if trend:
        data.append({"type": "scatter", "mode": "lines+markers", "name": _("stored score"),
                     "x": [str(r["as_of"]) for r in trend], "y": [r["score"] for r in trend],
                     "line": {"color": "#1d4ed8"}, "hovertemplate": "%{x}: %{y:.1f}<extra></extra>"})
        for name in sorted({k for r in trend for k in r.get("subscores", {})}):
            data.append({"type": "scatter", "mode": "lines", "name": label("risk_component", name),
                         "visible": "legendonly", "x": [str(r["as_of"]) for r in trend],
                         "y": [r["subscores"].get(name) for r in trend]})
    if now is not None:
        data.append({"type": "scatter", "mode": "markers", "name": _("now (not stored)"), "x": [str(now["as_of"])],
                     "y": [now["score"]], "marker": {"color": "#b91c1c", "size": 10, "symbol": "diamond"},
                     "hovertemplate": _("now: %{y:.1f}") + "<extra></extra>"})
    colors = {"A": "rgba(21,128,61,0.08)", "B": "rgba(180,83,9,0.08)", "C": "rgba(185,28,28,0.08)"}
    shapes, lo = [], 0.0
    for tier, hi in sorted(tier_limits.items(), key=lambda kv: kv[1]):
        shapes.append(dict(type="rect", xref="paper", x0=0, x1=1, y0=lo, y1=min(hi, 100.0), line=dict(width=0),
                           fillcolor=colors.get(tier, "rgba(0,0,0,0.04)"), layer="below"))
        lo = min(hi, 100.0)
    return {"data": data, "layout": _layout(shapes=shapes, yaxis=dict(range=[0, 100], title=dict(text=_("risk score"))),
                                            xaxis=dict(type="date"), margin=dict(l=50, r=10, t=10, b=30),
                                            legend=dict(orientation="h", y=-0.25), showlegend=True)}
