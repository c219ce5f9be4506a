"""Write an ``Archive`` as a BCF 2.1 or 3.0 file that BIMcollab, Solibri, Revit and Bonsai open.

The element order and optionality follow the buildingSMART BCF-XML schemas (markup.xsd,
visinfo.xsd, version.xsd, project.xsd, extensions.xsd) of each version; the tests
validate the output against them when the schemas are at hand. Where a version
requires something the archive lacks, the writer fills in a documented default rather
than emit an invalid file:

- 3.0 requires ``TopicType`` and ``TopicStatus`` (default ``Issue`` / ``Open``), a camera
  in every viewpoint (a view from above the origin when none was recorded) and an
  ``AspectRatio`` (4:3 when none was recorded);
- 2.1 requires ``Visibility`` inside ``Components`` (``DefaultVisibility="true"``) and
  ``ExtensionSchema`` in ``project.bcfp`` (empty);
- 2.1 limits ``FieldOfView`` to 1..170 degrees (clamped).
Empty optional lists are left out (2.1 requires at least one child where a list appears).
"""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from pathlib import Path

from sitetwin.oversight.bcf.model import Archive, Camera, Comment, Component, Topic, Viewpoint
from sitetwin.oversight.errors import BcfError

VERSIONS = ("2.1", "3.0")
DEFAULT_TOPIC_TYPE = "Issue"
DEFAULT_TOPIC_STATUS = "Open"
DEFAULT_ASPECT = 4.0 / 3.0
_DEFAULT_CAMERA = Camera("perspective", (0.0, 0.0, 50.0), (0.0, 0.0, -1.0), (0.0, 1.0, 0.0), 60.0, None, DEFAULT_ASPECT)


def write_bcf(archive: Archive, target: str | Path | None = None, *, version: str = "2.1") -> bytes:
    """Serialise ``archive`` as BCF ``version`` ("2.1" or "3.0"); write it to ``target`` when given."""
    if version not in VERSIONS:
        raise BcfError(f"BCF version {version!r}: sitetwin writes {' and '.join(VERSIONS)}")
    v3 = version == "3.0"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("bcf.version", _doc(_version(version)))
        zf.writestr("project.bcfp", _doc(_project(archive, v3)))
        if v3:
            zf.writestr("extensions.xml", _doc(_extensions(archive)))
            zf.writestr("documents.xml", _doc(_el("DocumentInfo", children=[_el("Documents")])))
        for topic in archive.topics:
            zf.writestr(f"{topic.guid}/markup.bcf", _doc(_markup(topic, v3)))
            for vp in topic.viewpoints:
                zf.writestr(f"{topic.guid}/{_vp_name(vp)}", _doc(_visinfo(vp, v3)))
                if vp.snapshot:
                    zf.writestr(f"{topic.guid}/{_snap_name(vp)}", vp.snapshot)
    data = buf.getvalue()
    if target is not None:
        path = Path(target)
        if not path.parent.exists():
            raise BcfError(f"{path}: folder {path.parent} does not exist")
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    return data


def _vp_name(vp: Viewpoint) -> str:
    return f"Viewpoint_{vp.guid}.bcfv"


def _snap_name(vp: Viewpoint) -> str:
    return f"Snapshot_{vp.guid}.{vp.snapshot_ext or 'png'}"


# --------------------------------------------------------------------------------------
# documents

def _version(version: str):
    if version == "3.0":
        return _el("Version", {"VersionId": "3.0"})
    return _el("Version", {"VersionId": "2.1"}, [_el("DetailedVersion", text="2.1")])


def _project(archive: Archive, v3: bool):
    project = _el("Project", {"ProjectId": archive.project_id or "sitetwin"},
                  [_el("Name", text=archive.project_name)] if archive.project_name else [])
    if v3:
        return _el("ProjectInfo", children=[project])
    return _el("ProjectExtension", children=[project, _el("ExtensionSchema", text="")])


def _extensions(archive: Archive):
    def values(getter) -> list[str]:
        return sorted({v for t in archive.topics for v in getter(t) if v and v.strip()})

    groups = [
        ("TopicTypes", "TopicType", values(lambda t: [t.topic_type or DEFAULT_TOPIC_TYPE])),
        ("TopicStatuses", "TopicStatus", values(lambda t: [t.topic_status or DEFAULT_TOPIC_STATUS])),
        ("Priorities", "Priority", values(lambda t: [t.priority])),
        ("TopicLabels", "TopicLabel", values(lambda t: t.labels)),
        ("Users", "User", values(lambda t: [t.creation_author, t.modified_author, t.assigned_to]
                                 + [c.author for c in t.comments])),
        ("SnippetTypes", "SnippetType", values(lambda t: [(t.bim_snippet or {}).get("snippet_type")])),
        ("Stages", "Stage", values(lambda t: [t.stage])),
    ]
    return _el("Extensions", children=[_el(g, children=[_el(item, text=v) for v in vs]) for g, item, vs in groups])


def _markup(t: Topic, v3: bool):
    children = []
    if t.header_files:
        files = [_file(f, v3) for f in t.header_files]
        children.append(_el("Header", children=[_el("Files", children=files)] if v3 else files))
    topic_attrs = {"Guid": t.guid}
    if v3 and t.server_assigned_id:
        topic_attrs["ServerAssignedId"] = t.server_assigned_id
    topic_attrs["TopicType"] = t.topic_type or DEFAULT_TOPIC_TYPE
    topic_attrs["TopicStatus"] = t.topic_status or DEFAULT_TOPIC_STATUS
    tc = []
    if t.reference_links:
        links = [_el("ReferenceLink", text=x) for x in t.reference_links]
        tc += [_el("ReferenceLinks", children=links)] if v3 else links
    tc.append(_el("Title", text=t.title))
    _opt(tc, "Priority", t.priority)
    if t.index is not None:
        tc.append(_el("Index", text=str(int(t.index))))
    if t.labels:
        tc += [_el("Labels", children=[_el("Label", text=x) for x in t.labels])] if v3 else \
            [_el("Labels", text=x) for x in t.labels]
    tc.append(_el("CreationDate", text=_dt(t.creation_date)))
    tc.append(_el("CreationAuthor", text=t.creation_author or "unknown"))
    if t.modified_date:
        tc.append(_el("ModifiedDate", text=_dt(t.modified_date)))
    _opt(tc, "ModifiedAuthor", t.modified_author)
    if t.due_date:
        tc.append(_el("DueDate", text=_dt(t.due_date)))
    _opt(tc, "AssignedTo", t.assigned_to)
    _opt(tc, "Stage", t.stage)
    _opt(tc, "Description", t.description)
    if t.bim_snippet and t.bim_snippet.get("reference") and t.bim_snippet.get("snippet_type"):
        s = t.bim_snippet
        tc.append(_el("BimSnippet", {"SnippetType": s["snippet_type"],
                                     ("IsExternal" if v3 else "isExternal"): _b(s.get("is_external", False))},
                      [_el("Reference", text=s["reference"]),
                       _el("ReferenceSchema", text=s.get("reference_schema") or "unknown")]))
    docs = [_docref(d, v3) for d in t.document_references]
    docs = [d for d in docs if d is not None]
    if docs:
        tc += [_el("DocumentReferences", children=docs)] if v3 else docs
    if t.related_topics:
        rel = [_el("RelatedTopic", {"Guid": g}) for g in t.related_topics]
        tc += [_el("RelatedTopics", children=rel)] if v3 else rel
    comments = [_comment(c, v3) for c in t.comments]
    viewpoints = [_vp_ref(vp, v3) for vp in t.viewpoints]
    if v3:
        if comments:
            tc.append(_el("Comments", children=comments))
        if viewpoints:
            tc.append(_el("Viewpoints", children=viewpoints))
        children.append(_el("Topic", topic_attrs, tc))
    else:
        children.append(_el("Topic", topic_attrs, tc))
        children += comments + viewpoints
    return _el("Markup", children=children)


def _file(f: dict, v3: bool):
    attrs = {}
    if f.get("ifc_project") and len(f["ifc_project"]) == 22:
        attrs["IfcProject"] = f["ifc_project"]
    if f.get("ifc_spatial_structure_element") and len(f["ifc_spatial_structure_element"]) == 22:
        attrs["IfcSpatialStructureElement"] = f["ifc_spatial_structure_element"]
    attrs["IsExternal" if v3 else "isExternal"] = _b(f.get("is_external", True))
    children: list = []
    _opt(children, "Filename", f.get("filename"))
    if f.get("date"):
        children.append(_el("Date", text=f["date"] if isinstance(f["date"], str) else _dt(f["date"])))
    _opt(children, "Reference", f.get("reference"))
    return _el("File", attrs, children)


def _docref(d: dict, v3: bool):
    if v3:
        inner = []
        if d.get("document_guid"):
            inner.append(_el("DocumentGuid", text=d["document_guid"].lower()))
        elif d.get("url") or d.get("referenced_document"):
            inner.append(_el("Url", text=d.get("url") or d.get("referenced_document")))
        _opt(inner, "Description", d.get("description"))
        if not inner:
            return None
        return _el("DocumentReference", {"Guid": d.get("guid") or _uuid5(repr(sorted(d.items())))}, inner)
    inner = []
    _opt(inner, "ReferencedDocument", d.get("referenced_document") or d.get("url"))
    _opt(inner, "Description", d.get("description"))
    attrs = {}
    if d.get("guid"):
        attrs["Guid"] = d["guid"]
    if d.get("is_external") is not None:
        attrs["isExternal"] = _b(d["is_external"])
    return _el("DocumentReference", attrs, inner)


def _comment(c: Comment, v3: bool):
    children = [_el("Date", text=_dt(c.date)), _el("Author", text=c.author or "unknown")]
    if c.text and c.text.strip():
        children.append(_el("Comment", text=c.text))
    elif not v3:
        children.append(_el("Comment", text=""))
    if c.viewpoint_guid:
        children.append(_el("Viewpoint", {"Guid": c.viewpoint_guid}))
    if c.modified_date:
        children.append(_el("ModifiedDate", text=_dt(c.modified_date)))
    _opt(children, "ModifiedAuthor", c.modified_author)
    return _el("Comment", {"Guid": c.guid}, children)


def _vp_ref(vp: Viewpoint, v3: bool):
    children = [_el("Viewpoint", text=_vp_name(vp))]
    if vp.snapshot:
        children.append(_el("Snapshot", text=_snap_name(vp)))
    if vp.index is not None:
        children.append(_el("Index", text=str(int(vp.index))))
    return _el("ViewPoint" if v3 else "Viewpoints", {"Guid": vp.guid}, children)


def _visinfo(vp: Viewpoint, v3: bool):
    children = [_components(vp, v3)]
    cam = vp.camera or (_DEFAULT_CAMERA if v3 else None)
    if cam is not None:
        children.append(_camera(cam, v3))
    if vp.lines:
        lines = [_el("Line", children=[_point("StartPoint", a), _point("EndPoint", b)]) for a, b in vp.lines]
        children.append(_el("Lines", children=lines))
    if vp.clipping_planes:
        planes = [_el("ClippingPlane", children=[_point("Location", loc), _point("Direction", d)])
                  for loc, d in vp.clipping_planes]
        children.append(_el("ClippingPlanes", children=planes))
    return _el("VisualizationInfo", {"Guid": vp.guid}, children)


def _components(vp: Viewpoint, v3: bool):
    children = []
    hints = None
    if vp.view_setup_hints:
        keys = ("SpacesVisible", "SpaceBoundariesVisible", "OpeningsVisible")
        hints = _el("ViewSetupHints", {k: _b(vp.view_setup_hints[k]) for k in keys if k in vp.view_setup_hints})
    if hints is not None and not v3:
        children.append(hints)
    if vp.selection:
        children.append(_el("Selection", children=[_component(c) for c in vp.selection]))
    vis_children = [hints] if (hints is not None and v3) else []
    if vp.visibility_exceptions:
        vis_children.append(_el("Exceptions", children=[_component(c) for c in vp.visibility_exceptions]))
    children.append(_el("Visibility", {"DefaultVisibility": _b(vp.visibility_default)}, vis_children))
    colors = [(color, comps) for color, comps in vp.coloring if comps]
    if colors:
        if v3:
            els = [_el("Color", {"Color": color}, [_el("Components", children=[_component(c) for c in comps])])
                   for color, comps in colors]
        else:
            els = [_el("Color", {"Color": color}, [_component(c) for c in comps]) for color, comps in colors]
        children.append(_el("Coloring", children=els))
    return _el("Components", children=children)


def _component(c: Component):
    children: list = []
    _opt(children, "OriginatingSystem", c.originating_system)
    _opt(children, "AuthoringToolId", c.authoring_tool_id)
    valid = c.ifc_guid and len(c.ifc_guid) == 22 and all(ch.isalnum() or ch in "_$" for ch in c.ifc_guid)
    return _el("Component", {"IfcGuid": c.ifc_guid} if valid else {}, children)


def _camera(cam: Camera, v3: bool):
    children = [_point("CameraViewPoint", cam.position), _point("CameraDirection", cam.direction),
                _point("CameraUpVector", cam.up)]
    if cam.kind == "orthogonal":
        children.append(_el("ViewToWorldScale", text=_num(cam.view_to_world_scale or 1.0)))
        tag = "OrthogonalCamera"
    else:
        fov = cam.field_of_view_deg or 60.0
        fov = min(max(fov, 1.0), 170.0) if not v3 else min(max(fov, 1e-3), 179.0)
        children.append(_el("FieldOfView", text=_num(fov)))
        tag = "PerspectiveCamera"
    if v3:
        children.append(_el("AspectRatio", text=_num(cam.aspect_ratio or DEFAULT_ASPECT)))
    return _el(tag, children=children)


def _point(tag: str, xyz) -> object:
    return _el(tag, children=[_el(a, text=_num(v)) for a, v in zip("XYZ", xyz)])


# --------------------------------------------------------------------------------------
# helpers

def _el(tag: str, attrs: dict | None = None, children: list | None = None, text: str | None = None):
    from lxml import etree

    el = etree.Element(tag, {k: v for k, v in (attrs or {}).items() if v is not None})
    if text is not None:
        el.text = text
    for c in children or []:
        el.append(c)
    return el


def _opt(children: list, tag: str, value: str | None) -> None:
    if value is not None and str(value).strip():
        children.append(_el(tag, text=str(value)))


def _doc(root) -> bytes:
    from lxml import etree

    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", standalone=True, pretty_print=True)


def _dt(value: dt.datetime | dt.date) -> str:
    if not isinstance(value, dt.datetime):
        value = dt.datetime.combine(value, dt.time(0, 0))
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value.isoformat(timespec="microseconds" if value.microsecond else "seconds") + "Z"


def _num(v: float) -> str:
    return repr(float(v))


def _b(v) -> str:
    return "true" if v else "false"


def _uuid5(text: str) -> str:
    import uuid

    return str(uuid.uuid5(uuid.NAMESPACE_URL, "sitetwin:" + text))
