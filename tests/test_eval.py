"""`python -m lab.eval`: a trained graph model scored on a published path-star file; bad input."""

from __future__ import annotations

import json
from pathlib import Path

from lab import runs
from lab.eval import main
from lab.run import build_config
from lab.train import Trainer
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


def test_eval_refuses_a_file_and_an_incomplete_run(tmp_path: Path, tiny_overrides: list[str], capsys) -> None:
    def one_line_error() -> str:
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1, err
        return err

    config_file = tmp_path / "config.json"
    config_file.write_text("{}")
    assert main([str(config_file)]) == 2
    assert "is a file, not a run directory" in one_line_error()

    config = build_config("induction", steps=5, overrides=tiny_overrides)
    run_dir = Path(Trainer(config, tmp_path / "runs", device="cpu", quiet=True).run()["run_dir"])
    args = [str(run_dir), "--device", "cpu", "--max-examples", "8", "--json"]
    assert main(args) == 0 and capsys.readouterr().err == ""
    meta = runs.read_json(run_dir / runs.META)
    runs.write_json(run_dir / runs.META, {**meta, "status": "interrupted"})  # as after Ctrl-C
    assert main(args) == 2
    err = one_line_error()
    assert "not a complete run (status: interrupted)" in err and "--allow-incomplete" in err
    assert main([*args, "--allow-incomplete"]) == 0
    out = capsys.readouterr()
    assert out.err.startswith("warning:") and "interrupted" in out.err and json.loads(out.out)
