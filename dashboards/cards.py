"""The element card: everything known about one model element, as the 3D twin and the panorama page show it."""

from __future__ import annotations

from typing import Any

from dash import dcc, html
from dash.development.base_component import Component

from sitetwin.dashboards import components as c
from sitetwin.dashboards import inputs as i

FINDING_SEVERITIES = ("low", "medium", "high", "critical")
FINDING_CATEGORIES = ("quality", "safety", "progress", "environment")

for _page in ("twin", "panorama"):          # the card's widgets, as both pages show it
    i.declare({f"{_page}-card-finding-title.value": i.optional(i.text(i.TITLE_MAX)),
               f"{_page}-card-severity.value": i.one_of(FINDING_SEVERITIES),
               f"{_page}-card-category.value": i.one_of(FINDING_CATEGORIES)})
    i.declare_pattern(f"{_page}-card-history", finding=i.object_id)


def element_card(page: str, el: dict, *, survey_id: str | None, history: list[dict], histogram: list[dict],
                 detections: tuple[int, list[dict]], hazards: list[dict], findings: list[Any]) -> list:
    """Card contents for element ``el`` (a ``current_elements`` row); ids are prefixed ``<page>-card-``."""
    p = f"{page}-card"
    now = next((h for h in history if h["survey_id"] == survey_id), None)
    head = [html.H2(el.get("name") or el["ifc_class"], id=f"{p}-name"),
            c.facts([("class", el["ifc_class"] + (f" ({el['predefined_type']})" if el.get("predefined_type") else "")),
                     ("GlobalId", html.Span(el["global_id"], id=f"{p}-gid")), ("model", el["model_id"]),
                     ("storey", el.get("storey")), ("type", el.get("type_name")), ("material", el.get("material")),
                     ("status", html.Span(now["status"] if now else ("not in the survey" if survey_id else "no survey"),
                                          id=f"{p}-status"))])]
    dev: list[Component] = [html.H3("Deviation" + (f" in survey {survey_id}" if survey_id else ""))]
    if now:
        dev.append(c.facts([("points", now["points"]), ("coverage", _pct(now["coverage"])),
                            ("mean", _mm(now["mean_mm"])), ("p95 |d|", _mm(now["p95_mm"])),
                            ("max", _mm(now["max_mm"]))], id=f"{p}-deviation"))
    else:
        dev.append(c.empty("Not measured: no survey on or before this day covers this element."))
    if histogram:
        dev.append(dcc.Graph(id=f"{p}-histogram", figure=histogram_figure(histogram), style={"height": "180px"},
                             config={"displayModeBar": False}))
    hist: list[Component] = [html.H3("Status history")]
    hist.append(c.table(history, [("epoch", "epoch"), ("status", "status"), ("points", "points"),
                                  ("p95_mm", "p95 (mm)")], id=f"{p}-history") if history
                else c.empty("No survey has measured this element yet."))
    n_det, det_rows = detections
    det: list[Component] = [html.H3(f"Detections ({n_det})")]
    det.append(c.table(det_rows, [("captured_at", "when"), ("class_name", "class"), ("confidence", "conf."),
                                  ("source_kind", "source")], id=f"{p}-detections",
                       cell=lambda k, r: c.fmt(r[k], 2) if k == "confidence" else c.fmt(r.get(k)))
               if det_rows else c.empty("No detection is tagged to this element."))
    if hazards:
        det += [html.H3(f"Hazards ({len(hazards)})"),
                c.table(hazards, [("started_at", "when"), ("rule", "rule"), ("severity", "severity")],
                        cell=lambda k, r: c.severity(r[k]) if k == "severity" else c.fmt(r.get(k)))]
    fnd: list[Component] = [html.H3(f"Findings ({len(findings)})")]
    rows = [{"ref": f.ref, "severity": f.severity, "title": f.title, "status": f.status, "due": f.due,
             "finding_id": f.finding_id} for f in findings]

    def finding_cell(k, r):
        if k == "severity":
            return c.severity(r[k])
        if k == "history":     # one widget per finding: its history opens in place (MATCH)
            return [html.Button("history", id={"type": f"{p}-history", "finding": r["finding_id"]}, n_clicks=0,
                                className="button secondary"),
                    html.Div(id={"type": f"{p}-history-view", "finding": r["finding_id"]})]
        return c.fmt(r.get(k))

    fnd.append(c.table(rows, [("ref", "ref"), ("severity", "severity"), ("title", "title"), ("status", "status"),
                              ("due", "due"), ("history", "")], id=f"{p}-findings", cell=finding_cell)
               if rows else c.empty("No finding on this element."))
    fnd.append(html.Details([
        html.Summary("Raise a finding on this element"),
        html.Div([
            dcc.Input(id=f"{p}-finding-title", placeholder="title",
                      style={"width": "100%"}, debounce=False),
            dcc.Dropdown(id=f"{p}-severity", options=list(FINDING_SEVERITIES), value="medium", clearable=False),
            dcc.Dropdown(id=f"{p}-category", options=list(FINDING_CATEGORIES), value="quality", clearable=False),
            html.Button("Raise", id=f"{p}-raise", className="button", n_clicks=0),
            html.Div(id=f"{p}-raise-msg", className="status-line"),
        ], style={"display": "grid", "gap": ".4rem"}),
    ]))
    props: list[Component] = [html.H3("Properties")]
    for pset, values in sorted((el.get("properties") or {}).items()):
        props.append(html.Details([html.Summary(pset), c.facts(sorted((values or {}).items()))]))
    for qto, values in sorted((el.get("quantities") or {}).items()):
        props.append(html.Details([html.Summary(qto), c.facts(sorted((values or {}).items()))]))
    if len(props) == 1:
        props.append(c.empty("The model gives this element no property sets."))
    return [*head, *dev, *hist, *det, *fnd, *props]


def histogram_figure(bins: list[dict]) -> dict:
    centers = [(b["bin_lo_mm"] + b["bin_hi_mm"]) / 2 for b in bins]
    widths = [max(0.1, b["bin_hi_mm"] - b["bin_lo_mm"]) for b in bins]
    return {"data": [{"type": "bar", "x": centers, "y": [b["points"] for b in bins], "width": widths,
                      "marker": {"color": "#4e79a7"}, "hovertemplate": "%{x:.1f} mm: %{y} points<extra></extra>"}],
            "layout": {**c.PLOT_LAYOUT, "margin": dict(l=40, r=10, t=10, b=35),
                       "xaxis": {"title": {"text": "signed distance (mm)"}}, "yaxis": {"title": {"text": "points"}}}}


def _mm(v) -> str:
    return "–" if v is None else f"{v:.1f} mm"


def _pct(v) -> str:
    return "–" if v is None else f"{100 * v:.0f} %"


def raise_on_element(site: str, global_id: str, title: str | None, severity: str, category: str, *,
                     evidence: dict | None = None) -> str:
    """Raise a finding on an element from a card (``oversight.raise_finding`` under the caller's scope)."""
    from sitetwin.dashboards.access import site_write_store
    from sitetwin.oversight.findings import raise_finding
    from sitetwin.oversight.queries import finding_number

    title = (title or "").strip()
    if not title:
        return "Give the finding a title."
    with site_write_store(site, "raise") as (store, scope):
        fid = raise_finding(store, site_code=site, category=category, severity=severity, title=title,
                            global_id=global_id, scope=scope, source="dashboard", source_ref=global_id,
                            evidence=evidence)
        number = finding_number(store, fid)
    return f"Finding {site}-{number} raised."


def finding_history_view(finding_id: str) -> html.Table | html.Div:
    """A finding's events, oldest first, as a small table (oversight's history, under the caller's scope)."""
    from sitetwin.dashboards.access import object_store, require_caller
    from sitetwin.oversight.findings import finding_history

    caller = require_caller()
    with object_store("findings", "finding_id", finding_id) as (store, site):
        events = finding_history(store, caller.scope, finding_id)
    rows = [{"when": e.occurred_at, "who": e.actor, "what": e.kind.replace("_", " "), "status": e.status,
             "note": e.note} for e in events]
    return c.table(rows, [("when", "when"), ("who", "who"), ("what", "what"), ("status", "status"), ("note", "note")])


def _history_callbacks() -> None:
    from dash import MATCH, Input, Output, no_update

    from sitetwin.dashboards.callbacks import callback

    for page in ("twin", "panorama"):
        @callback(Output({"type": f"{page}-card-history-view", "finding": MATCH}, "children"),
                  Input({"type": f"{page}-card-history", "finding": MATCH}, "n_clicks"), prevent_initial_call=True)
        def history(n, _page=page):
            from dash import ctx

            if not n:
                return no_update
            return finding_history_view(ctx.triggered_id["finding"]) if n % 2 else []


_history_callbacks()
