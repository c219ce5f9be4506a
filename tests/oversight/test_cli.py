"""The oversight commands: who is calling, the closed loop from the shell, and every read kept to scope."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from click.testing import CliRunner

from sitetwin.oversight.errors import AccessDenied, AuthError

PW = "cli password 123"
OTHER = "WH-WC-1"


def make_cli():
    """``cli(args, token=None, input=None)`` -> (exit code, parsed JSON or output, exception)."""
    from sitetwin.app.commands.oversight import register

    app = typer.Typer()
    register(app)
    command = typer.main.get_command(app)      # built once: typer would rebuild it on every invoke
    runner = CliRunner()

    def run(args, token=None, input=None, as_json=True):
        env = {"SITETWIN_TOKEN": token} if token else {"SITETWIN_TOKEN": None}
        result = runner.invoke(command, [*args, *(["--json"] if as_json else [])], input=input, env=env)
        out = result.stdout
        if as_json and result.exit_code == 0:
            out = json.loads(out)
        return result.exit_code, out, result.exception
    return run


@pytest.fixture
def cli():
    return make_cli()


def _empty_store(path: Path) -> Path:
    from sitetwin.data.sites import upsert_site
    from sitetwin.data.store import open_store

    with open_store(path) as s:
        for code, district in (("WH-JA-1", "Jiang'an"), ("WH-JA-2", "Jiang'an"), ("WH-WC-1", "Wuchang"),
                               ("WH-WC-2", "Wuchang")):
            upsert_site(s, code, district=district, city="Wuhan")
    return path


@pytest.fixture
def empty_db(tmp_path):
    """A store file with four sites in two districts and no accounts yet."""
    return _empty_store(tmp_path / "empty.duckdb")


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """A store with accounts for every role (the first made by the local owner) and a session token for each."""
    cli = make_cli()
    db = _empty_store(tmp_path_factory.mktemp("cli") / "site.duckdb")
    code, _, exc = cli(["user", "add", "ada", "--role", "admin", "--password-stdin", "--db", str(db)], input=PW + "\n")
    assert code == 0, exc
    tokens = {}
    code, login, _ = cli(["login", "ada", "--password-stdin", "--db", str(db)], input=PW + "\n")
    tokens["admin"] = login["token"]
    accounts = {"city_regulator": ["--city", "Wuhan"], "district_regulator": ["--district", "Jiang'an"],
                "contractor": ["--site", "WH-JA-1"], "viewer": ["--site", "WH-JA-1"]}
    for role, extra in accounts.items():
        code, _, exc = cli(["user", "add", role.replace("_", "-"), "--role", role, *extra, "--password-stdin",
                            "--db", str(db)], token=tokens["admin"], input=PW + "\n")
        assert code == 0, exc
        code, login, exc = cli(["login", role.replace("_", "-"), "--password-stdin", "--db", str(db)], input=PW + "\n")
        tokens[role] = login["token"]
    return db, tokens


@pytest.fixture
def db(template, tmp_path):
    """A private copy of the template store."""
    import shutil

    target = tmp_path / "site.duckdb"
    shutil.copy(template[0], target)
    return target


@pytest.fixture
def tokens(template):
    return template[1]


def test_the_local_owner_makes_the_first_admin_then_a_token_is_required(cli, empty_db):
    db = empty_db
    code, acc, _ = cli(["user", "add", "ada", "--role", "admin", "--password-stdin", "--db", str(db)], input=PW + "\n")
    assert code == 0 and acc["role"] == "admin"
    code, _, exc = cli(["finding", "list", "--db", str(db)])
    assert code != 0 and isinstance(exc, AuthError) and "pass --token or set SITETWIN_TOKEN" in str(exc)
    code, _, exc = cli(["user", "add", "eve", "--role", "admin", "--password-stdin", "--db", str(db)], input=PW + "\n")
    assert isinstance(exc, AuthError)


def test_the_closed_loop_runs_from_the_shell(cli, db, tokens, tmp_path):
    d = ["--db", str(db)]
    code, f, exc = cli(["finding", "raise", "--site", "WH-JA-1", "--category", "safety", "--severity", "high",
                        "--title", "Guard rail missing", "--location", "1.5,2,9", *d],
                       token=tokens["district_regulator"])
    assert code == 0, exc
    assert f["ref"] == "WH-JA-1-1" and f["status"] == "open"
    photo = tmp_path / "after.jpg"
    photo.write_bytes(b"\xff\xd8jpeg")
    code, r, exc = cli(["finding", "submit", f["ref"], "--note", "rail fixed", "--photo", str(photo), *d],
                       token=tokens["contractor"])
    assert code == 0 and r["status"] == "rectification_submitted", exc
    code, _, exc = cli(["finding", "verify", f["ref"], *d], token=tokens["contractor"])
    assert isinstance(exc, AccessDenied) and "may not verify close" in str(exc)
    code, r, _ = cli(["finding", "verify", f["ref"], "--note", "seen on camera", *d],
                     token=tokens["district_regulator"])
    assert r["status"] == "verified_closed"
    code, shown, _ = cli(["finding", "show", f["finding_id"], *d], token=tokens["viewer"])
    assert shown["history_intact"] and [e["kind"] for e in shown["events"]] == [
        "raised", "rectification_submitted", "verified_closed"]
    assert shown["events"][1]["evidence"]["photos"] == [str(photo.resolve())]


def test_bcf_goes_out_and_back_in_through_the_shell(cli, db, tokens, tmp_path, shared_data):
    d = ["--db", str(db)]
    code, r, exc = cli(["bcf", "import", str(shared_data / "bcf/bcf-xml/v2.0_MultipleTopics.bcfzip"), "--site",
                        "WH-JA-1", *d], token=tokens["district_regulator"])
    assert code == 0 and len(r["created"]) == 3, exc
    out = tmp_path / "out.bcf"
    code, r, exc = cli(["bcf", "export", str(out), "--site", "WH-JA-1", "--version", "3.0", *d],
                       token=tokens["contractor"])
    assert code == 0 and r["topics"] == 3 and r["viewpoints"] == 3 and out.exists(), exc


def test_reports_scores_and_catalogue_from_the_shell(cli, db, tokens, tmp_path):
    d = ["--db", str(db)]
    code, ev, exc = cli(["evaluate", "--site", "WH-JA-1", "--html", str(tmp_path / "r.html"), "--pdf",
                         str(tmp_path / "r.pdf"), *d], token=tokens["district_regulator"])
    assert code == 0, exc
    assert ev["grade"] == "fail" and len(ev["items"]) == 17 and "clamp(1 + 0.25" in ev["premium_formula"]
    assert (tmp_path / "r.pdf").read_bytes()[:4] == b"%PDF" and "Insurance premium factor" in (
        tmp_path / "r.html").read_text()
    code, scores, _ = cli(["risk", "--record", *d], token=tokens["district_regulator"])
    assert [s["site_code"] for s in scores] == ["WH-JA-1", "WH-JA-2"] and all(len(s["components"]) == 8 for s in scores)
    code, trend, _ = cli(["risk", "--site", "WH-JA-1", "--trend", *d], token=tokens["viewer"])
    assert len(trend) == 1
    code, plan, _ = cli(["inspections", *d], token=tokens["city_regulator"])
    assert len(plan) == 4
    code, r, exc = cli(["tier", "WH-JA-1", "C", "--reason", "edge failures", *d], token=tokens["contractor"])
    assert isinstance(exc, AccessDenied)
    code, r, _ = cli(["tier", "WH-JA-1", "C", "--reason", "edge failures", *d], token=tokens["city_regulator"])
    assert r["tier"] == "C"
    code, audit, _ = cli(["audit", "--action", "denied", *d], token=tokens["admin"])
    assert {a["actor"] for a in audit} == {"contractor"}


# every read command, and the rows it may show; site-specific reads of another site must be refused
READS = [
    (["finding", "list"], "site_code_of_ref"),
    (["portfolio", "--by", "site"], "site_code"),
    (["portfolio", "--by", "district"], "district"),
    (["catalogue"], "site_code"),
    (["catalogue", "--quality"], "site_code"),
    (["risk"], "site_code"),
    (["inspections"], "site_code"),
]
# (command, heavy): heavy ones are run only where they must be refused; allowed, they are tested above
SITE_READS = [
    (["finding", "list", "--site", OTHER], False),
    (["finding", "show", "{other_finding}"], False),
    (["risk", "--site", OTHER], False),
    (["risk", "--site", OTHER, "--trend"], False),
    (["catalogue", "--site", OTHER], False),
    (["evaluate", "--site", OTHER, "--no-record"], True),
    (["bcf", "export", "{tmp}/x.bcfzip", "--site", OTHER], True),
    (["package", "export", "--out", "{tmp}/pkg", "--site", OTHER], True),
]
VISIBLE = {"admin": {"WH-JA-1", "WH-JA-2", "WH-WC-1", "WH-WC-2"}, "city_regulator": {"WH-JA-1", "WH-JA-2", "WH-WC-1",
                                                                                      "WH-WC-2"},
           "district_regulator": {"WH-JA-1", "WH-JA-2"}, "contractor": {"WH-JA-1"}, "viewer": {"WH-JA-1"}}
DISTRICTS = {"WH-JA-1": "Jiang'an", "WH-JA-2": "Jiang'an", "WH-WC-1": "Wuchang", "WH-WC-2": "Wuchang"}


@pytest.fixture(scope="module")
def read_db(template):
    """The template store with one finding on every site (shared: the read matrix only reads)."""
    from sitetwin.data.store import open_store
    from sitetwin.oversight.findings import raise_finding

    with open_store(template[0]) as s:
        for site in DISTRICTS:
            raise_finding(s, site_code=site, category="safety", severity="low", title=f"at {site}")
        other_finding = s.scalar("SELECT finding_id FROM findings WHERE site_code = ?", [OTHER])
    return template[0], other_finding


@pytest.mark.parametrize("role", list(VISIBLE))
def test_every_cli_read_shows_only_the_callers_sites_and_refuses_others(cli, read_db, tokens, tmp_path, role):
    db, other_finding = read_db
    d = ["--db", str(db)]
    for args, key in READS:
        code, rows, exc = cli([*args, *d], token=tokens[role])
        assert code == 0, (args, exc)
        if key == "site_code_of_ref":
            seen = {r["ref"].rsplit("-", 1)[0] for r in rows}
        elif key == "district":
            assert {r["district"] for r in rows} == {DISTRICTS[s] for s in VISIBLE[role]}
            assert sum(r["sites"] for r in rows) == len(VISIBLE[role])
            continue
        else:
            seen = {r[key] for r in rows}
        assert seen <= VISIBLE[role], (args, seen)
        if args[0] in ("finding", "portfolio", "inspections", "risk"):
            assert seen == VISIBLE[role], (args, seen)
    for args, heavy in SITE_READS:
        args = [a.format(tmp=tmp_path, other_finding=other_finding) for a in args]
        if OTHER in VISIBLE[role]:
            if not heavy:
                code, _, exc = cli([*args, *d], token=tokens[role])
                assert code == 0, (args, exc)
        else:
            code, _, exc = cli([*args, *d], token=tokens[role])
            assert code != 0 and isinstance(exc, AccessDenied), (args, exc)


def test_errors_are_one_line_on_stderr_and_json_is_one_document(empty_db):
    db = empty_db

    env = {**os.environ, "SITETWIN_TOKEN": "stk_nope_nope"}
    sitetwin = str(Path(sys.executable).with_name("sitetwin"))
    bad = subprocess.run([sitetwin, "finding", "list", "--db", str(db)], capture_output=True, text=True, env=env)
    assert bad.returncode == 1 and bad.stdout == ""
    assert bad.stderr.strip().splitlines() == ["error: unknown API token"]
    env.pop("SITETWIN_TOKEN")
    ok = subprocess.run([sitetwin, "portfolio", "--db", str(db), "--json"], capture_output=True, text=True, env=env)
    assert ok.returncode == 0 and len(json.loads(ok.stdout)) == 2
