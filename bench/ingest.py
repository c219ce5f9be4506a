"""Benchmark: sensor ingestion over HTTP on loopback, the spool design against writing the store per request.

Phases (each with a fresh store, the server and the load generator in separate processes,
plus a "dashboard" process that opens the store read-only every 0.3 s and counts readings):

1. sustained: the spool server (``sitetwin ingest serve``) takes ~5,000 readings/s from 650
   devices (550 crane monitors at 1 Hz x 9 channels, batches of 5 s; 100 dust monitors) for
   ``--duration`` s. A probe crane sends an overload every 3 s: the time from its
   acknowledgement to the warning row in the store is the warning latency. At the end the
   store must hold exactly the acknowledged readings.
2. kill: the same load; the server is killed (SIGKILL) mid-load and restarted; devices
   retry unacknowledged batches with the same batch id. No acknowledged reading may be lost
   and none stored twice.
3. two servers (issue 13): two ``sitetwin ingest serve`` processes on one store, each with its
   own spool, the offered load split between them by a round-robin "load balancer" in the
   generator (a failed post moves to the other server with the same batch id); one of them is
   killed (SIGKILL) mid-load and restarted on its port (its spool). Every acknowledged reading
   must be stored once.
4. direct (the alternative): a server that opens the store, writes the batch and closes it on
   every request (the obvious design that keeps the store shareable), same offered load.

Prints a table and writes bench/results/ingest.json. Usage:
    python bench/ingest.py [--duration 60] [--rate 5000] [--kill-duration 25] [--direct-duration 15]
                           [--two-duration 60] [--two-rate 2000]   (--two-rate: per server)
"""

from __future__ import annotations

import argparse
import heapq
import json
import multiprocessing as mp
import os
import random
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import print_table, save

CRANE_CHANNELS = ("load_pct", "moment_pct", "load_t", "wind_ms", "tilt_deg", "tilt_dir_deg", "slew_deg", "trolley_m",
                  "hook_height_m")
DUST_CHANNELS = ("pm10_ugm3", "pm2_5_ugm3", "noise_dba", "wind_ms", "temperature_c", "humidity_pct")


# ----------------------------------------------------------------------------- setup

def make_store(folder: Path, cranes: int, dusts: int) -> tuple[Path, dict[str, str]]:
    """A store with one site and the devices; returns the path and {device_id: token}."""
    from sitetwin.data.sites import upsert_site
    from sitetwin.data.store import open_store
    from sitetwin.sensors.registry import add_device, issue_token

    db = folder / "bench.duckdb"
    tokens = {}
    geometry = {"geometry": {"jib_height_m": 45.0, "jib_length_m": 50.0}}
    with open_store(db) as store, store.transaction():
        upsert_site(store, "BENCH", name="ingest benchmark")
        for i in range(cranes):
            d = f"CR-{i:04d}"
            # samples at 1 Hz, reports every 5 s: interval_s is the reporting interval (silence detection)
            # 200 m apart: a city's fleet, no two swing zones overlap (no anti-collision pairs)
            add_device(store, d, site_code="BENCH", device_type="crane", position_m=(i * 200.0, 0, 0), config=geometry,
                       interval_s=5.0)
            tokens[d] = issue_token(store, d)
        for i in range(dusts):
            d = f"DU-{i:04d}"
            add_device(store, d, site_code="BENCH", device_type="dust", position_m=(i * 10.0, 100, 2), interval_s=60.0)
            tokens[d] = issue_token(store, d)
        add_device(store, "PROBE", site_code="BENCH", device_type="crane", position_m=(0, -200, 0), config=geometry,
                   interval_s=3.0)
        tokens["PROBE"] = issue_token(store, "PROBE")
    return db, tokens


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# /v1/health shows its counters only to the operator's status token (issue 14): the bench is the operator
STATUS_TOKEN = secrets.token_urlsafe(16)


def start_spool_server(db: Path, port: int, log: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "sitetwin.app.cli", "ingest", "serve", "--db", str(db), "--port", str(port)]
    env = {**os.environ, "SITETWIN_INGEST_STATUS_TOKEN": STATUS_TOKEN}
    return subprocess.Popen(cmd, stdout=open(log, "ab"), stderr=subprocess.STDOUT, env=env)


def start_direct_server(db: Path, port: int, log: Path) -> subprocess.Popen:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--role", "direct-server", "--db", str(db), "--port",
           str(port)]
    return subprocess.Popen(cmd, stdout=open(log, "ab"), stderr=subprocess.STDOUT)


def wait_ready(port: int, timeout_s: float = 60.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server on port {port} did not come up in {timeout_s} s")


def wait_drained(port: int, timeout_s: float = 60.0) -> dict:
    import httpx

    deadline = time.monotonic() + timeout_s
    seen = None
    while time.monotonic() < deadline:
        health = httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=5.0,
                           headers={"Authorization": f"Bearer {STATUS_TOKEN}"}).json()
        if seen is None and health.get("pending_batches", 0) == 0:
            seen = health.get("flushes", 0)
        elif seen is not None and health.get("flushes", 0) > seen:
            return health          # one whole flush cycle after the spool emptied: its warnings are in
        time.sleep(0.1)
    raise RuntimeError("spool did not drain")


# ----------------------------------------------------------------------------- load generator (own process)

def generate(port: int | list[int], tokens: dict[str, str], rate: float, duration_s: float, out_path: str,
             threads: int = 8, seed: int = 0) -> None:
    """Send batches at the offered rate for duration_s; record every acknowledgement.

    With several ports, a round-robin load balancer: a device's batches alternate between the
    servers, and a post that fails (server down, 5xx) moves to the next one with the same batch id.
    """
    import datetime as dt

    from sitetwin.sensors.client import RETRY_STATUSES, DeviceClient
    from sitetwin.sensors.errors import BatchError

    ports = [port] if isinstance(port, int) else list(port)
    rng = random.Random(seed)
    devices = sorted(d for d in tokens if d != "PROBE")
    cranes = [d for d in devices if d.startswith("CR-")]
    dusts = [d for d in devices if d.startswith("DU-")]
    # a crane batch holds 5 s at 1 Hz x 9 channels; dust 60 s at 0.1 Hz x 6 channels
    crane_period = len(cranes) * len(CRANE_CHANNELS) * 5 / max(rate - len(dusts) * 0.6, 1.0) if cranes else 1e9
    start = time.time() + 1.0
    stop_at = start + duration_s
    records: list[dict] = []
    lock = threading.Lock()

    def schedule(my_devices):
        heap = []
        for d in my_devices:
            period = crane_period if d.startswith("CR-") else 60.0
            heapq.heappush(heap, (start + rng.uniform(0, period), d, period))
        return heap

    def worker(my_devices, probe: bool):
        if len(ports) == 1:
            clients = [DeviceClient(f"http://127.0.0.1:{ports[0]}", "", timeout_s=10.0, retries=12, backoff_s=0.2)]
        else:
            clients = [DeviceClient(f"http://127.0.0.1:{p}", "", timeout_s=10.0, retries=0) for p in ports]

        def post(body: bytes, token: str, turn: int) -> dict:
            if len(clients) == 1:
                return clients[0].post_raw(body, token=token)
            delay = 0.05
            for attempt in range(24):
                try:
                    return clients[(turn + attempt) % len(clients)].post_raw(body, token=token)
                except BatchError as exc:
                    if exc.status not in RETRY_STATUSES or attempt == 23:
                        raise
                except Exception:  # noqa: BLE001 - server down: the balancer moves the batch to the next one
                    if attempt == 23:
                        raise
                if attempt % len(clients) == len(clients) - 1:
                    time.sleep(delay)
                    delay = min(delay * 2, 2.0)
            raise AssertionError("unreachable")

        heap = schedule(my_devices)
        if probe:
            heapq.heappush(heap, (start + 2.0, "PROBE", 3.0))
        seq = {d: 0 for d in my_devices + ["PROBE"]}
        local = []
        while heap:
            t_next, d, period = heapq.heappop(heap)
            if t_next >= stop_at or time.time() > stop_at + 5.0:
                continue        # past the run, or hopelessly behind it (a server that cannot keep up)
            delay = t_next - time.time()
            if delay > 0:
                time.sleep(delay)
            # readings are stamped from the schedule, not the clock, so that a device that falls behind
            # (and catches up) never sends two readings of one channel at one time
            now = dt.datetime.fromtimestamp(t_next, dt.UTC)
            if d == "PROBE":
                readings = [
                    {"at": (now - dt.timedelta(seconds=1.0)).isoformat(), "channel": "load_pct", "value": 50.0},
                    {"at": (now - dt.timedelta(seconds=0.5)).isoformat(), "channel": "load_pct", "value": 120.0},
                    {"at": now.isoformat(), "channel": "load_pct", "value": 50.0}]
            elif d.startswith("CR-"):
                readings = [{"at": (now - dt.timedelta(seconds=4 - k)).isoformat(),
                             "values": {"load_pct": round(rng.uniform(0, 80), 1),
                                        "moment_pct": round(rng.uniform(0, 80), 1),
                                        "load_t": round(rng.uniform(0, 5), 2), "wind_ms": round(rng.uniform(1, 6), 2),
                                        "tilt_deg": round(rng.uniform(0.05, 0.1), 3), "tilt_dir_deg": 90.0,
                                        "slew_deg": round(rng.uniform(0, 360), 1),
                                        "trolley_m": round(rng.uniform(3, 48), 2),
                                        "hook_height_m": round(rng.uniform(2, 40), 2)}} for k in range(5)]
            else:
                readings = [{"at": (now - dt.timedelta(seconds=50 - 10 * k)).isoformat(),
                             "values": {"pm10_ugm3": round(rng.uniform(30, 80), 1),
                                        "pm2_5_ugm3": round(rng.uniform(10, 35), 1),
                                        "noise_dba": round(rng.uniform(40, 50), 1),
                                        "wind_ms": round(rng.uniform(1, 5), 2),
                                        "temperature_c": 15.0, "humidity_pct": 60.0}} for k in range(6)]
            n = sum(len(r["values"]) if "values" in r else 1 for r in readings)
            batch_id = f"{d}-{seq[d]:06d}"
            seq[d] += 1
            body = json.dumps({"device_id": d, "batch_id": batch_id, "readings": readings}).encode()
            sent = time.time()
            status, duplicate = "ok", False
            try:
                answer = post(body, tokens[d], seq[d])
                duplicate = bool(answer.get("duplicate"))
            except Exception as exc:  # noqa: BLE001 - record, never crash the generator
                status = f"error: {type(exc).__name__}: {exc}"[:200]
            acked = time.time()
            local.append({"device": d, "batch_id": batch_id, "readings": n, "sent": sent, "acked": acked,
                          "status": status, "duplicate": duplicate,
                          "probe_at": readings[1]["at"] if d == "PROBE" else None})
            heapq.heappush(heap, (t_next + period, d, period))
        for client in clients:
            client.close()
        with lock:
            records.extend(local)

    groups = [devices[i::threads] for i in range(threads)]
    pool = [threading.Thread(target=worker, args=(g, i == 0)) for i, g in enumerate(groups)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    Path(out_path).write_text(json.dumps({"records": records, "start": start, "stop": stop_at}))


def read_loop(db: str, stop_path: str, out_path: str, period_s: float = 0.3) -> None:
    """A dashboard stand-in: open the store read-only, count, close, every period_s; record the waits."""
    from sitetwin.data.store import open_store

    waits, failures = [], 0
    while not Path(stop_path).exists():
        t0 = time.perf_counter()
        try:
            with open_store(db, read_only=True, lock_timeout_s=10.0) as store:
                store.scalar("SELECT count(*) FROM readings")
            waits.append(time.perf_counter() - t0)
        except Exception:  # noqa: BLE001
            failures += 1
        time.sleep(period_s)
    Path(out_path).write_text(json.dumps({"waits": waits, "failures": failures}))


# ----------------------------------------------------------------------------- the alternative server

def direct_server(db: str, port: int) -> None:
    """Open the store, store the batch, close, on every request (serialised: one writer at a time)."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from sitetwin.data.store import open_store
    from sitetwin.sensors.batch import BatchError, DeviceRef, parse_batch
    from sitetwin.sensors.config import default_limits
    from sitetwin.sensors.registry import token_digest
    from sitetwin.sensors.timeseries import store_batches
    from sitetwin.sensors.warnings import evaluate_touched

    with open_store(db) as store:
        devices = {r["device_id"]: DeviceRef(r["device_id"], r["site_code"], r["device_type"])
                   for r in store.rows("SELECT device_id, site_code, device_type FROM devices")}
        tokens = {r["token_sha256"]: r["device_id"]
                  for r in store.rows("SELECT token_sha256, device_id FROM device_tokens")}
    limits = default_limits().ingest
    write_lock = threading.Lock()
    stats = {"acknowledged_readings": 0}

    def write(batch):
        with write_lock:
            with open_store(db, lock_timeout_s=30.0) as store:
                with store.transaction():
                    report = store_batches(store, [batch], source="http")
                    evaluate_touched(store, report)

    async def post(request):
        device = devices.get(tokens.get(token_digest(request.headers.get("authorization", "")[7:]), ""))
        if device is None:
            return JSONResponse({"error": "token"}, status_code=401)
        try:
            batch = parse_batch(await request.body(), token_device=device, devices=devices, limits=limits,
                                now_us=time.time_ns() // 1000)
        except BatchError as exc:
            return JSONResponse({"error": str(exc)}, status_code=exc.status)
        await run_in_threadpool(write, batch)
        stats["acknowledged_readings"] += batch.reading_count
        return JSONResponse({"batch_id": batch.batch_id, "readings": batch.reading_count, "duplicate": False})

    async def health(request):
        return JSONResponse({"pending_batches": 0, **stats})

    app = Starlette(routes=[Route("/v1/batches", post, methods=["POST"]), Route("/v1/health", health)])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# ----------------------------------------------------------------------------- phases

def run_phase(name: str, *, kind: str, rate: float, duration_s: float, cranes: int, dusts: int,
              kill_at_s: float | None = None, down_s: float = 2.0, servers: int = 1) -> dict:
    """One phase; ``rate`` is the total offered load, split over ``servers`` (the first one is the one killed)."""
    from sitetwin.sensors.spool import spool_path_for

    folder = Path(tempfile.mkdtemp(prefix=f"sitetwin-bench-{name.split()[0]}-"))
    db, tokens = make_store(folder, cranes, dusts)
    ports = [free_port() for _ in range(servers)]
    port = ports[0]
    log = folder / "server.log"
    start_server = start_spool_server if kind == "spool" else start_direct_server
    others = [start_server(db, p, folder / f"server-{p}.log") for p in ports[1:]]
    server = start_server(db, port, log)
    for p in ports:
        wait_ready(p)
    ctx = mp.get_context("spawn")
    gen_out = folder / "generator.json"
    read_out = folder / "reader.json"
    stop_flag = folder / "stop"
    generator = ctx.Process(target=generate, args=(port if servers == 1 else ports, tokens, rate, duration_s,
                                                   str(gen_out)))
    reader = ctx.Process(target=read_loop, args=(str(db), str(stop_flag), str(read_out)))
    load_before = os.getloadavg()
    generator.start()
    reader.start()
    pending_at_kill = None
    restarted = None
    if kill_at_s is not None:
        time.sleep(1.0 + kill_at_s)
        server.send_signal(signal.SIGKILL)
        server.wait()
        with sqlite3.connect(spool_path_for(db, port)) as con:
            pending_at_kill = con.execute("SELECT count(*) FROM pending").fetchone()[0]
        time.sleep(down_s)
        t_restart = time.perf_counter()
        server = start_server(db, port, log)
        wait_ready(port)
        restarted = time.perf_counter() - t_restart
    generator.join()
    drained_at = time.perf_counter()
    healths = [wait_drained(p, timeout_s=120.0) for p in ports] if kind == "spool" else [{}]
    if len(healths) > 1:       # a cycle of each after the other drained: the last warnings are in
        healths = [wait_drained(p, timeout_s=120.0) for p in ports]
    health = _merge_health(healths)
    drain_s = time.perf_counter() - drained_at
    stop_flag.write_text("stop")
    reader.join()
    for proc in [server, *others]:
        proc.send_signal(signal.SIGINT)
    for proc in [server, *others]:
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
    load_after = os.getloadavg()
    gen = json.loads(gen_out.read_text())
    reads = json.loads(read_out.read_text())
    summary = summarise(name, kind, db, gen, reads, rate=rate, duration_s=duration_s, health=health,
                        pending_at_kill=pending_at_kill, restart_s=restarted, drain_s=drain_s,
                        load=(load_before, load_after))
    summary["servers"] = servers
    if servers > 1:
        summary.update({k: health.get(k) for k in ("already_stored_batches", "conflicting_batches", "turn_waits",
                                                   "max_turn_wait_s", "store_busy")})
    if not os.environ.get("SITETWIN_BENCH_KEEP"):
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
    else:
        summary["folder"] = str(folder)
    return summary


def _merge_health(healths: list[dict]) -> dict:
    """The servers' health details as one: counters summed, maxima kept."""
    if len(healths) == 1:
        return healths[0]
    out: dict = {}
    for h in healths:
        for k, v in h.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                out.setdefault(k, v)
            elif k.startswith("max_"):
                out[k] = max(out.get(k, v), v)
                if k == "max_flush_s" and out[k] == v:
                    out["max_flush_phases_s"] = h.get("max_flush_phases_s")
                    out["max_flush_batches"] = h.get("max_flush_batches")
            elif k not in ("max_flush_batches",):
                out[k] = out.get(k, 0) + v
    return out


def summarise(name, kind, db, gen, reads, *, rate, duration_s, health, pending_at_kill, restart_s, drain_s,
              load) -> dict:
    import numpy as np

    from sitetwin.data.store import open_store

    records = gen["records"]
    ok = [r for r in records if r["status"] == "ok"]
    failed = [r for r in records if r["status"] != "ok"]
    acked_readings = sum(r["readings"] for r in ok)
    acked_keys = {f"{r['device']}/{r['batch_id']}": r for r in ok}
    span = max(r["acked"] for r in ok) - gen["start"] if ok else float("nan")
    with open_store(db, read_only=True) as store:
        stored = store.scalar("SELECT count(*) FROM readings")
        distinct = store.scalar("SELECT count(*) FROM (SELECT DISTINCT device_id, channel, measured_at FROM readings)")
        per_batch = dict(store.execute("SELECT batch_key, readings FROM ingest_batches"))
        probes = store.rows("SELECT started_at, detected_at FROM sensor_warnings WHERE device_id = 'PROBE' "
                            "AND kind = 'overload'")
    lost_batches = [k for k, r in acked_keys.items() if per_batch.get(k) != r["readings"]]
    import datetime as dt

    sent_by_at = {}
    for r in ok:
        if r["device"] == "PROBE" and r["probe_at"]:
            at = dt.datetime.fromisoformat(r["probe_at"]).astimezone(dt.UTC).replace(tzinfo=None)
            sent_by_at[at] = r
    latencies = []
    for p in probes:
        r = sent_by_at.get(p["started_at"])
        if r is not None:
            detected = p["detected_at"].replace(tzinfo=dt.UTC).timestamp()
            latencies.append(detected - r["acked"])
    ack_ms = np.array([(r["acked"] - r["sent"]) * 1000 for r in ok]) if ok else np.array([np.nan])
    waits = np.array(reads["waits"]) * 1000 if reads["waits"] else np.array([np.nan])
    lat = np.array(latencies) if latencies else np.array([np.nan])
    return {
        "phase": name, "design": kind, "offered_readings_per_s": rate, "duration_s": duration_s,
        "acked_readings": acked_readings, "acked_per_s": round(acked_readings / span, 1) if ok else 0.0,
        "failed_batches": len(failed), "stored_readings": int(stored), "duplicates": int(stored - distinct),
        "lost_acked_batches": len(lost_batches), "stored_equals_acked": int(stored) == acked_readings,
        "ack_ms_p50": round(float(np.percentile(ack_ms, 50)), 1),
        "ack_ms_p95": round(float(np.percentile(ack_ms, 95)), 1),
        "warning_latency_s_p50": round(float(np.percentile(lat, 50)), 3),
        "warning_latency_s_p95": round(float(np.percentile(lat, 95)), 3),
        "warning_latency_s_max": round(float(np.max(lat)), 3), "probe_warnings": len(latencies),
        "probes_acked": len(sent_by_at),
        "reader_open_ms_p50": round(float(np.percentile(waits, 50)), 1),
        "reader_open_ms_p95": round(float(np.percentile(waits, 95)), 1), "reader_failures": reads["failures"],
        "max_flush_s": health.get("max_flush_s"), "flushes": health.get("flushes"),
        "max_flush_phases_s": health.get("max_flush_phases_s"), "max_flush_batches": health.get("max_flush_batches"),
        "pending_at_kill": pending_at_kill, "restart_s": round(restart_s, 2) if restart_s else None,
        "drain_s": round(drain_s, 2), "loadavg_before": [round(x, 2) for x in load[0]],
        "loadavg_after": [round(x, 2) for x in load[1]],
    }


def print_phases(rows: list[dict]) -> None:
    shown = []
    for r in rows:
        row = dict(r)
        row["load_1m"] = r["loadavg_after"][0]
        row.setdefault("servers", 1)
        if r["design"] == "direct":
            # warnings are computed inside the request there, before the acknowledgement
            row["warning_latency_s_p95"] = row["warning_latency_s_max"] = "in request"
        shown.append(row)
    print_table(shown, ["phase", "design", "servers", "offered_readings_per_s", "acked_per_s", "acked_readings",
                        "stored_readings", "lost_acked_batches", "duplicates", "ack_ms_p50", "ack_ms_p95",
                        "warning_latency_s_p95", "warning_latency_s_max", "reader_open_ms_p50", "reader_open_ms_p95",
                        "max_flush_s", "pending_at_kill", "load_1m"],
                "sensor ingestion over loopback HTTP (readings/s, ms, s; load = 1-min load average after the phase)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--role", default="bench", choices=["bench", "direct-server"])
    parser.add_argument("--db")
    parser.add_argument("--port", type=int)
    parser.add_argument("--rate", type=float, default=5000.0, help="offered readings per second")
    parser.add_argument("--duration", type=float, default=60.0, help="sustained phase, seconds")
    parser.add_argument("--kill-duration", type=float, default=25.0, help="kill phase, seconds (0: skip)")
    parser.add_argument("--direct-duration", type=float, default=15.0, help="alternative design, seconds (0: skip)")
    parser.add_argument("--two-duration", type=float, default=60.0,
                        help="two servers, one killed with -9 mid-load, seconds (0: skip)")
    parser.add_argument("--two-rate", type=float, default=5000.0, help="two-server phase: readings/s per server")
    parser.add_argument("--cranes", type=int, default=550)
    parser.add_argument("--dusts", type=int, default=100)
    args = parser.parse_args()
    if args.role == "direct-server":
        direct_server(args.db, args.port)
        return
    rows = []
    if args.duration > 0:
        rows.append(run_phase("sustained", kind="spool", rate=args.rate, duration_s=args.duration,
                              cranes=args.cranes, dusts=args.dusts))
    if args.kill_duration > 0:
        rows.append(run_phase("kill -9 + restart", kind="spool", rate=args.rate, duration_s=args.kill_duration,
                              cranes=args.cranes, dusts=args.dusts, kill_at_s=args.kill_duration / 3))
    if args.two_duration > 0:
        rows.append(run_phase("2 servers, one kill -9", kind="spool", rate=2 * args.two_rate,
                              duration_s=args.two_duration, cranes=args.cranes, dusts=args.dusts,
                              kill_at_s=args.two_duration / 3, servers=2))
    if args.direct_duration > 0:
        rows.append(run_phase("sustained", kind="direct", rate=args.rate, duration_s=args.direct_duration,
                              cranes=args.cranes, dusts=args.dusts))
    spool = rows[0] if args.duration > 0 else None
    direct = next((r for r in rows if r["design"] == "direct"), None)
    result = {"bench": "ingest", "loadavg": os.getloadavg(), "phases": rows}
    if spool and direct and direct["acked_per_s"]:
        result["spool_over_direct_throughput"] = round(spool["acked_per_s"] / direct["acked_per_s"], 2)
    print_phases(rows)
    if "spool_over_direct_throughput" in result:
        print(f"spool / direct acknowledged throughput: {result['spool_over_direct_throughput']}x")
    targets = {"no acknowledged reading lost across kill -9": all(r["lost_acked_batches"] == 0 and r["duplicates"] == 0
                                                                  for r in rows if r["design"] == "spool")}
    if spool is not None:
        targets.update({
            f"{args.rate:g} readings/s sustained": spool["acked_per_s"] >= 0.98 * args.rate,
            "stored == acknowledged (sustained)": spool["stored_equals_acked"] and spool["duplicates"] == 0,
            "warnings within 2 s": spool["warning_latency_s_max"] <= 2.0,
        })
    result["targets"] = targets
    two = next((r for r in rows if r.get("servers", 1) > 1), None)
    if two is not None:
        targets[f"2 servers x {args.two_rate:g} readings/s sustained through a kill -9"] = (
            two["acked_per_s"] >= 0.98 * 2 * args.two_rate)
    for k, v in targets.items():
        print(f"{'PASS' if v else 'MISS'}  {k}")
    save("ingest", result)


if __name__ == "__main__":
    main()
