"""The command line in the reader's language: --lang or SITETWIN_LANG for people, the same --json for scripts."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

SITETWIN = [sys.executable, "-m", "sitetwin.app.cli"]


def run(*args, env: dict | None = None):
    # wide enough that rich does not cut a table's cells
    environ = {k: v for k, v in os.environ.items() if k != "SITETWIN_LANG"} | {"COLUMNS": "200"} | (env or {})
    return subprocess.run([*SITETWIN, *map(str, args)], capture_output=True, text=True, timeout=120, env=environ)


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("lang") / "t.duckdb"
    assert run("init", "--db", path, "--site", "WH-JA-1", "--name", "江岸区二七路还建房项目").returncode == 0
    for title in ("基坑临边防护缺失", "Hoist gate interlock bypassed"):
        r = run("finding", "raise", "--db", path, "--site", "WH-JA-1", "--category", "safety", "--severity", "high",
                "--title", title, "--due", "2026-12-20")
        assert r.returncode == 0, r.stderr
    return path


@pytest.mark.parametrize(("args", "env", "named"), [
    (["--lang", "fr"], {}, "--lang"),
    (["--lang", "zh-TW-x"], {}, "--lang"),
    ([], {"SITETWIN_LANG": "klingon"}, "SITETWIN_LANG"),
])
def test_an_unknown_language_is_one_error_line_naming_where_it_came_from(db, args, env, named):
    r = run(*args, "finding", "list", "--db", db, env=env)
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == 2 and r.stdout == ""
    assert len(lines) == 1 and lines[0].startswith(f"error: {named}: unknown language") and "zh-CN, en" in lines[0]


def test_json_output_is_the_same_in_every_language(db):
    docs = {}
    for how in (["--lang", "zh-CN"], ["--lang", "en"], []):
        r = run(*how, "finding", "list", "--db", db, "--json", env={"SITETWIN_LANG": "zh-CN"} if not how else {})
        assert r.returncode == 0, r.stderr
        docs[" ".join(how) or "env"] = json.loads(r.stdout)
    assert docs["--lang zh-CN"] == docs["--lang en"] == docs["env"]
    assert {f["severity"] for f in docs["env"]} == {"high"} and {f["status"] for f in docs["env"]} == {"open"}


def test_human_output_reads_in_chinese_with_lang_or_the_environment(db):
    zh = run("--lang", "zh-CN", "finding", "list", "--db", db)
    assert zh.returncode == 0, zh.stderr
    assert "2 个问题" in zh.stdout and "严重程度" in zh.stdout and "整改期限" in zh.stdout
    assert "基坑临边防护缺失" in zh.stdout                     # titles as stored
    assert zh.stdout.count("高") >= 2 and zh.stdout.count("待整改") == 2        # stored words named in Chinese
    assert "severity" not in zh.stdout and "high" not in zh.stdout
    by_env = run("finding", "list", "--db", db, env={"SITETWIN_LANG": "zh_CN"})
    assert by_env.stdout == zh.stdout
    en = run("--lang", "en", "finding", "list", "--db", db, env={"SITETWIN_LANG": "zh-CN"})   # --lang wins
    assert "2 findings" in en.stdout and "severity" in en.stdout and "严重程度" not in en.stdout


def test_init_says_what_it_did_in_the_chosen_language(tmp_path):
    r = run("--lang", "zh-CN", "init", "--db", tmp_path / "z.duckdb", "--site", "WH-1")
    assert r.returncode == 0 and r.stdout.startswith("数据库 ") and "工地：WH-1" in r.stdout
    r = run("init", "--db", tmp_path / "e.duckdb")
    assert r.stdout.startswith("store ") and "sites: none" in r.stdout


def test_the_evaluation_command_writes_a_chinese_report_and_refuses_nothing_it_needs(db, tmp_path):
    html = tmp_path / "r.html"
    r = run("--lang", "zh-CN", "evaluate", "--db", db, "--site", "WH-JA-1", "--as-of", "2026-12-07",
            "--no-record", "--html", html)
    assert r.returncode == 0, r.stderr
    assert "等级" in r.stdout and "数字孪生中的BIM设计模型" in r.stdout
    page = html.read_text(encoding="utf-8")
    assert "<html lang=zh-CN>" in page and "基坑临边防护缺失" in page and "问题清单（2）" in page


def test_the_risk_breakdown_reads_in_chinese_with_every_component_and_its_basis(db):
    r = run("--lang", "zh-CN", "risk", "--site", "WH-JA-1", "--db", db)
    assert r.returncode == 0, r.stderr
    assert "危大工程" in r.stdout and "培训" in r.stdout          # the two newest components are listed
    assert "no data" not in r.stdout and "open findings" not in r.stdout  # the basis sentences too
    doc = json.loads(run("risk", "--site", "WH-JA-1", "--db", db, "--json").stdout)
    assert [c["name"] for c in doc[0]["components"]][-2:] == ["dangerous_works", "training"]


def test_a_library_error_reads_in_the_processs_language_prefix_included(tmp_path):
    missing = tmp_path / "nowhere.ifc"
    zh = run("--lang", "zh-CN", "bim", "load", missing, "--db", tmp_path / "a.duckdb", "--site", "A")
    en = run("bim", "load", missing, "--db", tmp_path / "a.duckdb", "--site", "A")
    assert zh.returncode == en.returncode == 1
    assert zh.stderr.strip() == f"错误：{missing}：文件不存在"
    assert en.stderr.strip() == f"error: {missing}: no such file"
