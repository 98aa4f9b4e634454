"""Pause tokens (paper App. K, Fig. S15): polynomial arithmetic with 0, 5 or 10 pause tokens
between the question and `=`, at n in {1, 2, 4}. Does MTP use extra "thinking" positions
better? Quick: 300K (5 layers); paper: 30M, the smaller of the paper's two sizes.
"""

from __future__ import annotations

from lab.analysis.claim import PAPER, PAPER_CLAIMS, Claim, n_future
from lab.analysis.registry import Output, Selection, figure
from lab.config import RunConfig
from lab.experiments import experiment, make_run, seeds
from lab.experiments.scaling import domain_sentences, max_ops

SIZE = {"quick": "300K", "paper": "30M"}
PAUSES = (0, 5, 10)
HEADS = (1, 2, 4)


# ----- claims: the rows of figures/CLAIMS.md these runs test (`lab.analysis.claims`) -----
CLAIMS = (
    Claim("figS15-pause", f"{PAPER}, Fig. S15/S16",
          "with pause tokens, 2-token prediction still raises polynomial exact match", "pause",
          n_future(2), n_future(1), {"task.pause_tokens": 5}, family=PAPER_CLAIMS),
)


@experiment("pause", claims=CLAIMS)
def pause(preset: str) -> list[RunConfig]:
    """Polynomial arithmetic with 0, 5 or 10 pause tokens, heads n in {1, 2, 4}."""
    return [make_run("pause", preset, "polynomial", SIZE[preset], heads, seed,
                     overrides=(f"task.pause_tokens={pauses}",))
            for pauses in PAUSES for heads in HEADS for seed in seeds(preset, SIZE[preset])]


@figure("2c_polynomial_pause", "Polynomial arithmetic with pause tokens (Figure S15 analogue)",
        "pause",
        "Exact match against the number of operations with 0, 5 or 10 pause tokens between the "
        "question and `=` (one panel each), n in {1, 2, 4}. Bars: 95% t-intervals over seeds, "
        "cut to [0, 1].")
def polynomial_pause(sel: Selection) -> Output:
    from lab.analysis import plots, prose
    sel.require("pause-token")
    df = sel.summaries
    facet = "task_config.pause_tokens"
    table = plots.vs_ops_table(df, facet)
    fig = plots.plot_vs_ops(df, max_ops(df), facet=facet,
                            facet_label=lambda p: f"{int(p)} pause tokens",
                            title="Polynomial arithmetic with pause tokens")
    return Output(fig, [("exact match per number of operations", prose.readable(table))],
                  domain_sentences(df, facet, lambda p: f"{int(p)} pauses"), sel)
