"""A report's line (data.errors.Note) is its English text as a str, and reads in the reader's language
when shown."""

from __future__ import annotations

import json
import pickle

import duckdb

import sitetwin.bim.load  # noqa: F401 - its catalog holds the templates below
from sitetwin.data.errors import Note, Phrase, message_text
from sitetwin.data.i18n import N_, use_language

DUPLICATES = N_("{file}: {n} product(s) repeat a GlobalId already used in the file; kept the first")
GEOREF = N_("{file}: georeferencing ignored, {problem}; keeping the local frame")
ZERO_AXIS = N_("map conversion x axis is a zero vector")
ENGLISH = "tower.ifc: 3 product(s) repeat a GlobalId already used in the file; kept the first"
CHINESE = "tower.ifc：3 个产品重复使用文件中已有的 GlobalId；保留第一个"


def note() -> Note:
    return Note(DUPLICATES, file="tower.ifc", n=3)


def test_a_note_is_its_english_text_whatever_the_language():
    with use_language("zh-CN"):
        line = note()
        assert line == ENGLISH and isinstance(line, str)
        assert ENGLISH in [line] and "product(s) repeat" in line and line.startswith("tower.ifc: 3")
        assert {line: 1}[ENGLISH] == 1                    # hashed as its English: dict.fromkeys dedupes by it
        assert message_text(line) == ENGLISH


def test_json_and_duckdb_see_the_english_even_in_chinese():
    with use_language("zh-CN"):
        assert json.loads(json.dumps({"warnings": [note()]})) == {"warnings": [ENGLISH]}
        assert json.loads(json.dumps([note()], indent=2, ensure_ascii=False)) == [ENGLISH]
        con = duckdb.connect()
        assert con.execute("SELECT ?", [note()]).fetchone() == (ENGLISH,)
        assert con.execute("SELECT ?", [{"warnings": [note()]}]).fetchone() == ({"warnings": [ENGLISH]},)


def test_str_print_and_f_strings_read_it_in_the_current_language(capsys):
    line = note()
    assert str(line) == ENGLISH and f"{line}" == ENGLISH
    with use_language("zh-CN"):
        assert str(line) == CHINESE
        assert f"warning: {line}" == f"warning: {CHINESE}"
        assert f"[{line:>60}]" == f"[{CHINESE:>60}]"
        assert line.text("en") == ENGLISH
        print(line)
    assert capsys.readouterr().out == CHINESE + "\n"


def test_a_pickled_note_keeps_its_template_and_fields():
    back = pickle.loads(pickle.dumps(note()))
    assert isinstance(back, Note) and back == ENGLISH and back.fields == {"file": "tower.ifc", "n": 3}
    with use_language("zh-CN"):
        assert str(back) == CHINESE


def test_a_phrase_or_a_note_inside_is_read_in_the_same_language():
    problem = Note(ZERO_AXIS)
    for inner in (problem, Phrase(ZERO_AXIS)):
        line = Note(GEOREF, file="a.ifc", problem=inner)
        assert line == "a.ifc: georeferencing ignored, map conversion x axis is a zero vector; keeping the local frame"
        with use_language("zh-CN"):
            assert str(line) == "a.ifc：已忽略地理配准（地图转换的 x 轴为零向量）；保留本地坐标系"
