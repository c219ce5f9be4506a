"""Sites: the unit of a twin, organised city -> district -> project."""

from __future__ import annotations

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
