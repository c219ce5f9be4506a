"""What the workbench's callbacks accept: the shape of every input, declared once, checked before a callback runs.

A browser may send anything to ``/_dash-update-component``: text where a list is meant, ``1e308``
as a finding id, ``-1e20`` as a day index, an overlay no page offers. Page modules declare the
shape of each component property their callbacks read::

    inputs.declare({
        "twin-mode.value": one_of(MODE_LABELS),
        "twin-date.value": optional(int_in(0, DAYS_MAX)),
        "twin-storeys.value": optional(list_of(text(TITLE_MAX))),
    })
    inputs.declare_pattern("findings-open", finding=object_id)     # the fields of a dict id

and ``dashboards.callbacks.attach`` wraps every callback with :func:`checked`: its inputs and
states are checked (and coerced: ``3.0`` as a slider index becomes ``3``) in declaration order,
with the id that triggered it, before the callback's body runs. The first value that does not
fit raises :class:`BadInput`, naming the property and the problem; the app's ``on_error`` (and
the job manager, for background callbacks) turns that into the shell's message and no update.
A callback with an undeclared input is refused when the app is built, so none goes unchecked.

A well-formed id is not a permitted one: whether it names an object the caller may see is
checked afterwards, as before, by ``dashboards.access`` (``site_store`` / ``object_store``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sitetwin.data.errors import Phrase, SitetwinError
from sitetwin.data.i18n import N_, Translator
from sitetwin.data.text import LABEL_MAX, NOTE_MAX, TITLE_MAX, TextError, clean_text

_ = Translator("dashboards")
_TRIGGER = "changedPropIds"          # Dash's field naming the property that triggered a callback

__all__ = ["BadInput", "Check", "LIST_MAX", "URL_MAX", "boolean", "checked", "count", "day", "declare",
           "declare_pattern", "finite_float", "int_in", "list_of", "object_id", "one_of", "optional", "record",
           "shape_of", "site_code", "span", "text", "tuple_of", "url_part", "url_path", "LABEL_MAX", "NOTE_MAX",
           "TITLE_MAX"]

LIST_MAX = 1000          # items in any list a page sends (storeys, classes, files, click counts)
URL_MAX = 2000           # a path or a query string


class BadInput(SitetwinError, ValueError):
    """A callback input or state that no page of the workbench sends; ``where`` names it (``id.property``)."""

    def __init__(self, where: str | Phrase, problem: str | Phrase):
        self.where, self.problem = where, problem
        super().__init__(N_("the page sent {where}: {problem}; reload the page"), where=where, problem=problem)


def _kind(value: Any) -> str:
    """What a value is, in words, without echoing text (it may be long, or hostile)."""
    if value is None:
        return _("nothing (null)")
    if isinstance(value, bool):
        return _("true/false")
    if isinstance(value, int):
        return (_("the number {value}", value=value) if abs(value) < 10**15
                else _("a {n}-digit number", n=len(str(abs(value)))))
    if isinstance(value, float):
        return _("the number {value}", value=format(value, ".6g"))
    if isinstance(value, str):
        return _("text of {n} characters", n=format(len(value), ","))
    if isinstance(value, list):
        return _("a list of {n} items", n=format(len(value), ","))
    if isinstance(value, dict):
        return _("a mapping of {n} keys", n=format(len(value), ","))
    return type(value).__name__


class Check:
    """A shape: ``check(value, where)`` is the value as the callback gets it, or :class:`BadInput`."""

    def __call__(self, value: Any, where: str) -> Any:
        raise NotImplementedError


@dataclass(frozen=True)
class IntIn(Check):
    """A whole number in ``lo..hi`` (an integral float such as ``3.0`` becomes ``3``; true/false is not a number)."""

    lo: int
    hi: int

    def __call__(self, value, where):
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise BadInput(where, _("expected a whole number, got {what}", what=_kind(value)))
        if not self.lo <= value <= self.hi:
            raise BadInput(where, _("{what} is outside {lo}..{hi}", what=_kind(value), lo=self.lo, hi=self.hi))
        return value


@dataclass(frozen=True)
class FiniteFloat(Check):
    """A finite number in ``lo..hi``, as a float (NaN and infinities are refused)."""

    lo: float
    hi: float

    def __call__(self, value, where):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise BadInput(where, _("expected a number, got {what}", what=_kind(value)))
        try:
            number = float(value)
        except OverflowError:        # an integer too large for a float
            raise BadInput(where, _("{what} is outside {lo}..{hi}", what=_kind(value), lo=format(self.lo, "g"),
                                      hi=format(self.hi, "g"))) from None
        if not math.isfinite(number):
            raise BadInput(where, _("expected a finite number, got {what}", what=_kind(number)))
        if not self.lo <= number <= self.hi:
            raise BadInput(where, _("{what} is outside {lo}..{hi}", what=_kind(number), lo=format(self.lo, "g"),
                                      hi=format(self.hi, "g")))
        return number


@dataclass(frozen=True)
class OneOf(Check):
    """One of ``names`` (text or numbers, compared by value; true/false matches only true/false)."""

    names: tuple

    def __call__(self, value, where):
        if isinstance(value, (str, int, float)):
            for name in self.names:
                if isinstance(name, bool) == isinstance(value, bool) and name == value:
                    return name
        shown = ", ".join(str(n) for n in self.names[:12]) + (" ..." if len(self.names) > 12 else "")
        what = f"{value!r}" if isinstance(value, str) and len(value) <= 40 and value.isprintable() else _kind(value)
        raise BadInput(where, _("{what} is not one of: {names}", what=what, names=shown))


@dataclass(frozen=True)
class Optional(Check):
    """``None`` (nothing chosen yet), or ``inner``."""

    inner: Check

    def __call__(self, value, where):
        return None if value is None else self.inner(value, where)


@dataclass(frozen=True)
class ListOf(Check):
    """A list of ``min_len..max_len`` items, each of shape ``item``."""

    item: Check
    max_len: int = LIST_MAX
    min_len: int = 0

    def __call__(self, value, where):
        if not isinstance(value, list):
            raise BadInput(where, _("expected a list, got {what}", what=_kind(value)))
        if not self.min_len <= len(value) <= self.max_len:
            raise BadInput(where, _("{what}, expected {lo} to {hi}", what=_kind(value), lo=self.min_len,
                                    hi=self.max_len))
        return [self.item(v, f"{where}[{i}]") for i, v in enumerate(value)]


@dataclass(frozen=True)
class TupleOf(Check):
    """A list of exactly ``len(items)`` values, the i-th of shape ``items[i]`` (a range slider's ``[lo, hi]``)."""

    items: tuple[Check, ...]

    def __call__(self, value, where):
        if not isinstance(value, list) or len(value) != len(self.items):
            raise BadInput(where, _("expected a list of {n} values, got {what}", n=len(self.items), what=_kind(value)))
        return [check(v, f"{where}[{i}]") for i, (check, v) in enumerate(zip(self.items, value))]


@dataclass(frozen=True)
class Record(Check):
    """A mapping with the keys of ``fields`` (each of its shape); the keys in ``required`` must be there.

    Keys not declared are refused, or with ``extra`` dropped (Plotly's click data carries many
    the pages never read): the callback sees only declared keys.
    """

    fields: Mapping[str, Check]
    required: tuple[str, ...] = ()
    extra: bool = False

    def __call__(self, value, where):
        if not isinstance(value, dict):
            raise BadInput(where, _("expected a mapping, got {what}", what=_kind(value)))
        unknown = [k for k in value if k not in self.fields]
        if unknown and not self.extra:
            name = unknown[0] if len(unknown[0]) <= 40 and unknown[0].isprintable() else "(a long or odd key)"
            raise BadInput(where, _("unexpected key {name}; expected only {keys}", name=repr(name),
                                      keys=", ".join(self.fields)))
        missing = [k for k in self.required if k not in value]
        if missing:
            raise BadInput(where, _("missing {keys}", keys=", ".join(missing)))
        return {k: check(value[k], f"{where}.{k}") for k, check in self.fields.items() if k in value}


@dataclass(frozen=True)
class Text(Check):
    """Text a person typed or a page holds: ``data.text.clean_text``'s rule (no control characters, a length
    cap, one line unless ``multiline``); returned cleaned (NFC, stripped)."""

    max_len: int = TITLE_MAX
    multiline: bool = False
    required: bool = False

    def __call__(self, value, where):
        try:
            return clean_text(value, where, max_len=self.max_len, multiline=self.multiline, required=self.required)
        except TextError as exc:
            raise BadInput(where, str(exc).removeprefix(f"{where}: ")) from None


@dataclass(frozen=True)
class Token(Check):
    """An id: one word of 1..``max_len`` printable characters (a finding's uuid, a panorama's id, a GlobalId)."""

    max_len: int = LABEL_MAX

    def __call__(self, value, where):
        if not isinstance(value, str):
            raise BadInput(where, _("expected an id (text), got {what}", what=_kind(value)))
        if not 1 <= len(value) <= self.max_len:
            raise BadInput(where, _("an id of {n} characters, expected 1 to {most}", n=format(len(value), ","),
                                      most=self.max_len))
        if not value.isprintable() or any(ch.isspace() for ch in value):
            raise BadInput(where, _("an id may not hold spaces or control characters"))
        return value


@dataclass(frozen=True)
class SiteCode(Check):
    """A site code: 1-64 letters, digits, '-', '_' or '.' (``data.sites.check_site_code``'s rule)."""

    def __call__(self, value, where):
        from sitetwin.data.errors import StoreError
        from sitetwin.data.sites import check_site_code

        if not isinstance(value, str):
            raise BadInput(where, _("expected a site code (text), got {what}", what=_kind(value)))
        try:
            return check_site_code(value)
        except StoreError:
            raise BadInput(where, _("a site code is 1-64 letters, digits, '-', '_' or '.'")) from None


@dataclass(frozen=True)
class Day(Check):
    """A day as ISO text (``YYYY-MM-DD``), returned in that form; blank text is ``None`` when ``blank_ok``."""

    blank_ok: bool = False

    def __call__(self, value, where):
        import datetime as dt

        if not isinstance(value, str):
            raise BadInput(where, _("expected a day (YYYY-MM-DD), got {what}", what=_kind(value)))
        if not value.strip() and self.blank_ok:
            return None
        try:
            if len(value) > 32:
                raise ValueError(value)
            return dt.date.fromisoformat(value.strip()).isoformat()
        except ValueError:
            raise BadInput(where, _("not a day; write it as YYYY-MM-DD")) from None


@dataclass(frozen=True)
class UrlPath(Check):
    """The path of one of the workbench's URLs: one line of text starting with ``/``."""

    max_len: int = URL_MAX

    def __call__(self, value, where):
        value = Text(self.max_len)(value, where)
        if not value.startswith("/"):
            raise BadInput(where, _("a path starts with '/'"))
        return value


@dataclass(frozen=True)
class Boolean(Check):
    def __call__(self, value, where):
        if not isinstance(value, bool):
            raise BadInput(where, _("expected true or false, got {what}", what=_kind(value)))
        return value


# --------------------------------------------------------------------------------------
# the vocabulary pages declare with

def int_in(lo: int, hi: int) -> Check:
    return IntIn(lo, hi)


def finite_float(lo: float = -1e9, hi: float = 1e9) -> Check:
    return FiniteFloat(lo, hi)


def one_of(names: Sequence | Mapping) -> Check:
    """One of ``names`` (a mapping: one of its keys)."""
    return OneOf(tuple(names))


def optional(inner: Check) -> Check:
    return Optional(inner)


def list_of(item: Check, *, max_len: int = LIST_MAX, min_len: int = 0) -> Check:
    return ListOf(item, max_len, min_len)


def tuple_of(*items: Check) -> Check:
    return TupleOf(tuple(items))


def span(lo: float = -1e9, hi: float = 1e9) -> Check:
    """A range slider's ``[from, to]``: two finite numbers in ``lo..hi``."""
    return TupleOf((FiniteFloat(lo, hi), FiniteFloat(lo, hi)))


def record(*, required: Sequence[str] = (), extra: bool = False, **fields: Check) -> Check:
    return Record(fields, tuple(required), extra)


def text(max_len: int = TITLE_MAX, *, multiline: bool = False, required: bool = False) -> Check:
    return Text(max_len, multiline, required)


def day(*, blank_ok: bool = False) -> Check:
    return Day(blank_ok)


count = IntIn(0, 10**9)                 # clicks, ticks, refresh counters
boolean = Boolean()
object_id = Token()                     # finding, panorama, hazard, survey, run ids; GlobalIds
site_code = SiteCode()
url_part = Text(URL_MAX)                # a query string (one line)
url_path = UrlPath(URL_MAX)             # a pathname

BY_PROPERTY: dict[str, Check] = {"n_clicks": Optional(count), "n_intervals": Optional(count)}


# --------------------------------------------------------------------------------------
# the declarations

_SHAPES: dict[tuple[str, str], Check] = {}
_PATTERNS: dict[str, dict[str, Check]] = {}


def declare(shapes: Mapping[str, Check]) -> None:
    """Declare the shape of component properties (``"component-id.property": check``); a dict id is
    declared by its ``type`` (``"findings-open.n_clicks"``)."""
    for key, check in shapes.items():
        component, _, prop = key.rpartition(".")
        if not component or not isinstance(check, Check):
            raise TypeError(f"declare {key!r}: use 'component-id.property': <a dashboards.inputs check>")
        known = _SHAPES.get((component, prop))
        if known is not None and known != check:
            raise TypeError(f"{key} is declared twice, with different shapes: two components share an id")
        _SHAPES[(component, prop)] = check


def declare_pattern(type_: str, **fields: Check) -> None:
    """Declare the fields of the dict ids of ``type_`` (``{"type": type_, "finding": ...}``)."""
    known = _PATTERNS.get(type_)
    if known is not None and known != fields:
        raise TypeError(f"pattern {type_!r} is declared twice, with different fields")
    _PATTERNS[type_] = dict(fields)


def shape_of(component: str | Mapping, prop: str) -> Check:
    """The declared shape of ``component.prop`` (a dict id by its ``type``); ``KeyError`` when undeclared."""
    name = component.get("type") if isinstance(component, Mapping) else component
    check = _SHAPES.get((str(name), prop)) or BY_PROPERTY.get(prop)
    if check is None:
        raise KeyError(f"{name}.{prop}: no declared shape; declare it with dashboards.inputs.declare")
    return check


def pattern_fields(type_: str) -> dict[str, Check]:
    if type_ not in _PATTERNS:
        raise KeyError(f"dict ids of type {type_!r}: no declared fields; use dashboards.inputs.declare_pattern")
    return _PATTERNS[type_]


# --------------------------------------------------------------------------------------
# checking a callback's arguments

@dataclass(frozen=True)
class _Arg:
    where: str
    check: Check
    many: bool             # an ALL pattern: a list of values, one per matching component


@dataclass(frozen=True)
class Plan:
    """How one callback's arguments are checked: each input and state in order, and the id that triggered it."""

    args: tuple[_Arg, ...]
    ids: frozenset[str]                                           # plain ids of its inputs
    patterns: Mapping[str, Mapping[str, Check]] = field(default_factory=dict)    # dict-id type -> fields

    def check_args(self, values: Sequence[Any]) -> list[Any]:
        if len(values) != len(self.args):
            raise BadInput(Phrase(N_("the callback")), Phrase(N_("{n} inputs, expected {expected}"), n=len(values),
                                                              expected=len(self.args)))
        out = []
        for arg, value in zip(self.args, values):
            if arg.many:
                if not isinstance(value, list) or len(value) > LIST_MAX:
                    raise BadInput(arg.where, Phrase(N_("expected a list of values, got {what}"), what=_kind(value)))
                out.append([arg.check(v, f"{arg.where}[{i}]") for i, v in enumerate(value)])
            else:
                out.append(arg.check(value, arg.where))
        self.check_trigger()
        return out

    def check_trigger(self) -> None:
        """The id that triggered the call (``ctx.triggered_id``, which callbacks read) is one of this callback's
        inputs, and a dict id's fields have their declared shapes."""
        import dash
        from dash.exceptions import MissingCallbackContextException

        try:
            trigger = dash.ctx.triggered_id
        except MissingCallbackContextException:  # called outside a callback (a test calling it directly)
            return
        except (ValueError, TypeError, AttributeError, KeyError):   # changedPropIds that are no property ids
            raise BadInput(_TRIGGER, Phrase(N_("not a component property"))) from None
        if trigger is None:
            return
        if isinstance(trigger, str):
            if trigger not in self.ids:
                raise BadInput(_TRIGGER, Phrase(N_("names no input of this callback")))
            return
        if not isinstance(trigger, dict) or trigger.get("type") not in self.patterns:
            raise BadInput(_TRIGGER, Phrase(N_("names no input of this callback")))
        fields = self.patterns[trigger["type"]]
        if set(trigger) != {"type", *fields}:
            raise BadInput(Phrase(N_("{kind} id"), kind=trigger["type"]),
                           Phrase(N_("expected the keys type, {keys}"), keys=", ".join(fields)))
        for key, check in fields.items():
            check(trigger[key], f"{trigger['type']} id {key}")


def plan(deps: Sequence[Any]) -> Plan:
    """The checks for a callback's ``Input``/``State`` dependencies (in declaration order); ``KeyError`` naming
    the first undeclared one."""
    args, ids, patterns = [], set(), {}
    for dep in deps:
        cid, prop = dep.component_id, dep.component_property
        if isinstance(cid, dict):
            type_ = str(cid.get("type"))
            patterns[type_] = pattern_fields(type_)
            many = any(_is_all(v) for v in cid.values())
            args.append(_Arg(f"{type_}.{prop}", shape_of(cid, prop), many))
        else:
            ids.add(cid)
            args.append(_Arg(f"{cid}.{prop}", shape_of(cid, prop), False))
    return Plan(tuple(args), frozenset(ids), patterns)


def _is_all(v: Any) -> bool:
    from dash import ALL, ALLSMALLER

    return v is ALL or v is ALLSMALLER


def checked(fn: Callable, deps: Sequence[Any], *, leading: int = 0) -> Callable:
    """``fn`` with its arguments checked against the declared shapes of ``deps`` (its inputs and states, in
    order) before it runs; ``leading`` arguments (a background callback's ``set_progress``) pass as they are.

    The wrapper carries ``check_args(values)``, so that a background callback's input can be refused
    before a job process is started (``dashboards.callbacks``).
    """
    p = plan(deps)

    @functools.wraps(fn)
    def run(*args, **kwargs):
        lead, values = args[:leading], args[leading:]
        return fn(*lead, *p.check_args(values), **kwargs)

    run.check_args = p.check_args          # type: ignore[attr-defined]
    run.input_plan = p                     # type: ignore[attr-defined]
    return run


# --------------------------------------------------------------------------------------
# a page's URL query

def clean_query(query: Mapping[str, Any]) -> dict[str, str]:
    """A page's query parameters as one-line text: a repeated parameter keeps its first value; one that is not
    text, too long or holds control characters is left out (the page then falls back to its default)."""
    out: dict[str, str] = {}
    for key, value in query.items():
        if isinstance(value, list):
            value = value[0] if value else None
        if not isinstance(value, str):
            continue
        try:
            out[key] = url_part(value, key)
        except BadInput:
            continue
    return out


def query_checked(layout: Callable) -> Callable:
    """A page layout called with :func:`clean_query`'s parameters."""
    if getattr(layout, "query_checked", False):
        return layout

    @functools.wraps(layout)
    def run(**query):
        return layout(**clean_query(query))

    run.query_checked = True               # type: ignore[attr-defined]
    return run
