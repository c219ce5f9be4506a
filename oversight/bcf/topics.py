"""Findings as BCF topics: export to BCF 2.1/3.0 and import from BIMcollab, Solibri, Revit, Bonsai.

How a finding maps onto a topic (and back):

=====================  ==========================================================================
finding                BCF topic
=====================  ==========================================================================
finding_id             Topic Guid
title, description     Title, Description
raised_by, raised_at   CreationAuthor, CreationDate
category               TopicType (``Safety``...), unless the topic came from BCF with its own type
severity               Priority (``Critical``, ``High``, ``Medium``, ``Low``)
status                 TopicStatus: open ``Open``, rectification_submitted ``Resolved``,
                       verified_closed ``Closed``, reopened ``ReOpened``
due                    DueDate
labels                 Labels
events after raising   Comments (Guid = event id; status changes read "Rectification submitted: ...")
viewpoints             Viewpoints: camera (IFC world frame = local + site origin), selected
                       components by IFC GlobalId, snapshot
=====================  ==========================================================================

A finding with no stored viewpoint gets one at export: the panorama view in its evidence
(when it is a posed panorama of the finding's own site), else a 3D view onto its element
or location; the element is selected, and a snapshot is rendered from the site's model
when its geometry is in the cache. Export survives whatever is stored (issue 14): evidence
that does not resolve to the site's own panorama, a malformed view or a stored viewpoint that
cannot be read is left out with a warning that names the finding (never another record), and
every text reaches the file through ``data.text.printable``.

Importing adds each topic as a finding on the given site (Topic Guid = finding_id), or
updates the finding it came from: comments not seen before become ``comment`` events
(their Guid kept), new viewpoints are added, and a changed TopicStatus becomes an
``imported`` status event. Import is one transaction: the whole file is read and
checked first, and a bad file writes nothing (not even snapshot files).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sitetwin.bim.queries import element_boxes, list_models
from sitetwin.data.clock import utcnow
from sitetwin.data.errors import Note, Phrase
from sitetwin.data.i18n import N_
from sitetwin.data.store import Store, atomic
from sitetwin.data.text import printable
from sitetwin.oversight import audit
from sitetwin.oversight.bcf import camera as cam
from sitetwin.oversight.bcf.model import Archive, Comment, Component, Topic, Viewpoint
from sitetwin.oversight.bcf.read import read_bcf
from sitetwin.oversight.bcf.write import write_bcf
from sitetwin.oversight.errors import BcfError, FindingError
from sitetwin.oversight.findings import (
    CATEGORIES,
    REF_MAX,
    _append,
    _insert_finding,
    finding_history,
    get_finding,
    list_findings,
)
from sitetwin.oversight.scope import Scope
from sitetwin.panorama.queries import panorama_pose

STATUS_TO_BCF = {"open": "Open", "rectification_submitted": "Resolved", "verified_closed": "Closed",
                 "reopened": "ReOpened"}
_BCF_STATUS = {"closed": "verified_closed", "done": "verified_closed", "verified": "verified_closed",
               "approved": "verified_closed", "resolved": "rectification_submitted",
               "fixed": "rectification_submitted", "solved": "rectification_submitted",
               "in review": "rectification_submitted", "reopened": "reopened", "re-opened": "reopened"}
_PRIORITY = {"critical": "critical", "blocker": "critical", "urgent": "critical", "high": "high", "major": "high",
             "important": "high", "medium": "medium", "normal": "medium", "moderate": "medium", "low": "low",
             "minor": "low", "trivial": "low"}
_CATEGORY_WORDS = {"safety": ("safety", "hse", "hazard", "veiligheid"),
                   "progress": ("progress", "schedule", "delay", "planning"),
                   "environment": ("environment", "dust", "noise", "milieu"),
                   "quality": ("quality", "clash", "error", "issue", "fault", "kwaliteit", "warning")}
_KIND_LABEL = {"rectification_submitted": "Rectification submitted", "verified_closed": "Verified and closed",
               "reopened": "Reopened", "escalated": "Escalated", "due_changed": "Due date changed"}
_VP_NS = uuid.UUID("0c9f1d8e-3c2b-4d71-9a55-7b1e2f3a4c5d")


@dataclass(frozen=True)
class ExportReport:
    path: str
    version: str
    topics: int
    comments: int
    viewpoints: int
    snapshots: int
    components: int
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class ImportReport:
    source: str
    version: str
    site_code: str
    topics: int
    created: tuple[str, ...]
    updated: tuple[str, ...]
    comments_added: int
    viewpoints_added: int
    snapshots_saved: int
    components: int
    components_in_model: int          # component GlobalIds found among the site's elements
    warnings: tuple[str, ...] = field(default_factory=tuple)


# --------------------------------------------------------------------------------------
# viewpoints in the store

def add_viewpoint(store: Store, finding_id: str, *, scope: Scope, camera: dict | None = None,
                  selection: list[str] | tuple[str, ...] = (), snapshot: bytes | str | Path | None = None,
                  source: str = "view", viewpoint_id: str | None = None) -> str:
    """Attach a viewpoint (camera in the local frame, selected GlobalIds, optional snapshot) to a finding."""
    f = get_finding(store, scope, finding_id)
    audit.guard(store, scope, "comment", f.site_code, what=Phrase(N_("add a viewpoint")))
    if camera is not None:
        _check_camera(camera)
    data = _snapshot_bytes(snapshot)
    vid = str(uuid.UUID(viewpoint_id)) if viewpoint_id else str(uuid.uuid4())
    ext = "jpg" if data and data.startswith(b"\xff\xd8") else "png"
    rel = _snapshot_rel(f.finding_id, vid, ext) if data else None
    written = []
    try:
        with atomic(store):
            if rel and data:          # rel is set exactly when there is a snapshot
                written.append(_write_file(store, rel, data))
            idx = int(store.scalar("SELECT count(*) FROM finding_viewpoints WHERE finding_id = ?", [f.finding_id]))
            store.execute("INSERT INTO finding_viewpoints (viewpoint_id, finding_id, site_code, idx, camera, "
                          "components, snapshot, source, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                          [vid, f.finding_id, f.site_code, idx, camera,
                           {"selection": [{"ifc_guid": g} for g in selection],
                            "visibility": {"default": True, "exceptions": []}, "coloring": []},
                           rel, source, audit.utcnow()])
    except BaseException:
        for p in written:
            p.unlink(missing_ok=True)
        raise
    return vid


def finding_viewpoints(store: Store, scope: Scope, finding_id: str) -> list[dict]:
    """The stored viewpoints of a finding (camera in the local frame), in order."""
    f = get_finding(store, scope, finding_id)
    rows = store.rows("SELECT * FROM finding_viewpoints WHERE finding_id = ? ORDER BY idx, created_at",
                      [f.finding_id])
    for r in rows:
        for k in ("camera", "components", "clipping_planes", "lines"):
            if isinstance(r[k], str):
                r[k] = json.loads(r[k])
    return rows


# --------------------------------------------------------------------------------------
# export

def export_bcf(store: Store, scope: Scope, target: str | Path, *, site_code: str | None = None,
               finding_ids: list[str] | None = None, status: str | list[str] | None = None, version: str = "2.1",
               snapshots: bool = True) -> ExportReport:
    """Write findings in the caller's scope as a BCF ``version`` file at ``target``."""
    what = Phrase(N_("export BCF"))
    audit.guard(store, scope, "export", what=what)
    if finding_ids:
        found = [get_finding(store, scope, fid) for fid in finding_ids]
        for f in found:
            audit.guard(store, scope, "export", f.site_code, what=what)
    else:
        if site_code is not None:
            audit.guard(store, scope, "export", site_code, what=what)
        found = list_findings(store, scope, site_code=site_code, status=status)
    found.sort(key=lambda f: (f.site_code, f.number))
    warnings: list[Note] = []
    meshes: dict[str, object] = {}
    topics = []
    for f in found:
        topics.append(_topic(store, f, snapshots, meshes, warnings))
    sites = sorted({f.site_code for f in found})
    names = [r["name"] for r in store.rows(f"SELECT name FROM sites WHERE site_code IN ({_marks(sites)})", sites)] \
        if sites else []
    archive = Archive(version=version, topics=tuple(topics),
                      project_id=sites[0] if len(sites) == 1 else "sitetwin",
                      project_name=names[0] if len(names) == 1 else "sitetwin findings")
    write_bcf(archive, target, version=version)
    report = ExportReport(
        path=str(target), version=version, topics=len(topics), comments=sum(len(t.comments) for t in topics),
        viewpoints=sum(len(t.viewpoints) for t in topics),
        snapshots=sum(1 for t in topics for v in t.viewpoints if v.snapshot),
        components=len(set().union(*[v.component_guids() for t in topics for v in t.viewpoints])),
        warnings=tuple(dict.fromkeys(warnings)))
    for s in sites:
        audit.record(store, scope, "export", "bcf", str(target), site_code=s,
                     detail={"version": version, "topics": sum(1 for f in found if f.site_code == s)})
    return report


def _topic(store: Store, f, snapshots: bool, meshes: dict, warnings: list[Note]) -> Topic:
    row = store.one("SELECT bcf FROM findings WHERE finding_id = ?", [f.finding_id])
    bcf = _mapping(row["bcf"] if row else None)
    events = finding_history(store, Scope.system("bcf-export"), f.finding_id)
    comments = []
    for e in events:
        if e.kind in ("raised", "imported"):
            continue
        text = e.note or ""
        if e.kind != "comment":
            text = f"{_KIND_LABEL.get(e.kind, e.kind)}: {text}".rstrip(": ")
        comments.append(Comment(guid=e.event_id, date=e.occurred_at, author=e.actor, text=text,
                                viewpoint_guid=e.viewpoint_id))
    origin = _origin(store, f.site_code)
    viewpoints = []
    for r in store.rows("SELECT * FROM finding_viewpoints WHERE finding_id = ? ORDER BY idx, created_at",
                        [f.finding_id]):
        try:
            viewpoints.append(_stored_viewpoint(store, r, origin))
        except (KeyError, TypeError, ValueError, IndexError, AttributeError, BcfError):
            warnings.append(Note(N_("finding {ref}: a stored viewpoint cannot be read; it is left out"), ref=f.ref))
    if not viewpoints:
        vp = _default_viewpoint(store, f, origin, snapshots, meshes, warnings)
        if vp is not None:
            viewpoints.append(vp)
    last = events[-1]
    status = bcf["topic_status"] if bcf.get("topic_status") and bcf.get("imported_status") == f.status \
        else STATUS_TO_BCF[f.status]
    priority = bcf["priority"] if bcf.get("priority") and bcf.get("imported_severity") == f.severity \
        else f.severity.capitalize()
    due = None
    if f.due is not None:
        imported_due = _parse_dt(bcf["due_date"]) if bcf.get("due_date") and \
            bcf.get("imported_due") == f.due.isoformat() else None
        due = imported_due or dt.datetime.combine(f.due, dt.time(0, 0))
    header = tuple(x for x in _list(bcf.get("header_files")) or _model_files(store, f.site_code) if isinstance(x, dict))
    assigned = bcf.get("assigned_to") or store.scalar("SELECT contractor FROM site_profiles WHERE site_code = ?",
                                                      [f.site_code])
    index = bcf.get("index") if isinstance(bcf.get("index"), int) else f.number
    return Topic(
        guid=f.finding_id, title=f.title, creation_date=f.raised_at, creation_author=f.raised_by,
        topic_type=_str(bcf.get("topic_type")) or f.category.capitalize(), topic_status=_str(status),
        server_assigned_id=_str(bcf.get("server_assigned_id")) or f.ref, priority=_str(priority),
        index=index, labels=tuple(str(x) for x in f.labels),
        modified_date=last.occurred_at if len(events) > 1 else None,
        modified_author=last.actor if len(events) > 1 else None, due_date=due, assigned_to=_str(assigned),
        stage=_str(bcf.get("stage")), description=f.description or None,
        reference_links=tuple(str(x) for x in _list(bcf.get("reference_links"))),
        bim_snippet=bcf.get("bim_snippet") if isinstance(bcf.get("bim_snippet"), dict) else None,
        document_references=tuple(x for x in _list(bcf.get("document_references")) if isinstance(x, dict)),
        related_topics=tuple(str(x) for x in _list(bcf.get("related_topics"))), header_files=header,
        comments=tuple(comments), viewpoints=tuple(viewpoints))


def _stored_viewpoint(store: Store, r: dict, origin) -> Viewpoint:
    camera = _mapping(r["camera"]) or None
    comps = _mapping(r["components"])
    planes = _list(_json_value(r["clipping_planes"]))
    lines = _list(_json_value(r["lines"]))
    origin = np.asarray(origin)
    snapshot = ext = None
    if r["snapshot"]:
        path = _cache_file(store, r["snapshot"])
        if path is not None:
            snapshot, ext = path.read_bytes(), path.suffix.lstrip(".").lower()
    vis = comps.get("visibility") or {}
    return Viewpoint(
        guid=r["viewpoint_id"], camera=cam.to_bcf(camera, origin) if camera else None,
        selection=tuple(_component(c) for c in comps.get("selection", [])),
        visibility_default=bool(vis.get("default", True)),
        visibility_exceptions=tuple(_component(c) for c in vis.get("exceptions", [])),
        view_setup_hints=vis.get("hints") if isinstance(vis.get("hints"), dict) else None,
        coloring=tuple((str(c["color"]), tuple(_component(x) for x in c["components"]))
                       for c in comps.get("coloring", [])),
        clipping_planes=tuple((_xyz(np.asarray(p["location_m"], dtype=float) + origin), _xyz(p["direction"]))
                              for p in planes),
        lines=tuple((_xyz(np.asarray(x["start_m"], dtype=float) + origin),
                     _xyz(np.asarray(x["end_m"], dtype=float) + origin)) for x in lines),
        index=r["idx"], snapshot=snapshot, snapshot_ext=ext)


def _default_viewpoint(store: Store, f, origin, snapshots: bool, meshes: dict,
                       warnings: list[Note]) -> Viewpoint | None:
    evidence = f.evidence if isinstance(f.evidence, dict) else {}
    camera = _panorama_camera(store, f, evidence, warnings)
    selection = [f.global_id] if f.global_id else []
    selection += [g for g in _list(evidence.get("global_ids")) if isinstance(g, str) and g not in selection]
    if camera is None:
        bbox = None
        if f.global_id:
            boxes = element_boxes(store, f.site_code, [f.global_id]).dropna(subset=["bbox_min_x_m"])
            bbox = None if boxes.empty else {k: float(v) for k, v in boxes.iloc[0].items() if k.startswith("bbox_")}
        if bbox:
            lo = np.array([bbox["bbox_min_x_m"], bbox["bbox_min_y_m"], bbox["bbox_min_z_m"]])
            hi = np.array([bbox["bbox_max_x_m"], bbox["bbox_max_y_m"], bbox["bbox_max_z_m"]])
            camera = cam.camera_looking_at((lo + hi) / 2, float(np.linalg.norm(hi - lo)))
        elif f.location_m is not None:
            camera = cam.camera_looking_at(f.location_m, 4.0)
    if camera is None and not selection:
        return None
    snapshot = _evidence_snapshot(store, evidence)
    if snapshot is None and snapshots and camera is not None:
        snapshot = _render(store, f.site_code, camera, selection, meshes, warnings)
    return Viewpoint(guid=str(uuid.uuid5(_VP_NS, f.finding_id)),
                     camera=cam.to_bcf(camera, origin) if camera else None,
                     selection=tuple(Component(g, "sitetwin") for g in selection), visibility_default=True, index=0,
                     snapshot=snapshot, snapshot_ext="jpg" if snapshot and snapshot.startswith(b"\xff\xd8") else "png")


def _panorama_camera(store: Store, f, evidence: dict, warnings: list[Note]) -> dict | None:
    """The camera of the panorama view in a finding's evidence, or None (with a warning where it was named).

    Only a panorama of the finding's own site is read; one that is unknown, another site's, unposed or
    described by a malformed view is skipped with a warning that names the finding, never the panorama.
    """
    pano = evidence.get("panorama")
    if pano is None and evidence.get("pano_id"):
        # vision's hazard evidence: the panorama and the box (equirectangular pixels) the hazard was seen in
        pano = {"pano_id": evidence["pano_id"], "box_px": evidence.get("box_px")}
    if not pano:
        return None
    row = None
    if isinstance(pano, dict) and isinstance(pano.get("pano_id"), str):
        row = panorama_pose(store, pano["pano_id"])
    if row is None or row.get("site_code") != f.site_code:
        warnings.append(Note(N_("finding {ref}: its panorama evidence is not a panorama of site {site_code}; it gets "
                                "a 3D view instead"), ref=f.ref, site_code=f.site_code))
        return None
    pose = row.get("T_model_from_camera")
    if not pose:
        warnings.append(Note(N_("finding {ref}: its panorama has no pose; it gets a 3D view instead"), ref=f.ref))
        return None
    try:
        yaw = _angle(pano.get("yaw_deg"), 0.0)
        pitch = _angle(pano.get("pitch_deg"), 0.0)
        if "yaw_deg" not in pano and pano.get("box_px") and row.get("width"):
            # look at the box centre: azimuth = pi (1 - 2u/W), elevation = pi (1/2 - v/H) (panorama.camera)
            x1, y1, x2, y2 = (float(v) for v in pano["box_px"])
            u, v = (x1 + x2) / 2 % row["width"], (y1 + y2) / 2
            yaw, pitch = 180.0 * (1 - 2 * u / row["width"]), 180.0 * (0.5 - v / row["height"])
        fov = _angle(pano.get("fov_deg"), cam.DEFAULT_FOV_DEG)
        if not (math.isfinite(yaw) and math.isfinite(pitch)):
            raise ValueError("not finite")
        return cam.camera_from_panorama(pose, yaw, min(max(pitch, -90.0), 90.0), min(max(fov, 1.0), 178.0))
    except (TypeError, ValueError, ZeroDivisionError, BcfError):
        warnings.append(Note(N_("finding {ref}: its panorama view is malformed; it gets a 3D view instead"), ref=f.ref))
        return None


def _angle(value, default: float) -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"not a number: {value!r}")
    return float(value)


def _evidence_snapshot(store: Store, evidence: dict) -> bytes | None:
    ref = evidence.get("snapshot")
    if not ref or not isinstance(ref, str):
        return None
    path = _cache_file(store, ref)
    if path is not None and path.suffix.lower() in (".png", ".jpg", ".jpeg"):
        data = path.read_bytes()
        if data.startswith(b"\x89PNG") or data.startswith(b"\xff\xd8"):
            return data
    return None


def _cache_file(store: Store, rel: str) -> Path | None:
    """A file inside the store's cache folder named by a stored relative path; None for anything else."""
    if not isinstance(rel, str) or not rel:
        return None
    base = Path(store.cache_dir).resolve()
    try:
        path = (base / rel).resolve()
    except (OSError, ValueError):
        return None
    if not path.is_relative_to(base) or not path.is_file():
        return None
    return path


def _mapping(value) -> dict:
    value = _json_value(value)
    return value if isinstance(value, dict) else {}


def _list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else []


def _json_value(value):
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def _xyz(v) -> tuple[float, float, float]:
    x, y, z = (float(a) for a in v)
    return x, y, z


def _str(value) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _render(store: Store, site_code: str, camera: dict, selection: list[str], meshes: dict,
            warnings: list[Note]) -> bytes | None:
    if site_code not in meshes:
        from sitetwin.bim.mesh import load_mesh
        from sitetwin.data.errors import SitetwinError

        try:
            meshes[site_code] = load_mesh(store, site_code=site_code) if list_models(
                store, site_code=site_code, current=True) else None
        except SitetwinError as exc:
            warnings.append(Note(N_("site {site_code}: no snapshots ({error})"), site_code=site_code,
                                 error=Phrase(exc.template, **exc.fields)))
            meshes[site_code] = None
    mesh = meshes[site_code]
    if mesh is None or mesh.triangle_count == 0:
        return None
    from sitetwin.oversight.bcf.snapshot import render_snapshot

    return render_snapshot(mesh, camera, selection)


# --------------------------------------------------------------------------------------
# import

def import_bcf(store: Store, scope: Scope, source: str | Path | bytes, *, site_code: str,
               name: str | None = None) -> ImportReport:
    """Read a BCF file and add or update its topics as findings of ``site_code`` (one transaction)."""
    audit.guard(store, scope, "import", site_code, what=Phrase(N_("import BCF")), object_kind="bcf")
    label = name or (Path(source).name if not isinstance(source, bytes) else "BCF data")
    archive = read_bcf(source, name=label)
    label = " ".join(printable(label).split())[:REF_MAX] or "BCF data"     # stored as the findings' source_ref
    origin = _origin(store, site_code)
    elements = _element_index(store, site_code, archive)
    _check_ids(store, archive, site_code, label)
    created: list[str] = []
    updated: list[str] = []
    warnings: list[Note] = []
    comments_added = viewpoints_added = 0
    written: list[Path] = []
    all_guids: set[str] = set()
    try:
        with atomic(store):
            for t in archive.topics:
                guids = set().union(*[v.component_guids() for v in t.viewpoints]) if t.viewpoints else set()
                all_guids |= guids
                exists = store.one("SELECT site_code FROM findings WHERE finding_id = ?", [t.guid])
                if exists is None:
                    _create(store, scope, t, site_code, label, archive, elements)
                    created.append(t.guid)
                else:
                    updated.append(t.guid)
                comments_added += _add_comments(store, t, site_code)
                v_added, files = _add_viewpoints(store, t, site_code, origin)
                viewpoints_added += v_added
                written += files
                _sync_status(store, scope, t, label)
            audit.record(store, scope, "import", "bcf", label, site_code=site_code,
                         detail={"topics": len(archive.topics), "created": len(created)})
    except BaseException as exc:
        for p in written:
            p.unlink(missing_ok=True)
        if isinstance(exc, FindingError):     # a value the findings refuse: the file's problem, one error class
            raise BcfError(N_("{label}: {problem}"), label=label, problem=Phrase(exc.template, **exc.fields)) from None
        raise
    in_model = sum(1 for g in all_guids if g in elements)
    if all_guids and not in_model:
        warnings.append(Note(N_("none of the {n} component GlobalIds is an element of site {site_code}'s current "
                                "models; load the models the BCF file refers to"), n=len(all_guids),
                             site_code=site_code))
    return ImportReport(source=label, version=archive.version, site_code=site_code, topics=len(archive.topics),
                        created=tuple(created), updated=tuple(updated), comments_added=comments_added,
                        viewpoints_added=viewpoints_added, snapshots_saved=len(written), components=len(all_guids),
                        components_in_model=in_model, warnings=tuple(warnings))


def _check_ids(store: Store, archive: Archive, site_code: str, label: str) -> None:
    """Every id in the file is new, or already belongs to the same topic on the same site."""
    for t in archive.topics:
        row = store.one("SELECT site_code FROM findings WHERE finding_id = ?", [t.guid])
        if row is not None and row["site_code"] != site_code:
            raise BcfError(N_("{label}: topic {guid} is already a finding of site {other_site}, "
                              "not {site_code}; import it there"), label=label, guid=t.guid,
                           other_site=row["site_code"], site_code=site_code)
        for c in t.comments:
            other = store.scalar("SELECT finding_id FROM finding_events WHERE event_id = ?", [c.guid])
            if other is not None and other != t.guid:
                raise BcfError(N_("{label}: comment {guid} already belongs to another finding ({other})"),
                               label=label, guid=c.guid, other=other)
        for v in t.viewpoints:
            other = store.scalar("SELECT finding_id FROM finding_viewpoints WHERE viewpoint_id = ?", [v.guid])
            if other is not None and other != t.guid:
                raise BcfError(N_("{label}: viewpoint {guid} already belongs to another finding ({other})"),
                               label=label, guid=v.guid, other=other)


def _create(store: Store, scope: Scope, t: Topic, site_code: str, label: str, archive: Archive,
            elements: dict) -> None:
    category = _category(t)
    severity = _PRIORITY.get((t.priority or "").strip().lower(), "medium")
    status = _status(t.topic_status)
    selected = [c.ifc_guid for v in t.viewpoints for c in v.selection if c.ifc_guid]
    others = [g for v in t.viewpoints for g in sorted(v.component_guids())]
    primary = next((g for g in selected + others if g in elements), selected[0] if selected else None)
    location = None
    if primary in elements and elements[primary]["center"] is not None:
        location = elements[primary]["center"]
    due = t.due_date.date() if t.due_date else None
    bcf = {"source_version": archive.version, "project_id": archive.project_id, "project_name": archive.project_name,
           "topic_type": t.topic_type, "topic_status": t.topic_status, "imported_status": status,
           "priority": t.priority, "imported_severity": severity, "server_assigned_id": t.server_assigned_id,
           "index": t.index, "reference_links": list(t.reference_links), "assigned_to": t.assigned_to,
           "stage": t.stage, "bim_snippet": t.bim_snippet, "document_references": list(t.document_references),
           "related_topics": list(t.related_topics), "header_files": list(t.header_files),
           "due_date": _iso(t.due_date) if t.due_date else None, "imported_due": due.isoformat() if due else None,
           "modified_date": _iso(t.modified_date) if t.modified_date else None, "modified_author": t.modified_author}
    evidence = {"global_ids": sorted(set(selected + others))} if (selected or others) else None
    _insert_finding(store, site_code=site_code, category=category, severity=severity, title=t.title,
                    description=t.description or "", raised_by=t.creation_author or scope.actor, global_id=primary,
                    model_id=None, storey=None, location_m=location, evidence=evidence,
                    due=due, default_due=False, source="bcf", source_ref=label,
                    labels=list(t.labels), at=t.creation_date, finding_id=t.guid, bcf=bcf, status=status)


def _add_comments(store: Store, t: Topic, site_code: str) -> int:
    added = 0
    for c in sorted(t.comments, key=lambda c: c.date):
        if store.scalar("SELECT count(*) FROM finding_events WHERE event_id = ?", [c.guid]):
            continue
        evidence = {"bcf": {k: v for k, v in {"reply_to": c.reply_to, "modified_author": c.modified_author,
                                              "modified_date": _iso(c.modified_date) if c.modified_date else None
                                              }.items() if v}} if (c.reply_to or c.modified_date) else None
        _append(store, t.guid, site_code, kind="comment", actor=c.author or "unknown", at=c.date, note=c.text,
                evidence=evidence, viewpoint_id=c.viewpoint_guid, event_id=c.guid)
        added += 1
    return added


def _add_viewpoints(store: Store, t: Topic, site_code: str, origin) -> tuple[int, list[Path]]:
    added, files = 0, []
    origin = np.asarray(origin)
    for i, v in enumerate(t.viewpoints):
        if store.scalar("SELECT count(*) FROM finding_viewpoints WHERE viewpoint_id = ?", [v.guid]):
            continue
        rel = None
        if v.snapshot:
            rel = _snapshot_rel(t.guid, v.guid, v.snapshot_ext or "png")
            files.append(_write_file(store, rel, v.snapshot))
        comps = {"selection": [_component_json(c) for c in v.selection],
                 "visibility": {"default": v.visibility_default,
                                "exceptions": [_component_json(c) for c in v.visibility_exceptions],
                                **({"hints": v.view_setup_hints} if v.view_setup_hints else {})},
                 "coloring": [{"color": color, "components": [_component_json(c) for c in comps]}
                              for color, comps in v.coloring]}
        planes = [{"location_m": (np.asarray(loc) - origin).tolist(), "direction": list(d)}
                  for loc, d in v.clipping_planes]
        lines = [{"start_m": (np.asarray(a) - origin).tolist(), "end_m": (np.asarray(b) - origin).tolist()}
                 for a, b in v.lines]
        store.execute("INSERT INTO finding_viewpoints (viewpoint_id, finding_id, site_code, idx, camera, components, "
                      "clipping_planes, lines, snapshot, source, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      [v.guid, t.guid, site_code, v.index if v.index is not None else i,
                       cam.from_bcf(v.camera, origin) if v.camera else None, comps, planes, lines, rel, "bcf",
                       audit.utcnow()])
        added += 1
    return added, files


def _sync_status(store: Store, scope: Scope, t: Topic, label: str) -> None:
    wanted = _status(t.topic_status)
    current = store.one("SELECT status, status_at FROM finding_state WHERE finding_id = ?", [t.guid])
    assert current is not None      # the topic's finding was found or created before its status is synced
    if current["status"] == wanted:
        return
    modified = t.modified_date or t.creation_date
    if current["status_at"] is not None and modified is not None and modified < current["status_at"]:
        return                     # our change is newer than the file's
    site = store.scalar("SELECT site_code FROM findings WHERE finding_id = ?", [t.guid])
    _append(store, t.guid, site, kind="imported", actor=scope.actor, at=utcnow(), status=wanted,
            note=f"TopicStatus {t.topic_status!r} from {label}")


# --------------------------------------------------------------------------------------
# helpers

def _element_index(store: Store, site_code: str, archive: Archive) -> dict[str, dict]:
    guids = sorted(set().union(*[v.component_guids() for t in archive.topics for v in t.viewpoints])) \
        if any(t.viewpoints for t in archive.topics) else []
    if not guids:
        return {}
    from sitetwin.oversight.risk import _records

    out = {}
    for r in _records(element_boxes(store, site_code, guids)):
        center = None
        if r["bbox_min_x_m"] is not None:
            center = [(r[f"bbox_min_{a}_m"] + r[f"bbox_max_{a}_m"]) / 2 for a in "xyz"]
        out[r["global_id"]] = {"model_id": r["model_id"], "storey": r["storey"], "center": center}
    return out


def _marks(values) -> str:
    return ", ".join("?" for _ in values)


def _category(t: Topic) -> str:
    words = [(t.topic_type or "").lower()] + [x.lower() for x in t.labels]
    for w in words:
        if w in CATEGORIES:
            return w
    for category, synonyms in _CATEGORY_WORDS.items():
        if any(any(s in w for s in synonyms) for w in words):
            return category
    return "quality"


def _status(topic_status: str | None) -> str:
    return _BCF_STATUS.get((topic_status or "").strip().lower(), "open")


def _component(c: dict) -> Component:
    return Component(c.get("ifc_guid"), c.get("originating_system"), c.get("authoring_tool_id"))


def _component_json(c: Component) -> dict:
    return {k: v for k, v in (("ifc_guid", c.ifc_guid), ("originating_system", c.originating_system),
                              ("authoring_tool_id", c.authoring_tool_id)) if v}


def _origin(store: Store, site_code: str) -> list[float]:
    row = store.one("SELECT origin_x_m, origin_y_m, origin_z_m FROM sites WHERE site_code = ?", [site_code])
    return [row["origin_x_m"], row["origin_y_m"], row["origin_z_m"]] if row else [0.0, 0.0, 0.0]


def _model_files(store: Store, site_code: str) -> list[dict]:
    return [{"filename": r["file_name"], "date": r["loaded_at"], "is_external": True}
            for r in list_models(store, site_code=site_code, current=True)]


def _snapshot_rel(finding_id: str, viewpoint_id: str, ext: str) -> str:
    # built only from validated UUIDs and a fixed extension: no name from the file reaches the disk
    return f"bcf/{uuid.UUID(finding_id)}/{uuid.UUID(viewpoint_id)}.{'jpg' if ext == 'jpg' else 'png'}"


def _write_file(store: Store, rel: str, data: bytes) -> Path:
    path = Path(store.cache_dir) / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _snapshot_bytes(snapshot) -> bytes | None:
    if snapshot is None:
        return None
    data = snapshot if isinstance(snapshot, bytes) else Path(snapshot).read_bytes()
    if not (data.startswith(b"\x89PNG") or data.startswith(b"\xff\xd8")):
        raise BcfError(N_("a snapshot must be a PNG or JPEG image"))
    return data


def _check_camera(camera: dict) -> None:
    try:
        for k in ("position_m", "direction", "up"):
            if len(camera[k]) != 3:
                raise ValueError(k)
        np.asarray([camera["position_m"], camera["direction"], camera["up"]], dtype=np.float64)
    except (KeyError, TypeError, ValueError) as exc:
        raise BcfError(N_("a camera needs position_m, direction and up as three numbers each ({error})"),
                       error=str(exc)) from None


def _iso(value: dt.datetime) -> str:
    return value.isoformat()


def _parse_dt(text) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
