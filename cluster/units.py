"""What each kind of unit does, calling the library as the CLI does; and the site's writer that runs them.

Heavy work that needs no store runs anywhere, in parallel: :func:`prepare_model` parses and
tessellates an IFC file into the store's geometry cache (keyed by the file's sha256; written
by rename, so two workers never leave half an entry), and :func:`unit_digest` hashes a unit's
inputs. Everything that writes to a store runs in :class:`SiteWriter`, the one process that
writes that store during a run (`sitetwin.cluster.runner` keeps a pool of them and gives each
store to one at a time): a unit opens the store, calls the library and records itself in the
ledger (``cluster.ledger``), so a store never has two writers however many of its units finish
at once. A writer keeps its imports and detector sessions (:func:`cached_detector`) between units.

These are plain functions and a plain class; the runner wraps them as Ray tasks and an actor.
"""

from __future__ import annotations

import os
import socket
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sitetwin.cluster import inputs, ledger
from sitetwin.cluster.errors import ClusterError
from sitetwin.cluster.manifest import Unit, unit_key
from sitetwin.data.errors import SitetwinError, message_text
from sitetwin.data.i18n import N_
from sitetwin.data.store import Store, open_store

Finish = Callable[[Store, dict[str, Any]], None]


def one_line(exc: BaseException) -> str:
    """An error as one line, in English (what the ledger and ``--json`` keep): the message of sitetwin's own
    errors, the type and first line of others."""
    text = (message_text(exc).strip().splitlines() or [""])[0]
    if isinstance(exc, SitetwinError) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def writer_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


# --------------------------------------------------------------------------------------
# work that needs no store

def unit_digest(unit: Unit) -> dict[str, Any]:
    """The content hashes of a unit's inputs and its key (scores get theirs again once their site's keys are
    known); ``error`` instead when an input cannot be read."""
    try:
        digests = [inputs.digest(ref) for ref in unit.inputs]
    except Exception as exc:
        return {"index": unit.index, "digests": None, "key": None, "error": one_line(exc)}
    return {"index": unit.index, "digests": digests, "key": unit_key(unit, digests), "error": None}


def prepare_model(db: str | Path, files: list[str], threads: int = 1) -> dict[str, Any]:
    """Parse and tessellate IFC files into the store's geometry cache without opening the store.

    The writer's ``load_model`` then finds each file in the cache. Returns ``error`` (one line)
    when a file cannot be parsed; the writer records it as the unit's failure.
    """
    from sitetwin.bim import cache
    from sitetwin.bim.ifc import inspect_ifc
    from sitetwin.bim.load import parse_model
    from sitetwin.data.store import cache_dir_for

    cache_dir = cache_dir_for(Path(db))
    parsed_now = 0
    try:
        for ref in files:
            with inputs.local_copy(ref) as path:
                source = inspect_ifc(path)
                if cache.entry_dir(cache_dir, source.sha256).exists():
                    continue
                parsed = parse_model(path, threads=threads)
                if parsed.tessellation.global_ids:     # load_model refuses a model without geometry, and says why
                    cache.save(cache_dir, parsed)
                    parsed_now += 1
    except Exception as exc:
        return {"error": one_line(exc), "parsed": parsed_now}
    return {"error": None, "parsed": parsed_now}


# --------------------------------------------------------------------------------------
# what a writer keeps between units: its imports and its detector sessions

# Detector sessions of this process, by weights file (resolved path, mtime, size) and settings; least recently used
# last. A writer runs many units of many stores: each weights file is loaded once, not once per unit.
DETECTORS_KEPT = 4
_detectors: OrderedDict[tuple[Any, ...], Any] = OrderedDict()

# What the units import, imported once when a writer starts (:meth:`SiteWriter.warm`), while the run hashes its inputs.
WARM_MODULES = ("sitetwin.bim.load", "sitetwin.bim.queries", "sitetwin.bim.mesh", "sitetwin.twin.survey",
                "sitetwin.twin.formats", "sitetwin.vision.pipeline", "sitetwin.vision.hazards",
                "sitetwin.vision.queries", "sitetwin.oversight.raising", "sitetwin.oversight.risk",
                "sitetwin.oversight.evaluation", "sitetwin.oversight.accounts", "sitetwin.cluster.queries",
                "open3d", "laspy", "scipy.spatial")


def cached_detector(weights: str | Path, *, imgsz: int, conf: float, iou: float) -> Any:
    """This process's detector for a weights file and settings, loaded on first use and kept (see DETECTORS_KEPT).

    Keyed by the file's resolved path, mtime and size: weights rewritten in place are loaded again. A temporary
    copy (a fetched URI) gets a new path each time, so it is loaded each time and soon dropped.
    """
    from sitetwin.vision.detect import Detector

    path = Path(weights)
    try:
        st = path.stat()
    except OSError:
        return Detector(path, imgsz=imgsz, conf=conf, iou=iou)     # it says what is wrong with the file
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size, int(imgsz), float(conf), float(iou))
    detector = _detectors.get(key)
    if detector is None:
        detector = Detector(path, imgsz=imgsz, conf=conf, iou=iou)
        _detectors[key] = detector
        while len(_detectors) > DETECTORS_KEPT:
            _detectors.popitem(last=False)
    _detectors.move_to_end(key)
    return detector


def warm(detectors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Import what the units need and load the run's detectors (``weights``, ``imgsz``, ``conf``, ``iou`` each;
    local files only) in this process; a failure here is left for the unit itself to report."""
    import importlib

    started = time.perf_counter()
    for name in WARM_MODULES:
        try:
            importlib.import_module(name)
        except Exception:          # noqa: BLE001 - the unit that needs it reports the error
            pass
    loaded = 0
    for d in detectors or []:
        if inputs.is_uri(d["weights"]):
            continue
        try:
            from sitetwin.vision.pipeline import DetectConfig

            config = DetectConfig(imgsz=d["imgsz"], conf=d["conf"])        # as run_detect makes it
            cached_detector(d["weights"], imgsz=config.imgsz, conf=config.conf, iou=config.iou)
            loaded += 1
        except Exception:          # noqa: BLE001 - the detect unit reports it, with its label
            pass
    return {"writer": writer_name(), "detectors": loaded, "seconds": round(time.perf_counter() - started, 3)}


# --------------------------------------------------------------------------------------
# the units, in the writer

def run_model(store: Store, unit: Unit, finish: Finish, **_: Any) -> None:
    """Load each IFC file as a model of the site (one transaction per file, as `sitetwin bim load`)."""
    from sitetwin.bim.load import load_model

    reports = []
    for ref in unit.params["files"]:
        with inputs.local_copy(ref) as path:
            reports.append(load_model(store, path, site_code=unit.site, name=unit.params.get("name")))
    finish(store, {"models": [r.model_id for r in reports], "elements": sum(r.element_count for r in reports),
                   "reused": [r.model_id for r in reports if r.reused],
                   "warnings": [w for r in reports for w in r.warnings]})


def run_survey(store: Store, unit: Unit, finish: Finish, **_: Any) -> None:
    """Import, register and analyse the survey against the site's models (as `sitetwin survey add`)."""
    from sitetwin.bim.queries import current_model_ids, model_record
    from sitetwin.twin.survey import add_survey

    p = unit.params
    model_ids = p.get("model") or current_model_ids(store, unit.site)
    if not model_ids:
        raise ClusterError(N_("site {site} has no model to compare the survey with; load one first (a model unit)"),
                           site=unit.site)
    for model_id in model_ids:
        record = model_record(store, model_id)
        if record is not None and record["site_code"] != unit.site:
            raise ClusterError(N_("model {model} belongs to site {model_site}, not {site}"), model=model_id,
                               model_site=record["site_code"], site=unit.site)
    with inputs.local_copies(p["files"]) as paths:
        report = add_survey(store, paths, model_ids=model_ids, epoch=p.get("epoch"), register=p["register"],
                            units=p["units"], name=p.get("name"))
    finish(store, {"survey": report.survey_id, "points": report.point_count, "status": report.status_counts,
                   "reused": report.reused})


def run_detect(store: Store, unit: Unit, finish: Finish, *, lost_since: Any = None, **_: Any) -> None:
    """Detect, tag, apply the hazard rules and raise findings (as `sitetwin detect`)."""
    import contextlib

    from sitetwin.oversight.raising import raise_drafts
    from sitetwin.vision.hazards import HazardConfig
    from sitetwin.vision.pipeline import DetectConfig, detect_source
    from sitetwin.vision.queries import list_runs

    if lost_since is not None:
        # An attempt was lost, perhaps after its detection committed and before the ledger did: a store's units
        # run one at a time, so a detection of this site begun since that attempt began is this unit's own.
        mine = [r for r in list_runs(store, kind="detect") if r["site_code"] == unit.site
                and r["status"] == "done" and r["started_at"] is not None and r["started_at"] >= lost_since]
        if mine:
            finish(store, {"run": mine[-1]["run_id"], "recovered": True})
            return
    p = unit.params
    hazards = HazardConfig.from_file(p["rules"]) if p.get("rules") else HazardConfig()
    config = DetectConfig(imgsz=p["imgsz"], conf=p["conf"], hazards=hazards)
    with contextlib.ExitStack() as stack:
        weights = stack.enter_context(inputs.local_copy(p["weights"]))
        source = stack.enter_context(inputs.local_copy(p["source"])) if p.get("source") else None
        detector = cached_detector(weights, imgsz=config.imgsz, conf=config.conf, iou=config.iou)
        report = detect_source(store, source, weights, site_code=unit.site, pano_id=p.get("pano"), config=config,
                               detector=detector, sink=raise_drafts)
    finish(store, {"run": report.run_id, "frames": report.frames, "detections": report.detections,
                   "hazards": report.hazards, "findings": report.findings})


def run_score(store: Store, unit: Unit, finish: Finish, *, token: str | None = None, **_: Any) -> None:
    """Record the day's risk score and evaluate the site (as `sitetwin risk --record` and `sitetwin evaluate`),
    in one transaction with the ledger's ``done``."""
    from sitetwin.oversight.accounts import caller_scope
    from sitetwin.oversight.evaluation import evaluate
    from sitetwin.oversight.risk import record_risk

    p = unit.params
    scope = caller_scope(store, token)
    with store.transaction():
        [risk] = record_risk(store, scope, [unit.site], as_of=p["as_of"])
        ev = evaluate(store, scope, unit.site, scheme=p.get("scheme_file") or p.get("scheme", "provincial"),
                      as_of=p["as_of"], record=True)
        finish(store, {"risk": risk.score, "tier": risk.tier, "evaluation": ev.evaluation_id, "grade": ev.grade,
                       "premium_factor": ev.premium_factor})


RUNNERS: dict[str, Callable[..., None]] = {"model": run_model, "survey": run_survey, "detect": run_detect,
                                           "score": run_score}


def execute(unit: Unit, key: str, *, run_id: str, manifest: str | None = None, prepared: Any = None,
            token: str | None = None, exit_first_attempt: bool = False,
            lock_timeout_s: float = 600.0) -> dict[str, Any]:
    """Run one unit against its store and record it in the ledger; returns what happened (never raises for the
    unit's own failure: that is recorded with its one-line error and returned).

    ``prepared``: for a model unit, a one-element list holding the reference to its
    :func:`prepare_model` result (resolved here, so that a failed preparation is this unit's failure).
    ``exit_first_attempt`` is a test hook: the process exits (as a lost worker does) right after the
    unit's first attempt is recorded, to prove that the runner retries it.
    """
    started = time.perf_counter()
    writer = writer_name()
    base = {"index": unit.index, "kind": unit.kind, "site": unit.site, "label": unit.label, "key": key}
    with open_store(unit.db, lock_timeout_s=lock_timeout_s) as store:
        from sitetwin.cluster.queries import unit_status

        if unit_status(store, key) == "done":
            return {**base, "status": "skipped", "error": None, "seconds": 0.0}
        attempt, lost_since = ledger.start(store, key, kind=unit.kind, site_code=unit.site, run_id=run_id,
                                              manifest=manifest, unit_index=unit.index, writer=writer)
    if exit_first_attempt and attempt == 1:
        os._exit(17)     # test hook (see the docstring): a worker lost mid-unit

    done: dict[str, Any] = {}

    def finish(store: Store, result: dict[str, Any]) -> None:
        ledger.finish(store, key, status="done", seconds=time.perf_counter() - started, writer=writer, result=result)
        done["result"] = result

    try:
        if prepared:
            import ray

            outcome = ray.get(prepared[0])
            if outcome.get("error"):
                raise ClusterError(N_("{error}"), error=outcome["error"])     # the one line prepare_model recorded
        with open_store(unit.db, lock_timeout_s=lock_timeout_s) as store:
            RUNNERS[unit.kind](store, unit, finish, token=token, lost_since=lost_since)
    except Exception as exc:
        error = one_line(exc)
        record_failure(unit, key, error, seconds=time.perf_counter() - started, lock_timeout_s=lock_timeout_s)
        return {**base, "status": "failed", "error": error, "seconds": round(time.perf_counter() - started, 3),
                "attempt": attempt}
    return {**base, "status": "done", "error": None, "seconds": round(time.perf_counter() - started, 3),
            "attempt": attempt, "result": done.get("result")}


def record_failure(unit: Unit, key: str, error: str, *, seconds: float = 0.0, lock_timeout_s: float = 600.0) -> None:
    """Mark a started unit failed with its one-line error."""
    with open_store(unit.db, lock_timeout_s=lock_timeout_s) as store:
        ledger.finish(store, key, status="failed", seconds=seconds, writer=writer_name(), error=error)


class SiteWriter:
    """A writer of the run's pool: a long-lived process that runs units one at a time.

    The runner makes it a Ray actor (``max_concurrency=1``, restarted when its process is lost), warms it once
    (:meth:`warm`: imports, the run's detectors) and gives it whole stores in turn: while a store has units left,
    they all go to the same writer, in the site's order, so a store never has two writers. Between units the
    writer keeps its imports and detector sessions, not the store (each unit opens and closes it).
    """

    def __init__(self) -> None:
        self.started = time.time()

    def warm(self, detectors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        return warm(detectors)

    def run(self, unit: Unit, key: str, options: dict[str, Any]) -> dict[str, Any]:
        return execute(unit, key, **options)

    def fail(self, unit: Unit, key: str, error: str) -> None:
        record_failure(unit, key, error)

    def pid(self) -> int:
        return os.getpid()
