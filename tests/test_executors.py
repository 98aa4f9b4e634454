"""Executors: the local pool splits threads; Slurm via submitit's local cluster packs runs into
jobs; Ray runs on a local instance; missing extras are a clear exit 2.

The Slurm and Ray tests need the optional extras `[slurm]` / `[ray]` and are skipped, with the
reason, where they are absent (CI installs them)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from lab import runs, sweep
from lab.executors import LocalExecutor, RunSpec, SlurmExecutor, cpu_cores, execute
from lab.experiments import plan
from tests import test_sweep  # noqa: F401 - registers the tiny experiments

SLURM_MISSING = 'submitit is absent: pip install -e ".[slurm]" to run the Slurm executor tests'
RAY_MISSING = 'ray is absent: pip install -e ".[ray]" to run the Ray executor test'


def specs(root: Path, count: int) -> list[RunSpec]:
    return [RunSpec(c.to_dict(), str(root), "cpu", 1) for c in plan("tiny-sweep", "quick")[:count]]


def test_local_pool_splits_cpu_threads_between_workers() -> None:
    import torch
    executor = LocalExecutor(workers=2)
    try:
        assert executor.threads == max(1, cpu_cores() // 2)
        assert executor.pool.submit(torch.get_num_threads).result(timeout=120) == executor.threads
    finally:
        executor.shutdown()


def test_execute_reports_a_failure_instead_of_raising(tmp_path: Path) -> None:
    (spec,) = specs(tmp_path, 1)
    broken = {**spec.config, "finetune": {**spec.config["finetune"], "init_from": str(tmp_path / "missing.pt")}}
    result = execute(RunSpec(broken, str(tmp_path), "cpu", 1))
    assert result["status"] == "failed" and "missing.pt" in result["error"]


def test_slurm_executor_packs_runs_into_jobs(tmp_path: Path) -> None:
    pytest.importorskip("submitit", reason=SLURM_MISSING)
    executor = SlurmExecutor(tmp_path / "submitit", cluster="local", gpus_per_run=0, cpus_per_run=1,
                             time_limit_min=5, runs_per_job=2)
    futures = executor.submit(specs(tmp_path, 3))
    results = [f.result(timeout=300) for f in futures]
    assert [r["status"] for r in results] == ["complete"] * 3
    assert len(executor.jobs) == 2 and len(list((tmp_path / "submitit").glob("*_submitted.pkl"))) == 2
    assert len({(r["host"], r["name"]) for r in results}) == 3
    assert {runs.run_state(d) for d in runs.iter_run_dirs(tmp_path / "tiny-sweep")} == {"complete"}


def test_slurm_from_the_command_line(tmp_path: Path, capsys) -> None:
    pytest.importorskip("submitit", reason=SLURM_MISSING)
    args = ["tiny-sweep", "--out", str(tmp_path), "--executor", "slurm", "--cluster", "local", "--gpus-per-run", "0",
            "--cpus-per-run", "1", "--time-limit", "5", "--runs-per-job", "4", "--device", "cpu", "--quiet"]
    assert sweep.main(args) == 0
    assert "4 complete" in capsys.readouterr().out
    assert len(list((tmp_path / "tiny-sweep" / ".submitit").glob("*_submitted.pkl"))) == 1  # one job, four runs


def test_ray_on_a_local_instance(tmp_path: Path, capsys) -> None:
    ray = pytest.importorskip("ray", reason=RAY_MISSING)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        args = ["tiny-sweep", "--out", str(tmp_path), "--executor", "ray", "--device", "cpu", "--quiet"]
        assert sweep.main(args) == 0
        assert "4 complete" in capsys.readouterr().out
    finally:
        ray.shutdown()
    assert {runs.run_state(d) for d in runs.iter_run_dirs(tmp_path)} == {"complete"}


@pytest.mark.parametrize("executor, extra", [("slurm", "submitit"), ("ray", "ray")])
def test_missing_extra_exits_2(tmp_path: Path, capsys, monkeypatch, executor: str, extra: str) -> None:
    monkeypatch.setitem(sys.modules, extra, None)  # import fails as if not installed
    assert sweep.main(["tiny-sweep", "--out", str(tmp_path / "out"), "--executor", executor]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"mtp-lab[{executor}]" in err[0]
    assert not (tmp_path / "out").exists()
