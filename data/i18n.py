"""The language a person reads: message catalogs, the current language, locale formatting.

Every user-facing string goes through a package's translator::

    from sitetwin.data.i18n import Translator, N_
    _ = Translator("dashboards")
    _("Open findings")                      # str in the current language
    _("{n} sites in scope", n=12)           # formatted after translation
    _.plural("{n} finding", "{n} findings", n)
    LABELS = {"open": N_("Open")}            # marked for the catalog, translated where shown: _(LABELS[k])

Catalogs are gettext ``.po`` files, one per package, at ``<package>/locale/<lang>.po``
(``dashboards/locale/zh_CN.po``), read with Babel when first needed (no compile step, nothing
generated at install). English is the source language: a message missing from a catalog reads
in English. ``.ci/catalogs`` extracts the messages, merges them into the catalogs and fails on
missing or stale ones; the terms follow ``data/locale/glossary.yaml``.

The current language is a context variable: a web request sets it for itself
(:func:`use_language`), the CLI once for the process (:func:`set_language`, from ``--lang`` or
``SITETWIN_LANG``). Stored values and ``--json`` output never depend on it.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import functools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sitetwin.data import errors
from sitetwin.data.errors import SitetwinError

LANGUAGES: tuple[str, ...] = ("zh-CN", "en")
DEFAULT_LANGUAGE = "en"
SOURCE_LANGUAGE = "en"
LANGUAGE_NAMES = {"zh-CN": "中文", "en": "English"}
ENV_VAR = "SITETWIN_LANG"

_ALIASES = {"zh": "zh-CN", "zh-cn": "zh-CN", "zh_cn": "zh-CN", "zh-hans": "zh-CN", "zh-hans-cn": "zh-CN",
            "zh_hans_cn": "zh-CN", "en": "en", "en-us": "en", "en_us": "en", "en-gb": "en", "en_gb": "en"}
_PACKAGES_ROOT = Path(__file__).resolve().parent.parent


class LanguageError(SitetwinError, ValueError):
    """An unknown language code."""


def normalize_language(code: str, *, field: str = "language") -> str:
    """``code`` as one of :data:`LANGUAGES` (``zh_CN``, ``zh-cn``, ``zh-Hans`` are ``zh-CN``);
    :class:`LanguageError` naming ``field`` otherwise."""
    key = str(code).strip().lower()
    if key in _ALIASES:
        return _ALIASES[key]
    raise LanguageError(N_("{field}: unknown language {code!r} (languages: {languages})"),
                        field=field, code=str(code)[:40], languages=", ".join(LANGUAGES))


def _env_default() -> str:
    raw = os.environ.get(ENV_VAR)
    if not raw:
        return DEFAULT_LANGUAGE
    try:
        return normalize_language(raw, field=ENV_VAR)
    except LanguageError:
        return DEFAULT_LANGUAGE        # the CLI checks SITETWIN_LANG itself and says so


_current: contextvars.ContextVar[str | None] = contextvars.ContextVar("sitetwin_language", default=None)
_process_language: str | None = None


def current_language() -> str:
    """The language of this request or process: :func:`use_language`, else :func:`set_language`,
    else ``SITETWIN_LANG``, else English."""
    lang = _current.get()
    if lang is not None:
        return lang
    return _process_language or _env_default()


def set_language(code: str | None) -> str:
    """Set the process's language (the CLI's ``--lang``); ``None`` goes back to the default."""
    global _process_language
    _process_language = None if code is None else normalize_language(code)
    return current_language()


@contextlib.contextmanager
def use_language(code: str) -> Iterator[str]:
    """Read everything inside in ``code`` (this context only: one web request, one report)."""
    token = _current.set(normalize_language(code))
    try:
        yield _current.get() or DEFAULT_LANGUAGE
    finally:
        _current.reset(token)


def activate(code: str) -> contextvars.Token:
    """Set this context's language until :func:`deactivate` (a web request's before/teardown hooks)."""
    return _current.set(normalize_language(code))


def deactivate(token: contextvars.Token) -> None:
    _current.reset(token)


def negotiate(accept_language: str | None, default: str = DEFAULT_LANGUAGE) -> str:
    """The best of :data:`LANGUAGES` for a browser's ``Accept-Language`` header (quality values
    honoured; ``zh``, ``zh-TW``, ``zh-Hans`` all read Chinese; anything unknown gives ``default``)."""
    if not accept_language:
        return default
    offers: list[tuple[float, int, str]] = []
    for i, part in enumerate(str(accept_language)[:1000].split(",")):
        tag, _sep, params = part.strip().partition(";")
        q = 1.0
        for p in params.split(";"):
            k, _eq, v = p.strip().partition("=")
            if k.strip() == "q":
                try:
                    q = float(v)
                except ValueError:
                    q = 0.0
        primary = tag.strip().lower().replace("_", "-")
        lang = "zh-CN" if primary.split("-")[0] == "zh" else "en" if primary.split("-")[0] == "en" else None
        if lang is not None and q > 0:
            offers.append((-q, i, lang))
    return min(offers)[2] if offers else default


def babel_locale(lang: str | None = None) -> str:
    """The Babel locale identifier of a language (``zh-CN`` -> ``zh_Hans_CN``)."""
    return {"zh-CN": "zh_Hans_CN", "en": "en"}[lang or current_language()]


# ---- catalogs ----------------------------------------------------------------------------------


def catalog_path(domain: str, lang: str) -> Path:
    """Where ``domain``'s catalog for ``lang`` lives: ``dashboards`` -> ``dashboards/locale/zh_CN.po``,
    ``dashboards.pages`` -> ``dashboards/pages/locale/zh_CN.po``."""
    return _PACKAGES_ROOT.joinpath(*domain.split(".")) / "locale" / f"{lang.replace('-', '_')}.po"


@functools.lru_cache(maxsize=64)
def _catalog(domain: str, lang: str) -> dict[Any, Any]:
    """msgid (or (singular, plural)) -> translation(s); empty for the source language or no file.
    Fuzzy entries are not used (they await a translator)."""
    if lang == SOURCE_LANGUAGE:
        return {}
    path = catalog_path(domain, lang)
    if not path.is_file():
        return {}
    from babel.messages.pofile import read_po

    with path.open("rb") as fh:
        cat = read_po(fh, locale=babel_locale(lang))
    out: dict[Any, Any] = {}
    for msg in cat:
        if not msg.id or msg.fuzzy:
            continue
        if isinstance(msg.id, tuple):
            if isinstance(msg.string, tuple) and all(msg.string):
                out[msg.id] = tuple(msg.string)
        elif msg.string:
            out[msg.id] = msg.string
    return out


@functools.lru_cache(maxsize=8)
def _all_catalogs(lang: str) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for path in sorted(_PACKAGES_ROOT.glob("*/locale/*.po")) + sorted(_PACKAGES_ROOT.glob("*/*/locale/*.po")):
        if path.stem != lang.replace("-", "_"):
            continue
        domain = ".".join(path.parent.parent.relative_to(_PACKAGES_ROOT).parts)
        for key, text in _catalog(domain, lang).items():
            out.setdefault(key, text)
    return out


def message_catalog(lang: str | None = None) -> dict[Any, Any]:
    """Every package's messages in ``lang`` (default: the current language), for the messages of
    errors and warnings (:mod:`sitetwin.data.errors`): an error raised by one package's code may be
    of another package's class, so its template is looked up in all catalogs."""
    lang = normalize_language(lang) if lang else current_language()
    return {} if lang == SOURCE_LANGUAGE else _all_catalogs(lang)


errors.use_catalogs(message_catalog)


def reload_catalogs() -> None:
    """Forget the catalogs read so far (after ``.ci/catalogs`` rewrote them, in tests)."""
    _catalog.cache_clear()
    _all_catalogs.cache_clear()


def N_(message: str) -> str:  # noqa: N802 (gettext's name)
    """Mark ``message`` for the catalog without translating it now (module-level constants)."""
    return message


class Translator:
    """A package's messages: ``_ = Translator("dashboards")``; ``_("text", **fields)``."""

    def __init__(self, domain: str) -> None:
        self.domain = domain

    def __call__(self, message: str, /, **fields: Any) -> str:
        text = _catalog(self.domain, current_language()).get(message, message)
        return text.format(**fields) if fields else text

    def plural(self, singular: str, plural: str, n: int, /, **fields: Any) -> str:
        """``singular`` or ``plural`` by ``n`` (Chinese has one form); ``{n}`` is filled in."""
        forms = _catalog(self.domain, current_language()).get((singular, plural))
        if forms:
            text = forms[0]
        else:
            text = singular if n == 1 else plural
        return text.format(n=n, **fields)

    def lang(self, message: str, lang: str, /, **fields: Any) -> str:
        """``message`` in ``lang`` whatever the current language (a report written for someone else)."""
        with use_language(lang):
            return self(message, **fields)


# ---- formatting --------------------------------------------------------------------------------


def format_number(value: float | int | None, digits: int | None = None, *, missing: str = "–") -> str:
    """A number as the current locale writes it (grouping, decimal sign); ``digits`` fixed decimals."""
    if value is None:
        return missing
    try:
        if value != value:   # NaN
            return missing
    except TypeError:
        return str(value)
    from babel.numbers import format_decimal

    if digits is None:
        return format_decimal(value, locale=babel_locale())
    fmt = "#,##0" + ("." + "0" * digits if digits > 0 else "")
    return format_decimal(value, format=fmt, locale=babel_locale())


def format_percent(fraction: float | None, digits: int = 0, *, missing: str = "–") -> str:
    """A fraction (0.25) as a percentage in the current locale."""
    if fraction is None or fraction != fraction:
        return missing
    from babel.numbers import format_percent as _fp

    fmt = "#,##0" + ("." + "0" * digits if digits > 0 else "") + "%"
    return _fp(fraction, format=fmt, locale=babel_locale())


def to_site_time(ts: dt.datetime, tz: str | None) -> dt.datetime:
    """A naive-UTC stored time stamp in the site's time zone (IANA name; ``None`` keeps UTC)."""
    from zoneinfo import ZoneInfo

    aware = ts.replace(tzinfo=dt.UTC) if ts.tzinfo is None else ts
    return aware.astimezone(ZoneInfo(tz)) if tz else aware


def format_date(value: dt.date | dt.datetime | str | None, *, tz: str | None = None, missing: str = "–") -> str:
    """A date in the current locale (``2026年12月7日`` / ``7 Dec 2026``); a time stamp is first put in
    the site's time zone ``tz``."""
    if value is None or value == "":
        return missing
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value) if "T" in value or " " in value else dt.date.fromisoformat(value)
    if isinstance(value, dt.datetime):
        value = to_site_time(value, tz).date()
    from babel.dates import format_date as _fd

    return _fd(value, format="medium", locale=babel_locale())


def format_datetime(value: dt.datetime | str | None, *, tz: str | None = None, missing: str = "–") -> str:
    """A naive-UTC time stamp in the site's time zone ``tz``, as the current locale writes it (to the minute)."""
    if value is None or value == "":
        return missing
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    local = to_site_time(value, tz)
    from babel.dates import format_datetime as _fdt

    pattern = "yyyy-MM-dd HH:mm" if current_language() == "zh-CN" else "d MMM yyyy, HH:mm"
    return _fdt(local, format=pattern, locale=babel_locale())
