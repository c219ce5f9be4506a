"""Exception roots shared by every sitetwin package.

Each package derives its own root from ``SitetwinError`` (``bim.BimError``, ...), so the
CLI and the dashboard can turn any expected failure into one clear line.
"""


class SitetwinError(Exception):
    """An expected failure: bad input, a refused operation. The message is for the user."""


class StoreError(SitetwinError):
    """The store could not be opened, migrated or written."""


class SitetwinWarning(UserWarning):
    """Something was accepted but deserves the user's attention (shown, not raised)."""
