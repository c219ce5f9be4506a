"""Sites: the unit of a twin, organised city -> district -> project."""

from __future__ import annotations

import math
from collections.abc import Sequence

from sitetwin.data.errors import StoreError
from sitetwin.data.i18n import N_
from sitetwin.data.store import Store

DEFAULT_TIME_ZONE = "Asia/Shanghai"
ADDRESS_MAX = 200


def check_site_code(code: str) -> str:
    if not code or len(code) > 64 or not all(c.isalnum() or c in "-_." for c in code):
        raise StoreError(N_("site code {code!r}: use 1-64 letters, digits, '-', '_' or '.'"), code=code)
    return code


def upsert_site(store: Store, site_code: str, *, name: str | None = None, district: str | None = None,
                city: str | None = None, time_zone: str | None = None, address: str | None = None) -> None:
    """Create a site, or update the fields given for an existing one (``time_zone``: IANA name,
    default Asia/Shanghai for a new site; ``address``: the street address, free text of at most
    :data:`ADDRESS_MAX` characters)."""
    check_site_code(site_code)
    if address is not None:
        from sitetwin.data.text import clean_text

        address = clean_text(address, field="address", max_len=ADDRESS_MAX, required=False) or None
    if store.scalar("SELECT count(*) FROM sites WHERE site_code = ?", [site_code]):
        store.execute("UPDATE sites SET name = coalesce(?, name), district = coalesce(?, district), "
                      "city = coalesce(?, city) WHERE site_code = ?", [name, district, city, site_code])
    else:
        store.execute("INSERT INTO sites (site_code, name, district, city) VALUES (?, ?, ?, ?)",
                      [site_code, name or site_code, district, city])
    if time_zone is not None:
        set_time_zone(store, site_code, time_zone)
    if address is not None:
        store.execute("UPDATE sites SET address = ? WHERE site_code = ?", [address, site_code])


def check_time_zone(name: str, field: str = "time_zone") -> str:
    """``name`` if it is an IANA time zone this machine knows (``Asia/Shanghai``), else ``StoreError``."""
    import zoneinfo

    text = str(name or "").strip()
    try:
        if not text or text.startswith("/") or ".." in text:
            raise ValueError(text)
        zoneinfo.ZoneInfo(text)
    except (ValueError, zoneinfo.ZoneInfoNotFoundError):
        raise StoreError(N_("{field}: {name!r} is not an IANA time zone (e.g. Asia/Shanghai)"), field=field,
                         name=text[:60]) from None
    return text


def set_time_zone(store: Store, site_code: str, time_zone: str) -> None:
    """Set a site's IANA time zone: its days and dates are reckoned there (read with
    ``data.queries.site_time_zone``)."""
    tz = check_time_zone(time_zone)
    if not store.scalar("SELECT count(*) FROM sites WHERE site_code = ?", [site_code]):
        raise StoreError(N_("no site {site_code!r} in {store}; create it with upsert_site"), site_code=site_code,
                         store=store.label)
    store.execute("UPDATE sites SET time_zone = ? WHERE site_code = ?", [tz, site_code])


def set_origin(store: Store, site_code: str, origin_m: Sequence[float]) -> None:
    """Set a site's local-frame origin: the IFC world (project) coordinates, in metres, of the local (0, 0, 0).

    Geometry already stored is not moved, and the site's first model sets the origin anew
    (``bim.load_model``), so set it for a site that holds its models already or takes none.
    Refuses an unknown site and an origin that is not three finite numbers.
    """
    try:
        x, y, z = (float(v) for v in origin_m)
    except (TypeError, ValueError):
        raise StoreError(N_("site {site_code}: origin must be three numbers (x, y, z in metres), got {origin!r}"),
                         site_code=site_code, origin=origin_m) from None
    if not all(math.isfinite(v) for v in (x, y, z)):
        raise StoreError(N_("site {site_code}: origin must be finite, got {origin!r}"), site_code=site_code,
                         origin=origin_m)
    if not store.scalar("SELECT count(*) FROM sites WHERE site_code = ?", [site_code]):
        raise StoreError(N_("no site {site_code!r} in {store}; create it with upsert_site"), site_code=site_code,
                         store=store.label)
    store.execute("UPDATE sites SET origin_x_m = ?, origin_y_m = ?, origin_z_m = ? WHERE site_code = ?",
                  [x, y, z, site_code])
