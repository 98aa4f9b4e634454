"""Fig. 7 at long budgets: the induction capability n = 1, 2 and 4 end with, in tokens per parameter.

The lab's atlas found that 2-token prediction forms induction *later* than next-token
prediction, but every atlas run trained for 1-25 tokens per parameter, where Gloeckle et al.'s
small models trained for thousands and Fig. 7 plots what they *end* with. This experiment
trains each arm to a budget stated in tokens per parameter (`train.tokens_per_param`,
`lab/budget.py`: the same tokens for every head count at one size) on a finished cosine
schedule, and reports the final test capability at the validation-selected step, the
learning curve to the end, and when (if ever) n = 2 overtakes n = 1.

Arms (induction, the quick task shape: 64-token stories, 512 evaluation stories per split):

| arm      | heads   | shape                                                             | sizes |
|----------|---------|-------------------------------------------------------------------|-------|
| (base)   | 1, 2, 4 | heads on a full-depth trunk (`model.match_params=false`): head 1 as deep as n = 1 | all |
| matched  | 2, 4    | the paper's setting: parameter matching, equal loss weights       | 100K  |

Budgets (`RATIOS`): 30, 100, 300 and 1000 tokens per parameter at 100K and 300K, 30 at 1M (what
one CPU allows in a 90-minute part); seeds by the lab's rule (`lab.experiments.seeds`: 5 at the
CPU sizes below 1M, else 3).

Two more cells follow the same budget axis:

- **Fig. 8** (`POLY`): polynomial arithmetic (train on 1-2 operations, evaluate 1-4, so 3-4 are
  out of domain) with n = 1, 2, 4 at 300K and 1M, where next-token training learns the task;
- **Huang et al.** (`PATH`): path-star G(2,5,50) on fresh graphs at 300K, next-token against
  n = l = 5 heads, at budgets long past next-token's plateau (no early stopping). Validation uses the full validation
set at every evaluation, so selection compares estimates as precise as the final test.
Each (size, budget) is its own cell (label `tpp<R>`, `matched-tpp<R>`), cheapest first, so
`python -m lab.sweep long_budget --dry-run` prices the plan in parts of whole budgets and
`--part K/N` (or `--only train.tokens_per_param=30`) trains them in order.
"""

from __future__ import annotations

from lab.analysis.claim import PAPER_CLAIMS, PEERS, Claim
from lab.analysis.registry import Missing, Output, Selection, figure
from lab.build import build_config
from lab.config import RunConfig, size_value
from lab.experiments import experiment, seeds

TASK = "induction"
TASK_KNOBS = ("task.seq_len=64", "task.eval_stories=512")
DEPTH_CONTROLLED = "model.match_params=false"
RATIOS = {
    "quick": {"100K": (30, 100, 300, 1000), "300K": (30, 100, 300, 1000), "1M": (30,)},
    "paper": {"1M": (300, 1000, 3000), "3M": (300, 1000), "10M": (100, 300), "30M": (30, 100)},
}
MATCHED_SIZE = {"quick": "100K", "paper": "1M"}
BATCH = {"quick": 32, "paper": 128}


def run(preset: str, size: str, heads: int, ratio: float, seed: int,
        matched: bool = False) -> RunConfig:
    """One arm at one budget: n heads on a full-depth trunk (or parameter-matched), `ratio` tokens
    per parameter of the size's next-token model."""
    overrides = [*TASK_KNOBS, f"train.batch_size={BATCH[preset]}", "train.eval_examples=0",
                 "model.match_params=true" if matched else DEPTH_CONTROLLED]
    config = build_config(TASK, heads=heads, size=size, seed=seed, experiment="long_budget",
                          overrides=overrides, tokens_per_param=ratio)
    # a cell per budget: parts split by budget
    config.label = f"{'matched-' if matched else ''}tpp{ratio:g}"
    return config


def ratio_runs(preset: str, size: str, ratio: float) -> list[RunConfig]:
    """Every arm of one size and budget, on every seed (n = 1 first: the arms are paired by
    seed)."""
    out = []
    for seed in seeds(preset, size):
        out += [run(preset, size, heads, ratio, seed) for heads in (1, 2, 4)]
        if size == MATCHED_SIZE[preset]:
            out += [run(preset, size, heads, ratio, seed, matched=True) for heads in (2, 4)]
    return out


POLY = {"quick": {"300K": (30, 100, 300), "1M": (30,)},
        "paper": {"3M": (300, 1000), "10M": (100, 300)}}
POLY_KNOBS = ("task.max_ops=2", "task.eval_ops=4", "task.eval_size=300")
PATH = {"quick": {"300K": (100, 300)}, "paper": {"10M": (100, 300)}}
PATH_KNOBS = ("task.degree=2", "task.path_len=5", "task.train_graphs=0")


def task_run(preset: str, task: str, knobs: tuple[str, ...], size: str, heads: int, ratio: float,
             seed: int,
             label: str) -> RunConfig:
    """One arm of the Fig. 8 or Huang cells: heads on a full-depth trunk, `ratio` tokens per
    parameter."""
    overrides = [*knobs, f"train.batch_size={BATCH[preset]}", "train.eval_examples=0",
                 DEPTH_CONTROLLED]
    config = build_config(task, heads=heads, size=size, seed=seed, experiment="long_budget",
                          overrides=overrides,
                          tokens_per_param=ratio)
    config.label = f"{label}-tpp{ratio:g}"
    return config


def cells(preset: str) -> list[tuple[float, list[RunConfig]]]:
    """(cost, runs) of every cell: a task, size and budget with all its arms and seeds."""
    key = "paper" if preset == "paper" else "quick"
    out = [(r * size_value(size),
            ratio_runs(preset, size, r)) for size, rs in RATIOS[key].items() for r in rs]
    out += [(r * size_value(size),
             [task_run(preset, "polynomial", POLY_KNOBS, size, n, r, seed, "fig8")
                                    for seed in seeds(preset, size) for n in (1, 2, 4)])
            for size, rs in POLY[key].items() for r in rs]
    out += [(r * size_value(size), [task_run(preset, "graph", PATH_KNOBS, size, n, r, seed, "huang")
                                    for seed in seeds(preset, size) for n in (1, 5)])
            for size, rs in PATH[key].items() for r in rs]
    return out


def configs(preset: str) -> list[RunConfig]:
    """Fig. 7 at long budgets: induction n = 1, 2, 4 to 30-1000 tokens per parameter (final capability)."""
    # cheapest first (a stable sort: ties keep order)
    ordered = sorted(cells(preset), key=lambda cell: cell[0])
    return [config for _, runs in ordered for config in runs]  # cheapest cells first


# ----- claims: the final capability at each budget, arms paired by seed -----

PAPER = "Gloeckle et al. 2024"


def _budget_claims(preset: str = "quick") -> tuple[Claim, ...]:
    """Fig. 7 (n = 2 and 4 against 1, heads on a full-depth trunk; and the paper's matched setting),
    Fig. 8 (in-domain exact match) and Huang et al. (n = l against next-token) at every planned
    budget: the test metric at the validation-selected step, paired by seed."""
    key = "paper" if preset == "paper" else "quick"
    out = []
    for size, ratios in RATIOS[key].items():
        for r in ratios:
            at = f"{size}, {r:g} tokens/param"
            for n in (2, 4):
                out.append(Claim(f"fig7-long-n{n}-{size}-tpp{r:g}",
                                 f"{PAPER}, Fig. 7 (long budget)",
                                 f"{n}-token prediction ends with better induction than next-token "
                                 f"({at}; "
                                 "heads on a full-depth trunk)", "long_budget",
                                 {"model.n_future": n},
                                 {"model.n_future": 1}, {"size": size, "label": f"tpp{r:g}"},
                                 family=PAPER_CLAIMS))
            if size == MATCHED_SIZE[key]:
                out.append(Claim(f"fig7-long-matched-{size}-tpp{r:g}",
                                 f"{PAPER}, Fig. 7 (long budget)",
                                 "2-token prediction ends with better induction than next-token "
                                 f"({at}; the "
                                 "paper's setting: parameter-matched, equal weights)",
                                 "long_budget",
                                 {"model.n_future": 2, "label": f"matched-tpp{r:g}"},
                                 {"model.n_future": 1, "label": f"tpp{r:g}"}, {"size": size},
                                 family=PAPER_CLAIMS))
    for size, ratios in POLY[key].items():
        for r in ratios:
            out.append(Claim(f"fig8-long-{size}-tpp{r:g}", f"{PAPER}, Fig. 8 (long budget)",
                             f"2-token prediction raises in-domain polynomial exact match ({size}, "
                             f"{r:g} "
                             "tokens/param)", "long_budget", {"model.n_future": 2},
                             {"model.n_future": 1},
                             {"size": size, "label": f"fig8-tpp{r:g}"}, family=PAPER_CLAIMS))
    for size, ratios in PATH[key].items():
        for r in ratios:
            out.append(Claim(f"huang-long-{size}-tpp{r:g}", "Huang et al. 2025 (long budget)",
                             "n = l = 5 heads beat next-token on path-star G(2,5,50), fresh "
                             "graphs, long past "
                             f"next-token's plateau ({size}, {r:g} tokens/param)", "long_budget",
                             {"model.n_future": 5}, {"model.n_future": 1},
                             {"size": size, "label": f"huang-tpp{r:g}"}, family=PEERS))
    return tuple(out)


# ----- figure 13: final capability against tokens per parameter -----

@figure("13_long_budget",
        "Fig. 7 at long budgets: final induction accuracy against tokens per parameter",
        "long_budget",
        "Induction (64-token stories), n = 1, 2 and 4 heads on a full-depth trunk (head 1 as deep "
        "as at n = 1), each trained to a budget in tokens per non-embedding parameter of the "
        "size's next-token "
        "model (the same tokens for every n) on a finished cosine schedule. Test second-token "
        "accuracy on "
        "repeated names at the validation-selected step (full 512-story validation set at every "
        "evaluation). "
        "Bars: 95% t-intervals over seeds, cut to [0, 1] (they exclude test-item sampling); "
        "one panel "
        "per size.")
def long_budget_figure(sel: Selection) -> Output:
    from lab.analysis import evidence, plots
    sel.require("long_budget")
    measured = evidence.measure_runs(sel.evals())
    measured = measured[measured["task"] == "induction"]
    measured = measured[~measured["label"].fillna("").str.startswith("matched")]
    if measured.empty:
        raise Missing("`long_budget`: no complete induction run")
    measured = measured.assign(ratio=measured["label"].str.removeprefix("tpp").astype(float))
    sizes = sorted(set(measured["size"]), key=size_value)
    fig, axes = plots.new_figure(len(sizes), sharey=True)
    tables = []
    for ax, size in zip(axes, sizes):
        table = plots.summarise(measured[measured["size"] == size], ["model.n_future", "ratio"],
                                "value")
        table[["lo", "hi"]] = table[["lo", "hi"]].clip(0.0, 1.0)
        plots.mean_lines(ax, table, "ratio", "model.n_future", label=plots.heads_label, log=True)
        plots.ratio_axis(ax, table["ratio"])
        ax.set_title(size, fontsize=9)
        tables.append((f"{size}: final test second-token accuracy per n and budget", table))
    axes[0].set_ylabel("test second-token accuracy", fontsize=8)
    plots.legend_beside(axes[-1])
    fig.suptitle("Fig. 7 at long budgets (induction)", fontsize=10)
    return Output(fig, tables, [], sel)


CLAIMS = _budget_claims()
experiment("long_budget", claims=CLAIMS)(configs)
