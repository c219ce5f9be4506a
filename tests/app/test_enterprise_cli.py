"""``sitetwin enterprise``: add, import, list and link from the shell; only an admin writes, a bad file
stores nothing, and each caller lists the enterprises of its own sites."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import typer
from click.testing import CliRunner

from sitetwin.data.enterprises import EnterpriseError, credit_check_char
from sitetwin.oversight.errors import AccessDenied

CSCEC3 = "91420000177572435" + credit_check_char("91420000177572435")
CURTAIN = "91420100MA4K00001" + credit_check_char("91420100MA4K00001")
WUCHANG = "91420106MA4K00002" + credit_check_char("91420106MA4K00002")


@pytest.fixture
def db(tmp_path):
    from sitetwin.data.sites import upsert_site
    from sitetwin.data.store import open_store

    path = tmp_path / "t.duckdb"
    with open_store(path) as store, store.transaction():
        upsert_site(store, "WH-JA-1", name="江岸项目", district="Jiang'an", city="Wuhan")
        upsert_site(store, "WH-WC-1", name="武昌项目", district="Wuchang", city="Wuhan")
    return path


@pytest.fixture
def cli(db):
    """``cli(*args, token=None, as_json=True)`` -> (exit code, parsed JSON or the text, exception)."""
    from sitetwin.app.commands.enterprises import register

    app = typer.Typer()
    register(app)
    command = typer.main.get_command(app)
    runner = CliRunner()

    def run(*args, token=None, as_json=True):
        result = runner.invoke(command, ["enterprise", *map(str, args), "--db", str(db),
                                         *(["--json"] if as_json else [])],
                               env={"SITETWIN_TOKEN": token, "SITETWIN_LANG": "en", "COLUMNS": "200"})
        out = result.stdout
        if as_json and result.exit_code == 0:
            out = json.loads(out)
        return result.exit_code, out, result.exception
    return run


def stored(db):
    from sitetwin.data.store import open_store

    with open_store(db, read_only=True) as s:
        return (s.rows("SELECT enterprise_code, name, credit_code, kind FROM enterprises ORDER BY 1"),
                s.rows("SELECT site_code, enterprise_code FROM sites ORDER BY 1"))


def test_an_enterprise_is_added_linked_listed_and_updated_from_the_shell(cli, db):
    code, row, _ = cli("add", "CSCEC3", "--name", "中建三局集团有限公司", "--credit-code", CSCEC3, "--site", "WH-JA-1")
    assert code == 0 and (row["enterprise_code"], row["kind"], row["sites"]) == ("CSCEC3", "general_contractor", 1)
    code, linked, _ = cli("link", "CSCEC3", "WH-WC-1")
    assert code == 0 and linked == {"enterprise_code": "CSCEC3", "sites": ["WH-WC-1"]}
    assert cli("list")[1] == [{"enterprise_code": "CSCEC3", "name": "中建三局集团有限公司", "credit_code": CSCEC3,
                               "kind": "general_contractor", "sites": 2}]
    assert cli("add", "CSCEC3", "--name", "中建三局", "--credit-code", CSCEC3, "--kind", "specialty_contractor")[0] == 0
    assert stored(db)[0] == [{"enterprise_code": "CSCEC3", "name": "中建三局", "credit_code": CSCEC3,
                              "kind": "specialty_contractor"}]
    code, text, _ = cli("list", as_json=False)
    assert code == 0 and "specialty contractor" in text and "credit code" in text   # the reader's words


def test_a_file_of_enterprises_is_imported_with_their_sites(cli, db, tmp_path):
    path = tmp_path / "enterprises.json"
    path.write_text(json.dumps({"enterprises": [
        {"enterprise_code": "CSCEC3", "name": "中建三局集团有限公司", "credit_code": CSCEC3, "sites": ["WH-JA-1"]},
        {"enterprise_code": "CURTAIN", "name": "某幕墙工程有限公司", "credit_code": CURTAIN,
         "kind": "specialty_contractor"}]}, ensure_ascii=False), encoding="utf-8")
    code, reports, _ = cli("import", path)
    assert code == 0 and reports == [{"file": str(path), "enterprises": 2, "sites": 1}]
    assert [r["enterprise_code"] for r in stored(db)[0]] == ["CSCEC3", "CURTAIN"]
    assert stored(db)[1] == [{"site_code": "WH-JA-1", "enterprise_code": "CSCEC3"},
                             {"site_code": "WH-WC-1", "enterprise_code": None}]
    code, text, _ = cli("import", path, as_json=False)
    assert code == 0 and "2 enterprises stored, 1 sites linked" in text


def test_a_bad_enterprise_file_is_one_error_line_naming_row_and_field_and_nothing_is_stored(db, tmp_path):
    path = tmp_path / "enterprises.csv"
    bad = CSCEC3[:-1] + ("0" if CSCEC3[-1] != "0" else "1")              # a wrong check character
    path.write_text("enterprise_code,name,credit_code,kind,sites\n"
                    f"CURTAIN,某幕墙工程有限公司,{CURTAIN},specialty_contractor,\n"
                    f"CSCEC3,中建三局集团有限公司,{bad},general_contractor,WH-JA-1\n", encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "sitetwin.app.cli", "enterprise", "import", str(path),
                             "--db", str(db)], capture_output=True, text=True, timeout=120,
                            env={"SITETWIN_LANG": "en", "PATH": ""})
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert f"{path}: row 2: credit_code" in lines[0]
    assert stored(db) == ([], [{"site_code": "WH-JA-1", "enterprise_code": None},
                               {"site_code": "WH-WC-1", "enterprise_code": None}])


def test_an_unknown_site_refuses_the_whole_link(cli, db):
    cli("add", "CSCEC3", "--name", "中建三局集团有限公司", "--credit-code", CSCEC3)
    code, _, exc = cli("link", "CSCEC3", "WH-JA-1", "WH-NOPE")
    assert code == 1 and isinstance(exc, EnterpriseError) and "no site 'WH-NOPE'" in str(exc)
    assert stored(db)[1][0] == {"site_code": "WH-JA-1", "enterprise_code": None}


@pytest.fixture
def accounts(cli, db):
    """CSCEC3 builds WH-JA-1 (CURTAIN subcontracts there), WUCHANG builds WH-WC-1; tokens of an admin, a
    contractor of WH-JA-1 and the enterprise account of CSCEC3."""
    from sitetwin.data.enterprises import add_subcontractor
    from sitetwin.data.store import open_store
    from sitetwin.oversight.accounts import add_account, add_token
    from sitetwin.oversight.scope import Scope

    cli("add", "CSCEC3", "--name", "中建三局集团有限公司", "--credit-code", CSCEC3, "--site", "WH-JA-1")
    cli("add", "CURTAIN", "--name", "某幕墙工程有限公司", "--credit-code", CURTAIN, "--kind", "specialty_contractor")
    cli("add", "WUCHANG", "--name", "武昌某建设有限公司", "--credit-code", WUCHANG, "--site", "WH-WC-1")
    system = Scope.system()
    tokens = {}
    with open_store(db) as s:
        add_subcontractor(s, "WH-JA-1", "CURTAIN", scope_of_work="幕墙")
        add_account(s, system, "ada", "admin", password="admin password 1")
        add_account(s, system, "cole", "contractor", password="contractor pw 1", sites=["WH-JA-1"])
        add_account(s, system, "cscec", "enterprise", password="enterprise pw 1", enterprise="CSCEC3")
        for user in ("ada", "cole", "cscec"):
            tokens[user] = add_token(s, system, user, "cli test")[0]
    return tokens


def test_only_an_admin_writes_enterprises_and_a_refusal_is_logged(cli, db, accounts):
    from sitetwin.data.store import open_store

    before = stored(db)
    for user in ("cole", "cscec"):
        code, _, exc = cli("add", "X1", "--name", "某公司", "--credit-code", WUCHANG, token=accounts[user])
        assert code == 1 and isinstance(exc, AccessDenied) and "allowed roles: admin" in str(exc)
        code, _, exc = cli("link", "CSCEC3", "WH-WC-1", token=accounts[user])
        assert code == 1 and isinstance(exc, AccessDenied)
    assert stored(db) == before
    with open_store(db, read_only=True) as s:
        assert s.scalar("SELECT count(*) FROM audit_log WHERE action = 'denied' AND object_kind = 'enterprise'") == 4
    assert cli("link", "CSCEC3", "WH-WC-1", token=accounts["ada"])[0] == 0
    with open_store(db, read_only=True) as s:
        assert s.rows("SELECT actor, action, object_id FROM audit_log WHERE object_kind = 'enterprise' "
                      "AND actor = 'ada'") == [{"actor": "ada", "action": "write", "object_id": "CSCEC3"}]


def test_each_caller_lists_only_the_enterprises_of_its_own_sites(cli, accounts):
    def codes(token, *args):
        code, rows, exc = cli("list", *args, token=token)
        assert code == 0, exc
        return [r["enterprise_code"] for r in rows]

    assert codes(accounts["ada"]) == ["CSCEC3", "CURTAIN", "WUCHANG"]
    assert codes(accounts["cole"]) == ["CSCEC3", "CURTAIN"]              # builder and subcontractor of WH-JA-1
    assert codes(accounts["cscec"]) == ["CSCEC3", "CURTAIN"]
    assert codes(accounts["cole"], "--site", "WH-JA-1") == ["CSCEC3", "CURTAIN"]
    code, _, exc = cli("list", "--site", "WH-WC-1", token=accounts["cole"])
    assert code == 1 and isinstance(exc, AccessDenied)
