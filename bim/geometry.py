"""Tessellate a model with ``ifcopenshell.geom`` and hold the result as one indexed triangle mesh.

``ModelMesh`` is what the rest of sitetwin computes on: float32 vertices in the site's
local frame (metres, near the origin so float32 keeps millimetres), int32 faces, and for
every face the index of the element it belongs to.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from sitetwin.bim.elements import has_body, is_physical, is_reference


@dataclass(frozen=True)
class ElementFailure:
    global_id: str
    ifc_class: str
    message: str


@dataclass(frozen=True)
class ReferenceLine:
    """An alignment's axis as a polyline: reference geometry, drawn and measured against, never a surface.

    kind : ``axis`` (the 3D axis: horizontal layout with its gradient) or ``plan`` (horizontal
        layout only, at the alignment placement's height: the file has no vertical layout geometry)
    points_world : (n, 3) float64, metres, world frame (IFC project coordinates)
    """

    global_id: str
    ifc_class: str
    name: str | None
    kind: str
    points_world: np.ndarray
    note: str | None = None      # why a 3D axis was kept as its plan only


@dataclass(frozen=True)
class Tessellation:
    """Raw iterator output in the model's world frame (float64, metres)."""

    vertices_world: np.ndarray     # (n, 3) float64
    faces: np.ndarray              # (m, 3) int32
    face_element: np.ndarray       # (m,) int32 index into global_ids
    global_ids: tuple[str, ...]    # elements that produced triangles, in iterator order
    failures: tuple[ElementFailure, ...]


@dataclass(frozen=True)
class ModelMesh:
    """Triangles of one or more models in the site's local frame.

    vertices : (n, 3) float32, metres, local frame (world = local + origin_m)
    faces : (m, 3) int32
    face_element : (m,) int32, index into ``global_ids`` / ``model_ids``
    global_ids, model_ids : (k,) str, one entry per element
    origin_m : (3,) float64
    """

    vertices: np.ndarray
    faces: np.ndarray
    face_element: np.ndarray
    global_ids: np.ndarray
    model_ids: np.ndarray
    origin_m: np.ndarray

    @property
    def triangle_count(self) -> int:
        return int(len(self.faces))

    @property
    def element_count(self) -> int:
        return int(len(self.global_ids))

    def bounds(self) -> np.ndarray:
        """(2, 3) min and max corner of all vertices, local frame."""
        if len(self.vertices) == 0:
            return np.zeros((2, 3), dtype=np.float64)
        return np.stack([self.vertices.min(0), self.vertices.max(0)]).astype(np.float64)

    def element_index(self) -> dict[str, int]:
        return {g: i for i, g in enumerate(self.global_ids.tolist())}

    def triangles(self) -> np.ndarray:
        """(m, 3, 3) float32 corner coordinates."""
        return self.vertices[self.faces]

    def subset(self, keep_elements: np.ndarray) -> ModelMesh:
        """Only the faces of elements where ``keep_elements`` (bool, (k,)) is true; indices stay valid."""
        keep_elements = np.asarray(keep_elements, dtype=bool)
        if keep_elements.shape != self.global_ids.shape:
            raise ValueError(f"keep_elements must be ({self.element_count},) bool, got {keep_elements.shape}")
        mask = keep_elements[self.face_element]
        return ModelMesh(self.vertices, self.faces[mask], self.face_element[mask], self.global_ids,
                         self.model_ids, self.origin_m)

    def to_open3d(self):
        """An ``open3d.t.geometry.TriangleMesh`` (for ray casting and distance queries)."""
        import open3d as o3d

        mesh = o3d.t.geometry.TriangleMesh()
        mesh.vertex.positions = o3d.core.Tensor(np.ascontiguousarray(self.vertices, dtype=np.float32))
        mesh.triangle.indices = o3d.core.Tensor(np.ascontiguousarray(self.faces, dtype=np.int32))
        return mesh

    def to_trimesh(self):
        import trimesh

        return trimesh.Trimesh(vertices=self.vertices, faces=self.faces, process=False)


def default_threads() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def geom_settings():
    """The tessellation settings every sitetwin load (and its benchmark baseline) uses."""
    import ifcopenshell.geom

    settings = ifcopenshell.geom.settings()
    settings.set("use-world-coords", True)
    return settings


@contextlib.contextmanager
def stdout_to_stderr():
    """Send what C++ code writes on the process's stdout to stderr meanwhile.

    IfcOpenShell 0.9 prints a debug dump of the faces of some solids (``IfcSectionedSolidHorizontal``,
    common in road and bridge models) on stdout while it tessellates them, which would break a
    command's ``--json`` document. Process-wide while it lasts; a no-op where stdout has no descriptor.
    """
    try:
        sys.stdout.flush()
        saved = os.dup(1)
    except (OSError, ValueError, AttributeError):
        yield
        return
    try:
        os.dup2(2, 1)
        yield
    finally:
        _flush_c_stdio()        # what C++ buffered must go where it was written meanwhile
        os.dup2(saved, 1)
        os.close(saved)


def _flush_c_stdio() -> None:
    import ctypes

    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):
        pass


def _iterate(iterator, products, verts, faces, gids, done, empty, on_progress) -> None:
    """Run the geometry iterator, collecting each element's first shape with triangles."""
    if not iterator.initialize():
        return
    count = 0
    while True:
        shape = iterator.get()
        v = np.frombuffer(shape.geometry.verts_buffer, dtype=np.float64).reshape(-1, 3)
        f = np.frombuffer(shape.geometry.faces_buffer, dtype=np.int32).reshape(-1, 3)
        if not len(f):
            empty.add(shape.guid)
        elif shape.guid not in done:
            done.add(shape.guid)
            verts.append(v)
            faces.append(f)
            gids.append(shape.guid)
        if on_progress is not None:
            count += 1
            on_progress(count, len(products))
        if not iterator.next():
            break


def physical_products(model) -> list:
    return [p for p in model.by_type("IfcProduct") if p.Representation is not None and is_physical(p)]


def tessellate(model, *, threads: int | None = None, on_progress=None) -> Tessellation:
    """Tessellate every physical product with a representation, in world coordinates and metres.

    Elements that produce no triangles (broken geometry) are listed in ``failures``; the
    iterator goes on with the rest. ``on_progress(done, total)`` reports each element done.
    """
    import ifcopenshell
    import ifcopenshell.geom

    products = physical_products(model)
    wanted = {p.GlobalId: p for p in products}
    verts: list[np.ndarray] = []   # per element, in arrival order; faces index their own vertices
    faces: list[np.ndarray] = []
    gids: list[str] = []
    done: set[str] = set()   # duplicate GlobalIds (real exports have them) keep their first shape
    empty: set[str] = set()   # shapes produced with no triangles
    if products:
        ifcopenshell.get_log()  # drain earlier messages: what follows is about this model
        iterator = ifcopenshell.geom.iterator(geom_settings(), model, threads or default_threads(),
                                              include=products)
        with stdout_to_stderr():
            _iterate(iterator, products, verts, faces, gids, done, empty, on_progress)
    log_text = ifcopenshell.get_log() if products else ""

    failures = tuple(
        ElementFailure(g, p.is_a(), _failure_reason(log_text, p, g in empty))
        for g, p in wanted.items() if g not in done and has_body(p))
    # The iterator's threads deliver shapes in any order: sort elements by GlobalId so the
    # same file always gives the same arrays (element indices, random draws, caches).
    order = sorted(range(len(gids)), key=gids.__getitem__)
    rank = np.empty(len(gids), dtype=np.int32)
    rank[order] = np.arange(len(gids), dtype=np.int32)
    rank_of = rank.tolist()
    out_verts, out_faces, out_owners = [], [], []
    offset = 0
    for i in order:
        out_verts.append(verts[i])
        out_faces.append(faces[i] + offset)
        out_owners.append(np.full(len(faces[i]), rank_of[i], dtype=np.int32))
        offset += len(verts[i])
    return Tessellation(
        vertices_world=np.concatenate(out_verts) if out_verts else np.zeros((0, 3)),
        faces=np.concatenate(out_faces).astype(np.int32) if out_faces else np.zeros((0, 3), dtype=np.int32),
        face_element=np.concatenate(out_owners) if out_owners else np.zeros(0, dtype=np.int32),
        global_ids=tuple(gids[i] for i in order),
        failures=failures,
    )


def _failure_reason(log_text: str, product, produced_empty: bool) -> str:
    """Why a product has no triangles: cut away, or the iterator's own error about it."""
    if produced_empty:
        if getattr(product, "HasOpenings", None):
            return "tessellates to nothing: its openings cut it away entirely"
        return "tessellates to no triangles"
    tag = f"#{product.id()}"
    for line in log_text.splitlines():
        if ("error" in line.lower() or "warning" in line.lower()) and (
                f"{tag}=" in line or f"{tag} " in line or product.GlobalId in line):
            return line.strip()[:300]
    return "IfcOpenShell produced no shape for it"


def reference_lines(model, length_unit_m: float) -> tuple[list[ReferenceLine], list[ElementFailure]]:
    """The axis polyline of every alignment with a representation, world frame, metres.

    IfcOpenShell's iterator and ``create_shape(settings, product, representation)`` refuse an
    alignment's ``Axis`` / ``Curve3D`` representation (0.8 and 0.9 alike) but evaluate its curve
    item on its own with ``dimensionality`` set to ``CURVES``; the product placement is applied
    here. A ``IfcSegmentedReferenceCurve`` (rail: the axis with cant applied) gives way to its
    base ``IfcGradientCurve``, the alignment axis proper. A gradient curve that evaluates shorter
    than its horizontal layout (IfcOpenShell 0.9 drops vertical arcs it cannot parametrise) is
    replaced by that layout, in plan, with a ``note``. Alignments whose curve cannot be
    evaluated are returned as failures, with IfcOpenShell's message.
    """
    import ifcopenshell.geom
    import ifcopenshell.ifcopenshell_wrapper as wrapper
    import ifcopenshell.util.placement as up

    settings = ifcopenshell.geom.settings()
    settings.set("dimensionality", wrapper.CURVES)
    lines: list[ReferenceLine] = []
    failures: list[ElementFailure] = []
    seen: set[str] = set()
    for product in model.by_type("IfcProduct"):
        if product.Representation is None or not is_reference(product) or product.GlobalId in seen:
            continue
        seen.add(product.GlobalId)
        item, kind = _axis_item(product)
        if item is None:
            failures.append(ElementFailure(product.GlobalId, product.is_a(), "no axis curve in its representations"))
            continue
        try:
            shape: Any = ifcopenshell.geom.create_shape(settings, item)
        except Exception as exc:  # IfcOpenShell raises RuntimeError and others for curves it cannot evaluate
            failures.append(ElementFailure(product.GlobalId, product.is_a(), f"{item.is_a()}: {exc}"[:300]))
            continue
        v = _chain(np.asarray(shape.verts, dtype=np.float64).reshape(-1, 3),
                   np.asarray(shape.edges, dtype=np.int64).reshape(-1, 2))
        note = None
        if item.is_a("IfcGradientCurve") and item.BaseCurve is not None:
            v, kind, note = _whole_axis(settings, item, v)
        if len(v) < 2:
            failures.append(ElementFailure(product.GlobalId, product.is_a(), f"{item.is_a()} evaluates to no line"))
            continue
        matrix = np.eye(4)
        if product.ObjectPlacement is not None:
            matrix = np.asarray(up.get_local_placement(product.ObjectPlacement), dtype=np.float64)
        points = v @ matrix[:3, :3].T + matrix[:3, 3] * length_unit_m
        lines.append(ReferenceLine(product.GlobalId, product.is_a(), product.Name, kind, points, note))
    lines.sort(key=lambda r: r.global_id)
    return lines, failures


def _axis_item(product):
    """The curve item that is the product's axis, and whether it is 3D (``axis``) or plan only (``plan``)."""
    by_type: dict[str, list] = {}
    for rep in product.Representation.Representations or ():
        if (rep.RepresentationIdentifier or "") in ("Axis", "FootPrint", "Reference", ""):
            by_type.setdefault(rep.RepresentationType or "", []).extend(rep.Items or ())
    for item in by_type.get("Curve3D", ()):
        if item.is_a("IfcSegmentedReferenceCurve"):
            return item.BaseCurve, "axis"
        return item, "axis"
    for item in by_type.get("Curve2D", ()) or by_type.get("Curve", ()):
        return item, "plan"
    return None, ""


def _whole_axis(settings, gradient, v: np.ndarray) -> tuple[np.ndarray, str, str | None]:
    """The gradient curve's points if they cover its horizontal layout, else that layout in plan."""
    import ifcopenshell.geom

    try:
        shape: Any = ifcopenshell.geom.create_shape(settings, gradient.BaseCurve)
    except Exception:  # the plan cannot be checked: keep what the 3D curve gave
        return v, "axis", None
    plan = _chain(np.asarray(shape.verts, dtype=np.float64).reshape(-1, 3),
                  np.asarray(shape.edges, dtype=np.int64).reshape(-1, 2))
    length_3d = _plan_length(v)
    length_plan = _plan_length(plan)
    if len(plan) >= 2 and abs(length_plan - length_3d) > max(0.5, 0.005 * length_plan):
        # drawn at the median height of what the 3D curve gave, so the view shows it by its road, not 150 m below
        height = float(np.median(v[:, 2])) if len(v) else 0.0
        plan = plan.copy()
        plan[:, 2] = height
        return plan, "plan", (f"its 3D axis evaluates to {length_3d:.1f} m of its {length_plan:.1f} m horizontal "
                              f"layout; kept the horizontal layout, at {height:.2f} m")
    return v, "axis", None


def _plan_length(v: np.ndarray) -> float:
    return float(np.linalg.norm(np.diff(v[:, :2], axis=0), axis=1).sum()) if len(v) >= 2 else 0.0


def _chain(v: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The vertices in the order the curve's edges run (they arrive in order for one open curve)."""
    if not len(edges) or np.array_equal(edges[:, 1], edges[:, 0] + 1):
        return v
    order = [int(edges[0, 0])]
    for a, b in edges:
        if a == order[-1]:
            order.append(int(b))
    return v[order] if len(order) >= 2 else v


def geometry_hashes(tess: Tessellation) -> dict[str, str]:
    """A digest per element of its vertices rounded to 1 mm, order-independent."""
    out: dict[str, str] = {}
    if not tess.global_ids:
        return out
    order = np.argsort(tess.face_element, kind="stable")
    fe = tess.face_element[order]
    bounds = np.searchsorted(fe, np.arange(len(tess.global_ids) + 1))
    for i, gid in enumerate(tess.global_ids):
        idx = tess.faces[order[bounds[i]:bounds[i + 1]]].ravel()
        pts = np.round(tess.vertices_world[np.unique(idx)] * 1000.0).astype(np.int64)
        pts = np.unique(pts, axis=0)
        out[gid] = hashlib.blake2b(pts.tobytes(), digest_size=8).hexdigest()
    return out


def world_bounds_per_element(tess: Tessellation) -> np.ndarray:
    """(k, 2, 3) float64 min/max corner per element, world frame."""
    k = len(tess.global_ids)
    lo = np.full((k, 3), np.inf)
    hi = np.full((k, 3), -np.inf)
    if k:
        tri = tess.vertices_world[tess.faces]          # (m, 3, 3)
        np.minimum.at(lo, tess.face_element, tri.min(axis=1))
        np.maximum.at(hi, tess.face_element, tri.max(axis=1))
    return np.stack([lo, hi], axis=1)
