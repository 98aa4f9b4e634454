"""Sweeps: experiments as code, skip/resume/run, failures, locks, interruption, and DataFrames."""

from __future__ import annotations

import functools
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lab import runs, sweep
from lab.config import HEAD_TYPES, RunConfig
from lab.experiments import (
    PAPER_TOKENS,
    REGISTRY,
    experiment,
    experiment_names,
    make_run,
    plan,
    planned_presets,
)
from lab.train import resolve
from tasks import ConfigError
from tests.conftest import REPO

TINY = ("model.d_model=32", "model.n_head=2", "model.n_layer=3", "train.batch_size=8", "train.eval_every=10",
        "train.checkpoint_every=5", "train.eval_examples=16", "train.val_batches=1", "train.warmup_steps=2",
        "task.seq_len=32", "task.eval_stories=16", "task.mentions=2", "size=tiny")


def tiny_runs(name: str, steps: int, heads: tuple[int, ...] = (1, 2), seeds: tuple[int, ...] = (0, 1),
              eval_every: int = 10) -> list:
    return [make_run(name, "quick", "induction", "100K", n, seed,
                     overrides=(*TINY, f"train.steps={steps}", f"train.eval_every={eval_every}"))
            for n in heads for seed in seeds]


@experiment("tiny-sweep")
def tiny_sweep(preset: str) -> list[RunConfig]:
    """Four tiny induction runs (tests)."""
    return tiny_runs("tiny-sweep", 12)


@experiment("tiny-long")
def tiny_long(preset: str) -> list[RunConfig]:
    """Four tiny runs long enough to interrupt (tests)."""
    return tiny_runs("tiny-long", 80, eval_every=40)


@experiment("tiny-finetune")
def tiny_finetune(preset: str) -> list[RunConfig]:
    """A pretraining run and a run that finetunes it (tests)."""
    (pre,) = tiny_runs("tiny-finetune", 10, heads=(1,), seeds=(0,))
    pre = resolve(pre)[0]
    (ft,) = tiny_runs("tiny-finetune", 6, heads=(1,), seeds=(0,))
    ft.finetune.init_from = f"@{pre.run_name()}"
    ft.train.eval_at_start = True  # as finetuning sets it, so the name is known in advance
    ft.label = "ft"
    return [ft, pre]  # listed before its source on purpose


LAUNCH = "import sys, tests.test_sweep; from lab.sweep import main; sys.exit(main(sys.argv[1:]))"


def launch(args: list[str], **kwargs) -> subprocess.Popen:
    """`python -m lab.sweep ARGS` in a subprocess that also knows the tiny test experiments."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", LAUNCH, *args], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def statuses(root: Path) -> dict[str, str]:
    return {d.name: runs.run_state(d) for d in runs.iter_run_dirs(root)}


# ----- experiments as code -----

def test_experiments_and_presets() -> None:
    assert {"scaling", "heads", "head_types"} <= set(experiment_names())
    quick = plan("scaling", "quick")
    assert {(c.task, c.size, c.model.n_future, c.seed) for c in quick} == {
        *itertools.product(("induction", "polynomial", "graph"), ("100K", "300K"), (1, 2, 4), range(5)),
        *itertools.product(("induction", "polynomial", "graph"), ("1M",), (1, 2, 4), range(5))}  # 1M: decisive claims
    assert {c.experiment for c in quick} == {"scaling"} and len({c.run_name() for c in quick}) == len(quick)
    paper = plan("scaling", "paper")
    assert {"1M", "3M", "10M", "30M"} <= {c.size for c in paper} and {c.seed for c in paper} == {0, 1, 2}
    assert all(c.model.n_future < c.model.n_layer for c in paper)  # parameter matching holds everywhere
    for c in paper:  # the Table S13 shape, scaled to PAPER_TOKENS tokens per run
        tokens = c.train.steps * c.train.batch_size * c.model.block_size
        assert PAPER_TOKENS <= tokens < PAPER_TOKENS + c.train.batch_size * c.model.block_size
        assert c.train.warmup_steps == c.train.steps // 50 and c.train.min_lr_ratio == 0.03

    for preset, share in (("quick", 10), ("paper", 50)):  # warm-up follows the run's own step count
        for c in plan("dynamics", preset) + plan("pathstar", preset):
            assert c.train.warmup_steps == c.train.steps // share
    longer = make_run("scaling", "quick", "graph", "100K", 1, 0, overrides=("train.steps=900",))
    assert (longer.train.steps, longer.train.warmup_steps) == (900, 90)

    heads = plan("heads", "quick")
    assert {c.model.n_future for c in heads} == {1, 2, 3, 4, 6, 8}
    assert all(not c.model.match_params and c.size == "1M" for c in heads)  # head 1 equally deep at every n
    assert all(c.model.match_params and c.model.n_future < c.model.n_layer for c in plan("heads", "paper"))
    assert len({c.size for c in heads}) == 1 and len({c.size for c in plan("heads", "paper")}) == 1
    assert {c.model.head_type for c in plan("head_types", "quick")} == set(HEAD_TYPES)

    with pytest.raises(ConfigError, match="unknown experiment"):
        plan("nope", "quick")
    with pytest.raises(ConfigError, match="unknown preset"):
        plan("scaling", "huge")


LAB_EXPERIMENTS = sorted(n for n in experiment_names() if REGISTRY[n].build.__module__.startswith("lab.experiments"))


@functools.cache
def committed_base_costs(preset: str) -> dict[str, float]:
    """Digest -> the priced CPU seconds of each committed base (`lab.bases`), from its experiment's plan."""
    from lab import bases
    index = bases.read_index()
    out = {}
    for name in {entry["experiment"] for entry in index.values()}:
        by_name = {c.run_name(): c for c in plan(name, preset)}
        out |= {digest: sweep.cpu_seconds(by_name[entry["run_name"]])
                for digest, entry in index.items() if entry["run_name"] in by_name}
    return out


@pytest.mark.parametrize("name", LAB_EXPERIMENTS)
def test_every_arm_has_enough_seeds(name: str) -> None:
    """At least 3 seeds per arm (a CI needs them), 5 for quick runs under a minute on CPU (below 1M),
    unless the arm's chain (a committed base it continues, then itself) is priced at an hour or more."""
    from lab.experiments import CHEAP_SIZES
    for preset in ("quick", "paper"):
        arms: dict[str, set[int]] = {}
        costs: dict[str, float] = {}
        planned = plan(name, preset)
        base_cost = committed_base_costs(preset)
        for c in planned:
            arm = RunConfig.from_dict({**c.to_dict(), "seed": 0})
            # the seed's own source: a run of the same experiment, or a committed base (by weight digest)
            arm.finetune.init_from = re.sub(r"-s\d+-[0-9a-f]{8}|^base:[0-9a-f]{16}$", "",
                                            arm.finetune.init_from)
            arms.setdefault(arm.canonical_json(), set()).add(c.seed)
            source = base_cost.get(c.finetune.init_from.removeprefix("base:"), 0.0)
            costs[arm.canonical_json()] = max(costs.get(arm.canonical_json(), 0.0), source + sweep.cpu_seconds(c))
            if preset == "quick" and sweep.cpu_seconds(c) < 60:
                assert c.size in CHEAP_SIZES, "a run estimated under a minute gets 5 seeds"
        for arm, seeds in arms.items():  # finetuning chains two runs per seed: 3 seeds
            cheap = (preset == "quick" and json.loads(arm)["size"] in CHEAP_SIZES and name != "finetune"
                     and costs[arm] < 3600)
            assert len(seeds) >= (5 if cheap else 3), (preset, arm[:120], seeds)


# ----- running -----

def test_sweep_runs_skips_and_completes_only_what_is_missing(tmp_path: Path, capsys) -> None:
    args = ["tiny-sweep", "--out", str(tmp_path), "--workers", "2", "--device", "cpu", "--quiet"]
    assert sweep.main(args) == 0  # a pool of 2 processes
    args[4] = "1"  # then in this process
    out = capsys.readouterr().out
    assert "4 complete" in out
    done = statuses(tmp_path / "tiny-sweep")
    assert len(done) == 4 and set(done.values()) == {"complete"}
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "tiny-sweep").rglob("*") if p.is_file()}

    assert sweep.main(args) == 0  # a second invocation does nothing and says so
    assert "nothing to do: all 4 runs are complete" in capsys.readouterr().out
    assert stamps == {p: p.stat().st_mtime_ns for p in (tmp_path / "tiny-sweep").rglob("*") if p.is_file()}

    gone, partial, *kept = sorted(runs.iter_run_dirs(tmp_path / "tiny-sweep"))
    for path in gone.iterdir():
        path.unlink()
    gone.rmdir()
    (partial / "summary.json").unlink()
    meta = runs.read_json(partial / "meta.json")
    runs.write_json(partial / "meta.json", {**meta, "status": "running"})  # as after a hard kill
    assert sweep.main(args) == 0
    out = capsys.readouterr().out
    assert "2 complete, 2 complete (skipped)" in out
    assert set(statuses(tmp_path / "tiny-sweep").values()) == {"complete"}
    for run_dir in kept:
        assert (run_dir / "summary.json").stat().st_mtime_ns == stamps[run_dir / "summary.json"]
    assert "resumed_at" in runs.read_json(partial / "meta.json")


def test_failed_run_is_recorded_and_the_sweep_goes_on(tmp_path: Path, capsys, monkeypatch) -> None:
    import lab.train
    original = lab.train.Trainer._train

    def flaky(self):
        if self.config.seed == 1 and self.config.model.n_future == 2:
            raise RuntimeError("boom")
        return original(self)

    monkeypatch.setattr(lab.train.Trainer, "_train", flaky)
    code = sweep.main(["tiny-sweep", "--out", str(tmp_path), "--workers", "1", "--device", "cpu", "--quiet"])
    assert code == 1
    captured = capsys.readouterr()
    assert "3 complete, 1 failed" in captured.out and "RuntimeError: boom" in captured.err
    assert sorted(statuses(tmp_path / "tiny-sweep").values()) == ["complete"] * 3  # the fourth never started


def test_failed_run_during_training_is_in_meta(tmp_path: Path, capsys, monkeypatch) -> None:
    import lab.train
    original = lab.train.Trainer.evaluate

    def broken(self, max_examples):
        if self.config.seed == 0:
            raise ValueError("evaluation exploded")
        return original(self, max_examples)

    monkeypatch.setattr(lab.train.Trainer, "evaluate", broken)
    code = sweep.main(["tiny-sweep", "--out", str(tmp_path), "--workers", "1", "--device", "cpu", "--quiet"])
    assert code == 1
    assert "2 complete, 2 failed" in capsys.readouterr().out
    failed = [d for d in runs.iter_run_dirs(tmp_path) if runs.run_state(d) == "failed"]
    assert len(failed) == 2
    assert runs.read_json(failed[0] / "meta.json")["error"] == "ValueError: evaluation exploded"


def test_locked_run_is_left_to_its_owner(tmp_path: Path, capsys) -> None:
    configs = plan("tiny-sweep", "quick")
    held = tmp_path / "tiny-sweep" / configs[0].run_name()
    with runs.run_lock(held):
        assert runs.is_locked(held)
        with pytest.raises(runs.RunLocked):
            from lab.train import Trainer
            Trainer(configs[0], tmp_path, "cpu", quiet=True).run()
        code = sweep.main(["tiny-sweep", "--out", str(tmp_path), "--workers", "1", "--device", "cpu", "--quiet"])
        assert code == 0
        assert "3 complete, 1 running elsewhere" in capsys.readouterr().out
        assert not (held / "config.json").exists()
    assert not runs.is_locked(held)


def test_two_sweeps_at_once_never_train_a_run_twice(tmp_path: Path) -> None:
    args = ["tiny-sweep", "--out", str(tmp_path), "--workers", "1", "--device", "cpu", "--quiet"]
    first, second = launch(args), launch(args)
    outputs = [p.communicate(timeout=300) for p in (first, second)]
    assert first.returncode == second.returncode == 0, outputs
    trained = [line for out, _ in outputs for line in out.splitlines()
               if line.startswith("induction") and re.search(r" complete +\d", line)]  # status "complete"
    assert len(trained) == 4, outputs  # each of the 4 runs trained by exactly one of the two sweeps
    for run_dir in runs.iter_run_dirs(tmp_path):
        meta = runs.read_json(run_dir / "meta.json")
        assert meta["status"] == "complete" and "resumed_at" not in meta


def wait_for_complete(root: Path, count: int, process: subprocess.Popen, timeout: float = 120,
                      running: int = 0) -> None:
    """Until `count` runs under `root` are complete (their meta.json says so: a run writes its summary
    first, so a kill between the two leaves a run that is not complete yet) and `running` more are
    in flight (on a loaded machine the first runs can end before the next ones start)."""
    deadline = time.monotonic() + timeout
    while ((states := list(statuses(root).values())).count("complete") < count
           or states.count("running") < running):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.1)


@pytest.mark.slow  # about 10 s each on an idle machine: processes start twice
@pytest.mark.parametrize("how", ["ctrl-c", "kill -9"])
def test_killed_half_way_then_rerun_finishes_only_the_rest(tmp_path: Path, how: str) -> None:
    args = ["tiny-long", "--out", str(tmp_path), "--workers", "2", "--device", "cpu", "--quiet"]
    process = launch(args, start_new_session=True)  # its own process group, like a terminal job
    wait_for_complete(tmp_path / "tiny-long", 1, process, running=1)  # one done, one in flight
    os.killpg(process.pid, signal.SIGINT if how == "ctrl-c" else signal.SIGKILL)
    out, err = process.communicate(timeout=120)
    assert process.returncode == (130 if how == "ctrl-c" else -signal.SIGKILL), err
    before = statuses(tmp_path / "tiny-long")
    done = {name for name, state in before.items() if state == "complete"}
    assert 1 <= len(done) < 4
    if how == "ctrl-c":  # the runs in flight saved a checkpoint and say so
        assert "interrupted" in before.values() and "rerun the same command" in err
    stamps = {name: (tmp_path / "tiny-long" / name / "summary.json").stat().st_mtime_ns for name in done}

    again = launch(args)
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    assert f"{4 - len(done)} complete, {len(done)} complete (skipped)" in out
    assert set(statuses(tmp_path / "tiny-long").values()) == {"complete"}
    for name, stamp in stamps.items():
        assert (tmp_path / "tiny-long" / name / "summary.json").stat().st_mtime_ns == stamp


def test_finetuning_run_waits_for_its_source(tmp_path: Path, capsys) -> None:
    assert sweep.main(["tiny-finetune", "--out", str(tmp_path), "--workers", "2", "--device", "cpu",
                       "--quiet"]) == 0
    assert "2 complete" in capsys.readouterr().out
    metas = {d.name: runs.read_json(d / "meta.json") for d in runs.iter_run_dirs(tmp_path)}
    (ft,) = [m for name, m in metas.items() if "-ft-" in name]
    (pre,) = [m for name, m in metas.items() if "-ft-" not in name]
    assert pre["ended"] <= ft["started"]


def test_dry_run_lists_runs_and_writes_nothing(tmp_path: Path, capsys) -> None:
    assert sweep.main(["tiny-sweep", "--out", str(tmp_path / "out"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "4 new" in out and "dry run: would train 4 runs, about" in out and out.count("induction  tiny") == 4
    assert "CPU-minutes" in out
    assert not (tmp_path / "out").exists()
    assert sweep.main(["scaling", "--preset", "paper", "--out", str(tmp_path / "out"), "--dry-run",
                       "--only", "task=graph", "--only", "size=30M"]) == 0
    assert "9 runs" in capsys.readouterr().out


def test_cost_estimate_grows_with_size_and_steps_and_sums_over_runs() -> None:
    from lab.experiments import plan
    induction = [c for c in plan("scaling", "quick") if c.task == "induction" and c.model.n_future == 1]
    small, large = induction[0], induction[-1]
    assert (small.size, large.size) == ("100K", "1M")
    assert sweep.cpu_seconds(large) > 2 * sweep.cpu_seconds(small) > 0
    longer = RunConfig.from_dict(small.to_dict())
    longer.train.steps *= 2
    assert sweep.cpu_seconds(longer) == pytest.approx(2 * sweep.cpu_seconds(small))
    line = sweep.cost_line([small, large], workers=2)
    total = (sweep.cpu_seconds(small) + sweep.cpu_seconds(large)) / 60
    assert line.startswith(f"2 runs, about {total:.0f} CPU-minutes")
    steps = small.train.steps + large.train.steps
    tokens = sum(c.train.steps * c.train.batch_size * c.model.block_size for c in (small, large))
    assert line.endswith(f"on any device: {steps:,} optimizer steps, {tokens / 1e9:.3g}B training tokens")


@pytest.mark.parametrize("args, needle", [
    (["nope"], "unknown experiment"),
    (["tiny-sweep", "--preset", "huge"], "unknown preset"),
    (["tiny-sweep", "--executor", "mpi"], "unknown executor"),
    (["tiny-sweep", "--only", "colour=red"], "unknown key"),
    (["tiny-sweep", "--only", "train.lrr=1e-3"], "did you mean train.lr?"),
    (["tiny-sweep", "--only", "train.lr=fast"], "expects float"),
    (["tiny-sweep", "--only", "seed=7"], "leaves no run"),
    (["tiny-sweep", "--workers", "0"], "--workers"),
])
def test_bad_input_exits_2_with_one_line(tmp_path: Path, capsys, args: list[str], needle: str) -> None:
    assert sweep.main([*args, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0]
    assert not (tmp_path / "out").exists()


# ----- results as DataFrames -----

def test_runs_load_as_dataframes(tmp_path: Path) -> None:
    assert sweep.main(["tiny-sweep", "--out", str(tmp_path), "--workers", "1", "--device", "cpu", "--quiet"]) == 0
    frame = runs.load_runs(tmp_path)
    assert len(frame) == 4 * 2  # one row per run and evaluation (steps 10 and 12)
    for column in ("task", "size", "seed", "model.n_future", "experiment", "status", "step", "head1/loss",
                   "eval/second_token_acc"):
        assert column in frame.columns, column
    assert sorted(frame["step"].unique()) == [10, 12] and set(frame["experiment"]) == {"tiny-sweep"}
    summaries = runs.load_summaries(tmp_path)
    assert len(summaries) == 4 and set(summaries["status"]) == {"complete"}
    assert summaries["primary_metric"].eq("eval/second_token_acc").all()
    assert (summaries["primary"] == summaries["final.eval/second_token_acc"]).all()
    assert (summaries["best_primary"] == summaries["best.eval/second_token_acc"]).all()
    means = summaries.groupby("model.n_future")["primary"].mean()
    assert list(means.index) == [1, 2]


def test_only_takes_set_keys_and_compares_typed_values() -> None:
    configs = plan("pathstar", "quick") + plan("tiny-sweep", "quick")
    assert all(c.train.lr == 0.001 for c in configs)
    assert sweep.filter_runs(configs, ["train.lr=1e-3"]) == configs  # not "1e-3" == "0.001" as text
    graphs = sweep.filter_runs(configs, ["task.variant=reverse"])  # a knob of the graph task only
    assert graphs and all(c.task == "graph" and c.task_config["variant"] == "reverse" for c in graphs)
    assert sweep.filter_runs(configs, ["task_config.variant=reverse"]) == graphs  # config.json's name too
    two = sweep.filter_runs(configs, ["model.n_future=2", "task.seq_len=32", "task=induction"])
    assert len(two) == 2 and all(c.model.n_future == 2 and c.task_config["seq_len"] == 32 for c in two)
    with pytest.raises(ConfigError, match="task.seq_len expects int"):
        sweep.filter_runs(configs, ["task.seq_len=3x"])


def test_runs_in_the_results_store_are_not_trained_again(tmp_path: Path, capsys) -> None:
    """A run the store holds complete is skipped (it costs nothing twice), unless a planned run finetunes
    it (the store keeps no checkpoint) or --retrain-stored asks for it."""
    from lab import results
    first = ["tiny-finetune", "--out", str(tmp_path / "a"), "--workers", "1", "--device", "cpu", "--quiet",
             "--store", str(tmp_path / "store")]
    assert sweep.main(first) == 0
    results.export(tmp_path / "a", tmp_path / "store", presets=planned_presets)
    args = ["tiny-sweep", "--out", str(tmp_path / "b"), "--workers", "2", "--device", "cpu", "--quiet",
            "--store", str(tmp_path / "store")]
    assert sweep.main(args) == 0
    results.export(tmp_path / "b", tmp_path / "store", presets=planned_presets)
    capsys.readouterr()
    fresh = ["tiny-sweep", "--out", str(tmp_path / "c"), "--dry-run", "--store", str(tmp_path / "store")]
    assert sweep.main(fresh) == 0
    out = capsys.readouterr().out
    assert "4 stored" in out  # nothing to train: every run is in the store
    assert "4 runs are in the results store and are not trained again; add --retrain-stored" in out
    assert sweep.main([*fresh, "--retrain-stored"]) == 0
    out = capsys.readouterr().out
    assert "4 new" in out and "--retrain-stored to price" not in out
    again = ["tiny-finetune", "--out", str(tmp_path / "d"), "--dry-run", "--store", str(tmp_path / "store")]
    assert sweep.main(again) == 0
    out = capsys.readouterr().out
    assert "2 stored" in out and "would train 0 runs" in out  # the finetuning run is stored: so is its need
    shutil.rmtree(tmp_path / "store")
    results.export(tmp_path / "a", tmp_path / "store", experiments=["tiny-finetune"], presets=planned_presets)  # both, then drop one:
    (path,) = results.store_files(tmp_path / "store")
    kept = [r for r in results.decode(path) if r["config"]["label"] == ""]  # the source only
    path.write_bytes(results.compress(results.lines(kept)))
    capsys.readouterr()
    assert sweep.main(again) == 0
    out = capsys.readouterr().out
    assert "2 new" in out and "stored" not in out.splitlines()[0]  # the source is needed as a checkpoint
    assert not (tmp_path / "c").exists() and not (tmp_path / "d").exists()


def test_the_status_table_keeps_long_labels_apart_from_the_next_column(tmp_path) -> None:
    config = make_run("scaling", "quick", "induction", "100K", 1, 0, overrides=("label=a-label-of-twenty-ch",))
    table = sweep.Sweep([config], tmp_path).table()
    header, line = table.splitlines()
    assert "a-label-of-twenty-ch new" in line
    assert line.index("new") == header.index("found")
