"""Each finding as of its newest event (table ``finding_current``, migration 0016), kept true with its events.

A finding's record is its append-only events (``oversight.findings``); folding them gives its status, due date
and closure time on any day. A city rollup folds a million findings' two million events for every query, so
oversight also keeps, per finding, what that fold gives over all its events: ``status`` and ``due`` (of the
highest-seq event setting them), ``closed_at`` (the latest ``verified_closed`` time), ``event_count`` and
``last_event_at`` (the latest ``occurred_at`` of any event), with the finding's site, severity and raising time.

For any day whose end is after ``last_event_at`` the fold over the events before it is exactly this row
(every event is before it), whatever the order of the events' times; for an earlier day the caller folds that
finding's events (``oversight.portfolio``). The row is written in the transaction of each event:

- :func:`record_event` from ``findings._append`` (every API path, BCF import and escalation go through it):
  the new event has the highest seq, so it updates the row in place; when the row is missing or does not count
  the events before it (events added behind the API), the finding is folded again from its events;
- :func:`refresh` folds the named findings (or all) again: the migration does it for a store made before 0016,
  and an exchange import for the findings it brought (registered with ``data.exchange.after_import``);
- the city lake publishes and compacts the table like every site table.

:func:`is_complete` tells a reader whether the table covers the store's findings and events (same findings,
as many events), so a reader of generated or hand-loaded data that never had it falls back to the fold.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sitetwin.data.exchange import after_import
from sitetwin.data.store import Store, atomic, where_in

TABLE = "finding_current"
COLUMNS = ("finding_id", "site_code", "severity", "raised_at", "status", "due", "closed_at", "event_count",
           "last_event_at")

_LISTED = 500               # up to this many findings are named as parameters
# one row per finding from all its events (the same fold as the rollups' over the events before a day)
FOLD = """
SELECT f.finding_id, f.site_code, f.severity, f.raised_at,
       arg_max(e.status, e.seq) FILTER (WHERE e.status IS NOT NULL) AS status,
       arg_max(e.due, e.seq) FILTER (WHERE e.due IS NOT NULL) AS due,
       max(e.occurred_at) FILTER (WHERE e.status = 'verified_closed') AS closed_at,
       count(*) AS event_count, max(e.occurred_at) AS last_event_at
FROM findings f JOIN finding_events e USING (finding_id) {where}
GROUP BY f.finding_id, f.site_code, f.severity, f.raised_at"""


def record_event(store: Store, finding_id: str, event_id: str, seq: int) -> None:
    """Bring ``finding_id``'s row up to date with its event ``event_id`` just appended (seq ``seq``, the
    highest), inside the caller's transaction; the event's values are read back as stored."""
    count = store.scalar(f"SELECT event_count FROM {TABLE} WHERE finding_id = ?", [finding_id])
    if count is None or count != seq - 1:
        refresh(store, [finding_id])
        return
    store.execute(f"""
        UPDATE {TABLE} AS c SET status = coalesce(e.status, c.status), due = coalesce(e.due, c.due),
               closed_at = CASE WHEN e.status = 'verified_closed' THEN greatest(coalesce(c.closed_at, e.occurred_at),
                                                                              e.occurred_at)
                                ELSE c.closed_at END,
               event_count = c.event_count + 1, last_event_at = greatest(c.last_event_at, e.occurred_at)
        FROM (SELECT status, due, occurred_at FROM finding_events WHERE event_id = ?) AS e
        WHERE c.finding_id = ?""", [event_id, finding_id])


def refresh(store: Store, finding_ids: Iterable[str] | None = None) -> int:
    """Fold the named findings (default: all) again from their events; returns the rows written. Inside the
    caller's transaction when there is one."""
    ids = None if finding_ids is None else sorted(set(finding_ids))
    if ids is not None and not ids:
        return 0
    many = ids is not None and len(ids) > _LISTED
    params: list[Any]
    if ids is None:
        cond, params = "true", []
    elif many:                  # thousands of ids (an import) travel as a table, not as parameters
        import pyarrow as pa

        store.con.register("_finding_current_ids", pa.table({"finding_id": pa.array(ids, pa.string())}))
        cond, params = "finding_id IN (SELECT finding_id FROM _finding_current_ids)", []
    else:
        cond, params = where_in("finding_id", ids)
    try:
        with atomic(store):
            store.execute(f"DELETE FROM {TABLE} WHERE {cond}", params)
            fold = FOLD.format(where="" if ids is None else f"WHERE f.{cond}")
            store.execute(f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) {fold}", params)
            return int(store.scalar(f"SELECT count(*) FROM {TABLE} WHERE {cond}", params))
    finally:
        if many:
            store.con.unregister("_finding_current_ids")


def is_complete(store: Store) -> bool:
    """Whether ``finding_current`` covers the store's findings and events: a row per finding, and as many events
    counted as there are (cheap: counts only). False for data loaded around oversight (generated histories)."""
    row = store.one(f"""SELECT (SELECT count(*) FROM findings) AS findings, (SELECT count(*) FROM {TABLE}) AS rows,
                               (SELECT count(*) FROM finding_events) AS events,
                               (SELECT coalesce(sum(event_count), 0) FROM {TABLE}) AS counted""")
    assert row is not None
    return row["findings"] == row["rows"] and row["events"] == row["counted"]


@after_import
def _after_import(store: Store, tables: dict[str, Any]) -> None:
    """An exchange import brought findings or events: fold those findings again (in the import's transaction)."""
    ids: set[str] = set()
    for name in ("findings", "finding_events", TABLE):
        arrow = tables.get(name)
        if arrow is not None and "finding_id" in arrow.column_names:
            ids.update(x for x in arrow.column("finding_id").to_pylist() if x is not None)
    if ids and TABLE in store.tables():
        refresh(store, ids)
