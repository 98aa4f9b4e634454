"""`python -m lab.eval`: a trained graph model scored on a published path-star file."""

from __future__ import annotations

from pathlib import Path

from lab import runs
from tests.conftest import SHARED, run_cli


def test_eval_on_published_file_and_bad_input(tmp_path: Path) -> None:
    trained = run_cli(["lab.run", "graph", "--size", "100K", "--steps", "5", "--quiet", "--device", "cpu",
                       "--out", str(tmp_path), "--set", "train.eval_every=5", "--set", "train.final_eval_examples=16",
                       "--set", "train.val_batches=1"])
    assert trained.returncode == 0, trained.stderr
    run_dir = next(iter(runs.iter_run_dirs(tmp_path)))
    data = SHARED / "data" / "path_star" / "deg_2_path_5_nodes_50_test_20000.txt"
    assert data.exists(), f"shared data missing: {data}"
    result = run_cli(["lab.eval", str(run_dir), "--data", str(data), "--max-examples", "64"])
    assert result.returncode == 0, result.stderr
    for key in ("exact_path_acc", "pos_acc/1", "pos_acc/2", "pos_acc/5", "teacher_forced_acc"):
        assert key in result.stdout
    own = run_cli(["lab.eval", str(run_dir), "--max-examples", "16", "--json"])
    assert own.returncode == 0 and '"exact_path_acc"' in own.stdout

    bad = tmp_path / "bad.txt"
    bad.write_text("1,2|2,3/1,3=1,2,3\n1,2|x\n")
    too_big = tmp_path / "labels.txt"
    too_big.write_text("60,61|61,62|60,63|63,64/60,62=60,61,62\n")
    other_shape = SHARED / "data" / "path_star" / "deg_5_path_3_nodes_50_test_20000.txt"
    for args, needle in (([str(tmp_path / "nope")], "does not exist"),
                         ([str(run_dir), "--data", str(bad)], "bad.txt:2"),
                         ([str(run_dir), "--data", str(too_big)], "exceeds the vocabulary"),
                         ([str(run_dir), "--data", str(other_shape)], "does not fit"),
                         ([str(run_dir), "--max-examples", "0"], "--max-examples")):
        result = run_cli(["lab.eval", *args])
        assert result.returncode == 2, (args, result.stderr)
        assert needle in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
