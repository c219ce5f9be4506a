"""``sitetwin bim load`` says, in the reader's words, which products did not load as surfaces and why."""

from __future__ import annotations

import json
import subprocess
import sys

SITETWIN = [sys.executable, "-m", "sitetwin.app.cli"]


def load(*args, lang="en"):
    return subprocess.run([*SITETWIN, "bim", "load", *map(str, args)], capture_output=True, text=True, timeout=300,
                          env={"SITETWIN_LANG": lang, "COLUMNS": "200", "PATH": ""})


def test_loading_a_road_prints_what_was_skipped_and_json_keeps_it_in_the_report(tmp_path):
    from sitetwin.synth.civil import write_road_model

    ifc = write_road_model(tmp_path / "road.ifc")
    db = tmp_path / "t.duckdb"
    human = load(ifc, "--db", db, "--site", "ROAD")
    assert human.returncode == 0, human.stderr
    report = json.loads(load(ifc, "--db", tmp_path / "u.duckdb", "--site", "ROAD", "--json").stdout)
    skipped = {(s["reason"], s["ifc_class"]): s["count"] for s in report["skipped"]}
    assert skipped and report["skipped_line"]
    # one line per file, the counts of the report's records
    (line,) = [x for x in human.stdout.splitlines() if "not loaded as surfaces" in x]
    n = sum(skipped.values())
    assert line.startswith(f"road.ifc: {n} products with a representation not loaded as surfaces: ")
    for (reason, cls), count in skipped.items():
        assert f"{cls} {count}" in line and reason in line
    # the part after the file's counts is the report's own, reason by reason
    assert line.split(": ", 2)[2] == report["skipped_line"].split(": ", 2)[2]


def test_a_model_with_nothing_skipped_prints_no_skipped_line(tmp_path):
    from sitetwin.synth.civil import write_road_model

    ifc = write_road_model(tmp_path / "road2x3.ifc", schema="IFC2X3")   # every part an IfcSite with a body
    done = load(ifc, "--db", tmp_path / "t.duckdb", "--site", "ROAD")
    assert done.returncode == 0, done.stderr
    assert "loaded" in done.stdout and "not loaded as surfaces" not in done.stdout
