"""Tolerances per IFC class, and the settings that turn deviations into a status.

Defaults follow GB 50204-2015 (Code for acceptance of constructional quality of concrete
structures), table 8.3.2, permitted deviations of cast-in-place structures:
axis position 8 mm (walls, columns, beams), verticality 10 mm for a storey up to 6 m
(12 mm above), storey elevation +-10 mm, section size +10/-5 mm, surface flatness 8 mm.
Elements outside that code (guardrails, windows, doors, ...) get looser defaults under
``"*"``. A value of ``None`` means the check is not made for that class.

Civil and municipal parts (IFC4X3 classes) follow CJJ 1-2008 (Technical code for urban road
works: construction and quality acceptance), permitted deviations as its tables give them, with
GB 50092-96 (asphalt pavement construction and acceptance) agreeing for the carriageway:

- ``IfcPavement`` (hot-mix asphalt surface course, CJJ 1 table 8.5.1; GB 50092 table 11.4.4):
  longitudinal elevation +-15 mm, centreline offset 20 mm, 3 m straightedge gap 5 mm (taken as
  flatness: the p95 residual after the shift);
- ``IfcKerb`` (kerb laying, CJJ 1 table 16.11.1): straightness 10 mm on a 20 m line (taken as
  the position check against the design line), top elevation +-10 mm;
- ``IfcCourse`` (base and footway courses, CJJ 1 tables 7.8 and 13.4): elevation +-15 mm,
  centreline offset 20 mm, flatness 10 mm;
- ``IfcEarthworksFill`` / ``IfcEarthworksCut`` (earth subgrade, CJJ 1 table 6.8.1): elevation
  +10 / -20 mm, centreline offset 30 mm, flatness 15 mm.

``IfcGeographicElement`` (planting, terrain), ``IfcSite`` parts (a BricsCAD road's kerbs and
paving are all ``IfcSite``: give them their own entry, or one per part in a tolerance file) and
bridge and rail elements have no code figure here: they take ``"*"``, which is configurable.
Check the figures against the edition and road class of your project; a tolerance file
overrides any of them.

A JSON file can override any of it (``--tolerances T.json``)::

    {"IfcWall": {"position_mm": 10}, "*": {"position_mm": 25},
     "status": {"built_coverage": 0.5}}
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from sitetwin.data.errors import Phrase
from sitetwin.data.i18n import N_
from sitetwin.twin.errors import SurveyError


@dataclass(frozen=True)
class ClassTolerance:
    """Permitted deviations for one IFC class, millimetres (``None``: not checked)."""

    position_mm: float | None = 8.0          # (float) horizontal axis position, |shift_xy|
    elevation_mm: float | None = 10.0        # (float) vertical position, |shift_z|
    elevation_plus_mm: float | None = None   # (float) higher than designed by at most (None: elevation_mm)
    elevation_minus_mm: float | None = None  # (float) lower than designed by at most (None: elevation_mm)
    verticality_mm: float | None = None      # (float) horizontal drift bottom to top, storey <= 6 m
    verticality_tall_mm: float | None = None  # (float) the same for a storey above 6 m
    section_plus_mm: float | None = 10.0     # (float) section larger than designed by at most
    section_minus_mm: float | None = 5.0     # (float) section smaller than designed by at most
    flatness_mm: float | None = 8.0          # (float) noise-corrected p95 of residuals after the shift
    built_coverage: float | None = None      # (float) this class's "built" coverage (None: status default)


_CONCRETE = ClassTolerance()
DEFAULT_TOLERANCES: dict[str, ClassTolerance] = {
    "IfcColumn": replace(_CONCRETE, verticality_mm=10.0, verticality_tall_mm=12.0),
    "IfcWall": replace(_CONCRETE, verticality_mm=10.0, verticality_tall_mm=12.0),
    "IfcBeam": _CONCRETE,
    "IfcSlab": replace(_CONCRETE, position_mm=None),     # a slab's axis is its supports'
    "IfcStair": replace(_CONCRETE, position_mm=10.0, section_plus_mm=None, section_minus_mm=None),
    "IfcFooting": replace(_CONCRETE, position_mm=15.0, section_plus_mm=15.0, section_minus_mm=10.0),
    # thin tubes show few points per patch: any real share of their surface means they stand
    "IfcRailing": ClassTolerance(position_mm=20.0, elevation_mm=20.0, section_plus_mm=None, section_minus_mm=None,
                                 flatness_mm=None, built_coverage=0.05),
    "*": ClassTolerance(position_mm=20.0, elevation_mm=20.0, section_plus_mm=None, section_minus_mm=None,
                        flatness_mm=None),
}
# Civil parts (see the module docstring for the clauses). Their sections are layers seen from one side: no
# section check. Kerbs show narrow strips (the top and the face above the carriageway): a fifth of what the
# stations could see is enough for "built".
_CIVIL = ClassTolerance(section_plus_mm=None, section_minus_mm=None)
CIVIL_TOLERANCES: dict[str, ClassTolerance] = {
    "IfcPavement": replace(_CIVIL, position_mm=20.0, elevation_mm=15.0, flatness_mm=5.0),
    "IfcKerb": replace(_CIVIL, position_mm=10.0, elevation_mm=10.0, flatness_mm=None, built_coverage=0.2),
    "IfcCourse": replace(_CIVIL, position_mm=20.0, elevation_mm=15.0, flatness_mm=10.0),
    "IfcEarthworksFill": replace(_CIVIL, position_mm=30.0, elevation_mm=20.0, elevation_plus_mm=10.0,
                                 elevation_minus_mm=20.0, flatness_mm=15.0),
    "IfcEarthworksCut": replace(_CIVIL, position_mm=30.0, elevation_mm=20.0, elevation_plus_mm=10.0,
                                elevation_minus_mm=20.0, flatness_mm=15.0),
}
DEFAULT_TOLERANCES.update(CIVIL_TOLERANCES)
TOLERANCE_SOURCES: dict[str, str] = {
    **{c: "GB 50204-2015 table 8.3.2" for c in ("IfcColumn", "IfcWall", "IfcBeam", "IfcSlab", "IfcStair",
                                                 "IfcFooting")},
    "IfcPavement": "CJJ 1-2008 table 8.5.1 (GB 50092-96 table 11.4.4)",
    "IfcKerb": "CJJ 1-2008 table 16.11.1",
    "IfcCourse": "CJJ 1-2008 tables 7.8, 13.4",
    "IfcEarthworksFill": "CJJ 1-2008 table 6.8.1",
    "IfcEarthworksCut": "CJJ 1-2008 table 6.8.1",
    "IfcRailing": "sitetwin default (configurable)",
    "*": "sitetwin default (configurable)",
}


def elevation_limit(tol: ClassTolerance, shift_z_mm: float) -> float | None:
    """The permitted vertical deviation (mm) in the direction of ``shift_z_mm`` (+ up), or None (not checked)."""
    side = tol.elevation_plus_mm if shift_z_mm >= 0 else tol.elevation_minus_mm
    return side if side is not None else tol.elevation_mm


@dataclass(frozen=True)
class StatusRules:
    """How points and coverage become built / partial / not built."""

    band_m: float = 0.08              # (float) a point within this of an element counts for it
    built_coverage: float = 0.35      # (float) observed share of the visible surface for "built"
    partial_coverage: float = 0.05    # (float) below this share: "not built"
    profile_height_m: float = 1.0     # (float) walls and columns this tall are also judged by their thirds:
    top_share: float = 0.3            # (float) upper third covered below this share of the lower: "partial"
    profile_classes: tuple = ("IfcWall", "IfcColumn", "IfcMember", "IfcPlate")  # (tuple) built bottom up
    min_points: int = 10              # (int) fewer points than this: "not built" whatever the coverage
    check_points: int = 50            # (int) GB 50204 checks need at least this many points
    edge_margin_m: float = 0.05       # (float) shifts are fitted on points this far inside their faces' outlines
    attribution_margin_m: float = 0.05  # (float) ... and this much nearer their element than any other
    min_visible_m2: float = 0.05      # (float) elements the survey could see less of are judged on points
    coverage_spacing_m: float = 0.2   # (float) surface patches coverage is counted on
    unplanned_voxel_m: float = 0.15   # (float) far points closer than this form one object
    unplanned_min_points: int = 150   # (int) smaller clusters are noise, not objects
    histogram_bin_mm: float = 2.0     # (float) histogram bin width, over [-band, +band]


@dataclass(frozen=True)
class Tolerances:
    """Per-class tolerances plus the status rules; what a survey is judged by."""

    by_class: dict[str, ClassTolerance] = field(default_factory=lambda: dict(DEFAULT_TOLERANCES))
    status: StatusRules = field(default_factory=StatusRules)

    def for_class(self, ifc_class: str | None) -> ClassTolerance:
        return self.by_class.get(ifc_class or "", self.by_class.get("*", ClassTolerance()))

    def to_dict(self) -> dict:
        return {"by_class": {k: asdict(v) for k, v in self.by_class.items()}, "status": asdict(self.status)}


DEFAULT = Tolerances()


def load_tolerances(source: str | Path | dict | None) -> Tolerances:
    """Defaults overridden by a JSON file (or dict): ``{"IfcWall": {...}, "*": {...}, "status": {...}}``."""
    if source is None:
        return DEFAULT
    label: str | Phrase = Phrase(N_("tolerances"))
    if isinstance(source, (str, Path)):
        label = str(source)
        try:
            data = json.loads(Path(source).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SurveyError(N_("{label}: no such tolerance file"), label=label) from None
        except (OSError, ValueError) as exc:
            raise SurveyError(N_("{label}: not a JSON tolerance file ({reason})"), label=label,
                              reason=str(exc)) from None
    else:
        data = source
    if not isinstance(data, dict):
        raise SurveyError(N_("{label}: expected a JSON object keyed by IFC class, got {type}"), label=label,
                          type=type(data).__name__)
    by_class = dict(DEFAULT.by_class)
    status = DEFAULT.status
    known_tol = {f.name for f in fields(ClassTolerance)}
    known_status = {f.name: f.type for f in fields(StatusRules)}
    for key, values in data.items():
        if not isinstance(values, dict):
            raise SurveyError(N_("{label}: {key!r} must map to an object of settings"), label=label, key=key)
        if key == "status":
            for name, value in values.items():
                if name not in known_status:
                    raise SurveyError(N_("{label}: status.{name} is not a setting (settings: {settings})"),
                                      label=label, name=name, settings=", ".join(known_status))
                _check_number(label, f"status.{name}", value, allow_none=False)
            changes: dict[str, Any] = {k: (int(v) if known_status[k] == "int" else float(v))
                                       for k, v in values.items()}
            status = replace(status, **changes)
            if not 0 <= status.partial_coverage <= status.built_coverage <= 1:
                raise SurveyError(N_("{label}: need 0 <= partial_coverage <= built_coverage <= 1"), label=label)
            continue
        if key != "*" and not key.startswith("Ifc"):
            raise SurveyError(N_("{label}: {key!r} is not an IFC class (like IfcWall) nor '*' nor 'status'"),
                              label=label, key=key)
        for name, value in values.items():
            if name not in known_tol:
                raise SurveyError(N_("{label}: {key}.{name} is not a tolerance (tolerances: {tolerances})"),
                                  label=label, key=key, name=name, tolerances=", ".join(known_tol))
            _check_number(label, f"{key}.{name}", value, allow_none=True)
        base = by_class.get(key, by_class["*"])
        by_class[key] = replace(base, **{k: (None if v is None else float(v)) for k, v in values.items()})
    return Tolerances(by_class=by_class, status=status)


def _check_number(label: str | Phrase, name: str, value, *, allow_none: bool) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0 or value != value:
        if allow_none:
            raise SurveyError(N_("{label}: {name} must be a number >= 0 (millimetres for tolerances) or null, got "
                                 "{value!r}"), label=label, name=name, value=value)
        raise SurveyError(N_("{label}: {name} must be a number >= 0 (millimetres for tolerances), got {value!r}"),
                          label=label, name=name, value=value)


# USIBD Level of Accuracy (v3.0): the range the measured uncertainty (2 sigma) falls in, mm.
LOA_BANDS = (("LOA50", 0.0, 1.0), ("LOA40", 1.0, 5.0), ("LOA30", 5.0, 15.0), ("LOA20", 15.0, 50.0),
             ("LOA10", 50.0, float("inf")))


def level_of_accuracy(sigma_mm: float) -> str:
    """The USIBD LOA a survey with 1-sigma uncertainty ``sigma_mm`` supports (judged at 2 sigma)."""
    two_sigma = 2.0 * sigma_mm
    for name, lo, hi in LOA_BANDS:
        if lo <= two_sigma < hi:
            return name
    return "LOA10"
