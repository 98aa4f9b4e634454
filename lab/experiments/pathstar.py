"""Path-star (Bachmann & Nagarajan): next-token, MTP, teacherless and reverse training on G(2,5,50).

Four ways to learn the same graphs: `next-token` (teacher forcing, n = 1), `mtp` (4 heads,
teacher forcing), `teacherless` (dummy `$` inputs after `=`, the whole path from one forward)
and `reverse` (the path written goal to source, which next-token prediction learns easily).
Quick: 1M (5 layers, so 4 heads keep one trunk block), 750 steps of fresh graphs; paper: 10M
(their 6 x 384 shape) on a fixed set of 200,000 training graphs, as they trained.
"""

from __future__ import annotations

from lab.config import RunConfig
from lab.experiments import experiment, make_run, seeds
from lab.figure_registry import Output, Selection, figure

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
            for label, (heads, variant) in VARIANTS.items() for seed in seeds(preset, SIZE[preset])]


# ----- figure (the builder imports lab.plots when called: a sweep imports this module too) -----
ORDER = ("next-token", "mtp", "teacherless", "reverse")


@figure("4_pathstar", "Path-star: next-token, MTP, teacherless and reverse training", "pathstar",
        "Left: exact-path accuracy on G(2,5,50) per training variant (dashed: 1/d, a random choice of arm). "
        "Middle: accuracy at each position of the greedily decoded path. Right: the same with the true path as "
        "input (teacher forcing). Position 2 is the first real decision; with the true previous node as input, "
        "every later node follows from the edge list (the Clever Hans cheat).")
def pathstar_figure(sel: Selection) -> Output:
    return pathstar_output(sel, "Path-star G(2,5,50)", ORDER)


def pathstar_output(sel: Selection, title: str, order: tuple[str, ...] | None = None) -> Output:
    """Exact-path and per-position accuracy per training variant (`label`): figure, tables, sentences."""
    from lab import plots
    sel.require("path-star")
    df = sel.summaries
    exact, per_pos, forced = plots.pathstar_tables(df)
    sentences = ["Exact-path accuracy (means over seeds): "
                 + ", ".join(f"{v} {plots.fmt(m)}" for v, m in exact.set_index("label")["mean"].items()) + "."]
    for table, how in ((per_pos, "greedy decoding"), (forced, "teacher forcing")):
        lows = []
        for variant, part in table.groupby("label"):
            low = part.loc[part["mean"].idxmin()]
            lows.append(f"{variant} at position {int(low['position'])} ({plots.fmt(low['mean'])})")
        if lows:
            sentences.append(f"Least accurate position with {how}: " + ", ".join(lows) + ".")
    fig = plots.plot_pathstar(df, order=order, title=title)
    tables = [("exact-path accuracy", plots.readable(exact)),
              ("accuracy per path position, greedy decoding", plots.readable(per_pos))]
    if len(forced):
        tables.append(("accuracy per path position, teacher-forced", plots.readable(forced)))
    return Output(fig, tables, sentences, sel)
