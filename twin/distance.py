"""Exact signed distance from scan points to a model's surfaces, and the element each point belongs to.

Scan points lie within centimetres of the surfaces they were measured on, and a building's
triangles are local. So the triangles go into a uniform grid (each cell lists the triangles
whose box crosses it and whose plane passes through it), and a point looks only at its own cell
and at those of its 26 neighbours that could still hold something nearer, rejecting a triangle
first by its plane distance (a lower bound) before the exact point-triangle test. Detailed
models (steel with bolts and plates, stairs, railings, MEP: a thousand triangles and more in
one 0.3 m cell) would make that list long, so a crowded cell is split into up to 12 x 12 x 12
sub-cells (about three triangles each), searched only where they lie within the current bound.
Points arrive in scan order, so each point first tries the previous point's triangle, which
usually bounds the search to a sub-cell or two at once. The nearest face of *another* element
(how clear the attribution is) is a second pass that skips the nearest's own element.

The answer is exact whenever the nearest surface lies within one cell (checked per point); the
few points farther away go to a second, exact search through a triangle bounding-volume
hierarchy, unless a band (``max_distance_m``, CloudCompare's ``-MAX_DIST``) says they are
not wanted. The loops are compiled with numba, cached on disk and run on all cores; ``python -m
sitetwin.twin.distance --warm`` (run by ``make setup``) fills the cache, so that the first
survey compiles nothing.

Sign convention: the distance is positive on the side the nearest triangle's normal points
to, negative behind it. IfcOpenShell tessellates element solids with outward normals, so
``+`` means outside the nearest element's solid (material missing where the model has a
surface, or a surface standing proud of it) and ``-`` inside it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Dense grids beyond this many cells grow the cell instead (memory: 4 bytes per cell).
MAX_CELLS = 16_000_000
DEFAULT_CELL_M = 0.3
BVH_PIECE_M = 4.0
QUERY_CHUNK = 2_000_000
# Triangle record layout: a(3), ab(3), ac(3), unit normal(3), ab.ab, ab.ac, ac.ac
_TRI_FIELDS = 15


@dataclass(frozen=True)
class DistanceResult:
    """Per point: signed distance (m), nearest triangle and its element.

    distance_m : (n,) float32, + outside the nearest element's solid (see module docstring)
    triangle : (n,) int32 index into the mesh's faces (-1 only for an empty mesh)
    element : (n,) int32 index into the mesh's ``global_ids`` (-1 likewise)
    on_face : (n,) bool, the nearest point lies inside the triangle, not on an edge or corner:
        the triangle's normal is then the direction of the deviation
    other_m : (n,) float32, distance to the nearest face of *another* element when that is
        within the ``other_within_m`` asked for (else inf): how clear the attribution is
    """

    distance_m: np.ndarray
    triangle: np.ndarray
    element: np.ndarray
    on_face: np.ndarray
    other_m: np.ndarray | None = None


class SurfaceIndex:
    """A uniform grid over a mesh's triangles, for exact nearest-surface queries.

    ``vertices`` (n, 3), ``faces`` (m, 3) int, ``face_element`` (m,) int. Build once per
    model, query many times. Degenerate (zero-area) triangles are left out: their points lie
    on their neighbours' edges.

    >>> index = SurfaceIndex.from_mesh(model_mesh)                     # doctest: +SKIP
    >>> result = index.query(points_local_m)                            # doctest: +SKIP
    """

    def __init__(self, vertices: np.ndarray, faces: np.ndarray, face_element: np.ndarray | None = None,
                 *, cell_m: float | None = None):
        vertices = np.asanyarray(vertices, dtype=np.float64)
        faces = np.asanyarray(faces, dtype=np.int64)
        if vertices.ndim != 2 or vertices.shape[1] != 3:
            raise ValueError(f"vertices must be (n, 3), got {vertices.shape}")
        if faces.ndim != 2 or faces.shape[1] != 3:
            raise ValueError(f"faces must be (m, 3), got {faces.shape}")
        if face_element is None:
            face_element = np.zeros(len(faces), dtype=np.int32)
        face_element = np.asanyarray(face_element, dtype=np.int32)
        if face_element.shape != (len(faces),):
            raise ValueError(f"face_element must be ({len(faces)},), got {face_element.shape}")
        tri = vertices[faces]                                 # (m, 3, 3)
        ab, ac = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
        normal = np.cross(ab, ac)
        area2 = np.linalg.norm(normal, axis=1)
        keep = np.flatnonzero(area2 > 1e-12)
        self.triangle_ids = keep.astype(np.int32)     # record -> original face index
        tri, ab, ac, normal, area2 = tri[keep], ab[keep], ac[keep], normal[keep], area2[keep]
        normal /= area2[:, None]
        self.face_normals = np.zeros((len(faces), 3))
        self.face_normals[keep] = normal
        rec = np.empty((len(tri), _TRI_FIELDS), dtype=np.float64)
        rec[:, 0:3], rec[:, 3:6], rec[:, 6:9], rec[:, 9:12] = tri[:, 0], ab, ac, normal
        rec[:, 12] = np.einsum("ij,ij->i", ab, ab)
        rec[:, 13] = np.einsum("ij,ij->i", ab, ac)
        rec[:, 14] = np.einsum("ij,ij->i", ac, ac)
        self.records = rec
        self.face_element = face_element
        self.record_element = face_element[keep]
        self.triangle_count = int(len(faces))
        if len(tri) == 0:
            self.origin = np.zeros(3)
            self.cell_m = 1.0
            self.dims = np.ones(3, dtype=np.int64)
            self.cell_start = np.zeros(2, dtype=np.int64)
            self.cell_tris = np.zeros(0, dtype=np.int32)
            self.split = (np.full(1, -1, dtype=np.int32), np.zeros(0, dtype=np.int64), np.zeros(1, dtype=np.int64),
                          np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.int32))
        else:
            lo = tri.min(axis=(0, 1))
            hi = tri.max(axis=(0, 1))
            h = float(cell_m or DEFAULT_CELL_M)
            span = hi - lo
            while np.prod(np.floor(span / h) + 3) > MAX_CELLS:
                h *= 1.25
            self.cell_m = h
            self.origin = lo - h          # one empty cell of margin on every side
            self.dims = (np.floor(span / h) + 3).astype(np.int64)
            k = _kernels()
            self.cell_start, self.cell_tris = k.build_grid(rec, self.origin, h, self.dims)
            # crowded cells (detailed parts) get sub-cells: (cell_sub, split_f, split_base, sub_start, sub_tris)
            self.split = k.build_split(rec, self.origin, h, self.dims, self.cell_start, self.cell_tris)
        self._bvh = None

    @classmethod
    def from_mesh(cls, mesh, *, cell_m: float | None = None) -> SurfaceIndex:
        """An index over a ``bim.ModelMesh`` (local frame, metres)."""
        return cls(mesh.vertices, mesh.faces, mesh.face_element, cell_m=cell_m)

    def _hierarchy(self):
        # Built on first need: only points farther than a cell from every surface use it. Big
        # triangles (a slab's two) would give boxes that overlap everything, so they are split
        # into pieces no longer than BVH_PIECE_M; each piece answers for its triangle.
        if self._bvh is None:
            pieces, owner = _split_long(self.records, BVH_PIECE_M)
            boxes, children, ranges, order = _kernels().build_bvh(pieces)
            self._bvh = (pieces, boxes, children, ranges, order, self.record_element[owner],
                         self.triangle_ids[owner])
        return self._bvh

    def prepare(self) -> SurfaceIndex:
        """Build the far-point hierarchy now rather than on first need (for timing, or before forking)."""
        self._hierarchy()
        return self

    @property
    def cells(self) -> int:
        return int(np.prod(self.dims))

    def stats(self) -> dict:
        counts = np.diff(self.cell_start)
        occupied = counts[counts > 0]
        cell_sub, split_f, _, sub_start, sub_tris = self.split
        sub_counts = np.diff(sub_start)
        # what a point meets: a plain cell's list, or a split cell's sub-cell
        leaf = np.concatenate([counts[(counts > 0) & (cell_sub < 0)], sub_counts[sub_counts > 0]])
        return {"cell_m": self.cell_m, "cells": self.cells, "occupied_cells": int(len(occupied)),
                "mean_triangles_per_occupied_cell": float(occupied.mean()) if len(occupied) else 0.0,
                "max_triangles_per_cell": int(counts.max()) if len(counts) else 0,
                "split_cells": int(len(split_f)), "sub_cells": int(len(sub_counts)),
                "mean_triangles_per_occupied_leaf": float(leaf.mean()) if len(leaf) else 0.0,
                "max_triangles_per_leaf": int(leaf.max()) if len(leaf) else 0,
                "memory_mb": (self.cell_start.nbytes + self.cell_tris.nbytes + self.records.nbytes
                              + sum(a.nbytes for a in self.split)) / 1e6}

    def query(self, points: np.ndarray, *, exact_far: bool = True, point_station: np.ndarray | None = None,
              stations: np.ndarray | None = None, other_within_m: float = 0.0, max_distance_m: float | None = None,
              chunk: int = QUERY_CHUNK) -> DistanceResult:
        """Exact signed distance, nearest triangle and element for every point (n, 3), metres.

        Where two elements' faces coincide (a column's top under a beam's soffit), a point is
        as near to one as to the other: it goes to the face its scanner could see, given
        ``stations`` (s, 3) and ``point_station`` (n,) (-1: unknown), or else to the face it
        lies in front of. ``other_within_m > 0`` also finds the nearest face of another element
        up to that much farther than the nearest (``other_m``).

        With ``exact_far=False`` points farther than one cell (``cell_m``) from every surface
        are not searched further: they get ``inf`` and triangle/element -1 (what ICP wants).
        ``max_distance_m``: points with no surface that near get ``inf`` and -1 likewise (a
        deviation band: CloudCompare's ``-MAX_DIST``); within it the answer stays exact, and
        ``other_m`` too when the band plus ``other_within_m`` is under a cell.
        """
        points = np.asanyarray(points)
        if points.ndim != 2 or points.shape[1] != 3:
            raise ValueError(f"points must be (n, 3), got {points.shape}")
        n = len(points)
        dist = np.empty(n, dtype=np.float32)
        tri = np.empty(n, dtype=np.int32)
        element = np.empty(n, dtype=np.int32)
        inner = np.zeros(n, dtype=np.bool_)
        other = np.full(n, np.inf, dtype=np.float32)
        if len(self.records) == 0:
            dist[:] = np.inf
            tri[:] = -1
            element[:] = -1
            return DistanceResult(dist, tri, element, inner, other)
        reach = float(max(other_within_m, 0.0))
        k = _kernels()
        if stations is None or point_station is None:
            pst_all, st = np.zeros(0, dtype=np.int16), np.zeros((1, 3))
        else:
            pst_all = np.asarray(point_station, dtype=np.int16)
            st = np.ascontiguousarray(stations, dtype=np.float64).reshape(-1, 3)
            if len(pst_all) != n:
                raise ValueError(f"point_station must be ({n},), got {pst_all.shape}")
        cap = np.inf if max_distance_m is None else float(max_distance_m) ** 2
        for s in range(0, n, chunk):
            e = min(n, s + chunk)
            p = np.ascontiguousarray(points[s:e], dtype=np.float64)
            pst = pst_all[s:e] if len(pst_all) else pst_all
            # the kernels write straight into the result (views of the chunk)
            k.query_grid(p, self.records, self.record_element, self.triangle_ids, self.cell_start, self.cell_tris,
                         *self.split, self.origin, self.cell_m, self.dims, reach, cap, dist[s:e], tri[s:e],
                         element[s:e], inner[s:e], other[s:e], pst, st)
            t = tri[s:e]
            far = np.flatnonzero(t == -1)
            t[t == k.FAR] = -1                 # settled: nothing within max_distance_m
            if len(far) and exact_far:
                fd = np.empty(len(far), dtype=np.float32)
                ft = np.empty(len(far), dtype=np.int32)
                fe = np.empty(len(far), dtype=np.int32)
                ff = np.empty(len(far), dtype=np.bool_)
                fo = np.empty(len(far), dtype=np.float32)
                pieces, boxes, children, ranges, order, piece_element, piece_face = self._hierarchy()
                k.query_bvh(np.ascontiguousarray(p[far]), pieces, piece_element, piece_face, boxes, children, ranges,
                            order, reach, fd, ft, fe, ff, fo, pst[far] if len(pst) else pst, st)
                if cap < np.inf:
                    beyond = fd.astype(np.float64) ** 2 > cap
                    fd[beyond], ft[beyond], fe[beyond], ff[beyond], fo[beyond] = np.inf, -1, -1, False, np.inf
                dist[s + far], tri[s + far], element[s + far], inner[s + far], other[s + far] = fd, ft, fe, ff, fo
        return DistanceResult(dist, tri, element, inner, other)


def _split_long(records: np.ndarray, max_edge_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Triangle records with every edge longer than ``max_edge_m`` halved (recursively), and the
    record each piece came from."""
    a = records[:, 0:3]
    tri = np.stack([a, a + records[:, 3:6], a + records[:, 6:9]], axis=1)
    owner = np.arange(len(tri))
    done_t, done_o = [], []
    while len(tri):
        edges = np.stack([tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 1], tri[:, 0] - tri[:, 2]], axis=1)
        length = np.linalg.norm(edges, axis=2)
        longest = length.argmax(axis=1)
        split = length[np.arange(len(tri)), longest] > max_edge_m
        done_t.append(tri[~split])
        done_o.append(owner[~split])
        tri, owner, longest = tri[split], owner[split], longest[split]
        if not len(tri):
            break
        # rotate so the longest edge runs from corner 0 to corner 1, then cut it at its middle
        idx = (np.arange(3)[None, :] + longest[:, None]) % 3
        tri = np.take_along_axis(tri, idx[:, :, None], axis=1)
        mid = (tri[:, 0] + tri[:, 1]) / 2
        first = np.stack([tri[:, 0], mid, tri[:, 2]], axis=1)
        second = np.stack([mid, tri[:, 1], tri[:, 2]], axis=1)
        tri = np.concatenate([first, second])
        owner = np.concatenate([owner, owner])
    tri = np.concatenate(done_t) if done_t else np.zeros((0, 3, 3))
    owner = np.concatenate(done_o) if done_o else np.zeros(0, dtype=np.int64)
    ab, ac = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    rec = np.empty((len(tri), _TRI_FIELDS))
    rec[:, 0:3], rec[:, 3:6], rec[:, 6:9] = tri[:, 0], ab, ac
    rec[:, 9:12] = records[owner, 9:12]            # the piece keeps its triangle's normal exactly
    rec[:, 12] = np.einsum("ij,ij->i", ab, ab)
    rec[:, 13] = np.einsum("ij,ij->i", ab, ac)
    rec[:, 14] = np.einsum("ij,ij->i", ac, ac)
    return rec, owner.astype(np.int64)


def signed_distance(mesh, points: np.ndarray, *, cell_m: float | None = None) -> DistanceResult:
    """One-off query: build a :class:`SurfaceIndex` over ``mesh`` and query ``points``."""
    return SurfaceIndex.from_mesh(mesh, cell_m=cell_m).query(points)


_KERNELS = None


def _kernels():
    """Compile (or load from numba's cache) the grid kernels on first use."""
    global _KERNELS
    if _KERNELS is None:
        from sitetwin.twin import _distance_kernels

        _KERNELS = _distance_kernels
    return _KERNELS


def thread_count() -> int:
    import numba

    return int(numba.get_num_threads())


KERNELS = ("build_grid", "build_split", "query_grid", "build_bvh", "query_bvh")


def warm() -> dict[str, str]:
    """Compile every distance kernel into numba's cache (or load it from there), with the argument
    types real queries use: what the install runs, so that a user's first survey compiles nothing.

    Returns, per kernel, ``loaded`` (from the cache) or ``compiled`` (and now cached)."""
    rng = np.random.default_rng(0)
    # a slab's two triangles and a crowded cluster (so that a cell is split), points near and far
    slab = np.array([[0, 0, 0], [4, 0, 0], [4, 4, 0], [0, 4, 0]], dtype=float)
    cluster = rng.random((90, 3)) * 0.2 + [1.0, 1.0, 0.5]
    vertices = np.concatenate([slab, cluster])
    faces = np.concatenate([[[0, 1, 2], [0, 2, 3]], 4 + np.arange(90).reshape(30, 3)])
    index = SurfaceIndex(vertices, faces, np.r_[0, 0, np.arange(30) % 3 + 1]).prepare()
    points = np.array([[1.1, 1.1, 0.6], [2.0, 2.0, 0.01], [2.0, 2.0, 9.0], [50.0, 0, 0]])
    index.query(points)
    index.query(points, max_distance_m=0.08, other_within_m=0.05, point_station=np.array([0, 0, -1, 0]),
                stations=np.array([[2.0, 2.0, 1.5]]))
    k = _kernels()
    return {name: ("compiled" if sum(getattr(k, name).stats.cache_misses.values()) else "loaded")
            for name in KERNELS}


if __name__ == "__main__":      # python -m sitetwin.twin.distance: fill the kernel cache (the install runs it)
    import json
    import sys

    if sys.argv[1:] not in ([], ["--warm"]):
        sys.exit("usage: python -m sitetwin.twin.distance [--warm]")
    print(json.dumps(warm()))

