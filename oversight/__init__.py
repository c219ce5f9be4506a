"""Regulators' tools: findings followed to closure, BCF, the portfolio of sites, risk scores and
tiers, evaluation and insurance, the data catalogue, and access control.

>>> from oversight import raise_finding, Scope, list_findings
>>> fid = raise_finding(store, site_code="DEMO", category="safety", severity="high",
...                     title="Open slab edge without guard rail")          # doctest: +SKIP
>>> list_findings(store, Scope.system(), site_code="DEMO")                   # doctest: +SKIP
"""

from sitetwin.oversight.errors import AccessDenied, AuthError, BcfError, FindingError, OversightError, SchemeError
from sitetwin.oversight.findings import (
                                Finding,
                                FindingEvent,
                                comment,
                                escalate_overdue,
                                finding_history,
                                get_finding,
                                list_findings,
                                raise_finding,
                                reopen,
                                submit_rectification,
                                verify_close,
                                verify_history,
)
from sitetwin.oversight.scope import Scope

__all__ = ["AccessDenied", "AuthError", "BcfError", "Finding", "FindingError", "FindingEvent", "OversightError",
           "SchemeError", "Scope", "comment", "escalate_overdue", "finding_history", "get_finding", "list_findings",
           "raise_finding", "reopen", "submit_rectification", "verify_close", "verify_history"]
