"""The analysis layer (`lab/analysis/`) stands apart: none of its modules imports torch, the
trainer, the sweep driver or an experiment, directly or through another lab module, and
importing all of them loads none of these."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import REPO
from tests.test_imports import import_graph, module_names

FORBIDDEN = ("torch", "lab.train", "lab.sweep", "lab.experiments")


def forbidden(name: str) -> bool:
    return any(name == f or name.startswith(f + ".") for f in FORBIDDEN)


def third_party_imports(path) -> set[str]:
    """Every absolute module name a file imports (top level or inside functions)."""
    import ast
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.update([node.module, *(f"{node.module}.{a.name}" for a in node.names)])
    return found


def analysis_modules() -> dict:
    return {name: path for name, path in module_names().items()
            if path.is_relative_to(REPO / "lab" / "analysis")}


def test_no_analysis_module_imports_torch_the_trainer_the_sweep_or_an_experiment() -> None:
    modules = analysis_modules()
    assert {"lab.analysis.stats", "lab.analysis.claims", "lab.analysis.registry"} <= set(modules)
    for path in modules.values():
        bad = sorted(m for m in third_party_imports(path) if forbidden(m))
        assert not bad, f"{path.relative_to(REPO)} imports {bad}"


def test_nor_through_another_lab_module() -> None:
    graph = import_graph()
    for name in analysis_modules():
        seen, todo = set(), [name]
        while todo:
            for nxt in graph[todo.pop()] - seen:
                assert not forbidden(nxt), f"{name} reaches {nxt} through {sorted(seen)}"
                seen.add(nxt)
                todo.append(nxt)


def test_importing_every_analysis_module_loads_no_torch_trainer_or_experiment() -> None:
    names = sorted(analysis_modules())
    code = (f"import importlib, sys\nfor n in {names!r}:\n    importlib.import_module(n)\n"
            f"print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch' or "
            f"any(m == f or m.startswith(f + '.') for f in {FORBIDDEN!r})))")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_check_sees_a_forbidden_import(tmp_path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from lab.experiments import plan\n    import torch.nn\n")
    assert sorted(m for m in third_party_imports(bad) if forbidden(m)) == [
        "lab.experiments", "lab.experiments.plan", "torch.nn"]
