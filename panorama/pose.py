"""Place a panorama in the model frame: a given pose, control points, or a registered survey's scan station.

Control points are pairs of an equirectangular pixel and a model point (site local frame,
metres). The solver is an absolute pose for a spherical (central, 360-degree) camera: every
triple of points gives up to four candidate poses through Grunert's P3P on bearing vectors;
RANSAC keeps the candidate most points agree with; Levenberg-Marquardt then refines it over
the inliers, minimising angular error. Residuals are reported in pixels and degrees.

>>> solution = solve_control_points(uv, xyz, width=4096, height=2048)      # doctest: +SKIP
>>> solution.T_model_from_camera, solution.rms_px, solution.inliers
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sitetwin.data.errors import Note, Phrase
from sitetwin.data.i18n import N_
from sitetwin.panorama.camera import (
    angular_distance_deg,
    bearing_to_equirect,
    check_transform,
    equirect_pixel_distance,
    equirect_to_bearing,
    pose_matrix,
    ypr_from_rotation,
)
from sitetwin.panorama.errors import PoseError, PoseWarning, cause
from sitetwin.twin.registration import rigid_fit


@dataclass(frozen=True)
class PoseConfig:
    """Control-point solver settings."""

    inlier_px: float = 4.0              # (px) a point within this reprojection error is an inlier
    min_inliers: int = 4                # (count) fewer inliers than this: no pose
    max_iterations: int = 2000          # (count) RANSAC triples tried when not all can be enumerated
    enumerate_up_to: int = 30           # (count) with at most this many points every triple is tried
    confidence: float = 0.999           # (0-1) RANSAC stops early at this confidence
    min_spread_ratio: float = 1e-3      # (ratio) smaller second/first singular value: points collinear
    min_separation_m: float = 1e-3      # (m) two model points closer than this are the same point
    # (ratio) Gauss-Newton normal matrix condition beyond which the pose is ill-posed
    max_condition: float = 1e10
    # (cm per degree) RMS position error per degree of pointing error beyond which the points are called
    # weak (far, few or on one side): 30 cm/deg is 2.6 cm for 1 px at 4096 px wide, 5.3 cm at 2048
    weak_position_cm_per_deg: float = 30.0
    seed: int = 0


DEFAULT_POSE_CONFIG = PoseConfig()
# what messages call the thing they are about, when the caller names nothing more precise
POSE = Phrase(N_("pose"))
PANORAMA = Phrase(N_("panorama"))
CONTROL_POINTS = Phrase(N_("control points"))


@dataclass(frozen=True)
class PoseSolution:
    """A solved pose with its residuals.

    T_model_from_camera : (4, 4) camera -> site local frame
    residual_px, residual_deg : (n,) per control point (outliers included)
    inliers : (n,) bool
    """

    T_model_from_camera: np.ndarray
    source: str                          # given | control_points | survey | e57
    residual_px: np.ndarray = field(default_factory=lambda: np.zeros(0))
    residual_deg: np.ndarray = field(default_factory=lambda: np.zeros(0))
    inliers: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def points(self) -> int:
        return int(len(self.inliers))

    @property
    def inlier_count(self) -> int:
        return int(self.inliers.sum())

    @property
    def rms_px(self) -> float | None:
        return _rms(self.residual_px[self.inliers]) if self.inlier_count else None

    @property
    def rms_deg(self) -> float | None:
        return _rms(self.residual_deg[self.inliers]) if self.inlier_count else None

    @property
    def max_px(self) -> float | None:
        return float(self.residual_px[self.inliers].max()) if self.inlier_count else None

    @property
    def position_m(self) -> np.ndarray:
        return self.T_model_from_camera[:3, 3].copy()

    @property
    def ypr_deg(self) -> tuple[float, float, float]:
        return ypr_from_rotation(self.T_model_from_camera[:3, :3])

    def summary(self) -> dict[str, Any]:
        yaw, pitch, roll = self.ypr_deg
        return {"source": self.source, "position_m": self.position_m.round(4).tolist(),
                "yaw_deg": round(yaw, 4), "pitch_deg": round(pitch, 4), "roll_deg": round(roll, 4),
                "points": self.points, "inliers": self.inlier_count,
                "rms_px": _round(self.rms_px), "rms_deg": _round(self.rms_deg, 5), "max_px": _round(self.max_px),
                **self.details}


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x)))) if len(x) else float("nan")


def _round(x: float | None, nd: int = 3) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), nd)


# --- given poses -----------------------------------------------------------------------------

def pose_from_dict(data: dict[str, Any], *, where: str | Phrase = POSE) -> np.ndarray:
    """``T_model_from_camera`` from ``{"T_model_from_camera": 4x4}`` or ``{"position_m": [x, y, z],
    "yaw_deg": .., "pitch_deg": .., "roll_deg": ..}`` (angles default to 0)."""
    if not isinstance(data, dict):
        raise PoseError(N_("{where}: expected a JSON object with T_model_from_camera or position_m"), where=where)
    if "T_model_from_camera" in data:
        try:
            return check_transform(np.asarray(data["T_model_from_camera"], dtype=np.float64))
        except (ValueError, TypeError) as exc:
            raise PoseError(N_("{where}: {reason}"), where=where, reason=str(exc)) from None
    if "position_m" in data:
        unknown = set(data) - {"position_m", "yaw_deg", "pitch_deg", "roll_deg", "image", "captured_at"}
        if unknown:
            raise PoseError(N_("{where}: unknown keys {keys}; a pose has position_m, yaw_deg, pitch_deg, roll_deg"),
                            where=where, keys=", ".join(sorted(unknown)))
        try:
            angles = [float(data.get(k, 0.0)) for k in ("yaw_deg", "pitch_deg", "roll_deg")]
            if not all(math.isfinite(a) for a in angles):
                raise ValueError("angles must be finite")
            return pose_matrix(data["position_m"], *angles)
        except (ValueError, TypeError) as exc:
            raise PoseError(N_("{where}: {reason}"), where=where, reason=str(exc)) from None
    raise PoseError(N_("{where}: give T_model_from_camera (4x4) or position_m [x, y, z] with "
                       "yaw_deg/pitch_deg/roll_deg"), where=where)


def read_pose_file(path: str | Path) -> dict[str, np.ndarray] | np.ndarray:
    """Read a pose JSON: one pose (an object), or several keyed by image file name.

    Forms: ``{pose}``, ``{"poses": {"a.jpg": {pose}, ...}}`` or ``[{"image": "a.jpg", ...pose}, ...]``.
    Returns one (4, 4) array for a single pose, else a dict image name -> (4, 4).
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PoseError(N_("{path}: no such pose file"), path=path) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PoseError(N_("{path}: not valid JSON ({reason})"), path=path, reason=str(exc)) from None
    if isinstance(data, list):
        out = {}
        for i, item in enumerate(data):
            if not isinstance(item, dict) or "image" not in item:
                raise PoseError(N_("{path}: entry {i} needs an 'image' name and a pose"), path=path, i=i)
            out[str(item["image"])] = pose_from_dict(item, where=Phrase(N_("{path} entry {i}"), path=path, i=i))
        return out
    if isinstance(data, dict) and "poses" in data:
        if not isinstance(data["poses"], dict):
            raise PoseError(N_("{path}: 'poses' must map image file names to poses"), path=path)
        return {str(k): pose_from_dict(v, where=Phrase(N_("{path} pose {image!r}"), path=path, image=k))
                for k, v in data["poses"].items()}
    return pose_from_dict(data, where=str(path))


def check_extent(T_model_from_camera, bounds: np.ndarray | None, *, margin_m: float = 2.0,
                 label: str | Phrase = PANORAMA) -> Note | None:
    """A warning (also issued as :class:`PoseWarning`, in the reader's language) when the camera stands
    outside the model's extent: a line for the record (its English as a str, the reader's language when
    shown), or None inside it."""
    found = extent_warning(T_model_from_camera, bounds, margin_m=margin_m, label=label)
    if found is None:
        return None
    warnings.warn(found, stacklevel=2)
    return Note.of(found)


def extent_warning(T_model_from_camera, bounds: np.ndarray | None, *, margin_m: float = 2.0,
                   label: str | Phrase = PANORAMA) -> PoseWarning | None:
    """The :class:`PoseWarning` of :func:`check_extent`, not issued; None inside the extent."""
    if bounds is None:
        return None
    c = np.asarray(T_model_from_camera, dtype=np.float64)[:3, 3]
    lo, hi = np.asarray(bounds[0]) - margin_m, np.asarray(bounds[1]) + margin_m
    if np.all(c >= lo) and np.all(c <= hi):
        return None
    return PoseWarning(N_("{label}: camera at ({x:.2f}, {y:.2f}, {z:.2f}) m stands outside the model's extent "
                          "({min_x:.1f}..{max_x:.1f}, {min_y:.1f}..{max_y:.1f}, {min_z:.1f}..{max_z:.1f}) m by more "
                          "than {margin_m:g} m; check the pose and its frame"),
                       label=label, x=float(c[0]), y=float(c[1]), z=float(c[2]),
                       min_x=float(bounds[0][0]), max_x=float(bounds[1][0]), min_y=float(bounds[0][1]),
                       max_y=float(bounds[1][1]), min_z=float(bounds[0][2]), max_z=float(bounds[1][2]),
                       margin_m=margin_m)


# --- survey poses ----------------------------------------------------------------------------

def pose_from_station(T_model_from_scan, T_scan_from_camera=None) -> np.ndarray:
    """``T_model_from_camera`` of a panorama taken at a scan station.

    ``T_scan_from_camera`` is the camera's mounting on the scanner (default identity: the
    camera centre at the scanner origin, its axes those of the scan frame).
    """
    T = check_transform(T_model_from_scan, "T_model_from_scan")
    M = np.eye(4) if T_scan_from_camera is None else check_transform(T_scan_from_camera, "T_scan_from_camera")
    return T @ M


def survey_pose(store, survey_id: str, scan: int | str | None = None, *, T_scan_from_camera=None) -> PoseSolution:
    """The pose of a panorama taken at a scan station of a registered survey (twin's ``scan_stations``).

    ``scan`` is a scan index or scan name; it may be omitted when the survey has one scan.
    """
    from sitetwin.data.errors import SitetwinError
    from sitetwin.twin.survey_store import scan_stations

    try:
        stations = scan_stations(store, survey_id)
    except SitetwinError as exc:
        raise PoseError(N_("survey {survey_id}: {reason}"), survey_id=survey_id, reason=cause(exc)) from None
    if not stations:
        raise PoseError(N_("survey {survey_id}: has no scans"), survey_id=survey_id)
    if scan is None:
        if len(stations) > 1:
            raise PoseError(N_("survey {survey_id} has {n} scans; say which one ({scans})"), survey_id=survey_id,
                            n=len(stations), scans=", ".join(str(s.scan_index) for s in stations))
        station = stations[0]
    else:
        matches = [s for s in stations if str(s.scan_index) == str(scan) or s.name == str(scan)]
        if not matches:
            raise PoseError(N_("survey {survey_id}: no scan {scan!r} (scans: {scans})"), survey_id=survey_id,
                            scan=scan, scans=", ".join(f"{s.scan_index} {s.name}" for s in stations))
        station = matches[0]
    if not getattr(station, "station_known", True):
        raise PoseError(N_("survey {survey_id} scan {scan_index}: its frame's origin is not the scanner "
                           "(no station pose in the file), so it cannot place a panorama"),
                        survey_id=survey_id, scan_index=station.scan_index)
    T = pose_from_station(station.T_model_from_scan, T_scan_from_camera)
    return PoseSolution(T, "survey", details={"survey_id": survey_id, "scan_index": int(station.scan_index),
                                              "scan_name": station.name})


# --- control points --------------------------------------------------------------------------

@dataclass(frozen=True)
class ControlPoints:
    """Pixel <-> model point pairs for one panorama. uv : (n, 2) px; xyz_m : (n, 3) local frame."""

    uv: np.ndarray
    xyz_m: np.ndarray
    labels: tuple[str, ...]
    image: str | None = None


CP_COLUMNS = ("u", "v", "x_m", "y_m", "z_m")


def read_control_points(path: str | Path) -> dict[str | None, ControlPoints]:
    """Read a control-point CSV: header ``u,v,x_m,y_m,z_m`` plus optional ``label`` and ``image``.

    Rows with an ``image`` column are grouped by it (several panoramas in one file); without
    it every row belongs to one panorama (key None).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise PoseError(N_("{path}: no such control-point file"), path=path) from None
    except UnicodeDecodeError:
        raise PoseError(N_("{path}: not a text CSV file"), path=path) from None
    reader = csv.DictReader(text.splitlines())
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in CP_COLUMNS if c not in header]
    if missing:
        raise PoseError(N_("{path}: control-point CSV lacks column(s) {columns}; "
                           "expected a header like label,u,v,x_m,y_m,z_m (pixels, metres in the site frame)"),
                        path=path, columns=", ".join(missing))
    groups: dict[str | None, list] = {}
    for line, row in enumerate(reader, start=2):
        row = {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
        if not any(row.values()):
            continue
        try:
            values = [float(row[c]) for c in CP_COLUMNS]
        except ValueError:
            raise PoseError(N_("{path} line {line}: u, v, x_m, y_m, z_m must be numbers, got {values}"), path=path,
                            line=line, values=", ".join(row.get(c, "") for c in CP_COLUMNS)) from None
        if not all(math.isfinite(x) for x in values):
            raise PoseError(N_("{path} line {line}: values must be finite"), path=path, line=line)
        key = row.get("image") or None
        groups.setdefault(key, []).append((values, row.get("label") or f"line {line}"))
    if not groups:
        raise PoseError(N_("{path}: holds no control points"), path=path)
    out = {}
    for key, items in groups.items():
        arr = np.array([v for v, _ in items], dtype=np.float64)
        out[key] = ControlPoints(arr[:, :2], arr[:, 2:], tuple(lbl for _, lbl in items), key)
    return out


def validate_control_points(uv, xyz_m, width: int, height: int, *, labels: Sequence[str] | None = None,
                            config: PoseConfig = DEFAULT_POSE_CONFIG, where: str | Phrase = CONTROL_POINTS
                            ) -> tuple[np.ndarray, np.ndarray]:
    """Checked (n, 2) pixels and (n, 3) points; PoseError for too few, outside the image, or degenerate."""
    uv = np.asarray(uv, dtype=np.float64)
    xyz = np.asarray(xyz_m, dtype=np.float64)
    if uv.ndim != 2 or uv.shape[1] != 2 or xyz.ndim != 2 or xyz.shape[1] != 3 or len(uv) != len(xyz):
        raise PoseError(N_("{where}: need matching (n, 2) pixels and (n, 3) model points, got {uv_shape} and "
                           "{xyz_shape}"), where=where, uv_shape=uv.shape, xyz_shape=xyz.shape)
    n = len(uv)
    names = list(labels) if labels is not None else [f"point {i}" for i in range(n)]
    if n < 4:
        raise PoseError(N_("{where}: {n} control point(s) given; a panorama's pose needs at least 4 "
                           "(6 or more, spread around the camera, to detect a wrong one)"), where=where, n=n)
    if not (np.all(np.isfinite(uv)) and np.all(np.isfinite(xyz))):
        raise PoseError(N_("{where}: values must be finite numbers"), where=where)
    outside = np.flatnonzero((uv[:, 0] < 0) | (uv[:, 0] >= width) | (uv[:, 1] < 0) | (uv[:, 1] >= height))
    if len(outside):
        bad = ", ".join(f"{names[i]} ({uv[i, 0]:g}, {uv[i, 1]:g})" for i in outside[:5])
        raise PoseError(N_("{where}: pixel(s) outside the {width}x{height} image: {points}"), where=where, width=width,
                        height=height, points=bad)
    d = np.linalg.norm(xyz[:, None] - xyz[None], axis=2)
    i, j = np.nonzero(np.triu(d < config.min_separation_m, 1))
    if len(i):
        raise PoseError(N_("{where}: {first} and {second} are the same model point; "
                           "control points must be distinct (degenerate)"), where=where, first=names[i[0]],
                        second=names[j[0]])
    b = equirect_to_bearing(uv, width, height)
    ang = angular_distance_deg(b[:, None], b[None])
    i, j = np.nonzero(np.triu(ang < 1e-3, 1))
    if len(i):
        raise PoseError(N_("{where}: {first} and {second} are the same pixel; "
                           "control points must be distinct (degenerate)"), where=where, first=names[i[0]],
                        second=names[j[0]])
    s = np.linalg.svd(xyz - xyz.mean(0), compute_uv=False)
    if s[0] <= 0 or s[1] / s[0] < config.min_spread_ratio:
        raise PoseError(N_("{where}: the model points lie on one line (degenerate); "
                           "pick points that span an area, around the camera"), where=where)
    return uv, xyz


def solve_control_points(uv, xyz_m, width: int, height: int, *, labels: Sequence[str] | None = None,
                         config: PoseConfig = DEFAULT_POSE_CONFIG,
                         where: str | Phrase = CONTROL_POINTS) -> PoseSolution:
    """Absolute pose of a spherical camera from >= 4 pixel <-> model point pairs, robust to outliers."""
    uv, xyz = validate_control_points(uv, xyz_m, width, height, labels=labels, config=config, where=where)
    bearings = equirect_to_bearing(uv, width, height)
    n = len(uv)
    thresh_rad = config.inlier_px * 2 * math.pi / width
    best_T, best_inl, best_cost = None, None, math.inf
    triples = _triples(n, config)
    tried = 0
    for tri in triples:
        tried += 1
        for T in p3p(bearings[list(tri)], xyz[list(tri)]):
            err = _angular_errors(T, bearings, xyz)
            inl = err < thresh_rad
            # MSAC cost: inliers by error, outliers at the threshold
            cost = float(np.sum(np.minimum(err, thresh_rad) ** 2))
            if inl.sum() > (0 if best_inl is None else best_inl.sum()) or (
                    best_inl is not None and inl.sum() == best_inl.sum() and cost < best_cost):
                best_T, best_inl, best_cost = T, inl, cost
        if best_inl is not None and not isinstance(triples, list):
            w = best_inl.mean()
            needed = math.log(1 - config.confidence) / math.log(max(1e-12, 1 - w ** 3)) if w < 1 else 0
            if tried >= needed:
                break
    if best_T is None or best_inl is None or best_inl.sum() < config.min_inliers:
        found = 0 if best_inl is None else int(best_inl.sum())
        raise PoseError(N_("{where}: no pose agrees with at least {min_inliers} control points "
                           "(best: {found} of {n} within {inlier_px:g} px); check the pixel/point pairs"),
                        where=where, min_inliers=config.min_inliers, found=found, n=n, inlier_px=config.inlier_px)
    T, cond, cov = _refine(best_T, bearings[best_inl], xyz[best_inl])
    for _ in range(3):   # re-select inliers under the refined pose, refine again
        inl = _angular_errors(T, bearings, xyz) < thresh_rad
        if inl.sum() < config.min_inliers or np.array_equal(inl, best_inl):
            break
        best_inl = inl
        T, cond, cov = _refine(T, bearings[inl], xyz[inl])
    if not math.isfinite(cond) or cond > config.max_condition:
        raise PoseError(N_("{where}: the control points do not fix the pose (degenerate configuration, "
                           "condition {condition:.1e}); add points in other directions and at other heights"),
                        where=where, condition=cond)
    err = _angular_errors(T, bearings, xyz)
    inliers = err < thresh_rad
    predicted = bearing_to_equirect((xyz - T[:3, 3]) @ T[:3, :3], width, height)
    residual_px = equirect_pixel_distance(predicted, uv, width)
    rad_per_px = 2 * math.pi / width          # one equirectangular pixel, along either axis
    position_sigma_cm = 100 * rad_per_px * math.sqrt(max(0.0, float(np.trace(cov[3:, 3:]))))
    position_cm_per_deg = position_sigma_cm / math.degrees(rad_per_px)
    return PoseSolution(T, "control_points", residual_px, np.degrees(err), inliers,
                        details={"triples_tried": tried, "inlier_px": config.inlier_px,
                                 # what 1 px of click noise (per axis) does to the pose, RMS over 3 axes:
                                 # large when the points are far, few or on one side of the camera
                                 "position_sigma_cm_per_px": round(position_sigma_cm, 3),
                                 "position_sigma_cm_per_deg": round(position_cm_per_deg, 2),
                                 "weak_geometry": position_cm_per_deg > config.weak_position_cm_per_deg,
                                 "rotation_sigma_deg_per_px": round(
                                     math.degrees(rad_per_px * math.sqrt(max(0.0, np.trace(cov[:3, :3])))), 4),
                                 "outliers": [str((labels or [f"point {i}" for i in range(n)])[i])
                                              for i in np.flatnonzero(~inliers).tolist()]})


def _triples(n: int, config: PoseConfig):
    if n <= config.enumerate_up_to:
        return list(itertools.combinations(range(n), 3))
    rng = np.random.default_rng(config.seed)
    return (tuple(rng.choice(n, 3, replace=False)) for _ in range(config.max_iterations))


def _angular_errors(T: np.ndarray, bearings: np.ndarray, xyz: np.ndarray) -> np.ndarray:
    local = (xyz - T[:3, 3]) @ T[:3, :3]
    local /= np.linalg.norm(local, axis=1, keepdims=True)
    return np.arctan2(np.linalg.norm(np.cross(local, bearings), axis=1), np.sum(local * bearings, axis=1))


def p3p(bearings: np.ndarray, points: np.ndarray) -> list[np.ndarray]:
    """Up to four ``T_model_from_camera`` from three unit bearings (camera frame) and model points.

    Grunert's formulation: with ranges s2 = u s1, s3 = v s1, the law of cosines reduces to a
    quartic in v. Its coefficients are built here by polynomial algebra, not tabulated.
    """
    j1, j2, j3 = (b / np.linalg.norm(b) for b in bearings)
    p1, p2, p3 = points
    a2, b2, c2 = np.sum((p2 - p3) ** 2), np.sum((p1 - p3) ** 2), np.sum((p1 - p2) ** 2)
    if min(a2, b2, c2) < 1e-12:
        return []
    ca, cb, cg = float(j2 @ j3), float(j1 @ j3), float(j1 @ j2)
    K = (a2 - c2) / b2
    P = np.polynomial.polynomial
    N = np.array([1 + K, -2 * K * cb, K - 1])          # u = N(v) / D(v), ascending powers
    D = np.array([2 * cg, -2 * ca])
    Q = np.array([1.0, -2 * cb, 1.0])                  # 1 + v^2 - 2 v cos(beta)
    # (B) times D^2:  N^2 - 2 cos(gamma) N D + (1 - c^2/b^2 Q) D^2 = 0
    quartic = P.polyadd(P.polyadd(P.polymul(N, N), P.polymul(-2 * cg * N, D)),
                        P.polymul(P.polysub(np.array([1.0]), (c2 / b2) * Q), P.polymul(D, D)))
    roots = P.polyroots(quartic) if np.any(np.abs(quartic) > 1e-15) else np.array([])
    out = []
    for r in roots:
        if abs(r.imag) > 1e-6 * max(1.0, abs(r.real)):
            continue
        v = float(r.real)
        d = P.polyval(v, D)
        q = P.polyval(v, Q)
        if v <= 0 or abs(d) < 1e-12 or q <= 1e-12:
            continue
        u = P.polyval(v, N) / d
        if u <= 0:
            continue
        s1 = math.sqrt(b2 / q)
        cam = np.stack([s1 * j1, u * s1 * j2, v * s1 * j3])
        out.append(rigid_fit(cam, np.stack([p1, p2, p3])))
    return out


def _refine(T0: np.ndarray, bearings: np.ndarray, xyz: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """Levenberg-Marquardt on bearing residuals over (rotation vector, camera centre); returns pose, the
    condition number of the normal matrix at the solution and the parameters' 6x6 covariance per unit
    residual variance (first-order)."""
    from scipy.optimize import least_squares
    from scipy.spatial.transform import Rotation

    R0 = T0[:3, :3]
    c0 = T0[:3, 3]
    # Residuals in the tangent plane of each observed bearing, the east part divided by
    # cos(elevation): equirectangular pixels, where the clicking noise lives (maximum likelihood)
    b = bearings / np.linalg.norm(bearings, axis=1, keepdims=True)
    horiz = np.hypot(b[:, 0], b[:, 1])
    safe = np.maximum(horiz, 1e-9)
    east = np.stack([-b[:, 1] / safe, b[:, 0] / safe, np.zeros(len(b))], 1)
    north = np.cross(b, east)
    scale = 1.0 / np.maximum(horiz, 0.05)

    def residuals(x):
        R = Rotation.from_rotvec(x[:3]).as_matrix() @ R0
        local = (xyz - (c0 + x[3:])) @ R
        local /= np.linalg.norm(local, axis=1, keepdims=True)
        return np.concatenate([np.sum(local * east, 1) * scale, np.sum(local * north, 1)])

    fit = least_squares(residuals, np.zeros(6), method="lm", xtol=1e-14, ftol=1e-14, gtol=1e-14, max_nfev=200)
    x = fit.x
    T = np.eye(4)
    T[:3, :3] = Rotation.from_rotvec(x[:3]).as_matrix() @ R0
    T[:3, 3] = c0 + x[3:]
    J = fit.jac
    s = np.linalg.svd(J, compute_uv=False)
    cond = float((s[0] / s[-1]) ** 2) if s[-1] > 0 else math.inf
    # covariance of (rotation vector, centre) for unit residual variance: scaled by the click noise
    # (in radians of the equirectangular grid) it is what that noise does to the pose
    cov = np.linalg.pinv(J.T @ J)
    return T, cond, cov
