"""``sitetwin serve``: the workbench in the browser.

Served by gunicorn with ``--workers`` processes (``dashboards.serving``); Werkzeug's development
server (with Dash's debugger) only with ``--debug``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Optional

import typer

from sitetwin.data.clikit import DEFAULT_DB_PATH, DbOption, err_console
from sitetwin.data.i18n import N_, Translator

_ = Translator("app")


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def serve(
    db: DbOption = DEFAULT_DB_PATH,
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0: every interface).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0: a free one, printed).")] = 8050,
    site: Annotated[Optional[str], typer.Option(help="Site to open first (printed in the URL).")] = None,
    jobs: Annotated[Optional[Path], typer.Option(help="Folder for background jobs, shared by the server "
                                                     "processes (default: a temporary one).")] = None,
    workers: Annotated[Optional[int], typer.Option(
        min=1, help="Server processes (gunicorn); default: one per CPU, at most 4.")] = None,
    threads: Annotated[int, typer.Option(min=1, help="Requests each server process answers at once.")] = 4,
    forwarded_allow_ips: Annotated[Optional[str], typer.Option(
        "--forwarded-allow-ips", envvar="SITETWIN_TRUSTED_PROXIES",
        help="Reverse proxies (addresses or CIDR networks, comma-separated) whose X-Forwarded-For/-Host/-Proto "
             "are believed; nobody's by default.")] = None,
    debug: Annotated[bool, typer.Option(help="Werkzeug's development server with Dash debug mode (callback "
                                             "timings, error pop-ups); never in production.")] = False,
    lake: Annotated[Optional[str], typer.Option(
        "--lake", show_default=False,
        help="City lake (a folder, file:///path or s3://bucket/prefix) the portfolio page reads, read-only; "
             "accounts, logins and each site's own pages stay with --db.")] = None,
) -> None:
    """Serve the workbench for the store DB; it reads the store afresh on every request, so
    data written meanwhile by the CLI or the sensor ingest server shows up without a restart."""
    code = run_workbench(db, host=host, port=port, site=site, jobs=jobs, debug=debug, workers=workers,
                         threads=threads, trusted_proxies=forwarded_allow_ips, lake=lake)
    if code:
        raise typer.Exit(code)


def run_workbench(db: Path, *, host: str = "127.0.0.1", port: int = 8050, site: str | None = None,
                  jobs: Path | None = None, debug: bool = False, on_ready: Callable[[], None] | None = None,
                  workers: int | None = None, threads: int = 4, trusted_proxies: str | None = None,
                  lake: str | None = None) -> int:
    """Serve until interrupted (the exit status: 0 when stopped by SIGINT or SIGTERM); ``on_ready`` is
    called once the server listens (the demo times its start).

    With ``lake``, the portfolio reads that city lake: it is opened once here, so that a lake that
    cannot be read is refused (one line naming it) before anything listens.

    Under gunicorn (the default) the master stops its workers on SIGINT (at once) or SIGTERM
    (requests in flight finish); each worker stops its own warm-up. With ``debug``, Werkzeug's
    server in this process, where SIGTERM stops it as Ctrl+C does.
    """
    from sitetwin.dashboards.access import TRUSTED_PROXIES_ENV, trusted_networks
    from sitetwin.data.errors import StoreError

    if not Path(db).exists():
        raise StoreError(N_("{db}: no store there; build one with `sitetwin init` or `sitetwin demo`"), db=db)
    try:
        trusted_networks(trusted_proxies)
    except ValueError as exc:
        raise typer.BadParameter(str(exc).replace(TRUSTED_PROXIES_ENV, "--forwarded-allow-ips")) from None
    if lake is not None:
        _check_lake(lake)
    site = site or _first_site(db)
    shown = "localhost" if host in ("0.0.0.0", "::") else host
    if ":" in shown:
        shown = f"[{shown}]"

    def url(bound: int) -> str:
        return f"http://{shown}:{bound}/" + (f"?site={site}" if site else "")

    if debug:
        port = port or _free_port(host)
        _run_debug(db, host=host, port=port, jobs=jobs, url=url(port), on_ready=on_ready,
                   trusted_proxies=trusted_proxies, lake=lake)
        return 0
    from sitetwin.dashboards import serving

    count = workers or serving.default_workers()

    def ready(bound: int) -> None:
        _announce(db, url(bound), on_ready, _.plural("{n} server process", "{n} server processes", count) + " × "
                  + _.plural("{n} thread", "{n} threads", threads))

    return serving.serve(db, host=host, port=port, workers=count, threads=threads, jobs=jobs,
                         trusted_proxies=trusted_proxies, on_ready=ready, lake=lake)


def _run_debug(db: Path, *, host: str, port: int, jobs: Path | None, url: str,
               on_ready: Callable[[], None] | None, trusted_proxies: str | None, lake: str | None = None) -> None:
    """Werkzeug's development server with Dash's debugger, in this process (``--debug`` only)."""
    import os

    from sitetwin.dashboards.access import TRUSTED_PROXIES_ENV
    from sitetwin.dashboards.app import create_app, warm_up

    if trusted_proxies is not None:
        os.environ[TRUSTED_PROXIES_ENV] = trusted_proxies
    _interrupt_on_sigterm()
    app = create_app(db, jobs_dir=jobs, debug=True, lake=lake)
    warm = warm_up(db)
    try:
        _announce(db, url, on_ready, _("development server (--debug): never in production"))
        app.run(host=host, port=port, debug=True, use_reloader=False, threaded=True)
    except KeyboardInterrupt:
        pass
    finally:
        warm.stop()


def _check_lake(lake: str) -> None:
    """Open the lake once, read-only, and close it: a lake that cannot be read is refused at start, by name."""
    import tempfile

    import duckdb

    from sitetwin.data.lake import LakeError, open_lake

    with tempfile.TemporaryDirectory(prefix="sitetwin-lake-check-") as cache:
        try:
            open_lake(lake, cache_dir=cache).close()
        except LakeError:
            raise
        except (OSError, ValueError, duckdb.Error) as exc:
            lines = str(exc).strip().splitlines()
            raise LakeError(N_("--lake {lake}: cannot open the lake ({reason})"), lake=lake,
                            reason=lines[0] if lines else type(exc).__name__) from None


def _free_port(host: str) -> int:
    """A port free now on ``host`` (Werkzeug's runner does not say which port 0 became)."""
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _announce(db: Path, url: str, on_ready: Callable[[], None] | None, how: str) -> None:
    err_console().print("[bold]" + _("sitetwin workbench") + "[/] "
                        + _("for {db} at {url}  ({how}; Ctrl+C stops it)", db=Path(db), url=url, how=how),
                        markup=True)
    err_console().print(_who_may_enter(db))
    if on_ready is not None:
        on_ready()


def _who_may_enter(db) -> str:
    from sitetwin.dashboards.connections import read_store
    from sitetwin.oversight.accounts import has_accounts

    with read_store(db) as store:
        if has_accounts(store):
            return _("the store has accounts: log in with one (see `sitetwin user list`)")
    return _("the store has no accounts: the workbench runs open as the local owner (admin)")


def _first_site(db) -> str | None:
    """The site the workbench opens on when none is named (the first by code, as the site picker does)."""
    from sitetwin.dashboards.connections import read_store

    with read_store(db) as store:
        return store.scalar("SELECT site_code FROM sites ORDER BY site_code LIMIT 1")


def _interrupt_on_sigterm() -> None:
    import signal
    import threading

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():   # only the main thread may set handlers
        signal.signal(signal.SIGTERM, interrupt)
