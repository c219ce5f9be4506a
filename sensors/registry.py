"""The device registry: what each sensor is, where it sits in the twin, who made it, whether to trust it.

A device is identified by one unified ``device_id`` across project, district and city
platforms. It sits at a position in the site's local frame (metres) and/or on a host model
element (IFC GlobalId). Devices of a blacklisted supplier (or blacklisted one by one) keep
sending, but their readings are stored flagged and not trusted: warnings ignore them, so a
site whose only dust monitor is blacklisted shows a data gap, not clean air.

>>> dev = add_device(store, "DEMO-DUST-01", site_code="DEMO", device_type="dust",
...                  position_m=(-20.0, 5.0, 1.5), supplier="Acme", interval_s=60)  # doctest: +SKIP
>>> token = issue_token(store, "DEMO-DUST-01")                                      # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sitetwin.bim.queries import current_element
from sitetwin.data.clock import utcnow
from sitetwin.data.errors import Phrase
from sitetwin.data.i18n import N_
from sitetwin.data.store import Store, atomic
from sitetwin.data.text import LABEL_MAX, NOTE_MAX, TITLE_MAX, clean_text
from sitetwin.sensors.channels import DEVICE_TYPES
from sitetwin.sensors.errors import DeviceError, cause

_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")     # fullmatch: "$" would let "CR1\n" through


def check_device_id(device_id: str) -> str:
    if not isinstance(device_id, str) or not _ID_RE.fullmatch(device_id):
        raise DeviceError(N_("device id {device_id!r}: use 1-64 letters, digits, '-', '_', '.' or ':', "
                             "starting with a letter or digit"), device_id=device_id)
    return device_id


@dataclass(frozen=True)
class Device:
    """A registered device. ``position_m`` is in the site's local frame, metres."""

    device_id: str
    site_code: str
    device_type: str
    name: str | None
    position_m: tuple[float, float, float] | None
    model_id: str | None
    global_id: str | None
    supplier: str | None
    device_model: str | None
    serial_no: str | None
    installed_on: dt.date | None
    removed_on: dt.date | None
    interval_s: float
    config: dict = field(default_factory=dict)
    blacklisted: bool = False
    blacklist_reason: str | None = None


@dataclass(frozen=True)
class Calibration:
    device_id: str
    calibrated_on: dt.date
    valid_until: dt.date
    laboratory: str | None
    certificate: str | None


def add_device(store: Store, device_id: str, *, site_code: str, device_type: str, name: str | None = None,
               position_m: Sequence[float] | None = None, host_global_id: str | None = None,
               supplier: str | None = None, device_model: str | None = None, serial_no: str | None = None,
               installed_on: dt.date | str | None = None, interval_s: float = 60.0,
               config: dict | None = None, now: dt.datetime | None = None) -> Device:
    """Register a device; refuses an id already in use, an unknown site or host element, a bad config.

    With a host element and no position, the device sits at the centre of the element's
    bounding box. Crane and hoist configs are checked as geometry (see ``sensors.crane``).
    """
    check_device_id(device_id)
    name = clean_text(name, Phrase(N_("device {device_id}: name"), device_id=device_id),
                      max_len=TITLE_MAX, required=False) or None
    supplier = _label(supplier, Phrase(N_("device {device_id}: supplier"), device_id=device_id))
    device_model = _label(device_model, Phrase(N_("device {device_id}: model"), device_id=device_id))
    serial_no = _label(serial_no, Phrase(N_("device {device_id}: serial number"), device_id=device_id))
    if device_type not in DEVICE_TYPES:
        raise DeviceError(N_("device {device_id}: type {device_type!r} is not one of {types}"), device_id=device_id,
                          device_type=device_type, types=", ".join(DEVICE_TYPES))
    if not store.scalar("SELECT count(*) FROM sites WHERE site_code = ?", [site_code]):
        raise DeviceError(N_("device {device_id}: no site {site_code!r} in {store}; create it with "
                             "`sitetwin init --site {site_code}`"), device_id=device_id, site_code=site_code,
                          store=store.label)
    if store.scalar("SELECT count(*) FROM devices WHERE device_id = ?", [device_id]):
        raise DeviceError(N_("device {device_id} is already registered; pick another id or remove the old record"),
                          device_id=device_id)
    if not isinstance(interval_s, (int, float)) or not 0.01 <= float(interval_s) <= 7 * 86400:
        raise DeviceError(N_("device {device_id}: interval_s {interval_s!r} must be 0.01 s .. 7 days"),
                          device_id=device_id, interval_s=interval_s)
    position = _position(position_m, device_id)
    model_id = None
    if host_global_id:
        host = current_element(store, site_code, host_global_id)
        if host is None:
            raise DeviceError(N_("device {device_id}: host element {global_id} is not in the current models of "
                                 "site {site_code}"), device_id=device_id, global_id=host_global_id,
                              site_code=site_code)
        model_id = host["model_id"]
        if position is None and host["bbox_min_x_m"] is not None:
            position = tuple((host[f"bbox_min_{a}_m"] + host[f"bbox_max_{a}_m"]) / 2.0 for a in "xyz")
    config = dict(config or {})
    _check_config(device_id, device_type, config, position)
    installed = _date(installed_on, Phrase(N_("device {device_id}: {field}"), device_id=device_id,
                                           field="installed_on"))
    listed = None
    if supplier:
        listed = store.one("SELECT reason FROM supplier_blacklist WHERE supplier = ?", [supplier])
    with atomic(store):
        store.execute(
            "INSERT INTO devices (device_id, site_code, device_type, name, x_m, y_m, z_m, model_id, global_id, "
            "supplier, device_model, serial_no, installed_on, interval_s, config, blacklisted, blacklist_reason, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [device_id, site_code, device_type, name, *(position or (None, None, None)), model_id,
             host_global_id or None, supplier, device_model, serial_no, installed, float(interval_s), config,
             listed is not None, f"supplier {supplier} blacklisted: {listed['reason']}" if listed else None,
             now or utcnow()])
    return get_device(store, device_id)


def get_device(store: Store, device_id: str) -> Device:
    row = store.one("SELECT * FROM devices WHERE device_id = ?", [device_id])
    if row is None:
        raise DeviceError(N_("no device {device_id!r} in {store}; register it with `sitetwin device add`"),
                          device_id=device_id, store=store.label)
    return _device(row)


def list_devices(store: Store, *, site_code: str | None = None, device_type: str | None = None) -> list[Device]:
    sql, params = "SELECT * FROM devices WHERE true", []
    if site_code:
        sql += " AND site_code = ?"
        params.append(site_code)
    if device_type:
        sql += " AND device_type = ?"
        params.append(device_type)
    return [_device(r) for r in store.rows(sql + " ORDER BY site_code, device_id", params)]


def remove_device(store: Store, device_id: str, *, removed_on: dt.date | str) -> Device:
    """Mark a device as taken off site (its readings stay); it no longer raises gap warnings after that day."""
    get_device(store, device_id)
    day = _date(removed_on, Phrase(N_("device {device_id}: {field}"), device_id=device_id, field="removed_on"))
    with atomic(store):
        store.execute("UPDATE devices SET removed_on = ? WHERE device_id = ?", [day, device_id])
    return get_device(store, device_id)


def issue_token(store: Store, device_id: str, *, now: dt.datetime | None = None) -> str:
    """Create an API token for a device and return it. Only its sha256 is stored: show it once."""
    device = get_device(store, device_id)
    token = "st_" + secrets.token_urlsafe(32)
    with atomic(store):
        store.execute("INSERT INTO device_tokens (token_id, site_code, device_id, token_sha256, created_at) "
                      "VALUES (?, ?, ?, ?, ?)",
                      [token_handle(token), device.site_code, device_id, token_digest(token), now or utcnow()])
    return token


def revoke_tokens(store: Store, device_id: str, *, token_id: str | None = None, now: dt.datetime | None = None) -> int:
    """Revoke a device's tokens (or one of them); returns how many were revoked."""
    get_device(store, device_id)
    sql = "UPDATE device_tokens SET revoked_at = ? WHERE device_id = ? AND revoked_at IS NULL"
    params: list[Any] = [now or utcnow(), device_id]
    if token_id:
        sql += " AND token_id = ?"
        params.append(token_id)
    with atomic(store):
        count = store.scalar(f"SELECT count(*) FROM device_tokens WHERE device_id = ? AND revoked_at IS NULL"
                             f"{' AND token_id = ?' if token_id else ''}", params[1:])
        store.execute(sql, params)
    return int(count or 0)


def token_digest(token: str) -> str:
    # Tokens are 256-bit random strings, so a plain digest is enough (no slow hash needed):
    # nothing about them can be guessed, and the server checks thousands per second.
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_handle(token: str) -> str:
    return "tk_" + token_digest(token)[:10]


def record_calibration(store: Store, device_id: str, *, calibrated_on: dt.date | str, valid_until: dt.date | str,
                       laboratory: str | None = None, certificate: str | None = None,
                       notes: str | None = None) -> Calibration:
    """Add a calibration certificate; readings outside every valid calibration are flagged ``uncalibrated``."""
    device = get_device(store, device_id)
    laboratory = _label(laboratory, Phrase(N_("device {device_id}: calibration laboratory"), device_id=device_id))
    certificate = _label(certificate, Phrase(N_("device {device_id}: calibration certificate"), device_id=device_id))
    notes = clean_text(notes, Phrase(N_("device {device_id}: calibration notes"),
                                     device_id=device_id), max_len=NOTE_MAX, multiline=True, required=False) or None
    on = _date(calibrated_on, Phrase(N_("device {device_id}: {field}"), device_id=device_id, field="calibrated_on"))
    until = _date(valid_until, Phrase(N_("device {device_id}: {field}"), device_id=device_id, field="valid_until"))
    if on is None or until is None:        # an empty string reads as no date
        raise DeviceError(N_("device {device_id}: a calibration needs calibrated_on and valid_until (YYYY-MM-DD)"),
                          device_id=device_id)
    if until < on:
        raise DeviceError(N_("device {device_id}: calibration valid_until {until} is before calibrated_on {on}"),
                          device_id=device_id, until=until, on=on)
    if store.scalar("SELECT count(*) FROM device_calibrations WHERE device_id = ? AND calibrated_on = ?",
                    [device_id, on]):
        raise DeviceError(N_("device {device_id} already has a calibration on {on}"), device_id=device_id, on=on)
    with atomic(store):
        store.execute("INSERT INTO device_calibrations (site_code, device_id, calibrated_on, valid_until, laboratory, "
                      "certificate, notes) VALUES (?, ?, ?, ?, ?, ?, ?)",
                      [device.site_code, device_id, on, until, laboratory, certificate, notes])
    return Calibration(device_id, on, until, laboratory, certificate)


def calibrations(store: Store, device_id: str) -> list[Calibration]:
    return [Calibration(r["device_id"], r["calibrated_on"], r["valid_until"], r["laboratory"], r["certificate"])
            for r in store.rows("SELECT * FROM device_calibrations WHERE device_id = ? ORDER BY calibrated_on",
                                [device_id])]


def blacklist_supplier(store: Store, supplier: str, *, reason: str, now: dt.datetime | None = None) -> int:
    """List a supplier as untrusted and flag all its devices; returns how many devices were flagged."""
    if not supplier or not reason:
        raise DeviceError(N_("blacklisting a supplier needs the supplier's name and a reason"))
    supplier = clean_text(supplier, Phrase(N_("supplier")), max_len=LABEL_MAX)
    reason = clean_text(reason, Phrase(N_("blacklist reason")), max_len=NOTE_MAX)
    with atomic(store):
        store.execute("INSERT OR REPLACE INTO supplier_blacklist (supplier, reason, listed_at) VALUES (?, ?, ?)",
                      [supplier, reason, now or utcnow()])
        count = store.scalar("SELECT count(*) FROM devices WHERE supplier = ? AND NOT blacklisted", [supplier])
        store.execute("UPDATE devices SET blacklisted = true, blacklist_reason = ? "
                      "WHERE supplier = ? AND NOT blacklisted",
                      [f"supplier {supplier} blacklisted: {reason}", supplier])
    return int(count or 0)


def unlist_supplier(store: Store, supplier: str) -> int:
    """Take a supplier off the blacklist and clear the flag it put on its devices."""
    with atomic(store):
        store.execute("DELETE FROM supplier_blacklist WHERE supplier = ?", [supplier])
        count = store.scalar("SELECT count(*) FROM devices WHERE supplier = ? AND blacklisted "
                             "AND blacklist_reason LIKE 'supplier %'", [supplier])
        store.execute("UPDATE devices SET blacklisted = false, blacklist_reason = NULL WHERE supplier = ? "
                      "AND blacklisted AND blacklist_reason LIKE 'supplier %'", [supplier])
    return int(count or 0)


def set_blacklisted(store: Store, device_id: str, blacklisted: bool, *, reason: str | None = None) -> Device:
    """Flag (or clear) one device, e.g. a monitor found tampered with."""
    get_device(store, device_id)
    reason = clean_text(reason, Phrase(N_("device {device_id}: blacklist reason"),
                                       device_id=device_id), max_len=NOTE_MAX, required=False) or None
    if blacklisted and not reason:
        raise DeviceError(N_("device {device_id}: say why it is blacklisted (reason)"), device_id=device_id)
    with atomic(store):
        store.execute("UPDATE devices SET blacklisted = ?, blacklist_reason = ? WHERE device_id = ?",
                      [bool(blacklisted), reason if blacklisted else None, device_id])
    return get_device(store, device_id)


def _label(value: str | None, field: Phrase) -> str | None:
    """A short one-line label (supplier, model, serial number) as stored; None when empty. ``field`` names it in
    a refusal, in the reader's language."""
    return clean_text(value, field, max_len=LABEL_MAX, required=False) or None


def _device(row: dict) -> Device:
    position = None
    if row["x_m"] is not None:
        position = (float(row["x_m"]), float(row["y_m"]), float(row["z_m"]))
    config = row["config"]
    if isinstance(config, str):
        config = json.loads(config)
    return Device(device_id=row["device_id"], site_code=row["site_code"], device_type=row["device_type"],
                  name=row["name"], position_m=position, model_id=row["model_id"], global_id=row["global_id"],
                  supplier=row["supplier"], device_model=row["device_model"], serial_no=row["serial_no"],
                  installed_on=row["installed_on"], removed_on=row["removed_on"], interval_s=float(row["interval_s"]),
                  config=config or {}, blacklisted=bool(row["blacklisted"]), blacklist_reason=row["blacklist_reason"])


def _position(position_m: Sequence[float] | None, device_id: str) -> tuple[float, float, float] | None:
    if position_m is None:
        return None
    try:
        values = tuple(float(v) for v in position_m)
    except (TypeError, ValueError):
        raise DeviceError(N_("device {device_id}: position must be three numbers x,y,z in metres"),
                          device_id=device_id) from None
    if len(values) != 3 or not all(math.isfinite(v) for v in values):
        raise DeviceError(N_("device {device_id}: position must be three finite numbers x,y,z in metres, "
                             "got {position!r}"), device_id=device_id, position=position_m)
    return values


def _date(value: dt.date | str | None, what: Phrase) -> dt.date | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise DeviceError(N_("{field}: {value!r} is not a date (YYYY-MM-DD)"), field=what, value=value) from None


def _check_config(device_id: str, device_type: str, config: dict, position) -> None:
    from sitetwin.sensors.config import check_levels
    from sitetwin.sensors.errors import ConfigError

    for kind, levels in (config.get("limits") or {}).items():
        try:
            check_levels(levels, f"device {device_id} config limits.{kind}")
        except ConfigError as exc:
            raise DeviceError(exc.template, **exc.fields) from None
    if device_type in ("crane", "hoist"):
        from sitetwin.sensors.crane import geometry_from_config

        if position is None:
            raise DeviceError(N_("device {device_id}: a {device_type} needs its base position (x,y,z of the mast "
                                 "foot, local frame) for its hook position and swing zone"), device_id=device_id,
                              device_type=device_type)
        try:
            geometry_from_config(device_type, config, position)
        except ValueError as exc:
            raise DeviceError(N_("device {device_id}: {reason}"), device_id=device_id, reason=cause(exc)) from None
