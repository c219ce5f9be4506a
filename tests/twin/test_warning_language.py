"""A survey's warnings read in the reader's language; their str stays the English it always was."""

from __future__ import annotations

import datetime as dt

from sitetwin.data.errors import Note
from sitetwin.data.i18n import use_language
from sitetwin.data.store import open_store
from sitetwin.twin.formats import write_las
from sitetwin.twin.survey import add_survey, parse_epoch

BEFORE_THE_SCHEDULE = dt.date(2001, 1, 1)


def test_a_survey_with_no_element_due_and_added_again_warns_in_chinese_and_in_english_as_before(
        writable_store, demo, epoch_survey, tmp_path):
    path = write_las(tmp_path / "early.las", epoch_survey.sim.points_in_model_frame()[:60_000], scale_m=0.001)
    with open_store(writable_store) as store:
        report = add_survey(store, [path], model_ids=[demo.model_id], register="none", epoch=BEFORE_THE_SCHEDULE)
        again = add_survey(store, [path], model_ids=[demo.model_id], register="none", epoch=BEFORE_THE_SCHEDULE)
    epoch = parse_epoch(BEFORE_THE_SCHEDULE)
    assert report.warnings == (f"no element is due by {epoch} in the schedule; registering against the whole model",)
    assert again.reused and again.warnings == (
        f"these files were already imported as survey {report.survey_id}; nothing changed",)
    assert all(isinstance(w, Note) for w in report.warnings + again.warnings)
    with use_language("zh-CN"):
        assert str(report.warnings[0]) == f"进度计划中没有构件应在 {epoch} 前完成；按整个模型配准"
        assert f"{again.warnings[0]}" == f"这些文件已作为测量 {report.survey_id} 导入；未做任何更改"

