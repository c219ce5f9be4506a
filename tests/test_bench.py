"""The benchmark scripts still fit the code they measure: every sitetwin name they import exists.

They run rarely (minutes each) and no test runs them, so a rename in a package would
otherwise break a benchmark silently until someone needs its figures.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


def sitetwin_imports(path: Path) -> list[tuple[int, str, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("sitetwin."):
            found += [(node.lineno, node.module, alias.name) for alias in node.names]
    return found


@pytest.mark.parametrize("script", sorted(p.name for p in BENCH.glob("*.py")))
def test_every_sitetwin_name_a_benchmark_imports_exists(script):
    missing = []
    for line, module, name in sitetwin_imports(BENCH / script):
        mod = importlib.import_module(module)
        if not hasattr(mod, name):
            try:
                importlib.import_module(f"{module}.{name}")
            except ImportError:
                missing.append(f"bench/{script}:{line}: {module} has no {name}")
    assert not missing, "\n".join(missing)
