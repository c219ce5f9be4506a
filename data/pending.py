"""Work still being prepared for a store: what it is, which pages wait for it, how far along it is.

Slow work that runs beside the workbench (the demo's detector training, say) records here
what it is doing, so that the pages that will show its results can say "being prepared"
instead of looking empty. It is a small JSON file beside the store (``pending.json`` in the
store's cache folder), not a table: it changes every few seconds, and each write to the
store would take the store's lock from the workbench.

>>> mark_pending("site.duckdb", "vision", "detections and hazards", pages=("/hazards",))  # doctest: +SKIP
>>> update_pending("site.duckdb", "vision", message="training: epoch 3 of 35", progress=3 / 35)  # doctest: +SKIP
>>> clear_pending("site.duckdb", "vision")                                                # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from sitetwin.data.clock import utcnow
from sitetwin.data.store import cache_dir_for

STATES = ("waiting", "running", "failed")
FILE_NAME = "pending.json"


@dataclass(frozen=True)
class Pending:
    """One piece of work being prepared."""

    key: str                      # what it is, for the code: a demo stage's name
    label: str                    # what it is, for people: "detections and hazards"
    pages: tuple[str, ...]        # workbench paths that show its results ("/hazards"); empty: every page
    state: str                    # waiting | running | failed
    message: str                  # the latest step ("training the detector: epoch 12 of 35") or the failure
    progress: float | None        # 0-1 when known
    pid: int | None               # the process doing it, when one is
    log: str | None               # where that process writes its output
    updated_at: str               # ISO time, UTC

    def concerns(self, path: str) -> bool:
        return not self.pages or any(path == p or (p != "/" and path.startswith(p + "/")) for p in self.pages)


def pending_path(db: str | Path) -> Path:
    return cache_dir_for(Path(db)) / FILE_NAME


def read_pending(db: str | Path) -> list[Pending]:
    """What is being prepared for the store at ``db``, oldest first; work whose process died shows as failed."""
    items = _load(pending_path(db))
    out = []
    for item in items.values():
        p = Pending(**{**item, "pages": tuple(item.get("pages") or ())})
        if p.state == "running" and p.pid is not None and not _alive(p.pid):
            p = Pending(**{**asdict(p), "state": "failed",
                           "message": "stopped before it finished" + (f" (see {p.log})" if p.log else "")})
        out.append(p)
    return out


def mark_pending(db: str | Path, key: str, label: str, *, pages: Sequence[str] = (), state: str = "waiting",
                 message: str = "", pid: int | None = None, log: str | Path | None = None) -> None:
    """Record (or replace) a piece of work being prepared."""
    _check_state(state)
    with _editing(db) as items:
        items[key] = asdict(Pending(key=key, label=label, pages=tuple(pages), state=state, message=message,
                                    progress=None, pid=pid, log=None if log is None else str(log),
                                    updated_at=utcnow().isoformat() + "Z"))


def update_pending(db: str | Path, key: str, *, state: str | None = None, message: str | None = None,
                   progress: float | None = None, pid: int | None = None) -> None:
    """Change what is known about a piece of work; nothing happens if it is not recorded."""
    if state is not None:
        _check_state(state)
    with _editing(db) as items:
        item = items.get(key)
        if item is None:
            return
        for name, value in (("state", state), ("message", message), ("pid", pid)):
            if value is not None:
                item[name] = value
        if progress is not None:
            item["progress"] = max(0.0, min(1.0, float(progress)))
        item["updated_at"] = utcnow().isoformat() + "Z"


def clear_pending(db: str | Path, key: str) -> None:
    """The work landed: forget it (the pages show its results)."""
    with _editing(db) as items:
        items.pop(key, None)


def _check_state(state: str) -> None:
    if state not in STATES:
        raise ValueError(f"state {state!r}: use one of {', '.join(STATES)}")


def _load(path: Path) -> dict[str, dict]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


@contextlib.contextmanager
def _editing(db: str | Path) -> Iterator[dict[str, dict]]:
    """Read, change and write the file under an exclusive lock; readers see the old or the new file, whole."""
    path = pending_path(db)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a+") as lock:
        _lock(lock)
        items = _load(path)
        yield items
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(items, indent=1, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, path)


def _lock(fh) -> None:
    try:
        import fcntl
    except ImportError:       # not POSIX: one writer at a time is the caller's business
        return
    fcntl.flock(fh.fileno(), fcntl.LOCK_EX)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # it exists, under another user
        return True
    return True
