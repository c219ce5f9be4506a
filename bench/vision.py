"""Vision figures: panorama detection speed (ONNX Runtime vs plain PyTorch), tracked-video frame rate.

Each figure is compared with a named alternative in the same run:

- a real 4096 x 2048 panorama (``panorama/examplepano.jpg``) through sliced YOLO nano detection
  at 640 px (``vision.panoramic.detect_panorama``: the perspective views and narrow slices
  that cover the sphere, every box mapped back exactly and merged), with the network run by
  ONNX Runtime (batched, static graph; float32, and int8 QDQ calibrated on views of the same
  panorama) vs the plain PyTorch path (ultralytics' predictor, one view at a time). Targets:
  under 2 s, and at least 2x the PyTorch path. (What int8 costs in accuracy is measured on a
  trained model by the demo stage: mAP50 on its held-out renders, float32 vs int8.)
- 640 x 360 video (a pan across the same panorama) detected and tracked (ByteTrack) frame by
  frame: vision's ONNX path (16:9 graph of 384 x 640) vs ultralytics' ``model.track(stream=True)``
  on the PyTorch weights. Target: 15 frames/s or more.

The network is YOLO11n built from its yaml (no download): speed does not depend on what the
weights learnt, only on the architecture and input size.

Run: ``.venv/bin/python bench/vision.py`` (prints tables, writes bench/results/vision.json).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import machine, median_time, print_table, save, shared_data

VIDEO_FRAMES = 90
VIDEO_SIZE = (640, 360)


def build_weights(folder: Path, calibration: list) -> dict:
    """YOLO11n (80 classes, random weights) as .pt, static ONNX graphs (batch 4 at 640; 384 x 640 for video),
    and int8 copies of both calibrated on ``calibration`` (views of the panorama: what it will run on)."""
    from sitetwin.vision import runtime

    runtime.prepare()      # offline, with a working NMS, before ultralytics is imported
    from ultralytics import YOLO

    pt = folder / "yolo11n-bench.pt"
    with runtime.quiet_ultralytics():
        model = YOLO("yolo11n.yaml")
        model.save(str(pt))
        out = {"pt": pt}
        for name, kwargs in (("onnx_b4", dict(imgsz=640, batch=4)), ("onnx_video", dict(imgsz=[384, 640], batch=1))):
            path = Path(YOLO(str(pt)).export(format="onnx", simplify=True, dynamic=False, verbose=False, **kwargs))
            target = folder / f"{name}.onnx"
            path.replace(target)
            out[name] = target
    from sitetwin.vision.train import quantize_onnx

    for name in ("onnx_b4", "onnx_video"):
        out[f"{name}_int8"] = quantize_onnx(out[name], calibration)
    return out


def panorama_bench(weights: dict, image: np.ndarray) -> list[dict]:
    from sitetwin.vision.detect import Detector
    from sitetwin.vision.panoramic import PanoViews, detect_panorama

    views = PanoViews(size=640)
    n_views = len(views.cameras())
    ort = Detector(weights["onnx_b4"], imgsz=640, conf=0.25)
    ort8 = Detector(weights["onnx_b4_int8"], imgsz=640, conf=0.25)
    torch_det = Detector(weights["pt"], imgsz=640, conf=0.25)
    for d in (ort, ort8, torch_det):
        detect_panorama(d, image, views)                     # warm-up: sessions, remap maps

    def torch_plain():
        # the plain path: ultralytics' PyTorch predictor on each view in turn
        from sitetwin.panorama.camera import render_view

        for cam in views.cameras():
            torch_det.predict([render_view(image, cam)])

    t_ort = median_time(lambda: detect_panorama(ort, image, views), repeat=3)
    t_ort8 = median_time(lambda: detect_panorama(ort8, image, views), repeat=3)
    t_torch = median_time(torch_plain, repeat=2)
    t_torch_batched = median_time(lambda: detect_panorama(torch_det, image, views), repeat=2)
    return [
        {"path": "ONNX Runtime int8, batched views (vision)", "views": n_views, "seconds": t_ort8,
         "ms_per_view": 1000 * t_ort8 / n_views, "vs_pytorch": t_torch / t_ort8, "target": "< 2 s, >= 2x"},
        {"path": "ONNX Runtime float32, batched views (vision)", "views": n_views, "seconds": t_ort,
         "ms_per_view": 1000 * t_ort / n_views, "vs_pytorch": t_torch / t_ort, "target": "< 2 s, >= 2x"},
        {"path": "PyTorch, ultralytics predictor per view", "views": n_views, "seconds": t_torch,
         "ms_per_view": 1000 * t_torch / n_views, "vs_pytorch": 1.0, "target": ""},
        {"path": "PyTorch, ultralytics predictor, list of views", "views": n_views, "seconds": t_torch_batched,
         "ms_per_view": 1000 * t_torch_batched / n_views, "vs_pytorch": t_torch / t_torch_batched, "target": ""},
    ]


def make_video(folder: Path, image: np.ndarray) -> Path:
    import cv2

    from sitetwin.panorama.camera import perspective_view

    path = folder / "pan.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, VIDEO_SIZE)
    for i in range(VIDEO_FRAMES):
        frame = perspective_view(image, yaw_deg=i * 1.5, pitch_deg=-5.0, fov_deg=75.0, width=VIDEO_SIZE[0],
                                 height=VIDEO_SIZE[1])
        writer.write(np.ascontiguousarray(frame[..., ::-1]))
    writer.release()
    return path


def video_bench(weights: dict, video: Path) -> list[dict]:
    from sitetwin.vision import runtime
    from sitetwin.vision.detect import Detector, Tracker
    from sitetwin.vision.sources import open_source

    runtime.prepare()
    from ultralytics import YOLO

    def ours(det) -> int:
        tracker = Tracker("bytetrack")
        n = 0
        for frame in open_source(video).frames():
            tracker.update(det.predict([frame.image])[0], frame.image)
            n += 1
        return n

    def plain() -> int:
        model = YOLO(str(weights["pt"]))
        n = 0
        with runtime.quiet_ultralytics():
            for _ in model.track(source=str(video), stream=True, imgsz=640, conf=0.25, tracker="bytetrack.yaml",
                                 verbose=False, device="cpu"):
                n += 1
        return n

    rows = []
    plain()                                                  # warm-up
    t0 = time.perf_counter()
    n_plain = plain()
    t_plain = time.perf_counter() - t0
    for label, key in (("int8", "onnx_video_int8"), ("float32", "onnx_video")):
        det = Detector(weights[key], conf=0.25)
        ours(det)
        t0 = time.perf_counter()
        n = ours(det)
        t = time.perf_counter() - t0
        rows.append({"path": f"vision: ONNX Runtime {label} 384x640 + ByteTrack, streamed", "frames": n,
                     "seconds": t, "fps": n / t, "vs_plain": (n / t) / (n_plain / t_plain), "target": ">= 15 fps"})
    return rows + [
        {"path": "ultralytics model.track(stream=True), PyTorch", "frames": n_plain, "seconds": t_plain,
         "fps": n_plain / t_plain, "vs_plain": 1.0, "target": ""},
    ]


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()   # --help without a run
    from sitetwin.vision.runtime import prepare
    from sitetwin.vision.sources import read_image

    prepare()
    image = read_image(shared_data() / "panorama" / "examplepano.jpg")
    assert image.shape[:2] == (2048, 4096)
    with tempfile.TemporaryDirectory(prefix="sitetwin-bench-vision-") as tmp:
        folder = Path(tmp)
        from sitetwin.panorama.camera import perspective_view

        calibration = [perspective_view(image, yaw, pitch, 90.0, 640, 640) for yaw in range(-180, 180, 30)
                       for pitch in (0.0, -40.0)]
        weights = build_weights(folder, calibration)
        pano_rows = panorama_bench(weights, image)
        video = make_video(folder, image)
        video_rows = video_bench(weights, video)
    m = machine()
    print_table(pano_rows, ["path", "views", "seconds", "ms_per_view", "vs_pytorch", "target"],
                f"4096x2048 panorama, YOLO11n at 640 px, sliced (load {m['load_avg_1m']:.1f} on {m['cpus']} cpus)")
    print_table(video_rows, ["path", "frames", "seconds", "fps", "vs_plain", "target"],
                f"640x360 video, detect + track (load {m['load_avg_1m']:.1f})")
    ok_pano = {r["path"]: r["seconds"] < 2.0 and r["vs_pytorch"] >= 2.0 for r in pano_rows[:2]}
    ok_video = {r["path"]: r["fps"] >= 15.0 for r in video_rows[:2]}
    print("\npanorama target (< 2 s, >= 2x PyTorch): " + "; ".join(f"{k}: {'met' if v else 'NOT met'}"
                                                                   for k, v in ok_pano.items()))
    print("video target (>= 15 fps): " + "; ".join(f"{k}: {'met' if v else 'NOT met'}" for k, v in ok_video.items()))
    save("vision", {"panorama": pano_rows, "video": video_rows,
                    "targets": {"panorama_s": 2.0, "panorama_ratio": 2.0, "video_fps": 15.0},
                    "met": {"panorama": ok_pano, "video": ok_video}})


if __name__ == "__main__":
    main()
