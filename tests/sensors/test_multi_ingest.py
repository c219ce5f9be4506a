"""Several ingest servers feeding one store (issue 13, item 5): each with its own spool, taking
turns at the store, a batch stored once whichever server (or both) took it, a kill -9 mid-load."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from sitetwin.data.store import open_store

REPO = Path(__file__).resolve().parents[2]
SITE = "S1"
STATUS_TOKEN = "status-secret-for-the-multi-ingest-tests"
DEVICES = ("CR1", "DU1", "DU2", "DU3")
CHANNEL = {"CR1": "load_pct", "DU1": "pm10_ugm3", "DU2": "pm10_ugm3", "DU3": "pm10_ugm3"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_store(folder: Path) -> tuple[Path, dict[str, str]]:
    """A store with a crane and three dust monitors; their tokens."""
    from sitetwin.data.sites import upsert_site
    from sitetwin.sensors.registry import add_device, issue_token

    db = folder / "site.duckdb"
    with open_store(db) as store, store.transaction():
        upsert_site(store, SITE)
        add_device(store, "CR1", site_code=SITE, device_type="crane", position_m=(0, 0, 0), interval_s=5.0,
                   config={"geometry": {"jib_height_m": 40, "jib_length_m": 50}})
        for d in DEVICES[1:]:
            add_device(store, d, site_code=SITE, device_type="dust", position_m=(5, 5, 2), interval_s=60.0)
        tokens = {d: issue_token(store, d) for d in DEVICES}
    return db, tokens


class Server:
    """One `sitetwin ingest serve` process of the shared store, on its own port (and so its own spool)."""

    def __init__(self, db: Path, name: str, flush_interval: float = 0.2):
        self.db = db
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.flush_interval = flush_interval
        self.proc: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sitetwin.app.cli", "ingest", "serve", "--db", str(self.db),
             "--port", str(self.port), "--flush-interval", str(self.flush_interval)], cwd=REPO,
            stdout=subprocess.DEVNULL, stderr=open(self.db.parent / f"server-{self.name}.log", "ab"),
            env={**os.environ, "SITETWIN_INGEST_STATUS_TOKEN": STATUS_TOKEN})
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/v1/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError((self.db.parent / f"server-{self.name}.log").read_text())

    def health(self) -> dict:
        return httpx.get(f"{self.url}/v1/health", headers={"Authorization": f"Bearer {STATUS_TOKEN}"},
                         timeout=10).json()

    def drained(self, timeout_s: float = 60.0) -> dict:
        """Wait until the spool is empty and one more flush cycle has finished (its warnings are in)."""
        deadline = time.monotonic() + timeout_s
        seen = None
        while time.monotonic() < deadline:
            health = self.health()
            if seen is None and health["pending_batches"] == 0:
                seen = health["flushes"]
            elif seen is not None and health["flushes"] > seen:
                return health
            time.sleep(0.05)
        raise AssertionError(f"spool of server {self.name} not drained: {self.health()}")

    def stop(self, sig=signal.SIGINT) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=60)


def post(client: httpx.Client, server: Server, token: str, body: dict) -> httpx.Response:
    return client.post(f"{server.url}/v1/batches", content=json.dumps(body).encode(),
                       headers={"Authorization": f"Bearer {token}"}, timeout=30)


def readings(device: str, start: dt.datetime, n: int, value=None) -> list[dict]:
    default = 40.0 if device == "CR1" else 30.0
    return [{"at": (start + dt.timedelta(seconds=i)).isoformat(), "channel": CHANNEL[device],
             "value": default if value is None else value(i)} for i in range(n)]


def scalar(db: Path, sql: str, params=None):
    with open_store(db, read_only=True, lock_timeout_s=30) as store:
        return store.scalar(sql, params)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    db, tokens = make_store(tmp_path_factory.mktemp("multi"))
    a, b = Server(db, "a"), Server(db, "b")
    yield a, b, tokens
    a.stop()
    b.stop()


def test_the_same_batch_posted_to_both_servers_is_stored_once(pair):
    a, b, tokens = pair
    body = {"batch_id": "both-1", "readings": readings("DU1", dt.datetime.now(dt.UTC) - dt.timedelta(hours=3), 30)}
    before = scalar(a.db, "SELECT count(*) FROM readings")
    already = a.health()["already_stored_batches"] + b.health()["already_stored_batches"]
    with httpx.Client() as client:
        answers = [post(client, s, tokens["DU1"], body) for s in (a, b)]
    assert [r.status_code for r in answers] == [200, 200]
    assert [r.json()["duplicate"] for r in answers] == [False, False]     # neither spool knows the other
    a.drained()
    b.drained()
    assert scalar(a.db, "SELECT count(*) FROM readings") == before + 30
    assert scalar(a.db, "SELECT count(*) FROM ingest_batches WHERE batch_key = 'DU1/both-1'") == 1
    assert a.health()["already_stored_batches"] + b.health()["already_stored_batches"] == already + 1


def test_a_batch_id_reused_for_other_content_at_the_other_server_is_set_aside_not_dropped(pair):
    a, b, tokens = pair
    start = dt.datetime.now(dt.UTC) - dt.timedelta(hours=4)
    first = {"batch_id": "reuse-1", "readings": readings("DU2", start, 10)}
    other = {"batch_id": "reuse-1", "readings": readings("DU2", start, 10, value=lambda i: 55.0)}
    with httpx.Client() as client:
        assert post(client, a, tokens["DU2"], first).status_code == 200
        a.drained()
        dead_before = b.health()["dead_batches"]
        # the other server cannot know at acknowledgement time: it answers 200 ...
        assert post(client, b, tokens["DU2"], other).status_code == 200
        # ... and its own 409 still holds for a retry to it
        assert post(client, b, tokens["DU2"], {**other, "readings": readings("DU2", start, 3)}).status_code == 409
    health = b.drained()
    # ... and refuses it when it flushes: kept in its spool's dead letters, with the reason
    assert health["conflicting_batches"] >= 1 and health["dead_batches"] == dead_before + 1
    with sqlite3.connect(Path(f"{a.db}.spool") / f"ingest-{b.port}.sqlite") as con:
        error = con.execute("SELECT error FROM dead WHERE batch_key = 'DU2/reuse-1'").fetchone()[0]
    assert "stored before with other content" in error
    assert scalar(a.db, "SELECT sum(value) FROM readings WHERE device_id = 'DU2'") == 300.0    # the first content


def test_two_servers_flushing_one_series_raise_one_warning_and_one_finding(pair):
    a, b, tokens = pair
    start = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=60)
    overload = lambda i: 118.0 if i in (2, 3) else 40.0  # noqa: E731 - the overload spans both halves
    series = readings("CR1", start, 6, value=overload)
    with httpx.Client() as client:
        done = []
        threads = [threading.Thread(target=lambda s=s, part=part: done.append(
            post(client, s, tokens["CR1"], {"batch_id": f"ovl-{s.name}", "readings": part}).status_code))
            for s, part in ((a, series[:3]), (b, series[3:]))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert done == [200, 200]
    a.drained()
    b.drained()
    a.drained()
    assert scalar(a.db, "SELECT count(*) FROM sensor_warnings WHERE device_id = 'CR1' AND kind = 'overload'") == 1
    assert scalar(a.db, "SELECT count(*) FROM sensor_warnings WHERE device_id = 'CR1' AND kind = 'overload' "
                        "AND finding_id IS NOT NULL") == 1
    assert scalar(a.db, "SELECT count(*) FROM findings f JOIN sensor_warnings w ON f.source_ref = w.warning_id "
                        "WHERE w.device_id = 'CR1' AND w.kind = 'overload'") == 1
    # no warning raised twice (the silence checks of both servers included): one finding per warning at most,
    # one open gap warning per device at most
    assert scalar(a.db, "SELECT count(*) - count(DISTINCT source_ref) FROM findings") == 0
    assert scalar(a.db, "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM sensor_warnings "
                        "WHERE kind = 'gap' AND ended_at IS NULL GROUP BY device_id)") <= 1


def test_a_second_server_on_a_spool_another_server_holds_is_refused_clearly(pair):
    a, _, _ = pair
    spool = Path(f"{a.db}.spool") / f"ingest-{a.port}.sqlite"
    answer = subprocess.run(
        [sys.executable, "-m", "sitetwin.app.cli", "ingest", "serve", "--db", str(a.db), "--port",
         str(free_port()), "--spool", str(spool)], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert answer.returncode != 0
    assert "another ingest server" in answer.stderr and f"pid {a.proc.pid}" in answer.stderr
    assert "Traceback" not in answer.stderr


def test_flush_turns_exclude_each_other_and_time_out(tmp_path):
    from sitetwin.sensors.server import FlushTurn

    one, two = FlushTurn(tmp_path / "flush.lock", 0.25), FlushTurn(tmp_path / "flush.lock", 0.25)
    try:
        assert one.acquire(1.0) is not None
        started = time.monotonic()
        assert two.acquire(0.3) is None                 # bounded: gives up, the batches stay spooled
        assert 0.25 <= time.monotonic() - started < 2.0
        one.release()
        assert two.acquire(1.0) is not None
        two.release()
    finally:
        one.close()
        two.close()


def test_killing_one_of_two_servers_mid_load_stores_every_acknowledged_reading_once(tmp_path):
    db, tokens = make_store(tmp_path)
    a, b = Server(db, "a"), Server(db, "b")
    acked: dict[str, int] = {}          # batch_key -> readings, every batch some server acknowledged
    lock = threading.Lock()
    errors: list[str] = []
    start = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    n_batches, per_batch = 40, 50

    def device(name: str) -> None:
        with httpx.Client() as client:
            for i in range(n_batches):
                body = {"batch_id": f"load-{i}",
                        "readings": readings(name, start + dt.timedelta(seconds=i * per_batch), per_batch)}
                # a load balancer: alternate, and move a failed post to the other server (the same batch id)
                order = (a, b) if i % 2 == 0 else (b, a)
                for attempt in range(20):
                    target = order[attempt % 2]
                    try:
                        answer = post(client, target, tokens[name], body)
                    except httpx.HTTPError:
                        time.sleep(0.05)
                        continue
                    if answer.status_code == 200:
                        with lock:
                            acked[f"{name}/load-{i}"] = answer.json()["readings"]
                        break
                    if answer.status_code != 503:
                        errors.append(f"{name} load-{i}: {answer.status_code} {answer.text}")
                        break
                else:
                    errors.append(f"{name} load-{i}: no server took it")

    try:
        threads = [threading.Thread(target=device, args=(d,)) for d in DEVICES]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 30
        while len(acked) < len(DEVICES) * n_batches // 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        a.stop(signal.SIGKILL)                          # mid-load, without a chance to flush
        for t in threads:
            t.join(timeout=120)
        assert not errors, errors[:5]
        assert len(acked) == len(DEVICES) * n_batches
        a.start()                                       # the same port, so the same spool
        a.drained()
        b.drained()
        total = sum(acked.values())
        assert total == len(DEVICES) * n_batches * per_batch
        assert scalar(db, "SELECT count(*) FROM readings") == total
        assert scalar(db, "SELECT count(*) FROM (SELECT DISTINCT device_id, channel, measured_at "
                          "FROM readings)") == total
        assert scalar(db, "SELECT count(*) FROM ingest_batches") == len(acked)
    finally:
        a.stop()
        b.stop()


# with the server's re-evaluation overlap, and without it: sensors.warnings itself extends an episode
# that ended just before new data (its _replace_from reach)
@pytest.mark.parametrize("OVERLAP", [60.0, 0.0])
def test_an_episode_flushed_half_by_each_server_is_one_warning_with_one_finding(tmp_path, make_batch, OVERLAP):
    """The earlier half flushed first (by one server), the rest later (by the other): the warning
    is extended, not raised a second time beside the first (deterministic: flushes called in order)."""
    from sitetwin.oversight.raising import raise_drafts
    from sitetwin.sensors.batch import to_us
    from sitetwin.sensors.server import Ingestor, ServerConfig

    db, _ = make_store(tmp_path)
    t0 = to_us(dt.datetime.now(dt.UTC) - dt.timedelta(seconds=60))
    t = [t0 + i * 1_000_000 for i in range(6)]
    values = [40.0, 40.0, 118.0, 118.0, 40.0, 40.0]
    servers = [Ingestor(ServerConfig(db=db, port=port, flush_interval_s=3600.0, evaluate_overlap_s=OVERLAP),
                        raise_drafts) for port in (1, 2)]
    for s in servers:
        s.start()
    try:
        for s, half in zip(servers, (slice(0, 3), slice(3, 6))):
            assert s.spool is not None
            s.spool.submit(make_batch("CR1", t[half], "load_pct", values[half], batch_id=f"half-{half.start}",
                                      site=SITE))
            assert s.flush_once() == 1
    finally:
        for s in servers:
            s.stop()
    assert scalar(db, "SELECT count(*) FROM readings WHERE device_id = 'CR1'") == 6
    rows = scalar(db, "SELECT list(epoch_us(started_at) ORDER BY started_at) FROM sensor_warnings "
                      "WHERE device_id = 'CR1' AND kind = 'overload'")
    assert rows == [t[2]]
    assert scalar(db, "SELECT epoch_us(ended_at) FROM sensor_warnings WHERE device_id = 'CR1' "
                      "AND kind = 'overload'") >= t[3]
    assert scalar(db, "SELECT count(*) FROM findings f JOIN sensor_warnings w ON f.source_ref = w.warning_id "
                      "WHERE w.kind = 'overload'") == 1
