"""Resolving a config: once, before hashing, without touching the caller's object; run ids
that ignore bookkeeping fields; the model loads no task; a new task is one file."""

from __future__ import annotations

import copy
import hashlib
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from lab import config as config_module
from lab.config import RunConfig, apply_overrides
from lab.errors import ConfigError
from lab.resolve import is_resolved, resolve
from lab.run import build_config
from lab.runs import Status
from tasks import Batch, Predictor, Schedule, Task, TaskConfig, TrainDefaults, register
from tasks import base as task_base
from tasks.base import SPLITS
from tests.conftest import REPO


def test_importing_the_model_loads_no_task() -> None:
    code = "import sys, lab.model; print([m for m in sys.modules if m.startswith('tasks')])"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env={"PYTHONPATH": str(REPO)},
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_config_error_is_one_class() -> None:
    import tasks
    assert tasks.ConfigError is task_base.ConfigError is ConfigError


def test_resolve_leaves_the_caller_alone_and_is_idempotent() -> None:
    built = build_config("induction", overrides=["task.seq_len=48", "train.lr=3e-4"])
    before = copy.deepcopy(built)
    resolved, task = resolve(built)
    assert built == before  # vocab/block still unfilled, task knob still text
    assert built.model.vocab_size == 0 and resolved.model.vocab_size == task.vocab_size
    assert resolved.task_config["seq_len"] == 48 and isinstance(resolved.task_config["seq_len"], int)
    assert resolve(resolved)[0] == resolved and is_resolved(resolved) and not is_resolved(built)


def test_task_overrides_are_parsed_and_checked_at_resolve() -> None:
    config = RunConfig(task="induction")
    apply_overrides(config, ["task.seq_lne=3"])  # building loads no task: the knob is checked later
    with pytest.raises(ConfigError, match=r"did you mean task\.seq_len\?"):
        resolve(config)
    config = RunConfig(task="induction")
    apply_overrides(config, ["task.seq_len=abc"])
    with pytest.raises(ConfigError, match="task.seq_len expects int"):
        resolve(config)


@pytest.mark.parametrize("key, suggestion", [("train.lrr", "train.lr"), ("model.nlayer", "model.n_layer"),
                                             ("lr", "train.lr")])
def test_unknown_key_suggests_the_closest(key: str, suggestion: str) -> None:
    with pytest.raises(ConfigError) as error:
        apply_overrides(RunConfig(), [f"{key}=1"])
    assert str(error.value) == f"unknown key {key!r}; did you mean {suggestion}?"


def test_logging_choice_does_not_change_the_run_id() -> None:
    config = resolve(build_config("induction"))[0]
    logged = copy.deepcopy(config)
    logged.train.log = "tensorboard"
    assert logged.run_id() == config.run_id() and "log" not in config.to_dict()["train"]
    assert RunConfig.from_dict(logged.full_dict()).train.log == "tensorboard"


def test_hash_neutral_defaults_keep_old_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    config = resolve(build_config("induction"))[0]
    # As if train.compile had been added after runs existed: their config.json lacks it.
    old_json = config.to_dict()
    del old_json["train"]["compile"]
    old_id = hashlib.sha256(json.dumps(old_json, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:8]
    assert config.run_id() != old_id  # without the rule, adding a field renames every run
    monkeypatch.setitem(config_module.HASH_NEUTRAL_DEFAULTS, ("train", "compile"), False)
    assert config.run_id() == old_id and RunConfig.from_dict(old_json).run_id() == old_id
    config.train.compile = True  # another value is recorded and hashed: a new run
    assert config.to_dict()["train"]["compile"] is True and config.run_id() != old_id


def test_status_serialises_as_its_string() -> None:
    assert json.dumps({"status": Status.COMPLETE}) == '{"status": "complete"}'
    assert f"{Status.RUNNING_ELSEWHERE:<18}|" == "running elsewhere |" and Status.SKIPPED.done
    assert Status("failed") is Status.FAILED and Status.COMPLETE == "complete"


def test_short_runs_scale_warmup_and_the_default_is_unchanged() -> None:
    default = build_config("induction")
    assert (default.train.steps, default.train.warmup_steps, default.train.eval_every) == (600, 60, 100)
    assert build_config("induction", steps=30).train.warmup_steps == 3
    assert build_config("induction", overrides=["train.steps=200"]).train.warmup_steps == 20
    assert build_config("induction", steps=30, overrides=["train.warmup_steps=7"]).train.warmup_steps == 7


# ----- a task defined only here: registering it is all a new task needs -----

@dataclass
class ToyConfig(TaskConfig):
    length: int = 9


class ToyTask(Task):
    """Copy task: the second half of each sequence repeats the first."""

    name: ClassVar[str] = "toy-copy"
    Config: ClassVar[type[TaskConfig]] = ToyConfig
    primary_metric: ClassVar[str] = "acc"
    defaults: ClassVar[TrainDefaults] = TrainDefaults(steps=6, lr=3e-3, warmup_steps=2, eval_every=3)
    quick: ClassVar[Schedule] = Schedule({"length": 7}, batch_size=4, steps=5, eval_every=5)

    @property
    def vocab_size(self) -> int:
        return 6

    @property
    def seq_len(self) -> int:
        return 2 * self.config.length

    def sample_batch(self, rng: np.random.Generator, batch_size: int) -> Batch:
        half = rng.integers(0, self.vocab_size, size=(batch_size, self.config.length))
        mask = np.zeros((batch_size, self.seq_len), dtype=bool)
        mask[:, self.config.length:] = True
        return Batch(np.concatenate([half, half], axis=1).astype(np.int64), mask)

    def evaluate(self, predictor: Predictor, max_examples: int | None = None,
                 split: str = "test") -> dict[str, float]:
        batch = self.sample_batch(np.random.default_rng([self.config.eval_seed, SPLITS.index(split)]), 8)
        out = predictor.teacher_forced(batch.tokens)
        right = out.predictions[:, self.config.length - 1:, 0] == batch.tokens[:, self.config.length:]
        return {"acc": float(right.mean())}


@pytest.fixture
def toy_task():
    register(ToyTask)
    yield ToyTask
    del task_base.REGISTRY[ToyTask.name]


def test_a_registered_task_gets_its_schedules(toy_task) -> None:
    from lab.experiments import make_run, schedule
    assert schedule("toy-copy", "quick") == ToyTask.quick
    run = resolve(make_run("toy-exp", "quick", "toy-copy", "100K", heads=2, seed=0))[0]
    assert (run.train.steps, run.train.batch_size, run.task_config["length"]) == (5, 4, 7)
    assert run.model.vocab_size == 6 and run.model.block_size == 13
    default = build_config("toy-copy")
    assert (default.train.steps, default.train.lr, default.train.warmup_steps) == (6, 3e-3, 2)


def test_lab_run_trains_a_registered_task(toy_task, tmp_path: Path, capsys) -> None:
    from lab.run import main
    code = main(["toy-copy", "--size", "100K", "--heads", "2", "--device", "cpu", "--quiet", "--out", str(tmp_path),
                 "--set", "train.batch_size=4", "--set", "train.val_batches=1"])
    assert code == 0
    (run_dir,) = (tmp_path / "default").iterdir()
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [3, 6] and "eval/acc" in rows[-1]
    assert "eval/acc" in capsys.readouterr().out
