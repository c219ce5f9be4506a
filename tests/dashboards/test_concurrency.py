"""The workbench serves while the CLI writes into the same store, and shows the new data without a restart."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest
import requests

SITETWIN = [sys.executable, "-m", "sitetwin.app.cli"]


@pytest.fixture
def served_copy(site_db, tmp_path, store_copy):
    """A writable copy of the generated site, served by the workbench in a thread."""
    from sitetwin.dashboards.app import BackgroundServer, create_app

    db = store_copy(site_db[0], tmp_path)
    app = create_app(db)
    app._setup_server()
    server = BackgroundServer(app)
    yield db, app, server.url
    server.stop()


def _caller(app, base):
    """Call a callback of the app over HTTP like the browser does (CSRF cookie and header)."""
    session = requests.Session()
    session.get(base + "/")
    csrf = session.cookies["_csrf_token"]

    def call(prefix: str, inputs: dict, timeout: float = 60.0):
        key = next(k for k in app.callback_map if k.startswith(prefix))
        cb = app.callback_map[key]
        from dash._utils import split_callback_id

        spec = lambda d: {"id": d["id"], "property": d["property"], "value": inputs.get(d["id"])}  # noqa: E731
        body = {"output": key, "outputs": split_callback_id(key), "inputs": [spec(i) for i in cb["inputs"]],
                "state": [spec(s) for s in cb["state"]],
                "changedPropIds": [f"{cb['inputs'][0]['id']}.{cb['inputs'][0]['property']}"]}
        return session.post(base + "/_dash-update-component", json=body, headers={"X-CSRFToken": csrf},
                            timeout=timeout)

    return call


def test_the_app_serves_while_the_cli_writes_and_shows_the_new_data(served_copy, shared_data):
    db, app, base = served_copy
    call = _caller(app, base)
    overview = lambda: call("..overview-title.children", {"overview-site": "DEMO"})  # noqa: E731
    before = overview()
    assert before.status_code == 200 and "Concurrent write from the CLI" not in before.text

    results: list[tuple[int, float]] = []
    stop = threading.Event()

    def keep_reading():
        while not stop.is_set():
            t = time.perf_counter()
            r = overview()
            results.append((r.status_code, time.perf_counter() - t, "error" in r.text and "alert" in r.text))

    reader = threading.Thread(target=keep_reading, daemon=True)
    reader.start()
    try:
        time.sleep(0.5)
        raised = subprocess.run([*SITETWIN, "finding", "raise", "--db", str(db), "--site", "DEMO", "--category",
                                 "quality", "--severity", "high", "--title", "Concurrent write from the CLI",
                                 "--json"], capture_output=True, text=True, timeout=300)
        loaded = subprocess.run([*SITETWIN, "bim", "load",
                                 str(shared_data / "ifc/schependomlaan/root_design_parts/ROOT-staal.ifczip"),
                                 "--db", str(db), "--site", "DEMO", "--name", "steel", "--json"],
                                capture_output=True, text=True, timeout=300)
        time.sleep(0.5)
    finally:
        stop.set()
        reader.join(120)
    assert raised.returncode == 0, raised.stderr
    assert loaded.returncode == 0, loaded.stderr
    ref = json.loads(raised.stdout)["ref"]
    # the app kept answering the whole time: the CLI waited for reads, reads waited for the CLI
    assert len(results) >= 5
    assert all(code == 200 for code, _, _ in results), results
    assert not any(alert for _, _, alert in results)
    after = overview()
    assert "Concurrent write from the CLI" in after.text and ref in after.text
    assert "steel" in after.text                       # the new model version is listed
    steel = json.loads(loaded.stdout)
    # the 3D view picks up the new model's elements: the geometry cache is keyed by model ids
    draw = call("..twin-graph.figure", {"twin-mode": "class", "twin-date": 0, "twin-dates": ["2026-05-16"],
                                        "twin-layers": [], "twin-section-x": [0, 1], "twin-section-y": [0, 1],
                                        "twin-section-z": [0, 1], "twin-budget": 300_000, "twin-site": "DEMO"})
    status = json.loads(draw.text)["response"]["twin-view-status"]["children"]
    shown = int(status.split(" elements shown")[0])
    from sitetwin.bim.mesh import load_mesh
    from sitetwin.data.store import open_store

    with open_store(db, read_only=True) as store:
        models = store.scalar("SELECT count(*) FROM current_models WHERE site_code = 'DEMO'")
        drawable = load_mesh(store, site_code="DEMO").element_count
        steel_drawable = load_mesh(store, model_ids=[steel["model_id"]]).element_count
    assert models == 2 and steel_drawable > 10 and shown == drawable
