"""The ``sitetwin`` command line.

Each package adds its own commands through a ``register(app)`` function in its ``cli``
module (listed in ``PLUGINS``); heavy libraries are imported inside commands, so that
``sitetwin --help`` answers at once.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Annotated, Optional

import typer

from data.clikit import DEFAULT_DB_PATH, DbOption, JsonOption, emit, fail, table, warn
from data.errors import SitetwinError

app = typer.Typer(
    name="sitetwin",
    help="Digital twin of a construction site: design model, scans, panoramas and detections in one store.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

# Modules that add commands: each defines register(app: typer.Typer) -> None.
PLUGINS: tuple[str, ...] = ("bim.cli", "twin.survey_cli", "panorama.cli", "sensors.cli", "oversight.cli", "vision.cli", "dashboards.cli")


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
    from data.sites import upsert_site
    from data.store import open_store

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
    tables: Annotated[Optional[list[str]], typer.Option("--table", help="Table to export (repeat); default all.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Write store tables as Parquet, with a manifest."""
    from data.exchange import export_tables
    from data.store import open_store

    with open_store(db, read_only=True) as store:
        manifest = export_tables(store, out, tables)
    emit(manifest, as_json, lambda m: table(
        [{"table": t, "rows": v["rows"], "file": v["file"]} for t, v in m["tables"].items()],
        ["table", "rows", "file"], title=f"exported to {out}"))


@app.command("import")
def import_cmd(
    source: Annotated[Path, typer.Argument(help="Folder written by `sitetwin export`.")],
    db: DbOption = DEFAULT_DB_PATH,
    tables: Annotated[Optional[list[str]], typer.Option("--table", help="Table to import (repeat); default all.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Read Parquet files back into the store, in one transaction (rows already present are skipped)."""
    from data.exchange import import_tables
    from data.store import open_store

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
    from data.queries import read_only_query
    from data.store import open_store

    with open_store(db, read_only=True, create=False) as store:
        columns, rows = read_only_query(store, query)
    records = [dict(zip(columns, r)) for r in rows]
    emit(records, as_json, lambda rs: table(rs, columns))


@app.command()
def demo(
    db: DbOption = Path("sitetwin-demo.duckdb"),
    workdir: Annotated[Path, typer.Option(help="Where the demo writes its generated files.")] = Path("demo-site"),
    fresh: Annotated[bool, typer.Option(help="Start from an empty store (deletes DB and workdir first).")] = True,
    serve: Annotated[bool, typer.Option(help="Open the workbench on the demo site when done.")] = False,
    today: Annotated[Optional[str], typer.Option(help="The demo's date, YYYY-MM-DD (default: today); "
                                                      "the same date gives the same demo.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Build the demo site: a generated concrete-frame building and everything the twin does with it."""
    import datetime as dt

    from twin.demo import run_demo

    try:
        day = dt.date.fromisoformat(today) if today else None
    except ValueError:
        raise typer.BadParameter(f"--today {today!r}: expected a date as YYYY-MM-DD") from None
    summary = run_demo(db, workdir, fresh=fresh, today=day)
    emit(summary, as_json, _render_demo)
    if serve:
        _serve_if_available(db)


def _render_demo(summary: dict) -> None:
    from data.clikit import out_console

    console = out_console()
    console.print(f"[bold]demo site[/] {summary['site_code']} in {summary['db']}")
    for stage in summary["stages"]:
        facts = ", ".join(f"{k} {v}" for k, v in stage["facts"].items())
        console.print(f"  {stage['name']:<12} {stage['seconds']:6.1f} s  {facts}")


def _serve_if_available(db: Path) -> None:
    serve_cmd = next((c for c in app.registered_commands if (c.name or c.callback.__name__) == "serve"), None)
    if serve_cmd is None:
        warn("the workbench (sitetwin serve) is not part of this build yet")
        return
    serve_cmd.callback(db=db)


def _register_plugins() -> None:
    for module in PLUGINS:
        importlib.import_module(module).register(app)


def main() -> None:
    _register_plugins()
    try:
        app()
    except SitetwinError as exc:
        raise SystemExit(fail(str(exc)).exit_code) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None

if __name__ == "__main__":
    main()
