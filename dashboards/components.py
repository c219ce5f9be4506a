"""Small building blocks the pages share: empty states, fact lists, tables, badges, plot styling.

Numbers and dates are written as the reader's locale writes them (``data.i18n``), time stamps in the
site's time zone (:func:`site_tz`); texts are the caller's, already translated.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from dash import html

from sitetwin.data.i18n import N_, Translator, format_date, format_datetime, format_number, format_percent

_ = Translator("dashboards")
DEFAULT_TIME_ZONE = "Asia/Shanghai"     # a site without a time zone of its own (data.sites' default)

# what the shell shows for stored codes (the codes stay in the store and in the components' values)
LABELS: dict[str, dict[str, str]] = {
    "status": {"built": N_("built"), "partial": N_("partially built"), "not_built": N_("not built"),
               "out_of_tolerance": N_("out of tolerance"), "unknown": N_("not surveyed")},
    "finding_status": {"open": N_("open"), "rectification_submitted": N_("rectification submitted"),
                       "verified_closed": N_("verified and closed"), "reopened": N_("reopened")},
    "event": {"raised": N_("raised"), "comment": N_("comment"),
              "rectification_submitted": N_("rectification submitted"), "verified_closed": N_("verified and closed"),
              "reopened": N_("reopened"), "escalated": N_("escalated"),
              "due_changed": N_("due date changed"), "imported": N_("imported")},
    "severity": {"low": N_("low"), "medium": N_("medium"), "high": N_("high"), "critical": N_("critical")},
    "category": {"quality": N_("quality"), "safety": N_("safety"), "progress": N_("progress"),
                 "environment": N_("environment")},
    "rule": {"no_hard_hat": N_("no hard hat"), "no_vest": N_("no safety vest"),
             "unprotected_edge": N_("unprotected edge"), "machinery_zone": N_("person in a machinery zone"),
             "dangerous_works_zone": N_("person in a dangerous works zone")},
    "source": {"image": N_("image"), "panorama": N_("panorama"), "video": N_("video"), "camera": N_("camera")},
    "risk_component": {"findings": N_("open findings"), "hazards": N_("hazards"), "deviation": N_("deviation"),
                       "progress": N_("progress delay"), "data": N_("data freshness"), "sensors": N_("sensor warnings"),
                       "dangerous_works": N_("dangerous works"), "training": N_("safety education coverage")},
}


def label(kind: str, value: Any) -> str:
    """A stored code as the reader reads it (unknown codes as stored, "–" for none)."""
    if value is None or value == "":
        return "–"
    text = LABELS.get(kind, {}).get(str(value))
    return _(text) if text else str(value)


PLOT_LAYOUT = dict(template="none", margin=dict(l=50, r=20, t=30, b=40), font=dict(size=12),
                   paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)")


def _id_prop(id: str | None) -> dict[str, Any]:
    # Dash refuses id=None: without an id the prop is left out
    return {"id": id} if id else {}


def empty(text: str, id: str | None = None) -> html.Div:
    """An honest empty state: says what is missing and how it gets there."""
    return html.Div(text, className="empty", **_id_prop(id))


def site_tz(store, site_code: str | None) -> str:
    """The IANA time zone the site's times are shown in (``data.queries.site_time_zone``)."""
    if not site_code:
        return DEFAULT_TIME_ZONE
    from sitetwin.data.queries import site_time_zone

    return site_time_zone(store, site_code) or DEFAULT_TIME_ZONE


def fmt(value: Any, digits: int = 1, tz: str | None = DEFAULT_TIME_ZONE) -> str:
    """A value as the reader reads it: numbers in their locale (``digits`` decimals for floats), a naive-UTC
    time stamp in the site's time zone ``tz``, a date; anything else as it is."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, float):
        return format_number(value, digits)
    if isinstance(value, int):
        return format_number(value)
    if isinstance(value, dt.datetime):
        return format_datetime(value, tz=tz)
    if isinstance(value, dt.date):
        return format_date(value)
    return str(value)


def facts(pairs: Iterable[tuple[str, Any]], id: str | None = None) -> html.Dl:
    items = []
    for k, v in pairs:
        items += [html.Dt(k), html.Dd(fmt(v) if not isinstance(v, (html.Span, html.A, list)) else v)]
    return html.Dl(items, className="facts", **_id_prop(id))


def table(rows: Sequence[dict], columns: Sequence[tuple[str, str]], id: str | None = None,
          cell=None, tz: str | None = DEFAULT_TIME_ZONE) -> html.Table | html.Div:
    """A plain HTML table of ``rows`` with ``columns`` as (key, header, translated by the caller);
    ``cell(key, row)`` may render a cell (else :func:`fmt`, times in ``tz``)."""
    head = html.Thead(html.Tr([html.Th(h) for _k, h in columns]))
    body = html.Tbody([html.Tr([html.Td(cell(k, r) if cell else fmt(r.get(k), tz=tz)) for k, _h in columns])
                       for r in rows])
    return html.Table([head, body], className="simple", **_id_prop(id))


def badge(text: str, kind: str = "") -> html.Span:
    return html.Span(text, className=f"badge {kind}".strip())


def severity(sev: str | None) -> html.Span:
    """A severity badge: the class stays the code (``sev-high``), the text is the reader's."""
    return badge(label("severity", sev), f"sev-{sev}" if sev else "")


def figure_num(value: Any, label: str, id: str | None = None) -> html.Div:
    return html.Div([html.Div(fmt(value, 0) if isinstance(value, float) else fmt(value), className="figure-num"),
                     html.Div(label, className="figure-label")], **_id_prop(id))


def control(label: str, component, wide: bool = False) -> html.Div:
    return html.Div([html.Label(label), component], className="control wide" if wide else "control")


def site_missing(page: str) -> html.Div:
    return html.Div([html.H1(_("No site")),
                     empty(_("You have no site to look at: no site in this store is in your scope. Load a model with "
                             "`sitetwin bim load`, or ask an admin to grant you a site."), id=f"{page}-nosite")])


def day_slider(epochs: Sequence[dt.date], other_days: Sequence[Any], want: str | None = None,
               today: dt.date | None = None) -> tuple[list[dt.date], dict, int]:
    """Days for a time slider: survey epochs (labelled) and other days of interest (schedule finishes).

    Returns the sorted days, the slider marks and the index to start on: ``want`` (ISO day)
    when it is one of them, else the latest epoch, else the day nearest ``today``.
    """
    from sitetwin.dashboards.queries import _day
    from sitetwin.data.clock import utcnow

    epoch_set = {_day(e) for e in epochs}
    days = sorted(epoch_set | {_day(d) for d in other_days if d is not None})
    if not days:
        days = [today or utcnow().date()]
    labelled = [i for i, d in enumerate(days) if d in epoch_set]
    step = max(1, len(labelled) // 8)        # at most about eight labels
    marks: dict[str, str | dict[str, Any]]
    marks = {str(i): {"label": format_date(days[i]) if n % step == 0 else "",
                      "style": {"color": "#1d4ed8", "fontWeight": 600}}
             for n, i in enumerate(labelled)}
    if not labelled:
        marks = {"0": format_date(days[0]), str(len(days) - 1): format_date(days[-1])}
    wanted = None
    if want:
        try:
            wanted = dt.date.fromisoformat(want)
        except ValueError:
            wanted = None
    if wanted in days:
        value = days.index(wanted)
    elif labelled:
        value = labelled[-1]
    else:
        t = today or utcnow().date()
        value = min(range(len(days)), key=lambda i: abs((days[i] - t).days))
    return days, marks, value


def pending_banner(items: Sequence[Any], landed: Sequence[str], *, reload_href: str) -> list:
    """What the page still waits for (``data.pending`` items), what failed, and what landed since it opened."""
    lines: list = []
    for p in items:
        if p.state == "failed":
            lines.append(html.Div([html.B(_("Could not be prepared: ")), f"{p.label} ({p.message})"],
                                  className="pending-failed"))
            continue
        share = f" ({format_percent(p.progress)})" if p.progress is not None else ""
        lines.append(html.Div([html.B(_("Being prepared: ")),
                               _("{what}; {state}{share}. This page shows it once it lands.", what=p.label,
                                 state=p.message, share=share)], className="pending-running"))
    if landed:
        lines.append(html.Div([html.B(_("Ready: ")), _(", ").join(landed) + _(". "),
                               html.A(_("Reload the page"), href=reload_href, id="shell-pending-reload"),
                               _(" to see it.")], className="pending-ready"))
    return lines


def twin_href(triggered: Any, clicks: Sequence[Any] | None, mode: str | None = None) -> str:
    """Where an element's "3D" button leads: the 3D twin on that element (``mode``: its colouring).

    ``triggered`` is the button's dict id (``site``, ``element``); without a real click nothing happens.
    """
    from urllib.parse import urlencode

    import dash

    if not triggered or not any(clicks or []):
        raise dash.exceptions.PreventUpdate
    query = {"site": triggered["site"], "element": triggered["element"], **({"mode": mode} if mode else {})}
    return "/twin?" + urlencode(query)
