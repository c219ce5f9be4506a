"""The twin page's WebGL viewer in headless Chromium (software WebGL: SwiftShader): it paints every
triangle of the demo site, a recolour changes the pixels without fetching the geometry again, the
section box cuts the model, a click on an element opens its card, and a browser without WebGL gets the
plotly overview with a message saying why."""

from __future__ import annotations

import numpy as np
import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.actions.action_builder import ActionBuilder
from selenium.webdriver.common.by import By

from tests.dashboards.conftest import wait_for

pytestmark = pytest.mark.browser
IGNORED = ("GPU stall", "swiftshader", "SwiftShader", "WebGL", "willReadFrequently", "favicon")


def _wait(condition, timeout=60, what=""):
    return wait_for(condition, timeout, what)


def _js(driver, script, *args):
    return driver.execute_script(script, *args)


def _stats(driver):
    return _js(driver, "return window.sitetwinViewer ? window.sitetwinViewer.stats('twin-viewer') : null;")


def _painted(driver, at_least=1):
    """The viewer's stats once it has drawn ``at_least`` colourings."""
    return _wait(lambda: (s := _stats(driver)) and (s.get("recolours") or 0) >= at_least and s,
                 what=f"the viewer's colouring number {at_least}")


# the canvas's pixels: how many are not the background, and a colour histogram (4 bits a channel)
PIXELS = """
const v = window.sitetwinViewer.session('twin-viewer').viewer, gl = v.renderer.getContext();
const w = gl.drawingBufferWidth, h = gl.drawingBufferHeight, px = new Uint8Array(w * h * 4);
gl.readPixels(0, 0, w, h, gl.RGBA, gl.UNSIGNED_BYTE, px);
const hist = {}; let model = 0;
for (let i = 0; i < px.length; i += 4) {
  if (px[i] === 0xf4 && px[i + 1] === 0xf6 && px[i + 2] === 0xf8) continue;
  model++;
  const k = (px[i] >> 4) + ',' + (px[i + 1] >> 4) + ',' + (px[i + 2] >> 4);
  hist[k] = (hist[k] || 0) + 1;
}
return {model, hist, total: w * h};
"""


def _pixels(driver):
    return _js(driver, PIXELS)


def _open(driver, live, path):
    driver.get_log("browser")
    driver.get(live.url + path)


def _errors(driver):
    return [e for e in driver.get_log("browser")
            if e["level"] == "SEVERE" and not any(s in e["message"] for s in IGNORED)]


def _site_geometry(site_db):
    from sitetwin.dashboards import queries as q
    from sitetwin.dashboards import scene
    from sitetwin.data.store import open_store

    with open_store(site_db[0], read_only=True) as store:
        return scene.site_geometry(store, "DEMO", q.current_model_ids(store, "DEMO"))


def test_the_viewer_draws_every_triangle_of_the_site_and_a_click_opens_the_elements_card(browser, live, site_db):
    d = browser.driver
    _open(d, live, "/twin?site=DEMO&mode=status")
    stats = _painted(d)
    geom = _site_geometry(site_db)
    total = int(geom.faces.shape[0])
    assert stats["elements"] == geom.element_count > 100
    assert stats["triangles"] == total and stats["viewer"]["trianglesDrawn"] == total
    assert d.find_element(By.ID, "twin-plotly").value_of_css_property("display") == "none"
    assert not d.find_element(By.ID, "twin-webgl-missing").is_displayed()
    status = _wait(lambda: d.find_element(By.ID, "twin-view-status").text, what="the viewer's status line")
    assert f"{total:,} triangles drawn" in status
    legend = d.find_element(By.ID, "twin-viewer-legend").text
    assert "built (" in legend
    pixels = _pixels(d)
    assert pixels["model"] > 0.02 * pixels["total"]
    # a pixel of the model: the viewer's own pick pass over a grid finds one; then a real click there
    canvas = d.find_element(By.CSS_SELECTOR, "#twin-viewer canvas")
    w, h = canvas.size["width"], canvas.size["height"]
    hit = _js(d, """
        const s = window.sitetwinViewer.session('twin-viewer'), v = s.viewer;
        for (const fy of [0.5, 0.45, 0.55, 0.4, 0.6, 0.35, 0.65]) for (const fx of [0.5, 0.45, 0.55, 0.4, 0.6]) {
          const i = v.pickAt(arguments[0] * fx, arguments[1] * fy);
          if (i >= 0) return {fx, fy, index: i, gid: v.header.element_ids[i]};
        }
        return null;""", w, h)
    assert hit, "no element under the middle of the view"
    ActionChains(d).move_to_element_with_offset(canvas, int(w * hit["fx"] - w / 2), int(h * hit["fy"] - h / 2)) \
        .click().perform()
    gid = _wait(lambda: d.find_element(By.ID, "twin-card-gid").text.strip(), what="the element card")
    pick = _stats(d)["lastPick"]            # the click's own pick (a pixel from the probe: maybe a neighbour)
    assert gid == pick["gid"] and pick["index"] >= 0 and pick["ms"] < 5_000
    assert gid in geom.global_ids.tolist()
    assert f"element={gid}" in d.current_url.replace("%24", "$")
    assert _js(d, "return window.sitetwinViewer.session('twin-viewer').viewer.selected;") == pick["index"]
    assert _errors(d) == []


def test_a_recolour_changes_the_pixels_and_fetches_no_geometry_again(browser, live, site_db):
    d = browser.driver
    _open(d, live, "/twin?site=DEMO&mode=status")
    first = _painted(d)
    before = _pixels(d)
    d.find_element(By.CSS_SELECTOR, "#twin-mode input[value='class']").click()
    after_stats = _painted(d, first["recolours"] + 1)
    assert after_stats["lastRecolour"]["mode"] == "class"
    after = _pixels(d)
    changed = sum(abs(before["hist"].get(k, 0) - after["hist"].get(k, 0))
                  for k in set(before["hist"]) | set(after["hist"])) / 2
    assert changed > 0.2 * after["model"], (before["hist"], after["hist"])
    fetched = _js(d, "return performance.getEntriesByType('resource').map(e => e.name)"
                     ".filter(n => n.includes('/viewer/DEMO/geometry.bin')).length;")
    assert fetched == 1
    legend = d.find_element(By.ID, "twin-viewer-legend").text
    assert "IfcWall" in legend or "IfcSlab" in legend


def test_the_storey_filter_and_the_section_box_cut_the_model_and_the_camera_is_kept_in_the_address(
        browser, live, site_db):
    d = browser.driver
    _open(d, live, "/twin?site=DEMO&mode=class")
    _painted(d)
    whole = _pixels(d)["model"]
    # one storey of the building: fewer pixels, and a pick finds nothing of the other storeys
    geom = _site_geometry(site_db)
    lowest = geom.storey[int(geom.lo[:, 2].argmin())]
    frames = _stats(d)["viewer"]["frames"]
    _js(d, "window.dash_clientside.set_props('twin-storeys', {value: [arguments[0]]});", lowest)
    _wait(lambda: _stats(d)["viewer"]["frames"] > frames and _pixels(d)["model"] < 0.9 * whole,
          what="the storey filter hiding the other storeys")
    hidden = _js(d, "const v = window.sitetwinViewer.session('twin-viewer').viewer;"
                    "return v.elementStorey.filter((s, e) => s !== arguments[0] && v.texData[e * 4 + 3] !== 0).length;",
                 lowest)
    assert hidden == 0
    _js(d, "window.dash_clientside.set_props('twin-storeys', {value: []});")
    _wait(lambda: _pixels(d)["model"] > 0.95 * whole, what="every storey back")
    frames = _stats(d)["viewer"]["frames"]
    d.find_element(By.CSS_SELECTOR, "#twin-layers input[value='section']").click()
    # the section box's z range down to its lower fifth: the setup callback owns the sliders, so set it as Dash would
    _js(d, "const s = document.getElementById('twin-section-z');"
           "window.dash_clientside.set_props('twin-section-z', {value: [-1000, arguments[0]]});",
        float(_site_geometry(site_db).lo[:, 2].min() + 0.2 * float(_site_geometry(site_db).size_m.max())))
    _wait(lambda: _stats(d)["viewer"]["frames"] > frames + 1 and _pixels(d)["model"] < 0.8 * whole,
          what="the section box cutting the model")
    # orbit a little: the camera goes into the address's hash
    canvas = d.find_element(By.CSS_SELECTOR, "#twin-viewer canvas")
    ActionChains(d).move_to_element(canvas).click_and_hold().move_by_offset(60, 10).release().perform()
    assert _wait(lambda: "#camera=" in d.current_url, what="the camera in the address")


# the pixel under a site-frame point (the canvas's drawing buffer, rows from the bottom)
PIXEL_AT = """
const v = window.sitetwinViewer.session(arguments[0]).viewer, gl = v.renderer.getContext();
v.render();
const p = v.project(arguments[1]);
if (!p) return null;
const dpr = v.renderer.getPixelRatio(), x = Math.round(p.x * dpr);
const y = gl.drawingBufferHeight - 1 - Math.round(p.y * dpr);
const px = new Uint8Array(4);
gl.readPixels(x, y, 1, 1, gl.RGBA, gl.UNSIGNED_BYTE, px);
return {x: p.x, y: p.y, rgb: '#' + Array.from(px.slice(0, 3)).map(c => c.toString(16).padStart(2, '0')).join('')};
"""


def test_the_sensors_layer_draws_each_device_and_lights_the_host_of_a_warned_one(browser, live, site_db):
    d = browser.driver
    sensors = site_db[1]["sensors"]
    _open(d, live, "/twin?site=DEMO&mode=class")          # the sensors layer is on by default
    _painted(d)
    shown = _wait(lambda: (s := _stats(d).get("sensors")) and s["devices"] and s, what="the sensors drawn")
    assert shown == {"devices": len(sensors["devices"]), "lit": 1}
    session = "window.sitetwinViewer.session('twin-viewer')"
    host = _js(d, f"const s = {session}; return s.sensors.lit[0];")
    assert _js(d, f"return {session}.viewer.header.element_ids[arguments[0]];", host) == sensors["warned_host"]
    # the host takes the warning colour over its class colour, solid
    assert _js(d, f"return Array.from({session}.viewer.texData.slice(arguments[0] * 4, arguments[0] * 4 + 4));",
               host) == [255, 110, 0, 255]
    assert "sensor warning on element (1)" in d.find_element(By.ID, "twin-viewer-legend").text
    # the warned device's marker is drawn at its position, in its severity's colour, over the model
    warned = _js(d, f"return {session}.sensors.devices.find(x => x.warned);")
    assert warned["device_id"] == sensors["warned_device"]
    pixel = _js(d, PIXEL_AT, "twin-viewer", warned["position"])
    assert pixel and pixel["rgb"] == warned["colour"], pixel
    # hovering it names the device
    canvas = d.find_element(By.CSS_SELECTOR, "#twin-viewer canvas")
    left, top = _js(d, "const r = arguments[0].getBoundingClientRect(); return [r.left, r.top];", canvas)
    move = ActionBuilder(d)
    move.pointer_action.move_to_location(round(left + pixel["x"]), round(top + pixel["y"]))
    move.perform()
    tip = _wait(lambda: d.find_element(By.CSS_SELECTOR, "#twin-viewer .sitetwin-viewer-tooltip").text,
                what="the device's tooltip")
    assert tip.startswith(sensors["warned_device"])
    # the layer off: no markers, the host back in its class colour
    class_rgba = _js(d, f"return Array.from({session}.colours.rgba.slice(arguments[0] * 4, arguments[0] * 4 + 4));",
                     host)
    d.find_element(By.CSS_SELECTOR, "#twin-layers input[value='sensors']").click()
    _wait(lambda: _stats(d)["sensors"] == {"devices": 0, "lit": 0}, what="the sensors layer turned off")
    assert _js(d, f"return {session}.viewer.overlayScene.children.length;") == 0
    assert _js(d, f"return Array.from({session}.viewer.texData.slice(arguments[0] * 4, arguments[0] * 4 + 4));",
               host) == class_rgba
    assert "sensor warning" not in d.find_element(By.ID, "twin-viewer-legend").text
    assert _errors(d) == []


def _panorama_stats(driver):
    return _js(driver, "return window.sitetwinViewer ? window.sitetwinViewer.stats('panorama-model') : null;")


def test_the_panorama_page_shows_the_model_with_the_current_cameras_marker_that_follows_a_move(
        browser, live, site_db):
    from sitetwin.dashboards import queries as q
    from sitetwin.data.store import open_store
    from sitetwin.oversight.bcf.camera import camera_from_panorama
    from sitetwin.panorama.pano_store import get_panorama

    with open_store(site_db[0], read_only=True) as store:
        posed = [p for p in q.panoramas(store, "DEMO") if p["position_m"]]
        first, second = posed[0], posed[-1]
        T_second = get_panorama(store, second["pano_id"]).T_model_from_camera
    assert np.linalg.norm(np.subtract(first["position_m"], second["position_m"])) > 1.0
    d = browser.driver
    _open(d, live, f"/panoramas?site=DEMO&pano={first['pano_id']}")
    stats = _wait(lambda: (s := _panorama_stats(d)) and s.get("firstPaint") and s.get("camera") and s,
                  what="the panorama page's 3D panel")
    assert stats["elements"] > 100 and stats["viewer"]["trianglesDrawn"] == stats["triangles"]
    assert stats["camera"]["position"] == pytest.approx(first["position_m"], abs=1e-3)
    assert "this panorama's camera" in d.find_element(By.ID, "panorama-model-status").text
    # the marker is drawn over the model at the camera, in its colour
    pixel = _js(d, PIXEL_AT, "panorama-model", stats["camera"]["position"])
    assert pixel and pixel["rgb"] == "#e11d48", pixel
    # the minimap still draws and moves between panoramas; the marker follows
    assert d.find_element(By.CSS_SELECTOR, "#panorama-minimap .scatterlayer")
    moves = stats["cameraMoves"]
    _js(d, "window.dash_clientside.set_props('panorama-select', {value: arguments[0]});", second["pano_id"])
    moved = _wait(lambda: (s := _panorama_stats(d))["cameraMoves"] > moves
                  and s["camera"]["position"] == pytest.approx(second["position_m"], abs=1e-3) and s,
                  what="the marker at the other panorama")
    expected = camera_from_panorama(T_second, 0.0, 0.0)
    assert moved["camera"]["direction"] == pytest.approx(expected["direction"], abs=1e-4)
    _wait(lambda: second["name"] in d.find_element(By.ID, "panorama-info").text, what="the minimap's panorama info")
    # turning the view turns the arrow: 30 degrees to the right, about the vertical
    d.find_element(By.ID, "panorama-right").click()
    turned = _wait(lambda: (s := _panorama_stats(d))["camera"]["direction"] != moved["camera"]["direction"] and s,
                   what="the arrow turning with the view")
    a, b = np.array(moved["camera"]["direction"]), np.array(turned["camera"]["direction"])
    assert np.degrees(np.arccos(np.clip(a @ b, -1, 1))) == pytest.approx(30.0, abs=0.5)
    assert np.cross(a, b)[2] < 0                    # clockwise seen from above: to the right
    assert _js(d, "return performance.getEntriesByType('resource').map(e => e.name)"
                  ".filter(n => n.includes('/viewer/DEMO/geometry.bin')).length;") == 1
    assert _errors(d) == []


def test_a_browser_without_webgl_gets_a_message_and_the_plotly_overview(live, site_db):
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-webgl", "--disable-3d-apis"):
        options.add_argument(arg)
    d = webdriver.Chrome(options=options)
    try:
        d.set_window_size(1400, 1000)
        d.get(live.url + "/twin?site=DEMO&mode=status")
        message = _wait(lambda: d.find_element(By.ID, "twin-webgl-missing").is_displayed()
                        and d.find_element(By.ID, "twin-webgl-missing").text, what="the no-WebGL message")
        assert "WebGL" in message
        _wait(lambda: "elements shown" in d.find_element(By.ID, "twin-view-status").text, what="the plotly status")
        assert d.find_element(By.ID, "twin-plotly").is_displayed()
        assert not d.find_element(By.ID, "twin-viewer").is_displayed()
        assert _js(d, "return !!window.sitetwinViewer;") is False       # the viewer's script was never loaded
    finally:
        d.quit()
