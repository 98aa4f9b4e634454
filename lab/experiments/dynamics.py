"""Learning dynamics: induction with n = 1 and n = 2, evaluated often, so that the task metric
and the induction-head (prefix-matching) score that every evaluation logs can be followed
over training: does MTP make induction heads form earlier? Quick: 1M for 600 steps with an
evaluation every 25; paper: 1M (where the paper's gap is largest) with 50 evaluations.
"""

from __future__ import annotations

from lab.analysis.claim import LAB, Claim, n_future
from lab.analysis.registry import Output, Selection, figure
from lab.config import RunConfig
from lab.experiments import experiment, make_run, schedule, seeds

SIZE = "1M"
HEADS = (1, 2)
QUICK_STEPS, QUICK_EVAL_EVERY = 600, 25


# ----- claims: the rows of figures/CLAIMS.md these runs test (`lab.analysis.claims`) -----
CLAIMS = (
    Claim("lab-dynamics", "mtp-lab, LOG 2026-11-28",
          "2-token prediction forms induction later than next-token at 1M (tokens to formation)",
          "dynamics", n_future(2), n_future(1), measure="formation_tokens", family=LAB),
)


@experiment("dynamics", claims=CLAIMS)
def dynamics(preset: str) -> list[RunConfig]:
    """Induction at n = 1 and 2 with frequent evaluations (metric and induction-head score over training)."""
    if preset == "quick":
        steps, every = QUICK_STEPS, QUICK_EVAL_EVERY
    else:
        steps = schedule("induction", preset).steps
        every = max(1, steps // 50)
    settings = (f"train.steps={steps}", f"train.eval_every={every}",
                f"train.checkpoint_every={every}")
    return [make_run("dynamics", preset, "induction", SIZE, heads, seed, overrides=settings)
            for heads in HEADS for seed in seeds(preset, SIZE)]


# ----- figure (the builder imports lab.analysis.plots when called: a sweep imports this module too)
# -----
SCORE = "interp/prefix_matching_max"


@figure("5_dynamics", "Learning dynamics: induction and induction heads over training", "dynamics",
        "Induction success over training tokens for n=1 and n=2 (left) and the prefix-matching "
        "score of the best attention head (Olsson et al.; mean attention from a token in the "
        "second copy of a repeated random sequence to the token after its first occurrence) "
        "over training (right). Bands: 95% t-intervals over seeds, cut to [0, 1].")
def dynamics_figure(sel: Selection) -> Output:
    from lab.analysis import plots, prose
    fmt = prose.fmt
    sel.require("dynamics")
    evals = sel.evals()
    panels = [("eval/second_token_acc", "second-token accuracy")]
    notes = []
    if SCORE in evals and evals[SCORE].notna().any():
        panels.append((SCORE, "best prefix-matching score"))
    else:
        notes.append("These runs did not log the induction-head score (trained before it was "
                     "added); only the task metric is shown.")
    tables, sentences = [], []
    for metric, label in panels:
        table = plots.dynamics_table(evals, metric)
        tables.append((f"{label} over training", prose.readable(table)))
        last = table.sort_values("step").groupby("model.n_future").tail(1).set_index("model.n_future")["mean"]
        if metric == SCORE:  # starts near uniform attention, not at 0: report the peak per n
            peaks = table.loc[table.groupby("model.n_future")["mean"].idxmax()]
            sentences.append(f"The {label}'s highest mean is " + ", ".join(
                f"{fmt(r['mean'])} for n={int(r['model.n_future'])} (at "
                f"{prose.tokens_text(r['tokens'])}; last {fmt(last[r['model.n_future']])})"
                for _, r in peaks.iterrows()) + ".")
            continue
        reach = prose.first_reaching(table, "model.n_future")
        if reach:
            threshold = next(iter(reach.values()))[1]
            sentences.append(f"{label[0].upper() + label[1:]} first reaches half the highest mean "
                             f"({fmt(threshold)}) at " + ", ".join(f"{prose.tokens_text(t)} for "
                                                                   f"n={n}"
                                                                  for n, (t, _) in reach.items())
                             + "; at the last evaluation it is " + ", ".join(f"{fmt(v)} for n={n}"
                                                                            for n, v in last.items()) + ".")
    fig = plots.plot_dynamics(evals, panels, title="Learning dynamics (induction)")
    return Output(fig, tables, sentences, sel, notes)
