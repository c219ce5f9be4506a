"""Sensor errors read in the reader's language; what devices get back and what is stored stays English."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from sitetwin.data.errors import message_text
from sitetwin.data.i18n import use_language
from sitetwin.sensors.batch import DeviceRef, parse_batch, to_us
from sitetwin.sensors.config import default_limits
from sitetwin.sensors.errors import BatchError, SensorError
from sitetwin.sensors.importer import import_file as import_readings
from sitetwin.sensors.training import TrainingError
from sitetwin.sensors.training import import_file as import_training

NOW = dt.datetime(2026, 3, 17, 0, 0)
DUST = DeviceRef("DU1", "S1", "dust")
HEADER = "site_code,worker_id,course,course_type,completed_on,hours,score,passed,valid_until\n"


def write_csv(path, text):
    path.write_text(text.strip() + "\n", encoding="utf-8")
    return path


def _refused(body: dict) -> BatchError:
    with pytest.raises(BatchError) as err:
        parse_batch(json.dumps(body).encode(), token_device=DUST, devices={"DU1": DUST},
                    limits=default_limits().ingest, now_us=to_us(NOW))
    return err.value


def test_a_refused_batch_reads_in_chinese_but_its_problems_for_the_device_stay_english():
    error = _refused({"readings": [{"at": "2026-03-16T08:00:00", "channel": "pm10_ugm3", "value": 40},
                                   {"at": "2026-03-16T08:00:00Z", "channel": "pm10_ugm3", "value": [1, 2]}]})
    english = ("batch refused, nothing stored: 2 problem(s): readings[0].at: '2026-03-16T08:00:00' has no UTC "
               "offset; add Z or +08:00")
    assert str(error) == english and error.status == 422
    with use_language("zh-CN"):
        assert str(error) == ("批次被拒收，未存储任何内容：2 处错误：readings[0].at：'2026-03-16T08:00:00' "
                              "没有 UTC 偏移；请加上 Z 或 +08:00")
        assert message_text(error) == english                  # what the ingest API answers and stores
        assert error.problems == [english.split("problem(s): ")[1],
                                  "readings[1]: value a list of 2 is not a number"]


def test_a_batch_with_an_unknown_key_names_it_in_both_languages():
    error = _refused({"readings": [], "extra": 1})
    assert str(error) == "malformed batch: unknown key 'extra' (keys: device_id, batch_id, readings, events)"
    with use_language("zh-CN"):
        assert str(error) == "批次格式错误：未知的键 'extra'（可用的键：device_id、batch_id、readings、events）"


def test_a_bad_training_row_names_file_row_and_field_in_chinese(sensor_store, tmp_path):
    path = tmp_path / "training.csv"
    path.write_text(HEADER + "S1,W-B,岗前,pre_job,2026-03-10,8,90,,\n"
                             "S1,W-A,安全教育,三级安全教育,2026-03-10,24,120,,\n", encoding="utf-8")
    with pytest.raises(TrainingError) as err:
        import_training(sensor_store, path)
    assert str(err.value) == f"{path}: row 2: score: 120 is outside 0..100"
    assert err.value.problems == [str(err.value)]
    with use_language("zh-CN"):
        assert str(err.value) == f"{path}：第 2 行：score：120 超出 0..100"
        assert err.value.problems == [f"{path}: row 2: score: 120 is outside 0..100"]


def test_a_bad_reading_file_lists_its_rows_in_chinese(sensor_store, tmp_path):
    path = write_csv(tmp_path / "dust.csv", "device_id,measured_at,channel,value\n"
                                            "DU1,yesterday,pm10_ugm3,41\n"
                                            "DU1,2026-03-16T01:01:00,pm10_ugm3,40")
    with pytest.raises(SensorError) as err:
        import_readings(sensor_store, path, now=NOW, findings=False)
    assert str(err.value) == (f"{path}: 2 problem(s), nothing imported: row 1: time 'yesterday' is not ISO 8601 or "
                              f"epoch seconds; row 2: time '2026-03-16T01:01:00' has no UTC offset; add one or give "
                              f"the file's timezone")
    with use_language("zh-CN"):
        assert str(err.value) == (f"{path}：2 处错误，未导入任何内容：第 1 行：时间 'yesterday' 既不是 ISO 8601，"
                                  f"也不是纪元秒；第 2 行：时间 '2026-03-16T01:01:00' 没有 UTC 偏移；"
                                  f"请加上偏移，或给出文件的时区")
