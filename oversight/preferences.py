"""A person's own settings: the language the workbench shows them (``account_settings``).

>>> set_account_language(store, scope, "dora", "zh-CN")     # doctest: +SKIP
>>> account_language(store, "dora")                         # doctest: +SKIP
'zh-CN'

Everyone may set their own; an admin (or a system scope, the demo) anyone's. The workbench reads
the setting when it resolves a session (``dashboards.access``): it wins over the browser's
``Accept-Language``, and a language picked with the switcher (``?lang=``) wins over both.
"""

from __future__ import annotations

from sitetwin.data.clock import utcnow
from sitetwin.data.i18n import normalize_language
from sitetwin.data.store import Store, atomic
from sitetwin.oversight import audit
from sitetwin.oversight.scope import Scope


def set_account_language(store: Store, scope: Scope, username: str, language: str) -> None:
    """Set the workbench language of account ``username`` (``zh-CN`` or ``en``; ``zh_CN``, ``zh-Hans``
    are read as ``zh-CN``).

    Raises ``data.i18n.LanguageError`` for an unknown language, ``OversightError`` for an unknown
    account and ``AccessDenied`` when ``scope`` is neither that account nor an admin or system scope.
    """
    from sitetwin.oversight.accounts import get_account

    if scope.actor != username or scope.via == "system":
        scope.require("manage_accounts")
    lang = normalize_language(language, field=f"account {username}: language")
    get_account(store, username)
    with atomic(store):
        store.execute("INSERT INTO account_settings (username, language, updated_at, updated_by) VALUES (?, ?, ?, ?) "
                      "ON CONFLICT (username) DO UPDATE SET language = excluded.language, "
                      "updated_at = excluded.updated_at, updated_by = excluded.updated_by",
                      [username, lang, utcnow(), scope.actor])
        audit.record(store, scope, "write", "account", username, detail={"op": "language", "language": lang})


def account_language(store: Store, username: str) -> str | None:
    """The language account ``username`` chose (``zh-CN`` / ``en``), or None when it chose none
    (or there is no such account)."""
    value = store.scalar("SELECT language FROM account_settings WHERE username = ?", [username])
    return value or None
