"""Rules of the package's own code: Dagster's private API behind one module, no import-time side effects."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "massive_pipeline"
COMPAT = PACKAGE / "dagster_compat.py"


def _private_dagster_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        found += [f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {n}" for n in names
                  if n.startswith(("dagster._", "dagster_shared"))]
    return found


def test_dagster_private_api_is_imported_only_by_the_compatibility_module():
    modules = sorted(PACKAGE.rglob("*.py"))
    assert COMPAT in modules
    offenders = [hit for path in modules if path != COMPAT for hit in _private_dagster_imports(path)]
    assert offenders == []
    assert _private_dagster_imports(COMPAT), "the compatibility module should hold the private imports"


def test_importing_the_code_location_changes_no_warning_filters():
    # third-party packages set filters of their own when imported: import them first
    code = (
        "import warnings, numpy, pandas, dagster, pandera.pandas, sqlalchemy, pandas_market_calendars, httpx, "
        "psycopg, alembic; before = list(warnings.filters); import massive_pipeline.definitions; "
        "print([f for f in warnings.filters if f not in before] == [])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    assert out.stdout.strip().splitlines()[-1] == "True", out.stderr[-2000:]
