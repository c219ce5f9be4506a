"""vision's tables in the store (migration 0004): runs, cameras, detections, hazards, stage observations.

Every write goes through :class:`data.store.Store` with bound values; callers wrap a whole
import in ``store.transaction()`` so that a failure leaves the store as it was.

Tables (columns in ``data/migrations/0004_vision.sql``):

- ``vision_runs``: one row per train / eval / export / detect run (dataset hash, config,
  weights hash, metrics, per-class figures, artefact paths).
- ``cameras``: fixed site cameras with intrinsics and ``T_model_from_camera``.
- ``detections`` (contract 3): one row per box, with source, time, class, confidence, box in
  source pixels, pano/camera, track, the element and storey it was tagged with, and its 3D
  position (metres, local frame).
- ``hazards`` (contract 3): one row per hazard, with rule, severity, time span, element,
  storey, position, evidence crop paths and the finding raised for it.
- ``stage_observations`` and the view ``observed_stages``: construction stages seen on elements.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sitetwin.data.i18n import N_
from sitetwin.data.store import Store
from sitetwin.vision.errors import VisionError

DETECTION_COLUMNS = ("detection_id", "site_code", "source_kind", "source_ref", "frame_index", "captured_at",
                     "class_name", "confidence", "x1", "y1", "x2", "y2", "pano_id", "camera_id", "track_id",
                     "model_id", "global_id", "ifc_class", "storey", "x_m", "y_m", "z_m", "distance_m", "run_id",
                     "attributes")
HAZARD_COLUMNS = ("hazard_id", "site_code", "rule", "severity", "message", "started_at", "ended_at", "duration_s",
                  "source_kind", "source_ref", "pano_id", "camera_id", "track_id", "storey", "model_id", "global_id",
                  "x_m", "y_m", "z_m", "distance_m", "detection_ids", "evidence", "run_id", "finding_id")
SOURCE_KINDS = ("image", "video", "stream", "panorama", "camera")


def new_id(prefix: str, digits: int = 15) -> str:
    """A random id such as ``D3f9a...``: prefix letter plus ``digits`` hex digits."""
    return prefix + secrets.token_hex((digits + 1) // 2)[:digits]


@dataclass(frozen=True)
class RunRecord:
    """One detector run as stored in ``vision_runs``."""

    run_id: str
    kind: str                                   # train | eval | export | detect
    started_at: dt.datetime
    finished_at: dt.datetime | None = None
    site_code: str | None = None
    parent_run_id: str | None = None
    model_cfg: str | None = None
    weights_path: str | None = None
    weights_sha256: str | None = None
    class_names: tuple[str, ...] = ()
    dataset_path: str | None = None
    dataset_hash: str | None = None
    config: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    per_class: tuple[dict, ...] = ()
    artifacts: dict = field(default_factory=dict)
    status: str = "done"

    @property
    def seconds(self) -> float | None:
        if self.finished_at is None:
            return None
        return round((self.finished_at - self.started_at).total_seconds(), 3)


def record_run(store: Store, run: RunRecord) -> str:
    """Insert a run; returns its id. A site code that the store does not know is refused."""
    if run.kind not in ("train", "eval", "export", "detect"):
        raise VisionError(N_("run kind {kind!r}: use train, eval, export or detect"), kind=run.kind)
    if run.site_code is not None and not store.scalar("SELECT count(*) FROM sites WHERE site_code = ?",
                                                      [run.site_code]):
        raise VisionError(N_("{store}: no site {site!r}"), store=store.label, site=run.site_code)
    store.execute(
        "INSERT INTO vision_runs (run_id, kind, site_code, parent_run_id, model_cfg, weights_path, weights_sha256,"
        " class_names, dataset_path, dataset_hash, config, metrics, per_class, artifacts, started_at, finished_at,"
        " seconds, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [run.run_id, run.kind, run.site_code, run.parent_run_id, run.model_cfg, run.weights_path, run.weights_sha256,
         list(run.class_names), run.dataset_path, run.dataset_hash, _jsonable(run.config), _jsonable(run.metrics),
         _jsonable(list(run.per_class)), _jsonable(run.artifacts), run.started_at, run.finished_at, run.seconds,
         run.status])
    return run.run_id


def run_for_weights(store: Store, weights_sha256: str) -> str | None:
    """The train (or export) run that produced weights with this hash, if the store knows it."""
    return store.scalar("SELECT run_id FROM vision_runs WHERE weights_sha256 = ? AND kind IN ('train', 'export') "
                        "ORDER BY started_at DESC LIMIT 1", [weights_sha256])


def get_run(store: Store, run_id: str) -> dict:
    row = store.one("SELECT * FROM vision_runs WHERE run_id = ?", [run_id])
    if row is None:
        raise VisionError(N_("{store}: no vision run {run_id!r}"), store=store.label, run_id=run_id)
    for k in ("class_names", "config", "metrics", "per_class", "artifacts"):
        if isinstance(row.get(k), str):
            row[k] = json.loads(row[k])
    return row


def insert_detections(store: Store, rows: Sequence[dict]) -> int:
    """Append detection rows (dicts with :data:`DETECTION_COLUMNS` keys; missing ones are NULL)."""
    if not rows:
        return 0
    import pandas as pd

    for r in rows:
        if r.get("source_kind") not in SOURCE_KINDS:
            raise VisionError(N_("detection source_kind {source_kind!r}: use one of {known}"),
                              source_kind=r.get("source_kind"), known=", ".join(SOURCE_KINDS))
    frame = pd.DataFrame([{c: _cell(r.get(c)) for c in DETECTION_COLUMNS} for r in rows],
                         columns=list(DETECTION_COLUMNS))
    frame = _typed(frame, ints=("frame_index", "track_id"),
                   floats=("confidence", "x1", "y1", "x2", "y2", "x_m", "y_m", "z_m", "distance_m"),
                   times=("captured_at",))
    return store.insert_frame("detections", frame)


def purge_detections(store: Store, site_code: str, *, before: dt.datetime | None = None) -> int:
    """Retention: delete a site's detections captured before ``before`` (all of them without it), with the stage
    observations made from them, in one transaction; returns how many detections went.

    Hazards, and the findings raised from them, are records of their own and stay: their ``detection_ids``
    then name detections no longer kept. A detection without a capture time is kept unless ``before`` is None.
    """
    from sitetwin.data.store import atomic

    cond = "site_code = ?"
    args: list[Any] = [site_code]
    if before is not None:
        cond, args = cond + " AND captured_at < ?", [*args, before]
    with atomic(store):
        ids = [r[0] for r in store.execute(f"SELECT detection_id FROM detections WHERE {cond}", args)]
        if not ids:
            return 0
        store.execute(f"DELETE FROM stage_observations WHERE site_code = ? AND detection_id IN "
                      f"(SELECT detection_id FROM detections WHERE {cond})", [site_code, *args])
        store.execute(f"DELETE FROM detections WHERE {cond}", args)
    return len(ids)


def insert_hazards(store: Store, rows: Sequence[dict]) -> int:
    if not rows:
        return 0
    import pandas as pd

    frame = pd.DataFrame([{c: _cell(r.get(c)) for c in HAZARD_COLUMNS} for r in rows], columns=list(HAZARD_COLUMNS))
    frame = _typed(frame, ints=("track_id",), floats=("duration_s", "x_m", "y_m", "z_m", "distance_m"),
                   times=("started_at", "ended_at"))
    return store.insert_frame("hazards", frame)


def record_rule_hazards(store: Store, rows: Sequence[dict]) -> list[str]:
    """Store hazards of a rule judged outside vision (``hazards.RECORDED_RULES``: dangerous-works zones), once each.

    ``rows`` are dicts with :data:`HAZARD_COLUMNS` keys; each needs a ``hazard_id`` ('H' + 15 hex digits, chosen
    by the caller so that judging the same evidence again names the same hazard), a known site and a recorded
    rule. Rows whose hazard is already stored are skipped. Returns the ids stored now.
    """
    from sitetwin.vision.hazards import RECORDED_RULES

    fresh = []
    for r in rows:
        hid = r.get("hazard_id")
        if not (isinstance(hid, str) and len(hid) == 16 and hid[0] == "H"):
            raise VisionError(N_("hazard_id {hazard_id!r}: use 'H' and 15 hex digits"), hazard_id=hid)
        if r.get("rule") not in RECORDED_RULES:
            raise VisionError(N_("hazard {hazard_id}: rule {rule!r} is not recorded from outside vision "
                                 "(recorded rules: {recorded})"), hazard_id=hid, rule=r.get("rule"),
                              recorded=", ".join(RECORDED_RULES))
        if r.get("severity") not in ("low", "medium", "high", "critical"):
            raise VisionError(N_("hazard {hazard_id}: severity {severity!r}: use low, medium, high or critical"),
                              hazard_id=hid, severity=r.get("severity"))
        if not store.scalar("SELECT count(*) FROM sites WHERE site_code = ?", [r.get("site_code")]):
            raise VisionError(N_("hazard {hazard_id}: no site {site!r} in {store}"), hazard_id=hid,
                              site=r.get("site_code"), store=store.label)
        if not store.scalar("SELECT count(*) FROM hazards WHERE hazard_id = ?", [hid]) and hid not in fresh:
            fresh.append(hid)
    insert_hazards(store, [r for r in rows if r["hazard_id"] in fresh])
    return fresh


def link_finding(store: Store, hazard_id: str, finding_id: str) -> None:
    """Record the finding raised for a stored hazard (a regulator raising one from the hazard page)."""
    if not store.scalar("SELECT count(*) FROM hazards WHERE hazard_id = ?", [hazard_id]):
        raise VisionError(N_("hazard {hazard_id!r}: no such hazard in {store}"), hazard_id=hazard_id, store=store.label)
    store.execute("UPDATE hazards SET finding_id = ? WHERE hazard_id = ?", [finding_id, hazard_id])


def insert_stage_observations(store: Store, rows: Sequence[dict]) -> int:
    if not rows:
        return 0
    import pandas as pd

    cols = ("site_code", "model_id", "global_id", "stage", "stage_rank", "observed_at", "confidence", "detection_id",
            "run_id")
    frame = pd.DataFrame([{c: r.get(c) for c in cols} for r in rows], columns=list(cols))
    frame = _typed(frame, ints=("stage_rank",), floats=("confidence",), times=("observed_at",))
    return store.insert_frame("stage_observations", frame)


# --- cameras ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Camera:
    """A fixed site camera: pinhole intrinsics (pixels) and its pose in the site's local frame.

    ``T_model_from_camera`` maps the camera's panorama-convention frame (x forward, y left,
    z up; see :mod:`panorama.camera`) to the model frame, as for a panorama.
    """

    site_code: str
    camera_id: str
    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    T_model_from_camera: np.ndarray
    name: str | None = None
    source_url: str | None = None
    model_id: str | None = None

    def perspective(self):
        """The :class:`panorama.camera.PerspectiveCamera` of this camera (yaw/pitch/roll 0)."""
        from sitetwin.panorama.camera import PerspectiveCamera

        return PerspectiveCamera(self.width, self.height, self.fx, self.fy, self.cx, self.cy)


def add_camera(store: Store, camera: Camera, *, replace: bool = False) -> None:
    from sitetwin.panorama.camera import check_transform

    if not store.scalar("SELECT count(*) FROM sites WHERE site_code = ?", [camera.site_code]):
        raise VisionError(N_("{store}: no site {site!r}"), store=store.label, site=camera.site_code)
    try:
        T = check_transform(camera.T_model_from_camera)
        camera.perspective()
    except ValueError as exc:
        raise VisionError(N_("camera {camera_id}: {problem}"), camera_id=camera.camera_id, problem=exc) from None
    exists = store.scalar("SELECT count(*) FROM cameras WHERE site_code = ? AND camera_id = ?",
                          [camera.site_code, camera.camera_id])
    if exists and not replace:
        raise VisionError(N_("camera {camera_id} already exists on site {site}; pass replace to change it"),
                          camera_id=camera.camera_id, site=camera.site_code)
    if exists:
        store.execute("DELETE FROM cameras WHERE site_code = ? AND camera_id = ?", [camera.site_code, camera.camera_id])
    store.execute("INSERT INTO cameras (site_code, camera_id, name, source_url, width, height, fx, fy, cx, cy, "
                  "T_model_from_camera, model_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                  [camera.site_code, camera.camera_id, camera.name, camera.source_url, int(camera.width),
                   int(camera.height), float(camera.fx), float(camera.fy), float(camera.cx), float(camera.cy),
                   T.tolist(), camera.model_id])


def get_camera(store: Store, camera_id: str, site_code: str | None = None) -> Camera:
    rows = store.rows("SELECT * FROM cameras WHERE camera_id = ?" + (" AND site_code = ?" if site_code else ""),
                      [camera_id, site_code] if site_code else [camera_id])
    if not rows:
        raise VisionError(N_("{store}: no camera {camera_id!r}; add it with `sitetwin vision camera add`"),
                          store=store.label, camera_id=camera_id)
    if len(rows) > 1:
        raise VisionError(N_("camera {camera_id!r} exists on several sites; say which with --site"),
                          camera_id=camera_id)
    r = rows[0]
    T = r["T_model_from_camera"]
    return Camera(site_code=r["site_code"], camera_id=r["camera_id"], width=r["width"], height=r["height"],
                  fx=r["fx"], fy=r["fy"], cx=r["cx"], cy=r["cy"],
                  T_model_from_camera=np.asarray(json.loads(T) if isinstance(T, str) else T, dtype=np.float64),
                  name=r["name"], source_url=r["source_url"], model_id=r["model_id"])


# --- helpers ---------------------------------------------------------------------------------------

def _cell(v: Any) -> Any:
    if isinstance(v, (dict, list, tuple)):
        return json.dumps(_jsonable(v), separators=(",", ":"))
    if isinstance(v, np.generic):
        return v.item()
    return v


def _jsonable(v: Any) -> Any:
    from sitetwin.data.clikit import to_jsonable

    return to_jsonable(v)


def _typed(frame, *, ints: Iterable[str] = (), floats: Iterable[str] = (), times: Iterable[str] = ()):
    import pandas as pd

    for c in ints:
        frame[c] = pd.array(frame[c].tolist(), dtype="Int64")
    for c in floats:
        frame[c] = pd.to_numeric(frame[c], errors="coerce").astype("float64")
    for c in times:
        frame[c] = pd.to_datetime(frame[c], utc=False)
    for c in frame.columns:
        if frame[c].dtype == object:
            frame[c] = frame[c].astype("string")
    return frame
