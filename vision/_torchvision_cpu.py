"""A pure-torch ``torchvision::nms`` for CPU-only torch, registered only when the real one is missing.

Why this exists: the registry's ``torchvision==0.28.0`` (torch 2.13.0's match) is a CUDA
build. On the CPU build of torch its ``_C.so`` cannot load (it links ``libc10_cuda.so``),
so ``import torchvision`` dies with "operator torchvision::nms does not exist", and with
it ultralytics' validator, predictor and exporter. Ultralytics needs exactly one
torchvision operator, NMS (``batched_nms`` goes through it). So, before anything imports
torchvision, :func:`ensure_nms` tries to load torchvision's own ``_C`` library; when that
works (any CUDA machine with matching wheels, or a future CPU wheel) nothing is changed.
Only when it fails is ``torchvision::nms`` (and ``qnms``, which torchvision's import
registers a fake kernel for) defined here through ``torch.library``, with a greedy NMS in
numpy that follows torchvision's semantics (suppress IoU > threshold, indices sorted by
decreasing score). The other torchvision C++ operators (roi_align, deform_conv, ...) stay
unavailable and fail with torch's "operator does not exist" if something calls them;
YOLO detection never does.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import sys
import threading

import numpy as np

NATIVE = "torchvision"          # torchvision's own compiled operator
PURE_TORCH = "sitetwin"         # the fallback defined in this module
ABSENT = "absent"               # torchvision is not installed at all

_lock = threading.Lock()
_backend: str | None = None
_library = None                 # keeps the torch.library fragment alive


def nms_backend() -> str | None:
    """Which NMS :func:`ensure_nms` settled on (``"torchvision"``, ``"sitetwin"``, ``"absent"``), or None before."""
    return _backend


def ensure_nms() -> str:
    """Make ``import torchvision`` and ``torchvision.ops.nms`` work; return the backend used.

    Idempotent and thread-safe. Must run before the first ``import torchvision`` in the
    process to help: once torchvision's import has failed, Python keeps half of it in
    ``sys.modules``.
    """
    global _backend
    with _lock:
        if _backend is not None:
            return _backend
        _backend = _decide()
        return _backend


def _decide() -> str:
    import torch

    if _op_exists(torch, "nms"):
        return NATIVE           # torchvision already loaded its operators in this process
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return ABSENT
    libs = [p for loc in spec.submodule_search_locations for p in glob.glob(os.path.join(loc, "_C*.so"))
            + glob.glob(os.path.join(loc, "_C*.pyd"))]
    for lib in libs:
        try:
            torch.ops.load_library(lib)
        except (OSError, RuntimeError, ImportError):
            continue
        if _op_exists(torch, "nms"):
            return NATIVE
    _register(torch)
    if "torchvision" not in sys.modules:
        import torchvision.extension

        # torchvision decides at import whether its C++ ops exist and refuses every op
        # call otherwise; nms now exists, so tell it so (the others raise torch's own error).
        torchvision.extension._has_ops = _has_ops
    return PURE_TORCH


def _has_ops() -> bool:
    return True


def _op_exists(torch, name: str) -> bool:
    try:
        torch._C._dispatch_has_kernel_for_dispatch_key(f"torchvision::{name}", "CPU")
        return True
    except RuntimeError:
        return False


def _register(torch) -> None:
    global _library
    lib = torch.library.Library("torchvision", "DEF")
    lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    # CompositeExplicitAutograd: one kernel for every backend (CPU, and MPS/XPU tensors are
    # moved to numpy and back); NMS has no gradient, and is only ever called under no_grad.
    lib.impl("nms", _nms_kernel, "CompositeExplicitAutograd")
    lib.impl("qnms", _nms_kernel, "CompositeExplicitAutograd")
    _library = lib


def _nms_kernel(dets, scores, iou_threshold: float):
    import torch

    if dets.dim() != 2 or dets.size(1) != 4:
        raise RuntimeError(f"boxes should be a (n, 4) tensor, got {tuple(dets.shape)}")
    if scores.dim() != 1 or scores.size(0) != dets.size(0):
        raise RuntimeError(f"scores should be ({dets.size(0)},), got {tuple(scores.shape)}")
    keep = nms_numpy(dets.detach().to("cpu", torch.float64).numpy(),
                     scores.detach().to("cpu", torch.float64).numpy(), float(iou_threshold))
    return torch.from_numpy(keep).to(dets.device)


def nms_numpy(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy NMS. boxes : (n, 4) x1, y1, x2, y2; scores : (n,). Returns int64 indices kept, best first.

    A box is dropped when its IoU with a kept, higher-scoring box is greater than
    ``iou_threshold``. The work is one vectorised IoU row per kept box against the boxes
    still standing, so it scales with kept x candidates, not n squared.
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError("boxes must be (n, 4)!")
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(-scores, kind="stable")
    x1, y1, x2, y2 = (boxes[order, i] for i in range(4))
    areas = (x2 - x1) * (y2 - y1)
    rest = np.arange(len(order))
    keep = []
    while rest.size:
        i = rest[0]
        keep.append(i)
        others = rest[1:]
        w = np.clip(np.minimum(x2[i], x2[others]) - np.maximum(x1[i], x1[others]), 0, None)
        h = np.clip(np.minimum(y2[i], y2[others]) - np.maximum(y1[i], y1[others]), 0, None)
        inter = w * h
        union = areas[i] + areas[others] - inter
        with np.errstate(divide="ignore", invalid="ignore"):
            iou = np.where(union > 0, inter / union, 0.0)
        rest = others[iou <= iou_threshold]
    return order[np.asarray(keep, dtype=np.int64)].astype(np.int64)
