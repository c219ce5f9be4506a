"""The sensor commands: one JSON document on stdout with --json, one error line and exit 1 on bad input."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def sitetwin(*args, check=True):
    """Run a command in this process (the same typer app as the ``sitetwin`` script)."""
    from typer.testing import CliRunner

    import sitetwin.app.cli

    if not any(getattr(g, "name", None) == "sensors" for g in sitetwin.app.cli.app.registered_groups):
        sitetwin.app.cli._register_commands()
    result = CliRunner().invoke(sitetwin.app.cli.app, [str(a) for a in args])
    if check and result.exit_code != 0:
        raise AssertionError(f"{result.output}\n{result.exception!r}")
    return result


def sitetwin_process(*args):
    """Run the real ``sitetwin`` entry point in its own process (its error handling included)."""
    return subprocess.run([sys.executable, "-m", "sitetwin.app.cli", *map(str, args)], cwd=REPO, capture_output=True,
                          text=True, timeout=120)


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "site.duckdb"
    sitetwin("init", "--db", path, "--site", "S1")
    return path


def test_device_add_prints_its_token_once_and_device_list_shows_it(db):
    added = json.loads(sitetwin("device", "add", "CR1", "--type", "crane", "--db", db, "--at", "1,2,0", "--interval",
                                "10", "--config", '{"geometry": {"jib_height_m": 40, "jib_length_m": 50}}',
                                "--json").stdout)
    assert added["device"]["device_id"] == "CR1" and added["token"].startswith("st_")
    listed = json.loads(sitetwin("device", "list", "--db", db, "--json").stdout)
    assert [(d["device_id"], d["position_m"]) for d in listed] == [("CR1", [1.0, 2.0, 0.0])]
    assert added["token"] not in sitetwin("device", "show", "CR1", "--db", db, "--json").stdout


def test_readings_import_then_warnings_and_twin_state(db, tmp_path):
    sitetwin("device", "add", "CR1", "--type", "crane", "--db", db, "--at", "0,0,0", "--interval", "10",
             "--config", '{"geometry": {"jib_height_m": 40, "jib_length_m": 50}}', "--no-token")
    csv = tmp_path / "crane.csv"
    csv.write_text("device_id,measured_at,channel,value\n"
                   "CR1,2026-03-16T02:00:00Z,load_pct,40\nCR1,2026-03-16T02:00:10Z,load_pct,111\n"
                   "CR1,2026-03-16T02:00:20Z,load_pct,40\n")
    report = json.loads(sitetwin("readings", "import", csv, "--db", db, "--now", "2026-03-16T02:00:30",
                                 "--json").stdout)
    assert (report["readings"], report["warnings"]["by_kind"]) == (3, {"overload": 1})
    found = json.loads(sitetwin("sensors", "warnings", "--db", db, "--json").stdout)
    assert [(w["kind"], w["severity"], w["peak_value"]) for w in found] == [("overload", "critical", 111.0)]
    assert found[0]["finding_id"]                  # critical: raised as a finding as the defaults say
    state = json.loads(sitetwin("sensors", "twin", "--db", db, "--json").stdout)
    assert state[0]["device_id"] == "CR1" and state[0]["active_warnings"] == 0   # the overload is over
    zones = json.loads(sitetwin("sensors", "zones", "--db", db, "--json").stdout)
    assert zones[0]["kind"] == "swing" and zones[0]["radius_m"] == 52.0


def test_a_bad_file_is_one_error_line_and_exit_1(db, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("device_id,measured_at,channel,value\nNOPE,2026-03-16T02:00:00Z,load_pct,1\n")
    result = sitetwin_process("readings", "import", bad, "--db", db, "--json")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.strip().startswith("error:") and "unknown device NOPE" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_limits_can_be_shown_and_overridden_from_a_file(db, tmp_path):
    override = tmp_path / "limits.yaml"
    override.write_text("rules:\n  - {kind: wind, levels: [[9.0, high]]}\n")
    changed = json.loads(sitetwin("sensors", "limits", "--db", db, "--set", override, "--json").stdout)
    assert next(r for r in changed["rules"] if r["kind"] == "wind")["levels"] == [[9.0, "high"]]
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - {kind: wind, levels: [[9.0, fatal]]}\n")
    result = sitetwin("sensors", "limits", "--db", db, "--set", bad, check=False)
    assert result.exit_code != 0 and "severity" in str(result.exception)
