"""Benchmark: the workbench's 3D twin page (first meaningful paint, payload) and every callback's server time.

Sites, built once into bench/results/dashboard-work/ (reused by later runs; --rebuild starts over):
  demo   the demo building (647 elements, 62k triangles) with two simulated surveys, panoramas,
         detections, hazards and sensors (the workbench tests' site generator)
  big    a generated building of >= 10,000 elements, plus 100 surveys (1 M element_deviation rows,
         per-point file for the latest), 1,000,000 detections, 10,000 hazards and two panoramas,
         written straight into the tables
Two ways of drawing the model, compared in the same run on the same geometry:
  sitetwin  one cell-coloured Mesh3d per opacity, level of detail by size within the default
            60k-triangle budget (see-through ghosts as boxes), typed arrays (what the workbench serves)
  naive     one Mesh3d per element at full detail, arrays as JSON number lists
Measured: the figure payload (bytes on the wire); first meaningful paint in headless Chromium (from
navigation start until the mesh is drawn), cold (first request after the server starts: geometry
prepared) and warm (median of 3); server time of every data callback after the server's warm-up (Flask test
client, first call and median of 5, no network).
The same page's first paint in zh-CN against English (issue 16): on the same warm server, alternating
English and Chinese navigations (?lang=), median and spread of each.
Targets: paint < 3 s (demo) and < 6 s (big); payload < 15 MB (big); each callback < 300 ms (big); zh-CN
paint within 10 % of English.

    python bench/dashboard.py [--rebuild] [--skip-naive-big]
    python bench/dashboard.py --lang-only        (only the zh-CN against English paint, demo site)
    python bench/dashboard.py --viewer [--repeat 3]   (the WebGL viewer against the plotly twin, issue 18)

--viewer: the twin page's WebGL viewer (every element in full) against today's plotly twin (?view=plotly,
60k-triangle budget) on the same warm server, in headless Chromium with software WebGL (SwiftShader), on
the real Schependomlaan models (bench/viewer_geometry.py's "real" site: 8 design parts + steel + prefab +
low-rise) and a generated 3 M-triangle, 30,000-element tower ("gen"). Per repeat, alternating which view
goes first: first paint (navigation start -> the coloured model drawn and finished on the GPU), recolour
status -> deviation (the radio's click -> drawn; clicked 2 s after the paint, as a reader would, by when the
viewer has fetched the day's other colourings ahead and built its picking BVH), pick (the click's ray through
the BVH, and click -> the element card shown), bytes fetched, JS heap, one frame's drawing time.
Targets: paint <= 3 s (real), recolour <= 300 ms, pick <= 100 ms.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import statistics
import time
from pathlib import Path

import numpy as np
from _common import RESULTS, machine, print_table, save

WORK = RESULTS / "dashboard-work"
BIG_SPEC = dict(storeys=18, bays_x=12, bays_y=7)      # about 10,200 elements with geometry
BIG_SURVEYS = 100
BIG_DETECTIONS = 1_000_000
PAINT_TIMEOUT_S = 180.0
TARGETS = {"paint_demo_s": 3.0, "paint_big_s": 6.0, "payload_big_mb": 15.0, "callback_ms": 300.0,
           "paint_zh_vs_en": 1.10}          # zh-CN's median paint at most 10 % above English's
LANG_REPEATS = 6              # navigations per language, alternating


# --------------------------------------------------------------------------------------
# the sites

def build_demo(rebuild: bool) -> Path:
    db = WORK / "demo" / "demo.duckdb"
    done = db.with_name("complete")          # written last: a half-built site is built again
    if done.exists() and not rebuild:
        return db
    shutil.rmtree(db.parent, ignore_errors=True)
    from sitetwin.app.demo import run_demo

    run_demo(db, db.parent / "work", stages=["model"])
    from sitetwin.synth import populate_site

    populate_site(db)
    done.write_text("ok\n")
    return db


def build_big(rebuild: bool) -> Path:
    db = WORK / "big" / "big.duckdb"
    done = db.with_name("complete")
    if done.exists() and not rebuild:
        return db
    shutil.rmtree(db.parent, ignore_errors=True)
    db.parent.mkdir(parents=True)
    from sitetwin.bim.load import load_model
    from sitetwin.data.sites import upsert_site
    from sitetwin.data.store import open_store
    from sitetwin.synth import DemoBuildingSpec, build_demo_building

    t = time.perf_counter()
    info = build_demo_building(db.parent / "big.ifc", DemoBuildingSpec(**BIG_SPEC))
    with open_store(db) as store:
        with store.transaction():
            upsert_site(store, "BIG", name="Big generated tower", district="Jiang'an", city="Wuhan")
        report = load_model(store, info.path, site_code="BIG", name="structure")
    print(f"big model: {report.element_count} elements, {report.triangle_count} triangles "
          f"({time.perf_counter() - t:.0f} s)", flush=True)
    _big_surveys(db, report.model_id)
    _big_detections(db, report.model_id)
    _big_panoramas(db, report.model_id)
    done.write_text("ok\n")
    return db


def _big_surveys(db: Path, model_id: str) -> None:
    """100 survey epochs over the schedule: statuses follow the plan with delays; the latest has points."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from sitetwin.bim.mesh import load_mesh
    from sitetwin.data.store import open_store
    from sitetwin.twin.sampling import sample_surface
    from sitetwin.twin.survey_store import insert_rows, points_path

    rng = np.random.default_rng(1)
    with open_store(db) as store:
        els = store.df("SELECT global_id, ifc_class, storey FROM elements WHERE model_id = ? AND has_geometry",
                       [model_id])
        finish = {r["global_id"]: r["finish"].date() for r in store.rows(
            "SELECT te.global_id, max(t.finish) AS finish FROM task_elements te JOIN tasks t "
            "USING (schedule_id, task_id) GROUP BY 1")}
        mesh = load_mesh(store, model_ids=[model_id])
    start, end = min(finish.values()), max(finish.values())
    epochs = [start + dt.timedelta(days=int(d)) for d in np.linspace(0, (end - start).days + 20, BIG_SURVEYS)]
    delay = rng.integers(0, 25, len(els))
    planned = np.array([finish.get(g, start) for g in els["global_id"]], dtype="datetime64[D]")
    done = planned + delay.astype("timedelta64[D]")
    surveys, frames = [], []
    for i, epoch in enumerate(epochs):
        sid = f"SBIG{i:08d}"
        e = np.datetime64(epoch, "D")
        built = done <= e
        status = np.where(built, np.where(rng.random(len(els)) < 0.03, "out_of_tolerance", "built"), "not_built")
        mean = np.where(built, rng.normal(0, 3, len(els)), np.nan)
        frames.append(pd.DataFrame({
            "site_code": "BIG", "survey_id": sid, "model_id": model_id, "global_id": els["global_id"],
            "ifc_class": els["ifc_class"], "storey": els["storey"], "planned": planned <= e,
            "points": np.where(built, rng.integers(50, 3000, len(els)), 0), "coverage": np.where(built, 0.6, 0.0),
            "visible_share": 0.4, "mean_mm": mean, "median_mm": mean, "p95_mm": np.abs(mean) * 2 + 3,
            "max_mm": mean * 3, "status": status}))
        surveys.append({"survey_id": sid, "site_code": "BIG", "name": f"weekly scan {epoch}",
                        "model_ids": json.dumps([model_id]), "epoch": epoch, "registration_method": "transform",
                        "T_model_from_survey": json.dumps(np.eye(4).tolist()), "fitness": 0.9, "rmse_m": 0.004,
                        "point_count": 1_000_000, "noise_mm": 3.0, "loa": "LOA30", "status": "analysed"})
    latest = surveys[-1]["survey_id"]
    sample = sample_surface(mesh, spacing_m=0.05, max_points=1_000_000, seed=2)
    dist = rng.normal(0, 0.003, len(sample.points)).astype(np.float32)
    with open_store(db) as store:
        path = points_path(store, latest)
        path.parent.mkdir(parents=True, exist_ok=True)
        gids = mesh.global_ids
        pq.write_table(pa.table({
            "x_m": sample.points[:, 0].astype(np.float32), "y_m": sample.points[:, 1].astype(np.float32),
            "z_m": sample.points[:, 2].astype(np.float32), "r": np.full(len(dist), 160, np.uint8),
            "g": np.full(len(dist), 160, np.uint8), "b": np.full(len(dist), 160, np.uint8),
            "intensity": np.full(len(dist), 0.5, np.float32), "scan_index": np.zeros(len(dist), np.int16),
            "distance_m": dist, "element": sample.element.astype(np.int32),
            "model_id": pa.array(np.full(len(dist), model_id)), "global_id": pa.array(gids[sample.element]),
            "cluster": np.full(len(dist), -1, np.int32)}), path)
        surveys[-1]["points_file"] = str(path.relative_to(Path(store.cache_dir)))
        with store.transaction():
            insert_rows(store, "surveys", pd.DataFrame(surveys))
            insert_rows(store, "element_deviation", pd.concat(frames, ignore_index=True))
            last = frames[-1]
            hist = last[last["points"] > 0].loc[:, ["site_code", "survey_id", "model_id", "global_id"]]
            hist = hist.loc[hist.index.repeat(8)].reset_index(drop=True)
            hist["bin_lo_mm"] = np.tile(np.arange(-8, 8, 2.0), len(hist) // 8)
            hist["bin_hi_mm"] = hist["bin_lo_mm"] + 2.0
            hist["points"] = rng.integers(1, 200, len(hist))
            insert_rows(store, "element_histograms", hist)
    print(f"big surveys: {BIG_SURVEYS} epochs, {sum(len(f) for f in frames):,} element rows, "
          f"{len(dist):,} points in the latest", flush=True)


def _big_detections(db: Path, model_id: str) -> None:
    import pandas as pd

    from sitetwin.data.store import open_store
    from sitetwin.oversight.findings import raise_finding

    rng = np.random.default_rng(3)
    n = BIG_DETECTIONS
    with open_store(db) as store:
        els = store.df("SELECT global_id, ifc_class, storey FROM elements WHERE model_id = ? AND has_geometry",
                       [model_id])
        pick = rng.integers(0, len(els), n)
        t0 = dt.datetime(2026, 3, 2, 7)
        classes = np.array(["person", "hard_hat", "head", "vest", "machinery", "formwork", "rebar", "concrete"])
        frame = pd.DataFrame({
            "detection_id": [f"D{i:015x}" for i in range(n)], "site_code": "BIG", "source_kind": "camera",
            "source_ref": "cam", "frame_index": np.arange(n, dtype=np.int64) % 100_000,
            "captured_at": pd.to_datetime(t0) + pd.to_timedelta(rng.integers(0, 120 * 86400, n), unit="s"),
            "class_name": classes[rng.integers(0, len(classes), n)], "confidence": rng.uniform(0.3, 1, n),
            "x1": 10.0, "y1": 10.0, "x2": 50.0, "y2": 120.0, "camera_id": [f"cam-{i % 8}" for i in range(n)],
            "model_id": model_id, "global_id": els["global_id"].to_numpy()[pick],
            "ifc_class": els["ifc_class"].to_numpy()[pick], "storey": els["storey"].to_numpy()[pick],
            "x_m": rng.uniform(0, 60, n), "y_m": rng.uniform(0, 40, n), "z_m": rng.uniform(0, 45, n),
            "run_id": "RBIG00000001"})
        hz = frame.sample(10_000, random_state=4)
        rules = np.array(["no_hard_hat", "no_vest", "unprotected_edge", "machinery_zone"])
        hazards = pd.DataFrame({
            "hazard_id": [f"H{i:015x}" for i in range(len(hz))], "site_code": "BIG",
            "rule": rules[rng.integers(0, 4, len(hz))], "severity": np.array(["medium", "high", "critical"])[
                rng.integers(0, 3, len(hz))], "message": "generated", "started_at": hz["captured_at"].to_numpy(),
            "ended_at": hz["captured_at"].to_numpy(), "duration_s": 0.0, "source_kind": "camera",
            "camera_id": hz["camera_id"].to_numpy(), "storey": hz["storey"].to_numpy(), "model_id": model_id,
            "global_id": hz["global_id"].to_numpy(), "x_m": hz["x_m"].to_numpy(), "y_m": hz["y_m"].to_numpy(),
            "z_m": hz["z_m"].to_numpy(), "detection_ids": "[]", "evidence": "{}", "run_id": "RBIG00000001"})
        with store.transaction():
            store.insert_frame("detections", frame)
            store.insert_frame("hazards", hazards)
            for i in range(100):
                raise_finding(store, site_code="BIG", category="safety", severity="high", title=f"finding {i}",
                              global_id=str(els["global_id"].iloc[i * 37 % len(els)]), source="bench")
    print(f"big detections: {n:,} detections, {len(hazards):,} hazards, 100 findings", flush=True)


def _big_panoramas(db: Path, model_id: str) -> None:
    from sitetwin.bim.mesh import load_mesh
    from sitetwin.data.store import open_store
    from sitetwin.panorama.camera import pose_matrix
    from sitetwin.panorama.io import save_image
    from sitetwin.panorama.pano_store import add_panorama, compute_element_map
    from sitetwin.panorama.render import RayScene, render_equirect

    with open_store(db) as store:
        mesh = load_mesh(store, model_ids=[model_id])
        lo, hi = mesh.bounds()
        scene = RayScene(mesh)
        for j, x in enumerate((lo[0] + 4.5, hi[0] - 4.5)):
            T = pose_matrix([x, (lo[1] + hi[1]) / 2, 1.6], yaw_deg=0.0 if j == 0 else 180.0)
            img = render_equirect(mesh, T, 2048, 1024, seed=j, scene=scene)
            path = save_image(db.parent / f"pano-{j}.jpg", img.image)
            rep = add_panorama(store, path, model_id=model_id, pose=T, captured_at=dt.datetime(2026, 6, 1, 10, j),
                               name=f"ground floor {j}")
            compute_element_map(store, rep.pano_id, mesh=mesh, scene=scene)


# --------------------------------------------------------------------------------------
# serving: the workbench and the naive figure

def naive_figure(db: Path, site: str) -> dict:
    """One Mesh3d per element at full detail, coloured by status, arrays as JSON lists (plotly's usual path)."""
    from sitetwin.dashboards.connections import read_store
    from sitetwin.dashboards.queries import current_model_ids, element_status, survey_as_of
    from sitetwin.dashboards.scene import site_geometry
    from sitetwin.panorama.overlay import STATUS_COLORS

    with read_store(db) as store:
        geom = site_geometry(store, site, current_model_ids(store, site))
        st = element_status(store, survey_as_of(store, site, None))
    traces = []
    for e in range(geom.element_count):
        f = geom.faces[geom.face_start[e]:geom.face_start[e + 1]]
        if not len(f):
            continue
        lo = int(geom.vert_lo[e])
        v = geom.vertices[lo:int(geom.vert_hi[e])]
        c = STATUS_COLORS.get(st.get((geom.model_ids[e], geom.global_ids[e]), {}).get("status", "unknown"),
                              STATUS_COLORS["unknown"])
        traces.append({"type": "mesh3d", "x": v[:, 0].tolist(), "y": v[:, 1].tolist(), "z": v[:, 2].tolist(),
                       "i": (f[:, 0] - lo).tolist(), "j": (f[:, 1] - lo).tolist(), "k": (f[:, 2] - lo).tolist(),
                       "color": f"rgb{tuple(c)}", "name": str(geom.global_ids[e]), "flatshading": True,
                       "showlegend": False})
    return {"data": traces, "layout": {"scene": {"aspectmode": "data"}, "margin": {"l": 0, "r": 0, "t": 0, "b": 0}}}


def naive_app(db: Path):
    """A minimal Dash app that serves the naive figure for ?site=CODE (the baseline, not part of sitetwin)."""
    import dash
    from dash import Input, Output, dcc, html

    app = dash.Dash(__name__ + ".naive", title="naive")
    app.layout = html.Div([dcc.Location(id="naive-url"), dcc.Graph(id="naive-graph", style={"height": "74vh"})])

    @app.callback(Output("naive-graph", "figure"), Input("naive-url", "search"))
    def draw(search):
        site = (search or "").split("site=")[-1]
        return naive_figure(db, site)

    return app


PAINTED = """
window.__paint = null;
(function poll() {
  const gd = document.querySelector('#%s .js-plotly-plot');
  const ok = gd && gd._fullLayout && gd._fullLayout.scene && gd._fullLayout.scene._scene &&
             gd._fullData && gd._fullData.some(t => t.type === 'mesh3d' && t.visible !== false && t.x && t.x.length);
  if (ok) { requestAnimationFrame(() => requestAnimationFrame(() => { window.__paint = performance.now(); })); }
  else { setTimeout(poll, 20); }
})();
"""


def paint_seconds(driver, url: str, graph_id: str) -> float | None:
    """Navigation start -> two animation frames after the mesh is in the figure (None: not within the timeout)."""
    script = driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument",
                                    {"source": "document.addEventListener('DOMContentLoaded', () => {"
                                               + PAINTED % graph_id + "});"})
    try:
        driver.get(url)
        from selenium.common.exceptions import TimeoutException

        deadline = time.monotonic() + PAINT_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                ms = driver.execute_script("return window.__paint;")
            except TimeoutException:          # the page is busy drawing
                continue
            if ms:
                return ms / 1000.0
            time.sleep(0.05)
        return None
    finally:
        driver.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument", {"identifier": script["identifier"]})


def lang_paint(driver, base_url: str, site: str, label: str, repeats: int = LANG_REPEATS) -> dict:
    """First paint of the 3D twin page in English and in zh-CN on one warm server, the languages alternating
    (and which goes first alternating too) so that drift in the machine's load falls on both alike."""
    def url(lang):
        return f"{base_url}/twin?site={site}&mode=status&lang={lang}&view=plotly"

    for lang in ("zh-CN", "en"):                              # both languages' catalogs read, geometry warm
        if paint_seconds(driver, url(lang), "twin-graph") is None:
            raise SystemExit(f"the twin page in {lang} did not paint within {PAINT_TIMEOUT_S:.0f} s: {url(lang)}")
    runs: dict[str, list[float]] = {"en": [], "zh-CN": []}
    html_lang: dict[str, set[str]] = {"en": set(), "zh-CN": set()}
    for n in range(repeats):
        for lang in (("en", "zh-CN") if n % 2 == 0 else ("zh-CN", "en")):
            s = paint_seconds(driver, url(lang), "twin-graph")
            if s is not None:
                runs[lang].append(s)
            html_lang[lang].add(driver.execute_script("return document.documentElement.lang;") or "")
    en, zh = runs["en"], runs["zh-CN"]
    ratio = statistics.median(zh) / statistics.median(en) if en and zh else None
    return {"site": label, "en_median_s": statistics.median(en) if en else None,
            "en_spread_s": (max(en) - min(en)) if en else None,
            "zh_median_s": statistics.median(zh) if zh else None, "zh_spread_s": (max(zh) - min(zh)) if zh else None,
            "runs": f"{len(en)}+{len(zh)}", "zh_vs_en": ratio,
            "html_lang": ",".join(sorted(html_lang["en"])) + " / " + ",".join(sorted(html_lang["zh-CN"])),
            "ok": ratio is not None and ratio <= TARGETS["paint_zh_vs_en"] and html_lang["zh-CN"] == {"zh-CN"}}


LANG_COLUMNS = ["site", "en_median_s", "en_spread_s", "zh_median_s", "zh_spread_s", "runs", "zh_vs_en", "html_lang",
                "ok"]


def lang_only(rebuild: bool) -> None:
    """Only the zh-CN against English first paint, on the demo site."""
    from sitetwin.dashboards.app import BackgroundServer, create_app
    from sitetwin.data.store import open_store

    load_before = machine()["load_avg_1m"]
    db = build_demo(rebuild)
    with open_store(db):                  # a site built by an older sitetwin: its schema brought up to date
        pass
    driver = browser()
    served = BackgroundServer(create_app(db))
    try:
        rows = [lang_paint(driver, served.url, "DEMO", "demo")]
    finally:
        served.stop()
        driver.quit()
    load_after = machine()["load_avg_1m"]
    print_table(rows, LANG_COLUMNS, "first paint of the 3D twin page, zh-CN against English, same server, "
                f"alternating (load average {load_before:.1f} before, {load_after:.1f} after)")
    save("dashboard-lang", {"targets": TARGETS, "lang_paint": rows, "load_avg_before": load_before,
                            "load_avg_after": load_after})


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options

    opts = Options()
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        opts.add_argument(a)
    driver = webdriver.Chrome(options=opts)
    driver.set_script_timeout(30)
    driver.set_page_load_timeout(PAINT_TIMEOUT_S)
    return driver


# --------------------------------------------------------------------------------------
# the WebGL viewer against the plotly twin (issue 18)

VIEWER_TARGETS = {"paint_real_s": 3.0, "recolour_ms": 300.0, "pick_ms": 100.0}
IDLE_S = 2.0                  # after the first paint, before the recolour (both views)
VIEWER_STATS = "return window.sitetwinViewer ? window.sitetwinViewer.stats('twin-viewer') : null;"
# the model's bytes as fetched (transfer: gzip on the wire; decoded: the binary) and the JS heap
VIEWER_BYTES = """
const e = performance.getEntriesByType('resource').filter(r => r.name.includes('/viewer/'));
const sum = (f, k) => e.filter(r => r.name.includes(f)).reduce((a, r) => a + (r[k] || 0), 0);
return {geometry_transfer: sum('geometry.bin', 'transferSize'),
        geometry_decoded: sum('geometry.bin', 'decodedBodySize'),
        colours_transfer: sum('colours.json', 'transferSize'), points_transfer: sum('points.bin', 'transferSize'),
        script_transfer: performance.getEntriesByType('resource').filter(r => r.name.includes('sitetwin-viewer.js'))
          .reduce((a, r) => a + r.transferSize, 0),
        heap: performance.memory ? performance.memory.usedJSHeapSize : null};
"""
# plotly: the time the figure of a new key is drawn (two frames after it is in the graph)
PLOTLY_KEY = "const gd = document.querySelector('#twin-graph .js-plotly-plot'); " \
             "return gd && gd.layout && gd.layout.meta ? gd.layout.meta.key : null;"


# viewer_geometry.py's "gen" tower (30 storeys, 14 x 11 bays) has about 26,000 elements and 1.5 M triangles;
# this one (30 storeys, 20 x 16 bays), about 54,000 elements and 3 M triangles, is the 3 M-triangle
# model (the generator gives about 56 triangles an element: 3 M triangles come with more than 30,000 elements)
GEN3M_SPEC = dict(storeys=30, bays_x=20, bays_y=16)


def build_gen3m(rebuild: bool) -> Path:
    db = RESULTS / "viewer-work" / "gen3m" / "gen3m.duckdb"
    done = db.with_name("complete")
    if done.exists() and not rebuild:
        return db
    from sitetwin.bim.load import load_model
    from sitetwin.data.sites import upsert_site
    from sitetwin.data.store import open_store
    from sitetwin.synth import DemoBuildingSpec, build_demo_building

    ifc = db.with_name("gen3m.ifc")
    if rebuild or not ifc.exists():
        db.parent.mkdir(parents=True, exist_ok=True)
        build_demo_building(ifc, DemoBuildingSpec(**GEN3M_SPEC))
    db.unlink(missing_ok=True)
    with open_store(db) as store:
        with store.transaction():
            upsert_site(store, "G3M", name="Generated tower (3 M triangles)", district="Jiang'an", city="Wuhan")
        load_model(store, ifc, site_code="G3M", name="structure")
    done.write_text("ok\n")
    return db


def viewer_browser():
    """Headless Chromium with software WebGL as Chromium wants it asked for (SwiftShader)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options

    opts = Options()
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000",
              "--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--enable-precise-memory-info"):
        opts.add_argument(a)
    driver = webdriver.Chrome(options=opts)
    driver.execute_cdp_cmd("Network.enable", {})          # every page load a first visit: nothing from the cache
    driver.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": True})
    driver.set_script_timeout(PAINT_TIMEOUT_S)
    driver.set_page_load_timeout(PAINT_TIMEOUT_S)
    return driver


def _until(fn, timeout=PAINT_TIMEOUT_S, step=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = fn()
        except Exception:            # the page is busy drawing
            value = None
        if value:
            return value
        time.sleep(step)
    return None


def viewer_run(driver, base: str, site: str) -> dict:
    """One page load of the WebGL viewer: paint, recolour status -> deviation, a pick and its card."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    driver.get(f"{base}/twin?site={site}&mode=status")
    stats = _until(lambda: (s := driver.execute_script(VIEWER_STATS)) and s.get("recolours") and s)
    if not stats:
        return {"view": "webgl", "error": "no paint", "ok": False}
    out = {"view": "webgl", "paint_s": stats["firstPaint"] / 1000, "elements": stats["elements"],
           "triangles_drawn": stats["viewer"]["trianglesDrawn"], "model_triangles": stats["triangles"],
           "geometry_fetch_ms": stats["fetchMs"], "parse_upload_ms": stats["parseMs"],
           "render_ms": stats["lastRecolour"].get("renderMs")}
    time.sleep(IDLE_S)        # as a reader looks first: the picking BVH and the day's other colourings are ready
    out.update(driver.execute_script(VIEWER_BYTES))
    t0 = driver.execute_script("const t = performance.now();"
                               "document.querySelector(\"#twin-mode input[value='deviation']\").click(); return t;")
    s = _until(lambda: (s := driver.execute_script(VIEWER_STATS))["recolours"] > stats["recolours"] and s)
    out["recolour_ms"] = (s["lastRecolour"]["at"] - t0) if s else None
    out["recolour_fetch_ms"] = s["lastRecolour"]["fetchMs"] if s else None
    # a click in the middle of the view (a few tries where the middle is sky): GPU pick, then the card
    canvas = driver.find_element(By.CSS_SELECTOR, "#twin-viewer canvas")
    w, h = canvas.size["width"], canvas.size["height"]
    for fx, fy in ((0.5, 0.5), (0.45, 0.55), (0.55, 0.45), (0.5, 0.6), (0.4, 0.5)):
        before = driver.execute_script(VIEWER_STATS).get("lastPick")
        t0 = driver.execute_script("return performance.now();")
        ActionChains(driver).move_to_element_with_offset(canvas, int(w * (fx - 0.5)), int(h * (fy - 0.5))) \
            .click().perform()
        pick = _until(lambda before=before: (p := driver.execute_script(VIEWER_STATS).get("lastPick"))
                      and p != before and p, 30)
        if pick and pick.get("gid"):
            out["pick_ms"] = pick["ms"]
            out["bvh_ms"] = driver.execute_script(VIEWER_STATS)["viewer"].get("bvhMs")
            gid = pick["gid"]
            shown = _until(lambda gid=gid: driver.find_element(By.ID, "twin-card-gid").text.strip() == gid
                           and driver.execute_script("return performance.now();"), 60)
            out["click_to_card_ms"] = (shown - t0) if shown else None
            break
    out["heap_mb"] = out.pop("heap") / 1e6 if out.get("heap") else None
    out["ok"] = None
    return out


def plotly_run(driver, base: str, site: str) -> dict:
    """One page load of today's plotly twin (?view=plotly): paint, then recolour status -> deviation."""
    s = paint_seconds(driver, f"{base}/twin?site={site}&mode=status&view=plotly", "twin-graph")
    out = {"view": "plotly", "paint_s": s}
    if s is None:
        out["error"] = f"no paint within {PAINT_TIMEOUT_S:.0f} s"
        return out
    time.sleep(IDLE_S)
    key = driver.execute_script(PLOTLY_KEY)
    t0 = driver.execute_script("const t = performance.now();"
                               "document.querySelector(\"#twin-mode input[value='deviation']\").click(); return t;")
    two_frames = ("const done = arguments[0];"
                  "requestAnimationFrame(() => requestAnimationFrame(() => done(performance.now())));")
    drawn = _until(lambda: (k := driver.execute_script(PLOTLY_KEY)) and k != key
                   and driver.execute_async_script(two_frames))
    out["recolour_ms"] = (drawn - t0) if drawn else None
    heap = driver.execute_script("return performance.memory ? performance.memory.usedJSHeapSize : null;")
    out["heap_mb"] = heap / 1e6 if heap else None
    return out


def _spread(rows: list[dict], key: str) -> tuple:
    vals = [r[key] for r in rows if r.get(key) is not None]
    return (statistics.median(vals), max(vals) - min(vals), len(vals)) if vals else (None, None, 0)


def viewer_bench(rebuild: bool, repeat: int, only: str | None) -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from viewer_geometry import build_gen, build_real

    from sitetwin.dashboards.app import BackgroundServer, create_app
    from sitetwin.data.store import open_store

    sites = [s for s in (("real", build_real, "NIJ"), ("gen", build_gen, "GEN"), ("gen3m", build_gen3m, "G3M"))
             if only in (None, s[0])]
    load_before = machine()["load_avg_1m"]
    print(f"machine load average {load_before:.1f} (1 min), {machine()['cpus']} cores", flush=True)
    runs, summary = [], []
    driver = viewer_browser()
    try:
        for label, build, site in sites:
            db = build(rebuild)
            with open_store(db):
                pass
            served = BackgroundServer(create_app(db))
            try:
                # warm-up: the viewer's geometry file and the plotly scene built once, both views' scripts cached
                viewer_run(driver, served.url, site)
                plotly_run(driver, served.url, site)
                for n in range(repeat):
                    order = (viewer_run, plotly_run) if n % 2 == 0 else (plotly_run, viewer_run)
                    for fn in order:
                        row = {"site": label, "run": n + 1, **fn(driver, served.url, site),
                               "load": machine()["load_avg_1m"]}
                        runs.append(row)
                        print({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}, flush=True)
            finally:
                served.stop()
            for view in ("webgl", "plotly"):
                rows = [r for r in runs if r["site"] == label and r["view"] == view]
                line = {"site": label, "view": view}
                for key in ("paint_s", "recolour_ms", "pick_ms", "click_to_card_ms", "heap_mb", "render_ms", "bvh_ms"):
                    med, spread, _n = _spread(rows, key)
                    line[key], line[key + "_spread"] = med, spread
                first = rows[0] if rows else {}
                line.update({k: first.get(k) for k in ("elements", "triangles_drawn", "geometry_transfer",
                                                       "geometry_decoded", "script_transfer")})
                line["runs"] = len(rows)
                if view == "webgl":
                    line["ok"] = ((label != "real" or (line["paint_s"] or 1e9) <= VIEWER_TARGETS["paint_real_s"])
                                  and (line["recolour_ms"] or 1e9) <= VIEWER_TARGETS["recolour_ms"]
                                  and (line["pick_ms"] or 1e9) <= VIEWER_TARGETS["pick_ms"])
                summary.append(line)
    finally:
        driver.quit()
    load_after = machine()["load_avg_1m"]
    note = f"(median of {repeat}, spread = max - min; load average {load_before:.1f} before, {load_after:.1f} after)"
    print_table(summary, ["site", "view", "elements", "triangles_drawn", "paint_s", "paint_s_spread", "recolour_ms",
                          "recolour_ms_spread", "pick_ms", "pick_ms_spread", "click_to_card_ms", "ok"],
                f"the twin page's WebGL viewer against the plotly twin, headless Chromium, SwiftShader {note}")
    print_table(summary, ["site", "view", "geometry_transfer", "geometry_decoded", "script_transfer", "heap_mb",
                          "heap_mb_spread", "render_ms", "bvh_ms"],
                f"bytes fetched, JS heap, one frame, picking BVH {note}")
    save("dashboard-viewer", {"targets": VIEWER_TARGETS, "summary": summary, "runs": runs,
                              "load_avg_before": load_before, "load_avg_after": load_after})


# --------------------------------------------------------------------------------------
# callbacks

def callback_times(db: Path, site: str, repeat: int = 5) -> list[dict]:
    """Server time of each data callback (test client, no network): first call and median of ``repeat``."""
    from dash._utils import split_callback_id

    from sitetwin.dashboards.app import create_app, warm_up
    from sitetwin.dashboards.connections import read_store
    from sitetwin.dashboards.queries import panoramas, survey_as_of

    app = create_app(db)
    app._setup_server()
    t = time.perf_counter()
    warm_up(db, wait=True)             # what `sitetwin serve` starts with: geometry and progress per site
    print(f"warm-up (geometry and progress report of every site): {time.perf_counter() - t:.1f} s", flush=True)
    client = app.server.test_client()
    client.get("/")
    csrf = client.get_cookie("_csrf_token").value
    with read_store(db) as store:
        survey = survey_as_of(store, site, None)
        panos = [p["pano_id"] for p in panoramas(store, site)]
        gid = store.scalar("SELECT global_id FROM element_deviation WHERE survey_id = ? AND status = 'built' "
                           "ORDER BY global_id LIMIT 1", [survey])
        finding = store.scalar("SELECT finding_id FROM findings WHERE site_code = ? ORDER BY raised_at DESC LIMIT 1",
                               [site])
    state: dict = {}

    def values(i, p):
        table = {
            ("shell-url", "search"): f"?site={site}", ("shell-url", "pathname"): "/twin", ("shell-site", "value"): site,
            ("twin-mode", "value"): "status", ("twin-date", "value"): state.get("date_index", 0),
            ("twin-dates", "data"): state.get("days", []), ("twin-layers", "value"): ["points", "sensors"],
            ("twin-budget", "value"): 60_000, ("twin-figure-key", "data"): state.get("key"),
            ("twin-graph", "clickData"): {"points": [{"curveNumber": 1, "pointNumber": 0}]},
            ("twin-element", "data"): gid, ("deviation-survey", "value"): survey,
            ("progress-days", "data"): state.get("days", []), ("progress-day", "value"): 3,
            ("panorama-select", "value"): panos[0] if panos else None,
            ("panorama-view", "data"): {"yaw_deg": 20.0, "pitch_deg": -5.0, "fov_deg": 90.0},
            ("panorama-overlay", "value"): "status", ("panorama-layers", "value"): ["detections"],
            ("panorama-viewer", "clickData"): {"points": [{"x": 480, "y": 420}]},
            ("panorama-click-mode", "value"): "pick", ("panorama-element", "data"): gid,
            ("portfolio-risk", "value"): [0, 100], ("findings-f-site", "value"): site,
            ("findings-selected", "data"): finding,
        }
        if (i, p) in table:
            return table[(i, p)]
        if i.endswith("-site") and p == "data":
            return site
        if i.startswith("twin-section-"):
            return [-1000.0, 1000.0]
        return None

    def spec(d):
        return {"id": d["id"], "property": d["property"], "value": values(d["id"], d["property"])}

    # built again for every request (values() reads what earlier callbacks left in ``state``)
    def body(key, cb):
        return {"output": key, "outputs": split_callback_id(key), "inputs": [spec(i) for i in cb["inputs"]],
                "state": [spec(s) for s in cb["state"]],
                "changedPropIds": [f"{cb['inputs'][0]['id']}.{cb['inputs'][0]['property']}"]}

    wanted = [("shell", "..shell-site.options"), ("overview", "..overview-title"), ("twin setup", "..twin-dates.data"),
              ("twin draw", "..twin-graph.figure"), ("twin pick", "..twin-element.data"),
              ("twin card", "twin-card.children"), ("deviation setup", "..deviation-survey.options"),
              ("deviation", "..deviation-body.children"), ("progress setup", "..progress-days.data"),
              ("progress", "..progress-summary.children"), ("4D frame", "..progress-4d.figure"),
              ("panorama setup", "..panorama-select.options"), ("panorama choose", "..panorama-minimap.figure"),
              ("panorama view", "..panorama-viewer.figure"), ("panorama pick", "..panorama-element.data"),
              ("panorama card", "panorama-card.children"), ("hazards setup", "..hazards-rules.options"),
              ("hazards", "..hazards-summary.children"),
              ("portfolio", "..portfolio-city.options"), ("risk breakdown", "..portfolio-risk-title"),
              ("findings list", "..findings-summary.children"), ("finding detail", "..findings-detail.children")]
    rows = []
    for name, prefix in wanted:
        key = next(k for k in app.callback_map if k.startswith(prefix))
        cb = app.callback_map[key]
        times, size, status = [], 0, None
        for _ in range(repeat + 1):
            t = time.perf_counter()
            resp = client.post("/_dash-update-component", json=body(key, cb), headers={"X-CSRFToken": csrf})
            times.append(1000 * (time.perf_counter() - t))
            status, size = resp.status_code, len(resp.data)
        if name == "twin setup" and status == 200:
            out = json.loads(resp.data)["response"]
            state["days"] = out["twin-dates"]["data"]
            state["date_index"] = out["twin-date"]["value"]
        if name == "twin draw" and status == 200:
            state["key"] = json.loads(resp.data)["response"]["twin-figure-key"]["data"]
        rows.append({"callback": name, "first_ms": times[0], "median_ms": statistics.median(times[1:]),
                     "max_ms": max(times[1:]), "bytes": size, "status": status,
                     "ok": status in (200, 204) and statistics.median(times[1:]) < TARGETS["callback_ms"]})
    return rows


# --------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rebuild", action="store_true", help="build the benchmark sites again")
    parser.add_argument("--skip-naive-big", action="store_true",
                        help="do not try the naive figure on the big model (it may not paint within the timeout)")
    parser.add_argument("--callbacks-only", choices=("demo", "big"),
                        help="only time the callbacks on this site (results in dashboard-callbacks-<site>.json)")
    parser.add_argument("--viewer", action="store_true",
                        help="the WebGL viewer against the plotly twin, real and generated models "
                             "(dashboard-viewer.json)")
    parser.add_argument("--repeat", type=int, default=3, help="--viewer: page loads per view and site")
    parser.add_argument("--only", choices=("real", "gen", "gen3m"), help="--viewer: one site only")
    parser.add_argument("--lang-only", action="store_true",
                        help="only the zh-CN against English paint of the twin page, demo site (dashboard-lang.json)")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    if args.viewer:
        viewer_bench(args.rebuild, args.repeat, args.only)
        return
    if args.lang_only:
        lang_only(args.rebuild)
        return
    load_before = machine()["load_avg_1m"]
    if args.callbacks_only:
        db = build_demo(args.rebuild) if args.callbacks_only == "demo" else build_big(args.rebuild)
        callbacks = callback_times(db, args.callbacks_only.upper())
        note = f"(load average {load_before:.1f} before, {machine()['load_avg_1m']:.1f} after; 2 cores)"
        print_table(callbacks, ["callback", "first_ms", "median_ms", "max_ms", "bytes", "status", "ok"],
                    f"callback server time on the {args.callbacks_only} site {note}")
        save(f"dashboard-callbacks-{args.callbacks_only}", {"targets": TARGETS, "callbacks": callbacks,
                                                            "load_avg_before": load_before})
        return
    t = time.perf_counter()
    demo, big = build_demo(args.rebuild), build_big(args.rebuild)
    from sitetwin.data.store import open_store

    for db in (demo, big):                # sites built by an older sitetwin: their schema brought up to date
        with open_store(db):
            pass
    print(f"sites ready in {time.perf_counter() - t:.0f} s", flush=True)

    from plotly.io.json import to_json_plotly

    from sitetwin.dashboards.app import BackgroundServer, create_app
    from sitetwin.dashboards.connections import read_store
    from sitetwin.dashboards.scene import DEFAULT_TRIANGLE_BUDGET, to_wire
    from sitetwin.dashboards.twin_view import TwinParams, read_twin, twin_figure

    paint_rows, payload_rows, lang_rows = [], [], []
    driver = browser()
    try:
        for label, db, site in (("demo", demo, "DEMO"), ("big", big, "BIG")):
            naive = len(to_json_plotly(naive_figure(db, site)))
            for budget in (DEFAULT_TRIANGLE_BUDGET, 2_000_000):
                with read_store(db) as store:
                    p = TwinParams(site=site, mode="status", budget=budget)
                    data = read_twin(store, p)
                fig, stats = twin_figure(data, p)
                ours = len(to_json_plotly(to_wire(fig)))
                payload_rows.append({"site": label, "budget": budget, "elements": data.geom.element_count,
                                     "triangles": int(data.geom.triangles.sum()), "sent_triangles": stats["triangles"],
                                     "boxes": stats["boxes"], "left_out": stats["left_out"], "sitetwin_mb": ours / 1e6,
                                     "naive_mb": naive / 1e6, "ratio": naive / ours})
                print(f"{label} at {budget:,} triangles: payload {ours / 1e6:.2f} MB (naive {naive / 1e6:.1f} MB)",
                      flush=True)
            app = create_app(db)          # a fresh app: its geometry cache is empty (cold)
            served = BackgroundServer(app)
            try:
                url = f"{served.url}/twin?site={site}&mode=status&view=plotly"
                cold = paint_seconds(driver, url, "twin-graph")
                warm_runs = [paint_seconds(driver, url, "twin-graph") for _ in range(3)]
                warm = statistics.median([w for w in warm_runs if w is not None]) if all(warm_runs) else None
                lang_rows.append(lang_paint(driver, served.url, site, label))
            finally:
                served.stop()
            naive_s = None
            if not (label == "big" and args.skip_naive_big):
                served = BackgroundServer(naive_app(db))
                try:
                    naive_s = paint_seconds(driver, f"{served.url}/?site={site}", "naive-graph")
                finally:
                    served.stop()
            target = TARGETS["paint_demo_s" if label == "demo" else "paint_big_s"]
            paint_rows.append({"site": label, "sitetwin_cold_s": cold, "sitetwin_warm_s": warm, "naive_s": naive_s,
                               "ratio": (naive_s / warm) if naive_s and warm else None, "target_s": target,
                               "ok": warm is not None and warm < target})
            print(f"{label}: paint cold {cold} s, warm {warm} s, naive {naive_s} s", flush=True)
    finally:
        driver.quit()
    callbacks = callback_times(big, "BIG")
    load_after = machine()["load_avg_1m"]
    note = f"(load average {load_before:.1f} before, {load_after:.1f} after; 2 cores)"
    print_table(payload_rows, ["site", "budget", "elements", "triangles", "sent_triangles", "boxes", "left_out",
                               "sitetwin_mb", "naive_mb", "ratio"],
                f"3D twin figure payload (model, scan points, sensors), status colouring {note}")
    print_table(paint_rows, ["site", "sitetwin_cold_s", "sitetwin_warm_s", "naive_s", "ratio", "target_s", "ok"],
                f"first meaningful paint of the 3D twin page in headless Chromium (software WebGL) {note}")
    print_table(lang_rows, LANG_COLUMNS, f"first paint of the 3D twin page, zh-CN against English, alternating {note}")
    print_table(callbacks, ["callback", "first_ms", "median_ms", "max_ms", "bytes", "status", "ok"],
                f"callback server time on the big site: {BIG_DETECTIONS:,} detections, {BIG_SURVEYS} surveys {note}")
    big_payload = max(r["sitetwin_mb"] for r in payload_rows if r["site"] == "big")
    save("dashboard", {"targets": TARGETS, "payload": payload_rows, "paint": paint_rows, "lang_paint": lang_rows,
                       "callbacks": callbacks,
                       "payload_big_ok": big_payload < TARGETS["payload_big_mb"],
                       "load_avg_before": load_before, "load_avg_after": load_after})


if __name__ == "__main__":
    main()
