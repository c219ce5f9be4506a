"""`sitetwin --help` and Click's own words in the reader's language; English exactly as Click writes it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from typing import Annotated

import pytest
import typer

import sitetwin.app.cli
from sitetwin.app.cli import help_texts
from sitetwin.app.cli_language import display_width, help_messages, language_argument, wrap

SITETWIN = [sys.executable, "-m", "sitetwin.app.cli"]
CJK = re.compile(r"[\u4e00-\u9fff]")


def run(*args, env: dict | None = None):
    environ = {k: v for k, v in os.environ.items() if k != "SITETWIN_LANG"} | {"COLUMNS": "100"} | (env or {})
    return subprocess.run([*SITETWIN, *map(str, args)], capture_output=True, text=True, timeout=120, env=environ)


@pytest.mark.parametrize(("args", "env"), [
    (["--lang", "zh-CN", "--help"], {}),
    (["--help", "--lang", "zh-CN"], {}),
    (["--help", "--lang=zh_CN"], {}),
    (["--help"], {"SITETWIN_LANG": "zh-CN"}),
])
def test_the_root_help_reads_in_chinese_however_the_language_is_chosen(args, env):
    r = run(*args, env=env)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert out.startswith("用法：python -m sitetwin.app.cli [OPTIONS] COMMAND [ARGS]...")
    assert "\n选项：\n" in out and "\n命令：\n" in out
    assert "建筑工地的数字孪生" in out                                  # the root's help
    assert "面向人的输出所用语言" in out and "显示本帮助并退出。" in out    # --lang's and --help's
    assert re.search(r"^  init +创建数据库", out, re.MULTILINE)            # a command's short help
    assert "Show this message" not in out and "Usage:" not in out and "Commands:" not in out


def test_a_subcommands_help_reads_in_chinese_with_options_and_metavars_untouched():
    r = run("--lang", "zh-CN", "survey", "add", "--help")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert out.startswith("用法：python -m sitetwin.app.cli survey add [OPTIONS] {scans}...")
    assert "导入一次测量，配准到模型，计算每个构件的偏差和状态（一个事务）。" in out
    assert "\n参数：\n" in out and "\n选项：\n" in out
    assert "--scale" in out and "点云的单位未知" in out
    assert "--db <path>" in out and "孪生系统的 DuckDB 数据库文件。" in out
    assert "[默认：m]" in out and out.count("[必填]") == 2                # typer's notes, named in Chinese
    assert "Point-cloud files" not in out and "The cloud's units" not in out


def test_chinese_help_lines_fit_the_terminal_by_their_width_on_screen():
    out = run("--lang", "zh-CN", "sensors", "--help").stdout + run("--lang", "zh-CN", "survey", "add", "--help").stdout
    widths = [display_width(line) for line in out.splitlines()]
    assert max(widths) <= 78 and sum(w > 60 for w in widths) >= 10       # 80 columns less Click's margin, filled


def test_english_help_is_click_s_own_whatever_the_environment_says():
    plain = run("survey", "add", "--help")
    assert plain.returncode == 0
    assert run("--lang", "en", "survey", "add", "--help", env={"SITETWIN_LANG": "zh-CN"}).stdout == plain.stdout
    assert run("survey", "add", "--help", env={"SITETWIN_LANG": "en"}).stdout == plain.stdout
    out = plain.stdout
    assert out.startswith("Usage: python -m sitetwin.app.cli survey add [OPTIONS] {scans}...")
    assert "\nOptions:\n" in out and "Show this message and exit." in out
    assert "The twin's DuckDB store file.  [default:" in out and not CJK.search(out)


@pytest.mark.parametrize(("args", "zh", "en"), [
    (["survey", "add", "--bogus"], "错误：没有这个选项：--bogus", "Error: No such option: --bogus"),
    (["init", "--db", "a", "b"], "错误：多余的参数（b）", "Error: Got unexpected extra argument(s) (b)"),
    (["survey", "add", "x.las"], "错误：缺少选项 '--model'。", "Error: Missing option '--model'."),
    (["demo", "--seed", "x"], "错误：'--seed' 的值无效：输入应为有效的整数",
     "Error: Invalid value for '--seed': Input"),
    (["nosuch"], "错误：没有命令 'nosuch'。", "Error: No such command 'nosuch'."),
])
def test_usage_errors_read_in_the_chosen_language(args, zh, en):
    r = run("--lang", "zh-CN", *args)
    assert r.returncode == 2 and r.stdout == ""
    assert zh in r.stderr and "Error" not in r.stderr
    assert r.stderr.startswith("用法：") and "查看帮助。" in r.stderr
    e = run(*args)
    assert e.returncode == 2 and en in e.stderr and e.stderr.startswith("Usage: ")


def test_a_commands_own_bad_parameter_reads_in_chinese():
    r = run("--lang", "zh-CN", "demo", "--today", "2026-13-01")
    assert r.returncode == 2
    assert "错误：值无效：--today '2026-13-01'：日期应写作 YYYY-MM-DD" in r.stderr


@pytest.mark.parametrize("args", [["--help", "--lang", "fr"], ["--lang=xx", "survey", "add", "--help"]])
def test_a_bad_language_with_help_is_still_one_error_line(args):
    r = run(*args)
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == 2 and r.stdout == ""
    assert len(lines) == 1 and lines[0].startswith("error: --lang: unknown language")


def test_the_language_is_read_from_the_roots_options_only():
    assert language_argument(["--lang", "zh-CN", "survey", "add"]) == "zh-CN"
    assert language_argument(["--help", "--lang=en"]) == "en"
    assert language_argument(["sql", "--lang", "zh-CN"]) is None      # a command's argument, not the root's
    assert language_argument(["--lang"]) is None                         # Click says the value is missing


def test_wrapping_breaks_chinese_anywhere_but_keeps_words_and_punctuation_together():
    text = "点云的单位未知（摄影测量、SfM）：拟合相似变换（旋转、平移、缩放），并报告 scale_factor 及其不确定度。"
    lines = wrap(text, 24).splitlines()
    assert all(display_width(line) <= 24 for line in lines)
    assert not any(line[0] in "，。、）：" for line in lines)
    assert any("scale_factor" in line for line in lines)


def test_the_catalog_check_collects_every_help_text_of_the_command_tree(monkeypatch):
    from sitetwin.data import catalogs

    frob = typer.Typer()

    @frob.command()
    def widgets(size: Annotated[int, typer.Option("--size", help="How big the widgets are, in furlongs.")] = 1):
        """Frobnicate the widgets."""

    found = help_messages(typer.main.get_command(frob))
    assert found["How big the widgets are, in furlongs."] == ["cli: sitetwin --size"]
    assert found["Frobnicate the widgets."] == ["cli: sitetwin"]

    cli = help_texts()
    assert "cli: sitetwin survey add --scale" in cli["The cloud's units are unknown (photogrammetry, SfM): fit a "
                                                     "similarity (rotation, translation, scale) and report the "
                                                     "scale with its uncertainty."]
    assert len(cli["The twin's DuckDB store file."]) > 50                  # --db, on most commands

    # a new option without Chinese is a missing message of the app catalog, named by where it is shown
    grown = {**cli, "Frobnicate the widgets.": ["cli: sitetwin frob"]}
    monkeypatch.setattr(sitetwin.app.cli, "help_texts", lambda: grown)
    found, _fstrings = catalogs.extract(catalogs.ROOT / "app")
    assert found["Frobnicate the widgets."] == ["cli: sitetwin frob"]
    assert found["The twin's DuckDB store file."][0].startswith("cli: sitetwin ")
    lines = catalogs.check(only=["app"]).lines()
    assert "missing: app/locale/zh_CN.po: 'Frobnicate the widgets.' (cli: sitetwin frob)" in lines
    assert not [line for line in lines if line.startswith("missing: app/") and "(cli: " in line
                and "Frobnicate" not in line]
