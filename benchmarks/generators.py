"""How fast each registered task generates training data, against how fast the default
model trains on it, measured side by side in this process.

    python benchmarks/generators.py [--seconds 2] [--batch-size 32] [--train-steps 10]

Prints one row per task: batches/s, tokens/s (every position of the (B, L) batch, i.e. what
the model reads), target tokens/s (positions in the loss mask), the training tokens/s of the
task's default `python -m lab.run TASK` model (timed steps after one warm-up step), and the
ratio generator / training, which must be at least 10.
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


def training_rate(name: str, steps: int, seed: int = 0) -> float:
    """Input tokens/s of the default `lab.run` model training on task `name` (the CLI's defaults)."""
    import torch

    from lab.evaluate import batch_tensors
    from lab.model import MTPTransformer
    from lab.objective import forward_backward
    from lab.run import build_config
    from lab.train import make_optimizer, resolve

    config, task = resolve(build_config(name))
    torch.manual_seed(seed)
    model = MTPTransformer(config.model)
    optimizer = make_optimizer(model, config)
    rng = np.random.default_rng(seed)
    batches = [task.sample_batch(rng, config.train.batch_size) for _ in range(steps + 1)]
    tokens, start = 0, 0.0
    for i, batch in enumerate(batches):
        if i == 1:
            start = time.perf_counter()  # step 0 warms up
        inputs, targets = batch_tensors(batch, torch.device("cpu"), config.model.n_future)
        forward_backward(model, inputs, targets)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        tokens += inputs.numel() if i else 0
    return tokens / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per task (default 2)")
    parser.add_argument("--batch-size", type=int, default=32, help="batch size (default 32)")
    parser.add_argument("--train-steps", type=int, default=10, help="timed training steps per task (default 10)")
    args = parser.parse_args(argv)
    header = (f"{'task':<12} {'seq_len':>7} {'batches/s':>10} {'tokens/s':>12} {'target tok/s':>13} "
              f"{'train tok/s':>12} {'gen/train':>10}")
    print(f"sample_batch at default config, batch size {args.batch_size}, {args.seconds:g} s each; "
          f"training: the default lab.run model, {args.train_steps} steps")
    print(header)
    print("-" * len(header))
    for name in task_names():
        r = measure(name, args.seconds, args.batch_size)
        train = training_rate(name, args.train_steps)
        print(f"{name:<12} {r['seq_len']:>7} {r['batches/s']:>10,.0f} {r['tokens/s']:>12,.0f} "
              f"{r['target tokens/s']:>13,.0f} {train:>12,.0f} {r['tokens/s'] / train:>10,.0f}")


if __name__ == "__main__":
    main()
