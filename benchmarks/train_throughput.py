"""Training throughput of the lab against a plain next-token transformer: tokens/s, MFU, memory.

    python benchmarks/train_throughput.py [--sizes 300K,1M] [--context 127] [--compile off|on|both]
                                          [--device cpu|cuda] [--steps 3] [--repeats 5] [--quick]

For each size preset, context (a comma-separated list keeps tokens per step fixed) and compile
setting, one group measured together (interleaved rounds,
median; see benchmarks/common.py): the reference transformer (`common.ReferenceGPT`, written
here the way nanoGPT's model is, same shape as the lab's n=1), and the lab's model with
n = 1, 2, 4 parallel heads (parameter-matched), with the memory-efficient and the plain
backward. One full training step each (forward, backward, clipping, AdamW) on a batch
already on the device, in bf16 autocast on CUDA. A last group repeats the first size with a
32k vocabulary, where the logits dominate memory.

Columns: tokens/s; MFU = model FLOPs per step / step time / peak FLOP/s (PaLM's FLOP count,
see common.train_flops_per_token; the peak is printed, on a CPU measured in the same run);
step time relative to the reference and to the lab's n=1 with the same backward; the step's
peak memory above the resident state, and relative to n=1. Targets are checked at the end:
n=1 at most 1.05x the reference, n=4 at most 1.10x n=1, and with the 32k vocabulary n=4's
memory at most 1.2x n=1's with the efficient backward (the plain loss's ratio is shown too).
A short table, one line per group, comes last.

On a GPU, groups with few tokens per step (the 32k-vocabulary group uses batch 8) are bound by
the host's kernel launches rather than the GPU: their step times compare Python overheads.

Compile on (`--compile on`): the lab compiles every block and the unembedding with its loss
(`MTPTransformer.compile_blocks`); the reference compiles the whole model, as nanoGPT does.
"""

from __future__ import annotations

import argparse
import sys
import time
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
    peak_flops,
    peak_step_memory,
    reference_case,
    time_cases,
)

COLUMNS = ["size", "context", "vocab", "compile", "model", "ms/step", "tokens/s", "MFU %", "vs ref", "vs n=1",
           "peak MB", "mem vs n=1"]
TARGET_REF, TARGET_N4, TARGET_MEM = 1.05, 1.10, 1.2


def measure_group(size: str, vocab: int, batch_size: int, context: int, heads: list[int], compile: bool,
                  steps: int, repeats: int, device: torch.device, peak: float) -> list[dict[str, object]]:
    """Reference and lab cases of one (size, vocabulary, compile) group, timed together."""
    if compile:
        import torch._dynamo
        torch._dynamo.reset()  # a new shape compiles afresh instead of turning the old graphs dynamic
    cases: list[Case] = [reference_case(size, vocab, batch_size, context, device, compile)]
    for n in heads:
        for efficient in (True, False):
            cases.append(lab_case(size, n, efficient, vocab, batch_size, context, device, compile))
    times = time_cases(cases, steps, repeats, device)
    memory = {c.name: peak_step_memory(c.step, device) for c in cases}
    seconds = {name: median(t) for name, t in times.items()}
    rows = []
    for case in cases:
        row: dict[str, object] = {"size": size, "context": context, "vocab": vocab,
                                  "compile": "on" if compile else "off",
                                  "model": case.name, "ms/step": seconds[case.name] * 1e3,
                                  "tokens/s": case.tokens / seconds[case.name],
                                  "MFU %": 100 * case.flops / seconds[case.name] / peak,
                                  "vs ref": seconds[case.name] / seconds["reference"],
                                  "peak MB": memory[case.name] / 2**20}
        if case.name != "reference":
            base = next(c.name for c in cases if c.n == heads[0] and c.backward == case.backward)
            row["vs n=1"] = seconds[case.name] / seconds[base]
            row["mem vs n=1"] = memory[case.name] / memory[base]
        rows.append(row)
    return rows


def group_key(row: dict[str, object]) -> tuple:
    return row["size"], row["context"], row["vocab"], row["compile"]


def check_targets(rows: list[dict[str, object]], big_vocab: int, device: torch.device) -> list[str]:
    """One line per target and group: the measured ratio and whether it is met."""
    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"
    lines = []
    for key in dict.fromkeys(group_key(r) for r in rows):
        size, context, vocab, comp = key
        g = {r["model"]: r for r in rows if group_key(r) == key}
        tag = f"{size} context {context} vocab {vocab} compile {comp}"
        if "n=1 efficient" in g:
            r = g["n=1 efficient"]
            lines.append(f"{tag}: lab n=1 step {r['vs ref']:.3f}x reference (target <= {TARGET_REF}): "
                         f"{verdict(r['vs ref'] <= TARGET_REF)}")
        if "n=4 efficient" in g:
            r = g["n=4 efficient"]
            lines.append(f"{tag}: n=4 step {r['vs n=1']:.3f}x n=1 (target <= {TARGET_N4}): "
                         f"{verdict(r['vs n=1'] <= TARGET_N4)}")
        if vocab == big_vocab and "n=4 efficient" in g and "n=4 plain" in g:
            eff, plain = g["n=4 efficient"]["mem vs n=1"], g["n=4 plain"]["mem vs n=1"]
            lines.append(f"{tag}: n=4 peak memory {eff:.2f}x n=1 efficient (target <= {TARGET_MEM}): "
                         f"{verdict(eff <= TARGET_MEM)}; plain loss {plain:.2f}x")
        if device.type == "cuda" and size in ("30M", "100M") and context >= 1024 and vocab != big_vocab:
            best = max(float(r["MFU %"]) for name, r in g.items() if name != "reference")
            lines.append(f"{tag}: best lab MFU {best:.1f}% (target >= 40%): {verdict(best >= 40)}")
    return lines


SUMMARY_COLUMNS = ["size", "context", "vocab", "compile", "ref tok/s", "n=1 tok/s", "n=1 MFU %", "n=1/ref",
                   "n=4/n=1", "n=4 plain/n=1", "mem n=4/n=1", "mem plain n=4/n=1"]


def summary_rows(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    """One line per group: the numbers the targets speak of (efficient backward unless marked plain)."""
    out = []
    for key in dict.fromkeys(group_key(r) for r in rows):
        g = {r["model"]: r for r in rows if group_key(r) == key}
        n1, n4, n4p = g.get("n=1 efficient", {}), g.get("n=4 efficient", {}), g.get("n=4 plain", {})
        out.append(dict(zip(["size", "context", "vocab", "compile"], key),
                        **{"ref tok/s": g["reference"]["tokens/s"], "n=1 tok/s": n1.get("tokens/s"),
                           "n=1 MFU %": n1.get("MFU %"), "n=1/ref": n1.get("vs ref"), "n=4/n=1": n4.get("vs n=1"),
                           "n=4 plain/n=1": n4p.get("vs n=1"), "mem n=4/n=1": n4.get("mem vs n=1"),
                           "mem plain n=4/n=1": n4p.get("mem vs n=1")}))
    return out


def main(argv: list[str] | None = None) -> list[dict[str, object]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--sizes", default=None, help="comma-separated size presets (default: 300K,1M on a CPU, "
                                                      "30M,100M on a GPU)")
    parser.add_argument("--heads", default="1,2,4", help="comma-separated head counts (the first is the base)")
    parser.add_argument("--vocab", type=int, default=352, help="vocabulary (the induction task's)")
    parser.add_argument("--context", default=None, help="positions per sequence, comma-separated (default: 127 on "
                                                        "a CPU, 1024 on a GPU)")
    parser.add_argument("--batch-size", type=int, default=32, help="batch size at the first context; longer "
                                                                   "contexts keep the tokens per step")
    parser.add_argument("--big-vocab", type=int, default=32000, help="vocabulary of the memory group (0: skip)")
    parser.add_argument("--big-vocab-batch", type=int, default=8, help="batch size of the memory group")
    parser.add_argument("--steps", type=int, default=None, help="steps per timed block (default: 3 on a CPU, 10 on "
                                                                "a GPU)")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds (the median is reported)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--compile", default="off", choices=["off", "on", "both"], help="torch.compile setting(s)")
    parser.add_argument("--peak-tflops", type=float, default=None, help="peak TFLOP/s for MFU (default: the GPU's "
                                                                         "datasheet bf16, or a matmul measured now)")
    parser.add_argument("--budget-s", type=float, default=0, help="skip groups not started within this many "
                                                                  "seconds (0: no limit)")
    parser.add_argument("--quick", action="store_true", help="CI-sized: smallest size, tiny shapes, one round")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    gpu = device.type == "cuda"
    if args.quick:
        args.sizes, args.context, args.batch_size, args.steps, args.repeats = "100K", 32, 4, 1, 1
        args.big_vocab, args.big_vocab_batch = 2000, 2
    sizes = (args.sizes or ("30M,100M" if gpu else "300K,1M")).split(",")
    contexts = [int(c) for c in str(args.context or (1024 if gpu else 127)).split(",")]
    steps = args.steps or (10 if gpu else 3)
    heads = [int(h) for h in args.heads.split(",")]
    compiles = {"off": [False], "on": [True], "both": [False, True]}[args.compile]
    if args.peak_tflops:
        peak, peak_source = args.peak_tflops * 1e12, "given with --peak-tflops"
    else:
        peak, peak_source = peak_flops(device, seconds=0.3 if args.quick else 1.0)
    print(f"train throughput: {describe_machine(device)}; batch {args.batch_size} x context {contexts[0]}; "
          f"{'bf16 autocast' if gpu else 'float32'}; {steps} steps x {args.repeats} interleaved rounds, median; "
          f"clock: {'wall' if gpu else 'process CPU time'}", flush=True)
    print(f"peak for MFU: {peak / 1e12:.3g} TFLOP/s ({peak_source})", flush=True)
    # Compiled groups first (the GPU's speed targets), the eager memory group before the slower-to-start
    # compiled one, so a time budget cuts what matters least.
    groups = []
    for comp in sorted(compiles, reverse=True):
        for context in contexts:
            batch_size = max(1, args.batch_size * contexts[0] // context)
            groups += [(size, context, args.vocab, batch_size, comp) for size in sizes]
        if args.big_vocab and (comp is False or len(compiles) == 1):
            groups.append((sizes[0], contexts[0], args.big_vocab, args.big_vocab_batch, comp))
    if args.big_vocab and len(compiles) == 2:
        groups.append((sizes[0], contexts[0], args.big_vocab, args.big_vocab_batch, True))
        first_eager = next(i for i, g in enumerate(groups) if not g[4])
        groups.insert(first_eager, groups.pop(next(i for i, g in enumerate(groups) if not g[4] and g[2] != args.vocab)))
    rows: list[dict[str, object]] = []
    failed = 0
    start = time.perf_counter()
    for size, context, vocab, batch_size, comp in groups:
        what = f"{size} context {context} vocab {vocab} batch {batch_size} compile {'on' if comp else 'off'}"
        if args.budget_s and time.perf_counter() - start > args.budget_s:
            print(f"  skipped {what}: over the {args.budget_s:g} s budget", flush=True)
            continue
        try:
            group = measure_group(size, vocab, batch_size, context, heads, comp, steps, args.repeats, device, peak)
        except Exception as e:  # report and go on: one failing group must not lose the others' numbers
            print(f"  FAILED {what}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}", flush=True)
            failed += 1
            continue
        rows += group
        print(f"  done {what} ({time.perf_counter() - start:.0f} s)", flush=True)
        print(format_table(group, COLUMNS), flush=True)  # partial results survive an outer timeout
    print(f"peak memory: {memory_method(device)}")
    print(format_table(rows, COLUMNS))
    for line in check_targets(rows, args.big_vocab, device):
        print(line)
    if rows:
        print(format_table(summary_rows(rows), SUMMARY_COLUMNS))
    if failed:
        sys.exit(f"{failed} group(s) failed")
    return rows


if __name__ == "__main__":
    main()
