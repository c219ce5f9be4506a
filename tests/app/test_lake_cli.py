"""`sitetwin lake publish` and `portfolio | risk | catalogue --lake`: the same figures as over the stores,
under the caller's scope from the store that holds the accounts, and one clear line for a bad lake."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from click.testing import CliRunner

from sitetwin.data.sites import upsert_site
from sitetwin.data.store import open_store
from sitetwin.oversight.errors import AccessDenied, AuthError
from sitetwin.oversight.scope import Scope

SYSTEM = Scope.system()
AS_OF = "2024-06-30"
STORES = {"ja": {"WH-JA-1": "Jiang'an", "WH-JA-2": "Jiang'an"}, "wc": {"WH-WC-1": "Wuchang"}}


def make_cli():
    """``cli(args, token=None, cwd=None)`` -> (exit code, parsed JSON or output, exception)."""
    from sitetwin.app.commands import lake, oversight

    app = typer.Typer()
    oversight.register(app)
    lake.register(app)
    command = typer.main.get_command(app)
    runner = CliRunner()

    def run(args, token=None):
        env = {"SITETWIN_TOKEN": token} if token else {"SITETWIN_TOKEN": None}
        result = runner.invoke(command, [*map(str, args), "--json"], env=env)
        out = json.loads(result.stdout) if result.exit_code == 0 else result.output
        return result.exit_code, out, result.exception
    return run


@pytest.fixture(scope="module")
def cli():
    return make_cli()


def _store(path: Path, sites: dict[str, str]) -> Path:
    from sitetwin.oversight.findings import raise_finding
    from sitetwin.oversight.risk import record_risk
    from sitetwin.vision.detection_store import insert_detections

    with open_store(path) as s:
        with s.transaction():
            for code, district in sites.items():
                upsert_site(s, code, name=f"site {code}", district=district, city="Wuhan")
        for i, code in enumerate(sites):
            for k in range(i + 1):
                raise_finding(s, site_code=code, category="safety", severity="high", title=f"{code} {k}",
                              at=dt.datetime(2024, 6, 3 + k))
            insert_detections(s, [{"detection_id": f"D-{code}-{j}", "site_code": code, "source_kind": "camera",
                                   "source_ref": "gate", "class_name": "person", "confidence": 0.9, "x1": 0,
                                   "y1": 0, "x2": 1, "y2": 1, "captured_at": dt.datetime(2024, 6, 20, 8, j)}
                                  for j in range(2 + i)])
        record_risk(s, SYSTEM, as_of=dt.date(2024, 6, 30))
    return path


@pytest.fixture(scope="module")
def city(tmp_path_factory, cli):
    """Two district stores published into one lake, and a city store holding only accounts (with tokens)."""
    from sitetwin.oversight.accounts import add_account, add_token

    root = tmp_path_factory.mktemp("city")
    stores = {name: _store(root / f"{name}.duckdb", sites) for name, sites in STORES.items()}
    lake = root / "lake"
    for path in stores.values():
        code, report, exc = cli(["lake", "publish", "--db", path, "--lake", lake])
        assert code == 0, exc
    accounts = root / "accounts.duckdb"
    tokens = {}
    with open_store(accounts) as s:
        add_account(s, SYSTEM, "cyril", "city_regulator", city="Wuhan")
        add_account(s, SYSTEM, "dora", "district_regulator", district="Wuchang", city="Wuhan")
        # a contractor's account names its sites, so this store knows the site (its data lives in the lake)
        with s.transaction():
            upsert_site(s, "WH-JA-2", district="Jiang'an", city="Wuhan")
        add_account(s, SYSTEM, "cole", "contractor", sites=["WH-JA-2"])
        for name in ("cyril", "dora", "cole"):
            tokens[name] = add_token(s, SYSTEM, name, "cli")[0]
    return {"stores": stores, "lake": lake, "accounts": accounts, "tokens": tokens}


def test_publishing_twice_through_the_shell_writes_nothing_the_second_time(cli, city, tmp_path):
    code, report, exc = cli(["lake", "publish", "--db", city["stores"]["ja"], "--lake", city["lake"]])
    assert code == 0, exc
    assert report["written"] == [] and report["sites"] == ["WH-JA-1", "WH-JA-2"] and report["unchanged"] > 0
    code, listed, exc = cli(["lake", "status", "--lake", city["lake"]])
    assert code == 0, exc
    assert [r["site_code"] for r in listed] == ["WH-JA-1", "WH-JA-2", "WH-WC-1"]
    assert listed[1]["tables"]["findings"] == 2


def test_the_portfolio_over_the_lake_equals_the_portfolio_over_the_stores(cli, city, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)                    # no sitetwin.duckdb here: the lake's local owner reads
    want_sites, want_risk, want_catalogue = [], [], []
    for path in city["stores"].values():
        want_sites += cli(["portfolio", "--by", "site", "--as-of", AS_OF, "--db", path])[1]
        want_risk += cli(["risk", "--as-of", AS_OF, "--db", path])[1]
        want_catalogue += cli(["catalogue", "--as-of", AS_OF, "--db", path])[1]
    code, got, exc = cli(["portfolio", "--by", "site", "--as-of", AS_OF, "--lake", city["lake"]])
    assert code == 0, exc
    assert got == sorted(want_sites, key=lambda r: (r["district"], r["site_code"]))
    assert [r["open_findings"] for r in got] == [1, 2, 1] and [r["detections"] for r in got] == [2, 3, 2]
    assert cli(["risk", "--as-of", AS_OF, "--lake", city["lake"]])[1] == want_risk
    assert cli(["catalogue", "--as-of", AS_OF, "--lake", city["lake"]])[1] == want_catalogue
    code, by_city, exc = cli(["portfolio", "--by", "city", "--as-of", AS_OF, "--lake", city["lake"]])
    assert code == 0 and by_city[0]["sites"] == 3 and by_city[0]["open_findings"] == 4, exc


@pytest.mark.parametrize(("who", "visible"), [("cyril", {"WH-JA-1", "WH-JA-2", "WH-WC-1"}), ("dora", {"WH-WC-1"}),
                                              ("cole", {"WH-JA-2"})])
def test_a_scoped_reader_of_the_lake_sees_only_its_sites(cli, city, who, visible):
    d = ["--db", city["accounts"], "--lake", city["lake"], "--as-of", AS_OF]
    token = city["tokens"][who]
    code, rows, exc = cli(["portfolio", "--by", "site", *d], token=token)
    assert code == 0, exc
    assert {r["site_code"] for r in rows} == visible
    assert {r["site_code"] for r in cli(["risk", *d], token=token)[1]} == visible
    assert {r["site_code"] for r in cli(["catalogue", *d], token=token)[1]} <= visible
    assert sum(r["sites"] for r in cli(["portfolio", *d], token=token)[1]) == len(visible)
    for other in {"WH-JA-1", "WH-WC-1"} - visible:
        code, _, exc = cli(["risk", "--site", other, *d], token=token)
        assert code != 0 and isinstance(exc, AccessDenied), exc
        code, _, exc = cli(["catalogue", "--site", other, *d], token=token)
        assert code != 0 and isinstance(exc, AccessDenied), exc


def test_a_store_with_accounts_wants_a_token_and_a_lake_alone_takes_none(cli, city, tmp_path, monkeypatch):
    code, _, exc = cli(["portfolio", "--db", city["accounts"], "--lake", city["lake"]])
    assert code != 0 and isinstance(exc, AuthError) and "has accounts" in str(exc)
    code, _, exc = cli(["portfolio", "--db", city["accounts"], "--lake", city["lake"]], token="stk_nope_nope")
    assert code != 0 and isinstance(exc, AuthError)
    monkeypatch.chdir(tmp_path)
    code, _, exc = cli(["portfolio", "--lake", city["lake"]], token=city["tokens"]["cyril"])
    assert code != 0 and isinstance(exc, AuthError) and "pass that store with --db" in str(exc)


def test_the_lake_reads_of_a_token_are_audited_in_its_store(cli, city):
    from sitetwin.oversight.audit import audit_log

    token = city["tokens"]["dora"]
    assert cli(["portfolio", "--db", city["accounts"], "--lake", city["lake"]], token=token)[0] == 0
    with open_store(city["accounts"], read_only=True) as s:
        rows = audit_log(s, Scope.for_account("ada", "admin"), actor="dora")
    assert any(r["action"] == "view" and r["object_kind"] == "portfolio_rollup" for r in rows)


def test_publishing_needs_export_permission_on_each_site(cli, tmp_path):
    from sitetwin.oversight.accounts import add_account, add_token

    db = _store(tmp_path / "p.duckdb", {"WH-JA-1": "Jiang'an", "WH-JA-2": "Jiang'an"})
    with open_store(db) as s:
        add_account(s, SYSTEM, "vic", "viewer", sites=["WH-JA-1"])
        add_account(s, SYSTEM, "cole", "contractor", sites=["WH-JA-1"])
        viewer, contractor = add_token(s, SYSTEM, "vic", "cli")[0], add_token(s, SYSTEM, "cole", "cli")[0]
    lake = tmp_path / "lake"
    code, _, exc = cli(["lake", "publish", "--db", db, "--lake", lake], token=viewer)
    assert code != 0 and isinstance(exc, AccessDenied) and not lake.exists()
    code, _, exc = cli(["lake", "publish", "--db", db, "--lake", lake, "--site", "WH-JA-2"], token=contractor)
    assert code != 0 and isinstance(exc, AccessDenied) and not lake.exists()
    code, report, exc = cli(["lake", "publish", "--db", db, "--lake", lake], token=contractor)
    assert code == 0, exc
    assert report["sites"] == ["WH-JA-1"] and {w["site_code"] for w in report["written"]} == {"WH-JA-1"}
    assert not list(lake.glob("*/*/*/site=WH-JA-2"))


def test_recording_risk_into_a_lake_is_refused(cli, city):
    code, out, exc = cli(["risk", "--record", "--lake", city["lake"]])
    assert code == 2 and "--record" in out, out


def _sitetwin(*args, cwd):
    return subprocess.run([sys.executable, "-m", "sitetwin.app.cli", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=120, env={"PATH": "/usr/bin:/bin", "HOME": str(cwd)})


def test_a_missing_or_unwritable_lake_is_one_error_line(city, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    cases = [(["portfolio", "--lake", tmp_path / "nowhere"], "no sitetwin lake there"),
             (["lake", "publish", "--db", city["stores"]["wc"], "--lake", blocker / "lake"], "cannot write there")]
    for args, words in cases:
        result = _sitetwin(*args, "--json", cwd=tmp_path)
        assert result.returncode == 1 and result.stdout == "", result.stderr
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], result.stderr
    assert not (blocker.parent / "nowhere").exists()
