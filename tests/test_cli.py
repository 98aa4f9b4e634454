"""`python -m lab.run`: bad input gets one line, exit code 2, and nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli


@pytest.mark.parametrize("args,needle", [
    (["nosuchtask"], "unknown task"),
    (["induction", "--heads", "0"], "--heads"),
    (["induction", "--heads", "-2"], "--heads"),
    (["induction", "--heads", "7", "--match-params", "on"], "layers"),
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


def test_print_config_prints_the_resolved_config_and_writes_nothing(tmp_path: Path) -> None:
    import json

    from lab.config import RunConfig
    from lab.resolve import resolve
    from lab.run import build_config
    out = tmp_path / "r"
    result = run_cli(["lab.run", "induction", "--steps", "30", "--set", "task.seq_len=48", "--print-config",
                      "--out", str(out)])
    assert result.returncode == 0, result.stderr
    printed = RunConfig.from_dict(json.loads(result.stdout))
    from lab.build import (  # the command's own default, not the library's
        COMMAND_MATCH_PARAMS,
        match_setting,
    )
    expected = resolve(build_config("induction", steps=30,
                                    overrides=[match_setting(COMMAND_MATCH_PARAMS), "task.seq_len=48"]))[0]
    expected.train.eval_every = expected.train.checkpoint_every = 3  # the command scales them with --steps 30
    assert printed == expected and printed.train.warmup_steps == 3 and printed.model.block_size == 47
    assert not out.exists()


def test_unwritable_out_is_refused_before_training(tmp_path: Path) -> None:
    result = run_cli(["lab.run", "induction", "--steps", "2", "--out", "/proc/mtp-lab-x"])
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and "--out /proc/mtp-lab-x" in lines[0], result.stderr
    assert "meta.json" not in result.stderr


def test_unknown_key_suggests_instead_of_listing(tmp_path: Path) -> None:
    result = run_cli(["lab.run", "induction", "--set", "train.lrr=1", "--out", str(tmp_path / "r")])
    assert result.returncode == 2
    assert result.stderr.strip() == "error: unknown key 'train.lrr'; did you mean train.lr?"


def test_help_shows_each_default_once() -> None:
    import re
    text = run_cli(["lab.run", "--help"]).stdout
    options = re.split(r"\n  (?=-)", text.split("options:", 1)[1])
    for block in options:
        if block.strip() and not block.startswith("-h"):
            assert len(re.findall(r"default:", block)) == 1, block


def test_eval_every_beyond_steps_warns_and_summary_shows_depth(tmp_path: Path, tiny_overrides: list[str],
                                                                capsys) -> None:
    from lab.run import format_summary, main
    sets = [x for o in tiny_overrides for x in ("--set", o)]
    code = main(["induction", "--steps", "3", "--quiet", "--device", "cpu", "--out", str(tmp_path),
                 "--set", "task.seq_len=32", "--set", "task.eval_stories=16", *sets, "--set", "train.eval_every=50"])
    captured = capsys.readouterr()
    assert code == 0
    warnings = [line for line in captured.err.splitlines() if "eval_every" in line]
    assert len(warnings) == 1 and "exceeds train.steps=3" in warnings[0]
    summary = json.loads(next((tmp_path / "default").iterdir()).joinpath("summary.json").read_text())
    assert summary["params"]["next_token_depth"] == 3  # one head on a 3-layer model: all 3 blocks
    assert "next-token path: 3 blocks" in format_summary(summary)
    text = format_summary({**summary, "head_type": "deepseek"})
    assert "next-token path: 3 blocks" in text and "deepseek heads add parameters" in text
