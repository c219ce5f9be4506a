"""``sitetwin lake``: publish a store's site tables to the city lake, and see what the lake holds.

Who reads a lake (``--lake`` on ``portfolio``, ``risk`` and ``catalogue``): the lake holds no
accounts, so the caller is resolved as for a store, against the store given with ``--db``:

- with ``--token``, the token's account in that store (``--db`` must name it), its scope
  applied to the lake's sites: only the partitions of the sites it admits are opened
  (``Scope.admits_site`` on their city/district/site), and every query filters by scope as
  over a store; the reads are audited in that store (spooled beside it and moved into its
  audit log the next time it is written);
- without a token, the local owner of that store, only while it has no accounts;
- when there is no store (no ``--db``, and no ``sitetwin.duckdb`` here), the local owner of
  the lake: whoever can read its files reads all of it (they could open the Parquet files
  anyway), unaudited. A token without a store is refused.

Publishing reads the store as its caller: ``export`` permission on every site published
(the local owner of an account-less store has it), each publish audited in the store.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer

from sitetwin.data.clikit import DEFAULT_DB_PATH, DbOption, JsonOption, emit, out_console, table
from sitetwin.data.i18n import N_, Translator

_ = Translator("app")

lake_app = typer.Typer(help="The city lake: site tables as Parquet, partitioned city=/district=/site=. "
                            "Read it with --lake on portfolio, risk and catalogue: you are the --token's account "
                            "in the --db store, else the local owner of an account-less store, else (no store) "
                            "the local owner of the lake's files.",
                       no_args_is_help=True)

LakeArg = Annotated[str, typer.Option(
    "--lake", show_default=False,
    help="The lake: a folder, file:///path or s3://bucket/prefix (pyarrow filesystems).")]
TokenOption = Annotated[Optional[str], typer.Option(
    "--token", envvar="SITETWIN_TOKEN", show_default=False,
    help="Session or API token of the store's accounts; or set SITETWIN_TOKEN. "
         "Not needed while the store has no accounts.")]


def register(app: typer.Typer) -> None:
    app.add_typer(lake_app, name="lake")


@lake_app.command("publish")
def publish_cmd(
    lake: LakeArg,
    site: Annotated[Optional[list[str]], typer.Option("--site", help="Site (repeat); default all in scope.")] = None,
    db: DbOption = DEFAULT_DB_PATH, token: TokenOption = None, as_json: JsonOption = False,
) -> None:
    """Write the store's site tables to the lake; only partitions whose rows changed are rewritten."""
    from sitetwin.data.lake import publish
    from sitetwin.data.store import open_store
    from sitetwin.oversight import audit
    from sitetwin.oversight.accounts import caller_scope
    from sitetwin.oversight.errors import OversightError

    with open_store(db, create=False) as store:
        scope = caller_scope(store, token)
        audit.guard(store, scope, "export", what="publish to the lake")
        chosen = list(dict.fromkeys(site)) if site else scope.site_codes(store)
        for s in chosen:
            audit.guard(store, scope, "export", s, what="publish to the lake")
        if not chosen:
            raise OversightError(N_("{db}: no site to publish in your scope"), db=db)
        report = publish(store, lake, sites=chosen)
        for s in chosen:
            audit.record(store, scope, "export", "lake", report["lake"], site_code=s,
                         detail={"written": sum(1 for w in report["written"] if w["site_code"] == s),
                                 "removed": sum(1 for w in report["removed"] if w["site_code"] == s)})

    def render(r: dict) -> None:
        rows = sum(w["rows"] for w in r["written"])
        out_console().print(_("{lake}: {sites} sites, {written} partitions written ({rows} rows), {removed} removed, "
                              "{unchanged} unchanged", lake=r["lake"], sites=len(r["sites"]),
                              written=len(r["written"]), rows=rows, removed=len(r["removed"]),
                              unchanged=r["unchanged"]))
        for t, n in sorted(r["orphans"].items()):
            out_console().print("  " + _("not published: {n} rows of {table} name a site the store's sites table "
                                         "lacks", n=n, table=t))
    emit(report, as_json, render)


@lake_app.command("compact")
def compact_cmd(lake: LakeArg, as_json: JsonOption = False) -> None:
    """Write each table's per-site files as one Parquet file per district, so a city rollup opens a few files
    instead of one per site; sites published after it are read from their own files until the next compaction."""
    from sitetwin.data.lake import compact

    report = compact(lake)

    def render(r: dict) -> None:
        rows = sum(w["rows"] for w in r["written"])
        out_console().print(_("{lake}: {sites} sites in {files} district files over {tables} tables; {written} written "
                              "({rows} rows), {kept} unchanged, {removed} old files removed", lake=r["lake"],
                              sites=r["sites"], files=r["districts"], tables=r["tables"], written=len(r["written"]),
                              rows=rows, kept=r["kept"], removed=r["removed"]))
    emit(report, as_json, render)


@lake_app.command("status")
def status_cmd(lake: LakeArg, as_json: JsonOption = False) -> None:
    """What the lake holds per site: its city and district, when it was published, rows per table."""
    from sitetwin.data.lake import lake_sites

    rows = lake_sites(lake)
    emit(rows, as_json, lambda rs: table([{**r, "tables": len(r["tables"]), "rows": sum(r["tables"].values())}
                                          for r in rs],
                                         ["site_code", "city", "district", "published_at", "tables", "rows"],
                                         title=_("{n} sites in {lake}", n=len(rs), lake=lake)))


@contextmanager
def lake_caller(lake: str, db: Path, token: str | None) -> Iterator[tuple]:
    """Open the lake read-only and resolve who is calling (see the module docstring); yields (store, scope)."""
    import duckdb

    from sitetwin.data.lake import LakeError, open_lake
    from sitetwin.data.store import cache_dir_for, open_store
    from sitetwin.oversight.accounts import caller_scope, local_owner_scope
    from sitetwin.oversight.errors import AuthError

    cache = None
    if db.exists() or db != DEFAULT_DB_PATH:
        with open_store(db, create=False) as accounts:
            scope = caller_scope(accounts, token)
        cache = cache_dir_for(db)
    elif token:
        raise AuthError(N_("--token names an account of a store: pass that store with --db (the lake has no accounts)"))
    else:
        scope = None
    # a scoped caller's tables hold only its sites' partitions; its queries filter by scope all the same
    admit = None if scope is None or scope.all_sites else scope.admits_site
    with open_lake(lake, cache_dir=cache, admit=admit) as store:
        if scope is None:
            scope = local_owner_scope(store)
        try:
            yield store, scope
        except duckdb.Error as exc:
            text = str(exc).strip().splitlines()
            raise LakeError(N_("{lake}: cannot read ({reason})"), lake=store.label,
                            reason=text[0] if text else type(exc).__name__) from None
