"""The first command: its defaults compare equal next-token depths, and it prints the n=1 comparison."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from lab import baseline, results
from lab.experiments import plan, planned_presets
from lab.resolve import resolve
from lab.run import build_parser, config_from_args, format_summary, main


def _run(tmp: Path, heads: int, seed: int, overrides: list[str], capsys) -> tuple[str, dict]:
    sets = [x for o in overrides for x in ("--set", o)]
    code = main(["induction", "--heads", str(heads), "--seed", str(seed), "--steps", "6", "--quiet", "--device", "cpu",
                 "--out", str(tmp / "runs"), "--set", "task.seq_len=32", "--set", "task.eval_stories=16", *sets])
    assert code == 0
    out = capsys.readouterr().out
    run_dir = next(d for d in (tmp / "runs" / "default").iterdir()
                   if f"-n{heads}-" in d.name and f"-s{seed}-" in d.name)
    return out, json.loads((run_dir / "summary.json").read_text())


def test_headline_plan_is_what_the_command_trains() -> None:
    planned = {(c.model.n_future, c.seed): c for c in plan("headline", "quick")}
    assert sorted(planned) == [(n, s) for n in (1, 2, 4) for s in range(5)]
    for (heads, seed), config in planned.items():
        built = resolve(config_from_args(build_parser().parse_args(["induction", "--heads", str(heads),
                                                                    "--seed", str(seed)])))[0]
        built.experiment = "headline"
        assert built.to_dict() == config.to_dict()


def test_default_heads_keep_the_next_token_depth(tmp_path: Path, tiny_overrides: list[str], capsys) -> None:
    _, one = _run(tmp_path, 1, 0, tiny_overrides, capsys)
    _, four = _run(tmp_path, 3, 0, tiny_overrides, capsys)
    assert four["params"]["next_token_depth"] == one["params"]["next_token_depth"] == 3
    assert "not parameter-matched" in format_summary(four) and "not parameter-matched" not in format_summary(one)
    matched = resolve(config_from_args(build_parser().parse_args(["induction", "--heads", "2", "--match-params",
                                                                  "on"])))[0]
    assert matched.model.match_params and not resolve(config_from_args(build_parser().parse_args(
        ["induction", "--heads", "2"])))[0].model.match_params


def test_multi_head_run_prints_the_next_token_run_from_runs_and_from_the_store(
        tmp_path: Path, tiny_overrides: list[str], capsys, monkeypatch) -> None:
    out, _ = _run(tmp_path, 2, 1, tiny_overrides, capsys)
    assert "no complete run" in out and "--heads 1" in out  # nothing to compare with yet
    printed, ones = zip(*[_run(tmp_path, 1, seed, tiny_overrides, capsys) for seed in (0, 1)])
    assert not any("next-token (n=1)" in o for o in printed)  # the baseline itself prints no comparison
    shutil.rmtree(next(d for d in (tmp_path / "runs" / "default").iterdir() if "-n2-" in d.name))
    out, two = _run(tmp_path, 2, 1, tiny_overrides, capsys)
    metric = two["primary_metric"]
    values = [o["best"][metric] for o in ones]
    assert f"n=1 seed 1: {values[1]:.4f}" in out and f"n=1 seed 0: {values[0]:.4f}" in out
    assert f"{two['best'][metric] - values[1]:+.4f} against n=1 at the same seed" in out
    assert "n=1 over 2 seeds" in out

    # The same n=1 runs found in a results store, with no run directories of them left.
    store = tmp_path / "store"
    results.export(tmp_path / "runs", store, presets=planned_presets)
    config = json.loads((Path(two["run_dir"]) / "config.json").read_text())
    shutil.rmtree(tmp_path / "runs")
    found = baseline.find_next_token(config, tmp_path / "runs", store)
    assert [(f.seed, f.value) for f in found] == [(0, values[0]), (1, values[1])]
    assert all(f.where.startswith(str(store)) for f in found)


def test_counterpart_ignores_naming_and_head_fields_only(tiny_overrides: list[str]) -> None:
    def config(*args: str) -> dict:
        argv = ["induction", *args, *[x for o in tiny_overrides for x in ("--set", o)]]
        return resolve(config_from_args(build_parser().parse_args(argv)))[0].to_dict()
    key = baseline.counterpart_key(config("--heads", "4", "--experiment", "x"))
    assert key == baseline.counterpart_key(config("--heads", "1", "--seed", "3"))
    assert key == baseline.counterpart_key(config("--heads", "1", "--match-params", "on"))  # same model at n=1
    assert key != baseline.counterpart_key(config("--heads", "1", "--set", "train.lr=3e-4"))
    assert key != baseline.counterpart_key(config("--heads", "1", "--set", "task.mentions=2"))
