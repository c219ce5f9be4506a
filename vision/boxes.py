"""Boxes found in an image, and the pure geometry on them: letterboxing, IoU, class-aware NMS and merging.

Nothing here runs a network, so tagging, hazard rules and datasets use it without loading
torch or ultralytics (``vision.detect`` is where weights run).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sitetwin.vision._torchvision_cpu import nms_numpy


@dataclass(frozen=True)
class Boxes:
    """Detections in one image.

    xyxy : (n, 4) float32 pixels of the image given (x may exceed the width for seam-wrapped boxes)
    conf : (n,) float32
    cls : (n,) int32 index into ``names``
    track_id : (n,) int32, -1 where untracked
    """

    xyxy: np.ndarray
    conf: np.ndarray
    cls: np.ndarray
    names: tuple[str, ...]
    track_id: np.ndarray | None = None

    def __len__(self) -> int:
        return int(len(self.conf))

    @classmethod
    def empty(cls, names: tuple[str, ...]) -> Boxes:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int32), names,
                   np.zeros(0, np.int32))

    @property
    def class_names(self) -> list[str]:
        return [self.names[c] for c in self.cls]

    def select(self, keep) -> Boxes:
        keep = np.asarray(keep)
        return Boxes(self.xyxy[keep], self.conf[keep], self.cls[keep], self.names,
                     None if self.track_id is None else self.track_id[keep])

    def of_class(self, *names: str) -> Boxes:
        wanted = [i for i, n in enumerate(self.names) if n in names]
        return self.select(np.isin(self.cls, wanted))

    @staticmethod
    def concat(parts: Sequence[Boxes], names: tuple[str, ...]) -> Boxes:
        parts = [p for p in parts if len(p)]
        if not parts:
            return Boxes.empty(names)
        tids = [p.track_id if p.track_id is not None else np.full(len(p), -1, np.int32) for p in parts]
        return Boxes(np.concatenate([p.xyxy for p in parts]).astype(np.float32),
                     np.concatenate([p.conf for p in parts]).astype(np.float32),
                     np.concatenate([p.cls for p in parts]).astype(np.int32), names,
                     np.concatenate(tids).astype(np.int32))


@dataclass(frozen=True)
class Letterbox:
    """How an image was fitted into the network's square input: scale, then padding (pixels)."""

    scale: float
    pad_x: float
    pad_y: float
    width: int
    height: int

    def to_image(self, xyxy: np.ndarray) -> np.ndarray:
        out = np.asarray(xyxy, np.float64).copy()
        out[:, [0, 2]] = (out[:, [0, 2]] - self.pad_x) / self.scale
        out[:, [1, 3]] = (out[:, [1, 3]] - self.pad_y) / self.scale
        out[:, [0, 2]] = out[:, [0, 2]].clip(0, self.width)
        out[:, [1, 3]] = out[:, [1, 3]].clip(0, self.height)
        return out


def letterbox(image: np.ndarray, size: int | tuple[int, int]) -> tuple[np.ndarray, Letterbox]:
    """(3, H, W) float32 network input in [0, 1] (grey 114 padding, centred) and how to undo it.

    ``size`` is the square side, or (H, W).
    """
    import cv2

    H, W = (size, size) if isinstance(size, int) else size
    h, w = image.shape[:2]
    scale = min(H / h, W / w)
    nw, nh = int(round(w * scale)), int(round(h * scale))
    if (nw, nh) != (w, h):
        image = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
    pad_x, pad_y = (W - nw) / 2, (H - nh) / 2
    top, left = int(round(pad_y - 0.1)), int(round(pad_x - 0.1))
    canvas = np.full((H, W, 3), 114, np.uint8)
    canvas[top:top + nh, left:left + nw] = image
    blob = np.ascontiguousarray(canvas.transpose(2, 0, 1), dtype=np.float32) * np.float32(1 / 255.0)
    return blob, Letterbox(scale, float(left), float(top), w, h)


def batched_nms(xyxy: np.ndarray, conf: np.ndarray, cls: np.ndarray, iou: float) -> np.ndarray:
    """Class-aware NMS: boxes of different classes never suppress each other. Indices kept, best first."""
    if len(conf) == 0:
        return np.zeros(0, np.int64)
    offset = (cls.astype(np.float64) * (float(np.max(xyxy)) + 1.0))[:, None]
    return nms_numpy(xyxy + offset, conf, iou)


def merge_boxes(xyxy: np.ndarray, rank: np.ndarray, cls: np.ndarray, iou: float, *,
                wrap_width: float | None = None) -> np.ndarray:
    """Greedy class-aware merging by ``rank``; with ``wrap_width``, boxes also meet across the seam."""
    xyxy = np.asarray(xyxy, np.float64)
    if wrap_width is None:
        return batched_nms(xyxy, rank, cls, iou)
    order = np.argsort(-rank, kind="stable")
    alive = np.ones(len(order), bool)
    keep = []
    for a in range(len(order)):
        if not alive[a]:
            continue
        i = order[a]
        keep.append(i)
        rest = order[a + 1:][alive[a + 1:]]
        same = rest[cls[rest] == cls[i]]
        if not len(same):
            continue
        best = np.zeros(len(same))
        for shift in (-wrap_width, 0.0, wrap_width):
            best = np.maximum(best, box_iou(xyxy[i] + np.array([shift, 0, shift, 0]), xyxy[same]))
        drop = set(same[best > iou].tolist())
        if drop:
            alive[a + 1:] &= ~np.isin(order[a + 1:], list(drop))
    return np.asarray(keep, np.int64)


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one (4,) box with (n, 4) boxes, x1 y1 x2 y2."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    w = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    h = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = w * h
    union = (box[2] - box[0]) * (box[3] - box[1]) + (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)
