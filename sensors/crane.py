"""Tower cranes and construction hoists: geometry, hook position and danger zones, in the site's local frame.

Conventions (metres, the local frame ``bim.load_mesh`` uses; z up):

- A crane's device position is the foot of its mast (``base_m``). The jib turns about the
  mast axis at ``jib_height_m`` above the base. ``slew_deg`` is the monitor's slewing angle;
  at 0 the jib points along ``slew_zero_deg`` (anticlockwise from local +x, seen from
  above), and a positive slew turns it anticlockwise unless ``slew_ccw`` is false.
- ``trolley_m`` is the trolley's radius from the mast axis along the jib; ``hook_height_m``
  the hook's height above the base (absent: the hook is taken at jib height).
- ``tilt_deg`` leans the whole crane rigidly about its foot, towards ``tilt_dir_deg``
  (anticlockwise from +x): a mast 45 m tall leaning 0.5 deg moves its jib 0.39 m.
- Zones are vertical cylinders: the swing zone (jib radius plus a margin, from the ground
  to above the jib), the fall zone under the hook, and the area round a hoist.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, overload

import numpy as np

from sitetwin.data.i18n import N_
from sitetwin.sensors.errors import ConfigError


class GeometryError(ConfigError, ValueError):
    """A crane's or hoist's geometry setting (``config.geometry``) is missing or out of range."""


@dataclass(frozen=True)
class CraneGeometry:
    """A tower crane. base_m : (3,) float, mast foot, local frame."""

    base_m: tuple[float, float, float]
    jib_height_m: float
    jib_length_m: float
    counter_jib_m: float = 0.0
    slew_zero_deg: float = 0.0
    slew_ccw: bool = True
    zone_margin_m: float = 2.0
    hook_zone_radius_m: float = 3.0


@dataclass(frozen=True)
class HoistGeometry:
    """A construction hoist (rack-and-pinion lift) on a mast. base_m : (3,) float, mast foot."""

    base_m: tuple[float, float, float]
    mast_height_m: float
    zone_radius_m: float = 3.0


@dataclass(frozen=True)
class Zone:
    """A vertical cylinder in the site's local frame, metres.

    center_m : (3,) float, on the axis at mid-height; the cylinder holds the points within
    ``radius_m`` of the axis with ``z_min_m <= z <= z_max_m``.
    """

    device_id: str
    kind: str                 # swing | hook | hoist
    center_m: np.ndarray
    radius_m: float
    z_min_m: float
    z_max_m: float
    label: str = ""

    def contains(self, points_m: np.ndarray) -> np.ndarray:
        """(n,) bool: which of the (n, 3) points lie inside the zone."""
        points = np.asanyarray(points_m, dtype=np.float64)
        if points.ndim != 2 or points.shape[1] != 3:
            raise ValueError(f"points must be (n, 3), got {points.shape}")
        dxy = np.hypot(points[:, 0] - self.center_m[0], points[:, 1] - self.center_m[1])
        return (dxy <= self.radius_m) & (points[:, 2] >= self.z_min_m) & (points[:, 2] <= self.z_max_m)


_CRANE_KEYS = {"jib_height_m": (1.0, 400.0), "jib_length_m": (1.0, 150.0), "counter_jib_m": (0.0, 100.0),
               "slew_zero_deg": (-360.0, 360.0), "zone_margin_m": (0.0, 50.0), "hook_zone_radius_m": (0.0, 50.0)}
_HOIST_KEYS = {"mast_height_m": (1.0, 600.0), "zone_radius_m": (0.0, 50.0)}


@overload
def geometry_from_config(device_type: Literal["crane"], config: dict, base_m) -> CraneGeometry: ...
@overload
def geometry_from_config(device_type: Literal["hoist"], config: dict, base_m) -> HoistGeometry: ...
@overload
def geometry_from_config(device_type: str, config: dict, base_m) -> CraneGeometry | HoistGeometry: ...
def geometry_from_config(device_type: str, config: dict, base_m) -> CraneGeometry | HoistGeometry:
    """Read ``config["geometry"]`` of a crane or hoist device; ValueError names the bad key and its range."""
    geometry = dict((config or {}).get("geometry") or {})
    base = tuple(float(v) for v in base_m)
    required: tuple[str, ...]
    if device_type == "crane":
        keys, required = _CRANE_KEYS, ("jib_height_m", "jib_length_m")
        extra_ok = {"slew_ccw"}
    elif device_type == "hoist":
        keys, required = _HOIST_KEYS, ("mast_height_m",)
        extra_ok = set()
    else:
        raise ValueError(f"device type {device_type!r} has no crane/hoist geometry")
    unknown = sorted(set(geometry) - set(keys) - extra_ok)
    if unknown:
        raise GeometryError(N_("config geometry: unknown key {keys} (keys: {known})"), keys=", ".join(unknown),
                            known=", ".join(sorted(keys)))
    missing = [k for k in required if k not in geometry]
    if missing:
        example = ", ".join(f'"{k}": 40' for k in required)
        raise GeometryError(N_('config geometry needs {missing} (e.g. {{"geometry": {{{example}}}}})'),
                            missing=", ".join(missing), example=example)
    values = {}
    for key, (lo, hi) in keys.items():
        if key not in geometry:
            continue
        v = geometry[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= float(v) <= hi:
            raise GeometryError(N_("config geometry.{key}: {value!r} must be a number in {lo:g}..{hi:g}"), key=key,
                                value=v, lo=lo, hi=hi)
        values[key] = float(v)
    if device_type == "crane":
        if "slew_ccw" in geometry:
            if not isinstance(geometry["slew_ccw"], bool):
                raise GeometryError(N_("config geometry.slew_ccw: {value!r} must be true or false"),
                                    value=geometry["slew_ccw"])
            values["slew_ccw"] = geometry["slew_ccw"]
        return CraneGeometry(base_m=base, **values)  # type: ignore[arg-type]
    return HoistGeometry(base_m=base, **values)  # type: ignore[arg-type]


def jib_direction_deg(geometry: CraneGeometry, slew_deg) -> np.ndarray:
    """Direction of the jib, anticlockwise from local +x, in degrees [0, 360)."""
    slew = np.asanyarray(slew_deg, dtype=np.float64)
    return np.mod(geometry.slew_zero_deg + (slew if geometry.slew_ccw else -slew), 360.0)


def hook_position(geometry: CraneGeometry, slew_deg, trolley_m, hook_height_m=None, tilt_deg=None,
                  tilt_dir_deg=None) -> np.ndarray:
    """(n, 3) float64 hook positions in the local frame from (n,) monitor channels.

    ``hook_height_m`` None (or NaN entries) puts the hook at jib height; ``tilt_deg`` None
    (or NaN) means a plumb mast.
    """
    slew = np.atleast_1d(np.asanyarray(slew_deg, dtype=np.float64))
    radius = np.broadcast_to(np.asanyarray(trolley_m, dtype=np.float64), slew.shape)
    height = np.full(slew.shape, geometry.jib_height_m)
    if hook_height_m is not None:
        given = np.broadcast_to(np.asanyarray(hook_height_m, dtype=np.float64), slew.shape)
        height = np.where(np.isfinite(given), given, height)
    phi = np.radians(jib_direction_deg(geometry, slew))
    local = np.stack([radius * np.cos(phi), radius * np.sin(phi), height], axis=1)
    if tilt_deg is not None:
        tilt = np.broadcast_to(np.asanyarray(tilt_deg, dtype=np.float64), slew.shape)
        direction = np.broadcast_to(np.asanyarray(0.0 if tilt_dir_deg is None else tilt_dir_deg, dtype=np.float64),
                                    slew.shape)
        local = lean(local, np.where(np.isfinite(tilt), tilt, 0.0), np.where(np.isfinite(direction), direction, 0.0))
    return local + np.asarray(geometry.base_m, dtype=np.float64)


def lean(points: np.ndarray, tilt_deg: np.ndarray, tilt_dir_deg: np.ndarray) -> np.ndarray:
    """Rotate (n, 3) points about the origin so that +z leans ``tilt_deg`` towards ``tilt_dir_deg``.

    The axis is horizontal and perpendicular to the lean direction (Rodrigues' formula).
    """
    t = np.radians(tilt_deg)
    d = np.radians(tilt_dir_deg)
    axis = np.stack([-np.sin(d), np.cos(d), np.zeros_like(d)], axis=1)
    cos_t, sin_t = np.cos(t)[:, None], np.sin(t)[:, None]
    cross = np.cross(axis, points)
    dot = np.sum(axis * points, axis=1, keepdims=True)
    return points * cos_t + cross * sin_t + axis * dot * (1.0 - cos_t)


def cage_position(geometry: HoistGeometry, cage_height_m) -> np.ndarray:
    """(n, 3) position of a hoist's cage floor from its height above the base."""
    h = np.atleast_1d(np.asanyarray(cage_height_m, dtype=np.float64))
    base = np.asarray(geometry.base_m, dtype=np.float64)
    return np.stack([np.full(h.shape, base[0]), np.full(h.shape, base[1]), base[2] + h], axis=1)


def swing_zone(device_id: str, geometry: CraneGeometry) -> Zone:
    """Everything the jib (plus a margin) can pass over, from the ground to above the jib."""
    radius = max(geometry.jib_length_m, geometry.counter_jib_m) + geometry.zone_margin_m
    z_min = geometry.base_m[2]
    z_max = geometry.base_m[2] + geometry.jib_height_m + geometry.zone_margin_m
    center = np.array([geometry.base_m[0], geometry.base_m[1], (z_min + z_max) / 2.0])
    return Zone(device_id, "swing", center, radius, z_min, z_max, f"{device_id} swing zone r={radius:.1f} m")


def hook_zone(device_id: str, geometry: CraneGeometry, hook_m) -> Zone:
    """The fall zone under a hook at ``hook_m`` (3,): a cylinder from the ground to the hook."""
    hook = np.asarray(hook_m, dtype=np.float64)
    z_min = geometry.base_m[2]
    z_max = max(float(hook[2]), z_min)
    center = np.array([hook[0], hook[1], (z_min + z_max) / 2.0])
    return Zone(device_id, "hook", center, geometry.hook_zone_radius_m, z_min, z_max,
                f"{device_id} load fall zone r={geometry.hook_zone_radius_m:.1f} m")


def hoist_zone(device_id: str, geometry: HoistGeometry) -> Zone:
    """The area round a hoist's mast where the cage or falling objects can strike, ground to mast top."""
    z_min = geometry.base_m[2]
    z_max = geometry.base_m[2] + geometry.mast_height_m
    center = np.array([geometry.base_m[0], geometry.base_m[1], (z_min + z_max) / 2.0])
    return Zone(device_id, "hoist", center, geometry.zone_radius_m, z_min, z_max,
                f"{device_id} hoist zone r={geometry.zone_radius_m:.1f} m")


def jib_clearance_m(a: CraneGeometry, slew_a_deg, b: CraneGeometry, slew_b_deg) -> np.ndarray:
    """(n,) plan distance between the jib lines of two cranes (counter-jib to tip), for anti-collision.

    Only meaningful when their jibs can meet in height: the lower jib's height must be
    within the higher crane's hook range, which is every height below its jib.
    """
    slew_a = np.atleast_1d(np.asanyarray(slew_a_deg, dtype=np.float64))
    slew_b = np.broadcast_to(np.asanyarray(slew_b_deg, dtype=np.float64), slew_a.shape)
    pa0, pa1 = _jib_segment(a, slew_a)
    pb0, pb1 = _jib_segment(b, slew_b)
    return _segment_distance(pa0, pa1, pb0, pb1)


def _jib_segment(g: CraneGeometry, slew: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    phi = np.radians(jib_direction_deg(g, slew))
    u = np.stack([np.cos(phi), np.sin(phi)], axis=1)
    base = np.asarray(g.base_m[:2], dtype=np.float64)
    return base - u * g.counter_jib_m, base + u * g.jib_length_m


def _segment_distance(p0, p1, q0, q1) -> np.ndarray:
    """Distance between 2-D segments p0-p1 and q0-q1, row by row."""
    def point_seg(p, a, b):
        ab = b - a
        denom = np.maximum(np.sum(ab * ab, axis=1), 1e-12)
        t = np.clip(np.sum((p - a) * ab, axis=1) / denom, 0.0, 1.0)
        return np.hypot(*(p - (a + ab * t[:, None])).T)

    def cross(o, a, b):
        return (a[:, 0] - o[:, 0]) * (b[:, 1] - o[:, 1]) - (a[:, 1] - o[:, 1]) * (b[:, 0] - o[:, 0])

    d = np.minimum.reduce([point_seg(p0, q0, q1), point_seg(p1, q0, q1), point_seg(q0, p0, p1), point_seg(q1, p0, p1)])
    crosses = ((cross(p0, p1, q0) * cross(p0, p1, q1)) < 0) & ((cross(q0, q1, p0) * cross(q0, q1, p1)) < 0)
    return np.where(crosses, 0.0, d)


