"""vision.hazards: pairing people with heads and vests, edge and zone rules, persistence, the model's edges."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sitetwin.vision.errors import VisionError
from sitetwin.vision.hazards import (
    Edge,
    EdgeConfig,
    HazardConfig,
    HazardContext,
    Persistence,
    Sighting,
    Zone,
    edges_from_model,
    evaluate,
    pair_people,
)


def person(i, x, y=100.0, h=200.0, **kw):
    return Sighting(i, "person", (x, y, x + h * 0.4, y + h), 0.9, **kw)


def head(i, cls, x, y, size=24.0):
    return Sighting(i, cls, (x - size / 2, y - size / 2, x + size / 2, y + size / 2), 0.8)


def test_heads_pair_with_the_person_whose_top_they_sit_on_not_the_nearest_box():
    # two people side by side; the bare head sits on the right one's shoulders, the hard hat on the left one's
    people = [person(0, 100), person(1, 190)]
    parts = [head(2, "hard_hat", 140, 115), head(3, "head", 230, 112)]
    pairs = pair_people(people + parts)
    assert pairs[0]["head"] == "hard_hat" and pairs[0]["head_index"] == 2
    assert pairs[1]["head"] == "head" and pairs[1]["head_index"] == 3
    conds = evaluate(people + parts, config=HazardConfig(rules=("no_hard_hat",)))
    assert [(c.rule, c.sightings) for c in conds] == [("no_hard_hat", (1, 3))]


def test_a_head_at_a_persons_feet_is_not_their_head():
    pairs = pair_people([person(0, 100), head(1, "head", 140, 290)])
    assert pairs[0]["head"] is None
    assert pairs[-1]["bare_heads"] == [1]      # a bare head of someone whose body was not detected


def test_a_vest_must_sit_on_the_torso_and_small_people_are_not_judged():
    big = person(0, 100)                                   # 200 px tall
    small = person(1, 400, h=30)                           # 30 px tall: below min_person_px
    vest_on_big = Sighting(2, "vest", (110, 150, 170, 220), 0.7)
    pairs = pair_people([big, small, vest_on_big])
    assert pairs[0]["vest"] is True and pairs[1]["vest"] is None
    no_vest = pair_people([big, Sighting(2, "vest", (110, 270, 170, 300), 0.7)])   # at the knees
    assert no_vest[0]["vest"] is False
    conds = evaluate([big, Sighting(2, "vest", (110, 270, 170, 300), 0.7)], config=HazardConfig(rules=("no_vest",)))
    assert [c.rule for c in conds] == ["no_vest"]


def edge(gid, x0, x1, y, z=7.0, guarded=False):
    return Edge(gid, "M", "Level 2", (x0, y, z), (x1, y, z), guarded, floor_z_m=z, fall_height_m=z)


def test_a_person_near_an_unguarded_edge_on_its_floor_is_a_hazard_and_elsewhere_is_not():
    ctx = HazardContext(edges=(edge("open", 0, 6, 0.0), edge("railed", 6, 12, 0.0, guarded=True)))
    cfg = HazardConfig(rules=("unprotected_edge",), edge_distance_m=2.0)
    near_open = person(0, 0, point_m=(3.0, 1.5, 7.0), storey="Level 2")
    near_railed = person(1, 50, point_m=(9.0, 0.5, 7.0))
    below = person(2, 90, point_m=(3.0, 1.0, 3.5))                 # the floor underneath
    far = person(3, 130, point_m=(3.0, 2.6, 7.0))
    conds = evaluate([near_open, near_railed, below, far], ctx, cfg)
    assert [(c.sightings, c.global_id) for c in conds] == [((0,), "open")]
    assert conds[0].distance_m == pytest.approx(1.5, abs=1e-9)
    assert conds[0].severity == "critical"
    # beyond the segment's end the distance is to its end point
    corner = person(4, 0, point_m=(-1.0, 1.0, 7.0))
    assert evaluate([corner], ctx, cfg)[0].distance_m == pytest.approx(np.hypot(1.0, 1.0))


def test_people_inside_a_crane_zone_are_hazards_and_detected_machinery_makes_its_own_zone():
    zone = Zone("crane-1", (10.0, 10.0, 20.0), 8.0, 0.0, 40.0, "swing")
    cfg = HazardConfig(rules=("machinery_zone",), machinery_radius_m=4.0)
    inside = person(0, 0, point_m=(15.0, 10.0, 3.5))
    outside = person(1, 50, point_m=(19.0, 10.0, 3.5))
    excavator = Sighting(2, "machinery", (300, 100, 400, 200), 0.9, point_m=(22.0, 10.0, 3.5))
    conds = evaluate([inside, outside, excavator], HazardContext(zones=(zone,)), cfg)
    assert sorted((c.sightings, round(c.distance_m, 3)) for c in conds) == [((0,), 3.0), ((1,), 1.0)]


def test_a_condition_on_one_frame_raises_nothing_but_one_held_for_the_dwell_time_raises_once():
    cfg = HazardConfig(rules=("no_hard_hat",), min_duration_s=3.0, max_gap_s=0.5)
    p = Persistence(cfg)
    bare = [person(0, 100, track_id=7), head(1, "head", 140, 112)]
    ok = [person(0, 100, track_id=7), head(1, "hard_hat", 140, 112)]
    fps = 10.0
    confirmed = []
    # a single bad frame amid good ones (a false alarm), then 4 s of a real condition
    frames = [ok] * 10 + [bare] + [ok] * 10 + [bare] * 40 + [ok] * 5
    for k, dets in enumerate(frames):
        confirmed += p.update(k / fps, evaluate(dets, config=cfg), [f"d{k}-{i}" for i in range(len(dets))])
    ended = p.pop_finished() + p.close()
    assert len(confirmed) == 1
    assert confirmed[0].started_s == pytest.approx(2.1)
    assert confirmed[0].ended_s - confirmed[0].started_s == pytest.approx(3.0)
    assert len(ended) == 1 and ended[0].duration_s == pytest.approx(3.9)


def test_a_short_dropout_in_tracking_does_not_restart_the_dwell_clock():
    cfg = HazardConfig(rules=("no_hard_hat",), min_duration_s=2.0, max_gap_s=0.5)
    p = Persistence(cfg)
    bare = [person(0, 100, track_id=3), head(1, "head", 140, 112)]
    confirmed = []
    times = [i * 0.1 for i in range(12)] + [1.5 + i * 0.1 for i in range(10)]   # a 0.3 s hole at 1.2-1.5 s
    for t in times:
        confirmed += p.update(t, evaluate(bare, config=cfg))
    assert len(confirmed) == 1 and confirmed[0].started_s == 0.0


def test_bad_rule_settings_are_refused_by_name(tmp_path):
    with pytest.raises(VisionError, match="rules: helmet unknown"):
        HazardConfig(rules=("helmet",))
    f = tmp_path / "rules.yaml"
    f.write_text("edge_distance_m: 1.5\nmin_duraton_s: 2\n")
    with pytest.raises(VisionError, match="unknown keys min_duraton_s"):
        HazardConfig.from_file(f)
    f.write_text("edge_distance_m: 1.5\nrules: [no_hard_hat, unprotected_edge]\n")
    cfg = HazardConfig.from_file(f)
    assert cfg.edge_distance_m == 1.5 and cfg.required_classes() == ("person", "hard_hat", "head")


def test_guards_found_geometrically_match_the_demo_buildings_unguarded_edges(demo_store_path, demo_ifc):
    from sitetwin.data.store import open_store
    from sitetwin.synth import build_demo_building

    info = build_demo_building(demo_ifc.parent / "again.ifc")
    with open_store(demo_store_path, read_only=True) as store:
        # the demo marks edges by their guardrails alone (its facade walls come later in the schedule)
        edges = edges_from_model(store, "DEMO", EdgeConfig(guard_classes=("IfcRailing",)))
        with_walls = edges_from_model(store, "DEMO")
        psets = {r["global_id"]: json.loads(r["properties"])["Sitetwin_EdgeProtection"]["IsGuarded"]
                 for r in store.rows("SELECT global_id, properties FROM elements WHERE object_type = 'SlabEdge'")}
    slab_edges = [e for e in edges if e.kind == "slab_edge"]
    assert len(slab_edges) == len(psets) == 64
    assert sorted(e.global_id for e in slab_edges if not e.guarded) == sorted(info.unguarded_edges)
    assert all(e.guarded == psets[e.global_id] for e in slab_edges)
    assert {e.fall_height_m for e in slab_edges} == {3.5, 7.0, 10.5, 14.0}
    # with the finished facade, only the roof's open edges (no wall above the roof) stay unguarded
    open_after = {e.global_id for e in with_walls if not e.guarded}
    roof = {e.global_id for e in slab_edges if not e.guarded and e.floor_z_m == 14.0}
    assert open_after == roof and roof


def test_without_railings_or_walls_built_every_edge_is_unguarded(demo_store_path):
    from sitetwin.data.store import open_store

    with open_store(demo_store_path, read_only=True) as store:
        no_rails = {r["global_id"] for r in store.rows(
            "SELECT global_id FROM elements WHERE ifc_class NOT IN ('IfcRailing', 'IfcWall')")}
        edges = edges_from_model(store, "DEMO", element_ids=no_rails)
    assert len(edges) == 64 and not any(e.guarded for e in edges)
