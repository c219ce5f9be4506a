"""A site's current models as one binary file for the browser's GPU, cached per set of model ids.

The file (``STVG``, little-endian)::

    bytes 0-3   b"STVG"
    u32         format version (1)
    u32         header length H
    H bytes     UTF-8 JSON header, padded with spaces to a multiple of 4
    buffers     each 4-byte aligned (zero-padded), in the header's ``buffers`` order

The header: ``version``, ``site``, ``key`` (a hash of the site, its origin and the model ids: a
model id is its IFC file's content hash, so a key never goes stale), ``vertices`` V,
``triangles`` T, ``elements`` E, ``bbox`` and ``origin`` (metres, the site's local frame, the
frame of every other layer: scan points, sensors, panoramas; a position is ``positions[i] +
origin``), ``site_origin`` (world = local + site_origin), ``buffers`` (name, type, count),
and per element, in index order: ``element_ids`` (GlobalId), ``classes`` (IFC class),
``storeys``, ``models`` (model id).

Buffers: ``positions`` f32 3V; ``normals`` i8 3V (unit normal x 127); ``element`` u32 V (each
vertex's element index); ``indices`` u32 3T (triangles); ``ranges`` u32 2E (each element's
first index into ``indices`` and its index count: an element's triangles are contiguous).

Every element comes with its full tessellation (``bim.load_mesh``, grouped by element as
``dashboards.scene.prepare`` does). Vertices are shared by the triangles of one element lying in
one plane (the same quantised face normal), and split where planes meet, so the normals shade
flat faces flat and box edges stay sharp, as the plotly twin's flat shading does.

Built files are kept at ``<db>.cache/viewer/<key>.stvg`` (and ``.stvg.gz``), each written under
a temporary name and moved into place, so a reader never sees half a file; a later request (in
this process or another) reads the file, and the last ones used stay in memory
(:data:`MEMORY_BYTES`).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import struct
import threading
import uuid
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger("sitetwin.dashboards")

MAGIC = b"STVG"
FORMAT_VERSION = 1
CACHE_FOLDER = "viewer"            # under the store's cache folder (<db>.cache/)
SUFFIX = ".stvg"
MEMORY_BYTES = 768 << 20           # built files (raw and gzip) kept in memory, the least recently used dropped first
GZIP_LEVEL = 6
NORMAL_SCALE = 127                 # int8 normals: unit vector x this
ORIGIN_STEP_M = 1.0                # the origin is the box centre rounded to this (positions stay small)
_TYPES: dict[str, np.dtype] = {"f32": np.dtype("<f4"), "i8": np.dtype("i1"), "u8": np.dtype("u1"),
                               "u32": np.dtype("<u4")}

# what this process did, for tests and benchmarks: "built" files, files "read" back, "gzipped" files
counts: Counter[str] = Counter()


# --------------------------------------------------------------------------------------
# the wire format

def encode(header: dict, buffers: Sequence[tuple[str, str, np.ndarray]]) -> bytes:
    """The ``STVG`` bytes of a header and ``(name, type, array)`` buffers (types of :data:`_TYPES`)."""
    arrays = [(name, kind, np.ascontiguousarray(a, dtype=_TYPES[kind]).ravel()) for name, kind, a in buffers]
    head = dict(header, buffers=[{"name": n, "type": k, "count": int(a.size)} for n, k, a in arrays])
    text = json.dumps(head, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 4)
    parts = [MAGIC, struct.pack("<II", FORMAT_VERSION, len(text)), text]
    for _name, _kind, a in arrays:
        raw = a.tobytes()
        parts += [raw, b"\0" * (-len(raw) % 4)]
    return b"".join(parts)


def decode(data: bytes) -> tuple[dict, dict[str, np.ndarray]]:
    """The header and the buffers (numpy arrays, by name) of ``STVG`` bytes - for tests and benchmarks."""
    if data[:4] != MAGIC:
        raise ValueError(f"not an STVG buffer (starts {bytes(data[:4])!r})")
    version, n = struct.unpack_from("<II", data, 4)
    if version != FORMAT_VERSION:
        raise ValueError(f"STVG format version {version}, this reader knows {FORMAT_VERSION}")
    header = read_header(data)
    offset = 12 + n
    out = {}
    for b in header["buffers"]:
        dtype = _TYPES[b["type"]]
        out[b["name"]] = np.frombuffer(data, dtype=dtype, count=b["count"], offset=offset)
        offset += b["count"] * dtype.itemsize
        offset += -offset % 4
    return header, out


def read_header(data: bytes) -> dict:
    """The JSON header of ``STVG`` bytes (without reading the buffers)."""
    if data[:4] != MAGIC:
        raise ValueError(f"not an STVG buffer (starts {bytes(data[:4])!r})")
    _version, n = struct.unpack_from("<II", data, 4)
    return json.loads(bytes(data[12:12 + n]).decode("utf-8"))


def geometry_key(site_code: str, model_ids: Sequence[str], site_origin: Sequence[float] | np.ndarray) -> str:
    """The cache key (and ETag) of a site's geometry: its code, origin and model ids, and the format version."""
    text = json.dumps([FORMAT_VERSION, site_code, [float(v) for v in site_origin], sorted(model_ids)])
    return hashlib.blake2b(text.encode("utf-8"), digest_size=12).hexdigest()


# --------------------------------------------------------------------------------------
# building the buffers (pure numpy)

def split_by_normal(vertices: np.ndarray, faces: np.ndarray, face_element: np.ndarray):
    """Vertices of an indexed mesh re-indexed so that each is used by one element's faces of one
    (quantised) normal.

    Returns ``(source, normals, element, indices)``: each new vertex's source vertex index, its int8
    normal (3,), its element, and the (T, 3) faces over the new vertices. New vertices come in the
    order of (source vertex, normal); faces keep their order.
    """
    faces = np.asarray(faces, np.int64)
    face_element = np.asarray(face_element, np.int64)
    if not len(faces):
        return (np.zeros(0, np.int64), np.zeros((0, 3), np.int8), np.zeros(0, np.int64),
                np.zeros((0, 3), np.int64))
    v = np.asarray(vertices, np.float32)
    a, b, c = v[faces[:, 0]], v[faces[:, 1]], v[faces[:, 2]]
    n = np.cross(b - a, c - a)
    length = np.linalg.norm(n, axis=1, keepdims=True)
    n = np.divide(n, length, out=np.zeros_like(n), where=length > 0)
    nq = np.clip(np.rint(n * NORMAL_SCALE), -NORMAL_SCALE, NORMAL_SCALE).astype(np.int8)
    packed = ((nq.astype(np.int64) + 128) * np.array([1 << 16, 1 << 8, 1], np.int64)).sum(1)   # < 2**24
    corner_v = faces.ravel()
    corner_e = np.repeat(face_element, 3)
    owner = np.full(len(v), -1, np.int64)
    owner[corner_v] = corner_e
    if (owner[corner_v] == corner_e).all():
        point = corner_v                   # every vertex belongs to one element (bim's tessellations)
    else:                                  # a vertex used by several elements: one copy per element
        _u, point = np.unique(corner_e * len(v) + corner_v, return_inverse=True)
        point = point.ravel()
    key = point * (1 << 24) + np.repeat(packed, 3)
    _keys, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    return corner_v[first], nq[first // 3], corner_e[first], inverse.reshape(-1, 3)


def geometry_buffers(geom, site_code: str, key: str,
                     site_origin: Sequence[float] | np.ndarray = (0.0, 0.0, 0.0)) -> bytes:
    """The ``STVG`` bytes of a ``dashboards.scene.SceneGeometry`` (faces grouped by element)."""
    k = geom.element_count
    counts_t = np.diff(geom.face_start).astype(np.int64)
    face_element = np.repeat(np.arange(k, dtype=np.int64), counts_t)
    source, normals, element, indices = split_by_normal(geom.vertices, geom.faces, face_element)
    pts = np.asarray(geom.vertices, np.float64)[source]
    if len(pts):
        lo, hi = pts.min(0), pts.max(0)
        origin = np.round((lo + hi) / 2 / ORIGIN_STEP_M) * ORIGIN_STEP_M
    else:
        lo = hi = origin = np.zeros(3)
    positions = (pts - origin).astype(np.float32)
    ranges = np.stack([3 * geom.face_start[:-1], 3 * counts_t], axis=1) if k else np.zeros((0, 2), np.int64)
    header = {"version": FORMAT_VERSION, "site": site_code, "key": key, "vertices": int(len(positions)),
              "triangles": int(len(indices)), "elements": int(k),
              "bbox": [[float(x) for x in lo], [float(x) for x in hi]], "origin": [float(x) for x in origin],
              "site_origin": [float(x) for x in site_origin],
              "element_ids": geom.global_ids.tolist(), "classes": [str(c) for c in geom.ifc_class.tolist()],
              "storeys": [str(s) for s in geom.storey.tolist()], "models": geom.model_ids.tolist()}
    return encode(header, [("positions", "f32", positions), ("normals", "i8", normals),
                           ("element", "u32", element), ("indices", "u32", indices), ("ranges", "u32", ranges)])


# --------------------------------------------------------------------------------------
# the cache: a file beside the store, and the last ones in memory

class Payload:
    """One built file: its key, its bytes, and its gzip encoding (made on first request, kept beside it)."""

    def __init__(self, key: str, raw: bytes, path: Path | None):
        self.key = key
        self.raw = raw
        self.path = path
        self._gz: bytes | None = None
        self._header: dict | None = None
        self._lock = threading.Lock()

    @property
    def size(self) -> int:
        return len(self.raw) + len(self._gz or b"")

    @property
    def header(self) -> dict:
        """The JSON header (parsed once)."""
        if self._header is None:
            self._header = read_header(self.raw)
        return self._header

    def gzipped(self) -> bytes:
        with self._lock:
            if self._gz is None:
                gz_path = self.path.with_name(self.path.name + ".gz") if self.path else None
                if gz_path is not None and gz_path.exists():
                    self._gz = gz_path.read_bytes()
                    counts["gzip_read"] += 1
                else:
                    self._gz = gzip.compress(self.raw, compresslevel=GZIP_LEVEL, mtime=0)
                    counts["gzipped"] += 1
                    if gz_path is not None:
                        write_atomic(gz_path, self._gz)
            return self._gz


_memory: OrderedDict[tuple[str, str], Payload] = OrderedDict()
_memory_lock = threading.Lock()
_building: dict[tuple[str, str], threading.Lock] = {}


def cache_folder(store) -> Path:
    """``<db>.cache/viewer``: beside the store file, with bim's geometry cache (an in-memory store's is a
    temporary folder)."""
    return Path(store.cache_dir) / CACHE_FOLDER


def write_atomic(path: Path, data: bytes) -> bool:
    """Write ``data`` to ``path`` under a temporary name and move it into place; False (logged) when the folder
    cannot be written (a read-only install): the caller serves from memory."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(data)
        os.replace(tmp, path)
        return True
    except OSError as exc:
        log.warning("viewer cache %s not written: %s", path, exc)
        tmp.unlink(missing_ok=True)
        return False


def cached(store, key: str, build: Callable[[], bytes], *, suffix: str = SUFFIX) -> Payload:
    """The payload of ``key``: from memory, else the file beside the store, else ``build()`` (once, however
    many requests ask at the same time), written beside the store."""
    folder = cache_folder(store)
    path: Path | None = folder / f"{key}{suffix}"
    mem_key = (str(folder), key + suffix)
    with _memory_lock:
        hit = _memory.get(mem_key)
        if hit is not None:
            _memory.move_to_end(mem_key)
            return hit
        lock = _building.setdefault(mem_key, threading.Lock())
    with lock:
        with _memory_lock:
            hit = _memory.get(mem_key)
        if hit is not None:
            return hit
        if path is not None and path.exists():
            payload = Payload(key, path.read_bytes(), path)
            counts["read"] += 1
        else:
            raw = build()
            counts["built"] += 1
            written = path is not None and write_atomic(path, raw)
            payload = Payload(key, raw, path if written else None)
        remember(mem_key, payload)
        with _memory_lock:
            _building.pop(mem_key, None)
        return payload


def remember(mem_key: tuple[str, str], payload: Payload) -> None:
    with _memory_lock:
        _memory[mem_key] = payload
        _memory.move_to_end(mem_key)
        while len(_memory) > 1 and sum(p.size for p in _memory.values()) > MEMORY_BYTES:
            _memory.popitem(last=False)


def forget_memory() -> None:
    """Drop the in-memory copies (the files stay): what a fresh process sees."""
    with _memory_lock:
        _memory.clear()


def site_key(store, site_code: str) -> tuple[str, list[str], np.ndarray]:
    """(key, current model ids, site origin) of a site's geometry."""
    from sitetwin.bim.mesh import site_origin
    from sitetwin.dashboards.queries import current_model_ids

    model_ids = sorted(current_model_ids(store, site_code))
    origin = site_origin(store, site_code)
    return geometry_key(site_code, model_ids, origin), model_ids, origin


def site_geometry_file(store, site_code: str) -> Payload:
    """The ``STVG`` payload of a site's current models (an empty one when it has none)."""
    from sitetwin.dashboards.scene import site_geometry

    key, model_ids, origin = site_key(store, site_code)

    def build() -> bytes:
        geom = site_geometry(store, site_code, model_ids)
        return geometry_buffers(geom, site_code, key, origin)

    return cached(store, key, build)


@dataclass(frozen=True)
class ElementTable:
    """The elements of a geometry file, in its index order: what the colour rules read per element (the
    fields of ``dashboards.scene.SceneGeometry`` they use), without loading the mesh."""

    global_ids: np.ndarray
    model_ids: np.ndarray
    ifc_class: np.ndarray
    storey: np.ndarray

    @property
    def element_count(self) -> int:
        return int(len(self.global_ids))

    @classmethod
    def of(cls, header: dict) -> ElementTable:
        return cls(np.array(header["element_ids"], dtype=str), np.array(header["models"], dtype=str),
                   np.array(header["classes"], dtype=object), np.array(header["storeys"], dtype=object))
