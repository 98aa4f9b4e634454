"""`python -m lab.run TASK ...`: train one model and print a summary.

Exit codes: 0 success, 2 bad input (one line, nothing written), 1 a failure during the
run (run directory left consistent and resumable), 130 interrupted (checkpoint saved).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from lab import baseline
from lab.build import COMMAND_MATCH_PARAMS, DEFAULT_SIZE, MATCH_PARAMS, build_config, match_setting  # noqa: F401 - build_config is public here too
from lab.config import ATTACH_MODES, HEAD_INITS, HEAD_TYPES, SIZES, RunConfig
from lab.errors import ConfigError
from lab.runs import RunLocked
from tasks import task_names


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default once: appended, unless the help text already says it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or action.default is argparse.SUPPRESS or not action.option_strings:
            return text
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m lab.run",
        description="Train one multi-token prediction model on a synthetic task. Running the same command "
                    "again skips a complete run and resumes an incomplete one.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("task", help=f"task name: {', '.join(task_names())}")
    parser.add_argument("--heads", type=int, default=1, help="number of output heads n (1 = next-token prediction)")
    parser.add_argument("--size", default=DEFAULT_SIZE, help=f"size preset: {', '.join(SIZES)}")
    parser.add_argument("--head-type", default="parallel", help=f"head type: {', '.join(HEAD_TYPES)}")
    parser.add_argument("--match-params", default=COMMAND_MATCH_PARAMS, choices=MATCH_PARAMS,
                        help="off: the n heads sit on an (L-1)-block trunk, so head 1 is as deep as the n=1 model "
                             "and heads 2..n add n-1 blocks; on: the paper's parameter matching (n heads take "
                             "n-1 blocks from the trunk, so head 1's path is shallower). Experiments set it "
                             "themselves (default: off)")
    parser.add_argument("--steps", type=int, default=None,
                        help="training steps (default: the task's; warm-up becomes 10%% of them unless "
                             "train.warmup_steps is set)")
    parser.add_argument("--tokens-per-param", type=float, default=None, metavar="R",
                        help="budget in training tokens per non-embedding parameter of the size's next-token "
                             "model (the same tokens for every --heads); sets the steps, warm-up and "
                             "evaluation cadence (lab/budget.py); not with --steps (default: off)")
    parser.add_argument("--seed", type=int, default=0, help="training seed (model init and data order)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    parser.add_argument("--out", default="runs", help="root directory of run directories")
    parser.add_argument("--experiment", default="default", help="experiment name (subdirectory of --out)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override any config value: model.*, train.*, finetune.*, task.* (repeatable), "
                             "e.g. --set train.lr=3e-4 --set task.mentions=2 (default: none)")
    parser.add_argument("--init-from", default=None, metavar="RUN_OR_CHECKPOINT",
                        help="finetune from a run directory or checkpoint file instead of training from scratch "
                             "(default: train from scratch)")
    parser.add_argument("--attach", default=None, choices=ATTACH_MODES,
                        help="with --init-from: how the checkpoint's heads become --heads heads "
                             "(default: keep; see lab/finetune.py)")
    parser.add_argument("--head-init", default=None, choices=HEAD_INITS,
                        help="with --init-from: initialisation of added heads (default: random)")
    parser.add_argument("--show-examples", type=int, default=0, metavar="K",
                        help="print K training examples and one evaluation example, then exit")
    parser.add_argument("--print-config", action="store_true",
                        help="print the resolved config as JSON, then exit (writes nothing)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or per-eval lines")
    return parser


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """Build the run config from parsed arguments (raises `ConfigError`); not resolved yet."""
    overrides = list(args.overrides)
    if not args.init_from:  # a finetuning run takes its shape from the checkpoint; --set still wins
        overrides.insert(0, match_setting(args.match_params))
    for key, value in (("init_from", args.init_from), ("attach", args.attach), ("head_init", args.head_init)):
        if value is not None:
            overrides.append(f"finetune.{key}={value}")
    config = build_config(args.task, args.heads, args.size, args.head_type, args.steps, args.seed, args.experiment,
                          overrides, tokens_per_param=args.tokens_per_param)
    if not config.finetune.init_from and (args.attach or args.head_init):
        raise ConfigError("--attach and --head-init need --init-from")
    return config


def check_writable(out: Path) -> None:
    """Raise `ConfigError` unless run directories can be created under `out` (nothing is left behind)."""
    existing = next(p for p in [out, *out.parents] if p.exists())
    if not existing.is_dir():
        raise ConfigError(f"--out {out} is not a directory ({existing} is a file)")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".mtp-lab-probe-", dir=existing))
    except OSError as e:
        raise ConfigError(f"--out {out}: cannot create directories in {existing} ({e.strerror})") from None


def warnings_for(config: RunConfig) -> list[str]:
    """One-line notes on a config that runs but probably not as meant."""
    t = config.train
    notes = []
    if t.eval_every > t.steps:
        notes.append(f"warning: train.eval_every={t.eval_every} exceeds train.steps={t.steps}: "
                     "only the final evaluation will run")
    return notes


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
    chosen = f"chosen on {summary['selected_on']}" if summary.get("selected_on") else "chosen on the test metric"
    lines.append(f"{summary['primary_metric']} = {best:.4f} at step {summary['best_step']} ({chosen})")
    lines.append(f"steps {summary['steps']}   tokens/s {summary['tokens_per_s']:,.0f}   wall {summary['wall_s']:.1f} s"
                 + ("   (stopped early)" if summary.get("stopped_early") else ""))
    p = summary["params"]
    lines.append(f"parameters: non-embedding {p['non_embedding']:,}  total {p['total']:,}")
    if p.get("next_token_depth") is not None:
        lines.append(f"next-token path: {p['next_token_depth']} blocks")
    if p.get("param_matched") is False:
        lines.append(p["matched_note"])
    if summary.get("head_type") == "deepseek":
        lines.append("note: deepseek heads add parameters (not parameter-matched)")
    lines.append("=" * 64)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        from lab.resolve import resolve
        out = Path(args.out)
        config, task = resolve(config_from_args(args), out / args.experiment)
        if args.print_config:
            print(json.dumps(config.full_dict(), indent=2, sort_keys=True))
            return 0
        if args.show_examples:
            print(task.show_examples(np.random.default_rng([config.seed, 0]), args.show_examples))
            return 0
        check_writable(out)
        trainer = make_trainer(config, out, args.device, args.quiet)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for note in warnings_for(config) if trainer.dp.is_main else []:
        print(note, file=sys.stderr)
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
        print(format_summary({**summary, "head_type": config.model.head_type}))
        for line in baseline.comparison_lines(config.to_dict(), summary, out):
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
