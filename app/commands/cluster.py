"""``sitetwin cluster``: run a city's manifest of work units on a Ray cluster, and see what ran."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from sitetwin.data.clikit import JsonOption, emit, out_console, progress, table
from sitetwin.data.i18n import Translator

_ = Translator("app")

cluster_app = typer.Typer(help="A city's sites on a Ray cluster: run a manifest of units, see what ran.",
                          no_args_is_help=True)

ManifestArg = Annotated[Path, typer.Argument(help="The manifest: a YAML list of units (kind, site, db, ...).",
                                             show_default=False)]


def register(app: typer.Typer) -> None:
    app.add_typer(cluster_app, name="cluster")


@cluster_app.command("run")
def run_cmd(
    manifest: ManifestArg,
    address: Annotated[Optional[str], typer.Option(
        "--address", envvar="RAY_ADDRESS", show_default=False,
        help="An existing Ray cluster (HOST:PORT of its head, ray://HOST:PORT, or auto); or set RAY_ADDRESS. "
             "Default: a local cluster for this run.")] = None,
    workers: Annotated[Optional[int], typer.Option(
        "--workers", min=1, help="CPUs of the local cluster (default: all of this machine's).")] = None,
    token: Annotated[Optional[str], typer.Option(
        "--token", envvar="SITETWIN_TOKEN", show_default=False,
        help="Session or API token for the score units of stores with accounts; or set SITETWIN_TOKEN.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Run a manifest's units (models, surveys, detections, scores); units done before are skipped."""
    from sitetwin.cluster.manifest import check_stores, load_manifest
    from sitetwin.cluster.runner import connect, run_manifest

    plan = load_manifest(manifest)
    states = check_stores(plan)     # every problem of the manifest before Ray starts
    counts: dict[str, int] = {}
    for u in plan.units:
        counts[u.kind] = counts.get(u.kind, 0) + 1
    with connect(address, workers=workers), progress(transient=False) as bar:
        tasks = {k: bar.add_task(k, total=n) for k, n in counts.items()}

        def on_event(event: dict[str, Any]) -> None:
            bar.advance(tasks[event["kind"]])
            if event["status"] == "failed":
                bar.console.print("[red]" + _("failed:") + f"[/] {event['label']}: {event['error']}", markup=True,
                                  highlight=False, soft_wrap=True)

        # Ray prints what its workers report (a lost worker, a retried task) on stdout: stderr, under --json too
        with contextlib.redirect_stdout(sys.stderr):
            report = run_manifest(plan, token=token, on_event=on_event, states=states)
    emit(report.summary(), as_json, _render_run)
    if report.failed:
        raise typer.Exit(1)


def _render_run(summary: dict) -> None:
    failed = summary["failed"]
    out_console().print(_("{units} units: {done} done, {skipped} skipped, {failed} failed", units=summary["units"],
                          done=summary["done"], skipped=summary["skipped"], failed=len(failed)))
    if failed:
        table(failed, ["unit", "error"], title=_("failed units"))


@cluster_app.command("status")
def status_cmd(
    manifest: Annotated[Optional[Path], typer.Argument(help="A manifest: the ledgers of the stores it names, its "
                                                            "units only.", show_default=False)] = None,
    db: Annotated[Optional[Path], typer.Option("--db", help="One store's ledger instead (every unit that ran "
                                                            "against it).", show_default=False)] = None,
    as_json: JsonOption = False,
) -> None:
    """What ran: each unit's status (done, failed with its error, running), attempts and time, from the ledgers."""
    from sitetwin.cluster.manifest import load_manifest
    from sitetwin.cluster.queries import ledger_rows
    from sitetwin.data.store import open_store

    if (manifest is None) == (db is None):
        raise typer.BadParameter(_("give a MANIFEST or --db STORE, one of them"))
    stores: list[Path]
    only: str | None = None
    if manifest is not None:
        plan = load_manifest(manifest, check_files=False)
        stores = [s for s in plan.stores() if s.exists()]
        only = str(plan.path)
    else:
        assert db is not None
        stores = [db]
    rows = []
    for path in stores:
        with open_store(path, read_only=True) as store:
            rows += [{"db": str(path), **r} for r in ledger_rows(store, manifest=only)]
    rows.sort(key=lambda r: (r["manifest"] or "", r["unit_index"] or 0, str(r["started_at"])))
    emit(rows, as_json, _render_status)


def _render_status(rows: list[dict]) -> None:
    if not rows:
        out_console().print(_("no unit has run yet"))
        return
    table([{"unit": r["unit_index"], "kind": r["kind"], "site": r["site_code"], "status": r["status"],
            "attempts": r["attempts"], "seconds": None if r["seconds"] is None else f"{r['seconds']:.1f}",
            "finished": r["finished_at"] and f"{r['finished_at']:%Y-%m-%d %H:%M}", "error": r["error"]}
           for r in rows],
          ["unit", "kind", "site", "status", "attempts", "seconds", "finished", "error"])
    by: dict[str, int] = {}
    for r in rows:
        by[r["status"]] = by.get(r["status"], 0) + 1
    out_console().print(", ".join(f"{n} {s}" for s, n in sorted(by.items())))
