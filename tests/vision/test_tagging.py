"""vision.tagging: people in rendered panoramas and photos tagged onto the slab they stand on, with 3D positions."""

from __future__ import annotations

import numpy as np
import pytest

from sitetwin.synth import Worker, labels_from_render, worker_extra
from sitetwin.vision.boxes import Boxes
from sitetwin.vision.tagging import Tagger, View

NAMES = ("person", "hard_hat", "head", "vest")


def _scene(demo_site, storey: str, seed: int, near_open_edge: bool = True):
    rng = np.random.default_rng(seed)
    floor = demo_site.floor(storey)
    edge = next(e for e in demo_site.open_edges if abs(e.floor_z_m - floor.z_m) < 0.05)
    mid = ((edge.p0[0] + edge.p1[0]) / 2, (edge.p0[1] + edge.p1[1]) / 2)
    workers = {}
    spots = [demo_site.sampler.sample_standing(rng, floor, near=mid, radius=(0.5, 1.2))] if near_open_edge else []
    for _ in range(3):
        spots.append(demo_site.sampler.sample_standing(rng, floor, near=mid, radius=(2.0, 6.0)))
    for k, s in enumerate(x for x in spots if x is not None):
        if all(np.hypot(*(np.asarray(w.position_m[:2]) - s[:2])) > 1.0 for w in workers.values()):
            workers[f"w{k}"] = Worker.random(rng, s)
    eye = demo_site.sampler.sample_standing(rng, floor, near=mid, radius=(4.0, 7.0), clearance_m=0.6)
    return workers, eye, edge


def _truth(demo_site, worker):
    p = np.asarray(worker.position_m) + np.array([0.0, 0.0, 0.3])
    hit = demo_site.sampler.scene.cast(p, np.array([[0.0, 0.0, -1.0]]), normals=False)
    gid = str(demo_site.mesh.global_ids[int(hit.element[0])])
    return demo_site.storeys[gid], gid


def _boxes(labels, names=NAMES):
    # people mostly hidden behind others are left out: a visible sliver says nothing of where the feet are
    people = [label for label in labels
              if label.class_name == "person" and label.xyxy[3] - label.xyxy[1] >= 2 * (label.xyxy[2] - label.xyxy[0])]
    return Boxes(np.array([person.xyxy for person in people], np.float32).reshape(-1, 4),
                 np.ones(len(people), np.float32), np.zeros(len(people), np.int32), names), people


@pytest.mark.parametrize("use_element_map", [False, True])
def test_people_in_a_panorama_are_tagged_on_the_slab_they_stand_on(demo_site, use_element_map):
    from sitetwin.panorama.camera import pose_matrix
    from sitetwin.panorama.element_map import element_map
    from sitetwin.panorama.render import RayScene, render_equirect

    workers, eye, _ = _scene(demo_site, "Level 3", seed=5)
    assert len(workers) >= 3
    T = pose_matrix(eye + np.array([0.0, 0.0, 1.6]), 30.0)
    scene = RayScene(demo_site.mesh, [worker_extra(w, n) for n, w in workers.items()])
    render = render_equirect(demo_site.mesh, T, 2048, 1024, seed=1, scene=scene)
    boxes, people = _boxes(labels_from_render(render, workers, wrap=True))
    emap = element_map(demo_site.mesh, T, 2048, 1024, scene=demo_site.sampler.scene) if use_element_map else None
    tagger = Tagger(demo_site.mesh, {g: (demo_site.classes[g], demo_site.storeys[g]) for g in demo_site.classes},
                    scene=demo_site.sampler.scene)
    tags = tagger.tag(boxes, View(T, 2048, 1024, None, emap))
    assert len(tags) == len(people) >= 2
    for tag, label in zip(tags, people):
        storey, gid = _truth(demo_site, workers[label.worker])
        assert (tag.storey, tag.global_id) == (storey, gid) == ("Level 3", gid)
        assert tag.ifc_class == "IfcSlab"
        # the foot point lands within 0.35 m (plan) of the figure's feet, on top of the slab
        feet = np.asarray(workers[label.worker].position_m)
        assert np.hypot(*(tag.point_m[:2] - feet[:2])) < 0.35
        assert tag.point_m[2] == pytest.approx(feet[2], abs=0.02)


def test_a_person_whose_box_stops_above_the_feet_at_an_open_edge_stays_on_its_floor(demo_site):
    # The box bottom 15 % short of the feet: the foot ray passes over the open edge and would
    # hit the ground 7 m below; the range implied by the box height (too long, as the box is
    # short) puts the feet beyond the edge, over nothing; stepping back finds the floor.
    from sitetwin.panorama.camera import PerspectiveCamera, look_at
    from sitetwin.panorama.render import RayScene, render_perspective

    floor = demo_site.floor("Level 3")
    edge = next(e for e in demo_site.open_edges if abs(e.floor_z_m - floor.z_m) < 0.05)
    a, b = np.asarray(edge.p0[:2]), np.asarray(edge.p1[:2])
    mid = (a + b) / 2
    inward = np.array([-(b - a)[1], (b - a)[0]]) / np.linalg.norm(b - a)
    if not demo_site.sampler.stands(mid + inward * 2.0, floor):
        inward = -inward
    spot = mid + inward * 0.45
    worker = Worker((float(spot[0]), float(spot[1]), floor.z_m), hard_hat=False)
    eye = np.array([*(mid + inward * 6.0), floor.z_m + 1.6])
    T = look_at(eye, np.array([*spot, floor.z_m + 0.9]))
    cam = PerspectiveCamera.from_fov(640, 480, 70.0)
    scene = RayScene(demo_site.mesh, [worker_extra(worker, "w0")])
    render = render_perspective(demo_site.mesh, cam, T, scene=scene)
    label = next(found for found in labels_from_render(render, {"w0": worker}) if found.class_name == "person")
    x1, y1, x2, y2 = label.xyxy
    short = (x1, y1, x2, y2 - 0.15 * (y2 - y1))
    boxes = Boxes(np.array([short], np.float32), np.ones(1, np.float32), np.zeros(1, np.int32), NAMES)
    tagger = Tagger(demo_site.mesh, {g: (demo_site.classes[g], demo_site.storeys[g]) for g in demo_site.classes},
                    scene=demo_site.sampler.scene)
    tag = tagger.tag(boxes, View(T, 640, 480, cam))[0]
    assert tag.method.endswith("+pullback")
    assert tag.storey == "Level 3" and tag.global_id == _truth(demo_site, worker)[1]
    assert np.hypot(*(tag.point_m[:2] - spot)) < 0.6


def test_a_box_over_nothing_gets_no_element(demo_site):
    from sitetwin.panorama.camera import pose_matrix

    tagger = Tagger(demo_site.mesh, {}, scene=demo_site.sampler.scene)
    T = pose_matrix([15.0, 9.0, 30.0], 0.0)            # far above the building, looking at the sky
    boxes = Boxes(np.array([[1000, 100, 1010, 130]], np.float32), np.ones(1, np.float32), np.zeros(1, np.int32),
                  NAMES)
    tag = tagger.tag(boxes, View(T, 2048, 1024))[0]
    assert tag.global_id is None and tag.storey is None and tag.model_id is None
