"""``sitetwin works``: the register of dangerous works (危大工程) of a site, from the shell.

``add`` and ``import`` register works (an import is all or nothing); ``review``, ``approve``,
``start`` and ``finish`` record their steps, each checked (no start before the special plan's
approval, no approval of a beyond-scale plan before its expert review passed); ``list`` and
``show`` read the register; ``check`` runs the daily check (overdue approvals raise findings,
people inside unapproved works' zones raise hazards). A work is named by its id, or by its code
with ``--site``. Every command takes ``--token`` (or ``SITETWIN_TOKEN``) as the oversight
commands do.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from sitetwin.data.clikit import DEFAULT_DB_PATH, DbOption, JsonOption, emit, out_console, table
from sitetwin.data.i18n import N_, Translator

_ = Translator("app")

works_app = typer.Typer(help="Dangerous works (危大工程): register, plan approval, expert review, start, end, check.",
                        no_args_is_help=True)

TokenOption = Annotated[Optional[str], typer.Option(
    "--token", envvar="SITETWIN_TOKEN", show_default=False,
    help="Session token (sitetwin login) or API token; or set SITETWIN_TOKEN. "
         "Not needed while the store has no accounts.")]
SiteOption = Annotated[Optional[str], typer.Option("--site", help="Site code (with a work's code instead of its id).")]
WorkArgument = Annotated[str, typer.Argument(help="The work's id, or its code with --site.")]
DayOption = Annotated[Optional[str], typer.Option("--on", help="The day, YYYY-MM-DD (default today, UTC).")]
NoteOption = Annotated[str, typer.Option("--note", help="A note kept with the step.")]
AsOfOption = Annotated[Optional[str], typer.Option("--as-of", help="Day to judge, YYYY-MM-DD (default today, UTC).")]

# Stored values -> what a person reads (the values themselves stay in --json output)
STATE_LABELS = {"planned": N_("plan not approved"), "approved": N_("plan approved"), "active": N_("under way"),
                "finished": N_("works finished")}
SCALE_LABELS = {"dangerous": N_("dangerous"), "beyond_scale": N_("beyond scale")}
REVIEW_LABELS = {"not_required": N_("not required"), "pending": N_("awaiting review"),
                 "passed": N_("review passed"), "failed": N_("review failed")}
TYPE_LABELS = {"foundation_pit": N_("foundation pit"), "formwork_support": N_("formwork and supports"),
               "lifting_installation": N_("lifting, crane and hoist erection"), "scaffolding": N_("scaffolding"),
               "demolition": N_("demolition"), "underground_excavation": N_("underground excavation"),
               "curtain_wall": N_("curtain wall installation"), "other": N_("other")}


def register(app: typer.Typer) -> None:
    app.add_typer(works_app, name="works")


@contextmanager
def _caller(db: Path, token: str | None) -> Iterator[tuple]:
    """Open the store (writable: reads are audited) and resolve who is calling."""
    from sitetwin.data.store import open_store
    from sitetwin.oversight.accounts import caller_scope

    with open_store(db, create=False) as store:
        yield store, caller_scope(store, token)


def _row(w) -> dict[str, Any]:
    return {"work_id": w.work_id, "site_code": w.site_code, "code": w.code, "work_type": w.work_type,
            "scale": w.scale, "title": w.title, "responsible": w.responsible, "state": w.state,
            "review_state": w.review_state, "review_on": w.review_on, "plan_approved_on": w.plan_approved_on,
            "plan_approved_by": w.plan_approved_by, "planned_start": w.planned_start, "planned_end": w.planned_end,
            "actual_start": w.actual_start, "actual_end": w.actual_end, "overdue_days": w.overdue_days,
            "global_ids": list(w.global_ids), "zone": w.zone.as_json() if w.zone else None}


def _shown(r: dict) -> dict:
    """A row as a person reads it: stored values as words in their language."""
    return {**r, "work_type": _(TYPE_LABELS.get(r["work_type"], r["work_type"])),
            "scale": _(SCALE_LABELS.get(r["scale"], r["scale"])), "state": _(STATE_LABELS.get(r["state"], r["state"])),
            "review_state": _(REVIEW_LABELS.get(r["review_state"], r["review_state"])),
            "overdue_days": r["overdue_days"] or ""}


def _render_list(rows: list[dict]) -> None:
    cols = [("site_code", N_("site")), ("code", N_("code")), ("work_type", N_("type")), ("scale", N_("scale")),
            ("state", N_("state")), ("review_state", N_("expert review")), ("planned_start", N_("planned start")),
            ("overdue_days", N_("days overdue")), ("responsible", N_("responsible")), ("title", N_("title"))]
    shown = [{_(h): s[k] for k, h in cols} for s in map(_shown, rows)]
    table(shown, [_(h) for _k, h in cols], title=_.plural("{n} dangerous work", "{n} dangerous works", len(rows)))


def _render_one(r: dict) -> None:
    s = _shown(r)
    out_console().print(_("{code} ({site}): {title}: {type}, {scale}; {state}", code=r["code"], site=r["site_code"],
                          title=r["title"], type=s["work_type"], scale=s["scale"], state=s["state"]),
                        markup=False, soft_wrap=True)


# --------------------------------------------------------------------------------------
# registering

@works_app.command("add")
def works_add(
    site: Annotated[str, typer.Option("--site", help="Site code.")],
    code: Annotated[str, typer.Option("--code", help="The site's reference for the works, e.g. DW-03.")],
    work_type: Annotated[str, typer.Option("--type", help="foundation_pit | formwork_support | lifting_installation | "
                                                          "scaffolding | demolition | underground_excavation | "
                                                          "curtain_wall | other (or the list's Chinese name).")],
    title: Annotated[str, typer.Option("--title", help="What the works are, in one line.")],
    responsible: Annotated[str, typer.Option("--responsible", help="Who answers for the works on site.")],
    planned_start: Annotated[str, typer.Option("--planned-start", help="YYYY-MM-DD.")],
    planned_end: Annotated[str, typer.Option("--planned-end", help="YYYY-MM-DD.")],
    scale: Annotated[str, typer.Option("--scale", help="dangerous | beyond_scale (expert review required).")]
    = "dangerous",
    description: Annotated[str, typer.Option("--description", help="More detail.")] = "",
    element: Annotated[Optional[list[str]], typer.Option("--element", help="GlobalId of an element (repeat).")] = None,
    zone: Annotated[Optional[str], typer.Option("--zone", help='Plan polygon "x y; x y; x y" (metres, local frame).')]
    = None,
    z_min: Annotated[Optional[float], typer.Option("--z-min", help="Zone bottom, metres.")] = None,
    z_max: Annotated[Optional[float], typer.Option("--z-max", help="Zone top, metres.")] = None,
    db: DbOption = DEFAULT_DB_PATH, token: TokenOption = None, as_json: JsonOption = False,
) -> None:
    """Register dangerous works on a site."""
    from sitetwin.oversight.dangerous_works import add_work, get_work

    zone_spec = None
    if zone is not None or z_min is not None or z_max is not None:
        if zone is None or z_min is None or z_max is None:
            raise typer.BadParameter(_("a zone needs --zone, --z-min and --z-max together"))
        zone_spec = {"polygon_m": zone, "z_min_m": z_min, "z_max_m": z_max}
    with _caller(db, token) as (store, scope):
        wid = add_work(store, scope, site, code=code, work_type=work_type, scale=scale, title=title,
                       description=description, responsible=responsible, planned_start=planned_start,
                       planned_end=planned_end, global_ids=element or (), zone=zone_spec)
        row = _row(get_work(store, scope, wid))
    emit(row, as_json, _render_one)


@works_app.command("import")
def works_import(
    path: Annotated[Path, typer.Argument(help="A CSV or JSON register (see `oversight.dangerous_works.FIELDS`).")],
    site: Annotated[Optional[str], typer.Option("--site", help="Site of rows that name none.")] = None,
    db: DbOption = DEFAULT_DB_PATH, token: TokenOption = None, as_json: JsonOption = False,
) -> None:
    """Import a register of dangerous works: all rows, or none (one line names the bad row and field)."""
    from sitetwin.oversight.dangerous_works import import_works

    with _caller(db, token) as (store, scope):
        report = import_works(store, scope, path, site_code=site)
    emit(report, as_json, lambda r: out_console().print(
        _.plural("{n} dangerous work imported from {file}", "{n} dangerous works imported from {file}", r["works"],
                 file=Path(r["file"]).name), markup=False))


# --------------------------------------------------------------------------------------
# reading

@works_app.command("list")
def works_list(
    site: Annotated[Optional[str], typer.Option("--site", help="Site code (default: every site in your scope).")]
    = None,
    state: Annotated[Optional[str], typer.Option("--state", help="planned | approved | active | finished")] = None,
    overdue: Annotated[Optional[bool], typer.Option("--overdue/--not-overdue",
                                                    help="Only works (not) overdue for plan approval.")] = None,
    as_of: AsOfOption = None, db: DbOption = DEFAULT_DB_PATH, token: TokenOption = None, as_json: JsonOption = False,
) -> None:
    """List the dangerous works in your scope, by site and planned start."""
    from sitetwin.oversight.dangerous_works import list_works

    with _caller(db, token) as (store, scope):
        rows = [_row(w) for w in list_works(store, scope, site_code=site, state=state, overdue=overdue, as_of=as_of)]
    emit(rows, as_json, _render_list)


@works_app.command("show")
def works_show(
    work: WorkArgument, site: SiteOption = None, db: DbOption = DEFAULT_DB_PATH, token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """One work with its history of steps."""
    from sitetwin.oversight.dangerous_works import get_work, work_history

    with _caller(db, token) as (store, scope):
        row = _row(get_work(store, scope, work, site_code=site))
        history = work_history(store, scope, row["work_id"])

    def render(p):
        _render_one(p["work"])
        cols = [("seq", N_("step")), ("occurred_at", N_("recorded")), ("actor", N_("by")), ("kind", N_("what")),
                ("on_day", N_("day")), ("note", N_("note"))]
        table([{_(h): e.get(k) for k, h in cols} for e in p["history"]], [_(h) for _k, h in cols])
    emit({"work": row, "history": history}, as_json, render)


# --------------------------------------------------------------------------------------
# steps

def _step(action: str, work: str, site: str | None, db: Path, token: str | None, as_json: bool, **kw) -> None:
    from sitetwin.oversight import dangerous_works as dw

    with _caller(db, token) as (store, scope):
        row = _row(getattr(dw, action)(store, scope, work, site_code=site, **kw))
    emit(row, as_json, _render_one)


@works_app.command("review")
def works_review(
    work: WorkArgument,
    passed: Annotated[bool, typer.Option("--passed/--failed", help="The expert review's outcome.")],
    on: DayOption = None, note: NoteOption = "", site: SiteOption = None,
    db: DbOption = DEFAULT_DB_PATH, token: TokenOption = None, as_json: JsonOption = False,
) -> None:
    """Record the expert review (专家论证) of a plan beyond a certain scale."""
    _step("review_work", work, site, db, token, as_json, passed=passed, on=on, note=note)


@works_app.command("approve")
def works_approve(
    work: WorkArgument,
    by: Annotated[str, typer.Option("--by", help="Who approved the special plan.")],
    on: DayOption = None, note: NoteOption = "", site: SiteOption = None,
    db: DbOption = DEFAULT_DB_PATH, token: TokenOption = None, as_json: JsonOption = False,
) -> None:
    """Record the special plan's (专项施工方案) approval."""
    _step("approve_plan", work, site, db, token, as_json, by=by, on=on, note=note)


@works_app.command("start")
def works_start(
    work: WorkArgument, on: DayOption = None, note: NoteOption = "", site: SiteOption = None,
    db: DbOption = DEFAULT_DB_PATH, token: TokenOption = None, as_json: JsonOption = False,
) -> None:
    """Record that the works started (only once their plan is approved)."""
    _step("start_work", work, site, db, token, as_json, on=on, note=note)


@works_app.command("finish")
def works_finish(
    work: WorkArgument, on: DayOption = None, note: NoteOption = "", site: SiteOption = None,
    db: DbOption = DEFAULT_DB_PATH, token: TokenOption = None, as_json: JsonOption = False,
) -> None:
    """Record that the works finished."""
    _step("finish_work", work, site, db, token, as_json, on=on, note=note)


@works_app.command("check")
def works_check(
    site: Annotated[str, typer.Option("--site", help="Site code.")],
    window_days: Annotated[int, typer.Option("--window-days", help="Judge detections of this many days.")] = 7,
    as_of: AsOfOption = None, db: DbOption = DEFAULT_DB_PATH, token: TokenOption = None, as_json: JsonOption = False,
) -> None:
    """The daily check: overdue plan approvals raise findings, people in unapproved works' zones raise hazards."""
    from sitetwin.oversight.dangerous_works import check_site

    with _caller(db, token) as (store, scope):
        report = check_site(store, scope, site, as_of=as_of, window_days=window_days)

    def render(r):
        out_console().print(_("{site} on {day}: overdue for plan approval {overdue}; findings raised {findings}; "
                              "hazards in unapproved works' zones {hazards}",
                              site=r.site_code, day=r.as_of.isoformat(), overdue=len(r.overdue),
                              findings=len(r.findings), hazards=len(r.hazards)), markup=False, soft_wrap=True)
    emit(report, as_json, render)
