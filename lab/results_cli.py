"""`python -m lab.results export|list`: the command line of the results store (`lab.results`).

It is the one place that hands the store the experiments' plans (which preset a run belongs
to), so the store itself never imports the experiments.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lab.errors import ConfigError
from lab.experiments import planned_presets
from lab.results import (
    STORE,
    TOLERANCE,
    StoreConflict,
    counts,
    export,
    locate,
    missing_store_warning,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lab.results",
                                     description="The committed results store of complete runs (no "
                                                 "checkpoints).",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    exp = sub.add_parser("export", help="merge the complete runs into the store",
                         formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    exp.add_argument("--runs", default="runs", help="root of the run directories")
    exp.add_argument("--store", default=str(STORE), help="the store directory")
    exp.add_argument("--experiment", nargs="+", default=None, help="only these experiments")
    exp.add_argument("--tolerance", type=float, default=TOLERANCE,
                     help="relative or absolute difference allowed between two copies of a run's "
                          "metrics")
    ls = sub.add_parser("list", help="stored runs per experiment and preset",
                        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ls.add_argument("--store", default=str(STORE), help="the store directory")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        store = Path(args.store)
        if store.exists() and not store.is_dir():
            raise ConfigError(f"--store {store} is not a directory")
        if args.command == "list":
            warning = missing_store_warning(store)
            if warning:
                print(warning, file=sys.stderr)
            found = counts(store)
            for (experiment, preset), n in sorted(found.items()):
                print(f"{experiment:16} {preset:6} {n:4} runs")
            print(f"{sum(found.values())} runs in {len(found)} files under {locate(store)}")
            return 0
        if not args.tolerance >= 0:
            raise ConfigError(f"--tolerance must be a non-negative number, got {args.tolerance}")
        report = export(Path(args.runs), store, args.experiment, args.tolerance,
                        presets=planned_presets)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except StoreConflict as e:
        print(f"conflict: {e}", file=sys.stderr)
        return 1
    print(report.line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
