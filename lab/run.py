"""`python -m lab.run TASK ...`: train one model and print a summary.

Exit codes: 0 success, 2 bad input (one line, nothing written), 1 a failure during the
run (run directory left consistent and resumable), 130 interrupted (checkpoint saved).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import numpy as np

from lab.config import ATTACH_MODES, HEAD_INITS, HEAD_TYPES, SIZES, RunConfig, apply_overrides, apply_size
from lab.runs import RunLocked
from tasks import REGISTRY, ConfigError, task_names

DEFAULT_SIZE = "1M"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m lab.run",
        description="Train one multi-token prediction model on a synthetic task. Running the same command "
                    "again skips a complete run and resumes an incomplete one.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("task", help=f"task name: {', '.join(task_names())}")
    parser.add_argument("--heads", type=int, default=1, help="number of output heads n (1 = next-token prediction)")
    parser.add_argument("--size", default=DEFAULT_SIZE, help=f"size preset: {', '.join(SIZES)}")
    parser.add_argument("--head-type", default="parallel", help=f"head type: {', '.join(HEAD_TYPES)}")
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: the task's default)")
    parser.add_argument("--seed", type=int, default=0, help="training seed (model init and data order)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    parser.add_argument("--out", default="runs", help="root directory of run directories")
    parser.add_argument("--experiment", default="default", help="experiment name (subdirectory of --out)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override any config value: model.*, train.*, task.* (repeatable), "
                             "e.g. --set train.lr=3e-4 --set task.mentions=2")
    parser.add_argument("--init-from", default=None, metavar="RUN_OR_CHECKPOINT",
                        help="finetune from a run directory or checkpoint file instead of training from scratch")
    parser.add_argument("--attach", default=None, choices=ATTACH_MODES,
                        help="with --init-from: how the checkpoint's heads become --heads heads (default keep; "
                             "see lab/finetune.py)")
    parser.add_argument("--head-init", default=None, choices=HEAD_INITS,
                        help="with --init-from: initialisation of added heads (default random)")
    parser.add_argument("--show-examples", type=int, default=0, metavar="K",
                        help="print K training examples and one evaluation example, then exit")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or per-eval lines")
    return parser


# Per-task defaults chosen so that a default run finishes in a few minutes on 2 CPU cores.
TASK_DEFAULTS: dict[str, dict[str, Any]] = {
    "induction": {"steps": 600, "lr": 1e-3, "warmup_steps": 60, "eval_every": 100},
    "polynomial": {"steps": 1500, "lr": 1e-3, "warmup_steps": 100, "eval_every": 250},
    "graph": {"steps": 1500, "lr": 1e-3, "warmup_steps": 100, "eval_every": 250},
}


def build_config(task: str, heads: int = 1, size: str = DEFAULT_SIZE, head_type: str = "parallel",
                 steps: int | None = None, seed: int = 0, experiment: str = "default",
                 overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """The run config `lab.run` builds from its options (task defaults, size, then `key=value`
    overrides). Sweeps build their configs with it too. Raises `ConfigError`."""
    if task not in REGISTRY:
        raise ConfigError(f"unknown task {task!r}; choose one of: {', '.join(task_names())}")
    config = RunConfig(task=task, seed=seed, experiment=experiment, size=size)
    apply_size(config.model, size)
    config.model.n_future = heads
    config.model.head_type = head_type
    for key, value in TASK_DEFAULTS.get(task, {}).items():
        setattr(config.train, key, value)
    config.train.checkpoint_every = config.train.eval_every
    if steps is not None:
        config.train.steps = steps
    apply_overrides(config, list(overrides))
    if heads < 1:
        raise ConfigError(f"--heads must be at least 1, got {heads}")
    return config


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """Build and validate the run config from parsed arguments (raises `ConfigError`)."""
    overrides = list(args.overrides)
    for key, value in (("init_from", args.init_from), ("attach", args.attach), ("head_init", args.head_init)):
        if value is not None:
            overrides.append(f"finetune.{key}={value}")
    config = build_config(args.task, args.heads, args.size, args.head_type, args.steps, args.seed, args.experiment,
                          overrides)
    if not config.finetune.init_from and (args.attach or args.head_init):
        raise ConfigError("--attach and --head-init need --init-from")
    return config


def make_trainer(config: RunConfig, out: str = "runs", device: str = "auto", quiet: bool = False):
    """The trainer for a config: from scratch, or finetuning when `finetune.init_from` is set."""
    if config.finetune.init_from:
        from lab.finetune import FinetuneTrainer
        return FinetuneTrainer(config, out, device, quiet)
    from lab.train import Trainer
    return Trainer(config, out, device, quiet)


def format_summary(summary: dict[str, Any]) -> str:
    """The final table: per-head loss/accuracy, task metrics, speed, where the run lives."""
    final = summary["final"]
    lines = ["", "=" * 64, f"run: {summary['run_dir']}", "-" * 64]
    heads = sorted({int(k[4:].split("/")[0]) for k in final if k.startswith("head")})
    lines.append(f"{'head':>6} {'predicts':>10} {'loss':>10} {'acc':>8}")
    for i in heads:
        lines.append(f"{i:>6} {'t+' + str(i):>10} {final[f'head{i}/loss']:>10.4f} {final[f'head{i}/acc']:>8.3f}")
    lines.append("-" * 64)
    for key in sorted(k for k in final if k.startswith("eval/")):
        marker = "  <- primary" if key == summary["primary_metric"] else ""
        lines.append(f"{key:<44} {final[key]:>10.4f}{marker}")
    lines.append("-" * 64)
    best = summary["best"].get(summary["primary_metric"], float("nan"))
    lines.append(f"best {summary['primary_metric']} = {best:.4f} at step {summary['best_step']}")
    lines.append(f"steps {summary['steps']}   tokens/s {summary['tokens_per_s']:,.0f}   wall {summary['wall_s']:.1f} s"
                 + ("   (stopped early)" if summary.get("stopped_early") else ""))
    p = summary["params"]
    lines.append(f"parameters: non-embedding {p['non_embedding']:,}  total {p['total']:,}")
    lines.append("=" * 64)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = config_from_args(args)
        from lab.train import resolve
        if args.show_examples:
            _, task = resolve(config)
            print(task.show_examples(np.random.default_rng([config.seed, 0]), args.show_examples))
            return 0
        trainer = make_trainer(config, args.out, args.device, args.quiet)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        summary = trainer.run()
    except KeyboardInterrupt:
        print(f"\ninterrupted; checkpoint saved, rerun the same command to resume: {trainer.run_dir}", file=sys.stderr)
        return 130
    except RunLocked as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # the run directory records the failure; report it in one line
        print(f"error: run failed: {type(e).__name__}: {e} (see {trainer.run_dir / 'meta.json'})", file=sys.stderr)
        return 1
    if trainer.dp.is_main:  # under torchrun, one summary
        print(format_summary(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
