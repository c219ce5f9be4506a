"""Findings: every finding the caller may see, filtered; one finding's full history; the workflow steps
the caller's role allows (contractor: submit a rectification with evidence; regulator: verify-close or
reopen); overdue findings marked and escalated; the filtered findings as a BCF file."""

from __future__ import annotations

from urllib.parse import urlencode

import dash
from dash import ALL, Input, Output, State, ctx, dcc, html

from sitetwin.dashboards import components as c
from sitetwin.dashboards import inputs as i
from sitetwin.dashboards.callbacks import callback
from sitetwin.dashboards.pages._labels import cell, columns, label, num, page_title, severity, when
from sitetwin.dashboards.regulator import BCF_VERSIONS
from sitetwin.data.i18n import N_, Translator
from sitetwin.oversight.findings import CATEGORIES, SEVERITIES

_ = Translator("dashboards.pages")
NAME = N_("Findings")
STATUS_OPTIONS = [{"label": N_("open"), "value": "open"},
                  {"label": N_("rectification submitted"), "value": "rectification_submitted"},
                  {"label": N_("verified closed"), "value": "verified_closed"},
                  {"label": N_("reopened"), "value": "reopened"}]
ACTION_BUTTONS = ("submit", "verify", "reopen", "comment")
ACTION_LABELS = {"submit": N_("Submit rectification"), "verify": N_("Verify and close"), "reopen": N_("Reopen"),
                 "comment": N_("Comment")}

i.declare({
    "findings-selected.data": i.optional(i.object_id), "findings-refresh.data": i.optional(i.count),
    "findings-f-site.value": i.optional(i.site_code),
    "findings-f-status.value": i.optional(i.list_of(i.one_of([o["value"] for o in STATUS_OPTIONS]))),
    "findings-f-severity.value": i.optional(i.one_of(SEVERITIES)),
    "findings-f-category.value": i.optional(i.one_of(CATEGORIES)),
    "findings-f-overdue.value": i.optional(i.list_of(i.one_of(["overdue"]))),
    "findings-bcf-version.value": i.optional(i.one_of(BCF_VERSIONS)),
    "findings-bcf-options.value": i.optional(i.list_of(i.one_of(["snapshots"]))),
    "findings-note.value": i.optional(i.text(i.NOTE_MAX, multiline=True)),
    "findings-evidence.value": i.optional(i.text(i.NOTE_MAX, multiline=True)),
    "findings-due.value": i.optional(i.day(blank_ok=True)),
})
i.declare_pattern("findings-open", finding=i.object_id)


def layout(site: str | None = None, finding: str | None = None, **query):
    options = _site_options()
    site = site if site in [o["value"] for o in options] else None
    return html.Div([
        dcc.Store(id="findings-selected", data=finding),
        dcc.Store(id="findings-refresh", data=0),
        dcc.Download(id="findings-download"),
        html.H1(_("Findings")),
        html.Div([
            c.control(_("site"), dcc.Dropdown(id="findings-f-site", options=options, value=site,
                                              placeholder=_("all my sites"))),
            c.control(_("status"), dcc.Dropdown(id="findings-f-status", multi=True, placeholder=_("any status"),
                                                options=[{**o, "label": _(o["label"])} for o in STATUS_OPTIONS])),
            c.control(_("severity"), dcc.Dropdown(id="findings-f-severity", placeholder=_("any"), options=[
                {"label": label("severity", v), "value": v} for v in SEVERITIES])),
            c.control(_("category"), dcc.Dropdown(id="findings-f-category", placeholder=_("any"), options=[
                {"label": label("category", v), "value": v} for v in CATEGORIES])),
            dcc.Checklist(id="findings-f-overdue", options=[{"label": _("overdue only"), "value": "overdue"}],
                          value=[]),
        ], className="controls"),
        html.Div([
            c.control(_("BCF version"), dcc.RadioItems(id="findings-bcf-version", options=list(BCF_VERSIONS),
                                                       value=BCF_VERSIONS[0], inline=True)),
            dcc.Checklist(id="findings-bcf-options", options=[{"label": _("with snapshots"), "value": "snapshots"}],
                          value=["snapshots"]),
            html.Button(_("Download these as BCF"), id="findings-bcf", className="button", n_clicks=0),
            html.Button(_("Escalate overdue findings"), id="findings-escalate", className="button secondary",
                        n_clicks=0, title=_("raise the escalation level of overdue findings (regulators)")),
        ], className="controls"),
        html.Div(id="findings-msg", className="status-line"),
        html.Div(id="findings-summary", className="figures"),
        html.Div([
            html.Div([html.H2(_("Findings")), html.Div(id="findings-table")], className="card"),
            html.Div([
                html.Div(c.empty(_("Open a finding to see its history and act on it."), id="findings-detail-empty"),
                         id="findings-detail"),
                html.Div([
                    html.H3(_("Act on this finding")),
                    dcc.Textarea(id="findings-note", placeholder=_("note (a reason is needed to reopen)"),
                                 style={"width": "100%", "height": "3.5rem"}),
                    dcc.Textarea(id="findings-evidence",
                                 placeholder=_("evidence of the rectification (what was done, photos, figures): "
                                               "contractors"),
                                 style={"width": "100%", "height": "3.5rem"}),
                    c.control(_("new due date when reopening (YYYY-MM-DD)"),
                              dcc.Input(id="findings-due", type="text", placeholder=_("default by severity"))),
                    html.Div([html.Button(_(ACTION_LABELS[a]), id=f"findings-{a}", className="button", n_clicks=0)
                              for a in ACTION_BUTTONS], style={"display": "flex", "gap": ".4rem", "flexWrap": "wrap"}),
                    html.Div(id="findings-action-msg", className="status-line"),
                ], id="findings-actions", className="actions"),
            ], className="card element-card"),
        ], className="grid-2"),
    ])


@callback(Output("findings-f-site", "options"), Input("findings-refresh", "data"))
def setup(refresh):
    return _site_options()


def _site_options():
    from sitetwin.dashboards.access import sites_in_scope

    return [{"label": f"{s['site_code']} · {s['name'] or ''}".rstrip(" ·"), "value": s["site_code"]}
            for s in sites_in_scope()]


@callback(Output("findings-summary", "children"), Output("findings-table", "children"),
          Input("findings-f-site", "value"), Input("findings-f-status", "value"),
          Input("findings-f-severity", "value"), Input("findings-f-category", "value"),
          Input("findings-f-overdue", "value"), Input("findings-refresh", "data"))
def fill(site, status, severity, category, overdue, refresh):
    """Findings in scope (oversight.list_findings) with the filters; overdue ones marked with their escalation."""
    from sitetwin.dashboards.regulator import FINDINGS_SHOWN, findings

    rows = findings(site=site, status=status, severity=severity, category=category,
                    overdue="overdue" in (overdue or []))
    by = {}
    for f in rows:
        by[f.status] = by.get(f.status, 0) + 1
    summary = [c.figure_num(num(len(rows)), _("findings (newest {n})", n=num(FINDINGS_SHOWN))
                            if len(rows) >= FINDINGS_SHOWN else _("findings"), id="findings-count"),
               c.figure_num(num(by.get("open", 0) + by.get("reopened", 0)), _("to rectify")),
               c.figure_num(num(by.get("rectification_submitted", 0)), _("to verify")),
               c.figure_num(num(sum(1 for f in rows if f.overdue)), _("overdue"), id="findings-overdue-count")]
    if not rows:
        return summary, c.empty(_("No finding matches these filters."), id="findings-empty")
    return summary, _table(rows)


def _table(rows):
    cols = columns([("ref", N_("ref")), ("severity", N_("severity")), ("category", N_("category")),
                    ("title", N_("title")), ("status", N_("status")), ("due", N_("due")), ("overdue", N_("overdue")),
                    ("open", "")])

    def show(k, f):
        if k == "ref":
            return f.ref
        if k == "severity":
            return severity(f.severity)
        if k == "category":
            return label("category", f.category)
        if k == "status":
            return label("finding_status", f.status)
        if k == "overdue":
            if not f.overdue:
                return ""
            return c.badge(_("{n} d", n=num(f.overdue_days))
                           + (_(" · esc. {level}", level=f.escalation_level) if f.escalation_level else ""),
                           "overdue")
        if k == "open":
            return html.Button(_("open"), id={"type": "findings-open", "finding": f.finding_id}, n_clicks=0,
                               className="button secondary")
        return cell(getattr(f, k))

    body = [html.Tr([html.Td(show(k, f)) for k, _h in cols], className="overdue-row" if f.overdue else None)
            for f in rows]
    return html.Table([html.Thead(html.Tr([html.Th(h) for _k, h in cols])), html.Tbody(body)], className="simple",
                      id="findings-list")


@callback(Output("findings-selected", "data", allow_duplicate=True),
          Output("shell-state", "data", allow_duplicate=True),
          Input({"type": "findings-open", "finding": ALL}, "n_clicks"), prevent_initial_call=True)
def select(clicks):
    if not ctx.triggered_id or not any(clicks or []):
        raise dash.exceptions.PreventUpdate
    fid = ctx.triggered_id["finding"]
    return fid, {"finding": fid}


@callback(Output("findings-detail", "children"), *[Output(f"findings-{a}", "disabled") for a in ACTION_BUTTONS],
          Input("findings-selected", "data"), Input("findings-refresh", "data"))
def detail(fid, refresh):
    """The finding, its evidence and every event of its history (oversight.finding_history); the buttons the
    caller's role may use (the server checks again when one is pressed)."""
    from sitetwin.dashboards.regulator import finding_view

    if not fid:
        return (c.empty(_("Open a finding to see its history and act on it."), id="findings-detail-empty"),
                *[True] * len(ACTION_BUTTONS))
    from sitetwin.dashboards.access import site_store
    from sitetwin.dashboards.pages._labels import site_tz

    v = finding_view(fid)
    f = v.finding
    with site_store(f.site_code) as store:
        tz = site_tz(store, f.site_code)
    q = {"site": f.site_code}
    element = html.Span(dcc.Link(f.global_id, href=f"/twin?{urlencode({**q, 'element': f.global_id})}",
                                 id="findings-detail-element")) if f.global_id else None
    overdue = (c.badge(_("{n} days overdue", n=num(f.overdue_days)), "overdue") if f.overdue else _("no"))
    facts = c.facts([(_("site"), html.Span(dcc.Link(f.site_code, href=f"/?{urlencode(q)}"))),
                     (_("status"), html.Span(label("finding_status", f.status), id="findings-detail-status")),
                     (_("severity"), severity(f.severity)), (_("category"), label("category", f.category)),
                     (_("element"), element), (_("storey"), f.storey),
                     (_("location (m, site frame)"),
                      ", ".join(num(x, 2) for x in f.location_m) if f.location_m else None),
                     (_("raised"), _("{when} by {who}", when=when(f.raised_at, tz), who=f.raised_by)
                      + (f" ({f.source})" if f.source else "")),
                     (_("due"), when(f.due, tz)), (_("overdue"), html.Span(overdue, id="findings-detail-overdue")),
                     (_("escalation"), html.Span(_("level {level}: {to}", level=f.escalation_level, to=v.escalated_to)
                                                 if f.escalation_level else _("none"),
                                                 id="findings-detail-escalation"))])
    evidence = [html.H3(_("Evidence"))]
    pano = (f.evidence or {}).get("panorama") or ({"pano_id": f.evidence["pano_id"]}
                                                  if (f.evidence or {}).get("pano_id") else None)
    if pano:
        evidence.append(dcc.Link(_("open the panorama view"),
                                 href=f"/panoramas?{urlencode({**q, 'pano': pano['pano_id']})}",
                                 id="findings-detail-pano"))
    evidence.append(c.facts([(_evidence_key(k), _evidence_value(k, x)) for k, x in f.evidence.items()],
                            id="findings-detail-evidence")
                    if f.evidence else c.empty(_("No evidence recorded with the finding.")))
    rows = [{"seq": e.seq, "when": e.occurred_at, "who": e.actor, "what": label("event", e.kind),
             "status": label("finding_status", e.status) if e.status else "", "due": e.due, "note": e.note,
             "evidence": ((e.evidence or {}).get("description")
                          or (_evidence_value("", e.evidence)[:200] if e.evidence else None))}
            for e in v.events]
    history = [html.H3(_("History ({n} events, never overwritten)", n=num(len(rows)))),
               c.table(rows, columns([("seq", "#"), ("when", N_("when")), ("who", N_("who")), ("what", N_("what")),
                                      ("status", N_("status")), ("due", N_("due")), ("note", N_("note")),
                                      ("evidence", N_("evidence"))]), id="findings-history",
                       cell=lambda k, r: cell(r.get(k), tz=tz))]
    body = [html.H2(f"{f.ref}: {f.title}", id="findings-detail-title"), facts,
            html.P(f.description) if f.description else None, *evidence, *history]
    return (body, *[not v.allowed[a] for a in ACTION_BUTTONS])


EVIDENCE_LABELS = {"description": N_("description"), "hazard_id": N_("hazard"), "rule": N_("hazard type"),
                   "pano_id": N_("panorama"), "panorama": N_("panorama view"), "detections": N_("detections"),
                   "detection_id": N_("detection"), "box_px": N_("box (px)"), "pixel_uv": N_("pixel"),
                   "run_id": N_("detector run"), "source": N_("source"), "crops": N_("evidence crops"),
                   "yaw_deg": N_("yaw (°)"), "pitch_deg": N_("pitch (°)"), "fov_deg": N_("field of view (°)"),
                   "point_m": N_("point (m)"), "global_id": N_("element"), "class": N_("class"),
                   "score": N_("score"), "u": "u", "v": "v"}
EVIDENCE_SHOWN = 2000          # characters of one evidence entry


def _evidence_key(key) -> str:
    text = EVIDENCE_LABELS.get(str(key))
    return _(text) if text else str(key)


def _evidence_value(key, value) -> str:
    """A finding's stored evidence entry as the reader reads it: known keys labelled, codes labelled, numbers
    in the locale; the stored record itself is unchanged."""
    if key == "crops" and isinstance(value, list):
        return _.plural("{n} crop", "{n} crops", len(value))
    if key == "rule":
        return label("rule", value)
    if isinstance(value, dict):
        text = "; ".join(f"{_evidence_key(k)} {_evidence_value(k, x)}" for k, x in value.items())
    elif isinstance(value, (list, tuple)):
        text = "[" + ", ".join(_evidence_value(key, x) for x in value) + "]"
    elif isinstance(value, float):
        text = num(value, 2)
    elif value is None:
        text = "–"
    else:
        text = str(value)
    return text[:EVIDENCE_SHOWN]


@callback(Output("findings-action-msg", "children"), Output("findings-refresh", "data", allow_duplicate=True),
          *[Input(f"findings-{a}", "n_clicks") for a in ACTION_BUTTONS],
          State("findings-selected", "data"), State("findings-note", "value"), State("findings-evidence", "value"),
          State("findings-due", "value"), State("findings-refresh", "data"), prevent_initial_call=True)
def act(n_submit, n_verify, n_reopen, n_comment, fid, note, evidence, due, refresh):
    """A workflow step under the caller's role (oversight.findings); a refusal is said on the page."""
    from sitetwin.dashboards.regulator import act as do
    from sitetwin.data.errors import SitetwinError

    action = (ctx.triggered_id or "").removeprefix("findings-")
    if action not in ACTION_BUTTONS or not fid:
        raise dash.exceptions.PreventUpdate
    try:
        msg = do(fid, action, note=note, evidence_text=evidence, due=due)
    except SitetwinError as exc:         # refused (role, scope) or not possible (status): say why, change nothing
        return html.Span(str(exc), className="error-line", id="findings-action-error"), dash.no_update
    return html.Span(msg, id="findings-action-done"), (refresh or 0) + 1


@callback(Output("findings-download", "data"), Output("findings-msg", "children"),
          Input("findings-bcf", "n_clicks"), State("findings-f-site", "value"), State("findings-f-status", "value"),
          State("findings-f-severity", "value"), State("findings-f-category", "value"),
          State("findings-f-overdue", "value"), State("findings-bcf-version", "value"),
          State("findings-bcf-options", "value"), prevent_initial_call=True)
def download_bcf(n, site, status, severity, category, overdue, version, options):
    """The filtered findings as a .bcfzip (oversight.bcf.export_bcf: scoped, written to the audit log)."""
    from sitetwin.dashboards.regulator import bcf_export, findings

    if not n:
        raise dash.exceptions.PreventUpdate
    rows = findings(site=site, status=status, severity=severity, category=category,
                    overdue="overdue" in (overdue or []), limit=None)
    name, data, report = bcf_export([f.finding_id for f in rows], version or "2.1",
                                    snapshots="snapshots" in (options or []))
    msg = (_("BCF {version}: {topics} topics, {viewpoints} viewpoints, {snapshots} snapshots, {components} "
             "components", version=report.version, topics=num(report.topics), viewpoints=num(report.viewpoints),
             snapshots=num(report.snapshots), components=num(report.components))
           + (f"; {'; '.join(str(w) for w in report.warnings)}" if report.warnings else ""))   # str: reader's language
    return dcc.send_bytes(data, name), html.Span(msg, id="findings-bcf-done")


@callback(Output("findings-msg", "children", allow_duplicate=True),
          Output("findings-refresh", "data", allow_duplicate=True),
          Input("findings-escalate", "n_clicks"), State("findings-refresh", "data"), prevent_initial_call=True)
def escalate(n, refresh):
    """Escalate overdue findings now (oversight.escalate_overdue; it also runs from the CLI)."""
    from sitetwin.dashboards.regulator import escalate as run

    if not n:
        raise dash.exceptions.PreventUpdate
    done = run()
    where = ", ".join(sorted({_("{site} to {to}", site=d["site_code"], to=d["escalated_to"]) for d in done}))
    return (_.plural("{n} overdue finding of your sites escalated ({where}).",
                     "{n} overdue findings of your sites escalated ({where}).", len(done),
                     where=where or _("none due")),
            (refresh or 0) + 1)


dash.register_page(__name__, path="/findings", name=NAME, title=page_title(N_("findings")), order=7, layout=layout)
