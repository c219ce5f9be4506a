"""Errors raised while reading design models."""

from sitetwin.data.errors import SitetwinError


class BimError(SitetwinError):
    """A design model (IFC) or schedule could not be read or loaded."""


class IfcFileError(BimError):
    """The file is not a readable IFC file: wrong format, truncated, unsupported schema."""


class NoElementsError(BimError):
    """The model holds no building element with geometry to load."""
