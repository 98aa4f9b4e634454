"""What a sweep will cost: a model of a run's CPU time, calibrated on the runs this CPU has finished.

`cpu_seconds` is a two-constant model (a cost per token plus a cost per parameter-token),
fitted once on one machine. Machines differ by several times, so `calibrate` compares the
model with what complete runs actually took on a CPU of the same model name (run directories
and the results store record it in `meta.json`) and `lab.sweep --dry-run` scales each run's
estimate by the median ratio of the `MIN_RUNS` measured runs nearest to it in estimated length
(`Calibration.seconds`): the model's error depends on the length, since evaluations and start-up
weigh on short runs and not on long ones (on one CPU: x1.5 for runs estimated at 7 s, x0.3-0.4 at
30 min and more; LOG 2026-12-06), saying over how many runs it was measured.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lab.config import RunConfig

# Seconds per training token on one CPU thread: a fixed cost (data, Python, evaluations) plus a
# cost per non-embedding parameter. The shape is fitted to quick induction runs (about 1M tokens:
# 100K in 23 s, 1M in 80 s, on an AVX-512 machine; LOG 2026-11-28), the scale to quick runs with
# validation and test evaluations on an AVX2 2-core machine running two runs at once (1M induction
# 276-460 s, 1M path-star 368-528 s; LOG 2026-11-29): about 3x. A guide for planning, not a promise.
CPU_S_PER_TOKEN, CPU_S_PER_PARAM_TOKEN = 5.1e-5, 1.9e-10
MIN_RUNS = 5  # fewer measured runs of an experiment than this: calibrate on every experiment's runs


def cpu_seconds(config: RunConfig) -> float:
    """Estimated CPU time of a run on one thread (see `CPU_S_PER_TOKEN`), counting the blocks it
    computes: without parameter matching n heads add n-1 blocks. An upper bound for a run that stops
    early."""
    m = config.model
    blocks = m.n_layer if m.match_params or m.head_type == "linear" else m.n_layer - 1 + m.n_future
    tokens = config.train.steps * config.train.batch_size * m.block_size
    return tokens * (CPU_S_PER_TOKEN + CPU_S_PER_PARAM_TOKEN * 12 * m.d_model ** 2 * blocks)


def measured_ratio(record: dict[str, Any]) -> float | None:
    """Seconds a complete run took (meta.json's start to end) over `cpu_seconds` of the steps it
    trained, or None when the record lacks what that needs."""
    meta, summary = record.get("meta", {}), record.get("summary", {})
    try:
        took = (datetime.fromisoformat(meta["ended"]) - datetime.fromisoformat(meta["started"])).total_seconds()
        config = RunConfig.from_dict(record["config"])
        trained = summary.get("steps", config.train.steps) / config.train.steps
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None
    estimate = cpu_seconds(config) * trained
    return took / estimate if meta.get("status") == "complete" and estimate > 0 and took > 0 else None


def cpu_model(record: dict[str, Any]) -> str | None:
    return ((record.get("meta", {}).get("versions") or {}).get("cpu") or {}).get("model")


@dataclass(frozen=True)
class Calibration:
    """Measured / estimated CPU time: the median `factor` over `runs` complete runs on `cpu` (of
    `scope`: one experiment, or every experiment when that one has too few), and each run's
    (estimated seconds, ratio) in `points`, from which `seconds` reads the ratio near a length."""

    factor: float
    runs: int
    cpu: str
    scope: str
    points: tuple[tuple[float, float], ...] = ()

    def factor_at(self, estimate: float) -> float:
        """The median ratio of the `MIN_RUNS` measured runs nearest to `estimate` seconds in log
        length (`factor` when no points are known)."""
        if len(self.points) < MIN_RUNS or estimate <= 0:
            return self.factor
        near = sorted(self.points, key=lambda p: abs(math.log(p[0] / estimate)))[:MIN_RUNS]
        return statistics.median(ratio for _, ratio in near)

    def seconds(self, config: RunConfig) -> float:
        """The calibrated CPU time of one run."""
        estimate = cpu_seconds(config)
        return estimate * self.factor_at(estimate)

    def describe(self) -> str:
        spread = sorted({round(self.factor_at(e), 2) for e, _ in self.points})
        by_length = (f", from x{spread[0]:.2f} to x{spread[-1]:.2f} by run length (the median of the "
                     f"{MIN_RUNS} runs nearest in estimated length)" if len(spread) > 1 else "")
        return (f"x{self.factor:.2f}: the median measured/estimated time of {self.runs} complete "
                f"runs of {self.scope} on this CPU ({self.cpu}){by_length}")


def calibrated_seconds(config: RunConfig, calibration: Calibration | None) -> float:
    """A run's estimated CPU seconds, calibrated on this CPU when a `calibration` is known."""
    return calibration.seconds(config) if calibration else cpu_seconds(config)


def calibrate(records: Iterable[dict[str, Any]], cpu: str | None,
              experiment: str) -> Calibration | None:
    """The calibration of `experiment`'s estimates on `cpu` from complete run records (run
    directories and the store), one thread per run; None when fewer than `MIN_RUNS` runs of any
    experiment ran on it."""
    points: dict[str, list[tuple[float, float]]] = {}
    for record in records:
        threads = ((record.get("meta", {}).get("versions") or {}).get("cpu") or {}).get("threads")
        if cpu is None or cpu_model(record) != cpu or threads not in (None, 1):
            continue
        if (ratio := measured_ratio(record)) is not None:
            estimate = cpu_seconds(RunConfig.from_dict(record["config"]))
            points.setdefault(record.get("experiment", ""), []).append((estimate, ratio))
    own, every = points.get(experiment, []), [p for ps in points.values() for p in ps]
    chosen, scope = (own, f"`{experiment}`") if len(own) >= MIN_RUNS else (every,
                                                                           "every experiment")
    if len(chosen) < MIN_RUNS:
        return None
    return Calibration(statistics.median(r for _, r in chosen), len(chosen), cpu, scope,
                       tuple(sorted(chosen)))
