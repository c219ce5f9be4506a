"""``sitetwin --help`` and Click's own words in the reader's language.

The language is known before Click parses anything (:func:`language_argument`: ``--lang`` among
the root's options, else ``SITETWIN_LANG``), so that ``sitetwin --help --lang zh-CN`` reads Chinese
although ``--help`` is handled before ``--lang`` would be. In a language other than English the CLI
runs the Click command tree typer builds, translated first (:func:`translated_command`): every
command's help and every option's help is a message of the ``app`` catalog
(:mod:`sitetwin.data.catalogs` collects them from the built tree, :func:`help_messages`).

Click's own words (``Usage:``, ``Options``, ``[default: ...]``, ``Show this message and exit.``,
``No such option: ...``): typer 0.29 runs its own copy of Click (``typer._click``), whose words are
f-strings, not gettext calls; typer's few ``gettext`` words (``Options``, ``required``,
``default: ...``) go through the gettext module's global domain, which reads only compiled ``.mo``
files from disk, chosen by the ``LANGUAGE``/``LC_*`` variables. Neither can take a catalog read
from a ``.po`` file in memory. So the two supported surfaces are used instead: the help page is
written by a :class:`HelpFormatter` (``Context.formatter_class``, Click's extension point) that
names the headings and the ``[default: ...]`` notes in the reader's language and wraps Chinese by
its display width; a usage error is shown by :func:`show_usage_error` from the exception's own
message, matched against Click's English templates (:data:`CLICK_MESSAGES`); a message Click adds
later and this table does not know is shown as Click wrote it. English never takes this path: it
runs the typer app as it always did.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import unicodedata
from collections.abc import Iterator, Sequence
from typing import Any

import typer
from typer import _click
from typer.core import TyperArgument, TyperOption

from sitetwin.data.i18n import ENV_VAR, N_, Translator

_ = Translator("app")

# Click's and typer's messages (English exactly as they write them) and their words: a usage error
# whose message fits one of these templates is shown in the reader's language.
CLICK_MESSAGES = (
    N_("No such option: {name} (Possible options: {options})"),
    N_("No such option: {name}"),
    N_("No such command {name}."),
    N_("Missing command."),
    N_("Missing argument {name}."),
    N_("Missing option {name}."),
    N_("Missing parameter {name}."),
    N_("Got unexpected extra argument(s) ({args})"),
    N_("Option {name} requires an argument."),
    N_("Option {name} requires {n} arguments."),
    N_("Option {name} does not take a value."),
    N_("Argument {name} takes {n} values."),
    N_("Invalid value for {name}: {problem}"),
    N_("Invalid value: {problem}"),
    N_("File {path} does not exist."),
    N_("Directory {path} does not exist."),
    N_("Path {path} does not exist."),
    N_("File {path} is a directory."),
    N_("Directory {path} is a file."),
    N_("Path {path} is not readable."),
    N_("Input should be a valid integer, unable to parse string as an integer"),
    N_("Input should be a valid number, unable to parse string as a number"),
    N_("Input should be a valid boolean, unable to interpret input"),
    N_("Input should be greater than or equal to {n}"),
    N_("Input should be less than or equal to {n}"),
)
# The help page's own words.
HELP_WORDS = (N_("Usage:"), N_("Options"), N_("Arguments"), N_("Commands"), N_("{heading}:"), N_("required"),
              N_("default: {default}"), N_("env var: {var}"), N_("Show this message and exit."),
              N_("Try '{command} {option}' for help."), N_("Error: {message}"), N_("Aborted!"))


# ---- the language, before Click parses ----------------------------------------------------------


def language_argument(argv: Sequence[str]) -> str | None:
    """The value of ``--lang`` among the root's options (before the command's name), as Click
    would read it: ``--lang X`` or ``--lang=X``; ``None`` if not given."""
    i = 0
    found = None
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            break
        if arg == "--lang":
            if i + 1 < len(argv):
                found = argv[i + 1]
            i += 2
            continue
        if arg.startswith("--lang="):
            found = arg.partition("=")[2]
        elif not arg.startswith("-"):
            break               # the command's name: what follows is the command's
        i += 1
    return found


def language_source(argv: Sequence[str]) -> tuple[str | None, str]:
    """The language code asked for and where it came from (``--lang`` or ``SITETWIN_LANG``)."""
    lang = language_argument(argv)
    if lang is not None:
        return lang, "--lang"
    return os.environ.get(ENV_VAR) or None, ENV_VAR


# ---- the help texts: catalog messages ----------------------------------------------------------


def _walk(command: _click.Command, path: str) -> Iterator[tuple[str, _click.Command]]:
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _walk(sub, f"{path} {name}")


def build_command(app: typer.Typer) -> _click.Command:
    """The Click command tree of ``app`` with every command group registered."""
    return typer.main.get_command(app)


def help_messages(command: _click.Command) -> dict[str, list[str]]:
    """Every help text of a command tree -> where it is shown (``cli: sitetwin survey add --scale``):
    for ``sitetwin``'s (:func:`sitetwin.app.cli.help_texts`), the ``app`` catalog's messages besides
    its ``_()`` calls."""
    found: dict[str, list[str]] = {}
    for path, cmd in _walk(command, "sitetwin"):
        for attr in ("help", "short_help", "epilog"):
            text = getattr(cmd, attr, None)
            if text:
                found.setdefault(text, []).append(f"cli: {path}" + ("" if attr == "help" else f" ({attr})"))
        for param in cmd.params:
            text = getattr(param, "help", None)
            if text:
                found.setdefault(text, []).append(f"cli: {path} {param.opts[0] if param.opts else param.name}")
    return found


def _first_paragraph(text: str) -> str:
    return " ".join(text.split("\n\n")[0].split())


def translated_command(app: typer.Typer) -> _click.Command:
    """``app``'s Click command tree with its help texts in the current language, shown by
    :class:`HelpFormatter`."""
    command = build_command(app)
    for _path, cmd in _walk(command, "sitetwin"):
        cmd.context_class = Context
        if cmd.short_help:
            cmd.short_help = _(cmd.short_help)
        if cmd.help:
            cmd.help = _(cmd.help)
            # Click shortens a help for the list of commands at the first word ending in "." within
            # 45 characters: a Chinese sentence has neither; HelpFormatter fits it to the line instead.
            cmd.short_help = cmd.short_help or _first_paragraph(cmd.help)
        if cmd.epilog:
            cmd.epilog = _(cmd.epilog)
        for param in cmd.params:
            if isinstance(param, (TyperOption, TyperArgument)) and param.help:
                param.help = _(param.help)
    return command


# ---- the help page -----------------------------------------------------------------------------


def display_width(text: str) -> int:
    """Columns ``text`` takes in a terminal: a CJK character two, anything else one."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


_WIDE = "\u1100-\u115f\u2e80-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6"
_TOKEN = re.compile(rf"\s+|[{_WIDE}]|[^\s{_WIDE}]+")
_NO_LINE_START = set("，。、；：）》」』！？%·…,.;:)]")
_NO_LINE_END = set("（《「『([")


def wrap(text: str, width: int, first: str = "", rest: str = "") -> str:
    """``text`` in lines of at most ``width`` columns (a long word or path may exceed it): Chinese
    breaks between any two characters, other text at spaces; punctuation stays with its word."""
    glued: list[str] = []
    for tok in _TOKEN.findall(" ".join(text.split())):
        if glued and not tok.isspace() and not glued[-1].isspace() and (
                tok[0] in _NO_LINE_START or glued[-1][-1] in _NO_LINE_END):
            glued[-1] += tok
        else:
            glued.append(tok)
    lines: list[str] = []
    line: list[str] = []
    used, indent, space = 0, first, False
    for tok in glued:
        if tok.isspace():
            space = bool(line)
            continue
        sep = 1 if space else 0
        if line and used + sep + display_width(tok) > width - display_width(indent):
            lines.append(indent + "".join(line))
            line, used, indent, sep = [], 0, rest, 0
        if sep:
            line.append(" ")
        line.append(tok)
        used += sep + display_width(tok)
        space = False
    if line or not lines:
        lines.append(indent + "".join(line))
    return "\n".join(lines)


def _fit(text: str, width: int) -> str:
    """The first sentence of ``text``, cut to ``width`` columns with an ellipsis."""
    sentence = re.split(r"(?<=。)", _first_paragraph(text), maxsplit=1)[0]
    if display_width(sentence) <= width:
        return sentence
    out, used = "", 0
    for c in sentence:
        w = display_width(c)
        if used + w > width - 1:
            break
        out, used = out + c, used + w
    return out.rstrip("，、；：（ ") + "…"


_NOTE = re.compile(r"^(?P<help>.*?)\s*\[(?P<notes>[^\[\]]*)\]$", re.DOTALL)


def _notes(text: str) -> str:
    """typer's ``  [default: x; required]`` after an option's help, in the reader's language."""
    m = _NOTE.match(text)
    if not m:
        return text
    parts = []
    for note in m["notes"].split("; "):
        if note == "required":
            parts.append(_("required"))
        elif note.startswith("default: "):
            parts.append(_("default: {default}", default=note[len("default: "):]))
        elif note.startswith("env var: "):
            parts.append(_("env var: {var}", var=note[len("env var: "):]))
        else:
            parts.append(note)
    notes = "[" + "; ".join(parts) + "]"
    return f"{m['help']}  {notes}" if m["help"] else notes


class HelpFormatter(_click.HelpFormatter):
    """Click's help page in the reader's language: headings and notes translated, lines wrapped by
    their width on screen (a Chinese character takes two columns)."""

    _section: str | None = None

    def write_usage(self, prog: str, args: str = "", prefix: str | None = None) -> None:
        if prefix is None:
            word = _("Usage:")
            prefix = word if word.endswith("：") else word + " "
        usage_prefix = f"{prefix:>{self.current_indent}}{prog} "
        indent = " " * display_width(usage_prefix)
        self.write(wrap(args, self.width - self.current_indent, usage_prefix, indent) + "\n")

    def write_heading(self, heading: str) -> None:
        self.write(f"{'':>{self.current_indent}}{_('{heading}:', heading=_(heading))}\n")

    @contextlib.contextmanager
    def section(self, name: str) -> Iterator[None]:
        self._section, before = name, self._section
        try:
            with super().section(name):
                yield
        finally:
            self._section = before

    def write_text(self, text: str) -> None:
        indent = " " * self.current_indent
        paragraphs = [p for p in re.split(r"\n\s*\n", text) if p.strip()]
        self.write("\n\n".join(wrap(p, self.width, indent, indent) for p in paragraphs) + "\n")

    def write_dl(self, rows: Sequence[tuple[str, str]], col_max: int = 30, col_spacing: int = 2) -> None:
        rows = [(first, second) for first, second in rows]
        first_col = min(max((display_width(r[0]) for r in rows), default=0), col_max) + col_spacing
        text_width = max(self.width - first_col - 2, 10)
        for first, second in rows:
            self.write(f"{'':>{self.current_indent}}{first}")
            if second == "Show this message and exit.":
                second = _(second)
            if self._section == "Commands":
                second = _fit(second, self.width - self.current_indent - first_col)
            else:
                second = _notes(second)
            if not second:
                self.write("\n")
                continue
            if display_width(first) <= first_col - col_spacing:
                self.write(" " * (first_col - display_width(first)))
            else:
                self.write("\n" + " " * (first_col + self.current_indent))
            lines = wrap(second, text_width).splitlines()
            self.write(lines[0] + "\n")
            for line in lines[1:]:
                self.write(f"{'':>{first_col + self.current_indent}}{line}\n")


class Context(_click.Context):
    formatter_class = HelpFormatter


# ---- usage errors ------------------------------------------------------------------------------


def _pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"\{(\w+)\}", template)
    return re.compile("".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>.+?)" for i, p in enumerate(parts)),
                      re.DOTALL)


_PATTERNS = [(t, _pattern(t)) for t in CLICK_MESSAGES]


def click_message(text: str) -> str:
    """A message of Click's (:data:`CLICK_MESSAGES`) in the reader's language; any other as it is."""
    for template, pattern in _PATTERNS:
        m = pattern.fullmatch(text)
        if m:
            fields: dict[str, Any] = m.groupdict()
            if "problem" in fields:
                fields["problem"] = click_message(fields["problem"])
            return _(template, **fields)
    return text


def show_usage_error(exc: _click.ClickException) -> None:
    """``exc`` as Click shows it (usage, hint, ``Error: ...``), in the reader's language."""
    if isinstance(exc, _click.exceptions.NoArgsIsHelpError):
        exc.show()
        return
    ctx = getattr(exc, "ctx", None)
    if ctx is not None:
        hint = ""
        if ctx.command.get_help_option(ctx) is not None:
            hint = _("Try '{command} {option}' for help.", command=ctx.command_path,
                     option=ctx.help_option_names[0]) + "\n"
        _click.echo(f"{ctx.get_usage()}\n{hint}", file=sys.stderr, color=ctx.color)
    _click.echo(_("Error: {message}", message=click_message(exc.format_message())), file=sys.stderr,
                color=ctx.color if ctx is not None else None)


def run_translated(app: typer.Typer, args: Sequence[str] | None = None) -> int:
    """Run ``app`` with its help and Click's words in the current language; the exit status."""
    command = translated_command(app)
    try:
        result = command.main(args=args, standalone_mode=False)
    except _click.exceptions.ClickException as exc:
        show_usage_error(exc)
        return exc.exit_code
    except typer.Abort:
        _click.echo(_("Aborted!"), file=sys.stderr)
        return 1
    # without standalone mode, Click returns the code of an Exit raised by a command (commands
    # return nothing)
    return result if isinstance(result, int) else 0
