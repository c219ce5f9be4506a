"""Short-lived store connections for the workbench, so that it serves while the CLI writes.

DuckDB lets one process write a file at a time, and a process holds the file's lock for as
long as any connection to it is open. The app therefore never keeps a connection across
requests: each read opens the store read-only (waiting while a writer holds the lock, see
``data.store.open_store``), reads, and closes. New data written by the CLI or the sensor
ingest server in between is simply there on the next read.

Inside this process, DuckDB refuses a read-write connection to a file that also has
read-only connections open (and the other way round). The rare writes the app makes itself
(a login, a finding raised from a page) therefore take a process-wide lock that waits for
the readers to finish; reads share it.

``data_version(db)`` is a cheap token (the store file's and its WAL's size and mtime) that
changes whenever anything is committed: caches of derived results key on it.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from sitetwin.data.store import Store, open_store

READ_LOCK_TIMEOUT_S = 15.0     # how long a page waits for a writer (a CLI import) to finish
WRITE_LOCK_TIMEOUT_S = 30.0


class _SharedLock:
    """Many readers or one writer, writers first once they wait (so a stream of reads cannot starve them)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writing = False
        self._waiting_writers = 0

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            while self._writing or self._waiting_writers:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            self._waiting_writers += 1
            try:
                while self._writing or self._readers:
                    self._cond.wait()
            finally:
                self._waiting_writers -= 1
            self._writing = True
        try:
            yield
        finally:
            with self._cond:
                self._writing = False
                self._cond.notify_all()


_LOCK = _SharedLock()


def _reset_after_fork() -> None:
    # Background jobs run in forked processes: a copy of the lock may say "held by a reader"
    # that exists only in the parent. The child has no connection open; it starts clean.
    global _LOCK
    _LOCK = _SharedLock()


os.register_at_fork(after_in_child=_reset_after_fork)


@contextlib.contextmanager
def read_store(db: str | Path, *, lock_timeout_s: float = READ_LOCK_TIMEOUT_S) -> Iterator[Store]:
    """A read-only connection for the duration of one ``with`` block."""
    with _LOCK.shared():
        store = open_store(db, read_only=True, create=False, lock_timeout_s=lock_timeout_s)
        try:
            yield store
        finally:
            store.close()


@contextlib.contextmanager
def write_store(db: str | Path, *, lock_timeout_s: float = WRITE_LOCK_TIMEOUT_S) -> Iterator[Store]:
    """A read-write connection, once no read of this process has the file open."""
    with _LOCK.exclusive():
        store = open_store(db, create=False, lock_timeout_s=lock_timeout_s)
        try:
            yield store
        finally:
            store.close()


def data_version(db: str | Path) -> tuple[int, ...]:
    """A token that changes whenever a transaction is committed to the store (file and WAL stat)."""
    path = Path(db)
    out: list[int] = []
    for p in (path, path.with_name(path.name + ".wal")):
        try:
            st = os.stat(p)
            out += [st.st_mtime_ns, st.st_size]
        except FileNotFoundError:
            out += [0, 0]
    return tuple(out)
