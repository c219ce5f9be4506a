"""Fixtures for the panorama tests: a box room with known geometry, the demo building's mesh."""

from __future__ import annotations

import numpy as np
import pytest


def box_mesh(lo, hi, element: int = 0):
    """Vertices and faces (12 triangles, outward normals) of an axis-aligned box."""
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    v = np.array([[lo[0], lo[1], lo[2]], [hi[0], lo[1], lo[2]], [hi[0], hi[1], lo[2]], [lo[0], hi[1], lo[2]],
                  [lo[0], lo[1], hi[2]], [hi[0], lo[1], hi[2]], [hi[0], hi[1], hi[2]], [lo[0], hi[1], hi[2]]])
    f = np.array([[0, 2, 1], [0, 3, 2], [4, 5, 6], [4, 6, 7], [0, 1, 5], [0, 5, 4],
                  [1, 2, 6], [1, 6, 5], [2, 3, 7], [2, 7, 6], [3, 0, 4], [3, 4, 7]])
    return v, f


def room_mesh():
    """A 10 x 8 x 3 m room: floor, ceiling and four walls as six elements, plus a column at (7, 2).

    Inner faces: x in [0, 10], y in [0, 8], z in [0, 3]; walls 0.2 m thick outside that.
    Elements: 0 floor, 1 ceiling, 2 wall x=0, 3 wall x=10, 4 wall y=0, 5 wall y=8, 6 column.
    """
    from sitetwin.bim.geometry import ModelMesh

    parts = [
        ((-0.2, -0.2, -0.2), (10.2, 8.2, 0.0)),
        ((-0.2, -0.2, 3.0), (10.2, 8.2, 3.2)),
        ((-0.2, 0.0, 0.0), (0.0, 8.0, 3.0)),
        ((10.0, 0.0, 0.0), (10.2, 8.0, 3.0)),
        ((0.0, -0.2, 0.0), (10.0, 0.0, 3.0)),
        ((0.0, 8.0, 0.0), (10.0, 8.2, 3.0)),
        ((6.8, 1.8, 0.0), (7.2, 2.2, 3.0)),
    ]
    verts, faces, owner = [], [], []
    for i, (lo, hi) in enumerate(parts):
        v, f = box_mesh(lo, hi)
        faces.append(f + 8 * i)
        verts.append(v)
        owner.append(np.full(len(f), i))
    gids = np.array([f"ROOM{i:018d}"[:22] for i in range(len(parts))])
    return ModelMesh(np.concatenate(verts).astype(np.float32), np.concatenate(faces).astype(np.int32),
                     np.concatenate(owner).astype(np.int32), gids, np.array(["room"] * len(parts)),
                     np.zeros(3))


@pytest.fixture(scope="session")
def room():
    return room_mesh()


@pytest.fixture(scope="session")
def demo_mesh(demo_store_path):
    """The demo building's ModelMesh (site DEMO), local frame."""
    from sitetwin.bim.mesh import load_mesh
    from sitetwin.data.store import open_store

    with open_store(demo_store_path, read_only=True) as s:
        return load_mesh(s, site_code="DEMO")
