"""Languages: the catalogs against the code, the current language, locale formatting."""

import datetime as dt

import pytest

from sitetwin.data import catalogs, i18n
from sitetwin.data.i18n import LanguageError, Translator, negotiate, use_language


def test_every_message_is_translated_and_no_catalog_entry_is_stale():
    problems = catalogs.check()
    assert not problems, "\n".join(problems.lines()[:40]) + "\nrun .ci/catalogs --update, translate, --check"


@pytest.mark.parametrize(("header", "lang"), [
    ("zh-CN,zh;q=0.9,en;q=0.8", "zh-CN"), ("zh-TW", "zh-CN"), ("zh-Hans", "zh-CN"),
    ("en-US,en;q=0.9,zh;q=0.8", "en"), ("fr-FR,de;q=0.5", "en"), ("en;q=0.2,zh;q=0.9", "zh-CN"),
    ("", "en"), (None, "en"), ("zh;q=abc,en", "en"), (";;,,q=", "en"),
])
def test_the_browser_language_picks_chinese_or_english(header, lang):
    assert negotiate(header) == lang


def test_an_unknown_language_code_is_refused_by_name():
    with pytest.raises(LanguageError, match=r"--lang: unknown language 'fr'.*zh-CN, en"):
        i18n.normalize_language("fr", field="--lang")
    assert i18n.normalize_language("zh_CN") == "zh-CN"


def test_a_request_language_does_not_leak_out_of_its_context():
    before = i18n.current_language()
    with use_language("zh-CN"):
        assert i18n.current_language() == "zh-CN"
    assert i18n.current_language() == before


def test_numbers_and_dates_follow_the_locale_and_the_site_time_zone():
    late = dt.datetime(2026, 12, 7, 20, 30)          # naive UTC: 04:30 the next day in Wuhan
    with use_language("zh-CN"):
        assert i18n.format_date(late, tz="Asia/Shanghai") == "2026年12月8日"
        assert i18n.format_datetime(late, tz="Asia/Shanghai") == "2026-12-08 04:30"
        assert i18n.format_percent(0.256, 1) == "25.6%"
    with use_language("en"):
        assert i18n.format_date(late, tz="Asia/Shanghai") == "Dec 8, 2026"
        assert i18n.format_number(1234567.891, 2) == "1,234,567.89"
        assert i18n.format_number(float("nan")) == "–"


def _catalog_tree(tmp_path, code: str, po: str):
    (tmp_path / "app" / "locale").mkdir(parents=True)
    (tmp_path / "app" / "cmd.py").write_text(code, encoding="utf-8")
    (tmp_path / "app" / "locale" / "zh_CN.po").write_text(po, encoding="utf-8")
    return tmp_path


def test_the_catalog_check_finds_missing_stale_and_misplaced_placeholders(tmp_path):
    root = _catalog_tree(tmp_path, 'from sitetwin.data.i18n import Translator\n_ = Translator("app")\n'
                                   'a = _("{n} sites", n=2)\nb = _("Untranslated")\nc = _(f"bad {a}")\n',
                         'msgid "{n} sites"\nmsgstr "{count} 个工地"\n\nmsgid "Old"\nmsgstr "旧"\n')
    p = catalogs.check(root)
    assert [m.split(": ", 1)[1].split(" (")[0] for m in p.missing] == ["'Untranslated'"]
    assert p.stale == ["app/locale/zh_CN.po: 'Old'"]
    assert len(p.fields) == 1 and "{n} sites" in p.fields[0]
    assert len(p.fstrings) == 1 and "cmd.py:5" in p.fstrings[0]


def test_update_keeps_translations_adds_new_messages_and_drops_stale_ones(tmp_path):
    root = _catalog_tree(tmp_path, 'from sitetwin.data.i18n import Translator\n_ = Translator("app")\n'
                                   'a = _("Kept")\nb = _.plural("{n} site", "{n} sites", 2)\n',
                         'msgid "Kept"\nmsgstr "保留"\n\nmsgid "Gone"\nmsgstr "删除"\n')
    report = catalogs.update(root)
    assert report["app:zh-CN"] == {"messages": 2, "added": 1, "dropped": 1}
    text = (root / "app" / "locale" / "zh_CN.po").read_text(encoding="utf-8")
    assert 'msgstr "保留"' in text and "Gone" not in text and 'msgid_plural "{n} sites"' in text


def test_a_translated_message_reads_in_chinese_and_falls_back_to_english(monkeypatch, tmp_path):
    (tmp_path / "demo" / "locale").mkdir(parents=True)
    (tmp_path / "demo" / "locale" / "zh_CN.po").write_text(
        'msgid "{n} open findings"\nmsgstr "{n} 个未关闭问题"\n\n'
        'msgid "{n} site"\nmsgid_plural "{n} sites"\nmsgstr[0] "{n} 个工地"\n', encoding="utf-8")
    monkeypatch.setattr(i18n, "_PACKAGES_ROOT", tmp_path)
    i18n.reload_catalogs()
    _ = Translator("demo")
    try:
        with use_language("zh-CN"):
            assert _("{n} open findings", n=3) == "3 个未关闭问题"
            assert _.plural("{n} site", "{n} sites", 5) == "5 个工地"
            assert _("Not in the catalog") == "Not in the catalog"
        with use_language("en"):
            assert _("{n} open findings", n=3) == "3 open findings"
            assert _.plural("{n} site", "{n} sites", 1) == "1 site"
        assert _.lang("{n} open findings", "zh-CN", n=1) == "1 个未关闭问题"
    finally:
        i18n.reload_catalogs()


# ---- the messages of errors and warnings -------------------------------------------------------

def test_an_error_reads_in_the_readers_language_and_keeps_english_for_what_is_stored():
    from sitetwin.data.errors import message_text
    from sitetwin.data.i18n import LanguageError, normalize_language, use_language

    with pytest.raises(LanguageError) as info:
        normalize_language("xx", field="--lang")
    exc = info.value
    assert str(exc) == "--lang: unknown language 'xx' (languages: zh-CN, en)"
    with use_language("zh-CN"):
        assert str(exc) == "--lang：未知语言 'xx'（可选语言：zh-CN, en）"
        assert message_text(exc) == "--lang: unknown language 'xx' (languages: zh-CN, en)"
    assert exc.text("zh-CN").startswith("--lang：未知语言")


def test_an_error_keeps_its_fields_through_pickling_as_a_ray_worker_sends_it():
    import pickle

    from sitetwin.data.errors import StoreError
    from sitetwin.data.i18n import N_

    exc = pickle.loads(pickle.dumps(StoreError(N_("{path}: {n:,} rows"), path="a.duckdb", n=12345)))
    assert type(exc) is StoreError and exc.fields == {"path": "a.duckdb", "n": 12345}
    assert str(exc) == "a.duckdb: 12,345 rows"


def test_a_translation_whose_placeholders_do_not_fit_falls_back_to_english():
    from sitetwin.data.errors import render

    assert render("{a} and {b}", {"a": 1}, "en") == "{a} and {b}"      # a bad call shows its template
    assert render("plain text", {}, "zh-CN") == "plain text"            # not in any catalog: as given


def test_errors_raised_with_a_message_written_in_place_are_found(tmp_path):
    from sitetwin.data.catalogs import unmarked_errors

    pkg = tmp_path / "data"
    pkg.mkdir()
    (pkg / "m.py").write_text(
        "class AError(SitetwinError): pass\n"
        "class BError(AError): pass\n"
        "def f(p):\n"
        "    raise BError(f'{p}: bad')\n"
        "def g(p):\n"
        "    raise BError(N_('{p}: bad'), p=p)\n"
        "def h(p):\n"
        "    warnings.warn('careful ' + p, SitetwinWarning)\n"
        "def k(p, report, on_progress):\n"
        "    report.warnings.append(f'{p}: thinned')\n"
        "    on_progress(f'streaming {p}')\n"
        "    on_progress(Note(N_('streaming {p}'), p=p))\n", encoding="utf-8")
    found = unmarked_errors(tmp_path)
    assert [line.split(":")[:2] for line in found] == [["data/m.py", str(n)] for n in (4, 8, 10, 11)]


def test_a_phrase_inside_a_message_reads_in_the_messages_language():
    from sitetwin.data.errors import Phrase, render
    from sitetwin.data.i18n import N_

    msg = N_("{field}: unknown language {code!r} (languages: {languages})")
    text = render(msg, {"field": "f", "code": "xx", "languages": Phrase(msg, field="g", code="y", languages="z")},
                  "zh-CN")
    assert text == "f：未知语言 'xx'（可选语言：g：未知语言 'y'（可选语言：z））"
