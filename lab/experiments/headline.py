"""Headline: the README's first commands, `python -m lab.run induction --heads N --seed S`, as runs.

Exactly the configs those commands train (built from `lab.build` as `lab.run` builds them;
tests/test_headline.py checks they are equal), for n = 1, 2, 4 and 5 seeds. Stored in `results/`, they let
`python -m lab.run induction --heads 4` print what n = 1 reaches at the same settings without
training it (`lab.baseline`), and they say whether the default comparison shows an effect.
The defaults put n heads on an (L-1)-block trunk (`--match-params off`), so head 1 is as deep
as the next-token model's and only the objective (and n-1 added head blocks) differ. Both
presets run the same commands: they are what a user runs, on any device.
"""

from __future__ import annotations

from lab.analysis.claim import PAPER, PAPER_CLAIMS, Claim, n_future
from lab.analysis.registry import Output, Selection, figure
from lab.config import RunConfig
from lab.experiments import CHEAP_SEEDS, experiment

TASK = "induction"
HEADS = (1, 2, 4)


def command(heads: int, seed: int) -> list[str]:
    """The `python -m lab.run` arguments of one headline run."""
    return [TASK, "--heads", str(heads), "--seed", str(seed)]


# ----- claims: the rows of figures/CLAIMS.md these runs test (`lab.analysis.claims`) -----
CLAIMS = (
    Claim("headline-n2", f"{PAPER}, Fig. 7 (head 1 as deep as at n=1)", "at the lab.run defaults "
          "(1M, 600 steps, heads on a full-depth trunk) 2-token prediction forms induction better "
          "than next-token", "headline", n_future(2), n_future(1), family=PAPER_CLAIMS),
    Claim("headline-n4", f"{PAPER}, Fig. 7 (head 1 as deep as at n=1)", "at the lab.run defaults "
          "(1M, 600 steps, heads on a full-depth trunk) 4-token prediction forms induction better "
          "than next-token", "headline", n_future(4), n_future(1), family=PAPER_CLAIMS),
)


@experiment("headline", claims=CLAIMS)
def headline(preset: str) -> list[RunConfig]:
    """The README's first command, `python -m lab.run induction --heads N`, for n = 1, 2, 4 and 5 seeds."""
    from lab.build import COMMAND_MATCH_PARAMS, build_config, match_setting
    return [build_config(TASK, heads, seed=seed, experiment="headline",
                         overrides=[match_setting(COMMAND_MATCH_PARAMS)])
            for heads in HEADS for seed in CHEAP_SEEDS]


# ----- figure (the builder imports lab.analysis.plots when called: a sweep imports this module too)
# -----
METRIC = "best.eval/second_token_acc"


@figure("0_headline", "The first command: induction at the lab.run defaults, n = 1, 2, 4",
        "headline",
        "Second-token accuracy at repeated names (held-out names; test set, at the step each "
        "run chose on its validation set) for `python -m lab.run induction --heads N`: 1M, 600 "
        "steps, heads on a full-depth trunk (head 1 as deep as at n=1). Line: mean over seeds; "
        "bars: 95% t-intervals over seeds, cut to [0, 1].")
def headline_figure(sel: Selection) -> Output:
    from lab.analysis import evidence, plots, prose
    sel.require("headline")
    df = sel.summaries
    table = plots.vs_heads_table(df, METRIC)
    fig = plots.plot_vs_heads(df, METRIC, title="python -m lab.run induction --heads N")
    effects = evidence.paired_effects(evidence.measure_runs(sel.evals()), ["task"])
    sentences = [f"Second-token accuracy, n={int(r['model.n_future'])} minus n=1, paired by seed: "
                 f"{r['mean']:+.3f} [{r['lo']:+.3f}, {r['hi']:+.3f}] (95% t CI, {int(r['seeds'])} "
                 f"seeds): "
                 f"{r['verdict']}."
                 for _, r in effects.iterrows()]
    return Output(fig,
                  [("second-token accuracy (test, validation-selected step)",
                    prose.readable(table)),
                        ("n minus n=1, paired by seed", prose.readable(effects))], sentences, sel)
