"""The README's install (`pip install -e ".[dev]"`) passes the README's test command: tests of an
optional extra that is absent are skipped with the reason, never failed."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from tests.conftest import REPO

EXTRA_TESTS = ["tests/test_executors.py::test_slurm_executor_packs_runs_into_jobs",
               "tests/test_executors.py::test_slurm_from_the_command_line",
               "tests/test_executors.py::test_ray_on_a_local_instance",
               "tests/test_tracking.py::test_tensorboard_tracker_writes_scalars_at_each_step",
               "tests/test_trust.py::test_wandb_tracker_logs_offline_into_the_run_directory"]


def test_tests_of_absent_extras_are_skipped_with_the_reason() -> None:
    code = ("import sys\n"
            "sys.modules.update(dict.fromkeys(['submitit', 'ray', 'tensorboard', 'wandb']))  # as if not installed\n"
            "import pytest\n"
            f"sys.exit(pytest.main(['-q', '-rs', '-p', 'no:cacheprovider', *{EXTRA_TESTS!r}]))\n")
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout[-3000:]
    assert f"{len(EXTRA_TESTS)} skipped" in result.stdout
    skips = [line for line in result.stdout.splitlines() if line.startswith("SKIPPED")]
    for extra in ("slurm", "ray", "tensorboard", "wandb"):
        assert any(f'pip install -e ".[{extra}]"' in line for line in skips), skips


def optional_dependencies() -> dict[str, str]:
    """[project.optional-dependencies] of pyproject.toml: extra -> its requirement list (as text)."""
    text = (REPO / "pyproject.toml").read_text()
    section = text.split("[project.optional-dependencies]", 1)[1].split("\n[", 1)[0]
    return dict(re.findall(r"^([\w-]+) = \[(.*)\]$", section, flags=re.M))


def test_every_extra_the_readme_and_messages_name_exists_and_ci_installs_the_tested_ones() -> None:
    extras = optional_dependencies()
    readme = (REPO / "README.md").read_text()
    named = set(re.findall(r"`(\w+)` \(", readme.split("Optional extras", 1)[1].split("\n\n", 1)[0]))
    assert named == {"slurm", "ray", "tensorboard", "wandb", "notebook"} and named <= set(extras)
    assert "submitit" in extras["slurm"] and "ray" in extras["ray"] and "tensorboard" in extras["tensorboard"]
    assert "jupyterlab" in extras["notebook"] and "ipywidgets" in extras["notebook"]
    ci = (REPO / ".ci" / "run").read_text()
    (installed,) = re.findall(r'pip install --quiet -e "\.\[(slurm[\w,]*)\]"', ci)
    assert set(installed.split(",")) == {"slurm", "ray", "tensorboard", "wandb"}  # so their tests run in CI
