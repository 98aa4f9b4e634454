"""Runs per hour of a sweep of small runs with 1 or K training processes sharing one device.

    python benchmarks/sweep_throughput.py [--workers 1,2] [--runs 4] [--size 100K] [--steps 60]
                                          [--device cpu] [--threads 0]

Tiny models cannot fill a big device from one process: each step is a chain of small kernels
(or small matmuls on a CPU core) and the device idles between them. The simplest remedy is
several independent runs at once, each its own process on the same device, which is what
`python -m lab.sweep ... --workers K` does. This measures what that buys: the same `runs`
runs (seeds 0..runs-1 of one `python -m lab.run` command, each a complete run with its
evaluations and run directory, written to a temporary directory) with 1, then K processes at
a time; it reports wall time, runs per hour, and the speed-up over one process.

CPU: give each process `--threads` torch threads (0 = cores / K, at least 1); K beyond the
number of free cores only adds contention.

GPU (for example a lent H100): `--device cuda --workers 1,4,8,16 --size 1M --runs 16 --steps 300`.
All processes share the GPU by time slicing; NVIDIA's MPS daemon (`nvidia-cuda-mps-control -d`,
if the machine allows it) lets their kernels run concurrently and usually helps further. Raise
K while runs per hour still grows and GPU memory allows (each process holds its own CUDA
context, about 0.5 GB, plus its model and activations).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import format_table  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def run_command(task: str, size: str, heads: int, steps: int, seed: int, device: str, out: Path,
                extra: list[str]) -> list[str]:
    """The `python -m lab.run` command of one run of the sweep."""
    cmd = [sys.executable, "-m", "lab.run", task, "--size", size, "--heads", str(heads), "--steps", str(steps),
           "--seed", str(seed), "--device", device, "--out", str(out), "--experiment", "sweep-throughput", "--quiet"]
    for item in extra:
        cmd += ["--set", item]
    return cmd


def sweep_wall_time(commands: list[list[str]], workers: int, threads: int) -> float:
    """Run every command, at most `workers` at a time; seconds from the first start to the last end."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
           "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    pending = list(commands)
    running: list[subprocess.Popen] = []
    start = time.perf_counter()
    while pending or running:
        while pending and len(running) < workers:
            running.append(subprocess.Popen(pending.pop(0), cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                                            stderr=subprocess.PIPE, text=True))
        time.sleep(0.05)
        for proc in [p for p in running if p.poll() is not None]:
            running.remove(proc)
            if proc.returncode != 0:
                for other in running:
                    other.kill()
                raise RuntimeError(f"a run failed ({proc.returncode}): {proc.stderr.read()[-2000:]}")
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> list[dict[str, object]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--workers", default="1,2", help="comma-separated process counts to compare")
    parser.add_argument("--runs", type=int, default=4, help="runs (seeds) per measurement")
    parser.add_argument("--task", default="induction")
    parser.add_argument("--size", default="100K")
    parser.add_argument("--heads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch threads per process (0: cores / K)")
    parser.add_argument("--set", dest="overrides", action="append",
                        default=["train.eval_every=30", "train.eval_examples=64", "train.final_eval_examples=128",
                                 "train.val_batches=1"], help="extra --set values for every run")
    parser.add_argument("--quick", action="store_true", help="CI-sized: two tiny runs, 1 and 2 workers")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.steps = 2, 4
        args.overrides = args.overrides + ["model.d_model=32", "model.n_head=2", "train.batch_size=4",
                                           "train.eval_every=2", "task.eval_stories=16"]
    cores = os.cpu_count() or 1
    rows = []
    print(f"sweep throughput: {args.runs} runs of `lab.run {args.task} --size {args.size} --heads {args.heads} "
          f"--steps {args.steps} --device {args.device}` ({cores} cores visible)", flush=True)
    for k in [int(w) for w in args.workers.split(",")]:
        threads = args.threads or max(1, cores // k)
        with tempfile.TemporaryDirectory() as tmp:
            commands = [run_command(args.task, args.size, args.heads, args.steps, seed, args.device, Path(tmp),
                                    args.overrides) for seed in range(args.runs)]
            wall = sweep_wall_time(commands, k, threads)
        rows.append({"workers": k, "threads each": threads, "runs": args.runs, "wall s": wall,
                     "s per run": wall / args.runs, "runs/hour": args.runs / wall * 3600})
        print(f"  done {k} worker(s): {wall:.1f} s", flush=True)
    for row in rows:
        row["speed-up"] = float(row["runs/hour"]) / float(rows[0]["runs/hour"])
    print(format_table(rows, ["workers", "threads each", "runs", "wall s", "s per run", "runs/hour", "speed-up"]))
    return rows


if __name__ == "__main__":
    main()
