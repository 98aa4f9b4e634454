"""Resolve a built config once, before it is hashed: `resolve(config) -> (RunConfig, Task)`.

Building a config (`lab.run.build_config`, the experiments) says what the user asked for;
resolving makes it complete: `task.*` texts parsed to the task's types and every task knob
filled in, vocabulary and context taken from the task, a finetuning run's model shape taken
from its checkpoint, everything validated. The result is what gets hashed into the run id
and written to `config.json`; the trainers never change it. Resolving is idempotent and
returns a new config: the caller's object is left as it was.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import re
import typing
from pathlib import Path
from typing import Any

from lab.config import RunConfig, Unparsed, convert, field_type, split_assignment, unknown_key
from lab.errors import ConfigError
from lab.tracking import TRACKERS, check_available
from tasks.base import Task, build_task, task_class


def task_field_type(task: str, name: str) -> Any:
    """The declared type of knob `name` of `task` (an unknown knob is a `ConfigError` with
    suggestions)."""
    types = typing.get_type_hints(task_class(task).Config)
    if name not in types:
        raise unknown_key(f"task.{name}", [f"task.{k}" for k in sorted(types)])
    return types[name]


def typed_value(config: RunConfig, assignment: str, option: str = "--set") -> tuple[str, Any]:
    """`KEY=VALUE` parsed as `--set` parses it: (key, value of the field's type) for this config's
    task."""
    key, text = split_assignment(assignment, option)
    section, _, name = key.rpartition(".")
    annotation = task_field_type(config.task, name) if section == "task" else field_type(key)
    return key, convert(text.strip(), annotation, key)


def _task_overrides(config: RunConfig) -> dict[str, Any]:
    """The task knobs with `Unparsed` texts parsed to the task's field types."""
    out = {}
    for name, value in config.task_config.items():
        annotation = task_field_type(config.task, name)
        out[name] = convert(value, annotation, f"task.{name}") if isinstance(value,
                                                                             Unparsed) else value
    return out


def _finetune_shape(config: RunConfig, experiment_dir: Path | None) -> None:
    """A finetuning run's model shape and size, from its checkpoint (see lab/finetune.py).

    A checkpoint named with `@` (a run of the same experiment) is found only given
    `experiment_dir`; without it the shape stays as planned (experiments fill it in exactly as
    finetuning will, with `lab.checkpoints.target_model_config`).
    """
    ft = config.finetune
    ft.validate()
    config.train.eval_at_start = True  # the shock of the change, measured before any update
    from lab.checkpoints import RunRef, load_source, target_model_config
    if RunRef.parse(ft.init_from) is not None and experiment_dir is None:
        return
    source, _ = load_source(ft.init_from, experiment_dir)
    # how this run trains its heads, not the checkpoint's shape
    detach = config.model.detach_extra_heads
    config.model = target_model_config(source.model, config.model.n_future, ft.attach)
    config.model.detach_extra_heads = detach
    config.size = source.size


def _fill_from_task(config: RunConfig, task: Task) -> None:
    """Vocabulary and context from the task: the model may be wider (a shared vocabulary or
    context across tasks, as when finetuning on another task), never narrower."""
    config.task_config = task.config.to_dict()
    if config.model.vocab_size == 0:
        config.model.vocab_size = task.vocab_size
    elif config.model.vocab_size < task.vocab_size:
        raise ConfigError(f"model.vocab_size={config.model.vocab_size} is smaller than task "
                          f"{config.task!r}'s vocabulary ({task.vocab_size})")
    if config.model.block_size == 0:
        config.model.block_size = task.seq_len - 1
    elif config.model.block_size < task.seq_len - 1:
        raise ConfigError(f"model.block_size={config.model.block_size} is shorter than task "
                          f"{config.task!r}'s inputs "
                          f"({task.seq_len - 1} tokens)")


NAME_PATTERN = re.compile(r"[^./\\\s][^/\\\s]*")  # one path component, not hidden, not `..`


def check_name(key: str, value: str, allow_empty: bool = False) -> None:
    """`experiment` and `label` name directories: one plain path component, so a run never lands
    outside `--out` (no `/`, no `\\`, no whitespace, not starting with '.')."""
    if (value or not allow_empty) and not NAME_PATTERN.fullmatch(value):
        raise ConfigError(f"{key} {value!r} is not allowed: a name is one folder name "
                          "(no '/', '\\' or spaces, not starting with '.')")


def check_finite(config: RunConfig) -> None:
    """Every number of the config is finite: inf or NaN cannot be stored as JSON, nor train."""
    for section in (config.model, config.train, config.finetune):
        for f in dataclasses.fields(section):
            values = getattr(section, f.name)
            for value in values if isinstance(values, list) else [values]:
                if isinstance(value, float) and not math.isfinite(value):
                    names = {"ModelConfig": "model", "TrainConfig": "train"}
                    prefix = names.get(type(section).__name__, "finetune")
                    raise ConfigError(f"{prefix}.{f.name} must be a finite number, got {value}")


def validate(config: RunConfig) -> None:
    """Check every section and the fields that depend on each other."""
    config.model.validate()
    config.train.validate()
    config.finetune.validate()
    check_finite(config)
    if config.seed < 0:
        raise ConfigError(f"--seed must not be negative, got {config.seed}")
    check_name("--experiment", config.experiment)
    check_name("label", config.label, allow_empty=True)
    if config.model.n_future > config.model.block_size:
        raise ConfigError(f"--heads {config.model.n_future} exceeds what a sequence of task "
                          f"{config.task!r} allows: inputs hold {config.model.block_size} tokens, "
                          "so at most "
                          f"{config.model.block_size} heads")
    if config.train.head_weights is not None and len(config.train.head_weights) != config.model.n_future:
        raise ConfigError(f"train.head_weights has {len(config.train.head_weights)} values for "
                          f"{config.model.n_future} heads")
    if config.finetune.recipe:  # the recipe's own shape rules (lab/recipes.py)
        from lab.recipes import check
        check(config)
    if config.train.log not in TRACKERS:
        raise ConfigError(f"unknown train.log {config.train.log!r}; choose one of: "
                          f"{', '.join(TRACKERS)}")
    check_available(config.train.log)


def resolve(config: RunConfig, experiment_dir: Path | None = None) -> tuple[RunConfig, Task]:
    """The finished config of `config` and its task. Raises `ConfigError` before anything is
    written.

    `experiment_dir` is where `@NAME` checkpoints of a finetuning run are found.
    """
    config = copy.deepcopy(config)
    task_class(config.task)  # an unknown task is named before its knobs
    overrides = _task_overrides(config)
    if config.finetune.init_from:
        _finetune_shape(config, experiment_dir)
    task = build_task(config.task, overrides)
    try:
        _fill_from_task(config, task)
        if config.train.tokens_per_param > 0:  # the budget decides the steps (lab/budget.py)
            from lab.budget import budget_steps
            config.train.steps = budget_steps(config)
        validate(config)
    except ConfigError as e:
        if config.finetune.init_from:
            raise ConfigError(f"the checkpoint does not fit task {config.task!r}: {e}") from None
        raise
    return config, task


def is_resolved(config: RunConfig, experiment_dir: Path | None = None) -> bool:
    """Whether resolving would change nothing (a config planned and resolved already)."""
    return resolve(config, experiment_dir)[0].to_dict() == config.to_dict() and not any(
        isinstance(v, Unparsed) for v in config.task_config.values())

