"""A small, seeded demo site for the workbench's tests and benchmark, made through the libraries.

On top of a store holding the demo building (site DEMO), :func:`populate_site` adds:

- two scan surveys simulated from the model (``sitetwin.synth.scans``) at two dates of the
  schedule, with some elements late, some displaced (out of tolerance), some partly built,
  written as E57 and added with twin's own pipeline (``twin.survey.add_survey``: deviation,
  status, histograms, unplanned objects);
- two posed panoramas rendered with ``panorama.render`` (with worker figures from
  ``sitetwin.synth.workers``), imported with ``panorama.pano_store.add_panorama``, with element maps;
- detections from the rendered workers' boxes (``sitetwin.synth.workers.labels_from_render``) tagged
  with the element under each figure's feet, hazards with evidence crops, and a finding
  per hazard (``oversight.raise_finding``), written with ``vision.detection_store``;
- the demo sensors (``sitetwin.synth.demo.sensors.register_demo_devices``) and a CSV of wind readings
  over the limit on the roof weather station, imported with ``sensors.importer``, which
  leaves a warning open on the roof slab.

The simulation's truth (late, displaced and partial elements) is returned with the ids made.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from typing import Any

import numpy as np

SITE = "DEMO"


def populate_site(db: str | Path, *, seed: int = 0, pano_width: int = 1024, angular_step_deg: float = 0.5,
             now: dt.datetime | None = None) -> dict:
    """Add surveys, panoramas, detections, hazards, findings and sensors to the DEMO site in ``db``."""
    import pandas as pd

    from sitetwin.bim.mesh import load_mesh
    from sitetwin.bim.queries import current_model_ids, element_finish, element_frame, storey_frame
    from sitetwin.data.sites import upsert_site
    from sitetwin.data.store import open_store

    rng = np.random.default_rng(seed)
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None).replace(microsecond=0)
    facts: dict = {}
    with open_store(db) as store:
        with store.transaction():
            upsert_site(store, SITE, name="Riverside Tower (test)", district="Jiang'an", city="Wuhan")
        model_id = current_model_ids(store, SITE)[0]
        mesh = load_mesh(store, model_ids=[model_id])
        elements = element_frame(store, model_ids=[model_id])[["global_id", "ifc_class", "storey"]]
        rows = elements.astype(object).where(elements.notna(), None).to_dict("records")
        storeys = storey_frame(store, [model_id])[["name", "elevation_m"]]
        levels = dict(storeys.astype(object).where(storeys.notna(), None).itertuples(index=False))
        ends = element_finish(store, SITE)
        finish = {g: f.date() for g, f in zip(ends["global_id"], ends["finish"]) if pd.notna(f)}
    info = {r["global_id"]: r for r in rows}
    gids = mesh.global_ids.tolist()
    classes = np.array([info[g]["ifc_class"] for g in gids], dtype=object)
    floor_of = np.array([levels.get(info[g]["storey"]) for g in gids], dtype=object)
    days = sorted(set(finish.values()))
    epochs = [days[int(len(days) * 0.35)], days[int(len(days) * 0.7)]]
    facts["epochs"] = epochs
    facts["model_id"] = model_id
    surveys = []
    # what stands stays standing, where it was built: later surveys see it again
    site = {"standing": np.zeros(len(gids), bool), "disp": np.zeros((len(gids), 3))}
    for k, epoch in enumerate(epochs):
        surveys.append(_survey(db, mesh, classes, floor_of, finish, epoch, k, rng, angular_step_deg, site))
    facts["surveys"] = surveys
    facts["panoramas"] = _panoramas(db, mesh, classes, finish, epochs[-1], model_id, rng, pano_width)
    facts["sensors"] = _sensors(db, now)
    return facts


# --------------------------------------------------------------------------------------
# surveys

def _survey(db, mesh, classes, floor_of, finish, epoch: dt.date, k: int, rng, step_deg: float, site: dict) -> dict:
    from sitetwin.data.store import open_store
    from sitetwin.synth.scans import default_stations, simulate_survey, site_clutter
    from sitetwin.twin.formats import write_e57
    from sitetwin.twin.survey import add_survey

    gids = mesh.global_ids.tolist()
    n = len(gids)
    planned = np.array([finish.get(g, dt.date.min) <= epoch for g in gids])
    standing = site["standing"]
    built = planned | standing
    # a few planned elements are late (not built), a few stand only in part, a few are displaced
    cand = np.flatnonzero(planned & ~standing & np.isin(classes, ["IfcColumn", "IfcWall", "IfcBeam"]))
    late = rng.choice(cand, size=max(2, len(cand) // 25), replace=False)
    built[late] = False
    rest = np.setdiff1d(cand, late)
    partial = np.zeros(n, bool)
    partial[rng.choice(rest, size=max(2, len(rest) // 30), replace=False)] = True
    moved = rng.choice(np.setdiff1d(rest, np.flatnonzero(partial)), size=max(3, len(rest) // 20), replace=False)
    disp = site["disp"].copy()
    directions = rng.normal(size=(len(moved), 3))
    directions[:, 2] = 0
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    disp[moved] = directions * rng.uniform(0.015, 0.035, (len(moved), 1))
    bounds = mesh.bounds()
    # a station pair on every floor whose slab stands, as surveyors do
    floors = sorted({float(floor_of[i]) for i in np.flatnonzero(built & (classes == "IfcSlab"))
                     if floor_of[i] is not None})
    stations = default_stations(bounds, floors or [0.0], per_floor=2, outside=3)
    clutter = site_clutter(bounds, [0.0], seed=k)
    sim = simulate_survey(mesh, stations_m=stations, built=built, partial=partial, displacement_m=disp,
                          element_classes=list(classes), angular_step_deg=step_deg, clutter=clutter,
                          terrain_z_m=-0.02, seed=100 + k)
    with open_store(db) as store:
        assert store.path is not None       # a store file, not an in-memory one
        scan_file = write_e57(Path(store.cache_dir).parent / f"{Path(store.path).stem}-scans" / f"epoch-{epoch}.e57",
                              sim.scans)
        # the simulated survey frame is the site's frame: no registration needed (twin's "none")
        report = add_survey(store, [scan_file], model_ids=[mesh.model_ids[0]], epoch=epoch, register="none",
                            name=f"simulated survey {epoch}")
    site["standing"] = built & ~partial
    site["disp"] = disp
    return {"survey_id": report.survey_id, "epoch": epoch, "points": report.point_count,
            "late": [gids[i] for i in late], "moved": [gids[i] for i in moved],
            "partial": [gids[i] for i in np.flatnonzero(partial)], "statuses": dict(report.status_counts),
            "objects": report.unplanned_objects}


# --------------------------------------------------------------------------------------
# panoramas, detections, hazards, findings

def _panoramas(db, mesh, classes, finish, epoch: dt.date, model_id: str, rng, width: int) -> list[dict]:
    from sitetwin.data.store import open_store
    from sitetwin.oversight.findings import raise_finding
    from sitetwin.panorama.camera import pose_matrix
    from sitetwin.panorama.io import save_image
    from sitetwin.panorama.pano_store import add_panorama, compute_element_map, pano_dir
    from sitetwin.panorama.render import RayScene, render_equirect
    from sitetwin.synth.workers import Worker, labels_from_render, worker_extra
    from sitetwin.vision.detection_store import insert_detections, insert_hazards, new_id

    gids = mesh.global_ids.tolist()
    built = np.array([finish.get(g, dt.date.min) <= epoch for g in gids])
    site_now = mesh.subset(built)
    lo, hi = mesh.bounds()
    stations = [("ground floor west", np.array([lo[0] + 4.5, (lo[1] + hi[1]) / 2, 1.6]), 0.0),
                ("ground floor east", np.array([hi[0] - 4.5, (lo[1] + hi[1]) / 2 + 1.0, 1.6]), 180.0)]
    out = []
    full_scene = RayScene(mesh)
    for j, (name, pos, yaw) in enumerate(stations):
        T = pose_matrix(pos, yaw_deg=yaw)
        ahead = np.array([np.cos(np.radians(yaw)), np.sin(np.radians(yaw)), 0.0])
        workers = {"w1": Worker(tuple(pos + 3.5 * ahead - [0, 0, 1.6]), heading_deg=yaw + 180, hard_hat=False),
                   "w2": Worker(tuple(pos + 3.0 * ahead + [0, 2.0, -1.6]), heading_deg=yaw + 150, hard_hat=True)}
        extras = [worker_extra(w, k) for k, w in workers.items()]
        albedo = np.array([(172, 170, 164) if c in ("IfcColumn", "IfcBeam", "IfcSlab") else (188, 172, 150)
                           for c in classes], dtype=np.float64)
        photo = render_equirect(site_now, T, width, width // 2, element_colors=albedo, seed=int(rng.integers(1 << 30)),
                                extra=extras)
        labels = labels_from_render(photo, workers, wrap=True)
        captured = dt.datetime.combine(epoch, dt.time(9, 30)) + dt.timedelta(minutes=11 * j)
        with open_store(db) as store:
            assert store.path is not None   # a store file, not an in-memory one
            path = save_image(Path(store.cache_dir).parent / f"{Path(store.path).stem}-panos" / f"pano-{j}.jpg",
                              photo.image, quality=90)
            report = add_panorama(store, path, model_id=model_id, pose=T, captured_at=captured, name=name)
            emap = compute_element_map(store, report.pano_id, mesh=mesh, scene=full_scene)
            run_id = "R" + hashlib.sha256(f"sitegen{j}".encode()).hexdigest()[:11]
            detections: list[dict[str, Any]] = []
            hazards: list[dict[str, Any]] = []
            for lab in labels:
                x1, y1, x2, y2 = lab.xyxy
                foot = emap.at(min((x1 + x2) / 2, width - 0.5), min(y2 + 2.0, width / 2 - 0.5))
                w = workers[lab.worker]
                det_id = new_id("D")
                detections.append({"detection_id": det_id, "site_code": SITE, "source_kind": "panorama",
                                   "source_ref": report.pano_id, "captured_at": captured, "class_name": lab.class_name,
                                   "confidence": float(0.6 + 0.35 * rng.random()), "x1": x1, "y1": y1, "x2": x2,
                                   "y2": y2, "pano_id": report.pano_id, "model_id": foot.model_id if foot else None,
                                   "global_id": foot.global_id if foot else None,
                                   "x_m": w.position_m[0], "y_m": w.position_m[1], "z_m": w.position_m[2],
                                   "run_id": run_id})
                if lab.class_name == "head":
                    crop = photo.image[int(y1):int(np.ceil(y2)) + 20, int(x1):int(np.ceil(x2))]
                    hid = new_id("H")
                    rel = Path("vision") / "evidence" / run_id / f"{hid}.jpg"
                    save_image(Path(store.cache_dir) / rel, crop if crop.size else photo.image[:8, :8], quality=90)
                    hazards.append({"hazard_id": hid, "site_code": SITE, "rule": "no_hard_hat", "severity": "high",
                                    "message": f"worker without a hard hat at {name}", "started_at": captured,
                                    "ended_at": captured, "duration_s": 0.0, "source_kind": "panorama",
                                    "source_ref": report.pano_id, "pano_id": report.pano_id,
                                    "storey": "Level 0", "model_id": foot.model_id if foot else None,
                                    "global_id": foot.global_id if foot else None, "x_m": w.position_m[0],
                                    "y_m": w.position_m[1], "z_m": w.position_m[2], "detection_ids": [det_id],
                                    "evidence": {"crops": [str(rel)], "pano_id": report.pano_id,
                                                 "box_px": [x1, y1, x2, y2]}, "run_id": run_id})
            with store.transaction():
                insert_detections(store, detections)
                for h in hazards:
                    h["finding_id"] = raise_finding(
                        store, site_code=SITE, category="safety", severity=h["severity"],
                        title="Worker without a hard hat", description=h["message"], raised_by="vision",
                        global_id=h["global_id"], model_id=h["model_id"] if h["global_id"] else None,
                        location_m=[h["x_m"], h["y_m"], h["z_m"]], evidence=h["evidence"], source="vision",
                        source_ref=h["hazard_id"], at=captured)
                insert_hazards(store, hazards)
            out.append({"pano_id": report.pano_id, "name": name, "detections": len(detections),
                        "hazards": [h["hazard_id"] for h in hazards], "folder": str(pano_dir(store, report.pano_id)),
                        "position_m": pos.tolist(), "width": width})
    return out


# --------------------------------------------------------------------------------------
# sensors

def _sensors(db, now: dt.datetime) -> dict:
    import csv
    import tempfile

    from sitetwin.data.store import open_store
    from sitetwin.sensors.importer import import_file
    from sitetwin.sensors.registry import get_device
    from sitetwin.sensors.warnings import list_warnings
    from sitetwin.synth.demo.sensors import ROLES, register_demo_devices

    with open_store(db) as store:
        with store.transaction():
            ids = register_demo_devices(store, SITE, installed_on=(now - dt.timedelta(days=10)).date(), now=now)
        device = ROLES["weather"]
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "wind.csv"
            with open(path, "w", newline="") as fh:
                w = csv.writer(fh)
                w.writerow(["device_id", "measured_at", "channel", "value"])
                for i in range(30):
                    t = now - dt.timedelta(minutes=30 - i)
                    w.writerow([device, t.strftime("%Y-%m-%dT%H:%M:%S+00:00"), "wind_ms", 6.0 if i < 20 else 14.5])
            report = import_file(store, path, now=now, findings=False)
        host = get_device(store, device).global_id
        active = len(list_warnings(store, device_id=device, active=True))
    return {"devices": ids, "warned_device": device, "warned_host": host, "active_warnings": int(active),
            "readings": report.readings}
