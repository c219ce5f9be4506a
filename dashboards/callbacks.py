"""``@callback`` for page modules: Dash's decorator, recorded once and attached to every app made.

Page modules declare their callbacks with ``dashboards.callbacks.callback`` exactly as they
would with ``dash.callback``. Dash's own decorator hands its callbacks to the first app that
serves and to no other; recording them here lets ``create_app`` attach them to each app it
builds (one per store: the CLI, the tests, the benchmark), each bound to its own store.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# (args, kwargs, function) in declaration order
CALLBACKS: list[tuple[tuple, dict, Callable]] = []


def callback(*args: Any, **kwargs: Any) -> Callable[[Callable], Callable]:
    """Declare a callback (same arguments as ``dash.callback``); ``create_app`` attaches it."""

    def deco(fn: Callable) -> Callable:
        CALLBACKS.append((args, kwargs, fn))
        return fn

    return deco


CLIENTSIDE: list[tuple[tuple, dict]] = []


def clientside_callback(*args: Any, **kwargs: Any) -> None:
    """Declare a clientside callback (same arguments as ``dash.clientside_callback``)."""
    CLIENTSIDE.append((args, kwargs))


def attach(app, db: str) -> None:
    """Attach every declared callback to ``app``, each running with ``db`` as its store."""
    from sitetwin.dashboards.access import bind_db

    for args, kwargs in CLIENTSIDE:
        app.clientside_callback(*args, **kwargs)
    for args, kwargs, fn in CALLBACKS:
        if kwargs.get("background"):
            fn = _expected_errors_shown(fn)
        app.callback(*args, **kwargs)(bind_db(fn, db))


def _expected_errors_shown(fn: Callable) -> Callable:
    """A background job's expected failure (refused access, a bad scan) becomes the shell's message.

    The app's ``on_error`` does this for ordinary callbacks; a job runs in another process and
    its exception would reach the page only as text.
    """
    import functools

    @functools.wraps(fn)
    def run(*args, **kwargs):
        import dash

        from sitetwin.dashboards.alerts import show_error
        from sitetwin.data.errors import SitetwinError

        try:
            return fn(*args, **kwargs)
        except SitetwinError as exc:
            show_error(exc)
            return dash.no_update

    return run
