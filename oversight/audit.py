"""The audit log: who viewed, exported, imported or was refused what, and when.

Every scoped read and export in ``oversight`` calls :func:`record`. A store opened
read-only cannot take the row, so it goes to ``<cache>/audit-spool.jsonl`` beside the
store and moves into the table the next time the store is written through this module.
Reads by ``Scope.system`` (sitetwin's own code) are not recorded.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any

from sitetwin.data.clock import utcnow
from sitetwin.data.errors import Phrase
from sitetwin.data.store import Store
from sitetwin.oversight.scope import Scope

SPOOL = "audit-spool.jsonl"
ACTIONS = ("view", "export", "import", "login", "logout", "denied", "write")


def record(store: Store, scope: Scope, action: str, object_kind: str, object_id: str | None = None, *,
           site_code: str | None = None, detail: dict[str, Any] | None = None) -> None:
    """Add one row to the audit log (or to the spool when the store is read-only)."""
    if scope.role == "system":
        return
    if action not in ACTIONS:
        raise ValueError(f"audit action must be one of {ACTIONS}, not {action!r}")
    row = {"audit_id": str(uuid.uuid4()), "logged_at": utcnow().isoformat(), "actor": scope.actor,
           "role": scope.role, "action": action, "object_kind": object_kind, "object_id": object_id,
           "site_code": site_code, "detail": detail or {}}
    if store.read_only:
        _spool_path(store).parent.mkdir(parents=True, exist_ok=True)
        with open(_spool_path(store), "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row, default=str) + "\n")
        return
    _ingest_spool(store)
    _insert(store, row)


def guard(store: Store, scope: Scope, action: str, site_code: str | None = None, *, what: str | Phrase = "",
          object_kind: str = "site", object_id: str | None = None) -> None:
    """Check that ``scope`` may do ``action`` (on ``site_code`` when given); a refusal is logged, then raised."""
    from sitetwin.oversight.errors import AccessDenied

    try:
        if site_code is None:
            scope.require(action, what)
        else:
            scope.require_site(store, site_code, action, what)
    except AccessDenied:
        record(store, scope, "denied", object_kind, object_id or site_code, site_code=site_code,
               detail={"action": action})
        raise


def _insert(store: Store, row: dict) -> None:
    store.execute("INSERT INTO audit_log (audit_id, logged_at, actor, role, action, object_kind, object_id, "
                  "site_code, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                  [row["audit_id"], row["logged_at"], row["actor"], row["role"], row["action"],
                   row["object_kind"], row["object_id"], row["site_code"], row["detail"]])


def _spool_path(store: Store) -> Path:
    return Path(store.cache_dir) / SPOOL


def _ingest_spool(store: Store) -> None:
    path = _spool_path(store)
    if not path.exists():
        return
    lines = path.read_text(encoding="utf-8").splitlines()
    for line in lines:
        if line.strip():
            row = json.loads(line)
            if not store.scalar("SELECT count(*) FROM audit_log WHERE audit_id = ?", [row["audit_id"]]):
                _insert(store, row)
    path.unlink()


def audit_log(store: Store, scope: Scope, *, actor: str | None = None, action: str | None = None,
              site_code: str | None = None, since: dt.datetime | None = None, limit: int = 200) -> list[dict]:
    """The newest audit rows first (admin only), including any still in the spool."""
    scope.require("read_audit")
    if not store.read_only:
        _ingest_spool(store)
    rows = store.rows(
        "SELECT * FROM audit_log WHERE (? IS NULL OR actor = ?) AND (? IS NULL OR action = ?) "
        "AND (? IS NULL OR site_code = ?) AND (? IS NULL OR logged_at >= ?) ORDER BY logged_at DESC LIMIT ?",
        [actor, actor, action, action, site_code, site_code, since, since, int(limit)])
    if store.read_only and _spool_path(store).exists():
        spooled = [json.loads(x) for x in _spool_path(store).read_text(encoding="utf-8").splitlines() if x.strip()]
        rows = spooled[::-1] + rows
    for r in rows:
        if isinstance(r.get("detail"), str):
            r["detail"] = json.loads(r["detail"])
    return rows[:limit]
