"""The committed viewer bundle is built from the committed sources: its first line records the sha256 of
dashboards/viewer_src (sources, build script, package.json, package-lock.json), recomputed here without
npm, so a source change committed without `make viewer` fails. `make viewer-check` rebuilds it byte for byte."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ROOT / "dashboards" / "viewer_src"
BUNDLE = ROOT / "dashboards" / "assets" / "sitetwin-viewer.js"


def source_hash() -> str:
    """What build.mjs writes: sha256 over (name, NUL, bytes, NUL) of each file, names sorted."""
    names = sorted([f"src/{p.name}" for p in (SOURCES / "src").glob("*.js")]
                   + ["build.mjs", "package.json", "package-lock.json"])
    h = hashlib.sha256()
    for name in names:
        h.update(name.encode() + b"\0" + (SOURCES / name).read_bytes() + b"\0")
    return h.hexdigest()


def test_the_committed_bundle_was_built_from_the_committed_sources():
    first = BUNDLE.read_text(encoding="utf-8").split("\n", 1)[0]
    recorded = re.search(r"sources-sha256:([0-9a-f]{64})", first)
    assert recorded, f"{BUNDLE}: no sources hash on its first line"
    assert recorded[1] == source_hash(), "dashboards/viewer_src changed without `make viewer`: rebuild and commit"


def test_the_bundle_is_one_minified_file_of_pinned_kept_libraries():
    text = BUNDLE.read_text(encoding="utf-8")
    assert 200_000 < len(text) < 1_500_000                                    # three.js inside, minified
    assert max(len(line) for line in text.splitlines()) > 100_000
    assert set(re.findall(r"https?://[\w.]+", text)) <= {"http://www.w3.org"}   # nothing fetched from elsewhere
    package = json.loads((SOURCES / "package.json").read_text())
    lock = json.loads((SOURCES / "package-lock.json").read_text())
    for name, version in {**package["dependencies"], **package["devDependencies"]}.items():
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"{name} {version}: pin an exact version"
        assert lock["packages"][f"node_modules/{name}"]["version"] == version
    assert lock["packages"]["node_modules/three"]["license"] == "MIT"


def test_only_the_twin_page_loads_the_viewer(demo_store_path):
    """Dash leaves the bundle out of every page's scripts; the twin page asks for it by its hash."""
    from sitetwin.dashboards.app import create_app

    app = create_app(demo_store_path)          # the pages register once the app exists: import after it
    from sitetwin.dashboards.pages.twin import _bundle_version

    with app.server.test_request_context("/"):
        index = app.index()
    assert "sitetwin-viewer.js" not in index
    assert _bundle_version() == source_hash()[:12]
