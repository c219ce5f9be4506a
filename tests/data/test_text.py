"""data.text: the entry check refuses what no writer can carry; the writer side survives anything."""

from __future__ import annotations

import pytest
from lxml import etree

from sitetwin.data.text import NOTE_MAX, TextError, clean_text, printable


@pytest.mark.parametrize("bad", ["a\x00b", "a\x07", "x\x1b[31m", "\x7f", "a\x85b", "a\ud800"])
def test_control_characters_are_refused_naming_the_field(bad):
    with pytest.raises(TextError, match=r"^title: control character U\+"):
        clean_text(bad, "title")


def test_one_line_fields_refuse_line_breaks_multiline_keep_them():
    with pytest.raises(TextError, match="one line"):
        clean_text("a\nb", "title")
    assert clean_text("a\r\nb\tc", "comment", multiline=True) == "a\nb\tc"


def test_length_is_capped_with_the_numbers():
    with pytest.raises(TextError, match=r"comment: 10,001 characters, more than the 10,000"):
        clean_text("x" * (NOTE_MAX + 1), "comment", max_len=NOTE_MAX, multiline=True)


def test_text_is_normalised_and_empty_refused():
    assert clean_text("  Cafe\u0301 ", "title") == "Caf\u00e9"
    with pytest.raises(TextError, match="must not be empty"):
        clean_text("   ", "title")
    assert clean_text(None, "note", required=False) == ""
    with pytest.raises(TextError, match="expected text, got int"):
        clean_text(3, "title")


def test_printable_text_always_fits_into_xml():
    nasty = "".join(chr(c) for c in range(0, 0x20)) + "\x7f\ud800\ufffe\uffff ok 中文"
    el = etree.Element("Comment")
    el.text = printable(nasty)          # lxml refuses any string that is not XML-compatible
    assert etree.tostring(el, encoding="unicode").endswith("ok 中文</Comment>")
    assert printable(None) == "" and printable(12) == "12"
