"""Even point samplings of a model's surfaces: the registration target, and the patches coverage is counted on."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SurfaceSample:
    """Points on a mesh's surface (site local frame, metres) with where they came from.

    points : (n, 3) float64
    normals : (n, 3) float64, unit, the triangle's outward normal
    triangle : (n,) int32 face index
    element : (n,) int32 element index
    area_m2 : (n,) float64 surface area each sample stands for
    """

    points: np.ndarray
    normals: np.ndarray
    triangle: np.ndarray
    element: np.ndarray
    area_m2: np.ndarray


def triangle_areas(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(m,) areas (m^2) and (m, 3) unit normals (zero for degenerate faces)."""
    tri = np.asarray(vertices, dtype=np.float64)[faces]
    cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    norm = np.linalg.norm(cross, axis=1)
    normals = np.divide(cross, norm[:, None], out=np.zeros_like(cross), where=norm[:, None] > 0)
    return norm / 2.0, normals


def sample_surface(mesh, *, spacing_m: float, elements: np.ndarray | None = None, seed: int = 0,
                   max_points: int | None = None) -> SurfaceSample:
    """Sample the faces of ``mesh`` (a ``bim.ModelMesh``) at about one point per ``spacing_m``^2.

    ``elements`` (bool, one per element) keeps only those elements' faces. Sampling is
    stratified per triangle (each triangle gets ``floor(area / spacing^2)`` points plus one
    more with the remaining probability), so small elements are never skipped by chance.
    ``max_points`` widens the spacing until the sample fits.
    """
    if spacing_m <= 0:
        raise ValueError(f"spacing_m must be positive, got {spacing_m}")
    faces = mesh.faces
    face_element = mesh.face_element
    if elements is not None:
        keep = np.asarray(elements, dtype=bool)[face_element]
        face_ids = np.flatnonzero(keep)
    else:
        face_ids = np.arange(len(faces))
    areas, normals = triangle_areas(mesh.vertices, faces[face_ids])
    total = float(areas.sum())
    if max_points is not None and total / spacing_m ** 2 > max_points:
        spacing_m = float(np.sqrt(total / max_points))
    rng = np.random.default_rng(seed)
    expected = areas / spacing_m ** 2
    counts = np.floor(expected).astype(np.int64)
    counts += rng.random(len(expected)) < (expected - counts)
    which = np.repeat(np.arange(len(face_ids)), counts)
    if len(which) == 0:
        empty = np.zeros((0, 3))
        return SurfaceSample(empty, empty.copy(), np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0))
    tri = np.asarray(mesh.vertices, dtype=np.float64)[faces[face_ids[which]]]
    u, v = rng.random(len(which)), rng.random(len(which))
    flip = u + v > 1.0
    u[flip], v[flip] = 1.0 - u[flip], 1.0 - v[flip]
    points = tri[:, 0] + u[:, None] * (tri[:, 1] - tri[:, 0]) + v[:, None] * (tri[:, 2] - tri[:, 0])
    tri_idx = face_ids[which].astype(np.int32)
    per_point_area = areas[which] / np.maximum(counts[which], 1)
    return SurfaceSample(points=points, normals=normals[which], triangle=tri_idx,
                         element=face_element[tri_idx].astype(np.int32), area_m2=per_point_area)
