"""The README's install (`pip install -e ".[dev]"`) passes the README's test command: tests of an
optional extra that is absent are skipped with the reason, never failed."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import REPO

EXTRA_TESTS = ["tests/test_executors.py::test_slurm_executor_packs_runs_into_jobs",
               "tests/test_executors.py::test_slurm_from_the_command_line",
               "tests/test_executors.py::test_ray_on_a_local_instance",
               "tests/test_tracking.py::test_tensorboard_tracker_writes_scalars_at_each_step"]


def test_tests_of_absent_extras_are_skipped_with_the_reason() -> None:
    code = ("import sys\n"
            "sys.modules.update(dict.fromkeys(['submitit', 'ray', 'tensorboard']))  # as if not installed\n"
            "import pytest\n"
            f"sys.exit(pytest.main(['-q', '-rs', '-p', 'no:cacheprovider', *{EXTRA_TESTS!r}]))\n")
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout[-3000:]
    assert f"{len(EXTRA_TESTS)} skipped" in result.stdout
    skips = [line for line in result.stdout.splitlines() if line.startswith("SKIPPED")]
    for extra in ("slurm", "ray", "tensorboard"):
        assert any(f'pip install -e ".[{extra}]"' in line for line in skips), skips
