"""Benchmark: the WebGL viewer's geometry (``/viewer/<site>/geometry.bin``) against the plotly twin's figure.

Sites, built once into bench/results/viewer-work/ (reused by later runs; --rebuild starts over):
  real  the real Schependomlaan models of issue 18: the eight ROOT design parts with the steel
        (BERNTS), prefab (MULTICOM) and low-rise (WILLEMSEN) models, one site
  gen   a generated building (synth.build_demo_building, 30 storeys x 14 x 11 bays): about 30,000
        elements and 3 M triangles
Measured per site, end to end through the workbench's Flask app (test client, no network):
  cold   first request with no viewer file beside the store and nothing in memory (bim's tessellation
         read from its cache, grouped by element, buffers built, file written), median of --repeat, with
         the spread; gzip is timed apart (made on the first request that accepts it, then kept beside)
  file   a request in a "new process": the file beside the store read back (memory dropped)
  memory a request answered from memory
  bytes  raw and gzip of the binary, against the plotly page's current figure for the same site
         (twin page's default view: class colours, 60k-triangle budget, typed arrays; JSON bytes and gzip;
         its build time cold, as for the viewer: plotly_s)

    python bench/viewer_geometry.py [--rebuild] [--repeat 3] [--only real|gen]
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import statistics
import time
from pathlib import Path

from _common import RESULTS, machine, print_table, save, shared_data

WORK = RESULTS / "viewer-work"
GEN_SPEC = dict(storeys=30, bays_x=14, bays_y=11)
REAL_MODELS = [*[f"root_design_parts/{n}" for n in (
    "ROOT-Vebo.ifczip", "ROOT-breedplaatvloeren.ifczip", "ROOT-houten_kozijnen.ifczip",
    "ROOT-kalkzandsteen.ifczip", "ROOT-kanaalplaatvloer.ifczip", "ROOT-kapconstructie_dakkapellen_platdak.ifczip",
    "ROOT-prefab_trappen.ifczip", "ROOT-staal.ifczip")],
    "BERNTS-Staalconstructie.ifc", "MULTICOM-Prefab.ifc", "WILLEMSEN-Laagbouw.ifc"]


def _migrated(db: Path) -> Path:
    """A store built by an earlier run, opened once for writing so that newer migrations apply."""
    from sitetwin.data.store import open_store

    with open_store(db):
        pass
    return db


def build_real(rebuild: bool) -> Path:
    db = WORK / "real" / "real.duckdb"
    done = db.with_name("complete")
    if done.exists() and not rebuild:
        return _migrated(db)
    shutil.rmtree(db.parent, ignore_errors=True)
    db.parent.mkdir(parents=True)
    from sitetwin.bim.load import load_model
    from sitetwin.data.sites import upsert_site
    from sitetwin.data.store import open_store

    root = shared_data() / "ifc" / "schependomlaan"
    with open_store(db) as store:
        with store.transaction():
            upsert_site(store, "NIJ", name="Schependomlaan", district="Oost", city="Nijmegen")
        for rel in REAL_MODELS:
            load_model(store, root / rel, site_code="NIJ", name=Path(rel).name.split(".")[0])
    done.write_text("ok\n")
    return db


def build_gen(rebuild: bool) -> Path:
    db = WORK / "gen" / "gen.duckdb"
    done = db.with_name("complete")
    if done.exists() and not rebuild:
        return _migrated(db)
    from sitetwin.bim.load import load_model
    from sitetwin.data.sites import upsert_site
    from sitetwin.data.store import open_store
    from sitetwin.synth import DemoBuildingSpec, build_demo_building

    ifc = db.with_name("gen.ifc")
    if rebuild or not ifc.exists():
        db.parent.mkdir(parents=True, exist_ok=True)
        build_demo_building(ifc, DemoBuildingSpec(**GEN_SPEC))
    for leftover in (db, db.with_name(db.name + ".wal")):
        leftover.unlink(missing_ok=True)
    shutil.rmtree(db.with_name(db.name + ".cache"), ignore_errors=True)
    with open_store(db) as store:
        with store.transaction():
            upsert_site(store, "GEN", name="Generated tower", district="Jiang'an", city="Wuhan")
        load_model(store, ifc, site_code="GEN", name="structure")
    done.write_text("ok\n")
    return db


def _cold(db: Path) -> None:
    """Nothing of the viewer's, nor the scene's or bim's in-process caches: what a new server sees."""
    from sitetwin.bim import mesh
    from sitetwin.dashboards import scene
    from sitetwin.dashboards.viewer import geometry as geo

    shutil.rmtree(Path(f"{db}.cache") / geo.CACHE_FOLDER, ignore_errors=True)
    geo.forget_memory()
    scene._geometry_cache.clear()
    mesh._read_tessellation.cache_clear()


def measure(db: Path, site: str, repeat: int) -> dict:
    from plotly.io.json import to_json_plotly

    from sitetwin.dashboards.app import create_app
    from sitetwin.dashboards.scene import to_wire
    from sitetwin.dashboards.twin_view import TwinParams, read_twin, twin_figure
    from sitetwin.dashboards.viewer import geometry as geo
    from sitetwin.data.store import open_store

    app = create_app(db)
    client = app.server.test_client()
    url = f"/viewer/{site}/geometry.bin"

    def get(**headers):
        t = time.perf_counter()
        resp = client.get(url, headers=headers)
        assert resp.status_code == 200, resp.data[:200]
        return time.perf_counter() - t, resp

    cold, gz_s = [], []
    for _ in range(repeat):
        _cold(db)
        s, resp = get()
        cold.append(s)
        s_gz, resp_gz = get(**{"Accept-Encoding": "gzip"})       # built already: this is the gzip alone
        gz_s.append(s_gz)
    raw, body_gz = resp.data, resp_gz.data
    header = geo.read_header(raw)
    file_s = []
    for _ in range(repeat):
        geo.forget_memory()
        file_s.append(get()[0])
    memory_s = [get()[0] for _ in range(repeat)]
    # the plotly page's figure for the same site, as the twin page sends it today (cold: geometry prepared)
    _cold(db)
    with open_store(db, read_only=True) as store:
        t = time.perf_counter()
        p = TwinParams(site=site, mode="class", points=False, sensors=False)
        fig, stats = twin_figure(read_twin(store, p, points=False), p, layers=False)
        text = to_json_plotly(to_wire(fig))
        plotly_s = time.perf_counter() - t
    plotly_bytes = len(text.encode())
    return {"site": site, "elements": header["elements"], "triangles": header["triangles"],
            "vertices": header["vertices"],
            "cold_s": statistics.median(cold), "cold_spread_s": max(cold) - min(cold),
            "gzip_s": statistics.median(gz_s), "file_s": statistics.median(file_s),
            "memory_s": statistics.median(memory_s),
            "raw_mb": len(raw) / 1e6, "gzip_mb": len(body_gz) / 1e6,
            "plotly_mb": plotly_bytes / 1e6, "plotly_gzip_mb": len(gzip.compress(text.encode(), 6)) / 1e6,
            "plotly_s": plotly_s, "plotly_triangles": stats["triangles"], "plotly_full": stats["full"],
            "plotly_boxes": stats["boxes"], "plotly_left_out": stats["left_out"]}


def measure_tiled(db: Path, site: str, copies: int, repeat: int) -> dict:
    """The real model's mesh tiled ``copies`` times side by side (a grid, each copy its own elements and
    GlobalIds): about 3 M triangles from real geometry. Built in this process from the mesh (grouping by
    element, buffers, gzip): the store's reads are not in these times (they are in the rows above)."""
    import numpy as np

    from sitetwin.bim.geometry import ModelMesh
    from sitetwin.bim.mesh import load_mesh
    from sitetwin.dashboards.queries import current_model_ids, element_attributes
    from sitetwin.dashboards.scene import prepare
    from sitetwin.dashboards.viewer import geometry as geo
    from sitetwin.data.store import open_store

    with open_store(db, read_only=True) as store:
        ids = current_model_ids(store, site)
        mesh = load_mesh(store, model_ids=ids)
        attrs = element_attributes(store, ids)
    lo, hi = mesh.bounds()
    step = (hi - lo) * 1.1
    cols = int(np.ceil(np.sqrt(copies)))
    nv, k = len(mesh.vertices), mesh.element_count
    verts, faces, owners, tiled_attrs = [], [], [], []
    for c in range(copies):
        shift = np.array([step[0] * (c % cols), step[1] * (c // cols), 0.0], np.float32)
        verts.append(mesh.vertices + shift)
        faces.append(mesh.faces + c * nv)
        owners.append(mesh.face_element + c * k)
        tiled_attrs += [dict(a, model_id=f"{a['model_id']}-{c}") for a in attrs]
    tiled = ModelMesh(np.concatenate(verts), np.concatenate(faces), np.concatenate(owners),
                      np.concatenate([mesh.global_ids] * copies),
                      np.concatenate([np.char.add(mesh.model_ids.astype(str), f"-{c}") for c in range(copies)]),
                      mesh.origin_m)
    build, zip_s = [], []
    for _ in range(repeat):
        t = time.perf_counter()
        geom = prepare(tiled, tiled_attrs)
        raw = geo.geometry_buffers(geom, site, "tiled")
        build.append(time.perf_counter() - t)
        t = time.perf_counter()
        body_gz = gzip.compress(raw, compresslevel=geo.GZIP_LEVEL, mtime=0)
        zip_s.append(time.perf_counter() - t)
    header = geo.read_header(raw)
    assert header["triangles"] == tiled.triangle_count
    return {"site": f"{site} x{copies}", "elements": header["elements"], "triangles": header["triangles"],
            "vertices": header["vertices"], "cold_s": statistics.median(build),
            "cold_spread_s": max(build) - min(build),
            "gzip_s": statistics.median(zip_s), "raw_mb": len(raw) / 1e6, "gzip_mb": len(body_gz) / 1e6}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rebuild", action="store_true")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", choices=["real", "gen"])
    ap.add_argument("--tiled", type=int, default=15, help="copies of the real model for the 3 M-triangle row")
    args = ap.parse_args()
    before = machine()
    print(f"machine before: {before}", flush=True)
    rows = []
    for name, build, site in (("real", build_real, "NIJ"), ("gen", build_gen, "GEN")):
        if args.only and args.only != name:
            continue
        t = time.perf_counter()
        db = build(args.rebuild)
        print(f"{name}: store ready in {time.perf_counter() - t:.0f} s", flush=True)
        rows.append(measure(db, site, args.repeat))
        print(rows[-1], flush=True)
        if name == "real" and args.tiled:
            rows.append(measure_tiled(db, site, args.tiled, args.repeat))
            print(rows[-1], flush=True)
    after = machine()
    print_table(rows, ["site", "elements", "triangles", "vertices", "cold_s", "cold_spread_s", "gzip_s", "file_s",
                       "memory_s", "raw_mb", "gzip_mb", "plotly_mb", "plotly_gzip_mb", "plotly_s"],
                "viewer geometry.bin (every element in full) vs the plotly twin's figure (same site)")
    print_table(rows, ["site", "triangles", "plotly_triangles", "plotly_full", "plotly_boxes", "plotly_left_out"],
                "what each draws: the viewer every triangle; plotly within its 60k budget")
    print(f"\nmachine load (1 min): before {before['load_avg_1m']}, after {after['load_avg_1m']}; "
          f"{after['cpus']} CPUs; repeats {args.repeat}")
    save("viewer_geometry", {"rows": rows, "repeat": args.repeat, "machine_after": after})


if __name__ == "__main__":
    main()
