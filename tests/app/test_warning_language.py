"""The CLI prints a report's warnings and a dataset's issues in the reader's language (``--lang zh-CN``);
``--json`` keeps the English whatever the language."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from PIL import Image

SITETWIN = [sys.executable, "-m", "sitetwin.app.cli"]


def run(*args):
    environ = {k: v for k, v in os.environ.items() if k != "SITETWIN_LANG"} | {"COLUMNS": "400"}
    return subprocess.run([*SITETWIN, *map(str, args)], capture_output=True, text=True, timeout=300, env=environ)


def test_bim_load_prints_a_broken_georeference_warning_in_chinese_and_keeps_english_in_json(shared_data, tmp_path):
    text = (shared_data / "ifc/validation/pass-grf000-correct_georeferencing.ifc").read_text()
    assert "3458715.92,5439966.65" in text
    ifc = tmp_path / "broken-georef.ifc"
    ifc.write_text(text.replace("3458715.92,5439966.65", "3458715.92,9439966.65"))   # 4000 km north
    human = run("--lang", "zh-CN", "bim", "load", ifc, "--db", tmp_path / "a.duckdb", "--site", "G")
    assert human.returncode == 0, human.stderr
    (line,) = [x for x in human.stderr.splitlines() if x.startswith("警告：")]
    assert line.startswith("警告：broken-georef.ifc：已忽略地理配准（地图转换把模型")
    assert line.endswith("）；保留本地坐标系") and "georeferencing" not in line
    scripted = run("--lang", "zh-CN", "bim", "load", ifc, "--db", tmp_path / "b.duckdb", "--site", "G", "--json")
    assert scripted.returncode == 0, scripted.stderr
    (warning,) = json.loads(scripted.stdout)["warnings"]
    assert warning.startswith("broken-georef.ifc: georeferencing ignored, map conversion puts the model ")
    assert warning.endswith("; keeping the local frame")


def test_dataset_check_prints_each_issue_in_chinese_and_keeps_english_in_json(tmp_path):
    root = tmp_path / "ds"
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    Image.new("RGB", (64, 48), (90, 90, 90)).save(root / "images" / "x.jpg")
    (root / "labels" / "x.txt").write_text("0 0.5 0.5 0.2 0.2\n1 0.95 0.5 0.2 0.2\n")
    (root / "data.yaml").write_text(json.dumps({"names": ["a", "b"]}))
    human = run("--lang", "zh-CN", "vision", "dataset", "check", root)
    assert human.returncode == 1
    (line,) = [x for x in human.stderr.splitlines() if "x.txt:2" in x]
    assert line.startswith("错误 ") and "x.txt:2: 框 0.95 0.5 0.2 0.2 超出了 [0, 1]（x 0.85..1.05，y 0.4..0.6）" in line
    scripted = run("--lang", "zh-CN", "vision", "dataset", "check", root, "--json")
    (issue,) = json.loads(scripted.stdout)["issues"]
    assert issue["severity"] == "error" and issue["message"].startswith("box 0.95 0.5 0.2 0.2 reaches outside [0, 1]")
