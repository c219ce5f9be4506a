"""The built-in demo building: counts, geometry, schedule, hazards, determinism and georeferencing."""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import math

import numpy as np
import pytest

from sitetwin.synth.building import (
    COLUMN_SIZE_M,
    GUARDRAIL_TOP_M,
    SLAB_DEPTH_M,
    DemoBuildingSpec,
    build_demo_building,
)

SPEC = DemoBuildingSpec()
SMALL = DemoBuildingSpec(storeys=3, bays_x=1, bays_y=1, bay_x_m=4.5, bay_y_m=4.5, storey_height_m=3.0)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The default demo building, its IfcOpenShell model and every product's tessellation."""
    import ifcopenshell
    import ifcopenshell.geom

    info = build_demo_building(tmp_path_factory.mktemp("demo") / "demo.ifc")
    model = ifcopenshell.open(str(info.path))
    settings = ifcopenshell.geom.settings()
    settings.set("use-world-coords", True)
    iterator = ifcopenshell.geom.iterator(settings, model, 2)
    assert iterator.initialize()
    shapes = {}
    while True:
        shape = iterator.get()
        verts = np.array(shape.geometry.verts, dtype=np.float64).reshape(-1, 3)
        shapes[shape.guid] = (verts, len(shape.geometry.faces) // 3)
        if not iterator.next():
            break
    return info, model, shapes


def _physical(model):
    return [p for p in model.by_type("IfcElement") if p.Representation and not p.is_a("IfcOpeningElement")]


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_default_building_has_every_kind_of_element_in_the_expected_numbers(demo):
    info, model, _ = demo
    nodes = (SPEC.bays_x + 1) * (SPEC.bays_y + 1)
    bays = SPEC.bays_x * SPEC.bays_y
    perimeter_bays = 2 * (SPEC.bays_x + SPEC.bays_y)
    assert info.storey_names == ("Level 0", "Level 1", "Level 2", "Level 3", "Roof")
    assert [s.Name for s in model.by_type("IfcBuildingStorey")] == list(info.storey_names)
    assert [s.Elevation for s in model.by_type("IfcBuildingStorey")] == pytest.approx([0.0, 3.5, 7.0, 10.5, 14.0])
    assert info.element_count == sum(1 for p in model.by_type("IfcProduct") if p.Representation) >= 300
    assert 400 <= info.element_count <= 700
    assert len(model.by_type("IfcColumn")) == nodes * SPEC.storeys == 96
    assert len(model.by_type("IfcSlab")) == bays * (SPEC.storeys + 1) == 75
    edges = [b for b in model.by_type("IfcBeam") if b.ObjectType == "SlabEdge"]
    assert len(edges) == perimeter_bays * SPEC.storeys == 64
    assert len(model.by_type("IfcBeam")) - len(edges) == SPEC.storeys * (
        SPEC.bays_x * (SPEC.bays_y + 1) + SPEC.bays_y * (SPEC.bays_x + 1)) == 152
    assert len(model.by_type("IfcWall")) == perimeter_bays * SPEC.storeys == 64
    assert len(model.by_type("IfcStair")) == SPEC.storeys   # Level 0 -> 1, ..., Level 3 -> Roof
    assert len(model.by_type("IfcRailing")) == len(edges) - len(info.unguarded_edges) + SPEC.storeys
    assert info.physical_count == len(_physical(model)) == info.element_count - len(model.by_type("IfcOpeningElement"))


def test_every_wall_is_voided_by_an_opening_that_a_window_or_door_fills(demo):
    _, model, _ = demo
    for wall in model.by_type("IfcWall"):
        openings = [rel.RelatedOpeningElement for rel in wall.HasOpenings]
        assert len(openings) == 1, wall.Name
        fillings = [rel.RelatedBuildingElement for rel in openings[0].HasFillings]
        assert len(fillings) == 1 and fillings[0].is_a() in ("IfcWindow", "IfcDoor"), wall.Name
    assert len(model.by_type("IfcDoor")) == 2
    assert len(model.by_type("IfcWindow")) == len(model.by_type("IfcWall")) - 2


def test_the_slab_over_every_stair_has_a_real_void(demo):
    import ifcopenshell.util.element as ue

    _, model, shapes = demo
    voided = [s for s in model.by_type("IfcSlab") if s.HasOpenings]
    assert len(voided) == SPEC.storeys                 # Level 1 ... Roof
    for slab in voided:
        (opening,) = [rel.RelatedOpeningElement for rel in slab.HasOpenings]
        verts, _ = shapes[opening.GlobalId]
        x0, y0, _ = verts.min(0)
        x1, y1, _ = verts.max(0)
        stair_verts = np.concatenate([shapes[s.GlobalId][0] for s in model.by_type("IfcStair")])
        # the flights lie inside the void's plan, with clearance at the sides
        assert stair_verts[:, 0].min() >= x0 + 0.04 and stair_verts[:, 0].max() <= x1 - 0.04
        assert stair_verts[:, 1].min() >= y0 - 1e-6 and stair_verts[:, 1].max() <= y1 + 1e-6
        quantities = ue.get_psets(slab)["Qto_SlabBaseQuantities"]
        gross, net = quantities["GrossArea"], quantities["NetArea"]
        assert gross - net == pytest.approx((x1 - x0) * (y1 - y0), abs=1e-3)


def test_every_product_is_tessellated_and_the_model_spans_the_grid_in_metres(demo):
    import ifcopenshell.util.unit

    info, model, shapes = demo
    assert ifcopenshell.util.unit.calculate_unit_scale(model) == 1.0
    assert len(shapes) == info.element_count
    assert all(triangles > 0 for _, triangles in shapes.values())
    assert {p.GlobalId for p in _physical(model)} <= set(shapes)
    verts = np.concatenate([v for v, _ in shapes.values()])
    half = COLUMN_SIZE_M / 2
    expected_min = (-half, -half, -SLAB_DEPTH_M)
    expected_max = (SPEC.bays_x * SPEC.bay_x_m + half, SPEC.bays_y * SPEC.bay_y_m + half,
                    SPEC.storeys * SPEC.storey_height_m + GUARDRAIL_TOP_M)
    assert verts.min(0) == pytest.approx(expected_min, abs=0.03)
    assert verts.max(0) == pytest.approx(expected_max, abs=0.03)
    assert tuple(verts.max(0) - verts.min(0)) == pytest.approx((30.4, 18.4, 15.4), abs=0.03)


def test_every_element_has_a_type_a_material_and_quantities_in_si_units(demo):
    import ifcopenshell.util.element as ue

    _, model, _ = demo
    for element in _physical(model):
        assert ue.get_type(element) is not None, element.Name
        assert ue.get_material(element, should_inherit=True) is not None, element.Name
        assert any(name.startswith("Qto_") for name in ue.get_psets(element)), element.Name
    column = model.by_type("IfcColumn")[0]
    psets = ue.get_psets(column)
    assert psets["Pset_ColumnCommon"]["LoadBearing"] is True
    assert psets["Qto_ColumnBaseQuantities"]["Length"] == pytest.approx(SPEC.storey_height_m - SLAB_DEPTH_M)
    assert psets["Qto_ColumnBaseQuantities"]["NetVolume"] == pytest.approx(0.4 * 0.4 * 3.3)
    names = {m.Name for m in model.by_type("IfcMaterial")}
    assert {"Concrete C30/37", "Reinforcing steel", "Glass", "Timber", "Steel S235"} <= names


def test_every_task_has_dates_every_element_one_task_and_each_storey_its_tasks(demo):
    import ifcopenshell.util.date as ud
    import ifcopenshell.util.element as ue

    info, model, _ = demo
    tasks = model.by_type("IfcTask")
    assert len(tasks) == info.task_count == 30
    for task in tasks:
        start = ud.ifc2datetime(task.TaskTime.ScheduleStart)
        finish = ud.ifc2datetime(task.TaskTime.ScheduleFinish)
        assert finish > start, task.Name
    first = min(ud.ifc2datetime(t.TaskTime.ScheduleStart) for t in tasks)
    assert first == datetime.datetime.combine(SPEC.start_date, datetime.time(9))
    for rel in model.by_type("IfcRelSequence"):
        assert rel.SequenceType == "FINISH_START"
        before = ud.ifc2datetime(rel.RelatingProcess.TaskTime.ScheduleFinish)
        after = ud.ifc2datetime(rel.RelatedProcess.TaskTime.ScheduleStart)
        assert after > before, (rel.RelatingProcess.Name, rel.RelatedProcess.Name)
    for element in _physical(model):
        rels = [r for r in element.ReferencedBy if r.is_a("IfcRelAssignsToProduct")]   # task -> its output
        assert len(rels) == 1 and len(rels[0].RelatedObjects) == 1, element.Name
        (task,) = rels[0].RelatedObjects
        storey = ue.get_container(element)
        assert task.is_a("IfcTask") and task.Name.startswith(storey.Name + " "), (element.Name, task.Name)
    for storey_name in info.storey_names:
        assert sum(1 for t in tasks if t.Name.startswith(storey_name + " ")) >= 2, storey_name


def _edge_line(verts: np.ndarray, keep_clear_m: float = 0.75) -> np.ndarray:
    """Points along the top centre line of a slab-edge upstand, away from its ends."""
    low, high = verts.min(0), verts.max(0)
    axis = int(np.argmax((high - low)[:2]))
    centre = (low + high) / 2
    points = np.repeat(centre[None], 20, axis=0)
    points[:, axis] = np.linspace(low[axis] + keep_clear_m, high[axis] - keep_clear_m, 20)
    points[:, 2] = high[2]
    return points


def _distance_to_boxes(points: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Distance (m) from each point to the nearest of ``boxes`` ((n, 2, 3) min/max corners)."""
    gap = np.maximum(boxes[None, :, 0] - points[:, None], 0) + np.maximum(points[:, None] - boxes[None, :, 1], 0)
    return np.linalg.norm(gap, axis=2).min(axis=1)


def test_unguarded_slab_edges_have_no_railing_within_half_a_metre_and_guarded_ones_do(demo):
    import ifcopenshell.util.element as ue

    info, model, shapes = demo
    railings = np.array([[shapes[r.GlobalId][0].min(0), shapes[r.GlobalId][0].max(0)]
                         for r in model.by_type("IfcRailing")])
    edges = [b for b in model.by_type("IfcBeam") if b.ObjectType == "SlabEdge"]
    unguarded = set(info.unguarded_edges)
    assert len(unguarded) == 2 * SPEC.storeys               # 15 % of 16 edges, on every floor and the roof
    assert unguarded <= {e.GlobalId for e in edges}
    for edge in edges:
        distance = _distance_to_boxes(_edge_line(shapes[edge.GlobalId][0]), railings)
        guarded = ue.get_psets(edge)["Sitetwin_EdgeProtection"]["IsGuarded"]
        if edge.GlobalId in unguarded:
            assert not guarded and distance.min() > 0.5, (edge.Name, distance.min())
        else:
            assert guarded and distance.max() < 0.05, (edge.Name, distance.max())
            connected = [r.RelatedElement for r in edge.ConnectedTo if r.is_a("IfcRelConnectsElements")]
            assert len(connected) == 1 and connected[0].is_a("IfcRailing")


def test_two_builds_of_one_spec_are_byte_identical_and_another_seed_opens_other_edges(demo, demo_ifc, tmp_path):
    info, _, _ = demo
    assert demo_ifc != info.path                            # the suite's own default build, made separately
    assert _sha256(demo_ifc) == _sha256(info.path)
    small_a = build_demo_building(tmp_path / "a.ifc", SMALL)
    small_b = build_demo_building(tmp_path / "b.ifc", SMALL)
    reseeded = build_demo_building(tmp_path / "c.ifc", dataclasses.replace(SMALL, seed=1))
    assert _sha256(small_a.path) == _sha256(small_b.path) != _sha256(reseeded.path)
    assert set(reseeded.unguarded_edges) != set(small_a.unguarded_edges)
    assert len(reseeded.unguarded_edges) == len(small_a.unguarded_edges) == SMALL.storeys


def test_the_map_conversion_and_the_site_reference_name_the_same_place(demo):
    from pyproj import Transformer

    _, model, _ = demo
    (conversion,) = model.by_type("IfcMapConversion")
    assert conversion.TargetCRS.Name == "EPSG:4547"
    assert conversion.TargetCRS.MapUnit.Name == "METRE" and conversion.TargetCRS.MapUnit.Prefix is None
    site = model.by_type("IfcSite")[0]

    def degrees(dms):
        return dms[0] + dms[1] / 60 + (dms[2] + dms[3] / 1e6) / 3600

    lat, lon = degrees(site.RefLatitude), degrees(site.RefLongitude)
    assert 30.4 < lat < 30.7 and 114.1 < lon < 114.6        # Wuhan
    to_map = Transformer.from_crs("EPSG:4326", "EPSG:4547", always_xy=True)
    east, north = to_map.transform(lon, lat)
    assert math.hypot(east - conversion.Eastings, north - conversion.Northings) < 5.0

    # True north, carried through the map conversion, points along a meridian.
    context = conversion.SourceCRS
    tx, ty = context.TrueNorth.DirectionRatios
    angle = math.atan2(conversion.XAxisOrdinate, conversion.XAxisAbscissa)
    step = 100.0 * conversion.Scale
    e1 = conversion.Eastings + step * (math.cos(angle) * tx - math.sin(angle) * ty)
    n1 = conversion.Northings + step * (math.sin(angle) * tx + math.cos(angle) * ty)
    lon1, lat1 = Transformer.from_crs("EPSG:4547", "EPSG:4326", always_xy=True).transform(e1, n1)
    east_drift_m = (lon1 - lon) * 111_320 * math.cos(math.radians(lat))
    assert lat1 > lat and abs(east_drift_m) < 0.05


@pytest.mark.parametrize("spec, field", [
    (DemoBuildingSpec(storeys=2), "storeys"),
    (DemoBuildingSpec(bays_x=0), "bays_x"),
    (DemoBuildingSpec(bay_y_m=4.0), "bay_y_m"),            # the stair does not fit
    (DemoBuildingSpec(storey_height_m=float("nan")), "storey_height_m"),
])
def test_a_spec_that_cannot_be_built_is_refused_naming_the_field(tmp_path, spec, field):
    with pytest.raises(ValueError, match=field):
        build_demo_building(tmp_path / "x.ifc", spec)
    assert not (tmp_path / "x.ifc").exists()


def test_a_path_that_is_not_plain_ifc_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"\.ifc"):
        build_demo_building(tmp_path / "x.ifczip")
