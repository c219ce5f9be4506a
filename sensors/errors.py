"""Errors raised by the site-sensor package."""

from typing import Any

from sitetwin.data.errors import Phrase, SitetwinError
from sitetwin.data.i18n import N_


class SensorError(SitetwinError):
    """Site-sensor input or operation refused: a device, a batch, a file, a setting."""


class DeviceError(SensorError):
    """A device record is missing, duplicated or invalid."""


class ConfigError(SensorError):
    """A limits/rules setting is invalid; the message names the key and the valid range."""


class BatchError(SensorError):
    """A batch of readings or attendance events was refused as a whole (nothing of it is stored).

    ``status`` is the HTTP status the ingest endpoint answers with; ``problems`` lists what
    was wrong, each naming the item (``readings[3].value``) and the rule it broke, in English
    (they are stored and sent back to devices; the message itself reads in the reader's language).
    """

    def __init__(self, message: str, /, *, status: int = 422, problems: list[str] | None = None, **fields: Any):
        super().__init__(message, **fields)
        self.status = status
        self.problems = list(problems or [])


def cause(exc: BaseException) -> Phrase | str:
    """What went wrong in ``exc``, as a piece of another message: our own errors keep their template
    and fields (read in the message's language), anything else is its text as it was given."""
    return Phrase(exc.template, **exc.fields) if isinstance(exc, SitetwinError) else str(exc)


def joined(parts: list[Phrase | str]) -> Phrase | str:
    """Pieces of a message joined with "; " in the language of the message they are part of."""
    if not parts:
        return ""
    out = parts[-1]
    for part in reversed(parts[:-1]):
        out = Phrase(N_("{first}; {rest}"), first=part, rest=out)
    return out


def row(i: int) -> Phrase:
    """"row {n}" of an imported file (``i`` counted from 0, the header not counted)."""
    return Phrase(N_("row {row}"), row=i + 1)
