"""Small building blocks the pages share: empty states, fact lists, tables, badges, plot styling."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from dash import html

PLOT_LAYOUT = dict(template="none", margin=dict(l=50, r=20, t=30, b=40), font=dict(size=12),
                   paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)")


def _id_prop(id: str | None) -> dict[str, Any]:
    # Dash refuses id=None: without an id the prop is left out
    return {"id": id} if id else {}


def empty(text: str, id: str | None = None) -> html.Div:
    """An honest empty state: says what is missing and how it gets there."""
    return html.Div(text, className="empty", **_id_prop(id))


def fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def facts(pairs: Iterable[tuple[str, Any]], id: str | None = None) -> html.Dl:
    items = []
    for k, v in pairs:
        items += [html.Dt(k), html.Dd(fmt(v) if not isinstance(v, (html.Span, html.A, list)) else v)]
    return html.Dl(items, className="facts", **_id_prop(id))


def table(rows: Sequence[dict], columns: Sequence[tuple[str, str]], id: str | None = None,
          cell=None) -> html.Table | html.Div:
    """A plain HTML table of ``rows`` with ``columns`` as (key, header); ``cell(key, row)`` may render a cell."""
    head = html.Thead(html.Tr([html.Th(h) for _, h in columns]))
    body = html.Tbody([html.Tr([html.Td(cell(k, r) if cell else fmt(r.get(k))) for k, _ in columns]) for r in rows])
    return html.Table([head, body], className="simple", **_id_prop(id))


def badge(text: str, kind: str = "") -> html.Span:
    return html.Span(text, className=f"badge {kind}".strip())


def severity(sev: str | None) -> html.Span:
    return badge(sev or "–", f"sev-{sev}" if sev else "")


def figure_num(value: Any, label: str, id: str | None = None) -> html.Div:
    return html.Div([html.Div(fmt(value, 0) if isinstance(value, float) else fmt(value), className="figure-num"),
                     html.Div(label, className="figure-label")], **_id_prop(id))


def control(label: str, component, wide: bool = False) -> html.Div:
    return html.Div([html.Label(label), component], className="control wide" if wide else "control")


def site_missing(page: str) -> html.Div:
    return html.Div([html.H1("No site"), empty("You have no site to look at: no site in this store is in your scope. "
                                                "Load a model with `sitetwin bim load`, or ask an admin to grant "
                                                "you a site.", id=f"{page}-nosite")])


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
    marks = {str(i): {"label": days[i].strftime("%Y-%m-%d") if n % step == 0 else "",
                      "style": {"color": "#1d4ed8", "fontWeight": 600}}
             for n, i in enumerate(labelled)}
    if not labelled:
        marks = {"0": days[0].isoformat(), str(len(days) - 1): days[-1].isoformat()}
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
            lines.append(html.Div([html.B("Could not be prepared: "), f"{p.label} ({p.message})"],
                                  className="pending-failed"))
            continue
        share = f" ({p.progress:.0%})" if p.progress is not None else ""
        lines.append(html.Div([html.B("Being prepared: "), f"{p.label}; {p.message}{share}. This page shows it "
                               "once it lands."], className="pending-running"))
    if landed:
        lines.append(html.Div([html.B("Ready: "), ", ".join(landed) + ". ",
                               html.A("Reload the page", href=reload_href, id="shell-pending-reload"),
                               " to see it."], className="pending-ready"))
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
