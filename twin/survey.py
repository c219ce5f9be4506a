"""Add a survey to the twin: read its scans, register them to the model, compute deviation, store it all.

One call, one transaction: a bad file, a refused registration or anything else that fails
leaves the store exactly as it was (and no per-point file behind).

>>> from data import open_store
>>> from twin.survey import add_survey
>>> with open_store("site.duckdb") as store:                               # doctest: +SKIP
...     report = add_survey(store, ["epoch1.e57"], model_ids=["c0b47cdf2c5d"], epoch="2026-04-15")
...     report.survey_id, report.registration["fitness"], report.status_counts
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sitetwin.bim.queries import element_frame, list_models, model_record, storey_frame
from sitetwin.data.errors import Note, Phrase
from sitetwin.data.i18n import N_
from sitetwin.data.store import Store
from sitetwin.twin.errors import SurveyError, UnitsError
from sitetwin.twin.registration import DEFAULT_CONFIG, RegistrationConfig
from sitetwin.twin.tolerances import Tolerances, load_tolerances

# A cloud this many times larger than the model, that fits it once divided by 1000, is in mm.
MM_RATIO = 200.0
REGISTRATION_POINTS = 3_000_000     # thin larger surveys (2 cm voxels) before registering


@dataclass(frozen=True)
class SurveyReport:
    """What ``add_survey`` did."""

    survey_id: str
    site_code: str
    epoch: _dt.date | None
    model_ids: tuple[str, ...]
    point_count: int
    scans: tuple[dict, ...]
    registration: dict
    status_counts: dict
    noise_mm: float | None
    loa: str | None
    unplanned_objects: int
    points_file: str | None
    reused: bool = False
    warnings: tuple[str, ...] = ()
    seconds: float = 0.0
    timings_s: dict = field(default_factory=dict)


def survey_id_for(site_code: str, shas: Sequence[str], epoch: _dt.date | None, model_ids: Sequence[str]) -> str:
    """Deterministic id: the same files for the same site, models and date are the same survey."""
    h = hashlib.sha256("|".join([site_code, *sorted(shas), str(epoch), *sorted(model_ids)]).encode())
    return "S" + h.hexdigest()[:11]


def parse_epoch(epoch) -> _dt.date | None:
    if epoch is None or isinstance(epoch, _dt.date) and not isinstance(epoch, _dt.datetime):
        return epoch
    if isinstance(epoch, _dt.datetime):
        return epoch.date()
    try:
        return _dt.date.fromisoformat(str(epoch))
    except ValueError:
        raise SurveyError(N_("epoch {epoch!r}: expected a date as YYYY-MM-DD"), epoch=epoch) from None


def read_transform(path) -> np.ndarray:
    """A transform file: a JSON 4x4 list, or {"T_model_from_scan": 4x4} (site local frame),
    or {"T_world_from_scan": 4x4} (IFC project coordinates; returned with a 'world' flag)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SurveyError(N_("{path}: no such transform file"), path=path) from None
    except (OSError, ValueError) as exc:
        raise SurveyError(N_('{path}: not a JSON transform ({reason}); expected a 4x4 list or '
                             '{{"T_model_from_scan": [[...], ...]}}'), path=path, reason=str(exc)) from None
    return data


def add_survey(store: Store, files: Sequence[str | Path], *, model_ids: Sequence[str], epoch=None,
               register: str = "auto", transform=None, control_points: str | Path | None = None,
               units: str = "m", tolerances: Tolerances | str | Path | dict | None = None,
               config: RegistrationConfig = DEFAULT_CONFIG, name: str | None = None,
               on_progress: Callable[[str], None] | None = None, crs: str | None = None,
               fit_scale: bool = False, in_memory_points: int | None = None,
               chunk_points: int | None = None) -> SurveyReport:
    """Import, register and analyse a survey; see the module docstring.

    ``register``: ``auto`` (default) or ``none`` (the cloud is already in the site's local
    frame); ``transform`` (4x4, or a JSON file) or ``control_points`` (CSV) choose those
    paths instead. ``units``: ``m`` or ``mm``. ``tolerances``: per-class overrides.

    Georeferenced files: with ``register='auto'``, a cloud whose files declare a CRS (or are
    given one with ``crs``, e.g. ``EPSG:4547``) is placed through the model's map conversion
    and refined by ICP (``twin.registration.register_georeferenced``); the offset between the
    two is reported, and a georeference that does not fit falls back to automatic registration.
    ``fit_scale``: the cloud's units are unknown (photogrammetry): fit a similarity (7 DoF),
    automatically or from control points, and report the scale with its uncertainty.

    Big surveys: a LAS/LAZ/COPC/E57 file of more than ``in_memory_points`` (default
    ``$SITETWIN_IN_MEMORY_POINTS`` or ``twin.streaming.IN_MEMORY_POINTS``) is held as an even sample of
    that many points, on which it is registered and analysed (fits, noise, unplanned objects, the
    points stored for display); each element's counts, distance figures, histogram, coverage and status
    are then streamed over every point, ``chunk_points`` at a time (``twin.streaming.streamed_figures``),
    and stored in the same tables (the scanners' angular step, which says what they could see, is
    estimated from the sample). One warning line says so.
    """
    from sitetwin.bim.mesh import load_mesh
    from sitetwin.twin import deviation, streaming
    from sitetwin.twin import registration as reg
    from sitetwin.twin.distance import SurfaceIndex
    from sitetwin.twin.plan import element_plan, planned_mask

    started = time.perf_counter()
    timings: dict[str, float] = {}
    say = on_progress or (lambda _msg: None)
    warnings: list[Note] = []
    paths = [Path(f) for f in files]
    if not paths:
        raise SurveyError(N_("a survey needs at least one point-cloud file"))
    model_ids = sorted(dict.fromkeys(model_ids))
    if not model_ids:
        raise SurveyError(N_("say which model(s) the survey is compared with (--model ID)"))
    if register not in ("auto", "none"):
        raise SurveyError(N_("register must be 'auto' or 'none', got {register!r}"), register=register)
    if transform is not None and control_points is not None:
        raise SurveyError(N_("give a transform or control points, not both"))
    if units not in ("m", "mm"):
        raise SurveyError(N_("units must be 'm' or 'mm', got {units!r}"), units=units)
    if fit_scale and (transform is not None or register == "none"):
        # the pose is given there, so nothing fits a scale: refused rather than silently ignored
        raise SurveyError(N_("{option} gives the pose, so no scale is fitted: leave --scale out (it fits a "
                             "similarity while registering automatically or from control points)"),
                          option="--transform" if transform is not None else "--register none")
    epoch = parse_epoch(epoch)
    tol = tolerances if isinstance(tolerances, Tolerances) else load_tolerances(tolerances)
    site_code = _site_of(store, model_ids)

    # --- read
    t0 = time.perf_counter()
    limit = streaming.in_memory_limit(in_memory_points)
    chunk = chunk_points or streaming.CHUNK_POINTS
    scans = []
    sampled: list[tuple[Path, int] | None] = []     # per scan: (its file, its index there) when held as a sample
    for f in paths:
        say(f"reading {f.name}")
        thinned: list[Note] = []
        # a file too large to hold is read chunk by chunk and thinned evenly (one warning line says so)
        got = streaming.read_scans_bounded(f, crs=crs, max_points=limit, chunk_points=chunk, on_thin=thinned.append)
        warnings.extend(thinned)
        scans.extend(got)
        sampled.extend((f, j) if thinned else None for j in range(len(got)))
    timings["read_s"] = time.perf_counter() - t0
    survey_id = survey_id_for(site_code, [s.sha256 for s in scans], epoch, model_ids)
    if store.scalar("SELECT count(*) FROM surveys WHERE survey_id = ?", [survey_id]):
        return _existing(store, survey_id, started)

    mesh = load_mesh(store, model_ids=model_ids)
    xyz = np.concatenate([s.xyz for s in scans])
    scale = 0.001 if units == "mm" else 1.0
    if scale != 1.0:
        xyz *= scale
    if not fit_scale:
        _check_units(paths, xyz, mesh, units)
    scan_of_point = np.concatenate([np.full(s.point_count, i, dtype=np.int16) for i, s in enumerate(scans)])
    stations = np.array([s.T_file_from_scan[:3, 3] * scale for s in scans])
    station_known = np.array([s.station_known for s in scans])

    # --- register against what should stand by the epoch
    t0 = time.perf_counter()
    plan = element_plan(store, site_code, model_ids)
    planned, scheduled = planned_mask(plan, mesh, epoch)
    if not planned.any():
        warnings.append(Note(N_("no element is due by {epoch} in the schedule; registering against the whole model"),
                             epoch=epoch))
        planned = np.ones_like(planned)
    say("indexing the model")
    full_index = SurfaceIndex.from_mesh(mesh)
    reg_index = full_index if planned.all() else SurfaceIndex.from_mesh(mesh.subset(planned))
    sub = np.arange(len(xyz))
    if len(xyz) > REGISTRATION_POINTS:
        sub = reg.voxel_pick(xyz, 0.02, REGISTRATION_POINTS, np.random.default_rng(config.seed))
    label = ", ".join(f.name for f in paths)
    if control_points is not None:
        say("solving control points")
        scan_cp, target_cp, names, frame = reg.read_control_points(control_points)
        if frame == "world":
            target_cp = target_cp - mesh.origin_m
        T, residuals = reg.register_control_points(scan_cp * scale, target_cp, names=names,
                                                   source=str(control_points), with_scale=fit_scale)
        fit = reg.evaluate(reg_index, xyz[sub], T, config)
        result = reg.Registration("control_points", T, *fit[:2], config.inlier_distance_m, fit[2],
                                  residuals=residuals,
                                  details={"scale": reg.transform_scale(T)} if fit_scale else {})
    elif transform is not None:
        T = _transform_matrix(transform, mesh.origin_m)
        result = reg.register_transform(reg_index, xyz[sub], T, method="transform", config=config)
    elif register == "none":
        result = reg.register_transform(reg_index, xyz[sub], np.eye(4), method="none", config=config)
    elif fit_scale:
        say("registering (similarity: rotation, translation and scale)")
        result = reg.register_similarity(reg_index, xyz[sub], config, label=label)
    else:
        placed = None
        placement = _georeferenced_placement(store, scans, model_ids, mesh, xyz, label, config, warnings)
        if placement is not None:
            say("placing by the georeference, refining")
            placed = _judge_georeferenced(reg.register_georeferenced(reg_index, xyz[sub], placement, config),
                                          config, label, warnings)
        if placed is None:
            say("registering (automatic)")
            known = np.flatnonzero(station_known)
            placed = reg.register_auto(
                reg_index, xyz[sub], config,
                point_station=scan_of_point[sub] if known.size == len(scans) else None,
                stations=stations if known.size == len(scans) else None)
        result = placed
    reg.check(result, config, label=label)
    T = result.T_model_from_survey
    timings["register_s"] = time.perf_counter() - t0

    # --- deviation at full resolution
    t0 = time.perf_counter()
    say("computing deviation")
    points_m = reg.apply(T, xyz)
    del xyz
    classes, storeys, levels = _element_facts(store, mesh, site_code, model_ids)
    stations_m = reg.apply(T, stations[station_known]) if station_known.any() else None
    station_of_scan = np.where(station_known, np.cumsum(station_known) - 1, -1).astype(np.int16)
    streamed = None
    scan_points = [s.point_count for s in scans]
    sampled_steps: dict[int, float] = {}
    if any(sampled):
        say("streaming the deviation over every point")
        every = _every_point(scans, sampled, chunk, scan_points, sampled_steps, station_of_scan)
        streamed = streaming.streamed_figures(
            full_index, mesh, every, T @ np.diag([scale] * 3 + [1.0]),
            rules=tol.status, grid=deviation.coverage_grid(mesh, tol.status.coverage_spacing_m),
            stations_m=stations_m, station_of_scan=station_of_scan if station_known.any() else None)
        timings["stream_s"] = time.perf_counter() - t0
    steps = None
    if station_known.any():
        steps = angular_steps([s for s, k in zip(scans, station_known) if k])
        for n, step in sampled_steps.items():       # a scan held as a sample: its step from its own points
            steps[station_of_scan[n]] = step
    dev = deviation.analyse(mesh, points_m, index=full_index, classes=classes, storeys=storeys, planned=planned,
                            stations_m=stations_m, station_steps_rad=steps,
                            point_station=station_of_scan[scan_of_point] if station_known.any() else None,
                            storey_levels=levels, tolerances=tol, streamed=streamed)
    point_count = int(len(points_m)) if streamed is None else streamed.total_points
    timings["deviation_s"] = time.perf_counter() - t0

    # --- write: per-point Parquet first (temporary name), then the rows in one transaction
    t0 = time.perf_counter()
    say("writing")
    final = Path(store.cache_dir) / "surveys" / survey_id / "points.parquet"
    tmp = final.with_name(f".points-{os.getpid()}-{time.monotonic_ns()}.parquet")
    tmp.parent.mkdir(parents=True, exist_ok=True)
    try:
        _write_points(tmp, points_m, scans, scan_of_point, dev, mesh)
        with store.transaction():
            _insert(store, survey_id, site_code, name or paths[0].stem, model_ids, epoch, result, scans, T, scale,
                    dev, tol, final.relative_to(store.cache_dir), point_count, planned, mesh, scan_points)
            _insert_placement(store, survey_id, scans, result)
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        if final.parent.exists() and not any(final.parent.iterdir()):
            shutil.rmtree(final.parent, ignore_errors=True)
        raise
    timings["write_s"] = time.perf_counter() - t0
    counts = dev.elements["status"].value_counts().to_dict()
    return SurveyReport(
        survey_id=survey_id, site_code=site_code, epoch=epoch, model_ids=tuple(model_ids),
        point_count=point_count,
        scans=tuple({"scan_index": i, "name": s.name, "file": str(s.file), "points": scan_points[i],
                     "station_known": s.station_known} for i, s in enumerate(scans)),
        registration=result.summary() | {"details": result.details},
        status_counts={**{k: int(counts.get(k, 0)) for k in ("built", "partial", "not_built", "out_of_tolerance")},
                       # of the partial ones, those whose observed faces failed a check (twin.queries)
                       "partial_out_of_tolerance": int(((dev.elements["status"] == "partial")
                                                        & dev.elements["checks"].map(bool)).sum())},
        noise_mm=None if dev.noise_mm != dev.noise_mm else round(dev.noise_mm, 3), loa=dev.loa,
        unplanned_objects=int(len(dev.unplanned)), points_file=str(final), warnings=tuple(warnings),
        seconds=round(time.perf_counter() - started, 3), timings_s={k: round(v, 3) for k, v in timings.items()})


def _georeferenced_placement(store, scans, model_ids, mesh, xyz, label, config, warnings):
    """Where the files' CRS and the model's map conversion put the cloud, or None (no CRS, or no
    georeference to go by: said in ``warnings``). Files that disagree on their CRS are refused."""
    import json as _json

    from sitetwin.bim.georef import Georeference
    from sitetwin.twin import registration as reg

    with_crs = [s for s in scans if s.crs]
    if not with_crs:
        return None
    names = {s.crs_name for s in with_crs}
    if len(names) > 1 or len(with_crs) < len(scans):
        odd = next(s for s in scans if not s.crs or s.crs_name != with_crs[0].crs_name)
        raise SurveyError(N_("{path}: its CRS ({crs}) differs from {other}'s ({other_crs}); a survey's files share "
                             "one CRS (name it with --crs EPSG:XXXX)"), path=odd.file,
                          crs=odd.crs_name or Phrase(N_("none")), other=with_crs[0].file.name,
                          other_crs=with_crs[0].crs_name)
    georef = None
    for model_id in model_ids:
        raw = (model_record(store, model_id) or {}).get("georef")
        data = _json.loads(raw) if isinstance(raw, str) else raw
        if data and data.get("valid", True):
            georef = Georeference.from_dict(data)
            break
    if georef is None:
        warnings.append(Note(N_("{label}: in {crs}, but the model has no valid georeference; placed by automatic "
                                "registration"), label=label, crs=with_crs[0].crs_name))
        return None
    bounds = np.array([xyz.min(axis=0), xyz.max(axis=0)])
    return reg.georeferenced_placement(with_crs[0].crs, georef, mesh.origin_m, bounds,
                                       model_bounds_local=np.asarray(mesh.bounds()), label=label, config=config)


# which pose a survey placed by its georeference kept (registration's details["kept"]), as people read it
_KEPT_POSE = {"refined": N_("refined"), "georeference": N_("georeference")}


def _judge_georeferenced(result, config, label, warnings):
    """The georeferenced pose when it passes ``check``, else None (automatic registration then)."""
    from sitetwin.twin import registration as reg
    from sitetwin.twin.errors import RegistrationError

    d = result.details
    if d["georef_disagrees"]:
        warnings.append(Note(N_("{label}: the georeference and the refined pose disagree by {offset_m:.3f} m / "
                                "{offset_deg:.3f} deg (limit {limit_m} m); kept the {kept} pose (fitness "
                                "{refined_fitness:.3f} refined, {georef_fitness:.3f} georeferenced)"),
                             label=label, offset_m=d["georef_offset_m"], offset_deg=d["georef_offset_deg"],
                             limit_m=config.georef_max_offset_m, kept=Phrase(_KEPT_POSE.get(d["kept"], d["kept"])),
                             refined_fitness=d["refined_fitness"], georef_fitness=d["georef_fitness"]))
    try:
        reg.check(result, config, label=label)
    except RegistrationError as exc:
        warnings.append(Note(N_("{label}: placing by the georeference failed ({error}); registered automatically "
                                "instead"), label=label, error=Phrase(exc.template, **exc.fields)))
        return None
    return result


def _insert_placement(store: Store, survey_id: str, scans, result) -> None:
    """The survey's CRS, fitted scale and georeference offset (migration 0013)."""
    d = result.details
    crs = next((s.crs_name for s in scans if s.crs_name), None)
    store.execute("UPDATE surveys SET crs = ?, scale = ?, scale_sigma = ?, georef_offset_m = ?, "
                  "georef_offset_deg = ? WHERE survey_id = ?",
                  [crs, d.get("scale"), d.get("scale_sigma"), d.get("georef_offset_m"), d.get("georef_offset_deg"),
                   survey_id])


def angular_steps(scans, *, queries: int = 2000, max_tree: int = 400_000, seed: int = 0,
                  numbers: Sequence[int] | None = None) -> np.ndarray:
    """Each scan's angular resolution (radians), from the nearest-neighbour spacing of its points over
    their range from the scanner. Scans must have a known station (origin of the scan frame).

    On a scanner's azimuth-elevation grid the neighbour spacing is the step near the horizon and
    shrinks towards the zenith (azimuth lines converge), so the 80th percentile is taken.
    ``numbers``: each scan's number among the survey's scans with a station (default 0, 1, ...): it
    seeds that scan's draw, so a scan's step does not depend on which others are measured with it.
    """
    from scipy.spatial import cKDTree

    out = np.full(len(scans), np.nan)
    for i, s in enumerate(scans):
        rng = np.random.default_rng((seed, i if numbers is None else numbers[i]))
        pts = s.xyz
        if len(pts) < 100:
            continue
        scale = 1.0
        if len(pts) > max_tree:
            scale = float(np.sqrt(len(pts) / max_tree))
            pts = pts[rng.choice(len(pts), max_tree, replace=False)]
        pts = pts - s.T_file_from_scan[:3, 3]          # centred on the scanner
        tree = cKDTree(pts)
        q = pts[rng.choice(len(pts), min(queries, len(pts)), replace=False)]
        dist, _ = tree.query(q, k=2)
        rng_m = np.linalg.norm(q, axis=1)
        ok = rng_m > 1.0
        if ok.sum() > 10:
            out[i] = float(np.quantile(dist[ok, 1] / rng_m[ok], 0.8)) / scale
    return out


def _site_of(store: Store, model_ids: Sequence[str]) -> str:
    found = {m: model_record(store, m) for m in model_ids}
    rows = [r for r in found.values() if r is not None]
    missing = sorted(set(model_ids) - {r["model_id"] for r in rows})
    if missing:
        known = sorted(r["model_id"] for r in list_models(store))
        raise SurveyError(N_("{store}: no model {missing} (models: {models}); load it with `sitetwin bim load`"),
                          store=store.label, missing=", ".join(missing),
                          models=", ".join(known) or Phrase(N_("none")))
    sites = sorted({r["site_code"] for r in rows})
    if len(sites) > 1:
        raise SurveyError(N_("models {models} belong to different sites ({sites})"), models=", ".join(model_ids),
                          sites=", ".join(sites))
    return sites[0]


def _check_units(files, xyz: np.ndarray, mesh, units: str) -> None:
    lo, hi = np.quantile(xyz, [0.01, 0.99], axis=0) if len(xyz) > 100 else (xyz.min(axis=0), xyz.max(axis=0))
    cloud = float(np.max(hi - lo))
    b = mesh.bounds()
    model = float(np.max(b[1] - b[0]))
    names = ", ".join(f.name for f in files)
    if model <= 0:
        return
    if cloud > MM_RATIO * model and cloud / 1000.0 < 20.0 * model:
        raise UnitsError(N_("{files}: the cloud looks like millimetres: it spans {cloud:,.0f} units where the model "
                            "spans {model:.1f} m (that is {cloud_m:.1f} m if the units are mm); convert it to metres "
                            "or pass units mm (--units mm)"), files=names, cloud=cloud, model=model,
                         cloud_m=cloud / 1000)
    if units == "mm" and cloud < model / MM_RATIO:
        raise UnitsError(N_("{files}: read as millimetres the cloud spans {cloud:.3f} m where the model spans "
                            "{model:.1f} m; it is in metres already, drop --units mm"), files=names, cloud=cloud,
                         model=model)


def _transform_matrix(transform, origin_m: np.ndarray) -> np.ndarray:
    from sitetwin.twin.registration import check_transform

    source = "transform"
    data = transform
    if isinstance(transform, (str, Path)):
        source = str(transform)
        data = read_transform(transform)
    world = False
    if isinstance(data, dict):
        if "T_model_from_scan" in data:
            data = data["T_model_from_scan"]
        elif "T_model_from_survey" in data:
            data = data["T_model_from_survey"]
        elif "T_world_from_scan" in data:
            data, world = data["T_world_from_scan"], True
        else:
            raise SurveyError(N_("{source}: expected a 4x4 list, or a key T_model_from_scan (site local frame) or "
                                 "T_world_from_scan (IFC project coordinates); got keys {keys}"), source=source,
                              keys=", ".join(data))
    T = check_transform(data, source=source).copy()
    if world:
        T[:3, 3] -= origin_m
    return T


def _element_facts(store: Store, mesh, site_code: str, model_ids):
    elements = element_frame(store, model_ids=model_ids)[["model_id", "global_id", "ifc_class", "storey"]]
    elements = elements.astype(object).where(elements.notna(), None)     # a missing storey stays None, not NaN
    facts = {(m, g): (c, s) for m, g, c, s in elements.itertuples(index=False)}
    pairs = [facts.get((m, g), (None, None)) for m, g in zip(mesh.model_ids.tolist(), mesh.global_ids.tolist())]
    storeys = storey_frame(store, model_ids)
    storeys = storeys[storeys["elevation_m"].notna()]
    lowest = storeys.groupby("name", dropna=False, sort=True)["elevation_m"].min().sort_values(kind="stable")
    levels = [(n if isinstance(n, str) else None, float(e)) for n, e in lowest.items()]
    return [p[0] for p in pairs], [p[1] for p in pairs], levels


def _write_points(path: Path, points_m, scans, scan_of_point, dev, mesh, row_group: int = 1_000_000) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = len(points_m)
    has_rgb = [s.rgb is not None for s in scans]
    has_int = [s.intensity is not None for s in scans]
    rgb = np.zeros((n, 3), dtype=np.uint8)
    intensity = np.full(n, np.nan, dtype=np.float32)
    off = 0
    for i, s in enumerate(scans):
        if has_rgb[i]:
            rgb[off:off + s.point_count] = s.rgb
        if has_int[i]:
            intensity[off:off + s.point_count] = s.intensity
        off += s.point_count
    gids = pa.array(mesh.global_ids.tolist(), pa.string())
    mids = pa.array(mesh.model_ids.tolist(), pa.string())
    schema = pa.schema([("x_m", pa.float32()), ("y_m", pa.float32()), ("z_m", pa.float32()), ("r", pa.uint8()),
                        ("g", pa.uint8()), ("b", pa.uint8()), ("intensity", pa.float32()), ("scan_index", pa.int16()),
                        ("distance_m", pa.float32()), ("element", pa.int32()),
                        ("model_id", pa.dictionary(pa.int32(), pa.string())),
                        ("global_id", pa.dictionary(pa.int32(), pa.string())), ("cluster", pa.int32())])
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        for s in range(0, max(n, 1), row_group):
            e = min(n, s + row_group)
            el = dev.element[s:e]
            idx = pa.array(el, pa.int32(), mask=el < 0)
            batch = pa.record_batch([
                pa.array(points_m[s:e, 0].astype(np.float32)), pa.array(points_m[s:e, 1].astype(np.float32)),
                pa.array(points_m[s:e, 2].astype(np.float32)),
                pa.array(rgb[s:e, 0]), pa.array(rgb[s:e, 1]), pa.array(rgb[s:e, 2]),
                pa.array(intensity[s:e], mask=np.isnan(intensity[s:e])), pa.array(scan_of_point[s:e]),
                pa.array(dev.distance_m[s:e]), pa.array(el), pa.DictionaryArray.from_arrays(idx, mids),
                pa.DictionaryArray.from_arrays(idx, gids), pa.array(dev.cluster[s:e])], schema=schema)
            writer.write_batch(batch)


def _every_point(scans, sampled, chunk_points: int, counts: list[int], steps: dict[int, float],
                 station_of_scan: np.ndarray, keep: int = 400_000):
    """(scan index, points in the file's frame) over every point of the survey: a scan held as a sample is
    read again from its file chunk by chunk, the others come from memory. ``counts`` gets each scan's
    number of points, ``steps`` the angular step of each sampled scan with a station, from its first
    ``keep`` points as the scanner delivered them (a thinned sample would not show the scanner's grid;
    a scan of up to ``keep`` points gets the step the in-memory path gives it)."""
    from dataclasses import replace

    from sitetwin.twin.streaming import iter_scan_chunks

    def settle(n: int | None, block: list[np.ndarray]) -> None:
        if n is not None and scans[n].station_known and block:
            held = replace(scans[n], xyz=np.concatenate(block))
            steps[n] = float(angular_steps([held], max_tree=keep, numbers=[int(station_of_scan[n])])[0])

    done: set[Path] = set()
    for i, s in enumerate(scans):
        if sampled[i] is None:
            for a in range(0, max(s.point_count, 1), chunk_points):
                yield i, s.xyz[a:a + chunk_points]
            continue
        path = sampled[i][0]
        if path in done:
            continue
        done.add(path)
        # this file's scans, by their index within it
        of_file = {at[1]: n for n, at in enumerate(sampled) if at is not None and at[0] == path}
        for n in of_file.values():
            counts[n] = 0
        current: int | None = None
        block: list[np.ndarray] = []
        held = 0
        for within, xyz in iter_scan_chunks(path, chunk_points):
            n = of_file[within]
            if n != current:
                settle(current, block)
                current, block, held = n, [], 0
            if held < keep:
                block.append(xyz[:keep - held])
                held += len(block[-1])
            counts[n] += len(xyz)
            yield n, xyz
        settle(current, block)


def _insert(store, survey_id, site_code, name, model_ids, epoch, result, scans, T, scale, dev, tol, points_rel,
            point_count, planned, mesh, scan_points=None) -> None:
    import pandas as pd

    details = dict(result.details)
    if result.residuals:
        details["control_points"] = list(result.residuals)
    store.execute(
        "INSERT INTO surveys (survey_id, site_code, name, model_ids, epoch, registration_method, T_model_from_survey, "
        "fitness, rmse_m, inlier_distance_m, registration, point_count, noise_mm, loa, tolerances, points_file, "
        "status) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'analysed')",
        [survey_id, site_code, name, list(model_ids), epoch, result.method, T.tolist(), result.fitness,
         result.rmse_m if np.isfinite(result.rmse_m) else None, result.inlier_distance_m,
         json.loads(json.dumps(details, default=_jsonable)), point_count,
         None if dev.noise_mm != dev.noise_mm else dev.noise_mm, dev.loa, tol.to_dict(), str(points_rel)])
    S = np.diag([scale, scale, scale, 1.0])
    store.insert_frame("scans", pd.DataFrame({
        "survey_id": survey_id, "site_code": site_code, "scan_index": np.arange(len(scans), dtype=np.int32),
        "name": [s.name for s in scans], "file": [str(s.file.resolve()) for s in scans],
        "file_sha256": [s.sha256 for s in scans], "format": [s.format for s in scans],
        "point_count": scan_points or [s.point_count for s in scans],
        "has_color": [s.rgb is not None for s in scans],
        "has_intensity": [s.intensity is not None for s in scans],
        "station_known": [s.station_known for s in scans],
        "T_model_from_scan": [json.dumps((T @ S @ s.T_file_from_scan @ np.linalg.inv(S)).round(9).tolist())
                              for s in scans]}))
    el = dev.elements
    frame = pd.DataFrame({
        "site_code": site_code, "survey_id": survey_id, "model_id": el["model_id"], "global_id": el["global_id"],
        "ifc_class": el["ifc_class"], "storey": el["storey"], "planned": np.asarray(planned, bool),
        "points": el["points"].astype("int64"), "coverage": el["coverage"], "visible_share": el["visible_share"]})
    for c in ("mean_mm", "median_mm", "p95_mm", "max_mm", "shift_x_mm", "shift_y_mm", "shift_z_mm", "shift_mm",
              "section_mm", "verticality_mm", "flatness_mm"):
        frame[c] = pd.to_numeric(el[c], errors="coerce").astype("float64")
    frame["checks"] = [json.dumps(c) if c else None for c in el["checks"]]
    frame["status"] = el["status"]
    store.insert_frame("element_deviation", frame)
    h = dev.histograms
    if len(h):
        store.insert_frame("element_histograms", pd.DataFrame({
            "site_code": site_code, "survey_id": survey_id,
            "model_id": mesh.model_ids[h["element"].to_numpy()], "global_id": mesh.global_ids[h["element"].to_numpy()],
            "bin_lo_mm": h["bin_lo_mm"], "bin_hi_mm": h["bin_hi_mm"], "points": h["points"].astype("int64")}))
    u = dev.unplanned
    if len(u):
        near = u["nearest_element"].to_numpy()
        frame = u.drop(columns=["nearest_element"]).copy()
        frame.insert(0, "survey_id", survey_id)
        frame.insert(0, "site_code", site_code)
        frame["nearest_model_id"] = np.where(near >= 0, mesh.model_ids[np.maximum(near, 0)], None)
        frame["nearest_global_id"] = np.where(near >= 0, mesh.global_ids[np.maximum(near, 0)], None)
        frame["object_id"] = frame["object_id"].astype("int32")
        frame["points"] = frame["points"].astype("int64")
        store.insert_frame("unplanned_objects", frame)


def _jsonable(obj):
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)


def _partial_out_of_tolerance(store: Store, survey_id: str) -> int:
    from sitetwin.twin.queries import survey_status_counts

    counts = survey_status_counts(store, [survey_id])
    return int(counts["partial_out_of_tolerance"].iloc[0]) if len(counts) else 0


def _existing(store: Store, survey_id: str, started: float) -> SurveyReport:
    from sitetwin.twin.survey_store import get_survey, list_surveys, scan_stations

    s = get_survey(store, survey_id)
    row = next(r for r in list_surveys(store, s.site_code) if r["survey_id"] == survey_id)
    stations = scan_stations(store, survey_id)
    unplanned = store.scalar("SELECT count(*) FROM unplanned_objects WHERE survey_id = ?", [survey_id])
    return SurveyReport(
        survey_id=survey_id, site_code=s.site_code, epoch=s.epoch, model_ids=s.model_ids, point_count=s.point_count,
        scans=tuple({"scan_index": st.scan_index, "name": st.name, "file": st.file, "points": st.point_count,
                     "station_known": st.station_known} for st in stations),
        registration={"method": s.registration_method, "fitness": s.fitness,
                      "rmse_mm": None if s.rmse_m is None else round(s.rmse_m * 1000, 2),
                      "T_model_from_survey": s.T_model_from_survey.round(6).tolist(), "details": s.registration},
        status_counts={**{k: int(row[k]) for k in ("built", "partial", "not_built", "out_of_tolerance")},
                       "partial_out_of_tolerance": _partial_out_of_tolerance(store, survey_id)},
        noise_mm=s.noise_mm, loa=s.loa, unplanned_objects=int(unplanned),
        points_file=str(s.points_file) if s.points_file else None, reused=True,
        warnings=(Note(N_("these files were already imported as survey {survey_id}; nothing changed"),
                       survey_id=survey_id),),
        seconds=round(time.perf_counter() - started, 3))
