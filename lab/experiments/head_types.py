"""Head types: parallel, linear, causal, anticausal and deepseek heads at n = 4, per task,
with the next-token model (n = 1) as the reference. Quick: 300K (5 layers, so n = 4 keeps
one trunk block); paper: 10M (6 layers)."""

from __future__ import annotations

from lab.analysis.registry import Missing, Output, Selection, figure
from lab.config import HEAD_TYPES, RunConfig
from lab.experiments import TASKS, experiment, make_run, seeds

SIZE = {"quick": "300K", "paper": "10M"}
N = 4


@experiment("head_types")
def head_types(preset: str) -> list[RunConfig]:
    """Head types (parallel, linear, causal, anticausal, deepseek) at n = 4 plus n = 1, per task."""
    runs = []
    for task in TASKS:
        for seed in seeds(preset, SIZE[preset]):
            runs.append(make_run("head_types", preset, task, SIZE[preset], 1, seed))
            runs += [make_run("head_types", preset, task, SIZE[preset], N, seed,
                              head_type=t) for t in HEAD_TYPES]
    return runs


# ----- figure (the builder imports lab.analysis.plots when called: a sweep imports this module too)
# -----
MEASURES = (("value", "test primary metric at the validation-selected step, n=4 - n=1", 1.0),
            ("auc", "area under the test learning curve, n=4 - n=1", 1.0))


def paired_by_type(measured):
    """`evidence.paired_effects` of each n = 4 head type against the n = 1 runs of its task, one row
    per (task, head type) and measure; the n = 1 runs are the base of every head type of their
    task."""
    import pandas as pd

    from lab.analysis import evidence
    base = measured[measured["model.n_future"] == 1]
    cells = [pd.concat([base,
                        measured[(measured["model.n_future"] == N) & (measured["model.head_type"] == t)]])
             .assign(row=lambda d, t=t: d["task"] + ": " + t) for t in HEAD_TYPES]
    both = pd.concat(cells, ignore_index=True)
    return {m: evidence.paired_effects(both, ["row"], measure=m) for m, _, _ in MEASURES}


@figure("11_head_types", "Head types at n = 4 against next-token prediction", "head_types",
        "Per task and head type (parallel, linear, causal, anticausal, DeepSeek modules; "
        "parameter-matched, 300K): the paired difference (same seed) of the 4-head model to the "
        "next-token model in the test "
        "primary metric at the step chosen on validation (left) and in the area under its test "
        "learning curve "
        "(right). Bars: 95% t-intervals over seeds; dashed: no difference.")
def head_types_figure(sel: Selection) -> Output:
    from lab.analysis import evidence, plots, prose
    sel.require("head_types")
    measured = evidence.measure_runs(sel.evals())
    effects = {m: t for m, t in paired_by_type(measured).items() if not t.empty}
    if not effects:
        raise Missing("head_types: no task has n=1 and an n=4 head type complete for one seed")
    order = [f"{task}: {t}" for task in TASKS for t in HEAD_TYPES]
    fig = plots.plot_effects(effects, [p for p in MEASURES if p[0] in effects], row="row",
                             order=order,
                             title="Head types (n = 4) against next-token prediction")
    table = effects.get("value")
    base = measured[measured["model.n_future"] == 1].groupby("task")["value"].mean()
    sentences = [f"n=1 reaches {prose.fmt(v)} on {task} (test primary metric, mean over seeds): "
                 "the effects below are measured against that." for task, v in base.items()]
    sentences += [f"{r.row}: {prose.fmt(r.mean)} [{prose.fmt(r.lo)}, {prose.fmt(r.hi)}] ({r.seeds} "
                  f"seeds), {r.verdict}."
                  for r in table.itertuples()] if table is not None else []
    tables = [(label, prose.readable(effects[m])) for m, label, _ in MEASURES if m in effects]
    return Output(fig, tables, sentences, sel)
