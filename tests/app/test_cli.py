"""The sitetwin command line: the JSON contract, errors as one line, a fast start."""

from __future__ import annotations

import json
import subprocess
import sys

SITETWIN = [sys.executable, "-m", "sitetwin.app.cli"]


def run(*args, cwd=None):
    return subprocess.run([*SITETWIN, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_help_lists_the_command_groups():
    result = run("--help")
    assert result.returncode == 0
    for command in ("init", "bim", "export", "import", "sql", "demo"):
        assert command in result.stdout


def test_the_cli_imports_no_heavy_library_at_start():
    code = ("import sys; import sitetwin.app.cli as c; c._register_commands(); "
            "heavy = [m for m in ('ifcopenshell', 'open3d', 'torch', 'ultralytics', 'dash', 'cv2', 'trimesh', "
            "'duckdb', 'pandas', 'scipy') if m in sys.modules]; print(','.join(heavy))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def test_load_with_json_prints_exactly_one_json_document(tmp_path, shared_data):
    db = tmp_path / "t.duckdb"
    result = run("bim", "load", shared_data / "ifc/schependomlaan/root_design_parts/ROOT-staal.ifczip",
                 "--db", db, "--site", "NIJ", "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["site_code"] == "NIJ" and doc["element_count"] == 78 and doc["version"] == 1
    elements = json.loads(run("bim", "elements", "--db", db, "--class", "IfcColumn", "--json").stdout)
    assert len(elements) == 15 and all(e["ifc_class"] == "IfcColumn" for e in elements)
    assert isinstance(elements[0]["properties"], dict)


def test_a_bad_file_gives_one_error_line_and_a_nonzero_exit(tmp_path):
    bad = tmp_path / "notes.ifc"
    bad.write_text("not a model")
    result = run("bim", "load", bad, "--db", tmp_path / "t.duckdb", "--json")
    assert result.returncode == 1
    assert result.stdout == ""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "notes.ifc" in lines[0]


def test_a_batch_with_one_bad_file_loads_nothing(tmp_path, shared_data):
    db = tmp_path / "t.duckdb"
    bad = tmp_path / "broken.ifc"
    bad.write_text("ISO-10303-21;\nHEADER;\nFILE_SCHEMA(('IFC2X3'));\nENDSEC;\nDATA;\n")
    good = shared_data / "ifc/schependomlaan/root_design_parts/ROOT-staal.ifczip"
    result = run("bim", "load", good, bad, "--db", db)
    assert result.returncode == 1 and "truncated" in result.stderr
    # every header is checked before anything is written: the store was not even created
    assert not db.exists()
    run("init", "--db", db)
    run("bim", "load", good, bad, "--db", db)
    count = run("sql", "--db", db, "SELECT count(*) AS n FROM models", "--json")
    assert json.loads(count.stdout) == [{"n": 0}]


def test_sql_is_read_only_and_cannot_touch_files(tmp_path):
    db = tmp_path / "t.duckdb"
    assert run("init", "--db", db, "--site", "A").returncode == 0
    # schema-qualified: the statement is input the command must refuse, not a write this test makes
    result = run("sql", "--db", db, "DELETE FROM main.sites")
    assert result.returncode == 1 and "read-only" in result.stderr.lower()
    result = run("sql", "--db", db, f"COPY sites TO '{tmp_path / 'leak.csv'}'")
    assert result.returncode == 1 and not (tmp_path / "leak.csv").exists()


def test_export_and_import_round_trip_through_the_cli(tmp_path, shared_data):
    db, db2, out = tmp_path / "a.duckdb", tmp_path / "b.duckdb", tmp_path / "pq"
    run("bim", "load", shared_data / "ifc/schependomlaan/root_design_parts/ROOT-staal.ifczip", "--db", db)
    manifest = json.loads(run("export", "--db", db, "--out", out, "--json").stdout)
    assert manifest["tables"]["elements"]["rows"] == 78
    report = json.loads(run("import", out, "--db", db2, "--json").stdout)
    assert report["elements"]["inserted"] == 78


def test_the_demo_stage_for_the_model_builds_the_demo_site(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c",
         "import json, sys; from sitetwin.app.demo import run_demo; "
         f"print(json.dumps(run_demo({str(tmp_path / 'demo.duckdb')!r}, {str(tmp_path / 'demo')!r}, "
         f"stages=['model'])))"],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    facts = summary["stages"][0]["facts"]
    assert facts["elements"] >= 300 and facts["storeys"] >= 3 and facts["tasks"] >= 12
