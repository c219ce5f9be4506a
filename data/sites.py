"""Sites: the unit of a twin, organised city -> district -> project."""

from __future__ import annotations

import math
from collections.abc import Sequence

from sitetwin.data.errors import StoreError
from sitetwin.data.store import Store


def check_site_code(code: str) -> str:
    if not code or len(code) > 64 or not all(c.isalnum() or c in "-_." for c in code):
        raise StoreError(f"site code {code!r}: use 1-64 letters, digits, '-', '_' or '.'")
    return code


def upsert_site(store: Store, site_code: str, *, name: str | None = None, district: str | None = None,
                city: str | None = None) -> None:
    """Create a site, or update the fields given for an existing one."""
    check_site_code(site_code)
    if store.scalar("SELECT count(*) FROM sites WHERE site_code = ?", [site_code]):
        store.execute("UPDATE sites SET name = coalesce(?, name), district = coalesce(?, district), "
                      "city = coalesce(?, city) WHERE site_code = ?", [name, district, city, site_code])
    else:
        store.execute("INSERT INTO sites (site_code, name, district, city) VALUES (?, ?, ?, ?)",
                      [site_code, name or site_code, district, city])


def set_origin(store: Store, site_code: str, origin_m: Sequence[float]) -> None:
    """Set a site's local-frame origin: the IFC world (project) coordinates, in metres, of the local (0, 0, 0).

    Geometry already stored is not moved, and the site's first model sets the origin anew
    (``bim.load_model``), so set it for a site that holds its models already or takes none.
    Refuses an unknown site and an origin that is not three finite numbers.
    """
    try:
        x, y, z = (float(v) for v in origin_m)
    except (TypeError, ValueError):
        raise StoreError(f"site {site_code}: origin must be three numbers (x, y, z in metres), "
                         f"got {origin_m!r}") from None
    if not all(math.isfinite(v) for v in (x, y, z)):
        raise StoreError(f"site {site_code}: origin must be finite, got {origin_m!r}")
    if not store.scalar("SELECT count(*) FROM sites WHERE site_code = ?", [site_code]):
        raise StoreError(f"no site {site_code!r} in {store.label}; create it with upsert_site")
    store.execute("UPDATE sites SET origin_x_m = ?, origin_y_m = ?, origin_z_m = ? WHERE site_code = ?",
                  [x, y, z, site_code])
