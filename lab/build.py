"""Building a run config from a command's choices: the task's default schedule, a size, overrides.

`python -m lab.run` and every experiment (`lab.experiments.make_run`) build their configs here,
so a planned run and the command that trains it alone are the same config. The result is not
resolved yet (`lab.resolve.resolve` fills and validates it before it is hashed).
"""

from __future__ import annotations

from lab.config import RunConfig, apply_overrides, apply_size
from lab.errors import ConfigError
from tasks import task_class

DEFAULT_SIZE = "1M"
# `python -m lab.run --match-params`: off puts the n heads on an (L-1)-block trunk, so head 1 is as
# deep as the next-token model's; experiments keep the paper's matching (ModelConfig's default).
MATCH_PARAMS = ("off", "on")
COMMAND_MATCH_PARAMS = "off"


def match_setting(choice: str) -> str:
    """The `--set` override of a `--match-params` choice (on/off)."""
    return f"model.match_params={'true' if choice == 'on' else 'false'}"


def overridden(overrides: list[str] | tuple[str, ...], key: str) -> bool:
    return any(o.split("=", 1)[0].strip() == key for o in overrides)


def build_config(task: str, heads: int = 1, size: str = DEFAULT_SIZE, head_type: str = "parallel",
                 steps: int | None = None, seed: int = 0, experiment: str = "default",
                 overrides: list[str] | tuple[str, ...] = (), warmup_divisor: int = 10,
                 tokens_per_param: float | None = None) -> RunConfig:
    """The run config `lab.run` builds from its options: the task's default schedule
    (`Task.defaults`), size, then `key=value` overrides. Sweeps build their configs with it too.

    When the steps are chosen (`steps`, or a `train.steps` override) and `train.warmup_steps`
    is not, warm-up is `steps // warmup_divisor` (at least 1): a short run must not spend
    all its steps warming up. A budget in tokens per parameter (`tokens_per_param`, or a
    `train.tokens_per_param` override) sets the steps instead, and warm-up and evaluation
    cadence with them (`lab.budget`); it cannot be combined with chosen steps. The result is
    not resolved yet (`lab.resolve.resolve`). Raises `ConfigError`.
    """
    defaults = task_class(task).defaults
    config = RunConfig(task=task, seed=seed, experiment=experiment, size=size)
    apply_size(config.model, size)
    config.model.n_future = heads
    config.model.head_type = head_type
    t = config.train
    t.steps, t.lr, t.warmup_steps, t.eval_every = defaults.steps, defaults.lr, defaults.warmup_steps, \
        defaults.eval_every
    t.checkpoint_every = t.eval_every
    if steps is not None:
        t.steps = steps
    apply_overrides(config, list(overrides))
    if heads < 1:
        raise ConfigError(f"--heads must be at least 1, got {heads}")
    steps_chosen = steps is not None or overridden(overrides, "train.steps")
    if tokens_per_param is not None:
        t.tokens_per_param = tokens_per_param
    if t.tokens_per_param:
        if steps_chosen:
            raise ConfigError("--steps and --tokens-per-param both set the budget; give one of them")
        _budget_schedule(config, overrides, defaults.warmup_steps)
    elif steps_chosen and not overridden(overrides, "train.warmup_steps"):
        t.warmup_steps = max(1, t.steps // warmup_divisor)
    return config


def _budget_schedule(config: RunConfig, overrides: list[str] | tuple[str, ...],
                     task_warmup: int) -> None:
    """Steps, warm-up and evaluation cadence of a budget in tokens per parameter (`lab.budget`);
    explicit `train.warmup_steps`, `train.eval_every` and `train.checkpoint_every` win."""
    from lab.budget import budget_steps, cadence
    from lab.resolve import resolve
    if config.train.tokens_per_param < 0:
        raise ConfigError("--tokens-per-param must be positive, got "
                          f"{config.train.tokens_per_param}")
    t = config.train
    t.steps = budget_steps(resolve(config)[0])
    warmup, every = cadence(t.steps, task_warmup)
    if not overridden(overrides, "train.warmup_steps"):
        t.warmup_steps = warmup
    if not overridden(overrides, "train.eval_every"):
        t.eval_every = every
    if not overridden(overrides, "train.checkpoint_every"):
        t.checkpoint_every = t.eval_every
