"""The data catalogue: every data source of a site, its unified identifier, owner, last update and
completeness; a data-quality measure per site and district; exchange packages between platforms.

Unified identifiers are ``<site_code>/<kind>/<id>`` (``DEMO/model/structure@v2``,
``DEMO/survey/S1a2b...``, ``DEMO/camera/gate-1``, ``DEMO/sensor/DEMO-CRANE-01``): the same on
the project, district and city platforms, because every row carries its site code and
its own id.

Completeness per entry (0..1):

=========  ==========================================================================
model      share of its elements with geometry and a storey
schedule   share of its (non-summary) tasks linked to model elements
survey     mean coverage of the elements it saw (``element_deviation.coverage``)
panoramas  share of the site's panoramas with a pose in the model
camera     share of the last 7 days on which the camera delivered detections
sensor     readings received in the last day over those expected (``interval_s``), capped at 1
findings   share of findings with an element or a location
=========  ==========================================================================

Data quality of a site = 0.4 * coverage (share of the expected kinds present: model,
schedule, survey, panoramas, camera, sensor) + 0.4 * mean completeness of its entries
+ 0.2 * freshness (1 when the newest entry is at most 7 days old, falling linearly to 0
at 60 days). A district's (or city's) is the mean over its sites.

Exchange packages build on ``data.exchange``: the site-scoped rows of every table with a
``site_code`` column, and the enterprises those sites name (their construction enterprise and
subcontractors, ``data.exchange.package_tables``), go to Parquet with a manifest, which gains a
``package`` section (level, sites, who made it). An imported package may carry only enterprises
that its own sites name. Accounts, sessions, tokens, login attempts, the audit log
and device tokens never leave a platform. A district platform imports a project's
package, a city platform a district's.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import uuid
from collections import Counter
from pathlib import Path

from sitetwin.bim.queries import list_models, model_element_counts, schedule_links
from sitetwin.data.clock import utcnow
from sitetwin.data.errors import Phrase
from sitetwin.data.exchange import PRIVATE_TABLES
from sitetwin.data.i18n import N_
from sitetwin.data.store import Store
from sitetwin.oversight import audit
from sitetwin.oversight.errors import AccessDenied, OversightError
from sitetwin.oversight.scope import Scope
from sitetwin.panorama.queries import panorama_summary
from sitetwin.sensors.queries import reading_counts, site_devices
from sitetwin.twin.queries import site_surveys
from sitetwin.vision.queries import camera_activity

KINDS = ("model", "schedule", "survey", "panoramas", "camera", "sensor")
LEVELS = ("project", "district", "city")
FRESH_DAYS, STALE_DAYS = 7, 60


def catalogue(store: Store, scope: Scope, *, site_code: str | None = None, district: str | None = None,
              as_of: dt.date | str | None = None) -> list[dict]:
    """Every data source of the sites in scope (optionally one site or district)."""
    scope.require("read")
    if site_code is not None:
        _require(store, scope, site_code)
    day = _day(as_of)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time())
    cond, params = scope.where("s.site_code")
    sites = store.rows(f"SELECT s.site_code, p.data_owner, p.contractor FROM sites s LEFT JOIN site_profiles p "
                       f"USING (site_code) WHERE {cond} "
                       f"AND (? IS NULL OR s.site_code = ?) AND (? IS NULL OR s.district = ?) ORDER BY 1",
                       [*params, site_code, site_code, district, district])
    entries: list[dict] = []
    for s in sites:
        owner = s["data_owner"] or s["contractor"] or "unassigned"
        entries += _entries(store, s["site_code"], owner, end)
    audit.record(store, scope, "view", "catalogue", None, site_code=site_code,
                 detail={"entries": len(entries), "district": district})
    return entries


def _entries(store: Store, site: str, owner: str, end: dt.datetime) -> list[dict]:
    from sitetwin.oversight.risk import _first, _records

    out = []

    def add(kind, ident, name, last, completeness, detail):
        out.append({"uid": f"{site}/{kind}/{ident}", "site_code": site, "kind": kind, "id": ident, "name": name,
                    "owner": owner, "last_update": last,
                    "completeness": None if completeness is None else round(float(completeness), 4),
                    "detail": detail})

    models = [m for m in list_models(store, site_code=site, current=True) if m["loaded_at"] < end]
    versions = Counter(m["name"] for m in list_models(store, site_code=site))
    counts = {r["model_id"]: r for r in _records(model_element_counts(store, [m["model_id"] for m in models]))}
    for m in models:
        n = counts.get(m["model_id"], {"elements": 0, "placed": 0})
        add("model", f"{m['name']}@v{m['version']}", m["name"], m["loaded_at"],
            n["placed"] / n["elements"] if n["elements"] else 0.0,
            {"model_id": m["model_id"], "elements": n["elements"], "versions": versions[m["name"]]})
    for sch in _records(schedule_links(store, site, imported_before=end)):
        add("schedule", sch["schedule_id"], sch["name"], sch["imported_at"],
            min(1.0, sch["linked_tasks"] / sch["tasks"]) if sch["tasks"] else 0.0,
            {"tasks": sch["tasks"], "linked_tasks": sch["linked_tasks"]})
    for sv in _records(site_surveys(store, [site], created_before=end)):
        comp = sv["mean_coverage"] if sv["mean_coverage"] is not None else sv["fitness"]
        add("survey", sv["survey_id"], sv["name"], sv["surveyed_at"], min(1.0, comp) if comp is not None else None,
            {"points": sv["point_count"], "fitness": sv["fitness"]})
    panoramas = panorama_summary(store, [site], added_before=end)
    if _first(panoramas, "panoramas", 0):
        p = _records(panoramas)[0]
        add("panoramas", "all", f"{p['panoramas']} panoramas", p["last_at"], p["posed"] / p["panoramas"],
            {"panoramas": p["panoramas"], "posed": p["posed"]})
    for c in _records(camera_activity(store, site, since=end - dt.timedelta(days=7), until=end)):
        add("camera", c["camera_id"], c["name"] or c["camera_id"], c["last_captured_at"] or c["added_at"],
            c["detection_days"] / 7, {"days_with_detections_7d": c["detection_days"]})
    devices = [d for d in _records(site_devices(store, [site]))
               if d["created_at"] < end and (d["removed_on"] is None or d["removed_on"].date() >= end.date())]
    received = {r["device_id"]: r for r in _records(reading_counts(store, [d["device_id"] for d in devices],
                                                                   since=end - dt.timedelta(days=1), until=end))}
    for d in devices:
        r = received.get(d["device_id"], {"readings": 0, "channels": 0})
        expected = 86400.0 / d["interval_s"] * max(r["channels"] or 1, 1) if d["interval_s"] else None
        comp = min(1.0, r["readings"] / expected) if expected else None
        add("sensor", d["device_id"], d["name"] or d["device_type"], d["last_measured_at"], comp,
            {"type": d["device_type"], "readings_24h": r["readings"]})
    f = store.one("SELECT count(*) AS n, count(*) FILTER (WHERE global_id IS NOT NULL OR x_m IS NOT NULL) AS placed, "
                  "(SELECT max(occurred_at) FROM finding_events e WHERE e.site_code = ? AND e.occurred_at < ?) AS last "
                  "FROM findings WHERE site_code = ? AND raised_at < ?", [site, end, site, end])
    assert f is not None        # a count is always one row
    if f["n"]:
        add("findings", "all", f"{f['n']} findings", f["last"], f["placed"] / f["n"], {"findings": f["n"]})
    return out


def data_quality(store: Store, scope: Scope, *, site_code: str | None = None, by: str | None = None,
                 as_of: dt.date | str | None = None) -> list[dict]:
    """The data-quality measure per site (default), or per ``by="district"``/``"city"`` (mean over sites)."""
    entries = catalogue(store, scope, site_code=site_code, as_of=as_of)
    day = _day(as_of)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time())
    cond, params = scope.where("site_code")
    sites = store.rows(f"SELECT site_code, district, city FROM sites WHERE {cond} AND (? IS NULL OR site_code = ?) "
                       f"ORDER BY site_code", [*params, site_code, site_code])
    per_site = []
    for s in sites:
        mine = [e for e in entries if e["site_code"] == s["site_code"]]
        kinds = {e["kind"] for e in mine} & set(KINDS)
        coverage = len(kinds) / len(KINDS)
        comps = [e["completeness"] for e in mine if e["completeness"] is not None]
        completeness = sum(comps) / len(comps) if comps else 0.0
        last = max((e["last_update"] for e in mine if e["last_update"] is not None), default=None)
        if isinstance(last, dt.date) and not isinstance(last, dt.datetime):
            last = dt.datetime.combine(last, dt.time())
        age = (end - last).total_seconds() / 86400 if last else None
        freshness = 0.0 if age is None else max(0.0, min(1.0, (STALE_DAYS - age) / (STALE_DAYS - FRESH_DAYS)))
        score = 0.4 * coverage + 0.4 * completeness + 0.2 * freshness
        per_site.append({"site_code": s["site_code"], "district": s["district"], "city": s["city"],
                         "quality": round(score, 4), "coverage": round(coverage, 4),
                         "completeness": round(completeness, 4), "freshness": round(freshness, 4),
                         "missing": sorted(set(KINDS) - kinds), "last_update": last})
    if by is None:
        return per_site
    if by not in ("district", "city"):
        raise OversightError(N_("data quality by {by!r}: use district or city"), by=by)
    groups: dict[tuple, list[dict]] = {}
    for r in per_site:
        key: tuple = (r["city"], r["district"]) if by == "district" else (r["city"],)
        groups.setdefault(key, []).append(r)
    out = []
    for key, rows in sorted(groups.items(), key=lambda kv: tuple(str(k) for k in kv[0])):
        out.append({**({"city": key[0], "district": key[1]} if by == "district" else {"city": key[0]}),
                    "sites": len(rows), "quality": round(sum(r["quality"] for r in rows) / len(rows), 4),
                    "worst_site": min(rows, key=lambda r: r["quality"])["site_code"]})
    return out


# --------------------------------------------------------------------------------------
# exchange packages

def export_package(store: Store, scope: Scope, out_dir: str | Path, *, sites: list[str] | None = None,
                   district: str | None = None, level: str = "project") -> dict:
    """Write the rows of the given sites (default: all in scope) as a Parquet package with a manifest.

    ``level`` names the platform that makes it (``project``, ``district`` or ``city``).
    """
    from sitetwin.data.exchange import MANIFEST, export_sites

    audit.guard(store, scope, "export", what=Phrase(N_("export a package")))
    if level not in LEVELS:
        raise OversightError(N_("level {level!r}: use one of {levels}"), level=level, levels=", ".join(LEVELS))
    chosen = sites or [s for s in scope.site_codes(store)
                       if district is None
                       or store.scalar("SELECT district FROM sites WHERE site_code = ?", [s]) == district]
    for s in chosen:
        _require(store, scope, s, "export")
    if not chosen:
        raise OversightError(N_("no site to export in your scope"))
    out = Path(out_dir)
    # the sites' rows, and the enterprises that build them (data.exchange.package_tables)
    manifest = export_sites(store, out, chosen)
    package_id = str(uuid.uuid4())
    manifest["package"] = {"package_id": package_id, "level": level, "sites": chosen, "made_by": scope.actor,
                           "made_at": utcnow().isoformat(timespec="seconds"),
                           "source": store.label}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str), encoding="utf-8")
    with (store.transaction() if not store.read_only else contextlib.nullcontext()):
        if not store.read_only:
            for s in chosen:
                store.execute("INSERT INTO exchange_packages (package_id, site_code, direction, level, path, actor, "
                              "done_at, manifest) VALUES (?, ?, 'export', ?, ?, ?, ?, ?)",
                              [f"{package_id}:{s}", s, level, str(out), scope.actor, utcnow(),
                               {"tables": {t: m["rows"] for t, m in manifest["tables"].items()}}])
        for s in chosen:
            audit.record(store, scope, "export", "package", package_id, site_code=s, detail={"level": level,
                                                                                           "path": str(out)})
    return manifest


def import_package(store: Store, scope: Scope, src: str | Path, *, level: str = "district") -> dict:
    """Take in a package from the level below (``level`` is this platform's: district takes project
    packages, city takes district ones). Sites must be in the caller's scope; one transaction."""
    from sitetwin.data.exchange import MANIFEST, import_tables

    audit.guard(store, scope, "import", what=Phrase(N_("import a package")))
    if level not in LEVELS[1:]:
        raise OversightError(N_("a {level!r} platform does not import packages; use district or city"), level=level)
    path = Path(src) / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        package = manifest["package"]
        sites = list(package["sites"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise OversightError(N_("{src}: not a sitetwin exchange package ({error})"), src=src, error=str(exc)) from None
    made_by = package.get("level")
    if LEVELS.index(made_by) >= LEVELS.index(level):
        raise OversightError(N_("{src}: a {made_by} package cannot be imported by a {level} platform "
                                "(packages go up: project -> district -> city)"), src=src, made_by=made_by,
                             level=level)
    private = sorted(set(manifest.get("tables", {})) & PRIVATE_TABLES)
    if private:
        raise OversightError(N_("{src}: carries private tables ({tables}); refused"), src=src,
                             tables=", ".join(private))
    # the sites table arrives with the package: judge scope by the store's row, else the package's
    site_rows = _package_sites(Path(src), manifest)
    stray = sorted(_package_enterprises(Path(src), manifest) - _named_enterprises(Path(src), manifest, sites))
    if stray:
        raise OversightError(N_("{src}: enterprises.parquet: enterprise_code {codes} is named by none of "
                                "the package's sites; refused"), src=src, codes=", ".join(stray))
    for s in sites:
        if s not in site_rows:
            raise OversightError(N_("{src}: site {site_code} is listed but its row is missing"), src=src,
                                 site_code=s)
        known = store.one("SELECT district, city FROM sites WHERE site_code = ?", [s]) or site_rows[s]
        if not scope.admits_site(s, known.get("district"), known.get("city")):
            audit.record(store, scope, "denied", "package", package.get("package_id"), site_code=s,
                         detail={"action": "import"})
            raise AccessDenied(N_("{actor} ({role}): site {site_code} in {src} is not in your scope"),
                               actor=scope.actor, role=scope.role, site_code=s, src=src)
    report = import_tables(store, src)
    with store.transaction():
        for s in sites:
            store.execute("INSERT INTO exchange_packages (package_id, site_code, direction, level, path, actor, "
                          "done_at, manifest) VALUES (?, ?, 'import', ?, ?, ?, ?, ?)",
                          [f"{package.get('package_id')}:{s}:in:{uuid.uuid4().hex[:8]}", s, made_by, str(src),
                           scope.actor, utcnow(), {"report": report}])
            audit.record(store, scope, "import", "package", package.get("package_id"), site_code=s,
                         detail={"from_level": made_by})
    return {"package_id": package.get("package_id"), "from_level": made_by, "sites": sites, "tables": report}


def _package_sites(src: Path, manifest: dict) -> dict[str, dict]:
    import pyarrow.parquet as pq

    meta = manifest.get("tables", {}).get("sites")
    if not meta:
        return {}
    table = pq.read_table(src / meta["file"], columns=["site_code", "district", "city"])
    return {r["site_code"]: r for r in table.to_pylist()}


def _package_column(src: Path, manifest: dict, table: str, columns: list[str]) -> list[dict]:
    import pyarrow.parquet as pq

    meta = manifest.get("tables", {}).get(table)
    if not meta:
        return []
    try:
        return pq.read_table(src / meta["file"], columns=columns).to_pylist()
    except Exception as exc:
        raise OversightError(N_("{path}: not a readable {table} table ({error})"), path=src / str(meta.get("file")),
                             table=table, error=str(exc)) from None


def _package_enterprises(src: Path, manifest: dict) -> set[str]:
    return {r["enterprise_code"] for r in _package_column(src, manifest, "enterprises", ["enterprise_code"])}


def _named_enterprises(src: Path, manifest: dict, sites: list[str]) -> set[str]:
    """The enterprises the package's own sites name: their construction enterprise and subcontractors."""
    rows = (_package_column(src, manifest, "sites", ["site_code", "enterprise_code"])
            if "enterprise_code" in _parquet_columns(src, manifest, "sites") else [])
    rows += _package_column(src, manifest, "site_subcontractors", ["site_code", "enterprise_code"])
    return {r["enterprise_code"] for r in rows if r["site_code"] in sites and r["enterprise_code"]}


def _parquet_columns(src: Path, manifest: dict, table: str) -> list[str]:
    import pyarrow.parquet as pq

    meta = manifest.get("tables", {}).get(table)
    return list(pq.read_schema(src / meta["file"]).names) if meta else []


def _require(store: Store, scope: Scope, site_code: str, action: str = "read") -> None:
    audit.guard(store, scope, action, site_code)


def _day(value) -> dt.date:
    from sitetwin.oversight.risk import _day as day

    return day(value)
