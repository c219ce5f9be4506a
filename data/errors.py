"""Exception roots shared by every sitetwin package.

Each package derives its own root from ``SitetwinError`` (``bim.BimError``, ...), so the
CLI and the dashboard can turn any expected failure into one clear line.

The message is for a person, so it is a catalog message: an English template marked with
``N_`` and its fields, rendered in the reader's language when the error is shown::

    raise SurveyError(N_("{path}: {n:,} points, none inside the model's box"), path=p, n=len(pts))

``str(exc)`` reads in the current language (:mod:`sitetwin.data.i18n`: the CLI's ``--lang``, a
web request's language); :meth:`SitetwinError.text` reads it in a given one (``text("en")`` for
anything stored, which stays language-neutral). A message given without fields is looked up too;
a message not in any catalog (a foreign library's text passed on) reads as it was given.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# The catalogs' messages in a language (None: the current one): ``data.i18n`` registers its
# ``message_catalog`` when imported, as every module that writes an ``N_`` template imports it.
_lookup: Callable[[str | None], dict[Any, Any]] | None = None


def use_catalogs(lookup: Callable[[str | None], dict[Any, Any]]) -> None:
    """Where messages are looked up (``data.i18n`` calls this; errors does not import it: i18n's
    own errors derive from here)."""
    global _lookup
    _lookup = lookup


def render(template: str, fields: dict[str, Any], lang: str | None = None) -> str:
    """``template`` in ``lang`` (default: the current language) with ``fields`` filled in (a field
    that is a :class:`Phrase` is rendered in the same language first). A translation whose
    placeholders do not fit the fields falls back to the English template."""
    text = _lookup(lang).get(template, template) if template and _lookup is not None else template
    if not fields:
        return text
    fields = {k: v.text(lang) if isinstance(v, (_Message, Note)) else v for k, v in fields.items()}
    try:
        return text.format(**fields)
    except (KeyError, IndexError, ValueError):
        try:
            return template.format(**fields)
        except (KeyError, IndexError, ValueError):
            return template


class _Message:
    """A message made of a catalog template and its fields (errors and warnings alike)."""

    template: str
    fields: dict[str, Any]

    def _keep(self, message: object, fields: dict[str, Any]) -> None:
        self.template = message if isinstance(message, str) else str(message)
        self.fields = dict(fields)

    def text(self, lang: str | None = None) -> str:
        """The message in ``lang`` (``"en"`` for a stored record; default: the current language)."""
        return render(self.template, self.fields, lang)

    def __str__(self) -> str:
        return self.text()

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled with its fields (a Ray worker's error reaches the driver whole), whatever the
        # subclass's own __init__ takes.
        return _rebuild, (type(self), tuple(getattr(self, "args", ())), self.__dict__)


def _rebuild(cls: Any, args: tuple[Any, ...], state: dict[str, Any]) -> Any:
    obj = cls.__new__(cls)
    if isinstance(obj, BaseException):
        BaseException.__init__(obj, *args)
    obj.__dict__.update(state)
    return obj


class Phrase(_Message):
    """A piece of a message, itself a template and fields, rendered in the language of the message
    it is part of: ``raise _bad(path, row, "due", Phrase(N_("before the start ({start})"), start=s))``."""

    def __init__(self, message: str, /, **fields: Any) -> None:
        self._keep(message, fields)

    def __repr__(self) -> str:
        return f"Phrase({self.template!r}, **{self.fields!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Phrase) and (self.template, self.fields) == (other.template, other.fields)

    def __hash__(self) -> int:
        return hash(self.template)


class Note(str):
    """A line of a report for a person (a warning of a load, a survey, an export) that is also a
    plain ``str`` holding its English text: what is compared, stored and written to ``--json``
    (``json.dumps``, DuckDB and ``==`` see the English), while ``str(note)``, ``print`` and
    f-strings read it in the current language::

        report.warnings.append(Note(N_("{file}: {n} element(s) failed to tessellate"), file=name, n=3))
    """

    template: str
    fields: dict[str, Any]

    def __new__(cls, template: str, /, **fields: Any) -> Note:
        obj = super().__new__(cls, render(template, fields, "en"))
        obj.template, obj.fields = template, dict(fields)
        return obj

    @classmethod
    def of(cls, message: _Message | Note) -> Note:
        """The same message (an error's, a warning's, a Phrase) as a report's line."""
        return cls(message.template, **message.fields)

    def text(self, lang: str | None = None) -> str:
        """The line in ``lang`` (default: the current language)."""
        return render(self.template, self.fields, lang)

    def __str__(self) -> str:
        return self.text()

    def __format__(self, spec: str) -> str:
        return format(self.text(), spec)

    def __reduce__(self) -> tuple[Any, ...]:
        return _note, (self.template, self.fields)


def _note(template: str, fields: dict[str, Any]) -> Note:
    return Note(template, **fields)


class SitetwinError(_Message, Exception):
    """An expected failure: bad input, a refused operation. The message is for the user: an
    ``N_``-marked template and its fields (see the module's docstring)."""

    def __init__(self, message: object = "", /, *args: object, **fields: Any) -> None:
        super().__init__(message, *args)
        self._keep(message, fields)


class StoreError(SitetwinError):
    """The store could not be opened, migrated or written."""


class SitetwinWarning(_Message, UserWarning):
    """Something was accepted but deserves the user's attention (shown, not raised); a template
    and its fields like :class:`SitetwinError`."""

    def __init__(self, message: object = "", /, *args: object, **fields: Any) -> None:
        super().__init__(message, *args)
        self._keep(message, fields)


def message_text(exc: object, lang: str | None = "en") -> str:
    """An exception's message in ``lang`` (English by default: for what is stored or logged);
    any other exception as ``str(exc)``."""
    if isinstance(exc, Note):
        return exc.text(lang)
    return exc.text(lang) if isinstance(exc, _Message) else str(exc)
