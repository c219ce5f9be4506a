"""Hazard rules: pure functions over tagged detections and a site context. Configurable, documented.

Rules (each may be switched off in :class:`HazardConfig`):

- ``no_hard_hat`` / ``no_vest``: people are paired with head boxes (``hard_hat`` or bare
  ``head``) and ``vest`` boxes geometrically, not by class names alone: a head belongs to
  the person whose box holds the head's centre in its top ``head_band`` share and is about a
  head wide; a vest to the person whose torso band holds the vest's centre. Pairs are chosen
  one-to-one (Hungarian assignment). A person paired with a bare head has no hard hat; a
  bare head with no person (body hidden) counts too. A person without a vest is flagged only
  when tall enough in the image for a vest to be seen (``min_person_px``).
- ``unprotected_edge``: a person whose 3D position lies within ``edge_distance_m`` (plan
  distance) of a slab edge or opening edge that has no guard, on the floor that edge bounds.
- ``machinery_zone``: a person inside a machinery or crane zone (vertical cylinders: the
  sensors package's crane zones, or zones around detected machinery).

For tracked video, :class:`Persistence` turns per-frame conditions into hazards only when a
condition held for ``min_duration_s`` of the same track (gaps up to ``max_gap_s`` bridged),
so one frame's false alarm raises nothing. Still images and panoramas raise at once.

Site context (:func:`edges_from_model`): slab edges are the model's slab-edge elements
(``ObjectType`` SlabEdge, as the demo building and many authoring tools write them) or, for
models without them, the plan outline of each floor's slabs. An edge is guarded when an
``IfcRailing`` runs along it: within ``guard_offset_m`` in plan, covering at least
``guard_coverage`` of its length, its top at least ``guard_min_height_m`` above the edge.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sitetwin.data.i18n import N_
from sitetwin.vision.errors import VisionError

RULES = ("no_hard_hat", "no_vest", "unprotected_edge", "machinery_zone")
# Rules another package judges and records through vision (``detection_store.record_rule_hazards``), not run
# by :func:`evaluate`: oversight raises ``dangerous_works_zone`` for a person inside the zone of dangerous
# works (危大工程) whose special plan is not approved.
RECORDED_RULES = ("dangerous_works_zone",)


@dataclass(frozen=True)
class HazardConfig:
    """Rule settings. Units: metres, seconds, pixels as named."""

    rules: tuple[str, ...] = RULES               # rules to run
    person_class: str = "person"
    helmet_class: str = "hard_hat"               # a head wearing a hard hat
    bare_head_class: str = "head"                # a head without one
    vest_class: str = "vest"
    machinery_class: str = "machinery"
    head_band: float = 0.35                      # (0-1) top share of a person box where its head is
    torso_band: tuple[float, float] = (0.15, 0.7)   # share of a person box (from the top) holding the vest
    max_head_width: float = 0.9                  # (0-1) a head at most this share of the person's width (x1.0)
    min_person_px: float = 48.0                  # (px) people shorter than this are not judged for vests
    require_vest: bool = True                    # (bool) flag people seen without a vest
    bare_head_alone_counts: bool = True          # (bool) a bare head without a body box still raises no_hard_hat
    edge_distance_m: float = 2.0                 # (m) plan distance from an unguarded edge that is a hazard
    edge_height_band_m: tuple[float, float] = (-0.6, 2.5)  # person z relative to the edge's floor level
    machinery_radius_m: float = 5.0              # (m) zone around detected machinery
    min_duration_s: float = 3.0                  # (s) tracked video: how long a condition must hold
    max_gap_s: float = 1.0                       # (s) tracked video: dropouts bridged within one condition
    severity: dict = field(default_factory=lambda: {"no_hard_hat": "high", "no_vest": "medium",
                                                    "unprotected_edge": "critical", "machinery_zone": "high"})

    def __post_init__(self) -> None:
        unknown = sorted(set(self.rules) - set(RULES))
        if unknown:
            raise VisionError(N_("rules: {unknown} unknown; rules are {rules}"), unknown=", ".join(unknown),
                              rules=", ".join(RULES))
        if not 0 < self.head_band <= 1:
            raise VisionError(N_("head_band: {head_band} must lie in (0, 1]"), head_band=self.head_band)
        if self.edge_distance_m < 0 or self.min_duration_s < 0 or self.max_gap_s < 0:
            raise VisionError(N_("edge_distance_m, min_duration_s and max_gap_s must be >= 0"))
        bad = {k: v for k, v in self.severity.items() if v not in ("low", "medium", "high", "critical")}
        if bad:
            raise VisionError(N_("severity: {bad} must be low, medium, high or critical"), bad=bad)

    def required_classes(self) -> tuple[str, ...]:
        """The detector classes these rules need (a detector lacking one is refused, naming it)."""
        need = [self.person_class]
        if "no_hard_hat" in self.rules:
            need += [self.helmet_class, self.bare_head_class]
        if "no_vest" in self.rules:
            need.append(self.vest_class)
        return tuple(dict.fromkeys(need))

    @classmethod
    def from_file(cls, path) -> HazardConfig:
        """Read settings from YAML (keys as the fields); unknown keys are an error naming them."""
        import dataclasses
        from pathlib import Path

        import yaml

        try:
            raw = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise VisionError(N_("{path}: cannot read the hazard rules ({detail})"), path=path,
                              detail=str(exc).splitlines()[0]) from None
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(raw) - names)
        if unknown:
            raise VisionError(N_("{path}: unknown keys {unknown}; keys are {keys}"), path=path,
                              unknown=", ".join(unknown), keys=", ".join(sorted(names)))
        for k in ("rules", "torso_band", "edge_height_band_m"):
            if k in raw and isinstance(raw[k], list):
                raw[k] = tuple(raw[k])
        try:
            return cls(**raw)
        except TypeError as exc:
            raise VisionError(N_("{path}: {problem}"), path=path, problem=str(exc)) from None


# --- inputs ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Sighting:
    """One tagged detection as the rules see it."""

    index: int                                   # position in the caller's detection list
    class_name: str
    xyxy: tuple[float, float, float, float]      # source pixels
    confidence: float
    point_m: tuple[float, float, float] | None = None   # 3D position, local frame (foot point for people)
    track_id: int | None = None
    storey: str | None = None
    model_id: str | None = None
    global_id: str | None = None


@dataclass(frozen=True)
class Edge:
    """A slab edge or opening edge: the line along its top, site local frame."""

    global_id: str | None
    model_id: str | None
    storey: str | None
    p0: tuple[float, float, float]
    p1: tuple[float, float, float]
    guarded: bool
    kind: str = "slab_edge"                      # slab_edge | opening | outline
    floor_z_m: float = 0.0                       # the floor level it bounds
    fall_height_m: float | None = None
    name: str | None = None


@dataclass(frozen=True)
class Zone:
    """A vertical cylinder (metres, local frame): the sensors package's crane zones have this shape."""

    zone_id: str
    center_m: tuple[float, float, float]
    radius_m: float
    z_min_m: float
    z_max_m: float
    kind: str = "machinery"

    def contains(self, points_m) -> np.ndarray:
        p = np.asarray(points_m, np.float64).reshape(-1, 3)
        dxy = np.hypot(p[:, 0] - self.center_m[0], p[:, 1] - self.center_m[1])
        return (dxy <= self.radius_m) & (p[:, 2] >= self.z_min_m) & (p[:, 2] <= self.z_max_m)


def as_zone(z: Any) -> Zone:
    """Any object with center_m, radius_m, z_min_m, z_max_m (and device_id/zone_id, kind) as a Zone."""
    if isinstance(z, Zone):
        return z
    return Zone(zone_id=str(getattr(z, "zone_id", None) or getattr(z, "device_id", "zone")),
                center_m=_point3(np.asarray(z.center_m).reshape(3)), radius_m=float(z.radius_m),
                z_min_m=float(z.z_min_m), z_max_m=float(z.z_max_m), kind=str(getattr(z, "kind", "machinery")))


@dataclass(frozen=True)
class HazardContext:
    edges: tuple[Edge, ...] = ()
    zones: tuple[Zone, ...] = ()

    @property
    def unguarded(self) -> tuple[Edge, ...]:
        return tuple(e for e in self.edges if not e.guarded)


@dataclass(frozen=True)
class Condition:
    """A hazard condition found in one image or frame."""

    rule: str
    severity: str
    message: str
    sightings: tuple[int, ...]                   # indices of the detections involved (person first)
    track_id: int | None = None
    point_m: tuple[float, float, float] | None = None
    storey: str | None = None
    model_id: str | None = None                  # the element concerned (the edge, or where the person stands)
    global_id: str | None = None
    distance_m: float | None = None
    crop_xyxy: tuple[float, float, float, float] | None = None

    @property
    def key(self) -> tuple:
        """What identifies the same condition across frames: rule, track (or element), for persistence."""
        return (self.rule, self.track_id if self.track_id is not None else self.global_id)


# --- pairing ------------------------------------------------------------------------------------

def pair_people(sightings: Sequence[Sighting], config: HazardConfig = HazardConfig()) -> dict[int, dict]:
    """For each person (by index): its paired head class (``hard_hat``/``head``/None) and vest (True/False/None).

    ``None`` means not judged (no head found; person too small for a vest). Also returns, under
    key ``-1``, the indices of bare heads paired with nobody.
    """
    from scipy.optimize import linear_sum_assignment

    people = [s for s in sightings if s.class_name == config.person_class]
    heads = [s for s in sightings if s.class_name in (config.helmet_class, config.bare_head_class)]
    vests = [s for s in sightings if s.class_name == config.vest_class]
    result: dict[int, dict] = {p.index: {"head": None, "head_index": None, "vest": None, "vest_index": None}
                               for p in people}

    def assign(parts: list[Sighting], cost_fn) -> dict[int, int]:
        if not people or not parts:
            return {}
        cost = np.full((len(people), len(parts)), 1e6)
        for i, p in enumerate(people):
            for j, h in enumerate(parts):
                c = cost_fn(p, h)
                if c is not None:
                    cost[i, j] = c
        rows, cols = linear_sum_assignment(cost)
        return {people[r].index: parts[c].index for r, c in zip(rows, cols) if cost[r, c] < 1e6}

    def head_cost(p: Sighting, h: Sighting):
        x1, y1, x2, y2 = p.xyxy
        w, ht = max(x2 - x1, 1e-6), max(y2 - y1, 1e-6)
        hx, hy = (h.xyxy[0] + h.xyxy[2]) / 2, (h.xyxy[1] + h.xyxy[3]) / 2
        hw = h.xyxy[2] - h.xyxy[0]
        if not (x1 <= hx <= x2 and y1 - 0.1 * ht <= hy <= y1 + config.head_band * ht):
            return None
        if hw > config.max_head_width * w * 1.0 + 2:
            return None
        # expected head centre: top centre of the person box, a twelfth of its height down
        return math.hypot((hx - (x1 + x2) / 2) / w, (hy - (y1 + ht / 12)) / ht)

    def vest_cost(p: Sighting, v: Sighting):
        x1, y1, x2, y2 = p.xyxy
        w, ht = max(x2 - x1, 1e-6), max(y2 - y1, 1e-6)
        vx, vy = (v.xyxy[0] + v.xyxy[2]) / 2, (v.xyxy[1] + v.xyxy[3]) / 2
        lo, hi = config.torso_band
        if not (x1 <= vx <= x2 and y1 + lo * ht <= vy <= y1 + hi * ht):
            return None
        return math.hypot((vx - (x1 + x2) / 2) / w, (vy - (y1 + 0.4 * ht)) / ht)

    by_index = {s.index: s for s in sightings}
    for person, head in assign(heads, head_cost).items():
        result[person]["head"] = by_index[head].class_name
        result[person]["head_index"] = head
    for person, vest in assign(vests, vest_cost).items():
        result[person]["vest"] = True
        result[person]["vest_index"] = vest
    for p in people:
        r = result[p.index]
        if r["vest"] is None and (p.xyxy[3] - p.xyxy[1]) >= config.min_person_px:
            r["vest"] = False
    paired_heads = {r["head_index"] for r in result.values()}
    result[-1] = {"bare_heads": [h.index for h in heads if h.class_name == config.bare_head_class
                                 and h.index not in paired_heads]}
    return result


# --- rules ---------------------------------------------------------------------------------------

def evaluate(sightings: Sequence[Sighting], context: HazardContext = HazardContext(),
             config: HazardConfig = HazardConfig()) -> list[Condition]:
    """Every hazard condition in one image or frame (a pure function)."""
    out: list[Condition] = []
    by_index = {s.index: s for s in sightings}
    people = [s for s in sightings if s.class_name == config.person_class]
    pairs = pair_people(sightings, config) if ({"no_hard_hat", "no_vest"} & set(config.rules)) else {}
    sev = config.severity
    for p in people:
        pr = pairs.get(p.index, {})
        base: dict[str, Any] = dict(track_id=p.track_id, point_m=p.point_m, storey=p.storey, model_id=p.model_id,
                                    global_id=p.global_id, crop_xyxy=p.xyxy)
        if "no_hard_hat" in config.rules and pr.get("head") == config.bare_head_class:
            out.append(Condition("no_hard_hat", sev.get("no_hard_hat", "high"),
                                 f"person without a hard hat{_where(p)}", (p.index, pr["head_index"]), **base))
        if "no_vest" in config.rules and config.require_vest and pr.get("vest") is False:
            out.append(Condition("no_vest", sev.get("no_vest", "medium"),
                                 f"person without a high-visibility vest{_where(p)}", (p.index,), **base))
    if "no_hard_hat" in config.rules and config.bare_head_alone_counts:
        for h in pairs.get(-1, {}).get("bare_heads", []):
            s = by_index[h]
            out.append(Condition("no_hard_hat", sev.get("no_hard_hat", "high"),
                                 f"head without a hard hat (body not seen){_where(s)}", (h,), track_id=s.track_id,
                                 point_m=s.point_m, storey=s.storey, model_id=s.model_id, global_id=s.global_id,
                                 crop_xyxy=s.xyxy))
    located = [p for p in people if p.point_m is not None and np.all(np.isfinite(p.point_m))]
    if "unprotected_edge" in config.rules and context.edges:
        out += edge_conditions(located, context.unguarded, config)
    if "machinery_zone" in config.rules:
        zones = list(context.zones)
        for m in sightings:
            if m.class_name == config.machinery_class and m.point_m is not None and np.all(np.isfinite(m.point_m)):
                z = float(m.point_m[2])
                zones.append(Zone(f"machinery-{m.index}", _point3(m.point_m), config.machinery_radius_m, z - 1.0,
                                  z + 6.0, "detected machinery"))
        out += zone_conditions(located, zones, config)
    return out


def edge_conditions(people: Sequence[Sighting], edges: Sequence[Edge], config: HazardConfig) -> list[Condition]:
    """People within ``edge_distance_m`` (plan) of an unguarded edge on the floor it bounds."""
    out: list[Condition] = []
    if not edges or not people:
        return out
    p0 = np.array([e.p0 for e in edges], np.float64)
    p1 = np.array([e.p1 for e in edges], np.float64)
    floor = np.array([e.floor_z_m for e in edges])
    lo, hi = config.edge_height_band_m
    for p in people:
        pt = np.asarray(p.point_m, np.float64)
        d = point_segment_distance_2d(pt[:2], p0[:, :2], p1[:, :2])
        on_floor = (pt[2] - floor >= lo) & (pt[2] - floor <= hi)
        near = np.flatnonzero(on_floor & (d <= config.edge_distance_m))
        if not len(near):
            continue
        k = int(near[np.argmin(d[near])])
        e = edges[k]
        fall = f", fall height {e.fall_height_m:.1f} m" if e.fall_height_m else ""
        out.append(Condition("unprotected_edge", config.severity.get("unprotected_edge", "critical"),
                             f"person {d[k]:.1f} m from an unguarded {e.kind.replace('_', ' ')}"
                             f"{' ' + e.name if e.name else ''}{fall}{_where(p)}",
                             (p.index,), track_id=p.track_id, point_m=p.point_m, storey=e.storey or p.storey,
                             model_id=e.model_id, global_id=e.global_id, distance_m=float(d[k]), crop_xyxy=p.xyxy))
    return out


def zone_conditions(people: Sequence[Sighting], zones: Sequence[Any], config: HazardConfig) -> list[Condition]:
    out = []
    for z in (as_zone(z) for z in zones):
        for p in people:
            if p.point_m is not None and z.contains(np.asarray(p.point_m, np.float64)[None])[0]:
                d = math.hypot(p.point_m[0] - z.center_m[0], p.point_m[1] - z.center_m[1])
                out.append(Condition("machinery_zone", config.severity.get("machinery_zone", "high"),
                                     f"person inside {z.kind} zone {z.zone_id} ({d:.1f} m from its axis, radius "
                                     f"{z.radius_m:.1f} m){_where(p)}", (p.index,), track_id=p.track_id,
                                     point_m=p.point_m, storey=p.storey, model_id=p.model_id, global_id=p.global_id,
                                     distance_m=z.radius_m - d, crop_xyxy=p.xyxy))
    return out


def _where(s: Sighting) -> str:
    return f" on {s.storey}" if s.storey else ""


def point_segment_distance_2d(pt: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance from a (2,) point to each of (n, 2)-(n, 2) segments."""
    ab = b - a
    denom = np.maximum(np.einsum("ij,ij->i", ab, ab), 1e-12)
    t = np.clip(np.einsum("ij,ij->i", pt - a, ab) / denom, 0.0, 1.0)
    return np.linalg.norm(a + ab * t[:, None] - pt, axis=1)


# --- persistence over tracked video ------------------------------------------------------------------

@dataclass
class _Open:
    condition: Condition
    started_s: float
    last_s: float
    frames: int
    confirmed: bool = False
    detection_ids: list = field(default_factory=list)


@dataclass(frozen=True)
class PersistentHazard:
    """A condition that held long enough: its first and last frame times and the detections seen."""

    condition: Condition
    started_s: float
    ended_s: float
    frames: int
    detection_ids: tuple = ()

    @property
    def duration_s(self) -> float:
        return self.ended_s - self.started_s


class Persistence:
    """Streams conditions frame by frame; reports a hazard once it held ``min_duration_s`` (same key).

    ``update(time_s, conditions, detection_ids)`` returns the hazards confirmed at this frame;
    ``close()`` returns the confirmed ones still open. A confirmed hazard's ``ended_s`` is its
    last frame; one report per continuous episode.
    """

    def __init__(self, config: HazardConfig = HazardConfig()):
        self.config = config
        self._open: dict[tuple, _Open] = {}
        self.finished: list[PersistentHazard] = []

    def update(self, time_s: float, conditions: Iterable[Condition],
               detection_ids: Sequence[Any] | None = None) -> list[PersistentHazard]:
        newly = []
        seen = set()
        for c in conditions:
            key = c.key
            seen.add(key)
            ids = [detection_ids[i] for i in c.sightings] if detection_ids is not None else []
            o = self._open.get(key)
            if o is None or time_s - o.last_s > self.config.max_gap_s:
                if o is not None:
                    self._finish(o)
                o = self._open[key] = _Open(c, time_s, time_s, 0)
            o.last_s = time_s
            o.frames += 1
            o.condition = c
            o.detection_ids.extend(ids)
            if not o.confirmed and time_s - o.started_s >= self.config.min_duration_s - 1e-9:
                o.confirmed = True
                newly.append(PersistentHazard(c, o.started_s, time_s, o.frames, tuple(o.detection_ids)))
        for key in [k for k, o in self._open.items() if k not in seen and time_s - o.last_s > self.config.max_gap_s]:
            self._finish(self._open.pop(key))
        return newly

    def _finish(self, o: _Open) -> None:
        if o.confirmed:
            self.finished.append(PersistentHazard(o.condition, o.started_s, o.last_s, o.frames,
                                                  tuple(o.detection_ids)))

    def pop_finished(self) -> list[PersistentHazard]:
        """Confirmed episodes that ended since the last call (their final duration)."""
        out, self.finished = self.finished, []
        return out

    def close(self) -> list[PersistentHazard]:
        for o in self._open.values():
            self._finish(o)
        self._open.clear()
        out, self.finished = self.finished, []
        return out


# --- site context from the model --------------------------------------------------------------------

@dataclass(frozen=True)
class EdgeConfig:
    # what counts as edge protection: guardrails, and walls standing along the edge
    guard_classes: tuple[str, ...] = ("IfcRailing", "IfcWall", "IfcWallStandardCase", "IfcCurtainWall")
    guard_offset_m: float = 0.6          # (m) a guard this close to the edge line (plan) runs along it
    guard_coverage: float = 0.8          # (0-1) share of the edge's length the guards must cover
    guard_min_height_m: float = 0.9      # (m) guard top above the edge's floor level
    min_fall_m: float = 1.0              # (m) edges over a drop smaller than this are ignored


_BOX = {"bbox_min_x_m": "x0", "bbox_min_y_m": "y0", "bbox_min_z_m": "z0", "bbox_max_x_m": "x1", "bbox_max_y_m": "y1",
        "bbox_max_z_m": "z1"}


def edges_from_model(store, site_code: str, config: EdgeConfig = EdgeConfig(), *,
                     element_ids: set[str] | None = None) -> list[Edge]:
    """Slab edges (and slab openings with a box) of the site's current models, each marked guarded or not.

    ``element_ids``: only these GlobalIds count as built (a construction epoch); default all.
    """
    from sitetwin.bim.queries import element_frame

    frame = element_frame(store, site_code=site_code)
    frame = frame.loc[frame["bbox_min_x_m"].notna(), ["model_id", "global_id", "ifc_class", "object_type", "name",
                                                      "storey", *_BOX]].rename(columns=_BOX)
    rows = frame.astype(object).where(frame.notna(), None).to_dict("records")
    if element_ids is not None:
        rows = [r for r in rows if r["global_id"] in element_ids]
    # falls are measured to the lowest floor (the top of the lowest slab), else the model's bottom
    slab_tops = [r["z1"] for r in rows if r["ifc_class"] == "IfcSlab"]
    ground = min(slab_tops) if slab_tops else min((r["z0"] for r in rows), default=0.0)
    guards = [r for r in rows if r["ifc_class"] in config.guard_classes]
    edge_rows = [r for r in rows if (r["object_type"] or "").replace(" ", "").lower() == "slabedge"]
    edges: list[tuple[dict, tuple, tuple, float, str]] = []
    for r in edge_rows:
        p0, p1 = _long_axis(r)
        edges.append((r, p0, p1, float(r["z0"]), "slab_edge"))
    if not edge_rows:
        edges += _slab_outlines(rows)
    for r in rows:
        if r["ifc_class"] == "IfcOpeningElement" and r["z1"] - r["z0"] < 1.0:   # a void through a slab
            z = float(r["z1"])
            c = [(r["x0"], r["y0"]), (r["x1"], r["y0"]), (r["x1"], r["y1"]), (r["x0"], r["y1"])]
            for a, b in zip(c, c[1:] + c[:1]):
                edges.append((r, (a[0], a[1], z), (b[0], b[1], z), z, "opening"))
    out = []
    for r, p0, p1, floor_z, kind in edges:
        fall = floor_z - ground
        if fall < config.min_fall_m:
            continue
        out.append(Edge(global_id=r.get("global_id"), model_id=r.get("model_id"), storey=r.get("storey"),
                        p0=_point3(p0), p1=_point3(p1),
                        guarded=_guarded(p0, p1, floor_z, guards, config), kind=kind, floor_z_m=floor_z,
                        fall_height_m=round(fall, 3), name=r.get("name")))
    return out


def _point3(p) -> tuple[float, float, float]:
    x, y, z = p
    return float(x), float(y), float(z)


def _long_axis(r: dict) -> tuple[tuple, tuple]:
    z = float(r["z0"])
    cx, cy = (r["x0"] + r["x1"]) / 2, (r["y0"] + r["y1"]) / 2
    if r["x1"] - r["x0"] >= r["y1"] - r["y0"]:
        return (r["x0"], cy, z), (r["x1"], cy, z)
    return (cx, r["y0"], z), (cx, r["y1"], z)


def _slab_outlines(rows: list[dict]) -> list:
    """Floors' plan outlines (the box round each level's slabs) for models without slab-edge elements."""
    slabs = [r for r in rows if r["ifc_class"] == "IfcSlab"]
    levels: dict[float, list[dict]] = {}
    for r in slabs:
        levels.setdefault(round(float(r["z1"]), 1), []).append(r)
    out = []
    for z, group in levels.items():
        x0 = min(r["x0"] for r in group)
        y0 = min(r["y0"] for r in group)
        x1 = max(r["x1"] for r in group)
        y1 = max(r["y1"] for r in group)
        c = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
        rep = {"global_id": None, "model_id": group[0]["model_id"], "storey": group[0]["storey"],
               "name": f"outline of {group[0]['storey'] or 'floor'}"}
        for a, b in zip(c, c[1:] + c[:1]):
            out.append((rep, (a[0], a[1], z), (b[0], b[1], z), z, "outline"))
    return out


def _guarded(p0, p1, floor_z: float, guards: list[dict], config: EdgeConfig) -> bool:
    a = np.asarray(p0[:2], np.float64)
    b = np.asarray(p1[:2], np.float64)
    length = float(np.linalg.norm(b - a))
    if length < 1e-6:
        return True
    u = (b - a) / length
    covered = []
    for g in guards:
        if g["z1"] < floor_z + config.guard_min_height_m or g["z0"] > floor_z + 1.0:
            continue
        corners = np.array([[g["x0"], g["y0"]], [g["x1"], g["y0"]], [g["x1"], g["y1"]], [g["x0"], g["y1"]]])
        rel = corners - a
        along = rel @ u
        across = rel @ np.array([-u[1], u[0]])
        if across.min() > config.guard_offset_m or across.max() < -config.guard_offset_m:
            continue
        lo, hi = max(0.0, float(along.min())), min(length, float(along.max()))
        if hi > lo:
            covered.append((lo, hi))
    if not covered:
        return False
    covered.sort()
    total, cur_lo, cur_hi = 0.0, covered[0][0], covered[0][1]
    for lo, hi in covered[1:]:
        if lo > cur_hi:
            total += cur_hi - cur_lo
            cur_lo, cur_hi = lo, hi
        else:
            cur_hi = max(cur_hi, hi)
    total += cur_hi - cur_lo
    return total >= config.guard_coverage * length


def zones_from_sensors(store, site_code: str, at=None) -> list[Zone]:
    """The site's crane and hoist zones (``sensors.zones``) as machinery zones; none without such devices."""
    from sitetwin.sensors.zones import crane_zones

    return [as_zone(z) for z in crane_zones(store, site_code, at)]
