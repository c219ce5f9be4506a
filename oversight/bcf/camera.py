"""Viewpoint cameras: from a panorama pose, or looking at an element, and between frames.

Cameras are stored in the site's local frame (metres, world = local + origin) as a dict::

    {"kind": "perspective", "position_m": [x, y, z], "direction": [dx, dy, dz], "up": [ux, uy, uz],
     "fov_deg": 60.0, "aspect_ratio": 1.333}                      # vertical field of view
    {"kind": "orthogonal", ..., "view_to_world_scale": 12.0}       # visible height, metres

BCF files carry the same camera in the IFC world frame; :func:`to_bcf` and
:func:`from_bcf` convert by adding or subtracting the site's origin (directions are not
shifted). The panorama pose follows ``panorama.camera``'s convention: camera frame
``x`` forward, ``y`` left, ``z`` up; ``T_model_from_camera``'s rotation columns are those
axes in the local frame; yaw is anticlockwise about ``z`` from ``x``, pitch positive up.
"""

from __future__ import annotations

import math

import numpy as np

from sitetwin.data.i18n import N_
from sitetwin.oversight.bcf.model import Camera
from sitetwin.oversight.errors import BcfError

DEFAULT_FOV_DEG = 60.0
DEFAULT_ASPECT = 4.0 / 3.0
# A 3D view of an element looks from this direction (south-west, above), normalised below.
VIEW_FROM = np.array([-1.0, -1.3, 0.9])


def camera_from_panorama(T_model_from_camera, yaw_deg: float = 0.0, pitch_deg: float = 0.0,
                         fov_deg: float = DEFAULT_FOV_DEG, aspect_ratio: float = DEFAULT_ASPECT) -> dict:
    """The perspective view a regulator looked through in a panorama, as a camera in the local frame.

    ``fov_deg`` is the horizontal field of view of that view (as panorama's
    ``perspective_view`` takes it); the camera records the vertical one, as BCF does.
    """
    T = np.asarray(T_model_from_camera, dtype=np.float64)
    if T.shape != (4, 4) or not np.all(np.isfinite(T)):
        raise BcfError(N_("T_model_from_camera must be a finite 4x4 matrix, got shape {shape}"), shape=T.shape)
    R = T[:3, :3]
    y, p = math.radians(yaw_deg), math.radians(pitch_deg)
    forward_cam = np.array([math.cos(p) * math.cos(y), math.cos(p) * math.sin(y), math.sin(p)])
    up_cam = np.array([-math.sin(p) * math.cos(y), -math.sin(p) * math.sin(y), math.cos(p)])
    vfov = math.degrees(2 * math.atan(math.tan(math.radians(fov_deg) / 2) / aspect_ratio))
    return {"kind": "perspective", "position_m": T[:3, 3].tolist(), "direction": _unit(R @ forward_cam).tolist(),
            "up": _unit(R @ up_cam).tolist(), "fov_deg": vfov, "aspect_ratio": aspect_ratio}


def camera_looking_at(target_m, size_m: float = 3.0, *, fov_deg: float = DEFAULT_FOV_DEG,
                      aspect_ratio: float = DEFAULT_ASPECT) -> dict:
    """A 3D view onto ``target_m`` (local frame) that frames an object about ``size_m`` across."""
    target = np.asarray(target_m, dtype=np.float64)
    if target.shape != (3,) or not np.all(np.isfinite(target)):
        raise BcfError(N_("target must be a point (x, y, z), got {value!r}"), value=target_m)
    size = max(float(size_m), 1.0)
    distance = 0.5 * size / math.tan(math.radians(fov_deg) / 2) * 1.6 + 1.0
    offset = _unit(VIEW_FROM)
    direction = -offset
    right = _unit(np.cross(direction, [0.0, 0.0, 1.0]))
    up = _unit(np.cross(right, direction))
    return {"kind": "perspective", "position_m": (target + offset * distance).tolist(),
            "direction": direction.tolist(), "up": up.tolist(), "fov_deg": fov_deg, "aspect_ratio": aspect_ratio}


def to_bcf(camera: dict, origin_m) -> Camera:
    """A stored camera (local frame) as a BCF camera (IFC world frame)."""
    origin = np.asarray(origin_m, dtype=np.float64)
    pos = np.asarray(camera["position_m"], dtype=np.float64) + origin
    return Camera(kind=camera.get("kind", "perspective"), position=tuple(pos.tolist()),
                  direction=_xyz(camera["direction"]), up=_xyz(camera["up"]),
                  field_of_view_deg=camera.get("fov_deg"), view_to_world_scale=camera.get("view_to_world_scale"),
                  aspect_ratio=camera.get("aspect_ratio"))


def from_bcf(cam: Camera, origin_m) -> dict:
    """A BCF camera (IFC world frame) as a stored camera (local frame)."""
    origin = np.asarray(origin_m, dtype=np.float64)
    out = {"kind": cam.kind, "position_m": (np.asarray(cam.position) - origin).tolist(),
           "direction": list(cam.direction), "up": list(cam.up)}
    if cam.field_of_view_deg is not None:
        out["fov_deg"] = cam.field_of_view_deg
    if cam.view_to_world_scale is not None:
        out["view_to_world_scale"] = cam.view_to_world_scale
    if cam.aspect_ratio is not None:
        out["aspect_ratio"] = cam.aspect_ratio
    return out


def _xyz(v) -> tuple[float, float, float]:
    x, y, z = v
    return float(x), float(y), float(z)


def _unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    n = np.linalg.norm(v)
    if n == 0 or not np.isfinite(n):
        raise BcfError(N_("a camera direction has zero length"))
    return v / n
