"""How fast each registered task generates training data (single process, default config).

    python benchmarks/generators.py [--seconds 2] [--batch-size 32]

Prints one row per task: batches/s, tokens/s (every position of the (B, L) batch, i.e. what
the model reads) and target tokens/s (positions in the loss mask). Generation should beat
model training (a ~1M-parameter model on 2 CPU cores reads roughly 10-30k tokens/s) by far.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable without installing

from tasks import build_task, task_names  # noqa: E402


def measure(name: str, seconds: float, batch_size: int, seed: int = 0) -> dict[str, float]:
    """Draw batches of task `name` for about `seconds`; rates per second."""
    task = build_task(name)
    rng = np.random.default_rng(seed)
    task.sample_batch(rng, batch_size)  # warm up (lazy tables, fixed training sets)
    batches = tokens = targets = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        batch = task.sample_batch(rng, batch_size)
        batches += 1
        tokens += batch.tokens.size
        targets += int(batch.loss_mask.sum())
    return {"batches/s": batches / elapsed, "tokens/s": tokens / elapsed, "target tokens/s": targets / elapsed,
            "seq_len": task.seq_len}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per task (default 2)")
    parser.add_argument("--batch-size", type=int, default=32, help="batch size (default 32)")
    args = parser.parse_args(argv)
    header = f"{'task':<12} {'seq_len':>7} {'batches/s':>10} {'tokens/s':>12} {'target tok/s':>13}"
    print(f"sample_batch at default config, batch size {args.batch_size}, {args.seconds:g} s each")
    print(header)
    print("-" * len(header))
    for name in task_names():
        r = measure(name, args.seconds, args.batch_size)
        print(f"{name:<12} {r['seq_len']:>7} {r['batches/s']:>10,.0f} {r['tokens/s']:>12,.0f} "
              f"{r['target tokens/s']:>13,.0f}")


if __name__ == "__main__":
    main()
