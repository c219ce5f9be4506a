"""Joining the caller's transaction."""

from __future__ import annotations

import pytest

from sitetwin.data.store import atomic, in_transaction


def test_atomic_joins_an_open_transaction_and_opens_one_otherwise(store):
    assert not in_transaction(store)
    with store.transaction():
        assert in_transaction(store)
        with atomic(store):
            store.execute("CREATE TABLE t (a INTEGER)")
    with pytest.raises(ZeroDivisionError):
        with atomic(store):
            store.execute("INSERT INTO t VALUES (1)")
            raise ZeroDivisionError
    assert store.scalar("SELECT count(*) FROM t") == 0 and not in_transaction(store)
