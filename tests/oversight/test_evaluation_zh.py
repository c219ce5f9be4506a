"""Evaluation reports in Chinese: headings, item titles, risk components, locale numbers, and a PDF
that embeds a CJK font, gives its text back and wraps and paginates a long findings table."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess

import pytest

from sitetwin.data.i18n import use_language
from sitetwin.oversight import evaluation
from sitetwin.oversight.evaluation import ReportError, evaluate, load_scheme, report_html, report_pdf
from sitetwin.oversight.findings import list_findings, raise_finding
from sitetwin.oversight.scope import Scope

SYSTEM = Scope.system()
DAY = dt.date(2024, 6, 30)
needs_cjk = pytest.mark.skipif(evaluation.cjk_font_family() is None or shutil.which("pdftotext") is None,
                               reason="no CJK font or poppler-utils here: `make fonts`")


def _pdf_text(path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout


def _pages(path) -> int:
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True).stdout
    return int(re.search(r"Pages:\s+(\d+)", info).group(1))


@pytest.fixture
def ev(sites_store):
    return evaluate(sites_store, SYSTEM, "WH-JA-1", as_of=DAY, record=False)


def test_every_item_of_the_packaged_scheme_has_a_chinese_title():
    s = load_scheme("provincial")
    assert s["title_zh"].startswith("智慧工地评价")
    assert all(re.search(r"[\u4e00-\u9fff]", i["title_zh"]) for i in s["items"])


def test_the_html_report_reads_in_chinese_with_chinese_item_titles_and_risk_components(ev):
    page = report_html(ev, site_name="江岸区二七路还建房项目", lang="zh-CN")
    assert page.startswith("<!DOCTYPE html><html lang=zh-CN>")
    for words in ("智慧工地评价", "评价项", "风险评分", "保费系数", "数字孪生中的BIM设计模型",
                  "未关闭问题", "基本项", "江岸区二七路还建房项目", "2024年6月30日"):
        assert words in page, words
    assert ev.grade == "fail" and "不合格" in page
    # the English one is unchanged by the Chinese titles
    english = report_html(ev, lang="en")
    assert "BIM design model in the twin" in english and "数字孪生" not in english


def test_the_report_language_is_the_current_one_unless_given(ev):
    with use_language("zh-CN"):
        assert "评价项" in report_html(ev)
        assert "Items" in report_html(ev, lang="en")
    assert "Items" in report_html(ev)


def test_stored_notes_stay_english_while_the_report_shows_them_translated(ev):
    linear = next(i for i in ev.items if i.note_msg == "linear" or i.note_msg == "no data")
    assert re.fullmatch(r"no data|.* -> \d+% of \d+", linear.note)
    assert evaluation._note(linear) == linear.note
    with use_language("zh-CN"):
        assert evaluation._note(linear) != linear.note


@needs_cjk
def test_the_chinese_pdf_embeds_a_cjk_font_and_gives_its_text_back(ev, tmp_path):
    pdf = report_pdf(ev, tmp_path / "zh.pdf", site_name="武汉市江岸区某工地", lang="zh-CN")
    fonts = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True, check=True).stdout
    cjk = [line for line in fonts.splitlines() if re.match(r"[A-Z]{6}\+(WenQuanYi|NotoSansCJK)", line)]
    assert cjk and all(line.split()[-5:-3] == ["yes", "yes"] for line in cjk), fonts   # embedded, subset
    if evaluation.cjk_font_family() == "WenQuanYi Micro Hei":
        assert all("CID TrueType" in line for line in cjk), fonts                      # TrueType, as declared
    text = _pdf_text(pdf)
    for words in ("智慧工地评价", "数字孪生中的BIM设计模型", "武汉市江岸区某工地", "风险评分", "保费系数"):
        assert words in text, words


def _long_findings(store, n: int) -> list[str]:
    """``n`` findings whose titles are longer than the title column: each wraps onto several lines."""
    titles = [f"第{k:03d}号：{'东侧' if k % 2 else '西侧'}基坑临边防护栏杆缺失，塔式起重机附着装置螺栓松动，"
              f"施工升降机防坠安全器超期未检，须立即整改并复查销项" for k in range(n)]
    with store.transaction():
        for t in titles:
            raise_finding(store, site_code="WH-JA-1", category="safety", severity="high", title=t,
                          raised_by="inspector", at=dt.datetime(2024, 6, 1), due=dt.date(2024, 6, 20))
    return titles


def _check_wrapped_and_paginated(store, ev, tmp_path, n: int) -> None:
    titles = _long_findings(store, n)
    found = list_findings(store, SYSTEM, site_code="WH-JA-1")
    assert len(found) == n
    short = report_pdf(ev, tmp_path / "short.pdf", lang="zh-CN", findings=found[:3])
    long = report_pdf(ev, tmp_path / "long.pdf", lang="zh-CN", findings=found)
    rows_per_page = 24                              # two lines a title on A4 at 7.5 pt
    assert _pages(long) - _pages(short) >= n // rows_per_page
    text = re.sub(r"\s+", "", _pdf_text(long))
    missing = [t for t in titles if t not in text]
    assert not missing, f"{len(missing)} titles not found whole, e.g. {missing[0]}"
    assert text.count("问题编号") >= _pages(long) - _pages(short) + 1   # the header again on every page


@needs_cjk
def test_a_long_chinese_findings_table_wraps_and_continues_on_new_pages(sites_store, ev, tmp_path):
    _check_wrapped_and_paginated(sites_store, ev, tmp_path, 60)


@needs_cjk
@pytest.mark.slow
def test_three_hundred_long_chinese_findings_wrap_and_paginate(sites_store, ev, tmp_path):
    _check_wrapped_and_paginated(sites_store, ev, tmp_path, 300)      # ~25 s: 15 pages of CJK text


@needs_cjk
def test_the_english_pdf_still_works_and_sets_chinese_site_names_too(ev, tmp_path):
    pdf = report_pdf(ev, tmp_path / "en.pdf", site_name="江岸区二七路项目", lang="en")
    text = _pdf_text(pdf)
    assert "BIM design model in the twin" in text and "江岸区二七路项目" in text and "Risk score" in text


def test_a_chinese_pdf_without_a_cjk_font_is_refused_naming_the_package(ev, tmp_path, monkeypatch):
    monkeypatch.setattr(evaluation, "CJK_FAMILIES", ("A Font Nobody Installed",))
    with pytest.raises(ReportError, match=r"^the zh-CN PDF report needs a CJK font: install Debian's "
                                          r"fonts-wqy-microhei \(make fonts"):
        report_pdf(ev, tmp_path / "zh.pdf", lang="zh-CN")
    assert not (tmp_path / "zh.pdf").exists()
    assert report_pdf(ev, tmp_path / "en.pdf", lang="en").stat().st_size > 1000


def test_the_html_report_names_the_sites_street_address(ev):
    page = report_html(ev, site_name="江岸区二七路综合楼项目", address="湖北省武汉市江岸区二七路66号", lang="zh-CN")
    assert "地址：湖北省武汉市江岸区二七路66号" in page
    assert "Address: 湖北省武汉市江岸区二七路66号" in report_html(ev, address="湖北省武汉市江岸区二七路66号", lang="en")
    assert "Address" not in report_html(ev, lang="en")


@needs_cjk
def test_the_pdf_report_names_the_sites_street_address(ev, tmp_path):
    pdf = report_pdf(ev, tmp_path / "zh.pdf", site_name="江岸区二七路综合楼项目",
                     address="湖北省武汉市江岸区二七路66号", lang="zh-CN")
    assert "地址：湖北省武汉市江岸区二七路66号" in _pdf_text(pdf).replace(" ", "")
