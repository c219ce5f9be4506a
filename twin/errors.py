"""Errors raised while importing, registering and analysing point-cloud surveys."""

from sitetwin.data.errors import SitetwinError


class SurveyError(SitetwinError):
    """A survey could not be imported, registered or analysed; the message names the input."""


class PointCloudError(SurveyError):
    """A point-cloud file is unreadable, truncated, empty, or holds NaN/inf coordinates."""


class UnitsError(SurveyError):
    """The cloud's extent does not fit the model's: most often a cloud in millimetres."""


class RegistrationError(SurveyError):
    """The survey could not be placed on the model (failed, ambiguous, or no overlap)."""


class ControlPointError(RegistrationError):
    """Control points are too few, collinear, or inconsistent."""
