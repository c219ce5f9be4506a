"""What `pip install .` puts in the wheel: every package folder of the checkout (a folder the install check
would find missing only after a full build)."""

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TOP = ("app", "bim", "cluster", "dashboards", "data", "oversight", "panorama", "sensors", "synth", "twin", "vision")


def test_every_folder_with_python_or_catalogs_is_a_package_of_the_wheel():
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    folders = set()
    for top in TOP:
        for path in (REPO / top).rglob("*"):
            if path.is_file() and path.suffix in (".py", ".po") and "node_modules" not in path.parts \
                    and "__pycache__" not in path.parts and "viewer_src" not in path.parts:
                folders.add("sitetwin." + ".".join(path.parent.relative_to(REPO).parts))
    assert folders - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"
