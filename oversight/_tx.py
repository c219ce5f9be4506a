"""Join the caller's transaction when there is one, else open our own.

DuckDB has no "am I in a transaction" flag, and a failed BEGIN aborts the transaction
that is already open, so we cannot simply try. Inside an explicit transaction
``txid_current()`` answers the same id twice; in autocommit mode every statement gets a
fresh one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from sitetwin.data.store import Store


def in_transaction(store: Store) -> bool:
    first = store.scalar("SELECT txid_current()")
    return store.scalar("SELECT txid_current()") == first


@contextlib.contextmanager
def atomic(store: Store) -> Iterator[Store]:
    """All writes inside succeed together; inside a caller's transaction, they are part of it."""
    if in_transaction(store):
        yield store
    else:
        with store.transaction():
            yield store
