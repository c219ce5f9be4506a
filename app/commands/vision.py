"""``sitetwin vision ...`` and ``sitetwin detect``: datasets, training, evaluation, cameras, detection.

Heavy imports (torch, ultralytics, open3d, cv2) happen inside the commands.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Optional

import typer

from sitetwin.data.clikit import DEFAULT_DB_PATH, DbOption, JsonOption, emit, err_console, progress, table, warn
from sitetwin.data.i18n import N_, Translator

_ = Translator("app")

SEVERITY = {"error": N_("error"), "warning": N_("warning")}     # a dataset issue's severity, as people read it

OptionalDb = Annotated[Optional[Path], typer.Option("--db", help="Record the run in this store (optional).")]

vision_app = typer.Typer(name="vision", help="Detectors: datasets, training, evaluation, cameras, hazards.",
                         no_args_is_help=True, rich_markup_mode=None)
dataset_app = typer.Typer(name="dataset", help="Check, merge, split and auto-label detection datasets.",
                          no_args_is_help=True, rich_markup_mode=None)
camera_app = typer.Typer(name="camera", help="Fixed site cameras (intrinsics and pose).", no_args_is_help=True,
                         rich_markup_mode=None)
vision_app.add_typer(dataset_app)
vision_app.add_typer(camera_app)


def register(app: typer.Typer) -> None:
    app.add_typer(vision_app)
    app.command("detect")(detect_cmd)


# --- datasets ---------------------------------------------------------------------------------------

def _read_any(path: Path, fmt: str, images: Optional[Path]):
    from sitetwin.vision.datasets import read_yolo
    from sitetwin.vision.errors import DatasetError
    from sitetwin.vision.formats import read_coco, read_voc

    if fmt == "auto":
        if path.is_file() and path.suffix == ".json":
            fmt = "coco"
        elif path.is_dir() and (path / "Annotations").is_dir():
            fmt = "voc"
        else:
            fmt = "yolo"
    if fmt == "coco":
        return read_coco(path, images)
    if fmt == "voc":
        return read_voc(path)
    if fmt == "yolo":
        return read_yolo(path)
    raise DatasetError(N_("--format {format}: use yolo, coco, voc or auto"), format=fmt)


@dataset_app.command("check")
def dataset_check(
    path: Annotated[Path, typer.Argument(help="YOLO folder or data.yaml, COCO .json, or Pascal VOC folder.")],
    fmt: Annotated[str, typer.Option("--format", help="yolo | coco | voc | auto")] = "auto",
    images: Annotated[Optional[Path], typer.Option(help="COCO: the images folder (default: beside the JSON).")] = None,
    strict: Annotated[bool, typer.Option(help="Exit 1 when a warning (e.g. a polygon line) is found too.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Validate a dataset: every bad label line (file:line), corrupt image, and statistics."""
    from sitetwin.vision.datasets import report_json

    dataset = _read_any(path, fmt, images)
    report = report_json(dataset)

    def render(r):
        from rich.markup import escape

        console = err_console()
        # the dataset's issues, read in the reader's language (the JSON report's messages are English)
        for issue in dataset.issues[:len(r["issues"])]:
            colour = "red" if issue.severity == "error" else "yellow"
            console.print(f"[{colour}]{_(SEVERITY.get(issue.severity, issue.severity))}[/] {escape(str(issue))}",
                          markup=True, soft_wrap=True, highlight=False)
        table([{"class": k, **v} for k, v in r["per_class"].items()], ["class", "instances", "images"],
              title=_("{images} images, {boxes} boxes, {errors} errors, {warnings} warnings", images=r["images"],
                      boxes=r["instances"], errors=r["errors"], warnings=r["warnings"]))
    emit(report, as_json, render)
    if report["errors"] or not report["ok"] or (strict and report["warnings"]):
        raise typer.Exit(1)


@dataset_app.command("merge")
def dataset_merge(
    sources: Annotated[list[Path], typer.Argument(help="Datasets to merge (YOLO, COCO .json, VOC), any mix.")],
    out: Annotated[Path, typer.Option("--out", help="New folder for the merged YOLO dataset.")],
    class_map: Annotated[Optional[Path],
                         typer.Option(help="Class-map YAML (default: sitetwin's site taxonomy).")] = None,
    drop_unknown: Annotated[bool, typer.Option(help="Drop classes the map does not know instead of failing.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Merge datasets under one taxonomy (class-map file), written as one YOLO dataset."""
    from sitetwin.vision.datasets import load_class_map, merge, require_usable, statistics, write_yolo

    cm = load_class_map(class_map)
    datasets = [require_usable(_read_any(s, "auto", None)) for s in sources]
    merged = merge(datasets, cm, drop_unknown=drop_unknown)
    yaml_path = write_yolo(merged, out)
    st = statistics(merged)
    result = {"out": str(out), "data_yaml": str(yaml_path), "names": list(cm.names), "images": st.images,
              "instances": st.instances, "per_class": st.per_class, "sources": [str(s) for s in sources],
              "warnings": len(merged.warnings)}
    emit(result, as_json, lambda r: table([{"class": k, **v} for k, v in r["per_class"].items()],
                                          ["class", "instances", "images"],
                                          title=_("merged {n} datasets into {out}", n=len(r["sources"]),
                                                  out=r["out"])))


@dataset_app.command("split")
def dataset_split(
    source: Annotated[Path, typer.Argument(help="Dataset to split (YOLO, COCO .json or VOC).")],
    out: Annotated[Path, typer.Option("--out", help="New folder for the split YOLO dataset.")],
    train: Annotated[float, typer.Option(help="Training share.")] = 0.8,
    val: Annotated[float, typer.Option(help="Validation share.")] = 0.2,
    test: Annotated[float, typer.Option(help="Test share.")] = 0.0,
    seed: Annotated[int, typer.Option(help="Same seed, same split.")] = 0,
    as_json: JsonOption = False,
) -> None:
    """Split reproducibly (by a seeded hash of each image's name) and write train/val/test folders."""
    from sitetwin.vision.datasets import require_usable, split, statistics, write_yolo

    dataset = split(require_usable(_read_any(source, "auto", None)), (train, val, test), seed=seed)
    yaml_path = write_yolo(dataset, out)
    st = statistics(dataset)
    result = {"out": str(out), "data_yaml": str(yaml_path), "seed": seed, "per_split": st.per_split}
    emit(result, as_json, lambda r: table([{"split": k, **v} for k, v in r["per_split"].items()],
                                          ["split", "images", "instances"],
                                          title=_("split into {out}", out=r["out"])))


@dataset_app.command("autolabel")
def dataset_autolabel(
    out: Annotated[Path, typer.Option("--out", help="New folder for the labelled YOLO dataset.")],
    pano: Annotated[Optional[list[str]],
                    typer.Option("--pano", help="Panorama id (repeat); default all posed.")] = None,
    site: Annotated[Optional[str], typer.Option(help="Site code (default: the store's only site).")] = None,
    masks: Annotated[bool, typer.Option(help="Write polygon (segmentation) labels instead of boxes.")] = False,
    at: Annotated[Optional[str],
                  typer.Option(help="Label only elements built by this date (schedule), YYYY-MM-DD.")] = None,
    survey: Annotated[Optional[str], typer.Option(help="Label only elements this survey found built.")] = None,
    min_pixels: Annotated[int, typer.Option(help="Visible pixels an element needs in a view.")] = 400,
    db: DbOption = DEFAULT_DB_PATH,
    as_json: JsonOption = False,
) -> None:
    """Label posed panoramas from the model (BIM-based labelling): element boxes or masks per perspective view."""
    from sitetwin.bim.mesh import resolve_site
    from sitetwin.data.store import open_store
    from sitetwin.panorama.pano_store import list_panoramas
    from sitetwin.vision.autolabel import AutolabelConfig, autolabel_panoramas, built_elements

    with open_store(db, read_only=True) as store:
        site = resolve_site(store, site)
        ids = pano or sorted(p.pano_id for p in list_panoramas(store, site) if p.posed)
        when = dt.date.fromisoformat(at) if at else None
        keep = built_elements(store, site, at=when, survey_id=survey)
        with progress() as bar:
            task = bar.add_task(_("labelling views"), total=None)
            report = autolabel_panoramas(store, ids, out, config=AutolabelConfig(masks=masks, min_pixels=min_pixels),
                                         element_ids=keep, on_view=lambda n: bar.update(task, completed=n))
    emit(report, as_json, lambda r: table([{"class": k, "labels": v} for k, v in r.per_class.items()],
                                          ["class", "labels"],
                                          title=_("{views} views from {panoramas} panoramas -> {out}",
                                                  views=r.images, panoramas=r.panoramas, out=r.out)))


# --- training and evaluation --------------------------------------------------------------------------

@vision_app.command("train")
def train_cmd(
    data: Annotated[Path, typer.Argument(help="YOLO dataset folder or data.yaml.")],
    out: Annotated[Path, typer.Option("--out", help="New folder for the run (dataset copy, weights, plots).")],
    model: Annotated[str, typer.Option(help="Model yaml (from scratch, e.g. yolo11n.yaml) or local .pt weights.")]
    = "yolo11n.yaml",
    epochs: Annotated[int, typer.Option(help="Epochs.")] = 10,
    imgsz: Annotated[int, typer.Option(help="Image size, a multiple of 32.")] = 640,
    batch: Annotated[int, typer.Option(help="Batch size.")] = 16,
    seed: Annotated[int, typer.Option(help="Seed (training and split).")] = 0,
    onnx: Annotated[bool, typer.Option("--onnx", help="Also export the best weights to ONNX.")] = False,
    site: Annotated[Optional[str], typer.Option(help="Site the data comes from (recorded with the run).")] = None,
    db: OptionalDb = None,
    as_json: JsonOption = False,
) -> None:
    """Train a YOLO detector offline (ultralytics); with --db the run is recorded (dataset hash, config, metrics)."""
    from sitetwin.vision.train import TrainConfig, export_onnx, train

    config = TrainConfig(model=model, epochs=epochs, imgsz=imgsz, batch=batch, seed=seed)
    store = _open_optional(db)
    try:
        with progress() as bar:
            task = bar.add_task(_("training the detector"), total=epochs)
            result = train(data, config, out=out, store=store, site_code=site,
                           on_epoch=lambda e, n, m: bar.update(task, completed=min(e, n)))
        payload = {"run_id": result.run_id if store is not None else None, "weights": str(result.weights),
                   "dataset_hash": result.dataset_hash, "classes": list(result.class_names),
                   "metrics": result.metrics, "per_class": list(result.per_class), "seconds": round(result.seconds, 1)}
        if onnx:
            payload["onnx"] = str(export_onnx(result.weights, imgsz=imgsz, store=store, site_code=site))
    finally:
        if store is not None:
            store.close()
    emit(payload, as_json, _render_metrics)


@vision_app.command("eval")
def eval_cmd(
    weights: Annotated[Path, typer.Argument(help=".pt or .onnx weights.")],
    data: Annotated[Path, typer.Argument(help="YOLO dataset folder or data.yaml.")],
    out: Annotated[Path, typer.Option("--out", help="New folder for the evaluation (plots).")],
    imgsz: Annotated[int, typer.Option(help="Image size.")] = 640,
    split_name: Annotated[str, typer.Option("--split", help="Split to evaluate (a dataset without splits: all).")]
    = "val",
    drop_unknown: Annotated[bool, typer.Option(help="Ignore dataset classes the weights do not know.")] = False,
    site: Annotated[Optional[str], typer.Option(help="Site the data comes from.")] = None,
    db: OptionalDb = None,
    as_json: JsonOption = False,
) -> None:
    """Per-class precision, recall, mAP50, mAP50-95, with confusion matrix and PR curve images."""
    from sitetwin.vision.train import evaluate

    store = _open_optional(db)
    try:
        report = evaluate(weights, data, out=out, imgsz=imgsz, split_name=split_name, store=store, site_code=site,
                          drop_unknown=drop_unknown)
    finally:
        if store is not None:
            store.close()
    payload = {"run_id": report.run_id if db else None, "weights": str(report.weights), "metrics": report.metrics,
               "per_class": list(report.per_class), "confusion_matrix": report.confusion_matrix,
               "pr_curve": report.pr_curve, "plots": [str(p) for p in report.plots]}
    emit(payload, as_json, _render_metrics)


@vision_app.command("export")
def export_cmd(
    weights: Annotated[Path, typer.Argument(help=".pt weights.")],
    imgsz: Annotated[int, typer.Option(help="Input size of the exported graph.")] = 640,
    dynamic: Annotated[bool, typer.Option(help="Any batch and size (slower on CPU than a fixed graph).")] = False,
    out: Annotated[Optional[Path], typer.Option("--out", help="Where to put the .onnx file.")] = None,
    int8: Annotated[bool, typer.Option("--int8", help="Also write an int8 (QDQ) copy, calibrated on --calibration.")]
    = False,
    calibration: Annotated[Optional[Path], typer.Option(help="Images (a folder or a YOLO dataset) like those the "
                                                             "model will see, for --int8.")] = None,
    db: OptionalDb = None,
    as_json: JsonOption = False,
) -> None:
    """Export weights to ONNX for ONNX Runtime (optionally also int8 for CPUs with VNNI)."""
    from sitetwin.vision.errors import VisionError
    from sitetwin.vision.train import export_onnx, quantize_onnx

    if int8 and calibration is None:
        raise VisionError(N_("--int8 needs --calibration: a folder of images the model will see"))
    store = _open_optional(db)
    try:
        path = export_onnx(weights, imgsz=imgsz, dynamic=dynamic, out=out, store=store)
    finally:
        if store is not None:
            store.close()
    result: dict[str, str | int] = {"onnx": str(path)}
    if int8:
        from sitetwin.vision.sources import IMAGE_SUFFIXES, read_image

        assert calibration is not None      # --int8 without it was refused above
        files = sorted(p for p in calibration.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)[:64]
        if not files:
            raise VisionError(N_("{folder}: no images to calibrate on"), folder=calibration)
        result["onnx_int8"] = str(quantize_onnx(path, [read_image(f) for f in files]))
        result["calibration_images"] = len(files)
    emit(result, as_json, lambda r: print("\n".join(str(v) for k, v in r.items() if k.startswith("onnx"))))


@vision_app.command("runs")
def runs_cmd(db: DbOption = DEFAULT_DB_PATH,
             kind: Annotated[Optional[str], typer.Option(help="train|eval|export|detect")] = None,
             as_json: JsonOption = False) -> None:
    """Detector runs recorded in the store."""
    from sitetwin.data.store import open_store
    from sitetwin.vision.queries import list_runs

    with open_store(db, read_only=True) as store:
        rows = list_runs(store, kind=kind)
    emit(rows, as_json, lambda rs: table(rs, ["run_id", "kind", "site_code", "status", "seconds", "weights_path"]))


@vision_app.command("hazards")
def hazards_cmd(db: DbOption = DEFAULT_DB_PATH,
                site: Annotated[Optional[str], typer.Option(help="Site code.")] = None,
                rule: Annotated[Optional[str], typer.Option(help="Only this rule.")] = None,
                as_json: JsonOption = False) -> None:
    """Hazards found, newest first, with element, storey and finding."""
    from sitetwin.data.store import open_store
    from sitetwin.vision.queries import list_hazards

    with open_store(db, read_only=True) as store:
        rows = list_hazards(store, site_code=site, rule=rule)
    emit(rows, as_json, lambda rs: table(rs, ["hazard_id", "rule", "severity", "storey", "global_id", "message",
                                              "finding_id"]))


def _render_metrics(r: dict) -> None:
    m = r.get("metrics") or {}
    table([{k: (f"{v:.3f}" if isinstance(v, float) else v) for k, v in row.items()} for row in r.get("per_class", [])],
          ["class", "images", "instances", "precision", "recall", "map50", "map50_95"],
          title=f"P {m.get('precision', 0):.3f}  R {m.get('recall', 0):.3f}  mAP50 {m.get('map50', 0):.3f}  "
                f"mAP50-95 {m.get('map50_95', 0):.3f}")
    for key in ("weights", "onnx", "confusion_matrix", "pr_curve"):
        if r.get(key):
            print(f"{key}: {r[key]}")


def _open_optional(db: Optional[Path]):
    if db is None:
        return None
    from sitetwin.data.store import open_store

    return open_store(db)


# --- cameras ---------------------------------------------------------------------------------------------

@camera_app.command("add")
def camera_add(
    camera_id: Annotated[str, typer.Argument(help="Camera id, unique on the site.")],
    width: Annotated[int, typer.Option(help="Image width, pixels.")],
    height: Annotated[int, typer.Option(help="Image height, pixels.")],
    position: Annotated[str, typer.Option(help="Camera centre x,y,z in metres (site local frame).")],
    yaw: Annotated[float, typer.Option(help="Degrees, anticlockwise from model +x.")] = 0.0,
    pitch: Annotated[float, typer.Option(help="Degrees, positive up.")] = 0.0,
    roll: Annotated[float, typer.Option(help="Degrees.")] = 0.0,
    fov: Annotated[Optional[float], typer.Option(help="Horizontal field of view (degrees), square pixels.")] = None,
    fx: Annotated[Optional[float], typer.Option(help="Focal length x, pixels (instead of --fov).")] = None,
    fy: Annotated[Optional[float], typer.Option(help="Focal length y, pixels.")] = None,
    cx: Annotated[Optional[float], typer.Option(help="Principal point x, pixels (default: centre).")] = None,
    cy: Annotated[Optional[float], typer.Option(help="Principal point y, pixels.")] = None,
    url: Annotated[Optional[str], typer.Option(help="The camera's stream URL (rtsp:// or http://).")] = None,
    name: Annotated[Optional[str], typer.Option(help="A readable name.")] = None,
    site: Annotated[Optional[str], typer.Option(help="Site code (default: the store's only site).")] = None,
    replace: Annotated[bool, typer.Option(help="Replace an existing camera of that id.")] = False,
    db: DbOption = DEFAULT_DB_PATH,
    as_json: JsonOption = False,
) -> None:
    """Register a fixed site camera: intrinsics and pose, so its detections can be tagged onto the model."""
    import math

    from sitetwin.bim.mesh import resolve_site
    from sitetwin.data.store import open_store
    from sitetwin.panorama.camera import pose_matrix
    from sitetwin.vision.detection_store import Camera, add_camera
    from sitetwin.vision.errors import VisionError

    try:
        xyz = [float(v) for v in position.split(",")]
    except ValueError:
        xyz = []
    if len(xyz) != 3:
        raise VisionError(N_("--position {position!r}: give x,y,z in metres"), position=position)
    if fx is not None:
        f = fx
    elif fov is not None:
        f = (width / 2) / math.tan(math.radians(fov) / 2)
    else:
        raise VisionError(N_("give the intrinsics: --fov, or --fx (and --fy, --cx, --cy)"))
    with open_store(db) as store:
        site = resolve_site(store, site)
        cam = Camera(site_code=site, camera_id=camera_id, width=width, height=height, fx=f, fy=fy or f,
                     cx=cx if cx is not None else width / 2, cy=cy if cy is not None else height / 2,
                     T_model_from_camera=pose_matrix(xyz, yaw, pitch, roll), name=name, source_url=url)
        with store.transaction():
            add_camera(store, cam, replace=replace)
    emit({"camera_id": camera_id, "site_code": site, "fx": f, "fy": fy or f}, as_json,
         lambda r: print(_("camera {camera} on site {site}", camera=r["camera_id"], site=r["site_code"])))


@camera_app.command("list")
def camera_list(db: DbOption = DEFAULT_DB_PATH, as_json: JsonOption = False) -> None:
    """Registered cameras."""
    from sitetwin.data.store import open_store
    from sitetwin.vision.queries import list_cameras

    with open_store(db, read_only=True) as store:
        rows = list_cameras(store)
    emit(rows, as_json, lambda rs: table(rs, ["site_code", "camera_id", "name", "width", "height", "fx", "source_url"]))


# --- detect ----------------------------------------------------------------------------------------------

def detect_cmd(
    source: Annotated[str, typer.Argument(help="Image, folder, video, rtsp/http stream; with --pano, '-' for the "
                                               "panorama's stored image.")],
    weights: Annotated[Path, typer.Option("--weights", help=".pt or .onnx weights (local file).")],
    pano: Annotated[Optional[str], typer.Option("--pano", help="A stored, posed panorama: detections are tagged.")]
    = None,
    camera: Annotated[Optional[str], typer.Option("--camera", help="A registered camera: its frames are tagged.")]
    = None,
    site: Annotated[Optional[str], typer.Option(help="Site code for untagged sources.")] = None,
    conf: Annotated[float, typer.Option(help="Confidence threshold.")] = 0.25,
    imgsz: Annotated[int, typer.Option(help="Detector input size.")] = 640,
    tiles: Annotated[bool, typer.Option(help="Sliced (tiled) inference on large plain images.")] = False,
    rules: Annotated[Optional[Path], typer.Option(help="Hazard-rule settings (YAML).")] = None,
    tracker: Annotated[str, typer.Option(help="bytetrack | botsort (video and streams).")] = "bytetrack",
    max_frames: Annotated[Optional[int], typer.Option(help="Stop after this many frames.")] = None,
    no_findings: Annotated[bool, typer.Option("--no-findings", help="Store hazards without raising findings.")]
    = False,
    db: DbOption = DEFAULT_DB_PATH,
    as_json: JsonOption = False,
) -> None:
    """Detect objects and hazards in a source; store detections tagged onto the model, hazards and findings."""
    import dataclasses

    from sitetwin.data.store import open_store
    from sitetwin.oversight.raising import raise_drafts
    from sitetwin.vision.detect import TileConfig
    from sitetwin.vision.errors import StreamDropped
    from sitetwin.vision.hazards import HazardConfig
    from sitetwin.vision.pipeline import DetectConfig, detect_source

    hazards = HazardConfig.from_file(rules) if rules else HazardConfig()
    config = DetectConfig(imgsz=imgsz, conf=conf, tiles=TileConfig(tile=imgsz) if tiles else None,
                          tracker=tracker, max_frames=max_frames, hazards=hazards)
    with open_store(db) as store:
        with progress() as bar:
            task = bar.add_task(_("detecting"), total=None)
            try:
                report = detect_source(store, None if source == "-" else source, weights, site_code=site,
                                       pano_id=pano, camera_id=camera, config=config,
                                       on_frame=lambda n: bar.update(task, completed=n),
                                       sink=None if no_findings else raise_drafts)
            except StreamDropped as exc:
                warn(str(exc))
                raise typer.Exit(1) from None
    emit(dataclasses.asdict(report), as_json, _render_detect)


def _render_detect(r: dict) -> None:
    print(_("run {run} on {kind} {ref}: {frames} frames, {detections} detections ({tagged} tagged onto elements), "
            "{hazards} hazards, {findings} findings", run=r["run_id"], kind=r["source_kind"], ref=r["source_ref"],
            frames=r["frames"], detections=r["detections"], tagged=r["tagged"], hazards=r["hazards"],
            findings=r["findings"]))
    if r["per_class"]:
        table([{"class": k, "detections": v} for k, v in r["per_class"].items()], ["class", "detections"])
    if r["hazard_rules"]:
        table([{"rule": k, "hazards": v} for k, v in r["hazard_rules"].items()], ["rule", "hazards"])
