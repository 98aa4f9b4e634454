"""The training benchmarks run end to end on a CPU in CI-sized form and report every column.

These check that the benchmarks work and measure what they claim (ratios to their own
baseline, memory that the efficient backward saves), never how fast anything is.
"""

from __future__ import annotations

import math
import sys

import pytest

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))

import gpu_check  # noqa: E402
import sweep_throughput  # noqa: E402
import train_step  # noqa: E402
import train_throughput  # noqa: E402


def finite_positive(value: object) -> bool:
    return isinstance(value, float) and math.isfinite(value) and value > 0


def test_train_throughput_quick_reports_every_column(capsys: pytest.CaptureFixture[str]) -> None:
    rows = train_throughput.main(["--quick", "--device", "cpu"])
    out = capsys.readouterr().out
    # Two groups (task vocabulary, larger vocabulary) x (reference + n in {1, 2, 4} x two backwards).
    assert len(rows) == 2 * 7
    lines = out.splitlines()
    full = max(i for i, line in enumerate(lines) if line.split()[:2] == ["size", "context"] and "model" in line)
    assert all(column in lines[full] for column in train_throughput.COLUMNS)
    summary = lines[-4]  # a short table, one line per group, is printed last
    assert all(column in summary for column in train_throughput.SUMMARY_COLUMNS)
    assert lines[-2].split()[:4] == ["100K", "32", "352", "off"] and "-" not in lines[-2].split()
    for row in rows:
        for column in ("ms/step", "tokens/s", "MFU %", "vs ref", "peak MB"):
            assert finite_positive(row[column]), (row["model"], column, row[column])
        if row["model"] == "reference":
            assert row["vs ref"] == 1.0
        else:
            assert finite_positive(row["vs n=1"]) and finite_positive(row["mem vs n=1"])
            if row["model"].startswith("n=1"):
                assert row["vs n=1"] == 1.0 and row["mem vs n=1"] == 1.0
    assert "lab n=1 step" in out and "n=4 step" in out and "peak memory" in out


def test_efficient_backward_saves_logit_memory_in_the_benchmark() -> None:
    rows = train_step.main(["--quick", "--device", "cpu"])
    assert {r["n"] for r in rows} == {1, 2, 4} and {r["backward"] for r in rows} == {"efficient", "plain"}
    for row in rows:
        for column in train_step.COLUMNS:
            assert row[column] is not None, column
    big = {(r["n"], r["backward"]): r for r in rows if r["vocab"] == 2000}
    # With a vocabulary large enough for the logits to dominate, n plain heads hold n sets of
    # logits at once; the efficient backward holds one.
    assert big[(4, "plain")]["peak MB"] > 1.3 * big[(4, "efficient")]["peak MB"]
    assert big[(4, "efficient")]["mem vs n=1"] < big[(4, "plain")]["mem vs n=1"]


def test_gpu_check_runs_on_cpu(capsys: pytest.CaptureFixture[str]) -> None:
    assert gpu_check.main(["--device", "cpu", "--no-compile"]) == 0
    assert "all checks passed" in capsys.readouterr().out


@pytest.mark.slow
def test_compiled_model_gradients_match_eager_on_cpu(capsys: pytest.CaptureFixture[str]) -> None:
    """`train.compile` (compiled blocks and loss) computes the eager model's gradients (about 30 s to compile)."""
    assert gpu_check.main(["--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "compiled efficient vs eager" in out and "compiled plain vs eager" in out


def test_sweep_throughput_quick_runs_real_runs() -> None:
    rows = sweep_throughput.main(["--quick", "--workers", "1,2"])
    assert [r["workers"] for r in rows] == [1, 2]
    for row in rows:
        assert row["runs"] == 2 and finite_positive(row["runs/hour"]) and finite_positive(row["speed-up"])
