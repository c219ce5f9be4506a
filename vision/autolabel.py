"""BIM-based labelling: project model elements into posed panoramas (or camera images) to make YOLO labels.

Each panorama is cut into perspective views; for every view the element map
(:func:`panorama.element_map.element_map_perspective`) says which element every pixel sees,
occlusion included. An element seen by at least ``min_pixels`` pixels becomes a box (the
extent of its visible pixels) and, with ``masks``, a polygon (its largest visible region's
outline), labelled with its class through ``class_map`` (IFC class -> label). The view
images are written beside their labels as a YOLO dataset; all views of one panorama land in
the same split, so no panorama leaks between train and val.

What the model says is there is not always there yet: ``element_ids`` restricts labels to
elements known to be built (from a survey's as-built status, or the schedule at a date).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sitetwin.bim.queries import element_finish, element_frame
from sitetwin.data.i18n import N_
from sitetwin.twin.queries import element_status
from sitetwin.vision.errors import VisionError

DEFAULT_CLASS_MAP = {"IfcColumn": "column", "IfcBeam": "beam", "IfcSlab": "slab", "IfcWall": "wall",
                     "IfcWallStandardCase": "wall", "IfcRailing": "guardrail", "IfcWindow": "window",
                     "IfcDoor": "door", "IfcStair": "stair", "IfcStairFlight": "stair"}


@dataclass(frozen=True)
class AutolabelConfig:
    class_map: dict = field(default_factory=lambda: dict(DEFAULT_CLASS_MAP))   # IFC class -> label
    min_pixels: int = 400           # (px) visible pixels for an element to be labelled in a view
    min_box_px: float = 8.0         # (px) smallest box side
    masks: bool = False             # (bool) write polygon (segmentation) labels instead of boxes
    polygon_tolerance_px: float = 1.5   # (px) polygon simplification
    val_fraction: float = 0.2       # (0-1) share of panoramas held out for validation
    seed: int = 0


@dataclass(frozen=True)
class ViewLabel:
    class_name: str
    global_id: str
    xyxy: tuple[float, float, float, float]
    pixels: int
    polygon: np.ndarray | None = None      # (k, 2) pixel coordinates


def labels_for_view(element_index: np.ndarray, labels_by_element: Sequence[str | None],
                    global_ids: Sequence[str] | np.ndarray,
                    config: AutolabelConfig = AutolabelConfig()) -> list[ViewLabel]:
    """Boxes (and polygons) of the labelled elements visible in one element map (h, w) of mesh indices."""
    idx = np.asarray(element_index)
    flat = idx.ravel()
    valid = flat >= 0
    k = len(global_ids)
    counts = np.bincount(flat[valid], minlength=k)
    out = []
    h, w = idx.shape
    rows_all = np.repeat(np.arange(h), w)[valid]
    cols_all = np.tile(np.arange(w), h)[valid]
    ids = flat[valid]
    order = np.argsort(ids, kind="stable")
    ids_sorted = ids[order]
    for e in np.flatnonzero(counts >= config.min_pixels).tolist():
        label = labels_by_element[e]
        if label is None:
            continue
        lo, hi = np.searchsorted(ids_sorted, e), np.searchsorted(ids_sorted, e, side="right")
        rr, cc = rows_all[order[lo:hi]], cols_all[order[lo:hi]]
        x1, y1, x2, y2 = float(cc.min()), float(rr.min()), float(cc.max() + 1), float(rr.max() + 1)
        if min(x2 - x1, y2 - y1) < config.min_box_px:
            continue
        polygon = _polygon(idx == e, config.polygon_tolerance_px) if config.masks else None
        out.append(ViewLabel(label, str(global_ids[e]), (x1, y1, x2, y2), int(counts[e]), polygon))
    return out


def _polygon(mask: np.ndarray, tolerance: float) -> np.ndarray | None:
    import cv2

    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return None
    c = max(contours, key=cv2.contourArea)
    c = cv2.approxPolyDP(c, tolerance, True).reshape(-1, 2).astype(np.float64)
    return c if len(c) >= 3 else None


@dataclass(frozen=True)
class AutolabelReport:
    out: Path
    names: tuple[str, ...]
    images: int
    labels: int
    per_class: dict
    panoramas: int
    splits: dict


def autolabel_panoramas(store, pano_ids: Sequence[str], out: str | Path, *, config: AutolabelConfig = AutolabelConfig(),
                        views=None, element_ids: set[str] | None = None, on_view=None) -> AutolabelReport:
    """Label the posed panoramas ``pano_ids`` from the model; write a YOLO dataset to ``out`` (new or empty)."""
    import cv2
    import yaml

    from sitetwin.bim.mesh import load_mesh
    from sitetwin.panorama.camera import render_view
    from sitetwin.panorama.element_map import element_map_perspective
    from sitetwin.panorama.pano_store import get_panorama, load_image
    from sitetwin.panorama.render import RayScene
    from sitetwin.vision.panoramic import PanoViews

    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise VisionError(N_("{out}: folder is not empty; write the dataset to a new folder"), out=out)
    if not pano_ids:
        raise VisionError(N_("no panoramas to label"))
    views = views or PanoViews(ring=8, low_ring=0, slices=0, size=640)
    panos = [get_panorama(store, p) for p in pano_ids]
    unposed = [p.pano_id for p in panos if not p.posed]
    if unposed:
        raise VisionError(N_("panoramas {panoramas} have no pose; labels need a posed panorama"),
                          panoramas=", ".join(unposed))
    sites = {p.site_code for p in panos}
    if len(sites) > 1:
        raise VisionError(N_("panoramas from several sites ({sites}); label one site at a time"),
                          sites=", ".join(sorted(sites)))
    site = sites.pop()
    mesh = load_mesh(store, site_code=site)
    elements = element_frame(store, site_code=site)
    classes = dict(zip(elements["global_id"], elements["ifc_class"]))
    labels_by_element = [config.class_map.get(classes.get(g, ""))
                         if element_ids is None or g in element_ids else None for g in mesh.global_ids.tolist()]
    names = tuple(sorted({n for n in labels_by_element if n}))
    if not names:
        raise VisionError(N_("no element of site {site} maps to a label class ({classes})"),
                          site=site, classes=", ".join(sorted(config.class_map)))
    scene = RayScene(mesh)
    per_class = {n: 0 for n in names}
    split_of = {}
    for p in panos:
        h = int(hashlib.sha256(f"{config.seed}:{p.pano_id}".encode()).hexdigest(), 16) % 10_000 / 10_000
        split_of[p.pano_id] = "val" if h < config.val_fraction else "train"
    if len(panos) > 1 and set(split_of.values()) == {"train"}:
        split_of[sorted(split_of)[0]] = "val"           # ultralytics needs a val split
    images = labels = 0
    for p in panos:
        pixels = load_image(p)
        sp = split_of[p.pano_id]
        (out / "images" / sp).mkdir(parents=True, exist_ok=True)
        (out / "labels" / sp).mkdir(parents=True, exist_ok=True)
        for k, cam in enumerate(views.cameras()):
            emap = element_map_perspective(mesh, cam, p.T_model_from_camera, scene=scene)
            found = labels_for_view(emap.element_index, labels_by_element, mesh.global_ids, config)
            if not found:
                continue
            view = render_view(pixels, cam)
            stem = f"{p.pano_id}_v{k:02d}"
            cv2.imwrite(str(out / "images" / sp / f"{stem}.jpg"), view[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 92])
            lines = []
            for lab in found:
                c = names.index(lab.class_name)
                if config.masks and lab.polygon is not None:
                    pts = lab.polygon / np.array([cam.width, cam.height])
                    lines.append(f"{c} " + " ".join(f"{v:.6f}" for v in np.clip(pts, 0, 1).ravel()))
                else:
                    x1, y1, x2, y2 = lab.xyxy
                    lines.append(f"{c} {(x1 + x2) / 2 / cam.width:.6f} {(y1 + y2) / 2 / cam.height:.6f} "
                                 f"{(x2 - x1) / cam.width:.6f} {(y2 - y1) / cam.height:.6f}")
                per_class[lab.class_name] += 1
            (out / "labels" / sp / f"{stem}.txt").write_text("\n".join(lines) + "\n")
            images += 1
            labels += len(lines)
            if on_view is not None:
                on_view(images)
    if images == 0:
        raise VisionError(N_("no view showed a labelled element with enough pixels; lower min_pixels or check poses"))
    present = sorted(set(split_of.values()))
    meta = {"path": str(out.resolve()), "names": dict(enumerate(names)), **{s: f"images/{s}" for s in present}}
    if "val" not in meta:
        meta["val"] = meta["train"]
    (out / "data.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
    counts = {s: sum(1 for v in split_of.values() if v == s) for s in present}
    return AutolabelReport(out, names, images, labels, per_class, len(panos), counts)


def built_elements(store, site_code: str, *, at=None, survey_id: str | None = None) -> set[str] | None:
    """GlobalIds standing at a date (schedule: task finished) or in a survey (status built / out of tolerance)."""
    if survey_id is not None:
        status = element_status(store, survey_id)
        standing = status.loc[status["status"].isin(("built", "out_of_tolerance", "partial")), "global_id"]
        if standing.empty:
            raise VisionError(N_("survey {survey_id}: no element found built"), survey_id=survey_id)
        return set(standing)
    if at is None:
        return None
    finish = element_finish(store, site_code)
    finish["finish"] = finish["finish"].astype(object).where(finish["finish"].notna(), None)
    scheduled = dict(zip(finish["global_id"], finish["finish"]))
    everything = element_frame(store, site_code=site_code)["global_id"].tolist()
    import datetime as dt

    when = at if isinstance(at, dt.datetime) else dt.datetime.combine(at, dt.time(23, 59, 59))
    return {g for g in everything if g not in scheduled or (scheduled[g] is not None and scheduled[g] <= when)}
