"""`python -m lab.sweep EXPERIMENT --preset quick|paper ...`: train every run of an experiment.

Runs land in `OUT/EXPERIMENT/<run name>/`. A sweep trains what is missing, skips complete
runs and resumes incomplete ones (each run resumes from its own checkpoint), so running
the same command again after an interruption completes only what is left, and running it
once more does nothing. One failing run is recorded (status `failed`, error in its
meta.json) and the sweep goes on. A run being trained by another process right now (it
holds the run's lock, e.g. a second sweep on the same directory) is reported as
`running elsewhere` and left alone: two sweeps never train the same config twice.

A run that finetunes another run of the same experiment (`finetune.init_from="@<name>"`)
starts once that run is complete.

Exit codes: 0 every run complete (or running elsewhere), 1 some run failed, 2 bad input
(one line, nothing written), 130 interrupted (runs saved their checkpoints; rerun to go on).
"""

from __future__ import annotations

import argparse
import math
import signal
import sys
import time
from collections import Counter
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from lab import results, runs
from lab.config import RunConfig, size_value
from lab.cost import (  # noqa: F401
    CPU_S_PER_PARAM_TOKEN,
    CPU_S_PER_TOKEN,
    Calibration,
    calibrate,
    calibrated_seconds,
    cpu_seconds,
)
from lab.errors import ConfigError
from lab.executors import (
    Executor,
    InProcessExecutor,
    LocalExecutor,
    RayExecutor,
    RunResult,
    RunSpec,
    SlurmExecutor,
    cpu_cores,
)
from lab.run import HelpFormatter
from lab.runs import Status
from lab.selection import RunFilter

EXECUTORS = ("local", "slurm", "ray")


def build_parser() -> argparse.ArgumentParser:
    from lab.experiments import PRESETS, REGISTRY
    listing = "; ".join(f"{e.name}: {e.description}" for e in sorted(REGISTRY.values(),
                                                                     key=lambda e: e.name))
    parser = argparse.ArgumentParser(
        prog="python -m lab.sweep",
        description="Train every run of an experiment: skip complete runs, resume incomplete ones, "
                    "run the rest. "
                    f"Experiments: {listing}",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("experiment", help="experiment name (see above)")
    parser.add_argument("--preset", default="quick",
                        help=f"preset: {', '.join(PRESETS)} (gpu = paper)")
    parser.add_argument("--executor", default="local",
                        help=f"where runs execute: {', '.join(EXECUTORS)}")
    parser.add_argument("--workers", type=int, default=None,
                        help="runs at once (local and local Ray); default: CPU cores on CPU, else "
                             "1. Local CPU threads are split between workers")
    parser.add_argument("--out", default="runs",
                        help="root of run directories (runs go to OUT/EXPERIMENT/)")
    parser.add_argument("--device", default="auto",
                        help="auto, cpu, cuda or mps (resolved where each run executes)")
    parser.add_argument("--dry-run", action="store_true",
                        help="list the runs and what exists; train nothing")
    parser.add_argument("--store", default=str(results.STORE),
                        help="results store: a run complete there is not trained again (unless a "
                             "planned run finetunes it: the store keeps no checkpoint)")
    parser.add_argument("--retrain-stored", action="store_true",
                        help="train runs the store holds too (to check that they reproduce: the "
                             "export then compares both copies)")
    parser.add_argument("--only", action="append", default=[], metavar="KEY=VALUE",
                        help="keep runs whose config value equals VALUE, with the keys and typed "
                             "values of lab.run --set (repeatable), e.g. --only task=graph --only "
                             "model.n_future=2 --only train.lr=1e-3 --only task.seq_len=64 "
                             "(default: every run)")
    parser.add_argument("--part", default=None, metavar="K/N",
                        help="train part K of N of the (filtered) plan: consecutive whole cells "
                             "(task, size, label), the largest part as small as they allow; "
                             f"--dry-run says how many parts keep each within {PART_MINUTES} "
                             "minutes (default: the whole plan)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    slurm = parser.add_argument_group("slurm (submitit job arrays)")
    slurm.add_argument("--partition", default=None, help="Slurm partition")
    slurm.add_argument("--gpus-per-run", type=int, default=None,
                       help="GPUs per run (default: 1 on slurm, 0 on ray)")
    slurm.add_argument("--cpus-per-run", type=int, default=None,
                       help="CPUs per run (default: 4 on slurm, 1 on ray)")
    slurm.add_argument("--time-limit", type=int, default=60, metavar="MINUTES",
                       help="time limit of one job (it runs --runs-per-job runs one after another)")
    slurm.add_argument("--runs-per-job", type=int, default=4, help="runs packed into one job")
    slurm.add_argument("--array-parallelism", type=int, default=64,
                       help="jobs of an array running at once")
    slurm.add_argument("--cluster", default="slurm",
                       help="submitit cluster: slurm; local (jobs as local processes) or debug (in "
                            "this process)")
    ray = parser.add_argument_group("ray")
    ray.add_argument("--address", default=None,
                     help="Ray cluster address (default: start a local instance)")
    return parser


# ----- planning -----

def filter_runs(configs: list[RunConfig], only: list[str]) -> list[RunConfig]:
    """Keep configs that pass every `KEY=VALUE` of `only` (`lab.selection.RunFilter`: keys of
    `lab.run --set`, values parsed to the key's type and compared exactly)."""
    keep = RunFilter.parse(only, "--only")
    if not configs or not keep:
        return configs
    flats = [runs.flatten(c.to_dict()) for c in configs]
    kept = {id(f) for f in keep.select(flats)}
    return [c for c, f in zip(configs, flats) if id(f) in kept]


def dependency(config: RunConfig) -> str | None:
    """The run (of the same experiment) this config finetunes, if it names one with `@`."""
    from lab.checkpoints import RunRef
    ref = RunRef.parse(config.finetune.init_from)
    return None if ref is None else ref.name


def existing_state(run_dir: Path) -> str:
    """What a sweep finds in a run directory: new, complete, partial, failed or running
    elsewhere."""
    state = runs.run_state(run_dir)
    if state == Status.COMPLETE:
        return Status.COMPLETE
    if runs.is_locked(run_dir):
        return Status.RUNNING_ELSEWHERE
    return {Status.MISSING: Status.NEW, Status.FAILED: Status.FAILED}.get(state, Status.PARTIAL)


PART_MINUTES = 90  # a part of a sweep should finish within this on the machine it plans for


def cells(configs: list[RunConfig]) -> list[list[RunConfig]]:
    """The plan's cells in order of first appearance: runs sharing task, size and label (the units a
    figure compares across seeds and head counts). A finetuning run joins the cell of the run it
    finetunes, whatever its own label."""
    by_name = {c.run_name(): c for c in configs}

    def root(config: RunConfig) -> RunConfig:
        while (dep := dependency(config)) in by_name:
            config = by_name[dep]
        return config

    groups: dict[tuple[str, str, str], list[RunConfig]] = {}
    for config in configs:
        source = root(config)
        groups.setdefault((source.task, source.size, source.label), []).append(config)
    return list(groups.values())


def split_parts(configs: list[RunConfig], parts: int) -> list[list[RunConfig]]:
    """The plan in `parts` consecutive parts of whole `cells` (in cell order), with the largest
    part's estimated CPU time as small as consecutive cells allow.

    Whole cells, so that a finished part can be analysed on its own (every arm of a cell on every
    seed); consecutive, so that parts follow the plan. The split depends on the plan alone, not on
    which runs are complete: part K names the same runs before and after others finish."""
    groups = cells(configs)
    cost = [sum(map(cpu_seconds, g)) for g in groups]
    bounds = _balanced_cuts(cost, parts)
    return [[c for g in groups[a:b] for c in g] for a, b in zip([0, *bounds],
                                                                [*bounds, len(groups)])]


def _balanced_cuts(cost: list[float], parts: int) -> list[int]:
    """The `parts - 1` cut indices splitting `cost` into consecutive chunks with the smallest
    largest sum (exact dynamic programme; a chunk may be empty when there are fewer items than
    parts)."""
    n = len(cost)
    prefix = [0.0]
    for c in cost:
        prefix.append(prefix[-1] + c)
    best = [[math.inf] * (n + 1) for _ in range(parts + 1)]  # best[k][i]: first i items in k chunks
    cut = [[0] * (n + 1) for _ in range(parts + 1)]
    best[0][0] = 0.0
    for k in range(1, parts + 1):
        for i in range(n + 1):
            for j in range(i + 1):
                value = max(best[k - 1][j], prefix[i] - prefix[j])
                if value < best[k][i]:
                    best[k][i], cut[k][i] = value, j
    bounds, i = [], n
    for k in range(parts, 1, -1):
        i = cut[k][i]
        bounds.append(i)
    return bounds[::-1]


def parse_part(text: str) -> tuple[int, int]:
    """`K/N` -> (K, N), 1 <= K <= N; raises `ConfigError`."""
    k, _, n = text.partition("/")
    if not (k.isdigit() and n.isdigit()) or not 1 <= int(k) <= int(n):
        raise ConfigError(f"--part {text!r}: expected K/N with 1 <= K <= N, e.g. --part 1/3")
    return int(k), int(n)


def parts_needed(configs: list[RunConfig], workers: int, minutes: float = PART_MINUTES,
                 calibration: Calibration | None = None) -> int:
    """The fewest `split_parts` of the plan whose every part fits in `minutes` with `workers` runs
    at once (by the estimate, scaled by the `calibration` of this CPU when there is one), counting
    every run of the plan, complete or not, so the answer names a split that stays the same; at most
    one part per cell."""
    scale = 1 / max(1, workers) / 60
    most = len(cells(configs))
    seconds = {c.run_name(): calibrated_seconds(c, calibration) for c in configs}

    def total(part: list[RunConfig]) -> float:
        return sum(seconds[c.run_name()] for c in part)
    n = max(1, math.ceil(total(configs) * scale / minutes))
    while n < most and max(map(total, split_parts(configs, n))) * scale > minutes:
        n += 1
    return min(n, max(1, most))


def parts_line(configs: list[RunConfig], todo: set[str], workers: int,
               calibration: Calibration | None) -> str:
    """How to run the plan in `parts_needed` parts, with each part's runs and minutes still to train
    (`todo`: the names of the runs not yet complete); empty when one part fits."""
    n = parts_needed(configs, workers, calibration=calibration)
    if n == 1:
        return ""
    scale = 1 / max(1, workers) / 60
    left = []
    for k, part in enumerate(split_parts(configs, n), 1):
        pending = [c for c in part if c.run_name() in todo]
        minutes = sum(calibrated_seconds(c, calibration) for c in pending) * scale
        left.append(f"part {k}/{n}: " + (f"{len(pending)} runs, about {minutes:.0f} minutes"
                                         if pending else "done"))
    return (f"in {n} parts of whole cells, each at most about {PART_MINUTES} minutes unless one "
            "cell alone takes longer: " + "; ".join(left)
            + f". Run each with work left by adding --part K/{n} (a part resumes where it stopped).")


def cost_line(configs: list[RunConfig], workers: int,
              calibration: Calibration | None = None) -> str:
    """'N runs, about X CPU-minutes (Y minutes with K workers)', scaled by this CPU's `calibration`
    if given."""
    each = [calibrated_seconds(c, calibration) for c in configs]
    total, longest = sum(each), max(each, default=0.0)
    wall = max(total / max(1, workers), longest)
    bound = any(c.train.stop_at or c.train.early_stop_patience for c in configs)
    how = (f"the model of lab.cost.cpu_seconds {calibration.describe()}" if calibration else
           "rough: the model of lab.cost.cpu_seconds, not yet calibrated on this CPU")
    steps = sum(c.train.steps for c in configs)
    tokens = sum(c.train.steps * c.train.batch_size * c.model.block_size for c in configs)
    return (f"{len(configs)} runs, {'at most' if bound else 'about'} {total / 60:.0f} CPU-minutes "
            "on one thread per "
            f"run (about {wall / 60:.0f} minutes with {workers} workers on CPU; {how}"
            + ("; runs that stop early cost less" if bound else "") + "); on any device: "
                                                                      f"{'at most ' if bound else ''}"
            f"{steps:,} optimizer steps, {tokens / 1e9:.3g}B training tokens")


def this_cpu_calibration(root: Path, store: Path, experiment: str) -> Calibration | None:
    """`lab.cost.calibrate` over the complete runs under `root` and in `store` (a directory wins
    over the stored copy of its run)."""
    dirs = [results.dir_record(d) for d in results.complete_dirs(root)]
    have = {r["run_id"] for r in dirs}
    stored = [r for r in results.store_records(store) if r["run_id"] not in have]
    return calibrate(dirs + stored, runs.cpu_info().get("model"), experiment)


# ----- the driver -----

class Sweep:
    """Trains a list of configs with an executor and keeps every run's row for the final table."""

    def __init__(self, configs: list[RunConfig], root: Path,
                 stored: frozenset[str] | set[str] = frozenset()) -> None:
        """`stored`: run names complete in the results store; such a run with no directory here is
        not trained again, unless a planned run finetunes it (the store keeps no checkpoint)."""
        self.root = Path(root)
        self.configs = {c.run_name(): c for c in configs}
        self.rows: dict[str, dict[str, Any]] = {}
        found = {name: existing_state(self.root / c.experiment / name) for name, c in self.configs.items()}
        skip = {name for name in stored if found.get(name) == Status.NEW}
        while True:  # a stored run stays skipped unless a run that will train finetunes it
            needed = {dependency(c) for name, c in self.configs.items() if name not in skip}
            if not skip & needed:
                break
            skip -= needed
        for name, config in self.configs.items():
            run_dir = self.root / config.experiment / name
            before = Status.STORED if name in skip else found[name]
            self.rows[name] = {"run": name, "before": before, "status": before, "primary": None,
                               "wall_s": None,
                               "error": None, "config": config}
            if before == Status.COMPLETE:
                summary = runs.read_json(run_dir / runs.SUMMARY)
                self.rows[name].update(status=Status.SKIPPED, wall_s=summary.get("wall_s"),
                                       primary=summary.get("final",
                                                           {}).get(summary.get("primary_metric")))

    def todo(self) -> list[str]:
        """Runs to start, longest first: everything not complete and not locked by another
        process."""
        names = [n for n, r in self.rows.items()
                 if r["before"] not in (Status.COMPLETE, Status.STORED, Status.RUNNING_ELSEWHERE)]
        return sorted(names, key=lambda n: -cpu_seconds(self.configs[n]))

    def run(self, executor: Executor, device: str, quiet: bool = False) -> bool:
        """Train every run to do. Returns False if interrupted (Ctrl-C, SIGTERM, or a run
        interrupted)."""
        pending = self.todo()
        for name in pending:
            self.rows[name]["status"] = Status.NOT_RUN
        bar = tqdm(total=len(pending), disable=quiet, unit="run", dynamic_ncols=True, desc="runs")
        inflight: dict[Future, str] = {}
        interrupted = False
        try:
            while pending or inflight:
                ready, pending = self._ready(pending, bar)
                room = len(ready) if executor.capacity is None else max(0,
                                                                        executor.capacity - len(inflight))
                ready, pending = ready[:room], ready[room:] + pending
                if ready:
                    specs = [RunSpec(self.configs[n].full_dict(), str(self.root),
                                     device) for n in ready]
                    for name, future in zip(ready, executor.submit(specs)):
                        inflight[future] = name
                        self.rows[name]["status"] = Status.RUNNING
                if not inflight:
                    break
                for future in executor.wait_any(set(inflight)):
                    interrupted |= self._record(inflight.pop(future), future.result(),
                                                bar) == Status.INTERRUPTED
                if interrupted:
                    raise KeyboardInterrupt
        except KeyboardInterrupt:
            interrupted = True
            self._stop(executor, inflight, bar)
        finally:
            bar.close()
            executor.shutdown()
        return not interrupted

    def _ready(self, pending: list[str], bar: Any) -> tuple[list[str], list[str]]:
        """Split pending runs into ready and waiting (for a run they finetune); fail orphans."""
        ready, waiting = [], []
        for name in pending:
            dep = dependency(self.configs[name])
            dep_status = Status(self._status_of(dep)) if dep else Status.COMPLETE
            if dep_status.done:
                ready.append(name)
            elif dep_status in (Status.NOT_RUN, Status.RUNNING):
                waiting.append(name)
            else:
                self.rows[name].update(status=Status.DEPENDENCY_FAILED,
                                       error=f"{dep}: {dep_status}")
                bar.update(1)
        return ready, waiting

    def _stop(self, executor: Executor, inflight: dict[Future, str], bar: Any,
              patience_s: float = 300) -> None:
        """Interrupt running runs (each saves a checkpoint) and collect what they report."""
        for future in list(inflight):
            if future.cancel():
                inflight.pop(future)
        deadline = time.monotonic() + patience_s
        while inflight and time.monotonic() < deadline:
            executor.interrupt()  # repeated: a run that had not quite started yet is caught too
            for future in executor.wait_any(set(inflight), timeout=1.0):
                try:
                    self._record(inflight.pop(future), future.result(), bar)
                except Exception:  # noqa: BLE001 - a cancelled or lost run: its directory says where it is
                    pass
        for name in inflight.values():
            self.rows[name]["status"] = Status.INTERRUPTED

    def _status_of(self, name: str) -> str:
        if name in self.rows:
            return self.rows[name]["status"]
        run_dir = self.root / next(iter(self.configs.values())).experiment / name
        return Status.COMPLETE if runs.run_state(run_dir) == Status.COMPLETE else Status.MISSING

    def _record(self, name: str, result: RunResult, bar: Any) -> str:
        """Keep a finished run's result in its row; returns its status."""
        row = self.rows[name]
        row.update(status=result["status"], primary=result.get("primary"),
                   wall_s=result.get("wall_s"),
                   error=result.get("error"))
        bar.update(1)
        if result["status"] == Status.FAILED:
            tqdm.write(f"failed: {name}: {result.get('error')}")
        counts = Counter(r["status"] for r in self.rows.values())
        bar.set_postfix({k: v for k, v in counts.items() if k not in (Status.NOT_RUN,
                                                                      Status.RUNNING)},
                                                                      refresh=False)
        return result["status"]

    # ----- reporting -----
    def table(self) -> str:
        """One line per run: task, size, heads, head type, seed, label, before, status, primary
        metric, wall."""
        width = max([12, *(len(row["config"].label) + 1 for row in self.rows.values())])
        lines = [f"{'task':<11}{'size':<9}{'n':>3} {'head type':<11}{'seed':>4} "
                 f"{'label':<{width}}{'found':<18}"
                 f"{'status':<18}{'primary':>9}{'wall s':>9}"]
        for row in sorted(self.rows.values(), key=_row_order):
            c: RunConfig = row["config"]
            primary = "" if row["primary"] is None else f"{row['primary']:.4f}"
            wall = "" if row["wall_s"] is None else f"{row['wall_s']:.0f}"
            lines.append(f"{c.task:<11}{c.size:<9}{c.model.n_future:>3} "
                         f"{c.model.head_type:<11}{c.seed:>4} "
                         f"{c.label:<{width}}{row['before']:<18}{row['status']:<18}{primary:>9}{wall:>9}")
        return "\n".join(lines)

    def means(self) -> str:
        """Primary metric averaged over seeds, per task, size, heads, head type and label."""
        groups: dict[tuple, list[float]] = {}
        for row in self.rows.values():
            c: RunConfig = row["config"]
            if row["primary"] is not None:
                key = (c.task, c.size, c.model.n_future, c.model.head_type, c.label)
                groups.setdefault(key, []).append(float(row["primary"]))
        if not groups:
            return ""
        width = max([12, *(len(key[4]) + 1 for key in groups)])
        lines = [f"{'task':<11}{'size':<9}{'n':>3} "
                 f"{'head type':<11}{'label':<{width}}{'seeds':>5}{'mean':>9}{'min':>9}{'max':>9}"]
        for key in sorted(groups, key=lambda k: (k[0], size_value(k[1]), k[1], k[2], k[3], k[4])):
            v = groups[key]
            lines.append(f"{key[0]:<11}{key[1]:<9}{key[2]:>3} "
                         f"{key[3]:<11}{key[4]:<{width}}{len(v):>5}"
                         f"{sum(v) / len(v):>9.4f}{min(v):>9.4f}{max(v):>9.4f}")
        return "\n".join(lines)

    def counts(self) -> Counter:
        return Counter(r["status"] for r in self.rows.values())


def _row_order(row: dict[str, Any]) -> tuple:
    c: RunConfig = row["config"]
    return (c.task, size_value(c.size), c.size, c.model.n_future, c.model.head_type, c.label,
            c.seed)


# ----- command line -----

def make_executor(args: argparse.Namespace, device: str, workers: int, folder: Path) -> Executor:
    if args.executor == "local":
        if workers == 1:
            return InProcessExecutor()
        gpus = 0
        if device == "cuda":
            import torch
            gpus = torch.cuda.device_count()
        return LocalExecutor(workers, gpus=gpus)
    if args.executor == "slurm":
        return SlurmExecutor(folder, cluster=args.cluster, partition=args.partition,
                             gpus_per_run=1 if args.gpus_per_run is None else args.gpus_per_run,
                             cpus_per_run=args.cpus_per_run or 4, time_limit_min=args.time_limit,
                             runs_per_job=args.runs_per_job,
                             array_parallelism=args.array_parallelism)
    return RayExecutor(args.address, workers=workers, cpus_per_run=args.cpus_per_run or 1,
                       gpus_per_run=args.gpus_per_run or 0)


def validate_args(args: argparse.Namespace) -> None:
    from lab.experiments import PRESETS, canonical_preset
    args.preset = canonical_preset(args.preset)
    if args.preset not in PRESETS:
        raise ConfigError(f"unknown preset {args.preset!r}; choose one of: {', '.join(PRESETS)}")
    if args.executor not in EXECUTORS:
        raise ConfigError(f"unknown executor {args.executor!r}; choose one of: "
                          f"{', '.join(EXECUTORS)}")
    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {args.workers}")
    if args.cluster not in ("slurm", "local", "debug"):
        raise ConfigError(f"unknown --cluster {args.cluster!r}; choose slurm, local or debug")
    for name in ("time_limit", "runs_per_job", "array_parallelism"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, got "
                              f"{getattr(args, name)}")
    for name in ("gpus_per_run", "cpus_per_run"):
        value = getattr(args, name)
        if value is not None and value < 0:
            raise ConfigError(f"--{name.replace('_', '-')} must not be negative, got {value}")
    out = Path(args.out)
    for parent in [out, *out.parents]:
        if parent.exists() and not parent.is_dir():
            raise ConfigError(f"--out {out} is not a directory ({parent} is a file)")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        validate_args(args)
        from lab.device import resolve_device
        from lab.experiments import plan
        configs = filter_runs(plan(args.experiment, args.preset), args.only)
        if not configs:
            raise ConfigError(f"--only {' '.join(args.only)} leaves no run of {args.experiment!r}")
        whole = configs
        if args.part:
            k, n = parse_part(args.part)
            configs = split_parts(configs, n)[k - 1]
            if not configs:
                raise ConfigError(f"--part {args.part} holds no run ({len(whole)} runs in {n} "
                                  "parts)")
        for config in configs:  # a directory holding another config is refused before anything runs
            runs.prepare_run_dir(Path(args.out), config.experiment, config.run_name(),
                                 config.to_dict())
        device = args.device
        if args.executor == "local":
            device = str(resolve_device(args.device))  # fails early on a missing device
        workers = args.workers or (cpu_cores() if device == "cpu" else 1)
        stored = set() if args.retrain_stored else {r["run_id"] for r in results.store_records(Path(args.store),
                                                                                              args.experiment)}
        sweep = Sweep(configs, Path(args.out), stored)
        todo = sweep.todo()
        where = Path(args.out) / args.experiment
        counts = Counter(r["before"] for r in sweep.rows.values())
        found = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
        print(f"{args.experiment} ({args.preset}): {len(configs)} runs in {where}: {found}")
        if args.dry_run:
            print(sweep.table())
            pending = [c for c in configs if c.run_name() in set(todo)]
            calibration = this_cpu_calibration(Path(args.out), Path(args.store), args.experiment) \
                if device == "cpu" else None
            print(f"dry run: would train {cost_line(pending, workers, calibration)}")
            if counts[Status.STORED]:
                print(f"{counts[Status.STORED]} runs are in the results store and are not trained "
                      "again; add --retrain-stored to price the whole plan")
            if not args.part and args.preset == "quick" and todo:  # the estimate is for CPUs
                print(parts_line(whole, set(todo), workers, calibration))
            return 0
        if not todo:
            print(sweep.table())
            done = counts[Status.COMPLETE] + counts[Status.STORED]
            print(f"nothing to do: all {len(configs)} runs are complete (or stored in "
                  f"{args.store}/)"
                  if done == len(configs)
                  else "nothing to do here: the runs not complete are running elsewhere")
            return 0
        executor = make_executor(args, device, workers, where / ".submitit")
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.executor == "local" and workers > 1:
        print(f"training {len(todo)} runs with {workers} workers x "
              f"{max(1, cpu_cores() // workers)} threads")
    else:
        print(f"training {len(todo)} runs ({args.executor})")
    previous = signal.signal(signal.SIGTERM, _terminate)  # `kill` stops the sweep like Ctrl-C
    try:
        finished = sweep.run(executor, device, args.quiet)
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(sweep.table())
    means = sweep.means()
    if means:
        print("\nprimary metric over seeds (complete runs)\n" + means)
    counts = sweep.counts()
    print("\n" + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))
    for row in sweep.rows.values():
        if row["status"] in (Status.FAILED, Status.DEPENDENCY_FAILED):
            print(f"failed: {row['run']}: {row['error']}", file=sys.stderr)
    if not finished:
        print("interrupted: rerun the same command to finish the remaining runs", file=sys.stderr)
        return 130
    after_sweep(args.experiment, args.preset, Path(args.out))
    return 1 if counts[Status.FAILED] or counts[Status.DEPENDENCY_FAILED] else 0


def after_sweep(experiment: str, preset: str, root: Path) -> None:
    """Run the experiment's declared measuring step (`Experiment.measure`), if it has one: e.g.
    decoding speed of the trained runs, the finetuning table."""
    from lab.experiments import REGISTRY
    measure = REGISTRY[experiment].measure
    if measure is not None:
        measure(preset, root)


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
