"""The task protocol: what every synthetic task provides to the lab.

A task is pure data. It generates training batches from a `numpy.random.Generator`, owns
fixed seeded evaluation sets, renders tokens as text, and scores predictions. It never
imports the model or the training loop: the lab hands it a `Predictor` (teacher-forced
predictions, greedy continuations) and the task turns what comes back into metrics. So each
task and its oracle can be tested without a model (see `tests/`).

Conventions shared by all tasks:

- A batch is a `(B, L)` int64 array of tokens plus a `(B, L)` boolean `loss_mask` saying
  which tokens count as *targets*. The model reads `inputs[:, :-1]` (by default the tokens
  themselves) and head i at position t predicts token `t + i`; that prediction is trained
  only where `t + i < L` and `loss_mask[t + i]` holds. Masking targets (not positions) is
  what makes one mask serve every head.
- `inputs`, when given, replaces the tokens on the input side (the teacherless path-star
  variant feeds dummy tokens after `=` while the targets stay the true path).
- Everything random takes a `numpy.random.Generator`; nothing reads global state.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import numpy as np

from lab.errors import ConfigError  # import-free: the one module tasks share with the lab

SPLITS = ("val", "test")  # validation selects checkpoints and detects formation; test is reported


def check_split(split: str) -> None:
    """Raise `ConfigError` unless `split` names an evaluation split."""
    if split not in SPLITS:
        raise ConfigError(f"unknown evaluation split {split!r}; choose one of: {', '.join(SPLITS)}")


MAX_DRAWS = 64  # seeded chunks tried when filling a validation set disjoint from the test set


def check_draws(draws: int, what: str) -> None:
    """Raise `ConfigError` when a disjoint validation set still is not full after `MAX_DRAWS` chunks."""
    if draws >= MAX_DRAWS:
        raise ConfigError(f"too few distinct {what} for a validation set disjoint from the test set; "
                          "allowed: a smaller evaluation set or a larger task")


def rows_not_in(candidates: np.ndarray, exclude: np.ndarray) -> np.ndarray:
    """Boolean mask of the rows of `candidates` that occur neither in `exclude` nor earlier in
    `candidates` (rows compared as whole token sequences; widths may differ, padding counts)."""
    seen = {row.tobytes() for row in np.ascontiguousarray(exclude, dtype=np.int64)}
    keep = np.zeros(len(candidates), dtype=bool)
    for i, row in enumerate(np.ascontiguousarray(candidates, dtype=np.int64)):
        key = row.tobytes()
        if key not in seen:
            seen.add(key)
            keep[i] = True
    return keep


@dataclass
class Batch:
    """Token sequences with a target mask (see the module docstring)."""

    tokens: np.ndarray  # (B, L) int64
    loss_mask: np.ndarray  # (B, L) bool: which tokens are trained as targets
    inputs: np.ndarray | None = None  # (B, L) int64, replaces tokens on the input side

    def __post_init__(self) -> None:
        if self.tokens.shape != self.loss_mask.shape:
            raise ValueError(f"tokens {self.tokens.shape} and loss_mask {self.loss_mask.shape} differ")
        if self.inputs is not None and self.inputs.shape != self.tokens.shape:
            raise ValueError(f"inputs {self.inputs.shape} and tokens {self.tokens.shape} differ")

    @property
    def input_tokens(self) -> np.ndarray:
        return self.tokens if self.inputs is None else self.inputs


@dataclass
class TeacherForced:
    """What a model predicts for every future token of a fixed sequence.

    `predictions[b, t, i - 1]` is head i's argmax for token `t + i` after reading inputs up to
    position t, and `nll[b, t, i - 1]` the negative log-likelihood it gives the true token
    (NaN where `t + i` lies beyond the sequence). Shapes: `(B, L - 1, n_heads)`.
    """

    predictions: np.ndarray
    nll: np.ndarray


class Predictor(Protocol):
    """The model, as a task sees it during evaluation."""

    n_heads: int

    def teacher_forced(self, tokens: np.ndarray, inputs: np.ndarray | None = None) -> TeacherForced:
        """Run the model once over `(B, L)` sequences (reading `inputs` if given)."""
        ...

    def greedy(self, prompts: np.ndarray, max_new_tokens: int) -> np.ndarray:
        """Greedy next-token continuation of equal-length `(B, P)` prompts: `(B, max_new_tokens)`."""
        ...

    def parallel(self, prompts: np.ndarray) -> np.ndarray:
        """All heads' argmax at the last prompt position, in one forward: `(B, n_heads)`."""
        ...


@dataclass
class TaskConfig:
    """Base of every task's knobs. Subclasses add fields and validate in `validate()`."""

    eval_seed: int = 1234  # the fixed evaluation sets depend on this seed only

    def validate(self) -> None:
        """Raise `ConfigError` naming the bad value and what is allowed."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class TrainDefaults:
    """A task's training schedule for `python -m lab.run TASK` (a few minutes on 2 CPU cores)."""

    steps: int = 1000
    lr: float = 1e-3
    warmup_steps: int = 100
    eval_every: int = 100


@dataclass(frozen=True)
class Schedule:
    """A task's settings in a sweep preset: task knobs, batch size, steps and evaluation cadence."""

    task: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 32
    steps: int = 1000
    eval_every: int = 100


class Task:
    """Base class of the tasks. Subclasses set the class attributes and implement the methods.

    `defaults` is the schedule of a plain `python -m lab.run TASK`; `quick` the task's settings
    in the sweeps' quick preset (None: `defaults` at batch size 32).
    """

    name: ClassVar[str]
    Config: ClassVar[type[TaskConfig]]
    primary_metric: ClassVar[str]  # key in `evaluate()`'s result used for early stopping and summaries
    defaults: ClassVar[TrainDefaults] = TrainDefaults()
    quick: ClassVar[Schedule | None] = None
    in_task_sweeps: ClassVar[bool] = True  # listed by the experiments that run every task (scaling, heads, ...)

    @classmethod
    def quick_schedule(cls) -> Schedule:
        """The task's settings in the quick preset."""
        if cls.quick is not None:
            return cls.quick
        return Schedule({}, batch_size=32, steps=cls.defaults.steps, eval_every=cls.defaults.eval_every)

    def __init__(self, config: TaskConfig) -> None:
        config.validate()
        self.config = config

    @property
    def vocab_size(self) -> int:
        raise NotImplementedError

    @property
    def seq_len(self) -> int:
        """The longest sequence (in tokens, targets included) the task ever produces."""
        raise NotImplementedError

    def sample_batch(self, rng: np.random.Generator, batch_size: int) -> Batch:
        """A fresh training batch. Deterministic given the generator's state."""
        raise NotImplementedError

    def evaluate(self, predictor: Predictor, max_examples: int | None = None,
                 split: str = "test") -> dict[str, float]:
        """Score the model on the task's fixed evaluation sets of `split` (`val` or `test`).

        Keys are metric names without a prefix (the lab adds `val/` or `eval/`). `max_examples`
        caps each evaluation set, for cheap evaluations during training. The validation set is
        drawn like the test set and disjoint from it; checkpoint selection reads only `val`.
        """
        raise NotImplementedError

    def format_tokens(self, tokens: np.ndarray) -> str:
        """Human-readable text of one token sequence."""
        raise NotImplementedError

    def show_examples(self, rng: np.random.Generator, k: int) -> str:
        """`k` training examples and one evaluation example, as readable text."""
        raise NotImplementedError

    def copy_probe(self, n: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Where solving the task means copying from context: `(tokens (B, L), pairs (K, 3))`, each
        pair `(row, query, source)` a position whose next token can only be copied and the earlier
        position holding it, on the first `n` validation sequences. Optional: None (the default)
        for a task without such positions; the lab then logs no copy-attention score."""
        return None

    def decode_prompts(self, n: int) -> list[np.ndarray]:
        """`n` fixed prompts (1-D token arrays) for measuring decoding speed.

        Optional for tasks. The default draws one batch seeded by `eval_seed` and cuts each
        sequence before its first target (the question of an answer-masked task), or at half
        its length when every token is a target.
        """
        batch = self.sample_batch(np.random.default_rng([self.config.eval_seed, 0x6465636F]), n)
        tokens = batch.input_tokens
        prompts = []
        for row, mask in zip(tokens, batch.loss_mask):
            targets = np.flatnonzero(mask)
            cut = int(targets[0]) if len(targets) and targets[0] >= 2 else len(row) // 2
            prompts.append(row[:cut].copy())
        return prompts


# ----- the registry: name -> Task class -----

REGISTRY: dict[str, type[Task]] = {}


def register(cls: type[Task]) -> type[Task]:
    """Class decorator: make a task available under `cls.name`."""
    REGISTRY[cls.name] = cls
    return cls


def task_names() -> list[str]:
    return sorted(REGISTRY)


def task_class(name: str) -> type[Task]:
    """The registered task `name` (an unknown name is a `ConfigError`)."""
    if name not in REGISTRY:
        raise ConfigError(f"unknown task {name!r}; choose one of: {', '.join(task_names())}")
    return REGISTRY[name]


def make_config(name: str, overrides: dict[str, Any] | None = None) -> TaskConfig:
    """The task's config with `overrides` applied (unknown keys are a `ConfigError`)."""
    config_cls = task_class(name).Config
    fields = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(overrides or {}) - fields)
    if unknown:
        raise ConfigError(f"unknown key task.{unknown[0]} for task {name!r}; known: {', '.join(sorted(fields))}")
    return config_cls(**(overrides or {}))


def build_task(name: str, overrides: dict[str, Any] | None = None) -> Task:
    """Instantiate task `name` with config overrides."""
    return REGISTRY[name](make_config(name, overrides))
