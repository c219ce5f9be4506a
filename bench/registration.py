"""Benchmark: automatic registration of a half-built site at a random pose, sitetwin vs FPFH + RANSAC + ICP (Open3D).

Each trial scans the demo building as it stands on 2026-05-10 (late, moved and half-built
elements, scaffolding, stacks, terrain; 3 mm noise) with about 2 M points, places the survey
at a random pose (up to +-5 m, any yaw, +-5 degrees of tilt) and asks each method for
``T_model_from_survey``. A trial passes within 5 mm (largest error at the building's
corners) and 0.05 degrees, in under 60 s.

    python bench/registration.py            # 3 seeded trials
    python bench/registration.py --full     # the 20 trials of the target (19 must pass)
    python bench/registration.py --placement   # georeferenced LAS and unscaled SfM cloud (issue 15)

``--placement`` runs the two placements that need no pose search from scratch, each against
its alternative: a LAS in CGCS2000 / Gauss-Kruger (EPSG:4547) with a GNSS error, placed by its
CRS and the model's map conversion then ICP, against automatic registration that ignores the
CRS and the georeference alone (target 5 mm / 0.05 deg); and a structure-from-motion cloud of
60 % of the building (unscaled, 5 mm noise) by sitetwin's similarity search against Open3D's
FPFH + RANSAC + ICP with scaling on the extent-normalised cloud (target: scale within 0.1 %).
Writes bench/results/registration_placement.json.

The alternative, FPFH + RANSAC + point-to-plane ICP as in Open3D's tutorials, runs on the
first three trials only (``--baseline-trials``): it takes minutes per trial here.

Prints a table and writes bench/results/registration.json (with the load average).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import RESULTS

EPOCH = dt.date(2026, 5, 10)
TOL_M, TOL_DEG, TOL_S = 0.005, 0.05, 60.0


def setup(work: Path):
    from sitetwin.bim.load import load_model
    from sitetwin.bim.mesh import load_mesh
    from sitetwin.data.store import open_store
    from sitetwin.synth import build_demo_building, draw_as_built
    from sitetwin.twin.distance import SurfaceIndex
    from sitetwin.twin.plan import element_plan, planned_mask

    info = build_demo_building(work / "demo.ifc")
    with open_store(work / "bench.duckdb") as store:
        load_model(store, info.path, site_code="DEMO")
        model_id = store.scalar("SELECT model_id FROM models")
        mesh = load_mesh(store, model_ids=[model_id])
        truth = draw_as_built(store, mesh, [model_id], seed=0)
        planned, _ = planned_mask(element_plan(store, "DEMO", [model_id]), mesh, EPOCH)
    index = SurfaceIndex.from_mesh(mesh.subset(planned))
    return mesh, truth, index, planned


def survey(mesh, truth, seed: int, points: int):
    from sitetwin.synth import random_pose, simulate_epoch

    rng = np.random.default_rng(1000 + seed)
    T = random_pose(rng, max_shift_m=5.0, max_tilt_deg=5.0, centre_m=mesh.bounds().mean(axis=0))
    sim = simulate_epoch(mesh, truth, EPOCH, seed=seed, T_model_from_survey=T, points_per_station=points // 12)
    pts = sim.points_in_survey_frame()
    station_of = np.concatenate([np.full(len(s.points), i) for i, s in enumerate(sim.scans)])
    stations = np.array([s.T_survey_from_scan[:3, 3] for s in sim.scans])
    return T, pts, station_of, stations


def corners(mesh) -> np.ndarray:
    b = mesh.bounds()
    return np.array([[x, y, z] for x in b[:, 0] for y in b[:, 1] for z in b[:, 2]])


def sitetwin_register(index, pts, station_of, stations):
    from sitetwin.twin.registration import register_auto

    t = time.perf_counter()
    reg = register_auto(index, pts, point_station=station_of, stations=stations)
    return reg.T_model_from_survey, time.perf_counter() - t, {"fitness": reg.fitness, "rmse_mm": reg.rmse_m * 1000,
                                                              "margin": reg.details.get("margin")}


def fpfh_register(index, pts, voxel: float = 0.3):
    """The textbook pipeline: FPFH features + RANSAC on 25 cm voxels, then point-to-plane ICP (Open3D)."""
    import open3d as o3d

    from sitetwin.twin.registration import _sample_index

    reg = o3d.pipelines.registration
    t = time.perf_counter()
    model, normals = _sample_index(index, 0.05, np.random.default_rng(0))
    target = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(model))
    target.normals = o3d.utility.Vector3dVector(normals)
    source = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(pts))

    def features(pc):
        down = pc.voxel_down_sample(voxel)
        down.estimate_normals(o3d.geometry.KDTreeSearchParamHybrid(radius=voxel * 2.5, max_nn=30))
        return down, reg.compute_fpfh_feature(down, o3d.geometry.KDTreeSearchParamHybrid(radius=voxel * 5, max_nn=100))

    src_d, f_src = features(source)
    tgt_d, f_tgt = features(target)
    o3d.utility.random.seed(0)
    coarse = reg.registration_ransac_based_on_feature_matching(
        src_d, tgt_d, f_src, f_tgt, True, voxel * 1.5, reg.TransformationEstimationPointToPoint(False), 3,
        [reg.CorrespondenceCheckerBasedOnEdgeLength(0.9), reg.CorrespondenceCheckerBasedOnDistance(voxel * 1.5)],
        reg.RANSACConvergenceCriteria(20_000, 0.999))
    T = np.asarray(coarse.transformation)
    fine_src = source.voxel_down_sample(0.03)
    fine_tgt = target.voxel_down_sample(0.02)
    fine_tgt.estimate_normals(o3d.geometry.KDTreeSearchParamHybrid(radius=0.1, max_nn=30))
    for dist in (0.5, 0.1, 0.03):
        loss = reg.TukeyLoss(k=dist / 2)
        T = np.asarray(reg.registration_icp(fine_src, fine_tgt, dist, T,
                                            reg.TransformationEstimationPointToPlane(loss),
                                            reg.ICPConvergenceCriteria(max_iteration=40)).transformation)
    return T, time.perf_counter() - t, {"ransac_fitness": coarse.fitness}


def placement(work: Path, repeats: int) -> None:
    """Georeferenced and similarity placements against their alternatives (see the module docstring)."""
    from sitetwin.bim.georef import Georeference
    from sitetwin.bim.queries import model_record
    from sitetwin.data.store import open_store
    from sitetwin.synth import simulate_epoch
    from sitetwin.synth.georef_scans import drone_cloud, georeferenced_las, unscaled
    from sitetwin.twin import registration as reg
    from sitetwin.twin.distance import SurfaceIndex
    from sitetwin.twin.formats import read_scans

    load_start = [round(x, 2) for x in os.getloadavg()]
    mesh, truth, index, planned = setup(work)
    with open_store(work / "bench.duckdb", read_only=True) as store:
        georef = Georeference.from_dict(json.loads(model_record(store, store.scalar("SELECT model_id FROM models"))
                                                   ["georef"]))
    full = SurfaceIndex.from_mesh(mesh)
    rows = []
    print(f"{'case':<16}{'method':<30}{'err mm':>9}{'err deg':>9}{'scale err %':>12}{'seconds':>9}")

    def record(case, method, T_est, T_true, probe, seconds, **extra):
        err_m, err_deg = reg.pose_error(T_est, T_true, points=probe)
        scale_err = (reg.transform_scale(T_est) / reg.transform_scale(T_true) - 1) * 100
        rows.append({"case": case, "method": method, "error_mm": err_m * 1000, "error_deg": err_deg,
                     "scale_error_pct": scale_err, "seconds": seconds, **extra})
        print(f"{case:<16}{method:<30}{err_m * 1000:9.2f}{err_deg:9.4f}{scale_err:12.4f}{seconds:9.1f}", flush=True)

    for seed in range(repeats):
        sim = simulate_epoch(mesh, truth, EPOCH, seed=seed, points_per_station=60_000)
        las = georeferenced_las(work / f"geo{seed}.las", sim.points_in_model_frame(), georef, mesh.origin_m,
                                error_m=(0.04, -0.03, 0.01), error_yaw_deg=0.03)
        scan = read_scans(las.path)[0]
        probe = reg.apply(np.linalg.inv(las.T_local_from_file), corners(mesh))
        t = time.perf_counter()
        where = reg.georeferenced_placement(scan.crs, georef, mesh.origin_m,
                                            np.array([scan.xyz.min(0), scan.xyz.max(0)]))
        r = reg.register_georeferenced(index, scan.xyz, where)
        record(f"georef LAS {seed}", "sitetwin CRS + map conv. + ICP", r.T_model_from_survey, las.T_local_from_file,
               probe, time.perf_counter() - t, points=scan.point_count, offset_m=r.details["georef_offset_m"])
        record(f"georef LAS {seed}", "georeference alone", where.T_local_from_file, las.T_local_from_file, probe, 0.0)
        t = time.perf_counter()
        r = reg.register_auto(index, scan.xyz)
        record(f"georef LAS {seed}", "automatic (CRS ignored)", r.T_model_from_survey, las.T_local_from_file, probe,
               time.perf_counter() - t)

        pts, _ = drone_cloud(mesh, seed=seed + 1, keep_fraction=0.6, noise_m=0.005)
        sfm, T_true = unscaled(pts, scale=0.2371 * (1 + seed), seed=seed + 2)
        probe = reg.apply(np.linalg.inv(T_true), corners(mesh))
        t = time.perf_counter()
        try:
            r = reg.register_similarity(full, sfm)
            record(f"SfM cloud {seed}", "sitetwin similarity", r.T_model_from_survey, T_true, probe,
                   time.perf_counter() - t, points=len(sfm), scale_sigma=r.details["scale_sigma"])
        except reg.RegistrationError as exc:
            rows.append({"case": f"SfM cloud {seed}", "method": "sitetwin similarity", "refused": str(exc)})
            print(f"SfM cloud {seed}  sitetwin similarity refused: {exc}")
        t = time.perf_counter()
        T_o3d = fpfh_similarity(full, sfm)
        record(f"SfM cloud {seed}", "fpfh+ransac+icp, with scaling", T_o3d, T_true, probe, time.perf_counter() - t)
    load_end = [round(x, 2) for x in os.getloadavg()]
    print(f"\nload average {load_start} -> {load_end}; targets: georeferenced 5 mm / 0.05 deg, scale 0.1 %")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "registration_placement.json").write_text(json.dumps(
        {"benchmark": "registration placement", "date": time.strftime("%Y-%m-%d %H:%M:%S"), "host": platform.node(),
         "cpus": os.cpu_count(), "load_average_start": load_start, "load_average_end": load_end, "rows": rows},
        indent=2, default=float))
    print(f"written to {RESULTS / 'registration_placement.json'}")


def fpfh_similarity(index, pts, voxel: float = 0.3):
    """Open3D's textbook pipeline with a scale: the cloud normalised by the ratio of extents, FPFH + RANSAC
    (TransformationEstimationPointToPoint(with_scaling=True)), then scaled point-to-point ICP."""
    import open3d as o3d

    from sitetwin.twin.registration import _robust_extent, _sample_index

    reg = o3d.pipelines.registration
    model, _ = _sample_index(index, 0.05, np.random.default_rng(0))
    s0 = _robust_extent(model) / _robust_extent(pts)
    target = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(model))
    source = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(pts * s0))

    def features(pc):
        down = pc.voxel_down_sample(voxel)
        down.estimate_normals(o3d.geometry.KDTreeSearchParamHybrid(radius=voxel * 2.5, max_nn=30))
        return down, reg.compute_fpfh_feature(down, o3d.geometry.KDTreeSearchParamHybrid(radius=voxel * 5, max_nn=100))

    src_d, f_src = features(source)
    tgt_d, f_tgt = features(target)
    o3d.utility.random.seed(0)
    T = np.asarray(reg.registration_ransac_based_on_feature_matching(
        src_d, tgt_d, f_src, f_tgt, True, voxel * 1.5, reg.TransformationEstimationPointToPoint(True), 4,
        [reg.CorrespondenceCheckerBasedOnEdgeLength(0.9), reg.CorrespondenceCheckerBasedOnDistance(voxel * 1.5)],
        reg.RANSACConvergenceCriteria(20_000, 0.999)).transformation)
    fine_src, fine_tgt = source.voxel_down_sample(0.03), target.voxel_down_sample(0.02)
    for dist in (0.5, 0.1, 0.03):
        T = np.asarray(reg.registration_icp(fine_src, fine_tgt, dist, T, reg.TransformationEstimationPointToPoint(True),
                                            reg.ICPConvergenceCriteria(max_iteration=50)).transformation)
    return T @ np.diag([s0, s0, s0, 1.0])


def main() -> None:
    from sitetwin.twin.registration import apply, pose_error

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--full", action="store_true", help="the 20 trials of the target")
    ap.add_argument("--points", type=int, default=2_000_000)
    ap.add_argument("--baseline-trials", type=int, default=3,
                    help="run FPFH + RANSAC + ICP on this many of the trials (it takes minutes each; 0: none)")
    ap.add_argument("--placement", action="store_true",
                    help="georeferenced LAS and unscaled SfM cloud against their alternatives, then stop")
    ap.add_argument("--repeats", type=int, default=2, help="with --placement: seeded repeats of each case")
    args = ap.parse_args()
    if args.placement:
        placement(Path(tempfile.mkdtemp(prefix="sitetwin-bench-place-")), args.repeats)
        return
    trials = 20 if args.full else args.trials
    load_start = [round(x, 2) for x in os.getloadavg()]
    work = Path(tempfile.mkdtemp(prefix="sitetwin-bench-reg-"))
    mesh, truth, index, planned = setup(work)
    box = corners(mesh)
    rows = []
    print(f"{'trial':>5}{'points':>10}  {'method':<22}{'err mm':>9}{'err deg':>9}{'seconds':>9}  pass")
    for seed in range(trials):
        T, pts, station_of, stations = survey(mesh, truth, seed, args.points)
        probe = apply(np.linalg.inv(T), box)            # the building's corners, in the survey frame
        # this trial's survey bound as defaults (B023), though each closure runs within its trial
        methods = [("sitetwin", lambda pts=pts, station_of=station_of, stations=stations:
                     sitetwin_register(index, pts, station_of, stations))]
        if seed < args.baseline_trials:
            methods.append(("fpfh+ransac+icp", lambda pts=pts: fpfh_register(index, pts)))
        for name, fn in methods:
            T_est, seconds, extra = fn()
            err_m, err_deg = pose_error(T_est, T, points=probe)
            ok = err_m <= TOL_M and err_deg <= TOL_DEG and seconds < TOL_S
            rows.append({"trial": seed, "points": int(len(pts)), "method": name, "error_mm": err_m * 1000,
                         "error_deg": err_deg, "seconds": seconds, "pass": bool(ok), **extra})
            print(f"{seed:>5}{len(pts):>10,}  {name:<22}{err_m * 1000:9.2f}{err_deg:9.4f}{seconds:9.1f}  "
                  f"{'yes' if ok else 'NO'}", flush=True)
    load_end = [round(x, 2) for x in os.getloadavg()]
    summary = {}
    for name in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == name]
        summary[name] = {"passed": sum(r["pass"] for r in mine), "trials": len(mine),
                         "median_s": float(np.median([r["seconds"] for r in mine])),
                         "max_s": float(max(r["seconds"] for r in mine)),
                         "max_error_mm": float(max(r["error_mm"] for r in mine)),
                         "max_error_deg": float(max(r["error_deg"] for r in mine))}
    print(f"\nload average {load_start} -> {load_end}")
    print(f"{'method':<22}{'passed':>10}{'median s':>10}{'max s':>8}{'max mm':>9}{'max deg':>9}")
    for name, s in summary.items():
        print(f"{name:<22}{s['passed']:>5}/{s['trials']:<4}{s['median_s']:10.1f}{s['max_s']:8.1f}"
              f"{s['max_error_mm']:9.2f}{s['max_error_deg']:9.4f}")
    if "fpfh+ransac+icp" in summary:
        a, b = summary["sitetwin"], summary["fpfh+ransac+icp"]
        print(f"sitetwin passes {a['passed']}/{a['trials']} against {b['passed']}/{b['trials']}, "
              f"median time ratio {b['median_s'] / a['median_s']:.2f}x")
    target = "19 of 20 within 5 mm / 0.05 deg, < 60 s each, 2 M points"
    result = {"benchmark": "registration", "date": time.strftime("%Y-%m-%d %H:%M:%S"), "host": platform.node(),
              "cpus": os.cpu_count(), "load_average_start": load_start, "load_average_end": load_end,
              "epoch": str(EPOCH), "planned_elements": int(planned.sum()), "trials": rows, "summary": summary,
              "target": target, "full": trials >= 20,
              "meets": (summary["sitetwin"]["passed"] >= 19) if trials >= 20 else None}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "registration.json").write_text(json.dumps(result, indent=2, default=float))
    print(f"target: {target}; written to {RESULTS / 'registration.json'}")


if __name__ == "__main__":
    main()
