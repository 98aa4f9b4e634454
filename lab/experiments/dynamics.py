"""Learning dynamics: induction with n = 1 and n = 2, evaluated often, so that the task metric
and the induction-head (prefix-matching) score that every evaluation logs can be followed
over training: does MTP make induction heads form earlier? Quick: 1M for 600 steps with an
evaluation every 25; paper: 1M (where the paper's gap is largest) with 50 evaluations.
"""

from __future__ import annotations

from lab.config import RunConfig
from lab.experiments import SEEDS, experiment, make_run, schedule

SIZE = "1M"
HEADS = (1, 2)
QUICK_STEPS, QUICK_EVAL_EVERY = 600, 25


@experiment("dynamics")
def dynamics(preset: str) -> list[RunConfig]:
    """Induction at n = 1 and 2 with frequent evaluations (metric and induction-head score over training)."""
    if preset == "quick":
        steps, every = QUICK_STEPS, QUICK_EVAL_EVERY
    else:
        steps = schedule("induction", preset).steps
        every = max(1, steps // 50)
    settings = (f"train.steps={steps}", f"train.eval_every={every}", f"train.checkpoint_every={every}")
    return [make_run("dynamics", preset, "induction", SIZE, heads, seed, overrides=settings)
            for heads in HEADS for seed in SEEDS]
