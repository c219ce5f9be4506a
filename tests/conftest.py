"""Fixtures shared by the whole suite: the real test data, in-memory stores, the demo building."""

from __future__ import annotations

import os
from pathlib import Path

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
    from data.store import open_store

    with open_store(":memory:") as s:
        yield s


@pytest.fixture(scope="session")
def demo_ifc(tmp_path_factory) -> Path:
    """The demo building (default spec), generated once per test session."""
    from bim.demo_building import build_demo_building

    return build_demo_building(tmp_path_factory.mktemp("demo") / "demo-building.ifc").path


@pytest.fixture(scope="session")
def demo_store_path(tmp_path_factory, demo_ifc) -> Path:
    """A store file with the demo building loaded as site DEMO. Treat it as read-only; copy it to change it."""
    from bim.load import load_model
    from data.store import open_store

    path = tmp_path_factory.mktemp("demo-store") / "demo.duckdb"
    with open_store(path) as s:
        load_model(s, demo_ifc, site_code="DEMO", name="structure")
    return path
