"""Dangerous works (危大工程): each site's register of dangerous sub-projects, their plans, reviews and dates.

The national rules (住建部令第37号《危险性较大的分部分项工程安全管理规定》 and its list, 建办质〔2018〕31号)
name the kinds of works (:data:`WORK_TYPES`) and two scales: dangerous works (危大工程) need a
special construction plan (专项施工方案) approved before they start; works beyond a certain scale
(超过一定规模) need the plan reviewed by experts (专家论证) first. A work's record moves through

    planned --(review passed, beyond scale only)--> --approve--> approved --start--> active --finish--> finished

and every step is checked: no approval of a beyond-scale plan before its expert review passed, no
start before approval, no day earlier than the step before it, no day in the future. The state is
derived from the days, never set by hand. A work names the model elements it concerns (GlobalIds
of the site's current models) and/or a zone: a plan polygon in the site's local frame (metres)
with a height range.

What the register raises:

- :func:`check_zones`: a person detected (vision's located detections) inside the zone of works
  whose planned period has begun while their plan is not approved is a ``dangerous_works_zone``
  hazard, stored through vision (one per work, source and day, so a re-run adds nothing).
- :func:`raise_overdue_findings`: works whose planned start has passed without an approved plan
  get one finding each (idempotent: source ``dangerous_works``, ref ``<work_id>:overdue_approval``).

Every write takes a :class:`Scope`; site parties write the register (regulators and contractors:
:data:`WRITER_ROLES`), everyone in scope reads it. Imports (:func:`import_works`, CSV or JSON) are
one transaction: a bad row is one line naming the file, row and field, and nothing of the file is kept.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import math
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sitetwin.data.clock import utcnow
from sitetwin.data.errors import Phrase
from sitetwin.data.i18n import N_
from sitetwin.data.store import Store, atomic
from sitetwin.data.text import LABEL_MAX, NOTE_MAX, TITLE_MAX, TextError, clean_text
from sitetwin.oversight import audit
from sitetwin.oversight.errors import AccessDenied, OversightError
from sitetwin.oversight.scope import Scope

# key -> the list's name (建办质〔2018〕31号): the stored value is the key, the Chinese name is accepted on import
WORK_TYPES: dict[str, str] = {
    "foundation_pit": "基坑工程",                              # foundation pits, deep excavation, dewatering
    "formwork_support": "模板工程及支撑体系",                    # formwork and its supports (high formwork)
    "lifting_installation": "起重吊装及起重机械安装拆卸工程",      # heavy lifting; erecting/dismantling cranes, hoists
    "scaffolding": "脚手架工程",                               # scaffolds (high, cantilevered, attached lifting)
    "demolition": "拆除工程",
    "underground_excavation": "暗挖工程",                        # tunnelling, pipe jacking, mined excavation
    "curtain_wall": "建筑幕墙安装工程",
    "other": "其他",                                          # new techniques, steel structures, diving, ...
}
SCALES: dict[str, tuple[str, ...]] = {
    "dangerous": ("危大", "危大工程", "dangerous"),
    "beyond_scale": ("超过一定规模", "超危", "超过一定规模的危大工程", "beyond_scale", "beyond-scale"),
}
REVIEW_STATES = ("not_required", "pending", "passed", "failed")
STATES = ("planned", "approved", "active", "finished")
# Who may change the register: the parties on a site's record (the contractor enters its plans and dates,
# regulators correct them); viewers read only. The system scope may do everything.
WRITER_ROLES = frozenset({"admin", "city_regulator", "district_regulator", "contractor", "enterprise"})
ZONE_RULE = "dangerous_works_zone"
FINDING_SOURCE = "dangerous_works"
FIELDS = ("site_code", "code", "work_type", "scale", "title", "description", "responsible", "planned_start",
          "planned_end", "review_state", "review_on", "plan_approved_on", "plan_approved_by", "actual_start",
          "actual_end", "global_ids", "zone")
# CSV has no nesting: the zone is three columns, the polygon "x y; x y; x y" (metres, local frame)
CSV_ZONE = ("zone_polygon_m", "zone_z_min_m", "zone_z_max_m")
MAX_IMPORT_BYTES = 20 << 20
MAX_VERTICES = 200
MAX_ELEMENTS = 5000
MAX_FUTURE_DAYS = 1           # a step may be dated this far after today's UTC date (a site east of Greenwich)


class WorksError(OversightError):
    """A dangerous-works record or step that is not allowed (names the field and what to do)."""


@dataclass(frozen=True)
class ZoneConfig:
    """How the zone check judges people and raises hazards."""

    person_class: str = "person"               # the detector class that is a person
    element_margin_m: float = 2.0              # (m) a work without a polygon: its elements' plan box grown by this
    element_z_margin_m: float = 2.0            # (m) ... and its height range by this
    severity: str = "high"                     # severity of a dangerous_works_zone hazard
    finding_severity: str = "high"             # severity of an overdue-approval finding
    max_detection_ids: int = 50                # detection ids kept as evidence per hazard


@dataclass(frozen=True)
class Zone:
    """Where works happen: a plan polygon (metres, site local frame) between two heights."""

    polygon_m: tuple[tuple[float, float], ...]
    z_min_m: float
    z_max_m: float

    def contains(self, points_m) -> Any:
        """(n,) bool: which of the (n, 3) points lie inside (boundary included)."""
        import numpy as np
        from matplotlib.path import Path as PlanPath

        p = np.asarray(points_m, np.float64).reshape(-1, 3)
        if not len(p):
            return np.zeros(0, bool)
        inside = PlanPath(np.asarray(self.polygon_m, np.float64)).contains_points(p[:, :2], radius=1e-9)
        # matplotlib's radius sign depends on the polygon's orientation: try both and keep either
        inside |= PlanPath(np.asarray(self.polygon_m, np.float64)).contains_points(p[:, :2], radius=-1e-9)
        return inside & (p[:, 2] >= self.z_min_m) & (p[:, 2] <= self.z_max_m)

    def as_json(self) -> dict:
        return {"polygon_m": [list(v) for v in self.polygon_m], "z_min_m": self.z_min_m, "z_max_m": self.z_max_m}


@dataclass(frozen=True)
class DangerousWork:
    work_id: str
    site_code: str
    code: str                                  # the site's reference, e.g. DW-03
    work_type: str                             # a key of WORK_TYPES
    scale: str                                 # dangerous | beyond_scale
    title: str
    description: str
    responsible: str
    planned_start: dt.date
    planned_end: dt.date
    review_state: str                          # not_required | pending | passed | failed
    review_on: dt.date | None
    plan_approved_on: dt.date | None
    plan_approved_by: str | None
    actual_start: dt.date | None
    actual_end: dt.date | None
    state: str                                 # planned | approved | active | finished
    global_ids: tuple[str, ...] = ()
    zone: Zone | None = None
    created_by: str = ""
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    overdue_days: int = 0                      # days since the planned start without an approved plan (as of a day)

    @property
    def needs_review(self) -> bool:
        return self.scale == "beyond_scale"

    @property
    def overdue(self) -> bool:
        return self.overdue_days > 0

    def approved_by(self, day: dt.date) -> bool:
        return self.plan_approved_on is not None and self.plan_approved_on <= day

    def finished_by(self, day: dt.date) -> bool:
        return self.actual_end is not None and self.actual_end <= day

    def active_on(self, day: dt.date) -> bool:
        """Started by ``day`` and not finished by it."""
        return self.actual_start is not None and self.actual_start <= day and not self.finished_by(day)

    def unapproved_in_period(self, day: dt.date) -> bool:
        """Its planned period has begun by ``day``, it is not finished, and its plan is not approved on ``day``."""
        return self.planned_start <= day and not self.finished_by(day) and not self.approved_by(day)


class _Bad(Exception):
    """One field of one record is wrong (turned into a one-line WorksError naming where): the field and
    a template with its fields; ``message`` is ``field: problem`` in the reader's language."""

    def __init__(self, field: str | Phrase, problem: str, /, **fields: Any):
        super().__init__(problem)
        self.field = field
        self.message = Phrase(N_("{field}: {problem}"), field=field, problem=Phrase(problem, **fields))

    @classmethod
    def of_text(cls, field: str | Phrase, exc: TextError) -> _Bad:
        """A ``data.text`` refusal, whose message already reads ``field: problem``."""
        bad = cls(field, exc.template, **exc.fields)
        bad.message = Phrase(exc.template, **exc.fields)
        return bad


# the words of what a caller asked for, in a refusal (stored in English in the audit log)
_REGISTER = Phrase(N_("register dangerous works"))
_IMPORT = Phrase(N_("import dangerous works"))
_READ = Phrase(N_("read the dangerous-works register"))
_CHECK = Phrase(N_("check dangerous works"))
# a choice's field in an "unknown ..." refusal
_FIELD_WORDS = {"work_type": N_("work type"), "scale": N_("scale"), "review_state": N_("review state")}


def _english(what: str | Phrase) -> str:
    return what.text("en") if isinstance(what, Phrase) else what


# --------------------------------------------------------------------------------------
# checking a record (the same rules for one added by hand, one imported and each step)

def _clean(value: Any, field: str, max_len: int = TITLE_MAX, *, required: bool = True,
           multiline: bool = False) -> str:
    if value is not None and not isinstance(value, str):
        value = str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value
    try:
        return clean_text(value, field, max_len=max_len, required=required, multiline=multiline)
    except TextError as exc:
        raise _Bad.of_text(field, exc) from None


def _date(value: Any, field: str | Phrase, *, required: bool = False) -> dt.date | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise _Bad(field, N_("a date is needed (YYYY-MM-DD)"))
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    try:
        return dt.date.fromisoformat(text[:10]) if len(text) <= 10 else dt.datetime.fromisoformat(text).date()
    except ValueError:
        raise _Bad(field, N_("{value!r} is not a date (YYYY-MM-DD)"), value=text[:40]) from None


def _choice(value: Any, field: str, names: Mapping[str, Iterable[str]] | Sequence[str]) -> str:
    text = _clean(value, field, LABEL_MAX)
    key = text.strip().lower().replace("-", "_").replace(" ", "_")
    options = names if isinstance(names, Mapping) else {n: () for n in names}
    for name, aliases in options.items():
        spellings = [name, *([aliases] if isinstance(aliases, str) else aliases)]
        if key == name or text in spellings:
            return name
    raise _Bad(field, N_("unknown {name} {value!r} (use one of {options})"),
               name=Phrase(_FIELD_WORDS.get(field, field.replace("_", " "))), value=text[:40],
               options=", ".join(options))


def work_type(value: Any) -> str:
    """A work type key from a key or the list's Chinese name (``基坑工程`` -> ``foundation_pit``)."""
    try:
        return _choice(value, "work_type", {k: (v,) for k, v in WORK_TYPES.items()})
    except _Bad as exc:
        raise WorksError(exc.message.template, **exc.message.fields) from None


def _number(value: Any, field: str) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise _Bad(field, N_("{value!r} is not a number (metres)"), value=str(value)[:40]) from None
    if not math.isfinite(x):
        raise _Bad(field, N_("must be a finite number (metres)"))
    return x


def _zone(value: Any) -> Zone | None:
    if value is None or value == "" or value == {}:
        return None
    if isinstance(value, Zone):
        value = value.as_json()
    if not isinstance(value, Mapping):
        raise _Bad("zone", N_("must be {shape}"), shape='{"polygon_m": [[x, y], ...], "z_min_m": z0, "z_max_m": z1}')
    unknown = sorted(set(value) - {"polygon_m", "z_min_m", "z_max_m"})
    if unknown:
        raise _Bad("zone", N_("unknown key {key!r} (use polygon_m, z_min_m, z_max_m)"), key=unknown[0][:40])
    poly = value.get("polygon_m")
    if isinstance(poly, str):
        poly = [part.split() for part in poly.split(";") if part.strip()]
    if not isinstance(poly, (list, tuple)) or not 3 <= len(poly) <= MAX_VERTICES:
        raise _Bad("zone.polygon_m", N_("needs 3 to {limit} vertices [x, y] (metres, site local frame)"),
                   limit=MAX_VERTICES)
    vertices = []
    for k, v in enumerate(poly):
        if not isinstance(v, (list, tuple)) or len(v) != 2:
            raise _Bad("zone.polygon_m", N_("vertex {n} must be two numbers x y"), n=k + 1)
        vertices.append((_number(v[0], "zone.polygon_m"), _number(v[1], "zone.polygon_m")))
    area = 0.5 * abs(sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(vertices, vertices[1:] + vertices[:1])))
    if area < 1e-6:
        raise _Bad("zone.polygon_m", N_("the polygon encloses no area"))
    z0 = _number(value.get("z_min_m"), "zone.z_min_m")
    z1 = _number(value.get("z_max_m"), "zone.z_max_m")
    if z1 <= z0:
        raise _Bad("zone.z_max_m", N_("{z_max} is not above z_min_m {z_min}"), z_max=z1, z_min=z0)
    return Zone(tuple(vertices), z0, z1)


def _global_ids(value: Any) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        value = [v for v in value.replace(",", ";").split(";")]
    if not isinstance(value, (list, tuple)):
        raise _Bad("global_ids", N_("must be a list of IFC GlobalIds"))
    ids = [_clean(v, "global_ids", LABEL_MAX, required=False) for v in value]
    ids = list(dict.fromkeys(v for v in ids if v))
    if len(ids) > MAX_ELEMENTS:
        raise _Bad("global_ids", N_("{n} elements, more than the {limit} allowed"), n=len(ids), limit=MAX_ELEMENTS)
    return tuple(ids)


def _state(w: Mapping[str, Any]) -> str:
    if w.get("actual_end"):
        return "finished"
    if w.get("actual_start"):
        return "active"
    if w.get("plan_approved_on"):
        return "approved"
    return "planned"


def _check(raw: Mapping[str, Any], *, today: dt.date) -> dict[str, Any]:
    """A record as it may be stored (fields of the table, state derived), or :class:`_Bad`."""
    unknown = sorted(set(raw) - set(FIELDS) - {"work_id"})
    if unknown:
        raise _Bad(unknown[0][:40], N_("unknown field (fields: {fields})"), fields=", ".join(FIELDS))
    w: dict[str, Any] = {}
    w["code"] = _clean(raw.get("code"), "code", LABEL_MAX)
    w["work_type"] = _choice(raw.get("work_type"), "work_type", {k: (v,) for k, v in WORK_TYPES.items()})
    w["scale"] = _choice(raw.get("scale") or "dangerous", "scale", SCALES)
    w["title"] = _clean(raw.get("title"), "title")
    w["description"] = _clean(raw.get("description"), "description", NOTE_MAX, required=False, multiline=True)
    w["responsible"] = _clean(raw.get("responsible"), "responsible")
    w["planned_start"] = _date(raw.get("planned_start"), "planned_start", required=True)
    w["planned_end"] = _date(raw.get("planned_end"), "planned_end", required=True)
    if w["planned_end"] < w["planned_start"]:
        raise _Bad("planned_end", N_("{end} is before planned_start {start}"), end=w["planned_end"],
                   start=w["planned_start"])
    default_review = "pending" if w["scale"] == "beyond_scale" else "not_required"
    w["review_state"] = _choice(raw.get("review_state") or default_review, "review_state", REVIEW_STATES)
    w["review_on"] = _date(raw.get("review_on"), "review_on")
    w["plan_approved_on"] = _date(raw.get("plan_approved_on"), "plan_approved_on")
    w["plan_approved_by"] = _clean(raw.get("plan_approved_by"), "plan_approved_by", required=False) or None
    w["actual_start"] = _date(raw.get("actual_start"), "actual_start")
    w["actual_end"] = _date(raw.get("actual_end"), "actual_end")
    for name in ("review_on", "plan_approved_on", "actual_start", "actual_end"):
        if w[name] is not None and w[name] > today + dt.timedelta(days=MAX_FUTURE_DAYS):
            raise _Bad(name, N_("{day} is in the future (today is {today}); record a step on the day it happens"),
                       day=w[name], today=today)
    if w["scale"] == "dangerous" and w["review_state"] != "not_required":
        raise _Bad("review_state", N_("an expert review is for works beyond a certain scale; use not_required, "
                                      "or set scale to beyond_scale"))
    if w["scale"] == "beyond_scale" and w["review_state"] == "not_required":
        raise _Bad("review_state", N_("works beyond a certain scale need an expert review: pending, passed or failed"))
    if w["review_state"] in ("passed", "failed") and w["review_on"] is None:
        raise _Bad("review_on", N_("a {state} review needs its day"), state=w["review_state"])
    if w["review_state"] in ("pending", "not_required") and w["review_on"] is not None:
        raise _Bad("review_on", N_("review_state is {state}: no review day (or set the review's outcome)"),
                   state=w["review_state"])
    if w["plan_approved_on"] is not None:
        if w["plan_approved_by"] is None:
            raise _Bad("plan_approved_by", N_("an approved plan needs who approved it"))
        if w["scale"] == "beyond_scale" and w["review_state"] != "passed":
            raise _Bad("plan_approved_on", N_("a plan beyond a certain scale is approved only after its expert review "
                                              "passed (review_state is {state})"), state=w["review_state"])
        if w["review_on"] is not None and w["plan_approved_on"] < w["review_on"]:
            raise _Bad("plan_approved_on", N_("{day} is before the expert review on {review_on}"),
                       day=w["plan_approved_on"], review_on=w["review_on"])
    elif w["plan_approved_by"] is not None:
        raise _Bad("plan_approved_on", N_("plan_approved_by is given but not the day of approval"))
    if w["actual_start"] is not None:
        if w["plan_approved_on"] is None:
            raise _Bad("actual_start", N_("works cannot start before their special plan is approved "
                                          "(no plan_approved_on)"))
        if w["actual_start"] < w["plan_approved_on"]:
            raise _Bad("actual_start", N_("{day} is before the plan's approval on {approved_on}"),
                       day=w["actual_start"], approved_on=w["plan_approved_on"])
    if w["actual_end"] is not None:
        if w["actual_start"] is None:
            raise _Bad("actual_end", N_("works cannot finish before they started (no actual_start)"))
        if w["actual_end"] < w["actual_start"]:
            raise _Bad("actual_end", N_("{day} is before actual_start {start}"), day=w["actual_end"],
                       start=w["actual_start"])
    w["global_ids"] = _global_ids(raw.get("global_ids"))
    w["zone"] = _zone(raw.get("zone"))
    w["state"] = _state(w)
    return w


def _check_elements(store: Store, site_code: str, global_ids: Sequence[str]) -> None:
    if not global_ids:
        return
    from sitetwin.bim.queries import element_labels

    known = set(element_labels(store, site_code, global_ids)["global_id"])
    missing = [g for g in global_ids if g not in known]
    if missing:
        raise _Bad("global_ids", N_("{global_id!r} is not an element of site {site_code}'s current models{more}"),
                   global_id=missing[0][:40], site_code=site_code,
                   more=Phrase(N_(" (and {n} more)"), n=len(missing) - 1) if len(missing) > 1 else "")


# --------------------------------------------------------------------------------------
# scope

def _require_write(store: Store, scope: Scope, site_code: str | None, what: Phrase) -> None:
    """The caller may change the register (of ``site_code`` when given); a refusal is logged, then raised."""
    if scope.role != "system" and scope.role not in WRITER_ROLES:
        audit.record(store, scope, "denied", "dangerous_work", site_code, site_code=site_code,
                     detail={"action": _english(what)})
        raise AccessDenied(N_("{actor} ({role}) may not {action}; allowed roles: {allowed}"), actor=scope.actor,
                           role=scope.role, action=what, allowed=", ".join(sorted(WRITER_ROLES)))
    if site_code is not None:
        audit.guard(store, scope, "read", site_code, what=what)


def _require_read(store: Store, scope: Scope, site_code: str) -> None:
    audit.guard(store, scope, "read", site_code, what=_READ)


def _site_exists(store: Store, site_code: Any) -> bool:
    return isinstance(site_code, str) and bool(store.scalar("SELECT count(*) FROM sites WHERE site_code = ?",
                                                            [site_code]))


# --------------------------------------------------------------------------------------
# writing

def add_work(store: Store, scope: Scope, site_code: str, *, code: str, work_type: str, title: str,
             responsible: str, planned_start: dt.date | str, planned_end: dt.date | str, scale: str = "dangerous",
             description: str = "", global_ids: Sequence[str] = (), zone: Zone | Mapping | None = None,
             review_state: str | None = None, review_on: dt.date | str | None = None,
             plan_approved_on: dt.date | str | None = None, plan_approved_by: str | None = None,
             actual_start: dt.date | str | None = None, actual_end: dt.date | str | None = None,
             today: dt.date | None = None) -> str:
    """Register one dangerous work on ``site_code``; returns its ``work_id``.

    A record may arrive with the steps it has already taken (a review, an approval, a start), each
    checked as :func:`review_work`, :func:`approve_plan` and :func:`start_work` check them; no step
    after ``today`` (default: today, UTC; a generated site's story passes its own).

    >>> add_work(store, scope, "DEMO", code="DW-01", work_type="foundation_pit", scale="beyond_scale",
    ...          title="Basement excavation 9.5 m", responsible="Li Wei", planned_start="2026-03-02",
    ...          planned_end="2026-05-29", zone={"polygon_m": [[0, 0], [40, 0], [40, 25], [0, 25]],
    ...                                          "z_min_m": -10, "z_max_m": 2})       # doctest: +SKIP
    """
    if not _site_exists(store, site_code):
        # refused with the words of a site out of scope: a caller cannot probe which sites exist
        audit.guard(store, scope, "read", str(site_code), what=_REGISTER)
    _require_write(store, scope, site_code, _REGISTER)
    raw = {"code": code, "work_type": work_type, "scale": scale, "title": title, "description": description,
           "responsible": responsible, "planned_start": planned_start, "planned_end": planned_end,
           "review_state": review_state, "review_on": review_on, "plan_approved_on": plan_approved_on,
           "plan_approved_by": plan_approved_by, "actual_start": actual_start, "actual_end": actual_end,
           "global_ids": list(global_ids), "zone": zone}
    try:
        rec = _check(raw, today=today or utcnow().date())
        _check_elements(store, site_code, rec["global_ids"])
    except _Bad as exc:
        raise WorksError(N_("dangerous work {code!r}: {problem}"), code=str(code)[:40], problem=exc.message) from None
    with atomic(store):
        if store.scalar("SELECT count(*) FROM dangerous_works WHERE site_code = ? AND code = ?",
                        [site_code, rec["code"]]):
            raise WorksError(N_("dangerous work {code!r}: already registered on site {site_code}; "
                                "use another code, or approve/start/finish the one there"), code=rec["code"],
                             site_code=site_code)
        work_id = _insert(store, scope, site_code, rec, kind="registered")
    return work_id


def _insert(store: Store, scope: Scope, site_code: str, rec: dict, *, kind: str, note: str | None = None) -> str:
    now = utcnow()
    work_id = str(uuid.uuid4())
    row = {"work_id": work_id, "site_code": site_code, **{k: v for k, v in rec.items() if k not in ("zone",
                                                                                                     "global_ids")},
           "global_ids": list(rec["global_ids"]), "zone": rec["zone"].as_json() if rec["zone"] else None,
           "created_by": scope.actor, "created_at": now, "updated_at": now}
    cols = list(row)
    store.execute(f"INSERT INTO dangerous_works ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})",
                  [json.dumps(row[c]) if c in ("global_ids", "zone") and row[c] is not None else row[c]
                   for c in cols])
    _event(store, scope, work_id, site_code, kind, None, note or f"{rec['code']}: {rec['state']}", at=now)
    audit.record(store, scope, "write", "dangerous_work", work_id, site_code=site_code, detail={"event": kind})
    return work_id


def _event(store: Store, scope: Scope, work_id: str, site_code: str, kind: str, on_day: dt.date | None,
           note: str | None, *, at: dt.datetime | None = None) -> None:
    seq = int(store.scalar("SELECT coalesce(max(seq), 0) + 1 FROM dangerous_work_events WHERE work_id = ?",
                           [work_id]))
    store.execute("INSERT INTO dangerous_work_events (event_id, work_id, site_code, seq, occurred_at, actor, kind, "
                  "on_day, note) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                  [str(uuid.uuid4()), work_id, site_code, seq, at or utcnow(), scope.actor, kind, on_day, note])


def import_works(store: Store, scope: Scope, path: str | Path, *, site_code: str | None = None) -> dict:
    """Register the works of a CSV or JSON file, all or none; returns ``{"file", "works", "work_ids", "sites"}``.

    Columns / keys are :data:`FIELDS` (CSV: ``global_ids`` separated by ``;``, the zone as
    :data:`CSV_ZONE`, the polygon ``"x y; x y; x y"``). ``site_code`` fills rows that name none;
    a row naming another site is refused. JSON is a list of records or ``{"works": [...]}``.
    Any bad row: one :class:`WorksError` line ``<file>: row N, field F: problem``; nothing is stored.
    """
    path = Path(path)
    scope.require("read")
    records = _read_file(path)
    today = utcnow().date()
    checked: list[tuple[str, dict]] = []
    seen: dict[tuple[str, str], int] = {}
    for n, raw in records:
        row_site = raw.pop("site_code", None)
        row_site = row_site.strip() if isinstance(row_site, str) else row_site
        if row_site in (None, ""):
            row_site = site_code
        if row_site is None:
            raise WorksError(N_("{path}: row {row}, field site_code: no site (give a site_code column or --site)"),
                             path=path, row=n)
        if site_code is not None and row_site != site_code:
            raise WorksError(N_("{path}: row {row}, field site_code: {value!r} is not the site being imported "
                                "({site_code})"), path=path, row=n, value=str(row_site)[:40], site_code=site_code)
        if not _site_exists(store, row_site) or not scope.admits(store, row_site):
            # an unknown site reads as one out of scope: a file cannot probe which sites exist
            audit.record(store, scope, "denied", "dangerous_work", str(row_site)[:40], detail={"file": str(path)})
            raise AccessDenied(N_("{path}: row {row}, field site_code: site {value!r} is unknown or not in "
                                  "your scope"), path=path, row=n, value=str(row_site)[:40])
        try:
            _require_write(store, scope, row_site, _IMPORT)
        except AccessDenied as exc:
            raise AccessDenied(N_("{path}: row {row}: {problem}"), path=path, row=n,
                               problem=Phrase(exc.template, **exc.fields)) from None
        try:
            rec = _check(raw, today=today)
            _check_elements(store, row_site, rec["global_ids"])
        except _Bad as exc:
            raise WorksError(N_("{path}: row {row}, field {problem}"), path=path, row=n, problem=exc.message) from None
        key = (row_site, rec["code"])
        if key in seen:
            raise WorksError(N_("{path}: row {row}, field code: {code!r} repeats row {first}"), path=path, row=n,
                             code=rec["code"], first=seen[key])
        seen[key] = n
        checked.append((row_site, rec))
    if not checked:
        raise WorksError(N_("{path}: no dangerous works in the file"), path=path)
    ids = []
    with store.transaction():
        for (row_site, rec), (n, _raw) in zip(checked, records):
            if store.scalar("SELECT count(*) FROM dangerous_works WHERE site_code = ? AND code = ?",
                            [row_site, rec["code"]]):
                raise WorksError(N_("{path}: row {row}, field code: {code!r} is already registered on site "
                                    "{site_code}"), path=path, row=n, code=rec["code"], site_code=row_site)
            ids.append(_insert(store, scope, row_site, rec, kind="imported", note=f"from {path.name} row {n}"))
        audit.record(store, scope, "import", "dangerous_works", path.name,
                     site_code=checked[0][0] if len({s for s, _ in checked}) == 1 else None,
                     detail={"works": len(ids)})
    return {"file": str(path), "works": len(ids), "work_ids": ids, "sites": sorted({s for s, _ in checked})}


def _read_file(path: Path) -> list[tuple[int, dict]]:
    """(row number, record) of a CSV or JSON file; a file that cannot be read is one line naming it."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise WorksError(N_("{path}: cannot read ({error})"), path=path, error=str(exc.strerror or exc)) from None
    if size > MAX_IMPORT_BYTES:
        raise WorksError(N_("{path}: {size:,} bytes, more than the {limit:,} a register may have"), path=path,
                         size=size, limit=MAX_IMPORT_BYTES)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise WorksError(N_("{path}: not UTF-8 text (byte {byte}); save it as UTF-8"), path=path,
                         byte=exc.start + 1) from None
    suffix = path.suffix.lower()
    if suffix == ".json":
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise WorksError(N_("{path}: not valid JSON ({error})"), path=path, error=str(exc)) from None
        if isinstance(data, dict) and set(data) == {"works"}:
            data = data["works"]
        if not isinstance(data, list):
            raise WorksError(N_("{path}: expected a list of works or {shape}"), path=path, shape='{"works": [...]}')
        out = []
        for n, item in enumerate(data, 1):
            if not isinstance(item, dict):
                raise WorksError(N_("{path}: row {row}: expected an object with the fields {fields}"), path=path,
                                 row=n, fields=", ".join(FIELDS))
            out.append((n, dict(item)))
        return out
    if suffix == ".csv":
        reader = csv.DictReader(io.StringIO(text, newline=""))
        header = reader.fieldnames or []
        allowed = set(FIELDS) - {"zone"} | set(CSV_ZONE)
        unknown = [h for h in header if h not in allowed]
        if unknown:
            raise WorksError(N_("{path}: row 0 (header), field {column!r}: unknown column (columns: {columns})"),
                             path=path, column=unknown[0][:40], columns=", ".join(sorted(allowed)))
        out = []
        for n, row in enumerate(reader, 1):
            if None in row:
                raise WorksError(N_("{path}: row {row}: more values than columns"), path=path, row=n)
            rec = {k: v for k, v in row.items() if k not in CSV_ZONE}
            zone = {k[len("zone_"):]: row.get(k) for k in CSV_ZONE if (row.get(k) or "").strip()}
            if zone:
                rec["zone"] = zone
            out.append((n, rec))
        return out
    raise WorksError(N_("{path}: use a .csv or .json file"), path=path)


def get_work(store: Store, scope: Scope, work: str, *, site_code: str | None = None,
             as_of: dt.date | str | None = None) -> DangerousWork:
    """One work by its ``work_id``, or by its code with ``site_code``. An unknown one is refused like one out of
    scope, so ids and codes cannot be probed."""
    row = _load(store, work, site_code)
    if row is None or not scope.admits(store, row["site_code"]):
        audit.record(store, scope, "denied", "dangerous_work", str(work)[:60], site_code=site_code,
                     detail={"action": "read"})
        raise AccessDenied(N_("{actor} ({role}): dangerous work {work!r} is not in your scope"), actor=scope.actor,
                           role=scope.role, work=str(work)[:60])
    _require_read(store, scope, row["site_code"])
    return _work(row, _day(as_of))


def _load(store: Store, work: str, site_code: str | None) -> dict | None:
    if not isinstance(work, str) or not work.strip():
        return None
    if site_code is not None:
        row = store.one("SELECT * FROM dangerous_works WHERE site_code = ? AND (code = ? OR work_id = ?)",
                        [site_code, work.strip(), work.strip().lower()])
    else:
        row = store.one("SELECT * FROM dangerous_works WHERE work_id = ?", [work.strip().lower()])
    return row


def _step(store: Store, scope: Scope, work: str, site_code: str | None, what: Phrase, change) -> DangerousWork:
    """Load a work the caller may change, apply ``change(record) -> (new fields, event kind, day, note)``,
    check the whole record again, store it and its event."""
    row = _load(store, work, site_code)
    if row is None or not scope.admits(store, row["site_code"]):
        audit.record(store, scope, "denied", "dangerous_work", str(work)[:60], site_code=site_code,
                     detail={"action": _english(what)})
        raise AccessDenied(N_("{actor} ({role}): dangerous work {work!r} is not in your scope"), actor=scope.actor,
                           role=scope.role, work=str(work)[:60])
    _require_write(store, scope, row["site_code"], what)
    current = _work(row, utcnow().date())
    fields, kind, day, note = change(current)
    raw = {k: getattr(current, k) for k in FIELDS if k not in ("site_code", "zone", "global_ids")}
    raw.update(global_ids=list(current.global_ids), zone=current.zone)
    raw.update(fields)
    try:
        rec = _check(raw, today=utcnow().date())
    except _Bad as exc:
        raise WorksError(N_("dangerous work {code} ({site_code}): {problem}"), code=current.code,
                         site_code=current.site_code, problem=exc.message) from None
    now = utcnow()
    with atomic(store):
        sets = {k: rec[k] for k in fields} | {"state": rec["state"], "updated_at": now}
        store.execute(f"UPDATE dangerous_works SET {', '.join(f'{k} = ?' for k in sets)} WHERE work_id = ?",
                      [*sets.values(), current.work_id])
        _event(store, scope, current.work_id, current.site_code, kind, day, note, at=now)
        audit.record(store, scope, "write", "dangerous_work", current.work_id, site_code=current.site_code,
                     detail={"event": kind})
    row = store.one("SELECT * FROM dangerous_works WHERE work_id = ?", [current.work_id])
    assert row is not None                     # updated just now, inside this call
    return _work(row, now.date())


def review_work(store: Store, scope: Scope, work: str, *, passed: bool, on: dt.date | str | None = None,
                note: str = "", site_code: str | None = None) -> DangerousWork:
    """Record the expert review (专家论证) of a plan beyond a certain scale: passed or failed, on a day (default
    today). Only before the plan is approved; a failed review may be followed by another."""
    day = _step_day(on, Phrase(N_("review day")))
    text = _note(note)

    def change(w: DangerousWork):
        if not w.needs_review:
            raise WorksError(N_("dangerous work {code} ({site_code}): an expert review is for works beyond a "
                                "certain scale; this one is {scale}"), code=w.code, site_code=w.site_code,
                             scale=w.scale)
        if w.state != "planned":
            raise WorksError(N_("dangerous work {code} ({site_code}): the plan is already approved "
                                "({approved_on}); the review cannot change now"), code=w.code, site_code=w.site_code,
                             approved_on=w.plan_approved_on)
        if w.review_on is not None and day < w.review_on:
            raise WorksError(N_("dangerous work {code} ({site_code}): review day {day} is before the previous "
                                "review on {review_on}"), code=w.code, site_code=w.site_code, day=day,
                             review_on=w.review_on)
        state = "passed" if passed else "failed"
        return {"review_state": state, "review_on": day}, "reviewed", day, text or f"expert review {state}"
    return _step(store, scope, work, site_code, Phrase(N_("review dangerous works")), change)


def approve_plan(store: Store, scope: Scope, work: str, *, by: str, on: dt.date | str | None = None,
                 note: str = "", site_code: str | None = None) -> DangerousWork:
    """Record the special plan's approval (by whom, on which day; default today). Works beyond a certain scale
    need their expert review passed first."""
    day = _step_day(on, Phrase(N_("approval day")))
    text = _note(note)

    def change(w: DangerousWork):
        if w.state != "planned":
            raise WorksError(N_("dangerous work {code} ({site_code}): the plan is already approved ({approved_on})"),
                             code=w.code, site_code=w.site_code, approved_on=w.plan_approved_on)
        return {"plan_approved_on": day, "plan_approved_by": by}, "approved", day, text or f"plan approved by {by}"
    return _step(store, scope, work, site_code, Phrase(N_("approve dangerous-works plans")), change)


def start_work(store: Store, scope: Scope, work: str, *, on: dt.date | str | None = None, note: str = "",
               site_code: str | None = None) -> DangerousWork:
    """Record that the works started (default today); only once their plan is approved."""
    day = _step_day(on, Phrase(N_("start day")))
    text = _note(note)

    def change(w: DangerousWork):
        if w.state == "planned":
            raise WorksError(N_("dangerous work {code} ({site_code}): works cannot start before their special plan "
                                "is approved"), code=w.code, site_code=w.site_code)
        if w.state != "approved":
            raise WorksError(N_("dangerous work {code} ({site_code}): already {state} (started {started})"),
                             code=w.code, site_code=w.site_code, state=w.state, started=w.actual_start)
        return {"actual_start": day}, "started", day, text or "works started"
    return _step(store, scope, work, site_code, Phrase(N_("start dangerous works")), change)


def finish_work(store: Store, scope: Scope, work: str, *, on: dt.date | str | None = None, note: str = "",
                site_code: str | None = None) -> DangerousWork:
    """Record that the works finished (default today); only once they started."""
    day = _step_day(on, Phrase(N_("end day")))
    text = _note(note)

    def change(w: DangerousWork):
        if w.state in ("planned", "approved"):
            raise WorksError(N_("dangerous work {code} ({site_code}): works cannot finish before they started"),
                             code=w.code, site_code=w.site_code)
        if w.state != "active":
            raise WorksError(N_("dangerous work {code} ({site_code}): already finished on {finished}"),
                             code=w.code, site_code=w.site_code, finished=w.actual_end)
        return {"actual_end": day}, "finished", day, text or "works finished"
    return _step(store, scope, work, site_code, Phrase(N_("finish dangerous works")), change)


def _step_day(on: Any, what: Phrase) -> dt.date:
    try:
        day = _date(on, what) or utcnow().date()
    except _Bad as exc:
        raise WorksError(exc.message.template, **exc.message.fields) from None
    return day


def _note(note: Any) -> str:
    try:
        return _clean(note, "note", NOTE_MAX, required=False, multiline=True)
    except _Bad as exc:
        raise WorksError(exc.message.template, **exc.message.fields) from None


# --------------------------------------------------------------------------------------
# reading

def list_works(store: Store, scope: Scope, *, site_code: str | None = None, state: str | None = None,
               overdue: bool | None = None, as_of: dt.date | str | None = None) -> list[DangerousWork]:
    """The works of one site (or every site in scope), by site and planned start; ``overdue_days`` as of
    ``as_of`` (default today, UTC). ``state`` one of :data:`STATES`; ``overdue`` only (not) overdue ones."""
    if state is not None and state not in STATES:
        raise WorksError(N_("state {state!r}: use one of {states}"), state=str(state)[:40], states=", ".join(STATES))
    day = _day(as_of)
    if site_code is not None:
        _require_read(store, scope, site_code)
        rows = store.rows("SELECT * FROM dangerous_works WHERE site_code = ? ORDER BY planned_start, code",
                          [site_code])
    else:
        scope.require("read")
        cond, params = scope.where("site_code")
        rows = store.rows(f"SELECT * FROM dangerous_works WHERE {cond} ORDER BY site_code, planned_start, code",
                          params)
        audit.record(store, scope, "view", "dangerous_works", None, detail={"works": len(rows)})
    works = [_work(r, day) for r in rows]
    if state is not None:
        works = [w for w in works if w.state == state]
    if overdue is not None:
        works = [w for w in works if w.overdue == overdue]
    return works


def work_history(store: Store, scope: Scope, work: str, *, site_code: str | None = None) -> list[dict]:
    """A work's events, oldest first: seq, occurred_at (UTC), actor, kind, on_day, note."""
    w = get_work(store, scope, work, site_code=site_code)
    return store.rows("SELECT seq, occurred_at, actor, kind, on_day, note FROM dangerous_work_events "
                      "WHERE work_id = ? ORDER BY seq", [w.work_id])


def register_summary(store: Store, site_codes: Sequence[str], *, as_of: dt.date | str | None = None) -> list[dict]:
    """Per site (unscoped: callers pass sites their caller was admitted to), the register as of a day:
    works, beyond_scale, planned, approved, active, finished, overdue (planned start passed without an
    approved plan, not finished), active_beyond_scale, by_type ({work_type: count}). Sites without works
    have ``works`` 0."""
    day = _day(as_of)
    out = []
    for site in site_codes:
        rows = [_work(r, day) for r in store.rows("SELECT * FROM dangerous_works WHERE site_code = ?", [site])]
        by_state = {s: 0 for s in STATES}
        by_type: dict[str, int] = {}
        for w in rows:
            by_state[_state_on(w, day)] += 1
            by_type[w.work_type] = by_type.get(w.work_type, 0) + 1
        out.append({"site_code": site, "works": len(rows), "beyond_scale": sum(w.needs_review for w in rows),
                    **by_state, "overdue": sum(w.overdue for w in rows),
                    "active_beyond_scale": sum(w.needs_review and w.active_on(day) for w in rows),
                    "active_dangerous": sum(not w.needs_review and w.active_on(day) for w in rows),
                    "by_type": by_type})
    return out


def _state_on(w: DangerousWork, day: dt.date) -> str:
    """The work's state on a past day (the stored state is today's)."""
    return _state({"actual_end": w.actual_end if w.finished_by(day) else None,
                   "actual_start": w.actual_start if w.active_on(day) or w.finished_by(day) else None,
                   "plan_approved_on": w.plan_approved_on if w.approved_by(day) else None})


def _work(r: dict, day: dt.date) -> DangerousWork:
    gids = r["global_ids"]
    gids = json.loads(gids) if isinstance(gids, str) else (gids or [])
    zone = r.get("zone")
    zone = json.loads(zone) if isinstance(zone, str) else zone
    w = DangerousWork(
        work_id=r["work_id"], site_code=r["site_code"], code=r["code"], work_type=r["work_type"], scale=r["scale"],
        title=r["title"], description=r.get("description") or "", responsible=r["responsible"],
        planned_start=r["planned_start"], planned_end=r["planned_end"], review_state=r["review_state"],
        review_on=r["review_on"], plan_approved_on=r["plan_approved_on"], plan_approved_by=r["plan_approved_by"],
        actual_start=r["actual_start"], actual_end=r["actual_end"], state=r["state"], global_ids=tuple(gids),
        zone=Zone(tuple((float(x), float(y)) for x, y in zone["polygon_m"]), float(zone["z_min_m"]),
                  float(zone["z_max_m"])) if zone else None,
        created_by=r["created_by"], created_at=r["created_at"], updated_at=r["updated_at"])
    overdue = (day - w.planned_start).days if w.unapproved_in_period(day) and w.planned_start < day else 0
    return replace(w, overdue_days=max(0, overdue))


def _day(value: Any) -> dt.date:
    if value is None:
        return utcnow().date()
    try:
        day = _date(value, "as_of")
    except _Bad as exc:
        raise WorksError(exc.message.template, **exc.message.fields) from None
    return day or utcnow().date()


# --------------------------------------------------------------------------------------
# what the register raises

def raise_overdue_findings(store: Store, scope: Scope, *, site_code: str | None = None,
                           as_of: dt.date | str | None = None, config: ZoneConfig = ZoneConfig()) -> list[dict]:
    """One finding for each work whose planned start has passed without an approved plan (as of ``as_of``),
    unless it has one already. Returns the findings raised now: work_id, code, site_code, finding_id."""
    from sitetwin.oversight.findings import raise_finding

    day = _day(as_of)
    _require_write(store, scope, None, Phrase(N_("raise findings for dangerous works")))
    works = list_works(store, scope, site_code=site_code, overdue=True, as_of=day)
    raised = []
    with atomic(store):
        for w in works:
            ref = f"{w.work_id}:overdue_approval"
            if store.scalar("SELECT count(*) FROM findings WHERE site_code = ? AND source = ? AND source_ref = ?",
                            [w.site_code, FINDING_SOURCE, ref]):
                continue
            fid = raise_finding(
                store, site_code=w.site_code, category="safety", severity=config.finding_severity,
                title=f"Dangerous works {w.code} ({w.work_type.replace('_', ' ')}): planned start {w.planned_start} "
                      f"passed without an approved special plan",
                description=(f"{w.title}. Scale: {w.scale.replace('_', ' ')}; expert review: "
                             f"{w.review_state.replace('_', ' ')}. Responsible: {w.responsible}. "
                             f"{w.overdue_days} days overdue on {day}."),
                raised_by=FINDING_SOURCE, global_id=w.global_ids[0] if w.global_ids else None,
                evidence={"dangerous_work": {"work_id": w.work_id, "code": w.code,
                                             "planned_start": str(w.planned_start), "overdue_days": w.overdue_days}},
                source=FINDING_SOURCE, source_ref=ref,
                at=dt.datetime.combine(day, dt.time(12)) if day < utcnow().date() else None)
            raised.append({"work_id": w.work_id, "code": w.code, "site_code": w.site_code, "finding_id": fid})
    return raised


def work_zone(store: Store, w: DangerousWork, config: ZoneConfig = ZoneConfig()) -> Zone | None:
    """The zone a work concerns: its polygon, else the plan box round its elements grown by the margins
    (metres, local frame); None when it has neither (or its elements have no geometry)."""
    if w.zone is not None:
        return w.zone
    if not w.global_ids:
        return None
    from sitetwin.bim.queries import element_boxes

    boxes = element_boxes(store, w.site_code, list(w.global_ids)).dropna(subset=["bbox_min_x_m"])
    if boxes.empty:
        return None
    m, mz = config.element_margin_m, config.element_z_margin_m
    x0, y0 = boxes["bbox_min_x_m"].min() - m, boxes["bbox_min_y_m"].min() - m
    x1, y1 = boxes["bbox_max_x_m"].max() + m, boxes["bbox_max_y_m"].max() + m
    return Zone(((float(x0), float(y0)), (float(x1), float(y0)), (float(x1), float(y1)), (float(x0), float(y1))),
                float(boxes["bbox_min_z_m"].min() - mz), float(boxes["bbox_max_z_m"].max() + mz))


def _zone_hazards(store: Store, site_code: str, works: Sequence[DangerousWork], *, since: dt.datetime,
                 until: dt.datetime, config: ZoneConfig = ZoneConfig()) -> list[dict]:
    """The ``dangerous_works_zone`` hazard rows (vision's hazard columns) for people detected in
    [``since``, ``until``) inside the zone of a work whose planned period had begun that day while its
    plan was not approved: one per work, detection source and UTC day (a pure reading; nothing stored)."""
    import numpy as np

    from sitetwin.vision.queries import located_detections

    people = located_detections(store, site_code, class_name=config.person_class, since=since, until=until)
    if people.empty:
        return []
    points = people[["x_m", "y_m", "z_m"]].to_numpy(np.float64)
    days = [t.date() for t in people["captured_at"].dt.to_pydatetime()]
    hazards: dict[str, dict] = {}
    for w in works:
        zone = work_zone(store, w, config)
        if zone is None:
            continue
        inside = zone.contains(points)
        for k in np.flatnonzero(inside):
            day = days[k]
            if not w.unapproved_in_period(day):
                continue
            p = people.iloc[int(k)]
            source = str(p["source_ref"])
            hid = "H" + hashlib.sha256(f"{ZONE_RULE}|{w.work_id}|{source}|{day}".encode()).hexdigest()[:15]
            at = p["captured_at"].to_pydatetime()
            h = hazards.get(hid)
            if h is None:
                h = hazards[hid] = {
                    "hazard_id": hid, "site_code": site_code, "rule": ZONE_RULE, "severity": config.severity,
                    "message": (f"person inside the zone of dangerous works {w.code} "
                                f"({w.work_type.replace('_', ' ')}) whose special plan is not approved"
                                + (f" on {p['storey']}" if isinstance(p["storey"], str) else "")),
                    "started_at": at, "ended_at": at, "duration_s": 0.0, "source_kind": p["source_kind"],
                    "source_ref": source, "pano_id": _text_or_none(p["pano_id"]),
                    "camera_id": _text_or_none(p["camera_id"]), "storey": _text_or_none(p["storey"]),
                    "global_id": w.global_ids[0] if w.global_ids else None,
                    "x_m": float(p["x_m"]), "y_m": float(p["y_m"]), "z_m": float(p["z_m"]),
                    "detection_ids": [], "evidence": {"dangerous_work": {"work_id": w.work_id, "code": w.code},
                                                      "people": 0}}
            h["ended_at"] = max(h["ended_at"], at)
            h["duration_s"] = (h["ended_at"] - h["started_at"]).total_seconds()
            h["evidence"]["people"] += 1
            if len(h["detection_ids"]) < config.max_detection_ids:
                h["detection_ids"].append(str(p["detection_id"]))
    return list(hazards.values())


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def check_zones(store: Store, scope: Scope, site_code: str, *, since: dt.datetime, until: dt.datetime,
                config: ZoneConfig = ZoneConfig(), raise_findings: bool = True) -> dict:
    """Judge the site's detections in [``since``, ``until``) against its unapproved works' zones; store the new
    ``dangerous_works_zone`` hazards through vision and (``raise_findings``) a finding for each.

    Returns ``{"hazards": [new hazard ids], "seen": hazards judged (new or known), "findings": {hazard_id:
    finding_id}}``. Running it again over the same window stores nothing new.
    """
    from sitetwin.data.evidence import FindingDraft
    from sitetwin.oversight.raising import raise_drafts
    from sitetwin.vision.detection_store import link_finding, record_rule_hazards

    _require_write(store, scope, site_code, _CHECK)
    works = [_work(r, utcnow().date()) for r in store.rows("SELECT * FROM dangerous_works WHERE site_code = ?",
                                                            [site_code])]
    rows = _zone_hazards(store, site_code, works, since=since, until=until, config=config)
    findings: dict[str, str] = {}
    with atomic(store):
        fresh = record_rule_hazards(store, rows)
        if raise_findings and fresh:
            drafts = [FindingDraft(site_code=site_code, category="safety", severity=r["severity"],
                                   title=r["message"], source="hazard", source_ref=r["hazard_id"],
                                   raised_by=FINDING_SOURCE, global_id=r["global_id"], storey=r["storey"],
                                   location_m=(r["x_m"], r["y_m"], r["z_m"]),
                                   evidence={"hazard_id": r["hazard_id"], "detection_ids": r["detection_ids"]},
                                   at=r["started_at"])
                      for r in rows if r["hazard_id"] in fresh]
            findings = raise_drafts(store, drafts)
            for hid, fid in findings.items():
                link_finding(store, hid, fid)
    return {"hazards": fresh, "seen": len(rows), "findings": findings}


@dataclass(frozen=True)
class CheckReport:
    site_code: str
    as_of: dt.date
    overdue: tuple[str, ...]                   # codes of works overdue for approval
    findings: tuple[dict, ...]                 # overdue-approval findings raised now
    hazards: tuple[str, ...]                   # zone hazards stored now
    hazard_findings: dict = field(default_factory=dict)


def check_site(store: Store, scope: Scope, site_code: str, *, as_of: dt.date | str | None = None,
               window_days: int = 7, config: ZoneConfig = ZoneConfig()) -> CheckReport:
    """The register's daily check of one site: overdue approvals raise findings, people in unapproved works'
    zones over the ``window_days`` up to the end of ``as_of`` raise hazards (each once)."""
    day = _day(as_of)
    if not isinstance(window_days, int) or window_days < 1:
        raise WorksError(N_("window_days {value!r}: use a positive number of days"), value=window_days)
    _require_write(store, scope, site_code, _CHECK)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time())
    overdue = list_works(store, scope, site_code=site_code, overdue=True, as_of=day)
    findings = raise_overdue_findings(store, scope, site_code=site_code, as_of=day, config=config)
    zones = check_zones(store, scope, site_code, since=end - dt.timedelta(days=window_days), until=end,
                        config=config)
    return CheckReport(site_code=site_code, as_of=day, overdue=tuple(w.code for w in overdue),
                       findings=tuple(findings), hazards=tuple(zones["hazards"]), hazard_findings=zones["findings"])
