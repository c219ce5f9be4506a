"""The element card: everything known about one model element, as the 3D twin and the panorama page show it."""

from __future__ import annotations

from typing import Any

from dash import dcc, html
from dash.development.base_component import Component

from sitetwin.dashboards import components as c
from sitetwin.dashboards import inputs as i
from sitetwin.dashboards.components import label
from sitetwin.data.i18n import Translator, format_number, format_percent

_ = Translator("dashboards")

FINDING_SEVERITIES = ("low", "medium", "high", "critical")
FINDING_CATEGORIES = ("quality", "safety", "progress", "environment")
for _page in ("twin", "panorama"):          # the card's widgets, as both pages show it
    i.declare({f"{_page}-card-finding-title.value": i.optional(i.text(i.TITLE_MAX)),
               f"{_page}-card-severity.value": i.one_of(FINDING_SEVERITIES),
               f"{_page}-card-category.value": i.one_of(FINDING_CATEGORIES)})
    i.declare_pattern(f"{_page}-card-history", finding=i.object_id)


def element_card(page: str, el: dict, *, survey_id: str | None, history: list[dict], histogram: list[dict],
                 detections: tuple[int, list[dict]], hazards: list[dict], findings: list[Any],
                 tz: str | None = c.DEFAULT_TIME_ZONE) -> list:
    """Card contents for element ``el`` (a ``current_elements`` row); ids are prefixed ``<page>-card-``;
    times in the site's time zone ``tz``."""
    p = f"{page}-card"
    now = next((h for h in history if h["survey_id"] == survey_id), None)
    status = label("status", now["status"]) if now else (_("not in the survey") if survey_id else _("no survey"))
    head = [html.H2(el.get("name") or el["ifc_class"], id=f"{p}-name"),
            c.facts([(_("class"), el["ifc_class"] + (f" ({el['predefined_type']})" if el.get("predefined_type")
                                                      else "")),
                     ("GlobalId", html.Span(el["global_id"], id=f"{p}-gid")), (_("model"), el["model_id"]),
                     (_("storey"), el.get("storey")), (_("type"), el.get("type_name")),
                     (_("material"), el.get("material")),
                     (_("status"), html.Span(status, id=f"{p}-status"))])]
    dev: list[Component] = [html.H3(_("Deviation in survey {survey}", survey=survey_id) if survey_id
                                    else _("Deviation"))]
    if now:
        dev.append(c.facts([(_("points"), now["points"]), (_("coverage"), _pct(now["coverage"])),
                            (_("mean"), _mm(now["mean_mm"])), (_("p95 |d|"), _mm(now["p95_mm"])),
                            (_("max"), _mm(now["max_mm"]))], id=f"{p}-deviation"))
    else:
        dev.append(c.empty(_("Not measured: no survey on or before this day covers this element.")))
    if histogram:
        dev.append(dcc.Graph(id=f"{p}-histogram", figure=histogram_figure(histogram), style={"height": "180px"},
                             config={"displayModeBar": False}))
    hist: list[Component] = [html.H3(_("Status history"))]
    hist.append(c.table(history, [("epoch", _("epoch")), ("status", _("status")), ("points", _("points")),
                                  ("p95_mm", _("p95 (mm)"))], id=f"{p}-history",
                        cell=lambda k, r: label("status", r[k]) if k == "status" else c.fmt(r.get(k), tz=tz))
                if history else c.empty(_("No survey has measured this element yet.")))
    n_det, det_rows = detections
    det: list[Component] = [html.H3(_("Detections ({n})", n=format_number(n_det)))]

    def det_cell(k, r):
        if k == "confidence":
            return c.fmt(r[k], 2)
        if k == "source_kind":
            return label("source", r.get(k))
        return c.fmt(r.get(k), tz=tz)

    det.append(c.table(det_rows, [("captured_at", _("when")), ("class_name", _("class")), ("confidence", _("conf.")),
                                  ("source_kind", _("source"))], id=f"{p}-detections", cell=det_cell)
               if det_rows else c.empty(_("No detection is tagged to this element.")))
    if hazards:
        def hazard_cell(k, r):
            if k == "severity":
                return c.severity(r[k])
            if k == "rule":
                return label("rule", r.get(k))
            return c.fmt(r.get(k), tz=tz)

        det += [html.H3(_("Hazards ({n})", n=format_number(len(hazards)))),
                c.table(hazards, [("started_at", _("when")), ("rule", _("rule")), ("severity", _("severity"))],
                        cell=hazard_cell)]
    fnd: list[Component] = [html.H3(_("Findings ({n})", n=format_number(len(findings))))]
    rows = [{"ref": f.ref, "severity": f.severity, "title": f.title, "status": f.status, "due": f.due,
             "finding_id": f.finding_id} for f in findings]

    def finding_cell(k, r):
        if k == "severity":
            return c.severity(r[k])
        if k == "status":
            return label("finding_status", r[k])
        if k == "history":     # one widget per finding: its history opens in place (MATCH)
            return [html.Button(_("history"), id={"type": f"{p}-history", "finding": r["finding_id"]}, n_clicks=0,
                                className="button secondary"),
                    html.Div(id={"type": f"{p}-history-view", "finding": r["finding_id"]})]
        return c.fmt(r.get(k), tz=tz)

    fnd.append(c.table(rows, [("ref", _("ref")), ("severity", _("severity")), ("title", _("title")),
                              ("status", _("status")), ("due", _("due")), ("history", "")], id=f"{p}-findings",
                       cell=finding_cell)
               if rows else c.empty(_("No finding on this element.")))
    fnd.append(html.Details([
        html.Summary(_("Raise a finding on this element")),
        html.Div([
            dcc.Input(id=f"{p}-finding-title", placeholder=_("title"),
                      style={"width": "100%"}, debounce=False),
            dcc.Dropdown(id=f"{p}-severity", options=[{"label": label("severity", v), "value": v}
                                                      for v in FINDING_SEVERITIES], value="medium", clearable=False),
            dcc.Dropdown(id=f"{p}-category", options=[{"label": label("category", v), "value": v}
                                                      for v in FINDING_CATEGORIES], value="quality", clearable=False),
            html.Button(_("Raise"), id=f"{p}-raise", className="button", n_clicks=0),
            html.Div(id=f"{p}-raise-msg", className="status-line"),
        ], style={"display": "grid", "gap": ".4rem"}),
    ]))
    props: list[Component] = [html.H3(_("Properties"))]
    for pset, values in sorted((el.get("properties") or {}).items()):
        props.append(html.Details([html.Summary(pset), c.facts(sorted((values or {}).items()))]))
    for qto, values in sorted((el.get("quantities") or {}).items()):
        props.append(html.Details([html.Summary(qto), c.facts(sorted((values or {}).items()))]))
    if len(props) == 1:
        props.append(c.empty(_("The model gives this element no property sets.")))
    return [*head, *dev, *hist, *det, *fnd, *props]


def histogram_figure(bins: list[dict]) -> dict:
    centers = [(b["bin_lo_mm"] + b["bin_hi_mm"]) / 2 for b in bins]
    widths = [max(0.1, b["bin_hi_mm"] - b["bin_lo_mm"]) for b in bins]
    return {"data": [{"type": "bar", "x": centers, "y": [b["points"] for b in bins], "width": widths,
                      "marker": {"color": "#4e79a7"},
                      "hovertemplate": _("%{x:.1f} mm: %{y} points") + "<extra></extra>"}],
            "layout": {**c.PLOT_LAYOUT, "margin": dict(l=40, r=10, t=10, b=35),
                       "xaxis": {"title": {"text": _("signed distance (mm)")}},
                       "yaxis": {"title": {"text": _("points")}}}}


def _mm(v) -> str:
    return "–" if v is None else _("{value} mm", value=format_number(v, 1))


def _pct(v) -> str:
    return "–" if v is None else format_percent(v)


def raise_on_element(site: str, global_id: str, title: str | None, severity: str, category: str, *,
                     evidence: dict | None = None) -> str:
    """Raise a finding on an element from a card (``oversight.raise_finding`` under the caller's scope)."""
    from sitetwin.dashboards.access import site_write_store
    from sitetwin.oversight.findings import raise_finding
    from sitetwin.oversight.queries import finding_number

    title = (title or "").strip()
    if not title:
        return _("Give the finding a title.")
    with site_write_store(site, "raise") as (store, scope):
        fid = raise_finding(store, site_code=site, category=category, severity=severity, title=title,
                            global_id=global_id, scope=scope, source="dashboard", source_ref=global_id,
                            evidence=evidence)
        number = finding_number(store, fid)
    return _("Finding {ref} raised.", ref=site + "-" + str(number))


def finding_history_view(finding_id: str) -> html.Table | html.Div:
    """A finding's events, oldest first, as a small table (oversight's history, under the caller's scope)."""
    from sitetwin.dashboards.access import object_store, require_caller
    from sitetwin.oversight.findings import finding_history

    caller = require_caller()
    with object_store("findings", "finding_id", finding_id) as (store, site):
        events = finding_history(store, caller.scope, finding_id)
        tz = c.site_tz(store, site)
    rows = [{"when": e.occurred_at, "who": e.actor, "what": label("event", e.kind),
             "status": label("finding_status", e.status) if e.status else None, "note": e.note} for e in events]
    return c.table(rows, [("when", _("when")), ("who", _("who")), ("what", _("what")), ("status", _("status")),
                          ("note", _("note"))], tz=tz)


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
