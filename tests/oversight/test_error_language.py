"""Oversight's refusals read in the reader's language: a real bad input through the public function gives one
error whose ``str`` is English by default and Chinese under ``use_language("zh-CN")``, with the same values
(file, row, dates, ids) in both, and English in what is stored."""

from __future__ import annotations

import datetime as dt
import io
import zipfile

import pytest

from sitetwin.data.errors import message_text
from sitetwin.data.i18n import use_language
from sitetwin.oversight.audit import audit_log
from sitetwin.oversight.bcf import read_bcf
from sitetwin.oversight.dangerous_works import WorksError, add_work, approve_plan, get_work, import_works
from sitetwin.oversight.errors import AccessDenied, BcfError, FindingError
from sitetwin.oversight.findings import raise_finding, reopen, verify_close
from sitetwin.oversight.scope import Scope

SYSTEM = Scope.system()
SITE = "WH-JA-1"


def test_a_dangerous_works_csv_with_its_end_before_its_start_is_refused_in_the_readers_language(
        sites_store, tmp_path):
    path = tmp_path / "register.csv"
    path.write_text("code,work_type,title,responsible,planned_start,planned_end\n"
                    "DW-01,基坑工程,Basement excavation,Li Wei,2026-03-10,2026-03-02\n", encoding="utf-8")
    with pytest.raises(WorksError) as info:
        import_works(sites_store, SYSTEM, path, site_code=SITE)
    exc = info.value
    assert str(exc) == f"{path}: row 1, field planned_end: 2026-03-02 is before planned_start 2026-03-10"
    with use_language("zh-CN"):
        assert str(exc) == f"{path}：第 1 行，字段 planned_end：2026-03-02 早于 planned_start 2026-03-10"
        assert message_text(exc) == f"{path}: row 1, field planned_end: 2026-03-02 is before planned_start 2026-03-10"
    assert not sites_store.scalar("SELECT count(*) FROM dangerous_works")


def test_a_bcf_file_whose_topic_fails_the_markup_schema_is_refused_in_the_readers_language(shared_data):
    from lxml import etree

    real = shared_data / "bcf/bcf-xml/v3.0_DueDate.bcf"
    markup = "fffc1b9d-1f64-46ee-ad84-4fd4a0640e5f/markup.bcf"
    buf = io.BytesIO()
    with zipfile.ZipFile(real) as src, zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == markup:       # the topic without its required <Title>
                root = etree.fromstring(data)
                title = root.find("Topic/Title")
                title.getparent().remove(title)
                data = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
                schema = etree.XMLSchema(etree.parse(str(shared_data / "bcf/xsd/3.0/markup.xsd")))
                assert not schema.validate(root)      # buildingSMART's schema refuses it too
            dst.writestr(info, data)
    with pytest.raises(BcfError) as info:
        read_bcf(buf.getvalue(), name="DueDate.bcf")
    exc = info.value
    guid = "fffc1b9d-1f64-46ee-ad84-4fd4a0640e5f"
    assert str(exc) == f"DueDate.bcf: {markup}: topic {guid} has no <Title>"
    with use_language("zh-CN"):
        assert str(exc) == f"DueDate.bcf: {markup}：主题 {guid} 没有 <Title>"


def test_a_finding_transition_that_is_not_allowed_is_refused_in_the_readers_language(sites_store, scopes):
    fid = raise_finding(sites_store, site_code=SITE, category="safety", severity="high", title="Guard rail missing",
                        at=dt.datetime(2024, 5, 1, 9))
    regulator = scopes["district_regulator"]
    with pytest.raises(FindingError) as closing:
        verify_close(sites_store, fid, scope=regulator)
    with pytest.raises(FindingError) as reopening:
        reopen(sites_store, fid, scope=regulator, note="not fixed")
    assert str(closing.value) == (f"finding {SITE}-1 ({fid}) is open; it can become verified_closed only from "
                                  f"rectification_submitted")
    assert str(reopening.value) == (f"finding {SITE}-1 ({fid}) is open; it can become reopened only from "
                                    f"rectification_submitted or verified_closed")
    with use_language("zh-CN"):
        assert str(closing.value) == (f"问题 {SITE}-1（{fid}）当前为 open；只能从 rectification_submitted "
                                      f"变为 verified_closed")
        assert str(reopening.value) == (f"问题 {SITE}-1（{fid}）当前为 open；只能从 rectification_submitted 或 "
                                        f"verified_closed 变为 reopened")


def test_a_refusal_names_the_action_in_the_readers_words_and_the_audit_log_keeps_it_in_english(sites_store,
                                                                                                  scopes):
    with pytest.raises(AccessDenied) as info:
        raise_finding(sites_store, site_code=SITE, category="safety", severity="high", title="t",
                      scope=scopes["contractor"])
    assert str(info.value) == ("cole (contractor) may not raise; allowed roles: admin, "
                               "city_regulator, district_regulator")
    with use_language("zh-CN"):
        assert str(info.value) == ("cole（contractor）无权提出；允许的角色：admin, city_regulator, "
                                   "district_regulator")

    work = add_work(sites_store, SYSTEM, SITE, code="DW-01", work_type="scaffolding", title="Scaffold",
                    responsible="Wu", planned_start="2026-03-01", planned_end="2026-03-09", today=dt.date(2026, 3, 1))
    with use_language("zh-CN"), pytest.raises(AccessDenied) as refused:
        approve_plan(sites_store, scopes["viewer"], work, by="Zhang")
    assert refused.value.text("zh-CN") == ("vic（viewer）无权审批危大工程专项施工方案；允许的角色："
                                           "admin, city_regulator, contractor, district_regulator, enterprise")
    assert message_text(refused.value).startswith("vic (viewer) may not approve dangerous-works plans; allowed roles")
    logged = audit_log(sites_store, scopes["admin"], action="denied")[0]
    assert (logged["site_code"], logged["detail"]) == (SITE, {"action": "approve dangerous-works plans"})


def test_an_unknown_dangerous_work_and_another_sites_read_the_same_in_chinese(sites_store, scopes):
    other = add_work(sites_store, SYSTEM, "WH-WC-1", code="DW-02", work_type="scaffolding", title="Scaffold",
                     responsible="Wu", planned_start="2026-03-01", planned_end="2026-03-09",
                     today=dt.date(2026, 3, 1))
    with use_language("zh-CN"):
        texts = []
        for work in (other, "00000000-0000-4000-8000-000000000000"):
            with pytest.raises(AccessDenied) as info:
                get_work(sites_store, scopes["contractor"], work)
            texts.append(str(info.value).replace(work, "<work>"))
    assert texts == ["cole（contractor）：危大工程 '<work>' 不在您的权限范围内"] * 2
