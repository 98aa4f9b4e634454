"""Measuring decoders on a trained run (the paper's Table S2) and `python -m lab.decode RUN_DIR`.

`compare_decoders` times a list of decoders against a reference decoder on the same batches of
prompts (alternating, median of repeats) and checks that every output equals the reference's.
`measure_run` compares greedy decoding with a KV cache (head 1 only) to self-speculative decoding
with k = 1..n heads and returns what `speculative.json` holds. The algorithms are `lab.decode`.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lab.checkpoints import load_run
from lab.decode import SpeculativeStats, greedy_decode, speculative_decode
from lab.device import resolve_device
from lab.model import MTPTransformer
from lab.runs import Status, run_state, write_json
from tasks import ConfigError

MAX_BATCH = 4096  # prompts decoded together: beyond this the KV cache alone outgrows most machines
MAX_PROMPTS = 16384  # --batch x --batches: prompts the task must generate for the measurement


@dataclass(frozen=True)
class Decoder:
    """A named decoding algorithm: `(model, prompts, max_new) -> (tokens, counts or None)`."""

    name: str
    decode: Callable[
        [MTPTransformer, torch.Tensor, int], tuple[torch.Tensor, SpeculativeStats | None]
    ]


def greedy(bf16: bool = True) -> Decoder:
    """Greedy decoding with a KV cache, head 1 only."""
    return Decoder("greedy", lambda m, p, n: (greedy_decode(m, p, n, True, bf16), None))


def speculative(k: int, bf16: bool = True) -> Decoder:
    """Self-speculative decoding with the first k heads."""
    return Decoder(f"speculative k={k}", lambda m, p, n: speculative_decode(m, p, n, k, bf16))


def _timed(device: torch.device, fn, *args):
    """`fn(*args)` and its wall-clock seconds (synchronising CUDA around it)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    result = fn(*args)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return result, time.perf_counter() - start


def _add(total: SpeculativeStats | None, stats: SpeculativeStats | None) -> SpeculativeStats | None:
    """The sum of two decodes' counts (None for decoders that count nothing)."""
    if stats is None:
        return total
    if total is None:
        k = stats.k
        total = SpeculativeStats(k=k, checked=[0] * k, accepted=[0] * k, gained=[0] * k)
    total.tokens += stats.tokens
    total.forwards += stats.forwards
    total.passes += stats.passes
    for name in ("checked", "accepted", "gained"):
        setattr(total, name, [a + b for a, b in zip(getattr(total, name), getattr(stats, name))])
    return total


def _compare_one(
    model: MTPTransformer,
    batches: list[tuple[torch.Tensor, int]],
    reference: Decoder,
    decoder: Decoder,
    repeats: int,
) -> dict[str, Any]:
    """One decoder against the reference: median total times, output equality, summed counts."""
    device = batches[0][0].device
    reference.decode(model, *batches[0])  # warm-up: allocations, kernel selection
    decoder.decode(model, *batches[0])
    ref_times, times, total = [], [], None
    mismatched = sequences = 0
    for rep in range(repeats):
        t_ref = t_dec = 0.0
        for prompts, new in batches:
            (expected, _), dt = _timed(device, reference.decode, model, prompts, new)
            t_ref += dt
            (out, stats), dt = _timed(device, decoder.decode, model, prompts, new)
            t_dec += dt
            if rep == 0:
                mismatched += int((out != expected).any(dim=1).sum())
                sequences += len(prompts)
                total = _add(total, stats)
        ref_times.append(t_ref)
        times.append(t_dec)
    t_ref, t_dec = float(np.median(ref_times)), float(np.median(times))
    return {
        "decoder": decoder.name,
        "reference": reference.name,
        "speedup": t_ref / t_dec,
        "reference_s": t_ref,
        "decoder_s": t_dec,
        "exact": mismatched == 0,
        "mismatched_sequences": mismatched,
        "sequences": sequences,
        "stats": total,
    }


def compare_decoders(
    model: MTPTransformer,
    batches: list[tuple[torch.Tensor, int]],
    decoders: list[Decoder],
    reference: Decoder | None = None,
    repeats: int = 3,
) -> list[dict[str, Any]]:
    """Each decoder against `reference` (default: greedy), side by side on the same batches.

    `batches` holds `(prompts, max_new_tokens)` pairs. For each decoder, it and the reference run on
    every batch `repeats` times, alternating; times are the median totals. One row per decoder:
    its name, speedup over the reference, both times, whether every output equalled the
    reference's, and its summed counts (`stats`, None for decoders that count nothing)."""
    reference = reference or greedy()
    was_training = model.training
    model.eval()
    try:
        return [_compare_one(model, batches, reference, d, repeats) for d in decoders]
    finally:
        model.train(was_training)


def speculative_row(k: int, row: dict[str, Any]) -> dict[str, Any]:
    """A speculative decoder's row as `speculative.json` stores it (Table S2's columns)."""
    total = row["stats"]
    return {
        "k": k,
        "tokens_per_forward": total.tokens_per_forward,
        "acceptance": [None if np.isnan(a) else a for a in total.acceptance],
        "gained": total.gained,
        "speedup": row["speedup"],
        "greedy_s": row["reference_s"],
        "speculative_s": row["decoder_s"],
        "exact": row["exact"],
        "mismatched_sequences": row["mismatched_sequences"],
        "sequences": row["sequences"],
        "tokens": total.tokens,
        "forwards": total.forwards,
        "passes": total.passes,
    }


def prompt_batches(
    task, batch: int, n_batches: int, block_size: int, max_new: int, device: torch.device
) -> list[tuple[torch.Tensor, int]]:
    """Full batches of equal-length prompts from the task's `decode_prompts`.

    Prompts come in the lengths the task makes them; batches are taken from the largest
    equal-length groups (a task with prompts of many lengths is sampled more widely so that
    its batches are full). Each batch decodes `max_new` tokens, fewer where the context ends.
    """
    chosen: list[np.ndarray] = []
    for pool_size in (batch * n_batches, batch * n_batches * 16):
        groups: dict[int, list[np.ndarray]] = {}
        for p in task.decode_prompts(pool_size):
            if 1 <= len(p) <= block_size:
                groups.setdefault(len(p), []).append(p)
        ranked = sorted(groups.values(), key=lambda g: (-len(g), len(g[0])))
        chosen = [
            np.stack(g[s : s + batch]) for g in ranked for s in range(0, len(g) - batch + 1, batch)
        ]
        if len(chosen) >= n_batches:
            break
    if not chosen:  # no group fills a batch: use the largest group as it is
        chosen = [np.stack(ranked[0])] if ranked else []
    if not chosen:
        raise ConfigError(
            f"task {task.name!r} gave no prompts that fit the context of {block_size} tokens"
        )
    return [
        (torch.as_tensor(p, device=device), min(max_new, block_size + 1 - p.shape[1]))
        for p in chosen[:n_batches]
    ]


def check_sizes(batch: int, max_new: int, n_batches: int, repeats: int) -> None:
    """Positive sizes, and no batch so large that it would exhaust memory (a `ConfigError` each)."""
    for name, value in (
        ("--batch", batch),
        ("--max-new", max_new),
        ("--batches", n_batches),
        ("--repeats", repeats),
    ):
        if value <= 0:
            raise ConfigError(f"{name} must be a positive integer, got {value}")
    if batch > MAX_BATCH:
        raise ConfigError(
            f"--batch {batch} is too large: at most {MAX_BATCH} prompts are decoded together"
        )
    if batch * n_batches > MAX_PROMPTS:
        raise ConfigError(
            f"--batch {batch} x --batches {n_batches} asks for {batch * n_batches} prompts; "
            f"at most {MAX_PROMPTS}"
        )


def measure_run(
    run_dir: str | Path,
    ks: list[int] | None = None,
    batch: int = 8,
    max_new: int = 32,
    device: str = "cpu",
    n_batches: int = 2,
    repeats: int = 3,
    bf16: bool = True,
    allow_incomplete: bool = False,
) -> dict[str, Any]:
    """Speculative decoding of a trained run on its task's prompts (what `speculative.json` holds).

    Raises `ConfigError` for a missing or unfinished run (unless `allow_incomplete`), a k outside
    1..n, or a non-positive or oversized batch or length.
    """
    check_sizes(batch, max_new, n_batches, repeats)
    dev = resolve_device(device)
    config, model, task = load_run(run_dir, dev, allow_incomplete, what="lab.decode")
    n = config.model.n_future
    ks = list(range(1, n + 1)) if ks is None else list(ks)
    for k in ks:
        if not 1 <= k <= n:
            raise ConfigError(
                f"--k {k} is not allowed: the run has {n} heads, so k must be in 1..{n}"
            )
    batches = prompt_batches(task, batch, n_batches, config.model.block_size, max_new, dev)
    compared = compare_decoders(
        model, batches, [speculative(k, bf16) for k in ks], greedy(bf16), repeats
    )
    return {
        "run_dir": str(run_dir),
        "task": config.task,
        "size": config.size,
        "n_future": n,
        "head_type": config.model.head_type,
        "device": str(dev),
        "precision": "bf16" if dev.type == "cuda" and bf16 else "fp32",
        "device_name": torch.cuda.get_device_name(dev)
        if dev.type == "cuda"
        else platform.processor() or "cpu",
        "threads": torch.get_num_threads(),
        "batch": batch,
        "batch_sizes": [len(p) for p, _ in batches],
        "prompt_lengths": [p.shape[1] for p, _ in batches],
        "max_new": [new for _, new in batches],
        "repeats": repeats,
        "rows": [speculative_row(k, row) for k, row in zip(ks, compared)],
    }


def format_table(result: dict[str, Any]) -> str:
    """The measurement as a table like the paper's Table S2, plus acceptance per head."""
    lines = [
        f"run {result['run_dir']}",
        f"task {result['task']}  heads {result['n_future']} ({result['head_type']})  "
        f"device {result['device']}"
        f" ({result['precision']})"
        f"  batches {result['batch_sizes']} of prompts {result['prompt_lengths']}  new tokens "
        f"{result['max_new']}",
        f"{'k':>3} {'tokens/fwd':>10} {'speedup':>8} {'greedy s':>9} {'spec s':>8} {'exact':>6}  "
        "acceptance of heads 1..k",
    ]
    for r in result["rows"]:
        acc = " ".join("  -  " if a is None else f"{a:.3f}" for a in r["acceptance"])
        exact = "yes" if r["exact"] else f"NO:{r['mismatched_sequences']}"
        lines.append(
            f"{r['k']:>3} {r['tokens_per_forward']:>10.2f} {r['speedup']:>8.2f} "
            f"{r['greedy_s']:>9.3f} "
            f"{r['speculative_s']:>8.3f} {exact:>6}  {acc}"
        )
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m lab.decode",
        description="Measure self-speculative decoding of a trained run on its task's prompts: "
        "tokens per "
        "forward, acceptance per head and wall-clock speedup against greedy decoding with a KV "
        "cache, for k = 1..n heads. Writes speculative.json into the run directory.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("run_dir", help="a trained run directory (config.json and checkpoint.pt)")
    parser.add_argument(
        "--k", type=int, default=None, help="measure only k heads (default: every k in 1..n)"
    )
    parser.add_argument(
        "--batch", type=int, default=8, help=f"prompts decoded together (at most {MAX_BATCH})"
    )
    parser.add_argument("--batches", type=int, default=2, help="batches of prompts")
    parser.add_argument(
        "--max-new", type=int, default=32, help="new tokens per prompt (fewer if the context ends)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="timing repeats (median)")
    parser.add_argument("--device", default="cpu", help="auto, cpu, cuda or mps")
    parser.add_argument(
        "--fp32", action="store_true", help="no bf16 autocast on CUDA (exact comparisons)"
    )
    parser.add_argument(
        "--allow-incomplete",
        action="store_true",
        help="measure the partial checkpoint of a run that did not finish (writes nothing into it)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result = measure_run(
            args.run_dir,
            None if args.k is None else [args.k],
            args.batch,
            args.max_new,
            args.device,
            args.batches,
            args.repeats,
            not args.fp32,
            args.allow_incomplete,
        )
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(format_table(result))
    if (
        run_state(args.run_dir) != Status.COMPLETE
    ):  # --allow-incomplete: the partial run is left as it is
        print(
            f"warning: {args.run_dir} is not a complete run: "
            "its partial checkpoint was measured and "
            "speculative.json not written",
            file=sys.stderr,
        )
    else:
        path = Path(args.run_dir) / "speculative.json"
        write_json(path, result)
        print(f"wrote {path}")
    if not all(r["exact"] for r in result["rows"]):
        if result["precision"] == "bf16":  # near ties round either way (see speculative_decode)
            print(
                "note: under bf16 some outputs differ from greedy decoding; "
                "--fp32 checks exactness",
                file=sys.stderr,
            )
            return 0
        print("error: speculative output differs from greedy decoding", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
