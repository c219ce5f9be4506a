"""Read construction schedules: IfcWorkSchedule/IfcTask in a model, MS Project XML, and CSV task maps.

A schedule is a list of ``Task`` records plus ``(task_id, global_id)`` links saying which
model elements a task builds. Parsing is pure; :mod:`bim.store` writes the result.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from sitetwin.bim.errors import BimError
from sitetwin.data.i18n import N_

_MSP_NS = "{http://schemas.microsoft.com/project}"


@dataclass(frozen=True)
class Task:
    task_id: str
    name: str | None
    start: dt.datetime | None
    finish: dt.datetime | None
    parent_id: str | None = None
    wbs: str | None = None
    outline_level: int | None = None
    is_summary: bool = False


@dataclass(frozen=True)
class Schedule:
    schedule_id: str
    name: str | None
    source: str                      # ifc | msproject | csv
    tasks: tuple[Task, ...]
    links: tuple[tuple[str, str], ...] = field(default=())   # (task_id, global_id)
    file_name: str | None = None


def _parse_dt(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    value = value.strip()
    for fmt in ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d", "%d-%m-%Y", "%d/%m/%Y", "%Y/%m/%d",
                "%d-%m-%Y %H:%M", "%d.%m.%Y"):
        try:
            return dt.datetime.strptime(value, fmt)
        except ValueError:
            continue
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).replace(tzinfo=None)
    except ValueError:
        return None


# --- IFC -------------------------------------------------------------------------------

def read_ifc_schedules(model) -> list[Schedule]:
    """Work schedules in the model, with the products each task builds (IfcRelAssignsToProduct)."""
    schedules = []
    for ws in model.by_type("IfcWorkSchedule"):
        tasks: list[Task] = []
        links: list[tuple[str, str]] = []
        for root in _root_tasks(ws):
            _walk_task(root, None, 1, tasks, links)
        if tasks:
            schedules.append(Schedule(ws.GlobalId, ws.Name, "ifc", tuple(tasks), tuple(links)))
    return schedules


def _root_tasks(ws):
    for rel in getattr(ws, "Controls", None) or ():
        for obj in rel.RelatedObjects:
            if obj.is_a("IfcTask"):
                yield obj
    for rel in getattr(ws, "IsNestedBy", None) or ():  # some tools nest tasks under the schedule
        for obj in rel.RelatedObjects:
            if obj.is_a("IfcTask"):
                yield obj


def _walk_task(task, parent_id, level, tasks, links):
    children = [obj for rel in getattr(task, "IsNestedBy", None) or () for obj in rel.RelatedObjects
                if obj.is_a("IfcTask")]
    start, finish = _task_times(task)
    tasks.append(Task(task.GlobalId, task.Name, start, finish, parent_id,
                      getattr(task, "Identification", None), level, bool(children)))
    for rel in getattr(task, "HasAssignments", None) or ():
        if rel.is_a("IfcRelAssignsToProduct"):
            product = rel.RelatingProduct
            if getattr(product, "GlobalId", None):
                links.append((task.GlobalId, product.GlobalId))
    for child in children:
        _walk_task(child, task.GlobalId, level + 1, tasks, links)


def _task_times(task):
    tt = getattr(task, "TaskTime", None)
    if tt is not None:
        return _parse_dt(tt.ScheduleStart), _parse_dt(tt.ScheduleFinish)
    # IFC2X3: IfcRelAssignsTasks carries an IfcScheduleTimeControl
    for rel in getattr(task, "HasAssignments", None) or ():
        if rel.is_a("IfcRelAssignsTasks") and rel.TimeForTask is not None:
            t = rel.TimeForTask
            return _ifc2x3_date(t.ScheduleStart), _ifc2x3_date(t.ScheduleFinish)
    return None, None


def _ifc2x3_date(value) -> dt.datetime | None:
    if value is None:
        return None
    try:
        if value.is_a("IfcCalendarDate"):
            return dt.datetime(value.YearComponent, value.MonthComponent, value.DayComponent)
        if value.is_a("IfcDateAndTime"):
            d, t = value.DateComponent, value.TimeComponent
            return dt.datetime(d.YearComponent, d.MonthComponent, d.DayComponent,
                               t.HourComponent, t.MinuteComponent or 0, int(t.SecondComponent or 0))
    except Exception:
        return None
    return None


# --- MS Project XML --------------------------------------------------------------------

def read_msproject_xml(path: str | Path) -> Schedule:
    """Every task of an MS Project XML file (blank rows included, as MS Project counts them)."""
    path = Path(path)
    if not path.exists():
        raise BimError(N_("{path}: no such file"), path=path)
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise BimError(N_("{path}: not well-formed XML ({reason})"), path=path, reason=str(exc)) from None
    if root.tag != f"{_MSP_NS}Project":
        raise BimError(N_("{path}: not an MS Project XML file (root element is {tag!r}, expected Project in namespace "
                          "http://schemas.microsoft.com/project)"), path=path, tag=root.tag)

    def text(node, tag):
        child = node.find(f"{_MSP_NS}{tag}")
        return child.text if child is not None else None

    tasks: list[Task] = []
    parents: list[tuple[int, str]] = []   # (outline level, uid) stack
    for node in root.iterfind(f"{_MSP_NS}Tasks/{_MSP_NS}Task"):
        uid = text(node, "UID")
        if uid is None:
            raise BimError(N_("{path}: a Task has no UID"), path=path)
        level = int(text(node, "OutlineLevel") or 1)
        while parents and parents[-1][0] >= level:
            parents.pop()
        name = text(node, "Name")
        tasks.append(Task(
            task_id=uid, name=name.strip() if name else None,
            start=_parse_dt(text(node, "Start")), finish=_parse_dt(text(node, "Finish")),
            parent_id=parents[-1][1] if parents else None, wbs=text(node, "WBS"),
            outline_level=level, is_summary=text(node, "Summary") == "1"))
        parents.append((level, uid))
    if not tasks:
        raise BimError(N_("{path}: MS Project file holds no tasks"), path=path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    return Schedule(f"msp-{digest}", text(root, "Name") or path.stem, "msproject", tuple(tasks),
                    file_name=path.name)


# --- CSV task map ----------------------------------------------------------------------

_GID_COLUMNS = ("global_id", "globalid", "guid", "ifc_guid")
_TASK_COLUMNS = ("task_id", "task", "task_uid", "uid")


def read_task_map(path: str | Path) -> Schedule:
    """A CSV mapping GlobalIds to task ids.

    Needs a GlobalId column (``global_id``/``GlobalId``/``GUID``) and a task column
    (``task_id``/``Task``/``UID``). Optional ``TaskName``, ``TaskStart``, ``TaskFinish``
    columns define the tasks themselves (as in an as-planned event log); without them the
    ids must name tasks of a schedule already loaded.
    """
    path = Path(path)
    if not path.exists():
        raise BimError(N_("{path}: no such file"), path=path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            sample = fh.read(4096)
            fh.seek(0)
            try:
                dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
            except csv.Error:
                dialect = csv.excel
            reader = csv.DictReader(fh, dialect=dialect)
            fields = {f.strip().lower(): f for f in reader.fieldnames or ()}
            gid_col = next((fields[c] for c in _GID_COLUMNS if c in fields), None)
            task_col = next((fields[c] for c in _TASK_COLUMNS if c in fields), None)
            if gid_col is None or task_col is None:
                raise BimError(N_("{path}: needs a GlobalId column ({gid_columns}) and a task column ({task_columns}); "
                                  "found {found}"), path=path, gid_columns="/".join(_GID_COLUMNS),
                               task_columns="/".join(_TASK_COLUMNS), found=list(reader.fieldnames or []))
            name_col = fields.get("taskname") or fields.get("task_name") or fields.get("name")
            start_col = fields.get("taskstart") or fields.get("start")
            finish_col = fields.get("taskfinish") or fields.get("finish")
            links: dict[tuple[str, str], None] = {}
            tasks: dict[str, Task] = {}
            for lineno, row in enumerate(reader, start=2):
                gid, task = (row.get(gid_col) or "").strip(), (row.get(task_col) or "").strip()
                if not gid or not task:
                    raise BimError(N_("{path}: line {line}: empty GlobalId or task id"), path=path, line=lineno)
                if len(gid) != 22:
                    raise BimError(N_("{path}: line {line}: {global_id!r} is not an IFC GlobalId (22 characters)"),
                                   path=path, line=lineno, global_id=gid)
                links[(task, gid)] = None
                if name_col and task not in tasks:
                    tasks[task] = Task(task, row.get(name_col), _parse_dt(row.get(start_col)) if start_col else None,
                                       _parse_dt(row.get(finish_col)) if finish_col else None)
    except UnicodeDecodeError as exc:
        raise BimError(N_("{path}: not UTF-8 text ({reason})"), path=path, reason=str(exc)) from None
    if not links:
        raise BimError(N_("{path}: no rows"), path=path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    return Schedule(f"csv-{digest}", path.stem, "csv", tuple(tasks.values()), tuple(links), file_name=path.name)
