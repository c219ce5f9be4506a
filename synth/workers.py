"""Synthetic training and test scenes: simple worker figures rendered into the site model, with exact labels.

A :class:`Worker` is a figure 1.75 m tall (legs, torso, arms, head; optionally a hard hat
and a high-visibility vest) standing on a floor of the model. :func:`worker_extra` turns it
into a :class:`panorama.render.Extra` whose parts carry ids (``w3/head``, ``w3/hat``, ...),
so a render's per-pixel ``extra_index`` says exactly which pixels show which part;
:func:`labels_from_render` turns those pixels into YOLO boxes for ``person``, ``hard_hat``
(a head wearing a hat), ``head`` (a bare head) and ``vest``. :class:`SceneSampler` finds
standing places and camera stations on the model's floors by ray casting (on a slab, head
room above, nothing within reach), so figures never stand in columns or float over voids.

Used by the demo stage (a detector trained on these renders) and by the tests.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

SYNTH_CLASSES = ("person", "hard_hat", "head", "vest")

HAT_COLORS = ((245, 245, 240), (250, 210, 20), (250, 120, 20), (210, 40, 35), (30, 90, 200))
VEST_COLORS = ((235, 255, 40), (255, 140, 20), (200, 255, 60))
SHIRT_COLORS = ((60, 70, 90), (120, 40, 40), (40, 90, 60), (150, 150, 150), (30, 30, 35), (170, 120, 80))
TROUSER_COLORS = ((40, 45, 60), (70, 60, 50), (30, 30, 30), (80, 90, 110))
SKIN_COLORS = ((230, 190, 160), (200, 150, 110), (150, 100, 70), (100, 70, 50))
HAIR_COLORS = ((30, 25, 20), (90, 60, 30), (160, 130, 80), (60, 60, 60))


@dataclass(frozen=True)
class Worker:
    """A figure standing at ``position_m`` (its feet, site local frame), facing ``heading_deg`` (from +x)."""

    position_m: tuple[float, float, float]
    heading_deg: float = 0.0
    hard_hat: bool = True
    vest: bool = True
    height_m: float = 1.75
    hat_color: tuple[int, int, int] = (250, 210, 20)
    vest_color: tuple[int, int, int] = (235, 255, 40)
    shirt_color: tuple[int, int, int] = (60, 70, 90)
    trouser_color: tuple[int, int, int] = (40, 45, 60)
    skin_color: tuple[int, int, int] = (200, 150, 110)
    hair_color: tuple[int, int, int] = (30, 25, 20)

    @classmethod
    def random(cls, rng: np.random.Generator, position_m, *, hard_hat: bool | None = None,
               vest: bool | None = None) -> Worker:
        def pick(seq) -> tuple[int, int, int]:
            r, g, b = seq[int(rng.integers(len(seq)))]
            return int(r), int(g), int(b)

        x, y, z = position_m
        return cls(position_m=(float(x), float(y), float(z)), heading_deg=float(rng.uniform(0, 360)),
                   hard_hat=bool(rng.random() < 0.6) if hard_hat is None else hard_hat,
                   vest=bool(rng.random() < 0.6) if vest is None else vest,
                   height_m=float(rng.uniform(1.62, 1.88)), hat_color=pick(HAT_COLORS), vest_color=pick(VEST_COLORS),
                   shirt_color=pick(SHIRT_COLORS), trouser_color=pick(TROUSER_COLORS), skin_color=pick(SKIN_COLORS),
                   hair_color=pick(HAIR_COLORS))


@functools.lru_cache(maxsize=8)
def _figure_parts(hard_hat: bool, vest: bool) -> tuple:
    """The figure's parts for a 1.75 m worker facing +x with feet at the origin: (part, vertices, faces)."""
    import trimesh

    def box(extents, centre):
        m = trimesh.creation.box(extents=np.asarray(extents))
        m.apply_translation(np.asarray(centre))
        return m

    def dome(radius, z, floor):
        m = trimesh.creation.icosphere(subdivisions=2, radius=radius)
        v = m.vertices.copy()
        v[:, 2] = np.maximum(v[:, 2], floor)                    # the lower half flattened
        m.vertices = v
        m.apply_translation([0.0, 0.0, z])
        return m

    parts = [("legs", trimesh.util.concatenate([box((0.13, 0.15, 0.86), (0.0, y, 0.43)) for y in (-0.1, 0.1)])),
             ("torso", box((0.24, 0.40, 0.58), (0.0, 0.0, 1.15))),
             ("arms", trimesh.util.concatenate([box((0.11, 0.10, 0.60), (0.02, y, 1.14)) for y in (-0.26, 0.26)])),
             ("head", trimesh.util.concatenate([box((0.09, 0.09, 0.08), (0.0, 0.0, 1.47)),
                                                trimesh.creation.icosphere(subdivisions=2, radius=0.105)
                                                .apply_translation([0.0, 0.0, 1.6])]))]
    if hard_hat:
        brim = trimesh.creation.cylinder(radius=0.16, height=0.02)
        brim.apply_translation([0.02, 0.0, 1.64])
        parts.append(("hat", trimesh.util.concatenate([dome(0.135, 1.63, 0.0), brim])))
    else:
        hair = dome(0.11, 0.0, 0.02)
        hair.apply_translation([-0.01, 0.0, 1.61])
        parts.append(("hair", hair))
    if vest:
        parts.append(("vest", box((0.27, 0.43, 0.44), (0.0, 0.0, 1.2))))
    return tuple((part, np.asarray(m.vertices, np.float64), np.asarray(m.faces, np.int32)) for part, m in parts)


def worker_extra(worker: Worker, name: str):
    """The figure as a :class:`panorama.render.Extra`; part ids are ``<name>/legs|torso|arms|head|hat|vest``.

    Hair (a bare head) is part of ``head``; it keeps its own colour.
    """
    from sitetwin.panorama.render import Extra

    s = worker.height_m / 1.75
    colour = {"legs": worker.trouser_color, "torso": worker.shirt_color, "arms": worker.shirt_color,
              "head": worker.skin_color, "hair": worker.hair_color, "hat": worker.hat_color,
              "vest": worker.vest_color}
    c, sn = math.cos(math.radians(worker.heading_deg)), math.sin(math.radians(worker.heading_deg))
    R = np.array([[c, -sn, 0.0], [sn, c, 0.0], [0.0, 0.0, 1.0]]) * s
    names: list[str] = []
    colors: list[tuple[int, int, int]] = []
    verts, faces, owner = [], [], []
    offset = 0
    for part, v, f in _figure_parts(worker.hard_hat, worker.vest):
        pid = f"{name}/{'head' if part == 'hair' else part}"
        # hair shares the head's id (labels: a bare head is head and hair) but keeps its colour:
        # it becomes its own part entry with the same id, so label masks join them
        names.append(pid)
        colors.append(colour[part])
        k = len(names) - 1
        verts.append(v @ R.T + np.asarray(worker.position_m))
        faces.append(f + offset)
        owner.append(np.full(len(f), k, np.int32))
        offset += len(v)
    return Extra(np.concatenate(verts).astype(np.float32), np.concatenate(faces).astype(np.int32),
                 np.concatenate(owner), tuple(names), np.asarray(colors, np.uint8))


@dataclass(frozen=True)
class LabelConfig:
    """When a rendered figure is visible enough to be labelled (pixels)."""

    min_person_px: int = 60        # visible pixels of the whole figure
    min_core_px: int = 12          # visible torso or head pixels (a figure seen only by its feet is not labelled)
    min_head_px: int = 6
    min_vest_px: int = 12
    min_box_side_px: float = 3.0


@dataclass(frozen=True)
class RenderedLabel:
    worker: str                    # the figure's name (e.g. "w3")
    class_name: str                # person | hard_hat | head | vest
    xyxy: tuple[float, float, float, float]
    pixels: int


def labels_from_render(result, workers: dict[str, Worker], config: LabelConfig = LabelConfig(), *,
                       wrap: bool = False) -> list[RenderedLabel]:
    """Boxes of every visible figure and its head (hard_hat / head) and vest, from the render's extra ids.

    ``wrap``: the image is an equirectangular panorama; a box across the seam gets ``x2 > width``.
    """
    idx = result.extra_index
    ids = result.extra_ids
    out: list[RenderedLabel] = []
    for name, worker in workers.items():
        part: dict[str, list[int]] = {}
        for i, p in enumerate(ids):
            if p.split("/", 1)[0] == name:
                part.setdefault(p.split("/", 1)[1], []).append(i)
        if not part:
            continue
        masks = {k: np.isin(idx, i) for k, i in part.items()}
        whole = np.zeros(idx.shape, bool)
        for m in masks.values():
            whole |= m
        core = int(masks.get("torso", whole & False).sum() + masks.get("head", whole & False).sum()
                   + masks.get("vest", whole & False).sum() + masks.get("hat", whole & False).sum())
        n = int(whole.sum())
        if n >= config.min_person_px and core >= config.min_core_px:
            box = _mask_box(whole, wrap)
            if box is not None and min(box[2] - box[0], box[3] - box[1]) >= config.min_box_side_px:
                out.append(RenderedLabel(name, "person", box, n))
        head = masks.get("head", np.zeros(idx.shape, bool)) | masks.get("hat", np.zeros(idx.shape, bool))
        nh = int(head.sum())
        if nh >= config.min_head_px:
            box = _mask_box(head, wrap)
            if box is not None and min(box[2] - box[0], box[3] - box[1]) >= config.min_box_side_px:
                out.append(RenderedLabel(name, "hard_hat" if worker.hard_hat else "head", box, nh))
        if "vest" in masks:
            nv = int(masks["vest"].sum())
            if nv >= config.min_vest_px:
                box = _mask_box(masks["vest"], wrap)
                if box is not None and min(box[2] - box[0], box[3] - box[1]) >= config.min_box_side_px:
                    out.append(RenderedLabel(name, "vest", box, nv))
    return out


def _mask_box(mask: np.ndarray, wrap: bool) -> tuple[float, float, float, float] | None:
    rows = np.flatnonzero(mask.any(1))
    cols = np.flatnonzero(mask.any(0))
    if not len(rows):
        return None
    y1, y2 = float(rows[0]), float(rows[-1] + 1)
    w = mask.shape[1]
    if wrap and cols[0] == 0 and cols[-1] == w - 1:
        # across the seam: the largest gap in the occupied columns is the outside of the box
        gaps = np.diff(cols)
        k = int(np.argmax(gaps))
        if gaps[k] > 1:
            return float(cols[k + 1]), y1, float(cols[k] + 1 + w), y2
    return float(cols[0]), y1, float(cols[-1] + 1), y2


# --- where figures can stand and cameras can look from ------------------------------------------------

@dataclass(frozen=True)
class Floor:
    """A walkable floor: the top of the slabs at ``z_m`` (local frame) with their plan extent."""

    storey: str | None
    z_m: float
    lo: tuple[float, float]
    hi: tuple[float, float]
    slab_indices: frozenset      # mesh element indices of the slabs that make it


class SceneSampler:
    """Standing places and camera stations on a model's floors, checked by ray casting.

    mesh : ModelMesh (local frame); classes : GlobalId -> IFC class; storeys : GlobalId -> storey
    """

    def __init__(self, mesh: Any, classes: dict[str, str], storeys: dict[str, str | None] | None = None, *,
                 scene: Any = None):
        from sitetwin.panorama.render import RayScene

        self.mesh = mesh
        self.classes = classes
        self.storeys = storeys or {}
        self.scene = scene if scene is not None else RayScene(mesh)
        self.floors = self._floors()

    def _floors(self) -> list[Floor]:
        gids = self.mesh.global_ids.tolist()
        slabs = [i for i, g in enumerate(gids) if self.classes.get(g) == "IfcSlab"]
        if not slabs:
            return []
        tri = self.mesh.vertices[self.mesh.faces]
        owner = self.mesh.face_element
        tops = {}
        for i in slabs:
            t = tri[owner == i]
            if len(t):
                tops[i] = (float(t[..., 2].max()), t.reshape(-1, 3).min(0), t.reshape(-1, 3).max(0))
        floors: list[Floor] = []
        for i, (z, lo, hi) in sorted(tops.items(), key=lambda kv: kv[1][0]):
            for k, f in enumerate(floors):
                if abs(f.z_m - z) < 0.05:
                    floors[k] = Floor(f.storey, f.z_m, (min(f.lo[0], lo[0]), min(f.lo[1], lo[1])),
                                      (max(f.hi[0], hi[0]), max(f.hi[1], hi[1])), f.slab_indices | {i})
                    break
            else:
                floors.append(Floor(self.storeys.get(gids[i]), z, (float(lo[0]), float(lo[1])),
                                    (float(hi[0]), float(hi[1])), frozenset({i})))
        return floors

    def stands(self, xy, floor: Floor, *, clearance_m: float = 0.35, headroom_m: float = 2.0) -> bool:
        """True when a figure can stand at ``xy`` on ``floor``: slab below, head room, nothing within reach."""
        x, y = float(xy[0]), float(xy[1])
        start = np.array([x, y, floor.z_m + 1.0])
        down = self.scene.cast(start, np.array([[0.0, 0.0, -1.0]]), normals=False)
        if not (abs(float(down.range_m[0]) - 1.0) < 0.03 and int(down.element[0]) in floor.slab_indices):
            return False
        up = self.scene.cast(np.array([x, y, floor.z_m + 0.05]), np.array([[0.0, 0.0, 1.0]]), normals=False)
        if float(up.range_m[0]) < headroom_m:
            return False
        angles = np.linspace(0, 2 * np.pi, 8, endpoint=False)
        dirs = np.stack([np.cos(angles), np.sin(angles), np.zeros(8)], 1)
        for z in (0.3, 1.0, 1.6):
            side = self.scene.cast(np.array([x, y, floor.z_m + z]), dirs, normals=False)
            if float(side.range_m.min()) < clearance_m:
                return False
        return True

    def sample_standing(self, rng: np.random.Generator, floor: Floor, *, near=None, radius=(0.0, np.inf),
                        tries: int = 200, clearance_m: float = 0.35) -> np.ndarray | None:
        """A standing place (3,) on ``floor``; with ``near`` (2,), within ``radius`` metres of it."""
        for _ in range(tries):
            if near is None:
                xy = rng.uniform(floor.lo, floor.hi)
            else:
                r = rng.uniform(*[min(v, 60.0) for v in radius])
                a = rng.uniform(0, 2 * np.pi)
                xy = np.asarray(near, float)[:2] + r * np.array([np.cos(a), np.sin(a)])
            if self.stands(xy, floor, clearance_m=clearance_m):
                return np.array([xy[0], xy[1], floor.z_m])
        return None


# --- rendered datasets ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class SynthConfig:
    """A rendered detection dataset (perspective photos with worker figures)."""

    images: int = 200                      # (int) images to render
    size: int = 320                        # (px) square image side
    fov_deg: tuple[float, float] = (55.0, 80.0)     # horizontal field of view, drawn per image
    workers: tuple[int, int] = (1, 4)      # figures per image (inclusive range)
    distance_m: tuple[float, float] = (2.0, 10.0)   # camera to figure, horizontal
    eye_height_m: tuple[float, float] = (1.3, 1.8)
    p_hard_hat: float = 0.55
    p_vest: float = 0.55
    p_near_anchor: float = 0.5             # share of scenes built round an anchor (e.g. a slab edge)
    seed: int = 0
    labels: LabelConfig = field(default_factory=LabelConfig)


def render_dataset(mesh: Any, classes: dict[str, str], out: str | Path, config: SynthConfig = SynthConfig(), *,
                   storeys: dict[str, str | None] | None = None, split_name: str = "train",
                   element_colors=None, on_image=None, sampler: SceneSampler | None = None,
                   anchors: Sequence[tuple[float, float, float]] = ()) -> dict:
    """Render ``config.images`` labelled photos into a YOLO folder ``out`` (images/<split>, labels/<split>).

    ``anchors`` (x, y, z floor level): places that a share ``p_near_anchor`` of the scenes are
    built round (figures within 0.4-2.5 m of one, e.g. slab edges). Returns counts per class.
    Classes are :data:`SYNTH_CLASSES`. Deterministic for a seed.
    """
    import cv2

    from sitetwin.panorama.camera import PerspectiveCamera, pose_matrix
    from sitetwin.panorama.render import RayScene, RenderSettings, render_perspective

    out = Path(out)
    img_dir, lbl_dir = out / "images" / split_name, out / "labels" / split_name
    img_dir.mkdir(parents=True, exist_ok=True)
    lbl_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(config.seed)
    sampler = sampler or SceneSampler(mesh, classes, storeys)
    floors = [f for f in sampler.floors]
    anchor_points = [tuple(a) for a in anchors]
    if not floors:
        raise ValueError("the model has no slabs to stand on")
    counts = {c: 0 for c in SYNTH_CLASSES}
    written = 0
    attempts = 0
    while written < config.images and attempts < config.images * 5:
        attempts += 1
        anchor = (anchor_points[int(rng.integers(len(anchor_points)))]
                  if anchor_points and rng.random() < config.p_near_anchor else None)
        if anchor is not None:
            floor = min(floors, key=lambda f: abs(f.z_m - anchor[2]))
            eye = sampler.sample_standing(rng, floor, near=anchor[:2], radius=(config.distance_m[0] + 1.0,
                                                                              config.distance_m[1]), clearance_m=0.5)
        else:
            floor = floors[int(rng.integers(len(floors)))]
            eye = sampler.sample_standing(rng, floor, clearance_m=0.5)
        if eye is None:
            continue
        n = int(rng.integers(config.workers[0], config.workers[1] + 1))
        workers: dict[str, Worker] = {}
        target = None
        for k in range(n):
            if anchor is not None and k < 2:
                spot = sampler.sample_standing(rng, floor, near=anchor[:2], radius=(0.4, 2.5))
                if spot is not None and not config.distance_m[0] <= np.hypot(*(spot[:2] - eye[:2])) <= \
                        config.distance_m[1]:
                    spot = None
            else:
                spot = sampler.sample_standing(rng, floor, near=eye, radius=config.distance_m)
            if spot is None:
                continue
            if any(np.hypot(*(np.asarray(w.position_m[:2]) - spot[:2])) < 0.7 for w in workers.values()):
                continue
            workers[f"w{k}"] = Worker.random(rng, spot, hard_hat=bool(rng.random() < config.p_hard_hat),
                                             vest=bool(rng.random() < config.p_vest))
            target = spot if target is None else target
        if not workers:
            continue
        eye_h = float(rng.uniform(*config.eye_height_m))
        pos = eye + np.array([0.0, 0.0, eye_h])
        d = target - pos
        yaw = math.degrees(math.atan2(d[1], d[0])) + float(rng.uniform(-20, 20))
        pitch = math.degrees(math.atan2(d[2] + 0.9, math.hypot(d[0], d[1]))) + float(rng.uniform(-8, 8))
        fov = float(rng.uniform(*config.fov_deg))
        camera = PerspectiveCamera.from_fov(config.size, config.size, fov, yaw, pitch)
        extras = [worker_extra(w, name) for name, w in workers.items()]
        settings = RenderSettings(ambient=float(rng.uniform(0.2, 0.38)), sun=float(rng.uniform(0.35, 0.7)),
                                  sun_direction=(float(rng.uniform(-1, 1)), float(rng.uniform(-1, 1)),
                                                 float(rng.uniform(0.4, 1.0))),
                                  read_noise_dn=float(rng.uniform(1.0, 4.0)))
        scene = RayScene(mesh, extras)
        result = render_perspective(mesh, camera, pose_matrix(pos), element_colors=element_colors,
                                    seed=int(rng.integers(1 << 31)), settings=settings, scene=scene)
        labels = labels_from_render(result, workers, config.labels)
        if not any(label.class_name == "person" for label in labels):
            continue
        stem = f"synth_{config.seed:03d}_{written:05d}"
        cv2.imwrite(str(img_dir / f"{stem}.jpg"), result.image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 92])
        lines = []
        for label in labels:
            x1, y1, x2, y2 = label.xyxy
            lines.append(f"{SYNTH_CLASSES.index(label.class_name)} {(x1 + x2) / 2 / config.size:.6f} "
                         f"{(y1 + y2) / 2 / config.size:.6f} {(x2 - x1) / config.size:.6f} "
                         f"{(y2 - y1) / config.size:.6f}")
            counts[label.class_name] += 1
        (lbl_dir / f"{stem}.txt").write_text("\n".join(lines) + "\n")
        written += 1
        if on_image is not None:
            on_image(written, config.images)
    import yaml

    meta_path = out / "data.yaml"
    meta = yaml.safe_load(meta_path.read_text()) if meta_path.exists() else {"path": str(out.resolve()),
                                                                              "names": dict(enumerate(SYNTH_CLASSES))}
    meta[split_name] = f"images/{split_name}"
    meta_path.write_text(yaml.safe_dump(meta, sort_keys=False))
    return {"images": written, "instances": counts}
