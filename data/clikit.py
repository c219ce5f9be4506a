"""What every ``sitetwin`` command shares: the ``--db`` and ``--json`` options, output, errors.

With ``--json`` a command prints exactly one JSON document on stdout; progress, warnings
and errors always go to stderr, so scripts can pipe stdout straight into a parser.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Annotated, Any

import typer

from sitetwin.data.i18n import Translator
from sitetwin.data.store import DEFAULT_DB

DbOption = Annotated[Path, typer.Option("--db", help="The twin's DuckDB store file.", show_default=True)]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout and nothing else.")]
DEFAULT_DB_PATH = Path(DEFAULT_DB)

_ = Translator("data")
_err_console = None
_out_console = None
_column_name: Callable[[str], str] = str


def _plain_cell(_column: str, value: Any) -> str:
    return str(value)


_cell_text: Callable[[str, Any], str] = _plain_cell


def set_column_names(name: Callable[[str], str], cell: Callable[[str, Any], str] | None = None) -> None:
    """How :func:`table` heads a column given its key, and (``cell``) shows a value of a column: the CLI
    names them in the reader's language."""
    global _column_name, _cell_text
    _column_name = name
    if cell is not None:
        _cell_text = cell


def err_console():
    """A rich console on stderr, for progress, warnings and errors."""
    global _err_console
    if _err_console is None:
        from rich.console import Console

        _err_console = Console(stderr=True, highlight=False)
    return _err_console


def out_console():
    global _out_console
    if _out_console is None:
        from rich.console import Console

        _out_console = Console(highlight=False)
    return _out_console


def to_jsonable(obj: Any) -> Any:
    """Records, numpy values, paths and dates as plain JSON types."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, (_dt.datetime, _dt.date)):
        return obj.isoformat()
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):  # numpy arrays and scalars
        return obj.tolist()
    if isinstance(obj, float) and obj != obj:  # NaN is not JSON
        return None
    return obj


def emit(payload: Any, as_json: bool, render: Callable[[Any], None] | None = None) -> None:
    """Print ``payload``: as one JSON document, or through ``render`` for people."""
    if as_json:
        sys.stdout.write(json.dumps(to_jsonable(payload), indent=2, ensure_ascii=False) + "\n")
        sys.stdout.flush()
    elif render is not None:
        render(payload)
    else:
        out_console().print(payload)


def warn(message: str) -> None:
    # str() first: a report's line (data.errors.Note) reads in the reader's language, not as its English value
    prefix = _escape(_("warning:"))        # outside the f-string: the catalog's extractor reads calls only
    err_console().print(f"[yellow]{prefix}[/]{_gap(prefix)}{_escape(str(message))}", markup=True, soft_wrap=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print one clear error line on stderr (``error:``, in Chinese ``错误：``); return the Exit to raise."""
    prefix = _escape(_("error:"))
    err_console().print(f"[red]{prefix}[/]{_gap(prefix)}{_escape(str(message))}", markup=True, soft_wrap=True)
    return typer.Exit(code)


def _gap(prefix: str) -> str:
    return "" if prefix.endswith("：") else " "      # a full-width colon carries its own space


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def table(rows: Iterable[dict[str, Any]], columns: list[str], title: str | None = None) -> None:
    """Render rows as a rich table on stdout."""
    from rich.table import Table

    t = Table(title=title)
    for c in columns:
        t.add_column(_column_name(c))
    for r in rows:
        t.add_row(*["" if r.get(c) is None else _cell_text(c, r.get(c)) for c in columns])
    out_console().print(t)


def progress(transient: bool = True):
    """A rich progress bar on stderr for long work."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                    TimeElapsedColumn(), console=err_console(), transient=transient)
