"""Read COCO and Pascal VOC detection datasets into :class:`vision.datasets.Dataset` (normalised YOLO boxes).

COCO boxes are ``[x, y, width, height]`` in pixels from the image's top-left corner; VOC's
``bndbox`` holds 1-based inclusive pixel indices (``xmin = 1`` is the first column), so a VOC
box covers ``[xmin - 1, xmax]`` in continuous pixel coordinates. Problems are collected as
:class:`~vision.datasets.LabelIssue` (file, annotation id or object number, message), as
for YOLO files.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from sitetwin.data.errors import Phrase
from sitetwin.data.i18n import N_
from sitetwin.vision.datasets import COORD_TOLERANCE, Dataset, LabelIssue, Sample, _image_size
from sitetwin.vision.errors import DatasetError


def read_coco(json_path: str | Path, images_dir: str | Path | None = None, *, read_sizes: bool = False) -> Dataset:
    """Read a COCO ``instances`` JSON. ``images_dir`` defaults to the JSON's folder (then ``images/`` in it).

    Crowd annotations are skipped (a warning each); annotations without ``bbox`` take the box of
    their polygon segmentation. Image sizes come from the JSON; ``read_sizes`` also decodes every
    image (to find corrupt ones).
    """
    json_path = Path(json_path)
    try:
        raw = json.loads(json_path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DatasetError(N_("{path}: cannot read ({detail})"), path=json_path, detail=exc.strerror) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(N_("{path}: not a COCO JSON file ({detail})"), path=json_path, detail=str(exc)) from None
    if (not isinstance(raw, dict) or not isinstance(raw.get("images"), list)
            or not isinstance(raw.get("categories"), list)):
        raise DatasetError(N_("{path}: not a COCO detection file: needs `images` and `categories` lists"),
                           path=json_path)
    cats = sorted(raw["categories"], key=lambda c: c.get("id", 0))
    if not cats:
        raise DatasetError(N_("{path}: no categories"), path=json_path)
    cat_index = {c["id"]: i for i, c in enumerate(cats)}
    names = tuple(str(c.get("name", c["id"])) for c in cats)
    base = Path(images_dir) if images_dir else json_path.parent
    issues: list[LabelIssue] = []
    by_image: dict[int, list] = defaultdict(list)
    for ann in raw.get("annotations") or []:
        by_image[ann.get("image_id")].append(ann)
    samples = []
    if not raw["images"]:
        raise DatasetError(N_("{path}: empty dataset: the `images` list is empty"), path=json_path)
    for img in raw["images"]:
        file = base / img["file_name"]
        if not file.exists() and images_dir is None and (base / "images" / img["file_name"]).exists():
            file = base / "images" / img["file_name"]
        where = f"{json_path}#image {img.get('id')}"
        if not file.exists():
            issues.append(LabelIssue(where, None, "missing_image", "error",
                                     Phrase(N_("image file {file} does not exist"), file=file)))
            continue
        W, H = img.get("width"), img.get("height")
        size = _image_size(file, issues) if (read_sizes or not W or not H) else (int(W), int(H))
        if size is None:
            continue
        W, H = size
        classes, boxes = [], []
        for ann in by_image.get(img["id"], []):
            aw = f"{json_path}#annotation {ann.get('id')}"
            if ann.get("iscrowd"):
                issues.append(LabelIssue(aw, None, "crowd", "warning", Phrase(N_("crowd annotation skipped"))))
                continue
            if ann.get("category_id") not in cat_index:
                issues.append(LabelIssue(aw, None, "bad_class", "error",
                                         Phrase(N_("category_id {category_id} is not among the categories"),
                                                category_id=ann.get("category_id"))))
                continue
            bbox = ann.get("bbox")
            if not bbox and isinstance(ann.get("segmentation"), list) and ann["segmentation"]:
                pts = np.concatenate([np.asarray(p, float).reshape(-1, 2) for p in ann["segmentation"]])
                x1, y1 = pts.min(0)
                x2, y2 = pts.max(0)
                bbox = [x1, y1, x2 - x1, y2 - y1]
            if not bbox or len(bbox) != 4:
                issues.append(LabelIssue(aw, None, "malformed", "error",
                                         Phrase(N_("no bbox and no polygon segmentation"))))
                continue
            x, y, w, h = (float(v) for v in bbox)
            box = _normalise(x, y, x + w, y + h, W, H, aw, issues)
            if box is not None:
                classes.append(cat_index[ann["category_id"]])
                boxes.append(box)
        samples.append(Sample(image=file, classes=np.asarray(classes, np.int64),
                              boxes=np.asarray(boxes, np.float64).reshape(-1, 4), size=(W, H)))
    return Dataset(names, tuple(samples), json_path.parent, tuple(issues))


def read_voc(root: str | Path, *, names: list[str] | None = None, keep_difficult: bool = True,
             image_set: str | None = None) -> Dataset:
    """Read a Pascal VOC folder (``Annotations/*.xml`` and ``JPEGImages/``).

    ``names`` fixes the class order; by default the classes found, sorted. ``image_set``
    reads only the ids listed in ``ImageSets/Main/<image_set>.txt``. Objects marked
    ``difficult`` are kept unless ``keep_difficult`` is False.
    """
    import xml.etree.ElementTree as ET

    root = Path(root)
    ann_dir = root / "Annotations"
    if not ann_dir.is_dir():
        raise DatasetError(N_("{root}: not a Pascal VOC folder: no Annotations/ in it"), root=root)
    files = sorted(ann_dir.glob("*.xml"))
    if image_set:
        listing = root / "ImageSets" / "Main" / f"{image_set}.txt"
        if not listing.exists():
            raise DatasetError(N_("{path}: no such image set"), path=listing)
        ids = {line.split()[0] for line in listing.read_text().splitlines() if line.strip()}
        files = [f for f in files if f.stem in ids]
    if not files:
        raise DatasetError(N_("{root}: empty dataset: no annotation files in {folder}"), root=root, folder=ann_dir)
    issues: list[LabelIssue] = []
    parsed = []
    found_names: set[str] = set()
    for f in files:
        try:
            tree = ET.parse(f).getroot()
        except ET.ParseError as exc:
            issues.append(LabelIssue(str(f), None, "malformed", "error", Phrase(N_("not valid XML ({detail})"),
                                                                              detail=str(exc))))
            continue
        objects = []
        for k, obj in enumerate(tree.findall("object"), start=1):
            name = (obj.findtext("name") or "").strip()
            bb = obj.find("bndbox")
            if not name or bb is None:
                issues.append(LabelIssue(str(f), k, "malformed", "error", Phrase(N_("object without name or bndbox"))))
                continue
            try:
                xmin, ymin, xmax, ymax = (_number(bb.findtext(t)) for t in ("xmin", "ymin", "xmax", "ymax"))
            except (TypeError, ValueError):
                issues.append(LabelIssue(str(f), k, "malformed", "error",
                                         Phrase(N_("bndbox needs numeric xmin ymin xmax ymax"))))
                continue
            difficult = (obj.findtext("difficult") or "0").strip() == "1"
            if difficult and not keep_difficult:
                continue
            objects.append((k, name, xmin, ymin, xmax, ymax))
            found_names.add(name)
        parsed.append((f, tree, objects))
    names_t = tuple(names) if names else tuple(sorted(found_names))
    index = {n: i for i, n in enumerate(names_t)}
    samples = []
    for f, tree, objects in parsed:
        filename = tree.findtext("filename") or f"{f.stem}.jpg"
        image = root / "JPEGImages" / filename
        if not image.exists():
            alt = (next((p for p in (root / "JPEGImages").glob(f"{f.stem}.*")), None)
                   if (root / "JPEGImages").is_dir() else None)
            if alt is None:
                issues.append(LabelIssue(str(f), None, "missing_image", "error",
                                         Phrase(N_("image {image} does not exist"), image=image)))
                continue
            image = alt
        size_el = tree.find("size")
        W = int(float(size_el.findtext("width") or 0)) if size_el is not None else 0
        H = int(float(size_el.findtext("height") or 0)) if size_el is not None else 0
        if not W or not H:
            size = _image_size(image, issues)
            if size is None:
                continue
            W, H = size
        classes, boxes = [], []
        for k, name, xmin, ymin, xmax, ymax in objects:
            if name not in index:
                issues.append(LabelIssue(str(f), k, "bad_class", "error",
                                         Phrase(N_("class {name!r} is not among {names}"), name=name, names=names_t)))
                continue
            box = _normalise(xmin - 1.0, ymin - 1.0, xmax, ymax, W, H, f"{f}#object {k}", issues)
            if box is not None:
                classes.append(index[name])
                boxes.append(box)
        samples.append(Sample(image=image, classes=np.asarray(classes, np.int64),
                              boxes=np.asarray(boxes, np.float64).reshape(-1, 4), size=(W, H)))
    return Dataset(names_t, tuple(samples), root, tuple(issues))


def _number(text: str | None) -> float:
    if text is None:            # a missing coordinate is malformed, as an unreadable one is
        raise ValueError("no value")
    return float(text)


def _normalise(x1, y1, x2, y2, W, H, where, issues) -> tuple[float, float, float, float] | None:
    if x2 <= x1 or y2 <= y1:
        issues.append(LabelIssue(where, None, "degenerate", "error",
                                 Phrase(N_("box of zero size ({x1}, {y1}, {x2}, {y2})"), x1=x1, y1=y1, x2=x2, y2=y2)))
        return None
    tol = COORD_TOLERANCE * max(W, H) + 0.5     # half a pixel of rounding in pixel-based formats
    if x1 < -tol or y1 < -tol or x2 > W + tol or y2 > H + tol:
        issues.append(LabelIssue(where, None, "out_of_range", "error",
                                 Phrase(N_("box ({x1:g}, {y1:g}, {x2:g}, {y2:g}) px reaches outside the "
                                           "{width}x{height} image"), x1=x1, y1=y1, x2=x2, y2=y2, width=W, height=H)))
        return None
    x1, x2 = max(0.0, x1), min(float(W), x2)
    y1, y2 = max(0.0, y1), min(float(H), y2)
    return ((x1 + x2) / 2 / W, (y1 + y2) / 2 / H, (x2 - x1) / W, (y2 - y1) / H)
