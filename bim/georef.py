"""Read a model's georeferencing (IfcMapConversion, IfcRigidOperation, IFC2X3 ePSet_MapConversion) and check it.

The check compares the map position against the CRS's area of use and against IfcSite's
RefLatitude/RefLongitude (with pyproj, offline). A conversion that lands thousands of
kilometres away is reported as broken; sitetwin then keeps working in the local frame.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from sitetwin.data.errors import Note, message_text
from sitetwin.data.i18n import N_

# Farther than this from IfcSite's reference point, the two disagree: one of them is wrong.
MAX_SITE_DISAGREEMENT_M = 10_000.0


@dataclass(frozen=True)
class Georeference:
    """How the model's world frame maps to a projected CRS (all lengths in metres)."""

    source: str                  # IfcMapConversion | IfcRigidOperation | ePSet_MapConversion
    crs_name: str | None         # e.g. EPSG:4547
    eastings_m: float
    northings_m: float
    orthogonal_height_m: float
    x_axis_abscissa: float = 1.0
    x_axis_ordinate: float = 0.0
    scale: float = 1.0           # model metres -> map metres
    latitude: float | None = None    # of the model origin, when it could be computed
    longitude: float | None = None
    valid: bool = True
    problem: str | None = None   # a data.errors.Note when read from the file (English as a str)

    @property
    def rotation_rad(self) -> float:
        """Angle of the model's x axis from map east, counter-clockwise."""
        return math.atan2(self.x_axis_ordinate, self.x_axis_abscissa)

    def T_map_from_world(self) -> np.ndarray:
        """4x4 transform from the model's world frame (m) to map coordinates (m)."""
        c, s = math.cos(self.rotation_rad) * self.scale, math.sin(self.rotation_rad) * self.scale
        return np.array([[c, -s, 0, self.eastings_m], [s, c, 0, self.northings_m],
                         [0, 0, 1, self.orthogonal_height_m], [0, 0, 0, 1]], dtype=np.float64)

    def T_world_from_map(self) -> np.ndarray:
        """4x4 transform from map coordinates (m) back to the model's world frame (m)."""
        return np.linalg.inv(self.T_map_from_world())

    def to_dict(self) -> dict:
        """The record stored in ``models.georef`` (the problem in English)."""
        out = asdict(self)
        if out["problem"] is not None:
            out["problem"] = message_text(out["problem"])
        return out

    @classmethod
    def from_dict(cls, data: dict) -> Georeference:
        """The record ``to_dict`` wrote (as stored in ``models.georef``); unknown keys are ignored."""
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in names})


def read_georeference(model, length_unit_m: float) -> Georeference | None:
    """The model's georeferencing, checked, or ``None`` when it has none."""
    raw = _read_raw(model, length_unit_m)
    if raw is None:
        return None
    return _checked(raw, _site_reference(model))


def _read_raw(model, unit_m: float) -> Georeference | None:
    schema = model.schema
    if schema != "IFC2X3":
        for conv in model.by_type("IfcMapConversion"):
            crs = conv.TargetCRS
            map_unit_m = _map_unit_m(crs, unit_m)
            # An omitted Scale means "units only": model metres map to map metres 1:1.
            scale_m = 1.0 if conv.Scale is None else float(conv.Scale) * map_unit_m / unit_m
            return Georeference(
                source="IfcMapConversion", crs_name=getattr(crs, "Name", None),
                eastings_m=float(conv.Eastings) * map_unit_m, northings_m=float(conv.Northings) * map_unit_m,
                orthogonal_height_m=float(conv.OrthogonalHeight) * map_unit_m,
                x_axis_abscissa=float(conv.XAxisAbscissa if conv.XAxisAbscissa is not None else 1.0),
                x_axis_ordinate=float(conv.XAxisOrdinate if conv.XAxisOrdinate is not None else 0.0),
                scale=scale_m)
        if schema.startswith("IFC4X3"):
            for op in model.by_type("IfcRigidOperation"):
                crs = op.TargetCRS
                map_unit_m = _map_unit_m(crs, unit_m)
                return Georeference(
                    source="IfcRigidOperation", crs_name=getattr(crs, "Name", None),
                    eastings_m=float(op.FirstCoordinate.wrappedValue) * map_unit_m,
                    northings_m=float(op.SecondCoordinate.wrappedValue) * map_unit_m,
                    orthogonal_height_m=float(op.Height or 0.0) * map_unit_m)
        return None
    # IFC2X3 convention: the IFC4 entities written as property sets on IfcSite or IfcProject
    import ifcopenshell.util.element as ue

    for holder in list(model.by_type("IfcSite")) + list(model.by_type("IfcProject")):
        psets = ue.get_psets(holder)
        conv = psets.get("ePSet_MapConversion")
        if not conv or conv.get("Eastings") is None:
            continue
        crs = psets.get("ePSet_ProjectedCRS", {})
        return Georeference(
            source="ePSet_MapConversion", crs_name=crs.get("Name"),
            eastings_m=float(conv["Eastings"]) * unit_m, northings_m=float(conv["Northings"]) * unit_m,
            orthogonal_height_m=float(conv.get("OrthogonalHeight") or 0.0) * unit_m,
            x_axis_abscissa=float(conv.get("XAxisAbscissa") or 1.0),
            x_axis_ordinate=float(conv.get("XAxisOrdinate") or 0.0),
            scale=float(conv.get("Scale") or 1.0))
    return None


def _map_unit_m(crs, default_m: float) -> float:
    unit = getattr(crs, "MapUnit", None)
    if unit is None:
        return default_m
    prefixes = {None: 1.0, "MILLI": 1e-3, "CENTI": 1e-2, "DECI": 1e-1, "KILO": 1e3}
    if unit.is_a("IfcSIUnit"):
        return prefixes.get(unit.Prefix, 1.0)
    factor = getattr(getattr(unit, "ConversionFactor", None), "ValueComponent", None)
    return float(factor.wrappedValue) if factor is not None else default_m


def _site_reference(model) -> tuple[float, float] | None:
    for site in model.by_type("IfcSite"):
        lat, lon = site.RefLatitude, site.RefLongitude
        if lat and lon:
            return _dms(lat), _dms(lon)
    return None


def _dms(value) -> float:
    parts = list(value) + [0] * (4 - len(value))
    sign = -1.0 if any(p < 0 for p in parts[:4]) else 1.0
    d, m, s, us = (abs(p) for p in parts[:4])
    return sign * (d + m / 60 + (s + us / 1e6) / 3600)


def _checked(geo: Georeference, site_latlon: tuple[float, float] | None) -> Georeference:
    values = (geo.eastings_m, geo.northings_m, geo.orthogonal_height_m, geo.scale)
    if not all(math.isfinite(v) for v in values) or geo.scale <= 0:
        return _broken(geo, Note(N_("map conversion has non-finite or non-positive values")))
    if math.hypot(geo.x_axis_abscissa, geo.x_axis_ordinate) == 0:
        return _broken(geo, Note(N_("map conversion x axis is a zero vector")))
    crs = _crs(geo.crs_name)
    if crs is None:
        if max(abs(geo.eastings_m), abs(geo.northings_m)) > 1e8:
            return _broken(geo, Note(N_("eastings/northings {eastings:.0f}/{northings:.0f} m are beyond any "
                                        "projected CRS"), eastings=geo.eastings_m, northings=geo.northings_m))
        return geo
    from pyproj import Transformer

    to_geo = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    # pyproj takes coordinates in the CRS's own axis unit (US survey feet for EPSG:2240)
    axis_m = crs.axis_info[0].unit_conversion_factor if crs.axis_info else 1.0
    lon, lat = to_geo.transform(geo.eastings_m / axis_m, geo.northings_m / axis_m)
    if not (math.isfinite(lat) and math.isfinite(lon)):
        return _broken(geo, Note(N_("eastings/northings {eastings:.0f}/{northings:.0f} m lie outside {crs}"),
                                 eastings=geo.eastings_m, northings=geo.northings_m, crs=geo.crs_name))
    located = Georeference(**{**asdict(geo), "latitude": lat, "longitude": lon})
    area = crs.area_of_use
    if area is not None:
        margin = 2.0  # degrees: projections stay usable somewhat beyond their nominal area
        if not (area.south - margin <= lat <= area.north + margin and area.west - margin <= lon <= area.east + margin):
            return _broken(located, Note(N_("map conversion puts the model at lat {lat:.3f}, lon {lon:.3f}, outside "
                                            "the area of use of {crs} ({area})"),
                                         lat=lat, lon=lon, crs=geo.crs_name, area=area.name))
    if site_latlon is not None:
        dist = _haversine_m(lat, lon, *site_latlon)
        if dist > MAX_SITE_DISAGREEMENT_M:
            return _broken(located, Note(N_("map conversion puts the model {km:.0f} km from IfcSite's "
                                            "RefLatitude/RefLongitude ({site_lat:.4f}, {site_lon:.4f})"),
                                         km=dist / 1000, site_lat=site_latlon[0], site_lon=site_latlon[1]))
    return located


def _crs(name: str | None):
    if not name:
        return None
    try:
        from pyproj import CRS

        return CRS.from_user_input(name)
    except Exception:
        return None


def _broken(geo: Georeference, problem: Note) -> Georeference:
    return Georeference(**{**asdict(geo), "valid": False, "problem": problem})


def _haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    r = 6_371_008.8
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(math.sqrt(a))
