"""Scaling: model size x number of heads {1, 2, 4} x seeds, on every task (paper Fig. 7/S14).

Sizes: quick 100K, 300K, 1M (CPU); paper 1M, 3M, 10M, 30M (Table S14). Heads are
parameter-matched (n heads take n-1 blocks from the trunk), which needs n < layers: Table
S14's 3M shape has 4 layers, so at 3M only n = 1 and 2 run (n = 4 would leave no trunk).
"""

from __future__ import annotations

from lab.config import SIZES as SHAPES
from lab.config import RunConfig
from lab.experiments import SEEDS, TASKS, experiment, make_run

SIZES = {"quick": ("100K", "300K", "1M"), "paper": ("1M", "3M", "10M", "30M")}
HEADS = (1, 2, 4)


@experiment("scaling")
def scaling(preset: str) -> list[RunConfig]:
    """Model size x heads {1, 2, 4} x seeds, per task."""
    return [make_run("scaling", preset, task, size, heads, seed)
            for task in TASKS for size in SIZES[preset] for heads in HEADS for seed in SEEDS
            if heads < SHAPES[size][1]]
