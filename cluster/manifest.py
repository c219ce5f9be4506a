"""A cluster manifest: the work units of a run, read from YAML and checked whole before anything starts.

A manifest is a YAML list of units (or a mapping with ``units:``). Every unit names its ``kind``,
its ``site`` (code) and ``db`` (the site's store file); the rest depends on the kind::

    - {kind: model,  site: A1, db: a1.duckdb, files: [a1/structure.ifc]}          # name (one file)
    - {kind: survey, site: A1, db: a1.duckdb, files: [a1/week12.e57], epoch: 2026-05-10}
                                     # model (ids; default the site's current models), register (auto | none),
                                     # units (m | mm), name
    - {kind: detect, site: A1, db: a1.duckdb, source: a1/gate-cam/, weights: models/ppe.onnx}
                                     # source: image, image folder or video; or pano: a stored panorama id;
                                     # conf, imgsz, rules (hazard-rule YAML)
    - {kind: score,  site: A1, db: a1.duckdb}                                      # as_of, scheme

Paths are relative to the manifest's folder; a URI (``s3://...``, ``gs://...``, ``file://...``)
is read through pyarrow's filesystems. ``db`` is a file on a filesystem every worker sees
(DuckDB). Each problem is one :class:`ManifestError` naming the unit (``unit 3 (survey A1)``)
or the file.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sitetwin.cluster import inputs
from sitetwin.cluster.errors import ManifestError
from sitetwin.data.errors import Phrase
from sitetwin.data.i18n import N_

KINDS = ("model", "survey", "detect", "score")
# Within one site units run in this order (models before the surveys that need them, scores last),
# each kind in manifest order.
RANK = {kind: i for i, kind in enumerate(KINDS)}
COMMON = ("kind", "site", "db")
FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {   # kind -> (required, optional)
    "model": (("files",), ("name",)),
    "survey": (("files",), ("model", "epoch", "register", "units", "name")),
    "detect": (("weights",), ("source", "pano", "conf", "imgsz", "rules")),
    "score": ((), ("as_of", "scheme")),
}
# Fields that name input files: their content (not their path) enters a unit's key.
PATH_FIELDS = ("files", "source", "weights", "rules", "scheme_file")
SCHEME_SUFFIXES = (".yaml", ".yml", ".json")
IFC_SUFFIXES = (".ifc", ".ifczip")
UNIT_LABEL = N_("unit {index} ({kind} {site})")


def _scan_suffixes() -> list[str]:
    from sitetwin.twin.formats import SUFFIXES

    return list(SUFFIXES)


@dataclass(frozen=True)
class Unit:
    """One unit of work: what the manifest says, with paths resolved (absolute paths or URIs)."""

    index: int                     # 1-based position in the manifest
    kind: str                      # model | survey | detect | score
    site: str                      # site code
    db: Path                       # the site's store, absolute
    params: dict[str, Any] = field(default_factory=dict)   # the kind's fields; input references resolved

    @property
    def label(self) -> str:
        """``unit 3 (survey A1)``, in English: what the ledger and ``--json`` keep."""
        return self.label_phrase.text("en")

    @property
    def label_phrase(self) -> Phrase:
        """The label as a piece of a message, in the reader's language."""
        return Phrase(UNIT_LABEL, index=self.index, kind=self.kind, site=self.site)

    @property
    def inputs(self) -> list[str]:
        """Every file or folder the unit reads, in a fixed order (survey files sorted, as survey ids are)."""
        p = self.params
        if self.kind == "model":
            return list(p["files"])
        if self.kind == "survey":
            return sorted(p["files"])
        if self.kind == "detect":
            return [r for r in (p.get("source"), p["weights"], p.get("rules")) if r]
        return [p["scheme_file"]] if p.get("scheme_file") else []


@dataclass(frozen=True)
class Manifest:
    path: Path
    units: tuple[Unit, ...]

    def stores(self) -> dict[Path, list[Unit]]:
        """The units of each store, in manifest order."""
        found: dict[Path, list[Unit]] = {}
        for u in self.units:
            found.setdefault(u.db, []).append(u)
        return found


def unit_key(unit: Unit, input_digests: Sequence[str], after: Sequence[str] = ()) -> str:
    """The unit's identity: its kind, site, parameters (paths left out) and its inputs' content hashes.

    ``after``: keys this unit's result depends on (a score depends on its site's other units), so
    that new data for a site makes its score due again. The same key is the same work: done once.
    """
    params = {k: v for k, v in unit.params.items() if k not in PATH_FIELDS}
    doc = {"kind": unit.kind, "site": unit.site, "params": params, "inputs": list(input_digests),
           "after": sorted(after)}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def load_manifest(path: str | Path, *, today: dt.date | None = None, check_files: bool = True) -> Manifest:
    """Read and check a manifest's YAML and every file it names (not yet the stores: see :func:`check_stores`).

    ``today`` (default: today, UTC) is the day a score without ``as_of`` is computed for. Without
    ``check_files`` the input files are not looked for (to read what ran, say, once they are gone).
    """
    import yaml

    from sitetwin.data.clock import utcnow

    path = Path(path)
    if inputs.is_uri(str(path)):
        raise ManifestError(N_("{path}: a manifest is a local file (its units may name URIs)"), path=path)
    if not path.is_file():
        raise ManifestError(N_("{path}: no such manifest file") if not path.exists() else N_("{path}: is not a file"),
                            path=path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ManifestError(N_("{path}: not a text file (a manifest is YAML)"), path=path) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        if mark is not None:
            raise ManifestError(N_("{path}: not YAML at line {line}, column {column}: {problem}"), path=path,
                                line=mark.line + 1, column=mark.column + 1, problem=problem) from None
        raise ManifestError(N_("{path}: not YAML: {problem}"), path=path, problem=problem) from None
    if isinstance(doc, Mapping) and set(doc) == {"units"}:
        doc = doc["units"]
    if not isinstance(doc, list):
        raise ManifestError(N_("{path}: expected a YAML list of units (or 'units:' with one), got {got}"), path=path,
                            got=type(doc).__name__ if doc is not None else Phrase(N_("an empty file")))
    if not doc:
        raise ManifestError(N_("{path}: the manifest lists no units"), path=path)
    base = path.resolve().parent
    day = today or utcnow().date()
    units = tuple(_unit(path, i, entry, base, day, check_files) for i, entry in enumerate(doc, start=1))
    return Manifest(path=path.resolve(), units=units)


def _unit(path: Path, index: int, entry: Any, base: Path, today: dt.date, check_files: bool) -> Unit:
    where = Phrase(N_("{file}: unit {index}"), file=path.name, index=index)
    if not isinstance(entry, Mapping):
        raise ManifestError(N_("{where}: expected a mapping with kind, site and db, got {type}"), where=where,
                            type=type(entry).__name__)
    kind = entry.get("kind")
    if kind not in KINDS:
        if kind is None:
            raise ManifestError(N_("{where}: no 'kind' (kinds: {kinds})"), where=where, kinds=", ".join(KINDS))
        raise ManifestError(N_("{where}: unknown kind {kind!r} (kinds: {kinds})"), where=where, kind=kind,
                            kinds=", ".join(KINDS))
    site = entry.get("site")
    where = Phrase(N_("{file}: unit {index} ({kind} {site})"), file=path.name, index=index, kind=kind,
                   site=site if isinstance(site, str) else "?")
    required, optional = FIELDS[kind]
    missing = [k for k in (*COMMON, *required) if entry.get(k) in (None, "", [])]
    if missing:
        raise ManifestError(N_("{where}: missing field {fields}"), where=where,
                            fields=", ".join(repr(m) for m in missing))
    unknown = sorted(str(k) for k in entry if k not in (*COMMON, *required, *optional))
    if unknown:
        raise ManifestError(N_("{where}: unknown field {fields} (a {kind} unit takes {takes})"), where=where,
                            fields=", ".join(repr(u) for u in unknown), kind=kind,
                            takes=", ".join((*COMMON, *required, *optional)))
    if not isinstance(site, str):
        raise ManifestError(N_("{where}: site must be a site code (text), got {site!r}"), where=where, site=site)
    from sitetwin.data.errors import StoreError
    from sitetwin.data.sites import check_site_code

    try:
        check_site_code(site)
    except StoreError as exc:
        raise ManifestError(_WHERE_ERROR, where=where, error=exc) from None
    db = entry["db"]
    if not isinstance(db, str):
        raise ManifestError(N_("{where}: db must be a store file path, got {db!r}"), where=where, db=db)
    if inputs.is_uri(db) and not db.startswith("file://"):
        raise ManifestError(N_("{where}: db {db}: a store is a DuckDB file on a filesystem every node of the "
                               "cluster sees, not an object-store URI"), where=where, db=db)
    db_path = Path(inputs.resolve(db.removeprefix("file://"), base))
    params = _params(where, kind, entry, base, today, check_files)
    return Unit(index=index, kind=kind, site=site, db=db_path, params=params)


_WHERE_ERROR = N_("{where}: {error}")      # an error of the library's checks, after the unit it is about


def _params(where: Phrase, kind: str, entry: Mapping[str, Any], base: Path, today: dt.date,
            check_files: bool) -> dict[str, Any]:
    from sitetwin.data.text import TextError, clean_text

    p: dict[str, Any] = {}

    def text(key: str) -> str | None:
        if entry.get(key) is None:
            return None
        try:
            return clean_text(entry[key], key)
        except TextError as exc:
            raise ManifestError(_WHERE_ERROR, where=where, error=exc) from None

    def ref(key: str, value: Any, want: str | None = None) -> str:
        if not isinstance(value, str) or not value.strip():
            raise ManifestError(N_("{where}: {key} must be a path or URI, got {value!r}"), where=where, key=key,
                                value=value)
        resolved = inputs.resolve(value.strip(), base)
        if not check_files:
            return resolved
        found = inputs.kind_of(resolved)
        if found is None:
            if resolved != value:
                raise ManifestError(N_("{where}: {key} {value}: no such file ({resolved})"), where=where, key=key,
                                    value=value, resolved=resolved)
            raise ManifestError(N_("{where}: {key} {value}: no such file"), where=where, key=key, value=value)
        if want == "file" and found != "file":
            raise ManifestError(N_("{where}: {key} {value}: is a folder, expected a file"), where=where, key=key,
                                value=value)
        return resolved

    def day(key: str) -> dt.date | None:
        value = entry.get(key)
        if value is None or isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            return value
        try:
            return dt.date.fromisoformat(str(value))
        except ValueError:
            raise ManifestError(N_("{where}: {key} {value!r}: expected a date as YYYY-MM-DD"), where=where, key=key,
                                value=value) from None

    if kind in ("model", "survey"):
        files = entry["files"]
        files = [files] if isinstance(files, str) else files
        if not isinstance(files, list):
            raise ManifestError(N_("{where}: files must be a path or a list of paths, got {files!r}"), where=where,
                                files=files)
        p["files"] = [ref("files", f, "file") for f in files]
        suffixes = IFC_SUFFIXES if kind == "model" else _scan_suffixes()
        for given, resolved in zip(files, p["files"]):
            name = Path(resolved).name.lower()
            if not name.endswith(tuple(suffixes)):
                what = Phrase(N_("an IFC file") if kind == "model" else N_("a point-cloud file"))
                raise ManifestError(N_("{where}: files {file}: not {what} (suffixes: {suffixes})"), where=where,
                                    file=given, what=what, suffixes=", ".join(suffixes))
        if len(set(p["files"])) != len(p["files"]):
            raise ManifestError(N_("{where}: files names a file twice"), where=where)
        if entry.get("name") is not None:
            p["name"] = text("name")
            if kind == "model" and len(p["files"]) > 1:
                raise ManifestError(N_("{where}: name applies to one file; give each file its own model unit"),
                                    where=where)
    if kind == "survey":
        models = entry.get("model")
        if models is not None:
            models = [models] if isinstance(models, str) else models
            if not isinstance(models, list) or not all(isinstance(m, str) and m for m in models):
                raise ManifestError(N_("{where}: model must be a model id or a list of them, got {model!r}"),
                                    where=where, model=entry["model"])
            p["model"] = sorted(set(models))
        p["epoch"] = day("epoch")
        p["register"] = entry.get("register", "auto")
        if p["register"] not in ("auto", "none"):
            raise ManifestError(N_("{where}: register {register!r}: use auto or none"), where=where,
                                register=p["register"])
        p["units"] = entry.get("units", "m")
        if p["units"] not in ("m", "mm"):
            raise ManifestError(N_("{where}: units {units!r}: use m or mm"), where=where, units=p["units"])
    if kind == "detect":
        from sitetwin.vision.sources import IMAGE_SUFFIXES, STREAM_SCHEMES, VIDEO_SUFFIXES

        source, pano = entry.get("source"), entry.get("pano")
        if (source is None) == (pano is None):
            raise ManifestError(N_("{where}: give source (an image, image folder or video) or pano (a stored "
                                   "panorama id), one of them"), where=where)
        if source is not None:
            if isinstance(source, str) and source.lower().startswith(STREAM_SCHEMES):
                raise ManifestError(N_("{where}: source {source}: a stream never ends, and a unit must; run "
                                       "`sitetwin detect` on streams"), where=where, source=source)
            p["source"] = ref("source", source)
            media = (*IMAGE_SUFFIXES, *VIDEO_SUFFIXES)
            if check_files and inputs.kind_of(p["source"]) == "file" and Path(p["source"]).suffix.lower() not in media:
                raise ManifestError(N_("{where}: source {source}: not an image or video (images: {images}; videos: "
                                       "{videos})"), where=where, source=source, images=", ".join(IMAGE_SUFFIXES),
                                    videos=", ".join(VIDEO_SUFFIXES))
        else:
            p["pano"] = text("pano")
        p["weights"] = ref("weights", entry["weights"], "file")
        if Path(p["weights"]).suffix.lower() not in (".pt", ".onnx"):
            raise ManifestError(N_("{where}: weights {weights}: expected a .pt or .onnx file"), where=where,
                                weights=entry["weights"])
        if entry.get("rules") is not None:
            p["rules"] = ref("rules", entry["rules"], "file")
        p["conf"] = _number(where, "conf", entry.get("conf", 0.25), 0.0, 1.0)
        imgsz = entry.get("imgsz", 640)
        if not isinstance(imgsz, int) or isinstance(imgsz, bool) or imgsz < 32 or imgsz % 32:
            raise ManifestError(N_("{where}: imgsz {imgsz!r}: a whole multiple of 32 (640, say)"), where=where,
                                imgsz=imgsz)
        p["imgsz"] = imgsz
    if kind == "score":
        p["as_of"] = day("as_of") or today
        scheme = entry.get("scheme", "provincial")
        if not isinstance(scheme, str) or not scheme:
            raise ManifestError(N_("{where}: scheme must be a packaged scheme name or a YAML/JSON file"), where=where)
        if scheme.lower().endswith(SCHEME_SUFFIXES):
            p["scheme_file"] = ref("scheme", scheme, "file")
        else:
            from sitetwin.data.errors import SitetwinError
            from sitetwin.oversight.evaluation import load_scheme

            try:
                load_scheme(scheme)
            except SitetwinError as exc:
                raise ManifestError(N_("{where}: scheme {scheme!r}: {error}"), where=where, scheme=scheme,
                                    error=exc) from None
            p["scheme"] = scheme
    return p


def _number(where: Phrase, key: str, value: Any, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        raise ManifestError(N_("{where}: {key} {value!r}: a number from {lo:g} to {hi:g}"), where=where, key=key,
                            value=value, lo=lo, hi=hi)
    return float(value)


@dataclass(frozen=True)
class StoreState:
    """What a store holds before the run: its sites and the keys of the units already done."""

    db: Path
    exists: bool
    sites: frozenset[str] = frozenset()
    done: frozenset[str] = frozenset()


def check_stores(manifest: Manifest) -> dict[Path, StoreState]:
    """Open every store the manifest names (read-only) and check each unit against it.

    A store that does not exist yet is fine for model units (loading a model creates it and its
    site); every other unit needs its site in its store, or a model unit of that site in the manifest.
    """
    from sitetwin.bim.queries import model_record
    from sitetwin.cluster.queries import done_keys
    from sitetwin.data.errors import StoreError
    from sitetwin.data.store import open_store
    from sitetwin.panorama.queries import pano_in_site

    name = manifest.path.name
    modelled = {(u.db, u.site) for u in manifest.units if u.kind == "model"}
    states: dict[Path, StoreState] = {}
    for db, units in manifest.stores().items():
        first = units[0]
        if db.is_dir():
            raise ManifestError(N_("{manifest}: {unit}: db {db} is a folder, not a store file"), manifest=name,
                                unit=first.label_phrase, db=db)
        if not db.exists():
            if not db.parent.is_dir():
                raise ManifestError(N_("{manifest}: {unit}: db {db}: folder {folder} does not exist"), manifest=name,
                                    unit=first.label_phrase, db=db, folder=db.parent)
            for u in units:
                if u.kind != "model" and (db, u.site) not in modelled:
                    raise ManifestError(N_("{manifest}: {unit}: no store at {db}; create it with `sitetwin init --db "
                                           "{db} --site {site}`, or load the site's model first (a model unit)"),
                                        manifest=name, unit=u.label_phrase, db=db, site=u.site)
            states[db] = StoreState(db, exists=False)
            continue
        try:
            store = open_store(db, read_only=True)
        except StoreError as exc:
            raise ManifestError(N_("{manifest}: {unit}: {error}"), manifest=name, unit=first.label_phrase,
                                error=exc) from None
        with store:
            sites = frozenset(r["site_code"] for r in store.rows("SELECT site_code FROM sites"))
            for u in units:
                if u.kind == "model":
                    continue
                if u.site not in sites and (db, u.site) not in modelled:
                    raise ManifestError(
                        N_("{manifest}: {unit}: no site {site} in {db} (sites: {sites}); load its model first (a "
                           "model unit) or create it with `sitetwin init --db {db} --site {site}`"), manifest=name,
                        unit=u.label_phrase, site=u.site, db=db, sites=", ".join(sorted(sites)) or Phrase(N_("none")))
                if u.kind == "survey" and u.params.get("model") and (db, u.site) not in modelled:
                    for model_id in u.params["model"]:
                        record = model_record(store, model_id)
                        if record is None or record["site_code"] != u.site:
                            raise ManifestError(N_("{manifest}: {unit}: no model {model} of site {site} in {db}"),
                                                manifest=name, unit=u.label_phrase, model=model_id, site=u.site, db=db)
                if u.kind == "detect" and u.params.get("pano") and not pano_in_site(store, u.site, u.params["pano"]):
                    raise ManifestError(N_("{manifest}: {unit}: no panorama {pano} of site {site} in {db}"),
                                        manifest=name, unit=u.label_phrase, pano=u.params["pano"], site=u.site, db=db)
            states[db] = StoreState(db, exists=True, sites=sites, done=frozenset(done_keys(store)))
    return states
