"""Panoramic imaging measurement: 3D points behind pixels, distances, heights and clearances.

A pixel becomes a 3D point (site local frame, metres) in one of three ways:

- ``model``: the first model surface its ray hits (ray cast against the design model);
- ``scan``: the nearest surface of a registered survey's points within a narrow cone around
  its ray (what was really built, where the survey covers the view);
- ``floor``: the ray's intersection with the floor plane, known from the camera height
  alone, for panoramas without a model.

Distances between two such points, vertical heights (from a foot pixel on the floor and a
top pixel above it) and clearances (free vertical distance below or above a point) follow.
Each result carries an uncertainty from the pixel footprint at its range.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sitetwin.data.i18n import N_
from sitetwin.panorama.camera import PerspectiveCamera, check_transform, equirect_to_bearing
from sitetwin.panorama.errors import PanoramaError, cause


@dataclass(frozen=True)
class MeasureConfig:
    """Measurement settings."""

    scan_cone_deg: float = 0.25         # (deg) half-angle of the cone around a pixel's ray that scan points must lie in
    scan_min_points: int = 3            # (count) fewer points in the cone: the survey does not cover that pixel
    scan_surface_band_m: float = 0.05   # (m) points this far behind the nearest one still belong to its surface
    scan_plane_band_m: float = 0.25     # (m) depth band in which a plane is fitted to the front surface
    scan_plane_rms_m: float = 0.008     # (m) the plane fits when the points' RMS distance to it is below this
    clearance_offset_m: float = 0.002   # (m) start a clearance ray this far off the surface it starts on
    max_scan_points: int = 3_000_000    # (count) survey points read for scan depth (evenly thinned beyond)


DEFAULT_MEASURE_CONFIG = MeasureConfig()


@dataclass(frozen=True)
class PixelPoint:
    """The 3D point behind a pixel."""

    uv: tuple[float, float]
    point_m: tuple[float, float, float]
    range_m: float
    method: str                          # model | scan | floor
    footprint_m: float                   # size of one pixel at this range: the point's lateral uncertainty
    global_id: str | None = None
    model_id: str | None = None
    support: int | None = None           # scan points that gave the depth

    @property
    def xyz(self) -> np.ndarray:
        return np.asarray(self.point_m, dtype=np.float64)


@dataclass(frozen=True)
class Measurement:
    """A distance between two pixels' points, with its horizontal and vertical parts."""

    start: PixelPoint
    end: PixelPoint
    distance_m: float
    horizontal_m: float
    vertical_m: float                    # end z minus start z
    uncertainty_m: float                 # from the pixel footprints at both ends
    details: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        def end(p: PixelPoint) -> dict[str, Any]:
            return {"uv": list(p.uv), "point_m": [round(x, 4) for x in p.point_m], "range_m": round(p.range_m, 4),
                    "method": p.method, "global_id": p.global_id, "model_id": p.model_id, "support": p.support}
        return {"distance_m": round(self.distance_m, 4), "horizontal_m": round(self.horizontal_m, 4),
                "vertical_m": round(self.vertical_m, 4), "uncertainty_m": round(self.uncertainty_m, 4),
                "from": end(self.start), "to": end(self.end), **self.details}


def pixel_ray(T_model_from_camera, uv, width: int, height: int, camera: PerspectiveCamera | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
    """Camera centre (3,) and unit direction (3,) in the model frame of pixel coordinates ``uv``."""
    T = np.asarray(T_model_from_camera, dtype=np.float64)
    uv = np.asarray(uv, dtype=np.float64)
    b = equirect_to_bearing(uv, width, height) if camera is None else camera.bearings(uv)
    return T[:3, 3].copy(), T[:3, :3] @ b


def pixel_angle_rad(width: int, camera: PerspectiveCamera | None = None) -> float:
    """Angular size of one pixel (at the image centre for a perspective camera)."""
    return 2 * math.pi / width if camera is None else 1.0 / camera.fx


def _check_uv(uv, width: int, height: int) -> tuple[float, float]:
    u, v = (float(x) for x in uv)
    if not (math.isfinite(u) and math.isfinite(v)) or not (0 <= u < width and 0 <= v < height):
        raise PanoramaError(N_("pixel ({u:g}, {v:g}) lies outside the {width}x{height} image"), u=u, v=v, width=width,
                            height=height)
    return u, v


def model_point(scene, T_model_from_camera, uv, width: int, height: int, *,
                camera: PerspectiveCamera | None = None, snap_px: float = 0.0) -> PixelPoint | None:
    """The first model surface behind a pixel (``scene``: a ``panorama.render.RayScene``), or None.

    With ``snap_px > 0`` the point snaps to the nearest visible corner (mesh vertex) of the
    element hit that projects within ``snap_px`` pixels of the click, as CAD tools snap.
    """
    u, v = _check_uv(uv, width, height)
    origin, d = pixel_ray(T_model_from_camera, (u, v), width, height, camera)
    hits = scene.cast(origin, d[None].astype(np.float32), normals=False)
    rng = float(hits.range_m[0])
    if not math.isfinite(rng) or hits.element[0] < 0:
        return None
    e = int(hits.element[0])
    point = origin + d * rng
    method = "model"
    if snap_px > 0:
        corner = _snap(scene, e, T_model_from_camera, (u, v), width, height, camera, snap_px)
        if corner is not None:
            point, rng, method = corner, float(np.linalg.norm(corner - origin)), "model_corner"
    return PixelPoint((u, v), tuple(point.tolist()), rng, method, rng * pixel_angle_rad(width, camera),
                      str(scene.mesh.global_ids[e]), str(scene.mesh.model_ids[e]))


def _snap(scene, element: int, T, uv, width, height, camera, snap_px) -> np.ndarray | None:
    from sitetwin.panorama.camera import bearing_to_equirect, equirect_pixel_distance

    mesh = scene.mesh
    faces = np.asarray(mesh.faces)[np.asarray(mesh.face_element) == element]
    corners = np.unique(np.asarray(mesh.vertices, dtype=np.float64)[np.unique(faces)], axis=0)
    T = np.asarray(T, dtype=np.float64)
    local = (corners - T[:3, 3]) @ T[:3, :3]
    if camera is None:
        pix = bearing_to_equirect(local, width, height)
        gap = equirect_pixel_distance(pix, np.asarray(uv), width)
    else:
        pix, front = camera.project(local)
        gap = np.where(front, np.hypot(pix[:, 0] - uv[0], pix[:, 1] - uv[1]), np.inf)
    order = np.argsort(gap)
    for i in order[:8]:
        if gap[i] > snap_px:
            break
        rng = float(np.linalg.norm(local[i]))
        hit = scene.cast(T[:3, 3], ((corners[i] - T[:3, 3]) / rng)[None].astype(np.float32), normals=False)
        if abs(float(hit.range_m[0]) - rng) < max(0.01, 0.002 * rng):   # the corner itself is in view
            return corners[i]
    return None


class ScanDepth:
    """Scan points seen from one camera, ready for per-pixel depth queries.

    points_m : (n, 3) survey points in the site's local frame
    """

    def __init__(self, points_m, T_model_from_camera, config: MeasureConfig = DEFAULT_MEASURE_CONFIG):
        from scipy.spatial import cKDTree

        T = check_transform(T_model_from_camera)
        rel = np.asarray(points_m, dtype=np.float64) - T[:3, 3]
        rng = np.linalg.norm(rel, axis=1)
        keep = rng > 1e-6
        self.range = rng[keep]
        self.dirs = rel[keep] / self.range[:, None]
        self.origin = T[:3, 3]
        self.config = config
        self.tree = cKDTree(self.dirs)   # unit vectors: chord distance ~ angle for small angles

    def point(self, uv, T_model_from_camera, width: int, height: int, *,
              camera: PerspectiveCamera | None = None) -> PixelPoint | None:
        """The nearest scanned surface along a pixel's ray, or None where the survey does not cover it."""
        u, v = _check_uv(uv, width, height)
        origin, d = pixel_ray(T_model_from_camera, (u, v), width, height, camera)
        cone = 2 * math.sin(math.radians(self.config.scan_cone_deg) / 2)
        found = self.tree.query_ball_point(d, cone)
        if len(found) < self.config.scan_min_points:
            return None
        idx = np.asarray(found)
        pts = self.dirs[idx] * self.range[idx, None]          # relative to the camera
        along = pts @ d                                        # distance along the ray of each point
        front = np.percentile(along, 5)                        # the nearest surface, robustly
        cfg = self.config
        # a surface seen at a grazing angle spans more depth inside the cone than a facing one:
        # fit a plane to the front points and intersect the ray with it, when one plane fits
        near = along <= front + cfg.scan_plane_band_m
        rng = None
        support = int(near.sum())
        if support >= max(cfg.scan_min_points, 4):
            p = pts[near]
            c = p.mean(0)
            _, sv, vt = np.linalg.svd(p - c, full_matrices=False)
            normal = vt[2]
            flat = sv[2] / math.sqrt(len(p)) < cfg.scan_plane_rms_m
            facing = abs(float(normal @ d))
            if flat and facing > 0.05:
                rng = float(normal @ c / (normal @ d))
                if not (along[near].min() - 0.01 <= rng <= along[near].max() + 0.01):
                    rng = None
        if rng is None:
            surface = along <= front + cfg.scan_surface_band_m
            support = int(surface.sum())
            if support < cfg.scan_min_points:
                return None
            # of the front surface, the points closest to the ray's axis say most about its depth
            lateral = np.linalg.norm(pts[surface] - np.outer(along[surface], d), axis=1)
            closest = np.argsort(lateral)[: max(cfg.scan_min_points, 5)]
            rng = float(np.median(along[surface][closest]))
        point = origin + d * rng
        return PixelPoint((u, v), tuple(point.tolist()), rng, "scan", rng * pixel_angle_rad(width, camera),
                          support=support)


def floor_point(T_model_from_camera, uv, width: int, height: int, floor_z_m: float, *,
                camera: PerspectiveCamera | None = None) -> PixelPoint | None:
    """Where a pixel's ray meets the horizontal floor plane ``z = floor_z_m``; None at or above the horizon."""
    u, v = _check_uv(uv, width, height)
    origin, d = pixel_ray(T_model_from_camera, (u, v), width, height, camera)
    drop = origin[2] - floor_z_m
    if drop <= 0:
        raise PanoramaError(N_("the camera (z = {camera_z:.3f} m) is not above the floor (z = {floor_z:.3f} m)"),
                            camera_z=float(origin[2]), floor_z=floor_z_m)
    if d[2] >= -1e-9:
        return None
    rng = drop / -d[2]
    point = origin + d * rng
    # a pixel's angular error moves a floor point by range / sin(depression): grazing rays are poor
    footprint = rng * pixel_angle_rad(width, camera) / max(1e-6, -d[2])
    return PixelPoint((u, v), tuple(point.tolist()), float(rng), "floor", float(footprint))


def level_pose(camera_height_m: float, floor_z_m: float = 0.0) -> np.ndarray:
    """The pose of a level camera standing ``camera_height_m`` above a floor, for floor-plane measuring."""
    if not camera_height_m > 0:
        raise PanoramaError(N_("camera height must be positive (metres above the floor), got {height!r}"),
                            height=camera_height_m)
    T = np.eye(4)
    T[2, 3] = floor_z_m + camera_height_m
    return T


def distance(start: PixelPoint, end: PixelPoint, **details) -> Measurement:
    """The measurement between two pixel points."""
    a, b = start.xyz, end.xyz
    delta = b - a
    unc = 0.5 * math.hypot(start.footprint_m, end.footprint_m)
    return Measurement(start, end, float(np.linalg.norm(delta)), float(np.hypot(delta[0], delta[1])),
                       float(delta[2]), float(unc), dict(details))


def height_above_floor(T_model_from_camera, foot_uv, top_uv, width: int, height: int, floor_z_m: float, *,
                       camera: PerspectiveCamera | None = None) -> dict[str, float]:
    """Height of a vertical object from its foot pixel (on the floor) and a top pixel above it.

    The foot is placed on the floor plane; the top is the point of the top pixel's ray closest
    to the vertical line through the foot. Needs only the camera's height and orientation.
    """
    foot = floor_point(T_model_from_camera, foot_uv, width, height, floor_z_m, camera=camera)
    if foot is None:
        raise PanoramaError(N_("foot pixel {uv} lies at or above the horizon: it cannot be on the floor"),
                            uv=tuple(foot_uv))
    origin, d = pixel_ray(T_model_from_camera, _check_uv(top_uv, width, height), width, height, camera)
    f = foot.xyz
    horizontal = np.array([d[0], d[1]])
    if np.linalg.norm(horizontal) < 1e-9:
        raise PanoramaError(N_("the top pixel looks straight up or down; pick a pixel on the object"))
    # ray parameter t whose horizontal position is closest to the foot's
    t = float(np.dot(f[:2] - origin[:2], horizontal) / np.dot(horizontal, horizontal))
    if t <= 0:
        raise PanoramaError(N_("the top pixel looks away from the foot point"))
    top_z = origin[2] + t * d[2]
    return {"height_m": float(top_z - floor_z_m), "distance_m": float(np.linalg.norm(f[:2] - origin[:2])),
            "foot_m": f.tolist(), "top_z_m": float(top_z),
            "uncertainty_m": float(foot.footprint_m * abs(top_z - floor_z_m) / max(1e-6, origin[2] - floor_z_m))}


def clearance(scene, point_m, *, direction: str = "down", config: MeasureConfig = DEFAULT_MEASURE_CONFIG
              ) -> dict[str, Any] | None:
    """Free vertical distance from a point to the next model surface below (or above); None if open.

    Start on a soffit or beam underside and look ``down`` for the headroom under it; start on a
    floor and look ``up`` for the height to the ceiling.
    """
    if direction not in ("down", "up"):
        raise ValueError("direction must be 'down' or 'up'")
    sign = -1.0 if direction == "down" else 1.0
    p = np.asarray(point_m, dtype=np.float64)
    start = p + np.array([0.0, 0.0, sign * config.clearance_offset_m])
    hits = scene.cast(start, np.array([[0.0, 0.0, sign]], dtype=np.float32), normals=False)
    rng = float(hits.range_m[0])
    if not math.isfinite(rng):
        return None
    e = int(hits.element[0])
    return {"clearance_m": rng + config.clearance_offset_m, "direction": direction,
            "to_global_id": str(scene.mesh.global_ids[e]) if e >= 0 else None,
            "to_point_m": (start + np.array([0.0, 0.0, sign * rng])).tolist()}


# --- against the store -----------------------------------------------------------------------

def parse_uv(text: str) -> tuple[float, float]:
    """``"U,V"`` -> (u, v) pixels."""
    try:
        u, v = (float(x) for x in str(text).split(","))
    except ValueError:
        raise PanoramaError(N_("pixel {text!r}: expected U,V (two numbers, pixels from the top-left)"),
                            text=text) from None
    return u, v


def measure(store, pano_id: str, from_uv, to_uv, *, depth: str = "auto", survey_id: str | None = None,
            camera_height_m: float | None = None, clearance_below: bool = False, snap_px: float = 0.0,
            config: MeasureConfig = DEFAULT_MEASURE_CONFIG) -> Measurement:
    """Measure between two pixels of a stored panorama.

    depth : ``auto`` (scan where a survey covers the pixel, else model, else floor),
            ``model``, ``scan`` or ``floor``
    survey_id : the survey whose points give scan depth (default: the one the panorama was
                posed from, if any)
    camera_height_m : metres above the floor, for floor measuring (unposed panoramas are taken
                      as level)
    snap_px : snap model points to the hit element's nearest visible corner within this many pixels
    """
    from sitetwin.panorama.pano_store import _models_for, get_panorama

    if depth not in ("auto", "model", "scan", "floor"):
        raise PanoramaError(N_("depth must be auto, model, scan or floor, got {depth!r}"), depth=depth)
    pano = get_panorama(store, pano_id)
    W, H = pano.width, pano.height
    ends = [_check_uv(from_uv, W, H), _check_uv(to_uv, W, H)]
    details: dict[str, Any] = {"pano_id": pano_id}

    if depth == "floor" or (not pano.posed and depth == "auto"):
        if camera_height_m is None:
            if pano.posed:
                raise PanoramaError(N_("panorama {pano_id}: floor measuring needs --camera-height "
                                       "(metres above the floor)"), pano_id=pano_id)
            raise PanoramaError(N_("panorama {pano_id}: floor measuring needs --camera-height "
                                   "(metres above the floor); it has no pose for model or scan depth"),
                                pano_id=pano_id)
        T = pano.T_model_from_camera
        if T is not None:
            floor_z = float(T[2, 3] - camera_height_m)
        else:
            T, floor_z = level_pose(camera_height_m), 0.0
            details["assumed"] = "level camera (no pose)"
        points: list[PixelPoint] = []
        for uv in ends:
            p = floor_point(T, uv, W, H, floor_z)
            if p is None:
                raise PanoramaError(N_("pixel {uv} lies at or above the horizon: it is not on the floor"), uv=uv)
            points.append(p)
        details["floor_z_m"] = floor_z
        return distance(points[0], points[1], **details)

    T = pano.T_model_from_camera
    if T is None:
        raise PanoramaError(N_("panorama {pano_id} has no pose; add it with --pose or --control-points, "
                               "or measure on the floor with --depth floor --camera-height"), pano_id=pano_id)
    scan = None
    sid = survey_id or pano.survey_id
    if depth in ("auto", "scan") and sid:
        scan = _scan_depth(store, sid, T, config)
        details["survey_id"] = sid
    elif depth == "scan":
        raise PanoramaError(N_("panorama {pano_id}: scan depth needs a survey (--survey ID)"), pano_id=pano_id)
    scene = None
    points = []
    for uv in ends:
        p = scan.point(uv, T, W, H) if scan is not None else None
        if p is None and depth == "scan":
            raise PanoramaError(N_("pixel {uv}: survey {survey_id} has no points along this ray "
                                   "(it does not cover it)"), uv=uv, survey_id=sid)
        if p is None:
            if scene is None:
                scene = _scene(store, pano, _models_for(store, pano))
            p = model_point(scene, T, uv, W, H, snap_px=snap_px)
            if p is None and camera_height_m is not None:
                p = floor_point(T, uv, W, H, float(T[2, 3] - camera_height_m))
            if p is None:
                raise PanoramaError(N_("pixel {uv} sees no model surface (sky or beyond the model); "
                                       "pick a pixel on the building"), uv=uv)
        points.append(p)
    result = distance(points[0], points[1], **details)
    if clearance_below:
        if scene is None:
            scene = _scene(store, pano, _models_for(store, pano))
        result.details["clearance_below_from"] = clearance(scene, points[0].point_m, direction="down", config=config)
    return result


def _scene(store, pano, model_ids):
    from sitetwin.bim.mesh import load_mesh
    from sitetwin.data.errors import SitetwinError
    from sitetwin.panorama.render import RayScene

    if not model_ids:
        raise PanoramaError(N_("site {site_code} has no model; use --depth floor with --camera-height"),
                            site_code=pano.site_code)
    try:
        return RayScene(load_mesh(store, model_ids=model_ids))
    except SitetwinError as exc:
        raise PanoramaError(N_("panorama {pano_id}: {reason}"), pano_id=pano.pano_id, reason=cause(exc)) from None


def _scan_depth(store, survey_id: str, T, config: MeasureConfig) -> ScanDepth:
    from sitetwin.data.errors import SitetwinError
    from sitetwin.twin.survey_store import survey_points

    try:
        table = survey_points(store, survey_id, columns=["x_m", "y_m", "z_m"], max_points=config.max_scan_points)
    except SitetwinError as exc:
        raise PanoramaError(N_("survey {survey_id}: {reason}"), survey_id=survey_id, reason=cause(exc)) from None
    xyz = np.column_stack([np.asarray(table[c], dtype=np.float64) for c in ("x_m", "y_m", "z_m")])
    return ScanDepth(xyz, T, config)
