"""`python -m lab.runs ROOT`: compare runs from the shell, one row per run.

    python -m lab.runs runs/heads                                  # every run under runs/heads
    python -m lab.runs runs --only task=induction --only model.n_future=2 --sort best
    python -m lab.runs runs --metrics eval/second_token_acc,head2/acc --csv > runs.csv
    python -m lab.runs export ...                                  # the results store (lab.results)

Columns: run name, status, task, size, heads, head type, seed, steps (the config's budget), the
primary metric's name with its final and best value (or, with `--metrics`, the final value of
each named metric), and wall time. `--only KEY=VALUE` (repeatable) keeps the runs whose config
has that value; keys are spelled as in `python -m lab.run --set` (`task.*`, `model.*`, `train.*`,
`finetune.*`, `seed`, `size`, `experiment`, `label`) plus `status`, and values compare as typed
values (`train.lr=1e-3` matches 0.001, `model.match_params=false` a boolean).
Exit codes: 0 success, 2 bad input (one line).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import importlib
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lab import runs
from lab.config import SIZES
from lab.selection import RunFilter, stored_key
from tasks import ConfigError, make_config

BASE_COLUMNS = ("run", "status", "task", "size", "model.n_future", "model.head_type", "seed",
                "train.steps")
# config columns are named as `--only` and `--set` name them, so a column is also a filter and a
# sort key


def flat_config(config: dict[str, Any]) -> dict[str, Any]:
    """The flattened config, with the task's defaults filled in under `task_config.*` (a config
    stores only the task knobs that were set), so `--only task.mentions=3` finds default runs."""
    flat = runs.flatten(config)
    try:
        task_config = make_config(config.get("task", ""), config.get("task_config") or {})
    except (ConfigError, TypeError):  # an unknown task or knob (another version's run): as stored
        return flat
    for key, value in runs.flatten(dataclasses.asdict(task_config), "task_config.").items():
        flat.setdefault(key, value)
    return flat


def collect(root: Path) -> list[dict[str, Any]]:
    """One record per run under `root`: flattened config, status, and its summary (or {})."""
    records = []
    for run_dir in runs.iter_run_dirs(root):
        try:
            record = flat_config(runs.read_json(run_dir / runs.CONFIG))
            summary = runs.read_json(run_dir / runs.SUMMARY) if (run_dir / runs.SUMMARY).exists() else {}
            status = runs.run_state(run_dir)
        except (OSError, json.JSONDecodeError):
            record, summary, status = {}, {}, "unreadable"
        record.update({"status": status, "run_name": run_dir.name, "_summary": summary})
        records.append(record)
    return records


def row_of(record: dict[str, Any], metrics: list[str]) -> dict[str, Any]:
    """The table row of a run record (typed values; None where unknown)."""
    summary = record["_summary"]
    row = {"run": record["run_name"], "status": record["status"], "task": record.get("task"),
           "size": record.get("size"), "model.n_future": record.get("model.n_future"),
           "model.head_type": record.get("model.head_type"), "seed": record.get("seed"),
           "train.steps": record.get("train.steps")}
    final, best = summary.get("final", {}), summary.get("best", {})
    if metrics:
        row.update({m: final.get(m) for m in metrics})
    else:
        primary = summary.get("primary_metric")
        row.update({"metric": primary.removeprefix("eval/") if primary else None,
                    "final": final.get(primary), "best": best.get(primary)})
    row["wall"] = summary.get("wall_s")
    return row


def sort_value(key: str, value: Any) -> tuple:
    """Missing values last, numbers before text, sizes in preset order."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return (2, 0, "")
    if key == "size" and value in SIZES:
        return (0, list(SIZES).index(value), "")
    if isinstance(value, (int, float)):
        return (0, float(value), "")
    return (1, 0, str(value))


def format_cell(column: str, value: Any) -> str:
    if value is None:
        return "-"
    if column == "wall":
        s = int(round(value))
        return f"{s}s" if s < 60 else f"{s // 60}m{s % 60:02d}s" if s < 3600 else f"{s // 3600}h{s // 60 % 60:02d}m"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def format_table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """Aligned text: numbers right, text left."""
    cells = [[format_cell(c, row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    numeric = [all(isinstance(row.get(c),
                              (int, float)) or row.get(c) is None for row in rows) and c != "run"
               for c in columns]

    def line(values: list[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths,
                                                                                numeric)).rstrip()

    return "\n".join([line(columns), line(["-" * w for w in widths]), *(line(r) for r in cells)])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lab.runs",
                                     description=__doc__.split("\n\n")[0],
                                     epilog="`python -m lab.runs export ...` writes the results "
                                            "store.")
    parser.add_argument("root",
                        help="a directory of runs (searched recursively), e.g. runs or runs/heads")
    parser.add_argument("--only", action="append", default=[], metavar="KEY=VALUE",
                        help="keep runs whose config has this value (repeatable; keys and typed "
                             "values as in lab.run --set, plus status)")
    parser.add_argument("--metrics", default="", metavar="M1,M2",
                        help="final metrics to show instead of the primary metric (e.g. "
                             "eval/second_token_acc)")
    parser.add_argument("--sort", default=None, metavar="KEY",
                        help="sort by a column or a config key")
    parser.add_argument("--desc", action="store_true", help="sort in descending order")
    parser.add_argument("--csv", action="store_true",
                        help="write CSV (raw values) instead of a table")
    return parser


def select(records: list[dict[str, Any]], only: list[str]) -> list[dict[str, Any]]:
    """The records that pass every `KEY=VALUE` of `only` (`lab.selection.RunFilter`, the filter of
    `lab.sweep --only`; raises `ConfigError` for bad input)."""
    keep = RunFilter.parse(only, "--only")
    return keep.select(records) if keep else records


def sorter(key: str, columns: list[str], records: list[dict[str, Any]]) -> Callable[[tuple], tuple]:
    """Sort key over (record, row) pairs for a column name or a config key."""
    if key in columns:
        return lambda pair: sort_value(key, pair[1][key])
    name = stored_key(key)
    if any(name in r for r in records):
        return lambda pair: sort_value(key, pair[0].get(name))
    raise ConfigError(f"cannot sort by {key!r}; use a column ({', '.join(columns)}) or a config key")


def export(argv: list[str]) -> int:
    """`python -m lab.runs export ...` is `python -m lab.results export ...` (the results store),
    where this version has one; `argv` starts with `export`."""
    try:
        results = importlib.import_module("lab.results_cli")
    except ModuleNotFoundError as e:
        if e.name != "lab.results_cli":
            raise
        print("error: `export` needs lab/results_cli.py (the results store's command line), which "
              "this version lacks", file=sys.stderr)
        return 2
    return results.main(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["export"]:  # a directory named export: ./export
        return export(argv)
    args = build_parser().parse_args(argv)
    root = Path(args.root)
    try:
        if not root.is_dir():
            raise ConfigError(f"{root} is not a directory of runs")
        metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
        records = select(collect(root), args.only)
        rows = [row_of(r, metrics) for r in records]
        columns = [*BASE_COLUMNS, *(metrics or ["metric", "final", "best"]), "wall"]
        known = {m for r in records for m in r["_summary"].get("final", {})}
        unknown = [m for m in metrics if known and m not in known]
        if unknown:
            raise ConfigError(f"unknown metric {unknown[0]!r} in --metrics; the runs have: "
                              f"{', '.join(sorted(known))}")
        pairs = list(zip(records, rows))
        if args.sort:
            key = sorter(args.sort, columns, records)
            present = sorted((p for p in pairs if key(p)[0] < 2), key=key, reverse=args.desc)
            # runs without the value stay last
            pairs = present + [p for p in pairs if key(p)[0] == 2]
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    rows = [row for _, row in pairs]
    if args.csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([["" if row[c] is None else row[c] for c in columns] for row in rows])
    elif not rows:
        print(f"no runs under {root}" + (" match " + " ".join(args.only) if args.only else ""))
    else:
        print(format_table(rows, columns))
    return 0
