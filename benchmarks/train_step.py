"""What multi-token prediction costs per training step: time and peak memory for n = 1, 2, 4.

    python benchmarks/train_step.py [--sizes 300K,1M] [--big-vocab 32000] [--device cpu] [--quick]

For each size preset, at a task-like shape (the induction task's vocabulary and context,
batch 32), one full training step (forward, backward, clipping, AdamW) of the lab's model
with n = 1, 2, 4 parallel heads (parameter-matched: n=1 is a plain transformer), with the
memory-efficient and the plain backward. A last group repeats one size with a 32k
vocabulary, where logits dominate memory. Ratios are to n=1 with the same backward, measured
in the same process with interleaved rounds (see benchmarks/common.py). "flop ratio" is the
ratio of model FLOPs (n unembeddings instead of one): the step-time ratio cannot fall below it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    Case,
    describe_machine,
    format_table,
    lab_case,
    median,
    memory_method,
    peak_step_memory,
    time_cases,
)

COLUMNS = ["size", "vocab", "n", "backward", "ms/step", "tokens/s", "time vs n=1", "flop ratio",
           "peak MB", "mem vs n=1"]


def measure_group(size: str, vocab: int, batch_size: int, context: int, heads: list[int], steps: int,
                  repeats: int, device: torch.device, compile: bool = False) -> list[dict[str, object]]:
    """Time and memory of every (n, backward) pair at one shape; ratios to n=1."""
    cases: list[Case] = []
    for n in heads:
        for efficient in (True, False):
            cases.append(lab_case(size, n, efficient, vocab, batch_size, context, device, compile))
    times = time_cases(cases, steps, repeats, device)
    memory = {c.name: peak_step_memory(c.step, device) for c in cases}
    rows = []
    for case in cases:
        base_case = next(c for c in cases if c.n == heads[0] and c.backward == case.backward)
        base = base_case.name
        seconds = median(times[case.name])
        rows.append({
            "size": size, "vocab": vocab, "n": case.n, "backward": case.backward,
            "ms/step": seconds * 1e3, "tokens/s": case.tokens / seconds,
            "time vs n=1": seconds / median(times[base]), "flop ratio": case.flops / base_case.flops,
            "peak MB": memory[case.name] / 2**20, "mem vs n=1": memory[case.name] / memory[base],
        })
    return rows


def main(argv: list[str] | None = None) -> list[dict[str, object]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--sizes", default="300K,1M", help="comma-separated size presets")
    parser.add_argument("--heads", default="1,2,4", help="comma-separated head counts (the first is the base)")
    parser.add_argument("--vocab", type=int, default=352, help="vocabulary (the induction task's)")
    parser.add_argument("--context", type=int, default=127, help="positions per sequence")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--big-vocab", type=int, default=32000, help="vocabulary of the logits-bound group (0: skip)")
    parser.add_argument("--big-vocab-size", default="300K", help="size preset of that group")
    parser.add_argument("--big-vocab-batch", type=int, default=8, help="batch size of that group")
    parser.add_argument("--steps", type=int, default=3, help="steps per timed block")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds (the median is reported)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--compile", action="store_true", help="compile the blocks and the loss")
    parser.add_argument("--quick", action="store_true", help="CI-sized: smallest size, tiny shapes, one round")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.context, args.batch_size, args.steps, args.repeats = "100K", 32, 4, 1, 1
        args.big_vocab, args.big_vocab_size, args.big_vocab_batch = 2000, "100K", 2
    device = torch.device(args.device)
    heads = [int(h) for h in args.heads.split(",")]
    print(f"train step: {describe_machine(device)}; batch {args.batch_size} x context {args.context}; "
          f"{args.steps} steps x {args.repeats} interleaved rounds, median; clock: "
          f"{'wall' if device.type != 'cpu' else 'process CPU time'}", flush=True)
    rows = []
    for size in args.sizes.split(","):
        rows += measure_group(size, args.vocab, args.batch_size, args.context, heads, args.steps, args.repeats,
                              device, args.compile)
        print(f"  done {size} (vocab {args.vocab})", flush=True)
    if args.big_vocab:
        rows += measure_group(args.big_vocab_size, args.big_vocab, args.big_vocab_batch, args.context, heads,
                              args.steps, args.repeats, device, args.compile)
        print(f"  done {args.big_vocab_size} (vocab {args.big_vocab}, batch {args.big_vocab_batch})", flush=True)
    print(f"peak memory: {memory_method(device)}")
    print(format_table(rows, COLUMNS))
    return rows


if __name__ == "__main__":
    main()
