"""Surveys too large to hold in memory: read chunk by chunk, register on a subsample, deviation per chunk,
per-element statistics merged exactly.

A day of terrestrial scanning is 200 M to 1 B points; loaded whole (coordinates, colours, the
distance results) that is tens of gigabytes. Here a survey file is read in chunks of
``CHUNK_POINTS`` (laspy's ``chunk_iterator`` for LAS/LAZ, libE57's block reader for E57; for COPC
the octree is used: a subsample comes from its top levels alone, and only the nodes that meet the
model's box are read), each chunk is placed (``T_model_from_survey``), its distances and
elements found and folded into :class:`ElementStats`, then dropped. Peak memory is set by the
chunk size and the model, whatever the survey's size.

Per element (the points within ``band_m`` of it, nearest first), merged exactly, so that the
result does not depend on the chunking and equals the in-memory one (one chunk) bit for bit:

- ``points``, ``min_mm``, ``max_mm``: exact;
- ``mean_mm``, ``rms_mm``, ``std_mm``: from sums and sums of squares of the signed distance
  quantised to 0.1 um, kept as Python integers (exact, unbounded), so exact to that quantum;
- ``p50_mm``, ``p95_abs_mm``: from a fixed histogram over the band (``bin_mm`` wide bins, exact
  counts), so to within one bin of ``np.quantile`` (its linear rule, whatever the count);
- the fitted shift's normal equations (sums of n nT and n d over points inside their face) are
  float64 sums: equal to the in-memory ones to rounding (1e-12 relative), not bit for bit.

Points beyond the band are kept only as the set of 0.2 m voxels they occupy (for unplanned
objects), which grows with the site's volume, not with the point count.

``survey add`` of a file over the in-memory limit (``IN_MEMORY_POINTS``, or
``$SITETWIN_IN_MEMORY_POINTS``) registers on an even sample of it, analyses that sample (fits,
noise, unplanned objects, the points shown) and takes each element's counts, distance figures,
histogram, coverage and status from :func:`streamed_figures`, a pass over every point with the
same query as the in-memory path.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sitetwin.data.errors import Note, Phrase
from sitetwin.data.i18n import N_
from sitetwin.twin.errors import PointCloudError

CHUNK_POINTS = 2_000_000
QUANTUM_M = 1e-7                 # sums are of distances in units of 0.1 um, as integers
FAR_VOXEL_M = 0.2
STREAMABLE = (".las", ".laz", ".e57")


# ----------------------------------------------------------------------------- reading
def count_points(path: str | Path) -> int:
    """The number of points a LAS/LAZ/COPC/E57 file announces, read from its header only."""
    path = Path(path)
    suffix = _suffix(path)
    if suffix == ".e57":
        import pye57

        e57 = pye57.E57(str(path))
        try:
            return int(sum(e57.get_header(i).point_count for i in range(e57.scan_count)))
        finally:
            with contextlib.suppress(Exception):
                e57.close()
    import laspy

    with laspy.open(path) as reader:
        return int(reader.header.point_count)


def is_copc(path: Path) -> bool:
    if _suffix(path) != ".laz":
        return False
    import laspy

    try:
        with laspy.CopcReader.open(path):
            return True
    except Exception:
        return False


def iter_chunks(path: str | Path, chunk_points: int = CHUNK_POINTS, *,
                bounds: tuple[np.ndarray, np.ndarray] | None = None) -> Iterator[np.ndarray]:
    """The file's points, (n, 3) float64 in its own frame (E57 scan poses applied), chunk by chunk.

    ``bounds`` (lo, hi) in the file's frame: for COPC, only the octree nodes meeting that box are
    read (other formats read everything; the caller keeps what it needs)."""
    path = Path(path)
    suffix = _suffix(path)
    if suffix == ".e57":
        yield from (xyz for _index, xyz in _e57_chunks(path, chunk_points))
    elif bounds is not None and is_copc(path):
        yield from _copc_chunks(path, chunk_points, bounds)
    else:
        yield from _las_chunks(path, chunk_points)


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in STREAMABLE:
        raise PointCloudError(N_("{path}: streaming reads LAS, LAZ, COPC and E57 files, not {suffix}"), path=path,
                              suffix=suffix or Phrase(N_("no suffix")))
    return suffix


def _las_chunks(path: Path, chunk_points: int) -> Iterator[np.ndarray]:
    import laspy

    try:
        reader = laspy.open(path)
    except Exception as exc:
        raise PointCloudError(N_("{path}: not a readable LAS/LAZ file ({reason})"), path=path,
                              reason=_first_line(exc)) from None
    with reader:
        total = int(reader.header.point_count)
        done = 0
        try:
            for chunk in reader.chunk_iterator(chunk_points):
                xyz = np.column_stack([np.asarray(chunk.x), np.asarray(chunk.y), np.asarray(chunk.z)])
                _check_finite(path, xyz, done)
                done += len(xyz)
                yield xyz
        except PointCloudError:
            raise
        except Exception as exc:
            raise PointCloudError(N_("{path}: truncated or corrupt file: read {done} of the {total} points its "
                                     "header announces ({reason})"), path=path, done=done, total=total,
                                  reason=_first_line(exc)) from None
    if done != total:
        raise PointCloudError(N_("{path}: truncated file: read {done} of the {total} points its header announces"),
                              path=path, done=done, total=total)


def _copc_chunks(path: Path, chunk_points: int, bounds) -> Iterator[np.ndarray]:
    """COPC: the box split into tiles in x and y so that each holds about a chunk; each tile one query
    (the octree reads only the nodes meeting it)."""
    import laspy
    from laspy.copc import Bounds

    with laspy.CopcReader.open(path) as reader:
        lo = np.maximum(np.asarray(bounds[0], dtype=float), reader.header.mins)
        hi = np.minimum(np.asarray(bounds[1], dtype=float), reader.header.maxs)
        if (hi < lo).any():
            return
        share = float(np.prod((hi - lo)[:2]) / max(np.prod((reader.header.maxs - reader.header.mins)[:2]), 1e-12))
        tiles = max(1, int(np.ceil(np.sqrt(reader.header.point_count * min(share, 1.0) / chunk_points))))
        xs = np.linspace(lo[0], hi[0], tiles + 1)
        ys = np.linspace(lo[1], hi[1], tiles + 1)
        for i in range(tiles):
            for j in range(tiles):
                # tiles meet at their edges: a point on an edge belongs to the tile below it only
                t_lo = np.array([xs[i], ys[j], lo[2]])
                t_hi = np.array([xs[i + 1], ys[j + 1], hi[2]])
                rec = reader.query(bounds=Bounds(t_lo, t_hi))
                xyz = np.column_stack([np.asarray(rec.x), np.asarray(rec.y), np.asarray(rec.z)])
                keep = np.ones(len(xyz), dtype=bool)
                if i + 1 < tiles:
                    keep &= xyz[:, 0] < xs[i + 1]
                if j + 1 < tiles:
                    keep &= xyz[:, 1] < ys[j + 1]
                xyz = xyz[keep]
                _check_finite(path, xyz, 0)
                if len(xyz):
                    yield xyz


def _e57_chunks(path: Path, chunk_points: int) -> Iterator[tuple[int, np.ndarray]]:
    """(scan index, points in the file's frame) of every scan of an E57 file, block by block."""
    import pye57

    try:
        e57 = pye57.E57(str(path))
    except Exception as exc:
        raise PointCloudError(N_("{path}: not a readable E57 file ({reason})"), path=path,
                              reason=_first_line(exc)) from None
    try:
        for index in range(e57.scan_count):
            for xyz in _e57_scan_chunks(path, e57, index, chunk_points):
                yield index, xyz
    finally:
        with contextlib.suppress(Exception):
            e57.close()


def _e57_scan_chunks(path: Path, e57, index: int, chunk_points: int) -> Iterator[np.ndarray]:
    """One E57 scan's points in blocks, its pose applied (the file's frame)."""
    from pye57.e57 import convert_spherical_to_cartesian

    from sitetwin.twin.formats import e57_point_fields

    try:
        header = e57.get_header(index)
        fields = set(header.point_fields)
        cartesian, coords, invalid = e57_point_fields(header)
        wanted = coords + ([invalid] if invalid in fields else [])
        arrays, buffers = e57.make_buffers(wanted, max(1, min(chunk_points, int(header.point_count))))
        pose = np.eye(4)
        if header.has_pose():
            pose[:3, :3] = np.asarray(header.rotation_matrix, dtype=np.float64)
            pose[:3, 3] = np.asarray(header.translation, dtype=np.float64)
        reader = header.points.reader(buffers)
    except Exception as exc:
        raise PointCloudError(N_("{path}: truncated or corrupt E57 file ({reason})"), path=path,
                              reason=_first_line(exc)) from None
    done = 0
    try:
        while True:
            try:
                n = reader.read()
            except Exception as exc:
                raise PointCloudError(N_("{path}: truncated or corrupt E57 scan {index} after {done} points "
                                         "({reason})"), path=path, index=index, done=done,
                                      reason=_first_line(exc)) from None
            if n == 0:
                break
            xyz = np.column_stack([arrays[c][:n].astype(np.float64) for c in coords])
            if invalid in arrays:
                xyz = xyz[arrays[invalid][:n] == 0]
            if not cartesian:
                xyz = convert_spherical_to_cartesian(xyz)
            _check_finite(path, xyz, done)
            done += n
            yield xyz @ pose[:3, :3].T + pose[:3, 3]
    finally:
        reader.close()


def _check_finite(path: Path, xyz: np.ndarray, offset: int) -> None:
    bad = ~np.isfinite(xyz).all(axis=1)
    if bad.any():
        raise PointCloudError(N_("{path}: {n} point(s) with NaN/inf coordinates (first at point {first}); clean "
                                 "the cloud before importing it"), path=path, n=int(bad.sum()),
                              first=int(np.flatnonzero(bad)[0]) + offset)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def subsample(paths, n: int, *, chunk_points: int = CHUNK_POINTS, seed: int = 0) -> np.ndarray:
    """About ``n`` points drawn evenly at random from the files (file frames), in bounded memory: each
    point kept with probability n / total. A COPC file gives its octree's top levels instead
    (already an even thinning), read down to the level that holds at least its share."""
    paths = [Path(p) for p in paths]
    counts = [count_points(p) for p in paths]
    total = max(sum(counts), 1)
    rng = np.random.default_rng(seed)
    parts = []
    for path, count in zip(paths, counts):
        want = int(np.ceil(n * count / total))
        if is_copc(path):
            parts.append(_copc_levels(path, want))
            continue
        p = min(1.0, want / max(count, 1))
        for xyz in iter_chunks(path, chunk_points):
            parts.append(xyz[rng.random(len(xyz)) < p] if p < 1.0 else xyz)
    return np.concatenate(parts) if parts else np.zeros((0, 3))


def _copc_levels(path: Path, want: int) -> np.ndarray:
    import laspy

    with laspy.CopcReader.open(path) as reader:
        level = 0
        while True:
            rec = reader.query(level=range(0, level + 1))
            if len(rec) >= want or len(rec) >= reader.header.point_count or level > 24:
                return np.column_stack([np.asarray(rec.x), np.asarray(rec.y), np.asarray(rec.z)])
            level += 1


IN_MEMORY_POINTS = 60_000_000     # a survey file larger than this is thinned evenly as it is read
IN_MEMORY_ENV = "SITETWIN_IN_MEMORY_POINTS"


def in_memory_limit(points: int | None = None) -> int:
    """The most points of one survey file held in memory: ``points``, else ``$SITETWIN_IN_MEMORY_POINTS``,
    else ``IN_MEMORY_POINTS``."""
    if points is None:
        raw = os.environ.get(IN_MEMORY_ENV, "").replace("_", "").strip()
        points = int(raw) if raw.isdigit() else IN_MEMORY_POINTS
    if points < 1:
        raise ValueError(f"the in-memory limit must be a positive number of points, got {points}")
    return int(points)


def read_scans_bounded(path: str | Path, *, crs: str | None = None, max_points: int = IN_MEMORY_POINTS,
                       chunk_points: int = CHUNK_POINTS, seed: int = 0,
                       on_thin: Callable[[Note], None] | None = None):
    """``formats.read_scans``, but a LAS/LAZ/COPC/E57 file of more than ``max_points`` is read chunk by chunk
    and thinned evenly at random to about ``max_points`` (colour and intensity dropped), so that
    memory stays bounded whatever the survey's size. ``on_thin`` gets one line saying so (the survey
    then streams the deviation over every point: :func:`streamed_figures`)."""
    from dataclasses import replace

    from sitetwin.data.files import file_sha256
    from sitetwin.twin.formats import ScanData, file_format, read_crs, read_scans

    path = Path(path)
    total = 0
    if path.suffix.lower() in STREAMABLE and path.is_file():
        with contextlib.suppress(Exception):        # an unreadable header: read_scans says what is wrong
            total = count_points(path)
    if total <= max_points:
        return read_scans(path, chunk_points=chunk_points, crs=crs, seed=seed)
    fmt = file_format(path)
    declared = read_crs(path, fmt, strict=crs is None)
    if declared is None and crs:
        from pyproj import CRS

        declared = CRS.from_user_input(crs)
    p = max_points / total
    rng = np.random.default_rng(seed)
    sha = file_sha256(path)
    scans = []
    if fmt == "e57":
        for name, pose, has_pose, parts in _e57_scans_thinned(path, chunk_points, p, rng):
            xyz = np.concatenate(parts) if parts else np.zeros((0, 3))
            scans.append(ScanData(path, "e57", sha, name, xyz, None, None, pose, has_pose))
    else:
        parts = [xyz[rng.random(len(xyz)) < p] for xyz in _las_chunks(path, chunk_points)]
        scans.append(ScanData(path, fmt, sha, path.stem, np.concatenate(parts), None, None, np.eye(4), False))
    if declared is not None:
        scans = [replace(s, crs=declared.to_wkt(), crs_name=declared.to_string()) for s in scans]
    kept = sum(s.point_count for s in scans)
    if on_thin:
        on_thin(Note(N_("{file}: {n:,} points, more than {max_points:,} held in memory: registered and shown on "
                        "{kept:,} drawn evenly at random; each element's deviation, coverage and status are "
                        "streamed over every point"), file=path.name, n=total, max_points=max_points, kept=kept))
    return scans


def iter_scan_chunks(path: str | Path, chunk_points: int = CHUNK_POINTS) -> Iterator[tuple[int, np.ndarray]]:
    """(scan index within the file, points (n, 3) in the file's frame) chunk by chunk: an E57 scan by scan
    (its pose applied), a LAS/LAZ/COPC file as scan 0."""
    path = Path(path)
    if _suffix(path) != ".e57":
        for xyz in _las_chunks(path, chunk_points):
            yield 0, xyz
        return
    yield from _e57_chunks(path, chunk_points)


def _e57_scans_thinned(path: Path, chunk_points: int, p: float, rng):
    """Per E57 scan: (name, pose, has pose, thinned point blocks in the file's frame)."""
    import pye57

    e57 = pye57.E57(str(path))
    try:
        for index in range(e57.scan_count):
            header = e57.get_header(index)
            try:
                name = str(header["name"].value())
            except Exception:
                name = f"scan {index}"
            pose = np.eye(4)
            if header.has_pose():
                pose[:3, :3] = np.asarray(header.rotation_matrix, dtype=np.float64)
                pose[:3, 3] = np.asarray(header.translation, dtype=np.float64)
            parts = [xyz[rng.random(len(xyz)) < p] for xyz in _e57_scan_chunks(path, e57, index, chunk_points)]
            yield name, pose, bool(header.has_pose()), parts
    finally:
        with contextlib.suppress(Exception):
            e57.close()


# ----------------------------------------------------------------------------- statistics
@dataclass
class ElementStats:
    """Per-element deviation statistics that merge exactly (see the module docstring)."""

    element_count: int
    band_m: float
    bin_mm: float
    points: np.ndarray = field(init=False)          # (k,) int64
    sum_q: np.ndarray = field(init=False)           # (k,) Python ints: sum of d / QUANTUM_M
    sumsq_q: np.ndarray = field(init=False)         # (k,) Python ints: sum of (d / QUANTUM_M)^2
    min_m: np.ndarray = field(init=False)           # (k,) float32 (inf where no point)
    max_m: np.ndarray = field(init=False)
    histogram: np.ndarray = field(init=False)       # (k, bins) int64 over [-band, band]
    total_points: int = 0

    def __post_init__(self):
        if not 0 < self.band_m <= 0.9:
            raise ValueError(f"band_m must be in (0, 0.9] m for exact sums, got {self.band_m}")
        k = self.element_count
        self.points = np.zeros(k, dtype=np.int64)
        self.sum_q = np.array([0] * k, dtype=object)
        self.sumsq_q = np.array([0] * k, dtype=object)
        self.min_m = np.full(k, np.inf, dtype=np.float32)
        self.max_m = np.full(k, -np.inf, dtype=np.float32)
        self.histogram = np.zeros((k, self.bins), dtype=np.int64)
        self._far = np.zeros(0, dtype=np.int64)
        self._pending: list[np.ndarray] = []
        self._pending_size = 0

    @property
    def bins(self) -> int:
        return int(round(2 * self.band_m * 1000 / self.bin_mm))

    def add(self, points_m: np.ndarray, distance_m: np.ndarray, element: np.ndarray) -> None:
        """Fold in one chunk: points (n, 3) in the model's frame, their signed distance and nearest element."""
        step = 4_000_000          # keeps a block's int64 sums of squares far from overflow
        for s in range(0, len(distance_m), step):
            self._add(points_m[s:s + step], distance_m[s:s + step], element[s:s + step])

    def _add(self, points_m: np.ndarray, distance_m: np.ndarray, element: np.ndarray) -> None:
        self.total_points += len(distance_m)
        near = (element >= 0) & (np.abs(distance_m) <= self.band_m)
        e = element[near].astype(np.int64)
        d = distance_m[near].astype(np.float32)
        k = self.element_count
        if len(e):
            q = np.rint(d.astype(np.float64) / QUANTUM_M).astype(np.int64)
            q2 = q * q
            # float64 sums of integers stay exact below 2**53: at most 4 M terms of |q| < 1e7, and the
            # squares split into their high and low 20 bits
            self.points += np.bincount(e, minlength=k)
            self.sum_q += _exact(np.bincount(e, weights=q, minlength=k))
            hi = _exact(np.bincount(e, weights=q2 >> 20, minlength=k))
            lo = _exact(np.bincount(e, weights=q2 & 0xFFFFF, minlength=k))
            self.sumsq_q += hi * (1 << 20) + lo
            np.minimum.at(self.min_m, e, d)
            np.maximum.at(self.max_m, e, d)
            b = np.clip(((d.astype(np.float64) + self.band_m) * 1000 / self.bin_mm).astype(np.int64), 0, self.bins - 1)
            self.histogram += np.bincount(e * self.bins + b, minlength=k * self.bins).reshape(k, self.bins)
        far = ~near
        if far.any():
            self._pending.append(_voxel_keys(points_m[far]))
            self._pending_size += len(self._pending[-1])
            if self._pending_size > max(4 * len(self._far), 4_000_000):
                self._settle()

    def _settle(self) -> None:
        if self._pending:
            self._far = np.unique(np.concatenate([self._far, *self._pending]))
            self._pending, self._pending_size = [], 0

    @property
    def far_voxels(self) -> np.ndarray:
        """Keys of the FAR_VOXEL_M voxels holding points beyond the band, sorted."""
        self._settle()
        return self._far

    def merge(self, other: ElementStats) -> ElementStats:
        """Add another part's statistics into this one (same elements, band and bins)."""
        if (other.element_count, other.band_m, other.bin_mm) != (self.element_count, self.band_m, self.bin_mm):
            raise ValueError("statistics of different models, bands or bins cannot be merged")
        self.total_points += other.total_points
        self.points += other.points
        self.sum_q += other.sum_q
        self.sumsq_q += other.sumsq_q
        self.min_m = np.minimum(self.min_m, other.min_m)
        self.max_m = np.maximum(self.max_m, other.max_m)
        self.histogram += other.histogram
        self._pending.append(other.far_voxels)
        self._settle()
        return self

    def table(self, global_ids=None):
        """One row per element with points: mean/rms/std/min/max (mm), p50 and p95 of |d| (to a bin)."""
        import pandas as pd

        has = np.flatnonzero(self.points > 0)
        n = self.points[has]
        mean_q = np.array([s / c for s, c in zip(self.sum_q[has], n)], dtype=np.float64)
        msq_q = np.array([s / c for s, c in zip(self.sumsq_q[has], n)], dtype=np.float64)
        to_mm = QUANTUM_M * 1000
        rows = {
            "element": has, "points": n,
            "mean_mm": mean_q * to_mm, "rms_mm": np.sqrt(msq_q) * to_mm,
            "std_mm": np.sqrt(np.maximum(msq_q - mean_q ** 2, 0.0)) * to_mm,
            "min_mm": self.min_m[has].astype(np.float64) * 1000, "max_mm": self.max_m[has].astype(np.float64) * 1000,
            "p50_mm": self._quantile(has, 0.5), "p95_abs_mm": self._abs_quantile(has, 0.95),
        }
        if global_ids is not None:
            rows["global_id"] = np.asarray(global_ids, dtype=object)[has]
        return pd.DataFrame(rows)

    def _edges_mm(self) -> np.ndarray:
        return -self.band_m * 1000 + self.bin_mm * np.arange(self.bins + 1)

    def _quantile(self, has: np.ndarray, q: float) -> np.ndarray:
        """The q-quantile of d from the histogram, to within a bin (``_hist_quantile``)."""
        h = self.histogram[has].astype(np.float64)
        return _hist_quantile(h, self._edges_mm(), q)

    def _abs_quantile(self, has: np.ndarray, q: float) -> np.ndarray:
        h = self.histogram[has]
        half = self.bins // 2
        folded = h[:, half:].astype(np.float64) + h[:, :half][:, ::-1]          # |d| bins from 0 up
        return _hist_quantile(folded, self._edges_mm()[half:], q)

    def far_points(self) -> np.ndarray:
        """Centres of the voxels holding points beyond the band, (v, 3) metres."""
        return _voxel_centres(self.far_voxels)


def _exact(sums: np.ndarray) -> np.ndarray:
    """Float64 sums of integers (exact below 2**53) as Python integers."""
    return np.rint(sums).astype(np.int64).astype(object)


def _hist_quantile(h: np.ndarray, edges: np.ndarray, q: float) -> np.ndarray:
    """The q-quantile as numpy's default (linear between the order statistics at q (n - 1)), each order
    statistic placed within its bin by its rank there: both lie in the bin the true ones do, so the
    result is within one bin of ``np.quantile`` whatever the count (a rank q n would be off by a whole
    order statistic on a few points)."""
    rows = np.arange(len(h))
    cum = np.cumsum(h, axis=1)
    n = cum[:, -1]
    r = q * np.maximum(n - 1, 0)
    lo = np.floor(r)
    frac = r - lo
    hi = np.minimum(lo + 1, np.maximum(n - 1, 0))

    def order_statistic(j: np.ndarray) -> np.ndarray:
        b = np.minimum((cum <= j[:, None]).sum(axis=1), h.shape[1] - 1)
        below = np.where(b > 0, cum[rows, np.maximum(b - 1, 0)], 0.0)
        inside = np.maximum(h[rows, b], 1.0)
        return edges[b] + (j - below + 0.5) / inside * (edges[b + 1] - edges[b])

    return order_statistic(lo) * (1 - frac) + order_statistic(hi) * frac


_VOX_BITS = 21
_VOX_OFF = 1 << (_VOX_BITS - 1)


def _voxel_keys(points_m: np.ndarray) -> np.ndarray:
    v = np.floor(points_m / FAR_VOXEL_M).astype(np.int64) + _VOX_OFF
    v = np.clip(v, 0, (1 << _VOX_BITS) - 1)
    return np.unique((v[:, 0] << (2 * _VOX_BITS)) | (v[:, 1] << _VOX_BITS) | v[:, 2])


def _voxel_centres(keys: np.ndarray) -> np.ndarray:
    mask = (1 << _VOX_BITS) - 1
    v = np.column_stack([(keys >> (2 * _VOX_BITS)) & mask, (keys >> _VOX_BITS) & mask, keys & mask]) - _VOX_OFF
    return (v + 0.5) * FAR_VOXEL_M


# ----------------------------------------------------------------------------- the survey, chunk by chunk
@dataclass
class StreamedDeviation:
    stats: ElementStats
    chunks: int
    seconds: dict[str, float]


def stream_deviation(index, paths, T_model_from_file: np.ndarray, *, element_count: int, band_m: float,
                     bin_mm: float, chunk_points: int = CHUNK_POINTS, model_box=None,
                     on_progress: Callable[[str], None] | None = None) -> StreamedDeviation:
    """Deviation of every point of ``paths`` from the model behind ``index`` (a ``SurfaceIndex``), chunk by chunk.

    ``T_model_from_file`` (4, 4) places the files' points in the model's frame. ``model_box``
    (lo, hi) in the model's frame: COPC files then read only the octree nodes meeting it (grown by
    the band); the points they skip lie beyond the band by construction and are not counted."""
    from sitetwin.twin.registration import apply

    T = np.asarray(T_model_from_file, dtype=np.float64)
    stats = ElementStats(element_count, band_m, bin_mm)
    bounds = None
    if model_box is not None:
        lo, hi = (np.asarray(b, dtype=float) for b in model_box)
        lo, hi = lo - band_m, hi + band_m
        corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
        inv = np.linalg.inv(T)
        in_file = apply(inv, corners)
        bounds = (in_file.min(axis=0), in_file.max(axis=0))
    read = query = fold = 0.0
    chunks = 0
    for path in [Path(p) for p in paths]:
        if on_progress:
            on_progress(Note(N_("streaming {file}"), file=path.name))
        it = iter_chunks(path, chunk_points, bounds=bounds)
        while True:
            t = time.perf_counter()
            xyz = next(it, None)
            read += time.perf_counter() - t
            if xyz is None:
                break
            t = time.perf_counter()
            pts = apply(T, xyz)
            del xyz
            res = index.query(pts, max_distance_m=band_m)
            query += time.perf_counter() - t
            t = time.perf_counter()
            stats.add(pts, res.distance_m, res.element)
            fold += time.perf_counter() - t
            chunks += 1
    return StreamedDeviation(stats, chunks, {"read_s": read, "query_s": query, "fold_s": fold})


def streamed_figures(index, mesh, chunks: Iterable[tuple[int, np.ndarray]], T_model_from_file: np.ndarray, *,
                     rules, grid, stations_m: np.ndarray | None = None, station_of_scan: np.ndarray | None = None):
    """Each element's counts, distance figures, histogram, coverage keys and clear points over every point of
    ``chunks`` ((scan index, points in the file's frame) pairs), as ``deviation.analyse`` computes them
    holding all the points: the same query (``deviation.band_query``: band, attribution margin, stations
    settling shared faces), folded chunk by chunk into :class:`ElementStats` (median and p95 in 1 mm bins
    when the stored histogram's bin is a whole number of mm) and a set of coverage keys.

    ``T_model_from_file`` (4, 4) places the points (units included); ``rules`` a ``tolerances`` status
    rules record; ``grid`` a ``deviation.CoverageGrid``; ``stations_m`` (s, 3) and ``station_of_scan``
    (scans,) the station of each scan (-1 unknown), as ``analyse`` takes them. Returns a
    ``deviation.StreamedFigures``; peak memory is set by the chunk and the model, not the survey."""
    from sitetwin.twin.deviation import StreamedFigures, band_query, clear_of_others, observed_keys
    from sitetwin.twin.registration import apply

    T = np.asarray(T_model_from_file, dtype=np.float64)
    k = mesh.element_count
    hist_mm = float(rules.histogram_bin_mm)
    stored_bins = int(round(2 * rules.band_m * 1000 / hist_mm))
    per = max(1, int(math.floor(hist_mm + 1e-9)))            # fine bins per stored bin: 1 mm ones where whole
    if abs(hist_mm - per) > 1e-9 or abs(stored_bins * hist_mm - 2000 * rules.band_m) > 1e-6:
        per = 1
    stats = ElementStats(k, rules.band_m, hist_mm / per)
    clear_points = np.zeros(k, dtype=np.int64)
    keys = np.zeros(0, dtype=np.int64)
    pending: list[np.ndarray] = []
    pending_size = 0
    seconds = {"read_s": 0.0, "query_s": 0.0, "fold_s": 0.0}
    it = iter(chunks)
    while True:
        t = time.perf_counter()
        item = next(it, None)
        seconds["read_s"] += time.perf_counter() - t
        if item is None:
            break
        scan, xyz = item
        t = time.perf_counter()
        pts = apply(T, xyz)
        station = None
        if stations_m is not None and station_of_scan is not None:
            station = np.full(len(pts), station_of_scan[scan], dtype=np.int16)
        res = band_query(index, pts, rules, point_station=station, stations_m=stations_m)
        seconds["query_s"] += time.perf_counter() - t
        t = time.perf_counter()
        near = np.abs(res.distance_m) <= rules.band_m
        element = np.where(near, res.element, -1).astype(np.int32)
        stats.add(pts, res.distance_m, element)
        clear = clear_of_others(res, near, rules)
        clear_points += np.bincount(element[clear], minlength=k)
        pending.append(observed_keys(mesh, grid, pts, np.where(clear, element, -1), res.triangle))
        pending_size += len(pending[-1])
        if pending_size > max(2 * len(keys), 4_000_000):
            keys, pending, pending_size = np.unique(np.concatenate([keys, *pending])), [], 0
        seconds["fold_s"] += time.perf_counter() - t
    keys = np.unique(np.concatenate([keys, *pending]))
    table = stats.table()
    has = table["element"].to_numpy()

    def full(values) -> np.ndarray:
        out = np.full(k, np.nan)
        out[has] = values
        return out

    lo, hi = table["min_mm"].to_numpy(), table["max_mm"].to_numpy()
    histogram = stats.histogram.reshape(k, stored_bins, per).sum(axis=2) if per > 1 else stats.histogram
    return StreamedFigures(points=stats.points.copy(), mean_mm=full(table["mean_mm"].to_numpy()),
                           median_mm=full(table["p50_mm"].to_numpy()), p95_mm=full(table["p95_abs_mm"].to_numpy()),
                           max_mm=full(np.where(np.abs(hi) >= np.abs(lo), hi, lo)), histogram=histogram,
                           occupied=keys, clear_points=clear_points, grid=grid, total_points=stats.total_points,
                           seconds=seconds)


def in_memory_stats(index, points_m: np.ndarray, *, element_count: int, band_m: float, bin_mm: float) -> ElementStats:
    """The same statistics over points already in memory (the model's frame): one chunk."""
    stats = ElementStats(element_count, band_m, bin_mm)
    res = index.query(points_m, max_distance_m=band_m)
    stats.add(points_m, res.distance_m, res.element)
    return stats


def element_count_of(index) -> int:
    """How many elements a ``SurfaceIndex``'s faces name (their indices run from 0)."""
    return int(index.face_element.max(initial=-1)) + 1


def stream_survey(index, paths, *, T_model_from_file: np.ndarray | None = None, registration_index=None,
                  config=None, band_m: float | None = None, bin_mm: float | None = None,
                  registration_points: int = 400_000, chunk_points: int = CHUNK_POINTS, model_box=None,
                  on_progress: Callable[[str], None] | None = None):
    """Register a subsample of the files (unless ``T_model_from_file`` is given), then stream the deviation.

    Returns (registration or None, :class:`StreamedDeviation`)."""
    from sitetwin.twin import registration as reg
    from sitetwin.twin.tolerances import DEFAULT

    band_m = DEFAULT.status.band_m if band_m is None else band_m
    bin_mm = DEFAULT.status.histogram_bin_mm if bin_mm is None else bin_mm
    result = None
    if T_model_from_file is None:
        if on_progress:
            on_progress(Note(N_("registering on a subsample")))
        config = config or reg.DEFAULT_CONFIG
        sub = subsample(paths, registration_points, chunk_points=chunk_points, seed=config.seed)
        result = reg.register_auto(registration_index or index, sub, config)
        reg.check(result, config, label=", ".join(Path(p).name for p in paths))
        T_model_from_file = result.T_model_from_survey
    dev = stream_deviation(index, paths, T_model_from_file, element_count=element_count_of(index), band_m=band_m,
                           bin_mm=bin_mm, chunk_points=chunk_points, model_box=model_box, on_progress=on_progress)
    return result, dev
