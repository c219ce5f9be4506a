"""``sitetwin pano``: import panoramas with their pose, map pixels to elements, measure, cut views."""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from sitetwin.data.clikit import DEFAULT_DB_PATH, DbOption, JsonOption, emit, out_console, progress, table, warn
from sitetwin.data.i18n import N_, Translator

_ = Translator("app")

if TYPE_CHECKING:
    import numpy as np

    from sitetwin.panorama.pose import PoseSolution

pano_app = typer.Typer(help="360-degree panoramas: pose in the model, pixel <-> element, overlay, measurement, views.",
                       no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(pano_app, name="pano")


PanoOption = Annotated[str, typer.Option("--pano", help="Panorama id (see `sitetwin pano list`).", show_default=False)]


@pano_app.command("add")
def add_cmd(
    images: Annotated[list[Path], typer.Argument(help="Equirectangular JPEG/PNG files (2:1), or E57 files with "
                                                      "spherical images2D.", show_default=False)],
    db: DbOption = DEFAULT_DB_PATH,
    model: Annotated[Optional[str], typer.Option("--model", help="Model id the panoramas are posed against.")] = None,
    pose: Annotated[Optional[Path], typer.Option("--pose", help="Pose JSON: {position_m, yaw_deg, pitch_deg, "
                                                                "roll_deg} or {T_model_from_camera}; several "
                                                                "images: {\"poses\": {file: pose}}.")] = None,
    control_points: Annotated[Optional[Path], typer.Option("--control-points", help="CSV with u,v,x_m,y_m,z_m "
                                                           "(and label, image): >= 4 pixel <-> model pairs.")] = None,
    survey: Annotated[Optional[str], typer.Option("--survey", help="Pose from this registered survey's scan "
                                                                   "station (the panorama came from the "
                                                                   "scanner).")] = None,
    scan: Annotated[Optional[str], typer.Option("--scan", help="Scan index or name within --survey.")] = None,
    site: Annotated[Optional[str], typer.Option("--site", help="Site code (default: the model's, or the store's "
                                                               "only site).")] = None,
    refine: Annotated[bool, typer.Option("--refine", help="Refine the pose by aligning the model's edges with the "
                                                          "photo's: rotation and position with --control-points, "
                                                          "the rotation otherwise (kept only when the photo "
                                                          "clearly agrees).")] = False,
    as_json: JsonOption = False,
) -> None:
    """Import panoramas with site, capture time and pose (each call is one transaction)."""
    from sitetwin.data.store import open_store
    from sitetwin.panorama.errors import PoseError, PoseWarning
    from sitetwin.panorama.pano_store import add_panoramas
    from sitetwin.panorama.pose import read_control_points, read_pose_file, survey_pose

    given = [x for x in (pose, control_points, survey) if x is not None]
    if len(given) > 1:
        raise typer.BadParameter(_("give one of --pose, --control-points or --survey"))
    if scan is not None and survey is None:
        raise typer.BadParameter(_("--scan needs --survey"))
    poses: dict[str, np.ndarray] | np.ndarray | PoseSolution | None = read_pose_file(pose) if pose else None
    cps = read_control_points(control_points) if control_points else None
    with open_store(db) as store, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PoseWarning)
        if survey is not None:
            if len(images) != 1:
                raise PoseError(N_("--survey places one panorama (one scan station); got {n} images"), n=len(images))
            poses = survey_pose(store, survey, scan)
        with progress() as bar:
            task = bar.add_task(_("reading panoramas"), total=None)
            reports = add_panoramas(store, images, site_code=site, model_id=model, poses=poses, control_points=cps,
                                    refine=refine)
            bar.remove_task(task)
    for w in caught:
        warn(str(w.message))
    if not as_json and all(r.pose_source == "none" for r in reports):
        warn(_("no pose given: the panoramas are stored, but element maps and measurement need one "
               "(--pose, --control-points or --survey)"))
    if not as_json:
        for r in reports:
            done = r.pose.get("refined")
            if done and not done["accepted"]:
                warn(_("{pano}: pose not refined: {reason}", pano=r.name or r.pano_id, reason=done["reason"]))
    payload = reports[0] if len(reports) == 1 else {"panoramas": reports}
    columns = ["pano", "name", "size", "captured", "pose", "rms_px", "inliers"]
    columns += ["refined"] if refine else []
    emit(payload, as_json, lambda _payload: table(
        [{"pano": r.pano_id, "name": r.name, "size": f"{r.width}x{r.height}", "captured": r.captured_at,
          "pose": r.pose_source, "rms_px": r.pose.get("rms_px"), "inliers": _inliers(r.pose),
          "refined": _refined(r.pose), "status": "unchanged" if r.reused else "added"} for r in reports],
        columns + ["status"], title=_("site {site}", site=reports[0].site_code) if reports else None))


def _inliers(pose: dict) -> str | None:
    return f"{pose['inliers']}/{pose['points']}" if pose.get("points") else None


def _refined(pose: dict) -> str | None:
    """What --refine did, in a few words: how far it moved the camera, or that it kept the pose."""
    done = pose.get("refined")
    if not done:
        return None
    if not done["accepted"]:
        return "kept"
    turned = math.hypot(*done["delta_ypr_deg"])           # small angles: about the rotation's size
    if done.get("method") == "pose":
        return f"moved {math.hypot(*done['delta_position_cm']):.1f} cm, turned {turned:.2f} deg"
    return f"turned {turned:.2f} deg"


@pano_app.command("list")
def list_cmd(db: DbOption = DEFAULT_DB_PATH, site: Annotated[Optional[str], typer.Option("--site")] = None,
             as_json: JsonOption = False) -> None:
    """List the store's panoramas with their pose."""
    from sitetwin.data.store import open_store
    from sitetwin.panorama.pano_store import list_panoramas

    with open_store(db, read_only=True) as store:
        panos = list_panoramas(store, site)
    rows = [{"pano_id": p.pano_id, "site_code": p.site_code, "model_id": p.model_id, "name": p.name,
             "width": p.width, "height": p.height, "captured_at": p.captured_at, "pose_source": p.pose_source,
             "position_m": p.pose.get("position_m"), "rms_px": p.pose.get("rms_px"), "file": str(p.file)}
            for p in panos]
    emit(rows, as_json, lambda rs: table(rs, ["pano_id", "name", "width", "height", "captured_at", "pose_source",
                                              "position_m", "rms_px"]))


@pano_app.command("element-map")
def element_map_cmd(
    db: DbOption = DEFAULT_DB_PATH,
    *,                    # required options below --db keep their place in --help
    pano: PanoOption,
    width: Annotated[Optional[int], typer.Option("--width", help="Map width in pixels (default: the image's).")] = None,
    overlay: Annotated[Optional[Path], typer.Option("--overlay", help="Also write the photo with the design "
                                                                      "drawn over it (JPEG/PNG).")] = None,
    color_by: Annotated[str, typer.Option("--color-by", help="class, status or deviation (needs a survey).")] = "class",
    survey: Annotated[Optional[str], typer.Option("--survey", help="Survey for status/deviation colours "
                                                                   "(default: the latest).")] = None,
    top: Annotated[int, typer.Option("--top", help="Elements to list, largest first.")] = 10,
    as_json: JsonOption = False,
) -> None:
    """Ray-cast a posed panorama against the model: the element and range of every pixel, stored compactly."""
    from sitetwin.bim.queries import element_frame
    from sitetwin.data.store import open_store
    from sitetwin.panorama.pano_store import compute_element_map, get_panorama, load_image
    from sitetwin.panorama.queries import element_map_files, map_elements

    with open_store(db) as store:
        emap = compute_element_map(store, pano, width=width)
        p = get_panorama(store, pano)
        seen = map_elements(store, pano)
        facts = element_frame(store, model_ids=sorted({e["model_id"] for e in seen}))[
            ["model_id", "global_id", "ifc_class", "storey"]]
        facts = facts.astype(object).where(facts.notna(), None)
        about = {(m, g): {"ifc_class": c, "storey": s} for m, g, c, s in facts.itertuples(index=False)}
        elements = [{"global_id": e["global_id"], "model_id": e["model_id"],
                     **about.get((e["model_id"], e["global_id"]), {"ifc_class": None, "storey": None}),
                     **{k: e[k] for k in ("pixels", "solid_angle_sr", "min_depth_m", "median_depth_m")}} for e in seen]
        row = element_map_files(store, pano)
        assert row is not None        # compute_element_map has just stored it
        written = None
        if overlay is not None:
            from sitetwin.panorama.io import save_image
            from sitetwin.panorama.overlay import coloring
            from sitetwin.panorama.overlay import overlay as draw

            colors = coloring(store, p.site_code, color_by, survey_id=survey,
                              model_ids=[p.model_id] if p.model_id else None)
            written = str(save_image(overlay, draw(load_image(p), emap, colors)))
    payload = {"pano_id": pano, "width": emap.width, "height": emap.height, "coverage": round(emap.coverage, 4),
               "element_count": len(elements), "seconds": round(emap.seconds, 3),
               "index_file": str(Path(store.cache_dir) / row["index_file"]),
               "depth_file": str(Path(store.cache_dir) / row["depth_file"]), "overlay": written,
               "elements": elements[:top] if not as_json else elements}
    emit(payload, as_json, _render_map)


def _render_map(r: dict) -> None:
    out_console().print(_("panorama {pano}: {size} element map, {n} elements seen, coverage {coverage}, {seconds} s",
                          pano=r["pano_id"], size="{}x{}".format(r["width"], r["height"]), n=r["element_count"],
                          coverage=format(r['coverage'], ".1%"), seconds=format(r['seconds'], ".2f")))
    out_console().print("  " + _("index {file}", file=r["index_file"]))
    out_console().print("  " + _("depth {file}", file=r["depth_file"]))
    if r["overlay"]:
        out_console().print("  " + _("overlay {file}", file=r["overlay"]))
    table([{**e, "solid_angle_sr": round(e["solid_angle_sr"], 4), "min_depth_m": round(e["min_depth_m"], 2),
            "median_depth_m": round(e["median_depth_m"], 2)} for e in r["elements"]],
          ["global_id", "ifc_class", "storey", "pixels", "solid_angle_sr", "min_depth_m", "median_depth_m"],
          title=_("largest elements in view"))


@pano_app.command("measure")
def measure_cmd(
    db: DbOption = DEFAULT_DB_PATH,
    *,                    # required options below --db keep their place in --help
    pano: PanoOption,
    from_: Annotated[str, typer.Option("--from", help="Start pixel U,V (from the top-left).", show_default=False)],
    to: Annotated[str, typer.Option("--to", help="End pixel U,V.", show_default=False)],
    depth: Annotated[str, typer.Option("--depth", help="auto (scan where a survey covers the pixel, else model), "
                                                       "model, scan or floor.")] = "auto",
    survey: Annotated[Optional[str], typer.Option("--survey", help="Survey whose points give scan depth.")] = None,
    camera_height: Annotated[Optional[float], typer.Option("--camera-height", help="Camera height above the floor "
                                                           "(m), for floor measuring without a model.")] = None,
    clearance: Annotated[bool, typer.Option("--clearance", help="Also give the free height below the --from "
                                                                "point (e.g. under a beam).")] = False,
    snap: Annotated[float, typer.Option("--snap", help="Snap each end to the model corner within this many "
                                                       "pixels (0: off).")] = 0.0,
    as_json: JsonOption = False,
) -> None:
    """The 3D distance between two pixels (with its horizontal and vertical parts) in metres."""
    from sitetwin.data.store import open_store
    from sitetwin.panorama.measure import measure, parse_uv

    with open_store(db, read_only=True) as store:
        result = measure(store, pano, parse_uv(from_), parse_uv(to), depth=depth, survey_id=survey,
                         camera_height_m=camera_height, clearance_below=clearance, snap_px=snap)
    emit(result.summary(), as_json, _render_measure)


def _render_measure(r: dict) -> None:
    c = out_console()
    c.print(_("distance {d} m (+/- {u} m): horizontal {h} m, vertical {v} m", d=format(r["distance_m"], ".3f"),
              u=format(r["uncertainty_m"], ".3f"), h=format(r["horizontal_m"], ".3f"),
              v=format(r["vertical_m"], "+.3f")))
    for key in ("from", "to"):
        e = r[key]
        what = " " + _("on {element}", element=e["global_id"]) if e.get("global_id") else ""
        c.print(f"  {key:<4} ({e['uv'][0]:.1f}, {e['uv'][1]:.1f}) -> {e['point_m']} m "
                + _("by {method}", method=e["method"]) + what + ", " + _("range {r} m", r=format(e['range_m'], ".2f")))
    cl = r.get("clearance_below_from")
    if cl:
        c.print("  " + _("clearance below the start point: {m} m", m=format(cl['clearance_m'], ".3f")))


@pano_app.command("view")
def view_cmd(
    db: DbOption = DEFAULT_DB_PATH,
    *,                    # required options below --db keep their place in --help
    pano: PanoOption,
    yaw: Annotated[float, typer.Option("--yaw", help="View direction, degrees anticlockwise from the image "
                                                     "centre.")] = 0.0,
    pitch: Annotated[float, typer.Option("--pitch", help="Degrees above the horizon.")] = 0.0,
    fov: Annotated[float, typer.Option("--fov", help="Horizontal field of view, degrees.")] = 90.0,
    out: Annotated[Path, typer.Option("--out", help="Image file to write (JPEG/PNG).", show_default=False)],
    width: Annotated[int, typer.Option("--width", help="View width in pixels.")] = 1024,
    height: Annotated[int, typer.Option("--height", help="View height in pixels.")] = 768,
    color_by: Annotated[Optional[str], typer.Option("--overlay", help="Draw the design over the view, coloured "
                                                                      "by class, status or deviation.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Cut a perspective view out of a panorama (for viewing, or for detectors)."""
    from sitetwin.data.store import open_store
    from sitetwin.panorama.camera import PerspectiveCamera, render_view
    from sitetwin.panorama.errors import PanoramaError
    from sitetwin.panorama.io import save_image
    from sitetwin.panorama.pano_store import get_panorama, load_image

    if not (8 <= width <= 8192 and 8 <= height <= 8192):
        raise PanoramaError(N_("view size must lie within 8..8192 pixels, got {width}x{height}"), width=width,
                            height=height)
    try:
        camera = PerspectiveCamera.from_fov(width, height, fov, yaw, pitch)
    except ValueError as exc:
        raise PanoramaError(str(exc)) from None
    with open_store(db, read_only=True) as store:
        p = get_panorama(store, pano)
        view = render_view(load_image(p), camera)
        if color_by is not None:
            from sitetwin.panorama.element_map import element_map_perspective
            from sitetwin.panorama.overlay import coloring, overlay
            from sitetwin.panorama.pano_store import _models_for

            if not p.posed:
                raise PanoramaError(N_("panorama {pano} has no pose: the design cannot be drawn over it"), pano=pano)
            from sitetwin.bim.mesh import load_mesh

            emap = element_map_perspective(load_mesh(store, model_ids=_models_for(store, p)), camera,
                                           p.T_model_from_camera)
            view = overlay(view, emap, coloring(store, p.site_code, color_by,
                                                model_ids=[p.model_id] if p.model_id else None))
    save_image(out, view)
    corners = camera.box_to_pano((0, 0, width, height), p.width, p.height)
    payload = {"pano_id": pano, "out": str(out), "width": width, "height": height, "yaw_deg": yaw,
               "pitch_deg": pitch, "fov_deg": fov, "fx": camera.fx, "fy": camera.fy, "cx": camera.cx, "cy": camera.cy,
               "pano_box": [round(float(x), 2) for x in corners]}
    emit(payload, as_json, lambda r: out_console().print(_(
        "wrote {out}: {size} view at yaw {yaw}, pitch {pitch}, fov {fov} deg; covers panorama box {box}",
        out=r["out"], size="{}x{}".format(r["width"], r["height"]), yaw=format(r["yaw_deg"], "g"),
        pitch=format(r["pitch_deg"], "g"), fov=format(r["fov_deg"], "g"), box=r["pano_box"])))
