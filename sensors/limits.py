"""A site's sensor limits as stored: the shipped defaults overridden by its ``sensor_settings`` row.

``sensors.config`` parses and checks limits; this module keeps them per site. Evaluation,
attendance, import and the ingest server all read them from here.
"""

from __future__ import annotations

import json

from sitetwin.data.clock import utcnow
from sitetwin.data.i18n import N_
from sitetwin.data.store import Store, atomic
from sitetwin.sensors.config import Limits, limits_from_dict, merge_settings
from sitetwin.sensors.errors import SensorError


def site_limits(store: Store, site_code: str) -> Limits:
    """The site's limits: defaults overridden by its ``sensor_settings``."""
    row = store.one("SELECT timezone, limits FROM sensor_settings WHERE site_code = ?", [site_code])
    if row is None:
        return limits_from_dict({})
    override = json.loads(row["limits"]) if isinstance(row["limits"], str) else (row["limits"] or {})
    return limits_from_dict({**override, "timezone": row["timezone"]})


def set_site_limits(store: Store, site_code: str, override: dict, *, replace: bool = False) -> Limits:
    """Store a site's overrides (merged into what it has, or replacing it); returns the checked result."""
    if not store.scalar("SELECT count(*) FROM sites WHERE site_code = ?", [site_code]):
        raise SensorError(N_("no site {site_code!r} in {store}"), site_code=site_code, store=store.label)
    row = store.one("SELECT limits FROM sensor_settings WHERE site_code = ?", [site_code])
    current = {} if (row is None or replace) else (json.loads(row["limits"]) if row["limits"] else {})
    merged_override = _merge_overrides(current, override)
    limits = limits_from_dict(merged_override)
    with atomic(store):
        store.execute("INSERT OR REPLACE INTO sensor_settings (site_code, timezone, limits, updated_at) "
                      "VALUES (?, ?, ?, ?)", [site_code, limits.timezone, merged_override, utcnow()])
    return limits


def _merge_overrides(current: dict, new: dict) -> dict:
    # Overrides are kept as overrides (not the full merged settings) so that later changes to
    # the shipped defaults still reach the site. Rules are merged by kind like everywhere else.
    base = json.loads(json.dumps(current))
    rules = base.pop("rules", [])
    merged = merge_settings({**base, "rules": rules}, new)
    if not merged.get("rules"):
        merged.pop("rules", None)
    return merged
