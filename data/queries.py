"""Ad-hoc read-only queries (``sitetwin sql``)."""

from __future__ import annotations

from typing import Any

from sitetwin.data.errors import StoreError
from sitetwin.data.store import Store


def read_only_query(store: Store, query: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run one statement on a read-only store with file access switched off.

    A read-only DuckDB connection still lets ``COPY ... TO`` or ``ATTACH`` reach the file
    system; turning external access off keeps ``sitetwin sql`` a pure reader.
    """
    if not store.read_only:
        raise StoreError("read_only_query needs a store opened read-only")
    store.execute("SET enable_external_access = false")
    try:
        cur = store.con.execute(query)
    except Exception as exc:
        raise StoreError(f"query failed: {str(exc).splitlines()[0]}") from None
    if cur.description is None:
        return [], []
    return [d[0] for d in cur.description], cur.fetchall()
