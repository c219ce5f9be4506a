"""Text that people type or devices send: checked where it enters, made safe where it leaves.

Two halves of one rule (issue 14):

- :func:`clean_text` is called where text *enters* the store (a finding's title, a comment, a
  device's label): it normalises (NFC, ``\\r\\n`` to ``\\n``, surrounding blanks stripped),
  refuses what no writer can carry (NUL, the other C0/C1 control characters, lone surrogates,
  U+FFFE/U+FFFF; line breaks where the field is one line) and caps the length, with a message
  that names the field and the problem.
- :func:`printable` is called by every *writer* (BCF/XML, HTML, PDF, CSV) on whatever is stored,
  however it got there (an older version, a hand-edited store, a device): characters that XML 1.0
  cannot carry become U+FFFD, so one bad row can never stop an export.

Hand-written because the rule is the XML 1.0 ``Char`` production plus a length cap; no kept
library offers both the refusal (with a field name) and the replacement.
"""

from __future__ import annotations

import re
import unicodedata

from sitetwin.data.errors import Phrase, SitetwinError
from sitetwin.data.i18n import N_

__all__ = ["TITLE_MAX", "NOTE_MAX", "LABEL_MAX", "TextError", "clean_text", "printable", "xml_safe"]

TITLE_MAX = 200        # one line: a finding's title, a name, a label
NOTE_MAX = 10_000      # a comment, a description (about four pages of text)
LABEL_MAX = 120        # ids and short labels sent by devices

# XML 1.0 Char: #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF];
# DEL and the C1 controls (#x7F-#x9F) are allowed by XML but are never meant as text: refused too.
_NOT_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


class TextError(SitetwinError, ValueError):
    """Typed or sent text that cannot be stored as it is (the message names the field)."""


def clean_text(value: object, field: str | Phrase, *, max_len: int = TITLE_MAX, multiline: bool = False,
               required: bool = True) -> str:
    """``value`` as stored text, or :class:`TextError` naming ``field`` and the problem.

    ``multiline`` fields keep line breaks and tabs; one-line fields refuse them. An empty value
    is refused when ``required`` (returned as ``""`` otherwise).
    """
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise TextError(N_("{field}: expected text, got {kind}"), field=field, kind=type(value).__name__)
    text = unicodedata.normalize("NFC", value.replace("\r\n", "\n").replace("\r", "\n")).strip()
    if required and not text:
        raise TextError(N_("{field}: must not be empty"), field=field)
    bad = _NOT_TEXT.search(text)
    if bad is not None:
        raise TextError(N_("{field}: control character U+{code:04X} at position {position} is not allowed in text"),
                        field=field, code=ord(bad.group()), position=bad.start() + 1)
    if not multiline and ("\n" in text or "\t" in text):
        raise TextError(N_("{field}: must be one line (no line breaks or tabs)"), field=field)
    if len(text) > max_len:
        raise TextError(N_("{field}: {n:,} characters, more than the {max_len:,} allowed"), field=field, n=len(text),
                        max_len=max_len)
    return text


def printable(value: object) -> str:
    """``value`` as text any writer can carry: characters XML 1.0 cannot hold become U+FFFD.

    For writers (BCF, HTML, PDF, CSV) of what is already stored; ``None`` becomes ``""``.
    """
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    return _NOT_XML.sub("\ufffd", text)


xml_safe = printable
