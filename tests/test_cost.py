"""The sweep cost model and its calibration on the runs a CPU has finished."""

from __future__ import annotations

import dataclasses

import pytest

from lab import cost, sweep
from lab.experiments import plan


def _record(config, seconds: float, experiment: str = "scaling", cpu: str = "CPU A", threads: int = 1,
            steps: int | None = None, status: str = "complete") -> dict:
    end = f"2026-01-01T00:{int(seconds) // 60:02d}:{int(seconds) % 60:02d}+00:00"
    return {"experiment": experiment, "config": config.to_dict(),
            "summary": {"steps": config.train.steps if steps is None else steps},
            "meta": {"status": status, "started": "2026-01-01T00:00:00+00:00", "ended": end,
                     "versions": {"cpu": {"model": cpu, "threads": threads}}}}


@pytest.fixture
def config():
    return next(c for c in plan("scaling", "quick") if c.size == "100K")


def test_measured_ratio_counts_only_the_steps_trained(config) -> None:
    estimate = cost.cpu_seconds(config)
    full = _record(config, round(estimate))
    assert cost.measured_ratio(full) == pytest.approx(round(estimate) / estimate)
    half = _record(config, round(estimate / 4), steps=config.train.steps // 2)  # stopped early, at half
    assert cost.measured_ratio(half) == pytest.approx(0.5, rel=0.05)
    assert cost.measured_ratio(_record(config, 10, status="failed")) is None
    assert cost.measured_ratio({"config": config.to_dict()}) is None


def test_calibration_is_the_median_on_the_same_cpu_and_falls_back_to_every_experiment(config) -> None:
    estimate = cost.cpu_seconds(config)
    own = [_record(config, round(f * estimate)) for f in (0.2, 0.3, 0.4, 0.5, 0.6)]
    others = [_record(config, round(estimate), cpu="CPU B"), _record(config, round(estimate), threads=2)]
    c = cost.calibrate(own + others, "CPU A", "scaling")
    assert (c.factor, c.runs, c.scope) == (pytest.approx(0.4, rel=0.02), 5, "`scaling`")
    fallback = cost.calibrate(own, "CPU A", "atlas")  # no atlas run: every experiment's
    assert fallback.scope == "every experiment" and fallback.runs == 5
    assert cost.calibrate(own[:4], "CPU A", "scaling") is None  # too few to say
    assert cost.calibrate(own, "CPU C", "scaling") is None and cost.calibrate(own, None, "scaling") is None


def test_cost_line_and_parts_scale_with_the_calibration(config) -> None:
    c = cost.Calibration(0.25, 40, "CPU A", "`scaling`")
    configs = [dataclasses.replace(config, label=f"cell{i}") for i in range(8)]  # 8 cells: up to 8 parts
    total = 8 * cost.cpu_seconds(config) / 60
    assert sweep.cost_line(configs, 2, c).startswith(f"8 runs, about {total * 0.25:.0f} CPU-minutes")
    assert "x0.25: the median measured/estimated time of 40 complete runs" in sweep.cost_line(configs, 2, c)
    assert "not yet calibrated" in sweep.cost_line(configs, 2)
    minutes = total / 2 / 4  # four parts of two cells each by the raw model
    assert sweep.parts_needed(configs, 2, minutes) == 4
    assert sweep.parts_needed(configs, 2, minutes * 0.99) == 8  # 3 parts of 8 equal cells would need 3 in one
    assert sweep.parts_needed(configs, 2, minutes, calibration=c) == 1
    assert sweep.parts_needed([config] * 8, 2, minutes) == 1  # one cell is never split


def test_calibration_reads_the_ratio_of_runs_of_similar_length(config) -> None:
    """Short runs measured at x2 (evaluations and start-up dominate), long ones at x0.3: a planned long
    run is priced at x0.3, not at the pooled median, and the dry run says the ratio depends on length."""
    short = config
    long = dataclasses.replace(config, train=dataclasses.replace(config.train, steps=config.train.steps * 100))
    records = ([_record(short, round(2.0 * cost.cpu_seconds(short))) for _ in range(5)]
               + [_record(long, round(0.3 * cost.cpu_seconds(long)), steps=long.train.steps) for _ in range(6)])
    c = cost.calibrate(records, "CPU A", "scaling")
    assert c.factor == pytest.approx(0.3, rel=0.02)  # the pooled median: the long runs are the majority
    assert c.seconds(long) == pytest.approx(0.3 * cost.cpu_seconds(long), rel=0.02)
    assert c.seconds(short) == pytest.approx(2.0 * cost.cpu_seconds(short), rel=0.02)
    assert "from x0.30 to x2.0" in c.describe() and "by run length" in c.describe()
    assert sweep.cost_line([short, long], 2, c).startswith(
        f"2 runs, about {(c.seconds(short) + c.seconds(long)) / 60:.0f} CPU-minutes")
