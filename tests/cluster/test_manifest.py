"""A manifest is checked whole before anything runs: each bad input is one clear line naming the unit or file,
and nothing is written (no Ray needed for these)."""

from __future__ import annotations

import hashlib
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sitetwin.cluster import ClusterError, ManifestError, check_stores, load_manifest, unit_key


@pytest.fixture
def site(tmp_path, demo_ifc):
    """A folder with a store holding site A1 (no model yet), the demo building and a scan file."""
    from sitetwin.data.sites import upsert_site
    from sitetwin.data.store import open_store

    with open_store(tmp_path / "a1.duckdb") as store, store.transaction():
        upsert_site(store, "A1", district="D1", city="Wuhan")
    (tmp_path / "a1").mkdir()
    (tmp_path / "a1" / "building.ifc").write_bytes(demo_ifc.read_bytes())
    (tmp_path / "a1" / "week1.e57").write_bytes(b"not read before the run")
    return tmp_path


def write(folder: Path, units, name: str = "city.yaml") -> Path:
    path = folder / name
    path.write_text(units if isinstance(units, str) else yaml.safe_dump(units, sort_keys=False))
    return path


def fingerprint(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` and its content hash: a refused manifest changes none and adds none."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


GOOD = [{"kind": "model", "site": "A1", "db": "a1.duckdb", "files": ["a1/building.ifc"]},
        {"kind": "survey", "site": "A1", "db": "a1.duckdb", "files": "a1/week1.e57", "epoch": "2026-05-10"},
        {"kind": "score", "site": "A1", "db": "a1.duckdb"}]


def refused(folder: Path, units) -> str:
    """The one-line message of a manifest refused by ``load_manifest`` or ``check_stores``; nothing written."""
    before = fingerprint(folder)
    path = write(folder, units)
    with pytest.raises(ManifestError) as caught:
        check_stores(load_manifest(path))
    path.unlink()
    assert fingerprint(folder) == before
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_a_good_manifest_resolves_paths_from_its_folder_and_keys_units_by_content(site):
    manifest = load_manifest(write(site, GOOD))
    model, survey, score = manifest.units
    assert model.db == (site / "a1.duckdb").resolve() and model.params["files"] == [str(site / "a1/building.ifc")]
    assert survey.params["register"] == "auto" and str(survey.params["epoch"]) == "2026-05-10"
    assert model.label == "unit 1 (model A1)"
    states = check_stores(manifest)
    assert states[model.db].sites == {"A1"} and states[model.db].done == frozenset()
    # the key follows the content, not the path
    moved = site / "elsewhere.ifc"
    moved.write_bytes((site / "a1/building.ifc").read_bytes())
    again = load_manifest(write(site, [{**GOOD[0], "files": ["elsewhere.ifc"]}], "moved.yaml")).units[0]
    assert unit_key(model, ["abc"]) == unit_key(again, ["abc"]) != unit_key(model, ["abd"])


def test_a_manifest_that_is_not_yaml_is_refused_naming_the_file_and_line(site):
    message = refused(site, "- kind: model\n  site: [A1\n")
    assert message.endswith("city.yaml: not YAML at line 3, column 1: expected ',' or ']', but got '<stream end>'")


@pytest.mark.parametrize("units, expected", [
    ([{"kind": "paint", "site": "A1", "db": "a1.duckdb"}],
     "city.yaml: unit 1: unknown kind 'paint' (kinds: model, survey, detect, score)"),
    ([GOOD[0], {"site": "A1", "db": "a1.duckdb", "files": ["a1/week1.e57"]}],
     "city.yaml: unit 2: no 'kind' (kinds: model, survey, detect, score)"),
    ([GOOD[0], {"kind": "survey", "site": "A1", "db": "a1.duckdb"}],
     "city.yaml: unit 2 (survey A1): missing field 'files'"),
    ([{"kind": "detect", "site": "A1", "db": "a1.duckdb", "weights": "a1/week1.e57", "source": "a1"}],
     "city.yaml: unit 1 (detect A1): weights a1/week1.e57: expected a .pt or .onnx file"),
    ([GOOD[0], {**GOOD[1], "files": ["a1/building.ifc"]}],
     "city.yaml: unit 2 (survey A1): files a1/building.ifc: not a point-cloud file (suffixes: .e57, .las"),
    ([{**GOOD[0], "files": ["a1/week1.e57"]}],
     "city.yaml: unit 1 (model A1): files a1/week1.e57: not an IFC file (suffixes: .ifc, .ifczip)"),
    ([{**GOOD[1], "register": "maybe"}], "city.yaml: unit 1 (survey A1): register 'maybe': use auto or none"),
    ([{**GOOD[1], "colour": "red"}], "city.yaml: unit 1 (survey A1): unknown field 'colour'"),
    ([{**GOOD[0], "site": "A 1"}], "city.yaml: unit 1 (model A 1): site code 'A 1': use 1-64 letters"),
    ([{"kind": "score", "site": "A1", "db": "s3://bucket/a1.duckdb"}],
     "city.yaml: unit 1 (score A1): db s3://bucket/a1.duckdb: a store is a DuckDB file"),
    ({"sites": []}, "expected a YAML list of units"),
    ([], "the manifest lists no units"),
])
def test_an_unknown_kind_a_missing_field_or_a_bad_value_is_refused_naming_the_unit(site, units, expected):
    message = refused(site, units)
    assert message.startswith(expected) or message.split(": ", 1)[1].startswith(expected)


def test_a_missing_file_is_refused_naming_the_unit_and_the_file(site):
    message = refused(site, [GOOD[0], {**GOOD[1], "files": ["a1/week2.e57"]}])
    assert message.startswith("city.yaml: unit 2 (survey A1): files a1/week2.e57: no such file")
    message = refused(site, [{"kind": "detect", "site": "A1", "db": "a1.duckdb", "source": "a1/camera",
                              "weights": "models/ppe.onnx"}])
    assert message.startswith("city.yaml: unit 1 (detect A1): source a1/camera: no such file")


def test_a_site_not_in_its_store_is_refused_naming_the_unit(site):
    message = refused(site, [{**GOOD[2], "site": "B7"}])
    assert message.startswith("city.yaml: unit 1 (score B7): no site B7 in ")
    assert "(sites: A1)" in message
    (site / "ppe.onnx").write_bytes(b"weights")
    message = refused(site, [{"kind": "detect", "site": "A1", "db": "a1.duckdb", "pano": "P9", "weights": "ppe.onnx"}])
    assert message.startswith("city.yaml: unit 1 (detect A1): no panorama P9 of site A1 in ")
    message = refused(site, [{**GOOD[1], "model": "0123456789ab"}])
    assert message.startswith("city.yaml: unit 1 (survey A1): no model 0123456789ab of site A1 in ")
    # a store that does not exist is refused for every unit but a model (which creates it)
    message = refused(site, [{**GOOD[2], "db": "b7.duckdb"}])
    assert message.startswith("city.yaml: unit 1 (score A1): no store at ")
    assert not (site / "b7.duckdb").exists()


def test_a_site_that_a_model_unit_of_the_manifest_creates_is_accepted(site):
    units = [{**GOOD[0], "site": "B7", "db": "b7.duckdb"}, {**GOOD[2], "site": "B7", "db": "b7.duckdb"}]
    states = check_stores(load_manifest(write(site, units)))
    assert [s.exists for s in states.values()] == [False]
    assert not (site / "b7.duckdb").exists()


def test_uri_inputs_are_read_through_pyarrow_filesystems(site):
    from sitetwin.cluster import inputs
    from sitetwin.data.files import file_sha256

    ifc = site / "a1" / "building.ifc"
    uri = ifc.as_uri()
    manifest = load_manifest(write(site, [{**GOOD[0], "files": [uri]}], "uri.yaml"))
    assert manifest.units[0].params["files"] == [uri]
    assert inputs.kind_of(uri) == "file" and inputs.kind_of(site.as_uri()) == "dir"
    assert inputs.digest(uri) == file_sha256(ifc)
    with inputs.local_copy(uri) as local:
        assert local != ifc and local.name == "building.ifc" and file_sha256(local) == file_sha256(ifc)
    assert not local.exists()
    # a folder: the same digest through a URI as through its path
    assert inputs.digest((site / "a1").as_uri()) == inputs.digest(str(site / "a1"))
    message = refused(site, [{**GOOD[0], "files": [(site / "nothing.ifc").as_uri()]}])
    assert "unit 1 (model A1): files file://" in message and "no such file" in message


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_cluster_address_is_refused_at_once_in_one_line():
    from sitetwin.cluster import connect

    address = f"127.0.0.1:{_closed_port()}"
    with pytest.raises(ClusterError) as caught:
        with connect(address):
            pass
    assert str(caught.value).startswith(f"--address {address}: no Ray cluster answers there")
    with pytest.raises(ClusterError, match="expected HOST:PORT"):
        with connect("head-node"):
            pass


def test_the_cli_refuses_a_bad_run_in_one_line_and_writes_nothing(site):
    before = fingerprint(site)
    bad = write(site, [{**GOOD[2], "site": "B7"}], "bad.yaml")
    good = write(site, GOOD, "good.yaml")
    cli = [sys.executable, "-m", "sitetwin.app.cli", "cluster", "run"]
    results = [subprocess.run([*cli, bad, "--json"], capture_output=True, text=True, timeout=120),
               subprocess.run([*cli, good, "--json", "--address", f"127.0.0.1:{_closed_port()}"],
                              capture_output=True, text=True, timeout=120)]
    for result in results:
        assert result.returncode == 1 and result.stdout == ""
        assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("error: ")
    assert "bad.yaml: unit 1 (score B7): no site B7" in results[0].stderr
    assert "no Ray cluster answers there" in results[1].stderr
    bad.unlink()
    good.unlink()
    assert fingerprint(site) == before


def test_neither_the_cli_nor_the_package_imports_ray_before_a_run():
    code = ("import sys; import sitetwin.cluster; import sitetwin.app.cli as c; c._register_commands(); "
            "print(','.join(m for m in ('ray', 'duckdb', 'yaml', 'pyarrow') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
