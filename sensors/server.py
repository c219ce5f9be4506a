"""The ingest server: devices post JSON batches over HTTP; the twin's DuckDB store stays shared.

The design problem: DuckDB lets one process write a store at a time (and while it writes,
no other process may even read it), but the dashboard keeps reading the same store and the
CLI occasionally writes to it. A server holding the store open would lock everyone out. So:

1. A request is authenticated by its device's API token (``Authorization: Bearer ...``;
   only token digests are stored), checked whole (``sensors.batch``; one bad item refuses
   the batch, nothing of it is kept), and appended to the spool (``sensors.spool``: SQLite
   WAL, fsync on commit, group commit across concurrent requests). Only then is it
   acknowledged (200). The server never opens the store on the request path.
2. A flusher thread starts a flush every ``flush_interval_s`` (0.5 s): it opens the store,
   moves every spooled batch into it in one short transaction
   (``sensors.timeseries.store_batches``: idempotent by batch key and by reading),
   re-evaluates the warnings of the series that changed, and closes the store again. After
   each flush the store stays free for at least ``min_release_s`` (0.25 s; readers poll a
   held store every 0.1 s), for the dashboard and the CLI; while someone else holds it, the
   flusher waits its turn (``lock_timeout_s``) and the spool keeps taking batches.
3. After a crash (kill -9, power loss), the spool still holds every acknowledged batch not
   yet flushed; the restarted server flushes them. A batch flushed just before the crash
   but not yet removed from the spool is flushed again and skipped: its key is in
   ``ingest_batches``. So no acknowledged reading is lost and none is stored twice.

Several servers, one store: two or more servers (different ports, a load balancer in front)
may feed one store, each with its own spool (``<db>.spool/ingest-<port>.sqlite``; a spool
another live server holds is refused with a message). Their flushers take turns
(:class:`FlushTurn`: an ``flock`` beside the store, bounded waits with jitter, a busy store
backs the loop off up to ``max_backoff_s``), and the store stays free for ``min_release_s``
between any two flushes. A batch that reaches both servers (a device retrying through the
load balancer) is stored once: its key is in ``ingest_batches`` when the second flushes. A
batch id reused for other content at the two servers cannot get a 409 (neither spool knows
the other): the content flushed first is kept, the other is refused at flush time into its
spool's ``dead`` table with the reason (``conflicting_batches`` in the health details).
Warnings are evaluated inside each flush, while the flusher holds the store, against what is
stored, from ``evaluate_overlap_s`` before the new readings: a warning already raised by
the other server's flush (the first half of an episode) is found and extended, not raised
again, and its finding is not raised twice.

Devices and tokens are re-read every ``refresh_s`` (2 s): a device registered with the CLI
while the server runs can post within that. Warnings are computed in the flush that stores
their triggering reading: within one flush
interval plus the flush itself of the acknowledgement (``bench/ingest.py`` measures it).
Every ``silence_check_s`` the flusher also looks for devices that went quiet.

Endpoints: ``POST /v1/batches`` (see ``sensors.batch`` for the JSON), ``POST /v1/training``
(training records of the token's site, see ``sensors.training``), ``GET /v1/health``.
Answers: 200 stored (``duplicate: true`` when the batch was stored before), 400 malformed
(not UTF-8 JSON, nested too deep, not the documented shape), 401 no or unknown token,
403 a ``device_id`` that is not the token's own (the same answer whether that device exists
or not, naming no device), 409 batch id reused for different content, 413 too large,
422 refused content (each problem names its item), 503 spool unavailable. A request never
gets a 500 for what it sends: ``tests/fuzz/test_fuzz_ingest.py`` holds the server to that.

Training batches (``{"batch_id": ..., "records": [...]}``) are few and small, and a refusal must
say which worker the site does not know, so they are checked against the store and stored at
once, in the flushers' turn and in one transaction, rather than spooled: 200 stored
(``duplicate: true`` for a batch id stored before with the same content), 403 a record naming
another site than the token's, 409 a batch id reused for other content, 422 a refused record
(unknown worker, dates out of order, a bad score: each problem names ``records[i].field``),
503 the store stayed busy (send it again). Nothing of a refused batch is stored.

``GET /v1/health`` answers ``{"status": "ok"}`` to anyone (a load balancer's probe). The
counters, the spool's state and the last error are for the operator only: they are added
when the request carries ``Authorization: Bearer <status token>``, the secret the operator
sets in ``SITETWIN_INGEST_STATUS_TOKEN`` when starting the server (``ServerConfig.status_token``).
Without one they are never served over HTTP (the server's log has the errors). A device token
does not unlock them: a device sees nothing of the other devices.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import fcntl
import hashlib
import hmac
import logging
import os
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sitetwin.data.clock import utcnow
from sitetwin.data.errors import Note, Phrase, SitetwinError, message_text
from sitetwin.data.evidence import FindingSink
from sitetwin.data.i18n import N_
from sitetwin.sensors.batch import BatchError, DeviceRef, parse_batch
from sitetwin.sensors.config import IngestLimits, default_limits
from sitetwin.sensors.registry import token_digest
from sitetwin.sensors.spool import ACCEPTED, CONFLICT, DUPLICATE, Spool, spool_path_for

if TYPE_CHECKING:
    from sitetwin.sensors.timeseries import StoreReport

log = logging.getLogger("sitetwin.ingest")


@dataclass(frozen=True)
class ServerConfig:
    db: Path
    spool: Path | None = None            # default: <db>.spool/ingest.sqlite, ingest-<port>.sqlite off port 8765
    port: int | None = None              # the port served (names the default spool)
    flush_interval_s: float = 0.5        # how often spooled batches move into the store (start to start)
    min_release_s: float = 0.25          # the store stays closed at least this long between flushes
                                         # (readers retry every 0.1 s, so none misses the window)
    max_flush_batches: int = 5000        # at most this many batches per flush transaction
    refresh_s: float = 2.0               # how often the device and token list is re-read
    silence_check_s: float = 10.0        # how often silent devices are looked for
    lock_timeout_s: float = 5.0          # how long a flush waits for another writer before trying later
    max_backoff_s: float = 5.0           # after a flush found the store busy, retries back off up to this (jittered)
    evaluate: bool = True                # compute warnings as data arrive
    evaluate_overlap_s: float = 60.0     # warnings are re-evaluated from this long before a flush's new readings,
                                         # so an episode split across flushes (of two servers, or late data) is
                                         # one warning, extended, not two
    status_token: str | None = field(default=None, repr=False)   # unlocks /v1/health's details (operator only)

    @property
    def spool_path(self) -> Path:
        return Path(self.spool) if self.spool else spool_path_for(self.db, self.port)

    @property
    def turn_path(self) -> Path:
        """The lock file the ingest servers of one store take turns on (one flushes at a time)."""
        return spool_path_for(Path(self.db).resolve()).with_name("flush.lock")


class Ingestor:
    """The spool, the device cache and the flusher thread behind the HTTP app.

    ``sink`` raises findings for the warnings the flushes find (as each site's
    ``auto_findings`` says); the application passes ``oversight.raising.raise_drafts``.
    """

    def __init__(self, config: ServerConfig, sink: FindingSink | None = None):
        self.config = config
        self.sink = sink
        self.spool: Spool | None = None
        self.devices: dict[str, DeviceRef] = {}
        self._tokens: dict[str, str] = {}            # sha256 -> device_id
        self._limits: dict[str, IngestLimits] = {}
        self._default_limits = default_limits().ingest
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_refresh = 0.0
        self._next_silence = 0.0
        self._next_prune = 0.0
        self._retry_touched: StoreReport | None = None
        self._turn: FlushTurn | None = None
        self._flush_lock = threading.Lock()
        self.busy_streak = 0                         # flushes in a row that found the store busy
        self._count_lock = threading.Lock()
        self.stats: dict[str, Any]
        self.stats = {"acknowledged_batches": 0, "acknowledged_readings": 0, "acknowledged_events": 0,
                      "duplicate_batches": 0, "refused": {}, "flushes": 0, "flushed_batches": 0,
                      "stored_readings": 0, "stored_events": 0, "skipped_copies": 0, "last_flush_at": None,
                      "last_flush_s": None, "max_flush_s": 0.0, "store_busy": 0, "last_error": None,
                      "warnings_changed": 0, "started_at": None, "already_stored_batches": 0,
                      "conflicting_batches": 0, "turn_waits": 0, "max_turn_wait_s": 0.0}

    # ------------------------------------------------------------------ lifecycle

    def open_spool(self) -> Spool:
        """Take this server's spool (a :class:`SensorError` naming it when another live server holds it)."""
        if self.spool is None:
            self.spool = Spool(self.config.spool_path)
        return self.spool

    def start(self) -> None:
        from sitetwin.data.store import open_store

        spool = self.open_spool()
        self._turn = FlushTurn(self.config.turn_path, self.config.min_release_s)
        with open_store(self.config.db, lock_timeout_s=max(self.config.lock_timeout_s, 30.0)) as store:
            self._refresh(store)
        self.stats["started_at"] = utcnow().isoformat() + "Z"
        self._thread = threading.Thread(target=self._loop, name="ingest-flusher", daemon=True)
        self._thread.start()
        log.info("ingest: %d devices, spool %s (%d batches waiting)", len(self.devices), self.config.spool_path,
                 spool.counts()["pending_batches"])

    def stop(self) -> None:
        """Stop taking batches, flush what is spooled (if the store is free), close."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
        if self.spool is not None:
            self.spool.close()
        if self._turn is not None:
            self._turn.close()

    # ------------------------------------------------------------------ request side

    def authenticate(self, token: str) -> DeviceRef | None:
        # Looked up by digest: timing reveals nothing useful, as a caller cannot choose digests.
        device_id = self._tokens.get(token_digest(token))
        return None if device_id is None else self.devices.get(device_id)

    def limits_for(self, site_code: str) -> IngestLimits:
        return self._limits.get(site_code, self._default_limits)

    def count(self, key: str, n: int = 1) -> None:
        with self._count_lock:
            self.stats[key] = self.stats.get(key, 0) + n

    def refused(self, status: int) -> None:
        with self._count_lock:
            self.stats["refused"][str(status)] = self.stats["refused"].get(str(status), 0) + 1

    def may_see_status(self, authorization: str) -> bool:
        """Whether an ``Authorization`` header carries the operator's status token (compared in constant time)."""
        expected = self.config.status_token
        if not expected or not authorization.lower().startswith("bearer "):
            return False
        given = authorization[7:].strip().encode("utf-8", "surrogateescape")
        return hmac.compare_digest(hashlib.sha256(given).digest(), hashlib.sha256(expected.encode()).digest())

    def store_training(self, parsed: dict, device_id: str) -> dict:
        """Store a checked training batch (``sensors.training.parse_training_batch``) now, in the
        flushers' turn, in one transaction. Raises ``TrainingError`` (refused) or ``SitetwinError``
        (the store stayed busy)."""
        from sitetwin.data.errors import StoreError
        from sitetwin.data.store import open_store
        from sitetwin.sensors.training import store_records

        with self._flush_lock:
            if self._turn is None:
                self._turn = FlushTurn(self.config.turn_path, self.config.min_release_s)
            if self._turn.acquire(self.config.lock_timeout_s) is None:
                raise StoreError(N_("the store is busy (another ingest server's flush); send the batch again later"))
            try:
                with open_store(self.config.db, lock_timeout_s=self.config.lock_timeout_s) as store:
                    report = store_records(store, parsed["records"], import_key=parsed["import_key"], source="http",
                                           origin=device_id, content_sha256=parsed["content_sha256"])
                    if self.config.evaluate and report["inserted"] + report["updated"]:
                        # the gate's trained status comes from the records: the sites' attendance warnings again,
                        # as `sitetwin training import` does (a lapsed course warns, a valid one withdraws)
                        from sitetwin.sensors.warnings import evaluate_warnings

                        for site in sorted({r["site_code"] for r in parsed["records"]}):
                            evaluate_warnings(store, site_code=site, device_ids=[], sink=self.sink)
            finally:
                self._turn.release()
        self.count("stored_training_records", report["inserted"] + report["updated"])
        return report

    def health(self) -> dict:
        counts = self.spool.counts() if self.spool is not None else {}
        with self._count_lock:
            return {**self.stats, "refused": dict(self.stats["refused"]), **counts, "devices": len(self.devices)}

    # ------------------------------------------------------------------ flusher

    def _loop(self) -> None:
        # Flushes start every flush_interval_s; a slow one (a busy machine) is followed by at least
        # min_release_s with the store closed, so that readers always get their turn.
        wait = self.config.flush_interval_s
        while not self._stop.is_set():
            self._wake.wait(wait)
            self._wake.clear()
            started = time.perf_counter()
            try:
                self.flush_once()
            except Exception as exc:  # noqa: BLE001 - the flusher must outlive a bad cycle; batches stay spooled
                self.busy_streak += 1
                self.stats["last_error"] = Note(N_("flush failed: {error}"), error=_cause(exc))
                log.exception("ingest: flush failed; the batches stay spooled, retrying")
            elapsed = time.perf_counter() - started
            wait = max(self.config.min_release_s, self.config.flush_interval_s - elapsed)
            if self.busy_streak:
                # the store (or the turn) was busy: back off, bounded, with jitter so that servers
                # that found it busy together do not come back together
                backoff = min(self.config.max_backoff_s, self.config.flush_interval_s * 2 ** self.busy_streak)
                wait = max(wait, backoff * random.uniform(0.5, 1.0))
        # last flush on the way out; whatever cannot be stored now stays spooled for next time
        while self.spool is not None and self.spool.counts()["pending_batches"] and self.flush_once(final=True):
            pass

    def flush_once(self, *, final: bool = False) -> int:
        """One flush cycle; returns how many batches it moved into the store.

        The ingest servers of one store take turns (:class:`FlushTurn`): this waits for the turn,
        then for the store (``lock_timeout_s`` each); when either stays busy, nothing is lost:
        the batches stay spooled and ``busy_streak`` makes the loop back off.
        """
        with self._flush_lock:
            if self._turn is None:
                self._turn = FlushTurn(self.config.turn_path, self.config.min_release_s)
            return self._flush_in_turn(final)

    def _flush_in_turn(self, final: bool) -> int:

        assert self.spool is not None and self._turn is not None
        items = self.spool.pending(self.config.max_flush_batches)
        now = time.monotonic()
        refresh = now >= self._next_refresh
        silence = self.config.evaluate and now >= self._next_silence and not final
        if not items and not refresh and not silence and self._retry_touched is None:
            return 0
        started = time.perf_counter()
        phases: dict[str, float] = {}
        waited = self._turn.acquire(self.config.lock_timeout_s)
        if waited is None:
            self.busy_streak += 1
            with self._count_lock:
                self.stats["store_busy"] += 1
                self.stats["last_error"] = Note(N_("another ingest server of {db} kept its flush turn for "
                                                   "{seconds:g} s"), db=self.config.db,
                                                seconds=self.config.lock_timeout_s)
            log.warning("ingest: %s; %d batches stay spooled", self.stats["last_error"], len(items))
            return 0
        with self._count_lock:
            self.stats["turn_waits"] += waited > 0.001
            self.stats["max_turn_wait_s"] = round(max(self.stats["max_turn_wait_s"], waited), 4)
        phases["turn"] = time.perf_counter() - started
        try:
            return self._flush_store(items, final, now, refresh, silence, started, phases)
        finally:
            self._turn.release()

    def _flush_store(self, items, final: bool, now: float, refresh: bool, silence: bool, started: float,
                     phases: dict[str, float]) -> int:
        from sitetwin.data.store import open_store

        assert self.spool is not None
        try:
            store = open_store(self.config.db, lock_timeout_s=self.config.lock_timeout_s)
        except SitetwinError as exc:
            self.busy_streak += 1
            with self._count_lock:
                self.stats["store_busy"] += 1
                self.stats["last_error"] = Note.of(exc)
            log.warning("ingest: %s; %d batches stay spooled", message_text(exc), len(items))
            return 0
        self.busy_streak = 0
        moved = 0
        phases["open"] = time.perf_counter() - started - sum(phases.values())
        try:
            touched: StoreReport | None = None
            if items:
                moved, touched = self._store(store, items)
            phases["store"] = time.perf_counter() - started - sum(phases.values())
            if self.config.evaluate:
                self._evaluate(store, touched)
                phases["evaluate"] = time.perf_counter() - started - sum(phases.values())
                if silence:
                    from sitetwin.sensors.warnings import check_silence

                    try:
                        report = check_silence(store, sink=self.sink)
                        self.count("warnings_changed", report.inserted + report.updated)
                    except Exception as exc:  # noqa: BLE001 - keep ingesting; the next sweep retries
                        self.stats["last_error"] = Note(N_("silence check failed: {error}"), error=_cause(exc))
                        log.exception("ingest: silence check failed")
                    self._next_silence = now + self.config.silence_check_s
            if refresh:
                self._refresh(store)
                self._next_refresh = now + self.config.refresh_s
            if now >= self._next_prune:
                self.spool.prune()
                self._next_prune = now + 3600.0
            phases["silence_refresh"] = time.perf_counter() - started - sum(phases.values())
        finally:
            store.close()
        elapsed = time.perf_counter() - started
        phases["close"] = elapsed - sum(phases.values())
        with self._count_lock:
            self.stats["flushes"] += 1
            self.stats["last_flush_at"] = utcnow().isoformat() + "Z"
            self.stats["last_flush_s"] = round(elapsed, 4)
            if elapsed >= self.stats["max_flush_s"]:
                self.stats["max_flush_s"] = round(elapsed, 4)
                self.stats["max_flush_phases_s"] = {k: round(v, 4) for k, v in phases.items()}
                self.stats["max_flush_batches"] = len(items)
        return moved

    def _store(self, store, items) -> tuple[int, StoreReport]:
        from sitetwin.sensors.timeseries import StoreReport, store_batches

        assert self.spool is not None       # flush_once runs only once started
        items = self._set_aside_conflicts(store, items)
        if not items:
            return 0, StoreReport()
        received = [_utc(i.received_us) for i in items]
        try:
            report = store_batches(store, [i.batch for i in items], source="http", received_at=received)
            self.spool.done([i.seq for i in items])
            good = items
        except Exception as exc:  # noqa: BLE001 - isolate the batch the store refuses, keep the rest
            log.warning("ingest: flush of %d batches failed (%s); storing them one by one", len(items),
                        message_text(exc))
            report, good = StoreReport(), []
            for item in items:
                try:
                    one = store_batches(store, [item.batch], source="http", received_at=[_utc(item.received_us)])
                except Exception as exc_one:  # noqa: BLE001
                    self.spool.bury(item, message_text(exc_one))
                    self.stats["last_error"] = Note(N_("batch {batch} refused by the store: {error}"),
                                                    batch=item.batch.batch_key, error=_cause(exc_one))
                    continue
                self.spool.done([item.seq])
                good.append(item)
                report = _combine(report, one)
        with self._count_lock:
            self.stats["flushed_batches"] += len(good)
            self.stats["stored_readings"] += report.readings
            self.stats["stored_events"] += report.events
            self.stats["skipped_copies"] += report.copies
            self.stats["already_stored_batches"] += report.duplicate_batches
        return len(good), report

    def _set_aside_conflicts(self, store, items):
        """Spooled batches whose key the store already holds with other content go to the dead letters.

        One server answers 409 to a batch id reused for other content, but two servers each see only
        their own spool: a device that sends one batch id with two contents to two servers gets two
        acknowledgements. The store keeps the first content flushed (by either server); the other is
        refused here, when its server flushes: kept in its spool's ``dead`` table with the reason,
        counted in ``conflicting_batches`` and logged, never stored and never silently dropped. The same
        key with the same content is a retry: ``store_batches`` skips it (``already_stored_batches``).
        """
        import pyarrow as pa

        keys = pa.table({"batch_key": [i.batch.batch_key for i in items]})
        store.con.register("_ingest_keys", keys)
        try:
            stored = {r[0]: r[1] for r in store.execute("SELECT b.batch_key, b.content_sha256 FROM ingest_batches b "
                                                         "SEMI JOIN _ingest_keys k USING (batch_key)")}
        finally:
            store.con.unregister("_ingest_keys")
        keep = []
        for item in items:
            sha = stored.get(item.batch.batch_key)
            if sha is None or sha == item.batch.content_sha256:
                keep.append(item)
                continue
            error = Note(N_("batch {batch} refused at flush: that batch id was stored before with other content "
                            "(through another ingest server of this store); give new content a new batch_id"),
                         batch=item.batch.batch_key)
            assert self.spool is not None
            self.spool.bury(item, message_text(error))      # stored: English
            with self._count_lock:
                self.stats["conflicting_batches"] += 1
                self.stats["last_error"] = error
            log.warning("ingest: %s", error)
        return keep

    def _evaluate(self, store, touched) -> None:
        from sitetwin.sensors.timeseries import StoreReport
        from sitetwin.sensors.warnings import evaluate_touched

        pending = self._retry_touched
        if touched is not None:
            pending = touched if pending is None else _combine(pending, touched)
        if pending is None or (not pending.touched and not pending.touched_sites):
            self._retry_touched = None
            return
        overlap = int(self.config.evaluate_overlap_s * 1_000_000)
        # from a little earlier than the new readings: the end of an episode the other server (or an
        # earlier flush) stored is then in the window, and the continuation extends its warning instead
        # of opening a second one beside it (sensors.warnings extends only warnings still running at the
        # window's start)
        window = dataclasses.replace(pending, touched={k: v - overlap for k, v in pending.touched.items()}) \
            if overlap > 0 and pending.touched else pending
        try:
            report = evaluate_touched(store, window, sink=self.sink)
            self._retry_touched = None
            self.count("warnings_changed", report.inserted + report.updated)
        except Exception as exc:  # noqa: BLE001 - readings are stored; evaluate them again next cycle
            self._retry_touched = StoreReport(touched=pending.touched, touched_sites=pending.touched_sites)
            self.stats["last_error"] = Note(N_("warning evaluation failed: {error}"), error=_cause(exc))
            log.exception("ingest: warning evaluation failed; retrying next cycle")

    def _refresh(self, store) -> None:
        from sitetwin.sensors.limits import site_limits

        devices = {r["device_id"]: DeviceRef(r["device_id"], r["site_code"], r["device_type"], r["installed_on"],
                                             r["removed_on"])
                   for r in store.rows("SELECT device_id, site_code, device_type, installed_on, removed_on "
                                       "FROM devices")}
        tokens = {r["token_sha256"]: r["device_id"] for r in store.rows(
            "SELECT token_sha256, device_id FROM device_tokens WHERE revoked_at IS NULL")}
        limits = {site: site_limits(store, site).ingest for site in {d.site_code for d in devices.values()}}
        self.devices, self._tokens, self._limits = devices, tokens, limits


class FlushTurn:
    """Whose turn it is to write the store, among the ingest servers of one store.

    DuckDB lets one process write at a time, and a second opener polls for the lock; two flushers
    polling the store against each other would also starve the workbench. So the servers of a store
    take turns on an ``flock`` of one file beside it (``<db>.spool/flush.lock``): a flusher polls for
    the turn with growing, jittered sleeps (5..50 ms) up to a deadline, opens the store, flushes,
    closes it and gives the turn back stamped with its pid and the time. A server taking the turn
    from another first waits until ``min_release_s`` after that stamp, so that readers get the store
    between any two flushes, not only between two of one server. A killed holder's lock goes with
    its process.
    """

    def __init__(self, path: Path, min_release_s: float):
        self.path = Path(path)
        self.min_release_s = min_release_s
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "a+")

    def acquire(self, timeout_s: float) -> float | None:
        """Wait for the turn; the seconds waited, or None when another server kept it past ``timeout_s``."""
        started = time.monotonic()
        deadline = started + timeout_s
        delay = 0.005
        while True:
            try:
                fcntl.flock(self._fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                if time.monotonic() >= deadline:
                    return None
                time.sleep(delay * random.uniform(0.5, 1.5))
                delay = min(delay * 2, 0.05)
        self._fh.seek(0)
        stamp = self._fh.read().split()
        if len(stamp) == 2 and stamp[0] != str(os.getpid()):
            try:
                rest = float(stamp[1]) + self.min_release_s - time.time()
            except ValueError:
                rest = 0.0
            if 0 < rest <= self.min_release_s:
                time.sleep(rest)
        return time.monotonic() - started

    def release(self) -> None:
        try:
            self._fh.seek(0)
            self._fh.truncate()
            self._fh.write(f"{os.getpid()} {time.time():.6f}")
            self._fh.flush()
        finally:
            fcntl.flock(self._fh, fcntl.LOCK_UN)

    def close(self) -> None:
        self._fh.close()


def _combine(a, b):
    from sitetwin.sensors.timeseries import StoreReport

    touched = dict(a.touched)
    for k, v in b.touched.items():
        touched[k] = min(v, touched.get(k, v))
    sites = dict(a.touched_sites)
    for k, v in b.touched_sites.items():
        sites[k] = min(v, sites.get(k, v))
    return StoreReport(batches=a.batches + b.batches, duplicate_batches=a.duplicate_batches + b.duplicate_batches,
                       readings=a.readings + b.readings, copies=a.copies + b.copies, events=a.events + b.events,
                       untrusted=a.untrusted + b.untrusted, touched=touched, touched_sites=sites,
                       stored_keys=a.stored_keys + b.stored_keys)


def _utc(us: int) -> dt.datetime:
    return (dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=int(us)))


# ---------------------------------------------------------------------- HTTP

def create_app(config: ServerConfig, ingestor: Ingestor | None = None, *, sink: FindingSink | None = None):
    """The Starlette ASGI app; its lifespan starts and stops the ingestor (made with ``sink`` when not given)."""
    import contextlib

    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    ingestor = ingestor or Ingestor(config, sink)

    def refuse(status: int, message: str, problems: list[str] | None = None) -> JSONResponse:
        ingestor.refused(status)
        body: dict[str, Any] = {"error": message}
        if problems:
            body["problems"] = problems
        return JSONResponse(body, status_code=status)

    async def device_and_body(request: Request) -> tuple[Any, Any, bytes] | JSONResponse:
        """The device whose token the request carries, its site's limits and the request's body (at most the
        limit); or the refusal: 401 without a known token, 413 for a body over the limit."""
        auth = request.headers.get("authorization", "")
        if not auth.lower().startswith("bearer ") or not auth[7:].strip():
            return refuse(401, "no device token: send 'Authorization: Bearer <token>' (sitetwin device token ID)")
        device = ingestor.authenticate(auth[7:].strip())
        if device is None:
            return refuse(401, "unknown or revoked device token")
        limits = ingestor.limits_for(device.site_code)
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limits.max_body_bytes:
            return refuse(413, f"batch of {declared} bytes is larger than the limit of {limits.max_body_bytes}; "
                               f"send smaller batches")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limits.max_body_bytes:
                return refuse(413, f"batch larger than the limit of {limits.max_body_bytes} bytes; "
                                   f"send smaller batches")
        return device, limits, bytes(body)

    async def post_batch(request: Request) -> JSONResponse:
        got = await device_and_body(request)
        if isinstance(got, JSONResponse):
            return got
        device, limits, body = got
        try:
            batch = parse_batch(body, token_device=device, devices=ingestor.devices, limits=limits,
                                now_us=time.time_ns() // 1000)
        except BatchError as exc:
            return refuse(exc.status, message_text(exc), exc.problems)
        assert ingestor.spool is not None       # the app's lifespan started the ingestor
        outcome = await ingestor.spool.submit_async(batch)
        if outcome.status == CONFLICT:
            return refuse(409, f"batch_id {batch.batch_id} was used before for different content; "
                               f"give new content a new batch_id")
        if outcome.status not in (ACCEPTED, DUPLICATE):
            return refuse(503, f"batch not stored: {outcome.error}; send it again later")
        if outcome.status == DUPLICATE:
            ingestor.count("duplicate_batches")
        else:
            ingestor.count("acknowledged_batches")
            ingestor.count("acknowledged_readings", batch.reading_count)
            ingestor.count("acknowledged_events", batch.event_count)
        return JSONResponse({"batch_id": batch.batch_id, "device_id": batch.device_id,
                             "readings": batch.reading_count, "events": batch.event_count,
                             "duplicate": outcome.status == DUPLICATE})

    async def post_training(request: Request) -> JSONResponse:
        import anyio

        from sitetwin.sensors.training import TrainingError, parse_training_batch

        got = await device_and_body(request)
        if isinstance(got, JSONResponse):
            return got
        device, limits, body = got
        try:
            parsed = parse_training_batch(body, device_id=device.device_id, site_code=device.site_code,
                                          today=utcnow().date(), max_body_bytes=limits.max_body_bytes)
            report = await anyio.to_thread.run_sync(ingestor.store_training, parsed, device.device_id)
        except TrainingError as exc:
            return refuse(exc.status, message_text(exc), exc.problems)
        except SitetwinError as exc:
            return refuse(503, f"training not stored: {message_text(exc)}")
        return JSONResponse({"batch_id": parsed["batch_id"], **report})

    async def health(request: Request) -> JSONResponse:
        if ingestor.may_see_status(request.headers.get("authorization", "")):
            return JSONResponse({"status": "ok", **ingestor.health()})
        return JSONResponse({"status": "ok"})

    @contextlib.asynccontextmanager
    async def lifespan(app):
        import anyio

        await anyio.to_thread.run_sync(ingestor.start)
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(ingestor.stop)

    app = Starlette(routes=[Route("/v1/batches", post_batch, methods=["POST"]),
                            Route("/v1/training", post_training, methods=["POST"]),
                            Route("/v1/health", health, methods=["GET"])], lifespan=lifespan)
    app.state.ingestor = ingestor
    return app


def _cause(exc: BaseException) -> Phrase | str:
    """What went wrong in ``exc`` as a piece of a status line (``stats["last_error"]``, a
    :class:`~sitetwin.data.errors.Note`): our own errors read in the reader's language, others as given."""
    return Phrase(exc.template, **exc.fields) if isinstance(exc, SitetwinError) else str(exc)


def serve(config: ServerConfig, *, host: str = "127.0.0.1", port: int = 8765, log_level: str = "warning",
          sink: FindingSink | None = None) -> None:
    """Run the ingest server until interrupted (SIGINT/SIGTERM flush the spool and stop); findings through ``sink``."""
    import uvicorn

    logging.basicConfig(level=getattr(logging, log_level.upper(), logging.WARNING),
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if config.spool is None and config.port is None:
        config = dataclasses.replace(config, port=port)
    ingestor = Ingestor(config, sink)
    ingestor.open_spool()      # a spool another live server holds: one clear error, before binding the port
    app = create_app(config, ingestor)
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False, lifespan="on",
                timeout_graceful_shutdown=10)
