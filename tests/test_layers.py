"""The package structure holds: tables are read and written only by the package that owns them,
and importing what runs no network loads neither torch nor ultralytics.

The import layers themselves are import-linter's contracts (``[tool.importlinter]`` in
pyproject.toml), run by ``make test``; these are the rules it cannot see.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("app", "bim", "cluster", "dashboards", "data", "oversight", "panorama", "sensors", "synth", "twin",
            "vision")
# Statements that name a table; the code writes SQL keywords in capitals.
_TABLE_RE = r"\b(FROM|JOIN|INTO|UPDATE|TABLE)\s+{table}\b"
_WRITE_RE = r"\b(INSERT\s+(OR\s+\w+\s+)?INTO|UPDATE|DELETE\s+FROM)\s+{table}\b"


def table_owners() -> dict[str, str]:
    """Each table and view of the schema -> the package that owns it (the migration's ``-- owner:`` line)."""
    owners = {"sites": "data", "schema_migrations": "data"}
    for path in sorted((REPO / "data" / "migrations").glob("*.sql")):
        text = path.read_text()
        first = text.splitlines()[0]
        match = re.match(r"-- owner: sitetwin\.(\w+)", first)
        assert match, f"{path.name}: the first line must say '-- owner: sitetwin.<package>'"
        for name in re.findall(r"CREATE (?:TABLE|OR REPLACE VIEW|VIEW)(?: IF NOT EXISTS)? (\w+)", text):
            owners.setdefault(name, match[1])
    return owners


def _strings(path: Path) -> list[tuple[int, str]]:
    """The string literals of a module (SQL lives in them), with their line numbers; f-strings joined."""
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.append((node.lineno, node.value))
        elif isinstance(node, ast.JoinedStr):
            found.append((node.lineno, "".join(v.value for v in node.values
                                               if isinstance(v, ast.Constant) and isinstance(v.value, str))))
    return found


def _docstring_lines(path: Path) -> set[int]:
    tree = ast.parse(path.read_text())
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            body = getattr(node, "body", [])
            if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
                lines.add(body[0].value.lineno)
    return lines


def foreign_sql(path: Path, package: str, owners: dict[str, str], *, writes_only: bool, root: Path = REPO) -> list[str]:
    """Statements in ``path`` that touch a table another package owns (``sites`` is everyone's to read)."""
    pattern = _WRITE_RE if writes_only else _TABLE_RE
    docs = _docstring_lines(path)
    found: list[str] = []
    for line, text in _strings(path):
        if line in docs:
            continue
        for table, owner in owners.items():
            if owner == package or (table == "sites" and not writes_only):
                continue
            hit = f"{path.relative_to(root)}:{line}: {table} (owned by {owner})"
            if re.search(pattern.format(table=table), text) and hit not in found:   # an f-string's parts repeat it
                found.append(hit)
    return found


def test_every_migration_names_its_owner_and_every_owner_is_a_package():
    owners = table_owners()
    assert set(owners.values()) <= set(PACKAGES)
    assert {"elements", "surveys", "panoramas", "hazards", "findings", "readings"} <= set(owners)


@pytest.mark.parametrize("package", [p for p in PACKAGES if p not in ("data", "app", "synth")])
def test_a_library_package_reads_and_writes_only_its_own_tables(package):
    owners = table_owners()
    found = []
    for path in sorted((REPO / package).rglob("*.py")):
        found += foreign_sql(path, package, owners, writes_only=False)
    assert not found, "another package's tables in SQL; call its queries module instead:\n" + "\n".join(found)


@pytest.mark.parametrize("package", ["app", "synth"])
def test_the_app_and_synthetic_data_go_through_the_packages(package):
    owners = table_owners()
    found = []
    for path in sorted((REPO / package).rglob("*.py")):
        found += foreign_sql(path, package, owners, writes_only=False)
    assert not found, "SQL against a package's tables; call the package instead:\n" + "\n".join(found)


def test_tests_fill_a_packages_tables_only_through_that_package():
    owners = table_owners()
    found = []
    for path in sorted((REPO / "tests").rglob("*.py")):
        parts = path.relative_to(REPO / "tests").parts
        package = parts[0] if len(parts) > 1 and parts[0] in PACKAGES else None
        found += foreign_sql(path, package or "", owners, writes_only=True)
    assert not found, "a test writes another package's table; use that package's functions:\n" + "\n".join(found)


def test_the_check_finds_foreign_tables_in_sql_and_skips_docstrings(tmp_path):
    module = tmp_path / "probe.py"
    # the probe's write is assembled from two pieces, or the tests-fill check would find it in this file
    module.write_text('"""Docstring that mentions SELECT * FROM hazards."""\n'
                      'SQL = "SELECT count(*) FROM surveys s JOIN current_elements e USING (global_id)"\n'
                      'W = f"INSERT INTO ' + 'findings VALUES ({1})"\n')
    owners = table_owners()
    found = foreign_sql(module, "twin", owners, writes_only=False, root=tmp_path)
    writes = foreign_sql(module, "twin", owners, writes_only=True, root=tmp_path)
    assert sorted(f.split(": ", 1)[1] for f in found) == ["current_elements (owned by bim)",
                                                         "findings (owned by oversight)"]
    assert [f.split(": ", 1)[1] for f in writes] == ["findings (owned by oversight)"]


LIGHT = ["sitetwin.data.store", "sitetwin.bim", "sitetwin.twin.survey", "sitetwin.panorama.pose",
         "sitetwin.vision", "sitetwin.vision.tagging", "sitetwin.vision.datasets", "sitetwin.vision.hazards",
         "sitetwin.vision.queries", "sitetwin.sensors", "sitetwin.oversight", "sitetwin.oversight.risk",
         "sitetwin.cluster", "sitetwin.app.cli"]


def test_importing_what_runs_no_network_loads_neither_torch_nor_ultralytics():
    code = ("import importlib, sys\n"
            f"for name in {LIGHT!r}:\n"
            "    importlib.import_module(name)\n"
            "heavy = sorted(m for m in ('torch', 'ultralytics', 'torchvision', 'open3d', 'dash') if m in sys.modules)\n"
            "print(','.join(heavy))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO.parent)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
