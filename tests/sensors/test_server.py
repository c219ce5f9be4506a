"""The ingest server over real loopback HTTP, in its own process, sharing the store with this one."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from sitetwin.data.store import open_store

REPO = Path(__file__).resolve().parents[2]
SITE = "S1"
STATUS_TOKEN = "status-secret-for-the-tests"     # unlocks /v1/health's counters (SITETWIN_INGEST_STATUS_TOKEN)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A `sitetwin ingest serve` process on a store with a crane, a dust monitor and a gate."""

    def __init__(self, folder: Path, flush_interval: float = 0.2):
        from sitetwin.data.sites import upsert_site
        from sitetwin.sensors.registry import add_device, issue_token

        self.folder = folder
        self.db = folder / "site.duckdb"
        self.flush_interval = flush_interval
        with open_store(self.db) as store, store.transaction():
            upsert_site(store, SITE)
            add_device(store, "CR1", site_code=SITE, device_type="crane", position_m=(0, 0, 0), interval_s=5.0,
                       config={"geometry": {"jib_height_m": 40, "jib_length_m": 50}})
            add_device(store, "DU1", site_code=SITE, device_type="dust", position_m=(5, 5, 2), interval_s=60.0)
            self.tokens = {d: issue_token(store, d) for d in ("CR1", "DU1")}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = None
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sitetwin.app.cli", "ingest", "serve", "--db", str(self.db),
             "--port", str(self.port), "--flush-interval", str(self.flush_interval)], cwd=REPO,
            stdout=subprocess.DEVNULL, stderr=open(self.folder / "server.log", "ab"),
            env={**os.environ, "SITETWIN_INGEST_STATUS_TOKEN": STATUS_TOKEN})
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/v1/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError((self.folder / "server.log").read_text())

    def post(self, body, token: str | None = "CR1") -> httpx.Response:
        headers = {} if token is None else {"Authorization": f"Bearer {self.tokens.get(token, token)}"}
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return httpx.post(f"{self.url}/v1/batches", content=content, headers=headers, timeout=30)

    def health(self) -> dict:
        return httpx.get(f"{self.url}/v1/health", headers={"Authorization": f"Bearer {STATUS_TOKEN}"},
                         timeout=10).json()

    def drained(self, timeout_s: float = 60.0) -> dict:
        """Wait until the spool is empty and one more flush cycle has finished (so its warnings are in)."""
        deadline = time.monotonic() + timeout_s
        seen = None
        while time.monotonic() < deadline:
            health = self.health()
            if seen is None and health["pending_batches"] == 0:
                seen = health["flushes"]
            elif seen is not None and health["flushes"] > seen:
                return health
            time.sleep(0.05)
        raise AssertionError(f"spool not drained: {self.health()}")

    def count(self, sql: str, params=None):
        with open_store(self.db, read_only=True, lock_timeout_s=30) as store:
            return store.scalar(sql, params)

    def stop(self, sig=signal.SIGINT) -> None:
        self.proc.send_signal(sig)
        self.proc.wait(timeout=60)


def readings(start: dt.datetime, n: int, channel="load_pct", value=40.0):
    return [{"at": (start + dt.timedelta(seconds=i)).isoformat(), "channel": channel,
             "value": value if not callable(value) else value(i)} for i in range(n)]


def recent(seconds_ago: float = 60.0) -> dt.datetime:
    return dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds_ago)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("ingest"))
    yield srv
    srv.stop()


def test_a_batch_is_acknowledged_then_stored_and_the_store_stays_readable(server):
    before = server.count("SELECT count(*) FROM readings")
    answer = server.post({"batch_id": "ok-1", "readings": readings(recent(), 20)})
    assert answer.status_code == 200
    assert answer.json() == {"batch_id": "ok-1", "device_id": "CR1", "readings": 20, "events": 0, "duplicate": False}
    server.drained()
    assert server.count("SELECT count(*) FROM readings") == before + 20     # read from this process, server running
    assert server.count("SELECT source FROM ingest_batches WHERE batch_key = 'CR1/ok-1'") == "http"


def test_the_same_batch_twice_is_stored_once_and_a_reused_id_is_a_conflict(server):
    body = {"batch_id": "dup-1", "readings": readings(recent(120), 5)}
    first, second = server.post(body), server.post(body)
    assert (first.status_code, second.status_code) == (200, 200)
    assert (first.json()["duplicate"], second.json()["duplicate"]) == (False, True)
    changed = server.post({"batch_id": "dup-1", "readings": readings(recent(120), 6)})
    assert changed.status_code == 409 and "different content" in changed.json()["error"]
    server.drained()
    assert server.count("SELECT readings FROM ingest_batches WHERE batch_key = 'CR1/dup-1'") == 5


@pytest.mark.parametrize("name, body, token, status, says", [
    ("malformed", b'{"readings": [', "CR1", 400, "malformed JSON"),
    ("no token", {"readings": []}, None, 401, "no device token"),
    ("wrong token", {"readings": []}, "st_not-a-token", 401, "unknown or revoked"),
    ("other device", {"device_id": "DU1", "readings": []}, "CR1", 403, "not the device this token was issued for"),
    ("unknown device", {"device_id": "GHOST", "readings": []}, "CR1", 403, "not the device this token was issued for"),
    ("nan", b'{"readings": [{"at": "%s", "channel": "load_pct", "value": NaN}]}', "CR1", 422, "NaN"),
    ("future", {"readings": [{"at": "2099-01-01T00:00:00Z", "channel": "load_pct", "value": 1}]}, "CR1", 422,
     "in the future"),
    ("far past", {"readings": [{"at": "2001-01-01T00:00:00Z", "channel": "load_pct", "value": 1}]}, "CR1", 422,
     "too far in the past"),
    ("too many", "many", "CR1", 413, "more than 5000"),
    ("too big", "big", "CR1", 413, "larger than the limit"),
])
def test_bad_batches_are_refused_with_their_status_and_store_nothing(server, name, body, token, status, says):
    if body == "many":
        body = {"readings": readings(recent(3000), 5001)}
    elif body == "big":
        body = b'{"readings": [' + b" " * (4 * 1024 * 1024 + 10) + b"]}"
    elif isinstance(body, bytes) and b"%s" in body:
        body = body.replace(b"%s", recent().isoformat().encode())
    before = server.health()
    answer = server.post(body, token)
    assert answer.status_code == status
    assert says in answer.json()["error"]
    after = server.health()
    # nothing reached the spool, so nothing can reach the store
    assert after["spooled_batches"] == before["spooled_batches"]
    assert after["refused"][str(status)] == before["refused"].get(str(status), 0) + 1


def test_a_refused_batch_lists_every_problem_and_keeps_its_valid_part_out_too(server):
    stored = server.count("SELECT count(*) FROM readings")
    body = {"readings": readings(recent(30), 3) + [{"at": recent(10).isoformat(), "channel": "pm10_ugm3",
                                                    "value": 5}]}
    answer = server.post(body)
    assert answer.status_code == 422 and len(answer.json()["problems"]) == 1
    time.sleep(3 * server.flush_interval)
    assert server.count("SELECT count(*) FROM readings") == stored


def test_an_overload_posted_becomes_a_warning_in_the_store(server):
    start = recent(10)
    body = {"batch_id": "ovl-1", "readings": readings(start, 6, value=lambda i: 118.0 if i in (2, 3) else 40.0)}
    assert server.post(body).status_code == 200
    server.drained()
    row = server.count("SELECT peak_value FROM sensor_warnings WHERE device_id = 'CR1' AND kind = 'overload' "
                       "AND started_at = ?", [(start + dt.timedelta(seconds=2)).astimezone(dt.UTC)
                                              .replace(tzinfo=None)])
    assert row == 118.0


def test_while_another_process_holds_the_store_batches_are_acknowledged_and_stored_later(server):
    before = server.count("SELECT count(*) FROM readings")
    with open_store(server.db, lock_timeout_s=30):          # a writer (the CLI, say) holds the store
        answers = [server.post({"batch_id": f"held-{i}", "readings": readings(recent(200 + 10 * i), 5)})
                   for i in range(4)]
        assert [a.status_code for a in answers] == [200] * 4
        time.sleep(1.0)
        assert server.health()["pending_batches"] == 4      # spooled, waiting for the store
    server.drained()
    assert server.count("SELECT count(*) FROM readings") == before + 20


def test_killing_the_server_loses_no_acknowledged_reading(tmp_path):
    srv = Server(tmp_path, flush_interval=30.0)              # a long interval: batches wait in the spool
    try:
        t0 = recent(600)
        acked = 0
        for i in range(10):
            answer = srv.post({"batch_id": f"k-{i}", "readings": readings(t0 + dt.timedelta(seconds=30 * i), 25)})
            assert answer.status_code == 200
            acked += answer.json()["readings"]
        assert srv.health()["pending_batches"] > 0
        srv.stop(signal.SIGKILL)
        with sqlite3.connect(spool_of(srv.db, srv.port)) as con:
            waiting = con.execute("SELECT batch_key, payload, received_us FROM pending ORDER BY seq").fetchall()
        assert len(waiting) >= 1
        in_spool = sum(len(json.loads(w[1])["v"]) for w in waiting)
        assert srv.count("SELECT count(*) FROM readings") == acked - in_spool      # the rest is only in the spool
        srv.flush_interval = 0.2
        srv.start()
        srv.drained()
        assert srv.count("SELECT count(*) FROM readings") == acked
    finally:
        if srv.proc.poll() is None:
            srv.stop()
    # the crash window: batches already in the store but still in the spool are flushed again, and skipped
    from sitetwin.sensors.server import Ingestor, ServerConfig

    with sqlite3.connect(spool_of(srv.db, srv.port)) as con:
        con.executemany("INSERT INTO pending (batch_key, payload, received_us) VALUES (?, ?, ?)", waiting)
    ingestor = Ingestor(ServerConfig(db=srv.db, port=srv.port, flush_interval_s=0.05))
    ingestor.start()
    ingestor.stop()
    assert srv.count("SELECT count(*) FROM readings") == acked
    assert srv.count("SELECT count(*) FROM (SELECT DISTINCT device_id, channel, measured_at FROM readings)") == acked
    with sqlite3.connect(spool_of(srv.db, srv.port)) as con:
        assert con.execute("SELECT count(*) FROM pending").fetchone()[0] == 0


def spool_of(db: Path, port: int) -> Path:
    """The default spool of the server on ``port`` (one per port: several servers may feed one store)."""
    from sitetwin.sensors.spool import spool_path_for

    return spool_path_for(db, port)


def test_a_batch_the_store_refuses_is_set_aside_and_the_others_are_stored(sensor_db, make_batch):
    """A device deleted between acknowledgement and flush: its batch goes to the spool's dead letters."""
    from sitetwin.sensors.batch import to_us
    from sitetwin.sensors.server import Ingestor, ServerConfig
    from sitetwin.sensors.spool import Spool, spool_path_for

    t = to_us(dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5))
    with Spool(spool_path_for(sensor_db)) as spool:
        spool.submit(make_batch("CR1", t, "load_pct", 40.0, batch_id="good"))
        spool.submit(make_batch("GONE", t, "load_pct", 40.0, batch_id="orphan"))
    ingestor = Ingestor(ServerConfig(db=sensor_db, flush_interval_s=0.05, evaluate=False))
    ingestor.start()
    deadline = time.monotonic() + 30
    # the spool's counts change just before the ingestor's own: wait for both
    while time.monotonic() < deadline:
        now = ingestor.health()
        if not now["pending_batches"] and now["dead_batches"] + now["flushed_batches"] >= 2:
            break
        time.sleep(0.05)
    health = ingestor.health()
    ingestor.stop()
    assert (health["pending_batches"], health["dead_batches"], health["flushed_batches"]) == (0, 1, 1)
    assert "unknown device GONE" in health["last_error"]
    with open_store(sensor_db, read_only=True) as store:
        assert store.scalar("SELECT count(*) FROM readings") == 1


@pytest.fixture
def sensor_db(tmp_path):
    from sitetwin.data.sites import upsert_site
    from sitetwin.sensors.registry import add_device

    db = tmp_path / "site.duckdb"
    with open_store(db) as store:
        upsert_site(store, SITE)
        add_device(store, "CR1", site_code=SITE, device_type="crane", position_m=(0, 0, 0), interval_s=5.0,
                   config={"geometry": {"jib_height_m": 40, "jib_length_m": 50}})
    return db
