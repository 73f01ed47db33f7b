"""The package layout keeps its promises: no import circles, no upward imports, files of one sitting."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

PACKAGES = ("models", "search", "analysis")
MAX_LINES = 300


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def top_level_imports(path: Path, modules: set[str]) -> set[str]:
    """Project modules imported at module level (imports inside functions are deferred on purpose).
    `from pkg import sub` imports the module pkg.sub; `from pkg import name` runs pkg itself."""
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in modules else node.module)
    return found & modules


def all_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
    return names


def sources() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def test_no_import_circles():
    modules = sources()
    graph = {m: top_level_imports(p, set(modules)) - {m} for m, p in modules.items()}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for n in graph[m]:
            assert state.get(n) != 1, "import circle: " + " -> ".join([*path, m, n])
            if n not in state:
                visit(n, [*path, m])
        state[m] = 2

    for m in graph:
        if m not in state:
            visit(m, [])


def test_no_upward_imports():
    """run_search -> search -> models; analysis reads results but never imports the trial loop."""
    for name, path in sources().items():
        imported = all_imports(path)
        if name.startswith("models"):
            assert not {i for i in imported if i.split(".")[0] in ("search", "analysis")}, name
        if name.startswith("search"):
            assert not {i for i in imported if i.split(".")[0] == "analysis"}, name
        if name.startswith("analysis"):
            assert not {i for i in imported if i.startswith(("search.trials", "search.runner"))}, name


def test_every_file_reads_in_one_sitting():
    long = {name: n for name, p in sources().items() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"over {MAX_LINES} lines: {long}"
