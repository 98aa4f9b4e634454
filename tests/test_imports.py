"""The modules of `lab/` and `tasks/` import one another without a cycle, counting imports
inside functions too (a deferred import hides a cycle; it does not remove it). Only a module's
`if __name__ == "__main__":` block is left out: it runs as a separate `__main__` module."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

PACKAGES = ("lab", "tasks")


def module_names() -> dict[str, Path]:
    """Dotted name -> file, for every module of the packages (a package is its __init__)."""
    out = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package modules `name` imports anywhere in its file (module level or in functions).

    `from P import X` imports module `P.X` when that is a module, else module `P`. Edges to
    a module's own parent packages are not counted: Python runs (or is running) every parent
    package before a submodule, so importing it from the submodule loads nothing new (this
    is how `tasks/__init__.py` registers the tasks its submodules define).
    """
    is_package = path.name == "__init__.py"
    found = set()
    tree = ast.parse(path.read_text(), str(path))
    for block in [n for n in tree.body if is_main_guard(n)]:  # runs only as a script, as another module
        tree.body.remove(block)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                anchor = name.split(".")[: len(name.split(".")) - node.level + (1 if is_package else 0)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in modules else base)
    return {m for m in found if m in modules and m != name and not name.startswith(m + ".")}


def is_main_guard(node: ast.stmt) -> bool:
    """`if __name__ == "__main__":` at module level: `python -m pkg.mod` runs that block in a fresh
    `__main__` module, so its imports are not imports of `pkg.mod` and cannot close a cycle."""
    return (isinstance(node, ast.If) and isinstance(node.test, ast.Compare)
            and isinstance(node.test.left, ast.Name) and node.test.left.id == "__name__"
            and any(isinstance(c, ast.Constant) and c.value == "__main__" for c in node.test.comparators))


def import_graph() -> dict[str, set[str]]:
    modules = module_names()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_graph_sees_imports_inside_functions() -> None:
    graph = import_graph()
    assert "lab.objective" in graph["lab.distributed"]  # module level
    assert "lab.train" in graph["lab.run"]  # inside `make_trainer`


def test_no_import_cycles() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_decoding_does_not_import_training() -> None:
    graph = import_graph()
    assert "lab.train" not in graph["lab.decode"] and "lab.evaluate" not in graph["lab.decode"]
    assert "lab.train" not in graph["lab.evaluate"]
