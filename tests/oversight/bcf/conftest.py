"""BCF fixtures: the real BCF files, the official schemas when at hand, a store with a Schependomlaan model."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def bcf_files(shared_data) -> list[Path]:
    """Every real BCF file in the shared data: BCF-XML 2.0 and 3.0 test cases and Schependomlaan issues."""
    files = sorted((shared_data / "bcf").rglob("*.bcf*"))
    assert len(files) == 12, files
    return files


@pytest.fixture(scope="session")
def bcf_xsd(shared_data) -> Path:
    """buildingSMART's BCF-XML schemas, as ``<dir>/2.1/*.xsd`` and ``<dir>/3.0/*.xsd``.

    They are not redistributed with sitetwin (CC BY-ND); the shared test data holds an unmodified
    copy (``bcf/xsd``, used by default), or point ``SITETWIN_BCF_XSD`` at the schemas from
    github.com/buildingSMART/BCF-XML (release_2_1 and release_3_0).
    """
    folder = os.environ.get("SITETWIN_BCF_XSD") or str(shared_data / "bcf" / "xsd")
    if not (Path(folder) / "3.0" / "markup.xsd").exists():
        pytest.skip("BCF-XML schemas not available: set SITETWIN_BCF_XSD to validate against them")
    return Path(folder)


@pytest.fixture(scope="session")
def vebo_store_path(tmp_path_factory, shared_data) -> Path:
    """A store file with Schependomlaan's ROOT-Vebo model loaded as site NIJ-01 (read it, or copy it to change it)."""
    from sitetwin.bim.load import load_model
    from sitetwin.data.sites import upsert_site
    from sitetwin.data.store import open_store

    path = tmp_path_factory.mktemp("vebo") / "vebo.duckdb"
    with open_store(path) as s:
        with s.transaction():
            upsert_site(s, "NIJ-01", name="Schependomlaan", district="Oost", city="Nijmegen")
        load_model(s, shared_data / "ifc/schependomlaan/root_design_parts/ROOT-Vebo.ifczip", site_code="NIJ-01",
                   name="vebo")
    return path


@pytest.fixture
def vebo_store(vebo_store_path, tmp_path):
    """A private copy of the ROOT-Vebo store (with its geometry cache)."""
    import shutil

    from sitetwin.data.store import cache_dir_for, open_store

    target = tmp_path / "vebo.duckdb"
    shutil.copy(vebo_store_path, target)
    shutil.copytree(cache_dir_for(vebo_store_path), cache_dir_for(target))
    with open_store(target) as s:
        yield s
