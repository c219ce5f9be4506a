"""Errors raised while importing, posing, mapping and measuring panoramas."""

from sitetwin.data.errors import Phrase, SitetwinError, SitetwinWarning


class PanoramaError(SitetwinError):
    """A panorama could not be imported, posed, mapped or measured."""


class PanoramaImageError(PanoramaError):
    """The image file is not a usable equirectangular panorama: not 2:1, corrupt, truncated."""


class PoseError(PanoramaError):
    """A pose could not be read or solved: a bad pose file, bad or degenerate control points."""


class PoseWarning(SitetwinWarning):
    """A pose was accepted but looks wrong, e.g. the camera stands outside the model's extent."""


def cause(exc: BaseException) -> Phrase | str:
    """What went wrong in ``exc``, as a piece of another message: our own errors keep their template
    and fields (read in the message's language), anything else is its text as it was given."""
    return Phrase(exc.template, **exc.fields) if isinstance(exc, SitetwinError) else str(exc)
