"""Rules of the package's own code: Dagster's private API behind one module, no import-time side
effects, no import cycles, a handful of modules at the top and tests that mirror the package."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent
PACKAGE = TESTS.parent / "massive_pipeline"
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


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Each module of the package -> the package modules it imports, anywhere in its body (an import
    inside a function closes a cycle as surely as one at the top, it only delays it)."""
    paths = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        is_package = path.name == "__init__.py"
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                candidates = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: resolve against this module's package
                    package = name if is_package else name.rpartition(".")[0]
                    for _ in range(node.level - 1):
                        package = package.rpartition(".")[0]
                    base = f"{package}.{base}" if base else package
                # `from pkg import mod` names the module; `from pkg import name` the package
                subs = [f"{base}.{alias.name}" for alias in node.names]
                candidates = subs + ([base] if any(s not in paths for s in subs) else [])
            else:
                continue
            targets |= {c for c in candidates if c in paths and c != name}
        graph[name] = targets
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_package_has_no_import_cycle():
    graph = import_graph()
    assert "massive_pipeline.definitions" in graph and graph["massive_pipeline.definitions"]
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_the_cycle_finder_finds_a_cycle_through_a_lazy_import():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_a_handful_of_modules_at_the_top_of_the_package():
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert top == ["__init__.py", "dagster_compat.py", "definitions.py"]


def test_the_tests_mirror_the_package():
    rooms = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    # end-to-end suites cutting across rooms, and the tests' own helpers
    across = {"browser", "reliability", "fixtures"}
    test_dirs = {p.name for p in TESTS.iterdir() if (p / "__init__.py").exists()}
    assert test_dirs - across <= rooms, f"test folders without a package room: {sorted(test_dirs - across - rooms)}"
    untested = rooms - test_dirs
    assert untested == set(), f"package rooms without a test folder: {sorted(untested)}"


def test_runs_are_executed_in_process_only_by_the_cli_launcher_and_the_testing_tools():
    """Schedules, sensors and steps request runs from Dagster (queue, pools, monitoring, retries);
    only the command line's own launcher and the test tools execute a job in their process."""
    allowed = {PACKAGE / "cli" / "launch.py"}
    users = {p for p in PACKAGE.rglob("*.py") if "execute_in_process" in p.read_text()}
    assert users, "the CLI's launcher executes runs in process"
    outside = sorted(str(p.relative_to(PACKAGE)) for p in users - allowed if "testing" not in p.relative_to(PACKAGE).parts)
    assert outside == []
