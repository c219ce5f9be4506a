"""Every page in headless Chromium: it loads on the demo site without console errors, its key
interaction works, and a screenshot is kept in tests/artifacts/dashboards/."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from tests.dashboards.conftest import wait_for

pytestmark = pytest.mark.browser
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "dashboards"
# Chromium's software WebGL says so in the console; that is the machine, not the page.
IGNORED = ("GPU stall", "swiftshader", "WebGL", "willReadFrequently", "favicon")


def _open(browser, live, path: str):
    browser.driver.get_log("browser")              # forget what earlier pages logged
    browser.driver.get(live.url + path)


def _wait(browser, condition, timeout=45, what=""):
    return wait_for(condition, timeout, what)


def _maybe(condition, timeout):
    """The condition's value once truthy, or None after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    return None


def _js(browser, script, *args):
    return browser.driver.execute_script(script, *args)


def _errors(browser):
    return [e for e in browser.driver.get_log("browser")
            if e["level"] == "SEVERE" and not any(s in e["message"] for s in IGNORED)]


def _shot(browser, name):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    browser.driver.save_screenshot(str(path))
    assert path.stat().st_size > 10_000
    return path


def _text(browser, element_id, timeout=45):
    return _wait(browser, lambda: browser.driver.find_element(By.ID, element_id).text.strip(), timeout, element_id)


def _num(browser, element_id) -> float:
    """The number of a figure box (its first line; the label follows)."""
    return float(_text(browser, element_id).splitlines()[0])


def _legend(browser):
    """Bin -> element count, from the 3D view's legend ("built (257)")."""
    import re

    text = browser.driver.find_element(By.ID, "twin-legend").text
    return {m[1]: int(m[2]) for m in re.finditer(r"([a-z][a-z ()]*?) \((\d+)\)", text)}


def _drawn(browser):
    """Whether the browser holds the model's mesh (not just the hidden selection trace)."""
    return _js(browser, "const gd = document.querySelector('#twin-graph .js-plotly-plot');"
                        "return !!(gd && gd._fullData && gd._fullData.some((t, i) => i > 0 && t.type === 'mesh3d'"
                        " && t.x && t.x.length));")


def test_the_overview_shows_the_site_its_data_and_what_is_open(browser, live, site_db):
    _open(browser, live, "/?site=DEMO")
    assert "Riverside Tower (test)" in _text(browser, "overview-title")
    fresh = _text(browser, "overview-freshness-table")
    assert "survey" in fresh and "panoramas" in fresh and "days" in fresh
    assert _text(browser, "overview-hazard-count") == "2 open"
    assert _num(browser, "overview-planned-pct") > _num(browser, "overview-actual-pct") > 0
    _shot(browser, "overview")
    assert _errors(browser) == []


def test_the_3d_twin_draws_the_model_and_picking_an_element_opens_its_card(browser, live, site_db):
    _open(browser, live, "/twin?site=DEMO&mode=status&view=plotly")
    status = _text(browser, "twin-view-status")
    assert "elements shown" in status
    _wait(browser, lambda: _drawn(browser), what="the model drawn")
    assert _wait(browser, lambda: _legend(browser).get("built"), what="the legend") > 100
    _js(browser, "const gd = document.querySelector('#twin-graph .js-plotly-plot');"
                 "gd.on('plotly_click', d => { const p = d.points[0], t = gd._fullData[p.curveNumber];"
                 " const f = p.pointNumber;"     # a face of the cell-coloured mesh: report its first corner
                 " window._click = {curve: p.curveNumber, x: t.x[t.i[f]], y: t.y[t.i[f]], z: t.z[t.i[f]]}; });")
    graph = browser.driver.find_element(By.ID, "twin-graph")
    w, h = graph.size["width"], graph.size["height"]
    # the building stands in the middle of the default view; software WebGL picks slowly, so wait per click
    for fx, fy in ((0.45, 0.62), (0.5, 0.55), (0.4, 0.68)):
        _js(browser, "window._click = null;")
        # plotly reports a 3D click from its render loop while the button is down: hold it for a frame or two
        ActionChains(browser.driver).move_to_element_with_offset(graph, int(w * fx), int(h * fy)).pause(0.5) \
            .click_and_hold().pause(1.0).release().perform()
        clicked = _maybe(lambda: _js(browser, "return window._click;"), 30)
        if not clicked or clicked["curve"] == 0:
            continue
        gid = _text(browser, "twin-card-gid", timeout=60)
        break
    else:
        pytest.fail("no click on the model opened an element card")
    click = _js(browser, "return window._click;")
    assert f"element={gid}" in browser.driver.current_url.replace("%24", "$")
    # the card is the element under the cursor: the clicked face lies in its bounding box
    from sitetwin.dashboards.queries import element
    from sitetwin.data.store import open_store

    with open_store(site_db[0], read_only=True) as store:
        el = element(store, "DEMO", gid)
    for axis, v in zip("xyz", (click["x"], click["y"], click["z"])):
        assert el[f"bbox_min_{axis}_m"] - 0.01 <= v <= el[f"bbox_max_{axis}_m"] + 0.01
    selected = _js(browser, "const t = document.querySelector('#twin-graph .js-plotly-plot')._fullData[0];"
                            "return [t.name, t.visible, t.i.length];")
    assert selected[0] == f"selected: {el['ifc_class']}" and selected[1] is not False and selected[2] > 0
    assert _text(browser, "twin-card-status") in ("built", "partially built", "not built", "out of tolerance",
                                                  "not in the survey")
    _shot(browser, "twin-card")
    assert _errors(browser) == []


def test_the_time_slider_recolours_the_model_with_the_earlier_survey(browser, live, site_db):
    from sitetwin.dashboards.components import day_slider
    from sitetwin.dashboards.queries import planned_elements
    from sitetwin.data.store import open_store

    first, last = site_db[1]["surveys"]
    with open_store(site_db[0], read_only=True) as store:
        days, _, start = day_slider(site_db[1]["epochs"],
                                    [r["planned_finish"] for r in planned_elements(store, "DEMO")])
    assert days[start] == last["epoch"]
    _open(browser, live, "/twin?site=DEMO&mode=status&view=plotly")
    _wait(browser, lambda: _drawn(browser) and _legend(browser).get("built"), what="the model drawn")
    before = _legend(browser)
    box = browser.driver.find_element(By.CSS_SELECTOR, "#twin-date input")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(str(days.index(first["epoch"])), Keys.TAB)      # the slider's box commits on leaving it
    after = _wait(browser, lambda: (s := _legend(browser)) != before and s, 90, what="a recoloured figure")
    label = _text(browser, "twin-date-label")
    assert label.startswith(first["epoch"].isoformat())
    # fewer elements stood at the first survey: the built bin shrank and more show as not built,
    # as twin's status counts of the two surveys say
    assert after["built"] == first["statuses"]["built"] < before["built"] == last["statuses"]["built"]
    assert after.get("not built", 0) > before.get("not built", 0)
    assert "date=" + first["epoch"].isoformat() in browser.driver.current_url
    _shot(browser, "twin-first-survey")
    assert _errors(browser) == []


def test_the_deviation_page_maps_the_survey_and_opens_the_worst_element_in_3d(browser, live, site_db):
    _open(browser, live, "/deviation?site=DEMO")
    _wait(browser, lambda: browser.driver.find_element(By.CSS_SELECTOR, "#deviation-heatmap .heatmaplayer, "
                                                                       "#deviation-heatmap .hm"), what="heatmap")
    assert "IfcColumn" in _text(browser, "deviation-tolerance")
    worst = _text(browser, "deviation-worst")
    first_gid = worst.splitlines()[1].split()[0]
    _shot(browser, "deviation")
    button = browser.driver.find_element(By.CSS_SELECTOR, "#deviation-worst button")
    _js(browser, "arguments[0].scrollIntoView({block: 'center'}); arguments[0].click();", button)
    _wait(browser, lambda: "/twin" in browser.driver.current_url, what="navigation to the twin")
    assert _text(browser, "twin-card-gid") == first_gid
    errs = _errors(browser)
    assert errs == [], [e["message"] for e in errs]


def test_the_progress_page_plots_plan_against_surveys_and_plays_the_schedule(browser, live, site_db):
    _open(browser, live, "/progress?site=DEMO")
    planned = _num(browser, "progress-planned-pct")
    actual = _num(browser, "progress-actual-pct")
    assert 0 < actual < planned <= 100
    _wait(browser, lambda: browser.driver.find_element(By.CSS_SELECTOR, "#progress-scurve .scatterlayer .trace"),
          what="S-curve")
    label0 = _text(browser, "progress-day-label")
    browser.driver.find_element(By.ID, "progress-play").click()
    label1 = _wait(browser,
                   lambda: (t := browser.driver.find_element(By.ID, "progress-day-label").text) != label0 and t,
                   what="the next playback frame")
    assert label1.split(":")[0] > label0.split(":")[0]          # ISO days: a later day
    browser.driver.find_element(By.ID, "progress-play").click()  # pause
    _shot(browser, "progress")
    assert _errors(browser) == []


def test_the_panorama_viewer_picks_the_element_behind_a_pixel_and_measures(browser, live, site_db):
    pano = site_db[1]["panoramas"][0]
    _open(browser, live, f"/panoramas?site=DEMO&pano={pano['pano_id']}")
    _wait(browser, lambda: browser.driver.find_element(By.CSS_SELECTOR, "#panorama-viewer image"), what="view")
    assert "detections" in _text(browser, "panorama-status")
    viewer = browser.driver.find_element(By.ID, "panorama-viewer")
    w, h = viewer.size["width"], viewer.size["height"]
    # the floor slab lies below the horizon, straight ahead
    ActionChains(browser.driver).move_to_element_with_offset(viewer, int(w * 0.5), int(h * 0.85)).click().perform()
    picked = _text(browser, "panorama-pick-result")
    gid = _text(browser, "panorama-card-gid")
    assert gid in picked
    from sitetwin.dashboards.queries import element
    from sitetwin.data.store import open_store

    with open_store(site_db[0], read_only=True) as store:
        assert element(store, "DEMO", gid)["ifc_class"] == "IfcSlab"
    _shot(browser, "panorama-pick")
    browser.driver.find_element(By.CSS_SELECTOR, "#panorama-click-mode input[value='measure']").click()
    for fx in (0.35, 0.65):
        ActionChains(browser.driver).move_to_element_with_offset(viewer, int(w * fx), int(h * 0.85)).click().perform()
        time.sleep(1.0)
    result = _text(browser, "panorama-measure-result")
    distance = float(result.split()[1])
    assert 0.3 < distance < 20.0
    browser.driver.find_element(By.CSS_SELECTOR, "#panorama-overlay input[value='class']").click()
    time.sleep(1.5)
    _shot(browser, "panorama-overlay")
    assert _errors(browser) == []


def test_the_hazards_page_shows_counts_evidence_and_elements(browser, live, site_db):
    _open(browser, live, "/hazards?site=DEMO")
    assert _num(browser, "hazards-total") == 2
    _wait(browser, lambda: browser.driver.find_element(By.CSS_SELECTOR, "#hazards-timeline .barlayer .trace"),
          what="timeline")
    loaded = _wait(browser, lambda: _js(browser, "const imgs = [...document.querySelectorAll('#hazards-evidence img')];"
                                                 "return imgs.length "
                                                 "&& imgs.every(i => i.complete && i.naturalWidth > 0) "
                                                 "&& imgs.length;"),
                   what="evidence crops")
    assert loaded == 2
    assert "IfcSlab" in _text(browser, "hazards-element-table")
    _shot(browser, "hazards")
    assert _errors(browser) == []


def test_an_unknown_address_shows_the_404_page(browser, live):
    _open(browser, live, "/no/such/page?site=DEMO")
    assert _text(browser, "notfound-title") == "Page not found"
    _shot(browser, "not-found")
    assert _errors(browser) == []


def test_adding_a_survey_runs_in_the_background_with_progress(browser, site_db, tmp_path):
    """Registration is long work: a background job (twin's add_survey) reports its steps, then the survey is listed.

    The workbench runs as `sitetwin serve` here: jobs are forked from the server process, and this test
    process has already run twin's numba kernels, whose OpenMP pool does not survive a fork.
    """
    import shutil
    import subprocess
    import sys

    import requests

    src = site_db[0]
    db = tmp_path / src.name
    shutil.copy2(src, db)
    shutil.copytree(src.with_name(src.name + ".cache"), db.with_name(db.name + ".cache"))
    inbox = db.with_name(db.name + ".inbox")
    inbox.mkdir()
    scans = sorted(src.parent.glob(f"{src.stem}-scans/*.e57"))
    shutil.copy2(scans[-1], inbox / "june-scan.e57")
    port = 19000 + int(time.time()) % 1000
    proc = subprocess.Popen([sys.executable, "-m", "sitetwin.app.cli", "serve", "--db", str(db), "--port", str(port),
                             "--jobs", str(tmp_path / "jobs")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        server = type("Served", (), {"url": f"http://127.0.0.1:{port}"})
        _wait(browser, lambda: requests.get(server.url + "/login", timeout=2).ok, 60, "sitetwin serve")
        _add_survey_in_the_browser(browser, server, db)
    finally:
        proc.terminate()
        proc.wait(20)


def _add_survey_in_the_browser(browser, server, db):
    _open(browser, server, "/deviation?site=DEMO")
    _wait(browser, lambda: browser.driver.find_element(By.ID, "deviation-tolerance"), what="the deviation page")
    browser.driver.find_element(By.CSS_SELECTOR, "#deviation-add-box summary").click()
    browser.select_dcc_dropdown("#deviation-inbox", "june-scan.e57")
    epoch = browser.driver.find_element(By.ID, "deviation-epoch")
    epoch.send_keys("2026-06-01")
    browser.driver.find_element(By.CSS_SELECTOR, "#deviation-register input[value='none']").click()
    browser.driver.find_element(By.ID, "deviation-add").click()
    steps = set()
    result = _wait(browser, lambda: (steps.add(browser.driver.find_element(By.ID, "deviation-add-step").text) or
                                     browser.driver.find_element(By.ID, "deviation-add-result").text), 180,
                   "the background job's result")
    assert "points" in result and "built" in result
    assert steps - {""}, "the job reported no progress"
    survey_id = result.split()[1].rstrip(":")
    from sitetwin.data.store import open_store

    with open_store(db, read_only=True) as store:
        row = store.one("SELECT epoch, status FROM surveys WHERE survey_id = ?", [survey_id])
    assert str(row["epoch"]) == "2026-06-01" and row["status"] == "analysed"
    _shot(browser, "deviation-survey-added")
    assert _errors(browser) == []


def test_a_regulator_drills_from_the_portfolio_raises_at_a_pixel_and_closes_the_finding(browser, site_db, serve,
                                                                                          store_copy, tmp_path):
    """Portfolio -> site -> panorama pixel -> finding raised -> rectification submitted -> verified closed."""
    from sitetwin.dashboards.app import create_app

    db = store_copy(site_db[0], tmp_path)          # this test writes: a copy of the site
    server = serve(create_app(db))
    _open(browser, server, "/portfolio")
    assert "Jiang'an · 1 site" in _text(browser, "portfolio-site-table")
    _shot(browser, "portfolio")
    link = browser.driver.find_element(By.CSS_SELECTOR, "#portfolio-site-table a[href='/?site=DEMO']")
    _js(browser, "arguments[0].click();", link)
    assert "Riverside Tower (test)" in _text(browser, "overview-title")
    pano = site_db[1]["panoramas"][0]
    _open(browser, server, f"/panoramas?site=DEMO&pano={pano['pano_id']}")
    _wait(browser, lambda: browser.driver.find_element(By.CSS_SELECTOR, "#panorama-viewer image"), what="view")
    viewer = browser.driver.find_element(By.ID, "panorama-viewer")
    ActionChains(browser.driver).move_to_element_with_offset(
        viewer, int(viewer.size["width"] * 0.5), int(viewer.size["height"] * 0.85)).click().perform()
    gid = _text(browser, "panorama-card-gid")
    browser.driver.find_element(By.CSS_SELECTOR, "#panorama-pixel-box summary").click()
    browser.driver.find_element(By.ID, "panorama-pixel-title").send_keys("Slab edge without protection")
    browser.driver.find_element(By.ID, "panorama-pixel-raise").click()
    msg = _wait(browser, lambda: (t := browser.driver.find_element(By.ID, "panorama-pixel-msg").text) and t,
                what="the finding raised")
    assert msg.startswith("Finding DEMO-") and gid in msg
    ref = msg.split()[1]
    from sitetwin.data.store import open_store

    with open_store(db, read_only=True) as store:
        fid = store.scalar("SELECT finding_id FROM findings WHERE site_code || '-' || number = ?", [ref])
    _open(browser, server, f"/findings?site=DEMO&finding={fid}")
    assert _text(browser, "findings-detail-status") == "open"
    assert "DEMO" in _text(browser, "findings-f-site")                # the site of the address is the filter
    browser.driver.find_element(By.ID, "findings-evidence").send_keys("edge protection fitted, photo 12")
    browser.driver.find_element(By.ID, "findings-submit").click()
    _wait(browser, lambda: _text(browser, "findings-detail-status") == "rectification submitted", what="submitted")
    browser.driver.find_element(By.ID, "findings-note").send_keys("seen on the new panorama")
    browser.driver.find_element(By.ID, "findings-verify").click()
    _wait(browser, lambda: _text(browser, "findings-detail-status") == "verified closed", what="closed")
    history = _text(browser, "findings-history")
    assert "rectification submitted" in history and "seen on the new panorama" in history
    _shot(browser, "findings-closed")
    assert _errors(browser) == []
