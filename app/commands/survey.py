"""``sitetwin survey`` (add, deviation, list) and ``sitetwin progress``: point-cloud surveys from the shell."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from sitetwin.data.clikit import DEFAULT_DB_PATH, DbOption, JsonOption, emit, err_console, out_console, table, warn
from sitetwin.data.i18n import N_, Translator

_ = Translator("app")

survey_app = typer.Typer(help="Point-cloud surveys: register to the model, deviation, as-built status.",
                         no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(survey_app, name="survey")
    app.command("progress")(progress_cmd)
    survey_app.command("warm")(warm_cmd)


def warm_cmd(as_json: JsonOption = False) -> None:
    """Compile the distance kernels into numba's cache once, so that the first survey compiles nothing.

    `make setup` runs it; after a plain `pip install`, run it once (about half a minute of CPU).
    """
    from sitetwin.twin.distance import warm

    kernels = warm()
    emit(kernels, as_json, lambda k: out_console().print(_(
        "distance kernels: {compiled} compiled into the cache, {loaded} already there",
        compiled=sum(v == "compiled" for v in k.values()), loaded=sum(v == "loaded" for v in k.values()))))


@survey_app.command("add")
def add_cmd(
    scans: Annotated[list[Path], typer.Argument(help="Point-cloud files of one survey: .e57, .las/.laz "
                                                     "(COPC too), .ply, .pcd, .xyz.", show_default=False)],
    model: Annotated[list[str], typer.Option("--model", help="Model id to compare with (repeat for several "
                                                             "discipline models of the site).")],
    db: DbOption = DEFAULT_DB_PATH,
    epoch: Annotated[Optional[str], typer.Option(help="Survey date, YYYY-MM-DD (registration then uses the "
                                                      "elements the schedule says stand by then).")] = None,
    register_mode: Annotated[Optional[str], typer.Option(
        "--register", help="auto: find the pose; none: the cloud is in the site's local frame already. "
                           "Default auto, unless --transform or --control-points is given.")] = None,
    transform: Annotated[Optional[Path], typer.Option(
        help='JSON 4x4 T_model_from_scan (a list, or {"T_model_from_scan": ...} in the site local frame, '
             'or {"T_world_from_scan": ...} in IFC coordinates).')] = None,
    control_points: Annotated[Optional[Path], typer.Option(
        help="CSV of >= 3 pairs: scan_x,scan_y,scan_z and model_x,model_y,model_z (local frame) "
             "or world_x,world_y,world_z (IFC coordinates); optional name.")] = None,
    units: Annotated[str, typer.Option(help="Units of the cloud: m or mm.")] = "m",
    tolerances: Annotated[Optional[Path], typer.Option(help="JSON overrides of the per-class tolerances "
                                                            "(defaults: GB 50204).")] = None,
    name: Annotated[Optional[str], typer.Option(help="A name for the survey (default: first file's name).")] = None,
    crs: Annotated[Optional[str], typer.Option(
        help="CRS of files that declare none, e.g. EPSG:4547 (CGCS2000 Gauss-Kruger); a georeferenced cloud is "
             "placed through the model's map conversion and refined by ICP.")] = None,
    fit_scale: Annotated[bool, typer.Option(
        "--scale", help="The cloud's units are unknown (photogrammetry, SfM): fit a similarity (rotation, "
                        "translation, scale) and report the scale with its uncertainty.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Import a survey, register it to the model, compute per-element deviation and status (one transaction)."""
    from sitetwin.data.store import open_store
    from sitetwin.twin.errors import SurveyError
    from sitetwin.twin.survey import add_survey

    if register_mode is not None and register_mode not in ("auto", "none"):
        raise typer.BadParameter(_("--register takes auto or none"))
    if register_mode is not None and (transform is not None or control_points is not None):
        raise SurveyError(N_("--register chooses between auto and none; with --transform or --control-points "
                             "leave it out"))
    if units not in ("m", "mm"):
        raise typer.BadParameter(_("--units takes m or mm"))
    console = err_console()
    with open_store(db) as store:
        with console.status(_("survey") + " ...") as status:
            report = add_survey(store, scans, model_ids=model, epoch=epoch, register=register_mode or "auto",
                                transform=transform, control_points=control_points, units=units,
                                tolerances=tolerances, name=name, crs=crs, fit_scale=fit_scale,
                                on_progress=lambda msg: status.update(_("survey") + f": {msg} ..."))
    for w in report.warnings:
        warn(w)
    emit(report, as_json, _render_add)


def _render_add(r) -> None:
    from sitetwin.data.clikit import out_console

    c = out_console()
    reg = r.registration
    c.print("[bold]" + _("survey {survey}", survey=r.survey_id) + "[/] "
            + _("site {site}, epoch {epoch}, {points} points in {scans} scan(s)", site=r.site_code,
                epoch=r.epoch or "-", points=format(r.point_count, ","), scans=len(r.scans))
            + (" " + _("(already imported)") if r.reused else ""))
    c.print("  " + _("registration {method}: fitness {fitness}, RMSE {rmse} mm", method=reg["method"],
                     fitness=format(reg['fitness'], ".3f"), rmse=reg["rmse_mm"])
            + (", " + _("margin over the runner-up pose {margin}", margin=format(reg['details']['margin'], ".2%"))
               if reg.get("details", {}).get("margin") is not None else ""))
    for cp in reg.get("control_points", []):
        c.print(f"    {cp['name']}: " + _("residual {mm} mm", mm=cp["residual_mm"]))
    if reg.get("scale") is not None:
        sigma = reg.get("scale_sigma")
        c.print("  " + _("scale {scale} model metres per survey unit", scale=format(reg["scale"], ".6g"))
                + (" " + _("(1 sigma {sigma}, bootstrap)", sigma=format(sigma, ".3%")) if sigma is not None else ""))
    if reg.get("georef_offset_m") is not None:
        geo = reg.get("details", {}).get("georeference", {})
        c.print("  " + _("georeferenced from {crs}: the refined pose is {m} m / {deg} deg from the georeference's",
                         crs=geo.get("file_crs", "?"), m=format(reg["georef_offset_m"], ".3f"),
                         deg=format(reg["georef_offset_deg"], ".3f")))
    counts = r.status_counts
    c.print("  " + _("elements: built {built}, partial {partial}, not built {not_built}, out of tolerance {oot}",
                     built=counts["built"], partial=counts["partial"], not_built=counts["not_built"],
                     oot=counts["out_of_tolerance"]))
    c.print("  " + _("noise {noise} mm -> {loa} (USIBD); unplanned objects {n}", noise=r.noise_mm, loa=r.loa or "-",
                     n=r.unplanned_objects))


@survey_app.command("deviation")
def deviation_cmd(
    survey: Annotated[str, typer.Option("--survey", help="Survey id (see `sitetwin survey list`).")],
    db: DbOption = DEFAULT_DB_PATH,
    status: Annotated[Optional[str], typer.Option(help="Only elements with this status: built, partial, "
                                                       "not_built, out_of_tolerance.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Per-element deviation of a survey: points, coverage, mean and p95 (mm), status."""
    import json

    from sitetwin.data.store import open_store
    from sitetwin.twin.survey_store import STATUSES, element_deviation

    if status is not None and status not in STATUSES:
        raise typer.BadParameter(_("--status takes one of {statuses}", statuses=", ".join(STATUSES)))
    with open_store(db, read_only=True, create=False) as store:
        rows = element_deviation(store, survey)
    if status:
        rows = [r for r in rows if r["status"] == status]
    for r in rows:
        r["checks"] = json.loads(r["checks"]) if r["checks"] else []
        for k in ("coverage", "visible_share"):
            r[k] = None if r[k] is None else round(float(r[k]), 4)
        for k in ("mean_mm", "median_mm", "p95_mm", "max_mm", "shift_x_mm", "shift_y_mm", "shift_z_mm", "shift_mm",
                  "section_mm", "verticality_mm", "flatness_mm"):
            r[k] = None if r[k] is None or r[k] != r[k] else round(float(r[k]), 2)
    emit(rows, as_json, lambda rs: table(rs, ["global_id", "ifc_class", "storey", "points", "coverage", "mean_mm",
                                              "p95_mm", "shift_mm", "status"],
                                         title=_("survey {survey}", survey=survey)))


@survey_app.command("list")
def list_cmd(
    db: DbOption = DEFAULT_DB_PATH,
    site: Annotated[Optional[str], typer.Option(help="Only this site.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Surveys in the store, with their registration figures and status counts."""
    from sitetwin.data.store import open_store
    from sitetwin.twin.survey_store import list_surveys

    with open_store(db, read_only=True, create=False) as store:
        rows = list_surveys(store, site)
    emit(rows, as_json, lambda rs: table(rs, ["survey_id", "site_code", "epoch", "registration_method", "fitness",
                                              "point_count", "loa", "built", "partial", "not_built",
                                              "out_of_tolerance"]))


def progress_cmd(
    db: DbOption = DEFAULT_DB_PATH,
    site: Annotated[Optional[str], typer.Option(help="Site code (default: the store's only site).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Progress against the schedule from the survey epochs: per storey and task, S-curve, late elements."""
    from sitetwin.data.store import open_store
    from sitetwin.twin.progress import progress_report

    with open_store(db, read_only=True, create=False) as store:
        report = progress_report(store, site_code=site)
    emit(report, as_json, _render_progress)


def _render_progress(r) -> None:
    from sitetwin.data.clikit import out_console

    c = out_console()
    if not r.surveys:
        c.print(_("site {site}: no analysed survey with an epoch yet; add one with `sitetwin survey add`",
                  site=r.site_code))
        return
    c.print("[bold]" + _("site {site}", site=r.site_code) + "[/]: "
            + _("{n} scheduled elements, {surveys} survey(s)", n=r.elements, surveys=len(r.surveys)))
    table([{"epoch": s["epoch"], "survey": s["survey_id"], "planned": s["planned"], "built": s["built"]}
           for s in r.surveys], ["epoch", "survey", "planned", "built"], title=_("epochs"))
    table(list(r.by_storey), ["storey", "elements", "planned_pct", "actual_pct", "late"],
          title=_("per storey, at the latest survey"))
    table(list(r.by_task), ["task", "planned_finish", "elements", "planned_pct", "actual_pct", "late"],
          title=_("per task"))
    c.print(_("late elements: {n}", n=len(r.late_elements))
            + (" " + _("(worst {days} days)", days=r.late_elements[0]["days_late"]) if r.late_elements else ""))
