"""Run YOLO weights on images: one :class:`Detector` for PyTorch (.pt) and ONNX Runtime (.onnx), tiled inference.

>>> det = Detector("best.onnx", imgsz=640, conf=0.25)                  # doctest: +SKIP
>>> boxes = det.predict([image_rgb])[0]          # Boxes: xyxy (n, 4) pixels, conf, cls
>>> boxes = predict_tiled(det, big_image, tile=640, overlap=0.2)

``.pt`` weights run through ultralytics' predictor (PyTorch). ``.onnx`` weights exported by
ultralytics run through ONNX Runtime here: letterbox, one batched session call, decode,
class-aware NMS, boxes scaled back; the same pre- and post-processing as ultralytics' own,
without its per-call overhead. Images are RGB uint8 (h, w, 3) throughout vision.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np

from sitetwin.data.i18n import N_
from sitetwin.vision import runtime
from sitetwin.vision.boxes import Boxes, Letterbox, batched_nms, letterbox, merge_boxes
from sitetwin.vision.errors import SourceError, WeightsError

if TYPE_CHECKING:
    import torch
    from ultralytics.engine.results import Results
    from ultralytics.trackers.byte_tracker import BYTETracker
    from ultralytics.trackers.track_tracker import TRACKTRACK


class Detector:
    """YOLO weights behind one ``predict(images) -> [Boxes]``.

    weights : .pt (PyTorch through ultralytics) or .onnx (ONNX Runtime)
    imgsz : inference size in pixels (the letterboxed square side; multiple of 32)
    conf, iou : confidence threshold and NMS IoU threshold
    threads : ONNX Runtime intra-op threads (default: the CPUs this process may use)
    """

    def __init__(self, weights: str | Path, *, imgsz: int = 640, conf: float = 0.25, iou: float = 0.7,
                 max_det: int = 300, threads: int | None = None):
        self.weights = Path(weights)
        if not self.weights.exists():
            raise WeightsError(N_("weights {weights}: no such file (nothing is downloaded; give a local "
                                  ".pt or .onnx file)"), weights=self.weights)
        if imgsz % 32:
            raise WeightsError(N_("imgsz {imgsz} is not a multiple of 32"), imgsz=imgsz)
        self.imgsz = int(imgsz)
        self.conf = float(conf)
        self.iou = float(iou)
        self.max_det = int(max_det)
        self.backend = "onnxruntime" if self.weights.suffix == ".onnx" else "pytorch"
        if self.backend == "onnxruntime":
            self._init_onnx(threads)
        elif self.weights.suffix == ".pt":
            self._init_torch()
        else:
            raise WeightsError(N_("weights {weights}: expected a .pt or .onnx file"), weights=self.weights)

    # -- backends --------------------------------------------------------------------------------

    def _init_torch(self) -> None:
        runtime.prepare()       # before ultralytics is imported: offline, with a working NMS
        from ultralytics import YOLO

        try:
            with runtime.quiet_ultralytics():
                self._model = YOLO(str(self.weights), task="detect")
        except Exception as exc:  # noqa: BLE001 - any failure: not usable weights
            raise WeightsError(N_("weights {weights}: cannot be loaded ({error}: {detail})"), weights=self.weights,
                               error=type(exc).__name__, detail=str(exc)[:120]) from None
        self.names = tuple(self._model.names[i] for i in sorted(self._model.names))
        self.input_hw = (self.imgsz, self.imgsz)

    def _init_onnx(self, threads: int | None) -> None:
        import ast

        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(threads or _cpu_count())
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        # No busy-waiting between ops: on a shared or oversubscribed CPU, spinning worker threads
        # steal the cores the other thread needs (measured: 2.3x slower under load); idle, it costs ~5 %.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self._session = ort.InferenceSession(str(self.weights), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001
            raise WeightsError(N_("weights {weights}: not a readable ONNX model ({detail})"), weights=self.weights,
                               detail=str(exc)[:120]) from None
        meta = self._session.get_modelmeta().custom_metadata_map
        if "names" not in meta:
            raise WeightsError(N_("weights {weights}: no class names in its metadata; export it with "
                                  "`sitetwin vision train --onnx` or ultralytics' exporter"), weights=self.weights)
        names = ast.literal_eval(meta["names"])
        self.names = tuple(names[k] for k in sorted(names))
        inp = self._session.get_inputs()[0]
        self._input = inp.name
        shape = inp.shape
        self._fixed_batch = shape[0] if isinstance(shape[0], int) else None
        self._fixed_hw = (shape[2], shape[3]) if all(isinstance(s, int) for s in shape[2:4]) else None
        # a static export fixes the input size (it may be rectangular, e.g. 384 x 640 for 16:9 video)
        self.input_hw = ((int(self._fixed_hw[0]), int(self._fixed_hw[1])) if self._fixed_hw
                         else (self.imgsz, self.imgsz))
        self.imgsz = max(self.input_hw)
        self._end2end = meta.get("end2end", "False") == "True"

    # -- prediction ------------------------------------------------------------------------------

    def predict(self, images: Sequence[np.ndarray]) -> list[Boxes]:
        """Boxes for each RGB uint8 image (h, w, 3), in that image's pixels."""
        images = [_check_image(im) for im in images]
        if not images:
            return []
        if self.backend == "pytorch":
            return self._predict_torch(images)
        return self._predict_onnx(images)

    def _predict_torch(self, images: list[np.ndarray]) -> list[Boxes]:
        bgr = [np.ascontiguousarray(im[..., ::-1]) for im in images]
        with runtime.quiet_ultralytics():
            results = self._model.predict(bgr, imgsz=self.imgsz, conf=self.conf, iou=self.iou, max_det=self.max_det,
                                          device="cpu", verbose=False)
        out = []
        for r in results:
            # ultralytics types a prediction as Results or a tensor: a detection model's are Results with boxes
            b = cast("Results", r).boxes
            assert b is not None
            out.append(Boxes(_numpy(b.xyxy).astype(np.float32), _numpy(b.conf).astype(np.float32),
                             _numpy(b.cls).astype(np.int32), self.names, np.full(len(b), -1, np.int32)))
        return out

    def _predict_onnx(self, images: list[np.ndarray]) -> list[Boxes]:
        size = self.input_hw
        batch_max = self._fixed_batch or 8
        out: list[Boxes] = []
        for start in range(0, len(images), batch_max):
            chunk = images[start:start + batch_max]
            blobs, metas = zip(*(letterbox(im, size) for im in chunk))
            x = np.stack(blobs)
            if self._fixed_batch and len(chunk) < self._fixed_batch:
                x = np.concatenate([x, np.zeros((self._fixed_batch - len(chunk),) + x.shape[1:], x.dtype)])
            pred = self._session.run(None, {self._input: x})[0]
            for i, meta in enumerate(metas):
                out.append(self._decode(pred[i], meta))
        return out

    def _decode(self, p: np.ndarray, meta: Letterbox) -> Boxes:
        if self._end2end or (p.ndim == 2 and p.shape[1] == 6 and p.shape[0] != 4 + len(self.names)):
            keep = p[:, 4] >= self.conf
            xyxy, conf, cls = p[keep, :4], p[keep, 4], p[keep, 5].astype(np.int32)
        else:
            p = p.T if p.shape[0] == 4 + len(self.names) else p      # (anchors, 4 + nc)
            scores = p[:, 4:]
            cls = scores.argmax(1)
            conf = scores[np.arange(len(scores)), cls]
            keep = conf >= self.conf
            if not keep.any():
                return Boxes.empty(self.names)
            p, cls, conf = p[keep], cls[keep], conf[keep]
            xywh = p[:, :4]
            xyxy = np.concatenate([xywh[:, :2] - xywh[:, 2:] / 2, xywh[:, :2] + xywh[:, 2:] / 2], 1)
            if len(conf) > 30000:
                top = np.argsort(-conf)[:30000]
                xyxy, conf, cls = xyxy[top], conf[top], cls[top]
            keep = batched_nms(xyxy, conf, cls, self.iou)[: self.max_det]
            xyxy, conf, cls = xyxy[keep], conf[keep], cls[keep].astype(np.int32)
        xyxy = meta.to_image(xyxy)
        return Boxes(xyxy.astype(np.float32), conf.astype(np.float32), cls.astype(np.int32), self.names,
                     np.full(len(conf), -1, np.int32))


def _numpy(values: torch.Tensor | np.ndarray) -> np.ndarray:
    """A field of ultralytics' Boxes (a tensor, or an array once moved to numpy) as a numpy array."""
    return values if isinstance(values, np.ndarray) else values.cpu().numpy()


def _cpu_count() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def _check_image(im) -> np.ndarray:
    im = np.asarray(im)
    if im.ndim == 2:
        im = np.repeat(im[..., None], 3, axis=2)
    if im.ndim != 3 or im.shape[2] not in (3, 4) or im.dtype != np.uint8:
        raise SourceError(N_("images must be RGB uint8 (h, w, 3), got {dtype} {shape}"), dtype=str(im.dtype),
                          shape=im.shape)
    return im[..., :3]


# --- tiled (sliced) inference -----------------------------------------------------------------------

@dataclass(frozen=True)
class TileConfig:
    """Sliced inference over a large image."""

    tile: int = 640             # (px) square tile side, the detector's input size
    overlap: float = 0.2        # (0-0.9) share of a tile shared with its neighbour
    wrap: bool = False          # (bool) the image wraps left-right (equirectangular panorama)
    full_image: bool = True     # (bool) also run on the whole image shrunk to one tile, for large objects
    merge_iou: float = 0.5      # (0-1) boxes of one class overlapping more than this across tiles are merged
    edge_px: float = 2.0        # (px) a box this close to an inner tile edge is cut: it ranks below whole boxes


def tile_origins(length: int, tile: int, overlap: float, wrap: bool) -> list[int]:
    """Start offsets of tiles covering ``length`` pixels (with wrap, the last tiles run past the end)."""
    if length <= tile and not wrap:
        return [0]
    stride = max(1, int(round(tile * (1 - overlap))))
    if wrap:
        n = max(1, math.ceil(length / stride))
        spacing = length / n
        return [int(round(i * spacing)) for i in range(n)]
    n = max(1, math.ceil((length - tile) / stride)) + 1
    step = (length - tile) / (n - 1) if n > 1 else 0
    return [int(round(i * step)) for i in range(n)]


def predict_tiled(detector: Detector, image: np.ndarray, config: TileConfig = TileConfig()) -> Boxes:
    """Detect on overlapping tiles (plus the whole image) and merge the boxes into image pixels.

    With ``wrap``, tiles continue across the right edge onto the left, and a box found across
    the seam has ``x1 < width <= x2`` (take x modulo the width).
    """
    image = _check_image(image)
    h, w = image.shape[:2]
    t = config.tile
    xs = tile_origins(w, t, config.overlap, config.wrap)
    ys = tile_origins(h, t, config.overlap, False)
    crops, offsets = [], []
    for y0 in ys:
        for x0 in xs:
            if config.wrap:
                cols = np.arange(x0, x0 + t) % w
                crop = image[y0:y0 + t][:, cols]
            else:
                crop = image[y0:y0 + t, x0:x0 + t]
            crops.append(crop)
            offsets.append((x0, y0, crop.shape[1], crop.shape[0]))
    whole = config.full_image and (w > t or h > t)
    if whole:
        crops.append(image)
    results = detector.predict(crops)
    parts, ranks = [], []
    for (x0, y0, cw, ch), b in zip(offsets, results[: len(offsets)]):
        if not len(b):
            continue
        xyxy = b.xyxy.astype(np.float64) + np.array([x0, y0, x0, y0])
        # a box touching an inner tile border is probably cut: it ranks below any whole box
        cut = np.zeros(len(b), bool)
        if x0 > 0 or config.wrap:
            cut |= b.xyxy[:, 0] <= config.edge_px
        if x0 + cw < w or config.wrap:
            cut |= b.xyxy[:, 2] >= cw - config.edge_px
        if y0 > 0:
            cut |= b.xyxy[:, 1] <= config.edge_px
        if y0 + ch < h:
            cut |= b.xyxy[:, 3] >= ch - config.edge_px
        parts.append(Boxes(xyxy.astype(np.float32), b.conf, b.cls, b.names))
        ranks.append(b.conf - cut.astype(np.float32))
    if whole and len(results[-1]):
        parts.append(results[-1])
        ranks.append(results[-1].conf.copy())
    if not parts:
        return Boxes.empty(detector.names)
    merged = Boxes.concat(parts, detector.names)
    rank = np.concatenate(ranks)
    keep = merge_boxes(merged.xyxy, rank, merged.cls, config.merge_iou, wrap_width=w if config.wrap else None)
    out = merged.select(keep)
    if config.wrap:
        xyxy = out.xyxy.copy()
        shift = np.floor(xyxy[:, 0] / w) * w
        xyxy[:, [0, 2]] -= shift[:, None]
        out = Boxes(xyxy, out.conf, out.cls, out.names, out.track_id)
    return out


# --- tracking ----------------------------------------------------------------------------------------

class Tracker:
    """Ultralytics' ByteTrack or BoT-SORT fed with :class:`Boxes`, one frame at a time.

    ``tracker`` is ``"bytetrack"``, ``"botsort"`` or a path to an ultralytics tracker yaml.
    ReID (which needs downloaded weights) is always off.
    """

    def __init__(self, tracker: str = "bytetrack", *, frame_rate: float = 30.0, **overrides):
        runtime.prepare()
        from ultralytics.trackers.track import TRACKER_MAP
        from ultralytics.utils import YAML, IterableSimpleNamespace
        from ultralytics.utils.checks import check_yaml

        name = tracker if tracker.endswith(".yaml") else f"{tracker}.yaml"
        try:
            cfg = YAML.load(check_yaml(name))
        except Exception as exc:  # noqa: BLE001
            raise SourceError(N_("tracker {tracker!r}: no such tracker config ({detail}); use bytetrack or botsort"),
                              tracker=tracker, detail=str(exc)[:80]) from None
        cfg.update(overrides)
        cfg["with_reid"] = False
        cfg.setdefault("device", "cpu")
        if cfg.get("tracker_type") not in TRACKER_MAP:
            raise SourceError(N_("tracker {tracker!r}: type {tracker_type!r} is not one of {known}"),
                              tracker=tracker, tracker_type=cfg.get("tracker_type"),
                              known=", ".join(sorted(TRACKER_MAP)))
        self.kind = cfg["tracker_type"]
        self._args = IterableSimpleNamespace(**cfg)
        # TRACKER_MAP's classes share no base (mypy sees object); each has update and reset
        self._tracker = cast("BYTETracker | TRACKTRACK", TRACKER_MAP[self.kind](args=self._args))
        self.frame_rate = frame_rate

    def update(self, boxes: Boxes, image_rgb: np.ndarray) -> Boxes:
        """The boxes that belong to tracks in this frame, with their track ids."""
        import torch
        from ultralytics.engine.results import Boxes as UBoxes

        h, w = image_rgb.shape[:2]
        data = np.concatenate([boxes.xyxy, boxes.conf[:, None], boxes.cls[:, None].astype(np.float32)], 1) \
            if len(boxes) else np.zeros((0, 6), np.float32)
        det = UBoxes(torch.from_numpy(data.astype(np.float32)), (h, w)).cpu().numpy()
        tracks = self._tracker.update(det, np.ascontiguousarray(image_rgb[..., ::-1]))
        if len(tracks) == 0:
            return Boxes.empty(boxes.names)
        tracks = np.asarray(tracks)
        return Boxes(tracks[:, :4].astype(np.float32), tracks[:, 5].astype(np.float32),
                     tracks[:, 6].astype(np.int32), boxes.names, tracks[:, 4].astype(np.int32))

    def reset(self) -> None:
        self._tracker.reset()
