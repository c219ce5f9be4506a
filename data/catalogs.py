"""The message catalogs kept true: extraction, merge, and the checks the test run makes.

A catalog is ``<folder>/locale/<lang>.po`` (see :mod:`sitetwin.data.i18n`); it covers the
Python files of its folder and of the subfolders that have no catalog of their own, and its
domain is the folder's dotted path (``dashboards/pages`` is ``dashboards.pages``). Messages are
what those files pass to ``_(...)``, ``_.plural(...)``, ``_.lang(...)`` and ``N_(...)``,
extracted with Babel, and for ``app`` the help texts of the built command tree (:data:`EXTRACTORS`).

``python -m sitetwin.data.catalogs`` (``.ci/catalogs``)::

    --check              fail on a missing, stale, fuzzy or misformatted message, or a glossary term
                         translated another way (the test run does this)
    --update             add new messages (empty), drop stale ones, keep every translation
    --merge FILE.po ...  take translations for the catalogs' messages from gettext fragments

The glossary, ``data/locale/glossary.yaml``, lists the terms as the documents and national
standards write them; a translated message whose English contains a term must contain its
Chinese form.
"""

from __future__ import annotations

import argparse
import ast
import io
import re
import string
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sitetwin.data.i18n import LANGUAGES, SOURCE_LANGUAGE, babel_locale, reload_catalogs

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("data", "bim", "twin", "panorama", "sensors", "vision", "oversight", "dashboards", "synth",
            "cluster", "app")
KEYWORDS = {"_": None, "N_": None, "plural": (1, 2), "lang": (1,)}
GLOSSARY = ROOT / "data" / "locale" / "glossary.yaml"
_FSTRING = re.compile(r"""(?<![\w.])_\(\s*[rRbB]?[fF][rR]?["']""")
# Messages a catalog holds besides its files' calls: the help texts of the CLI's command tree as
# typer builds it (``help=`` and docstrings, not ``_()`` calls), from a function returning
# ``{message: [where]}``. Named, not imported: this tool sits below the packages it reads.
EXTRACTORS = {"app": "sitetwin.app.cli:help_texts"}


@dataclass
class Problems:
    missing: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    fuzzy: list[str] = field(default_factory=list)
    fields: list[str] = field(default_factory=list)
    glossary: list[str] = field(default_factory=list)
    fstrings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = []
        for kind in ("missing", "stale", "fuzzy", "fields", "glossary", "fstrings", "errors"):
            out += [f"{kind}: {x}" for x in getattr(self, kind)]
        return out

    def __bool__(self) -> bool:
        return bool(self.lines())


def domains(root: Path = ROOT) -> dict[str, Path]:
    """Every catalog folder's domain -> the folder (``{"dashboards.pages": Path(".../dashboards/pages")}``)."""
    out = {}
    for pkg in PACKAGES:
        base = root / pkg
        for loc in sorted(base.rglob("locale")):
            if loc.is_dir():
                folder = loc.parent
                out[".".join(folder.relative_to(root).parts)] = folder
    return out


def sources(folder: Path, root: Path = ROOT) -> list[Path]:
    """The Python files a catalog covers: its folder's, less subfolders with their own catalog."""
    own = set(domains(root).values()) - {folder}
    files = []
    for path in sorted(folder.rglob("*.py")):
        if any(o in path.parents for o in own if o != folder and folder in o.parents):
            continue
        if "__pycache__" in path.parts:
            continue
        files.append(path)
    return files


Message = str | tuple[str, str]


def extract(folder: Path, root: Path = ROOT) -> tuple[dict[Message, list[str]], list[str]]:
    """The messages of a catalog's files -> where they are; and the f-strings passed to ``_``."""
    from babel.messages.extract import extract_from_file

    found: dict[Message, list[str]] = {}
    fstrings: list[str] = []
    for path in sources(folder, root):
        rel = str(path.relative_to(root))
        text = path.read_text(encoding="utf-8")
        for n, line in enumerate(text.splitlines(), 1):
            if _FSTRING.search(line):
                fstrings.append(f"{rel}:{n}: an f-string passed to _() cannot be translated; use _('... {{x}}', x=...)")
        for lineno, msg, _comments, _ctx in extract_from_file("python", str(path), keywords=KEYWORDS):
            if isinstance(msg, tuple):
                if len(msg) < 2 or not msg[0] or not msg[1]:
                    continue
                key: Message = (msg[0], msg[1])
            else:
                if not msg:
                    continue
                key = msg
            found.setdefault(key, []).append(f"{rel}:{lineno}")
    domain = ".".join(folder.relative_to(root).parts)
    if root == ROOT and domain in EXTRACTORS:
        import importlib

        module, _sep, name = EXTRACTORS[domain].partition(":")
        for msg, places in getattr(importlib.import_module(module), name)().items():
            found.setdefault(msg, []).extend(places)
    return found, fstrings


def _read(path: Path, lang: str):
    from babel.messages.catalog import Catalog
    from babel.messages.pofile import read_po

    if not path.is_file():
        return Catalog(locale=babel_locale(lang), domain=None)
    with path.open("rb") as fh:
        return read_po(fh, locale=babel_locale(lang))


def _write(path: Path, catalog) -> None:
    from babel.messages.pofile import write_po

    buf = io.BytesIO()
    write_po(buf, catalog, width=100, sort_output=True, include_lineno=False, omit_header=False,
             ignore_obsolete=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".po.tmp")
    tmp.write_bytes(buf.getvalue())
    tmp.replace(path)


def _fields(text: str) -> set[str]:
    try:
        return {f for _lit, f, _spec, _conv in string.Formatter().parse(text) if f is not None}
    except ValueError:
        return {"<unbalanced braces>"}


def glossary() -> list[dict[str, str]]:
    """The glossary's terms: ``[{"en": ..., "zh-CN": ..., "source": ...}]``."""
    import yaml

    if not GLOSSARY.is_file():
        return []
    data = yaml.safe_load(GLOSSARY.read_text(encoding="utf-8")) or {}
    return list(data.get("terms", []))


def _error_classes(trees: dict[str, ast.Module]) -> set[str]:
    """The names of the classes derived (through any chain of the packages' classes) from
    ``SitetwinError`` or ``SitetwinWarning``."""
    bases: dict[str, set[str]] = {}
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                bases.setdefault(node.name, set()).update(
                    b.id if isinstance(b, ast.Name) else b.attr for b in node.bases
                    if isinstance(b, (ast.Name, ast.Attribute)))
    names = {"SitetwinError", "SitetwinWarning"}
    grown = True
    while grown:
        grown = False
        for name, of in bases.items():
            if name not in names and of & names:
                names.add(name)
                grown = True
    return names


def _literal_message(node: ast.expr) -> bool:
    """A message written in place (f-string, string, concatenation or ``.format``): not a catalog
    template, so it cannot be translated."""
    if isinstance(node, ast.JoinedStr) or (isinstance(node, ast.Constant) and isinstance(node.value, str)):
        return True
    if isinstance(node, ast.BinOp):
        return _literal_message(node.left) or _literal_message(node.right)
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format"
            and _literal_message(node.func.value))


def unmarked_errors(root: Path = ROOT) -> list[str]:
    """Errors and warnings of the packages' classes raised with a message written in place instead
    of an ``N_`` template and its fields (see :mod:`sitetwin.data.errors`): those would read in
    English whatever the reader's language."""
    trees = {}
    for pkg in PACKAGES:
        for path in sorted((root / pkg).rglob("*.py")):
            if "__pycache__" not in path.parts:
                trees[str(path.relative_to(root))] = ast.parse(path.read_text(encoding="utf-8"))
    names = _error_classes(trees)

    def named(fn: ast.expr) -> str | None:
        return fn.id if isinstance(fn, ast.Name) else fn.attr if isinstance(fn, ast.Attribute) else None

    out = []
    for rel, tree in trees.items():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            name = named(node.func)
            if name in names and _literal_message(node.args[0]):
                out.append(f"{rel}:{node.lineno}: {name}(...) with a message written in place; "
                           "use {name}(N_('... {{x}} ...'), x=...)".replace("{name}", name))
            elif (name in ("append", "extend") and isinstance(node.func, ast.Attribute)
                  and (named(node.func.value) or "").endswith("warnings")
                  and (_literal_message(node.args[0]) or (isinstance(node.args[0], (ast.List, ast.Tuple))
                                                          and any(_literal_message(e) for e in node.args[0].elts)))):
                out.append(f"{rel}:{node.lineno}: a report's warning written in place; use "
                           "warnings.append(Note(N_('... {x} ...'), x=...)) (data.errors.Note)")
            elif (name or "").startswith("on_") and _literal_message(node.args[0]):
                out.append(f"{rel}:{node.lineno}: {name}(f'...') hands a person's line written in place to a "
                           "callback; use Note(N_('... {x} ...'), x=...)")
            elif (name == "warn" and len(node.args) > 1 and named(node.args[1]) in names
                  and _literal_message(node.args[0])):
                out.append(f"{rel}:{node.lineno}: warn(text, {named(node.args[1])}) with a message written "
                           f"in place; use warn({named(node.args[1])}(N_('... {{x}} ...'), x=...))")
    return out


def check(root: Path = ROOT, only: Iterable[str] | None = None) -> Problems:
    """Every catalog (or those of ``only``'s domains) against its sources, for every language but
    English; and (all catalogs) every error message a catalog template."""
    problems = Problems()
    if not only:
        problems.errors += unmarked_errors(root)
    terms = glossary() if root == ROOT else []
    for domain, folder in domains(root).items():
        if only and domain not in set(only):
            continue
        found, fstrings = extract(folder, root)
        problems.fstrings += fstrings
        for lang in LANGUAGES:
            if lang == SOURCE_LANGUAGE:
                continue
            path = folder / "locale" / f"{lang.replace('-', '_')}.po"
            cat = _read(path, lang)
            have = {m.id: m for m in cat if m.id}
            where = f"{path.relative_to(root)}"
            for msg, places in found.items():
                m = have.get(msg)
                if m is None or not m.string or (isinstance(m.string, tuple) and not all(m.string)):
                    problems.missing.append(f"{where}: {msg!r} ({places[0]})")
                    continue
                if m.fuzzy:
                    problems.fuzzy.append(f"{where}: {msg!r}")
                ids = msg if isinstance(msg, tuple) else (msg,)
                strs = m.string if isinstance(m.string, tuple) else (m.string,)
                want = set().union(*(_fields(i) for i in ids))
                for s in strs:
                    if _fields(s) != want and not (isinstance(msg, tuple) and _fields(s) <= want):
                        problems.fields.append(f"{where}: {msg!r}: placeholders {sorted(_fields(s))} "
                                               f"instead of {sorted(want)}")
                for t in terms:
                    en, zh = t["en"], t.get(lang)
                    if zh and msg not in t.get("except", ()) \
                            and any(re.search(rf"\b{re.escape(en)}", i, re.IGNORECASE) for i in ids) \
                            and not all(zh in s for s in strs):
                        problems.glossary.append(f"{where}: {msg!r}: {en!r} is {zh!r} (glossary)")
            for msg in have:
                if msg not in found:
                    problems.stale.append(f"{where}: {msg!r}")
    return problems


def update(root: Path = ROOT, only: Iterable[str] | None = None) -> dict[str, dict[str, int]]:
    """Bring every catalog (or those of ``only``'s domains) in line with its sources: new messages
    added empty, stale ones dropped."""
    from babel.messages.catalog import Catalog

    report = {}
    for domain, folder in domains(root).items():
        if only and domain not in set(only):
            continue
        found, _f = extract(folder, root)
        for lang in LANGUAGES:
            if lang == SOURCE_LANGUAGE:
                continue
            path = folder / "locale" / f"{lang.replace('-', '_')}.po"
            old = _read(path, lang)
            have = {m.id: m for m in old if m.id}
            new = Catalog(locale=babel_locale(lang), project="sitetwin", version="", domain=domain,
                          header_comment=f"# sitetwin: {lang} messages of {domain} (data/catalogs.py keeps it "
                                         "in line with the code).\n# Terms: data/locale/glossary.yaml.",
                          creation_date=old.creation_date if path.is_file() else None,
                          revision_date=old.revision_date if path.is_file() else None,
                          language_team="sitetwin <zh-CN>", charset="utf-8")
            added = 0
            for msg in found:
                m = have.get(msg)
                if m is not None:
                    new.add(msg, m.string, flags=m.flags, auto_comments=[], user_comments=m.user_comments)
                else:
                    added += 1
                    new.add(msg, ("", "") if isinstance(msg, tuple) else "")
            _write(path, new)
            report[f"{domain}:{lang}"] = {"messages": len(found), "added": added,
                                          "dropped": sum(1 for k in have if k not in found)}
    reload_catalogs()
    return report


def merge(fragments: Iterable[str | Path], root: Path = ROOT, *, overwrite: bool = False,
          only: Iterable[str] | None = None) -> dict[str, int]:
    """Fill the catalogs' empty messages (every one with ``overwrite``; only ``only``'s domains if
    given) from gettext fragments."""
    lang = next(x for x in LANGUAGES if x != SOURCE_LANGUAGE)
    pool: dict[Message, object] = {}
    for frag in fragments:
        for m in _read(Path(frag), lang):
            if m.id and m.string:
                pool[m.id] = m.string
    report = {}
    for domain, folder in domains(root).items():
        if only and domain not in set(only):
            continue
        path = folder / "locale" / f"{lang.replace('-', '_')}.po"
        cat = _read(path, lang)
        n = 0
        for m in cat:
            if m.id in pool and (overwrite or not m.string or (isinstance(m.string, tuple) and not all(m.string))):
                m.string = pool[m.id]
                n += 1
        if n:
            _write(path, cat)
        report[domain] = n
    reload_catalogs()
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="catalogs", description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--update", action="store_true")
    ap.add_argument("--domain", action="append", help="with --update or --merge: only this catalog")
    ap.add_argument("--merge", nargs="+", metavar="FILE.po")
    ap.add_argument("--overwrite", action="store_true", help="with --merge: replace existing translations too")
    args = ap.parse_args(argv)
    if args.update:
        for k, v in update(only=args.domain).items():
            print(f"{k}: {v['messages']} messages, {v['added']} new, {v['dropped']} dropped")
    if args.merge:
        for k, n in merge(args.merge, overwrite=args.overwrite, only=args.domain).items():
            print(f"{k}: {n} translations merged")
    if args.check or not (args.update or args.merge):
        problems = check()
        for line in problems.lines():
            print(line)
        if problems:
            print(f"{len(problems.lines())} catalog problems", file=sys.stderr)
            return 1
        print("catalogs: every message translated, none stale")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
