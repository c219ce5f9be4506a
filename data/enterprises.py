"""Enterprises: the construction companies behind sites, the middle tier of supervision (企业).

An enterprise has an ASCII code (the platforms' unified id), its registered name, its unified
social credit code (统一社会信用代码, GB 32100-2015: 18 characters whose last is a check
character) and a kind. A site names its construction enterprise (``sites.enterprise_code``)
and may list subcontractors. Other packages read enterprises through ``data.queries``.

    >>> from sitetwin.data.enterprises import credit_check_char
    >>> credit_check_char("91350100M000100Y4")      # the standard's example, 91350100M000100Y43
    '3'
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable
from pathlib import Path

from sitetwin.data.clock import utcnow
from sitetwin.data.errors import StoreError
from sitetwin.data.i18n import N_
from sitetwin.data.store import Store, atomic
from sitetwin.data.text import TextError, clean_text

# GB 32100-2015: the characters of a credit code (no I, O, S, V, Z) and the weights 3^(i-1) mod 31
CREDIT_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
CREDIT_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
KINDS = ("general_contractor", "specialty_contractor", "labour_subcontractor", "developer", "supervisor")
_CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class EnterpriseError(StoreError):
    """An enterprise record or link that cannot be stored (the message names the field)."""


def credit_check_char(first17: str) -> str:
    """The check character (18th) of a credit code from its first 17 characters (GB 32100-2015, 4.1)."""
    total = 0
    for ch, w in zip(first17, CREDIT_WEIGHTS):
        total += CREDIT_CHARS.index(ch) * w
    return CREDIT_CHARS[(31 - total % 31) % 31]


def check_credit_code(code: object, field: str = "credit_code") -> str:
    """``code`` as a valid unified social credit code (upper case), or :class:`EnterpriseError` naming
    ``field`` and what is wrong: its length, a character outside the code's alphabet, the division
    code (characters 3-8 are digits) or the check character."""
    text = str(code or "").strip().upper()
    if len(text) != 18:
        raise EnterpriseError(N_("{field}: {code!r} has {n} characters; a unified social credit code has 18"),
                              field=field, code=text[:40], n=len(text))
    bad = [c for c in text if c not in CREDIT_CHARS]
    if bad:
        raise EnterpriseError(N_("{field}: {code!r} holds {char!r}, not a credit-code character "
                                 "(digits and A-Y without I, O, S, V, Z)"), field=field, code=text, char=bad[0])
    if not text[2:8].isdigit():
        raise EnterpriseError(N_("{field}: {code!r}: characters 3-8 must be the 6-digit administrative division code"),
                              field=field, code=text)
    expected = credit_check_char(text[:17])
    if text[17] != expected:
        raise EnterpriseError(N_("{field}: {code!r}: check character is {char!r}, expected {expected!r} "
                                 "(GB 32100-2015); the code is mistyped"), field=field, code=text, char=text[17],
                              expected=expected)
    return text


def check_enterprise_code(code: object, field: str = "enterprise_code") -> str:
    text = str(code or "").strip()
    if not _CODE_RE.fullmatch(text):
        raise EnterpriseError(N_("{field}: {code!r}: use 1-64 ASCII letters, digits, '-', '_' or '.'"), field=field,
                              code=text[:40])
    return text


def upsert_enterprise(store: Store, enterprise_code: str, *, name: str, credit_code: str,
                      kind: str = "general_contractor") -> dict:
    """Create an enterprise, or update the name, credit code and kind of an existing one; returns its row.

    Refuses a bad code, an empty name, a credit code that fails its check or that another
    enterprise holds, and an unknown kind (:data:`KINDS`).
    """
    code = check_enterprise_code(enterprise_code)
    try:
        name = clean_text(name, "name", max_len=200)
    except TextError as exc:
        raise EnterpriseError(N_("enterprise {code}: {reason}"), code=code, reason=exc) from None
    credit = check_credit_code(credit_code)
    if kind not in KINDS:
        raise EnterpriseError(N_("enterprise {code}: kind {kind!r}: use one of {kinds}"), code=code, kind=kind,
                              kinds=", ".join(KINDS))
    with atomic(store):
        holder = store.scalar("SELECT enterprise_code FROM enterprises WHERE credit_code = ?", [credit])
        if holder is not None and holder != code:
            raise EnterpriseError(N_("enterprise {code}: credit code {credit} belongs to enterprise {holder}"),
                                  code=code, credit=credit, holder=holder)
        if store.scalar("SELECT count(*) FROM enterprises WHERE enterprise_code = ?", [code]):
            store.execute("UPDATE enterprises SET name = ?, credit_code = ?, kind = ? WHERE enterprise_code = ?",
                          [name, credit, kind, code])
        else:
            store.execute("INSERT INTO enterprises (enterprise_code, name, credit_code, kind, created_at) "
                          "VALUES (?, ?, ?, ?, ?)", [code, name, credit, kind, utcnow()])
    row = store.one("SELECT * FROM enterprises WHERE enterprise_code = ?", [code])
    assert row is not None
    return row


def set_site_enterprise(store: Store, site_code: str, enterprise_code: str | None) -> None:
    """Name a site's construction enterprise (``None`` clears it). Both must exist."""
    with atomic(store):
        _require_site(store, site_code)
        if enterprise_code is not None:
            _require_enterprise(store, enterprise_code)
        store.execute("UPDATE sites SET enterprise_code = ? WHERE site_code = ?", [enterprise_code, site_code])


def add_subcontractor(store: Store, site_code: str, enterprise_code: str, *, scope_of_work: str | None = None) -> None:
    """List an enterprise as a subcontractor of a site (again: updates its scope of work)."""
    work = None if scope_of_work is None else clean_text(scope_of_work, "scope_of_work", required=False) or None
    with atomic(store):
        _require_site(store, site_code)
        _require_enterprise(store, enterprise_code)
        store.execute("INSERT OR REPLACE INTO site_subcontractors (site_code, enterprise_code, scope_of_work) "
                      "VALUES (?, ?, ?)", [site_code, enterprise_code, work])


def import_enterprises(store: Store, path: str | Path) -> dict:
    """Read enterprises (and optionally their sites) from CSV or JSON, in one transaction.

    Columns / keys: ``enterprise_code, name, credit_code, kind`` and optionally ``sites`` (site
    codes separated by ``;`` in CSV, a list in JSON) whose construction enterprise it becomes.
    A bad row raises one line naming the file, the row and the field; nothing is stored then.
    Returns ``{"enterprises": n, "sites": m}``.
    """
    path = Path(path)
    rows = _read_rows(path)
    checked = []
    for i, row in enumerate(rows, start=1):
        try:
            code = check_enterprise_code(row.get("enterprise_code"))
            credit = check_credit_code(row.get("credit_code"))
            kind = str(row.get("kind") or "general_contractor").strip()
            if kind not in KINDS:
                raise EnterpriseError(N_("kind: {kind!r}: use one of {kinds}"), kind=kind, kinds=", ".join(KINDS))
            name = clean_text(row.get("name"), "name", max_len=200)
        except (EnterpriseError, TextError) as exc:
            raise EnterpriseError(N_("{path}: row {row}: {reason}"), path=path, row=i, reason=exc) from None
        sites = row.get("sites") or []
        if isinstance(sites, str):
            sites = [s.strip() for s in sites.split(";") if s.strip()]
        checked.append((i, code, name, credit, kind, list(sites)))
    linked = 0
    with store.transaction():
        for i, code, name, credit, kind, sites in checked:
            try:
                upsert_enterprise(store, code, name=name, credit_code=credit, kind=kind)
                for s in sites:
                    set_site_enterprise(store, s, code)
                    linked += 1
            except EnterpriseError as exc:
                raise EnterpriseError(N_("{path}: row {row}: {reason}"), path=path, row=i, reason=exc) from None
    return {"enterprises": len(checked), "sites": linked}


def _read_rows(path: Path) -> list[dict]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise EnterpriseError(N_("{path}: cannot read ({reason})"), path=path,
                              reason=exc.strerror or str(exc)) from None
    except UnicodeDecodeError:
        raise EnterpriseError(N_("{path}: not UTF-8 text"), path=path) from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise EnterpriseError(N_("{path}: not JSON ({reason})"), path=path, reason=str(exc)) from None
        if isinstance(data, dict):
            data = data.get("enterprises")
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise EnterpriseError(N_("{path}: expected a list of enterprise objects (or {{\"enterprises\": [...]}})"),
                                  path=path)
        return data
    return list(csv.DictReader(text.splitlines()))


def _require_site(store: Store, site_code: str) -> None:
    if not store.scalar("SELECT count(*) FROM sites WHERE site_code = ?", [site_code]):
        raise EnterpriseError(N_("site_code: no site {site_code!r} in {store}"), site_code=site_code, store=store.label)


def _require_enterprise(store: Store, enterprise_code: str) -> None:
    if not store.scalar("SELECT count(*) FROM enterprises WHERE enterprise_code = ?", [enterprise_code]):
        raise EnterpriseError(N_("enterprise_code: no enterprise {enterprise_code!r} in {store}"),
                              enterprise_code=enterprise_code, store=store.label)


def link_sites(store: Store, enterprise_code: str, sites: Iterable[str]) -> int:
    """Make ``enterprise_code`` the construction enterprise of each of ``sites`` (one transaction)."""
    n = 0
    with atomic(store):
        for s in sites:
            set_site_enterprise(store, s, enterprise_code)
            n += 1
    return n
