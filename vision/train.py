"""Train, evaluate and export YOLO detectors with ultralytics, offline, and record each run in the store.

>>> result = train("datasets/hardhat", TrainConfig(model="yolo11n.yaml", epochs=2, imgsz=320),
...                out="runs/hh")                                            # doctest: +SKIP
>>> report = evaluate(result.weights, "datasets/hardhat", out="runs/hh-eval")  # doctest: +SKIP
>>> onnx_path = export_onnx(result.weights, imgsz=320)                         # doctest: +SKIP

Every run first writes the dataset it is given into its own folder (images linked, labels
rewritten as boxes: polygon lines become their bounding boxes, classes put in the order
of the weights), so ultralytics never writes ``labels.cache`` into a source dataset and
mixed polygon/box files are not silently dropped as "corrupt". A model yaml builds a
fresh network (no pretrained download); weights must be a local file.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from sitetwin.data.clock import utcnow
from sitetwin.data.errors import Phrase, SitetwinError
from sitetwin.data.i18n import N_
from sitetwin.data.store import Store, atomic, store_for
from sitetwin.vision import runtime
from sitetwin.vision.datasets import (
    ClassMap,
    Dataset,
    dataset_hash,
    file_sha256,
    read_yolo,
    remap,
    require_usable,
    split,
    write_yolo,
)
from sitetwin.vision.detection_store import RunRecord, new_id, record_run, run_for_weights
from sitetwin.vision.errors import DatasetError, VisionError, WeightsError

if TYPE_CHECKING:
    from ultralytics.engine.trainer import BaseTrainer

runtime.prepare()   # before anything imports torchvision or ultralytics

MODEL_YAMLS = ("yolo11n.yaml", "yolo11s.yaml", "yolov8n.yaml", "yolov8s.yaml", "yolo26n.yaml", "yolo26s.yaml")


@dataclass(frozen=True)
class TrainConfig:
    """How to train. Checked on creation; errors name the key and the valid range."""

    model: str = "yolo11n.yaml"   # (str) model yaml (fresh network) or a local .pt to start from
    epochs: int = 10              # (int >= 1) passes over the training split
    imgsz: int = 640              # (int, multiple of 32, 32..4096) training image size, pixels
    batch: int = 16               # (int >= 1) images per step
    seed: int = 0                 # (int) seeds ultralytics, the data order and the split
    val_fraction: float = 0.2     # (0 < f < 1) share held out for validation when the dataset has no splits
    workers: int = 0              # (int >= 0) dataloader processes; 0 keeps everything in this process
    patience: int = 100           # (int >= 0) epochs without improvement before stopping early
    plots: bool = True            # (bool) write label and result plots next to the weights
    threads: int | None = None    # (int >= 1 or None) torch CPU threads while training; None: ultralytics' choice
                                  # (one core fewer than the machine has: a single thread on two cores)
    options: dict = field(default_factory=dict)   # (dict) any other ultralytics train argument, passed as is

    def __post_init__(self) -> None:
        _check_int("epochs", self.epochs, 1, 100_000)
        _check_int("imgsz", self.imgsz, 32, 4096)
        if self.imgsz % 32:
            raise VisionError(N_("imgsz: {imgsz} is not a multiple of 32 (the network's stride)"), imgsz=self.imgsz)
        _check_int("batch", self.batch, 1, 4096)
        _check_int("workers", self.workers, 0, 64)
        _check_int("patience", self.patience, 0, 100_000)
        if self.threads is not None:
            _check_int("threads", self.threads, 1, 1024)
        if not 0.0 < float(self.val_fraction) < 1.0:
            raise VisionError(N_("val_fraction: {val_fraction} must lie in (0, 1)"), val_fraction=self.val_fraction)
        reserved = {"data", "project", "name", "exist_ok", "device", "model", "epochs", "imgsz", "batch", "seed",
                    "workers", "patience", "plots", "threads"}
        clash = sorted(reserved & set(self.options))
        if clash:
            raise VisionError(N_("options: {keys} are set through their own keys, not through options"),
                              keys=", ".join(clash))


@dataclass(frozen=True)
class EvalReport:
    """Detection quality of weights on a dataset split."""

    run_id: str
    weights: Path
    metrics: dict                  # precision, recall, map50, map50_95, fitness, speed_ms
    per_class: tuple[dict, ...]    # one row per class of the weights, instances 0 included
    confusion_matrix: Path | None
    pr_curve: Path | None
    plots: tuple[Path, ...]
    save_dir: Path


@dataclass(frozen=True)
class TrainResult:
    run_id: str
    weights: Path                  # best.pt
    last: Path
    save_dir: Path
    dataset_yaml: Path
    dataset_hash: str
    class_names: tuple[str, ...]
    metrics: dict
    per_class: tuple[dict, ...]
    seconds: float
    epochs_run: int


def _check_int(name: str, value: Any, lo: int, hi: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise VisionError(N_("{name}: {value!r} must be an integer in {lo}..{hi}"), name=name, value=value,
                          lo=lo, hi=hi)


# --- datasets prepared for a run ---------------------------------------------------------------

def prepare_dataset(data: str | Path | Dataset, out: Path, *, names: tuple[str, ...] | None = None,
                    val_fraction: float = 0.2, seed: int = 0, drop_unknown: bool = False,
                    split_if_needed: bool = True) -> tuple[Path, Dataset]:
    """Write ``data`` as a clean YOLO dataset under ``out`` and return its yaml and the dataset.

    ``names``: put classes in this order (the weights' classes); a dataset class they lack is a
    WeightsError naming it. A dataset with one split only gets a seeded train/val split.
    """
    dataset = data if isinstance(data, Dataset) else read_yolo(data)
    require_usable(dataset)
    if names is not None and tuple(dataset.names) != tuple(names):
        missing = [n for n in dataset.names if n not in names]
        used = {dataset.names[c] for s in dataset.samples for c in s.classes}
        missing_used = [m for m in missing if m in used]
        if missing_used and not drop_unknown:
            raise WeightsError(N_("the weights' classes ({names}) lack {missing}, which the dataset {root} labels"),
                               names=", ".join(names), missing=", ".join(missing_used), root=dataset.root)
        dataset = remap(dataset, ClassMap(tuple(names), {n: (n if n in names else None) for n in dataset.names}),
                        drop_unknown=True)
    splits = {s.split for s in dataset.samples}
    if split_if_needed and (len(splits) < 2 or not splits & {"val", "test"}):
        dataset = split(dataset, (1 - val_fraction, val_fraction, 0.0), seed=seed)
    yaml_path = write_yolo(dataset, out)
    return yaml_path, dataset


# --- train -------------------------------------------------------------------------------------

def train(data: str | Path | Dataset, config: TrainConfig = TrainConfig(), *, out: str | Path,
          store: Store | str | Path | None = None, site_code: str | None = None,
          on_epoch: Callable[[int, int, dict], None] | None = None) -> TrainResult:
    """Train a detector on a YOLO dataset (folder, data.yaml or :class:`Dataset`); record the run if ``store``.

    ``out`` is the run folder (created; must be new or empty): ``data/`` holds the dataset as
    trained on, ``train/weights/best.pt`` the weights. ``on_epoch(epoch, epochs, metrics)`` is
    called after each epoch. The store row is written after training, in one transaction;
    ``store`` is an open store or the store file's path (opened only then, so that a long
    training does not hold it against the workbench and other writers).
    """
    out = Path(out)
    _fresh_folder(out)
    started = utcnow()
    run_id = new_id("R", 11)
    model_src = _model_source(config.model)
    if model_src.suffix == ".pt":
        _class_names_of(model_src)   # unreadable weights fail here, not deep inside ultralytics
    # Starting weights whose classes differ from the dataset's are fine: ultralytics rebuilds the head.
    yaml_path, dataset = prepare_dataset(data, out / "data", val_fraction=config.val_fraction, seed=config.seed)
    ds_hash = dataset_hash(out / "data")

    from ultralytics import YOLO

    model = YOLO(str(model_src))
    if on_epoch is not None:
        def _cb(trainer):
            on_epoch(int(trainer.epoch) + 1, int(trainer.epochs), dict(trainer.metrics or {}))
        model.add_callback("on_fit_epoch_end", _cb)
    threads_before = None
    if config.threads is not None:
        import torch

        threads_before = torch.get_num_threads()

        # ultralytics' device selection (in the trainer's constructor) sets its own thread count; this runs after it
        def _threads(trainer):
            torch.set_num_threads(config.threads)
        model.add_callback("on_pretrain_routine_start", _threads)
    args = dict(data=str(yaml_path), epochs=config.epochs, imgsz=config.imgsz, batch=config.batch, seed=config.seed,
                workers=config.workers, patience=config.patience, plots=config.plots, device="cpu",
                project=str(out.resolve()), name="train", exist_ok=True, verbose=False, deterministic=True,
                amp=False, **config.options)
    try:
        with runtime.quiet_ultralytics(), _as_vision_error(N_("training failed: {detail}")):
            metrics = model.train(**args)
    finally:
        if threads_before is not None:
            torch.set_num_threads(threads_before)
    trainer = cast("BaseTrainer", model.trainer)     # made by train(); ultralytics declares it None
    save_dir = Path(trainer.save_dir)
    best = Path(trainer.best) if Path(trainer.best).exists() else Path(trainer.last)
    names = tuple(model.names[i] for i in sorted(model.names))
    summary, per_class = _metrics_summary(metrics, names)
    finished = utcnow()
    result = TrainResult(run_id=run_id, weights=best, last=Path(trainer.last), save_dir=save_dir,
                         dataset_yaml=yaml_path, dataset_hash=ds_hash, class_names=names, metrics=summary,
                         per_class=per_class, seconds=(finished - started).total_seconds(),
                         epochs_run=int(getattr(trainer, "epoch", config.epochs - 1)) + 1)
    if store is not None:
        cfg = dict(dataclasses.asdict(config))
        artifacts = {"save_dir": str(save_dir), "last": str(trainer.last),
                     **{p.stem: str(p) for p in sorted(save_dir.glob("*.png"))},
                     "results_csv": str(save_dir / "results.csv")}
        record = RunRecord(run_id=run_id, kind="train", started_at=started, finished_at=finished,
                           site_code=site_code, model_cfg=config.model, weights_path=str(best),
                           weights_sha256=file_sha256(best), class_names=names, dataset_path=str(out / "data"),
                           dataset_hash=ds_hash, config=cfg, metrics=summary, per_class=per_class, artifacts=artifacts)
        with store_for(store) as opened, atomic(opened):
            record_run(opened, record)
    return result


def _model_source(model: str) -> Path:
    if model.endswith((".yaml", ".yml")):
        if Path(model).exists():
            return Path(model)
        import ultralytics

        found = list(Path(ultralytics.__file__).parent.glob(f"cfg/models/**/{_base_yaml(model)}"))
        if not found:
            raise VisionError(N_("model {model!r}: no such model yaml in ultralytics (try {models})"), model=model,
                              models=", ".join(MODEL_YAMLS))
        return Path(model)      # ultralytics resolves the scale letter (yolo11n -> yolo11.yaml, scale n)
    path = Path(model)
    if not path.exists():
        raise WeightsError(N_("weights {weights}: no such file; nothing is downloaded, so give a local .pt or .onnx "
                              "file, or a model yaml such as yolo11n.yaml to train from scratch"), weights=model)
    return path


def _base_yaml(name: str) -> str:
    import re

    return re.sub(r"(\d+)([nslmx])(?=[-.])", r"\1", Path(name).name)


def compact_model_yaml(out: str | Path, *, base: str = "yolo11", depth: float = 0.33, width: float = 0.125,
                       max_channels: int = 256, nc: int = 80) -> Path:
    """Write a smaller variant of an ultralytics model family (``base``) to ``out`` and return its path.

    YOLO11n is depth 0.50, width 0.25. The defaults give about a quarter of its compute:
    meant for problems as simple as the demo's rendered figures, trained from scratch on two
    CPU cores in a few minutes. Layers and heads are ultralytics' own; only the scale changes.
    """
    import yaml
    from ultralytics.nn.tasks import yaml_model_load

    cfg = yaml_model_load(f"{base}n.yaml")
    cfg = {k: v for k, v in cfg.items() if k not in ("scale", "yaml_file")}
    cfg["nc"] = nc
    cfg["scales"] = {"n": [depth, width, max_channels]}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # the file name carries the scale letter ultralytics looks for ("...11n")
    if not out.stem.endswith("n"):
        out = out.with_name(out.stem + "-yolo11n.yaml")
    out.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return out


# --- weights -----------------------------------------------------------------------------------

def weights_class_names(weights: str | Path) -> tuple[str, ...]:
    """The class names stored in a .pt or ultralytics-exported .onnx file; WeightsError if unreadable."""
    return _class_names_of(Path(weights))


def _class_names_of(path: Path) -> tuple[str, ...]:
    if not path.exists():
        raise WeightsError(N_("weights {weights}: no such file"), weights=path)
    if path.suffix == ".onnx":
        try:
            import onnxruntime as ort

            meta = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).get_modelmeta()
            names = ast.literal_eval(meta.custom_metadata_map["names"])
        except Exception as exc:  # noqa: BLE001 - any failure means the file is not usable weights
            raise WeightsError(N_("weights {weights}: not an ultralytics ONNX export with class names "
                                  "({error}: {detail})"), weights=path, error=type(exc).__name__,
                               detail=str(exc)[:100]) from None
        return tuple(names[k] for k in sorted(names))
    if path.suffix != ".pt":
        raise WeightsError(N_("weights {weights}: expected a .pt or .onnx file"), weights=path)
    from ultralytics import YOLO

    try:
        with runtime.quiet_ultralytics():
            model = YOLO(str(path))
    except Exception as exc:  # noqa: BLE001
        raise WeightsError(N_("weights {weights}: cannot be loaded ({error}: {detail})"), weights=path,
                           error=type(exc).__name__, detail=str(exc)[:120]) from None
    return tuple(model.names[i] for i in sorted(model.names))


def check_classes(weights: str | Path, required: tuple[str, ...] | list[str], *,
                  purpose: str | Phrase | None = None) -> None:
    """WeightsError naming the classes ``required`` that the weights do not detect. ``purpose`` (what needs
    them) is a :class:`~sitetwin.data.errors.Phrase` read in the message's language; default: these rules."""
    names = weights_class_names(weights)
    missing = [c for c in required if c not in names]
    if missing and purpose is None:
        raise WeightsError(N_("weights {weights} detect {names}; these rules need {missing} as well (missing "
                              "classes: {missing})"), weights=weights, names=", ".join(names),
                           missing=", ".join(missing))
    if missing:
        raise WeightsError(N_("weights {weights} detect {names}; {purpose} need {missing} as well (missing "
                              "classes: {missing})"), weights=weights, names=", ".join(names), purpose=purpose,
                           missing=", ".join(missing))


# --- evaluate ----------------------------------------------------------------------------------

def evaluate(weights: str | Path, data: str | Path | Dataset, *, out: str | Path, imgsz: int = 640,
             batch: int = 16, conf: float = 0.001, iou: float = 0.7, split_name: str = "val",
             store: Store | str | Path | None = None, site_code: str | None = None,
             drop_unknown: bool = False) -> EvalReport:
    """Per-class precision, recall, mAP50 and mAP50-95 of ``weights`` on a dataset, with plots.

    The dataset is written under ``out/data`` with its classes in the weights' order (a class the
    weights lack is a WeightsError naming it, unless ``drop_unknown``); a dataset without splits
    is evaluated on all of it. Plots: ``confusion_matrix.png``, ``BoxPR_curve.png`` and the P, R
    and F1 curves, in ``out/eval``. With ``store`` (open, or its path) the run is recorded.
    """
    weights = Path(weights)
    out = Path(out)
    _fresh_folder(out)
    started = utcnow()
    names = _class_names_of(weights)
    dataset = data if isinstance(data, Dataset) else read_yolo(data)
    require_usable(dataset)
    if {s.split for s in dataset.samples} == {None}:
        dataset = Dataset(dataset.names, tuple(dataclasses.replace(s, split=split_name) for s in dataset.samples),
                          dataset.root, dataset.issues)
    elif split_name not in {s.split for s in dataset.samples}:
        raise DatasetError(N_("{root}: no {split!r} split (splits: {splits})"), root=dataset.root, split=split_name,
                           splits=", ".join(sorted({str(s.split) for s in dataset.samples})))
    yaml_path, dataset = prepare_dataset(dataset, out / "data", names=names, drop_unknown=drop_unknown,
                                         split_if_needed=False)
    ds_hash = dataset_hash(out / "data")

    from ultralytics import YOLO

    with runtime.quiet_ultralytics():
        model = YOLO(str(weights), task="detect")
    with runtime.quiet_ultralytics(), _as_vision_error(N_("evaluation failed: {detail}")):
        metrics = model.val(data=str(yaml_path), split=split_name, imgsz=imgsz, batch=batch, conf=conf, iou=iou,
                            device="cpu", workers=0, plots=True, project=str(out.resolve()), name="eval",
                            exist_ok=True, verbose=False)
    save_dir = Path(metrics.save_dir) if getattr(metrics, "save_dir", None) else out / "eval"
    summary, per_class = _metrics_summary(metrics, names)
    plots = tuple(sorted(save_dir.glob("*.png")))
    cm = save_dir / "confusion_matrix.png"
    pr = next((p for p in plots if p.name in ("BoxPR_curve.png", "PR_curve.png")), None)
    run_id = new_id("R", 11)
    finished = utcnow()
    if store is not None:
        sha = file_sha256(weights)
        with store_for(store) as opened, atomic(opened):
            record = RunRecord(run_id=run_id, kind="eval", started_at=started, finished_at=finished,
                               site_code=site_code, parent_run_id=run_for_weights(opened, sha), model_cfg=None,
                               weights_path=str(weights), weights_sha256=sha, class_names=names,
                               dataset_path=str(out / "data"), dataset_hash=ds_hash,
                               config={"imgsz": imgsz, "batch": batch, "conf": conf, "iou": iou, "split": split_name},
                               metrics=summary, per_class=per_class, artifacts={p.stem: str(p) for p in plots})
            record_run(opened, record)
    return EvalReport(run_id=run_id, weights=weights, metrics=summary, per_class=per_class,
                      confusion_matrix=cm if cm.exists() else None, pr_curve=pr, plots=plots, save_dir=save_dir)


def _metrics_summary(metrics, names: tuple[str, ...]) -> tuple[dict, tuple[dict, ...]]:
    if metrics is None:
        return {}, ()
    box = metrics.box
    p, r, map50, map5095 = (float(v) for v in metrics.mean_results()[:4])
    summary = {"precision": p, "recall": r, "map50": map50, "map50_95": map5095, "fitness": float(metrics.fitness),
               "speed_ms": {k: round(float(v), 3) for k, v in (metrics.speed or {}).items()}}
    nt_class = getattr(metrics, "nt_per_class", None)
    nt_image = getattr(metrics, "nt_per_image", None)
    index = {int(c): i for i, c in enumerate(box.ap_class_index)} if len(getattr(box, "ap_class_index", [])) else {}
    rows = []
    for c, name in enumerate(names):
        row = {"class": name,
               "images": int(nt_image[c]) if nt_image is not None and c < len(nt_image) else 0,
               "instances": int(nt_class[c]) if nt_class is not None and c < len(nt_class) else 0,
               "precision": None, "recall": None, "map50": None, "map50_95": None}
        if c in index:
            cp, cr, c50, c5095 = (float(v) for v in box.class_result(index[c]))
            row.update(precision=cp, recall=cr, map50=c50, map50_95=c5095)
        rows.append(row)
    return summary, tuple(rows)


# --- export ------------------------------------------------------------------------------------

def export_onnx(weights: str | Path, *, imgsz: int | tuple[int, int] = 640, dynamic: bool = False, batch: int = 1,
                out: str | Path | None = None, store: Store | str | Path | None = None,
                site_code: str | None = None) -> Path:
    """Export .pt weights to ONNX (simplified, opset chosen by ultralytics) for ONNX Runtime; return its path.

    ``dynamic`` allows any batch and image size; otherwise the graph takes ``batch`` images of
    ``imgsz`` x ``imgsz``. ``out`` moves the file there (default: beside the weights). With
    ``store`` (open, or its path) the export is recorded.
    """
    weights = Path(weights)
    if weights.suffix != ".pt" or not weights.exists():
        raise WeightsError(N_("weights {weights}: export needs an existing .pt file"), weights=weights)
    started = utcnow()
    from ultralytics import YOLO

    with runtime.quiet_ultralytics():
        model = YOLO(str(weights))
    with runtime.quiet_ultralytics(), _as_vision_error(N_("ONNX export failed: {detail}")):
        path = Path(model.export(format="onnx", imgsz=imgsz, dynamic=dynamic, batch=batch, simplify=True,
                                 device="cpu", verbose=False))
    if out is not None:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, out)
        path = out
    if store is not None:
        sha = file_sha256(weights)
        names = tuple(model.names[i] for i in sorted(model.names))
        with store_for(store) as opened, atomic(opened):
            record = RunRecord(run_id=new_id("R", 11), kind="export", started_at=started, finished_at=utcnow(),
                               site_code=site_code, parent_run_id=run_for_weights(opened, sha), model_cfg=str(weights),
                               weights_path=str(path), weights_sha256=file_sha256(path), class_names=names,
                               config={"format": "onnx", "imgsz": imgsz, "dynamic": dynamic, "batch": batch},
                               artifacts={"onnx": str(path), "source_weights": str(weights)})
            record_run(opened, record)
    return path


def quantize_onnx(onnx_path: str | Path, calibration: list, *, out: str | Path | None = None) -> Path:
    """An int8 (QDQ, per-channel weights) copy of an ultralytics ONNX export, calibrated on ``calibration``.

    calibration : RGB uint8 images like those the model will see (a few dozen is enough)

    On CPUs with VNNI (AVX512-VNNI, AVX-VNNI) ONNX Runtime runs it 2-3x faster than float32.
    The detection head's box decoding (pixel arithmetic, the DFL expectation) stays in
    float32: at 8 bits, coordinates up to 640 px would lose whole pixels. Check the
    quantised model's accuracy with :func:`evaluate` before trusting it.
    """
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from sitetwin.vision.boxes import letterbox

    src = Path(onnx_path)
    if not calibration:
        raise VisionError(N_("int8 quantisation needs calibration images"))
    out = Path(out) if out is not None else src.with_name(src.stem + "-int8.onnx")
    model = onnx.load(str(src))
    inp = model.graph.input[0]
    dims = [d.dim_value for d in inp.type.tensor_type.shape.dim]
    batch = dims[0] if dims[0] > 0 else 1
    hw = (dims[2], dims[3]) if dims[2] > 0 and dims[3] > 0 else (640, 640)
    # ultralytics names nodes /model.<i>/...; the last module is the Detect head. Its convolutions
    # (cv2, cv3) are quantised; its own ops (concat, DFL, box decoding, class sigmoid) are not.
    modules = [n.name.split("/")[1] for n in model.graph.node if n.name.startswith("/model.")]
    indices = [int(m.split(".")[1]) for m in modules if m.split(".")[1:2] and m.split(".")[1].isdigit()]
    head = f"/model.{max(indices)}/" if indices else None
    exclude = [n.name for n in model.graph.node if head and n.name.startswith(head)
               and (len(n.name.split("/")) == 3 or "/dfl/" in n.name)]
    blobs = [letterbox(np.asarray(im), hw)[0] for im in calibration]

    class _Reader(CalibrationDataReader):
        def __init__(self):
            groups = [blobs[i:i + batch] for i in range(0, len(blobs) - batch + 1, batch)] or [blobs[:1] * batch]
            self._it = iter([{inp.name: np.stack(g).astype(np.float32)} for g in groups])

        def get_next(self):
            return next(self._it, None)

    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(src), str(pre))
        quantize_static(str(pre), str(out), _Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, nodes_to_exclude=exclude)
    q = onnx.load(str(out))
    del q.metadata_props[:]
    q.metadata_props.extend(model.metadata_props)     # class names and the rest, as ultralytics wrote them
    onnx.save(q, str(out))
    return out


# --- helpers -----------------------------------------------------------------------------------

def _fresh_folder(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise VisionError(N_("{out}: run folder exists and is not empty; give a new --out folder"), out=out)
    out.mkdir(parents=True, exist_ok=True)


@contextlib.contextmanager
def _as_vision_error(template: str):
    """A foreign library's failure inside as a VisionError: ``template`` (``N_("training failed: {detail}")``)
    with the first line of its message as ``detail`` (one of our errors keeps its own, in the reader's language)."""
    try:
        yield
    except VisionError:
        raise
    except (FileNotFoundError, SyntaxError, KeyError, RuntimeError, ValueError, AssertionError) as exc:
        if isinstance(exc, SitetwinError):
            raise VisionError(template, detail=exc) from exc
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise VisionError(template, detail=text[:300]) from exc
