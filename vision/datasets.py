"""Detection datasets in YOLO format: read and check them, merge them under one taxonomy, split, describe.

A dataset in memory is a :class:`Dataset`: class names plus one :class:`Sample` per image
with its boxes as normalised ``(cx, cy, w, h)`` in [0, 1] (YOLO's convention). Readers
never stop at the first bad line: every problem becomes a :class:`LabelIssue` naming the
file and line, so ``sitetwin vision dataset check`` can list them all. Polygon lines (real
exports mix segmentation rows into box files) are read as the box that holds the polygon and
reported as a warning; coordinates outside [0, 1], unknown class ids and malformed lines are
errors. :func:`require_usable` turns errors, or a dataset with nothing to learn from, into a
:class:`~vision.errors.DatasetError`.

Writers produce the layout ultralytics reads (``images/<split>/``, ``labels/<split>/``,
``data.yaml`` with absolute paths). Images are linked, not copied, where the file system
allows it; source folders are never written to (ultralytics would drop ``labels.cache``
files there, so it is only ever pointed at folders written here).

COCO and Pascal VOC readers live in :mod:`vision.formats`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from sitetwin.data.errors import Phrase, render
from sitetwin.data.files import file_sha256
from sitetwin.data.i18n import N_
from sitetwin.vision.errors import DatasetError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
SPLITS = ("train", "val", "test")
COORD_TOLERANCE = 1e-6          # float noise allowed outside [0, 1] before a coordinate is an error
SMALL_PX, LARGE_PX = 32, 96     # COCO's size classes: box area below 32^2 px is small, above 96^2 large


@dataclass(frozen=True)
class LabelIssue:
    """One problem found in a dataset. ``line`` is 1-based, None for file-level problems."""

    file: str
    line: int | None
    kind: str          # polygon | malformed | bad_class | out_of_range | degenerate | corrupt_image |
                       # missing_image | orphan_label | unreadable | crowd | unknown_class
    severity: str      # error | warning
    message: Phrase    # what is wrong: read in the reader's language (str), stored in English (text("en"))

    def text(self, lang: str | None = None) -> str:
        """``file:line: problem`` in ``lang`` (default: the current language)."""
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.message.text(lang)}"

    def __str__(self) -> str:
        return self.text()


class _Issues(Phrase):
    """Issues as one piece of a message, each read in the message's language, joined as that language
    joins clauses (``a; b`` in English)."""

    def __init__(self, issues: Sequence[LabelIssue]) -> None:
        super().__init__("")
        self.issues = tuple(issues)

    def text(self, lang: str | None = None) -> str:
        out = self.issues[-1].text(lang) if self.issues else ""
        for issue in reversed(self.issues[:-1]):
            out = render(N_("{issue}; {next_issues}"), {"issue": issue.text(lang), "next_issues": out}, lang)
        return out


@dataclass(frozen=True)
class Sample:
    """One image and its boxes.

    boxes : (n, 4) float64, normalised cx, cy, w, h in [0, 1]
    classes : (n,) int64, index into the dataset's names
    """

    image: Path
    classes: np.ndarray
    boxes: np.ndarray
    split: str | None = None
    label: Path | None = None
    size: tuple[int, int] | None = None     # (width, height) in pixels, when read

    @property
    def stem(self) -> str:
        return self.image.stem


@dataclass(frozen=True)
class Dataset:
    """Class names, samples and the issues found while reading them."""

    names: tuple[str, ...]
    samples: tuple[Sample, ...]
    root: Path | None = None
    issues: tuple[LabelIssue, ...] = ()

    @property
    def errors(self) -> tuple[LabelIssue, ...]:
        return tuple(i for i in self.issues if i.severity == "error")

    @property
    def warnings(self) -> tuple[LabelIssue, ...]:
        return tuple(i for i in self.issues if i.severity == "warning")

    @property
    def instance_count(self) -> int:
        return int(sum(len(s.classes) for s in self.samples))

    def splits(self) -> dict[str, int]:
        return dict(Counter(s.split or "all" for s in self.samples))


@dataclass(frozen=True)
class DatasetStats:
    """What is in a dataset: counts per class and split, box sizes."""

    images: int
    labelled_images: int
    background_images: int
    instances: int
    per_class: dict[str, dict[str, int]]       # name -> {"instances", "images"}
    per_split: dict[str, dict[str, int]]       # split -> {"images", "instances"}
    box_sizes: dict[str, int]                  # small | medium | large (COCO thresholds, pixels)
    median_box_wh: tuple[float, float]         # normalised
    errors: int = 0
    warnings: int = 0
    issues_by_kind: dict[str, int] = field(default_factory=dict)


# --- class maps -------------------------------------------------------------------------------

@dataclass(frozen=True)
class ClassMap:
    """Target class names and a source-name -> target-name (or None: drop) mapping."""

    names: tuple[str, ...]
    mapping: dict[str, str | None]
    source: str = "built-in"

    def target(self, source_name: str) -> str | None:
        """The target name for a source class; KeyError when the map does not mention it."""
        key = normalise_name(source_name)
        if key in self.mapping:
            return self.mapping[key]
        if key in self.names:
            return key
        raise KeyError(source_name)


def normalise_name(name: str) -> str:
    """Class names compare case-insensitively with spaces and hyphens read as underscores."""
    return re.sub(r"[\s\-]+", "_", str(name).strip().lower())


def load_class_map(path: str | Path | None = None) -> ClassMap:
    """Read a class-map YAML (``names`` list, ``map`` dict); None gives sitetwin's built-in taxonomy."""
    import yaml

    if path is None:
        text = resources.files("sitetwin.vision").joinpath("class_map.yaml").read_text(encoding="utf-8")
        label = "built-in"
    else:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise DatasetError(N_("{path}: cannot read the class map ({reason})"), path=path,
                               reason=exc.strerror) from None
        label = str(path)
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise DatasetError(N_("{source}: not valid YAML ({detail})"), source=label,
                           detail=str(exc).splitlines()[0]) from None
    names = raw.get("names") if isinstance(raw, dict) else None
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
        raise DatasetError(N_("{source}: a class map needs `names:`, a non-empty list of class names"), source=label)
    names_t = tuple(normalise_name(n) for n in names)
    if len(set(names_t)) != len(names_t):
        raise DatasetError(N_("{source}: `names` repeats a class"), source=label)
    mapping_raw = raw.get("map") or {}
    if not isinstance(mapping_raw, dict):
        raise DatasetError(N_("{source}: `map:` must map source class names to target names (or null)"), source=label)
    mapping: dict[str, str | None] = {}
    for src, dst in mapping_raw.items():
        dst_n = None if dst is None else normalise_name(dst)
        if dst_n is not None and dst_n not in names_t:
            raise DatasetError(N_("{source}: `map` sends {src!r} to {dst!r}, which is not in `names` ({names})"),
                               source=label, src=src, dst=dst, names=", ".join(names_t))
        mapping[normalise_name(src)] = dst_n
    return ClassMap(names_t, mapping, label)


# --- reading YOLO ----------------------------------------------------------------------------

def read_yolo(path: str | Path, *, names: Sequence[str] | None = None, read_sizes: bool = True) -> Dataset:
    """Read a YOLO detection dataset: a folder (flat or split, optionally with ``data.yaml``) or a ``data.yaml``.

    Layouts understood: ``images/`` + ``labels/``; ``images/<split>/`` + ``labels/<split>/``;
    ``<split>/images/`` + ``<split>/labels/`` (Roboflow); or the folders a ``data.yaml``'s
    ``train/val/test`` keys name. Class names come from ``names``, else ``data.yaml``, else
    ``classes.txt``. With ``read_sizes`` every image is opened (and a corrupt one reported).
    """
    path = Path(path)
    if not path.exists():
        raise DatasetError(N_("{path}: no such dataset folder or data.yaml"), path=path)
    yaml_path = path if path.is_file() else next((p for p in (path / "data.yaml", path / "dataset.yaml")
                                                  if p.exists()), None)
    root = path.parent if path.is_file() else path
    meta = _read_data_yaml(yaml_path) if yaml_path else {}
    if yaml_path is not None and meta.get("path"):     # only a data.yaml gives a path
        base = Path(meta["path"])
        root = base if base.is_absolute() else (yaml_path.parent / base)
    if names is None:
        names = _names_from(meta, root, yaml_path)
    names = tuple(str(n) for n in names)
    pairs = _find_images(root, meta, yaml_path)
    issues: list[LabelIssue] = []
    samples = []
    seen_labels = set()
    for image, split in pairs:
        label = _label_for(image)
        seen_labels.add(label)
        classes, boxes, found = _read_label_file(label, len(names), issues)
        size = None
        if read_sizes:
            size = _image_size(image, issues)
            if size is None:
                continue
        samples.append(Sample(image=image, classes=classes, boxes=boxes, split=split,
                              label=label if found else None, size=size))
    for label_dir in {label_file.parent for label_file in seen_labels} | _label_dirs(root):
        for orphan in sorted(label_dir.glob("*.txt")):
            if orphan not in seen_labels and orphan.name != "classes.txt":
                issues.append(LabelIssue(str(orphan), None, "orphan_label", "warning",
                                         Phrase(N_("label file without an image of the same name; ignored"))))
    return Dataset(names, tuple(samples), root, tuple(issues))


def _read_data_yaml(path: Path) -> dict:
    import yaml

    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise DatasetError(N_("{path}: cannot read ({detail})"), path=path,
                           detail=str(exc).splitlines()[0]) from None
    if not isinstance(raw, dict):
        raise DatasetError(N_("{path}: expected a mapping with names and train/val folders"), path=path)
    return raw


def _names_from(meta: dict, root: Path, yaml_path: Path | None) -> tuple[str, ...]:
    names = meta.get("names")
    if isinstance(names, dict):
        try:
            order = sorted(names, key=int)
        except (TypeError, ValueError):
            raise DatasetError(N_("{path}: `names` keys must be class ids 0..n-1"), path=yaml_path) from None
        if [int(k) for k in order] != list(range(len(order))):
            raise DatasetError(N_("{path}: `names` ids must run 0..{last} without gaps"), path=yaml_path,
                               last=len(order) - 1)
        return tuple(str(names[k]) for k in order)
    if isinstance(names, list) and names:
        return tuple(str(n) for n in names)
    classes = root / "classes.txt"
    if classes.exists():
        return tuple(line.strip() for line in classes.read_text(encoding="utf-8").splitlines() if line.strip())
    raise DatasetError(N_("{root}: no class names: add a data.yaml with `names:` or a classes.txt, or pass the names"),
                       root=root)


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def _find_images(root: Path, meta: dict, yaml_path: Path | None) -> list[tuple[Path, str | None]]:
    found: list[tuple[Path, str | None]] = []
    keys = [k for k in SPLITS if meta.get(k)]
    if keys:
        resolved = []
        for k in keys:
            entries = meta[k] if isinstance(meta[k], list) else [meta[k]]
            for entry in entries:
                p = Path(entry)
                p = p if p.is_absolute() else root / p
                resolved.append((k, p))
        if all(p.exists() for _, p in resolved):
            seen: set[Path] = set()
            for split, p in resolved:
                listing = ([Path(line.strip()) if Path(line.strip()).is_absolute() else p.parent / line.strip()
                            for line in p.read_text().splitlines() if line.strip()] if p.is_file() else _images_in(p))
                for image in listing:
                    if image not in seen:      # the same folder named for train and val counts once
                        seen.add(image)
                        found.append((image, split))
            return found
        # a Roboflow data.yaml copied without its split folders: fall back to the layout on disk
    for split in SPLITS:
        if (root / "images" / split).is_dir():
            found += [(p, split) for p in _images_in(root / "images" / split)]
        elif (root / split / "images").is_dir():
            found += [(p, split) for p in _images_in(root / split / "images")]
    if not found and (root / "images").is_dir():
        found = [(p, None) for p in _images_in(root / "images")]
    if not found:
        raise DatasetError(N_("{root}: empty dataset: no images found in {root}/images, {root}/images/<split> "
                              "or {root}/<split>/images"), root=root)
    return found


def _label_dirs(root: Path) -> set[Path]:
    dirs = set()
    for candidate in [root / "labels", *(root / "labels" / s for s in SPLITS), *(root / s / "labels" for s in SPLITS)]:
        if candidate.is_dir():
            dirs.add(candidate)
    return dirs


def _label_for(image: Path) -> Path:
    """YOLO's rule: the last ``images`` folder in the path becomes ``labels``, suffix ``.txt``."""
    parts = list(image.parts)
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            break
    return Path(*parts).with_suffix(".txt")


def _read_label_file(label: Path, n_classes: int, issues: list[LabelIssue]) -> tuple[np.ndarray, np.ndarray, bool]:
    if not label.exists():
        return np.zeros(0, np.int64), np.zeros((0, 4)), False
    try:
        text = label.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        issues.append(LabelIssue(str(label), None, "unreadable", "error",
                                 Phrase(N_("cannot read the label file ({detail})"), detail=str(exc))))
        return np.zeros(0, np.int64), np.zeros((0, 4)), True
    classes, boxes = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        parsed = parse_label_line(fields, n_classes)
        if parsed.issue:
            issues.append(LabelIssue(str(label), number, *parsed.issue))
        if parsed.cls is not None:
            classes.append(parsed.cls)
            boxes.append(parsed.box)
    return (np.asarray(classes, np.int64), np.asarray(boxes, np.float64).reshape(-1, 4), True)


@dataclass(frozen=True)
class ParsedLine:
    """What one label line holds: a class and box, an issue, or both (a polygon read as a box)."""

    cls: int | None
    box: tuple[float, float, float, float] | None     # normalised cx, cy, w, h
    issue: tuple[str, str, Phrase] | None = None      # (kind, severity, message)


def _bad(kind: str, message: Phrase) -> ParsedLine:
    return ParsedLine(None, None, (kind, "error", message))


def parse_label_line(fields: Sequence[str], n_classes: int) -> ParsedLine:
    """One YOLO label line, split into fields.

    5 fields: a box. An odd count of 7 or more: a polygon (class, then x y pairs), read as its
    bounding box with a ``polygon`` warning. Anything else, a class id outside the names,
    or a coordinate outside [0, 1] is an error (``cls`` None).
    """
    try:
        values = [float(f) for f in fields]
    except ValueError:
        return _bad("malformed", Phrase(N_("not numbers: {text!r}"), text=" ".join(fields)[:60]))
    cls_f = values[0]
    if cls_f != int(cls_f) or not 0 <= cls_f < n_classes:
        return _bad("bad_class", Phrase(N_("class id {class_id} is not one of 0..{last}"), class_id=fields[0],
                                        last=n_classes - 1))
    coords = np.asarray(values[1:])
    note = None
    if len(values) == 5:
        kind = "box"
    elif len(values) >= 7 and len(values) % 2 == 1:
        kind = "polygon"
    else:
        return _bad("malformed", Phrase(N_("{n} fields: a box line has 5 (class cx cy w h), "
                                           "a polygon line an odd number >= 7"), n=len(values)))
    if not np.all(np.isfinite(coords)):
        return _bad("malformed", Phrase(N_("coordinates are not finite")))
    lo, hi = -COORD_TOLERANCE, 1 + COORD_TOLERANCE
    if kind == "box":
        cx, cy, w, h = coords
        edges = np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
        if np.any(coords < lo) or np.any(coords > hi) or np.any(edges < lo) or np.any(edges > hi):
            return _bad("out_of_range", Phrase(
                N_("box {cx:.4g} {cy:.4g} {w:.4g} {h:.4g} reaches outside [0, 1] (x {x1:.4g}..{x2:.4g}, "
                   "y {y1:.4g}..{y2:.4g}); labels must be normalised by the image's width and height"),
                cx=float(cx), cy=float(cy), w=float(w), h=float(h), x1=float(edges[0]), x2=float(edges[2]),
                y1=float(edges[1]), y2=float(edges[3])))
    else:
        xy = coords.reshape(-1, 2)
        if np.any(xy < lo) or np.any(xy > hi):
            return _bad("out_of_range", Phrase(N_("polygon point outside [0, 1] ({low:.4g}..{high:.4g})"),
                                              low=float(xy.min()), high=float(xy.max())))
        x1, y1 = xy.min(0)
        x2, y2 = xy.max(0)
        cx, cy, w, h = (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1
        note = ("polygon", "warning", Phrase(N_("polygon with {n} points in a box file: read as its bounding box"),
                                            n=len(xy)))
    if w <= 0 or h <= 0:
        return _bad("degenerate", Phrase(N_("box of zero width or height ({w:.4g} x {h:.4g})"), w=float(w), h=float(h)))
    cx, cy, w, h = (float(v) for v in np.clip([cx, cy, w, h], 0.0, 1.0))
    return ParsedLine(int(cls_f), (cx, cy, w, h), note)


def _image_size(image: Path, issues: list[LabelIssue]) -> tuple[int, int] | None:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(image) as im:
            size = im.size
            im.verify()
        return int(size[0]), int(size[1])
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as exc:
        issues.append(LabelIssue(str(image), None, "corrupt_image", "error",
                                 Phrase(N_("cannot decode the image ({error}: {detail}); skipped"),
                                        error=type(exc).__name__, detail=str(exc)[:80])))
        return None


# --- checks and statistics ---------------------------------------------------------------------

def require_usable(dataset: Dataset, *, what: str | Phrase | None = None) -> Dataset:
    """Raise DatasetError when the dataset has errors or nothing to learn from; return it otherwise.
    ``what`` names a dataset without a root folder in the message (default: "dataset", in the reader's words)."""
    label = str(dataset.root) if dataset.root else what or Phrase(N_("dataset"))
    if not dataset.samples:
        raise DatasetError(N_("{label}: empty dataset: no readable images"), label=label)
    if dataset.instance_count == 0:
        raise DatasetError(N_("{label}: empty dataset: {n} images but not one labelled box"), label=label,
                           n=len(dataset.samples))
    errors = dataset.errors
    if len(errors) > 3:
        raise DatasetError(N_("{label}: {n} bad label lines or images: {shown} (and {more} more; run "
                              "`sitetwin vision dataset check`)"),
                           label=label, n=len(errors), shown=_Issues(errors[:3]), more=len(errors) - 3)
    if errors:
        raise DatasetError(N_("{label}: {n} bad label lines or images: {shown}"), label=label, n=len(errors),
                           shown=_Issues(errors))
    return dataset


def statistics(dataset: Dataset) -> DatasetStats:
    """Counts per class and split, background images, and box sizes (pixels where sizes are known)."""
    per_class = {n: {"instances": 0, "images": 0} for n in dataset.names}
    per_split: dict[str, dict[str, int]] = {}
    sizes = Counter({"small": 0, "medium": 0, "large": 0})
    wh = []
    labelled = 0
    for s in dataset.samples:
        split = per_split.setdefault(s.split or "all", {"images": 0, "instances": 0})
        split["images"] += 1
        split["instances"] += len(s.classes)
        if len(s.classes):
            labelled += 1
        for c in np.unique(s.classes):
            per_class[dataset.names[c]]["images"] += 1
        for c in s.classes:
            per_class[dataset.names[c]]["instances"] += 1
        if len(s.boxes):
            wh.append(s.boxes[:, 2:4])
            if s.size:
                area = s.boxes[:, 2] * s.size[0] * s.boxes[:, 3] * s.size[1]
                sizes["small"] += int(np.sum(area < SMALL_PX ** 2))
                sizes["large"] += int(np.sum(area > LARGE_PX ** 2))
                sizes["medium"] += int(np.sum((area >= SMALL_PX ** 2) & (area <= LARGE_PX ** 2)))
    med = (0.0, 0.0)
    if wh:
        w_med, h_med = np.median(np.concatenate(wh), axis=0)
        med = (float(w_med), float(h_med))
    return DatasetStats(
        images=len(dataset.samples), labelled_images=labelled, background_images=len(dataset.samples) - labelled,
        instances=dataset.instance_count, per_class=per_class, per_split=per_split, box_sizes=dict(sizes),
        median_box_wh=med, errors=len(dataset.errors), warnings=len(dataset.warnings),
        issues_by_kind=dict(Counter(i.kind for i in dataset.issues)))


def dataset_hash(folder: str | Path) -> str:
    """sha256 over every image and label file under ``folder`` (relative path and content), sorted.

    Links are followed, so a split written as links hashes like its copied twin.
    """
    folder = Path(folder)
    h = hashlib.sha256()
    files = sorted(p for p in folder.rglob("*") if p.is_file()
                   and (p.suffix.lower() in IMAGE_SUFFIXES or (p.suffix == ".txt" and "labels" in p.parts)
                        or p.name in ("data.yaml",)))
    for p in files:
        h.update(p.relative_to(folder).as_posix().encode())
        h.update(b"\0")
        h.update(file_sha256(p).encode())
        h.update(b"\n")
    return h.hexdigest()


# --- transforming ------------------------------------------------------------------------------

def remap(dataset: Dataset, class_map: ClassMap, *, drop_unknown: bool = False, tag: str | None = None) -> Dataset:
    """The dataset with its classes renamed onto ``class_map``'s names (dropped where the map says null).

    A source class the map does not know is an error naming it, unless ``drop_unknown``.
    """
    lut = np.full(len(dataset.names), -1, np.int64)
    unknown = []
    for i, name in enumerate(dataset.names):
        try:
            target = class_map.target(name)
        except KeyError:
            unknown.append(name)
            continue
        if target is not None:
            lut[i] = class_map.names.index(target)
    label = tag or (str(dataset.root) if dataset.root else "dataset")
    issues = list(dataset.issues)
    if unknown:
        used = {dataset.names[c] for s in dataset.samples for c in s.classes}
        unknown_used = [u for u in unknown if u in used]
        if unknown_used and not drop_unknown:
            raise DatasetError(N_("{label}: classes {classes} are not in the class map {class_map}; add them under "
                                  "`map:` (or map them to null), or drop them with --drop-unknown"),
                               label=label, classes=", ".join(repr(u) for u in unknown_used),
                               class_map=class_map.source)
        for u in unknown_used:
            issues.append(LabelIssue(label, None, "unknown_class", "warning",
                                     Phrase(N_("class {name!r} dropped: not in the class map"), name=u)))
    samples = []
    for s in dataset.samples:
        new = lut[s.classes] if len(s.classes) else s.classes
        keep = new >= 0
        samples.append(replace(s, classes=new[keep], boxes=s.boxes[keep]))
    return Dataset(class_map.names, tuple(samples), dataset.root, tuple(issues))


def split(dataset: Dataset, fractions: Mapping[str, float] | Sequence[float] = (0.8, 0.2, 0.0), *,
          seed: int = 0) -> Dataset:
    """Assign every sample a split, reproducibly.

    Samples are ordered by a hash of ``seed`` and their image name (not their position), then
    cut by ``fractions`` (train, val, test; they must sum to 1). The same images with the same
    seed always land in the same splits, whatever order they were read in. With at least as
    many images as non-zero fractions, every such split gets one.
    """
    if not isinstance(fractions, Mapping):
        fractions = dict(zip(SPLITS, fractions))
    fr = {k: float(v) for k, v in fractions.items() if float(v) > 0}
    if set(fr) - set(SPLITS):
        raise DatasetError(N_("split names must be among {allowed}, got {given}"), allowed=", ".join(SPLITS),
                           given=", ".join(fractions))
    if abs(sum(fr.values()) - 1.0) > 1e-6 or any(v < 0 for v in fr.values()):
        raise DatasetError(N_("split fractions must be >= 0 and sum to 1, got {fractions}"), fractions=dict(fractions))
    n = len(dataset.samples)
    if n == 0:
        raise DatasetError(N_("empty dataset: nothing to split"))
    order = sorted(range(n), key=lambda i: hashlib.sha256(
        f"{seed}:{dataset.samples[i].image.name}".encode()).hexdigest())
    names = [k for k in SPLITS if k in fr]
    counts = [int(round(fr[k] * n)) for k in names]
    counts[0] = n - sum(counts[1:])
    if n >= len(names):     # no non-zero split left empty
        for i in range(len(counts)):
            if counts[i] == 0:
                donor = int(np.argmax(counts))
                counts[donor] -= 1
                counts[i] += 1
    assignment = {}
    start = 0
    for name, c in zip(names, counts):
        for i in order[start:start + c]:
            assignment[i] = name
        start += c
    samples = tuple(replace(s, split=assignment[i]) for i, s in enumerate(dataset.samples))
    return Dataset(dataset.names, samples, dataset.root, dataset.issues)


def merge(datasets: Iterable[Dataset], class_map: ClassMap, *, drop_unknown: bool = False,
          tags: Sequence[str] | None = None) -> Dataset:
    """One dataset from several, every class renamed onto ``class_map``; samples keep their splits."""
    datasets = list(datasets)
    if not datasets:
        raise DatasetError(N_("nothing to merge: give at least one dataset"))
    tags = list(tags) if tags else [f"src{i}" for i in range(len(datasets))]
    samples: list[Sample] = []
    issues: list[LabelIssue] = []
    for tag, d in zip(tags, datasets):
        mapped = remap(d, class_map, drop_unknown=drop_unknown, tag=str(d.root or tag))
        samples += [replace(s, label=None) for s in mapped.samples]
        issues += mapped.issues
    return Dataset(class_map.names, tuple(samples), None, tuple(issues))


# --- writing -----------------------------------------------------------------------------------

def write_yolo(dataset: Dataset, out: str | Path, *, link: bool = True, default_split: str = "train",
               extra_yaml: dict | None = None) -> Path:
    """Write the dataset as ``out/images/<split>/``, ``out/labels/<split>/`` and ``out/data.yaml``; return the yaml.

    Images are hard- or symlinked when ``link`` (copied when linking fails). File names that
    would collide (two sources with ``0001.jpg``) get a numbered prefix. ``out`` must be new or
    empty, so a source dataset is never overwritten.
    """
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise DatasetError(N_("{out}: folder is not empty; write the dataset to a new folder"), out=out)
    if not dataset.samples:
        raise DatasetError(N_("empty dataset: nothing to write"))
    out.mkdir(parents=True, exist_ok=True)
    used: set[tuple[str, str]] = set()
    splits_written = set()
    for i, s in enumerate(dataset.samples):
        sp = s.split or default_split
        splits_written.add(sp)
        name = s.image.name
        if (sp, name.lower()) in used:
            name = f"{i:06d}_{name}"
        used.add((sp, name.lower()))
        img_dir = out / "images" / sp
        lbl_dir = out / "labels" / sp
        img_dir.mkdir(parents=True, exist_ok=True)
        lbl_dir.mkdir(parents=True, exist_ok=True)
        _place(s.image, img_dir / name, link)
        lines = [f"{int(c)} {b[0]:.6f} {b[1]:.6f} {b[2]:.6f} {b[3]:.6f}" for c, b in zip(s.classes, s.boxes)]
        (lbl_dir / Path(name).with_suffix(".txt").name).write_text("\n".join(lines) + ("\n" if lines else ""))
    meta: dict[str, Any] = {"path": str(out.resolve()), "names": {i: n for i, n in enumerate(dataset.names)}}
    for sp in SPLITS:
        if sp in splits_written:
            meta[sp] = f"images/{sp}"
    # ultralytics wants both keys: validate on train, or (evaluation-only data) "train" on val
    if "val" not in meta:
        meta["val"] = meta.get("test", meta.get("train"))
    if "train" not in meta:
        meta["train"] = meta["val"]
    meta.update(extra_yaml or {})
    import yaml

    (out / "data.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
    return out / "data.yaml"


def _place(src: Path, dst: Path, link: bool) -> None:
    src = Path(src).resolve()
    if link:
        try:
            os.link(src, dst)
            return
        except OSError:
            pass
        try:
            os.symlink(src, dst)
            return
        except OSError:
            pass
    shutil.copyfile(src, dst)


def report_json(dataset: Dataset, stats: DatasetStats | None = None, *, max_issues: int = 200) -> dict:
    """A JSON-ready summary for the CLI: statistics and the issues (the first ``max_issues``)."""
    from dataclasses import asdict

    stats = stats or statistics(dataset)
    return {"root": str(dataset.root) if dataset.root else None, "names": list(dataset.names),
            "ok": not dataset.errors and dataset.instance_count > 0, **asdict(stats),
            "issues": [{"file": i.file, "line": i.line, "kind": i.kind, "severity": i.severity,
                        "message": i.message.text("en")} for i in dataset.issues[:max_issues]],
            "issues_left_out": max(0, len(dataset.issues) - max_issues)}


def save_report(dataset: Dataset, path: str | Path) -> None:
    Path(path).write_text(json.dumps(report_json(dataset), indent=2))
