"""Self-speculative decoding (paper, Table S2): how head count and head type change the
tokens per forward and the speedup of blockwise parallel decoding, per task.

Runs: n in {1, 2, 4} parallel heads, plus n = 4 causal and deepseek heads, per task and
seed. Quick: 300K (5 layers, so n = 4 keeps one trunk block); paper: 10M (6 layers).

Training is an ordinary sweep; the decoding measurement is a second step that writes
`speculative.json` into every complete run (what figure 8 reads):

    python -m lab.sweep speculative --preset quick
    python -m lab.experiments.speculative --preset quick     # measure(), k = 1..n per run
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from lab import runs
from lab.config import RunConfig
from lab.experiments import SEEDS, TASKS, experiment, make_run, plan
from tasks import ConfigError

SIZE = {"quick": "300K", "paper": "10M"}
VARIANTS = (("parallel", 1), ("parallel", 2), ("parallel", 4), ("causal", 4), ("deepseek", 4))
RESULT = "speculative.json"


@experiment("speculative")
def speculative(preset: str) -> list[RunConfig]:
    """Heads n in {1, 2, 4} (parallel) and n = 4 causal and deepseek heads, per task, for decoding speed."""
    return [make_run("speculative", preset, task, SIZE[preset], n, seed, head_type=kind)
            for task in TASKS for kind, n in VARIANTS for seed in SEEDS]


def measure(preset: str = "quick", root: str | Path = "runs", device: str = "cpu", batch: int = 8,
            max_new: int = 32, force: bool = False, quiet: bool = False) -> list[dict[str, Any]]:
    """Measure speculative decoding (k = 1..n) on every complete run of the experiment and
    write each run's `speculative.json`; runs that have one already are skipped unless
    `force`. Returns the new measurements. Runs not trained yet are left alone."""
    from lab.decode import format_table, measure_run  # torch only when measuring
    results = []
    for config in plan("speculative", preset):
        run_dir = Path(root) / config.experiment / config.run_name()
        if runs.run_state(run_dir) != "complete" or ((run_dir / RESULT).exists() and not force):
            continue
        result = measure_run(run_dir, batch=batch, max_new=max_new, device=device)
        runs.write_json(run_dir / RESULT, result)
        results.append(result)
        if not quiet:
            print(format_table(result), flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.experiments.speculative",
                                     description="Write speculative.json into every complete run of the "
                                                 "`speculative` experiment.",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--preset", default="quick", help="quick or paper")
    parser.add_argument("--runs", default="runs", help="root of the run directories")
    parser.add_argument("--device", default="cpu", help="auto, cpu, cuda or mps")
    parser.add_argument("--batch", type=int, default=8, help="prompts decoded together")
    parser.add_argument("--max-new", type=int, default=32, help="new tokens per prompt")
    parser.add_argument("--force", action="store_true", help="measure runs that have a speculative.json again")
    args = parser.parse_args(argv)
    try:
        done = measure(args.preset, args.runs, args.device, args.batch, args.max_new, args.force)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"measured {len(done)} runs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
