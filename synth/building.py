"""Generate sitetwin's built-in demo site: a reinforced-concrete frame building under construction, as IFC4.

Simulated scans, rendered panoramas, the slab-edge hazard detector and the 4D schedule all
start from this model, so it is built to be clean (no two elements overlap: walls stand between
columns, beams between column faces), georeferenced, typed, quantified and scheduled, and it is
deterministic: one spec gives one file, byte for byte, with GlobalIds that name each element's role.

Frames and units: metres everywhere, in the model's world frame. Grid line ``1`` lies on x = 0,
grid line ``A`` on y = 0; grid numbers increase along +x, letters along +y, z is up and the
top of the ground slab is z = 0. Columns are centred on the grid nodes, so the building's
outline (slab edges, column faces) is the grid offset outwards by half a column width.
"""

from __future__ import annotations

import datetime
import math
import random
import string
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import ifcopenshell

# Section sizes and setting-out, in metres. Walls stand between columns and inside the
# slab-edge upstand, beams hang below the slabs and stop at column faces: no two elements
# overlap, so a scanned point's nearest model face belongs to the element it was measured on.
COLUMN_SIZE_M = 0.4                  # square column, centred on the grid node
BEAM_WIDTH_M = 0.3                   # centred on the grid line
BEAM_DOWNSTAND_M = 0.6               # below the slab soffit
SLAB_DEPTH_M = 0.2
EDGE_UPSTAND_WIDTH_M = 0.1           # slab-edge upstand, flush with the slab's outer face
EDGE_UPSTAND_HEIGHT_M = 0.18         # doubles as the toe board (JGJ 80-2016: >= 0.18 m)
WALL_THICKNESS_M = 0.2
WALL_SETBACK_M = 0.15                # outer wall face, measured in from the building outline
GUARDRAIL_TOP_M = 1.2                # JGJ 80-2016 edge protection: top rail 1.2 m, mid rail 0.6 m
GUARDRAIL_MID_M = 0.6
GUARDRAIL_TUBE_M = 0.048             # scaffold tube diameter
GUARDRAIL_POST_SPACING_M = 2.0
GUARDRAIL_VOID_SETBACK_M = 0.1       # railings round the stair void stand this far from its edge
STAIR_FLIGHT_WIDTH_M = 1.2
STAIR_GAP_M = 0.1                    # between the two flights of a half-turn stair
STAIR_GOING_M = 0.27
STAIR_MAX_RISER_M = 0.175
STAIR_WAIST_M = 0.15
STAIR_VOID_CLEARANCE_M = 0.05        # between a flight's side and the slab void
STAIR_START_M = 0.5                  # first riser, measured from the stair bay's grid line
STAIR_SIDE_M = 0.75                  # stair void, measured from the bay's grid line on the facade: its
                                     # railing stays > 0.5 m from the slab edge, which it does not guard
WINDOW_HEAD_M = 2.4                  # above the storey's floor
WINDOW_WIDTH_M = 2.4
DOOR_WIDTH_M = 1.0
ENTRANCE_WIDTH_M = 1.8
UNGUARDED_FRACTION = 0.15            # share of each floor's slab edges left without a guardrail

# Georeferencing: a false origin in Wuhan's Optics Valley, on CGCS2000 / 3-degree
# Gauss-Kruger CM 114E (EPSG:4547). Latitude/longitude of the false origin, meridian convergence
# and grid scale were computed with pyproj 3.7 from the Eastings/Northings below.
MAP_CRS = "EPSG:4547"
MAP_EASTINGS_M = 539400.0
MAP_NORTHINGS_M = 3376150.0
MAP_HEIGHT_M = 23.5                  # 1985 National Height Datum
MAP_ROTATION_DEG = 20.0              # the grid's x axis, anticlockwise from grid east
MAP_SCALE = 1.0000154                # grid scale 1.0000191 times elevation factor 0.9999963
SITE_LATITUDE_DEG = 30.504840582053816
SITE_LONGITUDE_DEG = 114.41043986366921
MERIDIAN_CONVERGENCE_DEG = 0.20834653871902126  # grid north lies this far east of true north

# GlobalIds are uuid5 of a role key ("column/Level 1/B3") in this namespace, so an element
# keeps its GlobalId across rebuilds and across specs that still contain it.
_GUID_NAMESPACE = uuid.UUID("5f0c1a52-8e43-4c1e-9a57-3d1f6b2e7c11")
_HEADER_NAME = "sitetwin_demo_building.ifc"


@dataclass(frozen=True)
class DemoBuildingSpec:
    """What to build; the defaults give the demo site (4 storeys, 5 x 3 bays of 6 m)."""

    storeys: int = 4                  # occupied storeys, >= 3; a "Roof" storey is added above them
    bays_x: int = 5                   # structural grid bays along x (grid lines 1, 2, ...)
    bays_y: int = 3                   # structural grid bays along y (grid lines A, B, ...)
    bay_x_m: float = 6.0
    bay_y_m: float = 6.0
    storey_height_m: float = 3.5      # floor to floor
    start_date: datetime.date = datetime.date(2026, 3, 2)   # first task starts here
    seed: int = 0                     # picks which slab edges have no guardrail


@dataclass(frozen=True)
class DemoBuildingInfo:
    """Facts about a generated demo building."""

    path: Path
    element_count: int                # IfcProducts with a representation (what sitetwin counts as elements)
    storey_names: tuple[str, ...]     # bottom up: "Level 0", "Level 1", ..., "Roof"
    task_count: int                   # every IfcTask, the storey summary tasks included
    unguarded_edges: tuple[str, ...]  # GlobalIds of slab-edge elements that have no guardrail
    physical_count: int = 0           # of those, built things (element_count less the openings)
    counts: dict[str, int] = field(default_factory=dict)  # products with a representation, per IFC class


def build_demo_building(path: str | Path, spec: DemoBuildingSpec = DemoBuildingSpec()) -> DemoBuildingInfo:
    """Write the demo building as IFC4 to ``path`` and return facts about it.

    The file holds a concrete frame (columns, beams, slabs with slab-edge upstands), infill
    facade walls with windows and doors in real openings, a half-turn stair per storey under
    a slab void, steel guardrails on most slab edges and round every stair void, a 4D schedule
    (work plan, calendar, one task per storey and trade, linked to the elements it builds) and
    georeferencing to EPSG:4547. ``path`` must end in ``.ifc``; missing folders are created.

    Slab edges are IfcBeams typed "SlabEdge" (``ObjectType == "SlabEdge"``) with a
    ``Sitetwin_EdgeProtection`` property set (``IsGuarded``, ``FallHeight``); each guardrail is an
    IfcRailing (GUARDRAIL) connected to its edge by IfcRelConnectsElements. Every built element
    is assigned to exactly one IfcTask (IfcRelAssignsToProduct), named "<storey> <trade>".
    Raises ``ValueError`` naming the field when the spec cannot be built.

    Example::

        info = build_demo_building("site/demo.ifc")
        info.element_count, info.unguarded_edges[:2]
    """
    path = Path(path)
    if path.suffix.lower() != ".ifc":
        raise ValueError(f"path must end in .ifc (the demo is written as plain IFC-SPF), got {str(path)!r}")
    _validate(spec)
    builder = _DemoBuilder(spec)
    builder.build()
    path.parent.mkdir(parents=True, exist_ok=True)
    builder.file.write(str(path))
    return builder.info(path)


def _validate(spec: DemoBuildingSpec) -> None:
    if not isinstance(spec, DemoBuildingSpec):
        raise ValueError(f"spec must be a DemoBuildingSpec, got {type(spec).__name__}")
    checks = (
        ("storeys", spec.storeys, 3, 30),
        ("bays_x", spec.bays_x, 1, 26),
        ("bays_y", spec.bays_y, 1, 26),
        ("bay_x_m", spec.bay_x_m, 4.0, 15.0),
        ("bay_y_m", spec.bay_y_m, 4.0, 15.0),
        ("storey_height_m", spec.storey_height_m, 3.0, 6.0),
    )
    for name, value, low, high in checks:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"DemoBuildingSpec.{name} must be a number, got {value!r}")
        if isinstance(low, int) and not isinstance(value, int):
            raise ValueError(f"DemoBuildingSpec.{name} must be a whole number, got {value!r}")
        if not low <= value <= high:
            raise ValueError(f"DemoBuildingSpec.{name} must lie in [{low}, {high}], got {value!r}")
    if not isinstance(spec.start_date, datetime.date) or isinstance(spec.start_date, datetime.datetime):
        raise ValueError(f"DemoBuildingSpec.start_date must be a datetime.date, got {spec.start_date!r}")
    if not isinstance(spec.seed, int) or isinstance(spec.seed, bool):
        raise ValueError(f"DemoBuildingSpec.seed must be an int, got {spec.seed!r}")
    # The stair's void and railings must stay clear of the beams and walls round its bay.
    stair = _StairLayout.for_spec(spec)
    clear = GUARDRAIL_VOID_SETBACK_M + GUARDRAIL_TUBE_M + BEAM_WIDTH_M / 2 + 0.05
    need_y = stair.void_y1 - stair.bay_y0 + clear
    if need_y > spec.bay_y_m:
        raise ValueError(
            f"DemoBuildingSpec.bay_y_m = {spec.bay_y_m} m cannot hold the half-turn stair for a "
            f"{spec.storey_height_m} m storey: it needs at least {need_y:.2f} m; "
            "raise bay_y_m or lower storey_height_m")
    need_x = stair.void_x1 - stair.bay_x0 + clear
    if need_x > spec.bay_x_m:
        raise ValueError(f"DemoBuildingSpec.bay_x_m = {spec.bay_x_m} m cannot hold the half-turn stair: "
                         f"it needs at least {need_x:.2f} m")


@dataclass(frozen=True)
class _StairLayout:
    """A half-turn stair in the grid bay at the north-west corner, in world metres."""

    risers: int              # per storey
    riser_m: float
    bay_x0: float            # the stair bay's grid lines
    bay_y0: float
    band_a_x0: float         # flight 1 (up, +y) occupies [band_a_x0, band_a_x0 + width]
    band_b_x0: float         # flight 2 (up, -y)
    void_x0: float
    void_x1: float
    void_y0: float           # first riser of flight 1, last riser of flight 2
    void_y1: float           # far edge of the half landing
    run_m: float             # plan length of one flight

    @staticmethod
    def for_spec(spec: DemoBuildingSpec) -> _StairLayout:
        risers = 2 * math.ceil(spec.storey_height_m / (2 * STAIR_MAX_RISER_M))
        bay_x0 = 0.0
        bay_y0 = (spec.bays_y - 1) * spec.bay_y_m
        void_x0 = bay_x0 + STAIR_SIDE_M
        band_a = void_x0 + STAIR_VOID_CLEARANCE_M
        band_b = band_a + STAIR_FLIGHT_WIDTH_M + STAIR_GAP_M
        void_x1 = band_b + STAIR_FLIGHT_WIDTH_M + STAIR_VOID_CLEARANCE_M
        run = (risers // 2 - 1) * STAIR_GOING_M
        void_y0 = bay_y0 + STAIR_START_M
        void_y1 = void_y0 + run + STAIR_FLIGHT_WIDTH_M
        return _StairLayout(risers, spec.storey_height_m / risers, bay_x0, bay_y0, band_a, band_b,
                            void_x0, void_x1, void_y0, void_y1, run)


@dataclass(frozen=True)
class _Edge:
    """One bay's length of the building outline, walked anticlockwise seen from above."""

    side: str                # S, E, N, W
    bay: int                 # index along the walk
    origin: tuple[float, float]   # the outline corner where this side's walk starts
    direction: tuple[float, float]
    inward: tuple[float, float]
    stations: tuple[float, ...]   # grid lines crossed by the walk, distance from origin
    grid_line: str           # the grid line this side lies on
    span: tuple[str, str]    # the grid lines at this bay's two ends, in walk order
    last: bool

    @property
    def label(self) -> str:
        return f"{self.grid_line}/{self.span[0]}-{self.span[1]}"

    def frame(self, along_m: float, z_m: float) -> np.ndarray:
        """4x4 world-from-local: local x along the walk, local y inwards, local z up."""
        ox, oy = self.origin
        dx, dy = self.direction
        ix, iy = self.inward
        matrix = np.eye(4)
        matrix[:3, 0] = (dx, dy, 0.0)
        matrix[:3, 1] = (ix, iy, 0.0)
        matrix[:3, 3] = (ox + dx * along_m, oy + dy * along_m, z_m)
        return matrix


def _grid_letters(count: int) -> list[str]:
    letters = string.ascii_uppercase
    return [letters[i] if i < 26 else letters[i // 26 - 1] + letters[i % 26] for i in range(count)]


def _perimeter_edges(spec: DemoBuildingSpec) -> list[_Edge]:
    half = COLUMN_SIZE_M / 2
    length, width = spec.bays_x * spec.bay_x_m, spec.bays_y * spec.bay_y_m
    numbers = [str(i + 1) for i in range(spec.bays_x + 1)]
    letters = _grid_letters(spec.bays_y + 1)
    sides = (
        ("S", (-half, -half), (1.0, 0.0), (0.0, 1.0), spec.bay_x_m, spec.bays_x, letters[0], numbers),
        ("E", (length + half, -half), (0.0, 1.0), (-1.0, 0.0), spec.bay_y_m, spec.bays_y, numbers[-1], letters),
        ("N", (length + half, width + half), (-1.0, 0.0), (0.0, -1.0), spec.bay_x_m, spec.bays_x,
         letters[-1], numbers[::-1]),
        ("W", (-half, width + half), (0.0, -1.0), (1.0, 0.0), spec.bay_y_m, spec.bays_y, numbers[0], letters[::-1]),
    )
    edges = []
    for side, origin, direction, inward, bay, bays, grid_line, crossing in sides:
        stations = tuple(half + m * bay for m in range(bays + 1))
        for b in range(bays):
            edges.append(_Edge(side, b, origin, direction, inward, stations, grid_line,
                               (crossing[b], crossing[b + 1]), b == bays - 1))
    return edges


def _translation(x: float, y: float, z: float) -> np.ndarray:
    matrix = np.eye(4)
    matrix[:3, 3] = (x, y, z)
    return matrix


class _DemoBuilder:
    """Holds the IFC file while the building goes up; one instance per build."""

    def __init__(self, spec: DemoBuildingSpec):
        import ifcopenshell
        import ifcopenshell.api.aggregate
        import ifcopenshell.api.attribute
        import ifcopenshell.api.context
        import ifcopenshell.api.control
        import ifcopenshell.api.feature
        import ifcopenshell.api.geometry
        import ifcopenshell.api.georeference
        import ifcopenshell.api.material
        import ifcopenshell.api.profile
        import ifcopenshell.api.project
        import ifcopenshell.api.pset
        import ifcopenshell.api.root
        import ifcopenshell.api.sequence
        import ifcopenshell.api.spatial
        import ifcopenshell.api.style
        import ifcopenshell.api.type
        import ifcopenshell.api.unit
        import ifcopenshell.guid
        from ifcopenshell.util.shape_builder import ShapeBuilder

        self.api = ifcopenshell.api
        self.guid = ifcopenshell.guid
        self.spec = spec
        self.file = ifcopenshell.api.project.create_file(version="IFC4")
        self.shape = ShapeBuilder(self.file)
        self.keys: dict[int, str] = {}
        self.rng = random.Random(spec.seed)
        self.levels: list[tuple[str, float]] = [
            (f"Level {k}", k * spec.storey_height_m) for k in range(spec.storeys)
        ] + [("Roof", spec.storeys * spec.storey_height_m)]
        self.storeys: list = []
        self.numbers = [str(i + 1) for i in range(spec.bays_x + 1)]
        self.letters = _grid_letters(spec.bays_y + 1)
        self.xs = [i * spec.bay_x_m for i in range(spec.bays_x + 1)]
        self.ys = [j * spec.bay_y_m for j in range(spec.bays_y + 1)]
        self.stair = _StairLayout.for_spec(spec)
        self.stair_bay = (0, spec.bays_y - 1)
        self.edges = _perimeter_edges(spec)
        # task key -> elements it builds; filled while building, read by the scheduler
        self.outputs: dict[tuple[int, str], list] = {}
        self.by_type: dict[str, list] = {}        # type name -> occurrences, typed in one call each
        self.unguarded: list = []
        self.physical: list = []
        self.pending_rails: list = []       # guarded slab edges, railed once the frame stands
        self.used_keys: set[str] = set()

    # ----------------------------------------------------------------- plumbing
    def _key(self, entity, key: str):
        if key in self.used_keys:
            raise AssertionError(f"duplicate GlobalId key {key}")
        self.used_keys.add(key)
        self.keys[entity.id()] = key
        return entity

    def _element(self, ifc_class: str, name: str, key: str, level: int, task: str, type_name: str,
                 representation, matrix: np.ndarray, predefined_type: str | None = None):
        """A physical element: contained in its storey, placed at ``matrix`` (world from local), built by ``task``."""
        api = self.api
        element = api.root.create_entity(self.file, ifc_class=ifc_class, name=name,
                                         predefined_type=predefined_type)
        self._key(element, key)
        api.spatial.assign_container(self.file, products=[element], relating_structure=self.storeys[level])
        api.geometry.assign_representation(self.file, product=element, representation=representation)
        api.geometry.edit_object_placement(self.file, product=element, matrix=matrix)
        self.outputs.setdefault((level, task), []).append(element)
        self.by_type.setdefault(type_name, []).append(element)
        self.physical.append(element)
        return element

    def _pset(self, element, name: str, properties: dict) -> None:
        pset = self.api.pset.add_pset(self.file, product=element, name=name)
        self.api.pset.edit_pset(self.file, pset=pset, properties=properties)

    def _qto(self, element, name: str, quantities: dict) -> None:
        qto = self.api.pset.add_qto(self.file, product=element, name=name)
        self.api.pset.edit_qto(self.file, qto=qto, properties={k: round(float(v), 6) for k, v in quantities.items()})

    def _rectangle(self, x_m: float, y_m: float, name: str):
        profile = self.api.profile.add_parameterized_profile(self.file, ifc_class="IfcRectangleProfileDef")
        self.api.profile.edit_profile(self.file, profile=profile,
                                      attributes={"ProfileName": name, "XDim": x_m, "YDim": y_m})
        return profile

    def _edit(self, entity, **attributes) -> None:
        self.api.attribute.edit_attributes(self.file, product=entity, attributes=attributes)

    def _box(self, length_m: float, height_m: float, thickness_m: float, offset_m: float = 0.0):
        """Local x in [0, length], y in [offset, offset + thickness], z in [0, height]."""
        return self.api.geometry.add_wall_representation(
            self.file, context=self.body, length=length_m, height=height_m, thickness=thickness_m,
            offset=offset_m)

    # ----------------------------------------------------------------- the build
    def build(self) -> None:
        self._project()
        self._materials_and_types()
        self._frame()
        self._stairs()
        self._facade()
        self._guardrails()
        self._assign_types()
        self._schedule()
        self._georeference()
        self._canonical_sets()
        self._global_ids()

    def _project(self) -> None:
        api, f, spec = self.api, self.file, self.spec
        header = f.header.file_name
        header.name = _HEADER_NAME
        header.time_stamp = f"{spec.start_date.isoformat()}T00:00:00+08:00"
        header.author = ("sitetwin",)
        header.organization = ("sitetwin",)
        header.originating_system = "sitetwin sitetwin.synth.building"
        header.authorization = "none"

        project = self._key(api.root.create_entity(f, ifc_class="IfcProject", name="Sitetwin demo site"), "project")
        self._edit(project, Description="Reinforced-concrete frame under construction (generated by sitetwin)")
        self.metre = api.unit.add_si_unit(f, unit_type="LENGTHUNIT")
        api.unit.assign_unit(f, units=[
            self.metre,
            api.unit.add_si_unit(f, unit_type="AREAUNIT"),
            api.unit.add_si_unit(f, unit_type="VOLUMEUNIT"),
            api.unit.add_si_unit(f, unit_type="PLANEANGLEUNIT"),
        ])
        self.model = api.context.add_context(f, context_type="Model")
        self.body = api.context.add_context(f, context_type="Model", context_identifier="Body",
                                            target_view="MODEL_VIEW", parent=self.model)
        site = self._key(api.root.create_entity(f, ifc_class="IfcSite", name="Wuhan Optics Valley plot"), "site")
        self._edit(site, RefLatitude=_dms(SITE_LATITUDE_DEG), RefLongitude=_dms(SITE_LONGITUDE_DEG),
                   RefElevation=MAP_HEIGHT_M)
        building = self._key(api.root.create_entity(f, ifc_class="IfcBuilding", name="Block A"), "building")
        api.aggregate.assign_object(f, products=[site], relating_object=project)
        api.aggregate.assign_object(f, products=[building], relating_object=site)
        for product in (site, building):
            api.geometry.edit_object_placement(f, product=product, matrix=np.eye(4))
        for name, elevation in self.levels:
            storey = self._key(api.root.create_entity(f, ifc_class="IfcBuildingStorey", name=name), f"storey/{name}")
            self._edit(storey, Elevation=elevation)
            api.aggregate.assign_object(f, products=[storey], relating_object=building)
            api.geometry.edit_object_placement(f, product=storey, matrix=_translation(0, 0, elevation))
            self.storeys.append(storey)

    def _materials_and_types(self) -> None:
        api, f = self.api, self.file
        colours = {  # (name, category, rgb, transparency): what panoramas render
            "Concrete C30/37": ("concrete", (0.72, 0.72, 0.70), 0.0),
            "Reinforcing steel": ("steel", (0.35, 0.30, 0.28), 0.0),
            "AAC block B06": ("block", (0.90, 0.88, 0.82), 0.0),
            "Glass": ("glass", (0.60, 0.75, 0.85), 0.6),
            "Timber": ("wood", (0.55, 0.38, 0.20), 0.0),
            "Steel S235": ("steel", (0.95, 0.75, 0.10), 0.0),   # guardrails, painted safety yellow
        }
        self.materials = {}
        for name, (category, rgb, transparency) in colours.items():
            material = api.material.add_material(f, name=name, category=category)
            style = api.style.add_style(f, name=name)
            api.style.add_surface_style(f, style=style, ifc_class="IfcSurfaceStyleShading", attributes={
                "SurfaceColour": {"Name": None, "Red": rgb[0], "Green": rgb[1], "Blue": rgb[2]},
                "Transparency": transparency})
            api.style.assign_material_style(f, material=material, style=style, context=self.body)
            self.materials[name] = material
        concrete = self.materials["Concrete C30/37"]

        self.types: dict[str, ifcopenshell.entity_instance] = {}
        self.profiles = {
            "column": self._rectangle(COLUMN_SIZE_M, COLUMN_SIZE_M, "RC 400x400"),
            "beam": self._rectangle(BEAM_WIDTH_M, BEAM_DOWNSTAND_M, "RC 300x600"),
            "edge": self._rectangle(EDGE_UPSTAND_WIDTH_M, EDGE_UPSTAND_HEIGHT_M, "Upstand 100x180"),
        }

        def new_type(ifc_class, name, predefined_type, key):
            element_type = api.root.create_entity(f, ifc_class=ifc_class, name=name, predefined_type=predefined_type)
            self._key(element_type, f"type/{key}")
            self.types[key] = element_type
            return element_type

        for key, ifc_class, name, predefined, profile in (
            ("column", "IfcColumnType", "RC column 400x400", "COLUMN", "column"),
            ("beam", "IfcBeamType", "RC beam 300x600 downstand", "BEAM", "beam"),
            ("edge", "IfcBeamType", "RC slab-edge upstand 100x180", "SlabEdge", "edge"),
        ):
            element_type = new_type(ifc_class, name, predefined, key)
            profile_set = api.material.add_material_set(f, name=name, set_type="IfcMaterialProfileSet")
            api.material.add_profile(f, profile_set=profile_set, material=concrete, profile=self.profiles[profile])
            api.material.assign_material(f, products=[element_type], type="IfcMaterialProfileSet",
                                         material=profile_set)
        for key, ifc_class, name, predefined, material, thickness in (
            ("ground_slab", "IfcSlabType", "RC ground slab 200", "BASESLAB", concrete, SLAB_DEPTH_M),
            ("floor_slab", "IfcSlabType", "RC floor slab 200", "FLOOR", concrete, SLAB_DEPTH_M),
            ("roof_slab", "IfcSlabType", "RC roof slab 200", "ROOF", concrete, SLAB_DEPTH_M),
            ("wall", "IfcWallType", "AAC block infill wall 200", "SOLIDWALL", self.materials["AAC block B06"],
             WALL_THICKNESS_M),
        ):
            element_type = new_type(ifc_class, name, predefined, key)
            layer_set = api.material.add_material_set(f, name=name, set_type="IfcMaterialLayerSet")
            layer = api.material.add_layer(f, layer_set=layer_set, material=material)
            api.material.edit_layer(f, layer=layer, attributes={"LayerThickness": thickness})
            api.material.assign_material(f, products=[element_type], type="IfcMaterialLayerSet", material=layer_set)
        for key in ("column", "beam", "ground_slab", "floor_slab", "roof_slab"):
            self._pset(self.types[key], "Pset_ConcreteElementGeneral",
                       {"StrengthClass": "C30/37", "ExposureClass": "XC1", "ReinforcementVolumeRatio": 0.02,
                        "ConstructionMethod": "In-situ"})

        for key, ifc_class, name, predefined, parts in (
            ("stair", "IfcStairType", "RC half-turn stair", "HALF_TURN_STAIR",
             (("Concrete", concrete), ("Reinforcement", self.materials["Reinforcing steel"]))),
            ("door", "IfcDoorType", "Timber door 1000", "DOOR", (("Leaf", self.materials["Timber"]),)),
            ("entrance", "IfcDoorType", "Timber entrance door 1800, double", "DOOR",
             (("Leaf", self.materials["Timber"]), ("Vision panel", self.materials["Glass"]))),
            ("guardrail", "IfcRailingType", "Temporary guardrail JGJ 80, tube 48", "GUARDRAIL",
             (("Tube", self.materials["Steel S235"]),)),
        ):
            element_type = new_type(ifc_class, name, predefined, key)
            constituents = api.material.add_material_set(f, name=name, set_type="IfcMaterialConstituentSet")
            for part, material in parts:
                api.material.add_constituent(f, constituent_set=constituents, material=material, name=part)
            api.material.assign_material(f, products=[element_type], type="IfcMaterialConstituentSet",
                                         material=constituents)
        # window types are made per size as the facade needs them (see _window_type)
        self.window_material = api.material.add_material_set(f, name="Timber window, double glazed",
                                                              set_type="IfcMaterialConstituentSet")
        for part, material in (("Frame", self.materials["Timber"]), ("Glazing", self.materials["Glass"])):
            api.material.add_constituent(f, constituent_set=self.window_material, material=material, name=part)
        self._edit(self.types["door"], OperationType="SINGLE_SWING_LEFT")
        self._edit(self.types["entrance"], OperationType="DOUBLE_DOOR_SINGLE_SWING")

    # ----------------------------------------------------------------- structure
    def _frame(self) -> None:
        top = len(self.levels) - 1
        for level, (level_name, z) in enumerate(self.levels):
            if level < top:
                self._columns(level, level_name, z)
            self._slabs(level, level_name, z)
            if level > 0:
                self._beams(level, level_name, z)
                self._slab_edges(level, level_name, z, roof=level == top)

    def _columns(self, level: int, level_name: str, z: float) -> None:
        api = self.api
        height = self.spec.storey_height_m - SLAB_DEPTH_M
        for i, x in enumerate(self.xs):
            for j, y in enumerate(self.ys):
                grid = f"{self.letters[j]}{self.numbers[i]}"
                representation = api.geometry.add_profile_representation(
                    self.file, context=self.body, profile=self.profiles["column"], depth=height, cardinal_point=5)
                column = self._element("IfcColumn", f"Column {grid}", f"column/{level_name}/{grid}", level,
                                       "columns", "column", representation, _translation(x, y, z), "COLUMN")
                self._edit(column, Tag=f"C-{level}-{grid}")
                external = i in (0, self.spec.bays_x) or j in (0, self.spec.bays_y)
                self._pset(column, "Pset_ColumnCommon",
                           {"Reference": "RC column 400x400", "IsExternal": external, "LoadBearing": True})
                area = COLUMN_SIZE_M ** 2
                self._qto(column, "Qto_ColumnBaseQuantities", {
                    "Length": height, "CrossSectionArea": area, "OuterSurfaceArea": 4 * COLUMN_SIZE_M * height,
                    "GrossVolume": area * height, "NetVolume": area * height})

    def _beams(self, level: int, level_name: str, z: float) -> None:
        api = self.api
        half = COLUMN_SIZE_M / 2
        axis_z = z - SLAB_DEPTH_M - BEAM_DOWNSTAND_M / 2
        runs = []
        for j, y in enumerate(self.ys):
            for i in range(self.spec.bays_x):
                runs.append((f"{self.letters[j]}/{self.numbers[i]}-{self.numbers[i + 1]}",
                             (self.xs[i] + half, y), (1.0, 0.0), self.spec.bay_x_m - 2 * half,
                             j in (0, self.spec.bays_y)))
        for i, x in enumerate(self.xs):
            for j in range(self.spec.bays_y):
                runs.append((f"{self.numbers[i]}/{self.letters[j]}-{self.letters[j + 1]}",
                             (x, self.ys[j] + half), (0.0, 1.0), self.spec.bay_y_m - 2 * half,
                             i in (0, self.spec.bays_x)))
        for label, (x0, y0), (dx, dy), length, external in runs:
            representation = api.geometry.add_profile_representation(
                self.file, context=self.body, profile=self.profiles["beam"], depth=length, cardinal_point=5,
                placement_zx_axes=((1.0, 0.0, 0.0), (0.0, 1.0, 0.0)))
            matrix = np.eye(4)   # IFC beams run along their local x
            matrix[:3, 0] = (dx, dy, 0.0)
            matrix[:3, 1] = (-dy, dx, 0.0)
            matrix[:3, 3] = (x0, y0, axis_z)
            beam = self._element("IfcBeam", f"Beam {label}", f"beam/{level_name}/{label}", level,
                                 "beams and slab", "beam", representation, matrix, "BEAM")
            self._pset(beam, "Pset_BeamCommon", {"Reference": "RC beam 300x600 downstand", "IsExternal": external,
                                                 "LoadBearing": True, "Span": length})
            area = BEAM_WIDTH_M * BEAM_DOWNSTAND_M
            self._qto(beam, "Qto_BeamBaseQuantities", {
                "Length": length, "CrossSectionArea": area,
                "OuterSurfaceArea": (BEAM_WIDTH_M + 2 * BEAM_DOWNSTAND_M) * length,
                "GrossVolume": area * length, "NetVolume": area * length})

    def _slabs(self, level: int, level_name: str, z: float) -> None:
        api, spec = self.api, self.spec
        half = COLUMN_SIZE_M / 2
        top = len(self.levels) - 1
        type_key, predefined = (("ground_slab", "BASESLAB") if level == 0 else
                                ("roof_slab", "ROOF") if level == top else ("floor_slab", "FLOOR"))
        task = "ground slab" if level == 0 else "beams and slab"
        for i in range(spec.bays_x):
            for j in range(spec.bays_y):
                # perimeter bays run out to the building outline so the slabs tile the floor plate
                x0 = self.xs[i] - (half if i == 0 else 0.0)
                x1 = self.xs[i + 1] + (half if i == spec.bays_x - 1 else 0.0)
                y0 = self.ys[j] - (half if j == 0 else 0.0)
                y1 = self.ys[j + 1] + (half if j == spec.bays_y - 1 else 0.0)
                label = f"{self.letters[j]}-{self.letters[j + 1]}/{self.numbers[i]}-{self.numbers[i + 1]}"
                representation = api.geometry.add_slab_representation(
                    self.file, context=self.body, depth=SLAB_DEPTH_M,
                    polyline=[(0.0, 0.0), (x1 - x0, 0.0), (x1 - x0, y1 - y0), (0.0, y1 - y0)])
                slab = self._element("IfcSlab", f"Slab {label}", f"slab/{level_name}/{label}", level, task,
                                     type_key, representation, _translation(x0, y0, z - SLAB_DEPTH_M), predefined)
                area = (x1 - x0) * (y1 - y0)
                net_area = area
                if level > 0 and (i, j) == self.stair_bay:
                    net_area -= self._stair_void(slab, level_name, z)
                self._pset(slab, "Pset_SlabCommon", {"Reference": self.types[type_key].Name,
                                                     "IsExternal": level == top, "LoadBearing": True,
                                                     "PitchAngle": 0.0})
                self._qto(slab, "Qto_SlabBaseQuantities", {
                    "Width": SLAB_DEPTH_M, "Perimeter": 2 * ((x1 - x0) + (y1 - y0)),
                    "GrossArea": area, "NetArea": net_area, "GrossVolume": area * SLAB_DEPTH_M,
                    "NetVolume": net_area * SLAB_DEPTH_M})

    def _stair_void(self, slab, level_name: str, z: float) -> float:
        """Cut the stair well through ``slab``; returns the void's plan area (m2)."""
        api, s = self.api, self.stair
        margin = 0.05   # the void box overshoots the slab faces so the cut is clean
        width, length = s.void_x1 - s.void_x0, s.void_y1 - s.void_y0
        opening = api.root.create_entity(self.file, ifc_class="IfcOpeningElement", name="Stair void",
                                         predefined_type="OPENING")
        self._key(opening, f"opening/{level_name}/stair")
        api.geometry.assign_representation(
            self.file, product=opening, representation=self._box(length, SLAB_DEPTH_M + 2 * margin, width))
        api.feature.add_feature(self.file, feature=opening, element=slab)
        matrix = np.eye(4)    # local x along +y, local y along -x: the box spans void_x0..void_x1
        matrix[:3, 0] = (0.0, 1.0, 0.0)
        matrix[:3, 1] = (-1.0, 0.0, 0.0)
        matrix[:3, 3] = (s.void_x1, s.void_y0, z - SLAB_DEPTH_M - margin)
        api.geometry.edit_object_placement(self.file, product=opening, matrix=matrix)
        self._qto(opening, "Qto_OpeningElementBaseQuantities",
                  {"Width": width, "Height": length, "Depth": SLAB_DEPTH_M, "Area": width * length,
                   "Volume": width * length * SLAB_DEPTH_M})
        return width * length

    def _slab_edges(self, level: int, level_name: str, z: float, roof: bool) -> None:
        api = self.api
        half = COLUMN_SIZE_M / 2
        level_edges = []
        for edge in self.edges:
            start, end = edge.stations[edge.bay], edge.stations[edge.bay + 1]
            if not roof:      # between column faces: the columns above carry on the outline
                start, end = start + half, end - half
            elif edge.side in ("S", "N"):   # no columns above the roof: S and N edges own the corners
                start = 0.0 if edge.bay == 0 else start
                end = end + half if edge.last else end
            else:
                start = EDGE_UPSTAND_WIDTH_M if edge.bay == 0 else start
                end = end + half - EDGE_UPSTAND_WIDTH_M if edge.last else end
            length = end - start
            representation = api.geometry.add_profile_representation(
                self.file, context=self.body, profile=self.profiles["edge"], depth=length, cardinal_point=5,
                placement_zx_axes=((1.0, 0.0, 0.0), (0.0, 1.0, 0.0)))
            matrix = edge.frame(start, z + EDGE_UPSTAND_HEIGHT_M / 2)
            matrix[:3, 3] += np.array([*edge.inward, 0.0]) * (EDGE_UPSTAND_WIDTH_M / 2)
            element = self._element("IfcBeam", f"Slab edge {edge.label}", f"edge/{level_name}/{edge.label}",
                                    level, "beams and slab", "edge", representation, matrix, "SlabEdge")
            self._qto(element, "Qto_BeamBaseQuantities", {
                "Length": length, "CrossSectionArea": EDGE_UPSTAND_WIDTH_M * EDGE_UPSTAND_HEIGHT_M,
                "NetVolume": EDGE_UPSTAND_WIDTH_M * EDGE_UPSTAND_HEIGHT_M * length})
            level_edges.append((edge, element, start, end))
        # Leave a seeded few edges on every floor open: the hazard the vision module looks for.
        open_count = max(1, round(UNGUARDED_FRACTION * len(level_edges)))
        unguarded = set(self.rng.sample(range(len(level_edges)), open_count))
        for index, (edge, element, start, end) in enumerate(level_edges):
            guarded = index not in unguarded
            self._pset(element, "Pset_BeamCommon", {"Reference": "RC slab-edge upstand 100x180",
                                                    "IsExternal": True, "LoadBearing": False})
            self._pset(element, "Sitetwin_EdgeProtection", {"IsGuarded": guarded, "FallHeight": z,
                                                            "Level": level_name})
            if guarded:
                self.pending_rails.append((level, level_name, z, edge, element, start, end))
            else:
                self.unguarded.append(element)

    # ----------------------------------------------------------------- stairs
    def _stairs(self) -> None:
        s = self.stair
        flights_per_storey = s.risers // 2
        for level in range(len(self.levels) - 1):
            level_name, z = self.levels[level]
            items = [
                self._flight(s.band_a_x0, 0.0, 0.0, +1, foot=level > 0),
                self._flight(s.band_b_x0 + STAIR_FLIGHT_WIDTH_M, s.run_m, flights_per_storey * s.riser_m, -1,
                             foot=True),
            ]
            landing = self.shape.rectangle(size=(s.band_b_x0 + STAIR_FLIGHT_WIDTH_M - s.band_a_x0,
                                                 STAIR_FLIGHT_WIDTH_M))
            items.append(self.shape.extrude(
                landing, magnitude=SLAB_DEPTH_M,
                position=(s.band_a_x0, s.run_m, flights_per_storey * s.riser_m - SLAB_DEPTH_M)))
            representation = self.shape.get_representation(self.body, items)
            upper = self.levels[level + 1][0]
            stair = self._element("IfcStair", f"Stair {level_name} to {upper}", f"stair/{level_name}", level,
                                  "stairs", "stair", representation, _translation(0.0, s.void_y0, z),
                                  "HALF_TURN_STAIR")
            self._pset(stair, "Pset_StairCommon", {
                "Reference": "RC half-turn stair", "NumberOfRiser": s.risers, "NumberOfTreads": s.risers - 2,
                "RiserHeight": s.riser_m, "TreadLength": STAIR_GOING_M, "IsExternal": False,
                "LoadBearing": True})
            self._qto(stair, "Qto_StairFlightBaseQuantities", {"Length": 2 * s.run_m})

    def _flight(self, x0: float, y0: float, z0: float, sense: int, foot: bool):
        """One flight, in the stair's frame: rises along +y (sense 1) or -y (sense -1) from (x0, y0, z0).

        The side profile is drawn in (run, rise) and extruded across the flight's width; a flight
        that lands on a slab edge gets a foot reaching down into the slab void.
        """
        s = self.stair
        n, r, g = s.risers // 2, s.riser_m, STAIR_GOING_M
        drop = r + STAIR_WAIST_M / math.cos(math.atan2(r, g))   # nosing line to soffit, vertically
        end = (n - 1) * g
        points = [(0.0, r - drop) if foot else (0.0, 0.0), (0.0, r)]
        for step in range(1, n):
            points += [(step * g, step * r), (step * g, (step + 1) * r)]
        points.append((end, n * r - drop))
        if not foot:   # the soffit meets the floor
            points.append(((drop - r) * g / r, 0.0))
        # (run, rise) -> local frame: run along +/-y, rise along z, extruded across x
        profile = self.shape.profile(self.shape.polyline(points, closed=True))
        if sense > 0:
            return self.shape.extrude(profile, magnitude=STAIR_FLIGHT_WIDTH_M, position=(x0, y0, z0),
                                      position_z_axis=(1.0, 0.0, 0.0), position_x_axis=(0.0, 1.0, 0.0))
        return self.shape.extrude(profile, magnitude=STAIR_FLIGHT_WIDTH_M, position=(x0, y0, z0),
                                  position_z_axis=(-1.0, 0.0, 0.0), position_x_axis=(0.0, -1.0, 0.0))

    # ----------------------------------------------------------------- facade
    def _facade(self) -> None:
        spec = self.spec
        half = COLUMN_SIZE_M / 2
        wall_height = spec.storey_height_m - SLAB_DEPTH_M - BEAM_DOWNSTAND_M
        head = min(WINDOW_HEAD_M, wall_height - 0.2)
        window_height = min(1.5, head - 0.6)
        entrance_edge = next(e for e in self.edges if e.side == "S" and e.bay == spec.bays_x // 2)
        stair_door_edge = next(e for e in self.edges if e.side == "N" and e.bay == spec.bays_x - 1)
        for level in range(len(self.levels) - 1):
            level_name, z = self.levels[level]
            for edge in self.edges:
                start, end = edge.stations[edge.bay] + half, edge.stations[edge.bay + 1] - half
                length = end - start
                matrix = edge.frame(start, z)
                matrix[:3, 3] += np.array([*edge.inward, 0.0]) * WALL_SETBACK_M
                wall = self._element("IfcWall", f"Wall {edge.label}", f"wall/{level_name}/{edge.label}", level,
                                     "walls", "wall", self._box(length, wall_height, WALL_THICKNESS_M), matrix,
                                     "SOLIDWALL")
                self._pset(wall, "Pset_WallCommon", {"Reference": "AAC block infill wall 200", "IsExternal": True,
                                                     "LoadBearing": False, "ExtendToStructure": True})
                if level == 0 and edge in (entrance_edge, stair_door_edge):
                    kind = "entrance" if edge is entrance_edge else "door"
                    width = ENTRANCE_WIDTH_M if kind == "entrance" else DOOR_WIDTH_M
                    height, sill = min(2.4 if kind == "entrance" else 2.1, wall_height - 0.2), 0.0
                else:
                    kind, width, height = "window", min(WINDOW_WIDTH_M, length / 2), window_height
                    sill = head - window_height
                offset = (length - width) / 2
                self._fill(wall, kind, level, level_name, edge, matrix @ _translation(offset, 0.0, sill),
                           width, height)
                opening_area = width * height
                self._qto(wall, "Qto_WallBaseQuantities", {
                    "Length": length, "Width": WALL_THICKNESS_M, "Height": wall_height,
                    "GrossFootprintArea": length * WALL_THICKNESS_M, "NetFootprintArea": length * WALL_THICKNESS_M,
                    "GrossSideArea": length * wall_height, "NetSideArea": length * wall_height - opening_area,
                    "GrossVolume": length * wall_height * WALL_THICKNESS_M,
                    "NetVolume": (length * wall_height - opening_area) * WALL_THICKNESS_M})

    def _fill(self, wall, kind: str, level: int, level_name: str, edge: _Edge, matrix: np.ndarray,
              width: float, height: float) -> None:
        """Cut an opening through ``wall`` at ``matrix`` (its lower outer corner) and put a window or door in it."""
        api, f = self.api, self.file
        margin = 0.05
        opening = api.root.create_entity(f, ifc_class="IfcOpeningElement", name=f"Opening {edge.label}",
                                         predefined_type="OPENING")
        self._key(opening, f"opening/{level_name}/{edge.label}")
        api.geometry.assign_representation(f, product=opening, representation=self._box(
            width, height, WALL_THICKNESS_M + 2 * margin, offset_m=-margin))
        api.feature.add_feature(f, feature=opening, element=wall)
        api.geometry.edit_object_placement(f, product=opening, matrix=matrix)
        self._qto(opening, "Qto_OpeningElementBaseQuantities", {
            "Width": width, "Height": height, "Depth": WALL_THICKNESS_M, "Area": width * height,
            "Volume": width * height * WALL_THICKNESS_M})
        if kind == "window":
            # identical windows share their type's geometry (IfcMappedItem), mapped by assign_type
            type_key, representation = self._window_type(width, height), None
            ifc_class, name, pset = "IfcWindow", f"Window {edge.label}", "Pset_WindowCommon"
        else:
            type_key = kind
            representation = api.geometry.add_door_representation(
                f, context=self.body, overall_height=height, overall_width=width,
                operation_type=self.types[kind].OperationType,
                lining_properties={"LiningDepth": WALL_THICKNESS_M, "LiningThickness": 0.05, "LiningOffset": 0.0,
                                   "CasingDepth": 0.0, "CasingThickness": 0.0, "ThresholdDepth": 0.0,
                                   "ThresholdThickness": 0.0})
            label = "Entrance door" if kind == "entrance" else "Door"
            ifc_class, name, pset = "IfcDoor", f"{label} {edge.label}", "Pset_DoorCommon"
        element = api.root.create_entity(f, ifc_class=ifc_class, name=name)
        self._key(element, f"{kind}/{level_name}/{edge.label}")
        api.feature.add_filling(f, opening=opening, element=element)
        api.spatial.assign_container(f, products=[element], relating_structure=self.storeys[level])
        if representation is not None:
            api.geometry.assign_representation(f, product=element, representation=representation)
        api.geometry.edit_object_placement(f, product=element, matrix=matrix)
        if kind == "window":
            self._edit(element, OverallWidth=width, OverallHeight=height, PartitioningType="DOUBLE_PANEL_VERTICAL")
        else:
            self._edit(element, OverallWidth=width, OverallHeight=height,
                       OperationType=self.types[kind].OperationType)
        self.outputs.setdefault((level, "facade"), []).append(element)
        self.by_type.setdefault(type_key, []).append(element)
        self.physical.append(element)
        self._pset(element, pset, {"Reference": self.types[type_key].Name, "IsExternal": True})
        quantities = "Qto_WindowBaseQuantities" if kind == "window" else "Qto_DoorBaseQuantities"
        self._qto(element, quantities, {"Width": width, "Height": height, "Area": width * height})

    def _window_type(self, width: float, height: float) -> str:
        """The key of the IfcWindowType for this size, made on first use with its geometry as a representation map."""
        key = f"window {width * 1000:.0f}x{height * 1000:.0f}"
        if key not in self.types:
            api, f = self.api, self.file
            window_type = api.root.create_entity(
                f, ifc_class="IfcWindowType", predefined_type="WINDOW",
                name=f"Timber window {width * 1000:.0f}x{height * 1000:.0f}, double glazed")
            self._key(window_type, f"type/{key}")
            self._edit(window_type, PartitioningType="DOUBLE_PANEL_VERTICAL")
            api.material.assign_material(f, products=[window_type], type="IfcMaterialConstituentSet",
                                         material=self.window_material)
            representation = api.geometry.add_window_representation(
                f, context=self.body, overall_height=height, overall_width=width,
                partition_type="DOUBLE_PANEL_VERTICAL",
                lining_properties={"LiningDepth": 0.1, "LiningThickness": 0.06, "LiningOffset": 0.05},
                panel_properties=[{"FrameDepth": 0.06, "FrameThickness": 0.05}] * 2)
            api.geometry.assign_representation(f, product=window_type, representation=representation)
            self.types[key] = window_type
        return key

    # ----------------------------------------------------------------- guardrails
    def _guardrails(self) -> None:
        s = self.stair
        for level, level_name, z, edge, slab_edge, start, end in self.pending_rails:
            # on the upstand's centre line, posts standing on the upstand
            matrix = edge.frame(start, z)
            matrix[:3, 3] += np.array([*edge.inward, 0.0]) * (EDGE_UPSTAND_WIDTH_M / 2)
            inset = GUARDRAIL_TUBE_M / 2 + 0.01     # end posts clear of the columns and the outline
            rail = self._railing([(inset, 0.0), (end - start - inset, 0.0)], EDGE_UPSTAND_HEIGHT_M,
                                 toe_board=False)
            railing = self._element("IfcRailing", f"Guardrail {edge.label}", f"guardrail/{level_name}/{edge.label}",
                                    level, "guardrails", "guardrail", rail, matrix, "GUARDRAIL")
            self.api.geometry.connect_element(self.file, relating_element=slab_edge, related_element=railing,
                                              description="guards")
            self._railing_data(railing, end - start)
        self.pending_rails = []
        setback = GUARDRAIL_VOID_SETBACK_M
        for level in range(1, len(self.levels)):
            level_name, z = self.levels[level]
            # round three sides of the stair void; the fourth is where the flights arrive
            path = [(s.void_x0 - setback, s.void_y0), (s.void_x0 - setback, s.void_y1 + setback),
                    (s.void_x1 + setback, s.void_y1 + setback), (s.void_x1 + setback, s.void_y0)]
            rail = self._railing(path, 0.0, toe_board=True)
            railing = self._element("IfcRailing", "Guardrail stair void", f"guardrail/{level_name}/stair-void",
                                    level, "guardrails", "guardrail", rail, _translation(0.0, 0.0, z), "GUARDRAIL")
            length = sum(math.dist(a, b) for a, b in zip(path, path[1:]))
            self._railing_data(railing, length)

    def _railing_data(self, railing, length: float) -> None:
        self._pset(railing, "Pset_RailingCommon", {"Reference": self.types["guardrail"].Name,
                                                   "Height": GUARDRAIL_TOP_M, "IsExternal": True})
        self._qto(railing, "Qto_RailingBaseQuantities", {"Length": length})

    def _railing(self, path: list[tuple[float, float]], base_m: float, toe_board: bool):
        """Posts, mid rail and top rail (and a toe board) along a 2D polyline, in the railing's frame.

        Heights are measured from the floor (local z = 0); posts start at ``base_m`` (the top of
        the upstand they stand on).
        """
        sb, radius = self.shape, GUARDRAIL_TUBE_M / 2
        items = []
        posts = [path[0]]
        for a, b in zip(path, path[1:]):
            a_, b_ = np.array(a), np.array(b)
            length = float(np.linalg.norm(b_ - a_))
            direction = (b_ - a_) / length
            count = max(1, math.ceil(length / GUARDRAIL_POST_SPACING_M))
            posts += [tuple(a_ + direction * length * k / count) for k in range(1, count + 1)]
            normal = (-direction[1], direction[0], 0.0)
            for height in (GUARDRAIL_MID_M, GUARDRAIL_TOP_M):
                items.append(sb.extrude(sb.circle(radius=radius), magnitude=length,
                                        position=(a_[0], a_[1], height - radius),
                                        position_z_axis=(direction[0], direction[1], 0.0),
                                        position_x_axis=normal))
            if toe_board:
                board = sb.rectangle(size=(length, 0.02), position=(0.0, -0.01))
                items.append(sb.extrude(board, magnitude=EDGE_UPSTAND_HEIGHT_M, position=(a_[0], a_[1], 0.0),
                                        position_x_axis=(direction[0], direction[1], 0.0)))
        for x, y in posts:
            items.append(sb.extrude(sb.circle(radius=radius), magnitude=GUARDRAIL_TOP_M - base_m,
                                    position=(x, y, base_m)))
        return sb.get_representation(self.body, items)

    # ----------------------------------------------------------------- semantics
    def _assign_types(self) -> None:
        for type_key, elements in self.by_type.items():
            # One call per element: assign_type walks its input as a Python set, so a batch would
            # create the mapped representations and material usages in a different order each run.
            # IFC4: an occurrence's PredefinedType is only used when no type gives one, so
            # assign_type clears it; the slab edges keep ObjectType "SlabEdge" (still valid)
            # so that readers which do not follow the type can find them.
            for element in elements:
                self.api.type.assign_type(self.file, related_objects=[element], relating_type=self.types[type_key])
        for element in self.by_type["edge"]:
            element.ObjectType = "SlabEdge"

    def _schedule(self) -> None:
        import ifcopenshell.util.date as ud

        api, f, spec = self.api, self.file, self.spec
        start = datetime.datetime.combine(spec.start_date, datetime.time(9))
        plan = api.sequence.add_work_plan(f, name="Construction")
        self._key(plan, "work-plan")
        api.sequence.edit_work_plan(f, work_plan=plan, attributes={"CreationDate": start, "StartTime": start})
        schedule = api.sequence.add_work_schedule(f, name="Structure and envelope", work_plan=plan,
                                                  predefined_type="PLANNED")
        self._key(schedule, "work-schedule")
        api.sequence.edit_work_schedule(f, work_schedule=schedule,
                                        attributes={"CreationDate": start, "StartTime": start})
        calendar = api.sequence.add_work_calendar(f, name="Site calendar, Monday to Saturday")
        self._key(calendar, "calendar")
        work_time = api.sequence.add_work_time(f, work_calendar=calendar, time_type="WorkingTimes")
        pattern = api.sequence.assign_recurrence_pattern(f, parent=work_time, recurrence_type="WEEKLY")
        api.sequence.edit_recurrence_pattern(f, recurrence_pattern=pattern,
                                             attributes={"WeekdayComponent": [1, 2, 3, 4, 5, 6]})

        # working days per task, growing with the number of elements the trade builds
        def days(trade: str, level: int) -> int:
            count = len(self.outputs.get((level, trade), []))
            return {"ground slab": 3 + math.ceil(count / 3), "columns": 2 + math.ceil(count / 8),
                    "beams and slab": 4 + math.ceil(count / 12), "guardrails": 1 + math.ceil(count / 12),
                    "walls": 3 + math.ceil(count / 4), "stairs": 4, "facade": 2 + math.ceil(count / 8)}[trade]

        titles = {"facade": "facade (windows/doors)"}
        codes = {"ground slab": "GS", "columns": "COL", "beams and slab": "BS", "guardrails": "GRD",
                 "walls": "WAL", "stairs": "STR", "facade": "FAC"}
        installs = {"guardrails", "facade"}
        tasks: dict[tuple[int, str], ifcopenshell.entity_instance] = {}
        summaries = []
        order = []      # topological: every task after its predecessors
        top = len(self.levels) - 1
        for level, (level_name, _) in enumerate(self.levels):
            summary = api.sequence.add_task(f, work_schedule=schedule, name=level_name,
                                            identification=f"L{level}" if level < top else "RF",
                                            predefined_type="CONSTRUCTION")
            self._key(summary, f"task/{level_name}")
            api.control.assign_control(f, relating_control=calendar, related_objects=[summary])
            summaries.append(summary)
            trades = (["ground slab"] if level == 0 else ["beams and slab", "guardrails"])
            if level < top:
                trades += ["columns", "walls", "stairs", "facade"]
            for trade in trades:
                if not self.outputs.get((level, trade)):
                    continue
                task = api.sequence.add_task(
                    f, parent_task=summary, name=f"{level_name} {titles.get(trade, trade)}", description=trade,
                    predefined_type="INSTALLATION" if trade in installs else "CONSTRUCTION")
                # add_task numbers nested tasks itself ("L1.3"); a trade code reads better in 4D views
                api.sequence.edit_task(f, task=task,
                                       attributes={"Identification": f"{summary.Identification}-{codes[trade]}"})
                self._key(task, f"task/{level_name}/{trade}")
                task_time = api.sequence.add_task_time(f, task=task)
                api.sequence.edit_task_time(f, task_time=task_time, attributes={
                    "DurationType": "WORKTIME", "ScheduleDuration": datetime.timedelta(days=days(trade, level))})
                for element in self.outputs[(level, trade)]:
                    api.sequence.assign_product(f, relating_product=element, related_object=task)
                tasks[(level, trade)] = task

        def after(successor, *predecessors):
            order.append((successor, [tasks[p] for p in predecessors if p in tasks]))

        # Floor cycle: slab -> edge protection -> columns -> next slab; walls and stairs once the
        # slab above is cast, the facade once the walls stand.
        for level in range(top + 1):
            if level == 0:
                floor = (0, "ground slab")
            else:
                floor = (level, "beams and slab")
                after((level, "beams and slab"), (level - 1, "columns"))
                after((level, "guardrails"), floor)
            if level < top:
                after((level, "columns"), floor, (level, "guardrails"))
                after((level, "walls"), (level + 1, "beams and slab"))
                after((level, "stairs"), (level + 1, "beams and slab"))
                after((level, "facade"), (level, "walls"))
        first = tasks[(0, "ground slab")]
        api.sequence.edit_task_time(f, task_time=first.TaskTime, attributes={"ScheduleStart": start})
        for successor_key, predecessors in order:
            for predecessor in predecessors:
                api.sequence.assign_sequence(f, relating_process=predecessor, related_process=tasks[successor_key],
                                             sequence_type="FINISH_START")
        for level, summary in enumerate(summaries):
            children = [t for (lv, _), t in tasks.items() if lv == level]
            starts = [ud.ifc2datetime(t.TaskTime.ScheduleStart) for t in children]
            finishes = [ud.ifc2datetime(t.TaskTime.ScheduleFinish) for t in children]
            summary_time = api.sequence.add_task_time(f, task=summary)
            api.sequence.edit_task_time(f, task_time=summary_time, attributes={
                "DurationType": "WORKTIME", "ScheduleStart": min(starts), "ScheduleFinish": max(finishes)})

    def _georeference(self) -> None:
        api = self.api
        api.georeference.add_georeferencing(self.file, ifc_class="IfcMapConversion", name=MAP_CRS)
        angle = math.radians(MAP_ROTATION_DEG)
        api.georeference.edit_georeferencing(
            self.file,
            projected_crs={"Name": MAP_CRS, "Description": "CGCS2000 / 3-degree Gauss-Kruger CM 114E",
                           "GeodeticDatum": "CGCS2000", "VerticalDatum": "1985 National Height Datum",
                           "MapProjection": "Gauss-Kruger", "MapZone": "3-degree CM 114E",
                           "MapUnit": self.metre},
            coordinate_operation={"Eastings": MAP_EASTINGS_M, "Northings": MAP_NORTHINGS_M,
                                  "OrthogonalHeight": MAP_HEIGHT_M, "XAxisAbscissa": math.cos(angle),
                                  "XAxisOrdinate": math.sin(angle), "Scale": MAP_SCALE})
        # True north, in the model frame: grid north turned west by the convergence, then
        # turned into the model frame by the map rotation.
        north = math.radians(90.0 + MERIDIAN_CONVERGENCE_DEG - MAP_ROTATION_DEG)
        api.georeference.edit_true_north(self.file, true_north=(math.cos(north), math.sin(north)))

    def _canonical_sets(self) -> None:
        """Sort every SET-valued attribute of relationships by entity id.

        ifcopenshell.api fills these from Python sets of entity instances, whose hashes differ
        from one file to the next in a process, so two builds would list the same members in
        different orders. IFC gives SETs no order, so sorting changes nothing but the bytes.
        """
        import ifcopenshell.ifcopenshell_wrapper as wrapper

        schema = wrapper.schema_by_name(self.file.schema)
        set_attributes: dict[str, list[int]] = {}
        for holder in (*self.file.by_type("IfcRelationship"), *self.file.by_type("IfcUnitAssignment")):
            ifc_class = holder.is_a()
            if ifc_class not in set_attributes:
                declaration = schema.declaration_by_name(ifc_class)
                assert isinstance(declaration, wrapper.entity)      # relationships and unit sets are entities
                set_attributes[ifc_class] = [
                    index for index, attribute in enumerate(declaration.all_attributes())
                    if isinstance(kind := attribute.type_of_attribute(), wrapper.aggregation_type)
                    and kind.type_of_aggregation_string() == "set"]
            for index in set_attributes[ifc_class]:
                members = holder[index]
                if members and all(hasattr(m, "id") for m in members):
                    ordered = sorted(members, key=lambda m: m.id())
                    if list(members) != ordered:
                        holder[index] = ordered

    def _global_ids(self) -> None:
        """Replace the random GlobalIds ifcopenshell.api handed out with ones derived from role keys."""
        roots = sorted(self.file.by_type("IfcRoot"), key=lambda e: e.id())
        spec_token = repr(self.spec)
        for n, root in enumerate(roots):
            key = self.keys.get(root.id()) or f"{spec_token}/{root.is_a()}/{n}"
            root.GlobalId = self.guid.compress(uuid.uuid5(_GUID_NAMESPACE, key).hex)

    def info(self, path: Path) -> DemoBuildingInfo:
        counts: dict[str, int] = {}
        for product in self.file.by_type("IfcProduct"):
            if product.Representation is not None:
                counts[product.is_a()] = counts.get(product.is_a(), 0) + 1
        return DemoBuildingInfo(
            path=path, element_count=sum(counts.values()), storey_names=tuple(n for n, _ in self.levels),
            task_count=len(self.file.by_type("IfcTask")),
            unguarded_edges=tuple(e.GlobalId for e in self.unguarded), physical_count=len(self.physical),
            counts=dict(sorted(counts.items())))


def _dms(degrees: float) -> tuple[int, int, int, int]:
    """Decimal degrees as IfcCompoundPlaneAngleMeasure (degrees, minutes, seconds, millionths)."""
    sign = -1 if degrees < 0 else 1
    micro = round(abs(degrees) * 3600 * 1_000_000)
    d, rest = divmod(micro, 3600 * 1_000_000)
    m, rest = divmod(rest, 60 * 1_000_000)
    s, us = divmod(rest, 1_000_000)
    return (sign * d, sign * m, sign * s, sign * us)
