"""The shape of the code: imports run downward, so no two packages import each other.

The graph is read from the source (every ``import`` and ``from … import``, at any depth,
including those inside functions and ``TYPE_CHECKING`` blocks: a lazy import is still a
dependency). A node is a package under ``hearth`` (``hearth.config``) or a top-level module
(``hearth.cli``).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import hearth

SOURCE = Path(hearth.__file__).parent


def _node(module: str) -> str | None:
    """The graph node of a ``hearth`` module: its package, or itself at the top level."""
    parts = module.split(".")
    if parts[0] != "hearth" or len(parts) < 2:
        return None
    return parts[1].removesuffix(".py")


def _imported(tree: ast.AST, package: str) -> Iterator[str]:
    """Every module ``tree`` imports, relative imports resolved against ``package``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            # ``from hearth import web`` imports the package ``hearth.web``.
            yield from (f"{module}.{alias.name}" for alias in node.names)


def import_graph(root: Path = SOURCE) -> dict[str, set[str]]:
    """``{node: nodes it imports}`` for the package at ``root``."""
    graph: dict[str, set[str]] = {}
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root.parent).with_suffix("")
        module = ".".join(relative.parts).removesuffix(".__init__")
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        source = _node(module)
        if source is None:
            continue
        targets = graph.setdefault(source, set())
        for name in _imported(ast.parse(path.read_text(encoding="utf-8")), package):
            target = _node(name)
            if target is not None and target != source:
                targets.add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:  # noqa: C901 (Tarjan's, as written)
    """The strongly connected components with more than one node (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
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


def _edges_within(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    return [f"{a} -> {b}" for a in component for b in sorted(graph[a]) if b in component]


def test_no_two_packages_import_each_other() -> None:
    graph = import_graph()
    assert {"app", "config", "db", "web", "kit"} <= graph.keys()  # the graph was read
    found = cycles(graph)
    assert not found, "import cycles between packages: " + "; ".join(
        ", ".join(_edges_within(graph, component)) for component in found
    )


def test_the_low_rooms_import_no_concern() -> None:
    """``kit`` imports nothing of Hearth's but itself; ``web`` (the shared HTTP helpers)
    only the low rooms; nothing imports ``app`` but the command line."""
    graph = import_graph()
    assert graph["kit"] == set()
    assert graph["web"] <= {"kit", "log", "errors", "version"}
    importers = sorted(node for node, targets in graph.items() if "app" in targets)
    assert importers == ["cli"]


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (
            {"a/__init__.py": "", "a/x.py": "from hearth.b import y", "b/y.py": "import hearth.a"},
            [["a", "b"]],
        ),
        (
            {
                "a/x.py": "from hearth.b import y",
                "b/y.py": "from hearth.c import z",
                "c/z.py": "from ..a import x",
            },
            [["a", "b", "c"]],
        ),
        ({"a/x.py": "from hearth.b import y", "b/y.py": "import os"}, []),
        (
            {
                "a/x.py": "def f():\n    from hearth.b import y",
                "b/y.py": "if 1:\n    from hearth import a",
            },
            [["a", "b"]],
        ),
    ],
)
def test_the_cycle_finder_finds_cycles(
    tmp_path: Path, files: dict[str, str], expected: list[list[str]]
) -> None:
    """The finder itself can fail: cycles of two and three packages, relative imports and
    imports inside functions are caught; a one-way import is not a cycle."""
    root = tmp_path / "hearth"
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert cycles(import_graph(root)) == expected
