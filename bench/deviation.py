"""Benchmark: signed point-to-model distance with element attribution, end to end: sitetwin vs Open3D vs CloudCompare.

On the shared real models (Schependomlaan steel and prefab, the eight design parts) and on a
generated concrete frame, a survey of N points (default 3 M and 10 M; ``--big`` adds 100 M) is
sampled on the model's surfaces (3 mm noise, in runs of consecutive points as a scanner delivers
them) with 10 % clutter spread round the model. Three ways to the nearest surface and its
element, each in a fresh process, each timed end to end from that process's start: imports,
index or octree build, kernel loading, the query and the element lookup; reading the input files
is reported apart.

- sitetwin: ``SurfaceIndex(...).query(points, max_distance_m=band)``: exact nearest triangle and
  element within the deviation band (``Tolerances.status.band_m``), the rest marked far. Its
  attribution-clearance search (``other_within_m``, what ``deviation.analyse`` also asks) is
  timed after it, warm, and shown apart.
- Open3D ``RaycastingScene.compute_closest_points``: exact nearest triangle (``primitive_ids``,
  hence the element) for every point; it has no maximum distance.
- CloudCompare ``-C2M_DIST -MAX_DIST <band>``, as its users run it (one thread: CloudCompare
  switches multi-threading off with a maximum distance). Its time is the wall time of the run less
  that of a run that only loads the same two files (process start-up and reading).

Accuracy is checked on a sample against exact closest points (Open3D's, settled in float64 by
brute force over every triangle where answers part by more than 10 um).

    python bench/deviation.py                               # every model, 3 M and 10 M points
    python bench/deviation.py --models BERNTS-Staalconstructie --points 10000000 --repeats 3
    python bench/deviation.py --big                          # adds 100 M points (about 6 GB of RAM)
    python bench/deviation.py --no-cloudcompare

Prints a table per size and writes bench/results/deviation.json, with the load average before
and after each measurement: the machine may be shared.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import RESULTS, shared_data

BAND_M = 0.08                         # Tolerances.status.band_m's default; checked in main()
CLEARANCE_M = 0.05                    # Tolerances.status.attribution_margin_m's default
MESH_CACHE = Path(tempfile.gettempdir()) / "sitetwin-bench-deviation-meshes"


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


# ----------------------------------------------------------------------------- models and points
def real_models() -> dict[str, Path]:
    root = shared_data() / "ifc" / "schependomlaan"
    files = [root / "BERNTS-Staalconstructie.ifc", root / "MULTICOM-Prefab.ifc",
             *sorted((root / "root_design_parts").glob("*.ifczip"))]
    return {f.stem: f for f in files if f.exists()}


def model_mesh(name: str, source: Path | None) -> Path:
    """The model's triangles as an .npz (vertices, faces, face_element), made once and kept in /tmp."""
    out = MESH_CACHE / f"{name}.npz"
    if out.exists():
        return out
    from sitetwin.bim.load import load_model
    from sitetwin.bim.mesh import load_mesh
    from sitetwin.data.store import open_store

    MESH_CACHE.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="sitetwin-bench-mesh-"))
    try:
        if source is None:               # the generated concrete frame
            from sitetwin.synth import DemoBuildingSpec, build_demo_building

            source = build_demo_building(work / "building.ifc", DemoBuildingSpec(storeys=6, bays_x=6, bays_y=4)).path
        with open_store(":memory:", cache_dir=work / "cache") as store:
            load_model(store, source, site_code="BENCH")
            mesh = load_mesh(store, site_code="BENCH")
        np.savez(out, vertices=mesh.vertices, faces=mesh.faces, face_element=mesh.face_element)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def make_points(mesh_file: Path, n: int, path: Path, *, clutter: float = 0.10, noise_m: float = 0.003,
                seed: int = 0, run: int = 4096, piece: int = 5_000_000) -> dict:
    """n points: on the surfaces (area-weighted, Gaussian noise) and ``clutter`` of them spread through
    the model's box grown by 3 m; written as runs of ``run`` consecutive points in shuffled order
    (a scanner's sweep passes from one part to another), in pieces to bound memory."""
    m = np.load(mesh_file)
    v, f = m["vertices"], m["faces"]
    rng = np.random.default_rng(seed)
    tri = v[f]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    lo, hi = v.min(axis=0) - 3.0, v.max(axis=0) + 3.0
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float64, shape=(n, 3))
    for s in range(0, n, piece):
        k = min(piece, n - s)
        n_far = int(round(k * clutter))
        cnt = rng.multinomial(k - n_far, area / area.sum())
        t = np.repeat(np.arange(len(f)), cnt)
        r1, r2 = rng.random(len(t)), rng.random(len(t))
        sq = np.sqrt(r1)
        p = (tri[t, 0] * (1 - sq)[:, None] + tri[t, 1] * (sq * (1 - r2))[:, None] + tri[t, 2] * (sq * r2)[:, None]
             + rng.normal(0.0, noise_m, (len(t), 3)))
        q = lo + rng.random((n_far, 3)) * (hi - lo)
        key = np.floor((q - lo) / 0.5).astype(np.int64)
        q = q[np.argsort((key[:, 0] * 4096 + key[:, 1]) * 4096 + key[:, 2], kind="stable")]
        pts = np.concatenate([p, q])
        runs = rng.permutation((k + run - 1) // run)
        idx = (runs[:, None] * run + np.arange(run)[None, :]).ravel()
        out[s:s + k] = pts[idx[idx < k]]
    out.flush()
    return {"triangles": int(len(f)), "elements": int(m["face_element"].max()) + 1, "points": n,
            "clutter_share": clutter}


# ----------------------------------------------------------------------------- measured in child processes
def measure_sitetwin(work: Path, mesh_file: Path, clearance: bool = False) -> dict:
    t = time.perf_counter()
    m = np.load(mesh_file)
    vertices, faces, face_element = m["vertices"], m["faces"], m["face_element"]
    pts = np.load(work / "points.npy")
    read = time.perf_counter() - t
    t0 = time.perf_counter()
    from sitetwin.twin.distance import SurfaceIndex, thread_count

    imported = time.perf_counter()
    index = SurfaceIndex(vertices, faces, face_element)        # loads the compiled kernels (numba cache)
    built = time.perf_counter()
    res = index.query(pts, max_distance_m=BAND_M)
    element = res.element                                       # the element comes with the answer
    done = time.perf_counter()
    if clearance:                 # what deviation.analyse asks: the nearest other element too
        t = time.perf_counter()
        index.query(pts, max_distance_m=BAND_M, other_within_m=CLEARANCE_M)
        return {"with_clearance_query_s": time.perf_counter() - t}
    np.save(work / "d_sitetwin.npy", res.distance_m)
    np.save(work / "e_sitetwin.npy", element)
    return {"read_s": read, "import_s": imported - t0, "build_s": built - imported, "query_s": done - built,
            "end_to_end_s": done - t0, "peak_rss_mb": peak_rss_mb(), "threads": thread_count(),
            "index": index.stats()}


def measure_open3d(work: Path, mesh_file: Path) -> dict:
    t = time.perf_counter()
    m = np.load(mesh_file)
    vertices, faces, face_element = m["vertices"], m["faces"], m["face_element"]
    pts = np.load(work / "points.npy")
    read = time.perf_counter() - t
    t0 = time.perf_counter()
    import open3d as o3d

    imported = time.perf_counter()
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.core.Tensor(vertices.astype(np.float32)), o3d.core.Tensor(faces.astype(np.uint32)))
    q = o3d.core.Tensor(pts.astype(np.float32))
    built = time.perf_counter()
    cp = scene.compute_closest_points(q)        # the BVH is built lazily, inside this call
    closest = cp["points"].numpy()
    element = face_element[cp["primitive_ids"].numpy()]
    dist = np.linalg.norm(pts.astype(np.float32) - closest, axis=1)
    done = time.perf_counter()
    np.save(work / "d_open3d.npy", dist)
    np.save(work / "e_open3d.npy", element)
    return {"read_s": read, "import_s": imported - t0, "build_s": built - imported, "query_s": done - built,
            "end_to_end_s": done - t0, "peak_rss_mb": peak_rss_mb()}


def cpu_of_children() -> float:
    """User + system seconds of the finished child processes so far: less sensitive than wall time to
    what else runs on a shared machine."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def child(method: str, work: Path, mesh_file: Path) -> dict:
    load0 = load_average()
    cpu0 = cpu_of_children()
    out = subprocess.run([sys.executable, __file__, "--child", method, "--work", str(work), "--mesh", str(mesh_file)],
                         capture_output=True, text=True, timeout=7200)
    if out.returncode != 0:
        raise SystemExit(f"{method} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1]) | {"load_before": load0, "load_after": load_average(),
                                                              "process_cpu_s": cpu_of_children() - cpu0}


# ----------------------------------------------------------------------------- CloudCompare
def cloudcompare_exe() -> str | None:
    return shutil.which("CloudCompare") or shutil.which("cloudcompare.CloudCompare")


def write_cc_inputs(work: Path, mesh_file: Path) -> None:
    import open3d as o3d

    m = np.load(mesh_file)
    pts = np.load(work / "points.npy", mmap_mode="r")
    o3d.io.write_triangle_mesh(str(work / "mesh.ply"), o3d.geometry.TriangleMesh(
        o3d.utility.Vector3dVector(m["vertices"].astype(np.float64)), o3d.utility.Vector3iVector(m["faces"])))
    pc = o3d.t.geometry.PointCloud()
    pc.point.positions = o3d.core.Tensor(np.asarray(pts, dtype=np.float32))
    o3d.t.io.write_point_cloud(str(work / "cloud.ply"), pc)


def cloudcompare(work: Path, exe: str) -> dict:
    home = work / "cc-home"
    home.mkdir(exist_ok=True)
    env = dict(os.environ, HOME=str(home), XDG_RUNTIME_DIR=str(home), QT_QPA_PLATFORM="offscreen")
    base = [exe, "-SILENT", "-AUTO_SAVE", "OFF", "-O", "cloud.ply", "-O", "mesh.ply"]
    load0 = load_average()
    cpu0 = cpu_of_children()
    t = time.perf_counter()
    subprocess.run(base, cwd=work, env=env, capture_output=True, text=True, timeout=7200, check=True)
    read = time.perf_counter() - t
    cpu1 = cpu_of_children()
    t = time.perf_counter()
    out = subprocess.run([*base, "-C2M_DIST", "-MAX_DIST", str(BAND_M)], cwd=work, env=env, capture_output=True,
                         text=True, timeout=7200)
    wall = time.perf_counter() - t
    cpu = (cpu_of_children() - cpu1) - (cpu1 - cpu0)        # less the loading run's
    text = out.stdout + out.stderr
    if out.returncode != 0:
        return {"error": text[-500:]}
    own = [float(x) for x in re.findall(r"finished in ([0-9.]+) s", text)]
    return {"read_s": read, "end_to_end_s": max(wall - read, 0.0), "wall_s": wall, "process_cpu_s": cpu,
            "reported_compute_s": own[-1] if own else None, "load_before": load0, "load_after": load_average()}


# ----------------------------------------------------------------------------- accuracy
def accuracy(work: Path, mesh_file: Path, sample: int, seed: int, settle: int = 300) -> dict:
    import open3d as o3d

    m = np.load(mesh_file)
    pts = np.load(work / "points.npy", mmap_mode="r")
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(pts), min(sample, len(pts)), replace=False))
    p = np.asarray(pts[pick])
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.core.Tensor(m["vertices"].astype(np.float32)),
                        o3d.core.Tensor(m["faces"].astype(np.uint32)))
    cp = scene.compute_closest_points(o3d.core.Tensor(p.astype(np.float32)))
    exact = np.linalg.norm(p - cp["points"].numpy().astype(np.float64), axis=1)
    ours = np.abs(np.load(work / "d_sitetwin.npy", mmap_mode="r")[pick].astype(np.float64))
    tri = m["vertices"][m["faces"]].astype(np.float64)
    within = exact < BAND_M
    doubt = np.flatnonzero(within & ~np.isclose(ours, exact, atol=1e-5, rtol=0))
    if len(doubt) > settle:                # settled by brute force: at most `settle` of them
        keep = np.zeros(len(p), dtype=bool)
        keep[np.setdiff1d(np.arange(len(p)), doubt)] = True
        keep[rng.choice(doubt, settle, replace=False)] = True
        p, exact, ours, pick = p[keep], exact[keep], ours[keep], pick[keep]
        cp = {k: cp[k].numpy()[keep] for k in ("primitive_ids",)}
        doubt = np.flatnonzero(within[keep] & ~np.isclose(ours, exact, atol=1e-5, rtol=0))
    else:
        cp = {"primitive_ids": cp["primitive_ids"].numpy()}
    for q in doubt:
        exact[q] = np.sqrt(point_triangle_d2(p[q], tri).min())
    elem = np.load(work / "e_sitetwin.npy", mmap_mode="r")[pick]
    inside = exact < BAND_M - 1e-4          # clear of the band's edge
    outside = exact > BAND_M + 1e-4
    err = np.abs(ours[inside] - exact[inside])
    o3d_elem = m["face_element"][cp["primitive_ids"]]
    differ = np.flatnonzero(inside & (elem != o3d_elem))
    checked = differ[:settle]
    # a different element is right when its face is as near (faces two elements share)
    d_o3d_tri = np.sqrt([point_triangle_d2(p[q], tri[cp["primitive_ids"][q]][None])[0] for q in checked])
    tie = np.abs(d_o3d_tri - ours[checked]) <= 1e-5
    o3d_farther = d_o3d_tri > ours[checked] + 1e-5
    return {"sample": int(len(p)), "settled_by_brute_force": int(len(doubt)),
            "within_band_max_err_m": float(err.max()) if len(err) else 0.0,
            "within_band_share_0_1mm": float((err <= 1e-4).mean()) if len(err) else 1.0,
            "beyond_band_marked_far": float((elem[outside] == -1).mean()) if outside.any() else 1.0,
            "element_agreement_with_open3d": float(1 - len(differ) / max(int(inside.sum()), 1)),
            "element_differences_checked": int(len(checked)), "of_which_ties": int(tie.sum()),
            "of_which_open3d_farther": int(o3d_farther.sum()),
            "of_which_sitetwin_farther": int(len(checked) - tie.sum() - o3d_farther.sum())}


def point_triangle_d2(p: np.ndarray, tri: np.ndarray) -> np.ndarray:
    """Squared distance, float64, from one point p (3,) to every triangle of ``tri`` (m, 3, 3), brute force
    (Ericson, Real-Time Collision Detection 5.1.5, vectorised)."""
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    ab, ac, ap = b - a, c - a, p - a
    d1, d2 = np.einsum("ij,ij->i", ab, ap), np.einsum("ij,ij->i", ac, ap)
    bp = p - b
    d3, d4 = np.einsum("ij,ij->i", ab, bp), np.einsum("ij,ij->i", ac, bp)
    cp = p - c
    d5, d6 = np.einsum("ij,ij->i", ab, cp), np.einsum("ij,ij->i", ac, cp)
    va, vb, vc = d3 * d6 - d5 * d4, d5 * d2 - d1 * d6, d1 * d4 - d3 * d2
    with np.errstate(divide="ignore", invalid="ignore"):
        denom = va + vb + vc
        v, w = vb / denom, vc / denom
        q = a + ab * v[:, None] + ac * w[:, None]                                  # inside the face
        t_ab = d1 / (d1 - d3)
        q = np.where(((vc <= 0) & (d1 >= 0) & (d3 <= 0))[:, None], a + ab * t_ab[:, None], q)
        t_ac = d2 / (d2 - d6)
        q = np.where(((vb <= 0) & (d2 >= 0) & (d6 <= 0))[:, None], a + ac * t_ac[:, None], q)
        t_bc = (d4 - d3) / ((d4 - d3) + (d5 - d6))
        q = np.where(((va <= 0) & (d4 - d3 >= 0) & (d5 - d6 >= 0))[:, None], b + (c - b) * t_bc[:, None], q)
    q = np.where(((d6 >= 0) & (d5 <= d6))[:, None], c, q)
    q = np.where(((d3 >= 0) & (d4 <= d3))[:, None], b, q)
    q = np.where(((d1 <= 0) & (d2 <= 0))[:, None], a, q)
    return np.einsum("ij,ij->i", p - q, p - q)


# ----------------------------------------------------------------------------- main
def summarise(runs: list[dict], key: str = "end_to_end_s") -> dict:
    xs = [r[key] for r in runs]
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "runs": xs}


def run_case(name: str, mesh_file: Path, n: int, args, exe: str | None) -> dict:
    work = Path(tempfile.mkdtemp(prefix="sitetwin-bench-dev-"))
    try:
        t = time.perf_counter()
        data = make_points(mesh_file, n, work / "points.npy", seed=args.seed)
        data["generate_s"] = round(time.perf_counter() - t, 1)
        ours, o3d_runs, cc_runs = [], [], []
        for _ in range(args.repeats):               # interleaved, so that a change of load hits all three
            ours.append(child("sitetwin", work, mesh_file))
            o3d_runs.append(child("open3d", work, mesh_file))
            # timed in a process of its own, so that the figures above are the plain query's alone
            ours[-1]["with_clearance_query_s"] = child("sitetwin-clearance", work, mesh_file)["with_clearance_query_s"]
        acc = accuracy(work, mesh_file, args.sample, args.seed)
        if exe and not args.no_cloudcompare:
            write_cc_inputs(work, mesh_file)
            for _ in range(args.repeats):
                cc_runs.append(cloudcompare(work, exe))
    finally:
        if not os.environ.get("SITETWIN_BENCH_KEEP"):
            shutil.rmtree(work, ignore_errors=True)
    cc_ok = [r for r in cc_runs if "error" not in r]
    case = {"model": name, "data": data, "sitetwin": ours, "open3d": o3d_runs, "cloudcompare": cc_runs,
            "accuracy": acc, "sitetwin_s": summarise(ours), "open3d_s": summarise(o3d_runs),
            "cloudcompare_s": summarise(cc_ok) if cc_ok else None,
            "sitetwin_with_clearance_query_s": summarise(ours, "with_clearance_query_s"),
            "cpu_s": {"sitetwin": summarise(ours, "process_cpu_s"), "open3d": summarise(o3d_runs, "process_cpu_s"),
                      "cloudcompare": summarise(cc_ok, "process_cpu_s") if cc_ok else None}}
    s = case["sitetwin_s"]["median"]
    case["ratio_vs_open3d"] = case["open3d_s"]["median"] / s
    case["ratio_vs_cloudcompare"] = case["cloudcompare_s"]["median"] / s if cc_ok else None
    return case


def print_cpu(cases: list[dict]) -> None:
    print("\nCPU seconds of each whole process (sitetwin and Open3D: reading their inputs included; CloudCompare: "
          "less a run that only loads), median: on a shared machine less noisy than wall time")
    print(f"{'model':<42}{'sitetwin':>10}{'Open3D':>10}{'CloudCompare':>14}{'O3D/st':>8}{'CC/st':>7}")
    for c in cases:
        st, o3, cc = (c["cpu_s"][k] for k in ("sitetwin", "open3d", "cloudcompare"))
        ccs = "" if cc is None else f"{cc['median']:14.2f}"
        ccr = "" if cc is None else f"{cc['median'] / st['median']:6.2f}x"
        print(f"{c['model'][:41]:<42}{st['median']:10.2f}{o3['median']:10.2f}{ccs:>14}"
              f"{o3['median'] / st['median']:7.2f}x{ccr:>7}")


def print_cases(cases: list[dict]) -> None:
    print(f"\n{'model':<42}{'points':>8}{'tris':>8}  {'sitetwin s':>16}{'Open3D s':>16}{'CloudCompare s':>16}"
          f"{'vs O3D':>8}{'vs CC':>7}  {'read s':>7}{'clear.q s':>10}{'max err':>9}{'elem agr':>9}{'worse':>6}")
    for c in cases:
        def cell(x):
            return "" if x is None else f" {x['median']:.2f} [{x['min']:.2f}-{x['max']:.2f}]"
        cc = c["ratio_vs_cloudcompare"]
        print(f"{c['model'][:41]:<42}{c['data']['points'] / 1e6:7.0f}M{c['data']['triangles']:>8}  "
              f"{cell(c['sitetwin_s']):>16}{cell(c['open3d_s']):>16}{cell(c['cloudcompare_s']):>16}"
              f"{c['ratio_vs_open3d']:7.2f}x{'' if cc is None else f'{cc:6.2f}x':>7}  "
              f"{statistics.median(r['read_s'] for r in c['sitetwin']):7.2f}"
              f"{c['sitetwin_with_clearance_query_s']['median']:10.2f}"
              f"{c['accuracy']['within_band_max_err_m'] * 1000:7.3f}mm"
              f"{c['accuracy']['element_agreement_with_open3d']:9.4f}{c['accuracy']['of_which_sitetwin_farther']:6d}")


def main() -> None:
    from sitetwin.twin.tolerances import DEFAULT

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, nargs="*", default=[3_000_000, 10_000_000])
    ap.add_argument("--big", action="store_true", help="also 100 M points (about 6 GB of RAM per method)")
    ap.add_argument("--models", nargs="*", help="model names (file stems, or 'generated'); default all")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sample", type=int, default=200_000, help="points checked against exact closest points")
    ap.add_argument("--no-cloudcompare", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="deviation", help="name of the JSON file in bench/results/")
    ap.add_argument("--child", choices=["sitetwin", "sitetwin-clearance", "open3d"], help=argparse.SUPPRESS)
    ap.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--mesh", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        if args.child == "open3d":
            out = measure_open3d(args.work, args.mesh)
        else:
            out = measure_sitetwin(args.work, args.mesh, clearance=args.child == "sitetwin-clearance")
        print(json.dumps(out, default=float))
        return
    if abs(DEFAULT.status.band_m - BAND_M) > 1e-12 or abs(DEFAULT.status.attribution_margin_m - CLEARANCE_M) > 1e-12:
        raise SystemExit(f"the bench's band {BAND_M} / clearance {CLEARANCE_M} no longer match the tolerances' "
                         f"defaults {DEFAULT.status.band_m} / {DEFAULT.status.attribution_margin_m}: update them")
    models: dict[str, Path | None] = {**real_models(), "generated": None}
    if args.models:
        unknown = set(args.models) - set(models)
        if unknown:
            raise SystemExit(f"unknown models {sorted(unknown)}; known: {sorted(models)}")
        models = {k: models[k] for k in args.models}
    sizes = sorted(set(args.points + ([100_000_000] if args.big else [])))
    exe = None if args.no_cloudcompare else cloudcompare_exe()
    if exe is None and not args.no_cloudcompare:
        print("CloudCompare: not installed (apt-get install cloudcompare); its column stays empty")
    load_start = load_average()
    cases = []
    for n in sizes:
        for name, source in models.items():
            mesh_file = model_mesh(name, source)
            print(f"{name}, {n:,} points ...", flush=True)
            cases.append(run_case(name, mesh_file, n, args, exe))
            print_cases(cases[-1:])
    print(f"\nend to end (imports, index/octree build, kernel load, query, element lookup; reading apart), "
          f"seconds, median [min-max] of {args.repeats}; sitetwin band {BAND_M} m = CloudCompare -MAX_DIST; "
          f"{cases[0]['sitetwin'][0]['threads'] if cases else '?'} threads; "
          f"load average {load_start} -> {load_average()}")
    print_cases(cases)
    print_cpu(cases)
    result = {"benchmark": "deviation", "date": time.strftime("%Y-%m-%d %H:%M:%S"), "host": platform.node(),
              "cpus": os.cpu_count(), "band_m": BAND_M, "load_average_start": load_start,
              "load_average_end": load_average(), "repeats": args.repeats, "cases": cases,
              "targets": {"ratio_vs_cloudcompare_at_least": 2.0, "ratio_vs_open3d_at_least": 1.5,
                          "at_points": 10_000_000},
              "meets": {f"{c['model']}@{c['data']['points']}": {
                  "open3d": c["ratio_vs_open3d"] >= 1.5,
                  "cloudcompare": None if c["ratio_vs_cloudcompare"] is None else c["ratio_vs_cloudcompare"] >= 2.0}
                  for c in cases}}
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{args.out}.json"
    path.write_text(json.dumps(result, indent=2, default=float))
    print(f"written to {path}")


if __name__ == "__main__":
    main()
