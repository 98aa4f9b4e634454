"""`python -m lab.run TASK ...`: train one model and print a summary.

Exit codes: 0 success, 2 bad input (one line, nothing written), 1 a failure during the
run (run directory left consistent and resumable; a full or read-only disk, a diverged run),
130 interrupted by Ctrl-C and 143 by SIGTERM (checkpoint saved, rerun to resume).
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
from lab.config import (
    ATTACH_MODES,
    HEAD_INITS,
    HEAD_TYPES,
    SIZES,
    RunConfig,
    apply_overrides,
    convert,
    field_type,
    split_assignment,
)
from lab.errors import ConfigError
from lab.runs import DiskError, RunLocked, Status
from tasks import task_names

EXIT_SIGINT, EXIT_SIGTERM = 130, 143
# Options that set one config key each: a `--set` of the same key must agree with the option.
OPTION_KEYS = {"heads": "model.n_future", "steps": "train.steps", "seed": "seed", "size": "size",
               "head_type": "model.head_type", "match_params": "model.match_params",
               "experiment": "experiment", "init_from": "finetune.init_from",
               "attach": "finetune.attach", "head_init": "finetune.head_init"}
# Model keys a finetuning run may set although its shape comes from the checkpoint.
FINETUNE_MODEL_KEYS = ("model.n_future", "model.detach_extra_heads")
SHAPE_KEYS = ("model.d_model", "model.n_layer", "model.n_head")


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
        description="Train one multi-token prediction model on a synthetic task. Running the same "
                    "command again skips a complete run and resumes an incomplete one.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("task", nargs="?", default=None,
                        help=f"task name: {', '.join(task_names())} (optional with --config)")
    parser.add_argument("--config", default=None, metavar="FILE",
                        help="start from a config file: a run's config.json or --print-config "
                             "output (options and --set given too apply on top; default: none)")
    parser.add_argument("--heads", type=int, default=None,
                        help="number of output heads n (1 = next-token prediction; default: 1)")
    parser.add_argument("--size", default=None,
                        help=f"size preset: {', '.join(SIZES)} (default: {DEFAULT_SIZE})")
    parser.add_argument("--head-type", default=None,
                        help=f"head type: {', '.join(HEAD_TYPES)} (default: parallel)")
    parser.add_argument("--match-params", default=None, choices=MATCH_PARAMS,
                        help="off: the n heads sit on an (L-1)-block trunk, so head 1 is as deep "
                             "as the n=1 model and heads 2..n add n-1 blocks; on: the paper's "
                             "parameter matching (n "
                             "heads take n-1 blocks from the trunk, so head 1's path is "
                             "shallower). "
                             "Experiments set it themselves (default: off)")
    parser.add_argument("--steps", type=int, default=None,
                        help="training steps (default: the task's; warm-up becomes 10%% of them "
                             "unless train.warmup_steps is set)")
    parser.add_argument("--tokens-per-param", type=float, default=None, metavar="R",
                        help="budget in training tokens per non-embedding parameter of the size's "
                             "next-token model (the same tokens for every --heads); sets the "
                             "steps, warm-up and evaluation cadence (lab/budget.py); not with "
                             "--steps (default: off)")
    parser.add_argument("--seed", type=int, default=None,
                        help="training seed (model init and data order; default: 0)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    parser.add_argument("--out", default="runs", help="root directory of run directories")
    parser.add_argument("--experiment", default=None,
                        help="experiment name (subdirectory of --out; default: default)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override any config value: model.*, train.*, finetune.*, task.* "
                             "(repeatable), e.g. --set train.lr=3e-4 --set task.mentions=2 "
                             "(default: none)")
    parser.add_argument("--init-from", default=None, metavar="RUN_OR_CHECKPOINT",
                        help="finetune from a run directory or checkpoint file instead of training "
                             "from scratch (default: train from scratch)")
    parser.add_argument("--attach", default=None, choices=ATTACH_MODES,
                        help="with --init-from: how the checkpoint's heads become --heads heads "
                             "(default: keep; see lab/finetune.py)")
    parser.add_argument("--head-init", default=None, choices=HEAD_INITS,
                        help="with --init-from: initialisation of added heads (default: random)")
    parser.add_argument("--allow-incomplete", action="store_true",
                        help="with --init-from: finetune from the partial checkpoint of a run "
                             "that did not finish (with a warning)")
    parser.add_argument("--show-examples", type=int, default=0, metavar="K",
                        help="print K training examples and one evaluation example, then exit")
    parser.add_argument("--print-config", action="store_true",
                        help="print the resolved config as JSON, exactly as the run's config.json "
                             "stores it (--config reads it back), then exit (writes nothing)")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress bar (evaluation lines and the summary are still printed)")
    return parser


def option_text(name: str, value: Any) -> str:
    """How an option was written on the command line, e.g. `--head-type causal`."""
    return f"--{name.replace('_', '-')} {value}"


def set_values(args: argparse.Namespace) -> dict[str, str]:
    """The `--set` assignments as key -> value text (the last of a key wins, as when applied)."""
    return dict(split_assignment(a) for a in args.overrides)


def check_option_conflicts(args: argparse.Namespace) -> None:
    """An option and a `--set` of the same key must agree (`--seed 2 --set seed=3` is refused)."""
    sets = set_values(args)
    for name, key in OPTION_KEYS.items():
        value = getattr(args, name)
        if value is None or key not in sets:
            continue
        if name == "match_params":
            value = value == "on"
        annotation = field_type(key)
        given = convert(str(value), annotation, option_text(name, value))
        if given != convert(sets[key].strip(), annotation, key):
            raise ConfigError(f"{option_text(name, getattr(args, name))} conflicts with "
                              f"--set {key}={sets[key]}; give one of them")


def size_from_set(args: argparse.Namespace) -> str | None:
    """`--set size=NAME` names the shape as `--size NAME` does: a preset gives the shape; any other
    name only labels a shape set with model.d_model, model.n_layer and model.n_head."""
    sets = set_values(args)
    name = sets.get("size", "").strip()
    if not name:
        return None
    if name in SIZES:
        return name
    if not any(k in sets for k in SHAPE_KEYS):
        raise ConfigError(f"--set size={name} is not a size preset ({', '.join(SIZES)}); a custom "
                          "name labels a shape given with --set model.d_model/n_layer/n_head, "
                          "else use --size")
    return None


def scaled_eval_every(config: RunConfig, args: argparse.Namespace) -> None:
    """With chosen steps fewer than the task's evaluation cadence, evaluate every steps // 10 (as
    warm-up scales), so a short run shows a curve; an explicit `train.eval_every` is kept."""
    sets, t = set_values(args), config.train
    steps_chosen = args.steps is not None or "train.steps" in sets
    if steps_chosen and "train.eval_every" not in sets and t.eval_every > t.steps:
        t.eval_every = max(1, t.steps // 10)
        if "train.checkpoint_every" not in sets:
            t.checkpoint_every = t.eval_every


def config_from_file(path: str) -> RunConfig:
    """A run's `config.json`, or `--print-config` output, as a `RunConfig` (else `ConfigError`)."""
    import dataclasses
    try:
        data = json.loads(Path(path).read_text())
        config = RunConfig.from_dict(data)
        dataclasses.asdict(config)  # nested sections must be objects
    except OSError as e:
        raise ConfigError(f"--config {path}: cannot read it ({e.strerror})") from None
    except (ValueError, TypeError, AttributeError) as e:
        raise ConfigError(f"--config {path}: not an mtp-lab config "
                          f"({type(e).__name__}: {e})") from None
    return config


def file_config(args: argparse.Namespace) -> RunConfig:
    """`--config FILE` with the options and `--set` values given on top of it."""
    config = config_from_file(args.config)
    if args.task is not None and args.task != config.task:
        raise ConfigError(f"task {args.task!r} differs from --config {args.config}'s task "
                          f"{config.task!r}; leave TASK out or use --set")
    if args.size is not None:
        from lab.config import apply_size
        apply_size(config.model, args.size)
    words = {"on": "true", "off": "false"}
    overrides = [f"{key}={words.get(v, v) if isinstance(v, str) else v}"
                 for name, key in OPTION_KEYS.items()
                 if name != "size" and (v := getattr(args, name)) is not None]
    apply_overrides(config, overrides + list(args.overrides))
    if args.size is not None:
        config.size = args.size
    return config


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """Build the run config from parsed arguments (raises `ConfigError`); not resolved yet."""
    check_option_conflicts(args)
    if args.show_examples < 0:
        raise ConfigError(f"--show-examples must not be negative, got {args.show_examples}")
    if args.config:
        return file_config(args)
    if args.task is None:
        raise ConfigError("give a TASK (e.g. induction) or --config FILE")
    size = args.size or size_from_set(args) or DEFAULT_SIZE
    preset = size_from_set(args)
    overrides = [o for o in args.overrides if split_assignment(o)[0] != "size" or preset is None]
    if not args.init_from:  # a finetuning run takes its shape from the checkpoint; --set still wins
        overrides.insert(0, match_setting(args.match_params or COMMAND_MATCH_PARAMS))
    for key, value in (("init_from", args.init_from), ("attach", args.attach),
                       ("head_init", args.head_init)):
        if value is not None:
            overrides.append(f"finetune.{key}={value}")
    heads = 1 if args.heads is None else args.heads
    seed = 0 if args.seed is None else args.seed
    config = build_config(args.task, heads, size, args.head_type or "parallel", args.steps, seed,
                          args.experiment or "default", overrides,
                          tokens_per_param=args.tokens_per_param)
    if not config.finetune.init_from and (args.attach or args.head_init):
        raise ConfigError("--attach and --head-init need --init-from")
    scaled_eval_every(config, args)
    return config


def check_finetune_flags(args: argparse.Namespace, config: RunConfig) -> None:
    """A finetuning run takes its model from the checkpoint: a model option or `--set model.*` that
    disagrees with the finetuned shape is refused, naming the checkpoint's value, never dropped."""
    if not config.finetune.init_from:
        return
    options = (("size", "size"), ("head_type", "model.head_type"),
               ("match_params", "model.match_params"))
    asked = [(key, str(getattr(args, name)), option_text(name, getattr(args, name)))
             for name, key in options if getattr(args, name) is not None]
    asked += [(key, text, f"--set {key}={text}") for key, text in set_values(args).items()
              if (key.startswith("model.") or key == "size") and key not in FINETUNE_MODEL_KEYS]
    for key, text, shown in asked:
        section, _, name = key.rpartition(".")
        actual = getattr(config.model, name) if section == "model" else config.size
        if key == "model.match_params":
            text = {"on": "true", "off": "false"}.get(text, text)
        if convert(text.strip(), field_type(key), key) != actual:
            raise ConfigError(f"{shown} conflicts with the checkpoint: with --init-from the model "
                              f"is the checkpoint's, where {key} is {actual!r}; "
                              "leave the option out")


def check_writable(out: Path) -> None:
    """Raise `ConfigError` unless run directories can be created under `out` (nothing is left
    behind)."""
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


def make_trainer(config: RunConfig, out: str | Path = "runs", device: str = "auto",
                 quiet: bool = False):
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
        lines.append(f"{i:>6} {'t+' + str(i):>10} {final[f'head{i}/loss']:>10.4f} "
                     f"{final[f'head{i}/acc']:>8.3f}")
    lines.append("-" * 64)
    for key in sorted(k for k in final if k.startswith("eval/")):
        marker = "  <- primary" if key == summary["primary_metric"] else ""
        lines.append(f"{key:<44} {final[key]:>10.4f}{marker}")
    lines.append("-" * 64)
    best = summary["best"].get(summary["primary_metric"], float("nan"))
    chosen = f"chosen on {summary['selected_on']}" if summary.get("selected_on") else "chosen on the test metric"
    lines.append(f"{summary['primary_metric']} = {best:.4f} at step {summary['best_step']} "
                 f"({chosen})")
    lines.append(f"steps {summary['steps']}   tokens/s {summary['tokens_per_s']:,.0f}   wall "
                 f"{summary['wall_s']:.1f} s"
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


def prepare(args: argparse.Namespace):
    """Everything before training: the resolved config, then exit early (`--print-config`,
    `--show-examples`: returns (config, None)) or the trainer. Raises `ConfigError`; writes
    nothing."""
    from lab import checkpoints
    from lab.resolve import resolve
    out = Path(args.out)
    built = config_from_args(args)
    config, task = resolve(built, out / built.experiment)
    check_finetune_flags(args, config)
    if args.print_config:
        print(json.dumps(config.to_dict(), indent=2, sort_keys=True))
        return config, None
    if args.show_examples:
        print(task.show_examples(np.random.default_rng([config.seed, 0]), args.show_examples))
        return config, None
    if config.finetune.init_from:
        note = checkpoints.check_source(config.finetune.init_from, out / config.experiment,
                                        args.allow_incomplete)
        if note:
            print(note, file=sys.stderr)
    trainer = make_trainer(config, out, args.device, quiet=False)
    trainer.progress = not args.quiet
    if trainer.status != Status.COMPLETE:  # a complete run prints its summary (read-only: fine)
        check_writable(out)
    return config, trainer


def train_and_report(trainer, config: RunConfig, out: Path) -> int:
    """Run the trainer and print its summary; the exit code (see the module docstring)."""
    from lab.train import Terminated
    try:
        summary = trainer.run()
    except KeyboardInterrupt as e:
        by = "SIGTERM" if isinstance(e, Terminated) else "Ctrl-C"
        print(f"\ninterrupted by {by}; checkpoint saved, rerun the same command to resume: "
              f"{trainer.run_dir}", file=sys.stderr)
        return EXIT_SIGTERM if isinstance(e, Terminated) else EXIT_SIGINT
    except (RunLocked, DiskError, ConfigError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # the run directory records the failure; report it in one line
        print(f"error: run failed: {type(e).__name__}: {e} (see {trainer.run_dir / 'meta.json'})",
              file=sys.stderr)
        return 1
    if trainer.dp.is_main:  # under torchrun, one summary
        try:
            print(format_summary({**summary, "head_type": config.model.head_type}))
            for line in baseline.comparison_lines(config.to_dict(), summary, out):
                print(line)
            sys.stdout.flush()
        except BrokenPipeError:  # `| head`: the run is complete all the same
            from lab.train import silence_stdout
            silence_stdout()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config, trainer = prepare(args)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if trainer is None:
        return 0
    for note in warnings_for(config) if trainer.dp.is_main else []:
        print(note, file=sys.stderr)
    return train_and_report(trainer, config, Path(args.out))


if __name__ == "__main__":
    sys.exit(main())
