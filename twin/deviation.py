"""From registered points to per-element deviation, as-built status and unplanned objects.

Inputs are arrays in the site's local frame (metres); nothing here touches the store.

- Every point gets its signed distance to the nearest model surface and that surface's
  element (``twin.distance``: + outside the element's solid, - inside). Points within
  ``band_m`` of their element count for it.
- Per element: point count; observed coverage (the share of its surface, of what the survey
  could see from its stations, that has points on it); mean, median, p95 |d| and max signed
  distance; the least-squares translation (``shift``) that explains its distances through its
  surfaces' normals, which is its position deviation (directions its visible faces do not
  constrain are left at 0); section size from opposite faces; verticality from the drift of
  the shift between its lower and upper thirds; flatness from the residuals after the shift.
- Status: ``not_built`` (too few points or coverage), ``partial``, ``built``, or
  ``out_of_tolerance`` when a GB 50204 / CJJ 1 check fails (``twin.tolerances``). A ``partial``
  element is checked too, on what its observed faces show, and keeps its status with the
  failed checks listed (``checks`` non-empty): it counts as out of tolerance in a site's figures.
- Points farther than ``band_m`` from every element (terrain aside) are clustered into
  unplanned objects with their extent.
- The distance query stops at the band (``max_distance_m``, CloudCompare's ``-MAX_DIST``): a point
  beyond it is nearer no element, so it gets ``inf`` and no element; each unplanned object's
  distance to the model and nearest element are then found exactly for the few of its points that
  can be nearest (bounded by voxels), not by searching every far point.
- A survey too large to hold (``twin.streaming``) is analysed on a sample held in memory (fits,
  noise, unplanned objects, the points shown) with the per-element counts, distance figures,
  histograms, coverage and status taken from a pass over every point (:class:`StreamedFigures`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from sitetwin.twin.tolerances import DEFAULT, Tolerances, elevation_limit, level_of_accuracy

if TYPE_CHECKING:
    import pandas as pd

    from sitetwin.twin.sampling import SurfaceSample

TERRAIN = -2
NOISE = -1
# A scanner measures a surface seen at up to ~75 degrees from its normal, within this range.
MIN_INCIDENCE_COS = 0.25
MAX_RANGE_M = 60.0
MIN_EXPECTED_POINTS = 3.0


@dataclass(frozen=True)
class DeviationResult:
    """Per point and per element results of one survey.

    distance_m : (n,) float32 signed distance to the nearest surface (``inf`` beyond the band)
    element : (n,) int32 element index the point counts for (-1: farther than the band)
    nearest : (n,) int32 element of the nearest surface (-1 beyond the band, unless ``exact_far``)
    cluster : (n,) int32 unplanned object id, -1 none, -2 terrain
    elements : pandas DataFrame, one row per element of the mesh
    histograms : pandas DataFrame (element, bin_lo_mm, bin_hi_mm, points), non-empty bins
    unplanned : pandas DataFrame, one row per object
    noise_mm : robust sigma of the residuals on the model's surfaces (the survey's noise)
    loa : USIBD level of accuracy the survey supports (None when the noise could not be measured)
    """

    distance_m: np.ndarray
    element: np.ndarray
    nearest: np.ndarray
    cluster: np.ndarray
    elements: pd.DataFrame
    histograms: pd.DataFrame
    unplanned: pd.DataFrame
    noise_mm: float
    loa: str | None


@dataclass(frozen=True)
class CoverageGrid:
    """The surface patches coverage is counted on: a sample of the model's faces about every ``spacing_m``,
    and the voxels (``spacing_m`` wide, from ``origin``) that points, projected onto their face, fall in."""

    sample: SurfaceSample
    spacing_m: float
    origin: np.ndarray
    face_normals: np.ndarray       # (m, 3) unit normals of the mesh's faces


def coverage_grid(mesh, spacing_m: float, *, seed: int = 0, max_samples: int = 3_000_000) -> CoverageGrid:
    from sitetwin.twin.sampling import sample_surface

    sample = sample_surface(mesh, spacing_m=spacing_m, seed=seed, max_points=max_samples)
    spacing = spacing_m if len(sample.points) < max_samples else float(np.sqrt(sample.area_m2.mean()))
    origin = mesh.bounds()[0] - spacing * (1.0 + 0.5 * math.sqrt(2.0) / 7.0)   # odd offset: faces off voxel planes
    return CoverageGrid(sample, spacing, origin, _face_normals(mesh))


def observed_keys(mesh, grid: CoverageGrid, points_m: np.ndarray, element: np.ndarray,
                  triangle: np.ndarray) -> np.ndarray:
    """Sorted unique (element, voxel) keys of the points that count for an element (``element`` >= 0),
    projected onto their nearest face: what coverage counts as observed. Keys of parts of a survey merge
    by ``np.union1d``."""
    ok = element >= 0
    pts = points_m[ok]
    tri = triangle[ok]
    dist = _plane_distance(mesh, pts, tri, grid.face_normals)
    proj = pts - dist[:, None] * grid.face_normals[tri]
    return np.unique(_voxel_keys(proj, element[ok], grid.origin, grid.spacing_m, mesh))


def histogram_bin(distance_m: np.ndarray, band_m: float, bin_mm: float) -> np.ndarray:
    """The histogram bin (0 .. 2 band / bin - 1) of signed distances within the band: one rule for the
    in-memory and the streamed paths, so that their counts agree."""
    bins = int(round(2 * band_m * 1000 / bin_mm))
    return np.clip(((np.asarray(distance_m).astype(np.float64) + band_m) * 1000 / bin_mm).astype(np.int64), 0,
                   bins - 1)


@dataclass(frozen=True)
class StreamedFigures:
    """Per-element figures of a pass over every point of a survey too large to hold (``twin.streaming``).

    points : (k,) int64 points within the band of each element
    mean_mm, median_mm, p95_mm, max_mm : (k,) float64 (NaN where no point); median and p95 (of |d|)
        to within one histogram bin, mean to 0.1 um, max exact (the signed distance of the largest |d|)
    histogram : (k, bins) int64 over [-band, band] in ``histogram_bin_mm`` bins (``histogram_bin``)
    occupied : sorted (element, voxel) keys on ``grid`` (``observed_keys``) of the clear points
    clear_points : (k,) int64 points clearly the element's (``attribution_margin_m`` nearer it than any other)
    grid : the coverage grid the keys are on
    total_points : every point of the survey
    """

    points: np.ndarray
    mean_mm: np.ndarray
    median_mm: np.ndarray
    p95_mm: np.ndarray
    max_mm: np.ndarray
    histogram: np.ndarray
    occupied: np.ndarray
    clear_points: np.ndarray
    grid: CoverageGrid
    total_points: int
    seconds: dict = field(default_factory=dict)


def analyse(mesh, points_m: np.ndarray, *, index=None, classes=None, storeys=None, planned=None,
            stations_m: np.ndarray | None = None, station_steps_rad: np.ndarray | None = None,
            point_station: np.ndarray | None = None,
            storey_levels: list[tuple[str, float]] | None = None,
            tolerances: Tolerances = DEFAULT, seed: int = 0, exact_far: bool = False,
            streamed: StreamedFigures | None = None) -> DeviationResult:
    """Deviation of registered points (n, 3, local frame) from ``mesh`` (a ``bim.ModelMesh``).

    ``classes``/``storeys`` (k,) per element; ``planned`` (k,) bool, the schedule's view;
    ``stations_m`` (s, 3) scanner positions (coverage then counts only what they could see) and
    ``station_steps_rad`` (s,) their angular resolution (patches expected to get less than one
    point from every station do not count as visible) and ``point_station`` (n,) which station
    saw each point (-1: unknown; it settles points on faces two elements share);
    ``storey_levels`` [(name, elevation_m)] for placing unplanned objects.

    ``exact_far``: search points beyond the band to their exact distance and nearest element too (what
    the survey flow did before the band shortcut; the per-element results are the same). ``streamed``:
    ``points_m`` is a sample of a larger survey, and the per-element counts, distance figures,
    histograms, coverage and status come from the pass over every point (:class:`StreamedFigures`).
    """
    import pandas as pd

    from sitetwin.twin.distance import SurfaceIndex

    rules = tolerances.status
    k = mesh.element_count
    classes = np.asarray(classes if classes is not None else [""] * k, dtype=object)
    storeys = np.asarray(storeys if storeys is not None else [None] * k, dtype=object)
    index = index or SurfaceIndex.from_mesh(mesh)
    res = band_query(index, points_m, rules, point_station=point_station, stations_m=stations_m,
                     exact_far=exact_far)
    d = res.distance_m
    near = np.abs(d) <= rules.band_m
    element = np.where(near, res.element, -1).astype(np.int32)
    normals = index.face_normals[np.maximum(res.triangle, 0)]
    on_face = res.on_face
    clear = clear_of_others(res, near, rules)
    # the shift is fitted on points well inside their face: near an edge of a moved element,
    # points of the face alongside are nearer the model's other face and would fake a shift
    # ... and whose next nearest element is clearly farther: near a moved neighbour, its points
    # are as near to this element's faces as to their own
    inner = on_face & clear
    inner[inner] = edge_distance(mesh, res.triangle[inner], points_m[inner] - d[inner, None] * normals[inner],
                                 sharp_edges(mesh)) >= rules.edge_margin_m

    # --- per-element statistics over the points that count for it
    order = np.argsort(element, kind="stable")
    el_sorted = element[order]
    starts = np.searchsorted(el_sorted, np.arange(k + 1))
    shift = np.zeros((k, 3))
    observable = np.zeros((k, 3), dtype=bool)
    rows = []
    resid_all = []
    per_element = []
    for e in range(k):
        idx = order[starts[e]:starts[e + 1]]
        per_element.append(idx)
        idx = idx[inner[idx]]
        if len(idx) < 3:
            continue
        de = d[idx].astype(np.float64)
        ne = normals[idx]
        t, observable[e] = fit_shift(de, ne)
        shift[e] = t
        resid_all.append(de - ne @ t)
    resid = np.concatenate(resid_all) if resid_all else np.zeros(0)
    noise = 1.4826 * float(np.median(np.abs(resid - np.median(resid)))) if len(resid) > 30 else float("nan")
    noise_mm = noise * 1000.0

    # coverage counts only points (and surface patches) clear of every other element: where two
    # elements meet, or a moved one passes close, a point could belong to either
    clear_points = np.bincount(element[clear], minlength=k)
    if streamed is not None:
        clear_points = streamed.clear_points
    cov = surface_coverage(mesh, points_m, np.where(clear, element, -1), res.triangle, stations_m,
                           rules.coverage_spacing_m, planned=planned, seed=seed,
                           station_steps_rad=station_steps_rad, index=index, clear_m=rules.attribution_margin_m,
                           grid=None if streamed is None else streamed.grid,
                           occupied=None if streamed is None else streamed.occupied)
    bins = np.arange(-rules.band_m * 1000, rules.band_m * 1000 + rules.histogram_bin_mm / 2, rules.histogram_bin_mm)
    hist_rows = []
    zmin, zmax = _element_z_range(mesh)
    for e in range(k):
        idx = per_element[e]
        n = len(idx) if streamed is None else int(streamed.points[e])
        tol = tolerances.for_class(classes[e])
        row = {"element": e, "points": n, "coverage": cov["coverage"][e], "visible_share": cov["visible_share"][e],
               "visible_m2": cov["visible_m2"][e], "coverage_low": cov["low"][e], "coverage_high": cov["high"][e],
               "mean_mm": None, "median_mm": None, "p95_mm": None, "max_mm": None,
               "shift_x_mm": None, "shift_y_mm": None, "shift_z_mm": None, "shift_mm": None,
               "section_mm": None, "verticality_mm": None, "flatness_mm": None, "checks": []}
        if len(idx) >= 3:         # the sample's points (all of them unless streamed)
            de = d[idx].astype(np.float64) * 1000.0
            ad = np.abs(de)
            row.update(mean_mm=float(de.mean()), median_mm=float(np.median(de)), p95_mm=float(np.quantile(ad, 0.95)),
                       max_mm=float(de[np.argmax(ad)]))
            t = shift[e] * 1000.0
            obs = observable[e]
            row.update(shift_x_mm=float(t[0]) if obs[0] else None, shift_y_mm=float(t[1]) if obs[1] else None,
                       shift_z_mm=float(t[2]) if obs[2] else None,
                       shift_mm=float(np.linalg.norm(t)) if obs.any() else None)
            face = idx[inner[idx]]
            if len(face) >= 3:
                df_ = d[face].astype(np.float64) * 1000.0
                nf = normals[face]
                r = df_ - nf @ t
                q95 = float(np.quantile(np.abs(r), 0.95))
                row["flatness_mm"] = (math.sqrt(max(0.0, q95 ** 2 - (1.96 * noise_mm) ** 2))
                                      if noise_mm == noise_mm else q95)
                row["section_mm"] = section_deviation(df_, nf)
                if tol.verticality_mm is not None:
                    row["verticality_mm"] = verticality(points_m[face], df_, nf, zmin[e], zmax[e])
        if streamed is not None:      # the distance figures of every point, not the sample's
            row.update(mean_mm=None, median_mm=None, p95_mm=None, max_mm=None)
            if n >= 3:
                row.update(mean_mm=float(streamed.mean_mm[e]), median_mm=float(streamed.median_mm[e]),
                           p95_mm=float(streamed.p95_mm[e]), max_mm=float(streamed.max_mm[e]))
        profile = classes[e] in rules.profile_classes and cov["thirds_m2"][e] >= 2 * rules.min_visible_m2
        if streamed is not None:
            counts = streamed.histogram[e]
        elif n:
            counts = np.bincount(histogram_bin(d[idx], rules.band_m, rules.histogram_bin_mm), minlength=len(bins) - 1)
        if n:
            for b in np.flatnonzero(counts):
                hist_rows.append((e, float(bins[b]), float(bins[b + 1]), int(counts[b])))
        row["status"], row["checks"] = _status(row, tol, rules, cov["visible_m2"][e], zmax[e] - zmin[e],
                                               cov["low"][e], cov["high"][e], profile, int(clear_points[e]))
        rows.append(row)
    elements = pd.DataFrame(rows)
    elements["global_id"] = mesh.global_ids
    elements["model_id"] = mesh.model_ids
    elements["ifc_class"] = classes
    elements["storey"] = storeys
    elements["planned"] = np.asarray(planned, dtype=bool) if planned is not None else None
    histograms = pd.DataFrame(hist_rows, columns=["element", "bin_lo_mm", "bin_hi_mm", "points"])

    cluster, unplanned = unplanned_objects(points_m, d, res.element, near, index, mesh, storey_levels, rules)
    return DeviationResult(distance_m=d, element=element, nearest=res.element, cluster=cluster, elements=elements,
                           histograms=histograms, unplanned=unplanned, noise_mm=noise_mm,
                           loa=level_of_accuracy(noise_mm) if noise_mm == noise_mm else None)


def band_query(index, points_m: np.ndarray, rules, *, point_station=None, stations_m=None, exact_far: bool = False):
    """The query every deviation makes (in memory or streamed, so that they agree): nearest surface and
    element within the band (beyond it: ``inf``, -1, unless ``exact_far``), the nearest other element
    within ``attribution_margin_m`` more, stations settling points on faces two elements share."""
    return index.query(points_m, point_station=point_station,
                       stations=stations_m if point_station is not None else None,
                       other_within_m=rules.attribution_margin_m, max_distance_m=None if exact_far else rules.band_m)


def clear_of_others(res, near: np.ndarray, rules) -> np.ndarray:
    """(n,) bool: within the band and ``attribution_margin_m`` nearer its element than any other."""
    clear = np.zeros(len(near), dtype=bool)
    d = np.abs(res.distance_m[near])
    clear[near] = res.other_m[near] - d >= rules.attribution_margin_m
    return clear


def fit_shift(d: np.ndarray, n: np.ndarray, *, iterations: int = 4, min_share: float = 0.04
              ) -> tuple[np.ndarray, np.ndarray]:
    """Robust least-squares translation t (3,) with n_i . t ~ d_i (Tukey-weighted, metres).

    Returns ``t`` and which world axes it says something about. Directions the normals hardly
    constrain (eigenvalue of sum(n n^T) below ``min_share`` of the largest, or below 10
    points' worth) get no shift: a wall seen only on its faces says nothing about where it
    stands along its length. Use points whose nearest model point is inside a face.
    """
    w = np.ones(len(d))
    t = np.zeros(3)
    good = np.zeros(3, dtype=bool)
    vecs = np.eye(3)
    for it in range(iterations + 1):
        A = (n * w[:, None]).T @ n
        b = (n * w[:, None]).T @ d
        vals, vecs = np.linalg.eigh(A)
        good = vals > max(min_share * vals[-1], 10.0 * (w.mean() if len(w) else 1.0))
        coef = np.zeros(3)
        coef[good] = (vecs[:, good].T @ b) / vals[good]
        t = vecs @ coef
        if it == iterations:
            break
        r = d - n @ t
        sigma = 1.4826 * np.median(np.abs(r)) + 1e-4
        c = max(4.685 * sigma, 0.005)
        u = np.clip(np.abs(r) / c, 0, 1)
        w = (1 - u * u) ** 2
    bad = vecs[:, ~good]
    observable = np.linalg.norm(bad.T, axis=0) < 0.5 if bad.size else np.ones(3, dtype=bool)
    return t, observable


def sharp_edges(mesh, *, angle_deg: float = 30.0) -> np.ndarray:
    """(m, 3) bool: edge j of face i (from corner j to j+1) is an outline of its face: the
    neighbour across it turns by more than ``angle_deg``, or there is none."""
    from sitetwin.twin.sampling import triangle_areas

    faces = mesh.faces
    m = len(faces)
    _, normals = triangle_areas(mesh.vertices, faces)
    a = faces
    b = np.roll(faces, -1, axis=1)
    lo, hi = np.minimum(a, b).ravel(), np.maximum(a, b).ravel()
    key = lo.astype(np.int64) * (int(faces.max(initial=0)) + 1) + hi
    order = np.argsort(key, kind="stable")
    ks = key[order]
    start = np.r_[0, np.flatnonzero(np.diff(ks)) + 1]
    count = np.diff(np.r_[start, len(ks)])
    sharp = np.ones(3 * m, dtype=bool)
    pairs = start[count == 2]
    f1, f2 = order[pairs] // 3, order[pairs + 1] // 3
    cos = np.einsum("ij,ij->i", normals[f1], normals[f2])
    smooth = cos > np.cos(np.radians(angle_deg))
    sharp[order[pairs][smooth]] = False
    sharp[order[pairs + 1][smooth]] = False
    return sharp.reshape(m, 3)


def edge_distance(mesh, triangle: np.ndarray, q: np.ndarray, sharp: np.ndarray) -> np.ndarray:
    """Distance (m) from points ``q`` on their triangles to the nearest outline edge (``sharp_edges``)."""
    v = mesh.vertices.astype(np.float64)
    f = mesh.faces[triangle]
    out = np.full(len(q), np.inf)
    for j in range(3):
        a, b = v[f[:, j]], v[f[:, (j + 1) % 3]]
        ab = b - a
        t = np.clip(np.einsum("ij,ij->i", q - a, ab) / np.maximum(np.einsum("ij,ij->i", ab, ab), 1e-18), 0, 1)
        dist = np.linalg.norm(q - (a + t[:, None] * ab), axis=1)
        out = np.where(sharp[triangle, j], np.minimum(out, dist), out)
    return out


def section_deviation(d_mm: np.ndarray, n: np.ndarray, *, min_points: int = 30) -> float | None:
    """Section size minus design (mm): median distance on a face plus that on the opposite face,
    for the axis with both faces seen; + larger. None when no axis has both faces."""
    best = None
    for axis in range(3):
        pos = n[:, axis] > 0.985
        neg = n[:, axis] < -0.985
        if pos.sum() >= min_points and neg.sum() >= min_points:
            s = float(np.median(d_mm[pos]) + np.median(d_mm[neg]))
            if best is None or abs(s) > abs(best):
                best = s
    return best


def verticality(points: np.ndarray, d_mm: np.ndarray, n: np.ndarray, z0: float, z1: float,
                *, min_points: int = 30) -> float | None:
    """Horizontal drift (mm) of the element from bottom to top, from the shifts of its lower
    and upper thirds (vertical faces only), scaled to its full height."""
    height = z1 - z0
    if height <= 0.5:
        return None
    horiz = np.abs(n[:, 2]) < 0.2
    z = points[:, 2]
    parts = []
    for lo, hi in ((z0, z0 + height / 3), (z1 - height / 3, z1)):
        m = horiz & (z >= lo) & (z <= hi)
        if m.sum() < min_points:
            return None
        t, obs = fit_shift(d_mm[m] / 1000.0, n[m])
        if not obs[:2].all():
            return None
        parts.append((t[:2], float(z[m].mean())))
    (t_lo, z_lo), (t_hi, z_hi) = parts
    if z_hi - z_lo < 0.3:
        return None
    return float(np.linalg.norm(t_hi - t_lo) * 1000.0 * height / (z_hi - z_lo))


def _element_z_range(mesh) -> tuple[np.ndarray, np.ndarray]:
    k = mesh.element_count
    zmin = np.full(k, np.inf)
    zmax = np.full(k, -np.inf)
    tri_z = mesh.vertices[mesh.faces][:, :, 2].astype(np.float64)
    np.minimum.at(zmin, mesh.face_element, tri_z.min(axis=1))
    np.maximum.at(zmax, mesh.face_element, tri_z.max(axis=1))
    return zmin, zmax


def _status(row: dict, tol, rules, visible_m2: float, height_m: float, cov_low: float, cov_high: float,
            bottom_up: bool, clear_points: int) -> tuple[str, list]:
    """The element's status and the checks it failed.

    A ``partial`` element keeps its status (too little of it seen to call it built) but is still
    checked on what was seen: a shift its observed faces show, a section with both faces seen, a
    flatness. A slab seen only from the side it moved towards is ``partial`` with ``position``
    failed; what the faces cannot show (``None`` in the row) is never checked.
    """
    n = row["points"]
    cov = row["coverage"]
    built_cov = rules.built_coverage if tol.built_coverage is None else tol.built_coverage
    observable = visible_m2 >= rules.min_visible_m2
    # an element the stations could not see stands only on points that are clearly its own
    if n < rules.min_points or (observable and cov < rules.partial_coverage) or \
            (not observable and clear_points < rules.min_points):
        return "not_built", []
    checks = _failed_checks(row, tol, rules, height_m) if n >= rules.check_points else []
    if observable and cov < built_cov:
        return "partial", checks
    # built from the bottom up: the lower third seen, the upper third not (yet)
    if bottom_up and height_m >= rules.profile_height_m and cov_low >= built_cov and \
            cov_high < rules.top_share * cov_low:
        return "partial", checks
    return ("out_of_tolerance" if checks else "built"), checks


def _failed_checks(row: dict, tol, rules, height_m: float) -> list[dict]:
    checks = []
    sx, sy, sz = row["shift_x_mm"], row["shift_y_mm"], row["shift_z_mm"]
    if tol.position_mm is not None and (sx is not None or sy is not None):
        horiz = math.hypot(sx or 0.0, sy or 0.0)
        if horiz > tol.position_mm:
            checks.append({"check": "position", "value_mm": round(horiz, 2), "limit_mm": tol.position_mm})
    zlim = elevation_limit(tol, sz) if sz is not None else None
    if zlim is not None and abs(sz) > zlim:
        checks.append({"check": "elevation", "value_mm": round(sz, 2), "limit_mm": zlim if sz >= 0 else -zlim})
    v = row["verticality_mm"]
    vlim = tol.verticality_tall_mm if height_m > 6.0 and tol.verticality_tall_mm is not None else tol.verticality_mm
    if v is not None and vlim is not None and v > vlim:
        checks.append({"check": "verticality", "value_mm": round(v, 2), "limit_mm": vlim})
    s = row["section_mm"]
    if s is not None and tol.section_plus_mm is not None and s > tol.section_plus_mm:
        checks.append({"check": "section", "value_mm": round(s, 2), "limit_mm": tol.section_plus_mm})
    if s is not None and tol.section_minus_mm is not None and s < -tol.section_minus_mm:
        checks.append({"check": "section", "value_mm": round(s, 2), "limit_mm": -tol.section_minus_mm})
    f = row["flatness_mm"]
    if f is not None and tol.flatness_mm is not None and f > tol.flatness_mm:
        checks.append({"check": "flatness", "value_mm": round(f, 2), "limit_mm": tol.flatness_mm})
    return checks


# --------------------------------------------------------------------------------------------- coverage
def surface_coverage(mesh, points_m, element, triangle, stations_m, spacing_m, *, planned=None, seed=0,
                     station_steps_rad=None, index=None, clear_m: float = 0.0,
                     max_samples: int = 3_000_000, grid: CoverageGrid | None = None,
                     occupied: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Per element: ``coverage``, ``visible_share``, ``visible_m2``, and the coverage of its lower
    and upper thirds (``low``, ``high``).

    The surface is sampled every ``spacing_m``; a sample is *visible* when a ray from some
    station reaches it unobstructed by the planned elements, at a range and incidence a
    scanner measures and, when the station's angular step is known, dense enough for the patch
    to expect a point (all samples when no station is known), and *observed* when a point of
    the same element, projected onto its surface, falls in the same ``spacing_m`` voxel.
    Coverage = observed visible area / visible area. With ``index`` and ``clear_m``, patches
    within ``clear_m`` of another element are left out (pass points filtered the same way).
    ``grid`` (``coverage_grid``) and ``occupied`` (``observed_keys`` on it, of every point of a
    streamed survey) stand in for the sampling and for ``points_m``.
    """
    k = mesh.element_count
    grid = grid or coverage_grid(mesh, spacing_m, seed=seed, max_samples=max_samples)
    sample = grid.sample
    visible = np.ones(len(sample.points), dtype=bool)
    if index is not None and clear_m > 0 and len(sample.points):
        other = index.query(sample.points, other_within_m=clear_m).other_m
        visible &= other >= clear_m
    if stations_m is not None and len(stations_m):
        visible &= _visible(mesh, sample, np.asarray(stations_m, dtype=np.float64), planned, station_steps_rad)
    # the element's points projected onto its surface, as voxel keys (element, voxel)
    if occupied is None:
        occupied = observed_keys(mesh, grid, points_m, element, triangle)
    keys_smp = _voxel_keys(sample.points, sample.element, grid.origin, grid.spacing_m, mesh)
    observed = np.zeros(len(keys_smp), dtype=bool)
    if len(occupied):       # no point on any element (a survey that saw nothing of the model): nothing observed
        pos = np.searchsorted(occupied, keys_smp)
        observed = (pos < len(occupied)) & (occupied[np.minimum(pos, len(occupied) - 1)] == keys_smp)
    area = sample.area_m2
    zmin, zmax = _element_z_range(mesh)
    rel = (sample.points[:, 2] - zmin[sample.element]) / np.maximum(zmax - zmin, 1e-9)[sample.element]

    def share(mask):
        vis = np.bincount(sample.element, weights=area * (visible & mask), minlength=k)
        obs = np.bincount(sample.element, weights=area * (visible & observed & mask), minlength=k)
        return np.divide(obs, vis, out=np.zeros(k), where=vis > 0), vis

    coverage, vis_area = share(np.ones(len(rel), dtype=bool))
    low, vis_low = share(rel < 1 / 3)
    high, vis_high = share(rel > 2 / 3)
    total = np.bincount(sample.element, weights=area, minlength=k)
    return {"coverage": coverage, "visible_share": np.divide(vis_area, total, out=np.zeros(k), where=total > 0),
            "visible_m2": vis_area, "low": low, "high": high, "thirds_m2": np.minimum(vis_low, vis_high)}


def _face_normals(mesh) -> np.ndarray:
    from sitetwin.twin.sampling import triangle_areas

    return triangle_areas(mesh.vertices, mesh.faces)[1]


def _plane_distance(mesh, pts, triangle, tri_n) -> np.ndarray:
    a = mesh.vertices[mesh.faces[triangle, 0]].astype(np.float64)
    return np.einsum("ij,ij->i", pts - a, tri_n[triangle])


def _voxel_keys(points, element, origin, spacing, mesh) -> np.ndarray:
    dims = np.floor((mesh.bounds()[1] - origin) / spacing).astype(np.int64) + 3
    v = np.clip(np.floor((points - origin) / spacing).astype(np.int64), 0, dims - 1)
    lin = (v[:, 0] * dims[1] + v[:, 1]) * dims[2] + v[:, 2]
    return element.astype(np.int64) * int(np.prod(dims)) + lin


def _visible(mesh, sample, stations, planned, steps_rad=None) -> np.ndarray:
    """Samples some station sees: facing it, dense enough, and no planned surface in between."""
    import open3d as o3d

    keep = np.ones(mesh.element_count, bool) if planned is None else np.asarray(planned, bool)
    faces = mesh.faces[keep[mesh.face_element]]
    scene = o3d.t.geometry.RaycastingScene()
    cpu = o3d.core.Device("CPU:0")
    if len(faces):
        scene.add_triangles(o3d.core.Tensor(mesh.vertices.astype(np.float32), o3d.core.float32, cpu),
                            o3d.core.Tensor(faces.astype(np.uint32), o3d.core.uint32, cpu))
    seen = np.zeros(len(sample.points), dtype=bool)
    for si, station in enumerate(stations):
        d = sample.points - station
        r = np.linalg.norm(d, axis=1)
        cos_inc = np.einsum("ij,ij->i", sample.normals, -d) / np.maximum(r, 1e-9)
        facing = (cos_inc > MIN_INCIDENCE_COS) & (r > 0.3) & (r < MAX_RANGE_M) & ~seen
        step = None if steps_rad is None else steps_rad[si]
        if step is not None and step == step and step > 0:
            # points a patch of this area gets from this station: area cos(incidence) / (range step)^2;
            # it takes a few for a patch to show reliably (a thin strip may fall between scan lines)
            facing &= sample.area_m2 * cos_inc / (r * step) ** 2 >= MIN_EXPECTED_POINTS
        idx = np.flatnonzero(facing)
        if not len(idx):
            continue
        dirs = d[idx] / r[idx, None]
        # start the ray at the sample, looking back at the station: a hit means something in between
        origins = sample.points[idx] - dirs * 0.01
        rays = np.hstack([origins, -dirs]).astype(np.float32)
        t = scene.cast_rays(o3d.core.Tensor(rays, o3d.core.float32, cpu))["t_hit"].numpy()
        seen[idx[~(t < r[idx] - 0.05)]] = True
    return seen


# --------------------------------------------------------------------------------------------- unplanned
def unplanned_objects(points_m, d, nearest, near, index, mesh, storey_levels, rules):
    """Cluster the points far from every element; returns (cluster per point, objects frame)."""
    import pandas as pd
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    cluster = np.full(len(points_m), NOISE, dtype=np.int32)
    far = np.flatnonzero(~near)
    columns = ["object_id", "points", "centroid_x_m", "centroid_y_m", "centroid_z_m", "min_x_m", "min_y_m",
               "min_z_m", "max_x_m", "max_y_m", "max_z_m", "storey", "nearest_element", "distance_m"]
    if len(far) == 0:
        return cluster, pd.DataFrame(columns=columns)
    lo = mesh.bounds()[0]
    # terrain: the dominant level of far points below the lowest storey (+0.5 m), outside the footprint
    zf = points_m[far, 2]
    ground_top = (min(e for _, e in storey_levels) if storey_levels else lo[2]) + 0.5
    low = zf < ground_top
    if low.sum() > 100:
        hist, edges = np.histogram(zf[low], bins=np.arange(zf[low].min(), ground_top + 0.05, 0.05))
        if len(hist) and hist.max() > 0.2 * low.sum():
            level = edges[np.argmax(hist)] + 0.025
            terrain = low & (np.abs(zf - level) < 0.1)
            cluster[far[terrain]] = TERRAIN
            far = far[~terrain]
    if len(far) == 0:
        return cluster, pd.DataFrame(columns=columns)
    v = rules.unplanned_voxel_m
    pts = points_m[far]
    key = np.floor((pts - pts.min(axis=0)) / v).astype(np.int64)
    dims = key.max(axis=0) + 3
    key += 1
    lin = (key[:, 0] * dims[1] + key[:, 1]) * dims[2] + key[:, 2]
    uniq, inverse = np.unique(lin, return_inverse=True)
    rows, cols = [], []
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            for dz in (-1, 0, 1):
                if (dx, dy, dz) <= (0, 0, 0):
                    continue
                nb = uniq + (dx * dims[1] + dy) * dims[2] + dz
                pos = np.searchsorted(uniq, nb)
                hit = (pos < len(uniq)) & (uniq[np.minimum(pos, len(uniq) - 1)] == nb)
                rows.append(np.flatnonzero(hit))
                cols.append(pos[hit])
    r = np.concatenate(rows) if rows else np.zeros(0, int)
    c = np.concatenate(cols) if cols else np.zeros(0, int)
    graph = coo_matrix((np.ones(len(r)), (r, c)), shape=(len(uniq), len(uniq)))
    _, comp = connected_components(graph, directed=False)
    label = comp[inverse]
    sizes = np.bincount(label)
    big = np.flatnonzero(sizes >= rules.unplanned_min_points)
    big = big[np.argsort(-sizes[big], kind="stable")]
    objects = []
    levels = sorted(storey_levels or [], key=lambda s: s[1])
    member_lists = [np.flatnonzero(label == comp_id) for comp_id in big]
    far_d = np.abs(d[far])
    far_nearest = nearest[far]
    if not np.isfinite(far_d).all():        # the query stopped at the band: each object's nearest point, exactly
        far_d, far_nearest = _nearest_of_objects(pts, member_lists, index, v)
    for oid, members in enumerate(member_lists):
        p = pts[members]
        cluster[far[members]] = oid
        mn, mx, ce = p.min(axis=0), p.max(axis=0), p.mean(axis=0)
        dist = far_d[members]
        nearest_el = int(far_nearest[members][np.argmin(dist)])
        storey = None
        for name, elev in levels:
            if elev <= mn[2] + 0.3:
                storey = name
        objects.append((oid, len(members), *ce.tolist(), *mn.tolist(), *mx.tolist(), storey, nearest_el,
                        float(dist.min())))
    return cluster, pd.DataFrame(objects, columns=columns)


def _nearest_of_objects(pts: np.ndarray, member_lists, index, voxel_m: float) -> tuple[np.ndarray, np.ndarray]:
    """|distance| and nearest element of the points of each object that can be its nearest to the model
    (inf and -1 for the others), exactly and without searching every point: a point lies within half a
    voxel's diagonal of its voxel's centre, so only voxels whose centre is at most one diagonal farther
    than the object's nearest centre can hold its nearest point."""
    dist = np.full(len(pts), np.inf, dtype=np.float32)
    elem = np.full(len(pts), -1, dtype=np.int32)
    if not member_lists:
        return dist, elem
    members = np.concatenate(member_lists)
    obj = np.repeat(np.arange(len(member_lists)), [len(m) for m in member_lists])
    ijk = np.floor(pts[members] / voxel_m).astype(np.int64)
    keys = np.column_stack([obj, ijk])
    uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    centre_d = np.abs(index.query((uniq[:, 1:] + 0.5) * voxel_m).distance_m.astype(np.float64))
    half = 0.5 * math.sqrt(3.0) * voxel_m
    bound = np.full(len(member_lists), np.inf)
    np.minimum.at(bound, uniq[:, 0], centre_d + half)
    candidate = (centre_d - half <= bound[uniq[:, 0]])[inverse]
    pick = members[candidate]
    res = index.query(pts[pick])
    dist[pick] = np.abs(res.distance_m)
    elem[pick] = res.element
    return dist, elem
