"""Errors raised by the site-sensor package."""

from sitetwin.data.errors import SitetwinError


class SensorError(SitetwinError):
    """Site-sensor input or operation refused: a device, a batch, a file, a setting."""


class DeviceError(SensorError):
    """A device record is missing, duplicated or invalid."""


class ConfigError(SensorError):
    """A limits/rules setting is invalid; the message names the key and the valid range."""


class BatchError(SensorError):
    """A batch of readings or attendance events was refused as a whole (nothing of it is stored).

    ``status`` is the HTTP status the ingest endpoint answers with; ``problems`` lists what
    was wrong, each naming the item (``readings[3].value``) and the rule it broke.
    """

    def __init__(self, message: str, *, status: int = 422, problems: list[str] | None = None):
        super().__init__(message)
        self.status = status
        self.problems = list(problems or [])
