"""Load an IFC model into a twin: parse (or take from the cache), place it in the site's frame, store it.

Loading is a transaction: the store gains the model, its storeys, elements, reference lines
(alignment axes) and schedules together, or nothing. Products that do not enter the model mesh
are counted per reason and class, and the report says so in one line (``skipped_line``).
Loading the same file twice is a no-op; a file that differs from the site's model of the same
name becomes that model's next version.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sitetwin.bim import cache
from sitetwin.bim.cache import ParsedModel
from sitetwin.bim.elements import read_elements, read_storeys, skip_reason
from sitetwin.bim.errors import BimError, NoElementsError
from sitetwin.bim.geometry import geometry_hashes, reference_lines, tessellate, world_bounds_per_element
from sitetwin.bim.georef import read_georeference
from sitetwin.bim.ifc import inspect_ifc, length_unit, open_ifc
from sitetwin.bim.schedule import read_ifc_schedules
from sitetwin.bim.schedule_store import store_schedule
from sitetwin.data.clock import utcnow
from sitetwin.data.errors import Note, Phrase
from sitetwin.data.i18n import N_
from sitetwin.data.sites import check_site_code
from sitetwin.data.store import Store, atomic

DEFAULT_SITE = "SITE"
# Beyond this distance from the origin (m), float32 loses millimetres: shift to a local frame.
LOCAL_FRAME_LIMIT_M = 1_000.0
# A model this far from its site's other models is probably in another coordinate system.
SITE_MISMATCH_M = 5_000.0
# What an element record given to ``add_model_records`` may say (the ``elements`` columns it owns).
ELEMENT_RECORD_FIELDS = ("global_id", "ifc_class", "predefined_type", "name", "object_type", "storey",
                         "storey_global_id", "type_name", "type_global_id", "material", "properties", "quantities",
                         "has_geometry", "triangle_count", "bbox_min_x_m", "bbox_min_y_m", "bbox_min_z_m",
                         "bbox_max_x_m", "bbox_max_y_m", "bbox_max_z_m", "geometry_hash")


@dataclass(frozen=True)
class LoadReport:
    """What ``load_model`` did."""

    model_id: str
    site_code: str
    name: str
    version: int
    file_name: str
    sha256: str
    schema: str
    length_unit: str
    element_count: int
    physical_count: int
    triangle_count: int
    storeys: int
    tasks: int
    reused: bool                     # the same file was already loaded: nothing changed
    cache_hit: bool                  # parsed from the cache, not from the IFC file
    failures: tuple[dict, ...] = ()  # elements whose geometry failed to tessellate
    warnings: tuple[str, ...] = ()   # data.errors.Note: English as a str, the reader's language when shown
    seconds: float = 0.0
    reference_lines: int = 0         # alignment axes stored as polylines
    skipped: tuple[dict, ...] = ()   # {reason, ifc_class, count}: products not loaded as surfaces
    skipped_line: str = ""           # the same in one line for people ("" when nothing was skipped)


def parse_model(path: str | Path, *, threads: int | None = None,
                on_progress: Callable[[int, int], None] | None = None) -> ParsedModel:
    """Read one IFC file completely: semantics, tessellation, georeferencing, schedules."""
    source = inspect_ifc(path)
    model = open_ifc(source)
    unit = length_unit(model)
    products = [p for p in model.by_type("IfcProduct") if p.Representation is not None]
    elements = read_elements(model)
    tess = tessellate(model, threads=threads, on_progress=on_progress)
    lines, line_failures = reference_lines(model, unit.metres)
    failed_lines = {f.global_id for f in line_failures}
    plan_only = {r.global_id for r in lines if r.note}
    skipped: Counter[tuple[str, str]] = Counter()
    seen: set[str] = set()
    for p in products:
        if p.GlobalId in seen:
            continue
        seen.add(p.GlobalId)
        reason = skip_reason(p)
        if reason is not None:
            if p.GlobalId in failed_lines:
                reason = "reference line not evaluated"
            elif p.GlobalId in plan_only:
                reason = "reference line, plan only (3D axis incomplete)"
            skipped[(reason, p.is_a())] += 1
    project = model.by_type("IfcProject")
    try:
        schedules = read_ifc_schedules(model)
    except Exception as exc:  # a broken schedule must not stop the geometry from loading
        raise BimError(N_("{path}: cannot read its work schedule ({error}: {reason})"), path=source.path,
                       error=type(exc).__name__, reason=str(exc)) from None
    return ParsedModel(
        sha256=source.sha256, schema=source.schema, file_name=source.path.name,
        project_name=project[0].Name if project else None, unit=unit,
        georef=read_georeference(model, unit.metres),
        storeys=tuple(read_storeys(model, unit.metres)), elements=tuple(elements), tessellation=tess,
        geometry_hashes=geometry_hashes(tess), schedules=tuple(schedules), product_count=len(products),
        reference_lines=tuple(lines),
        skipped=tuple((reason, cls, n) for (reason, cls), n in sorted(skipped.items())))


def load_model(store: Store, path: str | Path, *, site_code: str | None = None, name: str | None = None,
               threads: int | None = None, on_progress: Callable[[int, int], None] | None = None) -> LoadReport:
    """Load an IFC file (``.ifc`` or ``.ifczip``) into ``store`` as a model of ``site_code``.

    ``name`` groups revisions: a file whose content differs from the newest model of the
    same name becomes its next version (default name: the file name without extension).

    >>> from data import open_store
    >>> with open_store(":memory:") as store:                      # doctest: +SKIP
    ...     report = load_model(store, "building.ifc", site_code="DEMO")
    ...     report.element_count
    """
    started = time.perf_counter()
    path = Path(path)
    source = inspect_ifc(path)
    site_code = site_code or _default_site(store)
    check_site_code(site_code)
    name = name or path.stem.split(".")[0]

    existing = store.one("SELECT model_id, name, version FROM models WHERE site_code = ? AND sha256 = ?",
                         [site_code, source.sha256])
    if existing:
        return _report_existing(store, existing["model_id"], started)

    parsed = cache.load(store.cache_dir, source.sha256)
    cache_hit = parsed is not None
    if parsed is None:
        parsed = parse_model(path, threads=threads, on_progress=on_progress)
    physical = sum(1 for e in parsed.elements if e.physical)
    skipped_line = describe_skipped(parsed.skipped, path.name, parsed.product_count)
    if not parsed.tessellation.global_ids and not parsed.reference_lines:
        classes = sorted({e.ifc_class for e in parsed.elements})
        if skipped_line:
            raise NoElementsError(
                N_("{path}: no building elements or civil parts with geometry, and no alignment, to load ({n} of "
                   "{products} products with a representation not loaded as surfaces: {reasons})"),
                path=path, n=sum(int(n) for _r, _c, n in parsed.skipped), products=parsed.product_count,
                reasons=_skipped_phrase(parsed.skipped))
        if classes:
            raise NoElementsError(
                N_("{path}: no building elements or civil parts with geometry, and no alignment, to load ({n} "
                   "products with a representation: {classes})"),
                path=path, n=len(parsed.elements), classes=", ".join(classes[:6]))
        raise NoElementsError(
            N_("{path}: no building elements or civil parts with geometry, and no alignment, to load ({n} products "
               "with a representation)"), path=path, n=len(parsed.elements))
    if not cache_hit:
        cache.save(store.cache_dir, parsed)

    warnings: list[Note] = []
    if parsed.georef is not None and not parsed.georef.valid:
        warnings.append(Note(N_("{file}: georeferencing ignored, {problem}; keeping the local frame"),
                             file=path.name, problem=parsed.georef.problem))
    if parsed.tessellation.failures:
        failures = parsed.tessellation.failures
        warnings.append(Note(N_("{file}: {n} element(s) failed to tessellate and have no geometry: {global_ids}"),
                             file=path.name, n=len(failures),
                             global_ids=", ".join(f.global_id for f in failures[:5])
                             + (" ..." if len(failures) > 5 else "")))
    dup = parsed.product_count - len(parsed.elements)
    if dup:
        warnings.append(Note(N_("{file}: {n} product(s) repeat a GlobalId already used in the file; kept the first"),
                             file=path.name, n=dup))

    model_id = source.sha256[:12]
    if store.scalar("SELECT count(*) FROM models WHERE model_id = ?", [model_id]):
        other = store.scalar("SELECT site_code FROM models WHERE model_id = ?", [model_id])
        raise BimError(N_("{path}: this file is already loaded as model {model_id} of site {site_code}; a file belongs "
                          "to one site per store"), path=path, model_id=model_id, site_code=other)

    with store.transaction():
        origin, new_site = _site_origin(store, site_code, parsed)
        if not new_site:
            warnings.extend(_placement_warnings(store, site_code, parsed, origin, path.name))
        version = int(store.scalar("SELECT coalesce(max(version), 0) FROM models WHERE site_code = ? AND name = ?",
                                   [site_code, name])) + 1
        _insert_model(store, site_code, model_id, name, version, path, parsed)
        _insert_storeys(store, site_code, model_id, parsed, origin)
        _insert_elements(store, site_code, model_id, parsed, origin)
        _insert_reference_lines(store, site_code, model_id, parsed, origin)
        tasks = sum(store_schedule(store, site_code, s, model_id=model_id) for s in parsed.schedules)

    return LoadReport(
        model_id=model_id, site_code=site_code, name=name, version=version, file_name=path.name,
        sha256=source.sha256, schema=parsed.schema, length_unit=parsed.unit.name,
        element_count=len(parsed.elements), physical_count=physical,
        triangle_count=int(len(parsed.tessellation.faces)), storeys=len(parsed.storeys), tasks=tasks,
        reused=False, cache_hit=cache_hit,
        failures=tuple({"global_id": f.global_id, "ifc_class": f.ifc_class, "message": f.message}
                       for f in parsed.tessellation.failures),
        warnings=tuple(warnings), seconds=time.perf_counter() - started,
        reference_lines=len(parsed.reference_lines), skipped=_skipped_records(parsed.skipped),
        skipped_line=skipped_line)


def describe_skipped(skipped, file_name: str, product_count: int) -> str:
    """One line: how many products were not loaded as surfaces, per reason and class ("" when none).

    >>> describe_skipped([("not built", "IfcOpeningElement", 3), ("reference line", "IfcAlignment", 1)],
    ...                  "road.ifc", 40)
    'road.ifc: 4 of 40 products with a representation not loaded as surfaces: not built 3 (IfcOpeningElement 3); \
reference line 1 (IfcAlignment 1)'
    """
    by_reason: dict[str, list[tuple[str, int]]] = {}
    for reason, cls, n in skipped:
        by_reason.setdefault(reason, []).append((cls, int(n)))
    if not by_reason:
        return ""
    total = sum(n for items in by_reason.values() for _, n in items)
    parts = [f"{reason} {sum(n for _, n in items)} (" + ", ".join(f"{c} {n}" for c, n in items) + ")"
             for reason, items in by_reason.items()]
    return (f"{file_name}: {total} of {product_count} products with a representation not loaded as surfaces: "
            + "; ".join(parts))


# why a product was not loaded as surfaces (bim.elements.skip_reason, parse_model), as people read it
SKIP_REASONS = {k: k for k in (N_("not built"), N_("no body"), N_("container"), N_("not physical"),
                               N_("reference line"), N_("alignment layout"), N_("reference line not evaluated"),
                               N_("reference line, plan only (3D axis incomplete)"))}


def _skipped_phrase(skipped) -> Phrase:
    """The reasons of :func:`describe_skipped` ("not built 3 (IfcOpeningElement 3); ...") as a phrase read in
    the language of the message it is part of."""
    by_reason: dict[str, list[tuple[str, int]]] = {}
    for reason, cls, n in skipped:
        by_reason.setdefault(reason, []).append((cls, int(n)))
    parts = [Phrase(N_("{reason} {n} ({classes})"), reason=Phrase(SKIP_REASONS.get(reason, reason)),
                    n=sum(n for _c, n in items), classes=", ".join(f"{c} {n}" for c, n in items))
             for reason, items in by_reason.items()]
    out = parts[-1]
    for part in reversed(parts[:-1]):
        out = Phrase(N_("{first}; {rest}"), first=part, rest=out)
    return out


def _skipped_records(skipped) -> tuple[dict, ...]:
    return tuple({"reason": r, "ifc_class": c, "count": int(n)} for r, c, n in skipped)


def add_model_records(store: Store, elements: Sequence[Mapping[str, Any]], *, site_code: str, name: str,
                      model_id: str | None = None, version: int | None = None, file_name: str | None = None,
                      loaded_at: dt.datetime | None = None) -> str:
    """Store a design model described by element records instead of an IFC file; returns its model id.

    For models that arrive as records (another platform's element list, a model a test describes).
    Each record needs ``global_id`` and ``ifc_class`` and may give any of ``ELEMENT_RECORD_FIELDS``:
    ``storey``, ``has_geometry`` (default: it has triangles), ``triangle_count`` (default 0), the box
    ``bbox_min_x_m`` .. ``bbox_max_z_m`` (site local frame, metres), ``properties`` and ``quantities``
    ({set: {name: value}}), ... The model id defaults to 12 hex digits of the records' sha256, the
    version to the next of ``name`` on the site, the file name to ``<name>.ifc``, the load time to now
    (naive UTC); lengths are metres. No geometry is cached: ``bim.load_mesh`` has none for it.
    Refuses an unknown site, a record without GlobalId or class or with an unknown field, a repeated
    GlobalId and a model id already stored; joins the caller's transaction.
    """
    import pandas as pd

    check_site_code(site_code)
    rows = [dict(r) for r in elements]
    for i, r in enumerate(rows):
        missing = [k for k in ("global_id", "ifc_class") if not r.get(k)]
        unknown = sorted(set(r) - set(ELEMENT_RECORD_FIELDS))
        if missing or unknown:
            if missing:
                raise BimError(N_("model {name}: element record {i} lacks {missing} (fields: {fields})"), name=name,
                               i=i, missing=", ".join(missing), fields=", ".join(ELEMENT_RECORD_FIELDS))
            raise BimError(N_("model {name}: element record {i} has unknown fields {unknown} (fields: {fields})"),
                           name=name, i=i, unknown=", ".join(unknown), fields=", ".join(ELEMENT_RECORD_FIELDS))
    repeated = sorted(g for g, n in Counter(r["global_id"] for r in rows).items() if n > 1)
    if repeated:
        raise BimError(N_("model {name}: GlobalId {global_ids} given twice; one record per element"), name=name,
                       global_ids=", ".join(repeated[:5]))
    digest = hashlib.sha256(json.dumps([site_code, name, rows], sort_keys=True, default=str).encode()).hexdigest()
    model_id = model_id or digest[:12]
    frame = pd.DataFrame.from_records(rows, columns=list(ELEMENT_RECORD_FIELDS))
    frame["triangle_count"] = frame["triangle_count"].fillna(0).astype("int64")
    frame["has_geometry"] = [bool(g) if g is not None and g == g else bool(n)
                             for g, n in zip(frame["has_geometry"], frame["triangle_count"])]
    for column in ("properties", "quantities"):
        frame[column] = [json.dumps(v, default=str) if isinstance(v, dict) else v for v in frame[column]]
    for column in [c for c in ELEMENT_RECORD_FIELDS if c.startswith("bbox_")]:
        frame[column] = pd.to_numeric(frame[column], errors="raise").astype("float64")
    frame.insert(0, "model_id", model_id)
    frame.insert(0, "site_code", site_code)
    with atomic(store):
        if not store.scalar("SELECT count(*) FROM sites WHERE site_code = ?", [site_code]):
            raise BimError(N_("no site {site_code!r} in {store}; create it first (data.sites.upsert_site)"),
                           site_code=site_code, store=store.label)
        if store.scalar("SELECT count(*) FROM models WHERE model_id = ?", [model_id]):
            raise BimError(N_("model {model_id} is already stored; give another model_id"), model_id=model_id)
        if version is None:
            version = int(store.scalar("SELECT coalesce(max(version), 0) FROM models WHERE site_code = ? "
                                       "AND name = ?", [site_code, name])) + 1
        store.execute(
            "INSERT INTO models (model_id, site_code, name, version, file_name, sha256, ifc_schema, length_unit, "
            "length_unit_m, element_count, triangle_count, loaded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [model_id, site_code, name, int(version), file_name or f"{name}.ifc", digest, "records", "METRE", 1.0,
             len(rows), int(frame["triangle_count"].sum()), loaded_at or utcnow()])
        store.insert_frame("elements", frame)
    return model_id


def _default_site(store: Store) -> str:
    codes = [r["site_code"] for r in store.rows("SELECT site_code FROM sites ORDER BY site_code")]
    if len(codes) == 1:
        return codes[0]
    if len(codes) > 1:
        raise BimError(N_("{store} holds several sites ({sites}); say which with --site"), store=store.label,
                       sites=", ".join(codes))
    return DEFAULT_SITE


def _report_existing(store: Store, model_id: str, started: float) -> LoadReport:
    m = store.one("SELECT * FROM models WHERE model_id = ?", [model_id])
    counts = store.one("SELECT count(*) AS n, count(*) FILTER (WHERE has_geometry) AS g FROM elements "
                       "WHERE model_id = ?", [model_id])
    assert m is not None and counts is not None     # the caller found the model; a count is always one row
    storeys = store.scalar("SELECT count(*) FROM storeys WHERE model_id = ?", [model_id])
    lines = store.scalar("SELECT count(*) FROM reference_lines WHERE model_id = ?", [model_id])
    tasks = store.scalar("SELECT count(*) FROM tasks t JOIN schedules s USING (schedule_id) WHERE s.model_id = ?",
                         [model_id])
    return LoadReport(
        model_id=model_id, site_code=m["site_code"], name=m["name"], version=m["version"],
        file_name=m["file_name"], sha256=m["sha256"], schema=m["ifc_schema"], length_unit=m["length_unit"],
        element_count=int(counts["n"]), physical_count=int(counts["g"]), triangle_count=int(m["triangle_count"]),
        storeys=int(storeys), tasks=int(tasks), reused=True, cache_hit=False,
        failures=tuple(json.loads(m["failures"] or "[]")), warnings=(), seconds=time.perf_counter() - started,
        reference_lines=int(lines))


def _site_origin(store: Store, site_code: str, parsed: ParsedModel) -> tuple[np.ndarray, bool]:
    """The site's local-frame origin; the first model of a site sets it. Returns (origin, first)."""
    row = store.one("SELECT origin_x_m, origin_y_m, origin_z_m FROM sites WHERE site_code = ?", [site_code])
    has_models = bool(store.scalar("SELECT count(*) FROM models WHERE site_code = ?", [site_code]))
    if row is not None and has_models:
        return np.array([row["origin_x_m"], row["origin_y_m"], row["origin_z_m"]], dtype=np.float64), False
    v = _world_vertices(parsed)
    centre = (v.min(0) + v.max(0)) / 2 if len(v) else np.zeros(3)
    # Shift by a round number only where float32 would lose millimetres.
    origin = np.where(np.abs(centre) > LOCAL_FRAME_LIMIT_M, np.round(centre / 100.0) * 100.0, 0.0)
    if row is None:
        store.execute("INSERT INTO sites (site_code, name, origin_x_m, origin_y_m, origin_z_m) VALUES (?, ?, ?, ?, ?)",
                      [site_code, parsed.project_name or site_code, *origin.tolist()])
    else:
        store.execute("UPDATE sites SET origin_x_m = ?, origin_y_m = ?, origin_z_m = ? WHERE site_code = ?",
                      [*origin.tolist(), site_code])
    return origin, True


def _world_vertices(parsed: ParsedModel) -> np.ndarray:
    """Every vertex of the model's surfaces, else of its reference lines (an alignment-only model)."""
    if len(parsed.tessellation.vertices_world) or not parsed.reference_lines:
        return parsed.tessellation.vertices_world
    return np.concatenate([r.points_world for r in parsed.reference_lines])


def _placement_warnings(store, site_code, parsed, origin, file_name) -> list[Note]:
    v = _world_vertices(parsed)
    if not len(v):
        return []
    centre = (v.min(0) + v.max(0)) / 2 - origin
    box = store.one("SELECT min(bbox_min_x_m) x0, min(bbox_min_y_m) y0, max(bbox_max_x_m) x1, max(bbox_max_y_m) y1 "
                    "FROM current_elements WHERE site_code = ?", [site_code])
    if box and box["x0"] is not None:
        cx, cy = (box["x0"] + box["x1"]) / 2, (box["y0"] + box["y1"]) / 2
        dist = float(np.hypot(centre[0] - cx, centre[1] - cy))
        if dist > SITE_MISMATCH_M:
            return [Note(N_("{file}: lies {km:.1f} km from the site's other models; check that it shares their "
                            "coordinate system"), file=file_name, km=dist / 1000)]
    return []


def _insert_model(store, site_code, model_id, name, version, path, parsed: ParsedModel) -> None:
    store.execute(
        "INSERT INTO models (model_id, site_code, name, version, file_name, source_path, sha256, ifc_schema, "
        "length_unit, length_unit_m, georef, element_count, triangle_count, failures) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [model_id, site_code, name, version, path.name, str(path.resolve()), parsed.sha256, parsed.schema,
         parsed.unit.name, parsed.unit.metres, parsed.georef.to_dict() if parsed.georef else None,
         len(parsed.elements), int(len(parsed.tessellation.faces)),
         [{"global_id": f.global_id, "ifc_class": f.ifc_class, "message": f.message}
          for f in parsed.tessellation.failures]])


def _insert_storeys(store, site_code, model_id, parsed: ParsedModel, origin) -> None:
    import pandas as pd

    if not parsed.storeys:
        return
    store.insert_frame("storeys", pd.DataFrame({
        "site_code": site_code, "model_id": model_id,
        "global_id": [s.global_id for s in parsed.storeys], "name": [s.name for s in parsed.storeys],
        "elevation_m": [s.elevation_m - origin[2] for s in parsed.storeys]}).drop_duplicates("global_id"))


def _insert_elements(store, site_code, model_id, parsed: ParsedModel, origin) -> None:
    import pandas as pd

    tess = parsed.tessellation
    bounds = world_bounds_per_element(tess) - origin[None, None, :]
    index = {g: i for i, g in enumerate(tess.global_ids)}
    tri_counts = np.bincount(tess.face_element, minlength=len(tess.global_ids))
    rows = []
    for e in parsed.elements:
        i = index.get(e.global_id)
        b = bounds[i] if i is not None else np.full((2, 3), np.nan)
        rows.append((site_code, model_id, e.global_id, e.ifc_class, e.predefined_type, e.name, e.object_type,
                     e.storey, e.storey_global_id, e.type_name, e.type_global_id, e.material,
                     json.dumps(e.properties, default=str), json.dumps(e.quantities),
                     i is not None, int(tri_counts[i]) if i is not None else 0,
                     *b[0].tolist(), *b[1].tolist(), parsed.geometry_hashes.get(e.global_id)))
    columns = ["site_code", "model_id", "global_id", "ifc_class", "predefined_type", "name", "object_type",
               "storey", "storey_global_id", "type_name", "type_global_id", "material", "properties", "quantities",
               "has_geometry", "triangle_count", "bbox_min_x_m", "bbox_min_y_m", "bbox_min_z_m",
               "bbox_max_x_m", "bbox_max_y_m", "bbox_max_z_m", "geometry_hash"]
    store.insert_frame("elements", pd.DataFrame.from_records(rows, columns=columns))


def _insert_reference_lines(store, site_code, model_id, parsed: ParsedModel, origin) -> None:
    import pandas as pd

    if not parsed.reference_lines:
        return
    rows = []
    for r in parsed.reference_lines:
        local = r.points_world - origin[None, :]
        length = float(np.linalg.norm(np.diff(local, axis=0), axis=1).sum())
        rows.append((site_code, model_id, r.global_id, r.ifc_class, r.name, r.kind, r.note, len(local), length,
                     local.ravel().tolist()))
    store.insert_frame("reference_lines", pd.DataFrame.from_records(
        rows, columns=["site_code", "model_id", "global_id", "ifc_class", "name", "kind", "note", "point_count",
                       "length_m", "points_m"]))
