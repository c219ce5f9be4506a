"""Loading IFC models into a store: counts, units, frames, idempotency, revisions, bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from sitetwin.bim.errors import BimError, IfcFileError, NoElementsError
from sitetwin.bim.load import load_model
from sitetwin.bim.mesh import load_mesh
from sitetwin.data.store import open_store

LOADABLE = [
    "bcf-xml/Architectural.ifc", "bcf-xml/Estructura.ifc", "bcf-xml/MEP.ifc",
    "schependomlaan/BERNTS-Staalconstructie.ifc", "schependomlaan/MULTICOM-Prefab.ifc",
    "schependomlaan/WILLEMSEN-Laagbouw.ifc", "schependomlaan/XELLA-Begane_grond.ifc",
    "schependomlaan/YTONG-Algemeen.ifc",
    "schependomlaan/geelen_breedplaat_per_storey/GEELEN-Breedplaat_V1.ifc",
    "schependomlaan/geelen_breedplaat_per_storey/GEELEN-Breedplaat_V2.ifc",
    "schependomlaan/geelen_breedplaat_per_storey/GEELEN-Breedplaat_V3.ifc",
    *[f"schependomlaan/root_design_parts/ROOT-{p}.ifczip" for p in (
        "Vebo", "breedplaatvloeren", "houten_kozijnen", "kalkzandsteen", "kanaalplaatvloer",
        "kapconstructie_dakkapellen_platdak", "prefab_trappen", "staal")],
    "validation/fail-gem001-triangulated_faceset_oriented_edge.ifc",
    "validation/fail-tas001-PolygonalFaceSet_zigzag.ifc",
    "validation/pass-grf000-correct_georeferencing.ifc",
    "validation/pass-grf005-unit_conversion_factor.ifc",
]
NO_ELEMENTS = ["validation/na-blt000-ifc2x3_no_building_elements.ifc", "validation/pass-ifc101-IFC4X3_ADD2.ifc"]


def _open(path: Path):
    import zipfile

    import ifcopenshell

    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            return ifcopenshell.file.from_string(zf.read(zf.namelist()[0]).decode("utf-8", "replace"))
    return ifcopenshell.open(str(path))


def _ifcopenshell_product_count(model) -> int:
    return len({p.GlobalId for p in model.by_type("IfcProduct") if p.Representation is not None})


def _snapshot(store) -> dict:
    return {t: store.scalar(f'SELECT count(*) FROM "{t}"') for t in store.tables()}


def test_every_shared_ifc_model_list_is_complete(shared_data):
    found = {str(p.relative_to(shared_data / "ifc")) for p in (shared_data / "ifc").rglob("*.ifc*")}
    assert found == set(LOADABLE) | set(NO_ELEMENTS)


@pytest.mark.parametrize("relative", LOADABLE)
def test_every_shared_model_loads_with_ifcopenshells_own_product_count(shared_data, cached_store, relative):
    store = cached_store
    path = shared_data / "ifc" / relative
    report = load_model(store, path, site_code="T")
    model = _open(path)
    expected = _ifcopenshell_product_count(model)
    assert report.element_count == expected
    assert store.scalar("SELECT count(*) FROM elements WHERE model_id = ?", [report.model_id]) == expected
    # a physical element without triangles is either listed as failed or has no body shape at all
    failed = {f["global_id"] for f in report.failures}
    bare = store.rows("SELECT global_id FROM elements WHERE model_id = ? AND NOT has_geometry AND ifc_class NOT IN "
                      "('IfcOpeningElement', 'IfcAnnotation', 'IfcGrid', 'IfcSpace', 'IfcSite', 'IfcBuilding', "
                      "'IfcBuildingStorey', 'IfcVirtualElement')", [report.model_id])
    for row in bare:
        if row["global_id"] in failed:
            continue
        reps = model.by_guid(row["global_id"]).Representation.Representations
        assert all(r.RepresentationIdentifier not in ("Body", None) for r in reps), row
    assert report.triangle_count == store.scalar("SELECT sum(triangle_count) FROM elements WHERE model_id = ?",
                                                 [report.model_id])


@pytest.mark.parametrize("relative", NO_ELEMENTS)
def test_a_model_with_no_building_elements_is_refused_and_the_store_is_unchanged(shared_data, store, relative):
    before = _snapshot(store)
    with pytest.raises(NoElementsError, match="no building elements"):
        load_model(store, shared_data / "ifc" / relative, site_code="T")
    assert _snapshot(store) == before


def test_millimetre_and_metre_models_give_the_same_extents_in_metres(box_model, store):
    boxes = (("IfcWall", "W1", (1.0, 2.0, 0.0), (4.0, 3.0, 0.2)),)
    mm = load_model(store, box_model("mm.ifc", unit="mm", boxes=boxes), site_code="MM")
    m = load_model(store, box_model("m.ifc", unit="m", boxes=boxes), site_code="M")
    assert (mm.length_unit, m.length_unit) == ("MILLIMETRE", "METRE")
    extents = [store.one("SELECT bbox_min_x_m x0, bbox_max_x_m x1, bbox_min_y_m y0, bbox_max_y_m y1, "
                         "bbox_min_z_m z0, bbox_max_z_m z1 FROM elements WHERE model_id = ?", [r.model_id])
               for r in (mm, m)]
    for e in extents:
        assert e["x1"] - e["x0"] == pytest.approx(4.0, abs=1e-6)
        assert e["y1"] - e["y0"] == pytest.approx(0.2, abs=1e-6)
        assert e["z1"] - e["z0"] == pytest.approx(3.0, abs=1e-6)
    assert extents[0] == pytest.approx(extents[1], abs=1e-6)


def test_real_millimetre_models_come_out_at_building_size_in_metres(shared_data, cached_store):
    store = cached_store
    report = load_model(store, shared_data / "ifc/schependomlaan/root_design_parts/ROOT-kalkzandsteen.ifczip")
    mesh = load_mesh(store)
    size = mesh.bounds()[1] - mesh.bounds()[0]
    assert report.length_unit == "MILLIMETRE"
    assert 5.0 < size.max() < 200.0      # a row of houses, not kilometres
    assert 2.0 < size[2] < 30.0


def test_quantities_are_stored_in_si_units(shared_data, cached_store):
    store = cached_store
    import json

    load_model(store, shared_data / "ifc/schependomlaan/root_design_parts/ROOT-kalkzandsteen.ifczip")
    rows = store.rows("SELECT quantities FROM elements WHERE quantities <> '{}' LIMIT 50")
    lengths = [v for r in rows for qto in json.loads(r["quantities"]).values() for k, v in qto.items()
               if k.lower() in ("length", "height", "width")]
    if lengths:  # millimetre quantities would be in the thousands
        assert max(lengths) < 100.0


def test_far_from_origin_geometry_is_kept_in_a_local_frame_with_millimetres(box_model, store):
    offset = (512_345.678, 3_381_234.567, 12.0)
    boxes = (("IfcColumn", "C1", (0.0, 0.0, 0.0), (0.4, 3.0, 0.4)),
             ("IfcColumn", "C2", (0.001, 6.0, 0.0), (0.4, 3.0, 0.4)))
    load_model(store, box_model("far.ifc", unit="mm", boxes=boxes, offset_m=offset), site_code="FAR")
    site = store.one("SELECT origin_x_m, origin_y_m, origin_z_m FROM sites WHERE site_code = 'FAR'")
    assert abs(site["origin_x_m"] - offset[0]) < 100 and abs(site["origin_y_m"] - offset[1]) < 100
    assert site["origin_z_m"] == 0.0       # heights near zero stay as they are
    mesh = load_mesh(store, site_code="FAR")
    assert mesh.vertices.dtype == np.float32
    assert np.abs(mesh.vertices).max() < 200.0
    world_x = mesh.vertices[:, 0].astype(np.float64) + mesh.origin_m[0]
    # the 1 mm offset of C2 survives float32 in the local frame
    xs = sorted({round(float(x), 4) for x in world_x})
    assert xs[0] == pytest.approx(offset[0], abs=1e-4)
    assert any(abs(x - (offset[0] + 0.001)) < 2e-4 for x in xs)


def test_a_second_model_of_a_site_shares_its_local_frame(box_model, store):
    offset = (512_000.0, 3_381_000.0, 0.0)
    a = box_model("a.ifc", boxes=(("IfcWall", "A", (0, 0, 0), (4, 3, 0.2)),), offset_m=offset, seed=1)
    b = box_model("b.ifc", boxes=(("IfcSlab", "B", (10, 0, 0), (4, 0.3, 4)),), offset_m=offset, seed=2)
    load_model(store, a, site_code="S")
    report = load_model(store, b, site_code="S")
    assert report.warnings == ()
    x0 = store.scalar("SELECT bbox_min_x_m FROM elements WHERE model_id = ?", [report.model_id])
    origin_x = store.scalar("SELECT origin_x_m FROM sites")
    assert x0 + origin_x == pytest.approx(offset[0] + 10.0, abs=1e-6)


def test_loading_the_same_file_twice_changes_nothing(shared_data, cached_store):
    store = cached_store
    path = shared_data / "ifc/schependomlaan/root_design_parts/ROOT-staal.ifczip"
    first = load_model(store, path)
    before = _snapshot(store)
    again = load_model(store, path)
    assert again.reused and again.model_id == first.model_id and again.version == 1
    assert again.element_count == first.element_count
    assert _snapshot(store) == before


def test_a_changed_file_under_the_same_name_becomes_the_next_version(box_model, store):
    v1 = box_model("v1.ifc", boxes=(("IfcWall", "W1", (0, 0, 0), (4, 3, 0.2)),), seed=5)
    v2 = box_model("v2.ifc", boxes=(("IfcWall", "W1", (0, 0, 0), (4, 3, 0.2)),
                                    ("IfcWall", "W2", (5, 0, 0), (4, 3, 0.2))), seed=5)
    r1 = load_model(store, v1, site_code="S", name="arch")
    r2 = load_model(store, v2, site_code="S", name="arch")
    assert (r1.version, r2.version) == (1, 2)
    current = store.rows("SELECT model_id FROM current_models WHERE site_code = 'S'")
    assert current == [{"model_id": r2.model_id}]


def test_a_reload_into_a_new_store_takes_the_parse_from_the_cache(shared_data, tmp_path):
    path = shared_data / "ifc/schependomlaan/root_design_parts/ROOT-prefab_trappen.ifczip"
    cache = tmp_path / "cache"
    with open_store(tmp_path / "a.duckdb", cache_dir=cache) as a:
        first = load_model(a, path)
        rows_a = a.rows("SELECT global_id, ifc_class, storey, geometry_hash, triangle_count FROM elements ORDER BY 1")
    with open_store(tmp_path / "b.duckdb", cache_dir=cache) as b:
        second = load_model(b, path)
        rows_b = b.rows("SELECT global_id, ifc_class, storey, geometry_hash, triangle_count FROM elements ORDER BY 1")
    assert not first.cache_hit and second.cache_hit
    assert rows_a == rows_b


def test_a_lost_cache_is_rebuilt_from_the_source_file(shared_data, tmp_path):
    path = shared_data / "ifc/schependomlaan/root_design_parts/ROOT-staal.ifczip"
    with open_store(tmp_path / "t.duckdb") as store:
        load_model(store, path)
        triangles = load_mesh(store).triangle_count
        shutil.rmtree(store.cache_dir)
        assert load_mesh(store).triangle_count == triangles


def test_elements_whose_geometry_is_cut_away_are_listed_and_the_rest_loads(shared_data, cached_store):
    store = cached_store
    report = load_model(store, shared_data / "ifc/schependomlaan/root_design_parts/ROOT-houten_kozijnen.ifczip")
    assert len(report.failures) == 64
    assert all("openings cut it away" in f["message"] for f in report.failures)
    assert any("failed to tessellate" in w for w in report.warnings)
    failed = {f["global_id"] for f in report.failures}
    rows = store.rows("SELECT global_id, has_geometry FROM elements WHERE model_id = ?", [report.model_id])
    assert {r["global_id"] for r in rows if not r["has_geometry"] and r["global_id"] in failed} == failed
    assert sum(r["has_geometry"] for r in rows) == report.physical_count - 64


@pytest.mark.parametrize("content, message", [
    (b"hello, not a model\n", "not an IFC file"),
    (b"<?xml version='1.0'?><ifcXML/>", "IFC-XML"),
    (b"", "file is empty"),
])
def test_files_that_are_not_ifc_are_refused_with_their_name(tmp_path, store, content, message):
    bad = tmp_path / "bad.ifc"
    bad.write_bytes(content)
    before = _snapshot(store)
    with pytest.raises(IfcFileError, match=message) as err:
        load_model(store, bad)
    assert str(bad) in str(err.value)
    assert _snapshot(store) == before


def test_a_truncated_file_is_refused(shared_data, tmp_path, store):
    data = (shared_data / "ifc/schependomlaan/XELLA-Begane_grond.ifc").read_bytes()
    bad = tmp_path / "truncated.ifc"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(IfcFileError, match="truncated"):
        load_model(store, bad)
    assert store.scalar("SELECT count(*) FROM models") == 0


def test_a_damaged_ifczip_is_refused(shared_data, tmp_path, store):
    data = (shared_data / "ifc/schependomlaan/root_design_parts/ROOT-staal.ifczip").read_bytes()
    bad = tmp_path / "damaged.ifczip"
    bad.write_bytes(data[: len(data) // 3])
    with pytest.raises(IfcFileError, match="damaged.ifczip"):
        load_model(store, bad)


def test_a_plain_ifc4x3_header_is_refused_with_what_to_do(shared_data, tmp_path, store):
    text = (shared_data / "ifc/validation/pass-grf000-correct_georeferencing.ifc").read_text()
    bad = tmp_path / "draft.ifc"
    bad.write_text(text.replace("FILE_SCHEMA(('IFC4X3_ADD2'))", "FILE_SCHEMA(('IFC4X3'))"))
    with pytest.raises(IfcFileError, match=r"unsupported IFC schema 'IFC4X3'.*IFC4X3_ADD2"):
        load_model(store, bad)


def test_an_unknown_schema_is_refused(tmp_path, store):
    bad = tmp_path / "future.ifc"
    bad.write_text("ISO-10303-21;\nHEADER;\nFILE_SCHEMA(('IFC5'));\nENDSEC;\nDATA;\nENDSEC;\nEND-ISO-10303-21;\n")
    with pytest.raises(IfcFileError, match="unsupported IFC schema 'IFC5'"):
        load_model(store, bad)


def test_a_missing_file_is_named(tmp_path, store):
    with pytest.raises(IfcFileError, match="no such file"):
        load_model(store, tmp_path / "nowhere.ifc")


def test_a_broken_map_conversion_warns_and_keeps_the_local_frame(shared_data, tmp_path, store):
    text = (shared_data / "ifc/validation/pass-grf000-correct_georeferencing.ifc").read_text()
    good_e, good_n = "3458715.92", "5439966.65"
    assert good_e in text
    broken = tmp_path / "broken-georef.ifc"
    broken.write_text(text.replace(f"{good_e},{good_n}", f"{good_e},9439966.65"))   # 4000 km north
    report = load_model(store, broken, site_code="G")
    assert any("georeferencing ignored" in w for w in report.warnings)
    georef = store.scalar("SELECT georef FROM models")
    assert '"valid":false' in georef.replace(" ", "")
    assert store.scalar("SELECT origin_x_m FROM sites") == 0.0


def test_a_valid_map_conversion_is_kept_and_located(shared_data, cached_store):
    store = cached_store
    import json

    report = load_model(store, shared_data / "ifc/validation/pass-grf000-correct_georeferencing.ifc")
    georef = json.loads(store.scalar("SELECT georef FROM models WHERE model_id = ?", [report.model_id]))
    assert georef["valid"] and georef["crs_name"] == "EPSG:31467"
    assert georef["latitude"] == pytest.approx(49.0955, abs=1e-3)
    assert georef["scale"] == pytest.approx(1.0)
    assert report.warnings == ()


def test_a_site_code_with_spaces_is_refused(box_model, store):
    with pytest.raises(Exception, match="site code"):
        load_model(store, box_model(), site_code="my site")


def test_a_file_cannot_belong_to_two_sites_of_one_store(box_model, store):
    path = box_model()
    load_model(store, path, site_code="A")
    with pytest.raises(BimError, match="already loaded as model"):
        load_model(store, path, site_code="B")
