"""Batches of readings and attendance events: parse, check, normalise. Pure: no store, no network.

The JSON a device posts (``POST /v1/batches``)::

    {"device_id": "DEMO-CRANE-01",              # optional: defaults to the token's device
     "batch_id": "cr01-000042",                 # optional: the idempotency key (default: content hash)
     "readings": [
        {"at": "2026-03-16T08:00:00Z", "channel": "load_pct", "value": 42.0},
        {"at": "2026-03-16T08:00:01+08:00", "values": {"load_pct": 42.5, "wind_ms": 5.1}},
        {"at": 1773648002.0, "channel": "wind_ms", "value": 5.3}],   # epoch seconds also work
     "events": [                                 # attendance, from gate readers
        {"at": "2026-03-16T07:55:10Z", "worker_id": "W-3f9a1c", "event": "in",
         "trade": "rebar", "employer": "Hubei Steel", "trained": true}]}

A batch is all or nothing: one bad item refuses the whole batch, with every problem listed
(up to 20), and nothing of it is stored. Every value is checked where it enters: the JSON is
read with bounds (UTF-8 only, nested at most ``MAX_JSON_DEPTH`` levels, integers of at most
``MAX_INT_DIGITS`` digits), times must fall in 2000..2100 (epoch seconds, or ISO 8601 whose UTC
conversion exists), and text (``trade``, ``employer``) goes through ``data.text.clean_text``;
anything else is a 400 or 422 whose message names the item (``readings[3].at``) and the problem.

Readings may arrive late and out of order; they are refused only when stamped further ahead
of the clock than ``ingest.max_future_s``, older than ``ingest.max_age_days``
(``max_import_age_days`` for files), before the device was
installed or after it was removed (one day's grace each way), or when a channel, value
or duplicate time is wrong. Timestamps must carry their UTC offset (or ``Z``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sitetwin.data.errors import Phrase, message_text
from sitetwin.data.i18n import N_
from sitetwin.data.text import LABEL_MAX, TextError, clean_text
from sitetwin.sensors.channels import CHANNELS, DEVICE_TYPES, is_channel_name
from sitetwin.sensors.config import IngestLimits
from sitetwin.sensors.errors import BatchError, cause, row

MAX_PROBLEMS = 20
MAX_JSON_DEPTH = 8          # a batch uses 4 (batch > readings > reading > values); deeper is never a batch
MAX_INT_DIGITS = 18         # fits int64 and a double's range; a 400-digit "value" is refused, not overflowed
MAX_TIME_TEXT = 64          # the longest ISO 8601 time is about 40 characters
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_BATCH_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:+=-]{0,127}")   # fullmatch: no trailing newline
_WORKER_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")
_BRACKET_STEP = np.zeros(256, dtype=np.int8)       # [ and { open a level, ] and } close one
_BRACKET_STEP[[0x5B, 0x7B]] = 1
_BRACKET_STEP[[0x5D, 0x7D]] = -1
US_PER_S = 1_000_000
US_PER_DAY = 86_400 * US_PER_S
MIN_TIME_US = 946_684_800 * US_PER_S   # 2000-01-01: nothing older is a site reading
MAX_TIME_US = 4_102_444_800 * US_PER_S  # 2100-01-01: nothing later is one either (and it keeps times in range)


@dataclass(frozen=True)
class DeviceRef:
    """What ingestion needs to know about a device (the server keeps these in memory)."""

    device_id: str
    site_code: str
    device_type: str
    installed_on: dt.date | None = None
    removed_on: dt.date | None = None


@dataclass(frozen=True)
class Batch:
    """A checked batch of one device: readings and events as columns, times in UTC microseconds."""

    batch_key: str              # device_id '/' batch_id: the idempotency key
    batch_id: str
    device_id: str
    site_code: str
    content_sha256: str
    t_us: np.ndarray            # (n,) int64, UTC microseconds since 1970
    channel: np.ndarray         # (n,) str
    value: np.ndarray           # (n,) float64
    events: dict[str, list] = field(default_factory=dict)   # at_us, worker_id, event, trade, employer, trained

    @property
    def reading_count(self) -> int:
        return int(len(self.t_us))

    @property
    def event_count(self) -> int:
        return len(self.events.get("at_us", []))

    def to_json(self) -> bytes:
        """Compact form for the spool (round-trips through :func:`batch_from_json`)."""
        return json.dumps({"k": self.batch_key, "b": self.batch_id, "d": self.device_id, "s": self.site_code,
                           "h": self.content_sha256, "t": self.t_us.tolist(), "c": self.channel.tolist(),
                           "v": self.value.tolist(), "e": self.events}, separators=(",", ":")).encode()


def batch_from_json(data: bytes | str) -> Batch:
    d = json.loads(data)
    return Batch(batch_key=d["k"], batch_id=d["b"], device_id=d["d"], site_code=d["s"], content_sha256=d["h"],
                 t_us=np.asarray(d["t"], dtype=np.int64), channel=np.asarray(d["c"], dtype=object),
                 value=np.asarray(d["v"], dtype=np.float64), events=d["e"])


def parse_batch(body: bytes, *, token_device: DeviceRef, devices: Mapping[str, DeviceRef], limits: IngestLimits,
                now_us: int) -> Batch:
    """Parse and check one posted batch; raise :class:`BatchError` (with its HTTP status) if refused."""
    if len(body) > limits.max_body_bytes:
        raise BatchError(N_("batch of {size} bytes is larger than the limit of {limit}; send smaller batches"),
                         status=413, size=len(body), limit=limits.max_body_bytes)
    doc = read_json(body)
    if not isinstance(doc, dict):
        raise BatchError(N_("malformed batch: expected a JSON object with 'readings' and/or 'events'"), status=400)
    unknown = sorted(set(doc) - {"device_id", "batch_id", "readings", "events"})
    if unknown:
        raise BatchError(N_("malformed batch: unknown key {keys} (keys: device_id, batch_id, readings, events)"),
                         status=400, keys=_keys(unknown))
    device_id = doc.get("device_id", token_device.device_id)
    if not isinstance(device_id, str):
        raise BatchError(N_("malformed batch: device_id must be a string"), status=400)
    if device_id != token_device.device_id or device_id not in devices:
        # One answer for an unknown device and for another device's id: a token must not tell
        # which device ids exist, and the message names neither.
        raise BatchError(N_("device_id is not the device this token was issued for; leave device_id out or send the "
                            "token's own"), status=403)
    device = devices[device_id]
    readings = doc.get("readings", [])
    events = doc.get("events", [])
    if not isinstance(readings, list) or not isinstance(events, list):
        raise BatchError(N_("malformed batch: 'readings' and 'events' must be lists"), status=400)
    if not readings and not events:
        raise BatchError(N_("empty batch: no readings and no events"), status=422)
    batch_id = doc.get("batch_id")
    if batch_id is not None and (not isinstance(batch_id, str) or not _BATCH_ID_RE.fullmatch(batch_id)):
        raise BatchError(N_("batch_id {batch_id}: use 1-128 letters, digits and _.:+=-"), status=400,
                         batch_id=_show(batch_id))

    too_many = BatchError(N_("batch holds more than {limit} readings and events; send smaller batches"),
                          status=413, limit=limits.max_items)
    if len(readings) + len(events) > limits.max_items:
        raise too_many
    problems: list[Phrase] = []
    t_list: list[int] = []
    ch_list: list[str] = []
    v_list: list[float] = []
    where: list[str | Phrase] = []
    count = len(events)
    for i, item in enumerate(readings):
        if not isinstance(item, dict):
            problems.append(Phrase(N_("{item}: must be an object with at, channel and value (or values)"),
                                   item=f"readings[{i}]"))
            continue
        extra = sorted(set(item) - {"at", "channel", "value", "values"})
        if extra:
            problems.append(Phrase(N_("{item}: unknown key {keys} (keys: at, channel, value, values)"),
                                   item=f"readings[{i}]", keys=_keys(extra)))
            continue
        t = _time_us(item.get("at"), f"readings[{i}].at", problems)
        if "values" in item:
            values = item["values"]
            if not isinstance(values, dict) or not values or "channel" in item or "value" in item:
                problems.append(Phrase(N_("{item}: 'values' must be a non-empty object of channel: value, "
                                          "without 'channel'/'value'"), item=f"readings[{i}]"))
                continue
            pairs = [(c, v, f"readings[{i}].values.{c}" if is_channel_name(c) else f"readings[{i}].values[{j}]")
                     for j, (c, v) in enumerate(values.items())]
        else:
            if "channel" not in item or "value" not in item:
                problems.append(Phrase(N_("{item}: needs 'channel' and 'value' (or 'values')"), item=f"readings[{i}]"))
                continue
            pairs = [(item["channel"], item["value"], f"readings[{i}]")]
        for c, v, label in pairs:
            count += 1
            if count > limits.max_items:
                raise too_many
            if not isinstance(c, str):
                problems.append(Phrase(N_("{item}: channel must be a string, not {value}"), item=label, value=_show(c)))
                continue
            if not is_channel_name(c):
                problems.append(Phrase(N_("{item}: channel {channel} is not a channel name (lower-case letters, "
                                          "digits and _, at most 48, such as pm10_ugm3)"),
                                       item=label, channel=_show(c)))
                continue
            if isinstance(v, LongInteger):
                problems.append(Phrase(N_("{item}: value is {value}, out of range for a reading"), item=label,
                                       value=v.phrase()))
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                problems.append(Phrase(N_("{item}: value {value} is not a number"), item=label, value=_show(v)))
                continue
            if t is None:
                continue
            t_list.append(t)
            ch_list.append(c)
            v_list.append(float(v))
            where.append(label)
    t_us = np.asarray(t_list, dtype=np.int64)
    channel = np.asarray(ch_list, dtype=object)
    value = np.asarray(v_list, dtype=np.float64)
    min_us = now_us - int(limits.max_age_days * US_PER_DAY)
    problems += check_readings(device, t_us, channel, value, now_us=now_us, min_us=min_us,
                               max_future_s=limits.max_future_s, where=where)
    ev = check_events(events, device, now_us=now_us, min_us=min_us, max_future_s=limits.max_future_s, problems=problems)
    if problems:
        raise _refused(problems)
    sha = content_digest(device_id, t_us, channel, value, ev)
    batch_id = batch_id or f"sha256:{sha[:32]}"
    return Batch(batch_key=f"{device_id}/{batch_id}", batch_id=batch_id, device_id=device_id,
                 site_code=device.site_code, content_sha256=sha, t_us=t_us, channel=channel, value=value, events=ev)


class LongInteger:
    """An integer of more than ``MAX_INT_DIGITS`` digits as read from JSON: kept as its digit count, never
    converted (a 400-digit int overflows a double, and Python refuses 4,300 digits)."""

    __slots__ = ("digits",)

    def __init__(self, text: str):
        self.digits = len(text.lstrip("-"))

    def __repr__(self) -> str:
        return f"a {self.digits}-digit integer"

    def phrase(self) -> Phrase:
        """"a 400-digit integer", in the language of the message it is part of."""
        return Phrase(N_("a {digits}-digit integer"), digits=self.digits)


def _parse_int(text: str) -> int | LongInteger:
    return LongInteger(text) if len(text) - text.startswith("-") > MAX_INT_DIGITS else int(text)


def read_json(body: bytes) -> Any:
    """The JSON document of a posted body, read with bounds; :class:`BatchError` (400) if it is not one.

    UTF-8 only; nested at most ``MAX_JSON_DEPTH`` levels (counted before parsing, so a body nested
    100,000 deep costs one pass over its bytes, not a recursion); integers of more than
    ``MAX_INT_DIGITS`` digits become :class:`LongInteger`, refused where they stand. ``NaN`` and
    ``Infinity`` are read as floats and refused where they stand, naming the item.
    """
    if not isinstance(body, (bytes, bytearray)):
        raise BatchError(N_("malformed JSON: the body must be bytes"), status=400)
    try:
        text = bytes(body).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BatchError(N_("malformed JSON: not UTF-8 text (byte {byte}); send JSON as UTF-8"), status=400,
                         byte=exc.start) from None
    depth = json_depth(body)
    if depth > MAX_JSON_DEPTH:
        raise BatchError(N_("malformed batch: JSON nested {depth} levels deep, more than the {limit} allowed "
                            "(a batch uses 4)"), status=400, depth=depth, limit=MAX_JSON_DEPTH)
    try:
        return json.loads(text, parse_int=_parse_int)
    except RecursionError:       # cannot happen after the depth check; kept so a parser change cannot 500
        raise BatchError(N_("malformed batch: JSON nested more than {limit} levels deep"), status=400,
                         limit=MAX_JSON_DEPTH) from None
    except ValueError as exc:
        raise BatchError(N_("malformed JSON: {reason}"), status=400, reason=str(exc)) from None


def json_depth(body: bytes) -> int:
    """How deep the arrays and objects of a JSON text nest (brackets inside strings do not count).

    Vectorised over the brackets and quotes only (no parsing, no recursion): a bracket is inside
    a string when an odd number of real quotes precede it, and a quote is real unless an odd run
    of backslashes precedes it. A text that is not JSON still gets a number, used only as a bound.
    """
    codes = np.frombuffer(bytes(body), dtype=np.uint8)
    step = _BRACKET_STEP[codes]
    brackets = np.flatnonzero(step)
    if not len(brackets):
        return 0
    quotes = np.flatnonzero(codes == 0x22)
    if len(quotes) and b"\\" in body:
        quotes = quotes[~_escaped(codes, quotes)]
    outside = np.searchsorted(quotes, brackets) % 2 == 0
    levels = np.cumsum(step[brackets[outside]], dtype=np.int64)
    return int(max(levels.max(), 0)) if len(levels) else 0


def _escaped(codes: np.ndarray, quotes: np.ndarray) -> np.ndarray:
    """Which of the quotes (positions) follow an odd run of backslashes."""
    slashes = np.flatnonzero(codes == 0x5C)
    starts = np.ones(len(slashes), dtype=bool)
    starts[1:] = np.diff(slashes) != 1
    run_start = slashes[starts][np.cumsum(starts) - 1]          # where each backslash's run begins
    before = quotes - 1
    k = np.minimum(np.searchsorted(slashes, before), len(slashes) - 1)
    run = np.where(slashes[k] == before, before - run_start[k] + 1, 0)
    return run % 2 == 1


def _keys(keys: list[str]) -> str:
    """The first few keys of a sent object, for messages."""
    return ", ".join(str(_show(k)) for k in keys[:5])


def _show(value: Any, limit: int = 40) -> str | Phrase:
    """A short description of a value a device sent, for messages: long text is cut, containers are sized."""
    if isinstance(value, str):
        return repr(value[:limit]) + ("..." if len(value) > limit else "")
    if isinstance(value, list):
        return Phrase(N_("a list of {n}"), n=len(value))
    if isinstance(value, dict):
        return Phrase(N_("an object of {n} keys"), n=len(value))
    if isinstance(value, LongInteger):
        return value.phrase()
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def check_readings(device: DeviceRef, t_us: np.ndarray, channel: np.ndarray, value: np.ndarray, *, now_us: int,
                   min_us: int, max_future_s: float, where=None) -> list[Phrase]:
    """Problems with one device's readings (vectorised), each a message naming the item.

    ``where`` names item i in messages: a list of labels, or a function of i (default "row i+1").
    """
    problems: list[Phrase] = []
    n = len(t_us)
    if n == 0:
        return problems
    if where is None:
        label = row
    elif callable(where):
        label = where
    else:
        label = lambda i: where[i]  # noqa: E731

    def report(mask: np.ndarray, text: Callable[[int], Phrase]) -> None:
        for i in np.flatnonzero(mask)[:MAX_PROBLEMS]:
            problems.append(Phrase(N_("{item}: {problem}"), item=label(int(i)), problem=text(int(i))))

    allowed = DEVICE_TYPES[device.device_type]
    names = np.asarray(channel, dtype=object)
    uniq, inverse = np.unique(names.astype(str), return_inverse=True)
    bad_name = np.array([not is_channel_name(c) or (allowed is not None and c not in allowed) for c in uniq])
    if bad_name.any():
        known: str | Phrase = ", ".join(allowed) if allowed else Phrase(N_("lower-case names such as pm10_ugm3"))
        if allowed == ():
            known = Phrase(N_("none: a gate sends attendance events"))
        report(bad_name[inverse], lambda i: Phrase(N_("channel {channel!r} is not one a {device_type} device sends "
                                                      "({known})"), channel=names[i],
                                                   device_type=device.device_type, known=known))
    lo = np.array([CHANNELS[c].min_value if c in CHANNELS else -np.inf for c in uniq])[inverse]
    hi = np.array([CHANNELS[c].max_value if c in CHANNELS else np.inf for c in uniq])[inverse]
    finite = np.isfinite(value)
    report(~finite, lambda i: Phrase(N_("value {value} is not a finite number (NaN and infinities are refused)"),
                                     value=value[i]))
    out = finite & ((value < lo) | (value > hi))
    report(out, lambda i: Phrase(N_("{channel} = {value:g} is outside its plausible range {lo:g}..{hi:g} {unit}")
                                 if names[i] in CHANNELS and CHANNELS[names[i]].unit else
                                 N_("{channel} = {value:g} is outside its plausible range {lo:g}..{hi:g}"),
                                 channel=names[i], value=value[i], lo=lo[i], hi=hi[i],
                                 unit=CHANNELS[names[i]].unit if names[i] in CHANNELS else ""))
    future = t_us > now_us + int(max_future_s * US_PER_S)
    report(future, lambda i: Phrase(N_("time {time} is in the future (more than {max_future_s:g} s ahead of the "
                                       "clock, {now})"), time=iso(t_us[i]), max_future_s=max_future_s,
                                    now=iso(now_us)))
    old = t_us < max(min_us, MIN_TIME_US)
    report(old, lambda i: Phrase(N_("time {time} is too far in the past (oldest accepted: {oldest})"),
                                 time=iso(t_us[i]), oldest=iso(max(min_us, MIN_TIME_US))))
    if device.installed_on is not None:
        start = _day_us(device.installed_on) - US_PER_DAY
        report(~old & (t_us < start), lambda i: Phrase(N_("time {time} is before the device was installed ({day})"),
                                                       time=iso(t_us[i]), day=device.installed_on))
    if device.removed_on is not None:
        end = _day_us(device.removed_on) + 2 * US_PER_DAY
        report(~future & (t_us >= end), lambda i: Phrase(N_("time {time} is after the device was removed ({day})"),
                                                         time=iso(t_us[i]), day=device.removed_on))
    if n > 1:
        order = np.lexsort((t_us, inverse))
        same = (inverse[order][1:] == inverse[order][:-1]) & (t_us[order][1:] == t_us[order][:-1])
        if same.any():
            dup = np.zeros(n, dtype=bool)
            dup[order[1:][same]] = True
            report(dup, lambda i: Phrase(N_("a second {channel} reading at {time}: one value per channel and time"),
                                         channel=names[i], time=iso(t_us[i])))
    return problems


def check_events(events: list, device: DeviceRef, *, now_us: int, min_us: int, max_future_s: float,
                 problems: list[Phrase], where: Callable[[int], str | Phrase] | None = None) -> dict[str, list]:
    """The checked attendance events of one device as columns; what is wrong goes to ``problems``, each
    naming the item: ``where(i)`` (default ``events[i]``)."""
    out: dict[str, list] = {"at_us": [], "worker_id": [], "event": [], "trade": [], "employer": [], "trained": []}
    if not events:
        return out
    if device.device_type != "gate":
        problems.append(Phrase(N_("events: only gate devices send attendance events; {device_id} is a {device_type}"),
                               device_id=device.device_id, device_type=device.device_type))
        return out
    seen = set()
    for i, item in enumerate(events):
        label = where(i) if where is not None else f"events[{i}]"
        if not isinstance(item, dict):
            problems.append(Phrase(N_("{item}: must be an object with at, worker_id, event and trained"), item=label))
            continue
        extra = sorted(set(item) - {"at", "worker_id", "event", "trade", "employer", "trained"})
        if extra:
            problems.append(Phrase(N_("{item}: unknown key {keys}"), item=label, keys=_keys(extra)))
        t = _time_us(item.get("at"), _sub(label, "at"), problems)
        worker = item.get("worker_id")
        if not isinstance(worker, str) or not _WORKER_RE.fullmatch(worker):
            problems.append(Phrase(N_("{item}: {value} must be a pseudonym of 1-64 letters, digits, _.:-"),
                                   item=_sub(label, "worker_id"), value=_show(worker)))
            continue
        kind = item.get("event")
        if kind not in ("in", "out"):
            problems.append(Phrase(N_("{item}: {value} must be 'in' or 'out'"), item=_sub(label, "event"),
                                   value=_show(kind)))
            continue
        trained = item.get("trained")
        if not isinstance(trained, bool):
            problems.append(Phrase(N_("{item}: {value} must be true or false (safety training completed)"),
                                   item=_sub(label, "trained"), value=_show(trained)))
            continue
        text: dict[str, str | None] = {}
        for key in ("trade", "employer"):
            try:
                text[key] = clean_text(item.get(key), _sub(label, key),
                                       max_len=LABEL_MAX, required=False) or None
            except TextError as exc:
                problems.append(cause(exc))  # type: ignore[arg-type]  # a TextError is ours: a Phrase
        if t is None or len(text) < 2:
            continue
        if t > now_us + int(max_future_s * US_PER_S):
            problems.append(Phrase(N_("{item}: time {time} is in the future (clock {now})"), item=label, time=iso(t),
                                   now=iso(now_us)))
        elif t < max(min_us, MIN_TIME_US):
            problems.append(Phrase(N_("{item}: time {time} is too far in the past"), item=label, time=iso(t)))
        if (worker, kind, t) in seen:
            problems.append(Phrase(N_("{item}: the same event twice ({worker} {event} at {time})"), item=label,
                                   worker=worker, event=kind, time=iso(t)))
        seen.add((worker, kind, t))
        out["at_us"].append(t)
        out["worker_id"].append(worker)
        out["event"].append(kind)
        out["trade"].append(text["trade"])
        out["employer"].append(text["employer"])
        out["trained"].append(trained)
    return out


def content_digest(device_id: str, t_us: np.ndarray, channel: np.ndarray, value: np.ndarray,
                   events: dict[str, list]) -> str:
    """sha256 of a batch's content in a canonical order: the same readings hash the same however sent."""
    h = hashlib.sha256(device_id.encode())
    if len(t_us):
        order = np.lexsort((np.asarray(channel, dtype=str), t_us))
        h.update(np.asarray(t_us)[order].astype("<i8").tobytes())
        h.update("\x00".join(np.asarray(channel, dtype=str)[order].tolist()).encode())
        h.update(np.asarray(value)[order].astype("<f8").tobytes())
    h.update(json.dumps(events, sort_keys=True, separators=(",", ":")).encode())
    return h.hexdigest()


def _sub(label: str | Phrase, key: str) -> str | Phrase:
    """``label.key``: a field of an item."""
    return f"{label}.{key}" if isinstance(label, str) else Phrase(N_("{item}.{key}"), item=label, key=key)


def _refused(problems: list[Phrase]) -> BatchError:
    """The refusal of a whole batch: the message (the reader's language) names the first problem; ``problems``
    lists them in English (sent back to the device, stored with the rejected batch)."""
    shown = problems[:MAX_PROBLEMS]
    texts = [message_text(p) for p in shown]
    if len(problems) > len(shown):
        return BatchError(N_("batch refused, nothing stored: {n} problem(s): {first} (and {more} more)"), status=422,
                          problems=texts, n=len(problems), first=shown[0], more=len(problems) - len(shown))
    return BatchError(N_("batch refused, nothing stored: {n} problem(s): {first}"), status=422, problems=texts,
                      n=len(problems), first=shown[0])


def _time_us(value: Any, label: str | Phrase, problems: list[Phrase]) -> int | None:
    """UTC microseconds of a sent time (epoch seconds or ISO 8601 with an offset), within 2000..2100."""
    if isinstance(value, bool) or value is None:
        problems.append(Phrase(N_("{item}: needs a time (ISO 8601 with offset, or epoch seconds)"), item=label))
        return None
    if isinstance(value, LongInteger):
        problems.append(Phrase(N_("{item}: {value} is not a time (epoch seconds from 2000 to 2100)"), item=label,
                               value=value.phrase()))
        return None
    if isinstance(value, (int, float)):
        seconds = float(value)
        if not math.isfinite(seconds) or not MIN_TIME_US <= seconds * US_PER_S < MAX_TIME_US:
            problems.append(Phrase(N_("{item}: {seconds:g} is not a time from 2000 to 2100 in epoch seconds"),
                                   item=label, seconds=seconds))
            return None
        return int(round(seconds * US_PER_S))
    if isinstance(value, str):
        shown = _show(value)
        if len(value) > MAX_TIME_TEXT:
            problems.append(Phrase(N_("{item}: {value} is not an ISO 8601 time (too long)"), item=label, value=shown))
            return None
        try:
            stamp = dt.datetime.fromisoformat(value)
        except ValueError:
            problems.append(Phrase(N_("{item}: {value} is not an ISO 8601 time"), item=label, value=shown))
            return None
        if stamp.tzinfo is None:
            problems.append(Phrase(N_("{item}: {value} has no UTC offset; add Z or +08:00"), item=label, value=shown))
            return None
        try:
            t = (stamp - _EPOCH) // dt.timedelta(microseconds=1)
        except OverflowError:      # 0001-01-01T00:00+14:00 is before year 1 in UTC
            t = None
        if t is None or not MIN_TIME_US <= t < MAX_TIME_US:
            problems.append(Phrase(N_("{item}: {value} is not a time from 2000 to 2100"), item=label, value=shown))
            return None
        return t
    problems.append(Phrase(N_("{item}: {value} is not a time"), item=label, value=_show(value)))
    return None


def _day_us(day: dt.date) -> int:
    return (dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC) - _EPOCH) // dt.timedelta(microseconds=1)


def to_us(when: dt.datetime) -> int:
    """UTC microseconds of a datetime (naive ones are taken as UTC)."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return (when - _EPOCH) // dt.timedelta(microseconds=1)


def from_us(t_us: int) -> dt.datetime:
    """Naive UTC datetime of UTC microseconds (the store's convention)."""
    return (_EPOCH + dt.timedelta(microseconds=int(t_us))).replace(tzinfo=None)


def iso(t_us: int) -> str:
    return (_EPOCH + dt.timedelta(microseconds=int(t_us))).isoformat().replace("+00:00", "Z")
