"""automation's module boundaries, read from the source: every import of one
automation module by another (function-local ones included, since an import
cycle hidden inside a function is still a cycle), no module past 500 lines,
models a leaf, selectors never importing services."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APP = "automation"
MAX_LINES = 500


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted((ROOT / APP).rglob("*.py")):
        if "migrations" in path.parts:
            continue
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imported(module: str, path: Path) -> set[str]:
    """The automation modules ``module`` imports, wherever the import statement is."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            submodules = {f"{base}.{alias.name}" for alias in node.names} & MODULES.keys()
            names |= submodules
            if len(submodules) < len(node.names):  # a name defined in ``base`` itself
                names.add(base)
    return {name for name in names if name in MODULES and name not in (module, APP)}


def _graph() -> dict[str, set[str]]:
    return {module: _imported(module, path) for module, path in MODULES.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_there_is_no_import_cycle_between_automation_modules():
    cycles = _cycles(_graph())

    assert cycles == []


def test_models_are_a_leaf():
    # models import choices only: no services, validators or registries
    imported = set()
    for module in MODULES:
        if module == f"{APP}.models" or module.startswith(f"{APP}.models."):
            imported |= _graph()[module]
    outside = {m for m in imported if not m.startswith(f"{APP}.models")}

    assert outside <= {f"{APP}.choices"}


def test_selectors_do_not_import_services():
    services = {m for m in MODULES if m == f"{APP}.services" or m.startswith(f"{APP}.services.")}

    assert not (_graph()[f"{APP}.selectors"] & services)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_is_over_500_lines(module):
    lines = len(MODULES[module].read_text().splitlines())

    assert lines <= MAX_LINES, f"{module} has {lines} lines"
