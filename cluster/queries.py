"""Reads of the cluster ledger (``cluster_units``), for ``sitetwin cluster status`` and a rerun's skip list."""

from __future__ import annotations

from typing import Any

from sitetwin.data.store import Store

LEDGER_COLUMNS = ("unit_key", "kind", "site_code", "manifest", "unit_index", "run_id", "status", "error", "attempts",
                  "writer", "result", "started_at", "finished_at", "seconds")


def done_keys(store: Store) -> set[str]:
    """Keys of the units done in this store (a rerun skips them)."""
    return {r[0] for r in store.execute("SELECT unit_key FROM cluster_units WHERE status = 'done'")}


def ledger_rows(store: Store, *, manifest: str | None = None, site_code: str | None = None) -> list[dict[str, Any]]:
    """The ledger as rows (``LEDGER_COLUMNS``; result as JSON text, times naive UTC, seconds of the last attempt),
    of one manifest (its absolute path) and/or site, by manifest and unit index."""
    sql = f"SELECT {', '.join(LEDGER_COLUMNS)} FROM cluster_units WHERE (? IS NULL OR manifest = ?) " \
          "AND (? IS NULL OR site_code = ?) ORDER BY manifest, unit_index, started_at"
    return store.rows(sql, [manifest, manifest, site_code, site_code])


def unit_status(store: Store, key: str) -> str | None:
    """A unit's status in this store (running | done | failed), or None when it never started here."""
    return store.scalar("SELECT status FROM cluster_units WHERE unit_key = ?", [key])
