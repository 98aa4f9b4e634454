"""Run configuration: dataclasses, size presets and typed `key=value` overrides.

A `RunConfig` holds everything that decides a run's result: the task and its knobs, the
model shape, the training schedule and the seed. Its canonical JSON is hashed into the run
id, so the same config always lands in the same run directory (and resumes there). The
device is deliberately not part of it: where a run executes is recorded in `meta.json`.

A config is built (`lab.run.build_config`, the experiments), then resolved once
(`lab.resolve.resolve`: task knobs parsed, vocabulary and context filled, validated), and
only then hashed; nothing changes it afterwards.

Run ids of existing runs must never change, so fields added later follow two rules:

- `NOT_HASHED`: bookkeeping that cannot change a result (how live curves are logged). Never
  part of the canonical JSON, `config.json` or the run id; `meta.json` records it.
- `HASH_NEUTRAL_DEFAULTS`: a field that decides results, added after runs existed. Left out of
  the canonical JSON while it holds this default, so old runs keep their ids; a run that sets
  another value gets a new id, as it should. Add new result-deciding fields here.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import typing
from dataclasses import dataclass, field
from typing import Any

from lab.errors import ConfigError
from lab.values import convert

HEAD_TYPES = ("parallel", "linear", "causal", "anticausal", "deepseek")  # built in (lab.heads)

# Size presets: name -> (d_model, n_layer, n_head). Names count non-embedding parameters
# (about 12 d^2 L). 100K and 300K are extra CPU sizes shaped like the paper's 1M (5 layers);
# 1M and up are Table S14 of the paper.
SIZES: dict[str, tuple[int, int, int]] = {
    "100K": (40, 5, 2),
    "300K": (72, 5, 4),
    "1M": (128, 5, 4),
    "3M": (256, 4, 8),
    "10M": (384, 6, 8),
    "30M": (512, 10, 8),
    "100M": (768, 14, 12),
    "300M": (1024, 25, 16),
    "1B": (1536, 36, 24),
}


@dataclass
class ModelConfig:
    """The transformer's shape. `n_layer` counts trunk and head blocks together."""

    d_model: int = 128
    n_layer: int = 4
    n_head: int = 4
    n_future: int = 1  # number of output heads; head i predicts token t+i
    head_type: str = "parallel"
    match_params: bool = True  # n heads take n-1 blocks from the trunk (the paper's rule)
    tie_embeddings: bool = False  # the paper's synthetic runs keep them untied
    # heads 2..n read a detached next-token path: their losses train only them
    detach_extra_heads: bool = False
    mlp_ratio: int = 4
    dropout: float = 0.0
    bias: bool = False
    vocab_size: int = 0  # filled from the task
    block_size: int = 0  # filled from the task: the longest input the model reads

    def validate(self) -> None:
        for name in ("d_model", "n_layer", "n_head", "mlp_ratio", "vocab_size", "block_size"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"model.{name} must be positive, got {getattr(self, name)}")
        if self.n_future < 1:
            raise ConfigError(f"--heads must be at least 1, got {self.n_future}")
        if self.head_type not in head_types():
            raise ConfigError(f"unknown head type {self.head_type!r}; choose one of: "
                              f"{', '.join(head_types())}")
        if self.d_model % self.n_head:
            raise ConfigError(f"model.d_model={self.d_model} is not divisible by "
                              f"model.n_head={self.n_head}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"model.dropout must be in [0, 1), got {self.dropout}")
        if self.detach_extra_heads and self.head_type == "anticausal":
            raise ConfigError("model.detach_extra_heads cannot keep anticausal heads out of the "
                              "next-token path: head 1 reads head 2; use another --head-type")
        if self.head_type != "linear" and self.match_params and self.n_future >= self.n_layer:
            raise ConfigError(
                f"--heads {self.n_future} needs at least {self.n_future + 1} layers with parameter "
                "matching "
                f"(one trunk block plus one block per head), but this size has {self.n_layer}; "
                f"use a larger --size, fewer heads, or --set model.match_params=false"
            )


@dataclass
class TrainConfig:
    """Optimisation and bookkeeping. Defaults follow Table S13 of the paper where it applies."""

    steps: int = 1000
    batch_size: int = 32
    lr: float = 1e-3
    warmup_steps: int = 100
    min_lr_ratio: float = 0.03  # cosine decay ends at this fraction of the peak
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    efficient_backward: bool = True  # the paper's Figure 2 sequential per-head backward
    head_weights: list[float] | None = None  # per-head loss weights (default: all 1)
    eval_every: int = 100
    eval_examples: int = 256  # cap per evaluation set during training (0 = no cap)
    final_eval_examples: int = 0  # cap at the final evaluation (0 = the full sets)
    val_batches: int = 4  # held-out batches for per-head loss/accuracy
    checkpoint_every: int = 100
    early_stop_patience: int = 0  # evaluations without improvement before stopping (0 = off)
    # validation metric early stopping reads ("" = the primary metric); *nll/*loss: lower wins
    early_stop_on: str = ""
    # gains of the early-stop metric up to this do not reset the patience
    early_stop_min_delta: float = 0.0
    # stop at the first evaluation whose validation primary metric reaches this (0 = off)
    stop_at: float = 0.0
    # log gradient alignment (lab/alignment.py) and copy attention (lab/interp.py)
    log_mechanism: bool = False
    compile: bool = False
    eval_at_start: bool = False  # also evaluate before the first update (step 0)
    # fractions of training at which to keep a checkpoint copy
    keep_checkpoints: list[float] | None = None
    # budget in tokens per non-embedding parameter (0 = off); sets steps (lab/budget.py)
    tokens_per_param: float = 0.0
    log: str = "none"  # live curves: none or tensorboard (lab/tracking.py); not hashed (NOT_HASHED)

    def validate(self) -> None:
        for name in ("steps", "batch_size", "eval_every", "checkpoint_every", "val_batches"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"train.{name} must be positive, got {getattr(self, name)}")
        for name in ("lr", "grad_clip"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"train.{name} must be positive, got {getattr(self, name)}")
        for name in ("warmup_steps", "weight_decay", "eval_examples", "final_eval_examples",
                     "early_stop_patience",
                     "early_stop_min_delta", "stop_at", "tokens_per_param"):
            if getattr(self, name) < 0:
                raise ConfigError(f"train.{name} must not be negative, got {getattr(self, name)}")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ConfigError(f"train.min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        for f in self.keep_checkpoints or []:
            if not 0.0 < f <= 1.0:
                raise ConfigError(f"train.keep_checkpoints fractions must be in (0, 1], got {f}")


# Fields that never enter the canonical JSON (see the module docstring): (section, name).
NOT_HASHED: frozenset[tuple[str, str]] = frozenset({("train", "log")})
# Fields added later, left out of the canonical JSON while they hold this value: (section, name) ->
# default.
HASH_NEUTRAL_DEFAULTS: dict[tuple[str, str], Any] = {("train", "stop_at"): 0.0,
                                                     ("train", "log_mechanism"): False,
                                                     ("model", "detach_extra_heads"): False,
                                                     ("train", "early_stop_on"): "",
                                                     ("train", "early_stop_min_delta"): 0.0,
                                                     ("train", "tokens_per_param"): 0.0,
                                                     ("finetune", "recipe"): ""}

ATTACH_MODES = ("keep", "linear", "carve", "add", "deepseek", "drop")  # built in (lab.finetune)
HEAD_INITS = ("random", "copy", "zero")
# Named ways of adding multi-token prediction to a next-token checkpoint (lab/recipes.py, which
# checks
# that its registry holds exactly these).
RECIPES = ("data_w1", "data_w0.3", "data_w0.1", "data_ds", "frozen", "gated", "curriculum_fwd",
           "curriculum_rev", "registers", "distill")

# Head types a config may name -> the attach modes each adds beyond the built-in ones. The built-in
# types are here from the start, so validation never depends on what was imported first; a new
# head type is declared by `lab.heads.register_head`, through these functions.
_DECLARED_HEADS: dict[str, tuple[str, ...]] = dict.fromkeys(HEAD_TYPES, ())


def declare_head_type(name: str, attach_modes: tuple[str, ...] = ()) -> None:
    """Let configs name head type `name` and the `--attach` modes it adds."""
    _DECLARED_HEADS[name] = tuple(m for m in attach_modes if m not in ATTACH_MODES)


def withdraw_head_type(name: str) -> None:
    """Undo `declare_head_type` (for tests that add a head type of their own)."""
    _DECLARED_HEADS.pop(name, None)


def head_types() -> tuple[str, ...]:
    """The head types a config may name: the built-in ones, then those declared since."""
    return tuple(_DECLARED_HEADS)


def attach_modes() -> tuple[str, ...]:
    """The `finetune.attach` modes a config may name: the built-in ones, then the declared ones."""
    return ATTACH_MODES + tuple(sorted({m for modes in _DECLARED_HEADS.values() for m in modes}))


@dataclass
class FinetuneConfig:
    """Start from a checkpoint and change its heads (see lab/finetune.py for the weight maps)."""

    init_from: str = ""  # run directory or checkpoint file; empty = train from scratch
    attach: str = "keep"  # how the checkpoint's heads become this run's heads
    # new heads: random init, copy of the last block, or zero output projections
    head_init: str = "random"
    freeze_trunk_steps: int = 0  # first K steps: only the new heads train
    ramp_steps: int = 0  # the new heads' loss weight ramps linearly from 0 over K steps
    # learning-rate multiplier for weights loaded from the checkpoint
    pretrained_lr_scale: float = 1.0
    recipe: str = ""  # a named multi-token recipe (lab/recipes.py); "" = none

    def validate(self) -> None:
        if self.attach not in attach_modes():
            raise ConfigError(f"unknown attach mode {self.attach!r}; choose one of: "
                              f"{', '.join(attach_modes())}")
        if self.head_init not in HEAD_INITS:
            raise ConfigError(f"unknown head init {self.head_init!r}; choose one of: "
                              f"{', '.join(HEAD_INITS)}")
        for name in ("freeze_trunk_steps", "ramp_steps"):
            if getattr(self, name) < 0:
                raise ConfigError(f"finetune.{name} must not be negative, got {getattr(self, name)}")
        if self.pretrained_lr_scale < 0:
            raise ConfigError("finetune.pretrained_lr_scale must not be negative, got "
                              f"{self.pretrained_lr_scale}")
        if self.recipe and self.recipe not in RECIPES:
            raise ConfigError(f"unknown finetune.recipe {self.recipe!r}; choose one of: "
                              f"{', '.join(RECIPES)}")
        if self.recipe and not self.init_from:
            raise ConfigError(f"finetune.recipe={self.recipe} continues a checkpoint: set "
                              "--init-from")


@dataclass
class RunConfig:
    """Everything that decides a run's result."""

    task: str = "induction"
    task_config: dict[str, Any] = field(default_factory=dict)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    size: str = "custom"  # the preset the shape came from (informational)
    seed: int = 0
    experiment: str = "default"
    label: str = ""  # optional name of the run within its experiment (e.g. a finetuning variant)

    def to_dict(self) -> dict[str, Any]:
        """The config as recorded in `config.json` and hashed: without `NOT_HASHED` fields, and
        without `HASH_NEUTRAL_DEFAULTS` fields that hold their default."""
        data = dataclasses.asdict(self)
        for section, name in NOT_HASHED:
            data[section].pop(name, None)
        for (section, name), default in HASH_NEUTRAL_DEFAULTS.items():
            if data[section].get(name, default) == default:
                data[section].pop(name, None)
        return data

    def full_dict(self) -> dict[str, Any]:
        """Every field, bookkeeping included (to hand a config to another process)."""
        return dataclasses.asdict(self)

    def canonical_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    def run_id(self) -> str:
        """Short hash of the canonical config: the same config gives the same id."""
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()[:8]

    def run_name(self) -> str:
        finetune = f"-ft-{self.finetune.attach}" if self.finetune.init_from else ""
        label = f"-{self.label}" if self.label else ""
        return (f"{self.task}-{self.size}-n{self.model.n_future}-{self.model.head_type}{finetune}{label}"
                f"-s{self.seed}-{self.run_id()}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        data = dict(data)
        model = ModelConfig(**data.pop("model", {}))
        train = TrainConfig(**data.pop("train", {}))
        finetune = FinetuneConfig(**data.pop("finetune", {}))
        return cls(model=model, train=train, finetune=finetune, **data)


def size_value(size: str) -> float:
    """The parameter count a size name stands for: '300K' -> 3e5, '1M' -> 1e6, '250K-L9' -> 2.5e5;
    infinity for a name that is not of that form (so it sorts last)."""
    text = str(size).split("-")[0]
    scale = {"K": 1e3, "M": 1e6, "B": 1e9}.get(text[-1:])
    try:
        return float(text[:-1]) * scale if scale else float("inf")
    except ValueError:
        return float("inf")


def apply_size(model: ModelConfig, size: str) -> None:
    """Set the shape of `model` from a preset name."""
    if size not in SIZES:
        raise ConfigError(f"unknown size {size!r}; choose one of: {', '.join(SIZES)}")
    model.d_model, model.n_layer, model.n_head = SIZES[size]


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


class Unparsed(str):
    """A `task.KEY=VALUE` text not yet parsed: the task's field types are known once the task is
    looked up, in `lab.resolve.resolve` (so building a config loads no task)."""


SECTIONS = ("model", "train", "finetune")


def config_keys() -> list[str]:
    """Every key `--set` accepts besides `task.*`."""
    top = [k for k in _field_types(RunConfig) if k not in (*SECTIONS, "task_config")]
    return top + [f"{s}.{k}" for s, cls in zip(SECTIONS, (ModelConfig, TrainConfig, FinetuneConfig))
                  for k in _field_types(cls)]


def unknown_key(key: str, known: list[str]) -> ConfigError:
    """The error for an unknown key, suggesting the closest known ones."""
    scored = sorted(((difflib.SequenceMatcher(None, key, k).ratio(), k) for k in known),
                    reverse=True)
    close = [k for r, k in scored[:3] if r >= 0.6 and r >= scored[0][0] - 0.05] if scored else []
    if not close:  # e.g. a right name in the wrong section
        name = key.rpartition(".")[2]
        close = [k for k in known if k.rpartition(".")[2] == name][:3]
    hint = f"; did you mean {' or '.join(close)}?" if close else \
        "; keys are task, size, seed, experiment, label, model.*, train.*, finetune.* and task.*"
    return ConfigError(f"unknown key {key!r}{hint}")


def field_type(key: str) -> Any:
    """The declared type of a non-task key such as `train.lr` (an unknown key is a
    `ConfigError`)."""
    section, _, name = key.rpartition(".")
    cls = {"": RunConfig, "model": ModelConfig, "train": TrainConfig,
           "finetune": FinetuneConfig}.get(section)
    if cls is None or key not in config_keys():
        raise unknown_key(key, config_keys() + ["task.*"])
    return _field_types(cls)[name]


def split_assignment(assignment: str, option: str = "--set") -> tuple[str, str]:
    """`key=value` -> (key, value text)."""
    if "=" not in assignment:
        raise ConfigError(f"{option} expects key=value, got {assignment!r}")
    key, text = assignment.split("=", 1)
    return key.strip(), text


def apply_overrides(config: RunConfig, assignments: list[str]) -> None:
    """Apply `section.key=value` strings (`model.`, `train.`, `finetune.`, `task.` or a top-level
    key).

    Values are parsed to the field's declared type; unknown keys and badly typed values are a
    `ConfigError`. `task.*` values are recorded as `Unparsed` text in `task_config` and parsed
    (and checked against the task's knobs) when the config is resolved.
    """
    task_overrides: dict[str, Any] = {}
    for assignment in assignments:
        key, text = split_assignment(assignment)
        section, _, name = key.rpartition(".")
        if section == "task":
            task_overrides[name] = Unparsed(text)
            continue
        annotation = field_type(key)
        target = {"": config, "model": config.model, "train": config.train,
                  "finetune": config.finetune}[section]
        setattr(target, name, convert(text, annotation, key))
    config.task_config = {**config.task_config, **task_overrides}
