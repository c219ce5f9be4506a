"""``sitetwin serve --workers N``: gunicorn's processes share sessions, CSRF key and limits through the
store and its cache folder; SIGINT and SIGTERM stop every worker; ``--debug`` alone gets Werkzeug."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import httpx
import psutil
import pytest

PASSWORD = "workers-pass-1234"
LIMIT = 4096


@pytest.fixture(scope="module")
def accounts_db(tmp_path_factory):
    from sitetwin.data.store import open_store
    from sitetwin.oversight.accounts import add_account, local_owner_scope

    db = tmp_path_factory.mktemp("serve-workers") / "site.duckdb"
    subprocess.run([sys.executable, "-m", "sitetwin.app.cli", "init", "--db", str(db), "--site", "WRK",
                    "--name", "workers"], check=True, capture_output=True)
    with open_store(db) as store:
        add_account(store, local_owner_scope(store), "wendy", "admin", password=PASSWORD)
    return db


class Served:
    def __init__(self, db, tmp_path, *args, env=None):
        self.log = tmp_path / f"serve-{time.monotonic_ns()}.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "sitetwin.app.cli", "serve", "--db", str(db), "--port", "0", *args],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                env={**os.environ, "COLUMNS": "400", **(env or {})})
        deadline = time.monotonic() + 60
        while not (found := re.search(r"http://127\.0\.0\.1:(\d+)/", self.log.read_text())):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop(signal.SIGKILL)
                pytest.fail("sitetwin serve did not start:\n" + self.log.read_text()[-3000:])
            time.sleep(0.1)
        self.url = f"http://127.0.0.1:{found.group(1)}"

    def workers(self) -> set[int]:
        return {p.pid for p in psutil.Process(self.proc.pid).children()}

    def stop(self, sig=signal.SIGTERM, *, group: bool = False) -> int:
        if self.proc.poll() is None:
            (os.killpg if group else os.kill)(self.proc.pid, sig)
        try:
            return self.proc.wait(timeout=30)
        finally:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)


def wait_for(predicate, what: str, timeout_s: float = 30.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"gave up waiting for {what}")


def login(client: httpx.Client) -> httpx.Response:
    client.get("/login")
    return client.post("/login", data={"username": "wendy", "password": PASSWORD, "next": "/",
                                       "csrf": client.cookies["_csrf_token"]})


def test_a_session_made_through_one_worker_holds_on_every_worker_even_one_started_after_the_login(
        accounts_db, tmp_path):
    served = Served(accounts_db, tmp_path, "--workers", "2", env={"SITETWIN_MAX_REQUEST_BYTES": str(LIMIT)})
    try:
        with httpx.Client(base_url=served.url, timeout=30) as client:
            resp = httpx.get(served.url + "/twin?site=WRK")
            assert resp.status_code == 302 and "/login" in resp.headers["location"]
            assert resp.headers["server"].startswith("gunicorn")
            assert login(client).status_code == 302
            # many requests (8 at once, more than one worker's threads): all served with the session
            import concurrent.futures as cf

            with cf.ThreadPoolExecutor(8) as pool:
                codes = list(pool.map(lambda _: client.get("/_dash-layout").status_code, range(40)))
            assert codes == [200] * 40
            page = client.get("/twin?site=WRK").text
            bundles = re.findall(r'src="(/_dash-component-suites/[^"]+)"', page)
            assert len(bundles) > 5
            # every worker that saw the login dies; their replacements never saw it, and honour it
            before = wait_for(lambda: len(served.workers()) == 2 and served.workers(), "two workers")
            for pid in before:
                os.kill(pid, signal.SIGKILL)
            wait_for(lambda: len(served.workers() - before) == 2, "two new workers")
            # the new workers' first requests: the page's JavaScript, all at once as a browser asks for it
            # (Dash sets itself up on a process's first request, not thread-safely: a worker must be set up
            # before it takes requests, or some of these answer 500)
            with cf.ThreadPoolExecutor(2 * len(bundles)) as pool:
                codes = list(pool.map(lambda path: client.get(path).status_code, bundles * 2))
            assert codes == [200] * (2 * len(bundles))
            resp = wait_for(lambda: _answer(client, "/_dash-layout"), "a new worker's answer")
            assert resp.status_code == 200
            # the CSRF key is shared through the store's cache folder: a new worker takes the old token
            resp = client.post("/logout", data={"csrf": client.cookies["_csrf_token"]})
            assert resp.status_code in (302, 303)
            assert client.get("/_dash-layout").status_code == 401      # logged out for every worker
            # the request size limit holds in the workers
            big = client.post("/_dash-update-component", content=b"x" * (2 * LIMIT),
                              headers={"Content-Type": "application/json"})
            assert big.status_code == 413
    finally:
        code = served.stop(signal.SIGTERM)
    assert code == 0, served.log.read_text()[-3000:]


def _answer(client, path):
    try:
        return client.get(path)
    except httpx.TransportError:
        return None


@pytest.mark.parametrize("sig, group", [(signal.SIGINT, True), (signal.SIGTERM, False)], ids=["sigint", "sigterm"])
def test_sigint_and_sigterm_stop_the_master_and_every_worker(accounts_db, tmp_path, sig, group):
    served = Served(accounts_db, tmp_path, "--workers", "2")
    workers = wait_for(lambda: len(served.workers()) == 2 and served.workers(), "two workers")
    assert httpx.get(served.url + "/login").status_code == 200
    code = served.stop(sig, group=group)
    assert code == 0, served.log.read_text()[-3000:]
    assert not [pid for pid in workers if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]
    assert "Traceback" not in served.log.read_text()


def test_the_development_server_runs_only_with_debug(accounts_db, tmp_path):
    served = Served(accounts_db, tmp_path, "--debug")
    try:
        with httpx.Client(base_url=served.url, timeout=30) as client:     # Werkzeug binds after the announcement
            resp = wait_for(lambda: _answer(client, "/login"), "the development server's answer")
        assert resp.status_code == 200 and resp.headers["server"].startswith("Werkzeug")
        assert "development server" in served.log.read_text()
        assert served.workers() == set()        # one process, no gunicorn workers
    finally:
        code = served.stop(signal.SIGTERM)
    assert code == 0, served.log.read_text()[-3000:]


def test_a_bad_trusted_proxy_is_refused_by_name_before_anything_starts(accounts_db):
    proc = subprocess.run([sys.executable, "-m", "sitetwin.app.cli", "serve", "--db", str(accounts_db),
                           "--port", "0", "--forwarded-allow-ips", "10.0.0.1,proxy.example"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "proxy.example" in proc.stderr and "--forwarded-allow-ips" in proc.stderr
