"""vision's errors read in the reader's language: real bad inputs through the public functions give the same
message, with the same file names and values, in English by default and in Chinese under ``use_language``;
what is stored (the dataset report) stays English whatever the language."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from sitetwin.data.errors import message_text
from sitetwin.data.i18n import use_language
from sitetwin.vision.datasets import read_yolo, report_json, require_usable
from sitetwin.vision.detect import Detector
from sitetwin.vision.errors import DatasetError, SourceError, WeightsError
from sitetwin.vision.formats import read_coco
from sitetwin.vision.sources import open_source


def _dataset_with_a_bad_row(root: Path, hardhat: Path) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    shutil.copyfile(next(iter(sorted((hardhat / "images").iterdir()))), root / "images" / "x.jpg")
    (root / "labels" / "x.txt").write_text("0 0.5 0.5 0.2 0.2\n1 0.95 0.5 0.2 0.2\n")
    (root / "data.yaml").write_text(json.dumps({"names": ["a", "b"]}))
    return root


def test_a_label_row_outside_the_image_is_refused_in_english_and_in_chinese_naming_file_line_and_box(
        tmp_path, hardhat):
    dataset = read_yolo(_dataset_with_a_bad_row(tmp_path / "ds", hardhat))
    with pytest.raises(DatasetError) as caught:
        require_usable(dataset)
    exc = caught.value
    en = str(exc)
    assert "x.txt:2: box 0.95 0.5 0.2 0.2 reaches outside [0, 1] (x 0.85..1.05, y 0.4..0.6)" in en
    assert en.startswith(f"{tmp_path / 'ds'}: 1 bad label lines or images: ")
    with use_language("zh-CN"):
        zh = str(exc)
        issue = str(dataset.errors[0])
        stored = report_json(dataset)["issues"][0]["message"]
    assert zh.startswith(f"{tmp_path / 'ds'}：有 1 处错误的标注行或图像：")
    assert "x.txt:2: 框 0.95 0.5 0.2 0.2 超出了 [0, 1]（x 0.85..1.05，y 0.4..0.6）" in zh
    assert "标注坐标须按图像宽高归一化" in zh and "box" not in zh
    assert issue.endswith("超出了 [0, 1]（x 0.85..1.05，y 0.4..0.6）；标注坐标须按图像宽高归一化")
    # stored and logged text stays English, whatever the reader's language
    assert message_text(exc) == en
    assert stored.startswith("box 0.95 0.5 0.2 0.2 reaches outside [0, 1]")


def test_more_than_three_bad_rows_are_summed_up_in_the_readers_language(tmp_path, hardhat):
    root = _dataset_with_a_bad_row(tmp_path / "ds", hardhat)
    (root / "labels" / "x.txt").write_text("0 0.5 0.5 0.2 0.2\n7 0.5 0.5 0.2 0.2\na b\n1 0.5 0.5 0 0.2\n"
                                           "1 2 0.5 0.2 0.2\n")
    with pytest.raises(DatasetError) as caught:
        require_usable(read_yolo(root))
    en = str(caught.value)
    assert "4 bad label lines or images: " in en and "x.txt:2: class id 7 is not one of 0..1; " in en
    assert en.endswith("(and 1 more; run `sitetwin vision dataset check`)")
    with use_language("zh-CN"):
        zh = str(caught.value)
    assert "有 4 处错误的标注行或图像：" in zh and "x.txt:2: 类别编号 7 不在 0..1 之内；" in zh
    assert "x.txt:3: 不是数字：'a b'" in zh
    assert zh.endswith("（另有 1 处；请运行 `sitetwin vision dataset check`）")


def test_weights_that_are_not_a_model_are_refused_in_both_languages_naming_the_file(tmp_path):
    weights = tmp_path / "best.onnx"
    weights.write_bytes(b"this is not an ONNX graph" * 10)
    with pytest.raises(WeightsError) as caught:
        Detector(weights)
    en = str(caught.value)
    assert en.startswith(f"weights {weights}: not a readable ONNX model (")
    with use_language("zh-CN"):
        zh = str(caught.value)
    assert zh.startswith(f"权重 {weights}：不是可读取的 ONNX 模型（")
    # onnxruntime's own words are passed through as they were given
    detail = caught.value.fields["detail"]
    assert detail and detail in en and detail in zh


def test_an_unreadable_image_and_an_unknown_source_type_read_in_chinese_with_their_paths(tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF" + bytes(200))
    with pytest.raises(SourceError) as caught:
        list(open_source(broken).frames())
    assert str(caught.value) == f"{broken}: not a readable image (corrupt, truncated or not an image format)"
    with use_language("zh-CN"):
        assert str(caught.value) == f"{broken}：不是可读取的图像（已损坏、不完整或不是图像格式）"
    odd = tmp_path / "clip.xyz"
    odd.write_bytes(b"\0")
    with pytest.raises(SourceError) as caught:
        open_source(odd)
    assert str(caught.value).startswith(f"{odd}: unknown source type .xyz; give an image (.jpg, ")
    with use_language("zh-CN"):
        zh = str(caught.value)
    assert zh.startswith(f"{odd}：未知的输入源类型 .xyz；请给出图像（.jpg, ")
    assert "rtsp:// 或 http:// 视频流" in zh


def test_a_coco_file_that_is_not_json_is_refused_in_chinese_with_the_parsers_detail(tmp_path):
    path = tmp_path / "instances.json"
    path.write_text("{ images: [")
    with pytest.raises(DatasetError) as caught:
        read_coco(path)
    en = str(caught.value)
    assert en.startswith(f"{path}: not a COCO JSON file (Expecting property name enclosed in double quotes")
    with use_language("zh-CN"):
        zh = str(caught.value)
    assert zh.startswith(f"{path}：不是 COCO JSON 文件（Expecting property name enclosed in double quotes")
