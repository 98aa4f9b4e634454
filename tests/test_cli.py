"""`python -m lab.run`: bad input gets one line, exit code 2, and nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_cli


@pytest.mark.parametrize("args,needle", [
    (["nosuchtask"], "unknown task"),
    (["induction", "--heads", "0"], "--heads"),
    (["induction", "--heads", "-2"], "--heads"),
    (["induction", "--heads", "7"], "layers"),
    (["induction", "--size", "7B"], "unknown size"),
    (["induction", "--set", "train.lr"], "key=value"),
    (["induction", "--set", "train.nosuch=1"], "unknown key"),
    (["induction", "--set", "task.nosuch=1"], "unknown key"),
    (["induction", "--set", "train.steps=abc"], "expects int"),
    (["induction", "--set", "train.efficient_backward=maybe"], "true or false"),
    (["induction", "--steps", "0"], "train.steps"),
    (["induction", "--set", "model.d_model=-8"], "d_model"),
    (["induction", "--set", "task.seq_len=0"], "seq_len"),
    (["induction", "--head-type", "tree"], "head type"),
    (["induction", "--device", "tpu"], "device"),
])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path: Path, args: list[str], needle: str) -> None:
    out = tmp_path / "runs"
    result = run_cli(["lab.run", *args, "--out", str(out)])
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in result.stderr
    assert not out.exists()


def test_out_that_is_a_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "afile"
    target.write_text("keep me")
    result = run_cli(["lab.run", "induction", "--out", str(target)])
    assert result.returncode == 2 and "not a directory" in result.stderr
    assert target.read_text() == "keep me"


def test_help_lists_every_option_with_defaults() -> None:
    result = run_cli(["lab.run", "--help"])
    assert result.returncode == 0
    for option in ("--heads", "--size", "--head-type", "--steps", "--seed", "--device", "--out", "--set",
                   "--show-examples"):
        assert option in result.stdout
    assert "default: 1" in result.stdout  # --heads


def test_show_examples_prints_and_trains_nothing(tmp_path: Path) -> None:
    result = run_cli(["lab.run", "induction", "--show-examples", "3", "--out", str(tmp_path / "r")])
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("[train") == 3 and result.stdout.count("[eval") == 1
    assert not (tmp_path / "r").exists()


def test_tiny_run_prints_summary(tmp_path: Path, tiny_overrides: list[str]) -> None:
    sets = [x for o in tiny_overrides for x in ("--set", o)]
    result = run_cli(["lab.run", "induction", "--heads", "2", "--steps", "10", "--quiet", "--device", "cpu",
                      "--out", str(tmp_path), "--set", "task.seq_len=48", "--set", "task.eval_stories=32", *sets])
    assert result.returncode == 0, result.stderr
    for needle in ("head", "t+2", "eval/second_token_acc", "tokens/s", "run:"):
        assert needle in result.stdout
