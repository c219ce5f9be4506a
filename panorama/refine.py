"""Refine a panorama's pose from image content: align the model's predicted edges with the photo's.

Two refinements, both accepted only when the photo clearly agrees with the model:

- :func:`refine_orientation`, for a pose given or taken from a scan station: only the rotation.
  Under a pure rotation the model's edges move rigidly over the sphere, so they are ray-cast once
  (an element map at the starting pose) and each candidate rotation only re-projects their
  bearings onto a distance transform of the photo's edges (a truncated chamfer score). A
  coarse-to-fine grid search over yaw, pitch and roll keeps the best; the result is accepted only
  when it clearly improves the score and lies inside the search range, so a photo that does not
  show the model leaves the pose unchanged.
- :func:`refine_pose`, for a pose solved from control points: rotation and camera centre together.
  Control points clicked at 1 px leave the centre uncertain by centimetres when they are far
  (the solver reports how much); the edges of near columns, slab edges and openings move by
  several pixels for a centimetre of camera motion, so they fix it. The model's edge pixels are
  lifted to 3D with the element map's depth, matched to the nearest photo edge (sub-pixel, along
  the photo's gradient), and the pose minimises their point-to-edge distances together with the
  control points' pixel residuals (Levenberg-Marquardt), re-matching after each step. The
  control points keep the pose honest: the change is accepted only when it lies within what the
  control points allow at a stated click noise (a chi-square gate on the change) and clearly
  more of the model's edges are found in the photo than chance would put near its edges.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sitetwin.data.errors import Note
from sitetwin.data.i18n import N_
from sitetwin.panorama.camera import (
    bearing_to_equirect,
    check_transform,
    equirect_to_bearing,
    pixel_bearings,
    rotation_from_ypr,
)

# why a refinement was or was not accepted (Refinement.reason), as people read it
ACCEPTED = N_("accepted")
TOO_FEW_EDGES = N_("only {n} predicted edge pixels; too few to align on")


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
class PoseRefineConfig:
    """Full-pose refinement settings (rotation and camera centre, anchored by control points)."""

    work_width: int = 4096            # (px) panorama width the matching works at (at most the photo's)
    iterations: int = 6               # (count) most match / solve rounds per level (1/8, 1/4, 1/2, full width)
    match_px: float = 3.0             # (px, at work width) model edges farther than this from a photo edge: unmatched
    # (count) the edges together weigh as much as this many control-point pixel residuals: their
    # errors are correlated along each edge, so tens of thousands of edge pixels are not that many
    # independent measurements
    edge_weight: float = 72.0
    click_sigma_px: float = 2.0       # (px) least click noise assumed in the gate (more when the residuals show more)
    gate_chi2: float = 22.46          # chi-square, 6 degrees of freedom, 0.999: largest change accepted
    min_edge_points: int = 500        # (count) fewer predicted edge pixels: too little to align on
    # (0-1) share of the model's edges that must be found in the photo beyond what chance gives (a
    # photo dense with edges, foliage say, puts a third of any edges near one of its own): below
    # it, the photo does not show the model
    min_edge_lift: float = 0.3
    converged_m: float = 1e-4         # (m) a round that moves the centre less than this (and turns < 1e-3 deg) ends


DEFAULT_POSE_REFINE_CONFIG = PoseRefineConfig()


@dataclass(frozen=True)
class Refinement:
    T_model_from_camera: np.ndarray   # refined (or, when not accepted, the starting) pose
    accepted: bool
    delta_ypr_deg: tuple[float, float, float]
    score_before_px: float            # mean truncated distance of model edges to photo edges
    score_after_px: float
    edge_points: int
    reason: str                       # a data.errors.Note: English as a str, the reader's language when shown
    method: str = "orientation"       # orientation | pose
    delta_position_m: tuple[float, float, float] = (0.0, 0.0, 0.0)
    matched_fraction: float | None = None   # pose: model edges found in the photo at the result
    chance_fraction: float | None = None    # pose: what would be found by chance (photo pixels near an edge)
    agreement_chi2: float | None = None     # pose: the change measured against the control points
    iterations: int = 0


def _photo_at(photo: np.ndarray, width: int | None = None) -> np.ndarray:
    """The photo checked to be an equirectangular RGB array, resized to ``width`` when given."""
    import cv2

    photo = np.asarray(photo)
    if photo.ndim != 3 or photo.shape[1] != 2 * photo.shape[0]:
        raise ValueError(f"photo must be an equirectangular (h, 2h, 3) image, got {photo.shape}")
    if width is None or photo.shape[1] == width:
        return photo
    return cv2.resize(photo, (width, width // 2), interpolation=cv2.INTER_AREA)


def refine_orientation(photo: np.ndarray, mesh, T_model_from_camera, *, scene=None,
                       config: RefineConfig = DEFAULT_REFINE_CONFIG) -> Refinement:
    """Refine the rotation of ``T_model_from_camera`` so the model's edges meet the photo's edges."""
    import cv2

    from sitetwin.panorama.element_map import element_map
    from sitetwin.panorama.overlay import boundaries, photo_edges

    T0 = check_transform(T_model_from_camera)
    W = int(config.work_width)
    H = W // 2
    edges = photo_edges(_photo_at(photo, W))
    dist = np.minimum(cv2.distanceTransform((~edges).astype(np.uint8), cv2.DIST_L2, 3),
                      config.truncate_px).astype(np.float32)
    emap = element_map(mesh, T0, W, H, scene=scene)
    model_edges = boundaries(emap.element_index, emap.depth_m) & (emap.element_index >= 0)
    rows, cols = np.nonzero(model_edges)
    if len(rows) < config.min_edge_points:
        return Refinement(T0, False, (0.0, 0.0, 0.0), math.nan, math.nan, int(len(rows)),
                          Note(TOO_FEW_EDGES, n=len(rows)))
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
    ypr = (float(best[0]), float(best[1]), float(best[2]))
    if gain < config.min_gain:
        return Refinement(T0, False, ypr, before, best_score, int(len(rows)),
                          Note(N_("no clear improvement ({gain_pct:.1f} % < {min_gain_pct:.0f} %)"),
                               gain_pct=100 * gain, min_gain_pct=100 * config.min_gain))
    if at_edge:
        return Refinement(T0, False, ypr, before, best_score, int(len(rows)),
                          Note(N_("the best rotation lies at the edge of the search range: not trusted")))
    T = T0.copy()
    T[:3, :3] = T0[:3, :3] @ rotation_from_ypr(*best)
    return Refinement(T, True, ypr, before, best_score, int(len(rows)), Note(ACCEPTED))


def _photo_edge_points(image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The photo's edges: (h, w) bool mask, (n, 2) sub-pixel positions and (n, 2) unit normals of its pixels.

    Each edge pixel is moved along its gradient to the peak of the gradient magnitude (a parabola
    through it and its two neighbours across the edge), so edges are placed to a fraction of a pixel.
    """
    import cv2

    from sitetwin.panorama.overlay import photo_edges

    edges = photo_edges(image)
    gray = cv2.GaussianBlur(cv2.cvtColor(np.asarray(image, np.uint8), cv2.COLOR_RGB2GRAY), (0, 0), 1.5)
    gray = gray.astype(np.float32)
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1)
    mag = np.hypot(gx, gy)
    h, w = edges.shape
    r, c = np.nonzero(edges)
    normal = np.stack([gx[r, c], gy[r, c]], 1).astype(np.float64)
    normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-9)
    step = np.rint(normal).astype(int)                       # the neighbour across the edge
    m0 = mag[r, c]
    m_minus = mag[np.clip(r - step[:, 1], 0, h - 1), (c - step[:, 0]) % w]
    m_plus = mag[np.clip(r + step[:, 1], 0, h - 1), (c + step[:, 0]) % w]
    curvature = m_minus - 2 * m0 + m_plus
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(curvature < -1e-6, 0.5 * (m_minus - m_plus) / curvature, 0.0)
    t = np.clip(t, -0.5, 0.5)
    position = np.stack([c + 0.5, r + 0.5], 1) + t[:, None] * step
    return edges, position, normal


def _model_edge_points(emap) -> tuple[np.ndarray, np.ndarray]:
    """Where the element map's edges lie (:func:`panorama.overlay.boundary_masks`): (n, 2) pixel
    coordinates on the boundary between the two pixels, and (n,) the range of the nearer side, which
    owns the edge (an element, not the sky)."""
    from sitetwin.panorama.overlay import boundary_masks

    right, down = boundary_masks(emap.element_index, emap.depth_m)
    d = np.where(np.isfinite(emap.depth_m), emap.depth_m, np.inf).astype(np.float64)
    w = d.shape[1]
    r1, c1 = np.nonzero(right)
    r2, c2 = np.nonzero(down)
    uv = np.concatenate([np.stack([(c1 + 1.0) % w, r1 + 0.5], 1), np.stack([c2 + 0.5, r2 + 1.0], 1)])
    near = np.concatenate([np.minimum(d[r1, c1], d[r1, (c1 + 1) % w]), np.minimum(d[r2, c2], d[r2 + 1, c2])])
    ok = np.isfinite(near)
    return uv[ok], near[ok]


class _PhotoEdgeField:
    """A photo's edges at one width, for matching: sub-pixel positions, normals, and for every pixel
    the distance to the nearest edge pixel and which one it is."""

    def __init__(self, photo: np.ndarray, width: int):
        import cv2

        self.width, self.height = width, width // 2
        edges, self.position, self.normal = _photo_edge_points(_photo_at(photo, width))
        self.dist, self.labels = cv2.distanceTransformWithLabels((~edges).astype(np.uint8), cv2.DIST_L2, 5,
                                                                 labelType=cv2.DIST_LABEL_PIXEL)
        r, c = np.nonzero(edges)
        self.which = np.zeros(int(self.labels.max()) + 1, np.int64)     # label -> index of its edge pixel
        self.which[self.labels[r, c]] = np.arange(len(r))

    def match(self, mesh, T: np.ndarray, match_px: float, scene=None):
        """The model's edges seen from ``T`` matched to this photo's: their 3D points, the matched
        edge positions and normals; the mean truncated distance, the matched share, the edge count."""
        from sitetwin.panorama.element_map import element_map

        emap = element_map(mesh, T, self.width, self.height, scene=scene)
        muv, rng = _model_edge_points(emap)
        col = np.floor(muv[:, 0]).astype(int) % self.width
        row = np.clip(np.floor(muv[:, 1]).astype(int), 0, self.height - 1)
        d = self.dist[row, col]
        near = d <= match_px
        k = self.which[self.labels[row[near], col[near]]]
        X = T[:3, 3] + (equirect_to_bearing(muv[near], self.width, self.height) * rng[near, None]) @ T[:3, :3].T
        score = float(np.minimum(d, match_px).mean()) if len(d) else math.nan
        return X, self.position[k], self.normal[k], score, float(near.mean()) if len(d) else 0.0, len(muv)


def _wrap(du: np.ndarray, width: float) -> np.ndarray:
    return (du + width / 2) % width - width / 2


def refine_pose(photo: np.ndarray, mesh, T_model_from_camera, uv, xyz_m, *, scene=None,
                config: PoseRefineConfig = DEFAULT_POSE_REFINE_CONFIG) -> Refinement:
    """Refine rotation and camera centre of a control-point pose so the model's edges meet the photo's.

    uv : (n, 2) the control points' pixels in ``photo`` (its own size); xyz_m : (n, 3) their model
    points. Pass the inliers only. Matching runs coarse to fine (an eighth, a quarter, a half, then
    the full work width), so starting errors of a degree or two are caught. The result is the starting
    pose, unchanged, when it is not accepted.
    """
    from scipy.optimize import least_squares
    from scipy.spatial.transform import Rotation

    from sitetwin.panorama.camera import ypr_from_rotation

    T0 = check_transform(T_model_from_camera)
    photo = _photo_at(photo)
    Wp, Hp = photo.shape[1], photo.shape[0]
    uv = np.asarray(uv, np.float64).reshape(-1, 2)
    xyz = np.asarray(xyz_m, np.float64).reshape(-1, 3)
    if len(uv) != len(xyz) or len(uv) < 3:
        raise ValueError(f"refine_pose needs at least 3 control points (pixels and model points), got {len(uv)}")
    W = min(int(config.work_width), Wp)

    def project(R, c, X, width, height):
        return bearing_to_equirect((X - c) @ R, width, height)

    def cp_residuals(R, c):
        d = project(R, c, xyz, Wp, Hp) - uv
        d[:, 0] = _wrap(d[:, 0], Wp)
        return d.ravel()

    fine = _PhotoEdgeField(photo, W)
    chance = float(np.mean(fine.dist <= config.match_px))

    def done(T, accepted, reason, before, after, n_edges, matched=None, chi2=None, rounds=0):
        delta = T0[:3, :3].T @ T[:3, :3]
        return Refinement(T, accepted, tuple(float(a) for a in ypr_from_rotation(delta)), before, after, n_edges,
                          reason, method="pose", delta_position_m=tuple((T[:3, 3] - T0[:3, 3]).tolist()),
                          matched_fraction=matched, chance_fraction=chance, agreement_chi2=chi2, iterations=rounds)

    _, _, _, score_before, _, n_edges = fine.match(mesh, T0, config.match_px, scene)
    if n_edges < config.min_edge_points:
        return done(T0, False, Note(TOO_FEW_EDGES, n=n_edges),
                    score_before, score_before, n_edges)
    T = T0.copy()
    rounds = 0
    for width in (W // 8, W // 4, W // 2, W):
        field = fine if width == W else _PhotoEdgeField(photo, width)
        px_scale = Wp / width                                # this level's pixels -> photo pixels
        for _ in range(config.iterations):
            X, tgt, nrm, _, _, _ = field.match(mesh, T, config.match_px, scene)
            if len(X) < config.min_edge_points * width / W:
                break
            rounds += 1
            R0, c0 = T[:3, :3].copy(), T[:3, 3].copy()
            weight = math.sqrt(config.edge_weight / len(X))

            def residuals(x, X=X, tgt=tgt, nrm=nrm, R0=R0, c0=c0, weight=weight, width=width, px_scale=px_scale):
                R = Rotation.from_rotvec(x[:3]).as_matrix() @ R0
                c = c0 + x[3:]
                d = project(R, c, X, width, width // 2) - tgt
                d[:, 0] = _wrap(d[:, 0], width)
                along = np.clip(np.sum(d * nrm, 1), -config.match_px, config.match_px) * px_scale
                return np.concatenate([weight * along, cp_residuals(R, c)])

            x = least_squares(residuals, np.zeros(6), method="lm", x_scale=[1e-3] * 3 + [1e-2] * 3).x
            T = T.copy()
            T[:3, :3] = Rotation.from_rotvec(x[:3]).as_matrix() @ R0
            T[:3, 3] = c0 + x[3:]
            # finer levels stop sooner: a step below what a pixel there can show ends the level
            if (np.linalg.norm(x[3:]) < config.converged_m * W / width
                    and math.degrees(np.linalg.norm(x[:3])) < 1e-3 * W / width):
                break
    _, _, _, score_after, matched_after, n_edges = fine.match(mesh, T, config.match_px, scene)

    # how far the change is from what the control points allow, at the stated click noise
    R0, c0 = T0[:3, :3], T0[:3, 3]
    base = cp_residuals(R0, c0)
    J = np.empty((len(base), 6))
    for i, h in enumerate([1e-5] * 3 + [1e-4] * 3):         # (rad, m): the residuals are smooth at this scale
        e = np.zeros(6)
        e[i] = h
        J[:, i] = (cp_residuals(Rotation.from_rotvec(e[:3]).as_matrix() @ R0, c0 + e[3:]) - base) / h
    change = np.concatenate([Rotation.from_matrix(T[:3, :3] @ R0.T).as_rotvec(), T[:3, 3] - c0])
    # the click noise: the stated one, or what the control points' own residuals show when larger
    # (2n residuals, 6 parameters fitted)
    dof = len(base) - 6
    sigma = max(config.click_sigma_px, math.sqrt(float(base @ base) / dof) if dof > 0 else 0.0)
    chi2 = float(change @ (J.T @ J) @ change) / sigma ** 2
    lift = (matched_after - chance) / max(1e-9, 1.0 - chance)
    if lift < config.min_edge_lift:
        return done(T0, False, Note(N_("only {matched_pct:.0f} % of the model's edges are found in the photo, where "
                                       "{chance_pct:.0f} % would be by chance: it does not show the model closely "
                                       "enough"), matched_pct=100 * matched_after, chance_pct=100 * chance),
                    score_before, score_after, n_edges, matched_after, chi2, rounds)
    if chi2 > config.gate_chi2:
        return done(T0, False, Note(N_("the edges pull the pose beyond what the control points allow (chi-square "
                                       "{chi2:.1f} > {gate:g} at {sigma:.2g} px of click noise)"),
                                    chi2=chi2, gate=config.gate_chi2, sigma=sigma),
                    score_before, score_after, n_edges, matched_after, chi2, rounds)
    if score_after > score_before + 1e-6:
        return done(T0, False, Note(N_("no improvement of the edge distance ({before:.3f} -> {after:.3f} px)"),
                                    before=score_before, after=score_after),
                    score_before, score_after, n_edges, matched_after, chi2, rounds)
    return done(T, True, Note(ACCEPTED), score_before, score_after, n_edges, matched_after, chi2, rounds)
