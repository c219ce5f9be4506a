"""A generated city for the cluster's tests and benchmarks: sites over Wuhan's districts, each with its store,
building, surveys and camera, and the manifest that runs them with `sitetwin cluster run`.

>>> from sitetwin.synth import CitySpec, make_city
>>> spec = CitySpec(sites=6, districts=3, survey_points=50_000)
>>> city = make_city("city", spec, weights="tiny.onnx")       # doctest: +SKIP
>>> city.manifest            # city/city.yaml: model, survey, detect and score units   # doctest: +SKIP

Each site gets a store (or shares one: ``sites_per_store``) in which the site is created, a
small demo building (varied per site: one more bay every other site, its own seed), simulated
scans of that building from four stations round it with exactly ``survey_points`` points
(E57 with the stations' poses, or one LAS/LAZ/PLY cloud in the site's local frame), and a
camera: a folder of images or a short MP4 video, drawn (a yard, a building, workers in vests,
some in hard hats) or made from given images. :func:`tiny_detector` makes an untrained
detector with the classes the hazard rules need. Everything but that detector is seeded: one
spec gives the same buildings, points, frames and manifest.

Each site is built by one of :data:`ENTERPRISES` (site ``i`` by the ``i % 4``-th general
contractor), and every third site has a labour subcontractor (:func:`assign_enterprise`; the
demo site takes the first contractor the same way).
"""

from __future__ import annotations

import datetime as dt
import math
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

# Wuhan's districts: (code, name). Site codes are ASCII: ``WH-JA-01``.
WUHAN_DISTRICTS = (("JA", "Jiang'an"), ("JH", "Jianghan"), ("QK", "Qiaokou"), ("HY", "Hanyang"),
                   ("WC", "Wuchang"), ("QS", "Qingshan"), ("HS", "Hongshan"), ("DXH", "Dongxihu"),
                   ("HN", "Hannan"), ("CD", "Caidian"), ("JX", "Jiangxia"), ("HP", "Huangpi"), ("XZ", "Xinzhou"))
# Construction enterprises of the generated city: (ASCII code, registered name, kind). Names are made up in the
# style of Wuhan companies; their credit codes (:func:`credit_code`) pass the GB 32100-2015 check.
ENTERPRISES = (("WHJC", "武汉江城建设集团有限公司", "general_contractor"),
               ("HBCT", "湖北楚天建工集团有限公司", "general_contractor"),
               ("WHDH", "武汉东湖建筑工程有限公司", "general_contractor"),
               ("HBHJ", "湖北汉江路桥建设有限公司", "general_contractor"),
               ("WHHS", "武汉汉水建筑劳务有限公司", "labour_subcontractor"),
               ("HBZT", "湖北中天幕墙装饰工程有限公司", "specialty_contractor"))
GENERAL_CONTRACTORS = 4
DETECTOR_CLASSES = ("person", "hard_hat", "head", "vest")   # what the default hazard rules need of an image
SURVEY_FORMATS = ("e57", "las", "laz", "ply")
CAMERAS = ("images", "video")


@dataclass(frozen=True)
class CitySpec:
    """What to generate; the defaults give a two-site city that generates in seconds."""

    sites: int = 2                               # (int >= 1) sites, numbered across districts in turn
    districts: int | Sequence[tuple[str, str]] = 2   # the first n of WUHAN_DISTRICTS, or (code, name) pairs
    city: str = "Wuhan"
    city_code: str = "WH"                        # first part of every site code
    sites_per_store: int = 1                     # (int >= 1) consecutive sites sharing one store file
    storeys: int = 3                             # (int >= 3) the demo building's storeys
    bays_x: int = 2                              # (int >= 1) bays along x; every other site has one more
    bays_y: int = 2                              # (int >= 1) bays along y
    variants: int | None = None                  # (int >= 1) distinct buildings, reused in turn (None: one a site)
    preload_models: bool = False                 # models loaded into the stores now, no model units in the manifest
    surveys_per_site: int = 1                    # (int >= 0) surveys of each site, a week apart
    surveys: int | None = None                   # (int >= 0) surveys in all, spread evenly (None: surveys_per_site)
    survey_points: int = 20_000                  # (int >= 100) points in each survey, exactly
    survey_format: str = "e57"                   # e57 (one scan a station, posed) | las | laz | ply (one cloud)
    stations: int = 4                            # (1..4) scanner stations round the building
    noise_m: float = 0.003                       # (m) range noise of the scanner
    cameras: int | None = None                   # (int >= 0) sites with a camera, spread evenly (None: every site)
    camera: str = "images"                       # images (a folder) | video (an MP4)
    frames: int = 3                              # (int >= 1) images in a folder, or frames in a video
    frame_size: tuple[int, int] = (320, 240)     # (px) width, height of drawn images and of videos
    fps: int = 10                                # (int >= 1) video frame rate
    imgsz: int = 64                              # (px, multiple of 32) the detect units' input size
    scores: bool = True                          # a score unit for each site
    epoch: dt.date = dt.date(2026, 5, 10)        # the first survey's date; a score is as of the last one + 1 day
    seed: int = 0

    def __post_init__(self) -> None:
        def whole(name: str, low: int) -> None:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"CitySpec.{name} {value!r}: a whole number >= {low}")

        for name, low in (("sites", 1), ("sites_per_store", 1), ("storeys", 3), ("bays_x", 1), ("bays_y", 1),
                          ("surveys_per_site", 0), ("survey_points", 100), ("stations", 1), ("frames", 1),
                          ("fps", 1), ("imgsz", 32)):
            whole(name, low)
        if self.variants is not None:
            whole("variants", 1)
        if self.cameras is not None:
            whole("cameras", 0)
        if self.surveys is not None:
            whole("surveys", 0)
        if self.stations > 4:
            raise ValueError(f"CitySpec.stations {self.stations}: 1 to 4 (the building's corners)")
        if self.imgsz % 32:
            raise ValueError(f"CitySpec.imgsz {self.imgsz}: a multiple of 32")
        if self.survey_format not in SURVEY_FORMATS:
            raise ValueError(f"CitySpec.survey_format {self.survey_format!r}: one of {', '.join(SURVEY_FORMATS)}")
        if self.camera not in CAMERAS:
            raise ValueError(f"CitySpec.camera {self.camera!r}: one of {', '.join(CAMERAS)}")
        if len(self.district_list()) < 1:
            raise ValueError("CitySpec.districts: at least one district")

    def district_list(self) -> list[tuple[str, str]]:
        if isinstance(self.districts, int):
            if not 1 <= self.districts <= len(WUHAN_DISTRICTS):
                raise ValueError(f"CitySpec.districts {self.districts}: 1 to {len(WUHAN_DISTRICTS)}, "
                                 f"or a list of (code, name) pairs")
            return list(WUHAN_DISTRICTS[:self.districts])
        return [(str(code), str(name)) for code, name in self.districts]

    def surveys_at(self, i: int) -> int:
        """How many surveys site ``i`` (0-based) has: ``surveys_per_site``, or its share of ``surveys``."""
        if self.surveys is None:
            return self.surveys_per_site
        return (self.surveys * (i + 1)) // self.sites - (self.surveys * i) // self.sites

    def has_camera(self, i: int) -> bool:
        """Whether site ``i`` (0-based) has a camera: ``cameras`` of the sites, spread evenly."""
        n = self.sites if self.cameras is None else min(self.cameras, self.sites)
        return (i * n) // self.sites != ((i + 1) * n) // self.sites


@dataclass(frozen=True)
class CitySite:
    """One generated site; paths relative to the city's folder."""

    code: str
    name: str
    district: str                   # the district's name (as stored in the site's row)
    db: str
    ifc: str
    scans: tuple[str, ...]          # one file a survey, in epoch order
    camera: str | None              # an image folder or a video; None when the site has no camera

    @property
    def scan(self) -> str:
        """The first survey's file."""
        return self.scans[0]


@dataclass(frozen=True)
class City:
    """A generated city: its folder, manifest, sites and detector (relative to the folder, or None)."""

    root: Path
    manifest: Path
    sites: tuple[CitySite, ...]
    weights: str | None
    spec: CitySpec = field(default_factory=CitySpec)
    seconds: float = 0.0            # how long generating took

    def units(self) -> list[dict[str, Any]]:
        """The manifest's units, as written."""
        import yaml

        return yaml.safe_load(self.manifest.read_text(encoding="utf-8"))

    def stores(self) -> list[str]:
        """The store files (relative to the folder), each once, in site order."""
        return list(dict.fromkeys(s.db for s in self.sites))

    def copy(self, dest: str | Path) -> City:
        """The whole city in a fresh folder: stores as they were generated (no unit run yet)."""
        dest = Path(dest)
        shutil.copytree(self.root, dest)
        return replace(self, root=dest, manifest=dest / self.manifest.name)

    def fresh_stores(self, dest: str | Path, *, units: list[dict[str, Any]] | None = None,
                     name: str | None = None) -> Path:
        """Copies of the stores (as generated, with their geometry caches) in ``dest`` and a manifest there whose
        inputs are this city's files by absolute path (they are not copied): a manifest to run again from scratch.

        ``units``: the units to write (default: this city's manifest); their ``db`` paths are taken
        relative to this city's folder, as the manifest's are. Returns the new manifest's path.
        """
        import yaml

        from sitetwin.data.store import copy_store

        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        units = self.units() if units is None else units
        for db in dict.fromkeys(u["db"] for u in units):
            target = dest / db
            target.parent.mkdir(parents=True, exist_ok=True)
            copy_store(self.root / db, target)
        rebased = []
        for u in units:
            u = dict(u)
            for key in ("files", "source", "weights"):
                if key in u:
                    value = u[key]
                    u[key] = ([str(self.root / v) for v in value] if isinstance(value, list)
                              else str(self.root / value))
            rebased.append(u)
        manifest = dest / (name or self.manifest.name)
        manifest.write_text(yaml.safe_dump(rebased, sort_keys=False), encoding="utf-8")
        return manifest


def make_city(root: str | Path, spec: CitySpec = CitySpec(), *, weights: str | Path | None = None,
              images: str | Path | None = None, on_progress: Callable[[str], None] | None = None) -> City:
    """Generate a city in the new folder ``root`` (see the module docstring) and its manifest ``city.yaml``.

    ``weights``: the detector the detect units use (.onnx or .pt, copied in as ``detector.*``);
    without it, and with cameras, :func:`tiny_detector` makes one. ``images``: a folder of images
    for the cameras (each site gets the next ``frames`` of them, in name order, round again when
    they run out); without it, frames are drawn.
    """
    import yaml

    from sitetwin.synth.building import DemoBuildingSpec, build_demo_building

    started = time.perf_counter()
    say = on_progress or (lambda _msg: None)
    root = Path(root)
    if root.exists() and any(root.iterdir()):
        raise FileExistsError(f"{root}: not empty; a city is generated into a new folder")
    root.mkdir(parents=True, exist_ok=True)
    districts = spec.district_list()
    width = max(2, len(str(spec.sites)))
    any_camera = any(spec.has_camera(i) for i in range(spec.sites))
    detector = None
    if any_camera:
        if weights is None:
            say("making a tiny detector")
            weights = tiny_detector(root / ".detector", imgsz=spec.imgsz, seed=spec.seed)
        weights = Path(weights)
        if weights.suffix.lower() not in (".onnx", ".pt") or not weights.is_file():
            raise ValueError(f"weights {weights}: expected a .onnx or .pt file")
        detector = f"detector{weights.suffix}"
        shutil.copy(weights, root / detector)
        shutil.rmtree(root / ".detector", ignore_errors=True)
    pictures = sorted(p for p in Path(images).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")) \
        if images is not None else []
    if images is not None and not pictures:
        raise FileNotFoundError(f"{images}: no .jpg or .png images")

    buildings: dict[int, Path] = {}     # variant -> its IFC, generated once
    meshes: dict[str, Any] = {}         # IFC sha256 -> the model's mesh in the site's local frame
    made: list[CitySite] = []
    units: list[dict[str, Any]] = []
    for i in range(spec.sites):
        dcode, dname = districts[i % len(districts)]
        code = f"{spec.city_code}-{dcode}-{i + 1:0{width}d}"
        folder = root / code
        folder.mkdir()
        say(f"site {code} ({i + 1}/{spec.sites})")
        db = f"{code}/site.duckdb" if spec.sites_per_store == 1 else \
            f"stores/store-{i // spec.sites_per_store + 1:0{width}d}.duckdb"
        (root / db).parent.mkdir(parents=True, exist_ok=True)

        variant = i if spec.variants is None else i % spec.variants
        if variant not in buildings:
            bspec = DemoBuildingSpec(storeys=spec.storeys, bays_x=spec.bays_x + variant % 2, bays_y=spec.bays_y,
                                     seed=spec.seed + variant)
            buildings[variant] = build_demo_building(folder / "building.ifc", bspec).path
        ifc = folder / "building.ifc"
        if buildings[variant] != ifc:
            shutil.copy(buildings[variant], ifc)

        mesh = _site_store(root / db, code, ifc, spec, dname, i, meshes)
        scans = []
        for k in range(spec.surveys_at(i)):
            out = folder / f"week{k + 1}.{spec.survey_format}"
            simulated_scan(mesh, out, points=spec.survey_points, seed=spec.seed * 100_003 + i * 101 + k,
                           stations=spec.stations, noise_m=spec.noise_m)
            scans.append(out.relative_to(root).as_posix())
        camera = None
        if spec.has_camera(i):
            rng = np.random.default_rng([spec.seed, i, 7])
            picked = [pictures[(i * spec.frames + j) % len(pictures)] for j in range(spec.frames)] if pictures else None
            if spec.camera == "video":
                camera = f"{code}/camera.mp4"
                write_video(root / camera, rng, frames=spec.frames, size=spec.frame_size, fps=spec.fps,
                            images=picked)
            else:
                camera = f"{code}/camera"
                write_images(root / camera, rng, frames=spec.frames, size=spec.frame_size, images=picked)
        site = CitySite(code, f"Site {i + 1}", dname, db, f"{code}/building.ifc", tuple(scans), camera)
        made.append(site)

        if not spec.preload_models:
            units.append({"kind": "model", "site": code, "db": db, "files": [site.ifc], "name": "structure"})
        for k, scan in enumerate(scans):
            units.append({"kind": "survey", "site": code, "db": db, "files": [scan],
                          "epoch": (spec.epoch + dt.timedelta(days=7 * k)).isoformat(), "register": "none"})
        if camera is not None:
            units.append({"kind": "detect", "site": code, "db": db, "source": camera, "weights": detector,
                          "imgsz": spec.imgsz})
        if spec.scores:
            last = spec.epoch + dt.timedelta(days=7 * max(spec.surveys_at(i) - 1, 0) + 1)
            units.append({"kind": "score", "site": code, "db": db, "as_of": last.isoformat()})
    # scores first in the file on purpose: a site's units still run models first, scores last
    units.sort(key=lambda u: u["kind"] != "score")
    manifest = root / "city.yaml"
    manifest.write_text(yaml.safe_dump(units, sort_keys=False), encoding="utf-8")
    return City(root, manifest, tuple(made), detector, spec, round(time.perf_counter() - started, 3))


def _site_store(db: Path, code: str, ifc: Path, spec: CitySpec, district: str, i: int, meshes: dict[str, Any]):
    """Create the site in its store (and load its model when ``preload_models``); the model's mesh in the site's
    local frame, which is the same for one file in any store."""
    from sitetwin.bim.load import load_model
    from sitetwin.bim.mesh import load_mesh
    from sitetwin.data.files import file_sha256
    from sitetwin.data.sites import upsert_site
    from sitetwin.data.store import open_store

    sha = file_sha256(ifc)
    with open_store(db) as store:
        with store.transaction():
            upsert_site(store, code, name=f"Site {i + 1}", district=district, city=spec.city)
        assign_enterprise(store, code, i)
        if spec.preload_models:
            report = load_model(store, ifc, site_code=code, name="structure")
            if sha not in meshes:
                meshes[sha] = load_mesh(store, model_ids=[report.model_id])
    if sha not in meshes and spec.surveys_at(i):
        with open_store(":memory:") as scratch:
            report = load_model(scratch, ifc, site_code="SCRATCH")
            meshes[sha] = load_mesh(scratch, model_ids=[report.model_id])
    return meshes.get(sha)


def credit_code(n: int) -> str:
    """The made-up unified social credit code of enterprise ``n``: a Wuhan (420100) enterprise (91)
    with a check character per GB 32100-2015."""
    from sitetwin.data.enterprises import credit_check_char

    first17 = f"91420100MA4K{7301 + 37 * n:05d}"
    return first17 + credit_check_char(first17)


def assign_enterprise(store, site_code: str, i: int = 0) -> str:
    """Record the construction enterprise of site number ``i`` (and, every third site, its labour
    subcontractor) in ``store``; returns the contractor's code. The site must exist."""
    from sitetwin.data.enterprises import add_subcontractor, set_site_enterprise, upsert_enterprise
    from sitetwin.data.store import atomic

    code, name, kind = ENTERPRISES[i % GENERAL_CONTRACTORS]
    with atomic(store):
        upsert_enterprise(store, code, name=name, credit_code=credit_code(i % GENERAL_CONTRACTORS), kind=kind)
        set_site_enterprise(store, site_code, code)
        if i % 3 == 2:
            sub = GENERAL_CONTRACTORS
            upsert_enterprise(store, ENTERPRISES[sub][0], name=ENTERPRISES[sub][1], credit_code=credit_code(sub),
                              kind=ENTERPRISES[sub][2])
            add_subcontractor(store, site_code, ENTERPRISES[sub][0], scope_of_work="劳务分包")
    return code


def simulated_scan(mesh, out: str | Path, *, points: int, seed: int, stations: int = 4,
                   noise_m: float = 0.003) -> Path:
    """A survey of the building as designed, from ``stations`` stations 4 m off its corners, with exactly
    ``points`` points, written to ``out`` (.e57: one scan a station with its pose; .las/.laz/.ply: one cloud in
    the site's local frame)."""
    from sitetwin.synth.scans import simulate_survey, step_for_points

    out = Path(out)
    fmt = out.suffix.lower().lstrip(".")
    if fmt not in SURVEY_FORMATS:
        raise ValueError(f"{out}: a survey is written as {', '.join('.' + f for f in SURVEY_FORMATS)}")
    (x0, y0, _), (x1, y1, _) = mesh.bounds()
    corners = np.array([[x0 - 4, y0 - 4, 1.6], [x1 + 4, y0 - 4, 1.6], [x1 + 4, y1 + 4, 1.6], [x0 - 4, y1 + 4, 1.6]])
    where = corners[:stations]
    step = step_for_points(math.ceil(points / stations))
    for _ in range(4):      # the building hides part of the sky: a finer step until there are enough points
        sim = simulate_survey(mesh, stations_m=where, angular_step_deg=step, noise_m=noise_m, seed=seed)
        got = sim.point_count
        if got >= points:
            break
        step *= math.sqrt(got / points) * 0.97 if got else 0.5
    else:
        raise RuntimeError(f"{out}: the simulated scan has {got} points, fewer than the {points} asked")
    keep = np.zeros(got, bool)
    keep[np.random.default_rng([seed, 1]).choice(got, points, replace=False)] = True
    scans, start = [], 0
    for s in sim.scans:
        mine = keep[start:start + len(s.points)]
        start += len(s.points)
        scans.append(replace(s, points=s.points[mine], rgb=s.rgb[mine], intensity=s.intensity[mine],
                             truth_element=s.truth_element[mine]))
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "e57":
        from sitetwin.twin.formats import write_e57

        return write_e57(out, scans)
    from sitetwin.twin.registration import apply

    xyz = np.concatenate([apply(s.T_survey_from_scan, s.points) for s in scans])   # survey frame = local frame
    rgb = np.concatenate([s.rgb for s in scans])
    if fmt in ("las", "laz"):
        from sitetwin.twin.formats import write_las

        return write_las(out, xyz, rgb=rgb, intensity=np.concatenate([s.intensity for s in scans]))
    import open3d as o3d

    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(xyz))
    cloud.colors = o3d.utility.Vector3dVector(rgb.astype(np.float64) / 255.0)
    if not o3d.io.write_point_cloud(out, cloud, write_ascii=False):
        raise OSError(f"{out}: Open3D could not write the cloud")
    return out


# ---------------------------------------------------------------------------------------------- cameras

@dataclass
class _Walker:
    """A drawn worker: where their feet are (px), how fast they walk (px a frame), how tall they are (px)."""

    x: float
    feet: float
    speed: float
    height: float
    vest: tuple[int, int, int]                 # BGR
    hat: tuple[int, int, int] | None           # BGR; None: no hard hat


def draw_frames(rng: np.random.Generator, *, frames: int, size: tuple[int, int] = (320, 240)):
    """A camera's view of a yard, drawn: sky, ground, a grey frame building and a few workers walking across,
    in orange or yellow vests, some in white or yellow hard hats. Yields (h, w, 3) uint8 BGR frames."""
    import cv2

    w, h = size
    horizon = int(h * rng.uniform(0.35, 0.5))
    base = np.empty((h, w, 3), np.uint8)
    base[:horizon] = np.array(rng.uniform([200, 160, 110], [240, 200, 150]), np.uint8)      # sky (BGR)
    base[horizon:] = np.array(rng.uniform([70, 100, 110], [100, 130, 140]), np.uint8)       # earth
    bx, bw = int(w * rng.uniform(0.05, 0.5)), int(w * rng.uniform(0.25, 0.45))
    top = int(horizon * rng.uniform(0.1, 0.5))
    cv2.rectangle(base, (bx, top), (bx + bw, horizon + 8), (150, 150, 150), -1)
    for level in np.linspace(top, horizon, 4)[1:-1].astype(int):
        cv2.line(base, (bx, int(level)), (bx + bw, int(level)), (110, 110, 110), 2)
    people = []
    for _ in range(int(rng.integers(2, 5))):
        height = float(rng.uniform(0.25, 0.45) * h)
        people.append(_Walker(x=float(rng.uniform(0, w)), feet=float(rng.uniform(horizon + height * 0.9, h - 2)),
                              speed=float(rng.uniform(-6, 6)), height=height,
                              vest=(0, 140, 255) if rng.random() < 0.5 else (40, 230, 230),
                              hat=[(245, 245, 245), (30, 220, 240), None][int(rng.integers(0, 3))]))
    for _ in range(frames):
        img = base.copy()
        for p in sorted(people, key=lambda q: q.feet):
            x, feet, s = int(p.x) % w, int(p.feet), p.height
            head_r = max(2, int(s * 0.09))
            shoulder, hip = feet - int(s * 0.8), feet - int(s * 0.45)
            cv2.rectangle(img, (x - int(s * 0.1), hip), (x + int(s * 0.1), feet), (60, 50, 40), -1)     # legs
            cv2.rectangle(img, (x - int(s * 0.14), shoulder), (x + int(s * 0.14), hip), p.vest, -1)
            cv2.circle(img, (x, shoulder - head_r), head_r, (140, 170, 210), -1)                  # face
            if p.hat is not None:
                cv2.ellipse(img, (x, shoulder - head_r - head_r // 3), (head_r + 1, head_r), 0, 180, 360, p.hat, -1)
            p.x += p.speed
        yield img


def _frames(rng: np.random.Generator, *, frames: int, size: tuple[int, int], images: list[Path] | None):
    if images is None:
        yield from draw_frames(rng, frames=frames, size=size)
        return
    import cv2

    for path in images:
        img = cv2.imread(str(path))
        if img is None:
            raise ValueError(f"{path}: not an image OpenCV reads")
        yield cv2.resize(img, size, interpolation=cv2.INTER_AREA)


def write_images(folder: str | Path, rng: np.random.Generator, *, frames: int, size: tuple[int, int] = (320, 240),
                 images: list[Path] | None = None) -> Path:
    """A camera's image folder: ``images`` copied as they are, or ``frames`` drawn frames as JPEG."""
    import cv2

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if images is not None:
        for j, path in enumerate(images):
            shutil.copy(path, folder / f"frame-{j + 1:04d}{path.suffix.lower()}")
        return folder
    for j, img in enumerate(draw_frames(rng, frames=frames, size=size)):
        cv2.imwrite(str(folder / f"frame-{j + 1:04d}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return folder


def write_video(path: str | Path, rng: np.random.Generator, *, frames: int, size: tuple[int, int] = (320, 240),
                fps: int = 10, images: list[Path] | None = None) -> Path:
    """A short MP4 (mp4v) of ``frames`` frames: drawn, or made of ``images`` resized to ``size``."""
    import cv2

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.part{path.suffix}")
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter.fourcc(*"mp4v"), float(fps), size)
    if not writer.isOpened():
        raise OSError(f"{path}: OpenCV cannot write MP4 video here")
    try:
        for img in _frames(rng, frames=frames, size=size, images=images):
            writer.write(img)
    finally:
        writer.release()
    tmp.replace(path)
    return path


def tiny_detector(out: str | Path, *, imgsz: int = 64, seed: int = 0) -> Path:
    """An untrained YOLO11n with the classes the hazard rules need, exported as ONNX at ``imgsz`` px (a few
    seconds on a CPU): it detects nothing in particular, which is all a test or benchmark of the plumbing needs."""
    import torch
    import yaml
    from ultralytics import YOLO
    from ultralytics.utils import ROOT

    from sitetwin.vision import runtime
    from sitetwin.vision.train import export_onnx

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = yaml.safe_load(next(ROOT.rglob("yolo11.yaml")).read_text())
    cfg["nc"] = len(DETECTOR_CLASSES)
    (out / "yolo11n.yaml").write_text(yaml.safe_dump(cfg))     # the file name gives ultralytics the scale (n)
    torch.manual_seed(seed)
    with runtime.quiet_ultralytics():
        model = YOLO(str(out / "yolo11n.yaml"))
        network: Any = model.model
        network.names = dict(enumerate(DETECTOR_CLASSES))
        model.save(str(out / "tiny.pt"))
        path = export_onnx(out / "tiny.pt", imgsz=imgsz, out=out / "tiny.onnx")
    (out / "tiny.pt").unlink()
    return path


# ---------------------------------------------------------------------------------------------- histories

@dataclass(frozen=True)
class HistorySpec:
    """A city's histories for the lake's rollups: findings with their events, detections, hazards and weekly risk
    scores of ``sites`` sites over Wuhan's districts, as of ``as_of``. The defaults are the issue's figure."""

    sites: int = 10_000
    findings: int = 1_000_000                    # in all, spread at random over the sites
    detections: int = 10_000_000                 # in all, over the last ``days`` days
    districts: int = len(WUHAN_DISTRICTS)
    city: str = "Wuhan"
    city_code: str = "WH"
    days: int = 60
    weeks: int = 8                               # stored risk scores a site, a week apart
    as_of: dt.date = dt.date(2026, 6, 30)
    batch: int = 500                             # sites generated at once (their rows depend on it: keep it)
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("sites", "findings", "detections", "days", "weeks", "batch"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if name in (
                    "findings", "detections") else 1):
                raise ValueError(f"HistorySpec.{name} {value!r}: a whole number")
        if not 1 <= self.districts <= len(WUHAN_DISTRICTS):
            raise ValueError(f"HistorySpec.districts {self.districts}: 1 to {len(WUHAN_DISTRICTS)}")

    def site_code(self, i: int) -> str:
        code = WUHAN_DISTRICTS[i % self.districts][0]
        return f"{self.city_code}-{code}-{i + 1:0{max(2, len(str(self.sites)))}d}"


def history_batch(spec: HistorySpec, start: int) -> dict[str, Any]:
    """The rows of sites ``start .. start + spec.batch`` (``start`` a multiple of ``spec.batch``) as Arrow tables
    named after the store's tables: sites, findings, finding_events, detections, hazards, risk_scores.

    Vectorised draws, not library calls: a finding's events go raised -> rectification submitted -> verified
    closed (-> reopened) with the event chain's hashes left as ``-``; the detections are boxes with no image."""
    import pyarrow as pa

    from sitetwin.oversight.risk import default_config, tier_for

    if start % spec.batch or not 0 <= start < spec.sites:
        raise ValueError(f"history_batch: start {start} is not a batch of {spec.sites} sites by {spec.batch}")
    stop = min(start + spec.batch, spec.sites)
    n_sites = stop - start
    rng = np.random.default_rng([spec.seed, start // spec.batch])
    codes = np.array([spec.site_code(i) for i in range(start, stop)], dtype=object)
    district_of = np.array([WUHAN_DISTRICTS[i % spec.districts][1] for i in range(start, stop)], dtype=object)
    end = np.datetime64(dt.datetime.combine(spec.as_of, dt.time()), "us")

    def share(total: int) -> int:            # this batch's share of ``total``, exact over all batches
        return total * stop // spec.sites - total * start // spec.sites

    def ago(days: np.ndarray) -> np.ndarray:
        return end - (days * 86_400e6).astype("timedelta64[us]")

    tables: dict[str, Any] = {"sites": pa.table({
        "site_code": pa.array(codes, pa.string()), "name": [f"Site {i + 1}" for i in range(start, stop)],
        "district": pa.array(district_of, pa.string()), "city": [spec.city] * n_sites,
        "created_at": np.full(n_sites, end - np.timedelta64(365, "D"))})}
    # findings: raised over 120 days; fate open / submitted / closed / reopened
    n_f = share(spec.findings)
    f_site = rng.integers(0, n_sites, n_f)
    raised = ago(rng.uniform(1, 120, n_f))
    fids = np.array([f"F{start // spec.batch:05d}{j:07d}" for j in range(n_f)], dtype=object)
    tables["findings"] = pa.table({
        "finding_id": pa.array(fids, pa.string()), "site_code": pa.array(codes[f_site], pa.string()),
        "number": np.arange(1, n_f + 1, dtype=np.int32),
        "category": np.array(["safety", "quality", "progress", "environment"])[rng.integers(0, 4, n_f)],
        "severity": np.array(["low", "medium", "high", "critical"])[rng.choice(4, n_f, p=[0.4, 0.3, 0.2, 0.1])],
        "title": ["generated"] * n_f, "raised_by": ["generator"] * n_f, "raised_at": raised})
    fate = rng.choice(4, n_f, p=[0.45, 0.2, 0.25, 0.1])
    steps = 1 + (fate >= 1) + (fate >= 2) + (fate == 3)
    owner = np.repeat(np.arange(n_f), steps)
    seq = np.arange(len(owner)) - np.repeat(np.cumsum(steps) - steps, steps)       # 0, 1, ... within a finding
    kinds = np.array(["raised", "rectification_submitted", "verified_closed", "reopened"])
    statuses = np.array(["open", "rectification_submitted", "verified_closed", "reopened"])
    due_days = rng.integers(2, 28, n_f)
    at = np.minimum(raised[owner] + (seq * 86_400e6).astype("timedelta64[us]"),
                    end - ((10 - seq) * 60e6).astype("timedelta64[us]"))
    due = (raised[owner] + ((due_days[owner] + np.where(seq == 3, 7, 0)) * 86_400e6).astype("timedelta64[us]")) \
        .astype("datetime64[D]")
    has_due = (seq == 0) | (seq == 3)
    n_ev = len(owner)
    tables["finding_events"] = pa.table({
        "event_id": [f"E{start // spec.batch:05d}{j:08d}" for j in range(n_ev)],
        "finding_id": pa.array(fids[owner], pa.string()), "site_code": pa.array(codes[f_site[owner]], pa.string()),
        "seq": (seq + 1).astype(np.int32), "occurred_at": at, "actor": ["generator"] * n_ev,
        "kind": kinds[seq], "status": statuses[seq], "due": pa.array(due, mask=~has_due),
        "prev_hash": ["-"] * n_ev, "hash": ["-"] * n_ev})
    n_d = share(spec.detections)
    tables["detections"] = pa.table({
        "detection_id": [f"D{start // spec.batch:05d}{j:08d}" for j in range(n_d)],
        "site_code": pa.array(codes[rng.integers(0, n_sites, n_d)], pa.string()),
        "source_kind": ["camera"] * n_d, "source_ref": ["gate"] * n_d,
        "captured_at": ago(rng.uniform(0, spec.days, n_d)),
        "class_name": np.array(["person", "hard_hat", "head", "vest", "excavator"])[rng.integers(0, 5, n_d)],
        "confidence": rng.uniform(0.3, 1.0, n_d), "x1": np.zeros(n_d), "y1": np.zeros(n_d), "x2": np.ones(n_d),
        "y2": np.ones(n_d)})
    n_h = n_d // 50
    tables["hazards"] = pa.table({
        "hazard_id": [f"H{start // spec.batch:05d}{j:07d}" for j in range(n_h)],
        "site_code": pa.array(codes[rng.integers(0, n_sites, n_h)], pa.string()),
        "rule": ["no_hard_hat"] * n_h, "severity": ["high"] * n_h, "message": ["generated"] * n_h,
        "started_at": ago(rng.uniform(0, spec.days, n_h))})
    weeks = [spec.as_of - dt.timedelta(days=7 * k) for k in range(spec.weeks)]
    n_r = n_sites * spec.weeks
    scores = np.round(rng.uniform(5, 90, n_r), 2)
    config = default_config()
    tiers = [tier_for(float(x), config) for x in scores]
    tables["risk_scores"] = pa.table({
        "site_code": pa.array(np.repeat(codes, spec.weeks), pa.string()), "as_of": weeks * n_sites,
        "computed_at": np.full(n_r, end), "score": scores, "computed_tier": tiers, "tier": tiers,
        "breakdown": ["{}"] * n_r, "formula_version": ["generated"] * n_r})
    return tables


def history_lake(lake: str | Path, spec: HistorySpec = HistorySpec(), *,
                 on_progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Generate the city's histories straight into the lake ``lake`` (a new or empty folder, or a lake of the same
    schema): each batch of sites goes into an in-memory store and is published from there, as ``sitetwin lake
    publish`` does from a site's store, so the lake has the layout, state files and digests of a published one.

    Unlike publishing real stores there are no site stores (nothing to republish from), and the rows are
    vectorised draws (:func:`history_batch`), not the library's records. Returns the rows per table, partitions
    written and seconds."""
    from sitetwin.data.lake import publish
    from sitetwin.data.store import open_store
    from sitetwin.oversight import finding_state

    started = time.perf_counter()
    say = on_progress or (lambda _msg: None)
    rows: dict[str, int] = {}
    written = 0
    for start in range(0, spec.sites, spec.batch):
        tables = history_batch(spec, start)
        with open_store(":memory:") as store:
            with store.transaction():
                for name, arrow in tables.items():
                    rows[name] = rows.get(name, 0) + store.insert_frame(name, arrow)
                # the generator writes findings and events around oversight: their current state as oversight keeps it
                rows["finding_current"] = rows.get("finding_current", 0) + finding_state.refresh(store)
            written += len(publish(store, lake)["written"])
        say(f"sites {start + 1}-{min(start + spec.batch, spec.sites)} of {spec.sites}")
    return {"sites": spec.sites, "rows": rows, "partitions": written,
            "seconds": round(time.perf_counter() - started, 1)}


def history_stores(folder: str | Path, spec: HistorySpec = HistorySpec(), *, sites: int | None = None,
                   on_progress: Callable[[str], None] | None = None) -> list[Path]:
    """The same histories as separate site stores: one DuckDB file per site (``<folder>/<site>.duckdb``) for
    the first ``sites`` sites (default all), each holding exactly the rows :func:`history_lake` publishes of
    that site. Returns the store paths in site order."""
    from sitetwin.data.store import open_store
    from sitetwin.oversight import finding_state

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    say = on_progress or (lambda _msg: None)
    count = spec.sites if sites is None else min(sites, spec.sites)
    paths = []
    for start in range(0, count, spec.batch):
        tables = history_batch(spec, start)
        with open_store(":memory:") as batch:
            with batch.transaction():
                for name, arrow in tables.items():
                    batch.insert_frame(name, arrow)
            for i in range(start, min(start + spec.batch, count)):
                code = spec.site_code(i)
                path = folder / f"{code}.duckdb"
                open_store(path).close()                      # created with every migration
                batch.execute(f"ATTACH '{path.as_posix()}' AS one")
                try:
                    with batch.transaction():
                        for name in tables:
                            batch.execute(f'INSERT INTO one."{name}" SELECT * FROM "{name}" WHERE site_code = ?',
                                          [code])
                finally:
                    batch.execute("DETACH one")
                with open_store(path) as one:       # findings' current state, as oversight keeps it in a store
                    finding_state.refresh(one)
                paths.append(path)
        say(f"stores {len(paths)} of {count}")
    return paths
