"""The shell's one-line message for an expected failure: shared by the app (its ``on_error``) and by
``dashboards.callbacks`` (background jobs), so that neither imports the other."""

from __future__ import annotations

import logging

from sitetwin.data.i18n import Translator

_ = Translator("dashboards")
log = logging.getLogger("sitetwin.dashboards")


def show_error(err: Exception) -> None:
    """Show an expected failure (``SitetwinError``) as the shell's one-line message."""
    import dash

    dash.set_props("shell-alert", error_props(err))


def error_props(err: Exception) -> dict:
    """The shell alert's properties for an expected failure (logged here): its message and its kind."""
    from sitetwin.oversight.errors import AccessDenied, AuthError

    kind = "denied" if isinstance(err, (AccessDenied, AuthError)) else "error"
    log.info("callback %s: %s", kind, err)
    return {"children": alert(str(err), kind), "className": f"alert alert-{kind}"}


def alert(message: str, kind: str):
    """The alert's content: the message and a button that dismisses it."""
    from dash import html

    return [html.Span(message, id="shell-alert-text"),
            html.Button("×", id="shell-alert-close", className="alert-close", n_clicks=0, title=_("Dismiss"))]
