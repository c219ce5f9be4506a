"""Detection on 360-degree panoramas: overlapping perspective views and narrow slices, mapped back exactly.

YOLO is trained on ordinary photos, so an equirectangular image (whose straight lines bend
and whose poles stretch) is cut into perspective views (:mod:`panorama.camera`): a ring of
wide views round the horizon, a ring looking down for people close to the camera, and a
ring of narrow slices along the horizon, where far (small) objects sit; a narrow slice
magnifies them, which is what sliced inference is for. Every box is mapped back to
equirectangular pixels by :meth:`panorama.camera.PerspectiveCamera.box_to_pano`, which maps
the box outline point by point (exact, not resampled). Duplicates found in overlapping views
are merged on the sphere (IoU across the seam); a box cut by its view's border ranks below
any whole box of the same object, so the view that sees it whole wins.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sitetwin.vision.boxes import Boxes, merge_boxes
from sitetwin.vision.detect import Detector


@dataclass(frozen=True)
class PanoViews:
    """Which perspective views cover a panorama. Angles in degrees; sizes in pixels."""

    size: int = 640                 # (px) side of every view (the detector's input)
    ring: int = 8                   # wide views round the horizon (0: none)
    ring_fov_deg: float = 90.0
    ring_pitch_deg: float = 0.0
    low_ring: int = 4               # views looking down, for people near the camera (0: none)
    low_fov_deg: float = 90.0
    low_pitch_deg: float = -50.0
    slices: int = 8                 # narrow views along the horizon for small far objects (0: none)
    slice_fov_deg: float = 45.0
    slice_pitch_deg: float = -5.0
    merge_iou: float = 0.45         # (0-1) boxes of one class overlapping more than this are one object
    edge_px: float = 2.0            # (px) a box this close to a view's border is cut off by it

    def cameras(self):
        """The :class:`panorama.camera.PerspectiveCamera` of every view."""
        from sitetwin.panorama.camera import PerspectiveCamera

        cams = []
        for count, fov, pitch, offset in ((self.ring, self.ring_fov_deg, self.ring_pitch_deg, 0.0),
                                          (self.low_ring, self.low_fov_deg, self.low_pitch_deg, 0.5),
                                          (self.slices, self.slice_fov_deg, self.slice_pitch_deg, 0.5)):
            for k in range(int(count)):
                yaw = (k + offset) * 360.0 / count
                yaw = yaw - 360.0 if yaw > 180.0 else yaw
                cams.append(PerspectiveCamera.from_fov(self.size, self.size, fov, yaw, pitch))
        return cams


def detect_panorama(detector: Detector, image: np.ndarray, views: PanoViews = PanoViews()) -> Boxes:
    """Boxes in equirectangular pixels of an (h, 2h, 3) RGB panorama (``x2`` may exceed the width at the seam)."""
    from sitetwin.panorama.camera import render_view

    image = np.asarray(image)
    if image.ndim != 3 or image.shape[1] != 2 * image.shape[0]:
        from sitetwin.data.i18n import N_
        from sitetwin.vision.errors import SourceError

        raise SourceError(N_("a panorama must be an (h, 2h, 3) image, got shape {shape}"), shape=image.shape)
    H, W = image.shape[:2]
    cams = views.cameras()
    crops = [render_view(image, cam) for cam in cams]
    results = detector.predict(crops)
    boxes, confs, ranks, classes = [], [], [], []
    for cam, res in zip(cams, results):
        for i in range(len(res)):
            b = res.xyxy[i].astype(np.float64)
            cut = (b[0] <= views.edge_px or b[1] <= views.edge_px or b[2] >= cam.width - views.edge_px
                   or b[3] >= cam.height - views.edge_px)
            boxes.append(cam.box_to_pano(b, W, H))
            confs.append(float(res.conf[i]))
            ranks.append(float(res.conf[i]) - (1.0 if cut else 0.0))
            classes.append(int(res.cls[i]))
    if not boxes:
        return Boxes.empty(detector.names)
    xyxy = np.asarray(boxes, np.float64)
    conf = np.asarray(confs, np.float32)
    cls = np.asarray(classes, np.int32)
    keep = merge_boxes(xyxy, np.asarray(ranks), cls, views.merge_iou, wrap_width=float(W))
    return Boxes(xyxy[keep].astype(np.float32), conf[keep], cls[keep], detector.names,
                 np.full(len(keep), -1, np.int32))


def crop_panorama(image: np.ndarray, xyxy, margin: float = 0.25) -> np.ndarray:
    """The pixels of an equirectangular box (with ``margin`` of its size around it), across the seam if needed."""
    H, W = image.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in xyxy)
    mx, my = (x2 - x1) * margin, (y2 - y1) * margin
    cols = np.arange(int(np.floor(x1 - mx)), int(np.ceil(x2 + mx))) % W
    r0, r1 = max(0, int(np.floor(y1 - my))), min(H, int(np.ceil(y2 + my)))
    return image[r0:r1][:, cols]
