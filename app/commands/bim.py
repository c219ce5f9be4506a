"""``sitetwin bim``: load IFC models, list their elements, compare revisions, link schedules."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from sitetwin.data.clikit import (
    DEFAULT_DB_PATH,
    DbOption,
    JsonOption,
    emit,
    err_console,
    out_console,
    progress,
    table,
    warn,
)
from sitetwin.data.i18n import N_, Translator

_ = Translator("app")
# a model diff's counts, as the reader's language names them
CHANGES = {k: k for k in (N_("added"), N_("removed"), N_("changed"), N_("rematched"), N_("unchanged"))}

bim_app = typer.Typer(help="Design models (IFC): load, inspect, compare, schedule.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(bim_app, name="bim")


@bim_app.command("load")
def load_cmd(
    models: Annotated[list[Path], typer.Argument(help="IFC files (.ifc or .ifczip) of one site.", show_default=False)],
    db: DbOption = DEFAULT_DB_PATH,
    site: Annotated[Optional[str], typer.Option(help="Site code (default: the store's only site, else SITE).")] = None,
    name: Annotated[Optional[str], typer.Option(help="Model name that groups revisions (default: file name).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Load IFC models into the twin. Each file is one transaction; reloading a file is a no-op."""
    from sitetwin.bim.ifc import inspect_ifc
    from sitetwin.bim.load import load_model
    from sitetwin.data.store import open_store

    if name and len(models) > 1:
        raise typer.BadParameter(_("--name applies to one file at a time"))
    for path in models:   # check every header before loading anything
        inspect_ifc(path)
    reports = []
    with open_store(db) as store, progress() as bar:
        for path in models:
            task = bar.add_task(_("tessellating {file}", file=path.name), total=None)

            def on_progress(done: int, total: int, t=task) -> None:
                bar.update(t, completed=done, total=total)

            report = load_model(store, path, site_code=site, name=name, on_progress=on_progress)
            bar.remove_task(task)
            for w in report.warnings:
                warn(w)
            reports.append(report)
    payload = reports[0] if len(reports) == 1 else {"models": reports}

    def render(_payload) -> None:
        table([{"model": r.model_id, "file": r.file_name, "version": r.version, "schema": r.schema,
                "unit": r.length_unit, "elements": r.element_count, "triangles": r.triangle_count,
                "failed": len(r.failures),
                "status": "unchanged" if r.reused else ("cached" if r.cache_hit else "loaded")} for r in reports],
              ["model", "file", "version", "schema", "unit", "elements", "triangles", "failed", "status"],
              title=_("site {site}", site=reports[0].site_code))
        for r in reports:
            line = skipped_text(r.file_name, r.skipped)
            if line:
                out_console().print(line, highlight=False, markup=False)
    emit(payload, as_json, render)


# why a product was not loaded as surfaces (bim.elements.skip_reason, bim.load.parse_model), as people read it
SKIP_REASONS = {k: k for k in (N_("not built"), N_("no body"), N_("container"), N_("not physical"),
                               N_("reference line"), N_("alignment layout"), N_("reference line not evaluated"),
                               N_("reference line, plan only (3D axis incomplete)"))}


def skipped_text(file_name: str, skipped) -> str:
    """The load report's ``skipped_line`` in the reader's language, from its records ``{reason, ifc_class,
    count}`` ("" when nothing was skipped)."""
    by_reason: dict[str, list[tuple[str, int]]] = {}
    for s in skipped:
        by_reason.setdefault(s["reason"], []).append((s["ifc_class"], int(s["count"])))
    if not by_reason:
        return ""
    parts = [_("{reason} {n} ({classes})", reason=_(SKIP_REASONS[r]) if r in SKIP_REASONS else r,
               n=sum(n for _c, n in items), classes=", ".join(f"{c} {n}" for c, n in items))
             for r, items in by_reason.items()]
    return _("{file}: {n} products with a representation not loaded as surfaces: {reasons}", file=file_name,
             n=sum(n for items in by_reason.values() for _c, n in items), reasons=_("; ").join(parts))


@bim_app.command("models")
def models_cmd(db: DbOption = DEFAULT_DB_PATH, as_json: JsonOption = False) -> None:
    """List the models in the store, with their versions."""
    from sitetwin.bim.queries import list_models
    from sitetwin.data.store import open_store

    with open_store(db, read_only=True, create=False) as store:
        rows = list_models(store)
    emit(rows, as_json, lambda rs: table(rs, ["model_id", "site_code", "name", "version", "file_name", "ifc_schema",
                                              "element_count", "triangle_count"]))


@bim_app.command("elements")
def elements_cmd(
    db: DbOption = DEFAULT_DB_PATH,
    model: Annotated[Optional[str], typer.Option(help="Model id (default: every current model).")] = None,
    site: Annotated[Optional[str], typer.Option(help="Site code.")] = None,
    ifc_class: Annotated[Optional[str], typer.Option("--class", help="Only this IFC class, e.g. IfcWall.")] = None,
    storey: Annotated[Optional[str], typer.Option(help="Only this storey (name).")] = None,
    limit: Annotated[int, typer.Option(help="At most this many rows (0: all).")] = 0,
    as_json: JsonOption = False,
) -> None:
    """List elements with their class, storey, type, material and bounding box (metres, local frame)."""
    from sitetwin.bim.queries import list_elements
    from sitetwin.data.store import open_store

    with open_store(db, read_only=True, create=False) as store:
        rows = list_elements(store, model_id=model, site_code=site, ifc_class=ifc_class, storey=storey, limit=limit)
    if as_json:
        for r in rows:
            r["properties"] = json.loads(r["properties"] or "{}")
            r["quantities"] = json.loads(r["quantities"] or "{}")
    emit(rows, as_json, lambda rs: table(rs, ["global_id", "ifc_class", "name", "storey", "type_name", "material",
                                              "triangle_count"],
                                        title=_.plural("{n} element", "{n} elements", len(rs))))


@bim_app.command("diff")
def diff_cmd(
    old: Annotated[Optional[str], typer.Argument(help="Old model id.")] = None,
    new: Annotated[Optional[str], typer.Argument(help="New model id.")] = None,
    db: DbOption = DEFAULT_DB_PATH,
    name: Annotated[Optional[str], typer.Option(help="Compare the two newest versions of this model name.")] = None,
    site: Annotated[Optional[str], typer.Option(help="Site code (with --name).")] = None,
    tolerance_mm: Annotated[float, typer.Option(help="Geometry match tolerance for re-identified elements.")] = 10.0,
    as_json: JsonOption = False,
) -> None:
    """Report added, removed and changed elements between two revisions of a model."""
    from sitetwin.bim.diff import diff_models, latest_versions
    from sitetwin.bim.mesh import resolve_site
    from sitetwin.data.store import open_store

    with open_store(db, read_only=True, create=False) as store:
        if name:
            old, new = latest_versions(store, resolve_site(store, site), name)
        elif not (old and new):
            raise typer.BadParameter(_("give OLD and NEW model ids, or --name"))
        result = diff_models(store, old, new, tolerance_m=tolerance_mm / 1000.0)

    def render(d):
        print(f"{d.old_model_id} -> {d.new_model_id}: "
              + ", ".join(f"{_(k) if k in CHANGES else k} {v}" for k, v in d.summary().items()))
        if not d.global_ids_stable:
            warn(_("many elements were matched by geometry, not GlobalId: this exporter does not keep GlobalIds "
                   "stable"))
        rows = ([{"change": "added", "global_id": g, "fields": ""} for g in d.added]
                + [{"change": "removed", "global_id": g, "fields": ""} for g in d.removed]
                + [{"change": "changed", "global_id": c.global_id, "fields": ",".join(c.fields)} for c in d.changed]
                + [{"change": "rematched", "global_id": f"{c.old_global_id} -> {c.global_id}",
                    "fields": ",".join(c.fields)} for c in d.rematched])
        if rows:
            table(rows, ["change", "global_id", "fields"])

    emit(result, as_json, render)


@bim_app.command("schedule")
def schedule_cmd(
    source: Annotated[Path, typer.Argument(help="MS Project XML (.xml) or a CSV map GlobalId -> task (.csv).")],
    db: DbOption = DEFAULT_DB_PATH,
    site: Annotated[Optional[str], typer.Option(help="Site code (default: the store's only site).")] = None,
    schedule: Annotated[Optional[str], typer.Option(help="For a CSV map without task dates: the schedule id "
                                                          "whose tasks it names.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Import a schedule (MS Project XML) or link elements to tasks (CSV map)."""
    from sitetwin.bim.mesh import resolve_site
    from sitetwin.bim.schedule_store import import_schedule_file
    from sitetwin.data.store import open_store

    with open_store(db) as store:
        result = import_schedule_file(store, source, site_code=resolve_site(store, site), schedule_id=schedule)
    for w in result.get("warnings", ()):
        warn(w)
    emit(result, as_json, lambda r: err_console().print(
        _("schedule {schedule}: {tasks} tasks, {links} element links ({found} found in the site's models)",
          schedule=r["schedule_id"], tasks=r["tasks"], links=r["links"], found=r["linked_to_model"])))
