"""A risk component's basis and unit are written from its stored figures in the reader's language, by
oversight.risk alone (the evaluation report and the portfolio page show the same line); stored values stay
English."""

from __future__ import annotations

import dataclasses

import pytest

from sitetwin.data.i18n import use_language
from sitetwin.oversight.risk import RiskComponent, basis_text, unit_text


def _component(name: str, unit: str, basis: str, detail: dict, raw: float | None = 1.0) -> RiskComponent:
    return RiskComponent(name=name, weight=0.2, raw=raw, unit=unit, saturation=1.0, subscore=50.0, points=10.0,
                         no_data=raw is None, basis=basis, detail=detail)


CASES = [
    (_component("deviation", "share out of tolerance", "12 of 407 surveyed elements out of tolerance (survey S1)",
                {"survey_id": "S1", "out_of_tolerance": 12, "partial_out_of_tolerance": 2, "surveyed": 407}),
     "实测的 407 个构件中 12 个超出允许偏差（实测 S1）", "超出允许偏差的比例"),
    (_component("findings", "weighted open findings", "9 open findings, 7 overdue",
                {"open_by_severity": {"low": 2, "high": 7}, "overdue_by_severity": {"low": 0, "high": 7}}),
     "未关闭问题 9 项，其中逾期 7 项", "加权未关闭问题"),
    (_component("data", "missing share / staleness (0..1)",
                "4 of 6 sources reporting (missing: model, survey); last data 0.1 days ago",
                {"sources": {"model": False, "schedule": True, "survey": False, "panoramas": True, "detections": True,
                             "sensors": True}, "last_data_at": "2026-01-01T00:00:00", "stale_days": 0.1}),
     "6 个数据源中 4 个在报送（缺失：模型、实测）；最近数据在 0.1 天前", "缺失比例 / 陈旧度（0..1）"),
    (_component("progress", "share of due elements not built",
                "174 of 579 elements due by now not seen built (survey S4, detector stage observations)",
                {"due": 579, "behind": 174, "max_delay_days": 3, "survey_id": "S4", "detector_observations": True}),
     "截至目前应完成的 579 个构件中 174 个未见建成（实测 S4、识别的施工阶段观测）", "到期未建构件比例"),
    (_component("hazards", "hazards per 1000 worker-hours", "no data: no attendance and no detections in the window",
                {"no_data": "no_activity"}, raw=None),
     "无数据：统计期内无考勤、无识别记录", "每千人员工时隐患数"),
]


@pytest.mark.parametrize(("component", "zh", "zh_unit"), CASES, ids=[c[0].name for c in CASES])
def test_a_risk_basis_reads_in_chinese_from_its_detail_and_english_as_stored(component, zh, zh_unit):
    with use_language("zh-CN"):
        assert basis_text(component) == zh
        assert unit_text(component) == zh_unit
    assert basis_text(component) == component.basis
    assert unit_text(component) == component.unit


def test_a_component_stored_before_its_detail_had_the_figures_shows_its_stored_basis():
    old = _component("progress", "share of due elements not built", "3 of 9 elements due by now not seen built (x)",
                     {"due": 9, "behind": 3, "max_delay_days": 1})
    broken = dataclasses.replace(old, name="deviation", detail={"surveyed": 4})
    with use_language("zh-CN"):
        assert basis_text(old) == old.basis
        assert basis_text(broken) == broken.basis
        assert unit_text(dataclasses.replace(old, unit="a unit nobody wrote")) == "a unit nobody wrote"
