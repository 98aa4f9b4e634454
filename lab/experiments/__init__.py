"""Experiments as code: each is a Python function from a preset name to the runs it needs.

    @experiment("scaling")
    def scaling(preset: str) -> list[RunConfig]: ...

`python -m lab.sweep NAME --preset quick|paper` trains the returned configs (skipping
complete runs, resuming incomplete ones). Presets:

- `quick`: CPU sizes (100K, 300K, 1M), small eval sets and short schedules; 5 seeds for runs
  that cost under a minute on one CPU thread (sizes below 1M), 3 seeds for the others;
- `paper` (alias `gpu`): Table S14 sizes (1M to 30M), 3 seeds, the Table S13 schedule shape scaled
  to `PAPER_TOKENS` tokens per run (for GPUs).

Seeds come from `seeds(preset, size)`: a comparison needs at least 3 seeds for a confidence
interval that means something (`lab.analysis.stats`). `python -m lab.sweep NAME --dry-run` prints the
run count and the estimated CPU time before anything trains.

Every module of this package is imported when the package is, so a new experiment is one
new file with an `@experiment(name)` function (and `measure=` for a measuring step run after
its sweep), its `@figure` builders and its claims. A run that finetunes another run of
the same experiment (`finetune.init_from="@<run name>..."`) waits for it in a sweep.
"""

from __future__ import annotations

import copy
import importlib
import math
import pkgutil
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.config import RunConfig
from lab.errors import ConfigError
from tasks import REGISTRY as TASK_REGISTRY
from tasks import Schedule, task_class

PRESETS = ("quick", "paper")
# `--preset gpu` names the paper preset by what it needs: Table S14 sizes and budgets for a GPU
# machine.
PRESET_ALIASES = {"gpu": "paper"}


def canonical_preset(name: str) -> str:
    """The preset an alias stands for (`gpu` -> `paper`); other names as they are."""
    return PRESET_ALIASES.get(name, name)
# Every task registered when the experiments are loaded, in registration order, but composites such
# as
# `mixture` (`Task.in_task_sweeps`). A task's
# quick-preset settings live with it (`Task.quick`; see tasks/base.py).
TASKS = tuple(name for name, cls in TASK_REGISTRY.items() if cls.in_task_sweeps)
SEEDS = (0, 1, 2)  # at least 3 seeds for every comparison
CHEAP_SEEDS = (0, 1, 2, 3, 4)  # quick runs under a minute on one CPU thread get 5
CHEAP_SIZES = ("100K", "300K", "250K-L9")

# Tokens per run in the paper preset: 2^27 = 134M (the paper's synthetic runs saw 26.2B).
PAPER_TOKENS = 2**27
PAPER_BATCH = 128  # sequences per step

__all__ = ["CHEAP_SEEDS", "PAPER_BATCH", "PAPER_TOKENS", "PRESETS", "PRESET_ALIASES", "SEEDS", "TASKS", "Schedule",
           "canonical_preset", "experiment", "make_run", "planned_presets",
           "plan", "schedule", "seeds", "unmeasured"]


def seeds(preset: str, size: str, *, decisive: bool = False) -> tuple[int, ...]:
    """The seeds of a run of `size` in `preset`: 5 for quick runs that cost under a minute on one
    CPU thread (the CPU sizes below 1M), else 3. `decisive` marks a cell behind a ledger claim whose
    verdict turned on its seeds (raw and Holm-adjusted verdicts differ, or the verdict depends on
    censoring): it gets 5 seeds on the quick preset at any size."""
    return CHEAP_SEEDS if preset == "quick" and (size in CHEAP_SIZES or decisive) else SEEDS


def schedule(task: str, preset: str) -> Schedule:
    """The task's settings in `preset`. Quick: the task's own `quick` schedule (sized for 2 CPU
    cores; `python -m lab.sweep NAME --dry-run` estimates an experiment's CPU time); paper: default
    task knobs, steps from `PAPER_TOKENS`."""
    if preset == "quick":
        return task_class(task).quick_schedule()
    from lab.build import build_config
    from lab.resolve import resolve
    seq_len = resolve(build_config(task))[1].seq_len
    steps = math.ceil(PAPER_TOKENS / (PAPER_BATCH * (seq_len - 1)))
    return Schedule({}, batch_size=PAPER_BATCH, steps=steps, eval_every=max(1, steps // 20))


def make_run(experiment: str, preset: str, task: str, size: str, heads: int, seed: int,
             head_type: str = "parallel", overrides: tuple[str, ...] = ()) -> RunConfig:
    """One run of an experiment, built as `python -m lab.run` builds it, with the preset's schedule.

    Schedule (Table S13's shape): linear warm-up over 2% of the steps (10% in quick, whose
    runs are short; of the run's own steps, also when `overrides` change them), then cosine
    decay to 0.03 of the peak; AdamW (0.9, 0.95), weight decay 0.1, clip 1.0; peak learning
    rate 1e-3 (the paper's 1e-4 goes with 32x larger batches).
    """
    from lab.build import build_config
    s = schedule(task, preset)
    settings = [f"task.{k}={v}" for k, v in s.task.items()] + [
        f"train.batch_size={s.batch_size}", f"train.eval_every={s.eval_every}",
        f"train.checkpoint_every={min(s.eval_every, 50 if preset == 'quick' else 1000)}",
        f"train.eval_examples={128 if preset == 'quick' else 512}",
    ]
    return build_config(task, heads=heads, size=size, head_type=head_type, steps=s.steps, seed=seed,
                        experiment=experiment, overrides=[*settings, *overrides],
                        warmup_divisor=10 if preset == "quick" else 50)


@dataclass(frozen=True)
class Experiment:
    """What an experiment declares: its plan (`build(preset)`), the step that measures its trained
    runs after a sweep (`measure(preset, root)`, run by `lab.sweep`; `measure_module` is the module
    whose `python -m` runs it alone, for `lab.figures --run-missing`), and its figures (registered
    with `@figure(..., experiment=name)`, `lab.analysis.registry`)."""

    name: str
    build: Callable[[str], list[RunConfig]]
    description: str
    measure: Callable[..., Any] | None = None
    measure_module: str = ""
    # `lab.analysis.claims.Claim`s its runs test, listed in figures/CLAIMS.md
    claims: tuple[Any, ...] = ()

    @property
    def figures(self) -> list[Any]:
        """The figure specs drawn from this experiment's runs, in key order."""
        from lab.analysis.registry import specs
        return [spec for spec in specs() if spec.experiment == self.name]


REGISTRY: dict[str, Experiment] = {}


def experiment(name: str, measure: Callable[..., Any] | None = None, claims: tuple[Any, ...] = ()
               ) -> Callable[[Callable[[str], list[RunConfig]]], Callable[[str], list[RunConfig]]]:
    """Decorator: register `fn(preset) -> list[RunConfig]` as experiment `name`, with its measuring
    step `measure(preset, root)` if it has one and the claims its runs test (see `Experiment`)."""
    def register(fn: Callable[[str], list[RunConfig]]) -> Callable[[str], list[RunConfig]]:
        doc = (fn.__doc__ or "").strip()
        REGISTRY[name] = Experiment(name, fn, doc.splitlines()[0] if doc else "", measure,
                                    measure.__module__ if measure else "", tuple(claims))
        return fn
    return register


def declared_claims() -> list[Any]:
    """The claims the experiments declare (`Experiment.claims`), by experiment name."""
    return [claim for name in experiment_names() for claim in REGISTRY[name].claims]


def experiment_names() -> list[str]:
    return sorted(REGISTRY)


def plan(name: str, preset: str) -> list[RunConfig]:
    """The experiment's runs for `preset`, resolved (task fields filled) and validated.

    Raises `ConfigError` for an unknown name or preset, a bad config, or two runs that
    would share a directory.
    """
    if name not in REGISTRY:
        raise ConfigError(f"unknown experiment {name!r}; choose one of: "
                          f"{', '.join(experiment_names())}")
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; choose one of: {', '.join(PRESETS)}")
    from lab.resolve import resolve
    configs = []
    for config in REGISTRY[name].build(preset):
        config = copy.deepcopy(config)
        if config.experiment == "default":
            config.experiment = name
        if config.experiment != name:
            raise ConfigError(f"experiment {name!r} returned a run of experiment "
                              f"{config.experiment!r}")
        configs.append(resolve(config)[0])
    names = [c.run_name() for c in configs]
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise ConfigError(f"experiment {name!r} lists the same run more than once: {twice[0]}")
    return configs


def unmeasured(name: str, preset: str, root: Any, file: str,
               force: bool = False) -> Iterator[tuple[RunConfig, Path]]:
    """(config, run directory) of every complete run of the plan that lacks `file` (every complete
    run when `force`): what a measuring step (`experiment(..., measure=...)`) still has to do.
    Incomplete runs are left alone."""
    from lab import runs
    for config in plan(name, preset):
        run_dir = Path(root) / config.experiment / config.run_name()
        if runs.run_state(run_dir) == "complete" and (force or not (run_dir / file).exists()):
            yield config, run_dir


def measure_each(name: str, preset: str, root: Any, file: str,
                 measure_run: Callable[[Path], dict], force: bool = False,
                 keep: Callable[[RunConfig], bool] = lambda config: True) -> int:
    """Write `measure_run(run_dir)` as JSON `file` into every complete run of the plan that lacks it
    (and that `keep` accepts); returns how many. The body of an experiment's measuring step."""
    from lab import runs
    done = 0
    for config, run_dir in unmeasured(name, preset, root, file, force):
        if keep(config):
            runs.write_json(run_dir / file, measure_run(run_dir))
            done += 1
    return done


def planned_presets(name: str) -> dict[str, str]:
    """Run name -> preset for every run that a preset's plan of experiment `name` lists (the first
    preset wins a name both plan); what `lab.results.export` files each stored run under."""
    names: dict[str, str] = {}
    for preset in reversed(PRESETS):
        try:
            names.update({c.run_name(): preset for c in plan(name, preset)})
        except ConfigError:
            pass
    return names


# `python -m lab.experiments.NAME` (an experiment's measuring step) imports this package first,
# which imports
# NAME, so runpy then warns that NAME "found in sys.modules ... prior to execution". The module runs
# once more
# as __main__, which only registers the same experiment and figure again; the warning is noise to a
# user.
warnings.filterwarnings("ignore", message=r"'lab\.experiments\.\w+' found in sys\.modules",
                        category=RuntimeWarning)


def _import_all() -> None:
    """Import every module of this package: each registers its experiment and figures."""
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")


_import_all()
