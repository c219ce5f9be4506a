"""Fixtures shared by the whole suite: the real test data, in-memory stores, the demo building and a
simulated survey of it (seeded; the expensive pieces are session-scoped and shared)."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def _shared_data() -> Path | None:
    candidates = [os.environ.get("SITETWIN_SHARED_DATA"), REPO.parent / "shared" / "data", "/work/shared/data"]
    for c in candidates:
        if c and (Path(c) / "MANIFEST.md").exists():
            return Path(c)
    return None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real public test files (../shared/data, or $SITETWIN_SHARED_DATA)."""
    found = _shared_data()
    if found is None:
        pytest.fail("real test data not found: set SITETWIN_SHARED_DATA to the shared data folder "
                    "(the one holding MANIFEST.md)")
    return found


@pytest.fixture
def store():
    """A fresh in-memory store with every migration applied."""
    from sitetwin.data.store import open_store

    with open_store(":memory:") as s:
        yield s


@pytest.fixture(scope="session")
def demo_ifc(tmp_path_factory) -> Path:
    """The demo building (default spec), generated once per test session."""
    from sitetwin.synth import build_demo_building

    return build_demo_building(tmp_path_factory.mktemp("demo") / "demo-building.ifc").path


@pytest.fixture(scope="session")
def demo_store_path(tmp_path_factory, demo_ifc) -> Path:
    """A store file with the demo building loaded as site DEMO. Treat it as read-only; copy it to change it."""
    from sitetwin.bim.load import load_model
    from sitetwin.data.store import open_store

    path = tmp_path_factory.mktemp("demo-store") / "demo.duckdb"
    with open_store(path) as s:
        load_model(s, demo_ifc, site_code="DEMO", name="structure")
    return path


EPOCH = dt.date(2026, 5, 10)


@dataclass(frozen=True)
class Demo:
    mesh: object
    model_id: str
    classes: np.ndarray


@pytest.fixture(scope="session")
def demo(demo_store_path) -> Demo:
    from sitetwin.bim.mesh import load_mesh
    from sitetwin.data.store import open_store

    with open_store(demo_store_path, read_only=True) as store:
        model_id = store.scalar("SELECT model_id FROM models")
        mesh = load_mesh(store, model_ids=[model_id])
        facts = dict(store.execute("SELECT global_id, ifc_class FROM elements WHERE model_id = ?", [model_id]))
    return Demo(mesh, model_id, np.array([facts[g] for g in mesh.global_ids], dtype=object))


@pytest.fixture(scope="session")
def as_built(demo_store_path, demo):
    from sitetwin.data.store import open_store
    from sitetwin.synth import draw_as_built

    with open_store(demo_store_path, read_only=True) as store:
        return draw_as_built(store, demo.mesh, [demo.model_id], seed=0)


@dataclass(frozen=True)
class EpochSurvey:
    sim: object
    path: Path
    T_true: np.ndarray
    epoch: dt.date


@pytest.fixture(scope="session")
def epoch_survey(tmp_path_factory, demo, as_built) -> EpochSurvey:
    """The demo site on 2026-05-10, scanned from 12 stations (~330k points), at a random pose, as E57."""
    from sitetwin.synth import random_pose, simulate_epoch
    from sitetwin.twin.formats import write_e57

    T = random_pose(np.random.default_rng(3), centre_m=demo.mesh.bounds().mean(axis=0))
    sim = simulate_epoch(demo.mesh, as_built, EPOCH, seed=3, T_model_from_survey=T, points_per_station=30_000)
    path = write_e57(tmp_path_factory.mktemp("scans") / "epoch.e57", sim.scans)
    return EpochSurvey(sim, path, T, EPOCH)
