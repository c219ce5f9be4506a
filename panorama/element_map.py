"""Pixel -> model element: ray-cast a posed panorama (or perspective camera) against the model.

An :class:`ElementMap` holds, for every pixel, the index of the element it sees (``-1``: none)
and the range to it (metres along the ray), with the lookup from index to GlobalId and model
id. It is stored compactly beside the store as a 16-bit index PNG (``0`` = none, ``i`` = the
i-th visible element) plus float16 ranges (relative precision 0.05 %), with the lookup in the
``panorama_elements`` table (see :mod:`panorama.pano_store`).

>>> emap = element_map(mesh, T_model_from_camera, 4096, 2048)        # doctest: +SKIP
>>> emap.at(2048.5, 1100.5)
ElementHit(global_id='2O2Fr$t4X7Zf8NOew3FLOH', model_id='5d0e...', depth_m=4.73, ...)
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sitetwin.panorama.camera import (
    PerspectiveCamera,
    bearing_to_equirect,
    check_transform,
    equirect_to_bearing,
    pixel_bearings,
)


@dataclass(frozen=True)
class ElementHit:
    """What one pixel sees: the element, the range along the ray and the 3D point (site local frame)."""

    global_id: str
    model_id: str
    index: int
    depth_m: float
    point_m: tuple[float, float, float]


@dataclass(frozen=True)
class ElementMap:
    """Per-pixel element index and range for one posed camera.

    element_index : (h, w) int32 index into ``global_ids``/``model_ids``; -1 where no element
    depth_m : (h, w) float32 range along each pixel's ray, metres; inf where no element
    camera : None for an equirectangular panorama, else the PerspectiveCamera
    """

    element_index: np.ndarray
    depth_m: np.ndarray
    global_ids: np.ndarray
    model_ids: np.ndarray
    T_model_from_camera: np.ndarray
    camera: PerspectiveCamera | None = None
    pano_id: str | None = None
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def width(self) -> int:
        return int(self.element_index.shape[1])

    @property
    def height(self) -> int:
        return int(self.element_index.shape[0])

    @property
    def coverage(self) -> float:
        """Share of pixels that see an element."""
        return float(np.mean(self.element_index >= 0))

    def bearing(self, u: float, v: float) -> np.ndarray:
        """(3,) unit bearing of pixel coordinates (u, v) in the camera frame."""
        if self.camera is None:
            return equirect_to_bearing(np.array([u, v], dtype=np.float64), self.width, self.height)
        return self.camera.bearings(np.array([u, v], dtype=np.float64))

    def at(self, u: float, v: float) -> ElementHit | None:
        """The element seen at pixel coordinates (u, v) (pixel centres at i + 0.5), or None."""
        col, row = int(math.floor(u)), int(math.floor(v))
        if self.camera is None:
            col %= self.width
        if not (0 <= col < self.width and 0 <= row < self.height):
            raise ValueError(f"pixel ({u}, {v}) lies outside the {self.width}x{self.height} map")
        idx = int(self.element_index[row, col])
        if idx < 0:
            return None
        depth = float(self.depth_m[row, col])
        T = self.T_model_from_camera
        point = T[:3, 3] + T[:3, :3] @ self.bearing(col + 0.5, row + 0.5) * depth
        return ElementHit(str(self.global_ids[idx]), str(self.model_ids[idx]), idx, depth,
                          (float(point[0]), float(point[1]), float(point[2])))

    def mask(self, global_id: str) -> np.ndarray:
        """(h, w) bool: pixels that see the element ``global_id``."""
        hits = np.flatnonzero(np.asarray(self.global_ids) == global_id)
        if not len(hits):
            return np.zeros(self.element_index.shape, bool)
        return np.isin(self.element_index, hits)

    def pixel_solid_angles(self) -> np.ndarray:
        """(h, 1) or (h, w) solid angle of each pixel in steradians."""
        if self.camera is None:
            el = math.pi * (0.5 - (np.arange(self.height) + 0.5) / self.height)
            return ((2 * math.pi / self.width) * (math.pi / self.height) * np.cos(el))[:, None]
        c = self.camera
        u = (np.arange(self.width) + 0.5 - c.cx) / c.fx
        v = (np.arange(self.height) + 0.5 - c.cy) / c.fy
        r2 = u[None, :] ** 2 + v[:, None] ** 2 + 1.0
        return 1.0 / (c.fx * c.fy) / r2 ** 1.5

    def elements(self) -> list[dict[str, Any]]:
        """One record per visible element: pixels, solid angle, nearest and median range, a centre pixel.

        Counts, solid angles, nearest ranges and centres use every pixel; the median range is
        taken over every 4th pixel in each direction (its figure is a summary, not a measurement).
        """
        idx = self.element_index
        flat = idx.ravel()
        valid = flat >= 0
        k = len(self.global_ids)
        ids = flat[valid]
        pixels = np.bincount(ids, minlength=k)
        seen = np.flatnonzero(pixels)
        if not len(seen):
            return []
        omega = np.broadcast_to(self.pixel_solid_angles(), idx.shape).ravel()[valid]
        solid = np.bincount(ids, weights=omega, minlength=k)
        nearest = np.full(k, np.inf, dtype=np.float32)
        np.minimum.at(nearest, ids, self.depth_m.ravel()[valid])
        dmin = nearest[seen]
        sub_idx = idx[2::4, 2::4].ravel()
        sub_depth = self.depth_m[2::4, 2::4].ravel()
        keep = sub_idx >= 0
        order = np.lexsort((sub_depth[keep], sub_idx[keep]))
        sorted_idx, sorted_depth = sub_idx[keep][order], sub_depth[keep][order]
        starts = np.searchsorted(sorted_idx, seen, side="left")
        stops = np.searchsorted(sorted_idx, seen, side="right")
        dmed = np.where(stops > starts, sorted_depth[np.minimum((starts + stops) // 2, len(sorted_depth) - 1)]
                        if len(sorted_depth) else np.nan, np.asarray(dmin, dtype=np.float64))
        centres = self._centres(ids, valid, seen, pixels)
        return [{"index": int(e), "global_id": str(self.global_ids[e]), "model_id": str(self.model_ids[e]),
                 "pixels": int(pixels[e]), "solid_angle_sr": float(solid[e]), "min_depth_m": float(a),
                 "median_depth_m": float(m), "center_u": float(c[0]), "center_v": float(c[1])}
                for e, a, m, c in zip(seen, dmin, dmed, centres)]

    def _centres(self, ids: np.ndarray, valid: np.ndarray, seen: np.ndarray, pixels: np.ndarray) -> np.ndarray:
        k = len(self.global_ids)
        if self.camera is not None:
            rows, cols = np.divmod(np.flatnonzero(valid), self.width)
            return np.stack([np.bincount(ids, weights=cols + 0.5, minlength=k)[seen] / pixels[seen],
                             np.bincount(ids, weights=rows + 0.5, minlength=k)[seen] / pixels[seen]], 1)
        # the mean bearing is immune to the seam, unlike the mean column
        b = pixel_bearings(self.width, self.height, np.float32).reshape(-1, 3)[valid]
        mean = np.stack([np.bincount(ids, weights=b[:, j], minlength=k)[seen] for j in range(3)], 1)
        return bearing_to_equirect(mean, self.width, self.height)


def element_map(mesh: Any, T_model_from_camera, width: int, height: int, *, scene=None) -> ElementMap:
    """The element map of an equirectangular panorama (height x width, 2:1) at a pose.

    mesh : ModelMesh (site local frame); scene : a prebuilt ``panorama.render.RayScene`` to reuse
    """
    from sitetwin.panorama.render import RAY_CHUNK, RayScene

    width, height = int(width), int(height)
    if width != 2 * height or height < 1:
        raise ValueError(f"an equirectangular element map must be 2:1, got {width}x{height}")
    started = time.perf_counter()
    T = check_transform(T_model_from_camera)
    if scene is None:
        scene = RayScene(mesh)
    R = T[:3, :3]
    az = math.pi * (1.0 - 2.0 * (np.arange(width) + 0.5) / width)
    el = math.pi * (0.5 - (np.arange(height) + 0.5) / height)
    # model-frame direction of pixel (row, col) = cos(el) * across[col] + sin(el) * up
    across = (np.cos(az)[:, None] * R[:, 0] + np.sin(az)[:, None] * R[:, 1]).astype(np.float32)
    up = R[:, 2].astype(np.float32)
    ce, se = np.cos(el).astype(np.float32), np.sin(el).astype(np.float32)
    rows_per_chunk = max(1, RAY_CHUNK // width)

    def fill(start, stop, out):
        r0, r1 = start // width, stop // width
        view = out.reshape(r1 - r0, width, 3)
        np.multiply(ce[r0:r1, None, None], across[None], out=view)
        view += se[r0:r1, None, None] * up

    hits = scene.cast(T[:3, 3], fill, normals=False, chunk=rows_per_chunk * width, shape=(height, width))
    return ElementMap(hits.element, hits.range_m, np.asarray(mesh.global_ids), np.asarray(mesh.model_ids), T,
                      None, seconds=time.perf_counter() - started)


def element_map_perspective(mesh: Any, camera: PerspectiveCamera, T_model_from_camera, *, scene=None) -> ElementMap:
    """The element map of a perspective camera (a fixed site camera, or a view cut from a panorama)."""
    if not isinstance(camera, PerspectiveCamera):
        raise TypeError(f"camera must be a PerspectiveCamera, got {type(camera).__name__}")
    return _cast(mesh, T_model_from_camera, camera.pixel_bearings(), camera, scene)


def _cast(mesh, T, bearings, camera, scene) -> ElementMap:
    from sitetwin.panorama.render import RayScene

    started = time.perf_counter()
    T = check_transform(T)
    if scene is None:
        scene = RayScene(mesh)
    dirs = bearings @ T[:3, :3].T.astype(np.float32)
    hits = scene.cast(T[:3, 3], dirs, normals=False)
    return ElementMap(hits.element, hits.range_m, np.asarray(mesh.global_ids), np.asarray(mesh.model_ids), T,
                      camera, seconds=time.perf_counter() - started)


# --- compact storage -------------------------------------------------------------------------

def compact(emap: ElementMap) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """(h, w) uint16/uint32 index image (0 = none, i = i-th visible element) and the per-element records."""
    records = emap.elements()
    lut = np.zeros(len(emap.global_ids) + 1, dtype=np.uint32)
    for i, r in enumerate(records, start=1):
        lut[r["index"] + 1] = i
        r["map_index"] = i
    index = lut[emap.element_index + 1]
    return index.astype(np.uint16 if len(records) < 65535 else np.uint32), records


def write_map_files(folder, index_image: np.ndarray, depth_m: np.ndarray) -> tuple[str, str]:
    """Write the index image (16-bit PNG, or npz past 65534 elements) and float16 ranges into ``folder``."""
    from pathlib import Path

    import cv2

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if index_image.dtype == np.uint16:
        index_name = "element_index.png"
        if not cv2.imwrite(str(folder / index_name), index_image):
            raise OSError(f"could not write {folder / index_name}")
    else:
        index_name = "element_index.npz"
        np.savez_compressed(folder / index_name, index=index_image)
    depth = np.where(np.isfinite(depth_m), depth_m, np.inf).astype(np.float16)
    np.savez_compressed(folder / "depth.npz", depth_m=depth)
    return index_name, "depth.npz"


def read_map_files(folder, index_name: str, depth_name: str) -> tuple[np.ndarray, np.ndarray]:
    from pathlib import Path

    import cv2

    folder = Path(folder)
    if index_name.endswith(".png"):
        index = cv2.imread(str(folder / index_name), cv2.IMREAD_UNCHANGED)
        if index is None:
            raise OSError(f"cannot read {folder / index_name}")
    else:
        with np.load(folder / index_name) as z:
            index = z["index"]
    with np.load(folder / depth_name) as z:
        depth = z["depth_m"].astype(np.float32)
    return index, depth
