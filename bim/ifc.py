"""Open IFC files (``.ifc`` and ``.ifczip``) with IfcOpenShell, refusing bad ones with a clear reason.

IfcOpenShell reads a truncated file without complaint and fails on an unknown schema
with a bare ``SchemaError``; the header and trailer are checked here first so the user
learns which file is wrong and why.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from sitetwin.bim.errors import IfcFileError
from sitetwin.data.files import file_sha256
from sitetwin.data.i18n import N_

SUPPORTED_SCHEMAS = ("IFC2X3", "IFC4", "IFC4X3_ADD2")
_SCHEMA_RE = re.compile(rb"FILE_SCHEMA\s*\(\s*\(\s*'([^']*)'", re.IGNORECASE)
_HEAD_BYTES = 64 * 1024
_TAIL_BYTES = 4 * 1024


@dataclass(frozen=True)
class IfcSource:
    """An IFC file that passed the header checks, ready to open."""

    path: Path
    schema: str            # as written in the header, e.g. IFC4X3_ADD2
    sha256: str
    zipped: bool
    member: str | None     # the .ifc member inside an .ifczip


def inspect_ifc(path: str | Path) -> IfcSource:
    """Check that ``path`` is a complete IFC-SPF file (or .ifczip) in a supported schema."""
    path = Path(path)
    if not path.exists():
        raise IfcFileError(N_("{path}: no such file"), path=path)
    if path.is_dir():
        raise IfcFileError(N_("{path}: is a folder, not an IFC file"), path=path)
    if path.stat().st_size == 0:
        raise IfcFileError(N_("{path}: file is empty"), path=path)
    zipped = zipfile.is_zipfile(path)
    member = None
    if zipped:
        try:
            with zipfile.ZipFile(path) as zf:
                members = [n for n in zf.namelist() if n.lower().endswith(".ifc")]
                if len(members) != 1:
                    raise IfcFileError(N_("{path}: an .ifczip must hold exactly one .ifc file, found {n}"), path=path,
                                       n=len(members))
                member = members[0]
                with zf.open(member) as fh:
                    head = fh.read(_HEAD_BYTES)
                size = zf.getinfo(member).file_size
                with zf.open(member) as fh:
                    if size > _TAIL_BYTES:
                        fh.seek(size - _TAIL_BYTES)
                    tail = fh.read()
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise IfcFileError(N_("{path}: damaged .ifczip ({reason})"), path=path, reason=str(exc)) from None
    else:
        if path.suffix.lower() == ".ifczip":
            raise IfcFileError(N_("{path}: named .ifczip but is not a zip archive"), path=path)
        with open(path, "rb") as fh:
            head = fh.read(_HEAD_BYTES)
            size = path.stat().st_size
            fh.seek(max(0, size - _TAIL_BYTES))
            tail = fh.read()

    if not head.lstrip().startswith(b"ISO-10303-21"):
        if head.lstrip().startswith(b"<"):
            raise IfcFileError(N_("{path}: an IFC-XML file (only STEP .ifc/.ifczip is supported)"), path=path)
        raise IfcFileError(N_("{path}: not an IFC file (no ISO-10303-21 header)"), path=path)
    match = _SCHEMA_RE.search(head)
    if not match:
        raise IfcFileError(N_("{path}: header has no FILE_SCHEMA; the file is damaged"), path=path)
    schema = match[1].decode("ascii", "replace").strip().upper()
    if schema not in SUPPORTED_SCHEMAS:
        if schema == "IFC4X3":
            raise IfcFileError(N_("{path}: unsupported IFC schema {schema!r} (supported: {supported}); 'IFC4X3' "
                                  "names a draft, not a released schema: re-export as IFC4X3_ADD2, or change "
                                  "FILE_SCHEMA to 'IFC4X3_ADD2' if the content follows it"),
                               path=path, schema=schema, supported=", ".join(SUPPORTED_SCHEMAS))
        raise IfcFileError(N_("{path}: unsupported IFC schema {schema!r} (supported: {supported})"), path=path,
                           schema=schema, supported=", ".join(SUPPORTED_SCHEMAS))
    if b"END-ISO-10303-21" not in tail.upper():
        raise IfcFileError(N_("{path}: truncated IFC file (no END-ISO-10303-21; trailer); re-export or re-download it"),
                           path=path)
    return IfcSource(path=path, schema=schema, sha256=file_sha256(path), zipped=zipped, member=member)


def open_ifc(source: IfcSource):
    """Parse a checked IFC file with IfcOpenShell; returns an ``ifcopenshell.file``."""
    import ifcopenshell

    try:
        if source.zipped:
            assert source.member is not None      # inspect_ifc names the member of every zipped source
            with zipfile.ZipFile(source.path) as zf:
                text = zf.read(source.member).decode("utf-8", errors="replace")
            model = ifcopenshell.file.from_string(text)
        else:
            model = ifcopenshell.open(str(source.path))
    except Exception as exc:  # IfcOpenShell raises several unrelated types for parse errors
        raise IfcFileError(N_("{path}: IfcOpenShell cannot parse it ({error}: {reason})"), path=source.path,
                           error=type(exc).__name__, reason=str(exc)) from None
    return model


@dataclass(frozen=True)
class LengthUnit:
    name: str         # e.g. MILLIMETRE, METRE, FOOT
    metres: float     # metres per unit


def length_unit(model) -> LengthUnit:
    """The project's length unit, as declared, and its size in metres."""
    import ifcopenshell.util.unit as uu

    scale = float(uu.calculate_unit_scale(model))
    name = "METRE"
    for assignment in model.by_type("IfcUnitAssignment"):
        for unit in assignment.Units or ():
            if getattr(unit, "UnitType", None) != "LENGTHUNIT":
                continue
            if unit.is_a("IfcSIUnit"):
                name = f"{unit.Prefix or ''}{unit.Name}"
            else:
                name = str(getattr(unit, "Name", "") or "CONVERSION_BASED").upper()
        break
    return LengthUnit(name=name, metres=scale)
