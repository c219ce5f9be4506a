"""Fixtures for the survey tests: the demo building's mesh and as-built history, simulated surveys of it.

Everything here is generated (seeded) from the demo building; the expensive pieces are
session-scoped and shared, and tests that write copy the demo store first.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from data.store import copy_store

EPOCH = dt.date(2026, 5, 10)


@dataclass(frozen=True)
class Demo:
    mesh: object
    model_id: str
    classes: np.ndarray


@pytest.fixture(scope="session")
def demo(demo_store_path) -> Demo:
    from bim.mesh import load_mesh
    from data.store import open_store

    with open_store(demo_store_path, read_only=True) as store:
        model_id = store.scalar("SELECT model_id FROM models")
        mesh = load_mesh(store, model_ids=[model_id])
        facts = dict(store.execute("SELECT global_id, ifc_class FROM elements WHERE model_id = ?", [model_id]))
    return Demo(mesh, model_id, np.array([facts[g] for g in mesh.global_ids], dtype=object))


@pytest.fixture(scope="session")
def as_built(demo_store_path, demo):
    from data.store import open_store
    from twin.demo_surveys import draw_as_built

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
    from twin.demo_surveys import simulate_epoch
    from twin.formats import write_e57
    from twin.simulate import random_pose

    T = random_pose(np.random.default_rng(3), centre_m=demo.mesh.bounds().mean(axis=0))
    sim = simulate_epoch(demo.mesh, as_built, EPOCH, seed=3, T_model_from_survey=T, points_per_station=30_000)
    path = write_e57(tmp_path_factory.mktemp("scans") / "epoch.e57", sim.scans)
    return EpochSurvey(sim, path, T, EPOCH)


@pytest.fixture(scope="session")
def analysed(tmp_path_factory, demo_store_path, demo, epoch_survey):
    """A store with the epoch survey added by automatic registration: (db path, SurveyReport)."""
    from data.store import open_store
    from twin.survey import add_survey

    db = copy_store(demo_store_path, tmp_path_factory.mktemp("analysed") / demo_store_path.name)
    with open_store(db) as store:
        report = add_survey(store, [epoch_survey.path], model_ids=[demo.model_id], epoch=epoch_survey.epoch)
    return db, report


@pytest.fixture
def writable_store(demo_store_path, tmp_path) -> Path:
    """A fresh copy of the demo store, to change."""
    return copy_store(demo_store_path, tmp_path / demo_store_path.name)


def table_counts(store) -> dict[str, int]:
    """Rows per survey table: what 'the store is unchanged' is checked against."""
    return {t: int(store.scalar(f"SELECT count(*) FROM {t}"))
            for t in ("surveys", "scans", "element_deviation", "element_histograms", "unplanned_objects")}
