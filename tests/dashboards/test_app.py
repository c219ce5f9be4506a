"""The app shell: pages and their ids, the 404 page, the serve command, the connection rules."""

from __future__ import annotations

import inspect
import subprocess
import sys
import time

import pytest
import requests

PAGES = {"sitetwin.dashboards.pages.overview": "/", "sitetwin.dashboards.pages.twin": "/twin",
         "sitetwin.dashboards.pages.deviation": "/deviation", "sitetwin.dashboards.pages.progress": "/progress",
         "sitetwin.dashboards.pages.panorama": "/panoramas", "sitetwin.dashboards.pages.hazards": "/hazards",
         "sitetwin.dashboards.pages.not_found_404": "/404"}


def _ids(component):
    """Every component id in a layout tree."""
    out = []
    stack = [component]
    while stack:
        c = stack.pop()
        if isinstance(c, (list, tuple)):
            stack.extend(c)
            continue
        if c is None or isinstance(c, (str, int, float)):
            continue
        if getattr(c, "id", None) is not None:
            out.append(c.id)
        stack.append(getattr(c, "children", None))
    return out


def test_every_page_module_is_registered_with_its_path(app):
    import dash

    registered = {p["module"]: p["path"] for p in dash.page_registry.values()}
    assert {m: registered.get(m) for m in PAGES} == PAGES


def test_every_component_id_of_a_page_starts_with_the_page_name(app):
    import dash

    with app.server.test_request_context("/"):
        for page in dash.page_registry.values():
            name = page["module"].rsplit(".", 1)[-1]
            prefix = "notfound-" if name == "not_found_404" else f"{name}-"
            ids = _ids(page["layout"](site="DEMO"))
            assert ids, name
            bad = [i for i in ids if not (isinstance(i, str) and i.startswith(prefix))
                   and not (isinstance(i, dict) and str(i.get("type", "")).startswith(prefix))]
            assert not bad, (name, bad)


def test_an_unknown_address_gets_the_404_page(app):
    client = app.server.test_client()
    assert client.get("/no/such/page").status_code == 200          # Dash serves the shell; the router picks the page
    import dash

    page = dash.page_registry["sitetwin.dashboards.pages.not_found_404"]
    assert "notfound-title" in _ids(page["layout"]())


def test_a_missing_store_is_refused_with_a_clear_message(tmp_path):
    from sitetwin.dashboards.app import create_app
    from sitetwin.data.errors import StoreError

    with pytest.raises(StoreError, match="no store there"):
        create_app(tmp_path / "missing.duckdb")


def test_demo_serve_can_call_the_serve_command_with_the_store_alone():
    from sitetwin.app.commands.serve import serve

    params = inspect.signature(serve).parameters
    assert all(p.default is not inspect.Parameter.empty for name, p in params.items())
    assert "db" in params and "host" in params and "port" in params


def test_sitetwin_serve_answers_on_its_port_and_stops_cleanly_on_sigterm(site_db, tmp_path):
    port = 18000 + int(time.time()) % 1000
    proc = subprocess.Popen([sys.executable, "-m", "sitetwin.app.cli", "serve", "--db", str(site_db[0]),
                             "--port", str(port), "--site", "DEMO"],
                            stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                # 2 s to connect, then as long as the answer takes: the first answer builds the page (0.8 s on
                # a quiet 2-core machine, bench/serve_start.py); under load that is no failure of serve's
                r = requests.get(f"http://127.0.0.1:{port}/twin?site=DEMO", timeout=(2, 60))
                break
            except requests.ConnectionError:
                time.sleep(0.3)
        else:
            pytest.fail("sitetwin serve did not answer")
        assert r.status_code == 200 and "sitetwin" in r.text
    finally:
        proc.terminate()                   # SIGTERM, straight after the first answer: the warm-up may still run
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    assert f"http://127.0.0.1:{port}/?site=DEMO" in err.replace("\n", "")


def test_reads_share_the_store_and_a_write_waits_for_them(site_db):
    import threading

    from sitetwin.dashboards.connections import read_store, write_store

    db = site_db[0]
    order = []
    with read_store(db) as a, read_store(db) as b:
        assert a.scalar("SELECT count(*) FROM sites") == b.scalar("SELECT count(*) FROM sites") >= 1

        def writer():
            with write_store(db) as w:
                order.append("write")
                w.execute("SELECT 1")

        t = threading.Thread(target=writer)
        t.start()
        time.sleep(0.3)
        order.append("reads done")
    t.join(30)
    assert order == ["reads done", "write"]


def test_the_data_version_changes_when_the_store_is_written(site_db, tmp_path):
    import shutil

    from sitetwin.dashboards.connections import data_version, write_store
    from sitetwin.data.sites import upsert_site

    db = tmp_path / "copy.duckdb"
    shutil.copy2(site_db[0], db)
    before = data_version(db)
    assert data_version(db) == before
    with write_store(db) as store:
        with store.transaction():
            upsert_site(store, "DEMO", name="renamed")
    assert data_version(db) != before


def test_a_page_says_what_it_still_waits_for_and_then_that_a_reload_shows_it(app, site_db, access_helpers):
    import json

    from sitetwin.data.pending import clear_pending, mark_pending

    db = site_db[0]
    client = access_helpers.Client(app)
    callbacks = access_helpers._callbacks(app)
    key = next(k for k in callbacks if "shell-pending.children" in k)

    def call(path, seen):
        values = {("shell-url", "pathname"): path, ("shell-url", "search"): "?site=DEMO",
                  ("shell-pending-seen", "data"): seen}
        resp = client.call(access_helpers._body(key, callbacks[key], lambda i, p: values.get((i, p))))
        assert resp.status_code == 200, resp.get_data(as_text=True)
        return json.loads(resp.get_data(as_text=True))["response"]

    mark_pending(db, "vision", "detections and hazards", pages=("/hazards",), state="running",
                 message="training the demo detector: epoch 3 of 35")
    try:
        out = call("/hazards", [])
        banner = json.dumps(out["shell-pending"]["children"])
        assert "Being prepared" in banner and "epoch 3 of 35" in banner
        assert out["shell-pending"]["className"] == "pending" and out["shell-pending-poll"]["disabled"] is False
        assert out["shell-pending-seen"]["data"] == [["vision", "detections and hazards"]]
        elsewhere = call("/progress", [])         # a page that does not show detections waits for nothing
        assert elsewhere["shell-pending"]["className"] == "pending hidden"
        assert elsewhere["shell-pending-poll"]["disabled"] is True
        clear_pending(db, "vision")
        landed = call("/hazards", [["vision", "detections and hazards"]])
        text = json.dumps(landed["shell-pending"]["children"])
        assert "Ready" in text and "/hazards?site=DEMO" in text and landed["shell-pending-poll"]["disabled"] is True
        assert call("/progress", [["vision", "detections and hazards"]])["shell-pending"]["className"] == "pending"
    finally:
        clear_pending(db, "vision")


def test_an_elements_3d_button_opens_the_twin_on_it_and_no_click_goes_nowhere():
    import dash

    from sitetwin.dashboards.components import twin_href

    button = {"type": "deviation-open", "site": "DEMO", "element": "2O2Fr$t4X7Zf8NOew3FLOH"}
    assert twin_href(button, [None, 1], "deviation") == \
        "/twin?site=DEMO&element=2O2Fr%24t4X7Zf8NOew3FLOH&mode=deviation"
    assert twin_href(button, [1]) == "/twin?site=DEMO&element=2O2Fr%24t4X7Zf8NOew3FLOH"
    for triggered, clicks in ((button, [None, 0]), (None, [1])):
        with pytest.raises(dash.exceptions.PreventUpdate):
            twin_href(triggered, clicks)


def test_a_served_worker_sets_dash_up_without_looking_for_a_caller_in_the_store(site_db, tmp_path, monkeypatch):
    # a worker's setup is no one's request: a caller read there once failed to boot a worker (install check)
    from sitetwin.dashboards import access
    from sitetwin.dashboards.serving import Workbench

    def no_caller_at_boot():
        raise AssertionError("the worker's setup looked for a caller")

    monkeypatch.setattr(access, "current_caller", no_caller_at_boot)
    server = Workbench(site_db[0], port=0, jobs=tmp_path / "jobs", warm=False).load()
    assert server.name and "/" in {r.rule for r in server.url_map.iter_rules()}
