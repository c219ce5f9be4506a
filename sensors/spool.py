"""The ingest spool: a durable, append-only queue of accepted batches between the HTTP endpoint and DuckDB.

DuckDB lets one process write a store at a time, and the dashboard and the CLI need the
store too. So the ingest server never holds the store: it acknowledges a batch once the
batch is committed to this spool, and a flusher moves spooled batches into DuckDB in short
write transactions, releasing the store between them (see ``sensors.server``).

The spool is SQLite in WAL mode with ``synchronous=FULL``: a commit returns once the WAL
is fsynced, so an acknowledged batch survives the server being killed, and the machine
losing power. One writer thread commits whatever batches are waiting in one transaction
(group commit: one fsync for many requests). Tables:

- ``pending(seq, batch_key, payload)``: batches not yet in DuckDB, in arrival order;
- ``seen(batch_key, content_sha256, received_us)``: every key accepted in the last
  ``retention_days``, so that a retried batch is answered "duplicate" at once, and a key
  reused for different content is refused (409). DuckDB's ``ingest_batches`` is the
  permanent ledger: replaying the spool after a crash never stores a batch twice;
- ``dead(seq, batch_key, payload, error)``: batches DuckDB refused (kept, never dropped).

A lock file keeps a second server off the same spool: each server of a store has its own
(named per port by default, ``spool_path_for``); the servers take turns at the store
(``sensors.server``), and the store's ``ingest_batches`` ledger keeps a batch that reached two
spools (a device retrying through a load balancer) from being stored twice.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import queue
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from sitetwin.data.errors import message_text
from sitetwin.data.i18n import N_
from sitetwin.sensors.batch import Batch, batch_from_json
from sitetwin.sensors.errors import SensorError

ACCEPTED, DUPLICATE, CONFLICT, FAILED = "accepted", "duplicate", "conflict", "failed"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS pending (seq INTEGER PRIMARY KEY AUTOINCREMENT, batch_key TEXT NOT NULL,
                                    payload BLOB NOT NULL, received_us INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS seen (batch_key TEXT PRIMARY KEY, content_sha256 TEXT NOT NULL,
                                 received_us INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS dead (seq INTEGER PRIMARY KEY, batch_key TEXT NOT NULL, payload BLOB NOT NULL,
                                 received_us INTEGER NOT NULL, error TEXT NOT NULL);
"""


@dataclass(frozen=True)
class Outcome:
    status: str                  # accepted | duplicate | conflict | failed
    error: str | None = None


@dataclass(frozen=True)
class Spooled:
    seq: int
    batch: Batch
    received_us: int


class Spool:
    """See the module docstring. Use ``with Spool(path) as spool:`` or call :meth:`close`."""

    def __init__(self, path: str | Path, *, retention_days: float = 7.0, max_group: int = 512):
        self.path = Path(path)
        self.retention_days = retention_days
        self.max_group = max_group
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_fh = open(self.path.with_name(self.path.name + ".lock"), "a+")
        try:
            fcntl.flock(self._lock_fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock_fh.seek(0)
            holder = self._lock_fh.read().strip()
            self._lock_fh.close()
            if holder.isdigit():
                raise SensorError(N_("{path}: another ingest server (pid {pid}) is using this spool; give each server "
                                     "of a store its own spool (--spool FILE, or a different --port)"),
                                  path=self.path, pid=holder) from None
            raise SensorError(N_("{path}: another ingest server is using this spool; give each server of "
                                 "a store its own spool (--spool FILE, or a different --port)"),
                              path=self.path) from None
        self._lock_fh.seek(0)
        self._lock_fh.truncate()
        self._lock_fh.write(str(os.getpid()))
        self._lock_fh.flush()
        self._reader = self._connect()
        self._reader.executescript(_SCHEMA)
        self._queue: queue.Queue = queue.Queue()
        self._closed = False
        self.commits = 0
        self.committed_batches = 0
        self._writer = threading.Thread(target=self._write_loop, name="spool-writer", daemon=True)
        self._writer.start()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30.0)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=FULL")
        return con

    # ------------------------------------------------------------------ appending (HTTP side)

    def submit(self, batch: Batch, received_us: int | None = None) -> Outcome:
        """Append a batch; returns once it is durable (or refused). Thread-safe."""
        done = threading.Event()
        box: list[Outcome] = []

        def resolve(outcome: Outcome) -> None:
            box.append(outcome)
            done.set()

        self._put(batch, received_us, resolve)
        done.wait()
        return box[0]

    async def submit_async(self, batch: Batch, received_us: int | None = None) -> Outcome:
        """Append a batch from the event loop; awaits durability without blocking the loop."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()

        def resolve(outcome: Outcome) -> None:
            loop.call_soon_threadsafe(_set, future, outcome)

        self._put(batch, received_us, resolve)
        return await future

    def _put(self, batch: Batch, received_us: int | None, resolve) -> None:
        if self._closed:
            resolve(Outcome(FAILED, "the spool is closed (server shutting down)"))
            return
        self._queue.put((batch, received_us or time.time_ns() // 1000, resolve))

    def _write_loop(self) -> None:
        con = self._connect()
        while True:
            item = self._queue.get()
            if item is None:
                break
            items = [item]
            stop = False
            while len(items) < self.max_group:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                items.append(nxt)
            outcomes = self._commit(con, items)
            for (_, _, resolve), outcome in zip(items, outcomes):
                resolve(outcome)
            if stop:
                break
        con.close()
        while True:   # anything queued while closing is refused, never left waiting
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                item[2](Outcome(FAILED, "the spool is closed (server shutting down)"))

    def _commit(self, con: sqlite3.Connection, items) -> list[Outcome]:
        outcomes: list[Outcome] = []
        try:
            con.execute("BEGIN IMMEDIATE")
            for batch, received_us, _ in items:
                row = con.execute("SELECT content_sha256 FROM seen WHERE batch_key = ?", (batch.batch_key,)).fetchone()
                if row is not None:
                    outcomes.append(Outcome(DUPLICATE) if row[0] == batch.content_sha256 else Outcome(CONFLICT))
                    continue
                con.execute("INSERT INTO seen (batch_key, content_sha256, received_us) VALUES (?, ?, ?)",
                            (batch.batch_key, batch.content_sha256, received_us))
                con.execute("INSERT INTO pending (batch_key, payload, received_us) VALUES (?, ?, ?)",
                            (batch.batch_key, batch.to_json(), received_us))
                outcomes.append(Outcome(ACCEPTED))
            con.execute("COMMIT")   # WAL + synchronous=FULL: durable when this returns
            self.commits += 1
            self.committed_batches += sum(o.status == ACCEPTED for o in outcomes)
            return outcomes
        except sqlite3.Error as exc:
            try:
                con.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            return [Outcome(FAILED, f"spool write failed: {message_text(exc)}") for _ in items]

    # ------------------------------------------------------------------ draining (flusher side)

    def pending(self, limit: int = 1000) -> list[Spooled]:
        """The oldest batches not yet in DuckDB, in arrival order."""
        rows = self._reader.execute("SELECT seq, payload, received_us FROM pending ORDER BY seq LIMIT ?",
                                    (int(limit),)).fetchall()
        return [Spooled(seq, batch_from_json(payload), received_us) for seq, payload, received_us in rows]

    def done(self, seqs: list[int]) -> None:
        """Forget batches now committed to DuckDB."""
        if not seqs:
            return
        with _transaction(self._reader):
            self._reader.executemany("DELETE FROM pending WHERE seq = ?", [(s,) for s in seqs])

    def bury(self, item: Spooled, error: str) -> None:
        """Move a batch DuckDB refused out of the queue, keeping it for a person to look at."""
        with _transaction(self._reader):
            self._reader.execute("INSERT OR REPLACE INTO dead (seq, batch_key, payload, received_us, error) "
                                 "VALUES (?, ?, ?, ?, ?)", (item.seq, item.batch.batch_key, item.batch.to_json(),
                                                            item.received_us, error))
            self._reader.execute("DELETE FROM pending WHERE seq = ?", (item.seq,))

    def prune(self, now_us: int | None = None) -> int:
        """Forget idempotency keys older than the retention (DuckDB's ledger still knows them)."""
        now_us = now_us or time.time_ns() // 1000
        cutoff = now_us - int(self.retention_days * 86_400 * 1_000_000)
        with _transaction(self._reader):
            cur = self._reader.execute("DELETE FROM seen WHERE received_us < ? AND batch_key NOT IN "
                                       "(SELECT batch_key FROM pending)", (cutoff,))
        return cur.rowcount

    def counts(self) -> dict[str, int]:
        pending = self._reader.execute("SELECT count(*) FROM pending").fetchone()[0]
        dead = self._reader.execute("SELECT count(*) FROM dead").fetchone()[0]
        return {"pending_batches": int(pending), "dead_batches": int(dead), "spool_commits": self.commits,
                "spooled_batches": self.committed_batches}

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._writer.join()
        self._reader.close()
        try:
            fcntl.flock(self._lock_fh, fcntl.LOCK_UN)
        finally:
            self._lock_fh.close()


class _transaction:
    def __init__(self, con: sqlite3.Connection):
        self.con = con

    def __enter__(self):
        self.con.execute("BEGIN IMMEDIATE")
        return self.con

    def __exit__(self, exc_type, *exc):
        self.con.execute("ROLLBACK" if exc_type else "COMMIT")


def _set(future: asyncio.Future, outcome: Outcome) -> None:
    if not future.done():
        future.set_result(outcome)


DEFAULT_PORT = 8765


def spool_path_for(db: str | Path, port: int | None = None) -> Path:
    """Where a store's ingest spool lives by default, beside it: ``<db>.spool/ingest.sqlite`` for the
    server on the default port (or no port), ``<db>.spool/ingest-<port>.sqlite`` for one on another
    port, so that several servers of one store never share a spool and a server restarted on its
    port finds what it acknowledged."""
    db = Path(db)
    name = "ingest.sqlite" if port in (None, DEFAULT_PORT) else f"ingest-{int(port)}.sqlite"
    return db.parent / f"{db.name}.spool" / name

