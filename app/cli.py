"""The ``sitetwin`` command line.

The root commands (``init``, ``sql``, ``export``, ``import``, ``demo``) are here; each
command group is a module of ``sitetwin.app.commands`` with a ``register(app)`` function.
Heavy libraries are imported inside commands, so that ``sitetwin --help`` answers at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from sitetwin.data.clikit import DEFAULT_DB_PATH, DbOption, JsonOption, emit, fail, table
from sitetwin.data.errors import SitetwinError

app = typer.Typer(
    name="sitetwin",
    help="Digital twin of a construction site: design model, scans, panoramas and detections in one store.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)



@app.command()
def init(
    db: DbOption = DEFAULT_DB_PATH,
    site: Annotated[Optional[str], typer.Option(help="Create this site (code) in the store.")] = None,
    name: Annotated[Optional[str], typer.Option(help="The site's name.")] = None,
    district: Annotated[Optional[str], typer.Option(help="District the site belongs to.")] = None,
    city: Annotated[Optional[str], typer.Option(help="City the site belongs to.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Create a store (or bring an existing one up to the current schema)."""
    from sitetwin.data.sites import upsert_site
    from sitetwin.data.store import open_store

    with open_store(db) as store:
        if site:
            with store.transaction():
                upsert_site(store, site, name=name, district=district, city=city)
        result = {"db": str(db), "schema_version": store.schema_version(),
                  "sites": [r["site_code"] for r in store.rows("SELECT site_code FROM sites ORDER BY 1")]}
    emit(result, as_json, lambda r: print(f"store {r['db']} at schema version {r['schema_version']}; "
                                          f"sites: {', '.join(r['sites']) or 'none'}"))


@app.command("export")
def export_cmd(
    out: Annotated[Path, typer.Option("--out", help="Folder to write <table>.parquet files and manifest.json to.")],
    db: DbOption = DEFAULT_DB_PATH,
    tables: Annotated[Optional[list[str]],
                      typer.Option("--table", help="Table to export (repeat); default all.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Write store tables as Parquet, with a manifest."""
    from sitetwin.data.exchange import export_tables
    from sitetwin.data.store import open_store

    with open_store(db, read_only=True) as store:
        manifest = export_tables(store, out, tables)
    emit(manifest, as_json, lambda m: table(
        [{"table": t, "rows": v["rows"], "file": v["file"]} for t, v in m["tables"].items()],
        ["table", "rows", "file"], title=f"exported to {out}"))


@app.command("import")
def import_cmd(
    source: Annotated[Path, typer.Argument(help="Folder written by `sitetwin export`.")],
    db: DbOption = DEFAULT_DB_PATH,
    tables: Annotated[Optional[list[str]],
                      typer.Option("--table", help="Table to import (repeat); default all.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Read Parquet files back into the store, in one transaction (rows already present are skipped)."""
    from sitetwin.data.exchange import import_tables
    from sitetwin.data.store import open_store

    with open_store(db) as store:
        report = import_tables(store, source, tables)
    emit(report, as_json, lambda r: table(
        [{"table": t, **v} for t, v in r.items()], ["table", "read", "inserted"], title=f"imported from {source}"))


@app.command()
def sql(
    query: Annotated[str, typer.Argument(help="A SELECT (or other read-only) statement.")],
    db: DbOption = DEFAULT_DB_PATH,
    as_json: JsonOption = False,
) -> None:
    """Run a read-only SQL query against the store."""
    from sitetwin.data.queries import read_only_query
    from sitetwin.data.store import open_store

    with open_store(db, read_only=True, create=False) as store:
        columns, rows = read_only_query(store, query)
    records = [dict(zip(columns, r)) for r in rows]
    emit(records, as_json, lambda rs: table(rs, columns))


@app.command()
def demo(
    db: DbOption = Path("sitetwin-demo.duckdb"),
    workdir: Annotated[Path, typer.Option(help="Where the demo writes its generated files.")] = Path("demo-site"),
    fresh: Annotated[bool, typer.Option(help="Start from an empty store (deletes DB and workdir first).")] = True,
    serve: Annotated[bool, typer.Option(help="Open the workbench as soon as the quick stages are done; the slow "
                                             "ones finish in the background while the pages say so.")] = False,
    today: Annotated[Optional[str], typer.Option(help="The demo's date, YYYY-MM-DD (default: today); "
                                                      "the same date gives the same demo.")] = None,
    stages: Annotated[Optional[str], typer.Option(help="Only these stages, comma-separated (model, surveys, "
                                                       "panoramas, sensors, oversight, vision, scores).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of every generator: the same seed and date give the same demo.")]
    = 0,
    as_json: JsonOption = False,
) -> None:
    """Build the demo site: a generated concrete-frame building and everything the twin does with it."""
    import datetime as dt
    import time

    from sitetwin.app.demo import run_demo

    started = time.perf_counter()
    try:
        day = dt.date.fromisoformat(today) if today else None
    except ValueError:
        raise typer.BadParameter(f"--today {today!r}: expected a date as YYYY-MM-DD") from None
    names = [n.strip() for n in stages.split(",") if n.strip()] if stages else None
    summary = run_demo(db, workdir, fresh=fresh, today=day, stages=names, seed=seed, background=serve)
    background = summary.pop("process", None)
    emit(summary, as_json, _render_demo)
    if serve:
        _serve_demo(db, background, started)


def _render_demo(summary: dict) -> None:
    from sitetwin.data.clikit import out_console

    console = out_console()
    console.print(f"[bold]demo site[/] {summary['site_code']} in {summary['db']}")
    for stage in summary["stages"]:
        facts = ", ".join(f"{k} {v}" for k, v in stage["facts"].items())
        console.print(f"  {stage['name']:<12} {stage['seconds']:6.1f} s  {facts}")
    if summary.get("background"):
        bg = summary["background"]
        console.print(f"  still being prepared: {', '.join(bg['stages'])} (log: {bg['log']})")


def _serve_demo(db: Path, background, started: float) -> None:
    """The workbench on the demo store; slow stages (if any) go on meanwhile and stop with it."""
    import threading
    import time

    from sitetwin.app.commands.serve import run_workbench
    from sitetwin.data.clikit import err_console

    if background is not None:
        # reaped as soon as it ends, so that the pages see it gone
        threading.Thread(target=background.process.wait, daemon=True).start()

    def ready() -> None:
        err_console().print(f"workbench ready {time.perf_counter() - started:.0f} s after `sitetwin demo` started"
                            + ("; still being prepared: " + ", ".join(background.stages) if background else ""))

    try:
        run_workbench(db, on_ready=ready)
    finally:
        if background is not None:
            background.stop(db)


def _register_commands() -> None:
    """Add each command group (``sitetwin.app.commands``) to the root app, once."""
    from sitetwin.app import commands

    commands.register_all(app)


def main() -> None:
    _register_commands()
    try:
        app()
    except SitetwinError as exc:
        raise SystemExit(fail(str(exc)).exit_code) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None

if __name__ == "__main__":
    main()
