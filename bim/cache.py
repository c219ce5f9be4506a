"""The parsed-model cache beside the store, keyed by the IFC file's sha256.

A model parsed once is never parsed again: its tessellation (``mesh.npz``, world frame,
float64) and its semantics (``model.json``) are kept under ``<db>.cache/ifc/<sha256>/``.
Writes go to a temporary folder that is renamed into place, so a crash never leaves a
half-written entry.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from sitetwin.bim.elements import Element, Storey
from sitetwin.bim.geometry import ElementFailure, ReferenceLine, Tessellation
from sitetwin.bim.georef import Georeference
from sitetwin.bim.ifc import LengthUnit
from sitetwin.bim.schedule import Schedule, Task, _parse_dt
from sitetwin.data.errors import Note

# Bump when what is cached (tessellation settings, element fields) changes meaning.
CACHE_FORMAT = 3   # 2: elements sorted by GlobalId; 3: civil parts, reference lines, what was skipped


@dataclass(frozen=True)
class ParsedModel:
    """Everything sitetwin reads from one IFC file, before it is placed in a site."""

    sha256: str
    schema: str
    file_name: str
    project_name: str | None
    unit: LengthUnit
    georef: Georeference | None
    storeys: tuple[Storey, ...]
    elements: tuple[Element, ...]
    tessellation: Tessellation
    geometry_hashes: dict[str, str]
    schedules: tuple[Schedule, ...]
    product_count: int           # IfcProducts with a representation, as IfcOpenShell counts them
    reference_lines: tuple[ReferenceLine, ...] = ()   # alignment axes, world frame
    skipped: tuple[tuple[str, str, int], ...] = ()    # (reason, ifc_class, count): not in the mesh


def entry_dir(cache_dir: Path, sha256: str) -> Path:
    return Path(cache_dir) / "ifc" / f"{sha256}-f{CACHE_FORMAT}"


def save(cache_dir: Path, parsed: ParsedModel) -> Path:
    final = entry_dir(cache_dir, parsed.sha256)
    if final.exists():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=final.parent))
    try:
        t = parsed.tessellation
        np.savez(tmp / "mesh.npz", vertices_world=t.vertices_world, faces=t.faces,
                 face_element=t.face_element, global_ids=np.array(t.global_ids, dtype=str))
        meta = {
            "sha256": parsed.sha256, "schema": parsed.schema, "file_name": parsed.file_name,
            "project_name": parsed.project_name, "unit": asdict(parsed.unit),
            "georef": parsed.georef.to_dict() if parsed.georef else None,
            # the georeference's problem as its template and fields, to read again in the reader's language
            "georef_problem": _note_record(parsed.georef.problem if parsed.georef else None),
            "storeys": [_shallow(s) for s in parsed.storeys],
            # shallow: asdict() would deep-copy every property set only to serialise it
            "elements": [_shallow(e) for e in parsed.elements],
            "failures": [_shallow(f) for f in t.failures],
            "geometry_hashes": parsed.geometry_hashes,
            "schedules": [_schedule_dict(s) for s in parsed.schedules],
            "product_count": parsed.product_count,
            "reference_lines": [{**_shallow(r), "points_world": r.points_world.tolist()}
                                for r in parsed.reference_lines],
            "skipped": [list(s) for s in parsed.skipped],
        }
        (tmp / "model.json").write_text(json.dumps(meta, default=str), encoding="utf-8")
        try:
            os.replace(tmp, final)
        except OSError:
            if not final.exists():  # another process won the race: its entry is as good as ours
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def load(cache_dir: Path, sha256: str) -> ParsedModel | None:
    """The cached parse of a file with this hash, or ``None``."""
    folder = entry_dir(cache_dir, sha256)
    try:
        meta = json.loads((folder / "model.json").read_text(encoding="utf-8"))
        tess = load_tessellation(folder, [ElementFailure(**f) for f in meta["failures"]])
    except (OSError, ValueError, KeyError):
        return None
    return ParsedModel(
        sha256=meta["sha256"], schema=meta["schema"], file_name=meta["file_name"],
        project_name=meta["project_name"], unit=LengthUnit(**meta["unit"]),
        georef=_georef_from(meta["georef"], meta.get("georef_problem")),
        storeys=tuple(Storey(**s) for s in meta["storeys"]),
        elements=tuple(Element(**e) for e in meta["elements"]),
        tessellation=tess, geometry_hashes=meta["geometry_hashes"],
        schedules=tuple(_schedule_from(s) for s in meta["schedules"]),
        product_count=meta["product_count"],
        reference_lines=tuple(ReferenceLine(**{**r, "points_world": np.asarray(r["points_world"], dtype=np.float64)})
                              for r in meta.get("reference_lines", ())),
        skipped=tuple((str(a), str(b), int(c)) for a, b, c in meta.get("skipped", ())))


def _note_record(note) -> dict | None:
    return {"template": note.template, "fields": note.fields} if isinstance(note, Note) else None


def _georef_from(record: dict | None, problem: dict | None) -> Georeference | None:
    if not record:
        return None
    if problem and isinstance(problem.get("template"), str) and isinstance(problem.get("fields"), dict):
        record = {**record, "problem": Note(problem["template"], **problem["fields"])}
    return Georeference(**record)


def load_tessellation(folder: Path, failures=()) -> Tessellation:
    with np.load(folder / "mesh.npz") as z:
        return Tessellation(z["vertices_world"], z["faces"], z["face_element"],
                            tuple(z["global_ids"].tolist()), tuple(failures))


def _shallow(record) -> dict:
    return {f.name: getattr(record, f.name) for f in fields(record)}


def _schedule_dict(s: Schedule) -> dict:
    return {"schedule_id": s.schedule_id, "name": s.name, "source": s.source, "file_name": s.file_name,
            "tasks": [_shallow(t) for t in s.tasks], "links": [list(link) for link in s.links]}


def _schedule_from(d: dict) -> Schedule:
    tasks = tuple(Task(**{**t, "start": _parse_dt(t["start"]), "finish": _parse_dt(t["finish"])}) for t in d["tasks"])
    return Schedule(d["schedule_id"], d["name"], d["source"], tasks, tuple(tuple(link) for link in d["links"]),
                    d["file_name"])
