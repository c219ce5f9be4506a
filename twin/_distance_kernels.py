"""numba kernels behind ``twin.distance``: grid build, grid query, exact far-point fallback.

Kept in their own module so that importing ``twin.distance`` (and ``sitetwin --help``) does
not import numba; compiled code is cached beside this file by numba (``cache=True``).
Triangle records are rows of 15 float64: a, ab = b - a, ac = c - a, unit normal, ab.ab,
ab.ac, ac.ac.
"""

from __future__ import annotations

import math

import numpy as np
from numba import config, njit, prange

# OpenMP first: numba otherwise tries TBB, and warns where the system's TBB is too old.
config.THREADING_LAYER_PRIORITY = ["omp", "tbb", "workqueue"]  # type: ignore[attr-defined]  # made at run time


# Two candidates this close (squared distances) are a tie: coincident faces of two elements,
# such as a column's top and the beam soffit over it.
TIE_REL = 1.0 + 1e-9
TIE_ABS = 1e-14


@njit(cache=True, inline="always")
def _better(rec, t, d2, side, best, best_t, best_side, px, py, pz, sx, sy, sz, has_view):
    """Is triangle t (at d2) a better answer than best_t (at best)? Ties go to the face the point
    was seen on: the one facing its scanner, or else the one it lies in front of; then to the
    lower record, so that the answer does not depend on the order of the search."""
    if d2 * TIE_REL + TIE_ABS < best:
        return True
    if d2 > best * TIE_REL + TIE_ABS or best_t < 0:
        return best_t < 0 and d2 < np.inf
    if has_view:
        f_new = rec[t, 9] * (sx - px) + rec[t, 10] * (sy - py) + rec[t, 11] * (sz - pz)
        f_old = rec[best_t, 9] * (sx - px) + rec[best_t, 10] * (sy - py) + rec[best_t, 11] * (sz - pz)
        new_seen, old_seen = f_new > 0.0, f_old > 0.0
    else:
        new_seen, old_seen = side > 0.0, best_side > 0.0
    if new_seen != old_seen:
        return new_seen
    return t < best_t          # else the first triangle: the same answer whatever order they come in


@njit(cache=True, inline="always")
def _limit(best, reach, other):
    """Squared distance beyond which a triangle cannot matter: past the best (and a tie), or,
    when the nearest other element is wanted too, past both the best plus ``reach`` and the
    nearest other element found so far (such a triangle changes neither answer)."""
    tie = best * TIE_REL + TIE_ABS
    if reach > 0.0 and best < np.inf:
        r = math.sqrt(best) + reach
        return max(tie, min(r * r, other))
    return tie


@njit(cache=True, inline="always")
def _update(rec, rel, t, d2, side, inner, best, best_t, best_side, best_in, other, px, py, pz, sx, sy, sz,
            has_view):
    """Fold triangle t into (best, its triangle, side, inside-face, nearest other element's d2)."""
    if _better(rec, t, d2, side, best, best_t, best_side, px, py, pz, sx, sy, sz, has_view):
        if best_t >= 0 and rel[best_t] != rel[t]:
            other = min(other, best)
        return min(d2, best), t, side, inner, other
    if best_t >= 0 and rel[t] != rel[best_t] and d2 < other:
        other = d2
    return best, best_t, best_side, best_in, other


@njit(cache=True, inline="always")
def _tri_d2(rec, t, px, py, pz, limit):
    """Squared distance from p to triangle t (inf when its plane is already beyond ``limit``), the plane side,
    and whether the nearest point lies inside the face (not on an edge or corner)."""
    apx = px - rec[t, 0]
    apy = py - rec[t, 1]
    apz = pz - rec[t, 2]
    side = apx * rec[t, 9] + apy * rec[t, 10] + apz * rec[t, 11]
    if side * side > limit:
        return np.inf, side, False
    abx, aby, abz = rec[t, 3], rec[t, 4], rec[t, 5]
    acx, acy, acz = rec[t, 6], rec[t, 7], rec[t, 8]
    d1 = abx * apx + aby * apy + abz * apz
    d2 = acx * apx + acy * apy + acz * apz
    # Voronoi regions of the triangle (Ericson, Real-Time Collision Detection, 5.1.5)
    if d1 <= 0.0 and d2 <= 0.0:
        return apx * apx + apy * apy + apz * apz, side, False
    d3 = d1 - rec[t, 12]
    d4 = d2 - rec[t, 13]
    if d3 >= 0.0 and d4 <= d3:
        qx, qy, qz = apx - abx, apy - aby, apz - abz
        return qx * qx + qy * qy + qz * qz, side, False
    vc = d1 * d4 - d3 * d2
    if vc <= 0.0 and d1 >= 0.0 and d3 <= 0.0:
        v = d1 / (d1 - d3)
        qx, qy, qz = apx - v * abx, apy - v * aby, apz - v * abz
        return qx * qx + qy * qy + qz * qz, side, False
    d5 = d1 - rec[t, 13]
    d6 = d2 - rec[t, 14]
    if d6 >= 0.0 and d5 <= d6:
        qx, qy, qz = apx - acx, apy - acy, apz - acz
        return qx * qx + qy * qy + qz * qz, side, False
    vb = d5 * d2 - d1 * d6
    if vb <= 0.0 and d2 >= 0.0 and d6 <= 0.0:
        w = d2 / (d2 - d6)
        qx, qy, qz = apx - w * acx, apy - w * acy, apz - w * acz
        return qx * qx + qy * qy + qz * qz, side, False
    va = d3 * d6 - d5 * d4
    if va <= 0.0 and (d4 - d3) >= 0.0 and (d5 - d6) >= 0.0:
        w = (d4 - d3) / ((d4 - d3) + (d5 - d6))
        # b + w (c - b) - p, with b - p = ab - ap and c - b = ac - ab
        qx = abx + w * (acx - abx) - apx
        qy = aby + w * (acy - aby) - apy
        qz = abz + w * (acz - abz) - apz
        return qx * qx + qy * qy + qz * qz, side, False
    # inside the face: the plane distance is the distance
    return side * side, side, True


@njit(cache=True, inline="always")
def _view(pst, stations, i):
    """The scanner that saw point i, if known: (known, x, y, z)."""
    if pst.shape[0] == 0 or pst[i] < 0:
        return False, 0.0, 0.0, 0.0
    j = pst[i]
    return True, stations[j, 0], stations[j, 1], stations[j, 2]


@njit(cache=True)
def build_grid(rec, origin, h, dims):
    """Cell -> triangle lists (CSR): a triangle goes into every cell its box crosses and its plane cuts."""
    nx, ny, nz = dims[0], dims[1], dims[2]
    m = rec.shape[0]
    counts = np.zeros(nx * ny * nz + 1, dtype=np.int64)
    half = 0.5 * h
    eps = 1e-9
    for phase in range(2):
        if phase == 1:
            for c in range(1, counts.shape[0]):
                counts[c] += counts[c - 1]
            cell_tris = np.empty(counts[-1], dtype=np.int32)
            fill = counts[:-1].copy()
        for t in range(m):
            ax, ay, az = rec[t, 0], rec[t, 1], rec[t, 2]
            bx, by, bz = ax + rec[t, 3], ay + rec[t, 4], az + rec[t, 5]
            cx, cy, cz = ax + rec[t, 6], ay + rec[t, 7], az + rec[t, 8]
            nxn, nyn, nzn = rec[t, 9], rec[t, 10], rec[t, 11]
            reach = half * (abs(nxn) + abs(nyn) + abs(nzn)) + eps
            i0 = int(math.floor((min(ax, bx, cx) - eps - origin[0]) / h))
            i1 = int(math.floor((max(ax, bx, cx) + eps - origin[0]) / h))
            j0 = int(math.floor((min(ay, by, cy) - eps - origin[1]) / h))
            j1 = int(math.floor((max(ay, by, cy) + eps - origin[1]) / h))
            k0 = int(math.floor((min(az, bz, cz) - eps - origin[2]) / h))
            k1 = int(math.floor((max(az, bz, cz) + eps - origin[2]) / h))
            for i in range(max(i0, 0), min(i1, nx - 1) + 1):
                ox = origin[0] + (i + 0.5) * h - ax
                for j in range(max(j0, 0), min(j1, ny - 1) + 1):
                    oy = origin[1] + (j + 0.5) * h - ay
                    for k in range(max(k0, 0), min(k1, nz - 1) + 1):
                        oz = origin[2] + (k + 0.5) * h - az
                        if abs(ox * nxn + oy * nyn + oz * nzn) > reach:
                            continue
                        c = (i * ny + j) * nz + k
                        if phase == 0:
                            counts[c + 1] += 1
                        else:
                            cell_tris[fill[c]] = t
                            fill[c] += 1
    return counts, cell_tris


# A cell listing more triangles than this is split into f x f x f sub-cells (f up to MAX_SPLIT),
# aiming at about SPLIT_TARGET triangles per sub-cell: detailed parts (bolts, plates, stairs,
# railings) then cost a point a few triangles, not the cell's thousands.
SPLIT_ABOVE = 24
SPLIT_TARGET = 3.0
MAX_SPLIT = 12


@njit(cache=True)
def build_split(rec, origin, h, dims, cell_start, cell_tris):
    """Sub-cell lists (CSR) for the crowded cells: (cell_sub (cells,) -1 or the split's number,
    split_f, split_base (splits,), sub_start (sub-cells + 1,), sub_tris)."""
    ny, nz = dims[1], dims[2]
    cells = cell_start.shape[0] - 1
    cell_sub = np.full(cells, -1, dtype=np.int32)
    splits = 0
    for c in range(cells):
        if cell_start[c + 1] - cell_start[c] > SPLIT_ABOVE:
            splits += 1
    split_f = np.empty(splits, dtype=np.int64)
    split_base = np.empty(splits + 1, dtype=np.int64)
    split_cell = np.empty(splits, dtype=np.int64)
    j = 0
    base = 0
    for c in range(cells):
        n = cell_start[c + 1] - cell_start[c]
        if n > SPLIT_ABOVE:
            f = int(math.ceil((n / SPLIT_TARGET) ** (1.0 / 3.0)))
            f = max(2, min(MAX_SPLIT, f))
            cell_sub[c] = j
            split_f[j] = f
            split_base[j] = base
            split_cell[j] = c
            base += f * f * f
            j += 1
    split_base[splits] = base
    counts = np.zeros(base + 1, dtype=np.int64)
    eps = 1e-9
    for phase in range(2):
        if phase == 1:
            for q in range(1, counts.shape[0]):
                counts[q] += counts[q - 1]
            sub_tris = np.empty(counts[-1], dtype=np.int32)
            fill = counts[:-1].copy()
        for j in range(splits):
            c = split_cell[j]
            f = split_f[j]
            hs = h / f
            half = 0.5 * hs
            ci = c // (ny * nz)
            cj = (c // nz) % ny
            ck = c % nz
            x0 = origin[0] + ci * h
            y0 = origin[1] + cj * h
            z0 = origin[2] + ck * h
            for s in range(cell_start[c], cell_start[c + 1]):
                t = cell_tris[s]
                ax, ay, az = rec[t, 0], rec[t, 1], rec[t, 2]
                bx, by, bz = ax + rec[t, 3], ay + rec[t, 4], az + rec[t, 5]
                cx, cy, cz = ax + rec[t, 6], ay + rec[t, 7], az + rec[t, 8]
                nxn, nyn, nzn = rec[t, 9], rec[t, 10], rec[t, 11]
                reach = half * (abs(nxn) + abs(nyn) + abs(nzn)) + eps
                i0 = max(0, int(math.floor((min(ax, bx, cx) - eps - x0) / hs)))
                i1 = min(f - 1, int(math.floor((max(ax, bx, cx) + eps - x0) / hs)))
                j0 = max(0, int(math.floor((min(ay, by, cy) - eps - y0) / hs)))
                j1 = min(f - 1, int(math.floor((max(ay, by, cy) + eps - y0) / hs)))
                k0 = max(0, int(math.floor((min(az, bz, cz) - eps - z0) / hs)))
                k1 = min(f - 1, int(math.floor((max(az, bz, cz) + eps - z0) / hs)))
                for a in range(i0, i1 + 1):
                    ox = x0 + (a + 0.5) * hs - ax
                    for b in range(j0, j1 + 1):
                        oy = y0 + (b + 0.5) * hs - ay
                        for k in range(k0, k1 + 1):
                            oz = z0 + (k + 0.5) * hs - az
                            if abs(ox * nxn + oy * nyn + oz * nzn) > reach:
                                continue
                            q = split_base[j] + (a * f + b) * f + k
                            if phase == 0:
                                counts[q + 1] += 1
                            else:
                                sub_tris[fill[q]] = t
                                fill[q] += 1
    return cell_sub, split_f, split_base, counts, sub_tris


@njit(cache=True)
def _scan_cell(c, x0, y0, z0, h, skip0, skip1, skip2, skip3, skip4, skip5, rec, rel, cell_start, cell_tris,
               cell_sub, split_f, split_base, sub_start, sub_tris, reach, cap, px, py, pz, sx, sy, sz, has_view,
               best, best_t, best_side, best_in, other):
    """Fold the triangles of cell c (corner x0, y0, z0) that could still matter into the answer.

    A crowded cell is searched sub-cell by sub-cell, only those within the current limit, less
    the block skip0..skip2 to skip3..skip5 (sub-cell indices) already searched."""
    j = cell_sub[c]
    if j < 0:
        for s in range(cell_start[c], cell_start[c + 1]):
            t = cell_tris[s]
            lim = min(_limit(best, reach, other), cap) if best_t < 0 else _limit(best, reach, other)
            d2, side, inner = _tri_d2(rec, t, px, py, pz, lim)
            best, best_t, best_side, best_in, other = _update(rec, rel, t, d2, side, inner, best, best_t, best_side,
                                                              best_in, other, px, py, pz, sx, sy, sz, has_view)
        return best, best_t, best_side, best_in, other
    f = split_f[j]
    hs = h / f
    lim = min(_limit(best, reach, other), cap) if best_t < 0 else _limit(best, reach, other)
    if lim < np.inf:
        r = math.sqrt(lim)
        a0 = max(0, int(math.floor((px - r - x0) / hs)))
        a1 = min(f - 1, int(math.floor((px + r - x0) / hs)))
        b0 = max(0, int(math.floor((py - r - y0) / hs)))
        b1 = min(f - 1, int(math.floor((py + r - y0) / hs)))
        k0 = max(0, int(math.floor((pz - r - z0) / hs)))
        k1 = min(f - 1, int(math.floor((pz + r - z0) / hs)))
    else:
        a0, a1, b0, b1, k0, k1 = 0, f - 1, 0, f - 1, 0, f - 1
    for a in range(a0, a1 + 1):
        gx = max(x0 + a * hs - px, 0.0, px - x0 - (a + 1) * hs)
        for b in range(b0, b1 + 1):
            gy = max(y0 + b * hs - py, 0.0, py - y0 - (b + 1) * hs)
            for k in range(k0, k1 + 1):
                if skip0 <= a <= skip3 and skip1 <= b <= skip4 and skip2 <= k <= skip5:
                    continue
                gz = max(z0 + k * hs - pz, 0.0, pz - z0 - (k + 1) * hs)
                lim = min(_limit(best, reach, other), cap) if best_t < 0 else _limit(best, reach, other)
                if gx * gx + gy * gy + gz * gz > lim:
                    continue
                q = split_base[j] + (a * f + b) * f + k
                for s in range(sub_start[q], sub_start[q + 1]):
                    t = sub_tris[s]
                    lim = min(_limit(best, reach, other), cap) if best_t < 0 else _limit(best, reach, other)
                    d2, side, inner = _tri_d2(rec, t, px, py, pz, lim)
                    best, best_t, best_side, best_in, other = _update(
                        rec, rel, t, d2, side, inner, best, best_t, best_side, best_in, other, px, py, pz, sx, sy, sz,
                        has_view)
    return best, best_t, best_side, best_in, other


@njit(cache=True)
def _scan_other(c, x0, y0, z0, h, be, rec, rel, cell_start, cell_tris, cell_sub, split_f, split_base, sub_start,
                sub_tris, px, py, pz, lim0, other):
    """The nearest face of an element other than ``be`` in cell c: within ``lim0`` (squared), nearer than ``other``."""
    j = cell_sub[c]
    if j < 0:
        for s in range(cell_start[c], cell_start[c + 1]):
            t = cell_tris[s]
            if rel[t] != be:
                d2, _, _ = _tri_d2(rec, t, px, py, pz, min(lim0, other))
                other = min(other, d2)
        return other
    f = split_f[j]
    hs = h / f
    r = math.sqrt(min(lim0, other))
    a0 = max(0, int(math.floor((px - r - x0) / hs)))
    a1 = min(f - 1, int(math.floor((px + r - x0) / hs)))
    b0 = max(0, int(math.floor((py - r - y0) / hs)))
    b1 = min(f - 1, int(math.floor((py + r - y0) / hs)))
    k0 = max(0, int(math.floor((pz - r - z0) / hs)))
    k1 = min(f - 1, int(math.floor((pz + r - z0) / hs)))
    for a in range(a0, a1 + 1):
        gx = max(x0 + a * hs - px, 0.0, px - x0 - (a + 1) * hs)
        for b in range(b0, b1 + 1):
            gy = max(y0 + b * hs - py, 0.0, py - y0 - (b + 1) * hs)
            for k in range(k0, k1 + 1):
                gz = max(z0 + k * hs - pz, 0.0, pz - z0 - (k + 1) * hs)
                if gx * gx + gy * gy + gz * gz > min(lim0, other):
                    continue
                q = split_base[j] + (a * f + b) * f + k
                for s in range(sub_start[q], sub_start[q + 1]):
                    t = sub_tris[s]
                    if rel[t] != be:
                        d2, _, _ = _tri_d2(rec, t, px, py, pz, min(lim0, other))
                        other = min(other, d2)
    return other


GRID_CHUNK = 256
FAR = -2      # out_t for a point with no surface within the cap: settled, no fallback needed


@njit(cache=True, parallel=True)
def query_grid(P, rec, rel, ids, cell_start, cell_tris, cell_sub, split_f, split_base, sub_start, sub_tris, origin,
               h, dims, reach, cap, out_d, out_t, out_e, out_in, out_o, pst, stations):
    """Nearest triangle within the 3x3x3 cell block round each point; ``out_t = -1`` where that is not provably exact.

    Writes the face id (``ids`` maps records to the mesh's faces) and element of the answer.

    ``out_o``: distance to the nearest face of another element, when within ``reach`` of the
    nearest (else inf or more); ``reach = 0`` skips that search. ``cap``: squared distance
    beyond which surfaces are not wanted; a point with none nearer gets ``out_t = FAR`` when
    that is certain (the cap lies within the searched block), else -1.

    Points go in runs of GRID_CHUNK, in order: a scan's consecutive points mostly share their
    nearest triangle, so the previous answer bounds the search at once.
    """
    nx, ny, nz = dims[0], dims[1], dims[2]
    n = P.shape[0]
    chunks = (n + GRID_CHUNK - 1) // GRID_CHUNK
    for ch in prange(chunks):
        hint = -1
        for i in range(ch * GRID_CHUNK, min(n, (ch + 1) * GRID_CHUNK)):
            px, py, pz = P[i, 0], P[i, 1], P[i, 2]
            has_view, sx, sy, sz = _view(pst, stations, i)
            fx = (px - origin[0]) / h
            fy = (py - origin[1]) / h
            fz = (pz - origin[2]) / h
            out_e[i] = -1
            out_d[i] = np.inf
            out_in[i] = False
            out_o[i] = np.inf
            if not (fx >= 0.0 and fy >= 0.0 and fz >= 0.0 and fx < nx and fy < ny and fz < nz):
                # outside the grid (or NaN): at least a cell from every surface (the grid's margin)
                out_t[i] = FAR if cap <= h * h and np.isfinite(fx + fy + fz) else -1
                continue
            ix, iy, iz = int(fx), int(fy), int(fz)
            x0 = origin[0] + ix * h
            y0 = origin[1] + iy * h
            z0 = origin[2] + iz * h
            ox, oy, oz = px - x0, py - y0, pz - z0
            best = np.inf
            best_t = -1
            best_side = 0.0
            best_in = False
            other = np.inf
            if hint >= 0:
                # the last answer first (it is met again below; a tie keeps the face chosen by the rules)
                d2, side, inner = _tri_d2(rec, hint, px, py, pz, cap)
                if d2 <= cap:
                    best, best_t, best_side, best_in, other = _update(
                        rec, rel, hint, d2, side, inner, best, best_t, best_side, best_in, other, px, py, pz,
                        sx, sy, sz, has_view)
            c = (ix * ny + iy) * nz + iz
            j = cell_sub[c]
            s0, s1, s2, s3, s4, s5 = 1, 1, 1, 0, 0, 0          # nothing to skip
            if j >= 0 and best_t < 0 and cap == np.inf:
                # a crowded cell and no bound yet: the point's own sub-cell first
                f = split_f[j]
                hs = h / f
                s0 = s3 = min(f - 1, int(ox / hs))
                s1 = s4 = min(f - 1, int(oy / hs))
                s2 = s5 = min(f - 1, int(oz / hs))
                q = split_base[j] + (s0 * f + s1) * f + s2
                for s in range(sub_start[q], sub_start[q + 1]):
                    t = sub_tris[s]
                    d2, side, inner = _tri_d2(rec, t, px, py, pz, _limit(best, 0.0, other))
                    best, best_t, best_side, best_in, other = _update(
                        rec, rel, t, d2, side, inner, best, best_t, best_side, best_in, other, px, py, pz,
                        sx, sy, sz, has_view)
            best, best_t, best_side, best_in, other = _scan_cell(
                c, x0, y0, z0, h, s0, s1, s2, s3, s4, s5, rec, rel, cell_start, cell_tris, cell_sub, split_f,
                split_base, sub_start, sub_tris, 0.0, cap, px, py, pz, sx, sy, sz, has_view, best, best_t, best_side,
                best_in, other)
            # neighbours only on the sides where a nearer surface could still be
            lim = min(_limit(best, 0.0, other), cap)
            r = math.sqrt(lim)
            x_0 = -1 if (ox < r and ix > 0) else 0
            x_1 = 1 if (h - ox < r and ix < nx - 1) else 0
            y_0 = -1 if (oy < r and iy > 0) else 0
            y_1 = 1 if (h - oy < r and iy < ny - 1) else 0
            z_0 = -1 if (oz < r and iz > 0) else 0
            z_1 = 1 if (h - oz < r and iz < nz - 1) else 0
            for dx in range(x_0, x_1 + 1):
                gx = ox if dx < 0 else (h - ox if dx > 0 else 0.0)
                for dy in range(y_0, y_1 + 1):
                    gy = oy if dy < 0 else (h - oy if dy > 0 else 0.0)
                    for dz in range(z_0, z_1 + 1):
                        if dx == 0 and dy == 0 and dz == 0:
                            continue
                        gz = oz if dz < 0 else (h - oz if dz > 0 else 0.0)
                        if gx * gx + gy * gy + gz * gz > min(_limit(best, 0.0, other), cap):
                            continue
                        c = ((ix + dx) * ny + iy + dy) * nz + iz + dz
                        best, best_t, best_side, best_in, other = _scan_cell(
                            c, x0 + dx * h, y0 + dy * h, z0 + dz * h, h, 1, 1, 1, 0, 0, 0, rec, rel, cell_start,
                            cell_tris, cell_sub, split_f, split_base, sub_start, sub_tris, 0.0, cap, px, py, pz, sx,
                            sy, sz, has_view, best, best_t, best_side, best_in, other)
            margin = min(ox + h, 2.0 * h - ox, oy + h, 2.0 * h - oy, oz + h, 2.0 * h - oz)
            if best_t < 0 or best > cap:
                out_t[i] = FAR if cap <= margin * margin else -1
                hint = -1
                continue
            if best > margin * margin:
                out_t[i] = -1
                hint = -1
                continue
            hint = best_t
            if reach > 0.0:
                # second pass: the nearest face of another element, up to reach beyond the nearest
                rr = math.sqrt(best) + reach
                lim0 = rr * rr
                other = np.inf
                be = rel[best_t]
                x_0 = -1 if (ox < rr and ix > 0) else 0
                x_1 = 1 if (h - ox < rr and ix < nx - 1) else 0
                y_0 = -1 if (oy < rr and iy > 0) else 0
                y_1 = 1 if (h - oy < rr and iy < ny - 1) else 0
                z_0 = -1 if (oz < rr and iz > 0) else 0
                z_1 = 1 if (h - oz < rr and iz < nz - 1) else 0
                for dx in range(x_0, x_1 + 1):
                    gx = ox if dx < 0 else (h - ox if dx > 0 else 0.0)
                    for dy in range(y_0, y_1 + 1):
                        gy = oy if dy < 0 else (h - oy if dy > 0 else 0.0)
                        for dz in range(z_0, z_1 + 1):
                            gz = oz if dz < 0 else (h - oz if dz > 0 else 0.0)
                            if gx * gx + gy * gy + gz * gz > min(lim0, other):
                                continue
                            c = ((ix + dx) * ny + iy + dy) * nz + iz + dz
                            other = _scan_other(c, x0 + dx * h, y0 + dy * h, z0 + dz * h, h, be, rec, rel, cell_start,
                                                cell_tris, cell_sub, split_f, split_base, sub_start, sub_tris, px, py,
                                                pz, lim0, other)
            out_t[i] = ids[best_t]
            out_e[i] = rel[best_t]
            out_in[i] = best_in
            out_o[i] = math.sqrt(other) if other < np.inf else np.inf
            d = math.sqrt(best)
            out_d[i] = -d if best_side < 0.0 else d


LEAF_SIZE = 6


SAH_BINS = 16


@njit(cache=True)
def _area(b0, b1, b2, b3, b4, b5):
    dx, dy, dz = max(b3 - b0, 0.0), max(b4 - b1, 0.0), max(b5 - b2, 0.0)
    return dx * dy + dy * dz + dz * dx


@njit(cache=True)
def _sah_split(order, s, e, tbox, cent, bins_n, bins_box, tmp):
    """Reorder order[s:e] about the split with the least surface-area cost; return the split index."""
    best_cost = np.inf
    best_axis = -1
    best_bin = 0
    cmin = np.empty(3)
    cmax = np.empty(3)
    for a in range(3):
        lo = np.inf
        hi = -np.inf
        for q in range(s, e):
            c = cent[order[q], a]
            lo = min(lo, c)
            hi = max(hi, c)
        cmin[a], cmax[a] = lo, hi
        if hi - lo <= 1e-12:
            continue
        scale = SAH_BINS / (hi - lo)
        for b in range(SAH_BINS):
            bins_n[a, b] = 0
            for j in range(3):
                bins_box[a, b, j] = np.inf
                bins_box[a, b, 3 + j] = -np.inf
        for q in range(s, e):
            t = order[q]
            b = min(SAH_BINS - 1, int((cent[t, a] - lo) * scale))
            bins_n[a, b] += 1
            for j in range(3):
                bins_box[a, b, j] = min(bins_box[a, b, j], tbox[t, j])
                bins_box[a, b, 3 + j] = max(bins_box[a, b, 3 + j], tbox[t, 3 + j])
        # sweep: cost of splitting after bin i = area(left) n(left) + area(right) n(right)
        right_area = np.zeros(SAH_BINS)
        right_n = np.zeros(SAH_BINS, dtype=np.int64)
        r0, r1, r2, r3, r4, r5 = np.inf, np.inf, np.inf, -np.inf, -np.inf, -np.inf
        cnt = 0
        for b in range(SAH_BINS - 1, 0, -1):
            cnt += bins_n[a, b]
            r0, r1, r2 = min(r0, bins_box[a, b, 0]), min(r1, bins_box[a, b, 1]), min(r2, bins_box[a, b, 2])
            r3, r4, r5 = max(r3, bins_box[a, b, 3]), max(r4, bins_box[a, b, 4]), max(r5, bins_box[a, b, 5])
            right_area[b] = _area(r0, r1, r2, r3, r4, r5) if cnt else 0.0
            right_n[b] = cnt
        l0, l1, l2, l3, l4, l5 = np.inf, np.inf, np.inf, -np.inf, -np.inf, -np.inf
        cnt = 0
        for b in range(SAH_BINS - 1):
            cnt += bins_n[a, b]
            l0, l1, l2 = min(l0, bins_box[a, b, 0]), min(l1, bins_box[a, b, 1]), min(l2, bins_box[a, b, 2])
            l3, l4, l5 = max(l3, bins_box[a, b, 3]), max(l4, bins_box[a, b, 4]), max(l5, bins_box[a, b, 5])
            if cnt == 0 or right_n[b + 1] == 0:
                continue
            cost = _area(l0, l1, l2, l3, l4, l5) * cnt + right_area[b + 1] * right_n[b + 1]
            if cost < best_cost:
                best_cost, best_axis, best_bin = cost, a, b
    if best_axis < 0:
        return (s + e) // 2                  # all centroids coincide: any halving will do
    lo = cmin[best_axis]
    scale = SAH_BINS / (cmax[best_axis] - lo)
    i = s
    j = 0
    for q in range(s, e):                    # stable partition: left bins first
        t = order[q]
        if min(SAH_BINS - 1, int((cent[t, best_axis] - lo) * scale)) <= best_bin:
            order[i] = t
            i += 1
        else:
            tmp[j] = t
            j += 1
    for q in range(j):
        order[i + q] = tmp[q]
    return i


@njit(cache=True)
def build_bvh(rec):
    """A bounding-volume hierarchy over the triangles (binned surface-area heuristic splits).

    Returns node boxes (k, 6), children (k, 2) (-1 for a leaf), leaf ranges (k, 2) into
    ``order`` (the triangle ids, leaf by leaf) and ``order``.
    """
    m = rec.shape[0]
    tbox = np.empty((m, 6))
    cent = np.empty((m, 3))
    for t in range(m):
        for a in range(3):
            v0 = rec[t, a]
            v1 = v0 + rec[t, 3 + a]
            v2 = v0 + rec[t, 6 + a]
            tbox[t, a] = min(v0, v1, v2)
            tbox[t, 3 + a] = max(v0, v1, v2)
            cent[t, a] = (v0 + v1 + v2) / 3.0
    order = np.arange(m).astype(np.int64)
    cap = max(1, 2 * m)
    boxes = np.empty((cap, 6))
    children = np.full((cap, 2), -1, dtype=np.int64)
    ranges = np.zeros((cap, 2), dtype=np.int64)
    stack = np.empty((cap, 3), dtype=np.int64)   # node, start, end
    bins_n = np.zeros((3, SAH_BINS), dtype=np.int64)
    bins_box = np.empty((3, SAH_BINS, 6))
    tmp = np.empty(m, dtype=np.int64)
    nodes = 1
    top = 0
    if m > 0:
        stack[0, 0], stack[0, 1], stack[0, 2] = 0, 0, m
        top = 1
    while top > 0:
        top -= 1
        node, s, e = stack[top, 0], stack[top, 1], stack[top, 2]
        for a in range(3):
            lo = np.inf
            hi = -np.inf
            for q in range(s, e):
                t = order[q]
                lo = min(lo, tbox[t, a])
                hi = max(hi, tbox[t, 3 + a])
            boxes[node, a] = lo
            boxes[node, 3 + a] = hi
        ranges[node, 0], ranges[node, 1] = s, e
        if e - s <= LEAF_SIZE:
            continue
        mid = _sah_split(order, s, e, tbox, cent, bins_n, bins_box, tmp)
        left, right = nodes, nodes + 1
        nodes += 2
        children[node, 0], children[node, 1] = left, right
        stack[top, 0], stack[top, 1], stack[top, 2] = left, s, mid
        stack[top + 1, 0], stack[top + 1, 1], stack[top + 1, 2] = right, mid, e
        top += 2
    return boxes[:nodes].copy(), children[:nodes].copy(), ranges[:nodes].copy(), order


@njit(cache=True, inline="always")
def _box_d2(boxes, k, px, py, pz):
    gx = max(boxes[k, 0] - px, 0.0, px - boxes[k, 3])
    gy = max(boxes[k, 1] - py, 0.0, py - boxes[k, 4])
    gz = max(boxes[k, 2] - pz, 0.0, pz - boxes[k, 5])
    return gx * gx + gy * gy + gz * gz


BVH_CHUNK = 512


@njit(cache=True, parallel=True)
def query_bvh(P, rec, rel, ids, boxes, children, ranges, order, reach, out_d, out_t, out_e, out_in, out_o, pst,
              stations):
    """Exact nearest triangle through the hierarchy: for points the grid could not settle.

    Points are taken in chunks, in order: a scan's consecutive points have nearly the same
    nearest triangle, so the previous answer is tried first and bounds the search at once.
    """
    n = P.shape[0]
    chunks = (n + BVH_CHUNK - 1) // BVH_CHUNK
    for c in prange(chunks):
        stack = np.empty(128, dtype=np.int64)
        hint = -1
        for i in range(c * BVH_CHUNK, min(n, (c + 1) * BVH_CHUNK)):
            px, py, pz = P[i, 0], P[i, 1], P[i, 2]
            has_view, sx, sy, sz = _view(pst, stations, i)
            if not (np.isfinite(px) and np.isfinite(py) and np.isfinite(pz)):
                out_d[i] = np.nan
                out_t[i] = ids[order[0]]
                out_e[i] = rel[order[0]]
                out_in[i] = False
                out_o[i] = np.inf
                continue
            best = np.inf
            best_side = 0.0
            best_in = False
            other = np.inf
            best_t = -1
            if hint >= 0:
                d2, side, inner = _tri_d2(rec, hint, px, py, pz, np.inf)
                best, best_t, best_side, best_in, other = _update(
                    rec, rel, hint, d2, side, inner, best, best_t, best_side, best_in, other, px, py, pz, sx, sy, sz,
                    has_view)
            stack[0] = 0
            top = 1
            while top > 0:
                top -= 1
                k = stack[top]
                if _box_d2(boxes, k, px, py, pz) > _limit(best, reach, other):
                    continue
                if children[k, 0] < 0:
                    for q in range(ranges[k, 0], ranges[k, 1]):
                        t = order[q]
                        if t == hint:
                            continue
                        d2, side, inner = _tri_d2(rec, t, px, py, pz, _limit(best, reach, other))
                        best, best_t, best_side, best_in, other = _update(
                            rec, rel, t, d2, side, inner, best, best_t, best_side, best_in, other, px, py, pz,
                            sx, sy, sz, has_view)
                    continue
                a, b = children[k, 0], children[k, 1]
                da = _box_d2(boxes, a, px, py, pz)
                db = _box_d2(boxes, b, px, py, pz)
                if da < db:        # nearer child on top of the stack
                    stack[top] = b
                    stack[top + 1] = a
                else:
                    stack[top] = a
                    stack[top + 1] = b
                top += 2
            hint = best_t
            out_t[i] = ids[max(best_t, 0)]
            out_e[i] = rel[max(best_t, 0)]
            out_in[i] = best_in
            out_o[i] = math.sqrt(other) if other < np.inf else np.inf
            d = math.sqrt(best)
            out_d[i] = -d if best_side < 0.0 else d
