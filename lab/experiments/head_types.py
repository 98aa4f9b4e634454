"""Head types: parallel, linear, causal, anticausal and deepseek heads at n = 4, per task,
with the next-token model (n = 1) as the reference. Quick: 300K (5 layers, so n = 4 keeps
one trunk block); paper: 10M (6 layers)."""

from __future__ import annotations

from lab.config import HEAD_TYPES, RunConfig
from lab.experiments import TASKS, experiment, make_run, seeds

SIZE = {"quick": "300K", "paper": "10M"}
N = 4


@experiment("head_types")
def head_types(preset: str) -> list[RunConfig]:
    """Head types (parallel, linear, causal, anticausal, deepseek) at n = 4 plus n = 1, per task."""
    runs = []
    for task in TASKS:
        for seed in seeds(preset, SIZE[preset]):
            runs.append(make_run("head_types", preset, task, SIZE[preset], 1, seed))
            runs += [make_run("head_types", preset, task, SIZE[preset], N, seed, head_type=t) for t in HEAD_TYPES]
    return runs
