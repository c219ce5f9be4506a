"""The ledger of a store's cluster units (table ``cluster_units``): started, done or failed, by key.

Only the site's writer calls these, inside its own transactions (or the unit's, see
:func:`finish`), so a unit is marked done exactly when its results are committed.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sitetwin.data.clock import utcnow
from sitetwin.data.store import Store, atomic


def start(store: Store, key: str, *, kind: str, site_code: str, run_id: str, manifest: str | None,
          unit_index: int | None, writer: str) -> tuple[int, dt.datetime | None]:
    """Record that a unit starts (status ``running``); returns (its attempt in ``run_id``, ``lost_since``).

    A row left ``running`` belongs to an attempt whose worker was lost: it is taken over (the same
    run counts up its attempts, a new run starts again at 1) and keeps the time that attempt began,
    returned as ``lost_since`` (None when no attempt was lost), so that the unit can tell whether
    the lost attempt committed its results after all.
    """
    now = utcnow()
    with atomic(store):
        row = store.one("SELECT run_id, attempts, started_at, status FROM cluster_units WHERE unit_key = ?", [key])
        if row is None:
            store.execute("INSERT INTO cluster_units (unit_key, kind, site_code, manifest, unit_index, run_id, status, "
                          "attempts, writer, started_at) VALUES (?, ?, ?, ?, ?, ?, 'running', 1, ?, ?)",
                          [key, kind, site_code, manifest, unit_index, run_id, writer, now])
            return 1, None
        attempt = int(row["attempts"]) + 1 if row["run_id"] == run_id else 1
        lost_since = row["started_at"] if row["status"] == "running" else None
        store.execute("UPDATE cluster_units SET manifest = ?, unit_index = ?, run_id = ?, status = 'running', "
                      "error = NULL, attempts = ?, writer = ?, result = NULL, started_at = ?, finished_at = NULL, "
                      "seconds = NULL WHERE unit_key = ?",
                      [manifest, unit_index, run_id, attempt, writer, lost_since or now, key])
        return attempt, lost_since


def finish(store: Store, key: str, *, status: str, seconds: float, writer: str, error: str | None = None,
           result: dict[str, Any] | None = None) -> None:
    """Close a unit: ``done`` (with its result summary) or ``failed`` (with its one-line error).

    Joins the caller's transaction, so that a unit's results and its ``done`` commit together.
    """
    if status not in ("done", "failed"):
        raise ValueError(f"status {status!r}: done or failed")
    with atomic(store):
        store.execute("UPDATE cluster_units SET status = ?, error = ?, result = ?, writer = ?, finished_at = ?, "
                      "seconds = ? WHERE unit_key = ?",
                      [status, error, result, writer, utcnow(), round(seconds, 3), key])
