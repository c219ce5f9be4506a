"""Demo stage "surveys": three laser-scan epochs of the demo building, registered and analysed.

The site runs a little behind its IFC schedule: one as-built story, drawn once (seeded),
serves every epoch. Most elements are finished on their planned day; some a week or two
late, a few not by the last epoch; elements being built on a survey day stand half high;
a handful stand 10-40 mm off their design position. Each epoch is scanned from stations on
every floor that stands and round the building, with scaffolding, material stacks and a site
container in the way, written as an E57 file (one scan per station, each with its pose) at
an unknown pose, and added with automatic registration.
"""

from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass

import numpy as np

# Survey days counted from the first day of the demo building's schedule (a Monday).
DEMO_EPOCH_DAYS = (39, 69, 102)
LATE_SHARE = 0.06            # elements finished 5-20 days late
NEVER_SHARE = 0.02           # elements not finished by the last epoch
DISPLACED = 6                # elements standing 10-40 mm off their design position
PARTIAL_DAYS = 6             # an element is half built this many days before it is finished
POINTS_PER_STATION = 70_000
NOISE_M = 0.003


@dataclass(frozen=True)
class AsBuilt:
    """The simulated truth of the demo site: when each element really stood, and where."""

    finish: np.ndarray            # (k,) datetime64[D] actual finish (NaT: not by the last epoch)
    displacement_m: np.ndarray    # (k, 3)
    planned_finish: np.ndarray    # (k,) datetime64[D]
    classes: np.ndarray           # (k,) IFC class per mesh element

    def state(self, epoch: _dt.date) -> tuple[np.ndarray, np.ndarray]:
        """(built, partial) per element at ``epoch``: partial ones stand half high."""
        e = np.datetime64(epoch, "D")
        done = ~np.isnat(self.finish) & (self.finish <= e)
        started = ~np.isnat(self.finish) & (self.finish - np.timedelta64(PARTIAL_DAYS, "D") <= e) & ~done
        # only walls and columns are visibly half built; other classes appear when finished
        partial = started & np.isin(self.classes, ["IfcWall", "IfcColumn"])
        return done | partial, partial


def demo_epochs(store, site_code: str) -> list[_dt.date]:
    """The survey days of the demo: fixed offsets from the first day of the site's schedule."""
    from sitetwin.bim.queries import schedule_span

    first = schedule_span(store, site_code)["start"]
    if first is None:
        raise ValueError(f"site {site_code} has no schedule to date the demo surveys from")
    return [first.date() + _dt.timedelta(days=d) for d in DEMO_EPOCH_DAYS]


def draw_as_built(store, mesh, model_ids, *, seed: int = 0) -> AsBuilt:
    """Seeded as-built history for the mesh's elements from the schedule in the store."""
    from sitetwin.bim.queries import model_record
    from sitetwin.twin.plan import element_plan

    model = model_record(store, model_ids[0])
    if model is None:
        raise ValueError(f"no model {model_ids[0]} in the store to draw an as-built history for")
    site = model["site_code"]
    epochs = demo_epochs(store, site)
    plan = element_plan(store, site, model_ids)
    key = {(m, g): (c, f) for m, g, c, f in zip(plan["model_id"], plan["global_id"], plan["ifc_class"],
                                                 plan["planned_finish"])}
    k = mesh.element_count
    classes = np.empty(k, dtype=object)
    planned = np.empty(k, dtype="datetime64[D]")
    for i, (m, g) in enumerate(zip(mesh.model_ids.tolist(), mesh.global_ids.tolist())):
        c, f = key.get((m, g), (None, None))
        classes[i] = c
        planned[i] = np.datetime64("NaT") if f is None or f != f else np.datetime64(f, "D")
    # draws go in GlobalId order: the mesh's element order depends on tessellation threads
    rng = np.random.default_rng(seed + 101)
    by_gid = np.argsort(mesh.global_ids, kind="stable")

    def draw(values: np.ndarray) -> np.ndarray:
        out = np.empty_like(values)
        out[by_gid] = values
        return out

    delay = np.zeros(k, dtype="timedelta64[D]")
    late = draw(rng.random(k)) < LATE_SHARE
    delay[late] = draw(rng.integers(5, 21, k))[late].astype("timedelta64[D]")
    finish = planned + delay
    last = np.datetime64(epochs[-1], "D")
    never = (draw(rng.random(k)) < NEVER_SHARE) & ~np.isin(classes, ["IfcSlab"])
    finish[never] = np.datetime64("NaT")
    finish[np.isnat(planned)] = planned[np.isnat(planned)]
    disp = np.zeros((k, 3))
    eligible = np.isin(classes, ["IfcColumn", "IfcWall", "IfcBeam"]) & ~never & (finish <= last)
    candidates = by_gid[eligible[by_gid]]
    lo, hi = _element_boxes(mesh)
    for e in rng.choice(candidates, size=min(DISPLACED, len(candidates)), replace=False):
        size = hi[e] - lo[e]
        magnitude = rng.uniform(0.010, 0.040)
        sign = rng.choice([-1.0, 1.0])
        if classes[e] == "IfcColumn":
            a = rng.uniform(0, 2 * math.pi)
            disp[e] = magnitude * np.array([math.cos(a), math.sin(a), 0.0])
        else:   # walls and beams: across their length, where their faces show it
            axis = 0 if size[0] < size[1] else 1
            disp[e, axis] = sign * magnitude
    return AsBuilt(finish=finish, displacement_m=disp, planned_finish=planned, classes=classes)


def _element_boxes(mesh) -> tuple[np.ndarray, np.ndarray]:
    k = mesh.element_count
    lo = np.full((k, 3), np.inf)
    hi = np.full((k, 3), -np.inf)
    tri = mesh.vertices[mesh.faces].astype(np.float64)
    np.minimum.at(lo, mesh.face_element, tri.min(axis=1))
    np.maximum.at(hi, mesh.face_element, tri.max(axis=1))
    return lo, hi


def floor_levels(mesh, built: np.ndarray, classes: np.ndarray) -> list[float]:
    """Tops of the built slabs (rounded to 5 cm): the floors a scanner can stand on."""
    lo, hi = _element_boxes(mesh)
    slabs = np.flatnonzero(built & (classes == "IfcSlab"))
    tops = sorted({round(float(hi[e, 2]) * 20) / 20 for e in slabs})
    # a floor is a level with a real slab area, not an upstand
    area: dict[float, float] = {}
    for e in slabs:
        t = round(float(hi[e, 2]) * 20) / 20
        area[t] = area.get(t, 0.0) + float((hi[e, 0] - lo[e, 0]) * (hi[e, 1] - lo[e, 1]))
    return [t for t in tops if area[t] > 20.0]


def simulate_epoch(mesh, truth: AsBuilt, epoch: _dt.date, *, seed: int = 0, T_model_from_survey=None,
                   points_per_station: int = POINTS_PER_STATION, noise_m: float = NOISE_M):
    """The survey of the demo site on ``epoch`` (a ``SimulatedSurvey``)."""
    from sitetwin.synth.scans import default_stations, simulate_survey, site_clutter, step_for_points

    built, partial = truth.state(epoch)
    levels = floor_levels(mesh, built, truth.classes)
    bounds = mesh.bounds()
    ground = float(bounds[0][2]) + 0.05
    stations = default_stations(bounds, levels, ground_m=ground + 0.15)
    return simulate_survey(
        mesh, stations_m=stations, built=built, partial=partial, displacement_m=truth.displacement_m,
        element_classes=list(truth.classes), noise_m=noise_m,
        angular_step_deg=step_for_points(points_per_station), clutter=site_clutter(bounds, levels, seed=seed,
                                                                                    ground_m=ground),
        terrain_z_m=ground, T_model_from_survey=T_model_from_survey, seed=seed)


def run(ctx) -> dict:
    """Simulate, write and add the three survey epochs; facts for the demo summary."""
    from sitetwin.bim.mesh import load_mesh
    from sitetwin.data.store import open_store
    from sitetwin.synth.scans import random_pose
    from sitetwin.twin.formats import write_e57
    from sitetwin.twin.progress import progress_report
    from sitetwin.twin.survey import add_survey

    model_id = ctx.results["model_id"]
    folder = ctx.workdir / "surveys"
    folder.mkdir(parents=True, exist_ok=True)
    with open_store(ctx.db, read_only=True) as store:
        mesh = load_mesh(store, model_ids=[model_id])
        truth = draw_as_built(store, mesh, [model_id], seed=ctx.seed)
        epochs = demo_epochs(store, ctx.site_code)
    rng = np.random.default_rng(ctx.seed + 7)
    centre = mesh.bounds().mean(axis=0)
    files, reports = [], []
    for i, epoch in enumerate(epochs):
        day = epoch.isoformat()
        T_true = random_pose(rng, centre_m=centre)
        sim = simulate_epoch(mesh, truth, epoch, seed=ctx.seed + i, T_model_from_survey=T_true)
        path = write_e57(folder / f"epoch-{i + 1}-{day}.e57", sim.scans)
        files.append(path)
        with open_store(ctx.db) as store:
            report = add_survey(store, [path], model_ids=[model_id], epoch=epoch, register="auto")
        reports.append(report)
    with open_store(ctx.db, read_only=True) as store:
        progress = progress_report(store, site_code=ctx.site_code)
    ctx.results["survey_ids"] = [r.survey_id for r in reports]
    ctx.results["survey_files"] = files
    last = reports[-1]
    return {"surveys": len(reports), "points": sum(r.point_count for r in reports),
            "fitness": round(min(r.registration["fitness"] for r in reports), 3),
            "rmse_mm": max(r.registration["rmse_mm"] for r in reports),
            "built": last.status_counts["built"], "out_of_tolerance": last.status_counts["out_of_tolerance"],
            "late": len(progress.late_elements), "loa": last.loa}
