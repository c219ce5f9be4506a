"""The contents of a BCF file, independent of its version (2.0, 2.1 or 3.0).

Coordinates here are as BCF has them: the IFC world (project) frame, metres. The store
keeps viewpoints in the site's local frame; ``oversight.bcf.store`` converts.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Component:
    ifc_guid: str | None
    originating_system: str | None = None
    authoring_tool_id: str | None = None


@dataclass(frozen=True)
class Camera:
    """A BCF camera. ``field_of_view_deg`` is vertical (perspective); ``view_to_world_scale`` is the
    visible height in metres (orthogonal). ``aspect_ratio`` is width / height (BCF 3.0 only)."""

    kind: str                                    # perspective | orthogonal
    position: tuple[float, float, float]
    direction: tuple[float, float, float]
    up: tuple[float, float, float]
    field_of_view_deg: float | None = None
    view_to_world_scale: float | None = None
    aspect_ratio: float | None = None


@dataclass(frozen=True)
class Viewpoint:
    guid: str
    camera: Camera | None = None
    selection: tuple[Component, ...] = ()
    visibility_default: bool = True
    visibility_exceptions: tuple[Component, ...] = ()
    view_setup_hints: dict | None = None          # {"SpacesVisible": bool, ...}
    coloring: tuple[tuple[str, tuple[Component, ...]], ...] = ()   # (RRGGBB[AA], components)
    # (location, direction)
    clipping_planes: tuple[tuple[tuple[float, float, float], tuple[float, float, float]], ...] = ()
    lines: tuple[tuple[tuple[float, float, float], tuple[float, float, float]], ...] = ()            # (start, end)
    index: int | None = None
    snapshot: bytes | None = None
    snapshot_ext: str | None = None               # png | jpg

    def component_guids(self) -> set[str]:
        """Every IFC GlobalId this viewpoint names (selected, visibility exceptions, coloured)."""
        out = {c.ifc_guid for c in self.selection + self.visibility_exceptions if c.ifc_guid}
        for _, comps in self.coloring:
            out |= {c.ifc_guid for c in comps if c.ifc_guid}
        return out


@dataclass(frozen=True)
class Comment:
    guid: str
    date: dt.datetime                             # naive UTC
    author: str
    text: str
    viewpoint_guid: str | None = None
    modified_date: dt.datetime | None = None
    modified_author: str | None = None
    reply_to: str | None = None                   # BCF 2.0 ReplyToComment (not written back: 2.1/3.0 lack it)


@dataclass(frozen=True)
class Topic:
    guid: str
    title: str
    creation_date: dt.datetime
    creation_author: str
    topic_type: str | None = None
    topic_status: str | None = None
    server_assigned_id: str | None = None
    priority: str | None = None
    index: int | None = None
    labels: tuple[str, ...] = ()
    modified_date: dt.datetime | None = None
    modified_author: str | None = None
    due_date: dt.datetime | None = None
    assigned_to: str | None = None
    stage: str | None = None
    description: str | None = None
    reference_links: tuple[str, ...] = ()
    bim_snippet: dict | None = None
    document_references: tuple[dict, ...] = ()
    related_topics: tuple[str, ...] = ()
    header_files: tuple[dict, ...] = ()
    comments: tuple[Comment, ...] = ()
    viewpoints: tuple[Viewpoint, ...] = ()


@dataclass(frozen=True)
class Archive:
    version: str                                  # "2.0" | "2.1" | "3.0"
    topics: tuple[Topic, ...]
    project_id: str | None = None
    project_name: str | None = None
    extensions: dict = field(default_factory=dict)   # {"TopicTypes": [...], ...} (3.0)
