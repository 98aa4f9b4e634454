"""Heads: n in {1, 2, 3, 4, 6, 8}, per task, at a setting where next-token training learns the task.

Quick: 1M with the heads on a full-depth trunk (`model.match_params=false`: head 1 is as deep as
the n=1 model's, each extra head adds a block), each task's quick schedule (path-star: the 750
steps of the `pathstar` experiment, where next-token training learns the edge lookup), so that
what n does to a capability that forms can be seen. (The earlier quick preset, a parameter-matched
9-layer 250K shape, learned nothing at any n: LOG 2026-11-28.) Paper: 30M (10 layers, Table
S14) with parameter matching, which needs more layers than heads (n = 8 needs 9).
"""

from __future__ import annotations

from lab.analysis.claim import PAPER, PAPER_CLAIMS, PEERS, Claim, n_future
from lab.analysis.registry import Output, Selection, figure
from lab.config import RunConfig
from lab.experiments import TASKS, experiment, make_run, seeds

HEADS = (1, 2, 3, 4, 6, 8)
QUICK_SETTINGS = ("model.match_params=false",)
QUICK_TASK_SETTINGS = {"graph": ("train.steps=750", "train.eval_every=250",
                                 "train.checkpoint_every=250")}


# ----- claims: the rows of figures/CLAIMS.md these runs test (`lab.analysis.claims`) -----
CLAIMS = (
    Claim("huang-mtp-deep", "Huang et al. 2026", "multi-token prediction beats next-token "
          "training on path-star G(2,5,50) with head 1 as deep as at n=1 (2 heads, exact path)",
          "heads", n_future(2), n_future(1), {"task": "graph"}, family=PEERS),
    Claim("huang-mtp-horizon", "Huang et al. 2026", "multi-token prediction whose horizon covers "
          "the whole path (6 heads, path length 5) beats next-token training on path-star "
          "G(2,5,50), head 1 as deep as at n=1", "heads", n_future(6), n_future(1),
          {"task": "graph"}, family=PEERS),
    Claim("fig7-deep", f"{PAPER}, Fig. 7 (head 1 as deep as at n=1)", "2-token prediction forms "
          "induction better than next-token at 1M with heads on a full-depth trunk (tokens to "
          "formation)", "heads", n_future(2), n_future(1), {"task": "induction"},
          measure="formation_tokens", expected_sign=-1, family=PAPER_CLAIMS),
)


@experiment("heads", claims=CLAIMS)
def heads(preset: str) -> list[RunConfig]:
    """Heads n in {1, 2, 3, 4, 6, 8} per task, where n=1 learns it (quick: 1M, heads on a full-depth trunk)."""
    size = "1M" if preset == "quick" else "30M"
    def settings(task: str) -> tuple[str, ...]:
        return (*QUICK_SETTINGS, *QUICK_TASK_SETTINGS.get(task, ())) if preset == "quick" else ()
    return [make_run("heads", preset, task, size, n, seed, overrides=settings(task))
            for task in TASKS for n in HEADS for seed in seeds(preset, size)]


# ----- figures (builders import lab.analysis.plots when called: a sweep imports this module too)
# -----
@figure("3_heads", "Task metric, graded answer NLL and tokens to formation vs number of heads",
        "heads",
        "Per task (columns) against the number of heads n (quick: 1M, heads on a full-depth "
        "trunk, so head 1 is equally deep at every n): the primary metric and the graded answer "
        "NLL (test, at the step chosen on validation), and the tokens until the validation "
        "metric first crosses the formation threshold (a run that never crosses it counts at "
        "its budget; labels: the share of seeds that formed). Line: mean over seeds; bars: 95% "
        "t-intervals (of the accuracies: cut to [0, 1]). RESULTS.md adds each n's paired "
        "difference to n=1 with its CI.")
def metric_vs_heads(sel: Selection) -> Output:
    import pandas as pd

    from lab.analysis import evidence, plots, prose
    sel.require("heads")
    evals = sel.evals()
    by = ["task", "model.n_future"]
    primary = evidence.measure_runs(evals)
    graded = pd.concat([evidence.measure_runs(part, evidence.graded_metric(task))
                        for task, part in evals.groupby("task")
                        if f"eval/{evidence.graded_metric(task)}" in part], ignore_index=True)
    formation = plots.summarise(primary.assign(M=primary["formation_tokens"] * 1e-6), by,
                                "M").merge(
        primary.groupby(by)["formed"].mean().reset_index(), on=by)
    bounds = {plots.metric_bounds(evidence.primary_metric(t)) for t in primary["task"].unique()}
    rows = [(plots.summarise(primary, by, "value", bounds.pop() if len(bounds) == 1 else None),
             lambda task: "test " + plots.metric_name(evidence.primary_metric(task)))]
    if not graded.empty:
        rows.append((plots.summarise(graded, by, "value"),
                     lambda task: "test " + plots.metric_name(evidence.graded_metric(task))))
    rows.append((formation,
                 lambda task: f"M tokens to formation (>= {evidence.FORMATION_THRESHOLD[task]:g})"))
    tables = [("primary metric (test, validation-selected step)", prose.readable(rows[0][0])),
              ("tokens to formation (M; censored at the budget; formed = share of seeds)",
               prose.readable(formation))]
    sentences = []
    for measured, measure, what in ((primary, "value", "primary metric"),
                                    (primary, "formation_tokens", "tokens to formation"),
                                    (graded, "value", "graded answer NLL (nats; lower is better)")):
        effects = evidence.paired_effects(measured, ["task"],
                                          measure=measure) if len(measured) else pd.DataFrame()
        if effects.empty:
            continue
        tables.append((f"{what}: n minus n=1, paired by seed", prose.readable(effects)))
        for task, part in effects.groupby("task"):
            sentences.append(f"{task}, {what}, n minus n=1 (95% t CI): " + "; ".join(
                f"n={int(r['model.n_future'])} " + ("formed in neither arm" if r["verdict"].startswith("neither")
                                                    else f"{r['mean']:+.3g} [{r['lo']:+.3g}, "
                                                         f"{r['hi']:+.3g}]")
                for _, r in part.iterrows()) + ".")
    return Output(plots.plot_heads_grid(rows, title="Task measures vs heads"), tables, sentences,
                  sel)


@figure("6_head_accuracy", "Per-head accuracy vs head index", "heads",
        "Teacher-forced accuracy of head i (which predicts token t+i) against i, for each head "
        "count n, per task: how far ahead the heads see. Bars: 95% t-intervals over seeds, cut "
        "to [0, 1].")
def head_accuracy(sel: Selection) -> Output:
    from lab.analysis import plots, prose
    sel.require("heads")
    df = sel.summaries
    table = plots.head_accuracy_table(df)
    sentences = []
    for task, part in table.groupby("task"):
        n = int(part["model.n_future"].max())
        row = part[part["model.n_future"] == n].sort_values("head")
        sentences.append(f"{task}, n={n}: " + ", ".join(f"head {int(h)} {prose.fmt(m)}"
                                                       for h, m in zip(row["head"],
                                                                       row["mean"])) + ".")
    return Output(plots.plot_head_accuracy(df, title="Per-head accuracy"),
                  [("head accuracy", prose.readable(table))], sentences, sel)
