"""Draw the design over the photo, and show where the photo and the model disagree.

:func:`overlay` colours each element's pixels (translucent fill, outline, or both) through an
element map: by IFC class, by as-built status from a survey (``element_deviation``) or by
deviation in millimetres. :func:`difference` compares the edges the model predicts (element
boundaries and range jumps in the element map) with the edges the photo shows: model edges
the photo confirms (green), model edges it lacks (red: missing or misplaced work, or a pose
error) and photo edges the model does not explain (blue: unplanned objects, people, clutter).
Edges, not colours, are compared, so lighting and materials do not matter.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sitetwin.bim.queries import element_frame
from sitetwin.data.i18n import N_
from sitetwin.panorama.element_map import ElementMap
from sitetwin.panorama.errors import PanoramaError
from sitetwin.twin.queries import element_status, latest_analysed_survey

CLASS_COLORS: dict[str, tuple[int, int, int]] = {
    "IfcColumn": (230, 75, 60), "IfcBeam": (245, 160, 40), "IfcSlab": (80, 140, 225), "IfcWall": (110, 200, 110),
    "IfcWallStandardCase": (110, 200, 110), "IfcWindow": (70, 215, 235), "IfcDoor": (200, 115, 225),
    "IfcRailing": (250, 230, 40), "IfcStair": (170, 110, 60), "IfcStairFlight": (170, 110, 60),
    "IfcRoof": (150, 90, 200), "IfcCovering": (190, 190, 120), "IfcMember": (240, 120, 160),
    "IfcPlate": (120, 170, 200), "IfcFooting": (140, 140, 90), "IfcCurtainWall": (60, 190, 200),
    "IfcBuildingElementProxy": (170, 170, 170),
}
STATUS_COLORS: dict[str, tuple[int, int, int]] = {
    "built": (40, 185, 80), "partial": (245, 185, 30), "not_built": (225, 50, 50),
    "out_of_tolerance": (205, 45, 205), "unknown": (150, 150, 150),
}
DEVIATION_LIMITS_MM = (5.0, 10.0, 20.0)     # (mm) green below the first, yellow to the second, red past the third


@dataclass(frozen=True)
class Coloring:
    """Colours per element (keyed by GlobalId) and the legend that explains them."""

    colors: dict[str, tuple[int, int, int]]
    legend: dict[str, tuple[int, int, int]]
    mode: str
    details: dict[str, Any] = field(default_factory=dict)


def class_color(ifc_class: str) -> tuple[int, int, int]:
    if ifc_class in CLASS_COLORS:
        return CLASS_COLORS[ifc_class]
    h = hashlib.blake2b(ifc_class.encode(), digest_size=3).digest()
    return (80 + h[0] % 150, 80 + h[1] % 150, 80 + h[2] % 150)


def deviation_color(mm: float | None, limits=DEVIATION_LIMITS_MM) -> tuple[int, int, int]:
    """Green -> yellow -> red with the magnitude of a deviation in millimetres; grey when unknown."""
    if mm is None or not np.isfinite(mm):
        return STATUS_COLORS["unknown"]
    a = abs(float(mm))
    lo, mid, hi = limits
    if a <= lo:
        return (40, 185, 80)
    if a <= mid:
        t = (a - lo) / (mid - lo)
        return (int(40 + t * 210), int(185 + t * 40), int(80 - t * 50))
    t = min(1.0, (a - mid) / (hi - mid))
    return (int(250 - t * 25), int(225 - t * 175), int(30 + t * 20))


def colors_by_class(store, site_code: str, model_ids: list[str] | None = None) -> Coloring:
    """Element colours by IFC class, from the store's ``elements``."""
    rows = _elements(store, site_code, model_ids)
    colors = {r["global_id"]: class_color(r["ifc_class"]) for r in rows}
    legend = {c: class_color(c) for c in sorted({r["ifc_class"] for r in rows})}
    return Coloring(colors, legend, "class")


def colors_by_status(store, site_code: str, survey_id: str | None = None) -> Coloring:
    """Element colours by as-built status from a survey (default: the site's latest); grey: not surveyed."""
    survey_id = survey_id or _latest_survey(store, site_code)
    found = element_status(store, survey_id)
    colors = {g: STATUS_COLORS.get(s, STATUS_COLORS["unknown"]) for g, s in zip(found["global_id"], found["status"])}
    return Coloring(colors, dict(STATUS_COLORS), "status", {"survey_id": survey_id})


def colors_by_deviation(store, site_code: str, survey_id: str | None = None, *, column: str = "p95_mm",
                        limits=DEVIATION_LIMITS_MM) -> Coloring:
    """Element colours by a deviation figure (``p95_mm``, ``mean_mm``, ``max_mm``, ``shift_mm``) of a survey."""
    if column not in ("p95_mm", "mean_mm", "median_mm", "max_mm", "shift_mm"):
        raise PanoramaError(N_("deviation colouring uses p95_mm, mean_mm, median_mm, max_mm or shift_mm, "
                               "not {column!r}"), column=column)
    survey_id = survey_id or _latest_survey(store, site_code)
    found = element_status(store, survey_id)
    colors = {g: deviation_color(mm, limits) for g, mm in zip(found["global_id"], found[column].tolist())}
    legend = {f"<= {limits[0]:g} mm": deviation_color(0, limits),
              f"{limits[1]:g} mm": deviation_color(limits[1], limits),
              f">= {limits[2]:g} mm": deviation_color(limits[2], limits), "not measured": STATUS_COLORS["unknown"]}
    return Coloring(colors, legend, "deviation", {"survey_id": survey_id, "column": column})


def coloring(store, site_code: str, mode: str, *, survey_id: str | None = None,
             model_ids: list[str] | None = None) -> Coloring:
    """Colours by ``class``, ``status`` or ``deviation``."""
    if mode == "class":
        return colors_by_class(store, site_code, model_ids)
    if mode == "status":
        return colors_by_status(store, site_code, survey_id)
    if mode == "deviation":
        return colors_by_deviation(store, site_code, survey_id)
    raise PanoramaError(N_("colour by class, status or deviation, not {mode!r}"), mode=mode)


def _elements(store, site_code: str, model_ids: list[str] | None) -> list[dict[str, Any]]:
    frame = element_frame(store, model_ids=model_ids) if model_ids else element_frame(store, site_code=site_code)
    return frame[["global_id", "ifc_class"]].to_dict("records")


def _latest_survey(store, site_code: str) -> str:
    sid = latest_analysed_survey(store, site_code)
    if sid is None:
        raise PanoramaError(N_("site {site_code}: no analysed survey to colour by; add one with `sitetwin survey add`"),
                            site_code=site_code)
    return sid


def _fit_map(index: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resample of an index image to ``shape`` (h, w)."""
    if index.shape == shape:
        return index
    rows = ((np.arange(shape[0]) + 0.5) * index.shape[0] / shape[0]).astype(np.int64)
    cols = ((np.arange(shape[1]) + 0.5) * index.shape[1] / shape[1]).astype(np.int64)
    return index[rows[:, None], cols[None, :]]


def _lut(emap: ElementMap, colors: Mapping[str, tuple[int, int, int]] | Callable | np.ndarray):
    """(n + 1, 3) uint8 colours and (n + 1,) bool 'drawn' per lookup index (last row: no element)."""
    n = len(emap.global_ids)
    lut = np.zeros((n + 1, 3), np.uint8)
    drawn = np.zeros(n + 1, bool)
    if isinstance(colors, np.ndarray):
        if colors.shape != (n, 3):
            raise ValueError(f"colors must be ({n}, 3), one per element of the map's lookup")
        lut[:n], drawn[:n] = colors, True
        return lut, drawn
    for i, gid in enumerate(np.asarray(emap.global_ids).tolist()):
        c = colors(gid) if callable(colors) else colors.get(gid)
        if c is not None:
            lut[i], drawn[i] = c, True
    return lut, drawn


def boundary_masks(index: np.ndarray, depth: np.ndarray | None = None, *, wrap: bool = True,
                   depth_jump: float = 0.04) -> tuple[np.ndarray, np.ndarray]:
    """Where neighbouring pixels see another element (or, with ``depth``, the same element at a
    range more than ``depth_jump`` (relative) away: a fold or a step): (h, w) bool against the right
    neighbour (the last column against the first when ``wrap``) and (h - 1, w) against the lower one."""
    right = index != np.roll(index, -1, axis=1)
    if not wrap:
        right[:, -1] = False
    down = index[:-1] != index[1:]
    if depth is not None:
        with np.errstate(invalid="ignore", divide="ignore"):
            d = np.where(np.isfinite(depth), depth, 0.0)
            dr = np.roll(d, -1, axis=1)
            rel = np.abs(d - dr) / np.maximum(np.minimum(d, dr), 1e-6)
            right |= (rel > depth_jump) & (index >= 0)
            rel_v = np.abs(d[:-1] - d[1:]) / np.maximum(np.minimum(d[:-1], d[1:]), 1e-6)
            down |= (rel_v > depth_jump) & (index[:-1] >= 0)
    return right, down


def boundaries(index: np.ndarray, depth: np.ndarray | None = None, *, wrap: bool = True,
               depth_jump: float = 0.04) -> np.ndarray:
    """(h, w) bool: pixels whose right or lower neighbour sees another element (or, with ``depth``,
    the same element at a range more than ``depth_jump`` (relative) away: a fold or a step)."""
    right, down = boundary_masks(index, depth, wrap=wrap, depth_jump=depth_jump)
    edge = right.copy()
    edge[:-1] |= down
    return edge


def overlay(image: np.ndarray, emap: ElementMap, colors, *, style: str = "both", alpha: float = 0.45,
            thickness: int = 2, outline_color: tuple[int, int, int] | None = None) -> np.ndarray:
    """The photo with the design drawn over it (RGB uint8, the photo's size).

    colors : dict GlobalId -> (r, g, b) (a :class:`Coloring`'s ``colors``), a callable, or a
             (n, 3) array per lookup entry; elements without a colour are left as photographed
    style : ``fill`` (translucent, ``alpha``), ``outline`` (``thickness`` px) or ``both``
    """
    import cv2

    if style not in ("fill", "outline", "both"):
        raise ValueError(f"style must be fill, outline or both, got {style!r}")
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be (h, w, 3) RGB, got {image.shape}")
    if isinstance(colors, Coloring):
        colors = colors.colors
    lut, drawn = _lut(emap, colors)
    index = _fit_map(emap.element_index, image.shape[:2])
    slot = np.where(index >= 0, index, len(lut) - 1)
    out = image.astype(np.float32)
    painted = drawn[slot]
    if style in ("fill", "both"):
        out[painted] = out[painted] * (1 - alpha) + lut[slot][painted].astype(np.float32) * alpha
    if style in ("outline", "both"):
        depth = _fit_map(emap.depth_m, image.shape[:2]) if emap.depth_m is not None else None
        edge = boundaries(index, depth, wrap=emap.camera is None) & painted
        if thickness > 1:
            edge = cv2.dilate(edge.astype(np.uint8), np.ones((thickness, thickness), np.uint8)).astype(bool)
        # each side of an outline takes its own element's colour; pixels of undrawn elements stay
        edge &= painted
        out[edge] = lut[slot][edge] if outline_color is None else np.array(outline_color, np.float32)
    return np.clip(out, 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class Difference:
    """Model-predicted edges against photo edges.

    image : (h, w, 3) uint8 visualisation (grey photo; green = confirmed model edge, red = model
            edge the photo lacks, blue = photo edge the model does not explain)
    supported_share : share of model edge pixels with a photo edge within ``radius_px``
    explained_share : share of photo edge pixels with a model edge within ``radius_px``
    per_element : GlobalId -> (edge pixels, supported share), for elements with >= 20 edge pixels
    """

    image: np.ndarray
    model_edges: np.ndarray
    photo_edges: np.ndarray
    supported_share: float
    explained_share: float
    per_element: dict[str, tuple[int, float]]


def photo_edges(image: np.ndarray, *, blur_px: float = 1.5, high_percentile: float = 90.0,
                min_length_px: int = 25) -> np.ndarray:
    """(h, w) bool Canny edges of a photo: thresholds from its own gradient statistics, short
    fragments (texture, noise) of fewer than ``min_length_px`` pixels dropped."""
    import cv2

    gray = cv2.cvtColor(np.asarray(image, np.uint8), cv2.COLOR_RGB2GRAY)
    if blur_px > 0:
        gray = cv2.GaussianBlur(gray, (0, 0), blur_px)
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1)
    mag = np.hypot(gx, gy)
    # strong edges stand out of the gradient's bulk: above its upper percentile and well above
    # its median (texture and sensor noise), whichever is higher
    hi = max(float(np.percentile(mag, high_percentile)), 4.0 * float(np.median(mag)), 8.0)
    edges = cv2.Canny(gray, hi * 0.5, hi, L2gradient=True)
    if min_length_px > 1:
        n, labels, stats, _ = cv2.connectedComponentsWithStats(edges, connectivity=8)
        keep = stats[:, cv2.CC_STAT_AREA] >= min_length_px
        keep[0] = False
        return keep[labels]
    return edges > 0


def difference(photo: np.ndarray, emap: ElementMap, *, radius_px: float = 3.0) -> Difference:
    """Compare the edges the model predicts through ``emap`` with the edges in ``photo``."""
    import cv2

    photo = np.asarray(photo)
    if photo.ndim != 3 or photo.shape[2] != 3:
        raise ValueError(f"photo must be (h, w, 3) RGB, got {photo.shape}")
    index = _fit_map(emap.element_index, photo.shape[:2])
    depth = _fit_map(emap.depth_m, photo.shape[:2])
    model = boundaries(index, depth, wrap=emap.camera is None)
    seen = photo_edges(photo)
    dist_photo = cv2.distanceTransform((~seen).astype(np.uint8), cv2.DIST_L2, 3)
    dist_model = cv2.distanceTransform((~model).astype(np.uint8), cv2.DIST_L2, 3)
    supported = model & (dist_photo <= radius_px)
    lacking = model & ~supported
    unexplained = seen & (dist_model > radius_px)
    grey = cv2.cvtColor(cv2.cvtColor(photo.astype(np.uint8), cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    vis = (grey.astype(np.float32) * 0.55).astype(np.uint8)
    vis[unexplained] = (60, 140, 255)
    vis[lacking] = (235, 50, 40)
    vis[supported] = (60, 230, 90)
    per: dict[str, tuple[int, float]] = {}
    ids = index[model]
    ok = supported[model]
    valid = ids >= 0
    if valid.any():
        counts = np.bincount(ids[valid], minlength=len(emap.global_ids))
        good = np.bincount(ids[valid], weights=ok[valid].astype(float), minlength=len(emap.global_ids))
        for e in np.flatnonzero(counts >= 20):
            per[str(emap.global_ids[e])] = (int(counts[e]), float(good[e] / counts[e]))
    total = int(model.sum())
    return Difference(vis, model, seen, float(supported.sum() / total) if total else 0.0,
                      float((seen & ~unexplained).sum() / max(1, int(seen.sum()))), per)
