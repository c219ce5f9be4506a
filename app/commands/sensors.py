"""``sitetwin device``, ``sitetwin readings``, ``sitetwin ingest`` and ``sitetwin sensors``: site sensors.

The device registry and its API tokens are an admin's: once the store has accounts, ``device
add``, ``token``, ``calibrate``, ``blacklist`` and ``remove`` need an admin's session or API token
(``--auth-token`` or ``SITETWIN_TOKEN``, as the other commands take ``--token``); while it has
none, the local owner of the file acts as admin (``oversight.accounts.caller_scope``).
Issuing and revoking device tokens is written to the audit log.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated, Optional, overload

import typer

from sitetwin.data.clikit import DEFAULT_DB_PATH, DbOption, JsonOption, emit, err_console, out_console, table, warn
from sitetwin.data.errors import Phrase
from sitetwin.data.i18n import N_, Translator

_ = Translator("app")

device_app = typer.Typer(help="Site sensor devices: register, list, tokens, calibration, blacklist.",
                         no_args_is_help=True)
readings_app = typer.Typer(help="Sensor readings and attendance events: import history, show.", no_args_is_help=True)
ingest_app = typer.Typer(help="The HTTP endpoint devices post batches to.", no_args_is_help=True)
sensors_app = typer.Typer(help="Sensor warnings, headcount, crane zones, limits, the twin's sensor state.",
                          no_args_is_help=True)

SiteOption = Annotated[Optional[str], typer.Option("--site", help="Site code (default: the store's only site).")]
# not --token: `device add --token/--no-token` already says whether to issue a device token
AuthTokenOption = Annotated[Optional[str], typer.Option(
    "--auth-token", envvar="SITETWIN_TOKEN", show_default=False,
    help="An admin's session token (sitetwin login) or API token; or set SITETWIN_TOKEN. "
         "Not needed while the store has no accounts.")]
STATUS_TOKEN_ENV = "SITETWIN_INGEST_STATUS_TOKEN"


def register(app: typer.Typer) -> None:
    app.add_typer(device_app, name="device")
    app.add_typer(readings_app, name="readings")
    app.add_typer(ingest_app, name="ingest")
    app.add_typer(sensors_app, name="sensors")


def _site(store, site: str | None) -> str:
    from sitetwin.bim.mesh import resolve_site

    return resolve_site(store, site)


@overload
def _when(value: str, what: str) -> dt.datetime: ...
@overload
def _when(value: str | None, what: str) -> dt.datetime | None: ...
def _when(value: str | None, what: str) -> dt.datetime | None:
    """An ISO time as naive UTC (times with an offset are converted; naive ones are taken as UTC)."""
    if value is None:
        return None
    try:
        stamp = dt.datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(_("{what}: {value!r} is not an ISO 8601 time", what=what, value=value)) from None
    if stamp.tzinfo is not None:
        stamp = stamp.astimezone(dt.UTC).replace(tzinfo=None)
    return stamp


def _device_admin(store, auth_token: str | None, what: str):
    """The caller's scope once it may manage devices (an admin, or the owner of an account-less store).

    A refusal is written to the audit log before it is raised.
    """
    from sitetwin.oversight.accounts import caller_scope, has_accounts
    from sitetwin.oversight.audit import guard
    from sitetwin.oversight.errors import AuthError

    if not auth_token and has_accounts(store):
        raise AuthError(N_("{store} has accounts: only an admin may {action}; pass --auth-token or set SITETWIN_TOKEN "
                           "(a session from `sitetwin login USER`, or an API token)"), store=store.label,
                        action=Phrase(what))
    scope = caller_scope(store, auth_token)
    guard(store, scope, "manage_accounts", what=what, object_kind="device")
    return scope


def _audit_tokens(store, scope, device_id: str, site_code: str, **detail) -> None:
    from sitetwin.oversight.audit import record

    record(store, scope, "write", "device_token", device_id, site_code=site_code, detail=detail)


def _device_dict(d) -> dict:
    from sitetwin.data.clikit import to_jsonable

    return to_jsonable(d)


# ---------------------------------------------------------------------------- device

@device_app.command("add")
def device_add(
    device_id: Annotated[str, typer.Argument(help="Unified device id, e.g. DEMO-DUST-03.")],
    device_type: Annotated[str, typer.Option("--type", help="dust | noise | weather | crane | hoist | gate | generic")],
    db: DbOption = DEFAULT_DB_PATH,
    site: SiteOption = None,
    name: Annotated[Optional[str], typer.Option(help="A name people recognise.")] = None,
    at: Annotated[Optional[str], typer.Option("--at", help="Position x,y,z in metres, site local frame "
                                                           "(a crane's or hoist's mast foot).")] = None,
    host: Annotated[Optional[str], typer.Option(help="IFC GlobalId of the element it is mounted on.")] = None,
    supplier: Annotated[Optional[str],
                        typer.Option(help="Supplier (blacklisted suppliers' data is not trusted).")] = None,
    model: Annotated[Optional[str], typer.Option("--model", help="The supplier's product model.")] = None,
    serial: Annotated[Optional[str], typer.Option(help="Serial number.")] = None,
    installed: Annotated[Optional[str], typer.Option(help="Install date, YYYY-MM-DD.")] = None,
    interval: Annotated[float, typer.Option(help="Expected reporting interval, s (silence > gap_factor x this "
                                                 "is a warning).")] = 60.0,
    config: Annotated[Optional[str], typer.Option(help="JSON (or @file.json): crane/hoist geometry, limit "
                                                       "overrides.")] = None,
    token: Annotated[bool, typer.Option("--token/--no-token", help="Issue an API token (shown once).")] = True,
    auth_token: AuthTokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Register a device; prints its API token once (an admin's command once the store has accounts)."""
    from sitetwin.data.store import open_store
    from sitetwin.sensors.registry import add_device, issue_token, token_handle

    position = None
    if at:
        try:
            position = tuple(float(v) for v in at.split(","))
        except ValueError:
            raise typer.BadParameter(_("--at {value!r}: give x,y,z in metres", value=at)) from None
    cfg = _json_option(config, "--config") if config else None
    with open_store(db) as store:
        scope = _device_admin(store, auth_token, N_("register devices"))
        site_code = _site(store, site)
        with store.transaction():
            device = add_device(store, device_id, site_code=site_code, device_type=device_type, name=name,
                                position_m=position, host_global_id=host, supplier=supplier, device_model=model,
                                serial_no=serial, installed_on=installed, interval_s=interval, config=cfg)
            secret = issue_token(store, device_id) if token else None
            if secret:
                _audit_tokens(store, scope, device_id, site_code, issued=token_handle(secret))
    payload = {"device": _device_dict(device), "token": secret}
    if device.blacklisted:
        warn(_("{device}: {reason}; its readings will be stored flagged and not trusted", device=device_id,
               reason=device.blacklist_reason))

    def render(p):
        print(_("registered {device} ({type}) on site {site}", device=device_id, type=device_type,
                site=device.site_code))
        if secret:
            print(_("API token (shown once, keep it on the device): {secret}", secret=secret))

    emit(payload, as_json, render)


@device_app.command("list")
def device_list(db: DbOption = DEFAULT_DB_PATH, site: SiteOption = None,
                device_type: Annotated[Optional[str], typer.Option("--type", help="Only this type.")] = None,
                as_json: JsonOption = False) -> None:
    """List devices with their position, host element, supplier and trust."""
    from sitetwin.data.store import open_store
    from sitetwin.sensors.registry import list_devices

    with open_store(db, read_only=True, create=False) as store:
        devices = list_devices(store, site_code=site, device_type=device_type)
    rows = [_device_dict(d) for d in devices]
    emit(rows, as_json, lambda rs: table(
        [{**r, "position_m": ",".join(f"{v:.1f}" for v in r["position_m"]) if r["position_m"] else "",
          "trusted": "no" if r["blacklisted"] else "yes"} for r in rs],
        ["device_id", "site_code", "device_type", "name", "position_m", "global_id", "supplier", "interval_s",
         "trusted"]))


@device_app.command("show")
def device_show(device_id: str, db: DbOption = DEFAULT_DB_PATH, as_json: JsonOption = False) -> None:
    """One device: record, calibrations, tokens (handles only), last data, active warnings."""
    from sitetwin.data.store import open_store
    from sitetwin.sensors.queries import device_status, device_tokens, reading_count
    from sitetwin.sensors.registry import calibrations, get_device
    from sitetwin.sensors.warnings import list_warnings

    with open_store(db, read_only=True, create=False) as store:
        device = get_device(store, device_id)
        payload = {"device": _device_dict(device), "calibrations": calibrations(store, device_id),
                   "tokens": device_tokens(store, device_id), "status": device_status(store, device_id),
                   "readings": reading_count(store, device_id),
                   "active_warnings": list_warnings(store, device_id=device_id, active=True)}
    emit(payload, as_json, lambda p: out_console().print_json(json.dumps(_jsonable(p))))


@device_app.command("token")
def device_token(device_id: str, db: DbOption = DEFAULT_DB_PATH,
                 revoke: Annotated[Optional[str], typer.Option(help="Revoke this token id instead of issuing one "
                                                                    "('all' for every token).")] = None,
                 auth_token: AuthTokenOption = None,
                 as_json: JsonOption = False) -> None:
    """Issue a new API token for a device (shown once), or revoke tokens (an admin's command once the store
    has accounts)."""
    from sitetwin.data.store import open_store
    from sitetwin.sensors.registry import get_device, issue_token, revoke_tokens, token_handle

    with open_store(db) as store:
        scope = _device_admin(store, auth_token, N_("issue or revoke device tokens"))
        site_code = get_device(store, device_id).site_code
        with store.transaction():
            if revoke:
                n = revoke_tokens(store, device_id, token_id=None if revoke == "all" else revoke)
                payload = {"device_id": device_id, "revoked": n}
                _audit_tokens(store, scope, device_id, site_code, revoked=revoke, count=n)
            else:
                secret = issue_token(store, device_id)
                payload = {"device_id": device_id, "token_id": token_handle(secret), "token": secret}
                _audit_tokens(store, scope, device_id, site_code, issued=payload["token_id"])
    emit(payload, as_json, lambda p: print(_("revoked {n} token(s) of {device}", n=p["revoked"], device=device_id)
                                           if "revoked" in p else
                                           _("API token of {device} (shown once): {token}", device=device_id,
                                             token=p["token"])))


@device_app.command("calibrate")
def device_calibrate(device_id: str,
                     on: Annotated[str, typer.Option("--on", help="Calibration date, YYYY-MM-DD.")],
                     until: Annotated[str, typer.Option("--until", help="Valid until, YYYY-MM-DD.")],
                     db: DbOption = DEFAULT_DB_PATH,
                     lab: Annotated[Optional[str], typer.Option(help="Laboratory.")] = None,
                     certificate: Annotated[Optional[str], typer.Option(help="Certificate number.")] = None,
                     auth_token: AuthTokenOption = None,
                     as_json: JsonOption = False) -> None:
    """Record a calibration certificate (readings outside every valid one are flagged 'uncalibrated')."""
    from sitetwin.data.store import open_store
    from sitetwin.sensors.registry import record_calibration

    with open_store(db) as store:
        _device_admin(store, auth_token, N_("record calibrations"))
        cal = record_calibration(store, device_id, calibrated_on=on, valid_until=until, laboratory=lab,
                                 certificate=certificate)
    emit(cal, as_json, lambda c: print(_("{device}: calibrated {on}, valid until {until}", device=device_id,
                                         on=c.calibrated_on, until=c.valid_until)))


@device_app.command("blacklist")
def device_blacklist(device_id: Annotated[Optional[str], typer.Argument(help="One device (or use --supplier).")] = None,
                     supplier: Annotated[Optional[str], typer.Option(help="Every device of this supplier.")] = None,
                     reason: Annotated[Optional[str], typer.Option(help="Why (required unless --undo).")] = None,
                     undo: Annotated[bool, typer.Option("--undo", help="Clear the flag instead.")] = False,
                     db: DbOption = DEFAULT_DB_PATH, auth_token: AuthTokenOption = None,
                     as_json: JsonOption = False) -> None:
    """Flag a device or a supplier's devices as untrusted (their readings are kept, flagged, and ignored)."""
    from sitetwin.data.store import open_store
    from sitetwin.sensors.registry import blacklist_supplier, set_blacklisted, unlist_supplier

    if bool(device_id) == bool(supplier):
        raise typer.BadParameter(_("give either a device id or --supplier"))
    if not undo and not reason:
        raise typer.BadParameter(_("--reason is required"))
    with open_store(db) as store:
        _device_admin(store, auth_token, N_("blacklist devices"))
        if supplier:
            if undo:
                n = unlist_supplier(store, supplier)
            else:
                assert reason is not None       # required unless --undo: checked above
                n = blacklist_supplier(store, supplier, reason=reason)
            payload = {"supplier": supplier, "devices": n, "blacklisted": not undo}
        else:
            assert device_id is not None        # a device id or --supplier: checked above
            d = set_blacklisted(store, device_id, not undo, reason=reason)
            payload = {"device_id": d.device_id, "blacklisted": d.blacklisted, "reason": d.blacklist_reason}
    emit(payload, as_json, lambda p: print(json.dumps(p)))


@device_app.command("remove")
def device_remove(device_id: str, on: Annotated[str, typer.Option("--on", help="Day it left the site, YYYY-MM-DD.")],
                  db: DbOption = DEFAULT_DB_PATH, auth_token: AuthTokenOption = None,
                  as_json: JsonOption = False) -> None:
    """Mark a device as taken off site (its data stay; no gap warnings after that day)."""
    from sitetwin.data.store import open_store
    from sitetwin.sensors.registry import remove_device

    with open_store(db) as store:
        _device_admin(store, auth_token, N_("remove devices"))
        d = remove_device(store, device_id, removed_on=on)
    emit(_device_dict(d), as_json, lambda p: print(_("{device} removed on {day}", device=device_id,
                                                     day=p["removed_on"])))


# ---------------------------------------------------------------------------- readings

@readings_app.command("import")
def readings_import(
    files: Annotated[list[Path], typer.Argument(help="CSV or Parquet files: readings (long or wide) or attendance.",
                                                show_default=False)],
    db: DbOption = DEFAULT_DB_PATH,
    kind: Annotated[str, typer.Option(help="auto | readings | attendance")] = "auto",
    timezone: Annotated[Optional[str], typer.Option(help="Timezone of times written without an offset, e.g. "
                                                         "Asia/Shanghai.")] = None,
    evaluate: Annotated[bool, typer.Option("--evaluate/--no-evaluate", help="Recompute the warnings the data "
                                                                            "touch.")] = True,
    now: Annotated[Optional[str], typer.Option(help="Evaluate as of this UTC time (default: the clock).")] = None,
    pseudonym_key_env: Annotated[str, typer.Option(help="Environment variable holding the key that pseudonymises "
                                                        "person_id columns.")] = "SITETWIN_PSEUDONYM_KEY",
    as_json: JsonOption = False,
) -> None:
    """Import history files; each file is one transaction, and importing it again stores nothing twice."""
    import os

    from sitetwin.data.store import open_store
    from sitetwin.oversight.raising import raise_drafts
    from sitetwin.sensors.importer import import_file

    reports = []
    with open_store(db) as store:
        for path in files:
            reports.append(import_file(store, path, kind=kind, timezone=timezone, evaluate=evaluate,
                                       now=_when(now, "--now"), pseudonym_key=os.environ.get(pseudonym_key_env),
                                       sink=raise_drafts))
    payload = reports[0] if len(reports) == 1 else {"files": reports}
    emit(payload, as_json, lambda _: table(
        [{"file": Path(r.file).name, "kind": r.kind, "rows": r.rows, "stored": r.readings + r.events,
          "copies skipped": r.copies, "already imported": r.already_imported, "untrusted": r.untrusted,
          "warnings": sum(r.warnings.get(k, 0) for k in ("inserted", "updated"))} for r in reports],
        ["file", "kind", "rows", "stored", "copies skipped", "already imported", "untrusted", "warnings"]))


@readings_app.command("list")
def readings_list(device_id: str, db: DbOption = DEFAULT_DB_PATH,
                  channel: Annotated[Optional[list[str]], typer.Option(help="Only this channel (repeat).")] = None,
                  since: Annotated[Optional[str], typer.Option(help="From this UTC time.")] = None,
                  until: Annotated[Optional[str], typer.Option(help="Up to this UTC time.")] = None,
                  limit: Annotated[int, typer.Option(help="At most this many rows (0: all).")] = 200,
                  as_json: JsonOption = False) -> None:
    """A device's readings (UTC), with their trust flags."""
    from sitetwin.data.store import open_store
    from sitetwin.sensors.timeseries import read_series

    with open_store(db, read_only=True, create=False) as store:
        frame = read_series(store, device_id, channel, start=_when(since, "--since"), end=_when(until, "--until"))
    if limit:
        frame = frame.head(limit)
    rows = frame.to_dict("records")
    emit(rows, as_json, lambda rs: table(rs, ["measured_at", "channel", "value", "trusted", "flags"]))


# ---------------------------------------------------------------------------- ingest

@ingest_app.command("serve")
def ingest_serve(
    db: DbOption = DEFAULT_DB_PATH,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8765,
    spool: Annotated[Optional[Path], typer.Option(
        help="Spool file, one per server (default <db>.spool/ingest.sqlite on port 8765, "
             "<db>.spool/ingest-PORT.sqlite on another port).")] = None,
    flush_interval: Annotated[float, typer.Option(help="Seconds between moves from the spool into the store.")] = 0.5,
    lock_timeout: Annotated[float, typer.Option(help="Seconds a flush waits for another writer.")] = 5.0,
    evaluate: Annotated[bool, typer.Option("--evaluate/--no-evaluate", help="Compute warnings as data "
                                                                            "arrive.")] = True,
    log_level: Annotated[str, typer.Option(help="debug | info | warning | error")] = "warning",
) -> None:
    """Serve POST /v1/batches for devices (token auth, JSON batches); the store stays free between flushes.

    Several servers (different ports, each its own spool) may feed one store: they take turns
    writing it, and a batch that reaches two of them is stored once.

    GET /v1/health answers {"status": "ok"} to anyone; its counters and last error only to a request
    with `Authorization: Bearer $SITETWIN_INGEST_STATUS_TOKEN` (set that variable to enable them).
    """
    import os

    from sitetwin.data.store import open_store
    from sitetwin.oversight.raising import raise_drafts
    from sitetwin.sensors.server import ServerConfig, serve

    open_store(db).close()   # create / migrate before serving
    config = ServerConfig(db=db, spool=spool, port=port, flush_interval_s=flush_interval, lock_timeout_s=lock_timeout,
                          evaluate=evaluate, status_token=os.environ.get(STATUS_TOKEN_ENV) or None)
    url = f"http://{host}:{port}/v1/batches"
    err_console().print(_("ingest: serving {url} for {db} (spool {spool})", url=url, db=db, spool=config.spool_path))
    serve(config, host=host, port=port, log_level=log_level, sink=raise_drafts)


# ---------------------------------------------------------------------------- sensors

@sensors_app.command("warnings")
def sensors_warnings(db: DbOption = DEFAULT_DB_PATH, site: SiteOption = None,
                     device: Annotated[Optional[str], typer.Option(help="Only this device.")] = None,
                     kind: Annotated[Optional[str], typer.Option(help="Only this kind (overload, gap, ...).")] = None,
                     active: Annotated[bool, typer.Option("--active", help="Only warnings still running.")] = False,
                     min_severity: Annotated[Optional[str], typer.Option(help="low | medium | high | critical")] = None,
                     limit: Annotated[int, typer.Option(help="At most this many (0: all).")] = 0,
                     as_json: JsonOption = False) -> None:
    """Sensor warnings, newest first: what, where, how long, how bad, and their finding."""
    from sitetwin.data.store import open_store
    from sitetwin.sensors.warnings import list_warnings

    with open_store(db, read_only=True, create=False) as store:
        site_code = _site(store, site)
        found = list_warnings(store, site_code=site_code, device_id=device, kind=kind, active=True if active else None,
                              min_severity=min_severity, limit=limit or None)
    emit(found, as_json, lambda ws: table(
        [{"started (UTC)": w.started_at.strftime("%Y-%m-%d %H:%M:%S"), "device": w.device_id, "kind": w.kind,
          "severity": w.severity, "duration": "active" if w.active else f"{w.duration_s:.0f} s",
          "message": w.message, "finding": w.finding_id or ""} for w in ws],
        ["started (UTC)", "device", "kind", "severity", "duration", "message", "finding"]))


@sensors_app.command("evaluate")
def sensors_evaluate(db: DbOption = DEFAULT_DB_PATH, site: SiteOption = None,
                     since: Annotated[Optional[str], typer.Option(help="Recompute from this UTC time (default: "
                                                                       "all data).")] = None,
                     now: Annotated[Optional[str], typer.Option(help="Evaluate as of this UTC time.")] = None,
                     findings: Annotated[Optional[bool], typer.Option("--findings/--no-findings",
                                                                      help="Raise findings (default: as the site's "
                                                                           "auto_findings says).")] = None,
                     as_json: JsonOption = False) -> None:
    """Recompute a site's warnings (rules, gaps, untrained workers) from its stored data."""
    from sitetwin.data.store import open_store
    from sitetwin.oversight.raising import raise_drafts
    from sitetwin.sensors.warnings import check_silence, evaluate_warnings

    with open_store(db) as store:
        site_code = _site(store, site)
        with store.transaction():
            report = evaluate_warnings(store, site_code=site_code, since=_when(since, "--since"),
                                       now=_when(now, "--now"), findings=findings, sink=raise_drafts)
            silence = check_silence(store, site_code=site_code, now=_when(now, "--now"), findings=findings,
                                    sink=raise_drafts)
    payload = {"site_code": site_code, "inserted": report.inserted + silence.inserted,
               "updated": report.updated + silence.updated, "removed": report.removed,
               "findings": report.findings + silence.findings, "by_kind": report.by_kind, "seconds": report.seconds}
    emit(payload, as_json, lambda p: print(_("{site}: {new} new, {updated} updated, {removed} removed warnings; "
                                             "{findings} findings raised", site=site_code, new=p["inserted"],
                                             updated=p["updated"], removed=p["removed"], findings=p["findings"])))


@sensors_app.command("headcount")
def sensors_headcount(start: Annotated[str, typer.Option(help="From (ISO time; UTC unless it has an offset).")],
                      end: Annotated[str, typer.Option(help="To (ISO time).")],
                      db: DbOption = DEFAULT_DB_PATH, site: SiteOption = None,
                      step: Annotated[float, typer.Option(help="Seconds between counts.")] = 900.0,
                      as_json: JsonOption = False) -> None:
    """Workers on site (and those without valid training) over time, from gate events."""
    from sitetwin.data.store import open_store
    from sitetwin.sensors.attendance import headcount

    with open_store(db, read_only=True, create=False) as store:
        site_code = _site(store, site)
        frame = headcount(store, site_code, start=_when(start, "--start"), end=_when(end, "--end"), step_s=step)
    emit(frame.to_dict("records"), as_json, lambda rs: table(rs, ["at", "on_site", "untrained"],
                                                             title=_("{site} headcount (UTC)", site=site_code)))


@sensors_app.command("zones")
def sensors_zones(db: DbOption = DEFAULT_DB_PATH, site: SiteOption = None,
                  at: Annotated[Optional[str], typer.Option(help="Also the hook fall zones at this time.")] = None,
                  as_json: JsonOption = False) -> None:
    """Crane swing zones, hook fall zones and hoist zones as cylinders (metres, site local frame)."""
    from sitetwin.data.store import open_store
    from sitetwin.sensors.zones import crane_zones

    with open_store(db, read_only=True, create=False) as store:
        site_code = _site(store, site)
        zones = crane_zones(store, site_code, at=_when(at, "--at"))
    rows = [{"device_id": z.device_id, "kind": z.kind, "center_m": [round(float(v), 3) for v in z.center_m],
             "radius_m": z.radius_m, "z_min_m": z.z_min_m, "z_max_m": z.z_max_m} for z in zones]
    emit(rows, as_json, lambda rs: table(rs, ["device_id", "kind", "center_m", "radius_m", "z_min_m", "z_max_m"]))


@sensors_app.command("findings")
def sensors_findings(db: DbOption = DEFAULT_DB_PATH, site: SiteOption = None,
                     min_severity: Annotated[str, typer.Option(help="Raise warnings at or above this severity.")]
                     = "high",
                     warning: Annotated[Optional[list[str]], typer.Option(help="Raise these warnings (any "
                                                                              "severity; repeat).")] = None,
                     as_json: JsonOption = False) -> None:
    """Raise findings for sensor warnings that have none yet."""
    from sitetwin.data.store import open_store
    from sitetwin.oversight.raising import raise_drafts
    from sitetwin.sensors.findings import raise_pending_findings

    with open_store(db) as store:
        site_code = _site(store, site)
        raised = raise_pending_findings(store, raise_drafts, site_code=site_code, min_severity=min_severity,
                                        warning_ids=warning)
    rows = [{"warning_id": w, "finding_id": f} for w, f in raised]
    emit(rows, as_json, lambda rs: print(_("{n} finding(s) raised", n=len(rs))))


@sensors_app.command("limits")
def sensors_limits(db: DbOption = DEFAULT_DB_PATH, site: SiteOption = None,
                   set_file: Annotated[Optional[Path], typer.Option("--set", help="YAML/JSON file of overrides to "
                                                                                 "merge into the site's settings.")]
                   = None,
                   replace: Annotated[bool, typer.Option(help="Replace the site's overrides instead of merging.")]
                   = False,
                   as_json: JsonOption = False) -> None:
    """Show a site's limits and rules (defaults plus its overrides), or change them."""
    from sitetwin.data.store import open_store
    from sitetwin.sensors.limits import set_site_limits, site_limits

    with open_store(db, read_only=set_file is None, create=False) as store:
        site_code = _site(store, site)
        if set_file is not None:
            import yaml

            try:
                override = yaml.safe_load(set_file.read_text(encoding="utf-8")) or {}
            except (OSError, yaml.YAMLError) as exc:
                raise typer.BadParameter(_("{file}: not readable YAML/JSON ({reason})", file=set_file,
                                           reason=exc)) from None
            limits = set_site_limits(store, site_code, override, replace=replace)
        else:
            limits = site_limits(store, site_code)
    emit(limits.to_dict(), as_json, lambda d: print(json.dumps(d, indent=2)))


@sensors_app.command("twin")
def sensors_twin(db: DbOption = DEFAULT_DB_PATH, site: SiteOption = None, as_json: JsonOption = False) -> None:
    """Each device with its host element and worst active warning: what lights up on the twin."""
    from sitetwin.data.store import open_store
    from sitetwin.sensors.queries import twin_state

    with open_store(db, read_only=True, create=False) as store:
        site_code = _site(store, site)
        rows = twin_state(store, site_code)
    emit(rows, as_json, lambda rs: table(rs, ["device_id", "device_type", "global_id", "ifc_class", "storey",
                                              "severity", "warning_kinds", "last_measured_at"]))


def _json_option(value: str, what: str) -> dict:
    text = value
    if value.startswith("@"):
        try:
            text = Path(value[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise typer.BadParameter(_("{what}: cannot read {file} ({reason})", what=what, file=value[1:],
                                       reason=exc)) from None
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise typer.BadParameter(_("{what}: not JSON ({reason})", what=what, reason=exc)) from None
    if not isinstance(doc, dict):
        raise typer.BadParameter(_("{what}: must be a JSON object", what=what))
    return doc


def _jsonable(p):
    from sitetwin.data.clikit import to_jsonable

    return to_jsonable(p)
