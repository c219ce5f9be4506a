"""Snapshot images for BCF viewpoints: the model seen through the viewpoint's camera.

A ray caster (Open3D's ``RaycastingScene``) over the site's ``ModelMesh``: grey elements
shaded by the angle to the viewer, the finding's elements in orange, a plain sky
behind. Enough for a reviewer in BIMcollab or Solibri to recognise the place before the
viewer has loaded the model; not a rendering of the site.
"""

from __future__ import annotations

import io
import math

import numpy as np

from sitetwin.data.i18n import N_
from sitetwin.oversight.errors import BcfError

WIDTH, HEIGHT = 640, 480
BASE = np.array([0.78, 0.78, 0.76])
SELECTED = np.array([0.96, 0.45, 0.08])
SKY_TOP, SKY_BOTTOM = np.array([0.62, 0.75, 0.90]), np.array([0.92, 0.94, 0.96])


def render_snapshot(mesh, camera: dict, selected_global_ids=(), *, width: int = WIDTH, height: int = HEIGHT) -> bytes:
    """A PNG of ``mesh`` (a ``bim.ModelMesh``) seen through ``camera`` (local frame, see ``bcf.camera``)."""
    import open3d as o3d
    from PIL import Image

    if mesh.triangle_count == 0:
        raise BcfError(N_("the site's model has no triangles to draw a snapshot from"))
    origins, dirs = camera_rays(camera, width, height)
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(mesh.to_open3d())
    rays = np.concatenate([origins, dirs], axis=1).astype(np.float32)
    hit = scene.cast_rays(o3d.core.Tensor(rays, o3d.core.float32, o3d.core.Device("CPU:0")))
    t = hit["t_hit"].numpy()
    prim = hit["primitive_ids"].numpy().astype(np.int64)
    normals = hit["primitive_normals"].numpy()
    ok = np.isfinite(t)
    selected = np.isin(mesh.global_ids, np.asarray(list(selected_global_ids), dtype=str))
    colour = np.empty((len(t), 3))
    rows = np.repeat(np.arange(height), width) / max(height - 1, 1)
    colour[:] = SKY_TOP + (SKY_BOTTOM - SKY_TOP) * rows[:, None]
    if ok.any():
        elem = mesh.face_element[prim[ok]]
        albedo = np.where(selected[elem][:, None], SELECTED, BASE)
        lambert = np.abs(np.einsum("ij,ij->i", normals[ok], dirs[ok]))
        fog = np.exp(-t[ok] / 400.0)
        colour[ok] = albedo * (0.3 + 0.7 * lambert)[:, None] * fog[:, None] + SKY_BOTTOM * (1 - fog)[:, None]
    image = (np.clip(colour, 0, 1) * 255 + 0.5).astype(np.uint8).reshape(height, width, 3)
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def camera_rays(camera: dict, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, 3) origins and unit directions, row by row from the top left, for a stored camera."""
    pos = np.asarray(camera["position_m"], dtype=np.float64)
    fwd = _unit(camera["direction"])
    right = _unit(np.cross(fwd, camera["up"]))
    up = np.cross(right, fwd)
    xs = (np.arange(width) + 0.5) / width * 2 - 1
    ys = 1 - (np.arange(height) + 0.5) / height * 2
    gx, gy = np.meshgrid(xs, ys)
    aspect = width / height
    if camera.get("kind") == "orthogonal":
        half_h = float(camera.get("view_to_world_scale") or 10.0) / 2
        origins = pos + (gx.ravel()[:, None] * half_h * aspect) * right + (gy.ravel()[:, None] * half_h) * up
        dirs = np.repeat(fwd[None, :], len(origins), axis=0)
        return origins, dirs
    tan_v = math.tan(math.radians(float(camera.get("fov_deg") or 60.0)) / 2)
    dirs = fwd + (gx.ravel()[:, None] * tan_v * aspect) * right + (gy.ravel()[:, None] * tan_v) * up
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    return np.repeat(pos[None, :], len(dirs), axis=0), dirs


def _unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)
