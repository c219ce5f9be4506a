"""The ``sitetwin`` command line.

The root commands (``init``, ``sql``, ``export``, ``import``, ``demo``) are here; each
command group is a module of ``sitetwin.app.commands`` with a ``register(app)`` function.
Heavy libraries are imported inside commands, so that ``sitetwin --help`` answers at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from sitetwin.data import clikit
from sitetwin.data.clikit import DEFAULT_DB_PATH, DbOption, JsonOption, emit, fail, table
from sitetwin.data.errors import SitetwinError
from sitetwin.data.i18n import (
    ENV_VAR,
    LANGUAGES,
    N_,
    SOURCE_LANGUAGE,
    LanguageError,
    Translator,
    normalize_language,
    set_language,
)

_ = Translator("app")

app = typer.Typer(
    name="sitetwin",
    help="Digital twin of a construction site: design model, scans, panoramas and detections in one store.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@app.callback()
def root(
    lang: Annotated[Optional[str], typer.Option(
        "--lang", show_default=False, metavar="|".join(LANGUAGES),
        help=f"Language of the human output: {', '.join(LANGUAGES)} (or set {ENV_VAR}; default English). "
             "--json output and stored values are the same in every language.")] = None,
) -> None:
    """Digital twin of a construction site: design model, scans, panoramas and detections in one store."""
    choose_language(lang)


def choose_language(lang: str | None, where: str | None = None) -> str:
    """The process's language from ``--lang``, else ``SITETWIN_LANG`` (or ``lang`` from ``where``); an
    unknown code is one ``error:`` line naming where it came from (exit 2, like any bad option)."""
    import os

    if where is not None:
        raw = lang
    else:
        raw, where = (lang, "--lang") if lang is not None else (os.environ.get(ENV_VAR) or None, ENV_VAR)
    try:
        return set_language(None if raw is None else normalize_language(raw, field=where))
    except LanguageError as exc:
        raise fail(str(exc), 2) from None


# Column names of the tables the commands print (the keys of their rows, which --json keeps): shown in
# the current language. A column not listed here is shown as its key.
COLUMNS = (
    N_("table"), N_("rows"), N_("file"), N_("read"), N_("inserted"), N_("site_code"), N_("site"), N_("name"),
    N_("district"), N_("city"), N_("model_id"), N_("version"), N_("file_name"), N_("ifc_schema"),
    N_("element_count"), N_("loaded_at"), N_("global_id"), N_("ifc_class"), N_("storey"), N_("type_name"),
    N_("material"), N_("change"), N_("fields"), N_("unit"), N_("error"), N_("kind"), N_("status"),
    N_("ref"), N_("category"), N_("severity"), N_("due"), N_("overdue_days"), N_("title"), N_("seq"), N_("at"),
    N_("actor"), N_("note"), N_("finding_id"), N_("to_level"), N_("escalated_to"), N_("component"),
    N_("weight"), N_("raw"), N_("subscore"), N_("points"), N_("basis"), N_("score"), N_("tier"),
    N_("inspect_every_days"), N_("premium_factor"), N_("tier_source"), N_("item"), N_("value"),
    N_("missing"), N_("username"), N_("role"), N_("sites"), N_("token_id"), N_("created_at"),
    N_("expires_at"), N_("last_used_at"), N_("revoked"), N_("logged_at"), N_("action"), N_("object_kind"),
    N_("object_id"), N_("detail"), N_("pano_id"), N_("width"), N_("height"), N_("captured_at"),
    N_("pose_source"), N_("device_id"), N_("device_type"), N_("measured_at"), N_("channel"), N_("trusted"),
    N_("flags"), N_("on_site"), N_("untrained"), N_("center_m"), N_("radius_m"), N_("z_min_m"), N_("z_max_m"),
    N_("points_m"), N_("survey_id"), N_("epoch"), N_("registration_method"), N_("fitness"), N_("rmse_m"),
    N_("coverage"), N_("mean_mm"), N_("max_mm"), N_("survey"), N_("planned"), N_("built"), N_("elements"),
    N_("planned_pct"), N_("actual_pct"), N_("late"), N_("task"), N_("planned_finish"), N_("class"),
    N_("instances"), N_("images"), N_("split"), N_("labels"), N_("run_id"), N_("seconds"), N_("weights_path"),
    N_("hazard_id"), N_("rule"), N_("message"), N_("camera_id"), N_("fx"), N_("source_url"), N_("detections"),
    N_("hazards"), N_("open"), N_("overdue"), N_("closed"), N_("findings"), N_("risk_score"), N_("grade"),
    N_("workers"), N_("quality"), N_("day"), N_("count"), N_("enterprise"),
    N_("as_of"), N_("attempts"), N_("completeness"), N_("data"), N_("deviation"), N_("device"), N_("disabled"),
    N_("duration"), N_("failed"), N_("finding"), N_("finished"), N_("interval_s"), N_("last_inspection"),
    N_("last_measured_at"), N_("last_update"), N_("loa"), N_("map50"), N_("map50_95"), N_("mean_risk"),
    N_("median_depth_m"), N_("min_depth_m"), N_("model"), N_("next_due"), N_("not_built"), N_("open_critical"),
    N_("open_findings"), N_("out_of_tolerance"), N_("overdue_findings"), N_("owner"), N_("p95_mm"), N_("partial"),
    N_("pixels"), N_("point_count"), N_("position_m"), N_("precision"), N_("progress"), N_("published_at"),
    N_("recall"), N_("rms_px"), N_("schema"), N_("sensors"), N_("shift_mm"), N_("solid_angle_sr"),
    N_("started (UTC)"), N_("stored"), N_("supplier"), N_("tables"), N_("tier_a"), N_("tier_b"), N_("tier_c"),
    N_("triangle_count"), N_("triangles"), N_("uid"), N_("untrusted"), N_("warning_kinds"), N_("warnings"),
    N_("pano"), N_("size"), N_("captured"), N_("pose"), N_("inliers"), N_("refined"), N_("copies skipped"),
    N_("already imported"), N_("warning_id"), N_("dangerous_works"), N_("training"),
)


def column_name(key: str) -> str:
    """A table column as the reader's language names it (``site_code`` -> ``工地编号`` in zh-CN)."""
    return _(key) if key in _COLUMN_SET else key


_COLUMN_SET = frozenset(COLUMNS)

# Stored words shown in these columns of a table, in the reader's language (``--json`` keeps the words).
WORDS = {
    "severity": (N_("low"), N_("medium"), N_("high"), N_("critical")),
    "category": (N_("safety"), N_("quality"), N_("progress"), N_("environment")),
    "status": (N_("open"), N_("rectification_submitted"), N_("verified_closed"), N_("reopened"), N_("done"),
               N_("failed"), N_("running"), N_("skipped"), N_("loaded"), N_("cached"), N_("unchanged"), N_("added")),
    "tier_source": (N_("computed"), N_("decision")),
}


def cell_text(column: str, value: object) -> str:
    """A table cell as the reader reads it: a stored word of :data:`WORDS` translated, anything else as is."""
    text = str(value)
    return _(text) if text in WORDS.get(column, ()) else text



@app.command()
def init(
    db: DbOption = DEFAULT_DB_PATH,
    site: Annotated[Optional[str], typer.Option(help="Create this site (code) in the store.")] = None,
    name: Annotated[Optional[str], typer.Option(help="The site's name.")] = None,
    district: Annotated[Optional[str], typer.Option(help="District the site belongs to.")] = None,
    city: Annotated[Optional[str], typer.Option(help="City the site belongs to.")] = None,
    address: Annotated[Optional[str], typer.Option(
        help="The site's street address, as its construction permit writes it.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Create a store (or bring an existing one up to the current schema)."""
    from sitetwin.data.sites import upsert_site
    from sitetwin.data.store import open_store

    with open_store(db) as store:
        if site:
            with store.transaction():
                upsert_site(store, site, name=name, district=district, city=city, address=address)
        result = {"db": str(db), "schema_version": store.schema_version(),
                  "sites": [r["site_code"] for r in store.rows("SELECT site_code FROM sites ORDER BY 1")]}
    emit(result, as_json, lambda r: print(_("store {db} at schema version {version}; sites: {sites}", db=r["db"],
                                            version=r["schema_version"], sites=", ".join(r["sites"]) or _("none"))))


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
        ["table", "rows", "file"], title=_("exported to {folder}", folder=out)))


@app.command("import")
def import_cmd(
    source: Annotated[Path, typer.Argument(help="Folder written by `sitetwin export`.")],
    db: DbOption = DEFAULT_DB_PATH,
    tables: Annotated[Optional[list[str]],
                      typer.Option("--table", help="Table to import (repeat); default all.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Read Parquet files back into the store, in one transaction (rows already present are skipped)."""
    import sitetwin.oversight.finding_state  # noqa: F401  (its import hook keeps findings' current state)
    from sitetwin.data.exchange import import_tables
    from sitetwin.data.store import open_store

    with open_store(db) as store:
        report = import_tables(store, source, tables)
    emit(report, as_json, lambda r: table(
        [{"table": t, **v} for t, v in r.items()], ["table", "read", "inserted"],
        title=_("imported from {folder}", folder=source)))


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
                                                       "panoramas, sensors, works, oversight, vision, scores).")]
    = None,
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
        raise typer.BadParameter(_("--today {value!r}: expected a date as YYYY-MM-DD", value=today)) from None
    names = [n.strip() for n in stages.split(",") if n.strip()] if stages else None
    summary = run_demo(db, workdir, fresh=fresh, today=day, stages=names, seed=seed, background=serve)
    background = summary.pop("process", None)
    emit(summary, as_json, _render_demo)
    if serve:
        _serve_demo(db, background, started)


def _render_demo(summary: dict) -> None:
    from sitetwin.data.clikit import out_console

    console = out_console()
    console.print("[bold]" + _("demo site") + f"[/] {summary['site_code']} " + _("in {db}", db=summary["db"]))
    for stage in summary["stages"]:
        facts = ", ".join(f"{column_name(k)} {v}" for k, v in stage["facts"].items())
        console.print(f"  {stage['name']:<12} {stage['seconds']:6.1f} s  {facts}")
    if summary.get("background"):
        bg = summary["background"]
        console.print("  " + _("still being prepared: {stages} (log: {log})", stages=", ".join(bg["stages"]),
                                log=bg["log"]))


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
        err_console().print(_("workbench ready {seconds} s after `sitetwin demo` started",
                              seconds=format(time.perf_counter() - started, ".0f"))
                            + ("; " + _("still being prepared: {stages}", stages=", ".join(background.stages))
                               if background else ""))

    try:
        run_workbench(db, on_ready=ready)
    finally:
        if background is not None:
            background.stop(db)


_registered = False


def _register_commands() -> None:
    """Add each command group (``sitetwin.app.commands``) to the root app, once."""
    global _registered
    from sitetwin.app import commands

    if not _registered:
        commands.register_all(app)
        _registered = True


def help_texts() -> dict[str, list[str]]:
    """Every help text of the ``sitetwin`` command tree -> where it is shown: messages of the ``app``
    catalog (``data/catalogs.py`` collects them)."""
    from sitetwin.app import cli_language

    _register_commands()
    return cli_language.help_messages(cli_language.build_command(app))


def main() -> None:
    import sys

    from sitetwin.app import cli_language

    _register_commands()
    clikit.set_column_names(column_name, cell_text)
    try:
        # before Click parses: its help and its errors are then in the reader's language too
        code, where = cli_language.language_source(sys.argv[1:])
        lang = choose_language(code, where)
    except typer.Exit as exc:
        raise SystemExit(exc.exit_code) from None
    try:
        if lang == SOURCE_LANGUAGE:
            app()
        else:
            raise SystemExit(cli_language.run_translated(app))
    except SitetwinError as exc:
        raise SystemExit(fail(str(exc)).exit_code) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None

if __name__ == "__main__":
    main()
