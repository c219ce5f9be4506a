"""A small municipal road as IFC, for loading civil models and for surveys of them with known truth.

Thirty metres of urban road along +x: a carriageway (``IfcPavement``) between two kerbs
(``IfcKerb``), a footway course on each side (``IfcCourse``), an embankment (``IfcEarthworksFill``),
a ditch (``IfcEarthworksCut``), a planting bed (``IfcGeographicElement``), all in an ``IfcRoad``,
with its centreline as an ``IfcAlignment`` (IFC4X3_ADD2). The IFC2X3 variant is what BricsCAD
exports for the same road: every part an ``IfcSite`` with a body, under one site without one.

Heights are in metres above the carriageway's finished surface (z = 0); the road is local, near
the origin, unless ``offset_m`` moves it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np


@dataclass(frozen=True)
class CivilPart:
    """One built part of the road: an axis-aligned box (metres, model frame)."""

    name: str
    ifc_class: str            # IFC4X3 class; the IFC2X3 export makes it an IfcSite
    predefined_type: str | None
    corner_m: tuple[float, float, float]   # min corner
    size_m: tuple[float, float, float]     # along x, y, z


ROAD_LENGTH_M = 30.0
ROAD_PARTS: tuple[CivilPart, ...] = (
    CivilPart("Carriageway", "IfcPavement", "FLEXIBLE", (0.0, 0.0, -0.20), (ROAD_LENGTH_M, 7.0, 0.20)),
    CivilPart("Kerb north", "IfcKerb", None, (0.0, 7.0, -0.15), (ROAD_LENGTH_M, 0.20, 0.30)),
    CivilPart("Kerb south", "IfcKerb", None, (0.0, -0.20, -0.15), (ROAD_LENGTH_M, 0.20, 0.30)),
    CivilPart("Footway north", "IfcCourse", "PAVEMENT", (0.0, 7.20, 0.03), (ROAD_LENGTH_M, 2.0, 0.12)),
    CivilPart("Footway south", "IfcCourse", "PAVEMENT", (0.0, -2.20, 0.03), (ROAD_LENGTH_M, 2.0, 0.12)),
    CivilPart("Embankment", "IfcEarthworksFill", "EMBANKMENT", (2.0, 10.5, 0.0), (26.0, 3.0, 0.8)),
    CivilPart("Ditch", "IfcEarthworksCut", "TRENCH", (0.0, -4.5, -0.6), (ROAD_LENGTH_M, 1.2, 0.6)),
    CivilPart("Planting bed", "IfcGeographicElement", "VEGETATION", (12.0, -3.0, 0.0), (2.0, 0.6, 0.5)),
)
# The centreline: plan points (x, y) of the alignment, metres.
CENTRELINE_XY = ((0.0, 3.5), (ROAD_LENGTH_M, 3.5))


def write_road_model(path: str | Path, *, schema: str = "IFC4X3_ADD2", parts: tuple[CivilPart, ...] = ROAD_PARTS,
                     offset_m: tuple[float, float, float] = (0.0, 0.0, 0.0), alignment: bool = True) -> Path:
    """Write the road as an IFC file; returns its path.

    ``schema`` IFC4X3_ADD2 (civil classes, an IfcRoad, the centreline as an IfcAlignment) or IFC2X3
    (every part an IfcSite with a body, named after the part, as BricsCAD exports a road; no alignment).
    GlobalIds derive from the part names, so two writes of the same road share them.
    """
    import ifcopenshell
    import ifcopenshell.api.aggregate
    import ifcopenshell.api.alignment
    import ifcopenshell.api.context
    import ifcopenshell.api.geometry
    import ifcopenshell.api.project
    import ifcopenshell.api.root
    import ifcopenshell.api.spatial
    import ifcopenshell.api.unit

    api = ifcopenshell.api
    path = Path(path)
    legacy = schema.upper() == "IFC2X3"
    f = api.project.create_file(version=cast(Any, schema))   # its Literal omits IFC4X3_ADD2, which it takes
    if legacy:   # IFC2X3 needs an owner history on every rooted entity: who exported it, with what
        import ifcopenshell.api.owner

        person = api.owner.add_person(f, identification="sitetwin", family_name="Synth")
        organisation = api.owner.add_organisation(f, identification="sitetwin", name="sitetwin")
        api.owner.add_person_and_organisation(f, person=person, organisation=organisation)
        api.owner.add_application(f, application_developer=organisation, version="1", application_full_name="BricsCAD",
                                  application_identifier="BricsCAD")
    project = api.root.create_entity(f, ifc_class="IfcProject", name="Municipal road")
    length = api.unit.add_si_unit(f, unit_type="LENGTHUNIT")
    api.unit.assign_unit(f, units=[length])
    model = api.context.add_context(f, context_type="Model")
    body = api.context.add_context(f, context_type="Model", context_identifier="Body", target_view="MODEL_VIEW",
                                   parent=model)
    site = api.root.create_entity(f, ifc_class="IfcSite", name="Road site")
    api.aggregate.assign_object(f, products=[site], relating_object=project)
    container = site
    if not legacy:
        container = api.root.create_entity(f, ifc_class="IfcRoad", name="Road")
        api.aggregate.assign_object(f, products=[container], relating_object=site)
    legacy_parts = []
    for part in parts:
        cls = "IfcSite" if legacy else part.ifc_class
        kwargs = {} if legacy or part.predefined_type is None else {"predefined_type": part.predefined_type}
        element = api.root.create_entity(f, ifc_class=cls, name=part.name, **kwargs)
        element.GlobalId = part_global_id(part.name)
        if legacy:
            element.ObjectType = part.ifc_class.removeprefix("Ifc")
            legacy_parts.append(element)
        else:
            api.spatial.assign_container(f, products=[element], relating_structure=container)
        sx, sy, sz = part.size_m
        rep = api.geometry.add_wall_representation(f, context=body, length=sx, height=sz, thickness=sy)
        api.geometry.assign_representation(f, product=element, representation=rep)
        matrix = np.eye(4)
        matrix[:3, 3] = np.asarray(part.corner_m, dtype=float) + np.asarray(offset_m, dtype=float)
        api.geometry.edit_object_placement(f, product=element, matrix=matrix)
    if legacy_parts:
        api.aggregate.assign_object(f, products=legacy_parts, relating_object=site)
    if alignment and not legacy:
        (x0, y0), (x1, y1) = CENTRELINE_XY
        ox, oy, oz = offset_m
        line = api.alignment.create_by_pi_method(
            f, "Centreline", [(x0 + ox, y0 + oy), (x1 + ox, y1 + oy)], [],
            vpoints=[(0.0, oz), (ROAD_LENGTH_M, oz)], lengths=[])
        api.aggregate.assign_object(f, products=[line], relating_object=project)
    f.write(str(path))
    return path


def part_boxes(parts: tuple[CivilPart, ...] = ROAD_PARTS) -> dict[str, np.ndarray]:
    """Each part's design box by name: (2, 3) min and max corner, metres, model frame."""
    return {p.name: np.array([p.corner_m, np.add(p.corner_m, p.size_m)], dtype=np.float64) for p in parts}


def road_stations(height_m: float = 1.8) -> np.ndarray:
    """Where a surveyor sets up along the road: (s, 3) metres, three on the carriageway, one on each
    footway, one on the embankment's far side."""
    return np.array([(5.0, 3.5, height_m), (15.0, 3.5, height_m), (25.0, 3.5, height_m),
                     (10.0, -1.2, 0.15 + height_m), (20.0, 8.2, 0.15 + height_m),
                     (15.0, 16.0, height_m)], dtype=np.float64)


def part_global_id(name: str) -> str:
    """The GlobalId a part of this name gets in every file ``write_road_model`` writes."""
    import uuid

    import ifcopenshell.guid

    return ifcopenshell.guid.compress(uuid.uuid5(uuid.NAMESPACE_URL, f"sitetwin-road/{name}").hex)


# Where the built road differs from its design, metres (local frame): a kerb set 18 mm off its line, another
# 13 mm high, the carriageway surface 20 mm low, a footway 6 mm high (within tolerance), the embankment 30 mm
# high; the ditch is not dug yet.
ROAD_MOVES: dict[str, tuple[float, float, float]] = {
    "Kerb south": (0.0, -0.018, 0.0), "Kerb north": (0.0, 0.0, 0.013), "Carriageway": (0.0, 0.0, -0.020),
    "Footway north": (0.0, 0.0, 0.006), "Embankment": (0.0, 0.0, 0.030)}
ROAD_NOT_BUILT = ("Ditch",)


def simulate_road_survey(mesh, part_names, *, moves: dict[str, tuple[float, float, float]] | None = None,
                         not_built: tuple[str, ...] = ROAD_NOT_BUILT, points_per_station: int = 150_000,
                         noise_m: float = 0.003, seed: int = 3):
    """A terrestrial survey of the road from ``road_stations()`` with known displacements.

    ``mesh`` is the road's ``bim.ModelMesh``, ``part_names`` (k,) the part name of each of its elements
    (``elements.name``); ``moves`` by part name (default ``ROAD_MOVES``), ``not_built`` parts left out.
    Returns ``(SimulatedSurvey, displacement_m (k, 3), built (k,) bool)``.
    """
    from sitetwin.synth.scans import simulate_survey, step_for_points

    moves = ROAD_MOVES if moves is None else moves
    names = [str(n) for n in part_names]
    displacement = np.array([moves.get(n, (0.0, 0.0, 0.0)) for n in names], dtype=np.float64).reshape(-1, 3)
    built = np.array([n not in not_built for n in names], dtype=bool)
    survey = simulate_survey(mesh, stations_m=road_stations(), built=built, displacement_m=displacement,
                             noise_m=noise_m, angular_step_deg=step_for_points(points_per_station), seed=seed)
    return survey, displacement, built
