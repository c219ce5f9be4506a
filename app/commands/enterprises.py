"""``sitetwin enterprise``: the enterprise tier (企业): construction companies and the sites they build.

Records and links are ``data.enterprises``'; this group adds who may write them: an admin
account, or the local owner while the store has no accounts (``--token`` or ``SITETWIN_TOKEN``
otherwise). Anyone may list the enterprises that build or subcontract on the sites in their
scope. Every write is one transaction and lands in the audit log.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from sitetwin.data.clikit import DEFAULT_DB_PATH, DbOption, JsonOption, emit, out_console, table
from sitetwin.data.errors import Phrase
from sitetwin.data.i18n import N_, Translator

_ = Translator("app")

enterprise_app = typer.Typer(help="Enterprises (construction companies) and their sites: add, import, list, link.",
                             no_args_is_help=True)

TokenOption = Annotated[Optional[str], typer.Option(
    "--token", envvar="SITETWIN_TOKEN", show_default=False,
    help="Session token (sitetwin login) or API token; or set SITETWIN_TOKEN. "
         "Not needed while the store has no accounts.")]

# the stored kinds (data.enterprises.KINDS) as a reader reads them; --json keeps the stored words
KIND_LABELS = {"general_contractor": N_("general contractor"), "specialty_contractor": N_("specialty contractor"),
               "labour_subcontractor": N_("labour subcontractor"), "developer": N_("developer"),
               "supervisor": N_("supervision company")}
COLUMN_LABELS = {"enterprise_code": N_("enterprise code"), "name": N_("name"), "credit_code": N_("credit code"),
                 "kind": N_("kind"), "sites": N_("sites")}
WRITERS = ("admin", "system")


def register(app: typer.Typer) -> None:
    app.add_typer(enterprise_app, name="enterprise")


def _writer(store, token: str | None, what: str):
    """The caller, if it may write enterprise records (admin or system); a refusal is logged, then raised."""
    from sitetwin.oversight.accounts import caller_scope
    from sitetwin.oversight.audit import record
    from sitetwin.oversight.errors import AccessDenied

    scope = caller_scope(store, token)
    if scope.role not in WRITERS:
        record(store, scope, "denied", "enterprise", None, detail={"action": what})
        raise AccessDenied(N_("{actor} ({role}) may not {action}; allowed roles: admin"), actor=scope.actor,
                           role=scope.role, action=Phrase(what))
    return scope


def _written(store, scope, codes: list[str], detail: dict) -> None:
    from sitetwin.oversight.audit import record

    for code in codes:
        record(store, scope, "write", "enterprise", code, detail=detail)


def _visible(store, scope) -> list[str] | None:
    """The enterprise codes the caller may list: all (None) for an all-sites scope, else those that
    build or subcontract on a site in scope, and an enterprise account's own."""
    from sitetwin.data.queries import site_enterprises

    if scope.all_sites:
        return None
    codes = {scope.enterprise} if scope.enterprise else set()
    for site in scope.site_codes(store):
        who = site_enterprises(store, site)
        if who["contractor"]:
            codes.add(who["contractor"]["enterprise_code"])
        codes |= {s["enterprise_code"] for s in who["subcontractors"]}
    return sorted(codes)


def _rows(store, codes: list[str] | None) -> list[dict]:
    from sitetwin.data.queries import enterprises

    if codes is not None and not codes:
        return []
    return enterprises(store, codes).to_dict("records")


def _render(rows: list[dict], title: str) -> None:
    columns = list(COLUMN_LABELS)
    shown = [{_(COLUMN_LABELS[c]): _(KIND_LABELS[r[c]]) if c == "kind" and r[c] in KIND_LABELS else r[c]
              for c in columns} for r in rows]
    table(shown, [_(COLUMN_LABELS[c]) for c in columns], title=title)


@enterprise_app.command("add")
def enterprise_add(
    code: Annotated[str, typer.Argument(help="The enterprise's code (ASCII, the platforms' unified id).",
                                        show_default=False)],
    name: Annotated[str, typer.Option(help="The registered name, e.g. 中建三局集团有限公司.", show_default=False)],
    credit_code: Annotated[str, typer.Option("--credit-code", help="Unified social credit code (18 characters, "
                                                                   "GB 32100-2015).", show_default=False)],
    kind: Annotated[str, typer.Option(help="general_contractor | specialty_contractor | labour_subcontractor | "
                                           "developer | supervisor")] = "general_contractor",
    site: Annotated[Optional[list[str]], typer.Option("--site", help="A site it builds (its construction "
                                                                      "enterprise); repeat for several.")] = None,
    db: DbOption = DEFAULT_DB_PATH, token: TokenOption = None, as_json: JsonOption = False,
) -> None:
    """Add an enterprise, or update the name, credit code and kind of an existing one."""
    from sitetwin.data.enterprises import set_site_enterprise, upsert_enterprise
    from sitetwin.data.queries import enterprises
    from sitetwin.data.store import atomic, open_store

    with open_store(db, create=False) as store:
        scope = _writer(store, token, N_("add or change an enterprise"))
        with atomic(store):
            upsert_enterprise(store, code, name=name, credit_code=credit_code, kind=kind)
            for s in site or []:
                set_site_enterprise(store, s, code)
            _written(store, scope, [code], {"action": "upsert", "sites": list(site or [])})
        row = enterprises(store, [code]).to_dict("records")[0]

    def render(r: dict) -> None:
        out_console().print(_("Enterprise {code} ({name}) stored; it builds {n} sites", code=r["enterprise_code"],
                              name=r["name"], n=r["sites"]))
    emit(row, as_json, render)


@enterprise_app.command("import")
def enterprise_import(
    files: Annotated[list[Path], typer.Argument(help="CSV or JSON files of enterprises (enterprise_code, name, "
                                                     "credit_code, kind, sites).", show_default=False)],
    db: DbOption = DEFAULT_DB_PATH, token: TokenOption = None, as_json: JsonOption = False,
) -> None:
    """Import enterprises, and the sites each builds; each file is one transaction."""
    from sitetwin.data.enterprises import import_enterprises
    from sitetwin.data.store import open_store
    from sitetwin.oversight.audit import record

    reports = []
    with open_store(db, create=False) as store:
        scope = _writer(store, token, N_("import enterprises"))
        for path in files:
            report = import_enterprises(store, path)          # one transaction per file
            record(store, scope, "import", "enterprise", None, detail={"file": str(path), **report})
            reports.append({"file": str(path), **report})

    def render(rs: list[dict]) -> None:
        for r in rs:
            out_console().print(_("{file}: {enterprises} enterprises stored, {sites} sites linked", file=r["file"],
                                  enterprises=r["enterprises"], sites=r["sites"]))
    emit(reports, as_json, render)


@enterprise_app.command("list")
def enterprise_list(
    site: Annotated[Optional[str], typer.Option("--site", help="Only the enterprises of this site.")] = None,
    db: DbOption = DEFAULT_DB_PATH, token: TokenOption = None, as_json: JsonOption = False,
) -> None:
    """The enterprises behind the sites in your scope, with how many sites each builds."""
    from sitetwin.data.queries import site_enterprises
    from sitetwin.data.store import open_store
    from sitetwin.oversight.accounts import caller_scope
    from sitetwin.oversight.audit import guard

    with open_store(db, create=False) as store:
        scope = caller_scope(store, token)
        codes: list[str] | None
        if site is not None:
            guard(store, scope, "read", site)
            who = site_enterprises(store, site)
            codes = sorted(({who["contractor"]["enterprise_code"]} if who["contractor"] else set())
                           | {s["enterprise_code"] for s in who["subcontractors"]})
        else:
            guard(store, scope, "read", what="list enterprises")
            codes = _visible(store, scope)
        rows = _rows(store, codes)

    title = _("Enterprises of {site}", site=site) if site else _("Enterprises")
    emit(rows, as_json, lambda rs: _render(rs, title))


@enterprise_app.command("link")
def enterprise_link(
    code: Annotated[str, typer.Argument(help="The enterprise's code.", show_default=False)],
    sites: Annotated[list[str], typer.Argument(help="The sites it builds.", show_default=False)],
    db: DbOption = DEFAULT_DB_PATH, token: TokenOption = None, as_json: JsonOption = False,
) -> None:
    """Make an enterprise the construction enterprise (施工企业) of sites, in one transaction."""
    from sitetwin.data.enterprises import set_site_enterprise
    from sitetwin.data.store import atomic, open_store

    with open_store(db, create=False) as store:
        scope = _writer(store, token, N_("link sites to an enterprise"))
        with atomic(store):
            for s in sites:
                set_site_enterprise(store, s, code)
            _written(store, scope, [code], {"action": "link", "sites": list(sites)})
    result = {"enterprise_code": code, "sites": list(sites)}

    def render(r: dict) -> None:
        out_console().print(_("{code} now builds {sites}", code=code, sites=", ".join(r["sites"])))
    emit(result, as_json, render)
