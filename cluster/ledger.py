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
          unit_index: int | None, writer: str) -> tuple[int, dt.datetime]:
    """Record that a unit starts (status ``running``); returns (its attempt in ``run_id``, when attempt 1 began).

    A row left ``running`` by a worker that was lost is taken over: the same run counts up its
    attempts, a new run starts again at 1.
    """
    now = utcnow()
    with atomic(store):
        row = store.one("SELECT run_id, attempts, started_at, status FROM cluster_units WHERE unit_key = ?", [key])
        if row is None:
            store.execute("INSERT INTO cluster_units (unit_key, kind, site_code, manifest, unit_index, run_id, status, "
                          "attempts, writer, started_at) VALUES (?, ?, ?, ?, ?, ?, 'running', 1, ?, ?)",
                          [key, kind, site_code, manifest, unit_index, run_id, writer, now])
            return 1, now
        same_run = row["run_id"] == run_id
        attempt = int(row["attempts"]) + 1 if same_run else 1
        store.execute("UPDATE cluster_units SET manifest = ?, unit_index = ?, run_id = ?, status = 'running', "
                      "error = NULL, attempts = ?, writer = ?, result = NULL, started_at = ?, finished_at = NULL, "
                      "seconds = NULL WHERE unit_key = ?",
                      [manifest, unit_index, run_id, attempt, writer, now, key])
        first = row["started_at"] if same_run and row["status"] == "running" else now
        return attempt, first


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
