"""``sitetwin works``: the register from the shell, its steps checked, bad files refused whole, errors one line."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

import pytest
import typer
from click.testing import CliRunner

from sitetwin.data.clock import utcnow
from sitetwin.oversight.dangerous_works import WorksError

TODAY = utcnow().date()


def day(n: int) -> str:
    return (TODAY + dt.timedelta(days=n)).isoformat()


@pytest.fixture
def db(tmp_path):
    from sitetwin.data.sites import upsert_site
    from sitetwin.data.store import open_store

    path = tmp_path / "t.duckdb"
    with open_store(path) as store, store.transaction():
        upsert_site(store, "WH-1", name="Riverside", district="Jiang'an", city="Wuhan")
    return path


@pytest.fixture
def cli(db):
    """``cli(*args)`` -> (exit code, parsed JSON, exception); the store has no accounts: the local user is admin."""
    from sitetwin.app.commands.works import register

    app = typer.Typer()
    register(app)
    command = typer.main.get_command(app)
    runner = CliRunner()

    def run(*args):
        result = runner.invoke(command, ["works", *map(str, args), "--db", str(db), "--json"],
                               env={"SITETWIN_TOKEN": None})
        return result.exit_code, json.loads(result.stdout) if result.exit_code == 0 else None, result.exception
    return run


def test_a_beyond_scale_pit_goes_from_registered_to_finished_from_the_shell(cli):
    code, w, _ = cli("add", "--site", "WH-1", "--code", "DW-1", "--type", "基坑工程", "--scale", "beyond_scale",
                     "--title", "Basement pit 9.5 m", "--responsible", "Li Wei", "--planned-start", day(-10),
                     "--planned-end", day(40), "--zone", "0 0; 40 0; 40 25; 0 25", "--z-min", -10, "--z-max", 2)
    assert code == 0 and (w["work_type"], w["state"], w["review_state"], w["overdue_days"]) == \
        ("foundation_pit", "planned", "pending", 10)
    assert w["zone"] == {"polygon_m": [[0, 0], [40, 0], [40, 25], [0, 25]], "z_min_m": -10.0, "z_max_m": 2.0}
    code, _, exc = cli("approve", "DW-1", "--site", "WH-1", "--by", "Zhang", "--on", day(-2))
    assert code == 1 and isinstance(exc, WorksError) and "expert review passed" in str(exc)
    code, check, _ = cli("check", "--site", "WH-1")
    assert code == 0 and check["overdue"] == ["DW-1"] and len(check["findings"]) == 1
    assert cli("review", "DW-1", "--site", "WH-1", "--passed", "--on", day(-3))[1]["review_state"] == "passed"
    assert cli("approve", w["work_id"], "--by", "Zhang", "--on", day(-2))[1]["state"] == "approved"
    assert cli("start", "DW-1", "--site", "WH-1", "--on", day(-1))[1]["state"] == "active"
    assert cli("finish", "DW-1", "--site", "WH-1")[1]["actual_end"] == day(0)
    code, shown, _ = cli("show", "DW-1", "--site", "WH-1")
    assert [e["kind"] for e in shown["history"]] == ["registered", "reviewed", "approved", "started", "finished"]
    code, rows, _ = cli("list", "--state", "finished")
    assert [r["code"] for r in rows] == ["DW-1"] and cli("list", "--overdue")[1] == []


def test_a_bad_register_file_is_one_error_line_and_nothing_is_stored(cli, db, tmp_path):
    path = tmp_path / "register.csv"
    path.write_text("code,work_type,title,responsible,planned_start,planned_end\n"
                    f"SC-1,scaffolding,Scaffold,Wang,{day(1)},{day(30)}\n"
                    f"DW-2,deep_digging,Pit,Li,{day(1)},{day(30)}\n", encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "sitetwin.app.cli", "works", "import", str(path), "--site", "WH-1",
                             "--db", str(db), "--json"], capture_output=True, text=True, timeout=120)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1 and result.stdout == "" and len(lines) == 1
    assert "register.csv: row 2, field work_type: unknown work type 'deep_digging'" in lines[0]
    assert cli("list")[1] == []
    path.write_text(path.read_text().replace("deep_digging", "foundation_pit"), encoding="utf-8")
    code, report, _ = cli("import", path, "--site", "WH-1")
    assert code == 0 and report["works"] == 2 and len(cli("list", "--site", "WH-1")[1]) == 2
