"""The generated city: one spec gives the same city, its manifest names exactly what was generated, and the
cluster's loader accepts it (every file there, every site in its store)."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from sitetwin.synth import WUHAN_DISTRICTS, CitySpec, make_city

# small and cheap: one building shared by the sites (variants=1), a few thousand points a survey
SMALL = CitySpec(sites=3, districts=2, bays_x=1, bays_y=1, variants=1, surveys=4, survey_points=3_000,
                 survey_format="las", cameras=2, camera="video", frames=4, frame_size=(96, 64), seed=3)


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    """A stand-in detector file: the loader checks that it is there, nothing here runs it."""
    path = tmp_path_factory.mktemp("weights") / "tiny.onnx"
    path.write_bytes(b"not run by these tests")
    return path


@pytest.fixture(scope="module")
def city(tmp_path_factory, weights):
    return make_city(tmp_path_factory.mktemp("city") / "city", SMALL, weights=weights)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def points(path: Path) -> np.ndarray:
    from sitetwin.twin.formats import read_scans

    return np.concatenate([s.xyz for s in read_scans(path)])


def frames(path: Path) -> list[np.ndarray]:
    from sitetwin.vision.sources import open_source

    return [f.image for f in open_source(path).frames()]


def test_the_same_spec_gives_the_same_city_and_another_seed_another(city, weights, tmp_path):
    again = make_city(tmp_path / "again", SMALL, weights=weights)
    assert again.manifest.read_text() == city.manifest.read_text()
    assert again.sites == city.sites
    for a, b in zip(city.sites, again.sites):
        assert sha(city.root / a.ifc) == sha(again.root / b.ifc)
        for scan_a, scan_b in zip(a.scans, b.scans):
            assert np.array_equal(points(city.root / scan_a), points(again.root / scan_b))
        if a.camera:
            assert all(np.array_equal(x, y) for x, y in zip(frames(city.root / a.camera),
                                                             frames(again.root / b.camera), strict=True))
    other = make_city(tmp_path / "other", replace(SMALL, seed=4, sites=1), weights=weights)
    assert not np.array_equal(points(other.root / other.sites[0].scan), points(city.root / city.sites[0].scan))


def test_the_manifest_names_what_was_generated_and_the_cluster_loader_accepts_it(city):
    from sitetwin.cluster import check_stores, load_manifest
    from sitetwin.data.store import open_store

    manifest = load_manifest(city.manifest)
    states = check_stores(manifest)
    kinds = Counter(u.kind for u in manifest.units)
    assert kinds == {"model": 3, "survey": 4, "detect": 2, "score": 3}
    # sites over Wuhan's districts in turn, ASCII codes, each in its own store with its district's name
    assert [s.code for s in city.sites] == ["WH-JA-01", "WH-JH-02", "WH-JA-03"]
    assert [s.district for s in city.sites] == [WUHAN_DISTRICTS[0][1], WUHAN_DISTRICTS[1][1], WUHAN_DISTRICTS[0][1]]
    assert all(s.code.isascii() for s in city.sites)
    assert {p: s.sites for p, s in states.items()} == {city.root / s.db: {s.code} for s in city.sites}
    for site in city.sites:
        with open_store(city.root / site.db, read_only=True) as store:
            row = store.one("SELECT district, city FROM sites WHERE site_code = ?", [site.code])
        assert (row["district"], row["city"]) == (site.district, "Wuhan")
    # every survey unit names one of the generated scans, each exactly as many points as asked
    scans = sorted(f for u in manifest.units if u.kind == "survey" for f in u.params["files"])
    assert scans == sorted(str(city.root / s) for site in city.sites for s in site.scans)
    assert [len(points(Path(f))) for f in scans] == [SMALL.survey_points] * 4
    assert sum(len(s.scans) for s in city.sites) == 4 and sorted(len(s.scans) for s in city.sites) == [1, 1, 2]
    videos = [u.params["source"] for u in manifest.units if u.kind == "detect"]
    assert videos == [str(city.root / s.camera) for s in city.sites if s.camera]
    assert [len(frames(Path(v))) for v in videos] == [4, 4]
    assert frames(Path(videos[0]))[0].shape == (64, 96, 3)


def test_sites_can_share_a_store_and_arrive_with_their_models_loaded(tmp_path, weights):
    from sitetwin.bim.queries import current_model_ids
    from sitetwin.cluster import check_stores, load_manifest
    from sitetwin.data.store import open_store

    spec = CitySpec(sites=4, districts=4, sites_per_store=2, bays_x=1, bays_y=1, variants=2, preload_models=True,
                    survey_points=2_000, survey_format="ply", cameras=1, camera="images", frames=2, scores=False)
    city = make_city(tmp_path / "city", spec, weights=weights)
    assert city.stores() == ["stores/store-01.duckdb", "stores/store-02.duckdb"]
    manifest = load_manifest(city.manifest)
    assert Counter(u.kind for u in manifest.units) == {"survey": 4, "detect": 1}
    states = check_stores(manifest)
    assert sorted(sorted(s.sites) for s in states.values()) == [["WH-HY-04", "WH-QK-03"], ["WH-JA-01", "WH-JH-02"]]
    with open_store(city.root / city.stores()[0], read_only=True) as store:
        assert all(current_model_ids(store, s.code) for s in city.sites[:2])
    assert [len(points(city.root / s.scan)) for s in city.sites] == [2_000] * 4
    [camera] = [s.camera for s in city.sites if s.camera]
    assert len(list((city.root / camera).glob("*.jpg"))) == 2


def test_fresh_stores_make_a_manifest_that_runs_again_from_scratch(city, tmp_path):
    from sitetwin.cluster import check_stores, load_manifest

    path = city.fresh_stores(tmp_path / "run")
    manifest = load_manifest(path)
    assert all(u.db.is_relative_to(tmp_path / "run") for u in manifest.units)
    assert all(Path(f).is_relative_to(city.root) for u in manifest.units for f in u.params.get("files", []))
    assert all(s.done == frozenset() for s in check_stores(manifest).values())


@pytest.mark.parametrize(("change", "message"), [
    ({"stations": 5}, "CitySpec.stations 5: 1 to 4"),
    ({"survey_format": "xyz"}, "CitySpec.survey_format 'xyz': one of e57, las, laz, ply"),
    ({"districts": 20}, "CitySpec.districts 20: 1 to 13"),
    ({"imgsz": 100}, "CitySpec.imgsz 100: a multiple of 32"),
    ({"sites": 0}, "CitySpec.sites 0: a whole number >= 1"),
])
def test_a_spec_out_of_range_is_refused_naming_the_field(change, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        CitySpec(**change)


def test_a_city_is_generated_only_into_an_empty_folder(tmp_path, weights):
    (tmp_path / "city").mkdir()
    (tmp_path / "city" / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty"):
        make_city(tmp_path / "city", SMALL, weights=weights)
    assert [p.name for p in (tmp_path / "city").iterdir()] == ["keep.txt"]
