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
                 overrides: list[str] | tuple[str, ...] = (), warmup_divisor: int = 10) -> RunConfig:
    """The run config `lab.run` builds from its options: the task's default schedule
    (`Task.defaults`), size, then `key=value` overrides. Sweeps build their configs with it too.

    When the steps are chosen (`steps`, or a `train.steps` override) and `train.warmup_steps`
    is not, warm-up is `steps // warmup_divisor` (at least 1): a short run must not spend
    all its steps warming up. The result is not resolved yet (`lab.resolve.resolve`).
    Raises `ConfigError`.
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
    if steps_chosen and not overridden(overrides, "train.warmup_steps"):
        t.warmup_steps = max(1, t.steps // warmup_divisor)
    return config
