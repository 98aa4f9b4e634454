"""Induction with induction-rich data (paper App. J, Fig. S14): the scaling grid for induction
at n in {1, 2}, with half of the training sequences replaced by filler whose random segment
repeats (the data itself demands induction, as the paper's books mix did).
"""

from __future__ import annotations

from lab.analysis.claim import PAPER, PAPER_CLAIMS, Claim, n_future
from lab.analysis.registry import Output, Selection, figure
from lab.config import SIZES as SHAPES
from lab.config import RunConfig
from lab.experiments import experiment, make_run, seeds
from lab.experiments.scaling import SIZES, induction_output

HEADS = (1, 2)
RICH = 0.5  # fraction of training sequences with a repeated segment


# ----- claims: the rows of figures/CLAIMS.md these runs test (`lab.analysis.claims`) -----
CLAIMS = (
    Claim("figS14", f"{PAPER}, Fig. S14",
          "with induction-rich data, 2-token prediction still helps the smallest model (1M)",
          "induction_rich", n_future(2), n_future(1), {"size": "1M"}, family=PAPER_CLAIMS),
)


@experiment("induction_rich", claims=CLAIMS)
def induction_rich(preset: str) -> list[RunConfig]:
    """Induction with half the training data induction-rich: size x heads {1, 2} x seeds."""
    return [make_run("induction_rich", preset, "induction", size, heads, seed,
                     overrides=(f"task.induction_rich={RICH}",))
            for size in SIZES[preset] for heads in HEADS for seed in seeds(preset,
                                                                           size) if heads < SHAPES[size][1]]


@figure("1b_induction_rich_vs_size",
        "Induction vs model size, induction-rich data (Figure S14 analogue)",
        "induction_rich",
        "As 1a, with half of the training sequences replaced by filler with a repeated random "
        "segment, so the data itself demands induction (the paper's books mix). Bars: 95% "
        "t-intervals over seeds, cut to [0, 1].")
def induction_rich_vs_size(sel: Selection) -> Output:
    return induction_output(sel, "Induction vs size, induction-rich data")
