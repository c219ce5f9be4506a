"""`sitetwin serve --lake`: the portfolio page answers from the city lake under the caller's scope from the
platform store (the same figures as `sitetwin portfolio --lake`), a site only the lake holds links to its
project platform, a lake that cannot be opened is refused at start, and the page reads Chinese."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

import pytest

from sitetwin.data.sites import upsert_site
from sitetwin.data.store import open_store
from sitetwin.oversight.scope import Scope

SYSTEM = Scope.system()
PASSWORD = "correct horse battery"
# two site stores: (city, district) per site; XY-1 lies in another city, outside both regulators' scope
STORES = {"ja": {"WH-JA-1": ("Wuhan", "Jiang'an"), "WH-JA-2": ("Wuhan", "Jiang'an")},
          "wc": {"WH-WC-1": ("Wuhan", "Wuchang"), "XY-1": ("Xiangyang", "Fancheng")}}
ACCOUNTS = {"cyril": ("city_regulator", {"city": "Wuhan"}),
            "dora": ("district_regulator", {"district": "Wuchang", "city": "Wuhan"})}


def _site_store(path, sites: dict) -> None:
    from sitetwin.oversight.findings import raise_finding
    from sitetwin.oversight.risk import record_risk

    with open_store(path) as s:
        with s.transaction():
            for code, (city, district) in sites.items():
                upsert_site(s, code, name=f"site {code}", district=district, city=city)
        for i, code in enumerate(sites):
            for k in range(i + 1):
                raise_finding(s, site_code=code, category="safety", severity="high", title=f"{code} {k}",
                              at=dt.datetime(2024, 6, 3 + k))
        record_risk(s, SYSTEM, as_of=dt.date(2024, 6, 30))


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    """A lake published from two site stores, and a platform store holding the accounts and one of the sites."""
    from sitetwin.data.lake import publish
    from sitetwin.oversight.accounts import add_account, add_token

    root = tmp_path_factory.mktemp("lake-city")
    lake = root / "lake"
    for name, sites in STORES.items():
        _site_store(root / f"{name}.duckdb", sites)
        with open_store(root / f"{name}.duckdb") as s:
            publish(s, lake)
    platform = root / "platform.duckdb"
    tokens = {}
    with open_store(platform) as s:
        with s.transaction():    # the platform keeps WH-JA-1's own pages; the other sites live only in the lake
            upsert_site(s, "WH-JA-1", name="site WH-JA-1", district="Jiang'an", city="Wuhan")
        for user, (role, kw) in ACCOUNTS.items():
            add_account(s, SYSTEM, user, role, password=PASSWORD, **kw)
            tokens[user] = add_token(s, SYSTEM, user, "cli")[0]
    return {"lake": lake, "platform": platform, "tokens": tokens}


@pytest.fixture(scope="module")
def lake_app(city):
    from sitetwin.dashboards.app import create_app

    app = create_app(city["platform"], lake=str(city["lake"]))
    app.server.testing = True
    return app


class Browser:
    """One logged-in browser calling the portfolio's fill callback (``access_helpers``: test_access.py's client)."""

    def __init__(self, app, h, user, lang=None):
        self.h = h
        self.client = h.Client(app)
        if lang:
            self.client.http.set_cookie("sitetwin_lang", lang)
        assert self.client.login(user, PASSWORD).status_code == 302
        self.callbacks = h._callbacks(app)

    def fill(self, values=None) -> dict:
        values = values or {}
        key = next(k for k in self.callbacks if k.lstrip(".").startswith("portfolio-city.options"))
        body = self.h._body(key, self.callbacks[key], lambda id_, prop: values.get((id_, prop)))
        resp = self.client.call(body)
        assert resp.status_code == 200, resp.get_data(as_text=True)[:300]
        return json.loads(resp.get_data(as_text=True))["response"]


def _texts(node) -> str:
    return json.dumps(node, ensure_ascii=False)


def _flat(node) -> str:
    if isinstance(node, dict):
        return _flat(node.get("props", {}).get("children")) if "props" in node else ""
    if isinstance(node, list):
        return " ".join(_flat(x) for x in node)
    return "" if node is None else str(node)


def _table(table) -> list[dict]:
    """An HTML table of the page as [{header: cell text}] (the site table's group rows left out)."""
    head, body = table["props"]["children"]
    names = [_flat(th) for th in head["props"]["children"]["props"]["children"]]
    return [dict(zip(names, (_flat(td) for td in tr["props"]["children"]))) for tr in body["props"]["children"]
            if "group-row" not in (tr["props"].get("className") or "")]


def _site_rows(response) -> dict[str, dict]:
    return {r["site"]: r for r in _table(response["portfolio-sites"]["children"])}


def _cli_portfolio(city, user) -> list[dict]:
    """`sitetwin portfolio --by site --lake` as ``user`` (their token in the platform store), as JSON."""
    import typer
    from click.testing import CliRunner

    from sitetwin.app.commands import lake, oversight

    app = typer.Typer()
    oversight.register(app)
    lake.register(app)
    result = CliRunner().invoke(typer.main.get_command(app),
                                ["portfolio", "--by", "site", "--db", str(city["platform"]), "--lake",
                                 str(city["lake"]), "--json"], env={"SITETWIN_TOKEN": city["tokens"][user]})
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize("user, sites", [("cyril", ["WH-JA-1", "WH-JA-2", "WH-WC-1"]), ("dora", ["WH-WC-1"])])
def test_the_portfolio_page_answers_from_the_lake_with_the_figures_of_portfolio_lake(
        lake_app, access_helpers, city, user, sites):
    r = Browser(lake_app, access_helpers, user).fill()
    rows = _site_rows(r)
    assert sorted(rows) == sites
    assert "XY-1" not in _texts(r) and "Xiangyang" not in _texts(r)          # out of scope: never shown
    want = {w["site_code"]: w for w in _cli_portfolio(city, user)}
    assert sorted(want) == sites
    for code in sites:
        assert int(rows[code]["open"]) == want[code]["open_findings"]
        assert int(rows[code]["overdue"]) == want[code]["overdue_findings"]
        assert float(rows[code]["risk"]) == pytest.approx(want[code]["risk_score"], abs=0.05)
        assert rows[code]["tier"] == want[code]["tier"]
    figures = _texts(r["portfolio-summary"])
    assert "Figures from the city lake." in figures
    assert r["portfolio-city"]["options"] == ["Wuhan"]
    rollups = _table(r["portfolio-rollups"]["children"])
    assert sum(int(x["sites"]) for x in rollups) == len(sites)
    assert sum(int(x["open findings"]) for x in rollups) == sum(w["open_findings"] for w in want.values())


def test_a_site_only_the_lake_holds_links_to_its_project_platform(lake_app, access_helpers):
    rows = _site_rows(Browser(lake_app, access_helpers, "cyril").fill())
    assert rows["WH-JA-2"]["open in"] == "details on its project platform"
    assert rows["WH-WC-1"]["open in"] == "details on its project platform"
    assert "overview" in rows["WH-JA-1"]["open in"] and "3D" in rows["WH-JA-1"]["open in"]


def test_the_rollups_by_district_and_enterprise_come_from_the_lake(lake_app, access_helpers):
    r = Browser(lake_app, access_helpers, "cyril").fill({("portfolio-city", "value"): "Wuhan"})
    assert r["portfolio-district"]["options"] == ["Jiang'an", "Wuchang"]
    assert _site_rows(r).keys() == {"WH-JA-1", "WH-JA-2", "WH-WC-1"}
    r = Browser(lake_app, access_helpers, "dora").fill({("portfolio-group", "value"): "enterprise"})
    assert r["portfolio-rollups-title"]["children"] == "Per enterprise"
    assert "XY-1" not in _texts(r)


def test_the_lake_portfolio_reads_chinese(lake_app, access_helpers):
    r = Browser(lake_app, access_helpers, "cyril", lang="zh-CN").fill()
    assert "城市数据湖" in _texts(r["portfolio-summary"])
    text = _texts(r["portfolio-sites"])
    assert "项目平台" in text and "details on its project platform" not in text


def test_a_lake_that_cannot_be_opened_is_refused_at_start_by_name(city, tmp_path):
    from sitetwin.app.commands.serve import run_workbench
    from sitetwin.data.lake import LakeError

    missing = tmp_path / "no-lake-here"
    with pytest.raises(LakeError, match="no-lake-here"):
        run_workbench(city["platform"], lake=str(missing), port=0)
    done = subprocess.run([sys.executable, "-c", "from sitetwin.app.cli import main; main()", "serve", "--db",
                           str(city["platform"]), "--lake", "foo://nowhere", "--port", "0"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    lines = [x for x in done.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "foo://nowhere" in lines[0]


def test_a_publish_after_the_server_opened_the_lake_shows_without_a_restart(city, access_helpers, tmp_path,
                                                                            monkeypatch):
    from sitetwin.dashboards import access
    from sitetwin.dashboards.app import create_app
    from sitetwin.data.lake import publish
    from sitetwin.oversight.findings import raise_finding

    monkeypatch.setattr(access, "LAKE_CHECK_S", 0.0)
    app = create_app(city["platform"], lake=str(city["lake"]))
    dora = Browser(app, access_helpers, "dora")
    before = int(_site_rows(dora.fill())["WH-WC-1"]["open"])
    site = city["lake"].parent / "wc.duckdb"
    with open_store(site) as s:
        raise_finding(s, site_code="WH-WC-1", category="safety", severity="high", title="after the server opened",
                      at=dt.datetime(2024, 6, 20))
        publish(s, city["lake"], sites=["WH-WC-1"])
    assert int(_site_rows(dora.fill())["WH-WC-1"]["open"]) == before + 1


def test_scoring_the_listed_sites_stores_only_those_this_platform_holds(lake_app, access_helpers, city):
    cyril = Browser(lake_app, access_helpers, "cyril")
    key = next(k for k in cyril.callbacks if k.lstrip(".").startswith("portfolio-msg.children"))
    body = access_helpers._body(key, cyril.callbacks[key],
                                lambda id_, prop: 1 if (id_, prop) == ("portfolio-record", "n_clicks") else None)
    resp = cyril.client.call(body)
    assert resp.status_code == 200
    assert json.loads(resp.get_data(as_text=True))["response"]["portfolio-msg"]["children"] == \
        "Stored today's risk score of 1 site."
    with open_store(city["platform"], read_only=True) as s:
        assert s.rows("SELECT DISTINCT site_code FROM risk_scores") == [{"site_code": "WH-JA-1"}]
