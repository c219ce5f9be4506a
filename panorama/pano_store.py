"""Panoramas in the store: import with site, capture time and pose; element maps beside the store.

Tables (migration ``0003_panoramas.sql``): ``panoramas`` (one row per image: file, sha256,
size, capture time, ``T_model_from_camera`` as a JSON 4x4 in the site's local frame, pose
source and residuals), ``panorama_control_points``, ``panorama_element_maps`` and
``panorama_elements`` (the lookup from index-image values to ``model_id``/``global_id``, with
each element's pixels, solid angle and ranges). Element-map files live in
``<db>.cache/panoramas/<pano_id>/``.

Each import is one transaction: a bad image, bad control points or an unknown model raise
:class:`~panorama.errors.PanoramaError` before anything is written, and the store is left as
it was.

>>> report = add_panorama(store, "pano.jpg", model_id="1f889644bfb8", pose=pose_matrix([6, 6, 1.6]))  # doctest: +SKIP
>>> emap = load_element_map(store, report.pano_id)                                                    # doctest: +SKIP
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import shutil
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sitetwin.bim.queries import current_model_ids, element_extent, model_record
from sitetwin.data.errors import Note, Phrase, SitetwinError, message_text
from sitetwin.data.i18n import N_
from sitetwin.data.store import Store
from sitetwin.panorama.camera import check_transform
from sitetwin.panorama.errors import PanoramaError, PoseError, PoseWarning, cause
from sitetwin.panorama.io import PanoramaImage, read_e57_panoramas, read_panorama
from sitetwin.panorama.pose import ControlPoints, PoseSolution, extent_warning, solve_control_points

E57_SUFFIXES = (".e57",)


@dataclass(frozen=True)
class Panorama:
    """A panorama as stored. ``T_model_from_camera`` is None when it has no pose."""

    pano_id: str
    site_code: str
    model_id: str | None
    name: str | None
    file: Path
    source: str
    sha256: str
    width: int
    height: int
    captured_at: _dt.datetime | None
    T_model_from_camera: np.ndarray | None
    pose_source: str
    survey_id: str | None = None
    scan_index: int | None = None
    pose: dict[str, Any] = field(default_factory=dict)

    @property
    def posed(self) -> bool:
        return self.T_model_from_camera is not None


@dataclass(frozen=True)
class AddReport:
    pano_id: str
    site_code: str
    model_id: str | None
    name: str | None
    width: int
    height: int
    captured_at: _dt.datetime | None
    pose_source: str
    pose: dict[str, Any]
    reused: bool = False
    warnings: tuple[str, ...] = ()      # data.errors.Note: English as a str, the reader's language when shown


def pano_id_for(site_code: str, sha256: str) -> str:
    """'P' + 11 hex digits: the same image in the same site is the same panorama."""
    return "P" + hashlib.sha256(f"{site_code}\n{sha256}".encode()).hexdigest()[:11]


def pano_dir(store: Store, pano_id: str) -> Path:
    return Path(store.cache_dir) / "panoramas" / pano_id


def _resolve_site_model(store: Store, site_code: str | None, model_id: str | None) -> tuple[str, str | None]:
    if model_id is not None:
        row = model_record(store, model_id)
        if row is None:
            known = current_model_ids(store)
            raise PanoramaError(N_("{store}: no model {model_id!r} (models: {models}); "
                                   "load it with `sitetwin bim load`"),
                                store=store.label, model_id=model_id, models=", ".join(known) or Phrase(N_("none")))
        if site_code is not None and site_code != row["site_code"]:
            raise PanoramaError(N_("model {model_id} belongs to site {model_site}, not {site_code}"), model_id=model_id,
                                model_site=row["site_code"], site_code=site_code)
        return row["site_code"], model_id
    from sitetwin.bim.mesh import resolve_site

    try:
        return resolve_site(store, site_code), None
    except SitetwinError as exc:
        raise PanoramaError(exc.template, **exc.fields) from None


def model_bounds(store: Store, site_code: str, model_id: str | None = None) -> np.ndarray | None:
    """(2, 3) extent of the site's current models (or one model) in the local frame, from element boxes."""
    box = element_extent(store, model_id=model_id) if model_id else element_extent(store, site_code=site_code)
    if box is None:
        return None
    return np.array([[box["min_x_m"], box["min_y_m"], box["min_z_m"]],
                     [box["max_x_m"], box["max_y_m"], box["max_z_m"]]], dtype=np.float64)


def add_panorama(store: Store, image: str | Path | PanoramaImage, *, site_code: str | None = None,
                 model_id: str | None = None, pose: np.ndarray | PoseSolution | None = None,
                 control_points: ControlPoints | None = None, captured_at: _dt.datetime | None = None,
                 name: str | None = None, T_model_from_file: np.ndarray | None = None,
                 extent_margin_m: float = 2.0, refine: bool = False) -> AddReport:
    """Import one panorama (an image path, or an image read from an E57 file) with its pose.

    The pose is ``pose`` (a 4x4 or a solved :class:`PoseSolution`), else solved from
    ``control_points``, else the pose written in an E57 file (mapped by ``T_model_from_file``,
    default identity), else none. A camera outside the model's extent gives a warning (in
    the report and as :class:`PoseWarning`). Importing the same image again with a pose
    updates that pose; without one, it changes nothing. With ``refine`` the pose is then refined
    from the image's edges (:mod:`panorama.refine`), when that clearly helps: rotation and camera
    centre for a control-point pose, the rotation alone for any other.
    """
    img = image if isinstance(image, PanoramaImage) else read_panorama(image)
    site_code, model_id = _resolve_site_model(store, site_code, model_id)
    solution = _solution(img, pose, control_points, T_model_from_file)
    if refine and solution is not None:
        solution = _refined(store, site_code, model_id, img, solution, None, control_points)
    created: list[Path] = []
    notes: list[PoseWarning] = []
    try:
        with store.transaction():
            report = _write_one(store, img, site_code, model_id, solution, control_points, captured_at, name,
                                extent_margin_m, created, notes)
    except BaseException:
        for path in created:
            path.unlink(missing_ok=True)
        raise
    for note in notes:
        warnings.warn(note, stacklevel=2)
    return report


def add_panoramas(store: Store, paths: Sequence[str | Path], *, site_code: str | None = None,
                  model_id: str | None = None,
                  poses: dict[str, np.ndarray] | np.ndarray | PoseSolution | None = None,
                  control_points: dict[str | None, ControlPoints] | None = None,
                  T_model_from_file: np.ndarray | None = None, extent_margin_m: float = 2.0,
                  refine: bool = False) -> list[AddReport]:
    """Import several files (JPEG/PNG panoramas and E57 files with spherical images2D).

    ``poses``: one 4x4 or solved pose (a single image), or image file name -> 4x4. ``control_points``: as
    returned by :func:`panorama.pose.read_control_points` (key None: the single image). Every
    file is read and every pose solved before anything is written; then all are written in
    one transaction, so one bad file leaves the store as it was.
    """
    if poses is not None and control_points is not None:
        raise PoseError(N_("give poses or control points, not both"))
    images: list[PanoramaImage] = []
    for path in paths:
        path = Path(path)
        if path.suffix.lower() in E57_SUFFIXES:
            images.extend(read_e57_panoramas(path))
        else:
            images.append(read_panorama(path))
    site_code, model_id = _resolve_site_model(store, site_code, model_id)
    keyed_pose = isinstance(poses, dict)
    keyed_cp = control_points is not None and any(k is not None for k in control_points)
    if poses is not None and not keyed_pose and len(images) != 1:
        raise PoseError(N_('one pose given for {n} images; key the poses by image file name '
                           '({{"poses": {{"a.jpg": {{...}}, ...}}}})'), n=len(images))
    if control_points is not None and not keyed_cp and len(images) != 1:
        raise PoseError(N_("control points without an 'image' column given for {n} images; "
                           "add an image column naming each point's file"), n=len(images))
    plan = []
    for img in images:
        key = img.path.name
        pose = poses.get(key) if isinstance(poses, dict) else poses
        cps = None
        if control_points is not None:
            cps = control_points.get(key) if keyed_cp else control_points.get(None)
        if isinstance(poses, dict) and pose is None and img.T_file_from_camera is None:
            raise PoseError(N_("{image}: the pose file has no pose for this image (it has: {images})"), image=key,
                            images=", ".join(poses))
        if keyed_cp and cps is None and img.T_file_from_camera is None:
            raise PoseError(N_("{image}: the control-point file has no points for this image"), image=key)
        plan.append((img, _solution(img, pose, cps, T_model_from_file), cps))
    if refine:
        scene: list = []
        plan = [(img, _refined(store, site_code, model_id, img, sol, scene, cps) if sol is not None else None, cps)
                for img, sol, cps in plan]
    created: list[Path] = []
    notes: list[PoseWarning] = []
    reports = []
    try:
        with store.transaction():
            for img, solution, cps in plan:
                reports.append(_write_one(store, img, site_code, model_id, solution, cps, None, None,
                                          extent_margin_m, created, notes))
    except BaseException:
        for path in created:
            path.unlink(missing_ok=True)
        raise
    for note in notes:
        warnings.warn(note, stacklevel=2)
    return reports


def _refined(store: Store, site_code: str, model_id: str | None, img: PanoramaImage, solution: PoseSolution,
             cache: list | None, cps: ControlPoints | None = None) -> PoseSolution:
    """The solution refined from the image's edges, when that is accepted: rotation and camera centre
    for a control-point pose (the inlier points anchor it), the rotation alone otherwise."""
    from dataclasses import replace

    from sitetwin.panorama.refine import refine_orientation, refine_pose
    from sitetwin.panorama.render import RayScene

    if cache:
        mesh, scene = cache[0]
    else:
        from sitetwin.bim.mesh import load_mesh

        ids = [model_id] if model_id else current_model_ids(store, site_code)
        if not ids:
            raise PanoramaError(N_("site {site_code} has no model to refine the pose against"), site_code=site_code)
        try:
            mesh = load_mesh(store, model_ids=ids)
        except SitetwinError as exc:
            raise PanoramaError(exc.template, **exc.fields) from None
        scene = RayScene(mesh)
        if cache is not None:
            cache.append((mesh, scene))
    if cps is not None:           # the pose was solved from these points: they anchor the centre
        inl = solution.inliers
        r = refine_pose(img.pixels, mesh, solution.T_model_from_camera, cps.uv[inl], cps.xyz_m[inl], scene=scene)
    else:
        r = refine_orientation(img.pixels, mesh, solution.T_model_from_camera, scene=scene)
    refined = {"method": r.method, "accepted": r.accepted, "reason": r.reason,
               "delta_ypr_deg": [round(x, 4) for x in r.delta_ypr_deg],
               "edge_score_before_px": round(r.score_before_px, 3),
               "edge_score_after_px": round(r.score_after_px, 3)}
    if r.method == "pose":
        # a pose refinement refused before matching (too few model edges) has no matched share or agreement
        refined.update({"delta_position_cm": [round(100 * x, 2) for x in r.delta_position_m],
                        "edges_matched": _round(r.matched_fraction, 3),
                        "edges_matched_by_chance": _round(r.chance_fraction, 3),
                        "agreement_chi2": _round(r.agreement_chi2, 2)})
    changes: dict[str, Any] = {"T_model_from_camera": r.T_model_from_camera,
                               "details": {**solution.details, "refined": refined}}
    if r.accepted and cps is not None:
        # the control points' residuals under the refined pose
        from sitetwin.panorama.camera import bearing_to_equirect, equirect_pixel_distance, equirect_to_bearing
        from sitetwin.panorama.pose import _angular_errors

        T = r.T_model_from_camera
        predicted = bearing_to_equirect((cps.xyz_m - T[:3, 3]) @ T[:3, :3], img.width, img.height)
        changes["residual_px"] = equirect_pixel_distance(predicted, cps.uv, img.width)
        changes["residual_deg"] = np.degrees(_angular_errors(T, equirect_to_bearing(cps.uv, img.width, img.height),
                                                             cps.xyz_m))
    return replace(solution, **changes)


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _solution(img: PanoramaImage, pose, control_points: ControlPoints | None, T_model_from_file) -> PoseSolution | None:
    label = img.name or img.path.name
    if pose is not None and control_points is not None:
        raise PoseError(N_("{image}: give a pose or control points, not both"), image=label)
    if control_points is not None:
        return solve_control_points(control_points.uv, control_points.xyz_m, img.width, img.height,
                                    labels=control_points.labels,
                                    where=Phrase(N_("{image} control points"), image=label))
    if isinstance(pose, PoseSolution):
        return pose
    if pose is not None:
        try:
            return PoseSolution(check_transform(pose), "given")
        except ValueError as exc:
            raise PoseError(N_("{image}: {reason}"), image=label, reason=str(exc)) from None
    if img.T_file_from_camera is not None:
        try:
            M = np.eye(4) if T_model_from_file is None else check_transform(T_model_from_file, "T_model_from_file")
        except ValueError as exc:
            raise PoseError(N_("{image}: {reason}"), image=label, reason=str(exc)) from None
        return PoseSolution(M @ img.T_file_from_camera, "e57")
    return None


def _write_one(store: Store, img: PanoramaImage, site_code: str, model_id: str | None,
               solution: PoseSolution | None, cps: ControlPoints | None, captured_at, name,
               extent_margin_m: float, created: list[Path], issued: list[PoseWarning]) -> AddReport:
    """Insert (or re-pose) one panorama; the caller holds the transaction. Its warnings are stored in
    English and added to ``issued`` (the caller warns with them once the transaction is done)."""
    pano_id = pano_id_for(site_code, img.sha256)
    label = img.name or img.path.name
    found: list[PoseWarning] = []
    if solution is not None:
        outside = extent_warning(solution.T_model_from_camera, model_bounds(store, site_code, model_id),
                                 margin_m=extent_margin_m, label=Phrase(N_("panorama {image}"), image=label))
        if outside is not None:
            found.append(outside)
        if solution.details.get("weak_geometry"):
            found.append(PoseWarning(N_("panorama {image}: the control points fix the camera position only to about "
                                        "{cm_per_px:.1f} cm per pixel of clicking error ({cm_per_deg:.0f} cm per "
                                        "degree); add points nearer the camera, around it and at other heights"),
                                     image=label, cm_per_px=solution.details["position_sigma_cm_per_px"],
                                     cm_per_deg=solution.details["position_sigma_cm_per_deg"]))
    issued.extend(found)
    notes = [Note.of(w) for w in found]     # the report's lines (English as a str)
    existing = store.one("SELECT pano_id FROM panoramas WHERE pano_id = ?", [pano_id])
    if existing is not None and solution is None:
        return _report(store, pano_id, reused=True, notes=notes)
    file_path = img.path
    if img.embedded is not None:      # an image inside an E57 file: keep its bytes beside the store
        file_path = pano_dir(store, pano_id) / f"image{img.embedded_suffix}"
        if not file_path.exists():
            file_path.parent.mkdir(parents=True, exist_ok=True)
            file_path.write_bytes(img.embedded)
            created.append(file_path)
    if existing is not None:
        store.execute("DELETE FROM panorama_control_points WHERE pano_id = ?", [pano_id])
        store.execute("DELETE FROM panoramas WHERE pano_id = ?", [pano_id])
        _drop_element_map(store, pano_id)
    when = captured_at or img.captured_at
    time_source = "given" if captured_at else img.time_source
    _insert(store, pano_id, site_code, model_id, name or img.name or img.path.stem, file_path, img, when,
            time_source, solution, [message_text(n) for n in notes])     # stored: English
    if cps is not None and solution is not None:
        _insert_control_points(store, site_code, pano_id, cps, solution)
    return _report(store, pano_id, reused=False, notes=notes, solution=solution)


def _insert(store, pano_id, site_code, model_id, name, file_path, img, when, time_source, solution, notes) -> None:
    T = None if solution is None else solution.T_model_from_camera
    details = {} if solution is None else solution.summary()
    if notes:
        details["warnings"] = notes
    cp = solution is not None and solution.points > 0
    store.execute(
        "INSERT INTO panoramas (pano_id, site_code, model_id, name, file, source, sha256, width, height, "
        "captured_at, time_source, T_model_from_camera, pose_source, pose_points, pose_inliers, pose_rms_px, "
        "pose_rms_deg, pose_max_px, survey_id, scan_index, pose, metadata) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [pano_id, site_code, model_id, name, str(Path(file_path).resolve()), img.source, img.sha256, img.width,
         img.height, when, time_source, None if T is None else np.asarray(T).tolist(),
         "none" if solution is None else solution.source,
         solution.points if cp else None, solution.inlier_count if cp else None,
         solution.rms_px if cp else None, solution.rms_deg if cp else None, solution.max_px if cp else None,
         None if solution is None else solution.details.get("survey_id"),
         None if solution is None else solution.details.get("scan_index"),
         details, {"gpano": img.gpano, "exif": img.exif}])


def _insert_control_points(store, site_code, pano_id, cps: ControlPoints, solution: PoseSolution) -> None:
    import pandas as pd

    store.insert_frame("panorama_control_points", pd.DataFrame({
        "site_code": site_code, "pano_id": pano_id, "point_index": np.arange(len(cps.uv), dtype=np.int32),
        "label": list(cps.labels), "u": cps.uv[:, 0], "v": cps.uv[:, 1],
        "x_m": cps.xyz_m[:, 0], "y_m": cps.xyz_m[:, 1], "z_m": cps.xyz_m[:, 2],
        "inlier": solution.inliers.astype(bool), "residual_px": solution.residual_px,
        "residual_deg": solution.residual_deg}))


def _report(store: Store, pano_id: str, *, reused: bool, notes: list[Note],
            solution: PoseSolution | None = None) -> AddReport:
    p = get_panorama(store, pano_id)
    pose = p.pose
    refined = solution.details.get("refined") if solution is not None else None
    if refined and isinstance(pose.get("refined"), dict):
        # the refinement's reason as found (a Note: read in the reader's language), not the stored English
        pose = {**pose, "refined": {**pose["refined"], "reason": refined["reason"]}}
    return AddReport(p.pano_id, p.site_code, p.model_id, p.name, p.width, p.height, p.captured_at, p.pose_source,
                     pose, reused, tuple(notes))


def set_pose(store: Store, pano_id: str, pose: np.ndarray | PoseSolution) -> Panorama:
    """Replace a stored panorama's pose (its element map is dropped: it belonged to the old pose)."""
    p = get_panorama(store, pano_id)
    solution = pose if isinstance(pose, PoseSolution) else PoseSolution(check_transform(pose), "given")
    with store.transaction():
        store.execute("UPDATE panoramas SET T_model_from_camera = ?, pose_source = ?, pose = ?, survey_id = ?, "
                      "scan_index = ?, pose_points = NULL, pose_inliers = NULL, pose_rms_px = NULL, "
                      "pose_rms_deg = NULL, pose_max_px = NULL WHERE pano_id = ?",
                      [solution.T_model_from_camera.tolist(), solution.source, solution.summary(),
                       solution.details.get("survey_id"), solution.details.get("scan_index"), p.pano_id])
        store.execute("DELETE FROM panorama_control_points WHERE pano_id = ?", [p.pano_id])
        _drop_element_map(store, p.pano_id)
    return get_panorama(store, pano_id)


def get_panorama(store: Store, pano_id: str) -> Panorama:
    row = store.one("SELECT * FROM panoramas WHERE pano_id = ?", [pano_id])
    if row is None:
        # no list of the ids that do exist: this message can reach a caller scoped to other sites (issue 14)
        raise PanoramaError(N_("{store}: no panorama {pano_id!r}; `sitetwin pano list` shows the stored ones"),
                            store=store.label, pano_id=pano_id)
    return _row_to_panorama(row)


def list_panoramas(store: Store, site_code: str | None = None) -> list[Panorama]:
    sql = "SELECT * FROM panoramas" + (" WHERE site_code = ?" if site_code else "") + " ORDER BY captured_at, pano_id"
    return [_row_to_panorama(r) for r in store.rows(sql, [site_code] if site_code else None)]


def _row_to_panorama(row: dict) -> Panorama:
    T = row["T_model_from_camera"]
    return Panorama(row["pano_id"], row["site_code"], row["model_id"], row["name"], Path(row["file"]), row["source"],
                    row["sha256"], int(row["width"]), int(row["height"]), row["captured_at"],
                    None if T is None else np.array(json.loads(T), dtype=np.float64), row["pose_source"],
                    row["survey_id"], row["scan_index"], json.loads(row["pose"]) if row["pose"] else {})


def load_image(pano: Panorama) -> np.ndarray:
    """The panorama's pixels (h, 2h, 3) uint8, checked against its recorded sha256."""
    from sitetwin.panorama.io import read_panorama

    if not pano.file.exists():
        raise PanoramaError(N_("panorama {pano_id}: its image {file} is missing; add it again"), pano_id=pano.pano_id,
                            file=pano.file)
    img = read_panorama(pano.file)
    if img.sha256 != pano.sha256:
        raise PanoramaError(N_("panorama {pano_id}: {file} changed since it was added "
                               "(sha256 differs); add the new image as a new panorama"),
                            pano_id=pano.pano_id, file=pano.file)
    return img.pixels


# --- element maps ------------------------------------------------------------------------------

def _models_for(store: Store, pano: Panorama) -> list[str]:
    if pano.model_id:
        return [pano.model_id]
    return current_model_ids(store, pano.site_code)


def compute_element_map(store: Store, pano_id: str, *, width: int | None = None, mesh=None, scene=None):
    """Ray-cast a stored, posed panorama against its model(s), save the map beside the store, return it.

    ``width`` (default: the image's) sets the map's resolution; ``mesh``/``scene`` may be
    passed in to reuse them across panoramas.
    """
    from sitetwin.panorama.element_map import compact, element_map, write_map_files

    pano = get_panorama(store, pano_id)
    T = pano.T_model_from_camera
    if T is None:
        raise PanoramaError(N_("panorama {pano_id} has no pose; add it again with --pose or --control-points"),
                            pano_id=pano_id)
    model_ids = _models_for(store, pano)
    if not model_ids:
        raise PanoramaError(N_("site {site_code} has no model to ray-cast; load one with `sitetwin bim load`"),
                            site_code=pano.site_code)
    if mesh is None:
        from sitetwin.bim.mesh import load_mesh

        try:
            mesh = load_mesh(store, model_ids=model_ids)
        except SitetwinError as exc:
            raise PanoramaError(N_("panorama {pano_id}: {reason}"), pano_id=pano_id, reason=cause(exc)) from None
    w = int(width or pano.width)
    if w % 2:
        raise PanoramaError(N_("element-map width must be even (2:1), got {width}"), width=w)
    started = time.perf_counter()
    emap = element_map(mesh, T, w, w // 2, scene=scene)
    index, records = compact(emap)
    folder = pano_dir(store, pano_id)
    index_name, depth_name = write_map_files(folder, index, emap.depth_m)
    seconds = time.perf_counter() - started
    rel = folder.relative_to(Path(store.cache_dir))
    import pandas as pd

    with store.transaction():
        store.execute("DELETE FROM panorama_elements WHERE pano_id = ?", [pano_id])
        store.execute("DELETE FROM panorama_element_maps WHERE pano_id = ?", [pano_id])
        store.execute("INSERT INTO panorama_element_maps (pano_id, site_code, model_ids, width, height, index_file, "
                      "depth_file, T_model_from_camera, element_count, coverage, seconds) "
                      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      [pano_id, pano.site_code, model_ids, w, w // 2, str(rel / index_name), str(rel / depth_name),
                       T.tolist(), len(records), emap.coverage, seconds])
        if records:
            frame = pd.DataFrame(records).drop(columns=["index"])
            frame["site_code"] = pano.site_code
            frame["pano_id"] = pano_id
            store.insert_frame("panorama_elements", frame)
    return _with(emap, pano_id=pano_id, seconds=seconds)


def _with(emap, **changes):
    from dataclasses import replace

    return replace(emap, **changes)


def load_element_map(store: Store, pano_id: str, *, compute: bool = False):
    """The stored element map of a panorama (indices into its visible-element lookup).

    With ``compute=True`` a missing or stale map (the pose changed) is computed first.
    """
    from sitetwin.panorama.element_map import ElementMap, read_map_files

    pano = get_panorama(store, pano_id)
    row = store.one("SELECT * FROM panorama_element_maps WHERE pano_id = ?", [pano_id])
    stale = row is not None and pano.T_model_from_camera is not None and not np.allclose(
        np.array(json.loads(row["T_model_from_camera"])), pano.T_model_from_camera, atol=1e-9)
    if row is None or stale:
        if compute:
            compute_element_map(store, pano_id)
            return load_element_map(store, pano_id)
        if stale:
            raise PanoramaError(N_("panorama {pano_id} has no current element map; "
                                   "make one with `sitetwin pano element-map --pano {pano_id}`"), pano_id=pano_id)
        raise PanoramaError(N_("panorama {pano_id} has no element map; "
                               "make one with `sitetwin pano element-map --pano {pano_id}`"), pano_id=pano_id)
    base = Path(store.cache_dir)
    index_path, depth_path = base / row["index_file"], base / row["depth_file"]
    if not index_path.exists() or not depth_path.exists():
        if compute:
            compute_element_map(store, pano_id)
            return load_element_map(store, pano_id)
        raise PanoramaError(N_("panorama {pano_id}: element-map files are missing from {folder}; "
                               "make it again with `sitetwin pano element-map --pano {pano_id}`"),
                            pano_id=pano_id, folder=index_path.parent)
    index, depth = read_map_files(index_path.parent, index_path.name, depth_path.name)
    lookup = store.rows("SELECT map_index, model_id, global_id FROM panorama_elements WHERE pano_id = ? "
                        "ORDER BY map_index", [pano_id])
    n = len(lookup)
    gids = np.array([""] * n, dtype=object)
    mids = np.array([""] * n, dtype=object)
    for r in lookup:
        gids[r["map_index"] - 1] = r["global_id"]
        mids[r["map_index"] - 1] = r["model_id"]
    element_index = index.astype(np.int32) - 1
    depth = np.where(element_index >= 0, depth, np.inf).astype(np.float32)
    return ElementMap(element_index, depth, gids.astype(str), mids.astype(str),
                      np.array(json.loads(row["T_model_from_camera"])), None, pano_id, float(row["seconds"] or 0.0))


def _drop_element_map(store: Store, pano_id: str) -> None:
    store.execute("DELETE FROM panorama_elements WHERE pano_id = ?", [pano_id])
    store.execute("DELETE FROM panorama_element_maps WHERE pano_id = ?", [pano_id])


def remove_map_files(store: Store, pano_id: str) -> None:
    shutil.rmtree(pano_dir(store, pano_id), ignore_errors=True)
