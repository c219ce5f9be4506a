"""Refine a panorama's orientation from image content: align the model's predicted edges with the photo's.

Only the rotation is refined, the camera centre stays: the pose's position comes from control
points or a scan station and is good to centimetres, while a fraction of a degree of rotation
already moves a far edge by decimetres in the overlay. Under a pure rotation the model's edges
move rigidly over the sphere, so they are ray-cast once (an element map at the starting pose)
and each candidate rotation only re-projects their bearings onto a distance transform of the
photo's edges (a truncated chamfer score). A coarse-to-fine grid search over yaw, pitch and
roll keeps the best; the result is accepted only when it clearly improves the score and lies
inside the search range, so a photo that does not show the model leaves the pose unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from panorama.camera import bearing_to_equirect, check_transform, pixel_bearings, rotation_from_ypr


@dataclass(frozen=True)
class RefineConfig:
    """Orientation refinement settings."""

    work_width: int = 2048            # (px) panorama width the search works at
    search_deg: float = 1.5           # (deg) half-range searched in yaw, pitch and roll
    levels: int = 4                   # (count) coarse-to-fine levels, each 5 x 5 x 5 rotations
    truncate_px: float = 8.0          # (px) distances beyond this count as this (outliers, clutter)
    min_edge_points: int = 500        # (count) fewer predicted edge pixels: too little to align on
    min_gain: float = 0.08            # (fraction) accept only if the chamfer score drops by this much


DEFAULT_REFINE_CONFIG = RefineConfig()


@dataclass(frozen=True)
class Refinement:
    T_model_from_camera: np.ndarray   # refined (or, when not accepted, the starting) pose
    accepted: bool
    delta_ypr_deg: tuple[float, float, float]
    score_before_px: float            # mean truncated distance of model edges to photo edges
    score_after_px: float
    edge_points: int
    reason: str


def refine_orientation(photo: np.ndarray, mesh, T_model_from_camera, *, scene=None,
                       config: RefineConfig = DEFAULT_REFINE_CONFIG) -> Refinement:
    """Refine the rotation of ``T_model_from_camera`` so the model's edges meet the photo's edges."""
    import cv2

    from panorama.element_map import element_map
    from panorama.overlay import boundaries, photo_edges

    T0 = check_transform(T_model_from_camera)
    photo = np.asarray(photo)
    if photo.ndim != 3 or photo.shape[1] != 2 * photo.shape[0]:
        raise ValueError(f"photo must be an equirectangular (h, 2h, 3) image, got {photo.shape}")
    W = int(config.work_width)
    H = W // 2
    small = cv2.resize(photo, (W, H), interpolation=cv2.INTER_AREA) if photo.shape[1] != W else photo
    edges = photo_edges(small)
    dist = np.minimum(cv2.distanceTransform((~edges).astype(np.uint8), cv2.DIST_L2, 3),
                      config.truncate_px).astype(np.float32)
    emap = element_map(mesh, T0, W, H, scene=scene)
    model_edges = boundaries(emap.element_index, emap.depth_m) & (emap.element_index >= 0)
    rows, cols = np.nonzero(model_edges)
    if len(rows) < config.min_edge_points:
        return Refinement(T0, False, (0.0, 0.0, 0.0), math.nan, math.nan, int(len(rows)),
                          f"only {len(rows)} predicted edge pixels; too few to align on")
    # the edges' directions in the model frame: fixed under a rotation about the camera centre
    world = pixel_bearings(W, H, np.float64)[rows, cols] @ T0[:3, :3].T

    n = len(world)
    cols_n = 4096
    rows_n = -(-n // cols_n)

    def score(R: np.ndarray) -> float:
        # bilinear samples of the distance transform: a smooth score, so sub-pixel steps count
        uv = bearing_to_equirect(world @ R, W, H) - 0.5
        mx = np.zeros(rows_n * cols_n, np.float32)
        my = np.zeros(rows_n * cols_n, np.float32)
        mx[:n], my[:n] = uv[:, 0], np.clip(uv[:, 1], 0, H - 1)
        sampled = cv2.remap(dist, mx.reshape(rows_n, cols_n), my.reshape(rows_n, cols_n), cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_WRAP)
        return float(sampled.reshape(-1)[:n].mean())

    before = score(T0[:3, :3])
    best = np.zeros(3)
    best_score = before
    step = config.search_deg / 2.0
    for _ in range(config.levels):
        centre = best.copy()
        offsets = np.array([-2, -1, 0, 1, 2]) * step
        for dy in offsets:
            for dp in offsets:
                for dr in offsets:
                    cand = centre + (dy, dp, dr)
                    if np.any(np.abs(cand) > config.search_deg + 1e-9):
                        continue
                    s = score(T0[:3, :3] @ rotation_from_ypr(*cand))
                    if s < best_score - 1e-9:
                        best, best_score = cand, s
        step /= 2.5
    gain = (before - best_score) / before if before > 0 else 0.0
    at_edge = np.any(np.abs(best) > config.search_deg - 1e-6)
    if gain < config.min_gain:
        return Refinement(T0, False, tuple(best.tolist()), before, best_score, int(len(rows)),
                          f"no clear improvement ({100 * gain:.1f} % < {100 * config.min_gain:.0f} %)")
    if at_edge:
        return Refinement(T0, False, tuple(best.tolist()), before, best_score, int(len(rows)),
                          "the best rotation lies at the edge of the search range: not trusted")
    T = T0.copy()
    T[:3, :3] = T0[:3, :3] @ rotation_from_ypr(*best)
    return Refinement(T, True, tuple(best.tolist()), before, best_score, int(len(rows)), "accepted")
