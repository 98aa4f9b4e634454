"""Self-speculative decoding speed: tokens per forward, acceptance per head and wall-clock
speedup against greedy decoding with a KV cache, at batch 1, 8 and 32, for k = 1..4 heads.

The model is a small 4-head transformer trained on the induction task with a predictable
filler language (a Markov chain whose rows put most mass on one successor), so its heads
guess greedy continuations well, the regime of the paper's Table S2. It trains once (about
1-3 minutes on 2 CPU cores) into `runs/bench-decode/` and is loaded from there afterwards.

    python benchmarks/decode.py                  # CPU, one thread
    python benchmarks/decode.py --device cuda    # GPU (benchmarks/gpu_decode.sh)

Timings are medians of `--repeats` alternating runs of both decoders in one process;
measurements are printed and saved next to the run as `speculative-benchmark-<device>.json`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lab.config import RunConfig  # noqa: E402
from lab.decode_bench import format_table, measure_run  # noqa: E402
from lab.runs import write_json  # noqa: E402
from lab.train import Trainer  # noqa: E402


def bench_config(layers: int, d_model: int, steps: int, head_type: str) -> RunConfig:
    """A 4-head model with a trunk deeper than its heads (as in the paper's 7B models)."""
    config = RunConfig(task="induction", seed=0, size=f"d{d_model}L{layers}", experiment="bench-decode",
                       task_config={"seq_len": 96, "filler_vocab": 32, "name_vocab": 16, "branching": 3.0,
                                    "eval_stories": 128})
    m = config.model
    m.d_model, m.n_head, m.n_layer, m.n_future, m.head_type = d_model, 4, layers, 4, head_type
    t = config.train
    t.steps, t.batch_size, t.lr, t.warmup_steps = steps, 32, 3e-3, 50
    t.eval_every = t.checkpoint_every = steps // 2
    t.val_batches, t.eval_examples = 2, 128
    return config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (timings), training uses the same")
    parser.add_argument("--batches", default="1,8,32", help="batch sizes")
    parser.add_argument("--max-new", type=int, default=48, help="new tokens per prompt")
    parser.add_argument("--repeats", type=int, default=3, help="timing repeats (median)")
    parser.add_argument("--prompt-batches", type=int, default=2, help="batches of prompts per measurement")
    parser.add_argument("--layers", type=int, default=10, help="total blocks (trunk + 4 heads)")
    parser.add_argument("--d-model", type=int, default=64)
    parser.add_argument("--steps", type=int, default=400, help="training steps")
    parser.add_argument("--head-type", default="parallel")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads")
    parser.add_argument("--runs", default=str(REPO / "runs"), help="root of run directories")
    parser.add_argument("--fp32", action="store_true", help="no bf16 autocast on CUDA")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    start = time.perf_counter()
    trainer = Trainer(bench_config(args.layers, args.d_model, args.steps, args.head_type), args.runs,
                      device=args.device, quiet=True)
    summary = trainer.run()
    run_dir = trainer.run_dir  # (a copied run's summary may name the directory it trained in)
    final = summary["final"]
    print(f"model {run_dir} ({time.perf_counter() - start:.0f} s to train or load)")
    print("teacher-forced accuracy on training-like data: "
          + "  ".join(f"head{i} {final[f'head{i}/acc']:.3f}" for i in range(1, 5)))
    results = []
    for batch in (int(b) for b in args.batches.split(",")):
        result = measure_run(run_dir, [1, 2, 3, 4], batch, args.max_new, args.device, args.prompt_batches,
                             args.repeats, not args.fp32)
        result["threads"] = torch.get_num_threads()
        results.append(result)
        print(f"\n== batch {batch} ==")
        print(format_table(result))
    out = run_dir / f"speculative-benchmark-{args.device}{'-fp32' if args.fp32 else ''}.json"
    write_json(out, {"results": results})
    print(f"\nwrote {out}")
    if all(r["exact"] for res in results for r in res["rows"]):
        return 0
    if args.device == "cuda" and not args.fp32:
        print("note: under bf16 some outputs differ from greedy decoding (near ties round either way); "
              "--fp32 checks exactness")
        return 0
    print("error: speculative output differs from greedy decoding")
    return 1


if __name__ == "__main__":
    sys.exit(main())
