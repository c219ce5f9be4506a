"""Read a model's elements and their semantics: storey, type, material, property sets, quantities.

Every IfcProduct with a representation becomes an ``Element``; which of them are physical
(and so tessellated into the model mesh) is decided by :func:`is_physical`, which ones are
reference geometry (alignment axes, kept as lines) by :func:`is_reference`, and why the rest
are left out by :func:`skip_reason`.

Civil and municipal models put built things outside ``IfcElement``: an IFC2X3 road exported
by BricsCAD makes each kerb, paving area and planting bed an ``IfcSite`` with a body, and
IFC4X3 facility parts (``IfcRoadPart``, ``IfcBridgePart``, ...) may carry one. A spatial
element with a body counts as built unless what it holds carries bodies itself (then its body
would repeat theirs): for a site, sub-sites with bodies (its own body is otherwise terrain); for
a facility (``IfcRoad``, ``IfcBridge``, ``IfcRailway``) or facility part, anything it aggregates
or contains. ``IfcEarthworksCut`` is a subtraction feature in the schema but its faces are the
excavated ground a survey measures, so it counts too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Not built things: voids, virtual boundaries, spaces, annotation. They are kept as
# elements (they have a representation) but never enter the mesh that scans are compared to.
NON_PHYSICAL = ("IfcFeatureElementSubtraction", "IfcVirtualElement")
# ... except these, whose faces are a surface a survey measures.
PHYSICAL_FEATURES = ("IfcEarthworksCut",)
# Spatial elements that, given a body, are built things (terrain, road parts, a BricsCAD kerb).
# IfcBuilding, storeys and spaces are not: their bodies are envelopes of what they hold.
SPATIAL_PARTS = ("IfcSite", "IfcFacilityPart", "IfcBridge", "IfcRoad", "IfcRailway", "IfcMarineFacility")
# Alignments: axis lines, stored as reference geometry, never as surfaces.
REFERENCE = ("IfcAlignment",)
# Their layout (segments, horizontal/vertical/cant layouts): drawn by their alignment's axis.
ALIGNMENT_LAYOUT = ("IfcAlignmentSegment", "IfcAlignmentHorizontal", "IfcAlignmentVertical", "IfcAlignmentCant",
                    "IfcReferent")
# Representation types that are lines or boxes, not a body a survey could see.
NON_BODY_TYPES = ("Curve2D", "Curve3D", "GeometricCurveSet", "Annotation2D", "Curve", "Segment", "BoundingBox", "Point")


@dataclass(frozen=True)
class Storey:
    global_id: str
    name: str | None
    elevation_m: float      # world frame (IFC project coordinates), metres


@dataclass(frozen=True)
class Element:
    """One IFC product with a representation, as read from the file (quantities in SI units)."""

    global_id: str
    ifc_class: str
    name: str | None = None
    predefined_type: str | None = None
    object_type: str | None = None
    storey: str | None = None
    storey_global_id: str | None = None
    type_name: str | None = None
    type_global_id: str | None = None
    material: str | None = None
    properties: dict[str, dict[str, Any]] = field(default_factory=dict)
    quantities: dict[str, dict[str, float]] = field(default_factory=dict)
    physical: bool = True


def has_body(product) -> bool:
    """Whether a product has a body representation (a solid or surface, not axis lines or a box)."""
    rep = getattr(product, "Representation", None)
    for r in (rep.Representations or ()) if rep is not None else ():
        if (r.RepresentationIdentifier or "Body") in ("Body", "Facetation", "Reference") and \
                (r.RepresentationType or "") not in NON_BODY_TYPES:
            return True
    return False


def _is_any(product, classes) -> bool:
    return any(product.is_a(c) for c in classes)


def _is_spatial_part(product) -> bool:
    return _is_any(product, SPATIAL_PARTS) and not product.is_a("IfcBuilding")


def _parts_carry_bodies(product) -> bool:
    """Whether a spatial element's body would repeat what it holds: a site aggregating sites with bodies (a
    site's own body is otherwise its terrain), a facility or facility part aggregating or containing anything
    with a body (its body is then an envelope of them)."""
    site = product.is_a("IfcSite")
    held = [part for rel in getattr(product, "IsDecomposedBy", None) or () for part in rel.RelatedObjects or ()]
    if not site:
        held += [e for rel in getattr(product, "ContainsElements", None) or () for e in rel.RelatedElements or ()]
    return any(has_body(part) and (not site or _is_spatial_part(part)) for part in held)


def is_physical(product) -> bool:
    """Whether a product is something built, which a scan or a photo could see.

    Elements (walls, kerbs, pavements, courses, earthworks fill, piles, geographic elements) that
    are not voids or virtual; excavations (``IfcEarthworksCut``); and sites, facilities and facility
    parts with a body of their own that does not repeat what they hold (see the module docstring).
    """
    if product.is_a("IfcElement"):
        return _is_any(product, PHYSICAL_FEATURES) or not _is_any(product, NON_PHYSICAL)
    return _is_spatial_part(product) and has_body(product) and not _parts_carry_bodies(product)


def is_reference(product) -> bool:
    """Whether a product is reference geometry kept as lines (an alignment's axis)."""
    return _is_any(product, REFERENCE)


def skip_reason(product) -> str | None:
    """Why a product with a representation does not enter the model mesh (None: it does, or should).

    One of ``reference line`` (alignment axes, kept as lines), ``alignment layout`` (segments,
    drawn by their alignment's axis), ``not built`` (openings, virtual elements, spaces),
    ``container`` (a site, facility or facility part whose parts carry the bodies), ``no body`` (only
    axis, footprint or box representations), ``not physical`` (annotation, grids, storeys).
    """
    if is_reference(product):
        return "reference line"
    if _is_any(product, ALIGNMENT_LAYOUT):
        return "alignment layout"
    if is_physical(product):
        return None if has_body(product) else "no body"
    if product.is_a("IfcElement") or product.is_a("IfcSpace") or product.is_a("IfcSpatialZone"):
        return "not built"
    if _is_spatial_part(product) and has_body(product):
        return "container"
    return "not physical" if has_body(product) else "no body"


def read_storeys(model, length_unit_m: float) -> list[Storey]:
    import ifcopenshell.util.placement as up

    storeys = []
    for s in model.by_type("IfcBuildingStorey"):
        if s.ObjectPlacement is not None:
            elevation = float(up.get_local_placement(s.ObjectPlacement)[2, 3]) * length_unit_m
        else:
            elevation = float(s.Elevation or 0.0) * length_unit_m
        storeys.append(Storey(s.GlobalId, s.Name, elevation))
    storeys.sort(key=lambda s: s.elevation_m)
    return storeys


def read_elements(model) -> list[Element]:
    """Every IfcProduct with a representation, with its semantics (duplicates of a GlobalId dropped)."""
    import ifcopenshell.util.element as ue
    import ifcopenshell.util.unit as uu

    scales = {
        "IfcQuantityLength": uu.calculate_unit_scale(model, "LENGTHUNIT"),
        "IfcQuantityArea": uu.calculate_unit_scale(model, "AREAUNIT"),
        "IfcQuantityVolume": uu.calculate_unit_scale(model, "VOLUMEUNIT"),
        "IfcQuantityWeight": uu.calculate_unit_scale(model, "MASSUNIT"),
    }
    seen: set[str] = set()
    out = []
    for product in model.by_type("IfcProduct"):
        if product.Representation is None or product.GlobalId in seen:
            continue
        seen.add(product.GlobalId)
        storey = _storey_of(product, ue)
        element_type = ue.get_type(product)
        out.append(Element(
            global_id=product.GlobalId,
            ifc_class=product.is_a(),
            name=product.Name,
            predefined_type=_text(ue.get_predefined_type(product)),
            object_type=_text(getattr(product, "ObjectType", None)),
            storey=storey.Name if storey else None,
            storey_global_id=storey.GlobalId if storey else None,
            type_name=element_type.Name if element_type else None,
            type_global_id=element_type.GlobalId if element_type else None,
            material=_material_of(product, ue),
            properties=_clean_psets(ue.get_psets(product, psets_only=True)),
            quantities=_quantities(product, scales),
            physical=is_physical(product),
        ))
    return out


def _text(value) -> str | None:
    return None if value is None else str(value)


def _storey_of(product, ue, depth: int = 0):
    """The storey a product stands in, following aggregation, voids and fillings upward."""
    if depth > 8:
        return None
    container = ue.get_container(product)
    if container is not None:
        if container.is_a("IfcBuildingStorey"):
            return container
        if container.is_a("IfcSpace"):
            return _storey_of(container, ue, depth + 1) or _aggregate_storey(container, ue)
        return None
    for parent in _parents(product, ue):
        found = _storey_of(parent, ue, depth + 1)
        if found is not None:
            return found
    return None


def _aggregate_storey(node, ue):
    for _ in range(8):
        node = ue.get_aggregate(node)
        if node is None:
            return None
        if node.is_a("IfcBuildingStorey"):
            return node
    return None


def _parents(product, ue):
    parent = ue.get_aggregate(product)
    if parent is not None:
        yield parent
    for rel in getattr(product, "VoidsElements", None) or ():
        yield rel.RelatingBuildingElement
    for rel in getattr(product, "FillsVoids", None) or ():
        yield rel.RelatingOpeningElement
    nests = getattr(product, "Nests", None) or ()
    for rel in nests:
        yield rel.RelatingObject


def _material_of(product, ue) -> str | None:
    try:
        return _material_name(ue.get_material(product, should_skip_usage=True))
    except (AttributeError, IndexError, TypeError):
        return None  # a dangling material relationship: real exports have them


def _material_name(material) -> str | None:
    if material is None:
        return None
    if material.is_a("IfcMaterial"):
        return material.Name
    parts: list[str] = []
    if material.is_a("IfcMaterialLayerSet"):
        parts = [layer.Material.Name for layer in material.MaterialLayers if layer.Material]
    elif material.is_a("IfcMaterialProfileSet"):
        parts = [p.Material.Name for p in material.MaterialProfiles if p.Material]
    elif material.is_a("IfcMaterialConstituentSet"):
        parts = [c.Material.Name for c in material.MaterialConstituents or () if c.Material]
    elif material.is_a("IfcMaterialList"):
        parts = [m.Name for m in material.Materials]
    names = list(dict.fromkeys(p for p in parts if p))
    return " / ".join(names) if names else getattr(material, "Name", None)


def _clean_psets(psets: dict) -> dict[str, dict[str, Any]]:
    return {name: {k: _json_value(v) for k, v in props.items() if k != "id"} for name, props in psets.items()}


def _json_value(v: Any) -> Any:
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    if isinstance(v, (list, tuple)):
        return [_json_value(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _json_value(x) for k, x in v.items()}
    return str(v)


def _quantities(product, scales: dict[str, float]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for rel in getattr(product, "IsDefinedBy", None) or ():
        if not rel.is_a("IfcRelDefinesByProperties"):
            continue
        qto = rel.RelatingPropertyDefinition
        if not qto.is_a("IfcElementQuantity"):
            continue
        values: dict[str, float] = {}
        for q in qto.Quantities or ():
            if q.is_a("IfcPhysicalSimpleQuantity") and len(q) > 3 and q[3] is not None:
                values[q.Name] = float(q[3]) * scales.get(q.is_a(), 1.0)
        if values:
            out[qto.Name] = values
    return out
