"""The import graph of the engines and the platform, read from the source with ``ast``.

Every import counts: those at the top of a module, those inside functions (a
function-level import hides a cycle from Python's loader, not from the design) and those
under ``if TYPE_CHECKING:`` (they never run, but the design depends on them all the same).
Engines are libraries, so nothing in ``engines/`` imports ``formloom.platform``, not even
for type hints; and no module reaches itself again through its imports, however many
modules the path goes through. A lower module that is handed a higher one's object (the
rules, the record service they run in) describes what it uses with a ``typing.Protocol``
of its own (``rules.automation.RuleRecords``) instead of importing the type.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("engines", "platform")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(["formloom", *parts])


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[_module_name(path)] = path
    return found


def _imported(name: str, path: Path, known: dict[str, Path]) -> Iterator[str]:
    """Every module of ``known`` that module ``name`` imports, anywhere in its body."""
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                # a module's package is its parent; a package's own __init__ is its package
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            # `from package import module` imports the module; `from module import name`
            # the module that holds the name
            targets = [
                f"{stem}.{alias.name}" if f"{stem}.{alias.name}" in known else stem
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            # the innermost known module: `a.b.c` for a function c of module a.b is a.b
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                yield target


def _graph() -> dict[str, set[str]]:
    known = _modules()
    return {name: set(_imported(name, path, known)) for name, path in known.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each given
    as one closed path through it so that a failure shows how the cycle runs."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                components.append(_path_through(graph, set(component)))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def _path_through(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A shortest path from the component's first module back to itself."""
    start = min(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for nxt in sorted(graph[node] & component):
                if nxt == start:
                    return [*paths[node], start]
                if nxt not in paths:
                    paths[nxt] = [*paths[node], nxt]
                    following.append(nxt)
        frontier = following
    return sorted(component)


def test_the_graph_sees_both_kinds_of_import() -> None:
    graph = _graph()
    assert "formloom.platform.records.service" in graph
    # relative imports, resolved: `from . import dates` in the logic engine's analysis
    assert "formloom.engines.logic.dates" in graph["formloom.engines.logic.analysis"]
    # an import inside a function: the CLI loads the web server only to serve
    assert "formloom.platform.api" in graph["formloom.platform.cli"]
    # the rules name what they use of the record service with a Protocol, not an import
    assert "formloom.platform.records.service" not in graph["formloom.platform.rules.automation"]


def test_an_import_under_type_checking_counts(tmp_path: Path) -> None:
    module = tmp_path / "automation.py"
    module.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from formloom.platform.records.service import RecordService\n",
        encoding="utf-8",
    )
    found = set(_imported("formloom.platform.rules.automation", module, _modules()))
    assert found == {"formloom.platform.records.service"}


def test_engines_do_not_import_the_platform() -> None:
    offenders = sorted(
        f"{name} -> {target}"
        for name, targets in _graph().items()
        if name.startswith("formloom.engines")
        for target in targets
        if target.startswith("formloom.platform")
    )
    assert offenders == []


def test_no_import_cycles() -> None:
    cycles = [" -> ".join(cycle) for cycle in _cycles(_graph())]
    assert cycles == []
