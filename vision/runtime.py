"""Ultralytics, prepared to run offline on this project's CPU torch: imported only through :func:`ultralytics`.

What :func:`prepare` does, once per process, before ultralytics is first imported:

- ``torchvision::nms`` is made available when torchvision's compiled operators cannot load
  (CPU torch with the registry's CUDA torchvision wheel; see ``vision/_torchvision_cpu.py``).
  Nothing changes where the real operator loads.
- ``YOLO_OFFLINE=1``: ultralytics skips its DNS "am I online" probe, so nothing downloads.
- ``YOLO_AUTOINSTALL=False``: a missing export package is an error, never a pip install.
- ``YOLO_CONFIG_DIR`` points at a writable project-local folder (``$SITETWIN_YOLO_DIR``, or
  ``.yolo/`` at the project root, or ``~/.cache/sitetwin/yolo``) unless the user set one;
  ultralytics keeps ``settings.json`` there, with analytics (``sync``) off.
- ``Arial.ttf`` and ``Arial.Unicode.ttf`` are put in that folder, copied from matplotlib's
  DejaVuSans, because ultralytics' plots otherwise download Arial (``plots=False`` does
  not stop it).

Every training, evaluation, export and inference module of vision calls this at import.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sitetwin.data.i18n import N_
from sitetwin.vision.errors import VisionError

_lock = threading.Lock()
_state: RuntimeInfo | None = None


@dataclass(frozen=True)
class RuntimeInfo:
    config_dir: Path          # YOLO_CONFIG_DIR
    user_dir: Path            # where ultralytics keeps settings and fonts (config_dir / "Ultralytics")
    nms_backend: str          # "torchvision" (native) or "sitetwin" (pure-torch fallback)
    offline: bool


def default_config_dir() -> Path:
    """The writable folder for ultralytics' settings and fonts (see the module docstring)."""
    if os.environ.get("SITETWIN_YOLO_DIR"):
        return Path(os.environ["SITETWIN_YOLO_DIR"]).expanduser()
    if os.environ.get("YOLO_CONFIG_DIR"):
        return Path(os.environ["YOLO_CONFIG_DIR"]).expanduser()
    project = Path(__file__).resolve().parents[1]
    if (project / "pyproject.toml").exists() and os.access(project, os.W_OK):
        return project / ".yolo"
    return Path.home() / ".cache" / "sitetwin" / "yolo"


def prepare() -> RuntimeInfo:
    """Set ultralytics up offline with a working NMS; idempotent. Returns what was set."""
    global _state
    with _lock:
        if _state is not None:
            return _state
        from sitetwin.vision import _torchvision_cpu

        config_dir = default_config_dir()
        user_dir = config_dir / "Ultralytics"     # ultralytics appends this to YOLO_CONFIG_DIR
        try:
            user_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise VisionError(N_("cannot create ultralytics' config folder {folder} ({detail}); "
                                 "set SITETWIN_YOLO_DIR to a writable folder"),
                              folder=user_dir, detail=str(exc)) from None
        os.environ["YOLO_CONFIG_DIR"] = str(config_dir)
        os.environ["YOLO_OFFLINE"] = "1"
        os.environ["YOLO_AUTOINSTALL"] = "False"
        os.environ.setdefault("YOLO_VERBOSE", "False")
        _place_fonts(user_dir)
        backend = _torchvision_cpu.ensure_nms()
        if backend == _torchvision_cpu.ABSENT:
            raise VisionError(N_("torchvision is not installed; ultralytics needs it (install sitetwin with its "
                                 "dependencies: pip install -c constraints.txt -e .)"))
        _configure_ultralytics()
        _state = RuntimeInfo(config_dir=config_dir, user_dir=user_dir, nms_backend=backend, offline=True)
        return _state


def ultralytics():
    """The ``ultralytics`` module, after :func:`prepare`."""
    prepare()
    import ultralytics as ul

    return ul


def _place_fonts(user_dir: Path) -> None:
    wanted = [user_dir / "Arial.ttf", user_dir / "Arial.Unicode.ttf"]
    if all(p.exists() for p in wanted):
        return
    import matplotlib

    source = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    if not source.exists():
        raise VisionError(N_("matplotlib's DejaVuSans.ttf is missing ({source}); ultralytics would try to "
                             "download Arial.ttf: put any TrueType font at {target}"), source=source, target=wanted[0])
    for target in wanted:
        if not target.exists():
            tmp = target.with_suffix(".tmp")
            shutil.copyfile(source, tmp)
            os.replace(tmp, target)


def _configure_ultralytics() -> None:
    already = "ultralytics" in sys.modules
    from ultralytics import settings
    from ultralytics import utils as ul_utils
    from ultralytics.utils import checks

    if already:
        # Imported before prepare(): its import-time constants were read from the old environment.
        ul_utils.ONLINE = False
        checks.AUTOINSTALL = False
        ul_utils.AUTOINSTALL = False
    # No analytics, and no experiment-tracker callbacks that could reach a server when installed.
    wanted = {k: False for k in ("sync", "hub", "clearml", "comet", "dvc", "mlflow", "neptune", "raytune",
                                 "tensorboard", "wandb") if k in settings}
    if any(settings.get(k) != v for k, v in wanted.items()):
        settings.update(wanted)
    _restore_pil_open()


def _restore_pil_open() -> None:
    """Undo ultralytics' process-wide patch of ``PIL.Image.open``.

    On import, ultralytics replaces ``PIL.Image.open`` with a wrapper that, on the first file Pillow cannot
    identify, tries to pip-install ``pi-heif`` and then fails with ``ModuleNotFoundError``. That would turn every
    "not an image" error elsewhere in sitetwin (panoramas, datasets) into an install attempt. sitetwin reads
    no HEIC, so Pillow's own ``open`` is put back.
    """
    from PIL import Image

    try:
        from ultralytics.utils import patches
    except ImportError:     # a future ultralytics without the patch module
        return
    original = getattr(patches, "_image_open", None)
    if original is not None and Image.open is getattr(patches, "image_open", None):
        Image.open = original


@contextlib.contextmanager
def quiet_ultralytics() -> Iterator[None]:
    """Keep ultralytics' console chatter off stdout (the CLI's --json owns stdout); it goes to stderr."""
    with contextlib.redirect_stdout(_Stderr()):
        yield


class _Stderr(io.TextIOBase):
    def write(self, s: str) -> int:
        import sys

        return sys.stderr.write(s)
