"""Dangerous works (危大工程): the site's register with each work's plan approval, expert review, dates and
whether its approval is overdue, and the works' zones drawn on the site plan."""

from __future__ import annotations

import dash
from dash import Input, Output, dcc, html

from sitetwin.dashboards import components as c
from sitetwin.dashboards import inputs as i
from sitetwin.dashboards.access import scoped_store
from sitetwin.dashboards.callbacks import callback
from sitetwin.dashboards.pages._labels import cell, columns, num, page_title, site_tz
from sitetwin.data.i18n import N_, Translator

_ = Translator("dashboards.pages")
NAME = N_("Dangerous works")

# Stored values -> what a person reads
TYPES = {"foundation_pit": N_("foundation pit"), "formwork_support": N_("formwork and supports"),
         "lifting_installation": N_("lifting, crane and hoist erection"), "scaffolding": N_("scaffolding"),
         "demolition": N_("demolition"), "underground_excavation": N_("underground excavation"),
         "curtain_wall": N_("curtain wall installation"), "other": N_("other")}
SCALES = {"dangerous": N_("dangerous"), "beyond_scale": N_("beyond scale")}
REVIEWS = {"not_required": N_("not required"), "pending": N_("awaiting review"),
           "passed": N_("review passed"), "failed": N_("review failed")}
STATES = {"planned": N_("plan not approved"), "approved": N_("plan approved"), "active": N_("under way"),
          "finished": N_("works finished")}
# zone colours on the plan: overdue approvals stand out; finished works fade
COLOURS = {"overdue": "#dc2626", "planned": "#f59e0b", "approved": "#2563eb", "active": "#7c3aed",
           "finished": "#94a3b8"}

i.declare({"works-site.data": i.optional(i.site_code)})


def layout(site: str | None = None, **query):
    from sitetwin.dashboards.app import default_site

    site = default_site(site)
    if site is None:
        return c.site_missing("works")
    return html.Div([
        dcc.Store(id="works-site", data=site),
        html.H1(_("Dangerous works")),
        html.Div(id="works-summary", className="figures"),
        html.Div([
            html.Div([html.H2(_("Register")), html.Div(id="works-register")], className="card wide"),
            html.Div([html.H2(_("Zones on the site plan")),
                      dcc.Graph(id="works-plan", style={"height": "420px"})], className="card wide"),
        ], className="grid"),
    ])


@callback(Output("works-summary", "children"), Output("works-register", "children"), Output("works-plan", "figure"),
          Input("works-site", "data"))
def fill(site):
    from sitetwin.oversight.dangerous_works import list_works, work_zone

    with scoped_store() as (store, scope):
        works = list_works(store, scope, site_code=site)
        zones = [(w, work_zone(store, w)) for w in works]
        tz = site_tz(store, site)
    summary = [c.figure_num(num(len(works)), _("works registered"), id="works-total"),
               c.figure_num(num(sum(w.needs_review for w in works)), _("beyond scale")),
               c.figure_num(num(sum(w.overdue for w in works)), _("overdue for plan approval"), id="works-overdue"),
               c.figure_num(num(sum(w.state == "active" for w in works)), _("under way"))]
    if not works:
        from sitetwin.dashboards.figures import empty_figure

        return (summary, c.empty(_("No dangerous works registered for this site: add them with `sitetwin works add` "
                                   "or import a register with `sitetwin works import`."), id="works-empty"),
                empty_figure(_("No zones to draw.")))
    return summary, _register(works, tz), _plan(zones)


def _register(works, tz):
    rows = [{"code": w.code, "work_type": w.work_type, "scale": w.scale, "title": w.title,
             "responsible": w.responsible, "review": w.review_state, "review_on": w.review_on,
             "approved_on": w.plan_approved_on, "planned": (w.planned_start, w.planned_end),
             "actual": (w.actual_start, w.actual_end), "state": w.state, "overdue": w.overdue_days}
            for w in works]

    def show(k, r):
        if k == "work_type":
            return _(TYPES.get(r[k], r[k]))
        if k == "scale":
            return c.badge(_(SCALES.get(r[k], r[k])), "sev-high" if r[k] == "beyond_scale" else "")
        if k == "review":
            return _(REVIEWS.get(r[k], r[k]))
        if k == "state":
            return c.badge(_(STATES.get(r[k], r[k])), f"works-{r[k]}")
        if k in ("planned", "actual"):
            start, end = r[k]
            return "–" if start is None else f"{cell(start, tz=tz)} → {cell(end, tz=tz)}"
        if k == "overdue":
            return c.badge(_("{n} days overdue", n=num(r[k])), "sev-critical") if r[k] else ""
        return cell(r.get(k), tz=tz)

    return c.table(rows, columns([("code", N_("code")), ("work_type", N_("type")), ("scale", N_("scale")),
                                  ("title", N_("title")), ("responsible", N_("responsible")),
                                  ("review", N_("expert review")), ("review_on", N_("reviewed")),
                                  ("approved_on", N_("plan approved")), ("planned", N_("planned")),
                                  ("actual", N_("actual")), ("state", N_("state")),
                                  ("overdue", N_("approval"))]), id="works-table", cell=show)


def _plan(zones) -> dict:
    """The works' zones as filled outlines in the site's local frame (metres), coloured by state."""
    from sitetwin.dashboards.components import PLOT_LAYOUT
    from sitetwin.dashboards.figures import empty_figure

    traces = []
    for w, zone in zones:
        if zone is None:
            continue
        key = "overdue" if w.overdue else w.state
        xs = [x for x, _y in zone.polygon_m] + [zone.polygon_m[0][0]]
        ys = [y for _x, y in zone.polygon_m] + [zone.polygon_m[0][1]]
        traces.append(dict(type="scatter", x=xs, y=ys, mode="lines", fill="toself", name=w.code,
                           line=dict(color=COLOURS[key], width=2), opacity=0.55,
                           hovertext=f"{w.code} · {_(TYPES.get(w.work_type, w.work_type))} · "
                                     f"{_(STATES.get(w.state, w.state))}"
                                     + (" · " + _("{n} days overdue", n=num(w.overdue_days)) if w.overdue else "")
                                     + f" · z {zone.z_min_m:.1f}…{zone.z_max_m:.1f} m",
                           hoverinfo="text"))
    if not traces:
        return empty_figure(_("None of these works names a zone or a model element with geometry."))
    layout = dict(PLOT_LAYOUT, showlegend=True, xaxis=dict(title=_("x (m, site frame)")),
                  yaxis=dict(title=_("y (m, site frame)"), scaleanchor="x", scaleratio=1))
    return {"data": traces, "layout": layout}


dash.register_page(__name__, path="/works", name=NAME, title=page_title(N_("dangerous works")), order=8,
                   layout=layout)
