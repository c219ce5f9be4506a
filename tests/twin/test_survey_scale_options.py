"""``survey add --scale`` with a pose given (``--transform`` or ``--register none``) is refused with one line naming
the option, in the reader's language, and the store is unchanged (it used to be ignored silently)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from sitetwin.data.store import open_store
from sitetwin.twin.formats import write_las
from tests.twin.conftest import table_counts

SITETWIN = [sys.executable, "-m", "sitetwin.app.cli"]


def run(*args, lang: str | None = None):
    env = {k: v for k, v in os.environ.items() if k != "SITETWIN_LANG"} | {"COLUMNS": "200"}
    head = ["--lang", lang] if lang else []
    return subprocess.run([*SITETWIN, *head, *map(str, args)], capture_output=True, text=True, timeout=120, env=env)


@pytest.fixture
def cloud(tmp_path, epoch_survey):
    s = epoch_survey.sim.scans[0]
    pts = s.points @ s.T_survey_from_scan[:3, :3].T + s.T_survey_from_scan[:3, 3]
    path = write_las(tmp_path / "s.laz", pts, scale_m=0.0001)
    (tmp_path / "T.json").write_text(json.dumps(epoch_survey.T_true.tolist()))
    return path, tmp_path / "T.json"


@pytest.mark.parametrize("given", [("--transform", "T"), ("--register", "none")])
def test_scale_with_a_given_pose_is_refused_naming_the_option_and_the_store_is_unchanged(writable_store, demo,
                                                                                          cloud, given):
    las, T = cloud
    pose = [given[0], T if given[1] == "T" else given[1]]
    with open_store(writable_store, read_only=True) as store:
        before = table_counts(store)
    r = run("survey", "add", las, "--db", writable_store, "--model", demo.model_id, *pose, "--scale")
    assert r.returncode != 0
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    option = "--transform" if given[0] == "--transform" else "--register none"
    assert len(lines) == 1 and lines[0].count(option) == 1 and "leave --scale out" in lines[0], r.stderr
    assert "Traceback" not in r.stderr
    zh = run("survey", "add", las, "--db", writable_store, "--model", demo.model_id, *pose, "--scale", lang="zh-CN")
    assert zh.returncode == r.returncode and option in zh.stderr and "请去掉 --scale" in zh.stderr
    with open_store(writable_store, read_only=True) as store:
        assert table_counts(store) == before


def test_the_library_refuses_the_same_combinations_before_reading_the_cloud(demo, writable_store, tmp_path):
    from sitetwin.twin.errors import SurveyError
    from sitetwin.twin.survey import add_survey

    missing = tmp_path / "not-read.laz"          # refused before any file is opened
    with open_store(writable_store) as store:
        with pytest.raises(SurveyError, match=r"^--transform gives the pose, so no scale is fitted"):
            add_survey(store, [missing], model_ids=[demo.model_id], transform=np.eye(4), fit_scale=True)
        with pytest.raises(SurveyError, match=r"^--register none gives the pose, so no scale is fitted"):
            add_survey(store, [missing], model_ids=[demo.model_id], register="none", fit_scale=True)
