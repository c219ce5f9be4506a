"""``sitetwin training``: safety education records (安全教育培训) per worker: import, list, coverage.

Records come from CSV or JSON files (``sensors.training``; the ingest server takes them at
``POST /v1/training``). The caller (``--token`` or ``SITETWIN_TOKEN``; the local owner while the
store has no accounts) must have every site of a file in scope, in a role that may add to a
site's record (every role but viewer).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Optional

import typer

from sitetwin.data.clikit import DEFAULT_DB_PATH, DbOption, JsonOption, emit, out_console, table
from sitetwin.data.i18n import N_, Translator

_ = Translator("app")

training_app = typer.Typer(help="Safety education and training records: import, list, coverage.",
                           no_args_is_help=True)

TokenOption = Annotated[Optional[str], typer.Option(
    "--token", envvar="SITETWIN_TOKEN", show_default=False,
    help="Session token (sitetwin login) or API token; or set SITETWIN_TOKEN. "
         "Not needed while the store has no accounts.")]
SiteOption = Annotated[str, typer.Option("--site", help="Site code.")]

COURSE_TYPE_LABELS = {"three_level": N_("three-level safety education"), "pre_job": N_("pre-job training"),
                      "special": N_("special training"), "refresher": N_("refresher training"),
                      "daily": N_("daily safety briefing")}


def register(app: typer.Typer) -> None:
    app.add_typer(training_app, name="training")


def _day(value: str | None, what: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(_("{what}: {value!r} is not a day (YYYY-MM-DD)", what=what, value=value)) from None


def _admitted(store, token: str | None, site: str, action: str = "read"):
    from sitetwin.oversight.accounts import caller_scope
    from sitetwin.oversight.audit import guard

    scope = caller_scope(store, token)
    guard(store, scope, action, site)
    return scope


@training_app.command("import")
def training_import(
    files: Annotated[list[Path], typer.Argument(help="CSV or JSON files of training records.", show_default=False)],
    db: DbOption = DEFAULT_DB_PATH, token: TokenOption = None,
    new_workers: Annotated[bool, typer.Option("--new-workers", help="Accept workers the site's gate has not seen "
                                                                    "yet (trained before their first day).")] = False,
    evaluate: Annotated[bool, typer.Option("--evaluate/--no-evaluate", help="Recompute the sites' untrained-worker "
                                                                            "warnings.")] = True,
    as_json: JsonOption = False,
) -> None:
    """Import training records; each file is one transaction, and importing it again stores nothing twice."""
    from sitetwin.data.store import open_store
    from sitetwin.oversight.accounts import caller_scope
    from sitetwin.oversight.audit import guard
    from sitetwin.oversight.raising import raise_drafts
    from sitetwin.sensors.training import import_file
    from sitetwin.sensors.warnings import evaluate_warnings

    reports = []
    with open_store(db, create=False) as store:
        scope = caller_scope(store, token)
        for path in files:
            # every role but viewer may add to a site's record ("comment" allows exactly those)
            reports.append(import_file(store, path, new_workers=new_workers,
                                       check_site=lambda site: guard(store, scope, "comment", site)))
        if evaluate:
            # records change who counts as trained, back to their first day: the attendance warnings of the
            # sites they name are computed again (no device rules: device_ids=[])
            for site in sorted({s for r in reports if r["inserted"] or r["updated"] for s in r["sites"]}):
                evaluate_warnings(store, site_code=site, device_ids=[], sink=raise_drafts)

    def render(rs: list[dict]) -> None:
        for r in rs:
            if r["duplicate"]:
                out_console().print(_("{file}: imported before; nothing stored", file=r["file"]))
            else:
                out_console().print(_("{file}: {inserted} records stored, {updated} updated, {copies} already there",
                                      file=r["file"], inserted=r["inserted"], updated=r["updated"],
                                      copies=r["copies"]))
    emit(reports, as_json, render)


@training_app.command("list")
def training_list(
    site: SiteOption, db: DbOption = DEFAULT_DB_PATH, token: TokenOption = None,
    worker: Annotated[Optional[str], typer.Option(help="Only this worker (pseudonym).")] = None,
    valid_on: Annotated[Optional[str], typer.Option("--valid-on", help="Only passed records valid on this day, "
                                                                        "YYYY-MM-DD.")] = None,
    as_json: JsonOption = False,
) -> None:
    """A site's training records."""
    from sitetwin.data.store import open_store
    from sitetwin.sensors.training import list_records

    day = _day(valid_on, "--valid-on")
    with open_store(db, create=False) as store:
        _admitted(store, token, site)
        rows = list_records(store, site, worker_id=worker, valid_on=day).to_dict("records")

    def render(rs: list[dict]) -> None:
        shown = [{**r, "course_type": _(COURSE_TYPE_LABELS.get(r["course_type"], r["course_type"])),
                  "passed": _("yes") if r["passed"] else _("no")} for r in rs]
        table(shown, ["worker_id", "course", "course_type", "completed_on", "hours", "score", "passed", "valid_until"],
              title=_("Training records of {site}", site=site))
    emit(rows, as_json, render)


@training_app.command("coverage")
def training_coverage_cmd(
    site: SiteOption, db: DbOption = DEFAULT_DB_PATH, token: TokenOption = None,
    since: Annotated[Optional[str], typer.Option(help="From this day, YYYY-MM-DD (default: 30 days ago).")] = None,
    until: Annotated[Optional[str], typer.Option(help="Up to and including this day (default: today, UTC).")] = None,
    as_json: JsonOption = False,
) -> None:
    """How many workers who entered the site had valid safety training each time."""
    from sitetwin.data.clock import utcnow
    from sitetwin.data.store import open_store
    from sitetwin.sensors.queries import training_coverage

    end = (_day(until, "--until") or utcnow().date()) + dt.timedelta(days=1)
    start = _day(since, "--since") or end - dt.timedelta(days=30)
    if start >= end:
        raise typer.BadParameter(_("--since must be before --until"))
    with open_store(db, create=False) as store:
        _admitted(store, token, site)
        result = {"site_code": site, "start": start, "end": end, **training_coverage(store, site, start, end)}

    def render(r: dict) -> None:
        share = _("no training records") if r["coverage"] is None else f"{r['coverage']:.0%}"
        out_console().print(_("{site}: {trained} of {workers} workers on site had valid training ({share})",
                              site=site, trained=r["trained_valid"], workers=r["workers_on_site"], share=share))
    emit(result, as_json, render)
