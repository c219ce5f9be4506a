"""Regulators' commands: findings, BCF, portfolio, risk and tiers, evaluation, catalogue and
exchange packages, accounts, tokens and the audit log.

Who is calling: every command takes ``--token`` (or ``SITETWIN_TOKEN``): a session token
from ``sitetwin login`` or an API token from ``sitetwin token add``. While a store has no
accounts at all, the local user who can open the file acts as admin (so that the first
admin account can be made); once an account exists, a token is required.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from sitetwin.data.clikit import DEFAULT_DB_PATH, DbOption, JsonOption, emit, out_console, table, warn
from sitetwin.data.i18n import N_, Translator

TokenOption = Annotated[Optional[str], typer.Option(
    "--token", envvar="SITETWIN_TOKEN", show_default=False,
    help="Session token (sitetwin login) or API token; or set SITETWIN_TOKEN. "
         "Not needed while the store has no accounts.")]
AsOfOption = Annotated[Optional[str], typer.Option("--as-of",
                                                   help="Day to compute for, YYYY-MM-DD (default today, UTC).")]
SiteOption = Annotated[Optional[str], typer.Option("--site", help="Site code.")]
LakeOption = Annotated[Optional[str], typer.Option(
    "--lake", show_default=False,
    help="Read the city lake (a folder or URI) instead of the store; --db/--token then only say who you are "
         "(see `sitetwin lake --help`).")]

finding_app = typer.Typer(help="Findings: raise, follow and close "
                               "(open -> rectification submitted -> verified closed).",
                          no_args_is_help=True)
bcf_app = typer.Typer(help="BCF 2.1/3.0 files for BIMcollab, Solibri, Revit, Bonsai.", no_args_is_help=True)
user_app = typer.Typer(help="Accounts (admin).", no_args_is_help=True)
accounts_app = typer.Typer(help="An account's own settings (yours, or anyone's as admin).", no_args_is_help=True)
token_app = typer.Typer(help="API tokens for machines (admin).", no_args_is_help=True)
package_app = typer.Typer(help="Exchange packages between project, district and city platforms.", no_args_is_help=True)
_ = Translator("app")
# Stored words the human output names in the reader's language (the keys stay in --json).
_BY = {k: k for k in (N_("district"), N_("city"), N_("enterprise"), N_("site"), N_("computed"), N_("decision"))}


def register(app: typer.Typer) -> None:
    app.add_typer(finding_app, name="finding")
    app.add_typer(bcf_app, name="bcf")
    app.add_typer(user_app, name="user")
    app.add_typer(accounts_app, name="accounts")
    app.add_typer(token_app, name="token")
    app.add_typer(package_app, name="package")
    app.command("portfolio")(portfolio_cmd)
    app.command("risk")(risk_cmd)
    app.command("tier")(tier_cmd)
    app.command("inspections")(inspections_cmd)
    app.command("evaluate")(evaluate_cmd)
    app.command("catalogue")(catalogue_cmd)
    app.command("site-profile")(site_profile_cmd)
    app.command("login")(login_cmd)
    app.command("logout")(logout_cmd)
    app.command("audit")(audit_cmd)


@contextmanager
def _caller(db: Path, token: str | None) -> Iterator[tuple]:
    """Open the store (writable: reads are audited) and resolve who is calling."""
    from sitetwin.data.store import open_store
    from sitetwin.oversight.accounts import caller_scope

    with open_store(db, create=False) as store:
        yield store, caller_scope(store, token)


@contextmanager
def _reader(db: Path, token: str | None, lake: str | None) -> Iterator[tuple]:
    """The store, or with ``--lake`` the lake read under the caller's scope (``app.commands.lake``)."""
    if lake is None:
        with _caller(db, token) as found:
            yield found
    else:
        from sitetwin.app.commands.lake import lake_caller

        with lake_caller(lake, db, token) as found:
            yield found


def _json_arg(text: str | None, name: str) -> dict | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise typer.BadParameter(_("{name} must be JSON ({reason})", name=name, reason=exc)) from None
    if not isinstance(value, dict):
        raise typer.BadParameter(_("{name} must be a JSON object", name=name))
    return value


def _finding_row(f) -> dict:
    return {"ref": f.ref, "finding_id": f.finding_id, "category": f.category, "severity": f.severity,
            "status": f.status, "due": f.due, "overdue_days": f.overdue_days, "escalation": f.escalation_level,
            "storey": f.storey, "global_id": f.global_id, "title": f.title}


# --------------------------------------------------------------------------------------
# findings

@finding_app.command("raise")
def finding_raise(
    site: Annotated[str, typer.Option("--site", help="Site code.")],
    category: Annotated[str, typer.Option(help="safety | quality | progress | environment")],
    severity: Annotated[str, typer.Option(help="low | medium | high | critical")],
    title: Annotated[str, typer.Option(help="One line saying what is wrong.")],
    description: Annotated[str, typer.Option(help="More detail.")] = "",
    global_id: Annotated[Optional[str], typer.Option("--global-id", help="IFC GlobalId of the element.")] = None,
    storey: Annotated[Optional[str], typer.Option(help="Storey name (default: the element's).")] = None,
    location: Annotated[Optional[str], typer.Option("--location", help="x,y,z in metres, site local frame.")] = None,
    due: Annotated[Optional[str], typer.Option(help="Due date YYYY-MM-DD (default by severity).")] = None,
    evidence: Annotated[Optional[str], typer.Option(help='Evidence as JSON, e.g. {"crops": ["a.jpg"]}.')] = None,
    db: DbOption = DEFAULT_DB_PATH, token: TokenOption = None, as_json: JsonOption = False,
) -> None:
    """Raise a finding (regulators)."""
    from sitetwin.oversight.findings import get_finding, raise_finding

    loc = None
    if location:
        try:
            loc = [float(v) for v in location.split(",")]
        except ValueError:
            raise typer.BadParameter(_("--location must be x,y,z in metres")) from None
    with _caller(db, token) as (store, scope):
        fid = raise_finding(store, site_code=site, category=category, severity=severity, title=title,
                            description=description, global_id=global_id, storey=storey, location_m=loc,
                            evidence=_json_arg(evidence, "--evidence"), due=due, source="cli", scope=scope)
        f = get_finding(store, scope, fid)
    emit(_finding_row(f), as_json, lambda r: print(_("raised {ref} ({id}), due {due}", ref=r["ref"], id=r["finding_id"],
                                                                due=r["due"])))


@finding_app.command("list")
def finding_list(
    site: SiteOption = None,
    status: Annotated[Optional[list[str]], typer.Option(help="Status (repeat).")] = None,
    category: Annotated[Optional[str], typer.Option()] = None,
    severity: Annotated[Optional[str], typer.Option()] = None,
    overdue: Annotated[Optional[bool], typer.Option("--overdue/--not-overdue", help="Only (not) overdue ones.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many (0: all).")] = 0,
    as_of: AsOfOption = None, db: DbOption = DEFAULT_DB_PATH, token: TokenOption = None, as_json: JsonOption = False,
) -> None:
    """List findings in your scope, newest first."""
    from sitetwin.oversight.findings import list_findings

    with _caller(db, token) as (store, scope):
        rows = [_finding_row(f) for f in list_findings(store, scope, site_code=site, status=status, category=category,
                                                        severity=severity, overdue=overdue, as_of=as_of,
                                                        limit=limit or None)]
    emit(rows, as_json, lambda rs: table(rs, ["ref", "category", "severity", "status", "due", "overdue_days",
                                              "storey", "title"],
                                         title=_.plural("{n} finding", "{n} findings", len(rs))))


@finding_app.command("show")
def finding_show(
    finding: Annotated[str, typer.Argument(help="Finding id or reference (SITE-N).")],
    db: DbOption = DEFAULT_DB_PATH, token: TokenOption = None, as_json: JsonOption = False,
) -> None:
    """One finding with its full history and whether the history is intact."""
    from sitetwin.oversight.findings import finding_history, get_finding, verify_history

    with _caller(db, token) as (store, scope):
        f = get_finding(store, scope, finding)
        events = finding_history(store, scope, f.finding_id)
        check = verify_history(store, scope, f.finding_id)
    payload = {"finding": f, "events": events, "history_intact": check.ok, "history_problems": list(check.problems)}

    def render(p):
        console = out_console()
        console.print(f"[bold]{f.ref}[/] {f.title} - {f.category}/{f.severity}, {f.status}, "
                      + _("due {due}", due=f.due))
        table([{"seq": e.seq, "at": e.occurred_at, "actor": e.actor, "kind": e.kind, "status": e.status,
                "note": e.note} for e in events], ["seq", "at", "actor", "kind", "status", "note"])
        console.print(_("history intact") if check.ok
                      else "[red]" + _("history damaged:") + f"[/] {'; '.join(check.problems)}")
    emit(payload, as_json, render)


def _lifecycle(action: str, finding: str, db: Path, token: str | None, as_json: bool, **kw) -> None:
    from sitetwin.oversight import findings as fm

    with _caller(db, token) as (store, scope):
        event_id = getattr(fm, action)(store, finding, scope=scope, **kw)
        f = fm.get_finding(store, scope, finding)
    emit({"event_id": event_id, **_finding_row(f)}, as_json, lambda r: print(f"{r['ref']}: {r['status']}"))


@finding_app.command("comment")
def finding_comment(
    finding: Annotated[str, typer.Argument(help="Finding id or reference.")],
    text: Annotated[str, typer.Argument(help="The comment.")],
    db: DbOption = DEFAULT_DB_PATH, token: TokenOption = None, as_json: JsonOption = False,
) -> None:
    """Comment on a finding."""
    from sitetwin.oversight import findings as fm

    with _caller(db, token) as (store, scope):
        event_id = fm.comment(store, finding, text, scope=scope)
    emit({"event_id": event_id}, as_json, lambda r: print(_("comment {id} added", id=r["event_id"])))


@finding_app.command("submit")
def finding_submit(
    finding: Annotated[str, typer.Argument(help="Finding id or reference.")],
    note: Annotated[str, typer.Option(help="What was done.")],
    photo: Annotated[Optional[list[Path]], typer.Option(help="Photo of the fix (repeat).")] = None,
    evidence: Annotated[Optional[str], typer.Option(help="Evidence as JSON.")] = None,
    db: DbOption = DEFAULT_DB_PATH, token: TokenOption = None, as_json: JsonOption = False,
) -> None:
    """Submit a rectification with evidence (contractors)."""
    ev = _json_arg(evidence, "--evidence") or {}
    if photo:
        missing = [str(p) for p in photo if not p.is_file()]
        if missing:
            raise typer.BadParameter(_("no such photo: {files}", files=", ".join(missing)))
        ev["photos"] = [str(p.resolve()) for p in photo]
    _lifecycle("submit_rectification", finding, db, token, as_json, note=note, evidence=ev)


@finding_app.command("verify")
def finding_verify(
    finding: Annotated[str, typer.Argument(help="Finding id or reference.")],
    note: Annotated[str, typer.Option(help="What was checked.")] = "",
    db: DbOption = DEFAULT_DB_PATH, token: TokenOption = None, as_json: JsonOption = False,
) -> None:
    """Verify a rectification and close the finding (regulators)."""
    _lifecycle("verify_close", finding, db, token, as_json, note=note)


@finding_app.command("reopen")
def finding_reopen(
    finding: Annotated[str, typer.Argument(help="Finding id or reference.")],
    note: Annotated[str, typer.Option(help="Why it is reopened.")],
    due: Annotated[Optional[str], typer.Option(help="New due date (default by severity).")] = None,
    db: DbOption = DEFAULT_DB_PATH, token: TokenOption = None, as_json: JsonOption = False,
) -> None:
    """Reject a rectification or reopen a closed finding (regulators)."""
    _lifecycle("reopen", finding, db, token, as_json, note=note, due=due)


@finding_app.command("escalate")
def finding_escalate(
    as_of: AsOfOption = None, db: DbOption = DEFAULT_DB_PATH, token: TokenOption = None, as_json: JsonOption = False,
) -> None:
    """Escalate overdue findings (run daily)."""
    from sitetwin.oversight.findings import escalate_overdue

    with _caller(db, token) as (store, scope):
        done = escalate_overdue(store, scope=scope, as_of=as_of)
    emit(done, as_json, lambda rs: table(rs, ["site_code", "finding_id", "overdue_days", "to_level", "escalated_to"],
                                         title=_("{n} escalated", n=len(rs))))


# --------------------------------------------------------------------------------------
# BCF

@bcf_app.command("export")
def bcf_export(
    out: Annotated[Path, typer.Argument(help="The .bcfzip (2.1) or .bcf/.bcfzip (3.0) file to write.")],
    site: SiteOption = None,
    finding: Annotated[Optional[list[str]], typer.Option(help="Only this finding (repeat).")] = None,
    status: Annotated[Optional[list[str]], typer.Option(help="Only this status (repeat).")] = None,
    version: Annotated[str, typer.Option(help="BCF version: 2.1 or 3.0.")] = "2.1",
    snapshots: Annotated[bool, typer.Option(help="Render snapshots from the model where none is stored.")] = True,
    db: DbOption = DEFAULT_DB_PATH, token: TokenOption = None, as_json: JsonOption = False,
) -> None:
    """Export findings as BCF topics with viewpoints and snapshots."""
    from sitetwin.oversight.bcf import export_bcf

    with _caller(db, token) as (store, scope):
        report = export_bcf(store, scope, out, site_code=site, finding_ids=finding, status=status, version=version,
                            snapshots=snapshots)
    for w in report.warnings:
        warn(w)
    emit(report, as_json, lambda r: print(_("wrote {path}: BCF {version}, {topics} topics, {comments} comments, "
                                            "{viewpoints} viewpoints, {snapshots} snapshots", path=r.path,
                                            version=r.version, topics=r.topics, comments=r.comments,
                                            viewpoints=r.viewpoints, snapshots=r.snapshots)))


@bcf_app.command("import")
def bcf_import(
    source: Annotated[Path, typer.Argument(help="A .bcfzip or .bcf file (BCF 2.0, 2.1 or 3.0).")],
    site: Annotated[str, typer.Option("--site", help="The site its topics belong to.")],
    db: DbOption = DEFAULT_DB_PATH, token: TokenOption = None, as_json: JsonOption = False,
) -> None:
    """Import BCF topics as findings (one transaction; a bad file changes nothing)."""
    from sitetwin.oversight.bcf import import_bcf

    with _caller(db, token) as (store, scope):
        report = import_bcf(store, scope, source, site_code=site)
    for w in report.warnings:
        warn(w)
    emit(report, as_json, lambda r: print(_(
        "{source} (BCF {version}): {new} new and {updated} updated findings, {comments} comments, {viewpoints} "
        "viewpoints; {found} of {components} components found in the site's model", source=r.source,
        version=r.version, new=len(r.created), updated=len(r.updated), comments=r.comments_added,
        viewpoints=r.viewpoints_added, found=r.components_in_model, components=r.components)))


# --------------------------------------------------------------------------------------
# portfolio, risk, evaluation, catalogue

def portfolio_cmd(
    by: Annotated[str, typer.Option(help="site | district | city | enterprise")] = "district",
    city: Annotated[Optional[str], typer.Option(help="Only this city.")] = None,
    district: Annotated[Optional[str], typer.Option(help="Only this district.")] = None,
    as_of: AsOfOption = None, db: DbOption = DEFAULT_DB_PATH, token: TokenOption = None, as_json: JsonOption = False,
    lake: LakeOption = None,
) -> None:
    """Sites in your scope and their rollups per district or city."""
    from sitetwin.oversight.portfolio import portfolio_sites, rollup

    with _reader(db, token, lake) as (store, scope):
        if by == "site":
            rows = portfolio_sites(store, scope, city=city, district=district, as_of=as_of)
            cols = ["site_code", "district", "open_findings", "overdue_findings", "open_critical", "detections",
                    "hazards", "risk_score", "tier"]
        elif by == "enterprise":
            rows = rollup(store, scope, by=by, city=city, district=district, as_of=as_of)
            cols = ["enterprise_code", "name", "sites", "open_findings", "overdue_findings", "open_critical",
                    "mean_risk", "max_risk", "dangerous_works", "dangerous_works_overdue", "training_coverage"]
        else:
            rows = rollup(store, scope, by=by, city=city, district=district, as_of=as_of)
            cols = (["city", "district"] if by == "district" else ["city"]) + [
                "sites", "open_findings", "overdue_findings", "open_critical", "detections", "hazards", "mean_risk",
                "tier_a", "tier_b", "tier_c"]
    emit(rows, as_json, lambda rs: table(rs, cols, title=_("portfolio by {by}", by=_(by) if by in _BY else by)))


def risk_cmd(
    site: SiteOption = None, as_of: AsOfOption = None,
    record: Annotated[bool, typer.Option("--record", help="Store the scores (the trend); regulators.")] = False,
    trend: Annotated[bool, typer.Option("--trend", help="Show the stored trend of --site.")] = False,
    db: DbOption = DEFAULT_DB_PATH, token: TokenOption = None, as_json: JsonOption = False,
    lake: LakeOption = None,
) -> None:
    """Risk scores with their breakdown (one site, or every site in your scope)."""
    from sitetwin.oversight.risk import (
        COMPONENTS,
        basis_text,
        component_text,
        compute_risk,
        formula_text,
        record_risk,
        risk_trend,
    )

    if record and lake:
        raise typer.BadParameter(_("--record stores scores in a store; the lake is read-only (leave out --lake)"))
    with _reader(db, token, lake) as (store, scope):
        if trend:
            if not site:
                raise typer.BadParameter(_("--trend needs --site"))
            rows = risk_trend(store, scope, site)
            emit(rows, as_json, lambda rs: table([{**r, **r["subscores"]} for r in rs],
                                                 ["as_of", "score", "tier", *COMPONENTS],
                                                 title=_("risk trend {site}", site=site)))
            return
        if record:
            scores = record_risk(store, scope, [site] if site else None, as_of=as_of)
        else:
            codes = [site] if site else scope.site_codes(store)
            scores = [compute_risk(store, scope, s, as_of=as_of) for s in codes]

    def render(rs):
        if len(rs) == 1:
            r = rs[0]
            out_console().print(f"[bold]{r.site_code}[/] " + _(
                "risk {score}, tier {tier} ({source}), inspect every {days} days, premium factor {factor}",
                score=format(r.score, ".1f"), tier=r.tier, days=r.inspect_every_days, factor=r.premium_factor,
                source=_(r.tier_source) if r.tier_source in _BY else r.tier_source))
            table([{"component": component_text(c.name), "weight": c.weight,
                    "raw": _("no data") if c.no_data else c.raw, "subscore": c.subscore, "points": c.points,
                    "basis": basis_text(c)} for c in r.components],
                  ["component", "weight", "raw", "subscore", "points", "basis"])
            out_console().print(formula_text(r))
        else:
            table([{"site": r.site_code, "score": r.score, "tier": r.tier, "inspect_every_days": r.inspect_every_days,
                    **{c.name: c.subscore for c in r.components}} for r in rs],
                  ["site", "score", "tier", "inspect_every_days", *COMPONENTS])
    emit(scores, as_json, render)


def tier_cmd(
    site: Annotated[str, typer.Argument(help="Site code.")],
    tier: Annotated[str, typer.Argument(help="A, B or C.")],
    reason: Annotated[str, typer.Option(help="Why (kept with the decision).")],
    until: Annotated[Optional[str], typer.Option(help="Valid until YYYY-MM-DD (default: until changed).")] = None,
    db: DbOption = DEFAULT_DB_PATH, token: TokenOption = None, as_json: JsonOption = False,
) -> None:
    """Set a site's supervision tier, overriding the computed one (regulators)."""
    from sitetwin.oversight.risk import set_tier

    with _caller(db, token) as (store, scope):
        decision = set_tier(store, scope, site, tier, reason, valid_until=until)
    emit({"decision_id": decision, "site_code": site, "tier": tier}, as_json,
         lambda r: print(_("{site} is tier {tier} ({decision})", site=site, tier=tier, decision=decision)))


def inspections_cmd(
    as_of: AsOfOption = None, db: DbOption = DEFAULT_DB_PATH, token: TokenOption = None, as_json: JsonOption = False,
) -> None:
    """When each site in your scope is due for inspection, by its tier."""
    from sitetwin.oversight.risk import inspection_plan

    with _caller(db, token) as (store, scope):
        rows = inspection_plan(store, scope, as_of=as_of)
    emit(rows, as_json, lambda rs: table(rs, ["site_code", "district", "tier", "tier_source", "inspect_every_days",
                                              "last_inspection", "next_due", "overdue_days"],
                                         title=_("inspection plan")))


def evaluate_cmd(
    site: Annotated[str, typer.Option("--site", help="Site code.")],
    scheme: Annotated[str, typer.Option(help="Packaged scheme name or a YAML/JSON file.")] = "provincial",
    html_out: Annotated[Optional[Path], typer.Option("--html", help="Write the HTML report here.")] = None,
    pdf_out: Annotated[Optional[Path], typer.Option("--pdf", help="Write the PDF report here.")] = None,
    record: Annotated[bool, typer.Option(help="Store the evaluation (regulators).")] = True,
    as_of: AsOfOption = None, db: DbOption = DEFAULT_DB_PATH, token: TokenOption = None, as_json: JsonOption = False,
) -> None:
    """Evaluate a site under a scheme; write HTML and PDF reports with the premium factor."""
    from sitetwin.data.queries import site_time_zone
    from sitetwin.oversight.evaluation import (
        evaluate,
        grade_name,
        item_title,
        report_html,
        report_pdf,
        require_pdf_font,
        scheme_title,
    )
    from sitetwin.oversight.findings import list_findings

    if pdf_out:
        require_pdf_font()          # a Chinese PDF without a CJK font: refused before anything is stored
    with _caller(db, token) as (store, scope):
        ev = evaluate(store, scope, site, scheme=scheme, as_of=as_of, record=record)
        row = store.one("SELECT name, address FROM sites WHERE site_code = ?", [site]) or {}
        name, address = row.get("name"), row.get("address")
        zone = site_time_zone(store, site)
        findings = (list_findings(store, scope, site_code=site, status=["open", "rectification_submitted", "reopened"])
                    if html_out or pdf_out else None)
        if html_out or pdf_out:
            from sitetwin.oversight import audit

            audit.record(store, scope, "export", "evaluation_report", ev.evaluation_id, site_code=site,
                         detail={"html": str(html_out) if html_out else None, "pdf": str(pdf_out) if pdf_out else None})
    if html_out:
        html_out.write_text(report_html(ev, site_name=name, address=address, findings=findings,
                                                 time_zone=zone), encoding="utf-8")
    if pdf_out:
        report_pdf(ev, pdf_out, site_name=name, address=address, findings=findings, time_zone=zone)
    payload = {k: v for k, v in ev.__dict__.items() if k != "risk"}

    def render(_payload: Any) -> None:
        table([{"item": i.id, "title": item_title(i), "value": i.value, "points": f"{i.points:g}/{i.max_points:g}"}
               for i in ev.items], ["item", "title", "value", "points"], title=f"{site}: {scheme_title(ev)}")
        print(_("grade {grade}: total {total} (basic {basic}, promotion {promotion}); {formula}",
                grade=grade_name(ev.grade), total=format(ev.total_points, "g"), basic=format(ev.basic_points, "g"),
                promotion=format(ev.promotion_points, "g"), formula=ev.premium_formula))

    emit(payload, as_json, render)


def catalogue_cmd(
    site: SiteOption = None,
    district: Annotated[Optional[str], typer.Option(help="Only this district.")] = None,
    quality: Annotated[bool, typer.Option("--quality", help="Show the data-quality measure instead.")] = False,
    by: Annotated[Optional[str], typer.Option(help="With --quality: district or city.")] = None,
    as_of: AsOfOption = None, db: DbOption = DEFAULT_DB_PATH, token: TokenOption = None, as_json: JsonOption = False,
    lake: LakeOption = None,
) -> None:
    """The data catalogue (every source with its unified id, owner, last update, completeness), or data quality."""
    from sitetwin.oversight.catalogue import catalogue, data_quality

    with _reader(db, token, lake) as (store, scope):
        if quality:
            rows = data_quality(store, scope, site_code=site, by=by, as_of=as_of)
            cols = list(rows[0]) if rows else ["site_code", "quality"]
        else:
            rows = catalogue(store, scope, site_code=site, district=district, as_of=as_of)
            cols = ["uid", "owner", "last_update", "completeness", "name"]
    emit(rows, as_json, lambda rs: table(rs, [c for c in cols if c != "missing"] + (["missing"] if "missing" in cols
                                                                                      else [])))


def site_profile_cmd(
    site: Annotated[str, typer.Argument(help="Site code.")],
    project: Annotated[Optional[str], typer.Option()] = None,
    contractor: Annotated[Optional[str], typer.Option()] = None,
    data_owner: Annotated[Optional[str], typer.Option("--data-owner")] = None,
    latitude: Annotated[Optional[float], typer.Option()] = None,
    longitude: Annotated[Optional[float], typer.Option()] = None,
    workers: Annotated[Optional[int], typer.Option(help="Workers planned.")] = None,
    db: DbOption = DEFAULT_DB_PATH, token: TokenOption = None, as_json: JsonOption = False,
) -> None:
    """Record a site's project, contractor, data owner and position (regulators)."""
    from sitetwin.oversight.portfolio import set_site_profile

    with _caller(db, token) as (store, scope):
        row = set_site_profile(store, scope, site, project=project, contractor=contractor, data_owner=data_owner,
                               latitude=latitude, longitude=longitude, workers_planned=workers)
    emit(row, as_json, lambda r: print(f"{site}: {r}"))


@package_app.command("export")
def package_export(
    out: Annotated[Path, typer.Option("--out", help="Folder for the Parquet files and manifest.json.")],
    site: Annotated[Optional[list[str]], typer.Option("--site", help="Site (repeat); default all in scope.")] = None,
    district: Annotated[Optional[str], typer.Option(help="All sites of this district.")] = None,
    level: Annotated[str, typer.Option(help="This platform's level: project | district | city.")] = "project",
    db: DbOption = DEFAULT_DB_PATH, token: TokenOption = None, as_json: JsonOption = False,
) -> None:
    """Write an exchange package for the platform above this one."""
    from sitetwin.oversight.catalogue import export_package

    with _caller(db, token) as (store, scope):
        manifest = export_package(store, scope, out, sites=site, district=district, level=level)
    emit(manifest, as_json, lambda m: print(_("package {id} ({level}) with sites {sites} written to {out}",
                                              id=m["package"]["package_id"], level=level,
                                              sites=", ".join(m["package"]["sites"]), out=out)))


@package_app.command("import")
def package_import(
    source: Annotated[Path, typer.Argument(help="Folder written by `sitetwin package export`.")],
    level: Annotated[str, typer.Option(help="This platform's level: district | city.")] = "district",
    db: DbOption = DEFAULT_DB_PATH, token: TokenOption = None, as_json: JsonOption = False,
) -> None:
    """Take in a package from the platform below (one transaction)."""
    from sitetwin.oversight.catalogue import import_package

    with _caller(db, token) as (store, scope):
        report = import_package(store, scope, source, level=level)
    emit(report, as_json, lambda r: table([{"table": t, **v} for t, v in r["tables"].items() if v["read"]],
                                          ["table", "read", "inserted"],
                                          title=_("package {id} from a {level} platform", id=r["package_id"],
                                                  level=r["from_level"])))


# --------------------------------------------------------------------------------------
# accounts, sessions, tokens, audit

def _password(stdin: bool, prompt: str = "Password") -> str:
    if stdin:
        return sys.stdin.readline().rstrip("\n")
    return typer.prompt(prompt, hide_input=True, confirmation_prompt=prompt != "Password for login")


@user_app.command("add")
def user_add(
    username: Annotated[str, typer.Argument()],
    role: Annotated[str, typer.Option(help="admin | city_regulator | district_regulator | contractor | enterprise "
                                           "| viewer")],
    city: Annotated[Optional[str], typer.Option()] = None,
    district: Annotated[Optional[str], typer.Option()] = None,
    site: Annotated[Optional[list[str]], typer.Option("--site", help="Own site (repeat).")] = None,
    name: Annotated[Optional[str], typer.Option(help="Display name.")] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
    no_password: Annotated[bool, typer.Option("--no-password", help="Machine account: tokens only.")] = False,
    db: DbOption = DEFAULT_DB_PATH, token: TokenOption = None, as_json: JsonOption = False,
    enterprise: Annotated[Optional[str], typer.Option(help="Role enterprise: its enterprise code (it sees the "
                                                           "sites that enterprise builds).")] = None,
) -> None:
    """Create an account (admin; the local owner while the store has none)."""
    from sitetwin.oversight.accounts import add_account

    password = None if no_password else _password(password_stdin, "Password")
    with _caller(db, token) as (store, scope):
        acc = add_account(store, scope, username, role, password=password, display_name=name, city=city,
                          district=district, sites=site or [], enterprise=enterprise)
    emit(acc, as_json, lambda a: print(_("account {username} ({role}) created", username=a.username, role=a.role)))


@user_app.command("list")
def user_list(db: DbOption = DEFAULT_DB_PATH, token: TokenOption = None, as_json: JsonOption = False) -> None:
    """List accounts (admin)."""
    from sitetwin.oversight.accounts import list_accounts

    with _caller(db, token) as (store, scope):
        rows = list_accounts(store, scope)
    emit(rows, as_json, lambda rs: table([r.__dict__ for r in rs], ["username", "role", "city", "district", "sites",
                                                                     "disabled"]))


@user_app.command("disable")
def user_disable(username: Annotated[str, typer.Argument()], db: DbOption = DEFAULT_DB_PATH,
                 token: TokenOption = None, as_json: JsonOption = False) -> None:
    """Disable an account and end its sessions and tokens (admin)."""
    from sitetwin.oversight.accounts import disable_account

    with _caller(db, token) as (store, scope):
        disable_account(store, scope, username)
    emit({"username": username, "disabled": True}, as_json,
         lambda r: print(_("{username} disabled", username=username)))


@user_app.command("grant")
def user_grant(username: Annotated[str, typer.Argument()],
               site: Annotated[list[str], typer.Option("--site", help="Site (repeat).")],
               db: DbOption = DEFAULT_DB_PATH, token: TokenOption = None, as_json: JsonOption = False) -> None:
    """Give an account (contractor, viewer) more own sites (admin)."""
    from sitetwin.oversight.accounts import grant_sites

    with _caller(db, token) as (store, scope):
        acc = grant_sites(store, scope, username, site)
    emit(acc, as_json, lambda a: print(f"{a.username}: {', '.join(a.sites)}"))


@user_app.command("passwd")
def user_passwd(username: Annotated[str, typer.Argument()],
                password_stdin: Annotated[bool, typer.Option("--password-stdin")] = False,
                db: DbOption = DEFAULT_DB_PATH, token: TokenOption = None, as_json: JsonOption = False) -> None:
    """Set a password (your own, or anyone's as admin); ends that account's sessions."""
    from sitetwin.oversight.accounts import set_password

    password = _password(password_stdin, "New password")
    with _caller(db, token) as (store, scope):
        set_password(store, scope, username, password)
    emit({"username": username}, as_json, lambda r: print(_("password changed")))


@accounts_app.command("language")
def accounts_language(username: Annotated[str, typer.Argument()],
                      language: Annotated[str, typer.Argument(help="zh-CN | en")],
                      db: DbOption = DEFAULT_DB_PATH, token: TokenOption = None, as_json: JsonOption = False) -> None:
    """Set the language the workbench shows an account (your own, or anyone's as admin); a language picked
    in the workbench's switcher still wins for that browser."""
    from sitetwin.oversight.preferences import account_language, set_account_language

    with _caller(db, token) as (store, scope):
        set_account_language(store, scope, username, language)
        chosen = account_language(store, username)
    emit({"username": username, "language": chosen}, as_json, lambda r: print(f"{username}: {chosen}"))


def login_cmd(
    username: Annotated[str, typer.Argument()],
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
    db: DbOption = DEFAULT_DB_PATH, as_json: JsonOption = False,
) -> None:
    """Log in; prints a session token to pass as --token or SITETWIN_TOKEN."""
    from sitetwin.data.store import open_store
    from sitetwin.oversight.accounts import login

    password = _password(password_stdin, "Password for login")
    with open_store(db, create=False) as store:
        session = login(store, username, password, source="cli")
    emit({"token": session.token, "username": session.username, "expires_at": session.expires_at}, as_json,
         lambda r: print(r["token"]))


def logout_cmd(db: DbOption = DEFAULT_DB_PATH, token: TokenOption = None, as_json: JsonOption = False) -> None:
    """End the session of --token / SITETWIN_TOKEN."""
    from sitetwin.data.store import open_store
    from sitetwin.oversight.accounts import logout

    if not token:
        raise typer.BadParameter(_("give the session to end with --token or SITETWIN_TOKEN"))
    with open_store(db, create=False) as store:
        logout(store, token)
    emit({"logged_out": True}, as_json, lambda r: print(_("logged out")))


@token_app.command("add")
def token_add(
    user: Annotated[str, typer.Option("--user", help="The (machine) account the token acts as.")],
    name: Annotated[str, typer.Option(help="What uses it, e.g. 'gate-reader-1'.")],
    days: Annotated[int, typer.Option(help="Valid this many days (0: no expiry).")] = 365,
    db: DbOption = DEFAULT_DB_PATH, token: TokenOption = None, as_json: JsonOption = False,
) -> None:
    """Create an API token (admin). The token is printed once; only its hash is kept."""
    from sitetwin.oversight.accounts import add_token

    with _caller(db, token) as (store, scope):
        secret, record = add_token(store, scope, user, name, days=days or None)
    emit({"token": secret, **record.__dict__}, as_json, lambda r: print(r["token"]))


@token_app.command("list")
def token_list(user: Annotated[Optional[str], typer.Option("--user")] = None, db: DbOption = DEFAULT_DB_PATH,
               token: TokenOption = None, as_json: JsonOption = False) -> None:
    """List API tokens (admin); secrets are never shown again."""
    from sitetwin.oversight.accounts import list_tokens

    with _caller(db, token) as (store, scope):
        rows = list_tokens(store, scope, user)
    emit(rows, as_json, lambda rs: table([r.__dict__ for r in rs], ["token_id", "username", "name", "created_at",
                                                                     "expires_at", "revoked", "last_used_at"]))


@token_app.command("revoke")
def token_revoke(token_id: Annotated[str, typer.Argument()], db: DbOption = DEFAULT_DB_PATH,
                 token: TokenOption = None, as_json: JsonOption = False) -> None:
    """Revoke an API token (admin)."""
    from sitetwin.oversight.accounts import revoke_token

    with _caller(db, token) as (store, scope):
        revoke_token(store, scope, token_id)
    emit({"token_id": token_id, "revoked": True}, as_json, lambda r: print(_("{token} revoked", token=token_id)))


def audit_cmd(
    actor: Annotated[Optional[str], typer.Option()] = None,
    action: Annotated[Optional[str], typer.Option(help="view | export | import | login | denied | write")] = None,
    site: SiteOption = None,
    since: Annotated[Optional[str], typer.Option(help="YYYY-MM-DD")] = None,
    limit: Annotated[int, typer.Option()] = 100,
    db: DbOption = DEFAULT_DB_PATH, token: TokenOption = None, as_json: JsonOption = False,
) -> None:
    """Who viewed, exported, imported or was refused what (admin)."""
    from sitetwin.oversight.audit import audit_log

    when = dt.datetime.fromisoformat(since) if since else None
    with _caller(db, token) as (store, scope):
        rows = audit_log(store, scope, actor=actor, action=action, site_code=site, since=when, limit=limit)
    emit(rows, as_json, lambda rs: table(rs, ["logged_at", "actor", "role", "action", "object_kind", "object_id",
                                              "site_code"]))
