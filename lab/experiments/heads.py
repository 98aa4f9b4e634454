"""Heads: n in {1, 2, 3, 4, 6, 8} at one size, per task.

Parameter matching (n heads take n-1 blocks from the trunk) needs more layers than heads,
so n = 8 needs at least 9 layers. The paper preset uses 30M (10 layers, Table S14). The CPU
sizes have 5 layers, so the quick preset uses a deeper, narrower shape of its own:
`250K-L9` = d_model 48, 9 layers, 4 attention heads (12 * 48^2 * 9 = 249K non-embedding
parameters), which keeps matching on for every n.
"""

from __future__ import annotations

from lab.config import RunConfig
from lab.experiments import TASKS, experiment, make_run, seeds
from lab.figure_registry import Output, Selection, figure

HEADS = (1, 2, 3, 4, 6, 8)
DEEP_QUICK = ("model.d_model=48", "model.n_layer=9", "model.n_head=4", "size=250K-L9")


@experiment("heads")
def heads(preset: str) -> list[RunConfig]:
    """Heads n in {1, 2, 3, 4, 6, 8} at one parameter-matched size, per task."""
    size, shape = ("1M", DEEP_QUICK) if preset == "quick" else ("30M", ())
    size_name = "250K-L9" if preset == "quick" else size
    return [make_run("heads", preset, task, size, n, seed, overrides=shape)
            for task in TASKS for n in HEADS for seed in seeds(preset, size_name)]


# ----- figures (builders import lab.plots when called: a sweep imports this module too) -----
@figure("3_heads", "Task metric vs number of heads", "heads",
        "Each task's primary metric (final evaluation) against the number of heads n at one parameter-matched "
        "size (n heads take n-1 blocks from the trunk).")
def metric_vs_heads(sel: Selection) -> Output:
    from lab import plots
    sel.require("heads")
    df = sel.summaries
    table = plots.vs_heads_table(df)
    sentences = []
    for task, part in table.groupby("task"):
        best = part.loc[part["mean"].idxmax()]
        base = part[part["model.n_future"] == 1]["mean"]
        vs = f"; n=1 scores {plots.fmt(float(base.iloc[0]))}" if len(base) else ""
        sentences.append(f"{task}: the highest mean is {plots.fmt(best['mean'])} at "
                         f"n={int(best['model.n_future'])}{vs}.")
    return Output(plots.plot_vs_heads(df, title="Task metric vs heads"),
                  [("primary metric", plots.readable(table))], sentences, sel)


@figure("6_head_accuracy", "Per-head accuracy vs head index", "heads",
        "Teacher-forced accuracy of head i (which predicts token t+i) against i, for each head count n, per "
        "task: how far ahead the heads see.")
def head_accuracy(sel: Selection) -> Output:
    from lab import plots
    sel.require("heads")
    df = sel.summaries
    table = plots.head_accuracy_table(df)
    sentences = []
    for task, part in table.groupby("task"):
        n = int(part["model.n_future"].max())
        row = part[part["model.n_future"] == n].sort_values("head")
        sentences.append(f"{task}, n={n}: " + ", ".join(f"head {int(h)} {plots.fmt(m)}"
                                                       for h, m in zip(row["head"], row["mean"])) + ".")
    return Output(plots.plot_head_accuracy(df, title="Per-head accuracy"),
                  [("head accuracy", plots.readable(table))], sentences, sel)
