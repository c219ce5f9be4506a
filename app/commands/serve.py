"""``sitetwin serve``: the workbench in the browser."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Optional

import typer

from sitetwin.data.clikit import DEFAULT_DB_PATH, DbOption, err_console


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def serve(
    db: DbOption = DEFAULT_DB_PATH,
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0: every interface).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8050,
    site: Annotated[Optional[str], typer.Option(help="Site to open first (printed in the URL).")] = None,
    jobs: Annotated[Optional[Path], typer.Option(help="Folder for background jobs (default: a temporary one).")] = None,
    debug: Annotated[bool, typer.Option(help="Dash debug mode (callback timings, error pop-ups).")] = False,
) -> None:
    """Serve the workbench for the store DB; it reads the store afresh on every request, so
    data written meanwhile by the CLI or the sensor ingest server shows up without a restart."""
    run_workbench(db, host=host, port=port, site=site, jobs=jobs, debug=debug)


def run_workbench(db: Path, *, host: str = "127.0.0.1", port: int = 8050, site: str | None = None,
                  jobs: Path | None = None, debug: bool = False, on_ready: Callable[[], None] | None = None) -> None:
    """Serve until interrupted; ``on_ready`` is called once the server listens (the demo times its start).

    SIGTERM stops it as Ctrl+C does, so that what it started (the warm-up, the demo's
    background stages) is stopped too rather than left running.
    """
    from sitetwin.dashboards.app import create_app, warm_up

    _interrupt_on_sigterm()
    app = create_app(db, jobs_dir=jobs, debug=debug)
    shown = "localhost" if host in ("0.0.0.0", "::") else host
    site = site or _first_site(db)
    url = f"http://{shown}:{port}/" + (f"?site={site}" if site else "")
    warm = warm_up(db)
    try:
        if debug:    # Flask's own runner brings the interactive debugger
            _announce(db, url, on_ready)
            app.run(host=host, port=port, debug=True, use_reloader=False, threaded=True)
            return
        from werkzeug.serving import make_server

        server = make_server(host, port, app.server, threaded=True)
        _announce(db, url, on_ready)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
    finally:
        warm.stop()


def _announce(db: Path, url: str, on_ready: Callable[[], None] | None) -> None:
    err_console().print(f"[bold]sitetwin workbench[/] for {Path(db)} at {url}  (Ctrl+C stops it)", markup=True)
    err_console().print(_who_may_enter(db))
    if on_ready is not None:
        on_ready()


def _who_may_enter(db) -> str:
    from sitetwin.dashboards.connections import read_store
    from sitetwin.oversight.accounts import has_accounts

    with read_store(db) as store:
        if has_accounts(store):
            return "the store has accounts: log in with one (see `sitetwin user list`)"
    return "the store has no accounts: the workbench runs open as the local owner (admin)"


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
