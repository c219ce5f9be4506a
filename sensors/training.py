"""Safety education and online training (安全教育培训): records per worker, imported or posted.

A record says that a worker (the pseudonym the gate uses, ``sensors.attendance.pseudonym``)
completed a course of a type (:data:`COURSE_TYPES`: 三级安全教育, 岗前, 专项 ...) on a day, for so
many class hours, with an exam score, passed or not, valid until a day. Records come from CSV
or JSON files (:func:`import_file`) or from the ingest server (``POST /v1/training``,
:func:`parse_training_batch` then :func:`store_records`). Either way the whole input is checked
first and stored in one transaction: a bad row (an unknown course type, dates out of order, a
score outside 0..100, an unknown site or a worker never seen at the site's gate) refuses it
with one line naming the file (or ``records[i]``), the row and the field, and nothing is stored.

A record with the key of a stored one (site, worker, course, day) replaces it (a corrected
score); an identical one is a copy and is skipped. Each file or batch is recorded in
``training_imports``: a file already imported, or a batch id already stored with the same
content, is skipped; a batch id reused for other content is refused (409).

The gate's "trained" status (:func:`effective_trained`): a worker with records is trained on a
day (in the site's time zone) when a passed record is valid that day; a worker without any
record keeps the gate's own flag.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sitetwin.data.clock import utcnow
from sitetwin.data.errors import Phrase, message_text
from sitetwin.data.i18n import N_
from sitetwin.data.store import Store, atomic
from sitetwin.data.text import TextError, clean_text
from sitetwin.sensors.errors import BatchError, SensorError, cause

COURSE_TYPES = ("three_level", "pre_job", "special", "refresher", "daily")
# what files and platforms write for a course type -> the stored, language-neutral value
COURSE_TYPE_ALIASES = {
    "三级安全教育": "three_level", "三级教育": "three_level", "三级": "three_level",
    "岗前": "pre_job", "岗前培训": "pre_job", "岗前教育": "pre_job",
    "专项": "special", "专项培训": "special", "专项安全教育": "special",
    "继续教育": "refresher", "复训": "refresher", "再教育": "refresher",
    "日常": "daily", "班前教育": "daily", "日常教育": "daily",
    "three-level": "three_level", "pre-job": "pre_job",
}
PASS_SCORE = 60.0              # (score) an exam at or above this passes, when the record does not say
VALID_DAYS = {"three_level": 365, "pre_job": 365, "special": 730, "refresher": 365, "daily": 1}
                               # (days) how long a course counts when the record gives no valid_until
MAX_HOURS = 200.0              # (h) more class hours than this for one course is a typing error
MAX_RECORDS = 20_000           # records in one file or batch
MAX_FUTURE_DAYS = 1            # a course may be dated at most this far after today (time zones, clocks)
FIELDS = ("site_code", "worker_id", "course", "course_type", "completed_on", "hours", "score", "passed",
          "valid_until", "provider")
_WORKER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:+=-]{0,63}$")
_BATCH_ID_RE = re.compile(r"^[A-Za-z0-9_.:+=-]{1,128}$")
_TRUE = {"true", "1", "yes", "y", "是", "合格", "通过"}
_FALSE = {"false", "0", "no", "n", "否", "不合格", "未通过"}


class TrainingError(BatchError):
    """Training records refused as a whole; the message is the first problem (file, row, field),
    ``problems`` all of them (at most 20, in English: stored, sent to devices), ``status`` the HTTP answer."""


class CourseTypeError(SensorError, ValueError):
    """A course type that is not one of :data:`COURSE_TYPES` (nor a name of one)."""


def _refused(problems: list[Phrase]) -> TrainingError:
    """Records refused: the message is the first problem, ``problems`` all of them in English."""
    first = problems[0]
    return TrainingError(first.template, problems=[message_text(p) for p in problems[:20]],
                         **first.fields)


def _problem(item: str | Phrase, problem: str | Phrase) -> Phrase:
    return Phrase(N_("{item}: {problem}"), item=item, problem=problem)


def course_type(value: object) -> str:
    """The stored course type for what a file says (``三级安全教育`` -> ``three_level``); ValueError if unknown."""
    text = str(value or "").strip()
    key = COURSE_TYPE_ALIASES.get(text, COURSE_TYPE_ALIASES.get(text.lower(), text.lower()))
    if key not in COURSE_TYPES:
        raise CourseTypeError(N_("{value!r} is not a course type (types: {types}, "
                                 "or 三级安全教育, 岗前, 专项, 继续教育, 日常)"),
                              value=text[:40], types=", ".join(COURSE_TYPES))
    return key


def check_records(rows: Sequence[Mapping[str, Any]], *, where: Any, today: dt.date | None = None,
                  site_code: str | None = None) -> list[dict]:
    """Check rows (dicts of :data:`FIELDS`; ``date`` and ``valid_to`` are taken for ``completed_on`` and
    ``valid_until``) without a store; return them as records ready to store.

    ``where(i, field)`` names row ``i``'s field in a message (a file's ``path: row 3: score``).
    ``site_code`` fills rows that name no site (the posting device's). Raises :class:`TrainingError`
    with every problem; the message is the first.
    """
    if len(rows) > MAX_RECORDS:
        raise TrainingError(N_("{item}: more than {limit} records; split the input"), status=413,
                            item=where(len(rows) - 1, "records"), limit=MAX_RECORDS)
    today = today or utcnow().date()
    problems: list[Phrase] = []
    out: list[dict] = []
    for i, raw in enumerate(rows):
        if not isinstance(raw, Mapping):
            problems.append(Phrase(N_("{item}: must be an object with {fields}"), item=where(i, None),
                                   fields=", ".join(FIELDS[:6])))
            continue
        row = {str(k).strip(): v for k, v in raw.items() if k is not None}
        for alias, name in (("date", "completed_on"), ("valid_to", "valid_until"), ("type", "course_type")):
            if alias in row and name not in row:
                row[name] = row.pop(alias)
        extra = sorted(set(row) - set(FIELDS))
        if extra:
            problems.append(Phrase(N_("{item}: unknown field (fields: {fields})"), item=where(i, extra[0]),
                                   fields=", ".join(FIELDS)))
            continue
        rec = _check_row(row, i, where, today, site_code, problems)
        if rec is not None:
            out.append(rec)
        if len(problems) >= 20:
            break
    if problems:
        raise _refused(problems)
    return out


def _check_row(row: dict, i: int, where, today: dt.date, site_code: str | None, problems: list[Phrase]) -> dict | None:
    before = len(problems)

    def bad(field: str, problem: Phrase) -> None:
        problems.append(_problem(where(i, field), problem))

    def blank(v: object) -> bool:
        return v is None or (isinstance(v, str) and not v.strip())

    site = row.get("site_code")
    site = site_code if blank(site) else str(site).strip()
    if not site:
        bad("site_code", Phrase(N_("missing (the site whose gate knows the worker)")))
    worker = str(row.get("worker_id") or "").strip()
    if not _WORKER_RE.fullmatch(worker):
        bad("worker_id", Phrase(N_("{value!r} is not a worker pseudonym (1-64 letters, digits and _.:+=-; "
                                   "never a national id)"), value=worker[:40]))
    course = ""
    try:
        course = clean_text(row.get("course"), where(i, "course"), max_len=200)
    except TextError as exc:
        problems.append(cause(exc))  # type: ignore[arg-type]  # names where(i, "course") itself
    kind = ""
    try:
        kind = course_type(row.get("course_type"))
    except CourseTypeError as exc:
        bad("course_type", cause(exc))  # type: ignore[arg-type]
    completed = _date(row.get("completed_on"), "completed_on", i, bad, required=True)
    if completed is not None and completed > today + dt.timedelta(days=MAX_FUTURE_DAYS):
        bad("completed_on", Phrase(N_("{day} is in the future (today is {today})"), day=completed, today=today))
    hours = _number(row.get("hours"), "hours", i, bad, required=True)
    if hours is not None and not 0 < hours <= MAX_HOURS:
        bad("hours", Phrase(N_("{hours:g} class hours is outside 0 < hours <= {max_hours:g}"), hours=hours,
                            max_hours=MAX_HOURS))
    score = _number(row.get("score"), "score", i, bad, required=False)
    if score is not None and not 0 <= score <= 100:
        bad("score", Phrase(N_("{score:g} is outside 0..100"), score=score))
    passed = row.get("passed")
    if blank(passed):
        passed = None if score is None else score >= PASS_SCORE
        if passed is None:
            bad("passed", Phrase(N_("missing: give passed (true/false) or an exam score")))
    elif isinstance(passed, bool):
        pass
    elif str(passed).strip().lower() in _TRUE:
        passed = True
    elif str(passed).strip().lower() in _FALSE:
        passed = False
    else:
        bad("passed", Phrase(N_("{value!r} is not true or false"), value=str(passed)[:20]))
    until = _date(row.get("valid_until"), "valid_until", i, bad, required=False)
    if until is None and completed is not None and kind in VALID_DAYS:
        until = completed + dt.timedelta(days=VALID_DAYS[kind] - 1)
    if until is not None and completed is not None and until < completed:
        bad("valid_until", Phrase(N_("{until} is before completed_on {completed} (dates out of order)"), until=until,
                                  completed=completed))
    provider = None
    if not blank(row.get("provider")):
        try:
            provider = clean_text(row.get("provider"), where(i, "provider"), max_len=200)
        except TextError as exc:
            problems.append(cause(exc))  # type: ignore[arg-type]  # names where(i, "provider") itself
    if len(problems) > before:
        return None
    return {"site_code": site, "worker_id": worker, "course": course, "course_type": kind,
            "completed_on": completed, "hours": float(hours or 0), "score": score, "passed": bool(passed),
            "valid_until": until, "provider": provider}


def _date(value: object, field: str, i: int, bad, *, required: bool) -> dt.date | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            bad(field, Phrase(N_("missing (a day, YYYY-MM-DD)")))
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip()[:10])
    except ValueError:
        bad(field, Phrase(N_("{value!r} is not a day (YYYY-MM-DD)"), value=str(value)[:30]))
        return None


def _number(value: object, field: str, i: int, bad, *, required: bool) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            bad(field, Phrase(N_("missing")))
        return None
    if isinstance(value, bool):
        bad(field, Phrase(N_("{value!r} is not a number"), value=value))
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        bad(field, Phrase(N_("{value!r} is not a number"), value=str(value)[:30]))
        return None
    if not math.isfinite(number):
        bad(field, Phrase(N_("{value!r} is not a finite number"), value=value))
        return None
    return number


def content_digest(records: Sequence[Mapping[str, Any]]) -> str:
    """sha256 of the checked records (their order kept): the identity of a file's or batch's content."""
    text = json.dumps([[str(r.get(k)) for k in FIELDS] for r in records], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# ---------------------------------------------------------------------- the store

def check_known(store: Store, records: Sequence[Mapping[str, Any]], *, where, new_workers: bool = False) -> None:
    """Refuse records of a site the store does not have or of a worker never seen at its gate
    (``attendance_events``; ``new_workers`` lets through workers trained before their first day)."""
    sites = sorted({r["site_code"] for r in records})
    known_sites = {r[0] for r in store.execute(
        f"SELECT site_code FROM sites WHERE site_code IN ({', '.join('?' for _ in sites)})", sites)} if sites else set()
    known_workers: set[tuple[str, str]] = set()
    if not new_workers and known_sites:
        import pyarrow as pa

        pairs = pa.table({"site_code": [r["site_code"] for r in records],
                          "worker_id": [r["worker_id"] for r in records]})
        store.con.register("_training_pairs", pairs)
        try:
            known_workers = {(a, b) for a, b in store.execute(
                "SELECT DISTINCT site_code, worker_id FROM attendance_events SEMI JOIN _training_pairs "
                "USING (site_code, worker_id)")}
        finally:
            store.con.unregister("_training_pairs")
    problems: list[Phrase] = []
    for i, r in enumerate(records):
        if r["site_code"] not in known_sites:
            problems.append(Phrase(N_("{item}: no site {site_code!r} in {store}"), item=where(i, "site_code"),
                                   site_code=r["site_code"], store=store.label))
        elif not new_workers and (r["site_code"], r["worker_id"]) not in known_workers:
            problems.append(Phrase(N_("{item}: worker {worker_id!r} was never seen at the gate of site {site_code} "
                                      "(check the pseudonym, or allow workers trained before their first day)"),
                                   item=where(i, "worker_id"), worker_id=r["worker_id"], site_code=r["site_code"]))
        if len(problems) >= 20:
            break
    if problems:
        raise _refused(problems)


def store_records(store: Store, records: Sequence[Mapping[str, Any]], *, import_key: str, source: str,
                  origin: str | None, content_sha256: str, where=None, new_workers: bool = False) -> dict:
    """Store checked records (:func:`check_records`) in one transaction, recorded under ``import_key``.

    Returns ``{"records": n, "inserted", "updated", "copies", "duplicate": bool, "sites": [...]}``. An ``import_key``
    stored before with the same content is a duplicate (nothing done); with other content it is
    refused (status 409). Unknown sites and workers are refused (:func:`check_known`).
    """
    import pandas as pd

    where = where or (lambda i, field: f"records[{i}]" + (f".{field}" if field else ""))
    sites = sorted({r["site_code"] for r in records})
    ids = [f"{import_key}@{s}" for s in sites]
    report: dict[str, Any] = {"records": len(records), "inserted": 0, "updated": 0, "copies": 0,
                              "duplicate": False, "sites": sites}
    with atomic(store):
        if ids:
            stored = store.rows(f"SELECT import_id, content_sha256 FROM training_imports WHERE import_id IN "
                                f"({', '.join('?' for _ in ids)})", ids)
            if stored:
                if all(r["content_sha256"] == content_sha256 for r in stored):
                    return {**report, "duplicate": True}
                raise TrainingError(N_("{import_key}: stored before with other content; give new content a new "
                                       "batch_id"), status=409, import_key=import_key)
        check_known(store, records, where=where, new_workers=new_workers)
        if not records:
            return report
        frame = pd.DataFrame([{**{k: r[k] for k in FIELDS}, "import_id": f"{import_key}@{r['site_code']}"}
                              for r in records])
        frame = frame.drop_duplicates(["site_code", "worker_id", "course", "completed_on"], keep="last")
        store.con.register("_training_new", frame)
        try:
            same = "n.course_type = t.course_type AND n.hours = t.hours AND n.score IS NOT DISTINCT FROM t.score " \
                   "AND n.passed = t.passed AND n.valid_until = t.valid_until " \
                   "AND n.provider IS NOT DISTINCT FROM t.provider"
            key = "n.site_code = t.site_code AND n.worker_id = t.worker_id AND n.course = t.course " \
                  "AND n.completed_on = t.completed_on"
            found = store.one(f"SELECT count(*) FILTER (WHERE {same}) AS copies, count(*) FILTER (WHERE NOT ({same})) "
                              f"AS updated FROM _training_new n JOIN training_records t ON {key}")
            assert found is not None
            store.execute(f"DELETE FROM training_records t WHERE EXISTS (SELECT 1 FROM _training_new n "
                          f"WHERE {key} AND NOT ({same}))")
            store.execute(f"INSERT INTO training_records (site_code, worker_id, course, course_type, completed_on, "
                          f"hours, score, passed, valid_until, provider, import_id) "
                          f"SELECT n.site_code, n.worker_id, n.course, n.course_type, n.completed_on, n.hours, "
                          f"n.score, n.passed, n.valid_until, n.provider, n.import_id FROM _training_new n "
                          f"WHERE NOT EXISTS (SELECT 1 FROM training_records t WHERE {key})")
        finally:
            store.con.unregister("_training_new")
        copies, updated = int(found["copies"]), int(found["updated"])
        report.update(copies=copies, updated=updated, inserted=len(frame) - copies - updated)
        now = utcnow()
        for s, import_id in zip(sites, ids):
            n = sum(1 for r in records if r["site_code"] == s)
            store.execute("INSERT INTO training_imports (import_id, site_code, source, origin, content_sha256, "
                          "records, imported_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                          [import_id, s, source, origin, content_sha256, n, now])
    return report


def import_file(store: Store, path: str | Path, *, new_workers: bool = False, today: dt.date | None = None,
                source: str | None = None, check_site=None) -> dict:
    """Import training records from a CSV (header row of :data:`FIELDS`) or JSON file (a list of
    record objects, or ``{"records": [...]}``), in one transaction. See the module docstring.

    ``check_site(site_code)``, when given, is called for each site of the file before anything is
    stored and refuses by raising (the CLI passes the caller's scope check)."""
    path = Path(path)
    rows = read_rows(path)

    def where(i: int, field: str | None) -> Phrase:
        if field:
            return Phrase(N_("{path}: row {row}: {field}"), path=path, row=i + 1, field=field)
        return Phrase(N_("{path}: row {row}"), path=path, row=i + 1)

    records = check_records(rows, where=where, today=today)
    sha = content_digest(records)
    if check_site is not None:
        for site in sorted({r["site_code"] for r in records}):
            check_site(site)
    with store.transaction():
        report = store_records(store, records, import_key=f"file:{sha[:32]}", where=where, new_workers=new_workers,
                               source=source or ("json" if path.suffix.lower() == ".json" else "csv"),
                               origin=path.name, content_sha256=sha)
    return {"file": str(path), **report}


def read_rows(path: Path) -> list[dict]:
    """The rows of a training file: CSV (UTF-8, with or without BOM) or JSON."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise TrainingError(N_("{path}: cannot read ({reason})"), path=path, reason=exc.strerror or str(exc)) from None
    except UnicodeDecodeError:
        raise TrainingError(N_("{path}: not UTF-8 text; save it as UTF-8"), path=path) from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise TrainingError(N_("{path}: not JSON ({reason})"), path=path, reason=str(exc)) from None
        if isinstance(data, dict):
            data = data.get("records")
        if not isinstance(data, list):
            raise TrainingError(N_('{path}: expected a list of training records (or {{"records": [...]}})'), path=path)
        return data
    if path.suffix.lower() not in (".csv", ".txt"):
        raise TrainingError(N_("{path}: not a .csv or .json file"), path=path)
    reader = csv.DictReader(text.splitlines())
    missing = [f for f in ("worker_id", "course", "course_type", "hours") if f not in (reader.fieldnames or [])]
    if missing:
        raise TrainingError(N_("{path}: row 0 (header): no column {missing} (columns: {columns})"), path=path,
                            missing=", ".join(missing), columns=", ".join(FIELDS))
    return [{k: v for k, v in row.items() if k is not None} for row in reader]


# ---------------------------------------------------------------------- the ingest API

def parse_training_batch(body: bytes, *, device_id: str, site_code: str, today: dt.date | None = None,
                         max_body_bytes: int = 4 * 1024 * 1024) -> dict:
    """Parse and check a posted training batch (``{"batch_id": ..., "records": [...]}``) of a device
    at ``site_code``. A record naming another site is refused with 403; nothing of the batch is kept.

    Returns ``{"batch_id", "import_key", "records", "content_sha256"}``.
    """
    if len(body) > max_body_bytes:
        raise TrainingError(N_("batch of {size} bytes is larger than the limit of {limit}"), status=413,
                            size=len(body), limit=max_body_bytes)
    try:
        doc = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise TrainingError(N_("malformed batch: not UTF-8 JSON"), status=400) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("records"), list):
        raise TrainingError(N_('malformed batch: expected {{"batch_id": ..., "records": [...]}}'), status=400)
    unknown = sorted(set(doc) - {"batch_id", "records"})
    if unknown:
        raise TrainingError(N_("malformed batch: unknown key {key!r} (keys: batch_id, records)"), status=400,
                            key=unknown[0][:40])
    if not doc["records"]:
        raise TrainingError(N_("empty batch: no records"))
    batch_id = doc.get("batch_id")
    if batch_id is not None and (not isinstance(batch_id, str) or not _BATCH_ID_RE.fullmatch(batch_id)):
        raise TrainingError(N_("batch_id: use 1-128 letters, digits and _.:+=-"), status=400)
    for i, r in enumerate(doc["records"]):
        if isinstance(r, dict) and r.get("site_code") not in (None, "", site_code):
            # the same answer whatever the other site is: a device must not learn which sites exist
            raise TrainingError(N_("records[{i}].site_code: not this device's site; a device posts the training of "
                                   "its own site only"), status=403, i=i)

    def where(i: int, field: str | None) -> str:
        return f"records[{i}]" + (f".{field}" if field else "")

    records = check_records(doc["records"], where=where, today=today, site_code=site_code)
    sha = content_digest(records)
    batch_id = batch_id or f"sha256:{sha[:32]}"
    return {"batch_id": batch_id, "import_key": f"{device_id}/training/{batch_id}", "records": records,
            "content_sha256": sha}


# ---------------------------------------------------------------------- reading

def list_records(store: Store, site_code: str, *, worker_id: str | None = None, valid_on: dt.date | None = None):
    """A site's training records (optionally one worker's, or those valid and passed on a day): a
    pandas DataFrame of :data:`FIELDS` plus import_id, ordered by worker and day."""
    sql = "SELECT * FROM training_records WHERE site_code = ?"
    params: list[Any] = [site_code]
    if worker_id is not None:
        sql += " AND worker_id = ?"
        params.append(worker_id)
    if valid_on is not None:
        sql += " AND passed AND completed_on <= ? AND valid_until >= ?"
        params += [valid_on, valid_on]
    return store.df(sql + " ORDER BY worker_id, completed_on, course", params)


def local_days(t_us: np.ndarray, time_zone: str) -> np.ndarray:
    """The calendar day (datetime64[D]) in ``time_zone`` of each UTC time in microseconds."""
    import pandas as pd

    t = pd.to_datetime(np.asarray(t_us, dtype=np.int64), unit="us", utc=True).tz_convert(time_zone)
    return t.tz_localize(None).normalize().values.astype("datetime64[D]")


def effective_trained(store: Store, site_code: str, worker_id, t_us, gate_trained) -> np.ndarray:
    """(n,) bool: whether each gate event's worker was trained at that time. A worker with training
    records at the site is trained on a day (site time zone) when a passed record is valid that day;
    a worker without records keeps ``gate_trained``, the flag the gate sent."""
    from sitetwin.data.queries import site_time_zone

    worker_id = np.asarray(worker_id, dtype=object)
    out = np.asarray(gate_trained, dtype=bool).copy()
    if not len(worker_id):
        return out
    workers = sorted({str(w) for w in worker_id})
    rows = store.execute(
        "SELECT worker_id, completed_on, valid_until, passed FROM training_records WHERE site_code = ? "
        f"AND worker_id IN ({', '.join('?' for _ in workers)})", [site_code, *workers]) if workers else []
    if not rows:
        return out
    days = local_days(np.asarray(t_us, dtype=np.int64), site_time_zone(store, site_code))
    per: dict[str, list[tuple[np.datetime64, np.datetime64]]] = {}
    for w, start, end, passed in rows:
        spans = per.setdefault(w, [])
        if passed:
            spans.append((np.datetime64(start, "D"), np.datetime64(end, "D")))
    for w, spans in per.items():
        mask = worker_id == w
        ok = np.zeros(int(mask.sum()), dtype=bool)
        for start, end in spans:
            ok |= (days[mask] >= start) & (days[mask] <= end)
        out[mask] = ok
    return out
