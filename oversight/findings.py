"""Findings: what a regulator (or a hazard rule, or a sensor) saw, followed until it is verified closed.

A finding names a site, optionally a model element (IFC GlobalId), its storey and a
location (metres, the site's local frame), a category and a severity, evidence
(panorama viewpoint, detection crops, deviation figures), who raised it and a due date.

Its life is an append-only list of events::

    open --submit_rectification--> rectification_submitted --verify_close--> verified_closed
      ^                                   |                                      |
      +---------- reopened <--reopen------+----------------reopen----------------+

The ``findings`` row never changes after it is written; status, due date and escalation
are whatever the newest event says (the ``finding_state`` view). Each append also brings the
finding's ``finding_current`` row up to date in the same transaction (``oversight.finding_state``,
which the city rollups read). Nothing in this module
updates or deletes an event, and each event carries the hash of the one before it (the
first one, the hash of the finding row), so :func:`verify_history` detects an edit made
behind the API's back.

Other packages raise findings through :func:`raise_finding` (contract 4); it joins the
caller's transaction when there is one.

Everything typed or sent is checked where it enters (issue 14): text through
``data.text.clean_text`` (no control characters, lengths capped: a title ``TITLE_MAX``, a
comment ``NOTE_MAX``), and evidence that names another record (a panorama, a detection, a
hazard) must name one of the finding's own site; view angles must be finite and in range.
A refusal is a :class:`FindingError` (text problems: :class:`FindingTextError`, also a
``data.text.TextError``) and writes nothing.

>>> fid = raise_finding(store, site_code="DEMO", category="safety", severity="high",
...                     title="Missing edge protection at slab edge", global_id="2O2Fr$t4X7Zf8NOew3FLOH",
...                     evidence={"panorama": {"pano_id": "p-001", "yaw_deg": 40.0, "pitch_deg": -10.0}})
...                                                                    # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sitetwin.bim.queries import element_record, model_element
from sitetwin.data.clock import utcnow
from sitetwin.data.errors import Phrase
from sitetwin.data.i18n import N_
from sitetwin.data.store import Store, atomic, placeholders
from sitetwin.data.text import LABEL_MAX, NOTE_MAX, TITLE_MAX, TextError, clean_text
from sitetwin.oversight import audit, finding_state
from sitetwin.oversight.errors import AccessDenied, FindingError
from sitetwin.oversight.scope import Scope
from sitetwin.panorama.queries import pano_in_site
from sitetwin.vision.queries import detection_site, hazard_site

CATEGORIES = ("safety", "quality", "progress", "environment")
SEVERITIES = ("low", "medium", "high", "critical")
STATUSES = ("open", "rectification_submitted", "verified_closed", "reopened")
EVENT_KINDS = ("raised", "comment", "rectification_submitted", "verified_closed", "reopened", "escalated",
               "due_changed", "imported")
# Days from raising to the due date when none is given.
DEFAULT_DUE_DAYS = {"low": 28, "medium": 14, "high": 7, "critical": 2}
# Overdue by more than steps[i] days -> escalation level i + 1, and who it goes to.
ESCALATION_STEPS_DAYS = (0, 7, 14)
ESCALATION_TO = {1: "site's regulator", 2: "district regulator", 3: "city regulator"}
# status -> the statuses it may follow
TRANSITIONS = {
    "rectification_submitted": frozenset({"open", "reopened"}),
    "verified_closed": frozenset({"rectification_submitted"}),
    "reopened": frozenset({"rectification_submitted", "verified_closed"}),
}
ACTIVE = ("open", "reopened")     # statuses in which the contractor has to act (and can be overdue)
_GENESIS = "finding:"
# Limits on what a caller may attach: the source reference (a BCF file's name, a hazard id), the labels,
# and the evidence (its JSON text, nesting, and how many records it may name).
REF_MAX = 500
LABELS_MAX = 50
EVIDENCE_MAX_CHARS = 1_000_000      # a BCF topic may select thousands of components
EVIDENCE_MAX_DEPTH = 8
EVIDENCE_MAX_IDS = 1_000
# The panorama view in evidence: horizontal field of view (as panorama.camera takes it) and pitch, degrees.
FOV_RANGE_DEG = (1.0, 179.0)        # from 1 up to, not including, 179
PITCH_RANGE_DEG = (-90.0, 90.0)
PANORAMA_KEYS = ("pano_id", "yaw_deg", "pitch_deg", "fov_deg", "pixel_uv", "depth_m", "box_px")


class FindingTextError(FindingError, TextError):
    """Text given to a finding (title, comment, label...) that cannot be stored: control characters, too long,
    or not text. Both a :class:`FindingError` and a ``data.text.TextError``; the message names the field."""


@dataclass(frozen=True)
class Finding:
    """A finding as it stands (status, due and escalation from its newest events)."""

    finding_id: str
    site_code: str
    number: int
    category: str
    severity: str
    title: str
    description: str
    raised_by: str
    raised_at: dt.datetime
    status: str
    status_at: dt.datetime
    due: dt.date | None
    escalation_level: int
    model_id: str | None = None
    global_id: str | None = None
    storey: str | None = None
    location_m: tuple[float, float, float] | None = None   # local frame, metres
    evidence: dict | None = None
    source: str | None = None
    source_ref: str | None = None
    labels: tuple[str, ...] = ()
    event_count: int = 1
    overdue_days: int = 0            # days past due as of the read (0 when not overdue)

    @property
    def ref(self) -> str:
        """Short human reference, e.g. ``DEMO-12``."""
        return f"{self.site_code}-{self.number}"

    @property
    def overdue(self) -> bool:
        return self.overdue_days > 0


@dataclass(frozen=True)
class FindingEvent:
    event_id: str
    finding_id: str
    seq: int
    occurred_at: dt.datetime
    actor: str
    kind: str
    status: str | None
    due: dt.date | None
    escalation_level: int | None
    note: str | None
    evidence: dict | None
    viewpoint_id: str | None
    hash: str


@dataclass(frozen=True)
class HistoryCheck:
    finding_id: str
    events: int
    ok: bool
    problems: tuple[str, ...]


# --------------------------------------------------------------------------------------
# raising

def raise_finding(store: Store, *, site_code: str, category: str, severity: str, title: str,
                  description: str = "", raised_by: str = "system", global_id: str | None = None,
                  model_id: str | None = None, storey: str | None = None,
                  location_m: Iterable[float] | None = None, evidence: dict | None = None,
                  due: dt.date | str | None = None, source: str | None = None, source_ref: str | None = None,
                  labels: Iterable[str] | None = None, scope: Scope | None = None,
                  at: dt.datetime | None = None, finding_id: str | None = None) -> str:
    """Record a new finding (status ``open``) and return its ``finding_id``.

    ``global_id`` alone is looked up among the site's current elements to fill
    ``model_id`` and ``storey``; with ``model_id`` it must name an element of that model.
    ``due`` defaults to ``DEFAULT_DUE_DAYS[severity]`` after raising. ``scope``, when
    given, must be allowed to raise findings on the site, and names who raised it.
    Runs inside the caller's transaction when there is one.
    """
    if scope is not None:
        _require(store, scope, site_code, "raise", Phrase(N_("raise findings")))
        if raised_by == "system":
            raised_by = scope.actor
    return _insert_finding(store, site_code=site_code, category=category, severity=severity, title=title,
                           description=description, raised_by=raised_by, global_id=global_id, model_id=model_id,
                           storey=storey, location_m=location_m, evidence=evidence, due=due, source=source,
                           source_ref=source_ref, labels=labels, at=at, finding_id=finding_id)


def _insert_finding(store: Store, *, site_code, category, severity, title, description, raised_by, global_id,
                    model_id, storey, location_m, evidence, due, source, source_ref, labels, at, finding_id,
                    bcf: dict | None = None, status: str = "open", default_due: bool = True) -> str:
    if not isinstance(site_code, str) or not store.scalar("SELECT count(*) FROM sites WHERE site_code = ?",
                                                          [site_code]):
        raise FindingError(N_("site {site_code!r}: no such site in {store}; create it with "
                              "`sitetwin init --site {site_code}`"), site_code=site_code, store=store.label)
    if category not in CATEGORIES:
        raise FindingError(N_("category {category!r}: use one of {categories}"), category=category,
                           categories=", ".join(CATEGORIES))
    if severity not in SEVERITIES:
        raise FindingError(N_("severity {severity!r}: use one of {severities}"), severity=severity,
                           severities=", ".join(SEVERITIES))
    if title is None or (isinstance(title, str) and not title.strip()):
        raise FindingError(N_("a finding needs a title"))
    title = _text(title, "title", TITLE_MAX)
    description = _text(description, "description", NOTE_MAX, multiline=True, required=False)
    raised_by = _text(raised_by, "raised_by", LABEL_MAX, required=False)
    if not raised_by:
        raise FindingError(N_("raised_by must name who raised the finding"))
    global_id = _text(global_id, "global_id", LABEL_MAX, required=False) or None
    model_id = _text(model_id, "model_id", LABEL_MAX, required=False) or None
    storey = _text(storey, "storey", TITLE_MAX, required=False) or None
    source = _text(source, "source", LABEL_MAX, required=False) or None
    source_ref = _text(source_ref, "source_ref", REF_MAX, required=False) or None
    labels = _labels(labels)
    loc = _location(location_m)
    evidence = _evidence(store, site_code, evidence, own=(source, source_ref))
    raised_at = _timestamp(at)
    if due is not None:
        due_date = _date(due, "due")
    elif default_due:
        due_date = (raised_at + dt.timedelta(days=DEFAULT_DUE_DAYS[severity])).date()
    else:
        due_date = None
    if finding_id is None:
        finding_id = str(uuid.uuid4())
    else:
        finding_id = _check_uuid(finding_id, "finding_id")
    model_id, global_id, storey = _element(store, site_code, model_id, global_id, storey)

    with atomic(store):
        if store.scalar("SELECT count(*) FROM findings WHERE finding_id = ?", [finding_id]):
            raise FindingError(N_("finding {finding_id} already exists"), finding_id=finding_id)
        number = int(store.scalar("SELECT coalesce(max(number), 0) + 1 FROM findings WHERE site_code = ?",
                                  [site_code]))
        row = {"finding_id": finding_id, "site_code": site_code, "number": number, "category": category,
               "severity": severity, "title": title, "description": description or "", "raised_by": raised_by,
               "raised_at": raised_at, "model_id": model_id, "global_id": global_id, "storey": storey,
               "x_m": loc[0] if loc else None, "y_m": loc[1] if loc else None, "z_m": loc[2] if loc else None,
               "evidence": evidence, "source": source, "source_ref": source_ref, "labels": labels, "bcf": bcf}
        cols = list(row)
        store.execute(f"INSERT INTO findings ({', '.join(cols)}) VALUES ({placeholders(cols)})",
                      [row[c] for c in cols])
        _append(store, finding_id, site_code, kind="raised", actor=raised_by, at=raised_at, status="open",
                due=due_date, escalation_level=0, note=None, evidence=None)
        if status != "open":
            _append(store, finding_id, site_code, kind="imported", actor=raised_by, at=raised_at, status=status,
                    note=f"status {status} taken over from the imported record")
    return finding_id


# --------------------------------------------------------------------------------------
# lifecycle

def comment(store: Store, finding_id: str, note: str, *, scope: Scope, evidence: dict | None = None,
            viewpoint_id: str | None = None, at: dt.datetime | None = None, event_id: str | None = None) -> str:
    """Add a comment (with optional evidence or a BCF viewpoint); returns the event id."""
    note = _text(note, "comment", NOTE_MAX, multiline=True, required=False)
    if not note and not evidence:
        raise FindingError(N_("finding {finding_id}: a comment needs text or evidence"), finding_id=finding_id)
    if viewpoint_id is not None:
        viewpoint_id = _check_uuid(viewpoint_id, "viewpoint_id")
    f = _load_for(store, scope, finding_id, "comment")
    evidence = _evidence(store, f["site_code"], evidence)
    with atomic(store):
        return _append(store, f["finding_id"], f["site_code"], kind="comment", actor=scope.actor, at=_timestamp(at),
                       note=note, evidence=evidence, viewpoint_id=viewpoint_id, event_id=event_id)


def submit_rectification(store: Store, finding_id: str, *, scope: Scope, note: str, evidence: dict,
                         at: dt.datetime | None = None) -> str:
    """The contractor reports the problem fixed, with evidence (photos, a new scan, figures)."""
    note = _text(note, "note", NOTE_MAX, multiline=True, required=False)
    if not evidence:
        raise FindingError(N_("finding {finding_id}: a rectification needs evidence (photos, scan, figures)"),
                           finding_id=finding_id)
    f = _load_for(store, scope, finding_id, "submit_rectification")
    return _transition(store, scope, finding_id, "rectification_submitted", "submit_rectification", note=note,
                       evidence=_evidence(store, f["site_code"], evidence), at=at, loaded=f)


def verify_close(store: Store, finding_id: str, *, scope: Scope, note: str = "", at: dt.datetime | None = None) -> str:
    """A regulator checked the rectification and closes the finding."""
    note = _text(note, "note", NOTE_MAX, multiline=True, required=False)
    return _transition(store, scope, finding_id, "verified_closed", "verify_close", note=note or "verified", at=at)


def reopen(store: Store, finding_id: str, *, scope: Scope, note: str, due: dt.date | str | None = None,
           at: dt.datetime | None = None) -> str:
    """A regulator rejects a rectification or reopens a closed finding, with a reason and a new due date."""
    note = _text(note, "note", NOTE_MAX, multiline=True, required=False)
    if not note:
        raise FindingError(N_("finding {finding_id}: say why it is reopened"), finding_id=finding_id)
    when = _timestamp(at)
    f = _load_for(store, scope, finding_id, "reopen")
    new_due = _date(due, "due") if due is not None else (when + dt.timedelta(
        days=DEFAULT_DUE_DAYS[f["severity"]])).date()
    return _transition(store, scope, finding_id, "reopened", "reopen", note=note, at=when, due=new_due,
                       escalation_level=0, loaded=f)


def change_due(store: Store, finding_id: str, due: dt.date | str, *, scope: Scope, note: str,
               at: dt.datetime | None = None) -> str:
    """A regulator moves the due date (extension granted, or tightened)."""
    note = _text(note, "note", NOTE_MAX, multiline=True, required=False)
    f = _load_for(store, scope, finding_id, "raise")
    with atomic(store):
        return _append(store, f["finding_id"], f["site_code"], kind="due_changed", actor=scope.actor,
                       at=_timestamp(at), due=_date(due, "due"), note=note)


def escalate_overdue(store: Store, *, scope: Scope | None = None, as_of: dt.date | str | None = None,
                     steps_days: tuple[int, ...] = ESCALATION_STEPS_DAYS) -> list[dict]:
    """Escalate every overdue finding whose escalation level should rise; returns what was escalated.

    A finding in ``open`` or ``reopened`` past its due date by more than ``steps_days[i]``
    days reaches level ``i + 1`` (``ESCALATION_TO`` says to whom). Each rise is one
    ``escalated`` event; calling again the same day changes nothing.
    """
    scope = scope or Scope.system("escalation")
    scope.require("escalate")
    day = _date(as_of, "as_of") if as_of is not None else utcnow().date()
    cond, params = scope.where("site_code")
    rows = store.rows(f"SELECT finding_id, site_code, due, escalation_level FROM finding_state "
                      f"WHERE status IN ('open', 'reopened') AND due < ? AND {cond} ORDER BY site_code, number",
                      [day, *params])
    done = []
    with atomic(store):
        for r in rows:
            late = (day - r["due"]).days
            level = sum(1 for s in steps_days if late > s)
            if level > r["escalation_level"]:
                note = f"overdue by {late} days: escalated to the {ESCALATION_TO.get(level, f'level {level}')}"
                _append(store, r["finding_id"], r["site_code"], kind="escalated", actor=scope.actor,
                        at=utcnow(), escalation_level=level, note=note)
                done.append({"finding_id": r["finding_id"], "site_code": r["site_code"], "overdue_days": late,
                             "from_level": r["escalation_level"], "to_level": level,
                             "escalated_to": ESCALATION_TO.get(level)})
    return done


def _transition(store: Store, scope: Scope, finding_id: str, to: str, action: str, *, note: str | None,
                evidence: dict | None = None, at: dt.datetime | str | None = None, due: dt.date | None = None,
                escalation_level: int | None = None, loaded: dict | None = None) -> str:
    f = loaded or _load_for(store, scope, finding_id, action)
    with atomic(store):
        current = store.scalar("SELECT status FROM finding_state WHERE finding_id = ?", [f["finding_id"]])
        if current not in TRANSITIONS[to]:
            raise FindingError(N_("finding {site_code}-{number} ({finding_id}) is {status}; "
                                  "it can become {to} only from {allowed}"),
                               site_code=f["site_code"], number=f["number"], finding_id=f["finding_id"],
                               status=current, to=to, allowed=_either(TRANSITIONS[to]))
        return _append(store, f["finding_id"], f["site_code"], kind=to, actor=scope.actor, at=_timestamp(at),
                       status=to, note=note, evidence=evidence, due=due, escalation_level=escalation_level)


# --------------------------------------------------------------------------------------
# reading

_STATE_COLUMNS = ("finding_id, site_code, number, category, severity, title, description, raised_by, raised_at, "
                  "status, status_at, due, escalation_level, model_id, global_id, storey, x_m, y_m, z_m, evidence, "
                  "source, source_ref, labels, event_count")


def get_finding(store: Store, scope: Scope, finding_id: str, *, as_of: dt.date | str | None = None) -> Finding:
    """One finding as it stands, if it is in the caller's scope."""
    f = _load_for(store, scope, finding_id, "read")
    row = store.one(f"SELECT {_STATE_COLUMNS} FROM finding_state WHERE finding_id = ?", [f["finding_id"]])
    assert row is not None          # _load_for found the finding
    audit.record(store, scope, "view", "finding", f["finding_id"], site_code=f["site_code"])
    return _finding(row, _day(as_of))


def list_findings(store: Store, scope: Scope, *, site_code: str | None = None,
                  status: str | Iterable[str] | None = None, category: str | None = None,
                  severity: str | None = None, overdue: bool | None = None, global_id: str | None = None,
                  source: str | None = None, as_of: dt.date | str | None = None,
                  limit: int | None = None) -> list[Finding]:
    """Findings in the caller's scope, newest first, filtered as asked."""
    scope.require("read")
    day = _day(as_of)
    statuses = [status] if isinstance(status, str) else list(status or [])
    for s in statuses:
        if s not in STATUSES:
            raise FindingError(N_("status {status!r}: use one of {statuses}"), status=s, statuses=", ".join(STATUSES))
    if category is not None and category not in CATEGORIES:
        raise FindingError(N_("category {category!r}: use one of {categories}"), category=category,
                           categories=", ".join(CATEGORIES))
    if severity is not None and severity not in SEVERITIES:
        raise FindingError(N_("severity {severity!r}: use one of {severities}"), severity=severity,
                           severities=", ".join(SEVERITIES))
    if site_code is not None:
        _require(store, scope, site_code, "read", Phrase(N_("list findings")))
    cond, params = scope.where("site_code")
    sql = [f"SELECT {_STATE_COLUMNS} FROM finding_state WHERE {cond}"]
    if site_code is not None:
        sql.append("AND site_code = ?")
        params.append(site_code)
    if statuses:
        sql.append(f"AND status IN ({placeholders(statuses)})")
        params += statuses
    for column, value in (("category", category), ("severity", severity), ("global_id", global_id),
                          ("source", source)):
        if value is not None:
            sql.append(f"AND {column} = ?")
            params.append(value)
    if overdue is not None:
        sql.append(("AND" if overdue else "AND NOT") + " coalesce(status IN ('open', 'reopened') AND due < ?, false)")
        params.append(day)
    sql.append("ORDER BY raised_at DESC, site_code, number DESC")
    if limit:
        sql.append("LIMIT ?")
        params.append(int(limit))
    rows = store.rows(" ".join(sql), params)
    audit.record(store, scope, "view", "findings", None, site_code=site_code,
                 detail={"count": len(rows), "status": statuses or None, "overdue": overdue})
    return [_finding(r, day) for r in rows]


def finding_history(store: Store, scope: Scope, finding_id: str) -> list[FindingEvent]:
    """Every event of a finding, oldest first."""
    f = _load_for(store, scope, finding_id, "read")
    rows = store.rows("SELECT * FROM finding_events WHERE finding_id = ? ORDER BY seq", [f["finding_id"]])
    audit.record(store, scope, "view", "finding_history", f["finding_id"], site_code=f["site_code"])
    return [_event(r) for r in rows]


def verify_history(store: Store, scope: Scope, finding_id: str) -> HistoryCheck:
    """Check the hash chain of a finding's events against the finding row and each other."""
    f = _load_for(store, scope, finding_id, "read")
    row = store.one("SELECT * FROM findings WHERE finding_id = ?", [f["finding_id"]])
    assert row is not None          # _load_for found the finding
    events = store.rows("SELECT * FROM finding_events WHERE finding_id = ? ORDER BY seq", [f["finding_id"]])
    problems = []
    prev = _finding_digest(row)
    for i, e in enumerate(events, start=1):
        if e["seq"] != i:
            problems.append(f"event {e['event_id']}: sequence number {e['seq']}, expected {i} (an event is missing)")
        if e["prev_hash"] != prev:
            problems.append(f"event {e['seq']} ({e['kind']}): does not follow from the event before it")
        if _event_digest(e) != e["hash"]:
            problems.append(f"event {e['seq']} ({e['kind']}): its contents were changed after it was written")
        prev = e["hash"]
    if not events or events[0]["kind"] != "raised":
        problems.append("the history does not start with the finding being raised")
    return HistoryCheck(f["finding_id"], len(events), not problems, tuple(problems))


# --------------------------------------------------------------------------------------
# internals

def _append(store: Store, finding_id: str, site_code: str, *, kind: str, actor: str, at: dt.datetime,
            status: str | None = None, due: dt.date | None = None, escalation_level: int | None = None,
            note: str | None = None, evidence: dict | None = None, viewpoint_id: str | None = None,
            event_id: str | None = None) -> str:
    """Append one event to a finding's chain (inside the caller's transaction)."""
    if kind not in EVENT_KINDS:
        raise FindingError(N_("event kind {kind!r}: use one of {kinds}"), kind=kind, kinds=", ".join(EVENT_KINDS))
    # every path that appends (the API, BCF import, escalation) stores only text the writers can carry
    actor = _text(actor, "actor", LABEL_MAX)
    if note is not None:
        note = _text(note, "note", NOTE_MAX, multiline=True, required=False)
    last = store.one("SELECT seq, hash FROM finding_events WHERE finding_id = ? ORDER BY seq DESC LIMIT 1",
                     [finding_id])
    if last is None:
        finding = store.one("SELECT * FROM findings WHERE finding_id = ?", [finding_id])
        assert finding is not None      # the first event follows the finding's insert
        prev = _finding_digest(finding)
        seq = 1
    else:
        prev, seq = last["hash"], last["seq"] + 1
    event: dict[str, Any]
    event = {"event_id": _check_uuid(event_id, "event id") if event_id else str(uuid.uuid4()),
             "finding_id": finding_id, "site_code": site_code, "seq": seq, "occurred_at": at, "actor": actor,
             "kind": kind, "status": status, "due": due, "escalation_level": escalation_level, "note": note,
             "evidence": evidence, "viewpoint_id": viewpoint_id, "prev_hash": prev}
    event["hash"] = _event_digest(event)
    cols = list(event)
    store.execute(f"INSERT INTO finding_events ({', '.join(cols)}) VALUES ({placeholders(cols)})",
                  [event[c] for c in cols])
    finding_state.record_event(store, finding_id, event["event_id"], seq)
    return event["event_id"]


def _canonical(value: Any) -> Any:
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            return value
        return parsed if isinstance(parsed, (dict, list)) else value
    return value


def _digest(parts: dict) -> str:
    def norm(v):
        v = _canonical(v)
        if isinstance(v, (dt.datetime, dt.date)):
            return v.isoformat()
        if isinstance(v, float):
            return repr(v)
        return v
    text = json.dumps({k: norm(v) for k, v in parts.items()}, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


_FINDING_FIELDS = ("finding_id", "site_code", "number", "category", "severity", "title", "description", "raised_by",
                   "raised_at", "model_id", "global_id", "storey", "x_m", "y_m", "z_m", "evidence", "source",
                   "source_ref", "labels")
_EVENT_FIELDS = ("event_id", "finding_id", "site_code", "seq", "occurred_at", "actor", "kind", "status", "due",
                 "escalation_level", "note", "evidence", "viewpoint_id", "prev_hash")


def _finding_digest(row: dict) -> str:
    return _GENESIS + _digest({k: row.get(k) for k in _FINDING_FIELDS})


def _event_digest(event: dict) -> str:
    return _digest({k: event.get(k) for k in _EVENT_FIELDS})


def _load_for(store: Store, scope: Scope, finding_id: str, action: str) -> dict:
    """The finding's fixed fields, after checking that ``scope`` may do ``action`` on it."""
    fid = str(finding_id or "").strip()
    row = store.one("SELECT finding_id, site_code, number, severity FROM findings WHERE finding_id = ?", [fid])
    if row is None and "-" in fid and not _is_uuid(fid):   # a short reference such as DEMO-12
        site, _, num = fid.rpartition("-")
        if num.isdigit():
            row = store.one("SELECT finding_id, site_code, number, severity FROM findings "
                            "WHERE site_code = ? AND number = ? ORDER BY raised_at LIMIT 1", [site, int(num)])
    if row is None:
        if not scope.can(action):
            _deny(store, scope, action, fid, None)
        raise FindingError(N_("finding {finding!r}: no such finding"), finding=fid)
    _require(store, scope, row["site_code"], action,
             Phrase(N_("finding {site_code}-{number}"), site_code=row["site_code"], number=row["number"]),
             object_id=row["finding_id"])
    return row


def _require(store: Store, scope: Scope, site_code: str, action: str, what: str | Phrase, *,
             object_id: str | None = None) -> None:
    try:
        scope.require_site(store, site_code, action, what)
    except AccessDenied:
        _deny(store, scope, action, object_id, site_code)


def _deny(store: Store, scope: Scope, action: str, object_id: str | None, site_code: str | None):
    audit.record(store, scope, "denied", "finding", object_id, site_code=site_code, detail={"action": action})
    if not scope.can(action):
        scope.require(action)
    raise AccessDenied(N_("{actor} ({role}): finding {finding} on site {site_code!r} is not in your scope"),
                       actor=scope.actor, role=scope.role, finding=object_id or "", site_code=site_code)


def _either(names) -> str | Phrase:
    """``a``, ``a or b``, ``a or b or c`` (sorted codes) in the reader's language."""
    names = sorted(names)
    out: str | Phrase = names[-1]
    for name in reversed(names[:-1]):
        out = Phrase(N_("{first} or {second}"), first=name, second=out)
    return out


def _finding(r: dict, day: dt.date) -> Finding:
    loc = (r["x_m"], r["y_m"], r["z_m"]) if r["x_m"] is not None else None
    late = (day - r["due"]).days if r["due"] is not None and r["status"] in ACTIVE else 0
    return Finding(
        finding_id=r["finding_id"], site_code=r["site_code"], number=r["number"], category=r["category"],
        severity=r["severity"], title=r["title"], description=r["description"] or "", raised_by=r["raised_by"],
        raised_at=r["raised_at"], status=r["status"], status_at=r["status_at"], due=r["due"],
        escalation_level=int(r["escalation_level"] or 0), model_id=r["model_id"], global_id=r["global_id"],
        storey=r["storey"], location_m=loc, evidence=_json(r["evidence"]), source=r["source"],
        source_ref=r["source_ref"], labels=tuple(_json(r["labels"]) or ()), event_count=int(r["event_count"]),
        overdue_days=max(0, late))


def _event(r: dict) -> FindingEvent:
    return FindingEvent(event_id=r["event_id"], finding_id=r["finding_id"], seq=r["seq"], occurred_at=r["occurred_at"],
                        actor=r["actor"], kind=r["kind"], status=r["status"], due=r["due"],
                        escalation_level=r["escalation_level"], note=r["note"], evidence=_json(r["evidence"]),
                        viewpoint_id=r["viewpoint_id"], hash=r["hash"])


def _json(value: Any) -> Any:
    if isinstance(value, str):
        return json.loads(value)
    return value


def _element(store: Store, site_code: str, model_id: str | None, global_id: str | None,
             storey: str | None) -> tuple[str | None, str | None, str | None]:
    if global_id is None:
        return None, None, storey          # a model without an element names nothing: ignore it
    global_id = str(global_id).strip()
    if model_id is not None:
        row = model_element(store, site_code, model_id, global_id)
        if row is None:
            raise FindingError(N_("element {global_id}: not in model {model_id} of site {site_code}"),
                               global_id=global_id, model_id=model_id, site_code=site_code)
    else:
        row = element_record(store, site_code, global_id)
    if row is None:
        return None, global_id, storey      # an element of a model not (yet) loaded: keep its GlobalId
    return row["model_id"], global_id, storey if storey is not None else row["storey"]


def _location(location_m) -> tuple[float, float, float] | None:
    if location_m is None:
        return None
    try:
        loc = tuple(float(v) for v in location_m)
    except (TypeError, ValueError):
        raise FindingError(N_("location_m must be three numbers (x, y, z in metres), got {value!r}"),
                           value=location_m) from None
    if len(loc) != 3 or not all(math.isfinite(v) for v in loc):
        raise FindingError(N_("location_m must be three finite numbers (x, y, z in metres), got {value!r}"),
                           value=location_m)
    return loc


def _text(value: Any, field: str, max_len: int, *, multiline: bool = False, required: bool = True) -> str:
    try:
        return clean_text(value, field, max_len=max_len, multiline=multiline, required=required)
    except TextError as exc:
        raise FindingTextError(exc.template, **exc.fields) from None


def _labels(labels: Iterable[str] | None) -> list[str]:
    if labels is None:
        return []
    if isinstance(labels, str) or not isinstance(labels, (list, tuple, set, frozenset)):
        raise FindingError(N_("labels must be a list of short texts, got {type}"), type=type(labels).__name__)
    if len(labels) > LABELS_MAX:
        raise FindingError(N_("labels: {n} of them, more than the {limit} allowed"), n=len(labels), limit=LABELS_MAX)
    out = [_text(x, "label", LABEL_MAX, required=False) for x in labels]
    return list(dict.fromkeys(x for x in out if x))


def _evidence(store: Store, site_code: str, evidence: Any, *, own: tuple[str | None, str | None] = (None, None)
              ) -> dict | None:
    """``evidence`` as it may be stored for a finding of ``site_code``, or :class:`FindingError`.

    Plain JSON with clean text, bounded in size and depth; the records it names (panorama, detections, hazard)
    are the site's own, and a panorama view's angles are finite and in range. ``own`` is the finding's
    (source, source_ref): a hazard raising its own finding (``source="hazard"``) is named before it is stored.
    A refusal never says which records exist, nor whether a named one belongs to another site.
    """
    if evidence is None:
        return None
    if not isinstance(evidence, dict):
        raise FindingError(N_("evidence must be a mapping such as {example}, got {type}"),
                           example="{'crops': [...], 'deviation': {...}}", type=type(evidence).__name__)
    evidence = _plain(evidence, "evidence", 0)
    if len(json.dumps(evidence, separators=(",", ":"))) > EVIDENCE_MAX_CHARS:
        raise FindingError(N_("evidence: more than {limit:,} characters as JSON; store large "
                              "material as files and name them"), limit=EVIDENCE_MAX_CHARS)
    pano = evidence.get("panorama")
    if pano is not None:
        if not (isinstance(pano, dict) and pano.get("pano_id")):
            raise FindingError(N_("evidence 'panorama' must be a mapping with a 'pano_id' (and yaw_deg, pitch_deg, "
                                  "fov_deg of the view)"))
        unknown = sorted(k for k in pano if k not in PANORAMA_KEYS)
        if unknown:
            raise FindingError(N_("evidence 'panorama': unknown key {key!r}; use {keys}"), key=unknown[0][:40],
                               keys=", ".join(PANORAMA_KEYS))
        evidence["panorama"] = pano = _view(pano)
        _own_panorama(store, site_code, pano["pano_id"], "evidence 'panorama'")
    if "pano_id" in evidence:
        _own_panorama(store, site_code, evidence["pano_id"], "evidence 'pano_id'")
    if "box_px" in evidence:
        evidence["box_px"] = _numbers(evidence["box_px"], 4, "evidence 'box_px'")
    for key in ("crops", "photos", "detections", "detection_ids"):
        if key in evidence and not isinstance(evidence[key], list):
            raise FindingError(N_("evidence {key!r} must be a list"), key=key)
    for key in ("detections", "detection_ids"):
        ids = evidence.get(key) or []
        if len(ids) > EVIDENCE_MAX_IDS:
            raise FindingError(N_("evidence {key!r}: {n} ids, more than the {limit} allowed"), key=key, n=len(ids),
                               limit=EVIDENCE_MAX_IDS)
        for d in dict.fromkeys(ids):
            if not isinstance(d, str) or detection_site(store, d) != site_code:
                raise FindingError(N_("evidence {key!r}: an id that is not a detection of site {site_code}"),
                                   key=key, site_code=site_code)
    if "hazard_id" in evidence:
        hid = evidence["hazard_id"]
        found = hazard_site(store, hid) if isinstance(hid, str) else None
        raising_itself = found is None and own == ("hazard", hid)
        if found != site_code and not raising_itself:
            raise FindingError(N_("evidence 'hazard_id': not a hazard of site {site_code}"), site_code=site_code)
    if "snapshot" in evidence and not _inside_path(evidence["snapshot"]):
        raise FindingError(N_("evidence 'snapshot' must be a path inside the store's cache folder (relative, no '..')"))
    if "deviation" in evidence and not isinstance(evidence["deviation"], dict):
        raise FindingError(N_("evidence 'deviation' must be a mapping of figures such as {example}"),
                           example="{'p95_mm': 38.0}")
    return evidence


def _plain(value: Any, where: str, depth: int) -> Any:
    """A copy of ``value`` as plain JSON with clean text, or :class:`FindingError` naming where it is not."""
    if depth > EVIDENCE_MAX_DEPTH:
        raise FindingError(N_("{where}: nested more than {limit} levels deep"), where=where, limit=EVIDENCE_MAX_DEPTH)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return _text(value, where, NOTE_MAX, multiline=True, required=False)
    if isinstance(value, int):
        if abs(value) > 2 ** 53:
            raise FindingError(N_("evidence must be plain JSON (strings, numbers, lists, mappings): {where} is a "
                                  "number too large to keep exactly"), where=where)
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise FindingError(N_("evidence must be plain JSON (strings, numbers, lists, mappings): {where} is "
                                  "{value!r}, not a finite number"), where=where, value=value)
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value)]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise FindingError(N_("evidence must be plain JSON (strings, numbers, lists, mappings): {where} has "
                                      "a key of type {type}"), where=where, type=type(k).__name__)
            key = _text(k, f"{where} key", LABEL_MAX)
            out[key] = _plain(v, f"{where}.{key}", depth + 1)
        return out
    raise FindingError(N_("evidence must be plain JSON (strings, numbers, lists, mappings): {where} is a {type}"),
                       where=where, type=type(value).__name__)


def _own_panorama(store: Store, site_code: str, pano_id: Any, what: str) -> None:
    # one message for "no such panorama" and "another site's panorama": the refusal tells nothing of either
    if not isinstance(pano_id, str) or pano_in_site(store, site_code, pano_id) is None:
        raise FindingError(N_("{what}: not a panorama of site {site_code}"), what=what, site_code=site_code)


def _view(pano: dict) -> dict:
    """The panorama view with its angles checked: yaw normalised to [0, 360), pitch and field of view in range."""
    out = dict(pano)
    if "yaw_deg" in pano:
        out["yaw_deg"] = _number(pano["yaw_deg"], "evidence 'panorama' yaw_deg") % 360.0
    if "pitch_deg" in pano:
        out["pitch_deg"] = _number(pano["pitch_deg"], "evidence 'panorama' pitch_deg", PITCH_RANGE_DEG)
    if "fov_deg" in pano:
        fov = _number(pano["fov_deg"], "evidence 'panorama' fov_deg", FOV_RANGE_DEG)
        if fov >= FOV_RANGE_DEG[1]:
            raise FindingError(N_("evidence 'panorama' fov_deg {value!r}: must be below {limit:g} degrees"),
                               value=fov, limit=FOV_RANGE_DEG[1])
        out["fov_deg"] = fov
    if "pixel_uv" in pano:
        out["pixel_uv"] = _numbers(pano["pixel_uv"], 2, "evidence 'panorama' pixel_uv")
    if "depth_m" in pano:
        out["depth_m"] = _number(pano["depth_m"], "evidence 'panorama' depth_m", (0.0, math.inf))
    if "box_px" in pano:
        out["box_px"] = _numbers(pano["box_px"], 4, "evidence 'panorama' box_px")
    return out


def _number(value: Any, what: str, bounds: tuple[float, float] | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (
            isinstance(value, int) and abs(value) > 2 ** 53) or not math.isfinite(value):
        raise FindingError(N_("{what} must be a finite number, got {value!r}"), what=what, value=str(value)[:40])
    value = float(value)
    if bounds is not None and not bounds[0] <= value <= bounds[1]:
        raise FindingError(N_("{what} {value:g}: must lie between {low:g} and {high:g}"), what=what, value=value,
                           low=bounds[0], high=bounds[1])
    return value


def _numbers(value: Any, n: int, what: str) -> list[float]:
    if not isinstance(value, list) or len(value) != n:
        raise FindingError(N_("{what} must be {n} finite numbers"), what=what, n=n)
    return [_number(v, what) for v in value]


def _inside_path(value: Any) -> bool:
    if not isinstance(value, str) or not value:
        return False
    text = value.replace("\\", "/")
    return not (text.startswith("/") or ":" in text or ".." in text.split("/"))


def _timestamp(at: dt.datetime | str | None) -> dt.datetime:
    if at is None:
        return utcnow()
    if isinstance(at, str):
        try:
            at = dt.datetime.fromisoformat(at)
        except ValueError:
            raise FindingError(N_("time {value!r}: use ISO 8601, e.g. 2024-05-01T09:30:00"), value=at) from None
    if not isinstance(at, dt.datetime):
        raise FindingError(N_("time must be a datetime, got {value!r}"), value=at)
    if at.tzinfo is not None:
        try:
            at = at.astimezone(dt.UTC).replace(tzinfo=None)
        except OverflowError:
            raise FindingError(N_("time {value}: out of range in UTC"), value=at.isoformat()) from None
    return at


def _date(value: dt.date | str | None, name: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return _timestamp(value).date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value[:10])
        except ValueError:
            pass
    raise FindingError(N_("{name} {value!r}: use a date such as 2024-05-31"), name=name, value=value)


def _day(as_of) -> dt.date:
    return _date(as_of, "as_of") if as_of is not None else utcnow().date()


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _check_uuid(text: str, name: str) -> str:
    try:
        return str(uuid.UUID(str(text)))
    except ValueError:
        raise FindingError(N_("{name} {value!r}: not a UUID"), name=name, value=text) from None
