"""`python -m lab.eval RUN_DIR [--data FILE]`: evaluate a trained run.

Without `--data`, the run's task scores the model on its own fixed evaluation sets (the full
sets, whatever cap training used). With `--data`, the task scores it on a data file; the
path-star task reads the text format of Bachmann & Nagarajan (one example per line), so a
model trained on G(2,5,50) can be evaluated on their published test set.
A run that did not finish (interrupted, failed or still running: meta.json's status is not
`complete`) holds a partial checkpoint: it is refused unless `--allow-incomplete` is given.
Exit codes: 0 success, 2 bad input (one line).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lab import runs
from lab.checkpoints import check_complete, load_run
from lab.device import resolve_device
from lab.evaluate import ModelPredictor
from tasks import ConfigError, Task


def evaluate_file(task: Task, predictor: ModelPredictor, path: str,
                  max_examples: int | None) -> dict[str, float]:
    """Score on a data file, for tasks that read one (raises `ConfigError` otherwise)."""
    reader = getattr(task, "read_file", None)
    if reader is None:
        raise ConfigError(f"task {task.name!r} does not read data files; run without --data")
    examples = reader(path)
    try:
        return task.evaluate_examples(predictor, examples, max_examples)
    except ValueError as e:  # e.g. longer sequences than the model's context
        raise ConfigError(f"{path} does not fit this model: {e}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.eval",
                                     description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("run_dir", help="a trained run directory (config.json and checkpoint.pt)")
    parser.add_argument("--data", default=None,
                        help="a data file to evaluate on (path-star text format for graph)")
    parser.add_argument("--max-examples", type=int, default=None,
                        help="evaluate on at most this many examples")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    parser.add_argument("--batch", type=int, default=256, help="evaluation batch size")
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON")
    parser.add_argument("--allow-incomplete", action="store_true",
                        help="score the partial checkpoint of a run that did not finish (with a "
                             "warning)")
    args = parser.parse_args(argv)
    try:
        if args.max_examples is not None and args.max_examples <= 0:
            raise ConfigError(f"--max-examples must be positive, got {args.max_examples}")
        if args.batch <= 0:
            raise ConfigError(f"--batch must be positive, got {args.batch}")
        device = resolve_device(args.device)
        if Path(args.run_dir).is_dir() and (Path(args.run_dir) / runs.CONFIG).is_file():
            note = check_complete(args.run_dir, "lab.eval", args.allow_incomplete)
            if note:
                print(note, file=sys.stderr)
        config, model, task = load_run(args.run_dir, device)
        predictor = ModelPredictor(model, device, batch_size=args.batch)
        if args.data:
            metrics = evaluate_file(task, predictor, args.data, args.max_examples)
        else:
            metrics = task.evaluate(predictor, max_examples=args.max_examples)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(metrics, indent=2, sort_keys=True))
        return 0
    source = args.data or f"{config.task} evaluation sets"
    print(f"run:  {args.run_dir}\ndata: {source}")
    for key in sorted(metrics):
        print(f"  {key:<40} {metrics[key]:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
