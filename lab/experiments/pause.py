"""Pause tokens (paper App. K, Fig. S15): polynomial arithmetic with 0, 5 or 10 pause tokens
between the question and `=`, at n in {1, 2, 4}. Does MTP use extra "thinking" positions
better? Quick: 300K (5 layers); paper: 30M, the smaller of the paper's two sizes.
"""

from __future__ import annotations

from lab.config import RunConfig
from lab.experiments import SEEDS, experiment, make_run

SIZE = {"quick": "300K", "paper": "30M"}
PAUSES = (0, 5, 10)
HEADS = (1, 2, 4)


@experiment("pause")
def pause(preset: str) -> list[RunConfig]:
    """Polynomial arithmetic with 0, 5 or 10 pause tokens, heads n in {1, 2, 4}."""
    return [make_run("pause", preset, "polynomial", SIZE[preset], heads, seed,
                     overrides=(f"task.pause_tokens={pauses}",))
            for pauses in PAUSES for heads in HEADS for seed in SEEDS]
