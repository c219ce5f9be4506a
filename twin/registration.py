"""Put a survey on the model: a given 4x4, control points, or automatic (global alignment + robust ICP).

Frames: survey points are in the survey's own frame (the files' coordinates); the model is
in the site's local frame (metres). Every path returns ``T_model_from_survey`` and the same
figures: ``fitness`` (share of survey points within ``inlier_distance_m`` of a model surface)
and ``rmse_m`` (RMS distance of those inliers). :func:`check` refuses a registration that
failed, before any deviation is computed from it.

The automatic path works against the elements the schedule says stand by the survey date
(the caller passes that mesh). Global alignment proposes candidate poses in two ways and
keeps the one that fits best after refinement:

- gravity and grid: the survey's up direction from its horizontal surfaces, its yaw from the
  histogram of wall normals (modulo 90 degrees, four candidates), and the translation of
  each from an FFT cross-correlation of occupancy grids: buildings are levelled boxes;
- FPFH features matched by RANSAC (Open3D), for scenes without a dominant grid.

Each candidate is refined by point-to-plane ICP against the exact nearest model surface
(``twin.distance``) with a Tukey kernel whose width shrinks from 0.3 m to 1.5 cm, which
trims scaffolding, people and anything else the model does not hold.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace

import numpy as np

from sitetwin.data.errors import Phrase
from sitetwin.data.i18n import N_
from sitetwin.twin.errors import ControlPointError, RegistrationError


@dataclass(frozen=True)
class RegistrationConfig:
    """Settings of the registration; the defaults suit terrestrial scans of buildings."""

    inlier_distance_m: float = 0.02       # a point within this of a surface counts for fitness/RMSE
    overlap_distance_m: float = 0.10      # "overlaps the model at all" distance
    min_overlap: float = 0.05             # below this share within overlap_distance_m: no overlap
    min_fitness: float = 0.25             # below this the registration failed
    max_rmse_m: float = 0.012             # above this the registration failed
    min_margin: float = 0.002             # best pose must beat a distinct runner-up by this share of its score
    coarse_voxel_m: float = 0.25          # global alignment works on this grid
    correlation_voxel_m: float = 0.5      # and finds shifts by correlating occupancy at this one
    fine_voxel_m: float = 0.04            # the final ICP stage works on points this far apart
    max_icp_points: int = 100_000         # per ICP stage, drawn evenly from the voxel grid
    use_fpfh: bool = True                 # fall back on FPFH + RANSAC when the grid poses fit poorly
    fpfh_below_fitness: float = 0.3       # ... that is, when the best of them fits this little at 5 cm
    seed: int = 0
    # georeferenced surveys: the file's CRS and the model's map conversion place the cloud, ICP refines
    georef_max_offset_m: float = 0.10     # refined pose farther than this from the georeference: said so
    georef_min_gain: float = 0.05         # ... and kept only if its fitness beats the georeference's by this
    georef_max_distance_m: float = 2000.0  # a cloud placed farther than this from the model: CRS mismatch
    # similarity (photogrammetry): scale searched over [1/scale_range, scale_range] x the extent ratio
    scale_range: float = 2.0
    scale_steps_per_octave: int = 12
    max_scale_uncertainty: float = 0.002  # relative 1-sigma (bootstrap) above which a scale fit is refused
    min_scale_inliers: int = 2000         # correspondences within inlier_distance_m needed to fit a scale
    min_scale_lever: float = 0.15         # scale lever arm / cloud radius below this: geometry fixes no scale
    bootstrap_samples: int = 200


DEFAULT_CONFIG = RegistrationConfig()
# what a message names when the caller gives no file name
SURVEY = Phrase(N_("survey"))
CONTROL_POINTS = Phrase(N_("control points"))


@dataclass(frozen=True)
class Registration:
    """How a survey was placed on the model, with the figures that judge it."""

    method: str                            # transform | control_points | auto | none
    T_model_from_survey: np.ndarray        # (4, 4)
    fitness: float
    rmse_m: float
    inlier_distance_m: float
    overlap: float                         # share of points within overlap_distance_m
    residuals: tuple[dict, ...] = ()       # control points: per pair, mm
    details: dict = field(default_factory=dict)

    def summary(self) -> dict:
        return {"method": self.method, "fitness": round(self.fitness, 4), "rmse_mm": round(self.rmse_m * 1000, 2),
                "inlier_distance_m": self.inlier_distance_m, "overlap": round(self.overlap, 4),
                "T_model_from_survey": self.T_model_from_survey.tolist(),
                **({"control_points": list(self.residuals)} if self.residuals else {}),
                **{k: self.details[k] for k in ("scale", "scale_sigma", "georef_offset_m", "georef_offset_deg")
                   if k in self.details}}


# ------------------------------------------------------------------------------------ basics
def apply(T: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Points (n, 3) through a 4x4 transform (float64)."""
    # column by column: a BLAS product with an inner size of 3 is slow and threads badly
    p = np.asarray(points, dtype=np.float64)
    out = np.empty((len(p), 3))
    for i in range(3):
        out[:, i] = p[:, 0] * T[i, 0] + p[:, 1] * T[i, 1] + p[:, 2] * T[i, 2] + T[i, 3]
    return out


def check_transform(T, *, source: str = "transform") -> np.ndarray:
    """A 4x4 rigid transform (rotation orthonormal with det +1, last row 0 0 0 1), as float64."""
    try:
        T = np.asarray(T, dtype=np.float64)
    except (TypeError, ValueError):
        raise RegistrationError(N_("{source}: not a 4x4 matrix of numbers"), source=source) from None
    if T.shape != (4, 4):
        raise RegistrationError(N_("{source}: expected a 4x4 matrix, got shape {shape}"), source=source,
                                shape=T.shape)
    if not np.isfinite(T).all():
        raise RegistrationError(N_("{source}: the matrix holds NaN or inf"), source=source)
    if not np.allclose(T[3], [0, 0, 0, 1], atol=1e-9):
        raise RegistrationError(N_("{source}: the last row must be 0 0 0 1, got {row}"), source=source,
                                row=T[3].tolist())
    R = T[:3, :3]
    err = float(np.abs(R.T @ R - np.eye(3)).max())
    if err > 1e-5 or np.linalg.det(R) < 0:
        raise RegistrationError(N_("{source}: the 3x3 part is not a rotation (orthonormality error {err:.2g}, det "
                                   "{det:.4f}); sitetwin takes rigid transforms in metres"), source=source, err=err,
                                det=float(np.linalg.det(R)))
    return T


def _rigid(R: np.ndarray, t=(0.0, 0.0, 0.0)) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = R, t
    return T


def rotation_angle_deg(R: np.ndarray) -> float:
    """The angle of a rotation matrix, degrees (atan2 form: exact for tiny angles too)."""
    s = np.linalg.norm([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]]) / 2.0
    return math.degrees(math.atan2(float(s), (float(np.trace(R)) - 1.0) / 2.0))


def pose_error(T_est: np.ndarray, T_true: np.ndarray, points: np.ndarray | None = None) -> tuple[float, float]:
    """(translation error m, rotation error deg); with ``points``, the translation error is the
    largest displacement of those points (what 5 mm at the building's far corner means)."""
    D = T_est @ np.linalg.inv(T_true)
    if points is None:
        t = float(np.linalg.norm(D[:3, 3]))
    else:
        t = float(np.linalg.norm(apply(T_est, points) - apply(T_true, points), axis=1).max())
    return t, rotation_angle_deg(D[:3, :3])


def voxel_downsample(points: np.ndarray, voxel_m: float) -> np.ndarray:
    """One point (the centroid) per occupied voxel, float64."""
    import open3d as o3d

    pc = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.ascontiguousarray(points, dtype=np.float64)))
    return np.asarray(pc.voxel_down_sample(voxel_m).points)


def evaluate(index, points: np.ndarray, T: np.ndarray, config: RegistrationConfig = DEFAULT_CONFIG
             ) -> tuple[float, float, float]:
    """(fitness, rmse_m, overlap) of ``points`` (survey frame) placed by ``T`` on the indexed model."""
    if len(points) == 0:
        return 0.0, float("inf"), 0.0
    d = np.abs(index.query(apply(T, points), exact_far=False).distance_m.astype(np.float64))
    inl = d < config.inlier_distance_m
    fitness = float(inl.mean())
    rmse = float(np.sqrt(np.mean(d[inl] ** 2))) if inl.any() else float("inf")
    overlap = float((d < config.overlap_distance_m).mean())
    return fitness, rmse, overlap


# how each method placed the cloud, as the messages of :func:`check` say it
_METHODS = {"transform": N_("the given transform"), "control_points": N_("the control points"),
            "auto": N_("automatic registration"), "none": N_("the survey's own coordinates (--register none)"),
            "georeferenced": N_("the file's georeference (refined)"),
            "similarity": N_("automatic similarity registration (--scale)")}


def check(reg: Registration, config: RegistrationConfig = DEFAULT_CONFIG, *,
          label: str | Phrase = SURVEY) -> Registration:
    """Refuse a registration that failed (no overlap, poor fitness, high RMSE, ambiguous)."""
    how = Phrase(_METHODS[reg.method])
    hint = Phrase(N_("give control points (--control-points CP.csv) or a transform (--transform T.json)")
                  if reg.method in ("auto", "none", "georeferenced", "similarity")
                  else N_("check it, or try --register auto"))
    if reg.overlap < config.min_overlap:
        raise RegistrationError(
            N_("{label}: the cloud does not overlap the model: placed by {how}, only {overlap:.1%} of its points lie "
               "within {distance_cm:.0f} cm of a model surface; is it a scan of this site (and of the models given)? "
               "{hint}"), label=label, how=how, overlap=reg.overlap,
            distance_cm=config.overlap_distance_m * 100, hint=hint)
    if reg.fitness < config.min_fitness or not math.isfinite(reg.rmse_m) or reg.rmse_m > config.max_rmse_m:
        raise RegistrationError(
            N_("{label}: registration by {how} failed: fitness {fitness:.3f} (need >= {min_fitness}), RMSE "
               "{rmse_mm:.1f} mm (need <= {max_rmse_mm:.0f} mm); no deviation was computed from it; {hint}"),
            label=label, how=how, fitness=reg.fitness, min_fitness=config.min_fitness, rmse_mm=reg.rmse_m * 1000,
            max_rmse_mm=config.max_rmse_m * 1000, hint=hint)
    margin = reg.details.get("margin")
    if margin is not None and margin < config.min_margin:
        raise RegistrationError(
            N_("{label}: automatic registration is ambiguous: a pose {offset} away explains almost as many points "
               "(margin {margin:.2%}, need {min_margin:.2%}); the site as built is too symmetric to place without "
               "help; give control points (--control-points CP.csv) or a transform (--transform T.json)"),
            label=label, offset=reg.details.get("runner_up_offset", "?"), margin=margin,
            min_margin=config.min_margin)
    return reg


# ------------------------------------------------------------------------------------ given transform
def register_transform(index, points: np.ndarray, T_model_from_survey, *, method: str = "transform",
                       config: RegistrationConfig = DEFAULT_CONFIG) -> Registration:
    """A given 4x4 (or identity for ``method='none'``), with its figures against the model."""
    T = check_transform(T_model_from_survey, source=method)
    fitness, rmse, overlap = evaluate(index, points, T, config)
    return Registration(method, T, fitness, rmse, config.inlier_distance_m, overlap)


# ------------------------------------------------------------------------------------ control points
def rigid_fit(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Least-squares rigid 4x4 mapping source (n, 3) onto target (n, 3) (Kabsch, no scale)."""
    cs, ct = source.mean(axis=0), target.mean(axis=0)
    H = (source - cs).T @ (target - ct)
    U, _, Vt = np.linalg.svd(H)
    D = np.diag([1.0, 1.0, np.sign(np.linalg.det(Vt.T @ U.T))])
    R = Vt.T @ D @ U.T
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = ct - R @ cs
    return T


def register_control_points(scan_m: np.ndarray, model_m: np.ndarray, *, names: list[str] | None = None,
                            min_spread_m: float = 0.1, max_residual_m: float = 0.05,
                            source: str | Phrase = CONTROL_POINTS, with_scale: bool = False
                            ) -> tuple[np.ndarray, tuple[dict, ...]]:
    """Solve ``T_model_from_survey`` from pairs (scan point, model point) by least squares.

    Needs at least 3 pairs not on one line (some point at least ``min_spread_m`` off the best
    line through them, in both frames). Returns the transform and each pair's residual (mm).
    Pairs that disagree by more than ``max_residual_m`` mean a mistyped point: refused.
    ``with_scale``: the scan's units are unknown; a similarity is fitted (Umeyama).
    """
    scan_m = np.asarray(scan_m, dtype=np.float64).reshape(-1, 3)
    model_m = np.asarray(model_m, dtype=np.float64).reshape(-1, 3)
    n = len(scan_m)
    if n != len(model_m):
        raise ControlPointError(N_("{source}: {n} scan points but {model_n} model points"), source=source, n=n,
                                model_n=len(model_m))
    if n < 3:
        raise ControlPointError(N_("{source}: {n} control point pair(s); at least 3 are needed, not all on one line"),
                                source=source, n=n)
    if not (np.isfinite(scan_m).all() and np.isfinite(model_m).all()):
        raise ControlPointError(N_("{source}: a control point has a NaN/inf coordinate"), source=source)
    collinear = {"scan": N_("{source}: the {n} scan points are collinear (all within {within_mm:.0f} mm of one "
                            "line); a rotation about that line is undetermined; add a point at least "
                            "{spread_cm:.0f} cm off it"),
                 "model": N_("{source}: the {n} model points are collinear (all within {within_mm:.0f} mm of one "
                             "line); a rotation about that line is undetermined; add a point at least "
                             "{spread_cm:.0f} cm off it")}
    for frame, pts in (("scan", scan_m), ("model", model_m)):
        off = _line_offsets(pts)
        if off.max() < min_spread_m:
            raise ControlPointError(collinear[frame], source=source, n=n, within_mm=off.max() * 1000,
                                    spread_cm=min_spread_m * 100)
    T = similarity_fit(scan_m, model_m)[0] if with_scale else rigid_fit(scan_m, model_m)
    res = model_m - apply(T, scan_m)
    names = names or [f"CP{i + 1}" for i in range(n)]
    residuals = tuple({"name": names[i], "dx_mm": round(float(res[i, 0]) * 1000, 2),
                       "dy_mm": round(float(res[i, 1]) * 1000, 2), "dz_mm": round(float(res[i, 2]) * 1000, 2),
                       "residual_mm": round(float(np.linalg.norm(res[i])) * 1000, 2)} for i in range(n))
    worst = int(np.argmax(np.linalg.norm(res, axis=1)))
    if np.linalg.norm(res[worst]) > max_residual_m:
        raise ControlPointError(
            N_("{source}: pair {name} is off by {off_mm:.0f} mm after the best fit (limit {limit_mm:.0f} mm); check "
               "its coordinates (swapped pair, wrong frame or units?)"), source=source, name=names[worst],
            off_mm=float(np.linalg.norm(res[worst])) * 1000, limit_mm=max_residual_m * 1000)
    return T, residuals


def _line_offsets(points: np.ndarray) -> np.ndarray:
    c = points - points.mean(axis=0)
    _, _, Vt = np.linalg.svd(c, full_matrices=False)
    along = c @ Vt[0]
    return np.linalg.norm(c - np.outer(along, Vt[0]), axis=1)


def read_control_points(path) -> tuple[np.ndarray, np.ndarray, list[str], str]:
    """Read a control-point CSV: ``name`` (optional), ``scan_x, scan_y, scan_z`` and either
    ``model_x, model_y, model_z`` (site local frame) or ``world_x, world_y, world_z`` (IFC
    project coordinates). Returns (scan, model_or_world, names, 'model'|'world')."""
    import csv
    from pathlib import Path

    path = Path(path)
    if not path.exists():
        raise ControlPointError(N_("{path}: no such control-point file"), path=path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ControlPointError(N_("{path}: not a readable CSV file ({reason})"), path=path, reason=str(exc)) from None
    if not rows:
        raise ControlPointError(N_("{path}: no control points (an empty CSV); need at least 3 pairs"), path=path)
    cols = {c.strip().lower(): c for c in rows[0].keys() if c}
    frame = "model" if {"model_x", "model_y", "model_z"} <= set(cols) else \
        "world" if {"world_x", "world_y", "world_z"} <= set(cols) else None
    if not {"scan_x", "scan_y", "scan_z"} <= set(cols) or frame is None:
        raise ControlPointError(N_("{path}: columns must be scan_x, scan_y, scan_z and model_x, model_y, model_z "
                                   "(site local frame) or world_x, world_y, world_z (IFC coordinates); got "
                                   "{columns}"), path=path, columns=", ".join(cols))
    scan, target = [], []
    names: list[str] = []
    for i, row in enumerate(rows, start=2):
        try:
            scan.append([float(row[cols[f"scan_{a}"]]) for a in "xyz"])
            target.append([float(row[cols[f"{frame}_{a}"]]) for a in "xyz"])
        except (TypeError, ValueError):
            raise ControlPointError(N_("{path}: line {line}: a coordinate is not a number"), path=path,
                                    line=i) from None
        names.append((row.get(cols.get("name", ""), "") or f"CP{len(names) + 1}").strip())
    return np.array(scan), np.array(target), names, frame


# ------------------------------------------------------------------------------------ ICP
def _tukey(r: np.ndarray, c: float) -> np.ndarray:
    u = np.clip(np.abs(r) / c, 0.0, 1.0)
    return (1.0 - u * u) ** 2


def _exp_se3(x: np.ndarray) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    T = np.eye(4)
    T[:3, :3] = Rotation.from_rotvec(x[:3]).as_matrix()
    T[:3, 3] = x[3:]
    return T


def icp(index, points: np.ndarray, T0: np.ndarray, *, kernel_m: float, iterations: int = 20,
        tol: float = 1e-7, with_scale: bool = False, max_scale_step: float = 0.05,
        scale_bounds: tuple[float, float] | None = None) -> tuple[np.ndarray, int]:
    """Point-to-plane ICP against the exact nearest model surface, Tukey-weighted (width ``kernel_m``).

    ``points`` are in the survey frame; returns the refined ``T_model_from_survey`` and the
    iterations used. The index must resolve distances up to ``kernel_m`` (its cell size).
    ``with_scale`` solves a similarity (7 DoF: a uniform scale about the points' centroid too),
    each step's scale change clipped to ``max_scale_step`` (shrinking a cloud onto one surface
    always lowers point-to-plane residuals; the clip keeps a step from running that way), and the
    transform's scale kept within ``scale_bounds`` (lo, hi) when given.
    """
    T = T0.copy()
    used = 0
    for iteration in range(1, iterations + 1):
        used = iteration
        system = _icp_system(index, points, T, kernel_m, with_scale)
        if system is None:
            break
        J, d, w, c, _ = system
        A = (J * w[:, None]).T @ J
        b = -(J * w[:, None]).T @ d
        try:
            x = np.linalg.solve(A + 1e-9 * np.eye(len(A)), b)
        except np.linalg.LinAlgError:
            break
        step = _exp_se3(x[:6])
        if with_scale:
            ds = float(np.clip(x[6], -max_scale_step, max_scale_step))
            if scale_bounds is not None:
                now = math.log(transform_scale(T))
                ds = float(np.clip(ds, math.log(scale_bounds[0]) - now, math.log(scale_bounds[1]) - now))
            step[:3, :3] *= math.exp(ds)
        # about the centroid c: p' = s R (p - c) + c + t
        step[:3, 3] += c - step[:3, :3] @ c
        T = step @ T
        if np.linalg.norm(x[:3]) < tol and np.linalg.norm(x[3:6]) < tol * 10 and (not with_scale or abs(x[6]) < tol):
            break
    return T, used


def _icp_system(index, points: np.ndarray, T: np.ndarray, kernel_m: float, with_scale: bool):
    """The linearised point-to-plane system at ``T``: (J, d, w, centroid, matched points in the model
    frame), or None (too few matches).

    Columns of J: rotation (3) and translation (3) about the centroid, and with ``with_scale``
    the log of a uniform scale about it."""
    p = apply(T, points)
    res = index.query(p, exact_far=False)
    d = res.distance_m.astype(np.float64)
    ok = np.isfinite(d) & (np.abs(d) < kernel_m) & res.on_face
    if ok.sum() < 12:
        return None
    p, d, n = p[ok], d[ok], index.face_normals[res.triangle[ok]]
    c = p.mean(axis=0)
    cols = [np.cross(p - c, n), n]
    if with_scale:
        cols.append(np.einsum("ij,ij->i", p - c, n)[:, None])
    return np.hstack(cols), d, _tukey(d, kernel_m), c, p


# ------------------------------------------------------------------------------------ global alignment
def _normals(points: np.ndarray, radius_m: float) -> np.ndarray:
    import open3d as o3d

    pc = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points))
    pc.estimate_normals(o3d.geometry.KDTreeSearchParamHybrid(radius=radius_m, max_nn=16))
    return np.asarray(pc.normals)


def _up_vector(normals: np.ndarray) -> np.ndarray:
    """The direction horizontal surfaces face, from normals within 20 degrees of +-z."""
    horiz = normals[np.abs(normals[:, 2]) > math.cos(math.radians(20.0))]
    if len(horiz) < 10:
        return np.array([0.0, 0.0, 1.0])
    w, V = np.linalg.eigh(horiz.T @ horiz)
    up = V[:, -1]
    return up if up[2] > 0 else -up


def _level(up: np.ndarray) -> np.ndarray:
    """Rotation taking ``up`` to +z."""
    z = np.array([0.0, 0.0, 1.0])
    axis = np.cross(up, z)
    s = np.linalg.norm(axis)
    if s < 1e-12:
        return np.eye(3)
    from scipy.spatial.transform import Rotation

    return Rotation.from_rotvec(axis / s * math.atan2(s, float(up @ z))).as_matrix()


def _grid_angle(normals: np.ndarray) -> float | None:
    """Dominant wall direction modulo 90 degrees (radians), from normals of vertical surfaces."""
    vert = normals[np.abs(normals[:, 2]) < math.sin(math.radians(20.0))]
    if len(vert) < 20:
        return None
    ang = np.mod(np.arctan2(vert[:, 1], vert[:, 0]), math.pi / 2)
    # circular mean of the 4-fold angle, refined around the histogram peak
    bins = np.histogram(ang, bins=180, range=(0, math.pi / 2))[0].astype(float)
    bins = np.convolve(np.r_[bins[-3:], bins, bins[:3]], np.ones(5) / 5, mode="same")[3:-3]
    peak = (np.argmax(bins) + 0.5) * (math.pi / 2) / 180
    near = np.abs(((ang - peak + math.pi / 4) % (math.pi / 2)) - math.pi / 4) < math.radians(3)
    if near.sum() < 10:
        return float(peak)
    z = np.exp(4j * ang[near]).mean()
    return float(np.mod(np.angle(z) / 4, math.pi / 2))


def _occupancy(points: np.ndarray, voxel_m: float, lo: np.ndarray, shape) -> np.ndarray:
    idx = np.floor((points - lo) / voxel_m).astype(np.int64)
    ok = np.all((idx >= 0) & (idx < np.array(shape)), axis=1)
    grid = np.zeros(shape, dtype=np.float32)
    idx = idx[ok]
    grid[idx[:, 0], idx[:, 1], idx[:, 2]] = 1.0
    return grid


def _correlate_translation(model_pts: np.ndarray, scan_pts: np.ndarray, voxel_m: float, peaks: int = 2
                           ) -> list[tuple[np.ndarray, float]]:
    """Translations t (best first) maximising the overlap of voxel occupancy of scan + t with the model."""
    from scipy import ndimage
    from scipy.signal import fftconvolve

    lo_m = model_pts.min(axis=0) - 2 * voxel_m
    shape_m = tuple(np.ceil((model_pts.max(axis=0) + 2 * voxel_m - lo_m) / voxel_m).astype(int))
    lo_s = scan_pts.min(axis=0) - 2 * voxel_m
    shape_s = tuple(np.ceil((scan_pts.max(axis=0) + 2 * voxel_m - lo_s) / voxel_m).astype(int))
    M = _occupancy(model_pts, voxel_m, lo_m, shape_m)
    M = ndimage.gaussian_filter(M, 0.7)        # a little tolerance for voxel quantisation
    S = _occupancy(scan_pts, voxel_m, lo_s, shape_s)
    C = fftconvolve(M, S[::-1, ::-1, ::-1], mode="full")
    out = []
    for _ in range(peaks):
        i = np.unravel_index(int(np.argmax(C)), C.shape)
        score = float(C[i])
        d = np.array(i) - (np.array(shape_s) - 1)
        out.append((lo_m - lo_s + d * voxel_m, score))
        sl = tuple(slice(max(0, a - 4), a + 5) for a in i)   # suppress this peak's neighbourhood
        C[sl] = -np.inf
    return out


def _fpfh_candidate(model_pts: np.ndarray, scan_pts: np.ndarray, voxel_m: float, seed: int) -> np.ndarray | None:
    import open3d as o3d

    reg = o3d.pipelines.registration

    def prep(pts):
        pc = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(pts))
        pc.estimate_normals(o3d.geometry.KDTreeSearchParamHybrid(radius=voxel_m * 2.5, max_nn=30))
        f = reg.compute_fpfh_feature(pc, o3d.geometry.KDTreeSearchParamHybrid(radius=voxel_m * 5, max_nn=100))
        return pc, f

    src, fs = prep(scan_pts)
    tgt, ft = prep(model_pts)
    o3d.utility.random.seed(seed)
    result = reg.registration_ransac_based_on_feature_matching(
        src, tgt, fs, ft, True, voxel_m * 1.5, reg.TransformationEstimationPointToPoint(False), 3,
        [reg.CorrespondenceCheckerBasedOnEdgeLength(0.9), reg.CorrespondenceCheckerBasedOnDistance(voxel_m * 1.5)],
        reg.RANSACConvergenceCriteria(30_000, 0.99))
    T = np.asarray(result.transformation)
    return None if np.allclose(T, np.eye(4)) and result.fitness == 0 else T


def voxel_pick(points: np.ndarray, voxel_m: float, limit: int | None = None,
               rng: np.random.Generator | None = None) -> np.ndarray:
    """Indices of one original point per occupied voxel (at most ``limit``, drawn evenly at random)."""
    if len(points) == 0:
        return np.zeros(0, dtype=np.int64)
    key = np.floor((points - points.min(axis=0)) / voxel_m).astype(np.int64)
    dims = key.max(axis=0) + 1
    flat = (key[:, 0] * dims[1] + key[:, 1]) * dims[2] + key[:, 2]
    _, first = np.unique(flat, return_index=True)
    if limit is not None and len(first) > limit:
        first = (rng or np.random.default_rng(0)).choice(first, limit, replace=False)
    return np.sort(first)


def free_space_violations(scene, points_model: np.ndarray, stations_model: np.ndarray, *,
                          margin_m: float = 0.05) -> np.ndarray:
    """Which points were seen *through* a model surface: the ray from their station meets the
    model more than ``margin_m`` before reaching them. ``scene``: an Open3D RaycastingScene."""
    import open3d as o3d

    d = points_model - stations_model
    r = np.linalg.norm(d, axis=1)
    ok = r > 1e-6
    dirs = np.zeros_like(d)
    dirs[ok] = d[ok] / r[ok, None]
    rays = np.hstack([stations_model, dirs]).astype(np.float32)
    t = scene.cast_rays(o3d.core.Tensor(rays, o3d.core.float32, o3d.core.Device("CPU:0")))["t_hit"].numpy()
    return ok & (t < r - margin_m)


def _scene(index):
    import open3d as o3d

    rec = index.records
    tri = np.stack([rec[:, 0:3], rec[:, 0:3] + rec[:, 3:6], rec[:, 0:3] + rec[:, 6:9]], axis=1)
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.core.Tensor(tri.reshape(-1, 3).astype(np.float32)),
                        o3d.core.Tensor(np.arange(len(tri) * 3, dtype=np.uint32).reshape(-1, 3)))
    return scene


def register_auto(index, points: np.ndarray, config: RegistrationConfig = DEFAULT_CONFIG, *,
                  point_station: np.ndarray | None = None, stations: np.ndarray | None = None,
                  coarse_index=None) -> Registration:
    """Find ``T_model_from_survey`` without help.

    ``index``: a ``SurfaceIndex`` over the elements that should stand (cell about 0.3 m);
    ``points``: the survey's points (survey frame), thinned to a few million at most.
    ``stations`` (s, 3) scanner positions in the survey frame and ``point_station`` (n,) the
    station of each point, when known: poses that put points behind model surfaces (seen
    through a wall or slab) are then marked down, which tells a building from its mirror.
    """
    started = time.perf_counter()
    rng = np.random.default_rng(config.seed)
    timings: dict[str, float] = {}
    v = config.coarse_voxel_m
    model_sample, model_normals = _sample_index(index, v / 1.5, rng)
    model_coarse = voxel_downsample(model_sample, v)
    scan_coarse = voxel_downsample(points, v)
    if len(scan_coarse) < 50 or len(model_coarse) < 50:
        raise RegistrationError(N_("too little to register: {survey} survey and {model} model voxels of {voxel} m"),
                                survey=len(scan_coarse), model=len(model_coarse), voxel=v)
    if coarse_index is None:
        coarse_index = _coarse_index(index)
    timings["prepare_s"] = time.perf_counter() - started

    # --- candidates: level by the horizontal surfaces, yaw by the wall grid, shift by correlation
    t0 = time.perf_counter()
    n_scan = _normals(scan_coarse, v * 2.5)
    up = _up_vector(n_scan)
    R_level = _level(up)
    scan_lv = apply(_rigid(R_level), scan_coarse)
    a_scan = _grid_angle(n_scan @ R_level.T)
    a_model = _grid_angle(model_normals)
    if a_scan is not None and a_model is not None:
        yaws = [a_model - a_scan + k * math.pi / 2 for k in range(4)]
    else:
        yaws = [k * math.pi / 4 for k in range(8)]
    # the survey's dense core only: terrain far from the building blurs the correlation
    span = model_coarse.max(axis=0) - model_coarse.min(axis=0)
    reach = 0.5 * float(np.linalg.norm(span[:2])) + 4.0
    centre = np.median(scan_lv, axis=0)
    core = np.linalg.norm((scan_lv - centre)[:, :2], axis=1) < reach
    candidates: list[tuple[str, np.ndarray]] = []
    for yaw in yaws:
        c, s = math.cos(yaw), math.sin(yaw)
        R = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]) @ R_level
        for rank, (t, _) in enumerate(_correlate_translation(model_coarse, apply(_rigid(R), scan_coarse[core]),
                                                             config.correlation_voxel_m, peaks=2)):
            T = np.eye(4)
            T[:3, :3], T[:3, 3] = R, t
            candidates.append((f"grid yaw {math.degrees(yaw) % 360:.1f} peak {rank + 1}", T))
    timings["grid_candidates_s"] = time.perf_counter() - t0

    # --- refine every candidate coarsely
    t0 = time.perf_counter()
    src_coarse = points[voxel_pick(points, v, 6_000, rng)]
    src_mid = points[voxel_pick(points, 0.1, 40_000, rng)]
    scored = _refine(candidates, index, coarse_index, src_coarse, src_mid, config)
    timings["refine_candidates_s"] = time.perf_counter() - t0
    if config.use_fpfh and (not scored or scored[0][0] < config.fpfh_below_fitness):
        t0 = time.perf_counter()
        T_f = _fpfh_candidate(model_coarse, scan_coarse[core], v, config.seed)
        if T_f is not None:
            scored = sorted(scored + _refine([("fpfh+ransac", T_f)], index, coarse_index, src_coarse, src_mid,
                                             config), key=lambda x: -x[0])
        timings["fpfh_s"] = time.perf_counter() - t0

    # --- the best distinct poses, finely; then the evidence that tells them apart
    t0 = time.perf_counter()
    fine = voxel_pick(points, config.fine_voxel_m, config.max_icp_points, rng)
    src_fine = points[fine]
    scene = None
    if stations is not None and point_station is not None:
        scene = _scene(index)
        fine_stations = np.asarray(stations, dtype=np.float64)[np.asarray(point_station)[fine]]
    finals = []
    for _, name, T in _distinct(scored, 2):
        T3, _ = icp(index, src_fine, T, kernel_m=0.05, iterations=15)
        T3, _ = icp(index, src_fine, T3, kernel_m=0.02, iterations=20)
        T3, it = icp(index, src_fine, T3, kernel_m=0.015, iterations=30)
        fitness, rmse, overlap = evaluate(index, src_fine, T3, config)
        violations = 0.0
        if scene is not None:
            violations = float(free_space_violations(scene, apply(T3, src_fine), apply(T3, fine_stations)).mean())
        finals.append({"name": name, "T": T3, "fitness": fitness, "rmse": rmse, "overlap": overlap,
                       "iterations": it, "seen_through": violations, "score": fitness - violations})
    finals.sort(key=lambda f: -f["score"])
    timings["fine_icp_s"] = time.perf_counter() - t0
    best = finals[0]
    details = {"chosen": best["name"], "up_tilt_deg": round(math.degrees(math.acos(min(1.0, abs(up[2])))), 3),
               "seen_through": round(best["seen_through"], 5),
               "candidates": [{"name": n, "fitness_5cm": round(f, 4)} for f, n, _ in scored],
               "timings_s": {k: round(x, 3) for k, x in timings.items()},
               "points_used": {"coarse": len(src_coarse), "mid": len(src_mid), "fine": len(src_fine)}}
    if len(finals) > 1:
        runner = finals[1]
        dt, dr = pose_error(runner["T"], best["T"])
        # relative to the best score: clutter (points no pose explains) must not make a clear pose look ambiguous
        details["margin"] = round((best["score"] - runner["score"]) / max(best["score"], 1e-9), 5)
        details["runner_up"] = {"name": runner["name"], "fitness": round(runner["fitness"], 4),
                                "seen_through": round(runner["seen_through"], 5)}
        details["runner_up_offset"] = f"{dt:.2f} m / {dr:.1f} deg"
    details["seconds"] = round(time.perf_counter() - started, 3)
    return Registration("auto", best["T"], best["fitness"], best["rmse"], config.inlier_distance_m,
                        best["overlap"], details=details)


def _refine(candidates, index, coarse_index, src_coarse, src_mid, config, keep: int = 3):
    """Coarse ICP on every candidate; the ``keep`` best distinct ones on to the 10 cm stage."""
    coarse = []
    for name, T in candidates:
        T1, _ = icp(coarse_index, src_coarse, T, kernel_m=0.8, iterations=10)
        T1, _ = icp(coarse_index, src_coarse, T1, kernel_m=0.3, iterations=10)
        fit, _, _ = evaluate(coarse_index, src_coarse, T1, replace(config, inlier_distance_m=0.1))
        coarse.append((fit, name, T1))
    coarse.sort(key=lambda x: -x[0])
    scored = []
    for _, name, T1 in _distinct(coarse, keep):
        T2, _ = icp(index, src_mid, T1, kernel_m=0.1, iterations=10)
        fit, _, _ = evaluate(index, src_mid, T2, replace(config, inlier_distance_m=0.05))
        scored.append((fit, name, T2))
    scored.sort(key=lambda x: -x[0])
    return scored


def _distinct(scored, count: int, min_shift_m: float = 0.3, min_angle_deg: float = 2.0):
    """The best ``count`` candidates that are not the same pose."""
    out: list = []
    for item in scored:
        if all(_differs(item[2], o[2], min_shift_m, min_angle_deg) for o in out):
            out.append(item)
        if len(out) == count:
            break
    return out


def _differs(A: np.ndarray, B: np.ndarray, min_shift_m: float, min_angle_deg: float) -> bool:
    t, r = pose_error(A, B)
    return t > min_shift_m or r > min_angle_deg


def _coarse_index(index):
    from sitetwin.twin.distance import SurfaceIndex

    rec = index.records
    tri = np.stack([rec[:, 0:3], rec[:, 0:3] + rec[:, 3:6], rec[:, 0:3] + rec[:, 6:9]], axis=1)
    verts = tri.reshape(-1, 3)
    faces = np.arange(len(verts)).reshape(-1, 3)
    coarse = SurfaceIndex(verts, faces, index.record_element, cell_m=1.0)
    return coarse


def _sample_index(index, spacing_m: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Points (and their faces' normals) evenly on the indexed surfaces."""
    rec = index.records
    a, ab, ac = rec[:, 0:3], rec[:, 3:6], rec[:, 6:9]
    area = np.linalg.norm(np.cross(ab, ac), axis=1) / 2
    expected = area / spacing_m ** 2
    counts = np.floor(expected).astype(np.int64)
    counts += rng.random(len(expected)) < (expected - counts)
    which = np.repeat(np.arange(len(rec)), counts)
    u, w = rng.random(len(which)), rng.random(len(which))
    flip = u + w > 1
    u[flip], w[flip] = 1 - u[flip], 1 - w[flip]
    return a[which] + u[:, None] * ab[which] + w[:, None] * ac[which], rec[which, 9:12]


# ------------------------------------------------------------------------------------ similarity (7 DoF)
def similarity_fit(source: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares similarity mapping source (n, 3) onto target (n, 3): Umeyama (1991).

    Returns the 4x4 (``s R`` in its 3x3) and the scale ``s``."""
    source = np.asarray(source, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    cs, ct = source.mean(axis=0), target.mean(axis=0)
    a, b = source - cs, target - ct
    var_s = float((a * a).sum()) / len(a)
    if var_s <= 0:
        raise RegistrationError(N_("similarity fit: the source points all coincide; no scale can be fitted"))
    U, D, Vt = np.linalg.svd(b.T @ a / len(a))
    S = np.diag([1.0, 1.0, np.sign(np.linalg.det(U) * np.linalg.det(Vt))])
    R = U @ S @ Vt
    scale = float(np.trace(np.diag(D) @ S)) / var_s
    T = np.eye(4)
    T[:3, :3] = scale * R
    T[:3, 3] = ct - scale * R @ cs
    return T, scale


def transform_scale(T: np.ndarray) -> float:
    """The uniform scale of a similarity 4x4 (1 for a rigid transform)."""
    return float(np.cbrt(np.linalg.det(np.asarray(T, dtype=np.float64)[:3, :3])))


def _robust_extent(points: np.ndarray) -> float:
    lo, hi = np.quantile(points, [0.02, 0.98], axis=0)
    return float(np.linalg.norm(hi - lo))


def register_similarity(index, points: np.ndarray, config: RegistrationConfig = DEFAULT_CONFIG, *,
                        coarse_index=None, label: str | Phrase = SURVEY) -> Registration:
    """Find ``T_model_from_survey`` as a similarity (rotation, translation and a uniform scale) for a
    cloud whose units are unknown: a structure-from-motion model, a reality mesh without ground control.

    The scale is searched from the ratio of the cloud's and the model's extents, over
    ``[1/scale_range, scale_range]`` times it (the cloud may show only part of the model), in
    steps of ``2**(1/scale_steps_per_octave)``; each scale and wall-grid yaw gets its shift by
    occupancy correlation, the best are refined by point-to-plane ICP with a scale term. The scale's
    uncertainty is a block bootstrap over the final correspondences (2 m blocks). A fit is refused
    (``RegistrationError`` with the reason) when too few points match, when the geometry does not
    fix a scale (one plane, a single line of sight), or when the scale's uncertainty is too large.
    """
    started = time.perf_counter()
    rng = np.random.default_rng(config.seed)
    points = np.asarray(points, dtype=np.float64)
    v = config.coarse_voxel_m
    model_sample, model_normals = _sample_index(index, v / 1.5, rng)
    model_coarse = voxel_downsample(model_sample, v)
    if len(points) < 100 or len(model_coarse) < 50:
        raise RegistrationError(N_("{label}: too little to register: {n} survey points"), label=label, n=len(points))
    s0 = _robust_extent(model_coarse) / max(_robust_extent(points), 1e-12)
    S0 = np.diag([s0, s0, s0, 1.0])
    pts0 = points * s0
    scan_coarse = voxel_downsample(pts0, v)
    if coarse_index is None:
        coarse_index = _coarse_index(index)
    n_scan = _normals(scan_coarse, v * 2.5)
    a_model = _grid_angle(model_normals)
    octaves = math.log2(config.scale_range)
    steps = int(round(octaves * config.scale_steps_per_octave))
    factors = [2.0 ** (j / config.scale_steps_per_octave) for j in range(-steps, steps + 1)]
    half_step = 2.0 ** (0.75 / config.scale_steps_per_octave)
    # 1 m cells: 24 rotations x 25 scales of correlation stay seconds; ICP does the rest
    correlate = _Correlator(model_coarse, 2 * config.correlation_voxel_m,
                            pad_m=float(np.linalg.norm(np.ptp(scan_coarse, axis=0))) * max(factors))
    candidates: list[tuple[float, str, np.ndarray, float]] = []
    rotations = _manhattan_rotations(n_scan, a_model)

    def sweep(r: int, ks) -> list:
        rotated = apply(_rigid(rotations[r]), scan_coarse)
        out = []
        for k in ks:
            t, ratio = correlate(k * rotated)
            T = np.eye(4)
            T[:3, :3], T[:3, 3] = k * rotations[r], t
            out.append((ratio, f"scale x{k * s0:.5g} rotation {r}", T @ S0, k * s0))
        return out

    # every rotation at a few scales first (a quarter octave apart), then the best rotations finely
    per_rotation = [max(sweep(r, factors[::3]), key=lambda c: c[0]) + (r,) for r in range(len(rotations))]
    per_rotation.sort(key=lambda c: -c[0])
    for c in per_rotation[:8]:          # near-symmetric buildings give rotations in close pairs
        candidates += sweep(c[4], factors)
    candidates.sort(key=lambda c: -c[0])
    t_candidates = time.perf_counter() - started

    # coarse: Open3D's point-to-point ICP with scaling against points on the model (KD-tree, fast)
    import open3d as o3d

    o3r = o3d.pipelines.registration
    target = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(model_coarse))
    src_coarse = points[voxel_pick(pts0, v, 6000, rng)]
    source = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(src_coarse))
    bounds = {}
    coarse = []
    for _, name, T in _distinct([(c[0], c[1], c[2]) for c in candidates], 12, min_angle_deg=5.0):
        k = transform_scale(T)
        bounds[name] = (k / half_step, k * half_step)
        T1 = T
        for dist in (1.0, 0.4):
            T1 = np.asarray(o3r.registration_icp(source, target, dist, T1, o3r.TransformationEstimationPointToPoint(
                with_scaling=True), o3r.ICPConvergenceCriteria(max_iteration=30)).transformation)
        if not bounds[name][0] / half_step <= transform_scale(T1) <= bounds[name][1] * half_step:
            continue          # ran away in scale (a cloud shrinking onto one surface)
        fit = evaluate(coarse_index, src_coarse, T1, replace(config, inlier_distance_m=0.1))[0]
        coarse.append((fit, name, T1))
    coarse.sort(key=lambda x: -x[0])
    src_mid = points[voxel_pick(pts0, 0.1, 15_000, rng)]
    scored = []
    for _, name, T1 in _distinct(coarse, 4):
        T2, _ = icp(index, src_mid, T1, kernel_m=0.1, iterations=10, with_scale=True)
        scored.append((evaluate(index, src_mid, T2, replace(config, inlier_distance_m=0.05))[0], name, T2))
    scored.sort(key=lambda x: -x[0])
    if not scored:
        raise RegistrationError(N_("{label}: automatic similarity registration found no pose: every candidate "
                                   "scale ran away; give control points (--control-points CP.csv)"), label=label)
    fine = voxel_pick(pts0, config.fine_voxel_m, min(config.max_icp_points, 25_000), rng)
    src_fine = points[fine]
    finals = []
    for _, name, T in _distinct(scored, 3):
        T3, _ = icp(index, src_fine, T, kernel_m=0.05, iterations=10, with_scale=True)
        T3, _ = icp(index, src_fine, T3, kernel_m=0.02, iterations=15, with_scale=True)
        T3, it = icp(index, src_fine, T3, kernel_m=0.015, iterations=25, with_scale=True)
        fitness, rmse, overlap = evaluate(index, src_fine, T3, config)
        finals.append({"name": name, "T": T3, "fitness": fitness, "rmse": rmse, "overlap": overlap,
                       "iterations": it})
    finals.sort(key=lambda f: -f["fitness"])
    # two candidates that converged onto one pose are one answer, not two
    finals = [f for i, f in enumerate(finals) if all(_differs(f["T"], g["T"], 0.3, 2.0) for g in finals[:i])]
    best = finals[0]
    T = best["T"]
    scale = transform_scale(T)
    quality = scale_quality(index, src_fine, T, config, rng=rng)
    details = {"chosen": best["name"], "scale": scale, **quality,
               "initial_scale": s0, "scale_search": [min(factors) * s0, max(factors) * s0],
               "candidates": len(candidates), "points_used": {"coarse": len(src_coarse), "mid": len(src_mid),
                                                               "fine": len(src_fine)},
               "timings_s": {"candidates_s": round(t_candidates, 3)}}
    if len(finals) > 1:
        runner = finals[1]
        dt, dr = pose_error(runner["T"], T, points=apply(T, src_fine)[[0, -1]])
        details["margin"] = round(best["fitness"] - runner["fitness"], 5)
        details["runner_up"] = {"name": runner["name"], "fitness": round(runner["fitness"], 4),
                                "scale": transform_scale(runner["T"])}
        details["runner_up_offset"] = f"{dt:.2f} m / {dr:.1f} deg"
    details["seconds"] = round(time.perf_counter() - started, 3)
    result = Registration("similarity", T, best["fitness"], best["rmse"], config.inlier_distance_m, best["overlap"],
                          details=details)
    check_scale(result, config, label=label)
    return result


def scale_quality(index, points: np.ndarray, T: np.ndarray, config: RegistrationConfig = DEFAULT_CONFIG, *,
                  rng: np.random.Generator | None = None, block_m: float = 2.0) -> dict:
    """How well ``points`` placed by the similarity ``T`` fix its scale.

    ``scale_sigma``: relative 1-sigma of the scale from a block bootstrap of the linearised 7-DoF
    point-to-plane system over the correspondences within ``inlier_distance_m`` (blocks of
    ``block_m``, so neighbouring points do not count as independent evidence); ``scale_lever``: the
    lever arm the geometry gives the scale once rotation and translation are free, over the
    correspondences' RMS radius (0 for a plane, about 0.5 for a room seen whole);
    ``scale_inliers``: correspondences used.
    """
    rng = rng or np.random.default_rng(0)
    system = _icp_system(index, points, T, max(config.inlier_distance_m, 0.015), True)
    if system is None:
        return {"scale_inliers": 0, "scale_sigma": float("inf"), "scale_lever": 0.0}
    J, d, w, c, p = system
    A = (J * w[:, None]).T @ J
    a, A6 = A[:6, 6], A[:6, :6]
    try:
        schur = float(A[6, 6] - a @ np.linalg.solve(A6 + 1e-12 * np.eye(6), a))
    except np.linalg.LinAlgError:
        schur = 0.0
    radius = math.sqrt(float((w * ((p - c) ** 2).sum(axis=1)).sum() / max(w.sum(), 1e-12)))
    lever = math.sqrt(max(schur, 0.0) / max(float(w.sum()), 1e-12)) / max(radius, 1e-12)
    key = np.floor(p / block_m).astype(np.int64)
    _, block = np.unique(key, axis=0, return_inverse=True)
    block = block.reshape(-1)
    nb = int(block.max()) + 1
    draws = []
    for _ in range(config.bootstrap_samples):
        mult = rng.multinomial(nb, np.full(nb, 1.0 / nb))[block] * w
        Ab = (J * mult[:, None]).T @ J
        bb = -(J * mult[:, None]).T @ d
        try:
            draws.append(float(np.linalg.solve(Ab + 1e-9 * np.eye(7), bb)[6]))
        except np.linalg.LinAlgError:
            continue
    sigma = float(np.std(draws)) if len(draws) > 10 else float("inf")
    return {"scale_inliers": int((np.abs(d) < config.inlier_distance_m).sum()), "scale_sigma": sigma,
            "scale_lever": round(lever, 4), "scale_blocks": nb}


def check_scale(reg: Registration, config: RegistrationConfig = DEFAULT_CONFIG, *, label: str | Phrase = SURVEY
                ) -> Registration:
    """Refuse a similarity whose scale is not determined: too few inliers, degenerate geometry, or
    an uncertainty over ``max_scale_uncertainty``."""
    d = reg.details
    scale = d.get("scale", transform_scale(reg.T_model_from_survey))
    if d.get("scale_inliers", 0) < config.min_scale_inliers:
        raise RegistrationError(N_("{label}: the scale cannot be determined (fit x{scale:.6g}): only {inliers} points "
                                   "lie within {distance_cm:.0f} cm of the model after the fit (need {need}); give "
                                   "control points (--control-points CP.csv)"), label=label, scale=scale,
                                inliers=d.get("scale_inliers", 0), distance_cm=config.inlier_distance_m * 100,
                                need=config.min_scale_inliers)
    if d.get("scale_lever", 0.0) < config.min_scale_lever:
        lever = d.get("scale_lever", 0.0)
        raise RegistrationError(N_("{label}: the scale cannot be determined (fit x{scale:.6g}): the matched surfaces "
                                   "are degenerate (scale lever {lever:.3f} of the cloud's radius, need {need}): they "
                                   "hold one plane or one direction only; survey more of the model or give control "
                                   "points"), label=label, scale=scale, lever=lever, need=config.min_scale_lever)
    sigma = d.get("scale_sigma", float("inf"))
    if not math.isfinite(sigma) or sigma > config.max_scale_uncertainty:
        raise RegistrationError(N_("{label}: the scale cannot be determined (fit x{scale:.6g}): its uncertainty is "
                                   "{sigma:.3%} (1 sigma, bootstrap), over the {allowed:.2%} allowed; give control "
                                   "points"), label=label, scale=scale, sigma=sigma,
                                allowed=config.max_scale_uncertainty)
    return reg


def _manhattan_rotations(normals: np.ndarray, a_model: float | None) -> list[np.ndarray]:
    """Rotations that level a cloud of unknown orientation and turn its wall grid onto the model's.

    Up is one of the principal directions of the surface normals (either sign); for each, the
    yaw comes from the wall grid as for a levelled scan (four candidates, or eight without a
    grid): up to 24 rotations, the cube's symmetries, for a building of boxes."""
    w, V = np.linalg.eigh(normals.T @ normals)
    out = []
    for i in np.argsort(-w):
        for sign in (1.0, -1.0):
            axis = sign * V[:, i]
            near = normals[np.abs(normals @ axis) > math.cos(math.radians(20.0))]
            if len(near) >= 10:
                _, W = np.linalg.eigh(near.T @ near)
                refined = W[:, -1] if W[:, -1] @ axis > 0 else -W[:, -1]
                axis = refined
            R_level = _level(axis)
            a_scan = _grid_angle(normals @ R_level.T)
            yaws = ([a_model - a_scan + k * math.pi / 2 for k in range(4)] if a_scan is not None and a_model is not None
                    else [k * math.pi / 4 for k in range(8)])
            for yaw in yaws:
                c, s = math.cos(yaw), math.sin(yaw)
                out.append(np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]) @ R_level)
    return out


class _Correlator:
    """Occupancy cross-correlation against one model grid, its spectrum computed once.

    Called with scan points (model orientation and scale, any position), returns the
    translation putting them best on the model and the cosine similarity of the two occupancies there."""

    def __init__(self, model_pts: np.ndarray, voxel_m: float, pad_m: float):
        from scipy import fft, ndimage

        self.voxel = voxel_m
        self.lo = model_pts.min(axis=0) - 2 * voxel_m
        shape_m = np.ceil((model_pts.max(axis=0) + 2 * voxel_m - self.lo) / voxel_m).astype(int)
        M = ndimage.gaussian_filter(_occupancy(model_pts, voxel_m, self.lo, tuple(shape_m)), 0.7).astype(np.float32)
        self.max_scan = np.full(3, int(math.ceil(pad_m / voxel_m)) + 4)
        self.shape = tuple(int(fft.next_fast_len(int(a + b), real=True)) for a, b in zip(shape_m, self.max_scan))
        self.F = fft.rfftn(M, self.shape, workers=-1)
        self.norm = float((M * M).sum())

    def __call__(self, scan_pts: np.ndarray) -> tuple[np.ndarray, float]:
        from scipy import fft

        lo_s = scan_pts.min(axis=0) - 2 * self.voxel
        shape_s = np.minimum(np.ceil((scan_pts.max(axis=0) + 2 * self.voxel - lo_s) / self.voxel).astype(int),
                             self.max_scan)
        S = _occupancy(scan_pts, self.voxel, lo_s, tuple(shape_s))
        n = float(S.sum())
        if n == 0:
            return np.zeros(3), 0.0
        # correlation = convolution with the flipped scan grid
        C = fft.irfftn(self.F * fft.rfftn(S[::-1, ::-1, ::-1], self.shape, workers=-1), self.shape, workers=-1)
        i = np.unravel_index(int(np.argmax(C)), C.shape)
        d = np.array(i) - (shape_s - 1)
        # cosine similarity of the occupancies: the share explained alone favours a cloud shrunk small
        return self.lo - lo_s + d * self.voxel, float(C[i]) / math.sqrt(n * self.norm)


# ------------------------------------------------------------------------------------ georeferenced surveys
@dataclass(frozen=True)
class GeoPlacement:
    """Where a survey's file CRS and the model's georeference put the cloud.

    T_local_from_file : (4, 4) the chain file CRS -> (pyproj) -> the model's map CRS -> world
                        (inverse map conversion) -> site local frame, fitted as an affine map
                        over the cloud's extent (``linearisation_mm``: its worst residual there)
    """

    T_local_from_file: np.ndarray
    file_crs: str
    model_crs: str
    source: str
    linearisation_mm: float

    def summary(self) -> dict:
        return {"file_crs": self.file_crs, "model_crs": self.model_crs, "source": self.source,
                "linearisation_mm": round(self.linearisation_mm, 4)}


def georeferenced_placement(file_crs, georef, origin_m: np.ndarray, bounds_file: np.ndarray, *,
                            model_bounds_local: np.ndarray | None = None, label: str | Phrase = SURVEY,
                            config: RegistrationConfig = DEFAULT_CONFIG) -> GeoPlacement:
    """Place a cloud by its CRS (``file_crs``: a pyproj CRS, WKT or 'EPSG:xxxx') and the model's
    ``georef`` (``bim.georef.Georeference``): returns the transform to the site's local frame.

    Horizontal coordinates go through pyproj (any CRS it knows, CGCS2000 Gauss-Krüger zones
    included); heights are taken as they are, in the CRS's vertical unit (no geoid change).
    Refuses (``RegistrationError`` naming ``label``) a CRS pyproj cannot transform into the
    model's, or one that puts the cloud farther than ``georef_max_distance_m`` from the model.
    """
    from pyproj import CRS, Transformer
    from pyproj.exceptions import CRSError, ProjError

    try:
        src = file_crs if isinstance(file_crs, CRS) else CRS.from_user_input(file_crs)
    except CRSError as exc:
        raise RegistrationError(N_("{label}: its CRS cannot be read ({reason}); name it with --crs EPSG:XXXX"),
                                label=label, reason=str(exc)) from None
    src_name = _crs_label(src)
    dst = None
    if georef.crs_name:
        try:
            dst = CRS.from_user_input(georef.crs_name)
        except CRSError:
            dst = None
    if dst is None:
        raise RegistrationError(N_("{label}: the file is in {file_crs} but the model's map conversion names no CRS "
                                   "pyproj knows ({model_crs!r}); place it with --register auto"), label=label,
                                file_crs=src_name, model_crs=georef.crs_name)
    lo, hi = np.asarray(bounds_file[0], float), np.asarray(bounds_file[1], float)
    g = np.stack(np.meshgrid(*[np.linspace(lo[i], hi[i], 4 if i < 2 else 2) for i in range(3)], indexing="ij"),
                 axis=-1).reshape(-1, 3)
    src_h = src.sub_crs_list[0] if src.is_compound else src
    dst_h = dst.sub_crs_list[0] if dst.is_compound else dst
    try:
        tr = Transformer.from_crs(src_h, dst_h, always_xy=True)
        X, Y = tr.transform(g[:, 0], g[:, 1], errcheck=True)
    except (ProjError, CRSError) as exc:
        raise RegistrationError(N_("{label}: its CRS {file_crs} cannot be transformed into the model's {model_crs} "
                                   "({reason})"), label=label, file_crs=src_name, model_crs=_crs_label(dst),
                                reason=str(exc).splitlines()[0]) from None
    X, Y = np.asarray(X, float), np.asarray(Y, float)
    if not (np.isfinite(X).all() and np.isfinite(Y).all()):
        raise RegistrationError(N_("{label}: in its CRS {file_crs} the cloud lies outside the model's CRS "
                                   "{model_crs}; the file's CRS does not match the model's"), label=label,
                                file_crs=src_name, model_crs=_crs_label(dst))
    mx = dst_h.axis_info[0].unit_conversion_factor if dst_h.axis_info else 1.0
    z_unit = _vertical_unit(src)
    mapped = np.column_stack([X * mx, Y * mx, g[:, 2] * z_unit])
    T_local_from_map = np.eye(4)
    T_local_from_map[:3, 3] = -np.asarray(origin_m, float)
    T_local_from_map = T_local_from_map @ georef.T_world_from_map()
    local = apply(T_local_from_map, mapped)
    # affine fit of the whole chain over the cloud's extent (exact for the model's own CRS)
    A = np.hstack([g - g.mean(axis=0), np.ones((len(g), 1))])
    coef, *_ = np.linalg.lstsq(A, local, rcond=None)
    T = np.eye(4)
    T[:3, :3] = coef[:3].T
    T[:3, 3] = coef[3] - coef[:3].T @ g.mean(axis=0)
    resid = float(np.linalg.norm(apply(T, g) - local, axis=1).max())
    if model_bounds_local is not None:
        mlo, mhi = np.asarray(model_bounds_local[0], float), np.asarray(model_bounds_local[1], float)
        centre = apply(T, ((lo + hi) / 2)[None])[0]
        gap = float(np.linalg.norm(np.maximum(0, np.maximum(mlo - centre, centre - mhi))))
        if gap > config.georef_max_distance_m:
            raise RegistrationError(
                N_("{label}: read in its CRS {file_crs}, the cloud lies {gap_km:,.1f} km from the model (georeferenced "
                   "in {model_crs}): the file's CRS does not match the model's; check the file's CRS (or --crs), or "
                   "place it with --register auto"), label=label, file_crs=src_name, gap_km=gap / 1000,
                model_crs=_crs_label(dst))
    return GeoPlacement(T, src_name, _crs_label(dst), georef.source, resid * 1000)


def _crs_label(crs) -> str:
    code = crs.to_epsg(min_confidence=70)
    return f"EPSG:{code}" if code else crs.name


def _vertical_unit(crs) -> float:
    """Metres per unit of a CRS's heights: its vertical axis, else its horizontal one (LAS keeps one unit)."""
    if crs.is_compound and len(crs.sub_crs_list) > 1 and crs.sub_crs_list[1].axis_info:
        return crs.sub_crs_list[1].axis_info[0].unit_conversion_factor
    axes = crs.axis_info
    if len(axes) >= 3:
        return axes[2].unit_conversion_factor
    if crs.is_projected and axes:
        return axes[0].unit_conversion_factor
    return 1.0


def register_georeferenced(index, points: np.ndarray, placement: GeoPlacement,
                           config: RegistrationConfig = DEFAULT_CONFIG, *, coarse_index=None) -> Registration:
    """Start from the georeference (``placement``) and refine by ICP (from 0.8 m down to 1.5 cm).

    Reports the offset between the two (``details['georef_offset_m']``: the largest displacement
    of the cloud's extent between them, ``georef_offset_deg``, ``georef_shift_m``: the centroid's
    shift). When they differ by more than ``georef_max_offset_m`` it says so
    (``details['georef_disagrees']``) and keeps the refined pose only when its fitness beats the
    georeference's by ``georef_min_gain`` without a worse RMSE; otherwise the georeference's.
    """
    started = time.perf_counter()
    rng = np.random.default_rng(config.seed)
    T0 = placement.T_local_from_file
    placed = apply(T0, points)
    if coarse_index is None:
        coarse_index = _coarse_index(index)
    src_coarse = points[voxel_pick(placed, config.coarse_voxel_m, 6000, rng)]
    src_mid = points[voxel_pick(placed, 0.1, 40_000, rng)]
    src_fine = points[voxel_pick(placed, config.fine_voxel_m, config.max_icp_points, rng)]
    f0, r0, o0 = evaluate(index, src_fine, T0, config)
    T, _ = icp(coarse_index, src_coarse, T0, kernel_m=0.8, iterations=10)
    T, _ = icp(coarse_index, src_coarse, T, kernel_m=0.3, iterations=10)
    T, _ = icp(index, src_mid, T, kernel_m=0.1, iterations=10)
    T, _ = icp(index, src_fine, T, kernel_m=0.05, iterations=15)
    T, _ = icp(index, src_fine, T, kernel_m=0.02, iterations=20)
    T, it = icp(index, src_fine, T, kernel_m=0.015, iterations=30)
    f1, r1, o1 = evaluate(index, src_fine, T, config)
    lo, hi = placed.min(axis=0), placed.max(axis=0)
    corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
    T0_inv = np.linalg.inv(T0)
    dt, dr = pose_error(T @ T0_inv, np.eye(4), points=corners)
    shift = (apply(T, src_fine) - apply(T0, src_fine)).mean(axis=0)
    disagrees = dt > config.georef_max_offset_m
    better = f1 >= f0 + config.georef_min_gain and (not math.isfinite(r0) or r1 <= r0 + 1e-4)
    keep_refined = not disagrees or better
    chosen = (T, f1, r1, o1) if keep_refined else (T0, f0, r0, o0)
    details = {"georeference": placement.summary(),
               "georef_offset_m": round(dt, 5), "georef_offset_deg": round(dr, 5),
               "georef_shift_m": [round(float(x), 5) for x in shift],
               "georef_fitness": round(f0, 4), "georef_rmse_mm": round(r0 * 1000, 3) if math.isfinite(r0) else None,
               "refined_fitness": round(f1, 4), "refined_rmse_mm": round(r1 * 1000, 3) if math.isfinite(r1) else None,
               "georef_disagrees": bool(disagrees), "kept": "refined" if keep_refined else "georeference",
               "iterations": it, "seconds": round(time.perf_counter() - started, 3)}
    return Registration("georeferenced", chosen[0], chosen[1], chosen[2], config.inlier_distance_m, chosen[3],
                        details=details)
