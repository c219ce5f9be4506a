"""Read a BCF file (2.0, 2.1 or 3.0; ``.bcfzip`` or ``.bcf``) safely into an ``Archive``.

A BCF file comes from outside, so it is checked before anything is parsed:

- every entry name is relative and stays inside the archive (no ``..``, no absolute
  path, no drive letter, no backslash tricks, no symlink entry);
- no entry is larger than ``MAX_ENTRY_BYTES`` uncompressed, the whole archive no larger
  than ``MAX_TOTAL_BYTES``, no more than ``MAX_ENTRIES`` entries, and no large entry
  compresses better than ``MAX_RATIO`` (zip bombs); sizes are enforced while reading too,
  not only taken from the headers;
- XML is parsed with lxml without DTDs, entities or network access, and a document with
  a DOCTYPE is refused.

Anything wrong raises ``BcfError`` naming the file and the entry; nothing is written by
this module. Text read from the file is checked as typed text is (``data.text.clean_text``,
issue 14): a control character (XML 1.0 lets the C1 ones and DEL through) or a title over
``TITLE_MAX``, a comment or description over ``NOTE_MAX``, a name or label over
``LABEL_MAX`` refuses the file, naming the topic and the field; line breaks in one-line
fields become spaces. Numbers must be finite, indices fit an ``xs:int``.

Parsing accepts the shapes real tools produce: BCF 2.0 (components with
``Selected``/``Visible`` attributes, ``DocumentReferences``/``RelatedTopics`` per topic,
comment ``Status``), 2.1 and 3.0 (``Comments`` and ``Viewpoints`` inside ``Topic``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import math
import posixpath
import re
import stat
import struct
import uuid
import zipfile
import zlib
from pathlib import Path

from sitetwin.data.errors import Phrase
from sitetwin.data.i18n import N_
from sitetwin.data.text import LABEL_MAX, NOTE_MAX, TITLE_MAX, TextError, clean_text
from sitetwin.oversight.bcf.model import Archive, Camera, Comment, Component, Topic, Viewpoint
from sitetwin.oversight.errors import BcfError

MAX_ENTRIES = 5_000
MAX_ENTRY_BYTES = 64 * 1024 * 1024
MAX_XML_BYTES = 16 * 1024 * 1024
MAX_TOTAL_BYTES = 512 * 1024 * 1024
MAX_RATIO = 200                     # uncompressed / compressed, for entries over 1 MiB
_IMAGE_EXT = {"png": "png", "jpg": "jpg", "jpeg": "jpg"}
_GUID_NS = uuid.UUID("6f1c7a52-5a3c-4b8e-9d7e-2b6c0e4f9a11")   # for ids that are not UUIDs


def read_bcf(source: str | Path | bytes, *, name: str | None = None) -> Archive:
    """Parse a BCF file (path or bytes) into an ``Archive``, after the safety checks above."""
    label = name or (str(source) if not isinstance(source, bytes) else "BCF data")
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise BcfError(N_("{path}: no such file"), path=path)
        if path.stat().st_size > MAX_TOTAL_BYTES:
            raise BcfError(N_("{path}: {size} bytes, more than the {limit} a BCF file may have"), path=path,
                           size=path.stat().st_size, limit=MAX_TOTAL_BYTES)
        data = path.read_bytes()
    else:
        data = bytes(source)
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError, NotImplementedError,
            struct.error, zlib.error):
        raise BcfError(N_("{label}: not a BCF file (not a zip archive)"), label=label) from None
    with zf:
        entries = _check_entries(zf, label)
        return _parse(zf, entries, label)


# --------------------------------------------------------------------------------------
# the archive

def _check_entries(zf: zipfile.ZipFile, label: str) -> dict[str, zipfile.ZipInfo]:
    infos = zf.infolist()
    if len(infos) > MAX_ENTRIES:
        raise BcfError(N_("{label}: {n} entries, more than the {limit} allowed"), label=label, n=len(infos),
                       limit=MAX_ENTRIES)
    total = 0
    entries: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        name = info.filename
        if _unsafe_name(name):
            raise BcfError(N_("{label}: entry {name!r} points outside the archive (path traversal); refused"),
                           label=label, name=name)
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise BcfError(N_("{label}: entry {name!r} is a symbolic link; refused"), label=label, name=name)
        if info.flag_bits & 0x1:
            raise BcfError(N_("{label}: entry {name!r} is encrypted; BCF files are not"), label=label, name=name)
        if info.file_size > MAX_ENTRY_BYTES:
            raise BcfError(N_("{label}: entry {name!r} is {size} bytes uncompressed, more than the "
                              "{limit} allowed (oversized)"), label=label, name=name, size=info.file_size,
                           limit=MAX_ENTRY_BYTES)
        if info.file_size > 1 << 20 and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise BcfError(N_("{label}: entry {name!r} expands {ratio}-fold (a zip bomb?); refused"), label=label,
                           name=name, ratio=info.file_size // max(info.compress_size, 1))
        total += info.file_size
        if total > MAX_TOTAL_BYTES:
            raise BcfError(N_("{label}: more than {limit} bytes uncompressed (oversized); refused"), label=label,
                           limit=MAX_TOTAL_BYTES)
        if not name.endswith("/"):
            if name in entries:
                raise BcfError(N_("{label}: entry {name!r} appears twice"), label=label, name=name)
            entries[name] = info
    return entries


def _unsafe_name(name: str) -> bool:
    if not name or "\x00" in name:
        return True
    unified = name.replace("\\", "/")
    if unified.startswith("/") or re.match(r"^[A-Za-z]:", unified):
        return True
    parts = unified.split("/")
    if any(p == ".." for p in parts):
        return True
    return posixpath.normpath(unified).startswith("..")


def _read(zf: zipfile.ZipFile, info: zipfile.ZipInfo, label: str, limit: int) -> bytes:
    try:
        with zf.open(info) as fh:
            data = fh.read(limit + 1)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, RuntimeError, struct.error,
            zlib.error) as exc:
        # zipfile's own message can quote kilobytes of the damaged header: the kind of damage is enough
        raise BcfError(N_("{label}: entry {name!r} cannot be read (damaged archive: {error})"), label=label,
                       name=info.filename[:200], error=type(exc).__name__) from None
    if len(data) > limit:
        raise BcfError(N_("{label}: entry {name!r} is larger than the {limit} bytes allowed (oversized)"),
                       label=label, name=info.filename, limit=limit)
    return data


def _xml(zf: zipfile.ZipFile, info: zipfile.ZipInfo, label: str):
    from lxml import etree

    data = _read(zf, info, label, MAX_XML_BYTES)
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                             huge_tree=False, remove_comments=True, remove_pis=True)
    try:
        root = etree.fromstring(data, parser)
    except (etree.XMLSyntaxError, ValueError, LookupError) as exc:
        raise BcfError(N_("{label}: entry {name!r} is not well-formed XML ({error})"), label=label,
                       name=info.filename, error=str(exc)) from None
    if root is None:
        raise BcfError(N_("{label}: entry {name!r} holds no XML document"), label=label, name=info.filename)
    if root.getroottree().docinfo.doctype:
        raise BcfError(N_("{label}: entry {name!r} declares a DOCTYPE; BCF XML has none (refused: "
                          "entity expansion)"), label=label, name=info.filename)
    _strip_namespaces(root)
    return root


def _strip_namespaces(root) -> None:
    for el in root.iter():
        if isinstance(el.tag, str) and "}" in el.tag:
            el.tag = el.tag.split("}", 1)[1]
        for key in list(el.attrib):
            if "}" in key:
                if key.endswith("}schemaLocation") or key.endswith("}noNamespaceSchemaLocation"):
                    del el.attrib[key]


# --------------------------------------------------------------------------------------
# parsing

def _parse(zf: zipfile.ZipFile, entries: dict[str, zipfile.ZipInfo], label: str) -> Archive:
    lower = {n.lower(): n for n in entries}
    version = None
    if "bcf.version" in lower:
        root = _xml(zf, entries[lower["bcf.version"]], label)
        if root.tag != "Version":
            raise BcfError(N_("{label}: bcf.version has root <{tag}>, expected <Version>"), label=label, tag=root.tag)
        version = (root.get("VersionId") or _text(root, "DetailedVersion") or "").strip()
    markups = sorted(n for n in entries if n.count("/") == 1 and n.rsplit("/", 1)[1].lower() == "markup.bcf")
    if not markups and version is None:
        raise BcfError(N_("{label}: neither bcf.version nor any <topic>/markup.bcf: not a BCF file"), label=label)
    project_id = project_name = None
    if "project.bcfp" in lower:
        root = _xml(zf, entries[lower["project.bcfp"]], label)
        project = root.find("Project")
        if project is not None:
            project_id = _clean(project.get("ProjectId"), f"{label}: project.bcfp", "ProjectId", TITLE_MAX)
            project_name = _clean(_text(project, "Name"), f"{label}: project.bcfp", "Name", TITLE_MAX)
    extensions: dict = {}
    if "extensions.xml" in lower:
        root = _xml(zf, entries[lower["extensions.xml"]], label)
        for group in root:
            if isinstance(group.tag, str):
                extensions[group.tag] = [_clean(c.text, f"{label}: extensions.xml", str(group.tag), TITLE_MAX) or ""
                                         for c in group if isinstance(c.tag, str)]
    topics = []
    seen: set[str] = set()
    for markup_name in markups:
        topic = _clean_topic(_topic(zf, entries, markup_name, label), f"{label}: {markup_name}")
        for kind, ids in ((N_("topic"), [topic.guid]), (N_("comment"), [c.guid for c in topic.comments]),
                          (N_("viewpoint"), [v.guid for v in topic.viewpoints])):
            for i in ids:
                if i in seen:
                    raise BcfError(N_("{label}: {kind} Guid {guid} appears twice in the file"), label=label,
                                   kind=Phrase(kind), guid=i)
                seen.add(i)
        topics.append(topic)
    major = (version or "").split(".")[0]
    if version and major not in ("2", "3"):
        raise BcfError(N_("{label}: BCF version {version!r} is not supported (2.0, 2.1 and 3.0 are)"), label=label,
                       version=version)
    norm = "3.0" if major == "3" else ("2.0" if version and version.startswith("2.0") else "2.1")
    return Archive(version=norm, topics=tuple(topics), project_id=project_id, project_name=project_name,
                   extensions=extensions)


def _topic(zf, entries, markup_name: str, label: str) -> Topic:
    folder = markup_name.rsplit("/", 1)[0]
    where = f"{label}: {markup_name}"
    root = _xml(zf, entries[markup_name], label)
    if root.tag != "Markup":
        raise BcfError(N_("{where}: root element <{tag}>, expected <Markup>"), where=where, tag=root.tag)
    t = root.find("Topic")
    if t is None:
        raise BcfError(N_("{where}: no <Topic>"), where=where)
    guid = _guid(t.get("Guid") or folder, where, "Topic Guid")
    title = _text(t, "Title")
    if not title:
        raise BcfError(N_("{where}: topic {guid} has no <Title>"), where=where, guid=guid)
    created = _date(_text(t, "CreationDate"), where, "CreationDate") or dt.datetime(1970, 1, 1)
    header = root.find("Header")
    files = []
    if header is not None:
        for f in list(header.iter("File")):
            files.append({k: v for k, v in {
                "filename": _text(f, "Filename"), "date": _text(f, "Date"), "reference": _text(f, "Reference"),
                "ifc_project": f.get("IfcProject"),
                "ifc_spatial_structure_element": f.get("IfcSpatialStructureElement"),
                "is_external": _bool(f.get("IsExternal", f.get("isExternal")), True)}.items() if v is not None})
    labels = [(x.text or "").strip() for x in t.findall("Labels") if not len(x) and (x.text or "").strip()]
    labels += [(x.text or "").strip() for x in t.findall("Labels/Label") if (x.text or "").strip()]
    links = [(x.text or "").strip() for x in t.findall("ReferenceLink") + t.findall("ReferenceLinks/ReferenceLink")
             if (x.text or "").strip()]
    docs = []
    for d in t.findall("DocumentReference") + t.findall("DocumentReferences"):
        if d.find("DocumentReference") is not None:         # 3.0 container
            continue
        docs.append(_docref(d))
    docs += [_docref(d) for d in t.findall("DocumentReferences/DocumentReference")]
    docs = [d for d in docs if set(d) - {"is_external"}]
    related = [_guid(r.get("Guid"), where, "RelatedTopic Guid") for r in
               t.findall("RelatedTopic") + t.findall("RelatedTopics") + t.findall("RelatedTopics/RelatedTopic")
               if r.get("Guid")]
    snippet = None
    sn = t.find("BimSnippet")
    if sn is not None:
        snippet = {"snippet_type": sn.get("SnippetType"), "is_external": _bool(sn.get("IsExternal",
                   sn.get("isExternal")), False), "reference": _text(sn, "Reference"),
                   "reference_schema": _text(sn, "ReferenceSchema")}
    comment_els = root.findall("Comment") + t.findall("Comments/Comment")
    comments = tuple(_comment(c, where) for c in comment_els)
    vp_els = root.findall("Viewpoints") + t.findall("Viewpoints/ViewPoint")
    viewpoints = []
    for i, v in enumerate(vp_els):
        viewpoints.append(_viewpoint_ref(zf, entries, folder, v, where, label, i))
    if not vp_els and f"{folder}/viewpoint.bcfv" in entries:       # BCF 1.0 style single viewpoint
        viewpoints.append(_viewpoint_file(zf, entries, folder, "viewpoint.bcfv", "snapshot.png",
                                          str(uuid.uuid5(_GUID_NS, f"{guid}/viewpoint")), None, where, label))
    return Topic(
        guid=guid, title=title, creation_date=created, creation_author=_text(t, "CreationAuthor") or "unknown",
        topic_type=_nonblank(t.get("TopicType")), topic_status=_nonblank(t.get("TopicStatus")),
        server_assigned_id=_nonblank(t.get("ServerAssignedId")), priority=_nonblank(_text(t, "Priority")),
        index=_int(_text(t, "Index")), labels=tuple(dict.fromkeys(labels)),
        modified_date=_date(_text(t, "ModifiedDate"), where, "ModifiedDate"),
        modified_author=_nonblank(_text(t, "ModifiedAuthor")),
        due_date=_date(_text(t, "DueDate"), where, "DueDate"), assigned_to=_nonblank(_text(t, "AssignedTo")),
        stage=_nonblank(_text(t, "Stage")), description=_nonblank(_text(t, "Description")),
        reference_links=tuple(links), bim_snippet=snippet, document_references=tuple(docs),
        related_topics=tuple(dict.fromkeys(related)), header_files=tuple(files), comments=comments,
        viewpoints=tuple(viewpoints))


def _docref(d) -> dict:
    out = {"guid": d.get("Guid").lower() if d.get("Guid") else None,
           "is_external": _bool(d.get("IsExternal", d.get("isExternal")), None),
           "referenced_document": _text(d, "ReferencedDocument"), "document_guid": _text(d, "DocumentGuid"),
           "url": _text(d, "Url"), "description": _text(d, "Description")}
    return {k: v for k, v in out.items() if v is not None}


def _comment(c, where: str) -> Comment:
    guid = _guid(c.get("Guid"), where, "Comment Guid")
    vp = c.find("Viewpoint")
    reply = c.find("ReplyToComment")
    return Comment(guid=guid, date=_date(_text(c, "Date"), where, Phrase(N_("comment {guid} Date"), guid=guid))
                   or dt.datetime(1970, 1, 1),
                   author=_text(c, "Author") or "unknown", text=_text(c, "Comment") or "",
                   viewpoint_guid=_guid(vp.get("Guid"), where, "comment Viewpoint Guid") if vp is not None
                   and vp.get("Guid") else None,
                   modified_date=_date(_text(c, "ModifiedDate"), where, "ModifiedDate"),
                   modified_author=_nonblank(_text(c, "ModifiedAuthor")),
                   reply_to=_guid(reply.get("Guid"), where, "ReplyToComment") if reply is not None
                   and reply.get("Guid") else None)


def _viewpoint_ref(zf, entries, folder, v, where, label, position) -> Viewpoint:
    guid = _guid(v.get("Guid"), where, "Viewpoint Guid")
    vp_file = _text(v, "Viewpoint")
    snap_file = _text(v, "Snapshot")
    index = _int(_text(v, "Index"))
    return _viewpoint_file(zf, entries, folder, vp_file, snap_file, guid, index, where, label)


def _viewpoint_file(zf, entries, folder, vp_file, snap_file, guid, index, where, label) -> Viewpoint:
    camera = None
    comps: dict = {}
    planes: tuple = ()
    lines: tuple = ()
    if vp_file:
        name = _member(folder, vp_file, where)
        if name not in entries:
            raise BcfError(N_("{where}: viewpoint file {file!r} is listed but not in the archive"), where=where,
                           file=vp_file)
        root = _xml(zf, entries[name], label)
        if root.tag != "VisualizationInfo":
            raise BcfError(N_("{where}: root element <{tag}>, expected <VisualizationInfo>"), where=f"{label}: {name}",
                           tag=root.tag)
        at = f"{label}: {name}"
        camera = _camera(root, at)
        comps = _components(root, at)
        planes = tuple((_point(p.find("Location"), at), _point(p.find("Direction"), at))
                       for p in root.findall("ClippingPlanes/ClippingPlane"))
        lines = tuple((_point(x.find("StartPoint"), at), _point(x.find("EndPoint"), at))
                      for x in root.findall("Lines/Line"))
    snapshot = ext = None
    if snap_file:
        name = _member(folder, snap_file, where)
        if name in entries:
            ext = _IMAGE_EXT.get(name.rsplit(".", 1)[-1].lower())
            if ext is None:
                raise BcfError(N_("{where}: snapshot {file!r} is neither PNG nor JPEG"), where=where, file=snap_file)
            snapshot = _read(zf, entries[name], label, MAX_ENTRY_BYTES)
            if not (snapshot.startswith(b"\x89PNG") or snapshot.startswith(b"\xff\xd8")):
                raise BcfError(N_("{where}: snapshot {file!r} is not a PNG or JPEG image"), where=where, file=snap_file)
    return Viewpoint(guid=guid, camera=camera, index=index, snapshot=snapshot, snapshot_ext=ext,
                     clipping_planes=planes, lines=lines, **comps)


def _member(folder: str, ref: str, where: str) -> str:
    ref = ref.strip().replace("\\", "/")
    if _unsafe_name(ref) or "/" in ref.strip("./"):
        raise BcfError(N_("{where}: reference {ref!r} leaves the topic folder (path traversal); refused"),
                       where=where, ref=ref)
    return f"{folder}/{ref.lstrip('./')}"


def _camera(root, where: str) -> Camera | None:
    for kind, tag in (("perspective", "PerspectiveCamera"), ("orthogonal", "OrthogonalCamera")):
        c = root.find(tag)
        if c is None:
            continue
        try:
            cam = Camera(kind=kind, position=_point(c.find("CameraViewPoint"), where),
                         direction=_point(c.find("CameraDirection"), where),
                         up=_point(c.find("CameraUpVector"), where),
                         field_of_view_deg=_float(_text(c, "FieldOfView")),
                         view_to_world_scale=_float(_text(c, "ViewToWorldScale")),
                         aspect_ratio=_float(_text(c, "AspectRatio")))
        except (TypeError, ValueError) as exc:
            raise BcfError(N_("{where}: <{tag}> is incomplete or not numeric ({error})"), where=where, tag=tag,
                           error=str(exc)) from None
        if kind == "perspective" and cam.field_of_view_deg is None:
            raise BcfError(N_("{where}: <PerspectiveCamera> has no <FieldOfView>"), where=where)
        if kind == "orthogonal" and cam.view_to_world_scale is None:
            raise BcfError(N_("{where}: <OrthogonalCamera> has no <ViewToWorldScale>"), where=where)
        return cam
    return None


def _components(root, where: str) -> dict:
    c = root.find("Components")
    if c is None:
        return {}
    out: dict = {}
    flat = c.findall("Component")          # BCF 2.0: attributes on each component
    if flat:
        out["selection"] = tuple(_component(x) for x in flat if _bool(x.get("Selected"), False))
        hidden = tuple(_component(x) for x in flat if not _bool(x.get("Visible"), True))
        out["visibility_default"] = True
        out["visibility_exceptions"] = hidden
        colored: dict[str, list] = {}
        for x in flat:
            if x.get("Color"):
                colored.setdefault(x.get("Color"), []).append(_component(x))
        out["coloring"] = tuple((k, tuple(v)) for k, v in colored.items())
        return out
    out["selection"] = tuple(_component(x) for x in c.findall("Selection/Component"))
    vis = c.find("Visibility")
    if vis is not None:
        out["visibility_default"] = _bool(vis.get("DefaultVisibility"), False)
        out["visibility_exceptions"] = tuple(_component(x) for x in vis.findall("Exceptions/Component"))
    hints = c.find("ViewSetupHints")
    if hints is None and vis is not None:
        hints = vis.find("ViewSetupHints")
    if hints is not None:
        out["view_setup_hints"] = {k: _bool(v, False) for k, v in hints.attrib.items()}
    colors = []
    for col in c.findall("Coloring/Color"):
        comps = col.findall("Component") + col.findall("Components/Component")
        if col.get("Color"):
            colors.append((col.get("Color"), tuple(_component(x) for x in comps)))
    out["coloring"] = tuple(colors)
    return out


_IFC_GUID = re.compile(r"^[0-9A-Za-z_$]{22}$")
_SUB_GUID = re.compile(r"^([0-9A-Za-z_$]{22})\.\d+$")


def _ifc_guid(value: str | None) -> str | None:
    """An IFC GlobalId; Solibri's ``<GlobalId>.<n>`` (a part of an element) becomes the element's GlobalId."""
    value = _nonblank(value)
    if value is None:
        return None
    sub = _SUB_GUID.match(value)
    return sub[1] if sub else value


def _component(x) -> Component:
    return Component(ifc_guid=_ifc_guid(x.get("IfcGuid")), originating_system=_nonblank(_text(x, "OriginatingSystem")),
                     authoring_tool_id=_nonblank(_text(x, "AuthoringToolId")))


def _point(el, where: str) -> tuple[float, float, float]:
    if el is None:
        raise BcfError(N_("{where}: a point or direction is missing"), where=where)
    x, y, z = _text(el, "X"), _text(el, "Y"), _text(el, "Z")
    wrong = N_("{where}: <{tag}> needs numeric X, Y and Z")
    if x is None or y is None or z is None:
        raise BcfError(wrong, where=where, tag=el.tag)
    try:
        xyz = (float(x), float(y), float(z))
    except ValueError:
        raise BcfError(wrong, where=where, tag=el.tag) from None
    if not all(math.isfinite(v) for v in xyz):
        raise BcfError(N_("{where}: <{tag}> needs finite X, Y and Z"), where=where, tag=el.tag)
    return xyz


# --------------------------------------------------------------------------------------
# values

def _text(el, path: str) -> str | None:
    found = el.find(path)
    if found is None or found.text is None:
        return None
    return found.text.strip() if path not in ("Comment", "Description") else found.text


def _nonblank(v: str | None) -> str | None:
    return v.strip() if v is not None and v.strip() else None


def _bool(v: str | None, default):
    if v is None:
        return default
    return v.strip().lower() in ("true", "1")


def _int(v: str | None) -> int | None:
    """An xs:int, or None (absent, not a number, or out of range: an index is only a sort order)."""
    try:
        n = int(v) if v not in (None, "") else None
    except ValueError:
        return None
    return n if n is not None and -2 ** 31 <= n < 2 ** 31 else None


def _float(v: str | None) -> float | None:
    if v in (None, ""):
        return None
    value = float(v)
    if not math.isfinite(value):
        raise ValueError(f"{v!r} is not a finite number")
    return value


def _guid(value: str | None, where: str | Phrase, what: str) -> str:
    if not value or not value.strip():
        raise BcfError(N_("{where}: {what} is missing"), where=where, what=what)
    text = value.strip()
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return str(uuid.uuid5(_GUID_NS, text))      # not a UUID: a stable stand-in


_FRACTION = re.compile(r"(\.\d{6})\d+")


def _date(text: str | None, where: str | Phrase, what: str | Phrase) -> dt.datetime | None:
    """xs:dateTime (any offset, 'Z', up to 7 fractional digits) as naive UTC."""
    if not text or not text.strip():
        return None
    value = _FRACTION.sub(r"\1", text.strip())
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    try:
        parsed = dt.datetime.fromisoformat(value)
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
    except (ValueError, OverflowError):
        raise BcfError(N_("{where}: {what} {value!r} is not an xs:dateTime (or is out of range)"), where=where,
                       what=what, value=text[:40]) from None
    return parsed


# --------------------------------------------------------------------------------------
# text

_BREAKS = re.compile(r" *[\t\r\n][\t\r\n ]*")
_HINTS = ("SpacesVisible", "SpaceBoundariesVisible", "OpeningsVisible")


def _clean(value: str | None, where: str | Phrase, field: str, max_len: int = LABEL_MAX, *,
           multiline: bool = False) -> str | None:
    """Text read from the file as it may be stored (None when absent or blank), or ``BcfError``."""
    if value is None:
        return None
    if not multiline:
        value = _BREAKS.sub(" ", value)
    try:
        return clean_text(value, field, max_len=max_len, multiline=multiline, required=False) or None
    except TextError as exc:
        raise BcfError(N_("{where}: {problem}"), where=where, problem=Phrase(exc.template, **exc.fields)) from None


def _clean_dict(d: dict, where: str | Phrase, what: str) -> dict:
    return {k: (_clean(v, where, f"{what} {k}", NOTE_MAX) if isinstance(v, str) else v) for k, v in d.items()}


def _clean_component(c: Component, where: str | Phrase) -> Component:
    return Component(ifc_guid=_clean(c.ifc_guid, where, "IfcGuid"),
                     originating_system=_clean(c.originating_system, where, "OriginatingSystem", TITLE_MAX),
                     authoring_tool_id=_clean(c.authoring_tool_id, where, "AuthoringToolId", TITLE_MAX))


def _clean_viewpoint(v: Viewpoint, where: str | Phrase) -> Viewpoint:
    where = Phrase(N_("{where}: viewpoint {guid}"), where=where, guid=v.guid)
    hints = {k: bool(x) for k, x in (v.view_setup_hints or {}).items() if k in _HINTS} or None
    return dataclasses.replace(
        v, selection=tuple(_clean_component(c, where) for c in v.selection),
        visibility_exceptions=tuple(_clean_component(c, where) for c in v.visibility_exceptions),
        coloring=tuple((_clean(color, where, "Color") or "", tuple(_clean_component(c, where) for c in comps))
                       for color, comps in v.coloring),
        view_setup_hints=hints)


def _clean_comment(c: Comment, where: str | Phrase) -> Comment:
    where = Phrase(N_("{where}: comment {guid}"), where=where, guid=c.guid)
    return dataclasses.replace(c, author=_clean(c.author, where, "Author") or "unknown",
                               text=_clean(c.text, where, "Comment", NOTE_MAX, multiline=True) or "",
                               modified_author=_clean(c.modified_author, where, "ModifiedAuthor"))


def _clean_topic(t: Topic, where: str) -> Topic:
    """The topic with every text checked (see the module's docstring); ``BcfError`` names the topic and field."""
    at = Phrase(N_("{where}: topic {guid}"), where=where, guid=t.guid)
    title = _clean(t.title, at, "Title", TITLE_MAX)
    if not title:
        raise BcfError(N_("{where} has no <Title>"), where=at)

    def line(value, field, max_len=LABEL_MAX):
        return _clean(value, at, field, max_len)
    return dataclasses.replace(
        t, title=title, creation_author=line(t.creation_author, "CreationAuthor") or "unknown",
        topic_type=line(t.topic_type, "TopicType"), topic_status=line(t.topic_status, "TopicStatus"),
        server_assigned_id=line(t.server_assigned_id, "ServerAssignedId"), priority=line(t.priority, "Priority"),
        labels=tuple(dict.fromkeys(x for x in (line(x, "Label") for x in t.labels) if x)),
        modified_author=line(t.modified_author, "ModifiedAuthor"), assigned_to=line(t.assigned_to, "AssignedTo"),
        stage=line(t.stage, "Stage"),
        description=_clean(t.description, at, "Description", NOTE_MAX, multiline=True),
        reference_links=tuple(x for x in (line(x, "ReferenceLink", NOTE_MAX) for x in t.reference_links) if x),
        bim_snippet=_clean_dict(t.bim_snippet, at, "BimSnippet") if t.bim_snippet else None,
        document_references=tuple(_clean_dict(d, at, "DocumentReference") for d in t.document_references),
        header_files=tuple(_clean_dict(f, at, "File") for f in t.header_files),
        comments=tuple(_clean_comment(c, at) for c in t.comments),
        viewpoints=tuple(_clean_viewpoint(v, at) for v in t.viewpoints))
