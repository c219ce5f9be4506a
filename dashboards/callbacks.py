"""``@callback`` for page modules: Dash's decorator, recorded once and attached to every app made.

Page modules declare their callbacks with ``dashboards.callbacks.callback`` exactly as they
would with ``dash.callback``. Dash's own decorator hands its callbacks to the first app that
serves and to no other; recording them here lets ``create_app`` attach them to each app it
builds (one per store: the CLI, the tests, the benchmark), each bound to its own store.

Attaching also wraps each callback with ``dashboards.inputs.checked``: its inputs and states
are checked against their declared shapes before it runs (a callback with an undeclared input
is refused here, when the app is built). Background callbacks run under :func:`job_manager`,
which refuses input that does not fit before it starts a job process.
"""

from __future__ import annotations

import functools
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
    """Attach every declared callback to ``app``, each running with ``db`` as its store and its inputs checked."""
    from sitetwin.dashboards.access import bind_db

    for args, kwargs in CLIENTSIDE:
        app.clientside_callback(*args, **kwargs)
    for args, kwargs, fn in CALLBACKS:
        fn = input_checked(fn, args, kwargs)
        if kwargs.get("background"):
            fn = _expected_errors_shown(fn)
        app.callback(*args, **kwargs)(bind_db(fn, db))


def input_checked(fn: Callable, args: tuple, kwargs: dict) -> Callable:
    """``fn`` with its ``Input``/``State`` arguments (as declared in ``args``) checked by ``dashboards.inputs``."""
    from dash import Input, State

    from sitetwin.dashboards.inputs import checked

    if "inputs" in kwargs or "state" in kwargs:
        raise TypeError(f"callback {fn.__name__}: declare its inputs and states positionally")
    flat: list = []
    for a in args:
        flat += a if isinstance(a, (list, tuple)) else [a]
    deps = [a for a in flat if isinstance(a, (Input, State))]
    try:
        return checked(fn, deps, leading=1 if kwargs.get("background") and kwargs.get("progress") else 0)
    except KeyError as exc:
        raise TypeError(f"callback {fn.__module__}.{fn.__name__}: {exc.args[0]}") from None


def _expected_errors_shown(fn: Callable) -> Callable:
    """A background job's expected failure (refused access, a bad scan) becomes the shell's message.

    The app's ``on_error`` does this for ordinary callbacks; a job runs in another process and
    its exception would reach the page only as text.
    """

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


def _in_language(lang: str, job_fn: Callable, *args: Any) -> Any:
    """Run a background job in ``lang`` (the language of the request that started it)."""
    from sitetwin.data.i18n import use_language

    with use_language(lang):
        return job_fn(*args)


REFUSED_JOB = "refused"     # the handle of a job refused for its input: no process was started


def job_manager(cache):
    """Dash's disk-cache job manager, except that input which does not fit its declared shape is refused in
    the request, before a process is started: the refusal (the shell's message, no update) is stored as the
    job's result at once, under a handle that names no process."""
    return _job_manager_class()(cache)


@functools.cache
def _job_manager_class():
    from dash import DiskcacheManager

    from sitetwin.dashboards.inputs import BadInput

    class CheckedJobs(DiskcacheManager):
        def make_job_fn(self, fn, progress, key=None):
            job = super().make_job_fn(fn, progress, key)
            job.check_args = getattr(fn, "check_args", None)
            return job

        def call_job_fn(self, key, job_fn, args, context):
            check = getattr(job_fn, "check_args", None)
            if check is not None:
                try:
                    check(list(args) if isinstance(args, (list, tuple)) else args)
                except BadInput:
                    # the job itself, here: it refuses the same input before doing anything (message, no update)
                    job_fn(key, self._make_progress_key(key), args, context)
                    return REFUSED_JOB
            # the job runs in another process: it reads in the language of the request that started it
            from sitetwin.data.i18n import current_language

            return super().call_job_fn(key, functools.partial(_in_language, current_language(), job_fn), args,
                                       context)

        def job_running(self, job):
            return False if str(job) == REFUSED_JOB else super().job_running(job)

        def terminate_job(self, job):
            if str(job) != REFUSED_JOB:
                super().terminate_job(job)

        def terminate_unhealthy_job(self, job):
            return False if str(job) == REFUSED_JOB else super().terminate_unhealthy_job(job)

    return CheckedJobs
