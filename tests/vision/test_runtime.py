"""vision.runtime and vision._torchvision_cpu: ultralytics offline on CPU torch with a working NMS."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


def test_a_fresh_interpreter_gets_torchvision_nms_only_through_vision_runtime(tmp_path):
    # The CI case: a new process, nothing imported yet. Without vision.runtime torchvision
    # cannot import on this CPU torch; after prepare() it imports and NMS answers.
    script = (
        "import json, torch\n"
        "from sitetwin.vision.runtime import prepare\n"
        "info = prepare()\n"
        "import torchvision\n"
        "b = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30.]])\n"
        "s = torch.tensor([.9, .8, .7])\n"
        "keep = torchvision.ops.nms(b, s, 0.5).tolist()\n"
        "bkeep = torchvision.ops.batched_nms(b, s, torch.tensor([0, 1, 0]), 0.5).tolist()\n"
        "import ultralytics.utils as u\n"
        "from ultralytics import YOLO\n"
        "import io\n"
        "from PIL import Image, UnidentifiedImageError\n"
        "try:\n"
        "    Image.open(io.BytesIO(b'not an image at all'))\n"
        "    pil = 'opened'\n"
        "except UnidentifiedImageError:\n"
        "    pil = 'unidentified'\n"
        "except Exception as exc:\n"
        "    pil = type(exc).__name__\n"
        "print(json.dumps({'backend': info.nms_backend, 'keep': keep, 'bkeep': bkeep, 'online': u.ONLINE,\n"
        "                  'config': str(info.config_dir), 'pil': pil}))\n")
    env = {**os.environ, "SITETWIN_YOLO_DIR": str(tmp_path / "yolo")}
    env.pop("YOLO_OFFLINE", None)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["keep"] == [0, 2]            # box 1 overlaps box 0 with IoU 0.68 > 0.5
    assert result["bkeep"] == [0, 1, 2]        # box 1 is another class: kept
    assert result["online"] is False
    # ultralytics' PIL.Image.open patch would try to pip-install pi-heif on an unidentified file
    assert result["pil"] == "unidentified"
    assert result["backend"] in ("torchvision", "sitetwin")
    assert (tmp_path / "yolo" / "Ultralytics" / "Arial.ttf").stat().st_size > 100_000
    settings = json.loads((tmp_path / "yolo" / "Ultralytics" / "settings.json").read_text())
    assert settings["sync"] is False


def test_the_fallback_is_used_only_because_torchvisions_own_library_cannot_load():
    from sitetwin.vision import _torchvision_cpu
    from sitetwin.vision.runtime import prepare

    info = prepare()
    probe = subprocess.run([sys.executable, "-c", "import torchvision"], capture_output=True, text=True,
                           timeout=120)
    if probe.returncode == 0:
        assert info.nms_backend == _torchvision_cpu.NATIVE
    else:
        assert "torchvision::nms does not exist" in probe.stderr
        assert info.nms_backend == _torchvision_cpu.PURE_TORCH


def test_the_numpy_nms_keeps_exactly_what_ultralytics_reference_nms_keeps():
    # ultralytics' TorchNMS.nms is documented to match torchvision exactly: compare on
    # 500 random overlapping boxes at three thresholds.
    import torch

    from sitetwin.vision._torchvision_cpu import nms_numpy
    from sitetwin.vision.runtime import prepare

    prepare()
    from ultralytics.utils.nms import TorchNMS

    rng = np.random.default_rng(7)
    xy = rng.uniform(0, 200, (500, 2))
    wh = rng.uniform(5, 60, (500, 2))
    boxes = np.concatenate([xy, xy + wh], 1).astype(np.float32)
    scores = rng.uniform(0, 1, 500).astype(np.float32)
    for thr in (0.3, 0.5, 0.7):
        ours = nms_numpy(boxes, scores, thr)
        ref = TorchNMS.nms(torch.from_numpy(boxes), torch.from_numpy(scores), thr).numpy()
        assert ours.tolist() == ref.tolist()
        assert 10 < len(ours) < 500


def test_nms_of_no_boxes_is_empty_and_bad_shapes_are_refused():
    from sitetwin.vision._torchvision_cpu import nms_numpy

    assert nms_numpy(np.zeros((0, 4)), np.zeros(0), 0.5).shape == (0,)
    with pytest.raises(ValueError, match=r"\(n, 4\)"):
        nms_numpy(np.zeros((3, 5)), np.zeros(3), 0.5)
