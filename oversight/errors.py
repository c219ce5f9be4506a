"""The errors of ``oversight``: one root, and a child per kind of refusal."""

from sitetwin.data.errors import SitetwinError


class OversightError(SitetwinError):
    """Bad input to, or a refused operation of, the regulators' tools."""


class FindingError(OversightError):
    """A finding does not exist, or a change to it is not allowed (wrong state, bad value)."""


class BcfError(OversightError):
    """A BCF file that cannot be read or written safely (bad zip, malformed XML, too large)."""


class AccessDenied(OversightError):
    """The caller's role or scope does not allow this read or action."""


class AuthError(OversightError):
    """Login, session or token failed (wrong password, expired, revoked, throttled)."""


class SchemeError(OversightError):
    """An evaluation scheme that does not validate (names the key and what it expected)."""
