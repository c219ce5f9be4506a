"""Civil and municipal models load: IFC4X3 alignments as axis polylines, bridge and road parts as elements,
a BricsCAD-style IFC2X3 road whose parts are IfcSite products with bodies; one line says what was skipped."""

from __future__ import annotations

import numpy as np
import pytest

from sitetwin.bim.load import load_model
from sitetwin.bim.queries import list_elements, reference_lines
from sitetwin.synth.civil import ROAD_PARTS, part_boxes, write_road_model


def _classes(store, site_code):
    rows = list_elements(store, site_code=site_code)
    out: dict[str, int] = {}
    for r in rows:
        if r["has_geometry"]:
            out[r["ifc_class"]] = out.get(r["ifc_class"], 0) + 1
    return out


def test_a_rail_alignment_loads_as_its_3d_axis_and_its_segments_are_skipped_with_the_reason(shared_data, store):
    report = load_model(store, shared_data / "civil/pass-alb022-helmert_curve.ifc", site_code="RAIL")
    assert (report.physical_count, report.triangle_count, report.reference_lines) == (0, 0, 1)
    assert report.skipped_line == (
        "pass-alb022-helmert_curve.ifc: 6 of 6 products with a representation not loaded as surfaces: "
        "alignment layout 5 (IfcAlignmentSegment 5); reference line 1 (IfcAlignment 1)")
    assert {"reason": "reference line", "ifc_class": "IfcAlignment", "count": 1} in report.skipped
    (line,) = reference_lines(store, "RAIL")
    assert (line["ifc_class"], line["name"], line["kind"], line["note"]) == ("IfcAlignment", "Spor", "axis", None)
    # two 50 m Helmert transitions: the polyline follows the curve, not the chord
    assert line["points_m"].shape == (201, 3)
    assert line["length_m"] == pytest.approx(100.0, abs=0.05)
    assert line["points_m"][0] == pytest.approx([0.0, 0.0, 0.0], abs=1e-6)
    assert line["points_m"][-1] == pytest.approx([99.17, 11.76, 0.0], abs=0.01)
    assert np.linalg.norm(line["points_m"][-1] - line["points_m"][0]) < 99.9


def test_a_built_element_loads_beside_an_alignment_kept_whole_in_plan_when_its_3d_axis_is_incomplete(shared_data,
                                                                                                       store):
    report = load_model(store, shared_data / "civil/pass-pjs003-correct_guids_larger_file.ifc", site_code="PJS")
    assert _classes(store, "PJS") == {"IfcBuiltElement": 1}
    assert report.triangle_count > 1000 and report.reference_lines == 1
    assert "alignment layout 10 (IfcAlignmentHorizontal 1, IfcAlignmentSegment 8, IfcAlignmentVertical 1)" \
        in report.skipped_line
    # IfcOpenShell evaluates the gradient curve to 850 m of the 950 m layout (it drops the vertical arc): the axis
    # is kept as its horizontal layout, whole, at the road's height, and says why
    assert "reference line, plan only (3D axis incomplete) 1 (IfcAlignment 1)" in report.skipped_line
    (line,) = reference_lines(store, "PJS")
    assert line["kind"] == "plan" and "850.1 m of its 950.0 m" in line["note"]
    assert line["length_m"] == pytest.approx(950.0, abs=0.05)                  # LINE 400 + CLOTHOID 150 + ARC 400
    assert line["points_m"][-1][:2] == pytest.approx([881.65, -211.03], abs=0.01)
    assert np.ptp(line["points_m"][:, 2]) == 0.0 and 149.5 < line["points_m"][0, 2] < 150.0


def test_bridge_piles_load_as_elements_and_nothing_is_skipped(shared_data, store):
    path = shared_data / "civil/pass-ojt001-scenario03-typed_via_relation_to_predefined_type.ifc"
    report = load_model(store, path, site_code="BRIDGE")
    assert _classes(store, "BRIDGE") == {"IfcPile": 4}
    assert report.triangle_count > 100 and report.reference_lines == 0
    assert report.skipped == () and report.skipped_line == ""


def test_an_ifc4x3_road_loads_kerbs_pavement_courses_earthworks_and_planting_as_elements(tmp_path, store):
    report = load_model(store, write_road_model(tmp_path / "road.ifc"), site_code="ROAD")
    assert _classes(store, "ROAD") == {"IfcKerb": 2, "IfcPavement": 1, "IfcCourse": 2, "IfcEarthworksFill": 1,
                                       "IfcEarthworksCut": 1, "IfcGeographicElement": 1}
    assert report.physical_count == len(ROAD_PARTS)
    boxes = part_boxes()
    for r in list_elements(store, site_code="ROAD"):
        if r["has_geometry"]:
            box = [[r["bbox_min_x_m"], r["bbox_min_y_m"], r["bbox_min_z_m"]],
                   [r["bbox_max_x_m"], r["bbox_max_y_m"], r["bbox_max_z_m"]]]
            assert np.allclose(box, boxes[r["name"]], atol=1e-6), r["name"]
    (line,) = reference_lines(store, "ROAD")
    assert line["kind"] == "plan" and line["name"] == "Centreline"
    assert line["points_m"][[0, -1]] == pytest.approx(np.array([[0.0, 3.5, 0.0], [30.0, 3.5, 0.0]]), abs=1e-6)
    assert report.skipped_line.endswith("reference line 1 (IfcAlignment 1)")


def test_a_bricscad_style_ifc2x3_road_loads_its_ifcsite_parts_with_bodies(tmp_path, store):
    report = load_model(store, write_road_model(tmp_path / "road2x3.ifc", schema="IFC2X3"), site_code="ROAD")
    assert report.schema == "IFC2X3"
    assert _classes(store, "ROAD") == {"IfcSite": len(ROAD_PARTS)}
    names = {r["name"] for r in list_elements(store, site_code="ROAD")}
    assert names == {p.name for p in ROAD_PARTS}          # the root site has no body: not an element
    assert report.triangle_count == 12 * len(ROAD_PARTS) and report.skipped_line == ""


def test_a_site_whose_parts_carry_bodies_is_skipped_as_their_container(tmp_path, store):
    import ifcopenshell

    path = write_road_model(tmp_path / "road2x3.ifc", schema="IFC2X3")
    model = ifcopenshell.open(str(path))
    root = next(s for s in model.by_type("IfcSite") if s.Name == "Road site")
    kerb = next(s for s in model.by_type("IfcSite") if s.Name == "Kerb north")
    root.Representation = kerb.Representation      # an outline of the whole road, as some exporters add
    root.ObjectPlacement = kerb.ObjectPlacement
    model.write(str(tmp_path / "container.ifc"))
    report = load_model(store, tmp_path / "container.ifc", site_code="ROAD")
    assert _classes(store, "ROAD") == {"IfcSite": len(ROAD_PARTS)}
    assert report.skipped_line.endswith("1 of 9 products with a representation not loaded as surfaces: "
                                        "container 1 (IfcSite 1)")


def test_an_alignment_only_model_loads_and_creates_its_site(shared_data, store):
    report = load_model(store, shared_data / "civil/pass-alb023-helmert_curve.ifc", site_code="RAIL")
    assert report.physical_count == 0 and report.reference_lines == 1 and report.element_count == 7
    assert "alignment layout 6 (IfcAlignmentSegment 6)" in report.skipped_line
    origin = store.one("SELECT origin_x_m, origin_y_m, origin_z_m FROM sites WHERE site_code = 'RAIL'")
    assert origin == {"origin_x_m": 0.0, "origin_y_m": 0.0, "origin_z_m": 0.0}   # its axis lies near the origin
    assert not any(r["has_geometry"] for r in list_elements(store, site_code="RAIL"))


def test_reference_lines_survive_the_parse_cache(shared_data, tmp_path):
    from sitetwin.bim import cache
    from sitetwin.data.store import open_store

    path = shared_data / "civil/pass-alb022-helmert_curve.ifc"
    with open_store(tmp_path / "a.duckdb") as store:
        report = load_model(store, path, site_code="RAIL")
        parsed = cache.load(store.cache_dir, report.sha256)
    assert parsed is not None and len(parsed.reference_lines) == 1
    assert parsed.reference_lines[0].points_world.shape == (201, 3)
    assert ("reference line", "IfcAlignment", 1) in parsed.skipped
    with open_store(tmp_path / "a.duckdb") as store:     # a second site of the store reuses the cached parse
        store.execute("DELETE FROM reference_lines")
        store.execute("DELETE FROM elements")
        store.execute("DELETE FROM models")
        again = load_model(store, path, site_code="RAIL")
        assert again.cache_hit and again.reference_lines == 1
        assert len(reference_lines(store, "RAIL")) == 1


def test_reference_lines_come_as_one_polyline_array_broken_by_nan_rows_for_the_3d_view(shared_data, store):
    from sitetwin.bim.queries import reference_line_xyz

    assert reference_line_xyz(store, "RAIL").shape == (0, 3)
    load_model(store, shared_data / "civil/pass-alb022-helmert_curve.ifc", site_code="RAIL", name="a")
    load_model(store, shared_data / "civil/pass-alb023-helmert_curve.ifc", site_code="RAIL", name="b")
    xyz = reference_line_xyz(store, "RAIL")
    assert xyz.shape == (201 + 1 + 201, 3)
    assert np.isnan(xyz[201]).all() and not np.isnan(np.delete(xyz, 201, axis=0)).any()


def test_ifcopenshells_debug_dump_of_a_sectioned_solid_stays_off_stdout(shared_data, store, capfd):
    # IfcOpenShell 0.9 prints the faces of an IfcSectionedSolidHorizontal while it tessellates it: on stdout
    # that would break `sitetwin bim load --json`
    load_model(store, shared_data / "civil/pass-pjs003-correct_guids_larger_file.ifc", site_code="PJS")
    out, err = capfd.readouterr()
    assert out == ""
    assert "matrix4" in err


def test_a_road_facility_with_an_envelope_body_is_a_container_and_its_bodied_road_part_an_element(tmp_path, store):
    import ifcopenshell
    import ifcopenshell.api.aggregate
    import ifcopenshell.api.root

    path = write_road_model(tmp_path / "road.ifc")
    model = ifcopenshell.open(str(path))
    road = model.by_type("IfcRoad")[0]
    carriageway = next(e for e in model.by_type("IfcPavement"))
    road.Representation, road.ObjectPlacement = carriageway.Representation, carriageway.ObjectPlacement
    part = ifcopenshell.api.root.create_entity(model, ifc_class="IfcRoadPart", name="Lay-by")
    part.Representation, part.ObjectPlacement = carriageway.Representation, carriageway.ObjectPlacement
    ifcopenshell.api.aggregate.assign_object(model, products=[part], relating_object=road)
    model.write(str(tmp_path / "facility.ifc"))
    report = load_model(store, tmp_path / "facility.ifc", site_code="ROAD")
    assert _classes(store, "ROAD")["IfcRoadPart"] == 1
    assert "IfcRoad" not in _classes(store, "ROAD")
    assert "container 1 (IfcRoad 1)" in report.skipped_line


def test_an_alignment_in_a_millimetre_project_comes_out_in_metres(shared_data, tmp_path, store):
    text = (shared_data / "civil/pass-alb022-helmert_curve.ifc").read_text()
    metre = "#7 = IFCSIUNIT(*, .LENGTHUNIT., $, .METRE.);"
    assert metre in text
    (tmp_path / "mm.ifc").write_text(text.replace(metre, "#7 = IFCSIUNIT(*, .LENGTHUNIT., .MILLI., .METRE.);"))
    load_model(store, tmp_path / "mm.ifc", site_code="RAIL")
    (line,) = reference_lines(store, "RAIL")
    # the curve is now 100 mm long: IfcOpenShell's 1 mm chord deflection leaves the polyline 0.1 % short of the arc
    assert line["length_m"] == pytest.approx(0.1, abs=2e-4)
    assert line["points_m"][-1] == pytest.approx([0.09917, 0.01176, 0.0], abs=1e-5)
