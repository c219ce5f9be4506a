"""Benchmark: the workbench under load, gunicorn (``sitetwin serve --workers N``) against the development server.

The site: the demo building with surveys, panoramas, detections, hazards, findings and sensors (the
workbench tests' generator, ``synth.populate_site``), built once into bench/results/web-work/
(--rebuild starts over), with one admin account per simulated user group.
Each of --users simulated users (a thread with its own httpx client and cookies) logs in (form, CSRF
token), then for --rounds rounds pages through the workbench: each page's HTML, Dash's layout, and
the callbacks that page fires first (site shell, page content, overview, progress, findings,
portfolio). Servers, each started fresh on a free port and measured in the same run:
  gunicorn   ``sitetwin serve --workers W`` (gthread, 4 threads per worker)
  werkzeug   the development server as ``sitetwin serve`` ran it before (threaded, one process)
Measured per server: requests, errors (HTTP >= 400 or no answer), p50/p95/max latency of the page
requests and of the logins (argon2: CPU-bound by design), throughput. Clients and server share the
machine's cores. Targets: p95 < 1 s, no errors.

    python bench/web.py [--users 50] [--rounds 4] [--workers 4] [--rebuild]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from _common import REPO, RESULTS, machine, print_table, save

WORK = RESULTS / "web-work"
PASSWORD = "bench-web-pass-1234"
ACCOUNTS = 5
TARGETS = {"p95_s": 1.0, "errors": 0}
PAGES = ["/", "/progress", "/findings", "/portfolio", "/twin"]
# the callbacks a page fires on opening: output prefix -> the values of its inputs and states
CALLBACKS = {
    "..shell-site.options": {("shell-url", "search"): "?site=DEMO", ("shell-site", "value"): "DEMO",
                             ("shell-url", "pathname"): "/"},
    ".._pages_content.children": {("_pages_location", "pathname"): "/findings",
                                  ("_pages_location", "search"): "?site=DEMO"},
    "..overview-title.children": {("overview-site", "data"): "DEMO"},
    "..progress-summary.children": {("progress-site", "data"): "DEMO"},
    "..findings-summary.children": {("findings-f-site", "value"): "DEMO"},
    "..portfolio-city.options": {},
}


def build_site(rebuild: bool) -> Path:
    db = WORK / "demo.duckdb"
    done = WORK / "complete"
    if done.exists() and not rebuild:
        return db
    shutil.rmtree(WORK, ignore_errors=True)
    from sitetwin.app.demo import run_demo
    from sitetwin.data.store import open_store
    from sitetwin.oversight.accounts import add_account, local_owner_scope
    from sitetwin.synth import populate_site

    run_demo(db, WORK / "work", stages=["model"])
    populate_site(db)
    with open_store(db) as store:
        owner = local_owner_scope(store)
        for i in range(ACCOUNTS):
            add_account(store, owner, f"bench{i}", "admin", password=PASSWORD)
    done.write_text("ok\n")
    return db


DEV_SERVER = """
import sys
from werkzeug.serving import make_server
from sitetwin.dashboards.app import create_app
app = create_app(sys.argv[1])
server = make_server("127.0.0.1", 0, app.server, threaded=True)
print(f"http://127.0.0.1:{server.server_port}/", file=sys.stderr, flush=True)
try:
    server.serve_forever()
except KeyboardInterrupt:
    pass
"""


def start(kind: str, db: Path, workers: int, log: Path) -> tuple[subprocess.Popen, str]:
    if kind == "gunicorn":
        cmd = [sys.executable, "-m", "sitetwin.app.cli", "serve", "--db", str(db), "--port", "0",
               "--workers", str(workers)]
    else:
        cmd = [sys.executable, "-c", DEV_SERVER, str(db)]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd=REPO,
                                env={**os.environ, "COLUMNS": "400"})
    deadline = time.monotonic() + 120
    while not (found := re.search(r"http://127\.0\.0\.1:(\d+)/", log.read_text())):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{kind} did not start:\n{log.read_text()[-2000:]}")
        time.sleep(0.2)
    url = f"http://127.0.0.1:{found.group(1)}"
    while True:                       # answering, and every gunicorn worker has its app loaded
        try:
            if all(httpx.get(url + "/login", timeout=30).status_code == 200 for _ in range(workers * 2)):
                break
        except httpx.TransportError:
            time.sleep(0.2)
    return proc, url


def stop(proc: subprocess.Popen) -> int:
    os.killpg(proc.pid, signal.SIGINT)
    try:
        return proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def callback_bodies(url: str) -> list[dict]:
    with httpx.Client(base_url=url, timeout=60) as client:
        _login(client, "bench0")
        deps = client.get("/_dash-dependencies").json()
    bodies = []
    for prefix, values in CALLBACKS.items():
        [dep] = [d for d in deps if d["output"].startswith(prefix)]

        def spec(d, values=values):
            return {"id": d["id"], "property": d["property"], "value": values.get((d["id"], d["property"]))}

        from dash._utils import split_callback_id

        first = dep["inputs"][0]
        bodies.append({"output": dep["output"], "outputs": split_callback_id(dep["output"]),
                       "inputs": [spec(i) for i in dep["inputs"]], "state": [spec(s) for s in dep["state"]],
                       "changedPropIds": [f"{first['id']}.{first['property']}"]})
    return bodies


def _login(client: httpx.Client, user: str) -> None:
    client.get("/login")
    resp = client.post("/login", data={"username": user, "password": PASSWORD, "next": "/",
                                       "csrf": client.cookies["_csrf_token"]})
    if resp.status_code != 302:
        raise RuntimeError(f"login of {user}: HTTP {resp.status_code}")


def load(url: str, users: int, rounds: int, bodies: list[dict]) -> dict:
    lat: list[float] = []
    logins: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    go = threading.Barrier(users)

    def user(n: int) -> None:
        with httpx.Client(base_url=url, timeout=120) as client:
            go.wait()
            t = time.perf_counter()
            try:
                _login(client, f"bench{n % ACCOUNTS}")
            except Exception as exc:
                with lock:
                    errors.append(f"login: {exc}")
                return
            with lock:
                logins.append(time.perf_counter() - t)
            headers = {"X-CSRFToken": client.cookies["_csrf_token"]}
            for r in range(rounds):
                steps = [("GET", f"{PAGES[(n + r) % len(PAGES)]}?site=DEMO", None), ("GET", "/_dash-layout", None)]
                steps += [("POST", "/_dash-update-component", b) for b in bodies]
                for method, path, body in steps:
                    t = time.perf_counter()
                    try:
                        resp = client.request(method, path, json=body, headers=headers if body else None)
                        bad = resp.status_code >= 400
                        what = f"{method} {path} {(body or {}).get('output', '')[:40]}: HTTP {resp.status_code}"
                    except httpx.TransportError as exc:
                        bad, what = True, f"{method} {path}: {type(exc).__name__}"
                    with lock:
                        lat.append(time.perf_counter() - t)
                        if bad:
                            errors.append(what)

    threads = [threading.Thread(target=user, args=(n,)) for n in range(users)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    q = statistics.quantiles(lat, n=100) if len(lat) > 1 else [0.0] * 99
    lq = statistics.quantiles(logins, n=100) if len(logins) > 1 else [0.0] * 99
    return {"requests": len(lat), "errors": len(errors), "p50_s": q[49], "p95_s": q[94], "max_s": max(lat, default=0),
            "login_p95_s": lq[94], "req_per_s": len(lat) / wall, "wall_s": wall, "error_samples": errors[:5]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=4, help="pages each user opens (each: HTML, layout, 6 callbacks)")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--servers", default="gunicorn,werkzeug")
    ap.add_argument("--rebuild", action="store_true")
    args = ap.parse_args()
    db = build_site(args.rebuild)
    rows = []
    for kind in args.servers.split(","):
        workers = args.workers if kind == "gunicorn" else 1
        proc, url = start(kind, db, workers, WORK / f"{kind}.log")
        try:
            bodies = callback_bodies(url)
            load(url, min(args.users, 5), 1, bodies)          # each worker's caches warm, as in use
            result = load(url, args.users, args.rounds, bodies)
        finally:
            code = stop(proc)
        rows.append({"server": kind, "workers": workers, "users": args.users, **result, "exit": code,
                     "load_1m": os.getloadavg()[0]})
        if result["error_samples"]:
            print(f"{kind}: first errors: {result['error_samples']}", flush=True)
    m = machine()
    print_table(rows, ["server", "workers", "users", "requests", "errors", "p50_s", "p95_s", "max_s", "login_p95_s",
                       "req_per_s", "load_1m"],
                f"workbench under {args.users} users x {args.rounds} pages ({m['cpus']} CPUs, clients on the same "
                f"machine; targets: p95 < {TARGETS['p95_s']} s, no errors)")
    save("web", {"args": vars(args), "targets": TARGETS, "rows": rows})


if __name__ == "__main__":
    main()
