"""vision's errors: one root, :class:`VisionError`, and a child per kind of bad input."""

from sitetwin.data.errors import SitetwinError


class VisionError(SitetwinError):
    """Root of every expected failure in vision (bad dataset, weights, source, rule config)."""


class DatasetError(VisionError):
    """A dataset is empty, unreadable, or has labels that cannot be used."""


class WeightsError(VisionError):
    """Weights cannot be read, or their classes do not fit what the caller needs."""


class SourceError(VisionError):
    """An image, video, stream or panorama cannot be read."""


class StreamDropped(SourceError):
    """A stream stopped and did not come back within the reconnect attempts; what was read is kept."""
