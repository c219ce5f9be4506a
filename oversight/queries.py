"""What oversight publishes for other packages to read: findings by site, id and status, and site profiles.

Plain functions, one per question: each takes an open store and plain values and returns a
pandas DataFrame for a table, a dict for one record, or plain values. They read without a
scope: callers hand them only sites or ids the caller was admitted to (``oversight.scope``);
findings with their history, under a scope, are ``oversight.findings``'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sitetwin.data.store import Store, placeholders

OPEN_STATUSES = ("open", "reopened", "rectification_submitted")


def site_profile(store: Store, site_code: str) -> dict[str, Any] | None:
    """The site's profile, or None when it has none: dict site_code, project, contractor, data_owner,
    planned_start, planned_finish (dates), workers_planned, latitude, longitude (WGS 84 degrees), updated_at."""
    return store.one("SELECT * FROM site_profiles WHERE site_code = ?", [site_code])


def finding_count(store: Store, site_code: str) -> int:
    """How many findings the site has, whatever their status."""
    return int(store.scalar("SELECT count(*) FROM findings WHERE site_code = ?", [site_code]) or 0)


def finding_ids(store: Store, site_code: str, *, status: Sequence[str] | None = None) -> list[str]:
    """The ids of the site's findings whose current status is one of ``status`` (None: any), sorted.

    ``OPEN_STATUSES`` are the findings still to act on (open, reopened, rectification submitted).
    """
    if status is None:
        return [r[0] for r in store.execute("SELECT finding_id FROM findings WHERE site_code = ? ORDER BY 1",
                                            [site_code])]
    wanted = list(status)
    if not wanted:
        return []
    marks = ", ".join("?" for _ in wanted)
    return [r[0] for r in store.execute(f"SELECT finding_id FROM finding_state WHERE site_code = ? "
                                        f"AND status IN ({marks}) ORDER BY 1", [site_code, *wanted])]


def finding_refs(store: Store, finding_ids: Sequence[str]):
    """The reference and current status of each of the given findings that exists.

    DataFrame finding_id, ref ('<site_code>-<number>', as the workbench and BCF show it), status (open |
    rectification_submitted | verified_closed | reopened).
    """
    ids = list(dict.fromkeys(finding_ids))
    if not ids:
        return store.df("SELECT finding_id, site_code || '-' || number AS ref, status FROM finding_state WHERE false")
    return store.df(f"SELECT finding_id, site_code || '-' || number AS ref, status FROM finding_state "
                    f"WHERE finding_id IN ({placeholders(ids)})", ids)


def finding_number(store: Store, finding_id: str) -> int | None:
    """A finding's running number within its site (shown as ``<site_code>-<number>``), or None when unknown."""
    return store.scalar("SELECT number FROM findings WHERE finding_id = ?", [finding_id])


def finding_site(store: Store, finding_id: str) -> str | None:
    """The site code of a finding, or None when the store has no such finding."""
    return store.scalar("SELECT site_code FROM findings WHERE finding_id = ?", [finding_id])


def account_count(store: Store) -> int:
    """How many user accounts the store has, disabled ones included (0: the local file owner acts as admin)."""
    return int(store.scalar("SELECT count(*) FROM accounts") or 0)
