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
- 2.1 limits ``FieldOfView`` to 45..60 degrees (release_2_1's visinfo.xsd; clamped), 3.0 to 0..180.
Empty optional lists are left out (2.1 requires at least one child where a list appears).

The writer survives whatever is stored (issue 14): every text and attribute passes through
``data.text.printable`` (characters XML cannot carry become U+FFFD), a required text that is
blank gets a default, an id that is not a GUID (or an IFC GlobalId, a colour) of the form the
schema asks is replaced by a stable stand-in or left out where optional, and a camera,
clipping plane or line with a number that is not finite is left out (3.0: the default camera).
"""

from __future__ import annotations

import datetime as dt
import io
import math
import re
import uuid
import zipfile
from pathlib import Path
from typing import TypeGuard

from sitetwin.data.errors import Phrase
from sitetwin.data.i18n import N_
from sitetwin.data.text import printable
from sitetwin.oversight.bcf.model import Archive, Camera, Comment, Component, Topic, Viewpoint
from sitetwin.oversight.errors import BcfError

VERSIONS = ("2.1", "3.0")
DEFAULT_TOPIC_TYPE = "Issue"
DEFAULT_TOPIC_STATUS = "Open"
DEFAULT_ASPECT = 4.0 / 3.0
_DEFAULT_CAMERA = Camera("perspective", (0.0, 0.0, 50.0), (0.0, 0.0, -1.0), (0.0, 1.0, 0.0), 60.0, None, DEFAULT_ASPECT)
FOV_LIMITS_DEG = {"2.1": (45.0, 60.0), "3.0": (1e-3, 179.0)}
INT_MAX = 2 ** 31 - 1                  # xs:int
_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_IFC_GUID = re.compile(r"^[0-9A-Za-z_$]{22}$")
_COLOR = re.compile(r"^[0-9A-F]{6}([0-9A-F]{2})?$")


def write_bcf(archive: Archive, target: str | Path | None = None, *, version: str = "2.1") -> bytes:
    """Serialise ``archive`` as BCF ``version`` ("2.1" or "3.0"); write it to ``target`` when given."""
    if version not in VERSIONS:
        both: str | Phrase = VERSIONS[-1]
        for v in reversed(VERSIONS[:-1]):
            both = Phrase(N_("{first} and {second}"), first=v, second=both)
        raise BcfError(N_("BCF version {version!r}: sitetwin writes {versions}"), version=version, versions=both)
    v3 = version == "3.0"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("bcf.version", _doc(_version(version)))
        zf.writestr("project.bcfp", _doc(_project(archive, v3)))
        if v3:
            zf.writestr("extensions.xml", _doc(_extensions(archive)))
            zf.writestr("documents.xml", _doc(_el("DocumentInfo", children=[_el("Documents")])))
        written: set[str] = set()
        for topic in archive.topics:
            folder = _guid(topic.guid)
            if folder in written:           # two topics with one id: the second would overwrite the first
                raise BcfError(N_("topic {guid} appears twice in the archive"), guid=folder)
            written.add(folder)
            zf.writestr(f"{folder}/markup.bcf", _doc(_markup(topic, v3, version)))
            for vp in topic.viewpoints:
                zf.writestr(f"{folder}/{_vp_name(vp)}", _doc(_visinfo(vp, version)))
                if vp.snapshot:
                    zf.writestr(f"{folder}/{_snap_name(vp)}", vp.snapshot)
    data = buf.getvalue()
    if target is not None:
        path = Path(target)
        if not path.parent.exists():
            raise BcfError(N_("{path}: folder {folder} does not exist"), path=path, folder=path.parent)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    return data


def _vp_name(vp: Viewpoint) -> str:
    return f"Viewpoint_{_guid(vp.guid)}.bcfv"


def _snap_name(vp: Viewpoint) -> str:
    return f"Snapshot_{_guid(vp.guid)}.{'jpg' if vp.snapshot_ext in ('jpg', 'jpeg') else 'png'}"


# --------------------------------------------------------------------------------------
# documents

def _version(version: str):
    if version == "3.0":
        return _el("Version", {"VersionId": "3.0"})
    return _el("Version", {"VersionId": "2.1"}, [_el("DetailedVersion", text="2.1")])


def _project(archive: Archive, v3: bool):
    project = _el("Project", {"ProjectId": _required(archive.project_id, "sitetwin")},
                  [_el("Name", text=archive.project_name)] if _blank(archive.project_name) is None else [])
    if v3:
        return _el("ProjectInfo", children=[project])
    return _el("ProjectExtension", children=[project, _el("ExtensionSchema", text="")])


def _extensions(archive: Archive):
    def values(getter) -> list[str]:
        return sorted({printable(v) for t in archive.topics for v in getter(t) if _blank(v) is None})

    groups = [
        ("TopicTypes", "TopicType", values(lambda t: [_required(t.topic_type, DEFAULT_TOPIC_TYPE)])),
        ("TopicStatuses", "TopicStatus", values(lambda t: [_required(t.topic_status, DEFAULT_TOPIC_STATUS)])),
        ("Priorities", "Priority", values(lambda t: [t.priority])),
        ("TopicLabels", "TopicLabel", values(lambda t: t.labels)),
        ("Users", "User", values(lambda t: [t.creation_author, t.modified_author, t.assigned_to]
                                 + [c.author for c in t.comments])),
        ("SnippetTypes", "SnippetType", values(lambda t: [_snippet(t).get("snippet_type")])),
        ("Stages", "Stage", values(lambda t: [t.stage])),
    ]
    return _el("Extensions", children=[_el(g, children=[_el(item, text=v) for v in vs]) for g, item, vs in groups])


def _markup(t: Topic, v3: bool, version: str):
    children = []
    files = [_file(f, v3) for f in t.header_files if isinstance(f, dict)]
    if files:
        children.append(_el("Header", children=[_el("Files", children=files)] if v3 else files))
    topic_attrs = {"Guid": _guid(t.guid)}
    if v3 and _blank(t.server_assigned_id) is None:
        topic_attrs["ServerAssignedId"] = str(t.server_assigned_id)
    topic_attrs["TopicType"] = _required(t.topic_type, DEFAULT_TOPIC_TYPE)
    topic_attrs["TopicStatus"] = _required(t.topic_status, DEFAULT_TOPIC_STATUS)
    tc = []
    links = [_el("ReferenceLink", text=x) for x in t.reference_links if _blank(x) is None]
    if links:
        tc += [_el("ReferenceLinks", children=links)] if v3 else links
    tc.append(_el("Title", text=_required(t.title, "(no title)")))
    _opt(tc, "Priority", t.priority)
    index = _int(t.index)
    if index is not None:
        tc.append(_el("Index", text=str(index)))
    labels = [x for x in dict.fromkeys(printable(x) for x in t.labels if _blank(x) is None)]
    if labels:
        tc += [_el("Labels", children=[_el("Label", text=x) for x in labels])] if v3 else \
            [_el("Labels", text=x) for x in labels]
    tc.append(_el("CreationDate", text=_dt(t.creation_date)))
    tc.append(_el("CreationAuthor", text=_required(t.creation_author, "unknown")))
    if _is_date(t.modified_date):
        tc.append(_el("ModifiedDate", text=_dt(t.modified_date)))
    _opt(tc, "ModifiedAuthor", t.modified_author)
    if _is_date(t.due_date):
        tc.append(_el("DueDate", text=_dt(t.due_date)))
    _opt(tc, "AssignedTo", t.assigned_to)
    _opt(tc, "Stage", t.stage)
    _opt(tc, "Description", t.description)
    s = _snippet(t)
    if _blank(s.get("reference")) is None and _blank(s.get("snippet_type")) is None:
        tc.append(_el("BimSnippet", {"SnippetType": s["snippet_type"],
                                     ("IsExternal" if v3 else "isExternal"): _b(s.get("is_external", False))},
                      [_el("Reference", text=s["reference"]),
                       _el("ReferenceSchema", text=_required(s.get("reference_schema"), "unknown"))]))
    docs = [_docref(d, v3) for d in t.document_references if isinstance(d, dict)]
    docs = [d for d in docs if d is not None]
    if docs:
        tc += [_el("DocumentReferences", children=docs)] if v3 else docs
    related = [g for g in dict.fromkeys(_guid_or_none(g) for g in t.related_topics) if g]
    if related:
        rel = [_el("RelatedTopic", {"Guid": g}) for g in related]
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


def _snippet(t: Topic) -> dict:
    return t.bim_snippet if isinstance(t.bim_snippet, dict) else {}


def _file(f: dict, v3: bool):
    attrs = {}
    for key, attr in (("ifc_project", "IfcProject"), ("ifc_spatial_structure_element", "IfcSpatialStructureElement")):
        if _is_ifc_guid(f.get(key)):
            attrs[attr] = f[key]
    attrs["IsExternal" if v3 else "isExternal"] = _b(f.get("is_external", True))
    children: list = []
    _opt(children, "Filename", f.get("filename"))
    date = f.get("date")
    if isinstance(date, str):
        date = _parse_date(date)
    if _is_date(date):
        children.append(_el("Date", text=_dt(date)))
    _opt(children, "Reference", f.get("reference"))
    return _el("File", attrs, children)


def _docref(d: dict, v3: bool):
    if v3:
        inner = []
        doc_guid = _guid_or_none(d.get("document_guid"))
        url = d.get("url") if _blank(d.get("url")) is None else d.get("referenced_document")
        if doc_guid:
            inner.append(_el("DocumentGuid", text=doc_guid))
        elif _blank(url) is None:
            inner.append(_el("Url", text=url))
        _opt(inner, "Description", d.get("description"))
        if not inner:
            return None
        return _el("DocumentReference", {"Guid": _guid_or_none(d.get("guid")) or _uuid5(repr(sorted(
            (str(k), str(v)) for k, v in d.items())))}, inner)
    inner = []
    _opt(inner, "ReferencedDocument", d.get("referenced_document") if _blank(d.get("referenced_document")) is None
         else d.get("url"))
    _opt(inner, "Description", d.get("description"))
    attrs = {}
    if _guid_or_none(d.get("guid")):
        attrs["Guid"] = _guid_or_none(d.get("guid"))
    if d.get("is_external") is not None:
        attrs["isExternal"] = _b(d["is_external"])
    return _el("DocumentReference", attrs, inner)


def _comment(c: Comment, v3: bool):
    children = [_el("Date", text=_dt(c.date)), _el("Author", text=_required(c.author, "unknown"))]
    if _blank(c.text) is None:
        children.append(_el("Comment", text=c.text))
    elif not v3:
        children.append(_el("Comment", text=""))
    if _guid_or_none(c.viewpoint_guid):
        children.append(_el("Viewpoint", {"Guid": _guid_or_none(c.viewpoint_guid)}))
    if _is_date(c.modified_date):
        children.append(_el("ModifiedDate", text=_dt(c.modified_date)))
    _opt(children, "ModifiedAuthor", c.modified_author)
    return _el("Comment", {"Guid": _guid(c.guid)}, children)


def _vp_ref(vp: Viewpoint, v3: bool):
    children = [_el("Viewpoint", text=_vp_name(vp))]
    if vp.snapshot:
        children.append(_el("Snapshot", text=_snap_name(vp)))
    index = _int(vp.index)
    if index is not None:
        children.append(_el("Index", text=str(index)))
    return _el("ViewPoint" if v3 else "Viewpoints", {"Guid": _guid(vp.guid)}, children)


def _visinfo(vp: Viewpoint, version: str):
    v3 = version == "3.0"
    children = [_components(vp, v3)]
    cam = vp.camera if _camera_ok(vp.camera) else None
    cam = cam or (_DEFAULT_CAMERA if v3 else None)
    if cam is not None:
        children.append(_camera(cam, version))
    lines = [_el("Line", children=[_point("StartPoint", a), _point("EndPoint", b)]) for a, b in vp.lines
             if _finite(a) and _finite(b)]
    if lines:
        children.append(_el("Lines", children=lines))
    planes = [_el("ClippingPlane", children=[_point("Location", loc), _point("Direction", d)])
              for loc, d in vp.clipping_planes if _finite(loc) and _finite(d)]
    if planes:
        children.append(_el("ClippingPlanes", children=planes))
    return _el("VisualizationInfo", {"Guid": _guid(vp.guid)}, children)


def _components(vp: Viewpoint, v3: bool):
    children = []
    hints = None
    if isinstance(vp.view_setup_hints, dict) and vp.view_setup_hints:
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
    colors = [(str(color).upper(), comps) for color, comps in vp.coloring
              if comps and _COLOR.match(str(color).upper())]
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
    return _el("Component", {"IfcGuid": c.ifc_guid} if _is_ifc_guid(c.ifc_guid) else {}, children)


def _camera_ok(cam: Camera | None) -> bool:
    if cam is None or not (_finite(cam.position) and _finite(cam.direction) and _finite(cam.up)):
        return False
    return any(v != 0 for v in cam.direction) and any(v != 0 for v in cam.up)


def _camera(cam: Camera, version: str):
    v3 = version == "3.0"
    children = [_point("CameraViewPoint", cam.position), _point("CameraDirection", cam.direction),
                _point("CameraUpVector", cam.up)]
    if cam.kind == "orthogonal":
        scale = _positive(cam.view_to_world_scale, 1.0)
        children.append(_el("ViewToWorldScale", text=_num(scale)))
        tag = "OrthogonalCamera"
    else:
        lo, hi = FOV_LIMITS_DEG[version]
        fov = _positive(cam.field_of_view_deg, 60.0)
        children.append(_el("FieldOfView", text=_num(min(max(fov, lo), hi))))
        tag = "PerspectiveCamera"
    if v3:
        children.append(_el("AspectRatio", text=_num(_positive(cam.aspect_ratio, DEFAULT_ASPECT))))
    return _el(tag, children=children)


def _point(tag: str, xyz) -> object:
    return _el(tag, children=[_el(a, text=_num(v)) for a, v in zip("XYZ", xyz)])


# --------------------------------------------------------------------------------------
# helpers

def _el(tag: str, attrs: dict | None = None, children: list | None = None, text: str | None = None):
    from lxml import etree

    # printable: a control character stored by an older version must not stop the export (lxml refuses it)
    el = etree.Element(tag, {k: printable(v) for k, v in (attrs or {}).items() if v is not None})
    if text is not None:
        el.text = printable(text)
    for c in children or []:
        el.append(c)
    return el


def _blank(value) -> str | None:
    """None when ``value`` is text with something besides blanks in it, else ``""`` (for ``is None`` tests)."""
    return None if value is not None and printable(value).strip() else ""


def _required(value, default: str) -> str:
    """``value`` as text, or ``default`` where a schema requires a non-blank string and the value is blank."""
    return str(value) if _blank(value) is None else default


def _opt(children: list, tag: str, value: str | None) -> None:
    if _blank(value) is None:
        children.append(_el(tag, text=str(value)))


def _doc(root) -> bytes:
    from lxml import etree

    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", standalone=True, pretty_print=True)


def _is_date(value) -> TypeGuard[dt.date]:
    return isinstance(value, dt.date)


def _parse_date(text: str) -> dt.datetime | None:
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    try:
        return dt.datetime.fromisoformat(value)
    except ValueError:
        return None


def _dt(value: dt.datetime | dt.date) -> str:
    if not isinstance(value, dt.datetime):
        value = dt.datetime.combine(value, dt.time(0, 0))
    if value.tzinfo is not None:
        try:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        except OverflowError:
            value = value.replace(tzinfo=None)
    return value.isoformat(timespec="microseconds" if value.microsecond else "seconds") + "Z"


def _num(v: float) -> str:
    return repr(float(v))


def _finite(xyz) -> bool:
    try:
        values = [float(v) for v in xyz]
    except (TypeError, ValueError):
        return False
    return len(values) == 3 and all(math.isfinite(v) for v in values)


def _positive(value, default: float) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return default
    return v if math.isfinite(v) and v > 0 else default


def _int(value) -> int | None:
    """``value`` as an xs:int, or None when it is not one."""
    if isinstance(value, bool):
        return None
    try:
        v = int(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return v if -INT_MAX - 1 <= v <= INT_MAX else None


def _is_ifc_guid(value) -> bool:
    return isinstance(value, str) and _IFC_GUID.match(value) is not None


def _guid_or_none(value) -> str | None:
    """``value`` as a lowercase GUID, or None when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        text = str(uuid.UUID(value.strip()))
    except ValueError:
        return None
    return text if _GUID.match(text) else None


def _guid(value) -> str:
    """``value`` as a lowercase GUID; a value that is not one gets a stable stand-in (same value, same GUID)."""
    return _guid_or_none(value) or _uuid5(f"guid:{value}")


def _b(v) -> str:
    return "true" if v else "false"


def _uuid5(text: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "sitetwin:" + text))
