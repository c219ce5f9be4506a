"""Camera conventions for panoramas and the perspective cameras cut from them (or standing on site).

Everything else in ``panorama`` maps pixels, bearings and model points with these functions.

**Panorama camera frame** (right-handed, metres): ``x`` forward (the centre of the image),
``y`` left, ``z`` up. A level camera with yaw 0 looks along the model's +x axis.

**Equirectangular pixels** ``(u, v)``: continuous coordinates, ``u`` in ``[0, width)`` from the
left edge, ``v`` in ``[0, height)`` from the top edge; the centre of the pixel in column ``i``,
row ``j`` is ``(i + 0.5, j + 0.5)``. Azimuth (anticlockwise seen from above, 0 = forward) and
elevation (0 = horizon, +90 deg = zenith)::

    azimuth   = pi * (1 - 2 u / width)       u = width / 2 looks forward, u grows to the right
    elevation = pi * (1/2 - v / height)      v = 0 is the zenith
    bearing   = (cos(el) cos(az), cos(el) sin(az), sin(el))    unit vector, camera frame

**Pose**: ``T_model_from_camera`` is a 4x4 rigid transform; its rotation columns are the camera
axes in the model frame (the site's local frame, metres) and its translation is the camera
centre. ``rotation_from_ypr`` builds the rotation as ``Rz(yaw) @ Ry(-pitch) @ Rx(roll)``: yaw
anticlockwise about model +z from +x, pitch positive nose up, roll right-handed about forward.

**Perspective cameras** (:class:`PerspectiveCamera`) are pinholes with the OpenCV frame
(``x`` right, ``y`` down, ``z`` forward) and the same pixel convention (pixel centres at
``i + 0.5``). ``yaw_deg/pitch_deg/roll_deg`` orient the view inside the panorama camera frame,
so a crop of a panorama and a fixed site camera (whose ``T_model_from_camera`` is then the
pose of its own panorama-convention frame) use the same code. Mappings between perspective
pixels and panorama pixels are analytic (exact up to float64 rounding), not resampled.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

# OpenCV view axes (x right, y down, z forward) expressed in the panorama camera frame.
M_CAMERA_FROM_VIEW = np.array([[0.0, 0.0, 1.0],
                               [-1.0, 0.0, 0.0],
                               [0.0, -1.0, 0.0]])

# name -> (yaw_deg, pitch_deg) of the six 90-degree cube faces. The "up" face's bottom edge
# and the "down" face's top edge meet the "front" face.
CUBE_FACES: dict[str, tuple[float, float]] = {
    "front": (0.0, 0.0), "right": (-90.0, 0.0), "back": (180.0, 0.0),
    "left": (90.0, 0.0), "up": (0.0, 90.0), "down": (0.0, -90.0),
}


# --- equirectangular <-> bearings -------------------------------------------------------------

def equirect_to_angles(uv, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Azimuth and elevation (radians) of equirectangular pixel coordinates ``uv`` (..., 2)."""
    uv = np.asanyarray(uv, dtype=np.float64)
    if uv.shape[-1] != 2:
        raise ValueError(f"uv must be (..., 2) pixel coordinates, got shape {uv.shape}")
    az = math.pi * (1.0 - 2.0 * uv[..., 0] / width)
    el = math.pi * (0.5 - uv[..., 1] / height)
    return az, el


def angles_to_bearing(azimuth, elevation) -> np.ndarray:
    """(..., 3) unit bearings in the camera frame from azimuth and elevation in radians."""
    az = np.asanyarray(azimuth, dtype=np.float64)
    el = np.asanyarray(elevation, dtype=np.float64)
    ce = np.cos(el)
    return np.stack([ce * np.cos(az), ce * np.sin(az), np.sin(el)], axis=-1)


def equirect_to_bearing(uv, width: int, height: int) -> np.ndarray:
    """(..., 3) unit bearings in the camera frame of equirectangular pixel coordinates (..., 2)."""
    return angles_to_bearing(*equirect_to_angles(uv, width, height))


def bearing_to_angles(bearings) -> tuple[np.ndarray, np.ndarray]:
    """Azimuth in (-pi, pi] and elevation in [-pi/2, pi/2] of (..., 3) bearings (any length)."""
    d = np.asanyarray(bearings, dtype=np.float64)
    if d.shape[-1] != 3:
        raise ValueError(f"bearings must be (..., 3), got shape {d.shape}")
    az = np.arctan2(d[..., 1], d[..., 0])
    el = np.arctan2(d[..., 2], np.hypot(d[..., 0], d[..., 1]))
    return az, el


def bearing_to_equirect(bearings, width: int, height: int) -> np.ndarray:
    """(..., 2) equirectangular pixel coordinates of (..., 3) bearings; ``u`` wrapped into [0, width)."""
    az, el = bearing_to_angles(bearings)
    u = np.mod(width * (math.pi - az) / (2.0 * math.pi), width)
    v = height * (0.5 - el / math.pi)
    return np.stack([u, v], axis=-1)


def pixel_bearings(width: int, height: int, dtype=np.float32) -> np.ndarray:
    """(height, width, 3) unit bearings of every equirectangular pixel centre, camera frame."""
    az = (math.pi * (1.0 - 2.0 * (np.arange(width, dtype=np.float64) + 0.5) / width))
    el = (math.pi * (0.5 - (np.arange(height, dtype=np.float64) + 0.5) / height))
    ce, se = np.cos(el)[:, None], np.sin(el)[:, None]
    out = np.empty((height, width, 3), dtype=dtype)
    out[..., 0] = ce * np.cos(az)[None, :]
    out[..., 1] = ce * np.sin(az)[None, :]
    out[..., 2] = se
    return out


def angular_distance_deg(a, b) -> np.ndarray:
    """Angle in degrees between bearings ``a`` and ``b`` (..., 3), robust for tiny angles."""
    a = np.asanyarray(a, dtype=np.float64)
    b = np.asanyarray(b, dtype=np.float64)
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    return np.degrees(np.arctan2(np.linalg.norm(np.cross(a, b), axis=-1), np.sum(a * b, axis=-1)))


def equirect_pixel_distance(uv_a, uv_b, width: int) -> np.ndarray:
    """Pixel distance between equirectangular coordinates, taking the shorter way round the seam."""
    a = np.asanyarray(uv_a, dtype=np.float64)
    b = np.asanyarray(uv_b, dtype=np.float64)
    du = np.abs(a[..., 0] - b[..., 0]) % width
    du = np.minimum(du, width - du)
    return np.hypot(du, a[..., 1] - b[..., 1])


# --- poses ------------------------------------------------------------------------------------

def rotation_from_ypr(yaw_deg: float, pitch_deg: float = 0.0, roll_deg: float = 0.0) -> np.ndarray:
    """(3, 3) ``R_model_from_camera = Rz(yaw) @ Ry(-pitch) @ Rx(roll)``, angles in degrees."""
    y, p, r = (math.radians(float(a)) for a in (yaw_deg, pitch_deg, roll_deg))
    cz, sz = math.cos(y), math.sin(y)
    cp, sp = math.cos(p), math.sin(p)
    cr, sr = math.cos(r), math.sin(r)
    rz = np.array([[cz, -sz, 0.0], [sz, cz, 0.0], [0.0, 0.0, 1.0]])
    ry = np.array([[cp, 0.0, -sp], [0.0, 1.0, 0.0], [sp, 0.0, cp]])   # Ry(-pitch)
    rx = np.array([[1.0, 0.0, 0.0], [0.0, cr, -sr], [0.0, sr, cr]])
    return rz @ ry @ rx


def ypr_from_rotation(R) -> tuple[float, float, float]:
    """Yaw, pitch, roll in degrees of a rotation built as in :func:`rotation_from_ypr`."""
    R = np.asanyarray(R, dtype=np.float64)
    pitch = math.degrees(math.asin(max(-1.0, min(1.0, R[2, 0]))))
    yaw = math.degrees(math.atan2(R[1, 0], R[0, 0]))
    roll = math.degrees(math.atan2(R[2, 1], R[2, 2]))
    return yaw, pitch, roll


def pose_matrix(position_m, yaw_deg: float = 0.0, pitch_deg: float = 0.0, roll_deg: float = 0.0) -> np.ndarray:
    """(4, 4) ``T_model_from_camera`` from a camera centre (3,) in metres and yaw/pitch/roll in degrees."""
    position = np.asanyarray(position_m, dtype=np.float64).reshape(-1)
    if position.shape != (3,) or not np.all(np.isfinite(position)):
        raise ValueError(f"position_m must be 3 finite numbers (metres), got {position_m!r}")
    T = np.eye(4)
    T[:3, :3] = rotation_from_ypr(yaw_deg, pitch_deg, roll_deg)
    T[:3, 3] = position
    return T


def look_at(position_m, target_m, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """(4, 4) ``T_model_from_camera`` of a camera at ``position_m`` whose forward axis points at ``target_m``."""
    c = np.asanyarray(position_m, dtype=np.float64)
    f = np.asanyarray(target_m, dtype=np.float64) - c
    if np.linalg.norm(f) < 1e-9:
        raise ValueError("look_at: target coincides with the camera position")
    f /= np.linalg.norm(f)
    left = np.cross(np.asanyarray(up, dtype=np.float64), f)
    if np.linalg.norm(left) < 1e-9:   # looking straight up or down: any left will do
        left = np.cross((1.0, 0.0, 0.0) if abs(f[0]) < 0.9 else (0.0, 1.0, 0.0), f)
    left /= np.linalg.norm(left)
    T = np.eye(4)
    T[:3, 0], T[:3, 1], T[:3, 2], T[:3, 3] = f, left, np.cross(f, left), c
    return T


def check_transform(T, name: str = "T_model_from_camera", tol: float = 1e-4) -> np.ndarray:
    """``T`` as a (4, 4) float64 rigid transform, or ValueError saying what is wrong with it."""
    T = np.asanyarray(T, dtype=np.float64)
    if T.shape != (4, 4):
        raise ValueError(f"{name} must be a 4x4 matrix, got shape {T.shape}")
    if not np.all(np.isfinite(T)):
        raise ValueError(f"{name} holds non-finite values")
    R = T[:3, :3]
    if not np.allclose(T[3], (0.0, 0.0, 0.0, 1.0), atol=tol):
        raise ValueError(f"{name}: last row must be 0 0 0 1, got {T[3].tolist()}")
    if not np.allclose(R.T @ R, np.eye(3), atol=tol) or np.linalg.det(R) < 0:
        raise ValueError(f"{name}: the upper-left 3x3 is not a rotation (orthonormal, det +1)")
    return T


def camera_rays(T_model_from_camera, bearings) -> tuple[np.ndarray, np.ndarray]:
    """Origin (3,) and model-frame directions (..., 3) of camera-frame bearings under a pose."""
    T = np.asanyarray(T_model_from_camera, dtype=np.float64)
    d = np.asanyarray(bearings)
    if d.dtype != np.float32:
        d = d.astype(np.float64)
    return T[:3, 3].copy(), d @ T[:3, :3].T.astype(d.dtype)


def project_points(points_m, T_model_from_camera, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Equirectangular (u, v) of model points (n, 3) and their range in metres from the camera."""
    T = np.asanyarray(T_model_from_camera, dtype=np.float64)
    p = np.asanyarray(points_m, dtype=np.float64).reshape(-1, 3)
    local = (p - T[:3, 3]) @ T[:3, :3]
    return bearing_to_equirect(local, width, height), np.linalg.norm(local, axis=1)


# --- perspective cameras ----------------------------------------------------------------------

@dataclass(frozen=True)
class PerspectiveCamera:
    """A pinhole camera: intrinsics in pixels plus its orientation inside the panorama camera frame.

    width, height : image size in pixels
    fx, fy, cx, cy : focal lengths and principal point in pixels (pixel centres at i + 0.5)
    yaw_deg, pitch_deg, roll_deg : view direction within the panorama frame (see module docstring)
    """

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    yaw_deg: float = 0.0
    pitch_deg: float = 0.0
    roll_deg: float = 0.0

    def __post_init__(self) -> None:
        if int(self.width) < 1 or int(self.height) < 1:
            raise ValueError(f"PerspectiveCamera needs a positive size, got {self.width}x{self.height}")
        if not (self.fx > 0 and self.fy > 0):
            raise ValueError(f"PerspectiveCamera needs positive focal lengths, got fx={self.fx}, fy={self.fy}")

    @classmethod
    def from_fov(cls, width: int, height: int, fov_deg: float, yaw_deg: float = 0.0, pitch_deg: float = 0.0,
                 roll_deg: float = 0.0) -> PerspectiveCamera:
        """A centred camera with square pixels and horizontal field of view ``fov_deg`` (0 < fov < 180)."""
        if not 0.0 < float(fov_deg) < 179.0:
            raise ValueError(f"fov_deg must lie in (0, 179), got {fov_deg!r}")
        f = (width / 2.0) / math.tan(math.radians(fov_deg) / 2.0)
        return cls(int(width), int(height), f, f, width / 2.0, height / 2.0,
                   float(yaw_deg), float(pitch_deg), float(roll_deg))

    @property
    def fov_deg(self) -> tuple[float, float]:
        """Horizontal and vertical field of view in degrees (of a centred camera)."""
        return (math.degrees(2 * math.atan(self.width / 2.0 / self.fx)),
                math.degrees(2 * math.atan(self.height / 2.0 / self.fy)))

    @property
    def K(self) -> np.ndarray:
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @property
    def R_camera_from_view(self) -> np.ndarray:
        """(3, 3) rotation from the OpenCV view frame to the panorama camera frame."""
        return rotation_from_ypr(self.yaw_deg, self.pitch_deg, self.roll_deg) @ M_CAMERA_FROM_VIEW

    def bearings(self, uv) -> np.ndarray:
        """(..., 3) unit bearings in the panorama camera frame of view pixel coordinates (..., 2)."""
        uv = np.asanyarray(uv, dtype=np.float64)
        if uv.shape[-1] != 2:
            raise ValueError(f"uv must be (..., 2) pixel coordinates, got shape {uv.shape}")
        ray = np.stack([(uv[..., 0] - self.cx) / self.fx, (uv[..., 1] - self.cy) / self.fy,
                        np.ones(uv.shape[:-1])], axis=-1)
        ray /= np.linalg.norm(ray, axis=-1, keepdims=True)
        return ray @ self.R_camera_from_view.T

    def pixel_bearings(self, dtype=np.float32) -> np.ndarray:
        """(height, width, 3) unit bearings of every pixel centre, panorama camera frame."""
        u = np.arange(self.width, dtype=np.float64) + 0.5
        v = np.arange(self.height, dtype=np.float64) + 0.5
        uu, vv = np.meshgrid(u, v)
        return self.bearings(np.stack([uu, vv], axis=-1)).astype(dtype)

    def project(self, bearings) -> tuple[np.ndarray, np.ndarray]:
        """View pixel coordinates (..., 2) of panorama-frame bearings (..., 3), and whether each is in front."""
        d = np.asanyarray(bearings, dtype=np.float64) @ self.R_camera_from_view
        z = d[..., 2]
        front = z > 1e-12
        zs = np.where(front, z, np.nan)
        uv = np.stack([self.fx * d[..., 0] / zs + self.cx, self.fy * d[..., 1] / zs + self.cy], axis=-1)
        return uv, front

    def to_pano(self, points_uv, pano_width: int, pano_height: int) -> np.ndarray:
        """Exact equirectangular (u, v) (n, 2) of view pixel coordinates (n, 2)."""
        return bearing_to_equirect(self.bearings(points_uv), pano_width, pano_height)

    def from_pano(self, pano_uv, pano_width: int, pano_height: int) -> tuple[np.ndarray, np.ndarray]:
        """View pixel coordinates of equirectangular (u, v), and a mask of those in front of the camera."""
        return self.project(equirect_to_bearing(pano_uv, pano_width, pano_height))

    def box_to_pano(self, box, pano_width: int, pano_height: int, samples: int = 16) -> np.ndarray:
        """The equirectangular box ``(u1, v1, u2, v2)`` that holds a view box ``(x1, y1, x2, y2)``.

        The box's outline is mapped exactly, point by point (straight view edges become curves
        on the sphere). ``u1`` lies in ``[0, pano_width)``; ``u2`` may exceed ``pano_width``
        when the box crosses the seam (take it modulo the width). A box that holds the zenith
        or nadir spans every azimuth: ``u1 = 0, u2 = pano_width``.
        """
        x1, y1, x2, y2 = (float(c) for c in box)
        t = np.linspace(0.0, 1.0, max(2, int(samples)))
        xs, ys = x1 + (x2 - x1) * t, y1 + (y2 - y1) * t
        outline = np.concatenate([
            np.stack([xs, np.full_like(xs, y1)], 1), np.stack([np.full_like(ys, x2), ys], 1),
            np.stack([xs[::-1], np.full_like(xs, y2)], 1), np.stack([np.full_like(ys, x1), ys[::-1]], 1)])
        pano = self.to_pano(outline, pano_width, pano_height)
        centre = self.to_pano(np.array([[(x1 + x2) / 2, (y1 + y2) / 2]]), pano_width, pano_height)[0]
        # unwrap azimuths relative to the box centre, so a box across the seam stays contiguous
        du = (pano[:, 0] - centre[0] + pano_width / 2) % pano_width - pano_width / 2
        u1, u2 = centre[0] + du.min(), centre[0] + du.max()
        v1, v2 = pano[:, 1].min(), pano[:, 1].max()
        poles, front = self.project(np.array([[0.0, 0.0, 1.0], [0.0, 0.0, -1.0]]))
        inside = front & (poles[:, 0] >= x1) & (poles[:, 0] <= x2) & (poles[:, 1] >= y1) & (poles[:, 1] <= y2)
        if inside[0]:
            v1, u1, u2 = 0.0, 0.0, float(pano_width)
        if inside[1]:
            v2, u1, u2 = float(pano_height), 0.0, float(pano_width)
        shift = math.floor(u1 / pano_width) * pano_width
        return np.array([u1 - shift, v1, u2 - shift, v2])


def cube_face_camera(name: str, size: int) -> PerspectiveCamera:
    """The 90-degree perspective camera of one cube face (see ``CUBE_FACES``)."""
    if name not in CUBE_FACES:
        raise ValueError(f"no cube face {name!r}; faces are {', '.join(CUBE_FACES)}")
    yaw, pitch = CUBE_FACES[name]
    return PerspectiveCamera.from_fov(size, size, 90.0, yaw, pitch)


# --- resampling -------------------------------------------------------------------------------

@functools.lru_cache(maxsize=32)
def _remap_maps(camera: PerspectiveCamera, pano_width: int, pano_height: int):
    """Fixed-point cv2 maps from view pixels to panorama pixels (cached: views repeat)."""
    import cv2

    uv = bearing_to_equirect(camera.pixel_bearings(np.float64), pano_width, pano_height)
    # cv2 puts pixel centres on integers; keep rows inside the image, let columns wrap
    map_x = (uv[..., 0] - 0.5).astype(np.float32)
    map_y = np.clip(uv[..., 1] - 0.5, 0.0, pano_height - 1.0).astype(np.float32)
    # fixed-point maps for fast bilinear sampling; float maps for nearest (fixed point floors)
    return cv2.convertMaps(map_x, map_y, cv2.CV_16SC2) + (map_x, map_y)


def _check_pano_array(image) -> np.ndarray:
    image = np.asanyarray(image)
    if image.ndim not in (2, 3) or image.shape[1] != 2 * image.shape[0]:
        raise ValueError(f"an equirectangular image must be (h, 2h[, c]), got shape {image.shape}")
    return image


def render_view(image, camera: PerspectiveCamera, *, nearest: bool = False) -> np.ndarray:
    """Resample an equirectangular image (h, 2h[, c]) into ``camera``'s view (bilinear by default)."""
    import cv2

    image = _check_pano_array(image)
    m1, m2, map_x, map_y = _remap_maps(camera, image.shape[1], image.shape[0])
    if nearest:
        return cv2.remap(image, map_x, map_y, cv2.INTER_NEAREST, borderMode=cv2.BORDER_WRAP)
    return cv2.remap(image, m1, m2, cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)


def perspective_view(image, yaw_deg: float, pitch_deg: float, fov_deg: float, width: int, height: int,
                     *, roll_deg: float = 0.0) -> np.ndarray:
    """A perspective crop (height, width[, c]) of an equirectangular image, looking at yaw/pitch.

    >>> view = perspective_view(pano, yaw_deg=30, pitch_deg=-10, fov_deg=90, width=800, height=600)  # doctest: +SKIP
    """
    return render_view(image, PerspectiveCamera.from_fov(width, height, fov_deg, yaw_deg, pitch_deg, roll_deg))


def cube_faces(image, size: int) -> dict[str, np.ndarray]:
    """The six 90-degree cube faces (size, size[, c]) of an equirectangular image, by name."""
    import cv2

    size = int(size)
    if size < 1:
        raise ValueError(f"size must be positive, got {size}")
    image = _check_pano_array(image)
    h, w = image.shape[:2]
    out = {}
    for name in CUBE_FACES:
        camera = cube_face_camera(name, size)
        if name in ("right", "back", "left") and w % 4 == 0:
            # a side face is the front face turned by a multiple of 90 degrees: the same map,
            # shifted by a whole number of columns (exact), so only three maps are ever computed
            _, _, map_x, map_y = _remap_maps(cube_face_camera("front", size), w, h)
            shift = np.float32(-camera.yaw_deg / 360.0 * w)
            m1, m2 = _shifted_maps(size, w, h, float(shift))
            out[name] = cv2.remap(image, m1, m2, cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)
        else:
            out[name] = render_view(image, camera)
    return out


@functools.lru_cache(maxsize=16)
def _shifted_maps(size: int, width: int, height: int, shift: float):
    import cv2

    _, _, map_x, map_y = _remap_maps(cube_face_camera("front", size), width, height)
    return cv2.convertMaps(np.mod(map_x + np.float32(shift) + 0.5, width) - np.float32(0.5), map_y, cv2.CV_16SC2)
