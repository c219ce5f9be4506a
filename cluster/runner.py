"""Run a manifest on a Ray cluster: an existing one (an address) or a local one started for the run.

How a run goes:

1. The manifest is read and checked whole (:func:`manifest.load_manifest`, :func:`manifest.check_stores`);
   a problem stops the run before Ray starts or anything is written.
2. Each unit's inputs are hashed in parallel (Ray tasks); a unit whose key is done in its store's
   ledger is skipped, as is a unit repeating an earlier one of the manifest.
3. Model units' IFC files are parsed and tessellated into their store's cache in parallel
   (plain tasks, retried when their worker is lost).
4. A pool of writers (:class:`units.SiteWriter` as Ray actors, ``max_concurrency=1``, restarted when
   their process is lost, the unit retried), as many as the cluster has CPUs, is started with the run
   (before the hashing, which its warm-up overlaps: each writer imports the survey, detection and
   model code once and loads the run's detectors). Each store is given whole to one writer at a time:
   it runs the store's units one after the other, models first, then surveys, detections and
   scores; when the store is done the writer takes the next store. Stores run in parallel, one per writer.

The pool is kept for the Ray session of this process: a driver that runs several manifests on the same
cluster (a service, a notebook, the bench) starts and warms its writers once; ``connect`` drops it
with the cluster it started.

Ray is imported here only, when a run starts; usage statistics are off (``RAY_USAGE_STATS_ENABLED=0``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sitetwin.cluster.errors import ClusterError
from sitetwin.cluster.manifest import RANK, Manifest, StoreState, Unit, check_stores, load_manifest, unit_key
from sitetwin.data.errors import Phrase
from sitetwin.data.i18n import N_

# Ray retries a task or an actor call whose worker process was lost this many times.
RETRIES = 3
# A test hook: the comma-separated 1-based indexes of units whose worker exits once, right after the unit's
# first attempt is recorded (see units.execute). Never set it outside the tests.
TEST_EXIT_ONCE_ENV = "SITETWIN_CLUSTER_TEST_EXIT_ONCE"
CONNECT_TIMEOUT_S = 5.0


@dataclass
class RunReport:
    """What a run did: every unit is done, skipped (done before, or a repeat) or failed (with its one-line error)."""

    units: int
    done: int = 0
    skipped: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)    # {"unit": label, "error": one line}
    outcomes: list[dict[str, Any]] = field(default_factory=list)  # per unit, in manifest order
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        """The ``--json`` document: units, done, skipped, failed."""
        return {"units": self.units, "done": self.done, "skipped": self.skipped, "failed": list(self.failed)}


def _ray():
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    import ray

    return ray


@contextlib.contextmanager
def connect(address: str | None = None, *, workers: int | None = None) -> Iterator[Any]:
    """Ray for the block: the running session if this process has one, else the cluster at ``address`` (or
    ``RAY_ADDRESS``), else a local cluster of ``workers`` CPUs (default: this machine's) shut down afterwards."""
    ray = _ray()
    if ray.is_initialized():
        yield ray
        return
    address = address or os.environ.get("RAY_ADDRESS") or None
    quiet = {"logging_level": logging.ERROR, "log_to_driver": False}
    if address:
        _check_reachable(address)
        try:
            ray.init(address=address, **quiet)
        except Exception as exc:
            raise ClusterError(N_("--address {address}: cannot join the Ray cluster there ({reason})"),
                               address=address,
                               reason=(str(exc).strip().splitlines() or [type(exc).__name__])[0]) from None
    else:
        if workers is not None and workers < 1:
            raise ClusterError(N_("{option} {n}: at least 1"), option="--workers", n=workers)
        ray.init(address="local", num_cpus=workers or os.cpu_count() or 1, include_dashboard=False, **quiet)
    try:
        yield ray
    finally:
        _pools.clear()
        ray.shutdown()


def _check_reachable(address: str) -> None:
    """Fail at once, in one line, when nothing listens at a ``host:port`` (or ``ray://host:port``) address."""
    if address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise ClusterError(N_("--address {address}: expected HOST:PORT (the head node's GCS, e.g. 10.0.0.5:6379), "
                              "ray://HOST:PORT or auto"), address=address)
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        reason = Phrase(N_("timed out")) if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise ClusterError(N_("--address {address}: no Ray cluster answers there ({reason}); start one with `ray "
                              "start --head`, or leave --address out to run on this machine"), address=address,
                           reason=reason) from None


def _test_exit_once() -> set[int]:
    raw = os.environ.get(TEST_EXIT_ONCE_ENV, "")
    return {int(x) for x in raw.split(",") if x.strip().isdigit()}


def run_manifest(manifest: Manifest | str | Path, *, address: str | None = None, workers: int | None = None,
                 token: str | None = None, on_event: Callable[[dict[str, Any]], None] | None = None,
                 states: dict[Path, StoreState] | None = None) -> RunReport:
    """Run every unit of ``manifest``; see the module docstring.

    ``on_event`` gets a dict per unit as it ends (index, kind, site, label, status, error).
    ``token`` is the caller's session or API token for the score units of stores with accounts
    (as ``--token`` of `sitetwin risk`). ``states``: what :func:`check_stores` found, when the caller has
    checked the stores already. Raises :class:`ManifestError` or :class:`ClusterError`
    before anything runs; a unit's own failure is in the report, not raised.
    """
    started = time.perf_counter()
    if not isinstance(manifest, Manifest):
        manifest = load_manifest(manifest)
    if states is None:
        states = check_stores(manifest)
    report = RunReport(units=len(manifest.units))
    outcomes: dict[int, dict[str, Any]] = {}

    def settle(outcome: dict[str, Any]) -> None:
        outcomes[outcome["index"]] = outcome
        if outcome["status"] == "done":
            report.done += 1
        elif outcome["status"] == "skipped":
            report.skipped += 1
        else:
            report.failed.append({"unit": outcome["label"], "error": outcome["error"]})
        if on_event is not None:
            on_event(outcome)

    with connect(address, workers=workers) as ray:
        pool = _pool(ray, manifest)          # started and warming while the inputs are hashed
        keys = _keys(ray, manifest, settle)
        queues = _plan(manifest, states, keys, settle)
        if queues:
            _run_writers(ray, manifest, queues, keys, settle, pool, token=token)
    report.outcomes = [outcomes[i] for i in sorted(outcomes)]
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def _outcome(unit: Unit, status: str, error: str | None = None, key: str | None = None) -> dict[str, Any]:
    return {"index": unit.index, "kind": unit.kind, "site": unit.site, "label": unit.label, "key": key,
            "status": status, "error": error, "seconds": 0.0}


def _keys(ray, manifest: Manifest, settle) -> dict[int, str]:
    """Each unit's key, its inputs hashed in parallel; a score's key covers its site's other units."""
    from sitetwin.cluster.units import unit_digest

    digest = ray.remote(max_retries=RETRIES)(unit_digest).options(num_cpus=0.5)
    found = {r["index"]: r for r in ray.get([digest.remote(u) for u in manifest.units])}
    keys: dict[int, str] = {}
    for u in manifest.units:
        r = found[u.index]
        if r["error"]:
            settle(_outcome(u, "failed", f"cannot read its inputs: {r['error']}"))
        elif u.kind != "score":
            keys[u.index] = r["key"]
    for u in manifest.units:
        r = found[u.index]
        if u.kind == "score" and not r["error"]:
            others = [keys[o.index] for o in manifest.units
                      if o.db == u.db and o.site == u.site and o.kind != "score" and o.index in keys]
            keys[u.index] = unit_key(u, r["digests"], others)
    return keys


def _plan(manifest: Manifest, states: dict[Path, StoreState], keys: dict[int, str],
          settle) -> dict[Path, list[Unit]]:
    """Each store's units still to run, in the site order (models, surveys, detections, scores)."""
    seen: set[tuple[Path, str]] = set()
    queues: dict[Path, list[Unit]] = {}
    for u in manifest.units:
        key = keys.get(u.index)
        if key is None:
            continue
        if key in states[u.db].done or (u.db, key) in seen:
            settle(_outcome(u, "skipped", key=key))
            continue
        seen.add((u.db, key))
        queues.setdefault(u.db, []).append(u)
    for units in queues.values():
        units.sort(key=lambda u: (RANK[u.kind], u.index))
    return queues


# The writer pool of this process's Ray session (see the module docstring): {session: [writer actors]}.
_pools: dict[str, list[Any]] = {}


def _session(ray) -> str:
    ctx = ray.get_runtime_context()
    return f"{ctx.gcs_address}/{ctx.get_session_name()}/{ctx.get_job_id()}"


def _writer_class(ray):
    from sitetwin.cluster.units import SiteWriter

    # restarted however often its process is lost over the pool's life; a unit is retried RETRIES times
    return ray.remote(max_restarts=-1, max_task_retries=RETRIES, max_concurrency=1)(SiteWriter)


def _new_writer(ray, detectors: list[dict[str, Any]]) -> Any:
    writer = _writer_class(ray).options(name=f"sitetwin-writer-{uuid.uuid4().hex[:12]}",
                                        scheduling_strategy="SPREAD").remote()
    writer.warm.remote(detectors)       # queued before any unit: the writer's first unit finds it warm
    return writer


def _alive(ray, writer: Any) -> bool:
    """False when a kept writer is gone for good (killed, its node lost); a writer still busy (warming) is alive."""
    try:
        ray.get(writer.pid.remote(), timeout=CONNECT_TIMEOUT_S)
    except ray.exceptions.GetTimeoutError:
        return True
    except Exception:                   # noqa: BLE001 - killed, or its node is gone: replaced
        return False
    return True


def _pool(ray, manifest: Manifest) -> list[Any]:
    """This session's writers, as many as the cluster has CPUs (at most one per store of the manifest), started
    and warming: the pool kept from an earlier run of the session (its writers checked), grown when needed."""
    detectors = [{"weights": u.params["weights"], "imgsz": u.params["imgsz"], "conf": u.params["conf"]}
                 for u in manifest.units if u.kind == "detect"]
    detectors = [d for i, d in enumerate(detectors) if d not in detectors[:i]]
    session = _session(ray)
    if session not in _pools:
        _pools.clear()
        _pools[session] = []
    pool = _pools[session]
    for i, writer in enumerate(pool):
        if not _alive(ray, writer):
            pool[i] = _new_writer(ray, detectors)
        elif detectors:
            writer.warm.remote(detectors)       # this run's detectors (the imports are there already)
    capacity = max(1, int(ray.cluster_resources().get("CPU", 1)))
    wanted = min(capacity, len({u.db for u in manifest.units}))
    while len(pool) < wanted:
        pool.append(_new_writer(ray, detectors))
    return pool


def _run_writers(ray, manifest: Manifest, queues: dict[Path, list[Unit]], keys: dict[int, str], settle,
                 pool: list[Any], *, token: str | None) -> None:
    from sitetwin.cluster.units import one_line, prepare_model

    run_id = uuid.uuid4().hex[:12]
    exit_once = _test_exit_once()
    prepare = ray.remote(max_retries=RETRIES)(prepare_model)
    # the IFC files of every model unit, parsed and tessellated in parallel from the start
    prepared = {u.index: prepare.remote(str(u.db), u.params["files"])
                for units in queues.values() for u in units if u.kind == "model"}
    waiting = list(queues)                       # stores not started yet
    idle = list(range(len(pool)))                # writers (their place in the pool) without a store
    running: dict[Any, tuple[int, Path, Unit]] = {}   # call ref -> (writer, its store, the unit)

    def submit(slot: int, db: Path) -> None:
        # the store's next unit, to the one writer that holds the store until its queue is empty
        unit = queues[db].pop(0)
        options = {"run_id": run_id, "manifest": str(manifest.path), "token": token,
                   "prepared": [prepared[unit.index]] if unit.index in prepared else None,
                   "exit_first_attempt": unit.index in exit_once}
        running[pool[slot].run.remote(unit, keys[unit.index], options)] = (slot, db, unit)

    def start_more() -> None:
        while waiting and idle:
            submit(idle.pop(0), waiting.pop(0))

    start_more()
    while running:
        ready, _ = ray.wait(list(running), num_returns=1)
        slot, db, unit = running.pop(ready[0])
        try:
            outcome = ray.get(ready[0])
        except ray.exceptions.RayActorError as exc:    # the writer was lost more often than Ray retries
            error = f"its writer was lost {RETRIES + 1} times: {one_line(exc)}"
            outcome = _outcome(unit, "failed", error, keys[unit.index])
            with contextlib.suppress(Exception):
                ray.kill(pool[slot])
            pool[slot] = _new_writer(ray, [])
            with contextlib.suppress(Exception):
                ray.get(pool[slot].fail.remote(unit, keys[unit.index], error))
        except ray.exceptions.RayTaskError as exc:     # the unit could not even start (its store stayed locked)
            outcome = _outcome(unit, "failed", one_line(exc.cause or exc), keys[unit.index])
        settle(outcome)
        if queues[db]:
            submit(slot, db)
        else:
            idle.append(slot)
            start_more()
