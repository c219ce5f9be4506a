"""Fixtures for the workbench tests: a populated demo site, a second site for scope tests, a live
server and one headless Chromium shared by the browser tests."""

from __future__ import annotations

import importlib.util
import shutil
import sys
import time
from pathlib import Path

import pytest

from sitetwin.data.store import copy_store

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "dashboards"


def sibling(filename: str):
    """A module of this folder imported by path, once (pytest's importlib mode has no package to import
    it from): test_access.py for its browser-like client."""
    name = f"sitetwin_dashboards_{Path(filename).stem}"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(filename))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def wait_for(condition, timeout: float, what: str = ""):
    """The condition's value once truthy (an exception while the page still renders counts as not yet);
    the test fails naming ``what`` after ``timeout`` seconds. What the browser tests wait with."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = condition()
            if last:
                return last
        except Exception as exc:                    # the page is still rendering
            last = exc
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what or condition}: {last!r}")


@pytest.fixture(scope="session")
def access_helpers():
    """Client, _callbacks, _body and _run of test_access.py: one way of calling callbacks for the package."""
    return sibling("test_access.py")


@pytest.fixture(scope="session")
def store_copy():
    """Copy a store (and its cache) into a folder: for tests that write to a copy of a shared site."""
    return lambda src, dst_dir: copy_store(src, Path(dst_dir) / Path(src).name)


@pytest.fixture(scope="session")
def site_db(tmp_path_factory, demo_store_path) -> tuple[Path, dict]:
    """The demo building plus surveys, panoramas, detections, hazards, findings and sensors (``synth.bigsite``).

    Treat it as read-only; copy it (``store_copy``) to write.
    """
    db = copy_store(demo_store_path, tmp_path_factory.mktemp("dash-site") / demo_store_path.name)
    from sitetwin.synth import populate_site

    facts = populate_site(db)
    return db, facts


@pytest.fixture(scope="session")
def app(site_db):
    from sitetwin.dashboards.app import create_app

    return create_app(site_db[0])


@pytest.fixture(scope="session")
def live(app):
    from sitetwin.dashboards.app import BackgroundServer

    server = BackgroundServer(app)
    yield server
    server.stop()


@pytest.fixture
def serve():
    """``serve(app)``: serve another app for one test (stopped afterwards)."""
    started = []

    def start(app):
        from sitetwin.dashboards.app import BackgroundServer

        started.append(BackgroundServer(app))
        return started[-1]
    yield start
    for s in started:
        s.stop()


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium (Debian's chromium + chromium-driver) for all browser tests."""
    if shutil.which("chromedriver") is None or shutil.which("chromium") is None:
        pytest.fail("the browser tests need Debian's chromium and chromium-driver: run `make browser`")
    from dash.testing.browser import Browser

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    b = Browser("chrome", headless=True, percy_run=False, percy_finalize=False, wait_timeout=20,
                download_path=str(ARTIFACTS / "downloads"))
    b.driver.set_window_size(1400, 1000)
    yield b
    b.driver.quit()
