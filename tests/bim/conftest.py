"""Small IFC models built with ifcopenshell.api, for cases the real files do not cover."""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pytest


def make_box_model(path: Path, *, unit: str = "m", schema: str = "IFC4",
                   boxes=(("IfcWall", "W1", (0.0, 0.0, 0.0), (4.0, 3.0, 0.2)),),
                   offset_m=(0.0, 0.0, 0.0), map_conversion: dict | None = None, seed: int = 0,
                   site_latlon: tuple[float, float] | None = None) -> Path:
    """Write an IFC file whose elements are axis-aligned boxes.

    boxes: (ifc_class, name, (x, y, z) corner in metres, (length, height, thickness) in metres);
        names are unique, and an element's GlobalId derives from (seed, name).
    unit: "m" or "mm" project length unit; geometry is given in metres either way.
    offset_m: added to every element's placement (to test far-from-origin coordinates).
    """
    import ifcopenshell
    import ifcopenshell.api.aggregate
    import ifcopenshell.api.context
    import ifcopenshell.api.geometry
    import ifcopenshell.api.georeference
    import ifcopenshell.api.root
    import ifcopenshell.api.spatial
    import ifcopenshell.api.unit
    import ifcopenshell.guid

    api = ifcopenshell.api
    f = api.project.create_file(version=schema) if hasattr(api, "project") else ifcopenshell.file(schema=schema)
    project = api.root.create_entity(f, ifc_class="IfcProject", name="Test project")
    length = api.unit.add_si_unit(f, unit_type="LENGTHUNIT", prefix="MILLI" if unit == "mm" else None)
    area = api.unit.add_si_unit(f, unit_type="AREAUNIT")
    volume = api.unit.add_si_unit(f, unit_type="VOLUMEUNIT")
    api.unit.assign_unit(f, units=[length, area, volume])
    model = api.context.add_context(f, context_type="Model")
    body = api.context.add_context(f, context_type="Model", context_identifier="Body", target_view="MODEL_VIEW",
                                   parent=model)
    site = api.root.create_entity(f, ifc_class="IfcSite", name="Site")
    building = api.root.create_entity(f, ifc_class="IfcBuilding", name="Building")
    storey = api.root.create_entity(f, ifc_class="IfcBuildingStorey", name="Level 0")
    api.aggregate.assign_object(f, products=[site], relating_object=project)
    api.aggregate.assign_object(f, products=[building], relating_object=site)
    api.aggregate.assign_object(f, products=[storey], relating_object=building)
    if site_latlon is not None:
        site.RefLatitude = _dms(site_latlon[0])
        site.RefLongitude = _dms(site_latlon[1])
    for cls, name, corner, (length_m, height_m, thickness_m) in boxes:
        element = api.root.create_entity(f, ifc_class=cls, name=name)
        api.spatial.assign_container(f, products=[element], relating_structure=storey)
        rep = api.geometry.add_wall_representation(f, context=body, length=length_m, height=height_m,
                                                   thickness=thickness_m)
        api.geometry.assign_representation(f, product=element, representation=rep)
        matrix = np.eye(4)
        matrix[:3, 3] = np.asarray(corner, dtype=float) + np.asarray(offset_m, dtype=float)
        api.geometry.edit_object_placement(f, product=element, matrix=matrix)
    if map_conversion is not None:
        conversion = dict(map_conversion)
        api.georeference.add_georeferencing(f, ifc_class="IfcMapConversion", name=conversion.pop("crs"))
        api.georeference.edit_georeferencing(f, coordinate_operation=conversion)
        # Map coordinates in metres whatever the project unit (an omitted MapUnit means project units)
        f.by_type("IfcProjectedCRS")[0].MapUnit = f.createIfcSIUnit(None, "LENGTHUNIT", None, "METRE")
    # Deterministic GlobalIds: an element's comes from (seed, its name), so the same name in
    # two files built with one seed is the same element; other entities follow the seed.
    rng = np.random.default_rng(seed)
    names = {b[1] for b in boxes}
    for entity in f.by_type("IfcRoot"):
        if entity.is_a("IfcElement") and entity.Name in names:
            key = uuid.uuid5(uuid.NAMESPACE_URL, f"sitetwin-test/{seed}/{entity.Name}")
        else:
            key = uuid.UUID(bytes=rng.bytes(16))
        entity.GlobalId = ifcopenshell.guid.compress(key.hex)
    f.write(str(path))
    return path


def _dms(value: float):
    sign = -1 if value < 0 else 1
    value = abs(value)
    d = int(value)
    m = int((value - d) * 60)
    s = int(((value - d) * 60 - m) * 60)
    us = int(round((((value - d) * 60 - m) * 60 - s) * 1e6))
    return (sign * d, sign * m, sign * s, sign * us)


@pytest.fixture
def box_model(tmp_path):
    """Factory: box_model(name, **kwargs) writes a small IFC into tmp_path (see make_box_model)."""
    def factory(name: str = "model.ifc", **kwargs) -> Path:
        return make_box_model(tmp_path / name, **kwargs)
    return factory


@pytest.fixture(scope="session")
def ifc_cache(tmp_path_factory) -> Path:
    """One parsed-model cache for the session: a real file is tessellated once, however many tests load it."""
    return tmp_path_factory.mktemp("ifc-cache")


@pytest.fixture
def cached_store(ifc_cache):
    """A fresh in-memory store whose geometry cache is shared across the session."""
    from sitetwin.data.store import open_store

    with open_store(":memory:", cache_dir=ifc_cache) as s:
        yield s
