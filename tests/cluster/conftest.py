"""A small generated city for the cluster's tests: sites over districts, each with its own store, a model, a
simulated survey, camera images and a score; a tiny untrained detector; a local Ray cluster per module.

The city is written once per session (buildings, scans and detector are seeded); each test copies the
manifest's folder when it runs units, so that runs never see each other's stores.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import yaml

CITY = "Wuhan"
# Two storeys of 2 x 2 bays: a building of ~200 elements that loads in a second.
SPEC = {"storeys": 3, "bays_x": 2, "bays_y": 2}
DETECTOR_CLASSES = ("person", "hard_hat", "head", "vest")   # what the default hazard rules need of an image
IMAGES_PER_CAMERA = 3


@dataclass(frozen=True)
class CitySite:
    code: str
    district: str
    db: str            # relative to the city's folder
    ifc: str
    scan: str
    images: str


@dataclass(frozen=True)
class City:
    root: Path
    manifest: Path
    sites: tuple[CitySite, ...]
    weights: str

    def copy(self, dest: Path) -> City:
        """The city in a fresh folder: stores as they were generated (no unit run yet)."""
        shutil.copytree(self.root, dest)
        return City(dest, dest / self.manifest.name, self.sites, self.weights)

    def units(self) -> list[dict]:
        return yaml.safe_load(self.manifest.read_text())


def tiny_detector(out: Path) -> Path:
    """An untrained YOLO11n with the classes the hazard rules need, as ONNX at 64 px (a few seconds on a CPU).

    It detects nothing in particular, which is all a test of the cluster's plumbing needs.
    """
    from ultralytics import YOLO
    from ultralytics.utils import ROOT

    from sitetwin.vision import runtime
    from sitetwin.vision.train import export_onnx

    out.mkdir(parents=True, exist_ok=True)
    cfg = yaml.safe_load(next(ROOT.rglob("yolo11.yaml")).read_text())
    cfg["nc"] = len(DETECTOR_CLASSES)
    (out / "yolo11n.yaml").write_text(yaml.safe_dump(cfg))     # the file name gives ultralytics the scale (n)
    with runtime.quiet_ultralytics():
        model = YOLO(str(out / "yolo11n.yaml"))
        model.model.names = dict(enumerate(DETECTOR_CLASSES))
        model.save(str(out / "tiny.pt"))
    path = export_onnx(out / "tiny.pt", imgsz=64, out=out / "tiny.onnx")
    (out / "tiny.pt").unlink()
    return path


def simulated_scan(ifc: Path, out: Path, *, seed: int, points: int = 20_000) -> Path:
    """A survey of the building as designed, from four stations round it, in the site's local frame (E57)."""
    from sitetwin.bim.load import load_model
    from sitetwin.bim.mesh import load_mesh
    from sitetwin.data.store import open_store
    from sitetwin.synth import simulate_survey, step_for_points
    from sitetwin.twin.formats import write_e57

    with open_store(":memory:") as scratch:     # the same file gets the same local frame in any store
        report = load_model(scratch, ifc, site_code="SCRATCH")
        mesh = load_mesh(scratch, model_ids=[report.model_id])
    (x0, y0, _), (x1, y1, _) = mesh.bounds()
    stations = np.array([[x0 - 4, y0 - 4, 1.6], [x1 + 4, y0 - 4, 1.6], [x1 + 4, y1 + 4, 1.6], [x0 - 4, y1 + 4, 1.6]])
    sim = simulate_survey(mesh, stations_m=stations, angular_step_deg=step_for_points(points // 4), seed=seed)
    return write_e57(out, sim.scans)


def make_city(root: Path, *, sites: int, districts: int, hardhat: Path, weights: Path) -> City:
    """A city of ``sites`` sites over ``districts`` districts, each site with its store (site created, nothing
    else), its building, a survey and camera images; and a manifest of their model, survey, detect and
    score units."""
    from sitetwin.data.sites import upsert_site
    from sitetwin.data.store import open_store
    from sitetwin.synth import DemoBuildingSpec, build_demo_building

    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(weights, root / "detector.onnx")
    images = sorted(hardhat.glob("*.jpg"))
    made = []
    units: list[dict] = []
    for i in range(sites):
        district = f"D{i % districts + 1}"
        code = f"WH-{district}-{i + 1:02d}"
        folder = root / code
        spec = DemoBuildingSpec(**{**SPEC, "bays_x": SPEC["bays_x"] + i % 2}, seed=i)
        ifc = build_demo_building(folder / "building.ifc", spec).path
        simulated_scan(ifc, folder / "week1.e57", seed=i)
        (folder / "camera").mkdir()
        for img in images[i * IMAGES_PER_CAMERA:(i + 1) * IMAGES_PER_CAMERA]:
            shutil.copy(img, folder / "camera" / img.name)
        with open_store(folder / "site.duckdb") as store, store.transaction():
            upsert_site(store, code, name=f"Site {i + 1}", district=district, city=CITY)
        site = CitySite(code, district, f"{code}/site.duckdb", f"{code}/building.ifc", f"{code}/week1.e57",
                        f"{code}/camera")
        made.append(site)
        units += [
            {"kind": "model", "site": code, "db": site.db, "files": [site.ifc], "name": "structure"},
            {"kind": "survey", "site": code, "db": site.db, "files": [site.scan], "epoch": "2026-05-10",
             "register": "none"},
            {"kind": "detect", "site": code, "db": site.db, "source": site.images, "weights": "detector.onnx",
             "imgsz": 64},
            {"kind": "score", "site": code, "db": site.db, "as_of": "2026-05-11"},
        ]
    # scores come first in the file on purpose: a site's units still run models first, scores last
    units.sort(key=lambda u: u["kind"] != "score")
    manifest = root / "city.yaml"
    manifest.write_text(yaml.safe_dump(units, sort_keys=False))
    return City(root, manifest, tuple(made), "detector.onnx")


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory) -> Path:
    return tiny_detector(tmp_path_factory.mktemp("detector"))


@pytest.fixture(scope="session")
def city_template(tmp_path_factory, shared_data, tiny_weights) -> City:
    """Two sites in two districts, as generated (copy it before running units: see ``City.copy``)."""
    return make_city(tmp_path_factory.mktemp("city") / "city", sites=2, districts=2,
                     hardhat=shared_data / "detection/hardhat/images", weights=tiny_weights)


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray cluster of 2 CPUs for the module (``cluster.connect`` joins it instead of starting one)."""
    import logging
    import os

    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    yield ray
    ray.shutdown()
