"""The workbench's language: Accept-Language, the ?lang switcher and its cookie, the account's setting, the
login page in both languages, callbacks answering in the request's language, and refusals of a bad code."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from sitetwin.data import i18n

PW = "language test password"
ZH = {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"}
EN = {"Accept-Language": "en-US,en;q=0.9"}


@pytest.fixture(scope="module")
def workbench(tmp_path_factory):
    """A store with one site and four accounts: ada (admin), dora (regulator, reads zh-CN), cole
    (contractor, no setting), vic (viewer: changes his own setting); the app on it."""
    from sitetwin.dashboards.app import create_app
    from sitetwin.data.sites import upsert_site
    from sitetwin.data.store import open_store
    from sitetwin.oversight.accounts import add_account, local_owner_scope
    from sitetwin.oversight.preferences import set_account_language
    from sitetwin.oversight.scope import Scope

    db = tmp_path_factory.mktemp("language") / "site.duckdb"
    with open_store(db) as store:
        upsert_site(store, "WH-1", name="江岸示范工地", district="江岸区", city="武汉市")
        owner = local_owner_scope(store)
        add_account(store, owner, "ada", "admin", password=PW)
        add_account(store, owner, "dora", "district_regulator", password=PW, district="江岸区", city="武汉市")
        add_account(store, owner, "cole", "contractor", password=PW, sites=["WH-1"])
        add_account(store, owner, "vic", "viewer", password=PW, sites=["WH-1"])
        set_account_language(store, Scope.system("test"), "dora", "zh-CN")
    app = create_app(db)
    app.server.testing = True
    return app, db


def _client(app, headers=None):
    client = app.server.test_client()
    client.get("/login", headers=headers or EN)          # the pre-session and CSRF cookies
    return client


def _login(client, user, headers=None):
    resp = client.post("/login", data={"username": user, "password": PW, "next": "/",
                                       "csrf": client.get_cookie("_csrf_token").value}, headers=headers or EN)
    assert resp.status_code == 302, resp.get_data(as_text=True)
    return client


def _call(client, body: dict, headers=None):
    return client.post("/_dash-update-component", json=body,
                       headers={"X-CSRFToken": client.get_cookie("_csrf_token").value, **(headers or EN)})


def _shell_text(client, headers=None) -> str:
    """The shell's layout as the renderer fetches it, with its text decoded."""
    resp = client.get("/_dash-layout", headers=headers or EN)
    assert resp.status_code == 200
    return json.dumps(resp.get_json(), ensure_ascii=False)


def test_the_browser_language_gives_a_chinese_or_english_login_page(workbench):
    app, _db = workbench
    client = app.server.test_client()
    zh = client.get("/login", headers=ZH).get_data(as_text=True)
    assert '<html lang="zh-CN">' in zh and "用户名" in zh and "密码" in zh and ">登录</button>" in zh
    assert "User name" not in zh and "Log in" not in zh
    en = app.server.test_client().get("/login", headers=EN)
    text = en.get_data(as_text=True)
    assert '<html lang="en">' in text and "User name" in text and en.headers["Content-Language"] == "en"
    assert "Accept-Language" in en.headers["Vary"]


def test_the_login_page_offers_both_languages_and_keeps_where_the_login_leads(workbench):
    app, _db = workbench
    text = app.server.test_client().get("/login?next=/twin%3Fsite%3DWH-1", headers=EN).get_data(as_text=True)
    assert '<a href="/login?next=%2Ftwin%3Fsite%3DWH-1&amp;lang=zh-CN" lang="zh-CN"' in text
    assert '<span lang="en">English</span>' in text          # the current one is no link


def test_lang_switches_the_language_and_a_cookie_keeps_it(workbench):
    app, _db = workbench
    client = app.server.test_client()
    first = client.get("/login?lang=zh-CN", headers=EN)
    assert "用户名" in first.get_data(as_text=True)
    assert client.get_cookie("sitetwin_lang").value == "zh-CN"
    assert "用户名" in client.get("/login", headers=EN).get_data(as_text=True)   # the cookie beats the header
    assert "User name" in client.get("/login?lang=en", headers=ZH).get_data(as_text=True)
    assert "User name" in client.get("/login", headers=ZH).get_data(as_text=True)


@pytest.mark.parametrize("code", ["fr", "zh-TW-x", "../../etc", ""])
def test_an_unknown_language_is_refused_with_one_clear_line(workbench, code):
    app, _db = workbench
    resp = app.server.test_client().get(f"/login?lang={code}")
    text = resp.get_data(as_text=True)
    assert resp.status_code == 400 and resp.mimetype == "text/plain"
    assert text.count("\n") == 1 and "?lang=: unknown language" in text and "zh-CN, en" in text


def test_an_unreadable_language_cookie_is_ignored(workbench):
    app, _db = workbench
    client = app.server.test_client()
    client.set_cookie("sitetwin_lang", "klingon")
    assert "用户名" in client.get("/login", headers=ZH).get_data(as_text=True)


def test_the_accounts_setting_wins_over_the_browser_header(workbench):
    app, _db = workbench
    dora = _login(_client(app), "dora")
    page = dora.get("/twin?site=WH-1", headers=EN)
    assert '<html lang="zh-CN">' in page.get_data(as_text=True) and page.headers["Content-Language"] == "zh-CN"
    assert "加载中" in page.get_data(as_text=True) and "Loading..." not in page.get_data(as_text=True)
    shell = _shell_text(dora)
    assert "退出登录" in shell and '"placeholder": "工地"' in shell and "Log out" not in shell
    cole = _login(_client(app), "cole")           # no setting: the header decides
    assert "Log out" in _shell_text(cole, EN) and "退出登录" in _shell_text(cole, ZH)


def test_the_switcher_beats_the_accounts_setting_for_that_browser(workbench):
    app, _db = workbench
    dora = _login(_client(app), "dora")
    assert '<html lang="en">' in dora.get("/?lang=en", headers=ZH).get_data(as_text=True)
    assert "Log out" in _shell_text(dora, ZH)


def test_every_shell_page_carries_the_switcher_for_the_page_shown(workbench):
    app, _db = workbench
    cole = _login(_client(app), "cole")
    assert '"id": "shell-lang"' in _shell_text(cole)
    body = {"output": "shell-lang.children", "outputs": {"id": "shell-lang", "property": "children"},
            "inputs": [{"id": "shell-url", "property": "pathname", "value": "/twin"},
                       {"id": "shell-url", "property": "search", "value": "?site=WH-1&element=2O2Fr$t4X7Zf8NOew3FLOH"}],
            "state": [], "changedPropIds": ["shell-url.pathname"]}
    links = _call(cole, body, ZH).get_json()["response"]["shell-lang"]["children"]
    shown = {c["props"]["lang"]: (c["type"], c["props"]["children"], c["props"].get("href")) for c in links}
    assert shown["zh-CN"] == ("Span", "中文", None)
    assert shown["en"] == ("A", "English", "/twin?site=WH-1&element=2O2Fr%24t4X7Zf8NOew3FLOH&lang=en")


def test_a_callback_answers_in_the_language_of_its_request(workbench):
    from sitetwin.data.pending import clear_pending, mark_pending

    app, db = workbench
    mark_pending(db, "detector", "detections and hazards", pages=["/"], state="running", message="epoch 3 of 35")
    try:
        app._setup_server()
        key = next(k for k in app.callback_map if "shell-pending.children" in k)
        body = {"output": key,
                "outputs": [{"id": "shell-pending", "property": "children"},
                            {"id": "shell-pending", "property": "className"},
                            {"id": "shell-pending-seen", "property": "data"},
                            {"id": "shell-pending-poll", "property": "disabled"}],
                "inputs": [{"id": "shell-url", "property": "pathname", "value": "/"},
                           {"id": "shell-pending-poll", "property": "n_intervals", "value": 1}],
                "state": [{"id": "shell-pending-seen", "property": "data", "value": []},
                          {"id": "shell-url", "property": "search", "value": ""}],
                "changedPropIds": ["shell-pending-poll.n_intervals"]}
        cole = _login(_client(app), "cole")
        zh = json.dumps(_call(cole, body, ZH).get_json(), ensure_ascii=False)
        en = json.dumps(_call(cole, body, EN).get_json(), ensure_ascii=False)
        assert "正在准备" in zh and "完成后本页即显示" in zh and "Being prepared" not in zh
        assert "Being prepared" in en and "正在准备" not in en
        dora = _login(_client(app), "dora")              # her setting, whatever her browser says
        assert "正在准备" in json.dumps(_call(dora, body, EN).get_json(), ensure_ascii=False)
    finally:
        clear_pending(db, "detector")


def test_a_refused_input_is_explained_in_the_readers_language(workbench):
    app, _db = workbench
    cole = _login(_client(app), "cole")
    body = {"output": "shell-lang.children", "outputs": {"id": "shell-lang", "property": "children"},
            "inputs": [{"id": "shell-url", "property": "pathname", "value": "twin"},
                       {"id": "shell-url", "property": "search", "value": ""}],
            "state": [], "changedPropIds": ["shell-url.pathname"]}
    answer = json.dumps(_call(cole, body, ZH).get_json(), ensure_ascii=False)
    assert "页面发送的 shell-url.pathname 有误：路径须以 '/' 开头；请刷新页面" in answer


def test_a_changed_setting_shows_on_the_next_request_and_only_its_owner_or_an_admin_may_change_it(workbench):
    from sitetwin.data.store import open_store
    from sitetwin.oversight.accounts import authenticate
    from sitetwin.oversight.errors import AccessDenied
    from sitetwin.oversight.preferences import account_language, set_account_language

    app, db = workbench
    vic = _login(_client(app), "vic")
    assert "Log out" in _shell_text(vic, EN)
    with open_store(db) as store:
        scope = authenticate(store, vic.get_cookie("sitetwin_session").value)
        with pytest.raises(AccessDenied, match="may not manage accounts"):
            set_account_language(store, scope, "dora", "en")
        set_account_language(store, scope, "vic", "zh-CN")
    assert "退出登录" in _shell_text(vic, EN)
    with open_store(db, read_only=True) as store:
        assert account_language(store, "dora") == "zh-CN"


def test_a_background_job_reads_in_the_language_of_the_request_that_started_it():
    from sitetwin.dashboards.callbacks import _in_language

    assert _in_language("zh-CN", i18n.current_language) == "zh-CN"
    assert i18n.current_language() == i18n.DEFAULT_LANGUAGE


def test_the_shell_writes_numbers_and_times_as_the_reader_does_in_the_sites_time_zone():
    from sitetwin.dashboards.components import fmt

    late = dt.datetime(2026, 12, 7, 20, 30)             # naive UTC: the next morning in Wuhan
    with i18n.use_language("zh-CN"):
        assert fmt(late) == "2026-12-08 04:30" and fmt(12345.678, 1) == "12,345.7" and fmt(True) == "是"
        assert fmt(late, tz="Europe/Amsterdam") == "2026-12-07 21:30"
    with i18n.use_language("en"):
        assert fmt(late) == "8 Dec 2026, 04:30" and fmt(dt.date(2026, 12, 8)) == "Dec 8, 2026"


def test_the_twin_views_layers_are_named_in_the_readers_language_and_still_found_by_kind():
    import pandas as pd

    from sitetwin.dashboards.twin_view import POINTS_LAYER, point_count, points_trace

    points = pd.DataFrame({"x_m": [0.0, 1.0, 2.0], "y_m": [0.0, 0.5, 1.0], "z_m": [3.0, 3.0, 3.1],
                           "distance_m": [0.004, -0.012, 0.0]})
    with i18n.use_language("zh-CN"):
        zh = points_trace(points)
    with i18n.use_language("en"):
        en = points_trace(points)
    assert (zh["name"], en["name"]) == ("扫描点", "scan points")
    assert zh["marker"]["colorbar"]["title"]["text"] == "有符号距离（毫米）"
    assert zh["meta"] == en["meta"] == POINTS_LAYER and point_count([zh, {"x": [1.0], "name": "扫描点"}]) == 3


def test_a_refused_login_is_explained_in_the_readers_language(workbench):
    app, _db = workbench
    client = _client(app, ZH)
    resp = client.post("/login", data={"username": "cole", "password": "not it", "next": "/",
                                       "csrf": client.get_cookie("_csrf_token").value}, headers=ZH)
    text = resp.get_data(as_text=True)
    assert resp.status_code == 401 and "&#x27;cole&#x27; 登录失败：用户名或密码错误，或账户已停用。" in text
