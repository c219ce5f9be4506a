"""The workbench under gunicorn: N worker processes, each with its own app on the same store.

Each worker builds its own app (``create_app`` after the fork, no ``--preload``): a worker then
holds no DuckDB, SQLite (diskcache) or thread state copied from the master, and a worker that
dies is replaced by a clean one. What the workers must share lives outside their memory:

- sessions, accounts and the login ledger are in the store (a login answered by one worker is
  honoured by every other, and a logout by any worker ends it for all);
- the CSRF key is ``<db>.cache/web-secret.key`` (made by the first worker, read by the others);
- background callbacks (Dash's ``DiskcacheManager``) keep their jobs in one folder, ``jobs``
  (made here when not given, removed when the server stops), so a job started through one worker
  is polled through another;
- the request size limit (``SITETWIN_MAX_REQUEST_BYTES``) and the trusted proxies
  (``SITETWIN_TRUSTED_PROXIES``) are read from the environment by every worker; gunicorn itself
  believes ``X-Forwarded-Proto`` and the like only from those same proxies (never from anyone by
  default: gunicorn's own default would trust 127.0.0.1).

What stays per process: the login throttle's memory, the caller cache and the warm-up's
geometry and progress caches (each worker warms its own, in a thread, after it starts).

Workers are threaded (gunicorn's ``gthread``): a page makes several short store reads and Dash
polls background jobs, so a worker answers ``threads`` requests at once. Ctrl+C (SIGINT) stops
at once, SIGTERM lets requests in flight finish (up to ``GRACEFUL_S``); both exit 0.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from gunicorn.app.base import BaseApplication  # type: ignore[import-untyped]  # gunicorn ships no stubs

DEFAULT_THREADS = 4        # requests one worker answers at once
log = logging.getLogger("sitetwin.serve")

GRACEFUL_S = 10            # SIGTERM: how long requests in flight may finish
EXIT_WAIT_S = 3.0          # how long a stopping worker waits for its warm-up to finish the site it is on
WORKER_TIMEOUT_S = 120     # a worker silent this long (stuck, not merely busy: gthread beats meanwhile) is replaced


def default_workers() -> int:
    """Worker processes when ``--workers`` is not given: one per CPU, at most 4 (each holds its own caches)."""
    return max(1, min(4, os.cpu_count() or 1))


def bind_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Workbench(BaseApplication):
    """gunicorn serving ``create_app(db).server`` in each of ``workers`` processes."""

    def __init__(self, db: str | Path, *, host: str = "127.0.0.1", port: int = 8050, workers: int = 1,
                 threads: int = DEFAULT_THREADS, jobs: str | Path, trusted_proxies: str = "",
                 on_ready: Callable[[int], None] | None = None, warm: bool = True, lake: str | None = None) -> None:
        self.db = Path(db)
        self.lake = lake
        self.bind = bind_address(host, port)
        self.workers = workers
        self.threads = threads
        self.jobs = Path(jobs)
        self.trusted_proxies = trusted_proxies
        self.on_ready = on_ready
        self.warm = warm
        super().__init__()

    def load_config(self) -> None:
        settings = {
            "bind": [self.bind],
            "workers": self.workers,
            "worker_class": "gthread",
            "threads": self.threads,
            "timeout": WORKER_TIMEOUT_S,
            "graceful_timeout": GRACEFUL_S,
            "forwarded_allow_ips": self.trusted_proxies,    # as access.py: nobody's X-Forwarded-* unless named
            "proc_name": f"sitetwin-workbench:{self.db.name}",
            "accesslog": None,
            "errorlog": "-",
            "loglevel": "warning",
            "control_socket_disable": True,      # gunicorn >= 25: no control socket at a shared default path
            "when_ready": self._when_ready,
            "post_worker_init": self._post_worker_init,
            "worker_exit": self._worker_exit,
        }
        assert self.cfg is not None
        for key, value in settings.items():
            if key in self.cfg.settings:         # older gunicorn versions lack a few of these
                self.cfg.set(key, value)

    def load(self):
        from sitetwin.dashboards.app import create_app

        app = create_app(self.db, jobs_dir=self.jobs, lake=self.lake)
        # Dash sets itself up on a process's first request (registering the JavaScript bundles it may
        # serve among other things) and marks that done before it is: a worker's threads that take the
        # page's bundles at once then answer 500 ("dash is not a registered library"). Set up here,
        # before the worker takes any request.
        # The setup builds the shell's layout once to validate it; that is no one's request, so the shell
        # must not look for a caller in the store (a worker that could not read it then failed to boot).
        import flask

        with app.server.test_request_context("/"):
            flask.g.sitetwin_setup = True
            app._setup_server()
        return app.server

    # gunicorn's hooks ------------------------------------------------------------------

    def _when_ready(self, arbiter) -> None:      # the master, once it listens
        if self.on_ready is not None:
            self.on_ready(arbiter.LISTENERS[0].sock.getsockname()[1])

    def _post_worker_init(self, worker) -> None:     # each worker, once its app is loaded
        if self.warm:
            from sitetwin.dashboards.app import warm_up

            worker.sitetwin_warm_up = warm_up(self.db)

    @staticmethod
    def _worker_exit(arbiter, worker) -> None:   # each worker, on its way out
        warm = getattr(worker, "sitetwin_warm_up", None)
        if warm is not None:
            warm.stop(timeout_s=EXIT_WAIT_S)
            if warm.thread.is_alive():
                # still inside a site's geometry (a big model, a busy machine): leave now rather than be
                # SIGKILLed by the master after GRACEFUL_S; os._exit skips the interpreter's teardown, which
                # a thread inside DuckDB would abort. The thread only reads the store.
                log.info("worker %s: warm-up still running; leaving without it", os.getpid())
                os._exit(0)


def serve(db: str | Path, *, host: str = "127.0.0.1", port: int = 8050, workers: int | None = None,
          threads: int = DEFAULT_THREADS, jobs: str | Path | None = None, trusted_proxies: str | None = None,
          on_ready: Callable[[int], None] | None = None, lake: str | None = None) -> int:
    """Serve the workbench for ``db`` under gunicorn until SIGINT or SIGTERM; the exit status (0: stopped).
    With ``lake``, each worker's portfolio reads that city lake (``create_app``).

    ``on_ready(port)`` is called in this process once the server listens (``port`` 0 picks a free one).
    ``trusted_proxies`` (default: ``SITETWIN_TRUSTED_PROXIES``) is checked here and handed to the workers
    through that variable, so gunicorn and the app believe the same proxies.
    """
    from sitetwin.dashboards.access import MAX_REQUEST_ENV, TRUSTED_PROXIES_ENV, request_limit, trusted_networks

    if trusted_proxies is None:
        trusted_proxies = os.environ.get(TRUSTED_PROXIES_ENV, "")
    trusted_networks(trusted_proxies)            # a bad entry is refused here, by name, before anything starts
    request_limit(os.environ.get(MAX_REQUEST_ENV))
    os.environ[TRUSTED_PROXIES_ENV] = trusted_proxies
    made = jobs is None
    jobs_dir = Path(tempfile.mkdtemp(prefix="sitetwin-jobs-")) if jobs is None else Path(jobs)
    try:
        Workbench(db, host=host, port=port, workers=workers or default_workers(), threads=threads, jobs=jobs_dir,
                  trusted_proxies=",".join(p.strip() for p in trusted_proxies.split(",") if p.strip()),
                  on_ready=on_ready, lake=lake).run()
    except SystemExit as stop:                   # gunicorn's master ends with sys.exit
        return stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    finally:
        if made:
            shutil.rmtree(jobs_dir, ignore_errors=True)
    return 0
