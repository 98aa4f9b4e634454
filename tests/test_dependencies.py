"""Every third-party package that lab/ and tasks/ import is declared in pyproject.toml (as a
dependency, or in the optional extra whose feature uses it), and nothing declared goes unused."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import tomllib

REPO = Path(__file__).resolve().parents[1]
# Imports guarded by the feature that needs them: package -> its extra, or None when the code
# works without it (msvcrt: the Windows standard library; tabulate: Markdown tables fall back to text).
OPTIONAL_IMPORTS = {"submitit": "slurm", "ray": "ray", "msvcrt": None, "tabulate": None}


def imported_packages() -> set[str]:
    names = set()
    for path in [*REPO.glob("lab/**/*.py"), *REPO.glob("tasks/**/*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n not in ("lab", "tasks")}


def declared() -> tuple[set[str], dict[str, set[str]]]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    name = lambda spec: re.split(r"[<>=\[; ]", spec, maxsplit=1)[0].lower()
    extras = {k: {name(s) for s in v} for k, v in project["optional-dependencies"].items()}
    return {name(s) for s in project["dependencies"]}, extras


def test_every_imported_package_is_declared_and_every_dependency_is_imported() -> None:
    required, extras = declared()
    used = imported_packages()
    for package in sorted(used):
        extra = OPTIONAL_IMPORTS.get(package, "required")
        if extra is None:
            continue
        if extra == "required":
            assert package in required, f"{package} is imported by lab/ or tasks/ but not a dependency"
        else:
            assert package in extras[extra], f"{package} belongs in the [{extra}] extra"
    assert required <= used, f"declared but never imported: {sorted(required - used)}"
    assert "seaborn" in used and "seaborn" in required
