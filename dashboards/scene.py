"""The design model as plotly traces, fast enough for large models.

- Element meshes are merged into one ``Mesh3d`` per colour bin (class, storey, status,
  deviation band, schedule state): a handful of traces instead of one per element.
- Level of detail by size within a triangle budget (:func:`level_of_detail`): every visible
  element starts as its bounding box (12 triangles), the smallest are left out when even the
  boxes would not fit, and the largest are given their full tessellation until the budget is
  spent. Narrowing the view (storey filter, section box) brings detail back to what remains.
  Elements not there yet (not built, not started) are drawn as boxes. The default budget suits software
  WebGL (a browser without a GPU draws some 20-40k triangles a second); users raise it.
- The per-model geometry (faces grouped by element, vertex ranges, boxes) is prepared once
  and cached by model ids: a model id is the IFC file's content hash, so it never goes stale.
- Picking: plotly reports the trace and the point clicked (a face of a cell-coloured mesh, a
  vertex of a plain one); :func:`pick` maps that back to an element through the arrays kept
  for each figure built (by its key).

Coordinates are metres in the site's local frame (as ``bim.load_mesh`` returns them).
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

DEFAULT_TRIANGLE_BUDGET = 60_000      # triangles sent to the browser for the model (see level_of_detail)
BOX_TRIANGLES = 12
_BOX_CORNERS = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1], [1, 0, 1], [1, 1, 1], [0, 1, 1]],
                        dtype=np.float32)
_BOX_FACES = np.array([[0, 2, 1], [0, 3, 2], [4, 5, 6], [4, 6, 7], [0, 1, 5], [0, 5, 4], [1, 2, 6], [1, 6, 5],
                       [2, 3, 7], [2, 7, 6], [3, 0, 4], [3, 4, 7]], dtype=np.int32)
GEOMETRY_CACHE_SIZE = 4
PICK_CACHE_SIZE = 64


@dataclass(frozen=True)
class SceneGeometry:
    """One site's current models, prepared for drawing: faces grouped by element.

    vertices : (n, 3) float32, local frame, metres
    faces : (m, 3) int32, element e's faces are ``faces[face_start[e]:face_start[e + 1]]``
    vert_lo, vert_hi : (k,) int64, the vertex range [lo, hi) element e's faces use
    lo, hi : (k, 3) float32, element bounding boxes
    """

    key: tuple[str, ...]
    vertices: np.ndarray
    faces: np.ndarray
    face_start: np.ndarray
    vert_lo: np.ndarray
    vert_hi: np.ndarray
    global_ids: np.ndarray
    model_ids: np.ndarray
    ifc_class: np.ndarray
    storey: np.ndarray
    name: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    _index: dict = field(default_factory=dict, repr=False)

    @property
    def element_count(self) -> int:
        return int(len(self.global_ids))

    @property
    def triangles(self) -> np.ndarray:
        return np.diff(self.face_start)

    @property
    def size_m(self) -> np.ndarray:
        return np.linalg.norm(self.hi - self.lo, axis=1)

    def bounds(self) -> np.ndarray:
        if not self.element_count:
            return np.zeros((2, 3))
        return np.stack([self.lo.min(0), self.hi.max(0)]).astype(np.float64)

    def index_of(self, global_id: str) -> int | None:
        return self._index.get(global_id)


def prepare(mesh, attributes: Sequence[dict]) -> SceneGeometry:
    """Group a ``bim.ModelMesh``'s faces by element and attach class, storey and name per element."""
    k = mesh.element_count
    order = np.argsort(mesh.face_element, kind="stable")
    faces = np.ascontiguousarray(mesh.faces[order], dtype=np.int32)
    fe = mesh.face_element[order]
    face_start = np.searchsorted(fe, np.arange(k + 1)).astype(np.int64)
    vert_lo = np.zeros(k, np.int64)
    vert_hi = np.zeros(k, np.int64)
    if len(faces):
        lo_v = np.full(k, np.iinfo(np.int64).max, np.int64)
        hi_v = np.full(k, -1, np.int64)
        np.minimum.at(lo_v, fe, faces.min(1).astype(np.int64))
        np.maximum.at(hi_v, fe, faces.max(1).astype(np.int64))
        has = hi_v >= 0
        vert_lo[has], vert_hi[has] = lo_v[has], hi_v[has] + 1
    by_key = {(a["model_id"], a["global_id"]): a for a in attributes}
    gids, mids = mesh.global_ids.astype(str), mesh.model_ids.astype(str)
    info = [by_key.get((m, g), {}) for m, g in zip(mids.tolist(), gids.tolist())]
    # element boxes from the geometry itself (the store's boxes may belong to another revision's frame)
    lo = np.zeros((k, 3), np.float32)
    hi = np.zeros((k, 3), np.float32)
    if len(faces):
        tri = mesh.vertices[faces]
        tmin, tmax = tri.min(1), tri.max(1)
        lo[:] = np.inf
        hi[:] = -np.inf
        np.minimum.at(lo, fe, tmin)
        np.maximum.at(hi, fe, tmax)
        empty = ~np.isfinite(lo).all(1)
        lo[empty] = 0
        hi[empty] = 0
    return SceneGeometry(
        key=tuple(sorted(set(mids.tolist()))), vertices=np.ascontiguousarray(mesh.vertices, np.float32), faces=faces,
        face_start=face_start, vert_lo=vert_lo, vert_hi=vert_hi, global_ids=gids, model_ids=mids,
        ifc_class=np.array([i.get("ifc_class") or "?" for i in info], dtype=object),
        storey=np.array([i.get("storey") or "(no storey)" for i in info], dtype=object),
        name=np.array([i.get("name") or "" for i in info], dtype=object),
        lo=lo, hi=hi, _index={g: i for i, g in enumerate(gids.tolist())})


_geometry_cache: OrderedDict[tuple, SceneGeometry] = OrderedDict()
_geometry_lock = threading.Lock()
_building: dict[tuple, threading.Lock] = {}


def site_geometry(store, site_code: str, model_ids: Sequence[str]) -> SceneGeometry:
    """The prepared geometry of these models (cached by store file and model ids; a model id never changes)."""
    from sitetwin.bim.mesh import load_mesh
    from sitetwin.dashboards.queries import element_attributes

    key = (str(store.path), tuple(sorted(model_ids)))
    with _geometry_lock:
        hit = _geometry_cache.get(key)
        if hit is not None:
            _geometry_cache.move_to_end(key)
            return hit
        lock = _building.setdefault(key, threading.Lock())
    with lock:      # one request builds it; concurrent ones wait for that rather than build it again
        with _geometry_lock:
            hit = _geometry_cache.get(key)
        if hit is not None:
            return hit
        mesh = load_mesh(store, model_ids=list(key[1])) if key[1] else None
        attrs = element_attributes(store, list(key[1]))
        geom = prepare(mesh, attrs) if mesh is not None else _empty_geometry()
        with _geometry_lock:
            _geometry_cache[key] = geom
            while len(_geometry_cache) > GEOMETRY_CACHE_SIZE:
                _geometry_cache.popitem(last=False)
            _building.pop(key, None)
        return geom


def _empty_geometry() -> SceneGeometry:
    z = np.zeros(0, np.int64)
    return SceneGeometry((), np.zeros((0, 3), np.float32), np.zeros((0, 3), np.int32), np.zeros(1, np.int64), z, z,
                         np.zeros(0, str), np.zeros(0, str), np.zeros(0, object), np.zeros(0, object),
                         np.zeros(0, object), np.zeros((0, 3), np.float32), np.zeros((0, 3), np.float32))


# --------------------------------------------------------------------------------------
# level of detail and merged traces

COVER_SHARE = 0.5            # of the triangle budget, at most this much is spent on showing elements at all


def level_of_detail(geom: SceneGeometry, visible: np.ndarray,
                    budget: int = DEFAULT_TRIANGLE_BUDGET) -> tuple[np.ndarray, np.ndarray]:
    """(shown, full) (k,) bool masks: which visible elements are drawn, and which of those in full detail.

    By size, largest first: every element costs at least its box (12 triangles, or fewer when
    it has fewer); when even the boxes would take more than ``COVER_SHARE`` of the budget, the
    smallest elements are left out (a storey filter or section box brings them back). The
    rest of the budget upgrades the largest shown elements from box to full tessellation.
    """
    visible = np.asarray(visible, bool)
    shown = np.zeros(geom.element_count, bool)
    full = np.zeros(geom.element_count, bool)
    tris = geom.triangles
    idx = np.flatnonzero(visible)
    order = idx[np.argsort(-geom.size_m[idx], kind="stable")]
    least = np.minimum(tris[order], BOX_TRIANGLES)
    if least.sum() <= budget:
        keep = len(order)
    else:
        keep = max(1, int(np.searchsorted(np.cumsum(least), budget * COVER_SHARE, side="right")))
    kept = order[:keep]
    shown[kept] = True
    full[kept[tris[kept] <= BOX_TRIANGLES]] = True
    heavy = kept[tris[kept] > BOX_TRIANGLES]
    spare = budget - int(np.minimum(tris[kept], BOX_TRIANGLES).sum())
    n_full = int(np.searchsorted(np.cumsum(tris[heavy] - BOX_TRIANGLES), spare, side="right"))
    full[heavy[:n_full]] = True
    return shown, full


def detail_mask(geom: SceneGeometry, visible: np.ndarray, budget: int = DEFAULT_TRIANGLE_BUDGET) -> np.ndarray:
    """(k,) bool: which visible elements are drawn in full (see :func:`level_of_detail`)."""
    return level_of_detail(geom, visible, budget)[1]


def _ranges(starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """Concatenation of arange(starts[i], stops[i]) for all i, without a Python loop."""
    lengths = stops - starts
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    offsets = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    return np.arange(total, dtype=np.int64) + offsets


def gather(geom: SceneGeometry, full: np.ndarray, boxed: np.ndarray):
    """Vertices, faces, vertex -> element and face -> element for some elements in full detail and others as boxes."""
    full = np.asarray(full, np.int64)
    boxed = np.asarray(boxed, np.int64)
    vcount = geom.vert_hi[full] - geom.vert_lo[full]
    vidx = _ranges(geom.vert_lo[full], geom.vert_hi[full])
    new_start = np.concatenate([[0], np.cumsum(vcount)[:-1]]).astype(np.int64)
    fcount = geom.face_start[full + 1] - geom.face_start[full]
    fidx = _ranges(geom.face_start[full], geom.face_start[full + 1])
    shift = np.repeat(geom.vert_lo[full] - new_start, fcount)
    faces_full = geom.faces[fidx] - shift[:, None]
    base = int(vcount.sum())
    span = (geom.hi[boxed] - geom.lo[boxed])[:, None, :]
    box_v = (geom.lo[boxed][:, None, :] + _BOX_CORNERS[None] * span).reshape(-1, 3)
    box_f = (_BOX_FACES[None] + (base + 8 * np.arange(len(boxed)))[:, None, None]).reshape(-1, 3)
    vertices = np.concatenate([geom.vertices[vidx], box_v.astype(np.float32)])
    faces = np.concatenate([faces_full, box_f]).astype(np.int32)
    owner = np.concatenate([np.repeat(full, vcount), np.repeat(boxed, 8)]).astype(np.int32)
    face_owner = np.concatenate([np.repeat(full, fcount), np.repeat(boxed, len(_BOX_FACES))]).astype(np.int32)
    return vertices, faces, owner, face_owner


@dataclass(frozen=True)
class Bin:
    label: str
    color: str                 # CSS colour
    opacity: float = 1.0
    boxes: bool = False        # draw its elements as boxes whatever the budget (what is not there yet)


def mesh_trace(vertices: np.ndarray, faces: np.ndarray, name: str, color: str, *, opacity: float = 1.0,
               legendgroup: str | None = None, showlegend: bool = True) -> dict:
    """A plotly Mesh3d trace (as a dict) with flat shading; arrays stay numpy (sent base64-encoded)."""
    return dict(type="mesh3d", x=vertices[:, 0], y=vertices[:, 1], z=vertices[:, 2],
                i=faces[:, 0], j=faces[:, 1], k=faces[:, 2], name=name, color=color, opacity=opacity,
                flatshading=True, showlegend=showlegend, legendgroup=legendgroup or name, hoverinfo="name",
                lighting=dict(ambient=0.55, diffuse=0.75, specular=0.05, roughness=0.9, fresnel=0.05),
                lightposition=dict(x=1000, y=600, z=2000))


def discrete_colorscale(colors: Sequence[str]) -> list:
    """A plotly colour scale giving value i (0..n-1, with cmin -0.5 and cmax n-0.5) the colour ``colors[i]``."""
    n = max(1, len(colors))
    scale = []
    for i, c in enumerate(colors):
        scale += [[i / n, c], [(i + 1) / n, c]]
    return scale or [[0, "grey"], [1, "grey"]]


def merged_traces(geom: SceneGeometry, bin_of: np.ndarray, bins: Sequence[Bin], *, visible: np.ndarray | None = None,
                  budget: int = DEFAULT_TRIANGLE_BUDGET) -> tuple[list[dict], list[np.ndarray], dict]:
    """The model as one Mesh3d per opacity (solid, and see-through for what is not there yet), every face
    coloured by its element's bin through a per-face intensity and a stepped colour scale.

    ``bin_of`` (k,) int is each element's bin (-1: hidden). A trace per bin would cost the
    browser a draw setup each; one merged mesh with a byte per face for its colour does not.
    Returns the traces, each trace's face -> element array (plotly's ``pointNumber`` on a
    cell-coloured mesh is the face), and figures: LOD counts, the elements of every bin
    (``bins``) and a legend (label, colour, count, opacity).
    """
    bin_of = np.asarray(bin_of, np.int64)
    wanted = (bin_of >= 0) if visible is None else (np.asarray(visible, bool) & (bin_of >= 0))
    vis, full = level_of_detail(geom, wanted, budget)
    n = len(bins)
    scale = discrete_colorscale([b.color for b in bins])
    traces, owners = [], []
    for opacity in sorted({b.opacity for b in bins}, reverse=True):
        layer = [i for i, b in enumerate(bins) if b.opacity == opacity]
        els = np.flatnonzero(vis & np.isin(bin_of, layer))
        if not len(els):
            continue
        # elements not there yet are drawn as their boxes: they need no detail, and drawn
        # see-through they cost the browser extra passes per triangle
        boxed_bins = [i for i, b in enumerate(bins) if b.boxes]
        detail = full[els] & ~np.isin(bin_of[els], boxed_bins)
        v, f, owner, face_owner = gather(geom, els[detail], els[~detail])
        trace = mesh_trace(v, f, "model" if opacity == 1.0 else "not there (yet)", "grey", opacity=opacity,
                           showlegend=False)
        del trace["color"]
        trace.update(intensity=bin_of[face_owner].astype(np.uint8 if n < 256 else np.uint16), intensitymode="cell",
                     colorscale=scale, cmin=-0.5, cmax=n - 0.5, showscale=False, hoverinfo="none")
        traces.append(trace)
        # plotly reports a click on a cell-coloured mesh by face (cell) index, not by vertex
        owners.append(face_owner)
    members = {b.label: np.flatnonzero(vis & (bin_of == i)) for i, b in enumerate(bins)}
    full = full & ~np.isin(bin_of, [i for i, b in enumerate(bins) if b.boxes])
    stats = {"elements": int(vis.sum()), "full": int((full & vis).sum()), "boxes": int((vis & ~full).sum()),
             "left_out": int((wanted & ~vis).sum()),
             "triangles": int(sum(len(t["i"]) for t in traces)), "budget": int(budget), "bins": members,
             "legend": [(b.label, b.color, int(len(members[b.label])), b.opacity) for b in bins
                        if len(members[b.label])]}
    return traces, owners, stats


# --------------------------------------------------------------------------------------
# the wire format

_DTYPES = {np.dtype(np.float32): "f4", np.dtype(np.float64): "f8", np.dtype(np.int8): "i1", np.dtype(np.uint8): "u1",
           np.dtype(np.int16): "i2", np.dtype(np.uint16): "u2", np.dtype(np.int32): "i4", np.dtype(np.uint32): "u4"}


def typed_array(a: np.ndarray) -> dict:
    """A numpy array as plotly.js's typed-array spec (base64 of the little-endian bytes)."""
    a = np.asarray(a)
    if a.dtype == np.int64:
        a = a.astype(np.int32)
    if a.dtype not in _DTYPES:
        a = a.astype(np.float64)
    a = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<"))
    spec = {"dtype": f"{a.dtype.kind}{a.dtype.itemsize}", "bdata": base64.b64encode(a.tobytes()).decode("ascii")}
    if a.ndim > 1:
        spec["shape"] = ",".join(str(n) for n in a.shape)
    return spec


def _index_array(a: np.ndarray, vertices: int) -> np.ndarray:
    """Face indices in the smallest unsigned type that holds them."""
    return np.asarray(a, np.uint16 if vertices <= np.iinfo(np.uint16).max else np.uint32)


def to_wire(fig: dict) -> dict:
    """The figure with every numpy array replaced by a typed-array spec: a third of the size of JSON numbers.

    (plotly.py does this for ``go.Figure`` objects; figures here are plain dicts, which it sends as lists.)
    """
    def conv(value, key=None, n_vertices=None):
        if isinstance(value, np.ndarray):
            if value.dtype == object:
                return value.tolist()
            if key in ("i", "j", "k") and n_vertices is not None:
                value = _index_array(value, n_vertices)
            return typed_array(value)
        if isinstance(value, dict):
            nv = len(value["x"]) if value.get("type") == "mesh3d" and hasattr(value.get("x"), "__len__") else None
            return {k: conv(v, k, nv if nv is not None else n_vertices) for k, v in value.items()}
        if isinstance(value, (list, tuple)) and value and isinstance(value[0], (dict, np.ndarray)):
            return [conv(v) for v in value]
        return value

    return {"data": [conv(t) for t in fig.get("data", [])], "layout": fig.get("layout", {})}


def from_wire(spec) -> np.ndarray:
    """Decode a typed-array spec (or pass a list through) - for tests and benchmarks."""
    if isinstance(spec, dict) and "bdata" in spec:
        a = np.frombuffer(base64.b64decode(spec["bdata"]), dtype=np.dtype("<" + spec["dtype"]))
        return a.reshape([int(n) for n in spec["shape"].split(",")]) if "shape" in spec else a
    return np.asarray(spec)


# --------------------------------------------------------------------------------------
# picking

_picks: OrderedDict[str, list[np.ndarray | None]] = OrderedDict()
_picks_lock = threading.Lock()


def figure_key(params: dict) -> str:
    """A short stable key for the parameters a figure was built from."""
    text = json.dumps(params, sort_keys=True, default=str)
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def remember_picks(key: str, owners: list[np.ndarray | None]) -> None:
    with _picks_lock:
        _picks[key] = owners
        _picks.move_to_end(key)
        while len(_picks) > PICK_CACHE_SIZE:
            _picks.popitem(last=False)


def pick(key: str | None, curve: int | None, point: int | None) -> int | None:
    """The element index behind point ``point`` (face or vertex, see :func:`merged_traces`) of trace ``curve``
    of the figure ``key`` (None: not an element)."""
    if key is None or curve is None or point is None:
        return None
    with _picks_lock:
        owners = _picks.get(key)
    if owners is None or not 0 <= curve < len(owners):
        return None
    arr = owners[curve]
    if arr is None:
        return None
    return int(arr[point]) if 0 <= point < len(arr) else None


def set_pick_trace(key: str | None, curve: int, owner: np.ndarray | None) -> None:
    """Replace one trace's vertex -> element array (after a patch changed that trace)."""
    with _picks_lock:
        owners = _picks.get(key) if key else None
        if owners is not None and 0 <= curve < len(owners):
            owners[curve] = owner


def has_picks(key: str | None) -> bool:
    with _picks_lock:
        return key in _picks


# --------------------------------------------------------------------------------------
# colours

PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
           "#bab0ac", "#2f4b7c", "#a05195", "#d45087", "#665191", "#ffa600", "#003f5c")
STATUS_LABELS = {"built": "built", "partial": "partially built", "not_built": "not built",
                 "out_of_tolerance": "out of tolerance", "unknown": "not surveyed",
                 "partial_out_of_tolerance": "partially built, out of tolerance"}
SCHEDULE_COLORS = {"built": "rgb(40,185,80)", "late": "rgb(225,50,50)", "in progress": "rgb(245,185,30)",
                   "due (not seen)": "rgb(120,160,210)", "not started": "rgb(205,210,220)",
                   "unscheduled": "rgb(150,150,150)"}
DEVIATION_BANDS_MM = (5.0, 10.0, 20.0, 40.0)


def rgb(color: tuple[int, int, int]) -> str:
    return f"rgb({int(color[0])},{int(color[1])},{int(color[2])})"


def bins_by_value(values: Sequence[Any], order: Sequence[Any] | None = None,
                  colors: dict[Any, str] | None = None) -> tuple[np.ndarray, list[Bin]]:
    """Element -> bin for a categorical value per element; bins in ``order`` (default sorted)."""
    value_array = np.asarray(values, dtype=object)
    present = set(value_array.tolist())
    labels = [v for v in (order or sorted(present, key=str)) if v in present]
    labels += sorted(present - set(labels), key=str)
    index = {v: i for i, v in enumerate(labels)}
    bin_of = np.array([index[v] for v in value_array.tolist()], dtype=np.int64)
    bins = [Bin(str(v), (colors or {}).get(v) or PALETTE[i % len(PALETTE)]) for i, v in enumerate(labels)]
    return bin_of, bins


def deviation_band(mm: float | None) -> str:
    """The band label of a deviation magnitude (p95 of |distance|, mm)."""
    if mm is None or not np.isfinite(mm):
        return "not measured"
    a = abs(float(mm))
    edges = DEVIATION_BANDS_MM
    if a <= edges[0]:
        return f"≤ {edges[0]:g} mm"
    for lo, hi in zip(edges, edges[1:]):
        if a <= hi:
            return f"{lo:g}–{hi:g} mm"
    return f"> {edges[-1]:g} mm"


def deviation_bins() -> tuple[list[str], dict[str, str]]:
    from sitetwin.panorama.overlay import STATUS_COLORS, deviation_color

    e = DEVIATION_BANDS_MM
    labels = [f"≤ {e[0]:g} mm"] + [f"{lo:g}–{hi:g} mm" for lo, hi in zip(e, e[1:])] + [f"> {e[-1]:g} mm",
                                                                                     "not measured"]
    mids = [0.0] + [(lo + hi) / 2 for lo, hi in zip(e, e[1:])] + [e[-1] * 2]
    colors = {lab: rgb(deviation_color(m)) for lab, m in zip(labels, mids)}
    colors[labels[-2]] = "rgb(150,20,20)"
    colors["not measured"] = rgb(STATUS_COLORS["unknown"])
    return labels, colors
