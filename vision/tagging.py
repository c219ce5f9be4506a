"""Tag detections onto the model: the element and storey a box stands on (or shows), and its 3D position.

A :class:`View` is a posed image: an equirectangular panorama or a perspective camera, its
``T_model_from_camera`` (see :mod:`panorama.camera`) and optionally the element map
(:class:`panorama.element_map.ElementMap`) computed for it. For each box:

- **foot** classes (people, machinery) use the box's foot point: a few pixels along the
  middle of its bottom edge are looked up in the element map (what the pixel sees and its
  range). The range is checked against the distance implied by the box's angular height for
  an object of known height; if the ray went past the feet (over a slab edge, say) or was
  blocked in front of them, the foot point is placed at that implied distance instead. A
  short downward ray from just above the foot point then finds the element it stands on
  (a slab), whose storey is the detection's storey. ``point_m`` is that contact point.
- **centre** classes (formwork, rebar, concrete) take the element seen at the box centre.

Metres, site local frame. Pixels: centres at ``i + 0.5`` (the panorama convention).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sitetwin.vision.boxes import Boxes


@dataclass(frozen=True)
class TagConfig:
    """How boxes are anchored on the model."""

    foot_classes: tuple[str, ...] = ("person", "machinery")     # anchored at the bottom of the box
    centre_classes: tuple[str, ...] = ("formwork", "rebar", "concrete", "vest", "hard_hat", "head")
    object_height_m: dict = field(default_factory=lambda: {"person": 1.75, "machinery": 3.0})
    depth_tolerance: float = 0.35    # (0-1) relative disagreement between hit range and implied range allowed
    foot_samples: int = 5            # pixels sampled across the middle half of the box's bottom edge
    probe_up_m: float = 0.4          # the downward probe starts this far above the foot point
    probe_down_m: float = 2.5        # and looks this far below it for the element stood on
    support_classes: tuple[str, ...] = ("IfcSlab", "IfcStair", "IfcStairFlight", "IfcRamp", "IfcRampFlight",
                                        "IfcRoof", "IfcCovering", "IfcPlate", "IfcFooting")   # what can be stood on
    pullback_m: float = 1.5          # with nothing to stand on, look this far back towards the camera
    min_implied_aspect: float = 1.2  # box height / width below which the box is not a whole upright figure
                                     # (occluded, cut): its height implies no range


@dataclass(frozen=True)
class Tag:
    """Where a detection is in the model. ``method``: map (foot ray hit), implied (range from box height),
    centre (element at the box centre), none (nothing found)."""

    model_id: str | None
    global_id: str | None
    ifc_class: str | None
    storey: str | None
    point_m: np.ndarray | None       # (3,) site local frame
    distance_m: float | None         # camera to point
    method: str


@dataclass(frozen=True)
class View:
    """A posed image. ``camera`` None: equirectangular panorama of ``width`` x ``height``."""

    T_model_from_camera: np.ndarray
    width: int
    height: int
    camera: Any = None               # panorama.camera.PerspectiveCamera for perspective images
    element_map: Any = None          # panorama.element_map.ElementMap of this view, if computed

    def bearings(self, uv: np.ndarray) -> np.ndarray:
        """(n, 3) unit bearings in the camera frame of pixel coordinates (n, 2)."""
        from sitetwin.panorama.camera import equirect_to_bearing

        uv = np.asarray(uv, np.float64).reshape(-1, 2)
        if self.camera is None:
            return equirect_to_bearing(uv, self.width, self.height)
        return self.camera.bearings(uv)

    def rays(self, uv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Camera centre (3,) and unit model-frame directions (n, 3) of pixel coordinates."""
        T = np.asarray(self.T_model_from_camera, np.float64)
        return T[:3, 3].copy(), self.bearings(uv) @ T[:3, :3].T


class Tagger:
    """Tags boxes on posed views of one site's model.

    mesh : bim.ModelMesh of the site (local frame); elements : GlobalId -> (ifc_class, storey)
    """

    def __init__(self, mesh: Any, elements: dict[str, tuple[str | None, str | None]], config: TagConfig = TagConfig(),
                 scene: Any = None):
        from sitetwin.panorama.render import RayScene

        self.mesh = mesh
        self.elements = elements
        self.config = config
        self.scene = scene if scene is not None else RayScene(mesh)

    @classmethod
    def from_store(cls, store, site_code: str, config: TagConfig = TagConfig(), *, mesh: Any = None) -> Tagger:
        from sitetwin.bim.mesh import load_mesh
        from sitetwin.bim.queries import element_frame

        mesh = mesh if mesh is not None else load_mesh(store, site_code=site_code)
        frame = element_frame(store, site_code=site_code)[["global_id", "ifc_class", "storey"]]
        frame = frame.astype(object).where(frame.notna(), None)       # a missing storey is None, never NaN
        return cls(mesh, {g: (c, s) for g, c, s in frame.itertuples(index=False)}, config)

    # -- public ------------------------------------------------------------------------------------

    def tag(self, boxes: Boxes, view: View) -> list[Tag]:
        out = []
        for i in range(len(boxes)):
            name = boxes.names[boxes.cls[i]]
            box = boxes.xyxy[i].astype(np.float64)
            if name in self.config.foot_classes:
                out.append(self.tag_foot(box, view, self.config.object_height_m.get(name, 1.75)))
            else:
                out.append(self.tag_centre(box, view))
        return out

    def tag_centre(self, box: np.ndarray, view: View) -> Tag:
        uv = np.array([[(box[0] + box[2]) / 2, (box[1] + box[3]) / 2]])
        idx, rng, point = self._lookup(view, uv)
        if idx[0] < 0:
            return Tag(None, None, None, None, None, None, "none")
        return self._tag(int(idx[0]), point[0], float(rng[0]), "centre")

    def tag_foot(self, box: np.ndarray, view: View, height_m: float) -> Tag:
        c = self.config
        x1, y1, x2, y2 = box
        w = x2 - x1
        us = x1 + w * np.linspace(0.35, 0.65, max(1, c.foot_samples))
        v_foot = min(y2 - 0.5, view.height - 0.5) if view.camera is not None else y2 - 0.5
        foot_uv = np.stack([us, np.full_like(us, v_foot)], 1)
        origin, dirs = view.rays(foot_uv)
        idx, rng, _ = self._lookup(view, foot_uv)
        centre_dir = dirs[len(dirs) // 2]
        implied = self._implied_range(view, box, height_m) \
            if (y2 - y1) >= c.min_implied_aspect * max(w, 1e-6) else None
        hit = np.isfinite(rng) & (idx >= 0)
        method = "map"
        if hit.any():
            r_hit = float(np.median(rng[hit]))
            if implied is not None and abs(r_hit - implied) > c.depth_tolerance * implied:
                r_hit, method = implied, "implied"
        elif implied is not None:
            r_hit, method = implied, "implied"
        else:
            return Tag(None, None, None, None, None, None, "none")
        foot = origin + centre_dir * r_hit
        support = self._support(foot)
        if support is None:
            # nobody floats: the box ends above a drop (an open edge, a void), so the feet are on
            # the near side of it; step back towards the camera to the first floor
            back = np.array([origin[0] - foot[0], origin[1] - foot[1], 0.0])
            span = float(np.linalg.norm(back))
            if span > 1e-6:
                back /= span
                for step in np.arange(0.1, min(c.pullback_m, span) + 1e-9, 0.1):
                    support = self._support(foot + back * step)
                    if support is not None:
                        method = f"{method}+pullback"
                        break
        if support is not None:
            index, contact = support
            return self._tag(index, contact, float(np.linalg.norm(contact - origin)), method)
        return Tag(None, None, None, None, foot, float(np.linalg.norm(foot - origin)), method)

    def _support(self, foot: np.ndarray) -> tuple[int, np.ndarray] | None:
        """The element stood on below ``foot`` and the contact point; None when nothing is in reach.

        The probe passes through things that are not floors (an edge upstand, a railing's foot),
        as long as it stays within reach.
        """
        c = self.config
        start = foot + np.array([0.0, 0.0, c.probe_up_m])
        reach = c.probe_up_m + c.probe_down_m
        travelled = 0.0
        down = np.array([[0.0, 0.0, -1.0]])
        for _ in range(4):
            hits = self.scene.cast(start, down, normals=False)
            r = float(hits.range_m[0])
            if not np.isfinite(r) or travelled + r > reach:
                return None
            index = int(hits.element[0])
            contact = start + np.array([0.0, 0.0, -r])
            if index < 0:
                return None
            gid = str(self.mesh.global_ids[index])
            ifc_class = self.elements.get(gid, (None, None))[0]
            if ifc_class is None or ifc_class in c.support_classes:
                return index, contact
            travelled += r + 0.01
            start = contact + np.array([0.0, 0.0, -0.01])
        return None

    # -- helpers -----------------------------------------------------------------------------------

    def _tag(self, index: int, point: np.ndarray, distance: float, method: str) -> Tag:
        gid = str(self.mesh.global_ids[index])
        mid = str(self.mesh.model_ids[index])
        ifc_class, storey = self.elements.get(gid, (None, None))
        return Tag(mid, gid, ifc_class, storey, np.asarray(point, np.float64), distance, method)

    def _lookup(self, view: View, uv: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Mesh element index, range and 3D point per pixel: from the element map, else by ray casting."""
        origin, dirs = view.rays(uv)
        emap = view.element_map
        if emap is not None:
            idx = np.full(len(uv), -1, np.int64)
            rng = np.full(len(uv), np.inf)
            lookup = self._map_lookup(emap)
            for k, (u, v) in enumerate(uv):
                col, row = int(math.floor(u)), int(math.floor(v))
                if view.camera is None:
                    col %= emap.width
                if 0 <= row < emap.height and 0 <= col < emap.width:
                    e = int(emap.element_index[row, col])
                    if e >= 0:
                        idx[k] = lookup[e]
                        rng[k] = float(emap.depth_m[row, col])
        else:
            hits = self.scene.cast(origin, dirs, normals=False)
            idx = hits.element.astype(np.int64)
            rng = hits.range_m.astype(np.float64)
        point = origin + dirs * np.where(np.isfinite(rng), rng, 0.0)[:, None]
        return idx, rng, point

    def _map_lookup(self, emap) -> np.ndarray:
        """Element-map indices -> this tagger's mesh indices (maps loaded from the store use their own lookup)."""
        key = id(emap)
        cache = getattr(self, "_lut_cache", None)
        if cache is not None and cache[0] == key:
            return cache[1]
        mesh_index = {(str(m), str(g)): i for i, (g, m) in enumerate(zip(self.mesh.global_ids, self.mesh.model_ids))}
        lut = np.array([mesh_index.get((str(m), str(g)), -1) for g, m in zip(emap.global_ids, emap.model_ids)],
                       np.int64)
        self._lut_cache = (key, lut)
        return lut

    @staticmethod
    def _implied_range(view: View, box: np.ndarray, height_m: float) -> float | None:
        """Range to the foot point of an upright object ``height_m`` tall spanning the box vertically."""
        x1, y1, x2, y2 = box
        xc = (x1 + x2) / 2
        _, dirs = view.rays(np.array([[xc, y1], [xc, y2 - 0.5]]))
        top, bottom = dirs
        el_t = math.atan2(top[2], math.hypot(top[0], top[1]))
        el_b = math.atan2(bottom[2], math.hypot(bottom[0], bottom[1]))
        span = math.tan(el_t) - math.tan(el_b)
        if span <= 1e-6:
            return None
        horizontal = height_m / span
        return horizontal / max(math.cos(el_b), 1e-6)


def tag_points(tags: Sequence[Tag]) -> np.ndarray:
    """(n, 3) positions of tags, NaN where a tag has none."""
    return np.array([t.point_m if t.point_m is not None else (np.nan, np.nan, np.nan) for t in tags],
                    np.float64).reshape(-1, 3)
