"""Heads: n in {1, 2, 3, 4, 6, 8} at one size, per task.

Parameter matching (n heads take n-1 blocks from the trunk) needs more layers than heads,
so n = 8 needs at least 9 layers. The paper preset uses 30M (10 layers, Table S14). The CPU
sizes have 5 layers, so the quick preset uses a deeper, narrower shape of its own:
`250K-L9` = d_model 48, 9 layers, 4 attention heads (12 * 48^2 * 9 = 249K non-embedding
parameters), which keeps matching on for every n.
"""

from __future__ import annotations

from lab.config import RunConfig
from lab.experiments import SEEDS, TASKS, experiment, make_run

HEADS = (1, 2, 3, 4, 6, 8)
DEEP_QUICK = ("model.d_model=48", "model.n_layer=9", "model.n_head=4", "size=250K-L9")


@experiment("heads")
def heads(preset: str) -> list[RunConfig]:
    """Heads n in {1, 2, 3, 4, 6, 8} at one parameter-matched size, per task."""
    size, shape = ("1M", DEEP_QUICK) if preset == "quick" else ("30M", ())
    return [make_run("heads", preset, task, size, n, seed, overrides=shape)
            for task in TASKS for n in HEADS for seed in SEEDS]
