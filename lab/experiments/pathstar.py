"""Path-star (Bachmann & Nagarajan): next-token, MTP, teacherless and reverse training on G(2,5,50).

Four ways to learn the same graphs: `next-token` (teacher forcing, n = 1), `mtp` (4 heads,
teacher forcing), `teacherless` (dummy `$` inputs after `=`, the whole path from one forward)
and `reverse` (the path written goal to source, which next-token prediction learns easily).
Quick: 1M (5 layers, so 4 heads keep one trunk block), 750 steps of fresh graphs; paper: 10M
(their 6 x 384 shape) on a fixed set of 200,000 training graphs, as they trained.
"""

from __future__ import annotations

from lab.config import RunConfig
from lab.experiments import SEEDS, experiment, make_run

SIZE = {"quick": "1M", "paper": "10M"}
VARIANTS = {  # label -> (heads, task variant)
    "next-token": (1, "forward"),
    "mtp": (4, "forward"),
    "teacherless": (1, "teacherless"),
    "reverse": (1, "reverse"),
}


# Quick: 750 steps. A next-token 1M model learns the Clever Hans cheat (teacher-forced positions
# 3-5 right, position 2 at 1/d) by step 500; at the task's 250 quick steps it has learnt only the
# trivial first and last nodes.
QUICK_STEPS, QUICK_EVAL_EVERY = 750, 250


@experiment("pathstar")
def pathstar(preset: str) -> list[RunConfig]:
    """Path-star G(2,5,50): next-token, 4-head MTP, teacherless and reverse training."""
    if preset == "paper":
        settings: tuple[str, ...] = ("task.train_graphs=200000",)
    else:
        settings = (f"train.steps={QUICK_STEPS}", f"train.eval_every={QUICK_EVAL_EVERY}",
                    f"train.checkpoint_every={QUICK_EVAL_EVERY}")
    return [make_run("pathstar", preset, "graph", SIZE[preset], heads, seed,
                     overrides=(f"task.variant={variant}", f"label={label}", *settings))
            for label, (heads, variant) in VARIANTS.items() for seed in SEEDS]
