"""Detect on a source, tag onto the model, apply the hazard rules, store everything; findings through a sink.

>>> with open_store("site.duckdb") as store:                                  # doctest: +SKIP
...     report = detect_source(store, "pano.jpg", "best.onnx", pano_id="P1a2b3c")
...     report.detections, report.hazards

Sources: an image, a folder, a video file or a stream (``vision.sources``), or a stored,
posed panorama (``pano_id``), or frames of a fixed site camera (``camera_id``) whose pose
and intrinsics are in the ``cameras`` table. Posed sources are tagged onto the model and
checked by every hazard rule; unposed images get the PPE rules only (no 3D position).

What is written, and when: a still image, a folder or a panorama is one transaction (the
run, its detections, hazards and, with a ``sink``, their findings; or nothing). Video and streams are written in
chunks of ``commit_every`` frames, each chunk one transaction, so a stream that drops keeps
every frame processed before the drop; the run's ``status`` says ``done`` or ``dropped``.
Hazards on tracked video are raised only once they held ``min_duration_s``
(:class:`vision.hazards.Persistence`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sitetwin.data.clock import utcnow
from sitetwin.data.errors import message_text
from sitetwin.data.evidence import FindingDraft, FindingSink
from sitetwin.data.i18n import N_
from sitetwin.data.store import Store
from sitetwin.vision.boxes import Boxes
from sitetwin.vision.detect import Detector, TileConfig, Tracker, predict_tiled
from sitetwin.vision.detection_store import (
    RunRecord,
    get_camera,
    insert_detections,
    insert_hazards,
    insert_stage_observations,
    new_id,
    record_run,
    run_for_weights,
)
from sitetwin.vision.errors import SourceError, StreamDropped, VisionError, WeightsError
from sitetwin.vision.hazards import (
    Condition,
    HazardConfig,
    HazardContext,
    Persistence,
    PersistentHazard,
    Sighting,
    edges_from_model,
    evaluate,
    pair_people,
    zones_from_sensors,
)
from sitetwin.vision.panoramic import PanoViews, crop_panorama, detect_panorama
from sitetwin.vision.sources import Reconnect, open_source
from sitetwin.vision.tagging import TagConfig, Tagger, View

STAGES = {"formwork": 1, "rebar": 2, "concrete": 3}


@dataclass(frozen=True)
class DetectConfig:
    """How ``sitetwin detect`` runs."""

    imgsz: int = 640                       # (px) detector input size
    conf: float = 0.25                     # (0-1) confidence threshold
    iou: float = 0.7                       # (0-1) NMS IoU threshold
    tiles: TileConfig | None = None        # sliced inference on large plain images (None: whole image)
    views: PanoViews = field(default_factory=PanoViews)   # panorama views
    tracker: str = "bytetrack"             # bytetrack | botsort, for video and streams
    track: bool = True                     # (bool) track video and streams
    stride: int = 1                        # (int >= 1) process every n-th video frame
    commit_every: int = 25                 # (frames) video/stream rows are written in chunks this big
    max_frames: int | None = None          # (int) stop after this many processed frames (streams run forever)
    hazards: HazardConfig = field(default_factory=HazardConfig)
    tagging: TagConfig = field(default_factory=TagConfig)
    check_classes: bool = True             # (bool) refuse weights lacking a class the rules need
    save_crops: bool = True                # (bool) evidence crops beside the store
    progress_min_conf: float = 0.4         # (0-1) formwork/rebar/concrete sightings below this are not progress
    reconnect: Reconnect = field(default_factory=Reconnect)


@dataclass(frozen=True)
class DetectReport:
    run_id: str
    site_code: str
    source_kind: str
    source_ref: str
    frames: int
    detections: int
    tagged: int
    hazards: int
    findings: int
    stage_observations: int
    per_class: dict
    hazard_rules: dict
    status: str = "done"
    seconds: float = 0.0
    hazard_ids: tuple[str, ...] = ()
    message: str | None = None


@dataclass(frozen=True)
class DetectorInfo:
    """What a run records about the detector that made its boxes (any detector, not only ours)."""

    names: tuple[str, ...]
    weights: Path | None = None
    backend: str = "external"
    imgsz: int | None = None


class _Run:
    """State of one detect run: rows waiting to be written, counters, the run row."""

    def __init__(self, store: Store, site_code: str, source_kind: str, source_ref: str, detector,
                 config: DetectConfig, *, pano_id=None, camera_id=None, parent=None, weights_sha=None,
                 sink: FindingSink | None = None):
        self.store = store
        self.sink = sink
        self.site_code = site_code
        self.source_kind = source_kind
        self.source_ref = source_ref
        self.config = config
        self.pano_id = pano_id
        self.camera_id = camera_id
        self.run_id = new_id("R", 11)
        self.started = utcnow()
        self.detections: list[dict] = []
        self.hazards: list[dict] = []
        self.stages: list[dict] = []
        self.crops: list[tuple[Path, np.ndarray]] = []
        self.counts = {"frames": 0, "detections": 0, "tagged": 0, "hazards": 0, "findings": 0, "stages": 0}
        self.per_class: dict[str, int] = {}
        self.per_rule: dict[str, int] = {}
        self.hazard_ids: list[str] = []
        self.episodes: dict[tuple, tuple] = {}       # tracked-video episode -> (hazard_id, started_at)
        self.updates: list[tuple] = []               # (hazard_id, duration_s, ended_at, evidence) of written rows
        self.run_written = False
        self.record = RunRecord(run_id=self.run_id, kind="detect", started_at=self.started, site_code=site_code,
                                parent_run_id=parent, model_cfg=None,
                                weights_path=str(detector.weights) if detector.weights else None,
                                weights_sha256=weights_sha, class_names=detector.names,
                                config=_config_json(config, detector), status="running",
                                artifacts={"source_kind": source_kind, "source_ref": source_ref,
                                           "pano_id": pano_id, "camera_id": camera_id, "backend": detector.backend})

    def evidence_dir(self) -> Path:
        return Path(self.store.cache_dir) / "vision" / "evidence" / self.run_id

    def flush(self, status: str | None = None) -> None:
        """Write what is waiting (one transaction); with ``status`` also close the run row."""
        for path, pixels in self.crops:       # files first: a failed write leaves orphan files, not dangling paths
            _save_jpeg(path, pixels)
        with self.store.transaction():
            if not self.run_written:
                record_run(self.store, self.record)
                self.run_written = True
            insert_detections(self.store, self.detections)
            if self.sink is not None and self.hazards:
                raised = self.sink(self.store, [hazard_finding(h) for h in self.hazards])
                for h in self.hazards:
                    h["finding_id"] = raised.get(h["hazard_id"])
                self.counts["findings"] += len(raised)
            insert_hazards(self.store, self.hazards)
            for hid, duration, ended, evidence in self.updates:
                self.store.execute("UPDATE hazards SET duration_s = ?, ended_at = coalesce(?, ended_at), evidence = ? "
                                   "WHERE hazard_id = ?", [duration, ended, evidence, hid])
            insert_stage_observations(self.store, self.stages)
            if status is not None:
                finished = utcnow()
                metrics = {**self.counts, "per_class": self.per_class, "hazard_rules": self.per_rule}
                self.store.execute("UPDATE vision_runs SET status = ?, finished_at = ?, seconds = ?, metrics = ? "
                                   "WHERE run_id = ?", [status, finished,
                                                        round((finished - self.started).total_seconds(), 3), metrics,
                                                        self.run_id])
        self.detections, self.hazards, self.stages, self.crops, self.updates = [], [], [], [], []

    def report(self, status: str, message: str | None = None) -> DetectReport:
        return DetectReport(run_id=self.run_id, site_code=self.site_code, source_kind=self.source_kind,
                            source_ref=self.source_ref, frames=self.counts["frames"],
                            detections=self.counts["detections"], tagged=self.counts["tagged"],
                            hazards=self.counts["hazards"], findings=self.counts["findings"],
                            stage_observations=self.counts["stages"], per_class=dict(self.per_class),
                            hazard_rules=dict(self.per_rule), status=status,
                            seconds=round((utcnow() - self.started).total_seconds(), 3),
                            hazard_ids=tuple(self.hazard_ids), message=message)

    # -- rows --------------------------------------------------------------------------------------

    def add_frame(self, frame_index: int | None, captured_at, boxes: Boxes, tags, image: np.ndarray | None,
                  *, wrap: bool = False) -> tuple[list[str], list[Sighting]]:
        ids, sightings = [], []
        self.counts["frames"] += 1
        for i in range(len(boxes)):
            name = boxes.names[boxes.cls[i]]
            tag = tags[i] if tags else None
            det_id = new_id("D")
            ids.append(det_id)
            x1, y1, x2, y2 = (float(v) for v in boxes.xyxy[i])
            tid = int(boxes.track_id[i]) if boxes.track_id is not None and boxes.track_id[i] >= 0 else None
            point = tag.point_m if tag is not None and tag.point_m is not None else None
            row = {"detection_id": det_id, "site_code": self.site_code, "source_kind": self.source_kind,
                   "source_ref": self.source_ref, "frame_index": frame_index, "captured_at": captured_at,
                   "class_name": name, "confidence": float(boxes.conf[i]), "x1": x1, "y1": y1, "x2": x2, "y2": y2,
                   "pano_id": self.pano_id, "camera_id": self.camera_id, "track_id": tid, "run_id": self.run_id}
            if tag is not None:
                row.update(model_id=tag.model_id, global_id=tag.global_id, ifc_class=tag.ifc_class, storey=tag.storey,
                           distance_m=tag.distance_m, attributes={"tag_method": tag.method})
                if point is not None:
                    row.update(x_m=float(point[0]), y_m=float(point[1]), z_m=float(point[2]))
                if tag.global_id:
                    self.counts["tagged"] += 1
                if name in STAGES and tag.global_id and float(boxes.conf[i]) >= self.config.progress_min_conf:
                    self.stages.append({"site_code": self.site_code, "model_id": tag.model_id,
                                        "global_id": tag.global_id, "stage": name, "stage_rank": STAGES[name],
                                        "observed_at": captured_at, "confidence": float(boxes.conf[i]),
                                        "detection_id": det_id, "run_id": self.run_id})
                    self.counts["stages"] += 1
            self.detections.append(row)
            self.per_class[name] = self.per_class.get(name, 0) + 1
            self.counts["detections"] += 1
            sightings.append(Sighting(index=i, class_name=name, xyxy=(x1, y1, x2, y2), confidence=float(boxes.conf[i]),
                                      point_m=(None if point is None
                                               else (float(point[0]), float(point[1]), float(point[2]))),
                                      track_id=tid, storey=tag.storey if tag else None,
                                      model_id=tag.model_id if tag else None, global_id=tag.global_id if tag else None))
        return ids, sightings

    def add_hazard(self, c: Condition, detection_ids: list[str], *, started_at=None, ended_at=None,
                   duration_s: float = 0.0, image: np.ndarray | None = None, wrap: bool = False) -> str:
        hid = new_id("H")
        evidence: dict[str, Any] = {"detections": list(detection_ids)}
        if self.config.save_crops and image is not None and c.crop_xyxy is not None:
            crop = crop_panorama(image, c.crop_xyxy) if wrap else _crop(image, c.crop_xyxy)
            if crop.size:
                path = self.evidence_dir() / f"{hid}.jpg"
                self.crops.append((path, crop))
                evidence["crops"] = [str(path.relative_to(Path(self.store.cache_dir)))]
        if self.pano_id:
            evidence["pano_id"] = self.pano_id
        if c.crop_xyxy is not None:
            evidence["box_px"] = [round(float(v), 1) for v in c.crop_xyxy]
        p = c.point_m
        self.hazards.append({"hazard_id": hid, "site_code": self.site_code, "rule": c.rule, "severity": c.severity,
                             "message": c.message, "started_at": started_at, "ended_at": ended_at,
                             "duration_s": duration_s, "source_kind": self.source_kind, "source_ref": self.source_ref,
                             "pano_id": self.pano_id, "camera_id": self.camera_id, "track_id": c.track_id,
                             "storey": c.storey, "model_id": c.model_id, "global_id": c.global_id,
                             "x_m": None if p is None else p[0], "y_m": None if p is None else p[1],
                             "z_m": None if p is None else p[2], "distance_m": c.distance_m,
                             "detection_ids": list(detection_ids), "evidence": evidence, "run_id": self.run_id})
        self.counts["hazards"] += 1
        self.per_rule[c.rule] = self.per_rule.get(c.rule, 0) + 1
        self.hazard_ids.append(hid)
        return hid


# --- recording boxes from any detector ----------------------------------------------------------------

class Recorder:
    """Turns boxes found on frames into one stored run: tagged detections, hazards, findings, stage sightings.

    ``detect_source`` feeds it with its detector's boxes; boxes from any other detector (a
    camera vendor's, a labelling tool's) go in the same way. ``view`` (posed frames) enables
    tagging and the 3D rules; ``video`` enables persistence (hazards only after
    ``min_duration_s`` of one track) and writes every ``commit_every`` frames. With a ``sink``
    (the application passes ``oversight.raising.raise_drafts``) each hazard gets a finding in
    the transaction that stores it; without one, hazards are stored without findings.
    """

    def __init__(self, store: Store, *, site_code: str, source_kind: str, source_ref: str, detector,
                 config: DetectConfig = DetectConfig(), view: View | None = None, tagger: Tagger | None = None,
                 context: HazardContext | None = None, pano_id: str | None = None, camera_id: str | None = None,
                 video: bool = False, wrap: bool = False, parent_run_id: str | None = None,
                 weights_sha256: str | None = None, sink: FindingSink | None = None):
        if view is not None and tagger is None:
            tagger = Tagger.from_store(store, site_code, config.tagging)
        self.view, self.tagger, self.config, self.video, self.wrap = view, tagger, config, video, wrap
        self.context = context if (context is not None and view is not None) else HazardContext()
        self.persistence = Persistence(config.hazards) if video else None
        self.run = _Run(store, site_code, source_kind, source_ref, detector, config, pano_id=pano_id,
                        camera_id=camera_id, parent=parent_run_id, weights_sha=weights_sha256, sink=sink)

    @property
    def run_id(self) -> str:
        return self.run.run_id

    def frame(self, image: np.ndarray | None, boxes: Boxes, *, frame_index: int | None = None, time_s: float = 0.0,
              captured_at: dt.datetime | None = None) -> list[str]:
        """Record one frame's boxes; returns their detection ids."""
        run = self.run
        tags = self.tagger.tag(boxes, self.view) if self.view is not None and self.tagger is not None else None
        ids, sightings = run.add_frame(frame_index if self.video else None, captured_at, boxes, tags, image,
                                       wrap=self.wrap)
        if sightings:
            # what pairing found for each person goes with its row: {"head": "hard_hat", "vest": true}
            rows = run.detections[-len(sightings):]
            for index, pair in pair_people(sightings, self.config.hazards).items():
                if index >= 0:
                    attrs = dict(rows[index].get("attributes") or {})
                    attrs.update(head=pair["head"], vest=pair["vest"])
                    rows[index]["attributes"] = attrs
        conditions = evaluate(sightings, self.context, self.config.hazards)
        if self.persistence is None:
            for c in conditions:
                run.add_hazard(c, [ids[i] for i in c.sightings], started_at=captured_at, ended_at=captured_at,
                               image=image, wrap=self.wrap)
        else:
            for ph in self.persistence.update(time_s, conditions, ids):
                _add_persistent(run, ph, image, time_s, captured_at)
            for ph in self.persistence.pop_finished():
                _end_persistent(run, ph)
        if self.video and run.counts["frames"] % self.config.commit_every == 0:
            run.flush()
        return ids

    def finish(self, status: str = "done", message: str | None = None) -> DetectReport:
        """Close open episodes, write what is waiting and the run's final status (one transaction)."""
        if self.persistence is not None:
            for ph in self.persistence.close():
                _end_persistent(self.run, ph)
        self.run.flush(status)
        return self.run.report(status, message)


# --- entry point ---------------------------------------------------------------------------------------

def detect_source(store: Store, source: str | Path | None, weights: str | Path, *, site_code: str | None = None,
                  pano_id: str | None = None, camera_id: str | None = None,
                  config: DetectConfig = DetectConfig(), context: HazardContext | None = None,
                  detector: Detector | None = None, tagger: Tagger | None = None,
                  on_frame: Callable[[int], None] | None = None, sink: FindingSink | None = None) -> DetectReport:
    """Run weights on a source, tag, apply hazard rules, store; see the module docstring.

    ``source`` may be None (or "-") with ``pano_id``: the panorama's stored image is used.
    ``context`` defaults to the model's slab edges plus the sensors package's crane zones.
    ``sink`` raises a finding for each hazard (see :class:`Recorder`).
    """
    if pano_id and camera_id:
        raise VisionError(N_("give --pano or --camera, not both"))
    detector = detector or Detector(weights, imgsz=config.imgsz, conf=config.conf, iou=config.iou)
    posed = bool(pano_id or camera_id)
    if config.check_classes:
        check_rule_classes(detector.names, config.hazards, posed=posed, weights=detector.weights)
    from sitetwin.vision.datasets import file_sha256

    sha = file_sha256(detector.weights)
    parent = run_for_weights(store, sha)
    if pano_id:
        return _detect_panorama(store, source, pano_id, detector, config, context, tagger, parent, sha, sink)
    if source is None or str(source) == "-":
        raise SourceError(N_("no source given: pass an image, folder, video or stream URL (or --pano ID)"))
    camera = get_camera(store, camera_id, site_code) if camera_id else None
    from sitetwin.bim.mesh import resolve_site

    site_code = camera.site_code if camera else resolve_site(store, site_code)
    src = open_source(source, reconnect=config.reconnect, stride=config.stride)
    view = None
    if camera is not None:
        tagger = tagger or Tagger.from_store(store, site_code, config.tagging)
        from sitetwin.panorama.element_map import element_map_perspective

        emap = element_map_perspective(tagger.mesh, camera.perspective(), camera.T_model_from_camera,
                                       scene=tagger.scene)
        view = View(camera.T_model_from_camera, camera.width, camera.height, camera.perspective(), emap)
        if context is None:
            context = HazardContext(tuple(edges_from_model(store, site_code)),
                                    tuple(zones_from_sensors(store, site_code)))
    video = src.kind in ("video", "stream")
    recorder = Recorder(store, site_code=site_code, source_kind="camera" if camera else src.kind,
                        source_ref=str(source), detector=detector, config=config, view=view, tagger=tagger,
                        context=context, camera_id=camera_id, video=video, parent_run_id=parent, weights_sha256=sha,
                        sink=sink)
    tracker = Tracker(config.tracker) if (video and config.track) else None
    status, message = "done", None
    dropped: StreamDropped | None = None
    frames = 0
    try:
        for frame in src.frames():
            if view is not None and (frame.image.shape[1], frame.image.shape[0]) != (view.width, view.height):
                raise SourceError(N_("{ref}: frame is {width}x{height}, camera {camera_id} is calibrated for "
                                     "{camera_width}x{camera_height}"), ref=frame.ref, width=frame.image.shape[1],
                                  height=frame.image.shape[0], camera_id=camera_id, camera_width=view.width,
                                  camera_height=view.height)
            boxes = predict_tiled(detector, frame.image, config.tiles) if config.tiles else \
                detector.predict([frame.image])[0]
            if tracker is not None:
                boxes = tracker.update(boxes, frame.image)
            recorder.frame(frame.image, boxes, frame_index=frame.index, time_s=frame.time_s,
                           captured_at=frame.captured_at)
            frames += 1
            if on_frame is not None:
                on_frame(frames)
            if config.max_frames and frames >= config.max_frames:
                break
    except StreamDropped as exc:
        status, message, dropped = "dropped", message_text(exc), exc
    except SourceError as exc:
        if not video or frames == 0:
            raise
        status, message = "failed", message_text(exc)
    report = recorder.finish(status, message)
    if dropped is not None:
        raise StreamDropped(N_("{problem}; run {run_id} stored {frames} frames, {detections} detections"),
                            problem=dropped, run_id=report.run_id, frames=report.frames,
                            detections=report.detections)
    return report


def check_rule_classes(names: Sequence[str], hazards: HazardConfig, *, posed: bool = True, weights=None) -> None:
    """WeightsError naming the classes the active rules need that ``names`` lack."""
    rules = hazards.rules if posed else tuple(r for r in hazards.rules if r in ("no_hard_hat", "no_vest"))
    need = dataclasses.replace(hazards, rules=rules).required_classes() if rules else ()
    missing = [c for c in need if c not in names]
    if missing:
        raise WeightsError(N_("weights {weights} detect {names}; the hazard rules ({rules}) need {need}: missing "
                              "classes {missing} (train with them, or switch those rules off)"),
                           weights=weights or "", names=", ".join(names), rules=", ".join(rules),
                           need=", ".join(need), missing=", ".join(missing))


def _add_persistent(run: _Run, ph: PersistentHazard, image: np.ndarray | None, time_s: float,
                    captured_at: dt.datetime | None) -> None:
    """A hazard confirmed on tracked video (it held min_duration_s), seen in the frame at ``time_s``. Times:
    wall clock for streams, else NULL with the video offsets in the evidence."""
    started = ended = None
    if captured_at is not None:
        started = captured_at - dt.timedelta(seconds=time_s - ph.started_s)
        ended = captured_at - dt.timedelta(seconds=time_s - ph.ended_s)
    hid = run.add_hazard(ph.condition, list(ph.detection_ids), started_at=started, ended_at=ended,
                         duration_s=ph.duration_s, image=image)
    evidence = run.hazards[-1]["evidence"]
    evidence["video_s"] = [round(ph.started_s, 3), round(ph.ended_s, 3)]
    run.episodes[_episode(ph)] = (hid, started, evidence)


def _end_persistent(run: _Run, ph: PersistentHazard) -> None:
    """An episode ended: its hazard's duration (and end time) become final."""
    found = run.episodes.pop(_episode(ph), None)
    if found is None:
        return
    hid, started, evidence = found
    ended = None if started is None else started + dt.timedelta(seconds=ph.duration_s)
    evidence["video_s"] = [round(ph.started_s, 3), round(ph.ended_s, 3)]
    for h in run.hazards:                     # not written yet: change the row in the buffer
        if h["hazard_id"] == hid:
            h["duration_s"], h["ended_at"] = ph.duration_s, ended
            return
    run.updates.append((hid, ph.duration_s, ended, evidence))


def _episode(ph: PersistentHazard) -> tuple:
    return (ph.condition.key, round(ph.started_s, 6))


def _detect_panorama(store, source, pano_id, detector, config, context, tagger, parent, sha, sink) -> DetectReport:
    from sitetwin.panorama.pano_store import get_panorama, load_element_map, load_image
    from sitetwin.vision.sources import read_image

    pano = get_panorama(store, pano_id)
    if source is None or str(source) in ("-", "") or str(source) == pano_id:
        image = load_image(pano)
        source_ref = str(pano.file)
    else:
        image = read_image(source)
        source_ref = str(source)
        if image.shape[1] != 2 * image.shape[0]:
            raise SourceError(N_("{source}: {width}x{height} is not a 2:1 panorama"), source=source,
                              width=image.shape[1], height=image.shape[0])
    T = pano.T_model_from_camera
    if T is None:
        raise VisionError(N_("panorama {pano_id} has no pose, so detections cannot be tagged; give it one with "
                             "`sitetwin pano add --pose` or control points"), pano_id=pano_id)
    H, W = image.shape[:2]
    if tagger is None:
        tagger = Tagger.from_store(store, pano.site_code, config.tagging)
        # the panorama's stored element map (made once, against the site's current models)
        emap = load_element_map(store, pano_id, compute=True)
        if emap.width != W:
            emap = None            # a map at another resolution: cast rays instead
    else:
        # a tagger brings its own model (e.g. only what was built when the photo was taken):
        # the element map must see the same model
        from sitetwin.panorama.element_map import element_map

        emap = element_map(tagger.mesh, T, W, H, scene=tagger.scene)
    view = View(T, W, H, None, emap)
    if context is None:
        context = HazardContext(tuple(edges_from_model(store, pano.site_code)),
                                tuple(zones_from_sensors(store, pano.site_code, pano.captured_at)))
    recorder = Recorder(store, site_code=pano.site_code, source_kind="panorama", source_ref=source_ref,
                        detector=detector, config=config, view=view, tagger=tagger, context=context, pano_id=pano_id,
                        wrap=True, parent_run_id=parent, weights_sha256=sha, sink=sink)
    boxes = detect_panorama(detector, image, config.views)
    recorder.frame(image, boxes, captured_at=pano.captured_at)
    return recorder.finish("done")


# --- helpers -------------------------------------------------------------------------------------------

TITLES = {"no_hard_hat": "Worker without a hard hat", "no_vest": "Worker without a high-visibility vest",
          "unprotected_edge": "Worker near an unprotected edge", "machinery_zone": "Worker inside a machinery zone"}


def hazard_finding(h: dict) -> FindingDraft:
    """The finding a stored hazard row deserves (a safety finding on its element, with the hazard as evidence)."""
    loc = None if h.get("x_m") is None else (h["x_m"], h["y_m"], h["z_m"])
    evidence = dict(h.get("evidence") or {})
    evidence["hazard_id"] = h["hazard_id"]
    evidence["rule"] = h["rule"]
    return FindingDraft(site_code=h["site_code"], category="safety", severity=h["severity"],
                        title=TITLES.get(h["rule"], h["rule"]), description=h["message"], raised_by="vision",
                        global_id=h.get("global_id"), model_id=h.get("model_id") if h.get("global_id") else None,
                        storey=h.get("storey"), location_m=loc, evidence=evidence, source="hazard",
                        source_ref=h["hazard_id"], at=h.get("started_at") or None)


def _crop(image: np.ndarray, xyxy, margin: float = 0.25) -> np.ndarray:
    h, w = image.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in xyxy)
    mx, my = (x2 - x1) * margin, (y2 - y1) * margin
    return image[max(0, int(y1 - my)):min(h, int(np.ceil(y2 + my))), max(0, int(x1 - mx)):min(w, int(np.ceil(x2 + mx)))]


def _save_jpeg(path: Path, pixels: np.ndarray) -> None:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), np.ascontiguousarray(pixels[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 90]):
        raise VisionError(N_("{path}: cannot write the evidence crop"), path=path)


def _config_json(config: DetectConfig, detector: Detector) -> dict:
    from sitetwin.data.clikit import to_jsonable

    out = to_jsonable(config)
    out["backend"] = detector.backend
    out["imgsz_used"] = detector.imgsz
    return out
