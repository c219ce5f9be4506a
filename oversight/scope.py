"""Who is asking, and which sites and actions that allows: the layer every oversight read goes through.

A ``Scope`` is resolved once per request (a CLI call, a dashboard session) from an
account, session or API token (``oversight.accounts``). Library functions take it as
their ``scope`` argument and filter every query with :meth:`Scope.where`, so a caller
never sees rows of a site outside its scope, whichever function it calls.

Roles and what they see:

============================  =============================================  =======================================
role                          sites                                          may also
============================  =============================================  =======================================
``admin``                     all                                            everything, manage accounts, read audit
``city_regulator``            the account's city (all sites if none is set)  raise, verify-close, reopen, tier, import
``district_regulator``        the account's district                         as city regulator
``contractor``                the account's own sites                        comment, submit rectifications, export
``enterprise``                its enterprise's sites, in any district/city   comment, submit rectifications, export
``viewer``                    own sites, and its district/city if set        read only
============================  =============================================  =======================================

An ``enterprise`` account (the middle tier of Jilin's 主管部门、企业、项目) sees the sites whose
construction enterprise is its enterprise (``sites.enterprise_code``), wherever they are. The
condition reads ``sites`` live; ``sites`` on the scope holds the same codes as resolved when the
scope was made (``oversight.accounts`` does it), for :meth:`Scope.admits_site`, which has no store.

``Scope.system(name)`` is for trusted code (hazard rules, sensors, the demo): all sites,
every action, recorded under its name. It never comes from a token.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sitetwin.data.errors import Phrase
from sitetwin.data.i18n import N_
from sitetwin.data.store import placeholders
from sitetwin.oversight.errors import AccessDenied

ROLES = ("admin", "city_regulator", "district_regulator", "contractor", "enterprise", "viewer")
REGULATORS = frozenset({"admin", "city_regulator", "district_regulator"})

# action -> roles allowed (the system scope may do everything)
PERMISSIONS: dict[str, frozenset[str]] = {
    "read": frozenset(ROLES),
    "raise": REGULATORS,
    "comment": REGULATORS | {"contractor", "enterprise"},
    "submit_rectification": frozenset({"admin", "contractor", "enterprise"}),
    "verify_close": REGULATORS,
    "reopen": REGULATORS,
    "escalate": REGULATORS,
    "set_tier": REGULATORS,
    "record_risk": REGULATORS,
    "evaluate": REGULATORS,
    "edit_site": REGULATORS,
    "export": REGULATORS | {"contractor", "enterprise"},
    "import": REGULATORS,
    "manage_accounts": frozenset({"admin"}),
    "read_audit": frozenset({"admin"}),
}

# action -> its words in a refusal ("may not verify close"), translated where shown
ACTION_NAMES: dict[str, str] = {
    "read": N_("read"), "raise": N_("raise"), "comment": N_("comment"),
    "submit_rectification": N_("submit rectification"), "verify_close": N_("verify close"), "reopen": N_("reopen"),
    "escalate": N_("escalate"), "set_tier": N_("set tier"), "record_risk": N_("record risk"),
    "evaluate": N_("evaluate"), "edit_site": N_("edit site"), "export": N_("export"), "import": N_("import"),
    "manage_accounts": N_("manage accounts"), "read_audit": N_("read audit"),
}


def action_words(action: str) -> Phrase:
    """``action`` as the words of a refusal (``verify_close`` -> "verify close"), in the reader's language."""
    return Phrase(ACTION_NAMES.get(action, action.replace("_", " ")))


@dataclass(frozen=True)
class Scope:
    """The caller: who (``actor``), with which ``role``, over which sites.

    Site rules (any that match admit a site): ``all_sites``; ``district`` (with ``city``
    when set); ``city`` alone; ``enterprise`` (sites built by it); the explicit ``sites``.
    """

    actor: str
    role: str
    all_sites: bool = False
    city: str | None = None
    district: str | None = None
    sites: frozenset[str] = field(default_factory=frozenset)
    via: str = "local"            # session | token | local | system
    enterprise: str | None = None  # role enterprise: the enterprise code whose sites it sees

    @classmethod
    def system(cls, name: str = "system") -> Scope:
        return cls(actor=name, role="system", all_sites=True, via="system")

    @classmethod
    def for_account(cls, username: str, role: str, *, city: str | None = None, district: str | None = None,
                    sites: frozenset[str] | set[str] | tuple[str, ...] = (), via: str = "session",
                    enterprise: str | None = None) -> Scope:
        """The scope an account's role gives it (see the module docstring). For ``enterprise``,
        ``sites`` are its enterprise's sites as resolved now (``data.queries.enterprise_sites``)."""
        if role not in ROLES:
            raise AccessDenied(N_("account {username!r}: unknown role {role!r} (roles: {roles})"),
                               username=username, role=role, roles=", ".join(ROLES))
        sites = frozenset(sites)
        if role == "admin":
            return cls(username, role, all_sites=True, via=via)
        if role == "city_regulator":
            return cls(username, role, all_sites=city is None, city=city, via=via)
        if role == "district_regulator":
            if not district:
                raise AccessDenied(N_("account {username!r}: a district regulator needs a district"),
                                   username=username)
            return cls(username, role, city=city, district=district, via=via)
        if role == "contractor":
            return cls(username, role, sites=sites, via=via)
        if role == "enterprise":
            if not enterprise:
                raise AccessDenied(N_("account {username!r}: an enterprise account needs an enterprise"),
                                   username=username)
            return cls(username, role, sites=sites, enterprise=enterprise, via=via)
        return cls(username, role, city=city, district=district, sites=sites, via=via)   # viewer

    # -- actions ---------------------------------------------------------------------------
    def can(self, action: str) -> bool:
        if action not in PERMISSIONS:
            raise ValueError(f"unknown action {action!r}")
        return self.role == "system" or self.role in PERMISSIONS[action]

    def require(self, action: str, what: str | Phrase = "") -> None:
        """Raise ``AccessDenied`` unless this role may do ``action`` (``what``: the words, or a
        :class:`~sitetwin.data.errors.Phrase`, naming what was asked)."""
        if not self.can(action):
            allowed = ", ".join(sorted(PERMISSIONS[action]))
            if what:
                raise AccessDenied(N_("{actor} ({role}) may not {action} ({what}); allowed roles: {allowed}"),
                                   actor=self.actor, role=self.role, action=action_words(action), what=what,
                                   allowed=allowed)
            raise AccessDenied(N_("{actor} ({role}) may not {action}; allowed roles: {allowed}"),
                               actor=self.actor, role=self.role, action=action_words(action), allowed=allowed)

    # -- sites -----------------------------------------------------------------------------
    def where(self, column: str = "site_code") -> tuple[str, list[Any]]:
        """An SQL condition admitting only this scope's sites, and its parameters.

        ``column`` is a trusted column expression written by sitetwin code (e.g.
        ``"f.site_code"``), never user input.
        """
        if self.all_sites:
            return "TRUE", []
        conditions: list[str] = []
        params: list[Any] = []
        if self.district:
            conditions.append(f"{column} IN (SELECT site_code FROM sites WHERE district = ? "
                              f"AND (? IS NULL OR city = ?))")
            params += [self.district, self.city, self.city]
        elif self.city:
            conditions.append(f"{column} IN (SELECT site_code FROM sites WHERE city = ?)")
            params.append(self.city)
        if self.enterprise:
            conditions.append(f"{column} IN (SELECT site_code FROM sites WHERE enterprise_code = ?)")
            params.append(self.enterprise)
            return "(" + " OR ".join(conditions) + ")", params     # live: not the snapshot in sites
        if self.sites:
            conditions.append(f"{column} IN ({placeholders(self.sites)})")
            params += sorted(self.sites)
        if not conditions:
            return "FALSE", []
        return "(" + " OR ".join(conditions) + ")", params

    def admits_site(self, site_code: str, district: str | None, city: str | None) -> bool:
        """Whether a site with these attributes is in scope (for sites not yet in the store, e.g. a package's)."""
        if self.all_sites or site_code in self.sites:
            return True
        if self.district:
            return district == self.district and (self.city is None or city == self.city)
        return bool(self.city) and city == self.city

    def site_codes(self, store) -> list[str]:
        """The codes of the sites this scope admits, sorted."""
        cond, params = self.where("site_code")
        return [r["site_code"] for r in store.rows(f"SELECT site_code FROM sites WHERE {cond} ORDER BY site_code",
                                                   params)]

    def admits(self, store, site_code: str) -> bool:
        cond, params = self.where("site_code")
        return bool(store.scalar(f"SELECT count(*) FROM sites WHERE site_code = ? AND {cond}", [site_code, *params]))

    def require_site(self, store, site_code: str, action: str = "read", what: str | Phrase = "") -> None:
        """Raise ``AccessDenied`` unless this scope may do ``action`` on ``site_code``.

        A site that does not exist is refused with the same words as one out of scope,
        so that a caller cannot probe which site codes exist.
        """
        self.require(action, what)
        if not self.admits(store, site_code):
            if what:
                raise AccessDenied(N_("{actor} ({role}): site {site_code!r} is not in your scope ({what})"),
                                   actor=self.actor, role=self.role, site_code=site_code, what=what)
            raise AccessDenied(N_("{actor} ({role}): site {site_code!r} is not in your scope"),
                               actor=self.actor, role=self.role, site_code=site_code)
