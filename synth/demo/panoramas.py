"""Demo stage "panoramas": site photos rendered from the demo model at known stations, posed, mapped, overlaid.

For each survey epoch (the twin's surveys when that stage ran first, else three dates spread
over the schedule) the model is cut down to what the 4D schedule says was built by then, and
a shaded, textured, noisy 360-degree photo is rendered from a station on every storey whose
floor stands (plus, when surveys exist, at their scan stations). Each photo is imported with
a pose: a given one, one solved from control points, or the survey's scan station. Its
element map is made against the full design, and an overlay (built work by class, planned
work not yet built in red) and a difference image are written beside it for viewing.
"""

from __future__ import annotations

import datetime as _dt
import time
from pathlib import Path
from typing import Any

import numpy as np

DEMO_WIDTH = 2048                 # rendered resolution (height = width / 2): modest, for the time budget
EYE_HEIGHT_M = 1.6                # camera above the storey's floor
CONTROL_POINT_NOISE_PX = 1.0
MAX_SURVEY_STATIONS = 3           # panoramas taken at scan stations, across all surveys

# Site-photo albedo per class (0-255): concrete greys, masonry, glass, timber, safety-yellow steel.
DEMO_CLASS_ALBEDO = {
    "IfcColumn": (172, 170, 164), "IfcBeam": (165, 163, 158), "IfcSlab": (158, 156, 150),
    "IfcWall": (188, 172, 150), "IfcWindow": (118, 150, 176), "IfcDoor": (142, 104, 72),
    "IfcRailing": (232, 190, 40), "IfcStair": (168, 166, 160), "IfcStairFlight": (168, 166, 160),
}


def run(ctx) -> dict:
    from sitetwin.bim.queries import storey_frame
    from sitetwin.data.store import open_store
    from sitetwin.panorama.camera import pose_matrix
    from sitetwin.panorama.io import save_image
    from sitetwin.panorama.overlay import coloring, difference, overlay
    from sitetwin.panorama.pano_store import add_panorama, compute_element_map
    from sitetwin.panorama.render import RayScene, render_equirect
    from sitetwin.synth.demo.model import demo_model

    started = time.perf_counter()
    out_dir = Path(ctx.workdir) / "panoramas"
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(ctx.seed)
    with open_store(ctx.db) as store:
        model = demo_model(store, ctx)
        model_id, mesh, classes, element_storey = model.model_id, model.mesh, model.classes, model.storeys
        levels = storey_frame(store, [model_id])[["name", "elevation_m"]]
        storeys = levels.astype(object).where(levels.notna(), None).to_dict("records")
        epochs = survey_epochs(store, ctx.site_code) or schedule_epochs(store, ctx.site_code)
        finish = built_by(store, ctx.site_code, model_id)
        class_colors = coloring(store, ctx.site_code, "class", model_ids=[model_id]).colors
        stations_by_survey = _survey_stations(store, [e["survey_id"] for e in epochs if e.get("survey_id")])

    albedo = _albedo(mesh, classes)
    design_scene = RayScene(mesh)
    bounds = mesh.bounds()
    made: list[dict[str, Any]] = []
    cp_errors, refined_errors, refined_kept, measure_errors = [], [], [], []
    station_budget = MAX_SURVEY_STATIONS
    for k, epoch in enumerate(epochs):
        when = epoch["epoch"]
        built = np.array([finish.get(g, _dt.date.min) <= when for g in mesh.global_ids.tolist()])
        if not built.any():
            continue
        site_now = mesh.subset(built)
        scene = RayScene(site_now)
        stations = _storey_stations(storeys, built, mesh, element_storey, bounds)
        shots = [(name, pose_matrix(pos, yaw_deg=yaw), "given") for name, pos, yaw in stations]
        survey_id = epoch.get("survey_id")
        scanned = stations_by_survey.get(survey_id, []) if survey_id is not None else []
        for station in scanned[:max(0, station_budget)]:
            shots.append((f"scan {station['scan_index']}", station["T"], "survey"))
            station_budget -= 1
        for j, (name, T, how) in enumerate(shots):
            seed = int(ctx.seed * 1000 + k * 50 + j)
            photo = render_equirect(site_now, T, DEMO_WIDTH, DEMO_WIDTH // 2, element_colors=albedo, seed=seed,
                                    scene=scene)
            stem = f"{when.isoformat()}_{name.replace(' ', '-').lower()}"
            path = save_image(out_dir / f"{stem}.jpg", photo.image, quality=90)
            captured = _dt.datetime.combine(when, _dt.time(10, 0)) + _dt.timedelta(minutes=7 * j)
            with open_store(ctx.db) as store:
                if how == "survey":
                    from sitetwin.panorama.pose import survey_pose

                    scan_index = int(name.split()[-1])
                    pose = survey_pose(store, epoch["survey_id"], scan_index)
                    report = add_panorama(store, path, model_id=model_id, pose=pose, captured_at=captured,
                                          name=f"{when} {name}")
                elif j == 0:
                    # the first station of each epoch is placed from control points, as on site, then
                    # refined from the photo's edges (pano add --refine)
                    cps = _control_points(site_now, photo, T, rng)
                    report = add_panorama(store, path, model_id=model_id, control_points=cps, captured_at=captured,
                                          name=f"{when} {name}", refine=True)
                    final = np.asarray(report.pose["position_m"])
                    refined = report.pose["refined"]
                    from_points = final - np.asarray(refined["delta_position_cm"]) / 100.0
                    cp_errors.append(float(np.linalg.norm(from_points - T[:3, 3])))
                    refined_errors.append(float(np.linalg.norm(final - T[:3, 3])))
                    refined_kept.append(bool(refined["accepted"]))
                else:
                    report = add_panorama(store, path, model_id=model_id, pose=T, captured_at=captured,
                                          name=f"{when} {name}")
                emap = compute_element_map(store, report.pano_id, mesh=mesh, scene=design_scene)
            # progress overlay: built work by class; design elements the photo should not show yet in red
            planned = {g: (225, 50, 50) for g, b in zip(mesh.global_ids.tolist(), built) if not b}
            save_image(out_dir / f"{stem}_overlay.jpg",
                       overlay(photo.image, emap, {**class_colors, **planned}, style="both", alpha=0.35))
            diff = difference(photo.image, emap)
            save_image(out_dir / f"{stem}_difference.jpg", diff.image)
            err = _measure_check(site_now, photo, T)
            if err is not None:
                measure_errors.append(err)
            made.append({"pano_id": report.pano_id, "epoch": when.isoformat(), "station": name,
                         "pose_source": report.pose_source, "file": str(path), "coverage": round(emap.coverage, 4),
                         "edges_confirmed": round(diff.supported_share, 3)})
    ctx.results["panoramas"] = made
    return {"panoramas": len(made), "epochs": len({m["epoch"] for m in made}),
            "pose sources": ",".join(sorted({m["pose_source"] for m in made})),
            "control-point position error (cm, max)": round(100 * max(cp_errors), 2) if cp_errors else None,
            "refined from the photo's edges": f"{sum(refined_kept)}/{len(refined_kept)}",
            "position error after refinement (cm, max)": (round(100 * max(refined_errors), 2) if refined_errors
                                                          else None),
            "measurement error (%, max)": round(max(measure_errors), 3) if measure_errors else None,
            "folder": str(out_dir), "seconds": round(time.perf_counter() - started, 1)}


def survey_epochs(store, site_code: str) -> list[dict[str, Any]]:
    """The site's surveys with an epoch, oldest first (empty before the surveys stage)."""
    from sitetwin.twin.queries import survey_epochs as dated_surveys

    surveys = dated_surveys(store, site_code).sort_values(["epoch", "survey_id"], kind="stable")
    return [{"epoch": e.date(), "survey_id": sid} for e, sid in zip(surveys["epoch"], surveys["survey_id"])]


def schedule_epochs(store, site_code: str, count: int = 3) -> list[dict[str, Any]]:
    """``count`` dates spread over the site's schedule (the last one: everything finished)."""
    from sitetwin.bim.queries import schedule_span

    schedule = schedule_span(store, site_code)
    if schedule["start"] is None:
        return [{"epoch": _dt.date.today()}]
    a, b = schedule["start"].date(), schedule["finish"].date()
    span = (b - a).days
    return [{"epoch": a + _dt.timedelta(days=round(span * f))} for f in np.linspace(1.0 / count, 1.0, count)]


def built_by(store, site_code: str, model_id: str) -> dict[str, _dt.date]:
    """GlobalId -> the date its (latest) task finishes; elements without a task are taken as built."""
    import pandas as pd

    from sitetwin.bim.queries import element_finish

    ends = element_finish(store, site_code, model_id=model_id)
    return {g: f.date() for g, f in zip(ends["global_id"], ends["finish"]) if pd.notna(f)}


def _albedo(mesh, classes: dict[str, str]) -> np.ndarray:
    base = np.array([DEMO_CLASS_ALBEDO.get(classes.get(g, ""), (160, 158, 152)) for g in mesh.global_ids.tolist()],
                    dtype=np.float64)
    # pours and batches differ a little from element to element
    jitter = np.random.default_rng(7).uniform(-10, 10, (len(base), 1))
    return np.clip(base + jitter, 0, 255)


def _storey_stations(storeys, built, mesh, element_storey, bounds) -> list[tuple[str, np.ndarray, float]]:
    """(name, position, yaw) of one station per storey whose floor is built, inside the building."""
    gids = mesh.global_ids.tolist()
    standing = {element_storey.get(g) for g, b in zip(gids, built) if b}
    out = []
    lo, hi = bounds
    for i, s in enumerate(storeys):
        if s["name"] not in standing:
            continue
        # stand off-centre in a bay, away from the grid lines, turning a little per storey
        x = lo[0] + 0.4 * (hi[0] - lo[0]) + 1.3
        y = lo[1] + 0.45 * (hi[1] - lo[1]) - 1.1
        out.append((s["name"], np.array([x, y, s["elevation_m"] + EYE_HEIGHT_M]), 15.0 + 40.0 * i))
    return out


def _survey_stations(store, survey_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    if not survey_ids:
        return {}
    from sitetwin.twin.survey_store import scan_stations

    out = {}
    for sid in survey_ids:
        out[sid] = [{"scan_index": s.scan_index, "T": s.T_model_from_scan} for s in scan_stations(store, sid)
                    if getattr(s, "station_known", True)]
    return out


def _control_points(mesh, photo, T, rng, count: int = 8):
    """``count`` visible model corners with their pixels (1 px noise), as a surveyor would pick them."""
    from sitetwin.panorama.camera import project_points
    from sitetwin.panorama.pose import ControlPoints

    W = photo.image.shape[1]
    H = photo.image.shape[0]
    verts = np.unique(np.asarray(mesh.vertices, dtype=np.float64)[np.unique(mesh.faces)], axis=0)
    uv, rng_m = project_points(verts, T, W, H)
    col = np.clip(np.floor(uv[:, 0]).astype(int), 0, W - 1)
    row = np.clip(np.floor(uv[:, 1]).astype(int), 0, H - 1)
    visible = np.abs(photo.depth_m[row, col] - rng_m) < 0.03 * rng_m
    visible &= (rng_m > 1.5) & (rng_m < 25.0) & (uv[:, 1] > 0.1 * H) & (uv[:, 1] < 0.9 * H)
    candidates = np.flatnonzero(visible)
    # spread round the horizon: best candidate per azimuth sector
    sectors = (uv[candidates, 0] * count / W).astype(int)
    chosen = []
    for s in range(count):
        pool = candidates[sectors == s]
        if len(pool):
            chosen.append(int(rng.choice(pool)))
    if len(chosen) < 4:
        chosen = list(rng.choice(candidates, size=min(count, len(candidates)), replace=False))
    noisy = uv[chosen] + rng.normal(0.0, CONTROL_POINT_NOISE_PX, (len(chosen), 2))
    noisy[:, 0] %= W
    noisy[:, 1] = np.clip(noisy[:, 1], 0, H - 1e-3)
    return ControlPoints(noisy, verts[chosen], tuple(f"corner {i}" for i in range(len(chosen))))


def _measure_check(mesh, photo, T) -> float | None:
    """Measure between two visible floor-level column corners in the photo; relative error in %."""
    from sitetwin.panorama.camera import project_points
    from sitetwin.panorama.measure import distance, model_point
    from sitetwin.panorama.render import RayScene

    W, H = photo.image.shape[1], photo.image.shape[0]
    z0 = T[2, 3] - EYE_HEIGHT_M
    verts = np.asarray(mesh.vertices, dtype=np.float64)
    near_floor = verts[np.abs(verts[:, 2] - z0) < 1e-3]
    if len(near_floor) < 2:
        return None
    uv, rng_m = project_points(near_floor, T, W, H)
    col = np.clip(np.floor(uv[:, 0]).astype(int), 0, W - 1)
    row = np.clip(np.floor(uv[:, 1]).astype(int), 0, H - 1)
    # a corner where the floor meets a column or wall: the range is continuous around it, so a
    # click a pixel off still lands on the same corner (not on something far behind a silhouette)
    window = np.stack([photo.depth_m[np.clip(row + dr, 0, H - 1), (col + dc) % W]
                       for dr in (-2, 0, 2) for dc in (-2, 0, 2)], 1)
    smooth = np.all(np.abs(window - rng_m[:, None]) < 0.05 * rng_m[:, None], axis=1)
    # and the corner itself is what its pixel sees, not something standing in front of it
    seen = np.abs(photo.depth_m[row, col] - rng_m) < np.maximum(0.02, 0.003 * rng_m)
    ok = np.flatnonzero(smooth & seen & (rng_m > 2) & (rng_m < 12))
    if len(ok) < 2:
        return None
    # the widest pair of such corners, whatever order the mesh lists its vertices in
    from scipy.spatial.distance import pdist, squareform

    far = squareform(pdist(near_floor[ok]))
    i, j = np.unravel_index(np.argmax(far), far.shape)
    a, b = ok[i], ok[j]
    scene = RayScene(mesh)
    click = np.floor(uv) + 0.5          # a user clicks pixel centres
    pa = model_point(scene, T, click[a], W, H)
    pb = model_point(scene, T, click[b], W, H)
    if pa is None or pb is None:
        return None
    true = float(np.linalg.norm(near_floor[a] - near_floor[b]))
    return 100.0 * abs(distance(pa, pb).distance_m - true) / true
