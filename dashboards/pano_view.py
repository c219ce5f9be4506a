"""The panorama viewer's server side: perspective views cut from a posed panorama (``panorama.camera``),
with the design overlaid (``panorama.overlay``) and detections drawn, and view pixels mapped back to
panorama pixels, elements (``panorama.element_map``) and measurements (``panorama.measure``).

Decoded panoramas and overlays are cached by file and content hash, so turning the view only
resamples the image.
"""

from __future__ import annotations

import base64
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from sitetwin.data.i18n import N_, Translator

_ = Translator("dashboards")

VIEW_WIDTH, VIEW_HEIGHT = 960, 560
DEFAULT_FOV_DEG = 90.0
MIN_FOV_DEG, MAX_FOV_DEG = 30.0, 120.0
OVERLAY_MODES = ("class", "status", "deviation")
OVERLAY_LABELS = {"class": N_("IFC class"), "status": N_("as-built status"), "deviation": N_("deviation")}
IMAGE_CACHE_SIZE = 8
BOX_COLOR = (255, 60, 60)
JPEG_QUALITY = 82

_cache: OrderedDict[tuple, Any] = OrderedDict()
_lock = threading.Lock()


def _cached(key: tuple, make):
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    value = make()
    with _lock:
        _cache[key] = value
        while len(_cache) > IMAGE_CACHE_SIZE:
            _cache.popitem(last=False)
    return value


@dataclass(frozen=True)
class View:
    """Where the viewer looks: yaw/pitch (degrees, panorama camera frame) and horizontal field of view."""

    yaw_deg: float = 0.0
    pitch_deg: float = 0.0
    fov_deg: float = DEFAULT_FOV_DEG
    width: int = VIEW_WIDTH
    height: int = VIEW_HEIGHT

    def camera(self):
        from sitetwin.panorama.camera import PerspectiveCamera

        return PerspectiveCamera.from_fov(self.width, self.height, self.fov_deg, self.yaw_deg, self.pitch_deg)

    @classmethod
    def from_dict(cls, d: dict | None) -> View:
        d = d or {}
        fov = float(np.clip(float(d.get("fov_deg", DEFAULT_FOV_DEG)), MIN_FOV_DEG, MAX_FOV_DEG))
        return cls(float(d.get("yaw_deg", 0.0)) % 360.0, float(np.clip(float(d.get("pitch_deg", 0.0)), -85, 85)), fov)

    def to_dict(self) -> dict:
        return {"yaw_deg": self.yaw_deg, "pitch_deg": self.pitch_deg, "fov_deg": self.fov_deg}


def pano_pixels(pano) -> np.ndarray:
    """The panorama's pixels (decoded once per file content)."""
    from sitetwin.panorama.pano_store import load_image

    return _cached(("pixels", str(pano.file), pano.sha256), lambda: load_image(pano))


def element_map(store, pano):
    """The stored element map of a posed panorama (None when it has none)."""
    from sitetwin.panorama.errors import PanoramaError
    from sitetwin.panorama.pano_store import load_element_map
    from sitetwin.panorama.queries import element_map_created_at

    created = element_map_created_at(store, pano.pano_id)
    if created is None:
        return None
    try:
        return _cached(("emap", pano.pano_id, str(created)), lambda: load_element_map(store, pano.pano_id))
    except PanoramaError:
        return None


def layered(store, pano, *, overlay: str | None, detections: list[dict] | None) -> tuple[np.ndarray, str | None]:
    """The panorama with the design overlaid (by class, status or deviation) and detection boxes drawn.

    Returns the image and a note when an overlay could not be drawn (no element map, no survey).
    """
    from sitetwin.data.errors import SitetwinError

    image = pano_pixels(pano)
    note = None
    if overlay:
        if overlay not in OVERLAY_MODES:
            raise ValueError(f"overlay {overlay!r}: use one of {', '.join(OVERLAY_MODES)}")
        emap = element_map(store, pano)
        if emap is None:
            note = _("No element map for this panorama: make one with `sitetwin pano element-map`.")
        else:
            from sitetwin.panorama.overlay import coloring
            from sitetwin.panorama.overlay import overlay as draw

            try:
                colors = coloring(store, pano.site_code, overlay)
                survey = colors.details.get("survey_id")
                image = _cached(("overlay", pano.pano_id, pano.sha256, overlay, survey, len(colors.colors)),
                                lambda: draw(image, emap, colors, style="both", alpha=0.35))
            except SitetwinError as exc:
                note = _("Overlay by {overlay} not drawn: {problem}", overlay=_(OVERLAY_LABELS.get(overlay, overlay)),
                         problem=exc)
    if detections:
        image = draw_boxes(image, detections)
    return image, note


def draw_boxes(image: np.ndarray, detections: list[dict], color=BOX_COLOR, thickness: int = 2) -> np.ndarray:
    """Detection boxes (equirectangular pixels; x2 may pass the seam) drawn on a copy of the panorama."""
    import cv2

    out = np.ascontiguousarray(image).copy()
    w = out.shape[1]
    for d in detections:
        x1, y1, x2, y2 = (int(round(d[k])) for k in ("x1", "y1", "x2", "y2"))
        parts = [(x1, x2)] if x2 <= w else [(x1, w - 1), (0, x2 - w)]
        for a, b in parts:
            cv2.rectangle(out, (a, y1), (b, y2), color, thickness)
        # people are labelled above their box, parts (head, hat, vest) inside theirs, so labels do not pile up
        label_y = max(12, y1 - 4) if d.get("class_name") == "person" else min(out.shape[0] - 2, y1 + 12)
        cv2.putText(out, str(d.get("class_name", "")), (x1 + 2, label_y), cv2.FONT_HERSHEY_SIMPLEX, 0.4, color, 1,
                    cv2.LINE_AA)
    return out


def render(image: np.ndarray, view: View) -> np.ndarray:
    from sitetwin.panorama.camera import render_view

    return render_view(image, view.camera())


def jpeg_uri(pixels: np.ndarray, quality: int = JPEG_QUALITY) -> str:
    import cv2

    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(pixels[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("could not encode the view as JPEG")
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


def view_to_pano(view: View, u: float, v: float, pano_width: int, pano_height: int) -> tuple[float, float]:
    """Equirectangular pixel coordinates of view pixel (u, v) (the exact inverse of the view's sampling)."""
    uv = view.camera().to_pano(np.array([[u, v]], dtype=np.float64), pano_width, pano_height)[0]
    return float(uv[0]) % pano_width, float(np.clip(uv[1], 0, pano_height - 1e-6))


def pano_to_view(view: View, uv: np.ndarray, pano_width: int, pano_height: int) -> tuple[np.ndarray, np.ndarray]:
    return view.camera().from_pano(np.asarray(uv, dtype=np.float64).reshape(-1, 2), pano_width, pano_height)


def element_at(emap, pano, u: float, v: float):
    """The element seen at panorama pixel (u, v) (scaled to the element map's resolution), or None."""
    if emap is None:
        return None
    su, sv = emap.width / pano.width, emap.height / pano.height
    return emap.at(min(u * su, emap.width - 1e-6), min(v * sv, emap.height - 1e-6))
