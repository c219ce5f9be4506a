"""vision.pipeline: detections tagged and stored, hazards found, findings raised; sources that fail.

The scene tests feed the :class:`Recorder` the boxes the renderer knows to be true (any
detector's boxes go in this way), so they check what happens downstream of detection:
tagging, the rules, the store, findings and evidence. The detector itself is exercised on
real files (the hard-hat model from the train cycle) and, end to end, by the demo stage.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from sitetwin.oversight.raising import raise_drafts
from sitetwin.synth import SYNTH_CLASSES, Worker, labels_from_render, worker_extra
from sitetwin.vision.boxes import Boxes
from sitetwin.vision.errors import SourceError, StreamDropped, WeightsError
from sitetwin.vision.hazards import HazardConfig, HazardContext
from sitetwin.vision.pipeline import DetectConfig, DetectorInfo, Recorder, detect_source
from sitetwin.vision.tagging import Tagger, View


def _copy_store(demo_store_path, tmp_path) -> Path:
    db = tmp_path / "site.duckdb"
    shutil.copyfile(demo_store_path, db)
    cache = demo_store_path.parent / f"{demo_store_path.name}.cache"
    if cache.exists():
        shutil.copytree(cache, tmp_path / "site.duckdb.cache")
    return db


def _table_counts(store) -> dict:
    return {t: store.scalar(f'SELECT count(*) FROM "{t}"') for t in
            ("vision_runs", "detections", "hazards", "stage_observations", "findings", "panoramas")}


def _truth_boxes(labels) -> Boxes:
    return Boxes(np.array([label.xyxy for label in labels], np.float32).reshape(-1, 4),
                 np.full(len(labels), 0.9, np.float32),
                 np.array([SYNTH_CLASSES.index(label.class_name) for label in labels], np.int32), SYNTH_CLASSES)


@pytest.fixture(scope="module")
def hazard_scene(demo_site, tmp_path_factory, demo_store_path):
    """A panorama on Level 3: a bare-headed worker by an open edge, a worker by a railed edge, two in the middle."""
    from sitetwin.panorama.camera import pose_matrix
    from sitetwin.panorama.io import save_image
    from sitetwin.panorama.render import RayScene, render_equirect

    rng = np.random.default_rng(11)
    floor = demo_site.floor("Level 3")
    open_edge = next(e for e in demo_site.open_edges if abs(e.floor_z_m - floor.z_m) < 0.05)
    railed = [e for e in demo_site.edges if e.guarded and abs(e.floor_z_m - floor.z_m) < 0.05]

    def mid(e):
        return ((e.p0[0] + e.p1[0]) / 2, (e.p0[1] + e.p1[1]) / 2)

    at_open = demo_site.sampler.sample_standing(rng, floor, near=mid(open_edge), radius=(0.5, 1.0))
    at_rail = next(s for e in railed for s in [demo_site.sampler.sample_standing(rng, floor, near=mid(e),
                                                                                  radius=(0.5, 1.0))]
                   if s is not None and np.hypot(*(s[:2] - at_open[:2])) > 4.0 and np.hypot(*(s[:2] - at_open[:2])) < 9)
    workers = {"edge": Worker(tuple(at_open), 90.0, hard_hat=False, vest=True),
               "rail": Worker(tuple(at_rail), 0.0, hard_hat=True, vest=True)}
    centre = (at_open + at_rail) / 2
    for k in range(2):
        s = demo_site.sampler.sample_standing(rng, floor, near=centre[:2], radius=(1.5, 3.0))
        if s is not None and all(np.hypot(*(np.asarray(w.position_m[:2]) - s[:2])) > 1.2 for w in workers.values()):
            workers[f"mid{k}"] = Worker(tuple(s), 45.0, hard_hat=True, vest=True)
    eye = demo_site.sampler.sample_standing(rng, floor, near=centre[:2], radius=(2.0, 4.0), clearance_m=0.6)
    T = pose_matrix(eye + np.array([0.0, 0.0, 1.6]), 10.0)
    scene = RayScene(demo_site.mesh, [worker_extra(w, n) for n, w in workers.items()])
    render = render_equirect(demo_site.mesh, T, 2048, 1024, seed=3, scene=scene)
    folder = tmp_path_factory.mktemp("scene")
    path = save_image(folder / "level2.jpg", render.image)
    labels = labels_from_render(render, workers, wrap=True)
    return {"workers": workers, "T": T, "render": render, "path": path, "labels": labels, "open_edge": open_edge}


def test_a_posed_panorama_gives_tagged_detections_hazards_with_evidence_and_findings(
        hazard_scene, demo_site, demo_store_path, tmp_path):
    from sitetwin.data.store import open_store
    from sitetwin.panorama.pano_store import add_panorama, load_element_map

    db = _copy_store(demo_store_path, tmp_path)
    with open_store(db) as store:
        added = add_panorama(store, hazard_scene["path"], site_code="DEMO", pose=hazard_scene["T"],
                             captured_at=dt.datetime(2026, 5, 13, 10, 0))
        emap = load_element_map(store, added.pano_id, compute=True)
        tagger = Tagger.from_store(store, "DEMO", mesh=demo_site.mesh)
        labels = hazard_scene["labels"]
        boxes = _truth_boxes(labels)
        rec = Recorder(store, site_code="DEMO", source_kind="panorama", source_ref=str(hazard_scene["path"]),
                       detector=DetectorInfo(SYNTH_CLASSES), view=View(hazard_scene["T"], 2048, 1024, None, emap),
                       tagger=tagger, context=HazardContext(tuple(demo_site.edges)), pano_id=added.pano_id, wrap=True,
                       sink=raise_drafts)
        rec.frame(hazard_scene["render"].image, boxes, captured_at=dt.datetime(2026, 5, 13, 10, 0))
        report = rec.finish()
        rows = store.rows("SELECT * FROM detections WHERE run_id = ? ORDER BY x1", [report.run_id])
        hazards = store.rows("SELECT * FROM hazards WHERE run_id = ? ORDER BY rule", [report.run_id])
        assert len(rows) == len(labels) == report.detections
        people = [r for r in rows if r["class_name"] == "person"]
        assert len(people) == len(hazard_scene["workers"])
        assert {(r["storey"], r["ifc_class"]) for r in people} == {("Level 3", "IfcSlab")}
        heads = sorted(json.loads(r["attributes"])["head"] or "none" for r in people)
        assert heads.count("head") == 1 and heads.count("hard_hat") >= 2     # the bare head found its person
        assert all(r["pano_id"] == added.pano_id and r["z_m"] == pytest.approx(10.5, abs=0.02) for r in people)
        # exactly two hazards: the bare head, and the person by the open edge (on that edge's element)
        assert [h["rule"] for h in hazards] == ["no_hard_hat", "unprotected_edge"]
        edge = next(h for h in hazards if h["rule"] == "unprotected_edge")
        assert edge["global_id"] == hazard_scene["open_edge"].global_id and edge["severity"] == "critical"
        feet = np.asarray(hazard_scene["workers"]["edge"].position_m)
        assert np.hypot(edge["x_m"] - feet[0], edge["y_m"] - feet[1]) < 0.35
        assert edge["distance_m"] < 1.2
        for h in hazards:
            crop = Path(store.cache_dir) / json.loads(h["evidence"])["crops"][0]
            assert crop.stat().st_size > 1000
            finding = store.one("SELECT * FROM finding_state WHERE finding_id = ?", [h["finding_id"]])
            assert (finding["category"], finding["status"], finding["source"], finding["source_ref"]) == \
                ("safety", "open", "hazard", h["hazard_id"])
            assert finding["severity"] == h["severity"] and finding["storey"] == "Level 3"
        assert report.findings == 2


def test_unposed_video_raises_a_ppe_hazard_only_after_the_dwell_time(demo_store_path, tmp_path):
    from sitetwin.data.store import open_store

    db = _copy_store(demo_store_path, tmp_path)
    cfg = DetectConfig(hazards=HazardConfig(rules=("no_hard_hat",), min_duration_s=2.0, max_gap_s=0.3), commit_every=10)
    names = SYNTH_CLASSES

    def frame_boxes(bare: bool) -> Boxes:
        # person (track 4) with its head on top: bare or in a hard hat
        return Boxes(np.array([[100, 100, 180, 300], [125, 102, 155, 132]], np.float32),
                     np.array([0.9, 0.8], np.float32), np.array([0, 2 if bare else 1], np.int32), names,
                     np.array([4, 9], np.int32))

    with open_store(db) as store:
        before = _table_counts(store)
        rec = Recorder(store, site_code="DEMO", source_kind="video", source_ref="cam.mp4",
                       detector=DetectorInfo(names), config=cfg, video=True)
        # 10 fps: one bare-head frame (a false alarm), 1 s clear, then 3 s bare-headed, then clear
        pattern = [True] + [False] * 10 + [True] * 31 + [False] * 8
        image = np.zeros((360, 640, 3), np.uint8)
        for i, bare in enumerate(pattern):
            rec.frame(image, frame_boxes(bare), frame_index=i, time_s=i / 10)
        report = rec.finish()
        hazards = store.rows("SELECT rule, duration_s, track_id, evidence FROM hazards WHERE run_id = ?",
                             [report.run_id])
        assert report.frames == 50 and report.detections == 100
        assert store.scalar("SELECT count(*) FROM detections WHERE run_id = ?", [report.run_id]) == 100
        assert [(h["rule"], h["track_id"]) for h in hazards] == [("no_hard_hat", 4)]
        assert hazards[0]["duration_s"] == pytest.approx(3.0, abs=1e-6)
        assert json.loads(hazards[0]["evidence"])["video_s"] == [1.1, 4.1]
        assert store.scalar("SELECT status FROM vision_runs WHERE run_id = ?", [report.run_id]) == "done"
        after = _table_counts(store)
        assert after["findings"] == before["findings"]


def test_a_corrupt_image_or_unreadable_video_is_refused_and_the_store_left_as_it_was(
        demo_store_path, tmp_path, hardhat_cycle):
    from sitetwin.data.store import open_store

    db = _copy_store(demo_store_path, tmp_path)
    bad_jpg = tmp_path / "broken.jpg"
    bad_jpg.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF" + bytes(200))
    bad_video = tmp_path / "broken.mp4"
    bad_video.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(1000))
    cfg = DetectConfig(imgsz=hardhat_cycle["imgsz"], check_classes=False)
    with open_store(db) as store:
        before = _table_counts(store)
        with pytest.raises(SourceError, match="broken.jpg: not a readable image"):
            detect_source(store, bad_jpg, hardhat_cycle["onnx"], config=cfg)
        with pytest.raises(SourceError, match="broken.mp4: cannot open as a video"):
            detect_source(store, bad_video, hardhat_cycle["onnx"], config=cfg)
        with pytest.raises(SourceError, match="no such file"):
            detect_source(store, tmp_path / "missing.mp4", hardhat_cycle["onnx"], config=cfg)
        assert _table_counts(store) == before


def test_weights_without_the_classes_the_rules_need_are_refused_naming_them(demo_store_path, tmp_path,
                                                                           hardhat_cycle, hardhat):
    from sitetwin.data.store import open_store

    db = _copy_store(demo_store_path, tmp_path)
    image = next((hardhat / "images").iterdir())
    with open_store(db) as store:
        before = _table_counts(store)
        with pytest.raises(WeightsError, match=r"missing classes head, vest"):
            detect_source(store, image, hardhat_cycle["onnx"], config=DetectConfig(imgsz=hardhat_cycle["imgsz"]))
        assert _table_counts(store) == before


def _write_video(path: Path, frames: int, size=(320, 240), fps=10.0) -> Path:
    import cv2

    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    assert w.isOpened()
    rng = np.random.default_rng(0)
    for i in range(frames):
        im = np.full((size[1], size[0], 3), 90, np.uint8)
        x = 20 + 4 * i
        im[60:200, x:x + 50] = (40, 40, 200)
        im += rng.integers(0, 20, im.shape, dtype=np.uint8)
        w.write(im)
    w.release()
    return path


def test_a_video_is_tracked_frame_by_frame_and_stored_in_chunks(demo_store_path, tmp_path, hardhat_cycle,
                                                                 no_network):
    from sitetwin.data.store import open_store

    db = _copy_store(demo_store_path, tmp_path)
    video = _write_video(tmp_path / "clip.avi", 30)
    cfg = DetectConfig(imgsz=hardhat_cycle["imgsz"], conf=0.001, check_classes=False, commit_every=7)
    with open_store(db) as store:
        report = detect_source(store, video, hardhat_cycle["onnx"], config=cfg)
        assert report.frames == 30 and report.status == "done"
        frames = store.rows("SELECT DISTINCT frame_index FROM detections WHERE run_id = ? ORDER BY 1", [report.run_id])
        assert store.scalar("SELECT count(*) FROM detections WHERE run_id = ?", [report.run_id]) == report.detections
        assert all(r["frame_index"] is not None for r in frames)
        if report.detections:
            assert store.scalar("SELECT count(*) FROM detections WHERE run_id = ? AND track_id IS NULL",
                                [report.run_id]) == 0
        run = store.one("SELECT status, weights_sha256, parent_run_id FROM vision_runs WHERE run_id = ?",
                        [report.run_id])
        assert run["status"] == "done" and len(run["weights_sha256"]) == 64


def test_a_stream_that_drops_is_retried_with_backoff_and_keeps_what_it_processed(demo_store_path, tmp_path,
                                                                                 hardhat_cycle, no_network):
    import functools
    import http.server
    import threading

    from sitetwin.data.store import open_store
    from sitetwin.vision.sources import Reconnect

    _write_video(tmp_path / "live.avi", 20)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/live.avi"
    seen = []

    def on_frame(n):
        seen.append(n)
        if n == 25:                      # the camera goes away during the second pass
            server.shutdown()
            server.server_close()

    db = _copy_store(demo_store_path, tmp_path)
    cfg = DetectConfig(imgsz=hardhat_cycle["imgsz"], conf=0.001, check_classes=False, commit_every=5,
                       reconnect=Reconnect(attempts=2, base_delay_s=0.05, max_delay_s=0.1))
    with open_store(db) as store:
        with pytest.raises(StreamDropped, match="did not come back after 2 reconnect attempts"):
            detect_source(store, url, hardhat_cycle["onnx"], config=cfg, on_frame=on_frame)
        run = store.one("SELECT run_id, status, metrics FROM vision_runs WHERE kind = 'detect'")
        assert run["status"] == "dropped"
        frames = json.loads(run["metrics"])["frames"]
        # every frame read, across the reconnect after the first pass, was processed and kept
        assert frames == len(seen) >= 25
        assert store.scalar("SELECT count(DISTINCT frame_index) FROM detections WHERE run_id = ?",
                            [run["run_id"]]) <= frames


def test_formwork_and_rebar_seen_on_a_column_advance_its_observed_stage(demo_site, demo_store_path, tmp_path):
    from sitetwin.data.store import open_store
    from sitetwin.panorama.camera import PerspectiveCamera, pose_matrix
    from sitetwin.panorama.element_map import element_map_perspective

    # a camera on Level 2 looking along the building; the column it sees most of is the subject
    floor = demo_site.floor("Level 2")
    T = pose_matrix([3.0, 9.0, floor.z_m + 1.6], 0.0)
    cam = PerspectiveCamera.from_fov(640, 480, 60.0)
    emap = element_map_perspective(demo_site.mesh, cam, T, scene=demo_site.sampler.scene)
    gids = demo_site.mesh.global_ids.tolist()
    counts = np.bincount(emap.element_index[emap.element_index >= 0], minlength=len(gids))
    columns = [i for i in np.argsort(-counts) if demo_site.classes[gids[i]] == "IfcColumn"]
    column = int(columns[0])
    rows, cols = np.nonzero(emap.element_index == column)
    cx, cy = float(np.median(cols)), float(np.median(rows))
    assert emap.element_index[int(cy), int(cx)] == column
    names = ("person", "formwork", "rebar", "concrete")
    box = np.array([[cx - 8, cy - 20, cx + 8, cy + 20]], np.float32)
    db = _copy_store(demo_store_path, tmp_path)
    with open_store(db) as store:
        tagger = Tagger.from_store(store, "DEMO", mesh=demo_site.mesh)
        # formwork, rebar, formwork again, then concrete seen too faintly to count (0.3 < progress_min_conf)
        for day, cls, conf in ((1, 1, 0.8), (2, 2, 0.9), (3, 1, 0.7), (4, 3, 0.3)):
            rec = Recorder(store, site_code="DEMO", source_kind="camera", source_ref=f"cam-day{day}.jpg",
                           detector=DetectorInfo(names), view=View(T, 640, 480, cam, emap), tagger=tagger,
                           config=DetectConfig())
            rec.frame(None, Boxes(box, np.array([conf], np.float32), np.array([cls], np.int32), names),
                      captured_at=dt.datetime(2026, 5, day, 9))
            rec.finish()
        seen = store.rows("SELECT stage, global_id, observed_at FROM stage_observations ORDER BY observed_at")
        stage = store.one("SELECT * FROM observed_stages WHERE global_id = ?", [gids[column]])
    assert [(s["stage"], s["global_id"]) for s in seen] == [("formwork", gids[column]), ("rebar", gids[column]),
                                                            ("formwork", gids[column])]
    assert (stage["stage"], stage["stage_rank"], stage["sightings"]) == ("rebar", 2, 3)
    assert stage["first_seen_at"] == dt.datetime(2026, 5, 1, 9) and stage["last_seen_at"] == dt.datetime(2026, 5, 3, 9)
