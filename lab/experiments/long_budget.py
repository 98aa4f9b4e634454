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

Three more cells follow the same budget axis:

- **Fig. S14** (`RICH_RATIOS`): the same induction task with half the training sequences
  induction-rich (`task.induction_rich`, as in `induction_rich`), n = 1 and 2, at 100K;

- **Fig. 8** (`POLY`): polynomial arithmetic (train on 1-2 operations, evaluate 1-4, so 3-4 are
  out of domain) with n = 1, 2, 4 at 100K (30 and 100 tokens/param), 300K and 1M, where next-token
  training learns the task (at 100K and 30 tokens/param in-domain exact match is 0.15, off the
  floor; LOG 2026-12-06);
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
from lab.experiments.induction_rich import RICH

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


RICH_RATIOS = {"quick": {"100K": (30, 100, 300)}, "paper": {"1M": (300, 1000, 3000)}}
POLY = {"quick": {"100K": (30, 100), "300K": (30, 100, 300), "1M": (30,)},
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
    out += [(r * size_value(size),
             [task_run(preset, TASK, (*TASK_KNOBS, f"task.induction_rich={RICH}"), size, n, r, seed,
                       "rich")
              for seed in seeds(preset, size) for n in (1, 2)])
            for size, rs in RICH_RATIOS[key].items() for r in rs]
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
    for size, ratios in RICH_RATIOS[key].items():
        for r in ratios:
            out.append(Claim(f"figS14-long-{size}-tpp{r:g}", f"{PAPER}, Fig. S14 (long budget)",
                             "with induction-rich data, 2-token prediction ends with better "
                             f"induction than next-token ({size}, {r:g} tokens/param; heads on a "
                             "full-depth trunk)", "long_budget", {"model.n_future": 2},
                             {"model.n_future": 1}, {"size": size, "label": f"rich-tpp{r:g}"},
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
            out.append(Claim(f"huang-long-{size}-tpp{r:g}", "Huang et al. 2026 (long budget)",
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
        "one panel per size, and per size with induction-rich training data (Fig. S14: half the "
        "sequences repeat a segment; n = 1 and 2).")
def long_budget_figure(sel: Selection) -> Output:
    from lab.analysis import evidence, plots
    sel.require("long_budget")
    measured = evidence.measure_runs(sel.evals())
    panels = [(f"{size}{suffix}", cell[cell["size"] == size])
              for suffix, cell in (("", _budgeted(measured, TASK)),
                                   (", induction-rich data (Fig. S14)",
                                    _budgeted(measured, TASK, "rich-")))
              for size in sorted(set(cell["size"]), key=size_value)]
    if not panels:
        raise Missing("`long_budget`: no complete induction run")
    fig, axes = plots.new_figure(len(panels), ncols=min(len(panels), 4), sharey=True)
    tables = []
    for ax, (title, cell) in zip(axes, panels):
        table = plots.summarise(cell, ["model.n_future", "ratio"], "value")
        table[["lo", "hi"]] = table[["lo", "hi"]].clip(0.0, 1.0)
        plots.mean_lines(ax, table, "ratio", "model.n_future", label=plots.heads_label, log=True)
        plots.ratio_axis(ax, table["ratio"])
        ax.set_title(title, fontsize=9)
        tables.append((f"{title}: final test second-token accuracy per n and budget", table))
    axes[0].set_ylabel("test second-token accuracy", fontsize=8)
    plots.legend_beside(axes[-1])
    fig.suptitle("Fig. 7 at long budgets (induction)", fontsize=10)
    return Output(fig, tables, [], sel)


# ----- figures 13b and 13c: the learning curves to the end, and Fig. 8 by operation count -----

SECOND_TOKEN = "eval/second_token_acc"


def _budgeted(frame, task: str, prefix: str = ""):
    """Rows of `task`'s unmatched arms with a `ratio` column (tokens per parameter, from the
    label `<prefix>tpp<R>`)."""
    frame = frame[(frame["task"] == task) & frame["label"].fillna("").str.startswith(prefix + "tpp")]
    return frame.assign(ratio=frame["label"].str.removeprefix(prefix + "tpp").astype(float))


def _cells(frame) -> list[tuple[str, float]]:
    """(size, tokens per parameter) of `frame`, smallest size and budget first."""
    return sorted(set(zip(frame["size"], frame["ratio"])), key=lambda c: (size_value(c[0]), c[1]))


def overtaking(curves, metric: str = SECOND_TOKEN):
    """Per (size, budget, n > 1): from which evaluation on n's test curve stays above n = 1's, the
    paired 95% CI (same seed, same step) wholly above 0 there and at every later evaluation (an early
    blip at the floor does not count), or NaN tokens if it is not above at the end; and the paired
    difference at the last evaluation. `curves`: evaluation rows with a `ratio` column."""
    import pandas as pd

    from lab.analysis import stats
    rows = []
    for (size, ratio), cell in curves.groupby(["size", "ratio"], sort=False):
        wide = cell.pivot_table(index=["step", "seed"], columns="model.n_future", values=metric)
        tokens = cell.groupby("step")["tokens"].max()
        for n in [c for c in wide.columns if c != 1]:
            diff = (wide[n] - wide[1]).dropna().groupby(level="step")
            intervals = {step: stats.mean_ci(v) for step, v in diff}
            above = []  # the final run of evaluations with the CI above 0
            for step, (_, lo, _) in sorted(intervals.items(), reverse=True):
                if not lo > 0:
                    break
                above.insert(0, step)
            last = max(intervals)
            mean, lo, hi = intervals[last]
            rows.append({"size": size, "ratio": ratio, "n": int(n),
                         "seeds": int(diff.size().loc[last]),
                         "overtakes_at_tokens": float(tokens[above[0]]) if above else float("nan"),
                         "final_diff": mean, "final_lo": lo, "final_hi": hi})
    return pd.DataFrame(rows)


def _overtaking_sentences(table) -> list[str]:
    out = []
    for row in table.itertuples():
        when = (f"stays above n = 1 from {row.overtakes_at_tokens / 1e6:.3g}M tokens on"
                if row.overtakes_at_tokens == row.overtakes_at_tokens else
                "does not end above n = 1 with a 95% CI above 0")
        out.append(f"{row.size}, {row.ratio:g} tokens/param: n = {row.n} {when}; at the end n = "
                   f"{row.n} - n = 1 is {row.final_diff:+.3f} [{row.final_lo:.3f}, "
                   f"{row.final_hi:.3f}] ({row.seeds} seeds).")
    return out


@figure("13b_long_budget_curves", "Fig. 7 at long budgets: the learning curves to the end",
        "long_budget",
        "Test second-token accuracy on repeated names over training, n = 1, 2 and 4 heads on a "
        "full-depth trunk, one panel per size and budget (tokens per non-embedding parameter), "
        "every evaluation to the end of the finished schedule. Bands: 95% t-intervals over seeds "
        "(cut to [0, 1]). The table says from which evaluation on, if any, n > 1 stays above n = 1 "
        "with the paired 95% CI (same seed, same step) above 0 to the end.")
def long_budget_curves(sel: Selection) -> Output:
    from lab.analysis import plots
    sel.require("long_budget")
    curves = _budgeted(sel.evals(), "induction")
    if curves.empty:
        raise Missing("`long_budget`: no complete induction run")
    cells = _cells(curves)
    fig, axes = plots.new_figure(len(cells), ncols=min(len(cells), 4), sharey=True)
    for ax, (size, ratio) in zip(axes, cells):
        cell = curves[(curves["size"] == size) & (curves["ratio"] == ratio)]
        table = plots.dynamics_table(cell, SECOND_TOKEN)
        for i, (n, line) in enumerate(table.groupby("model.n_future", sort=True)):
            s = plots.style(i)
            x = line["tokens"].to_numpy(float) / 1e6
            ax.plot(x, line["mean"], label=plots.heads_label(n), color=s["color"],
                    linestyle=s["linestyle"], linewidth=1.5)
            ax.fill_between(x, line["lo"].clip(0, 1), line["hi"].clip(0, 1), color=s["color"],
                            alpha=0.2, linewidth=0)
        ax.set_title(f"{size}, {ratio:g} tokens/param", fontsize=9)
        ax.set_xlabel("training tokens (M)", fontsize=8)
    axes[0].set_ylabel("test second-token accuracy", fontsize=8)
    plots.legend_beside(axes[-1])
    fig.suptitle("Fig. 7 at long budgets: learning curves (induction)", fontsize=10)
    table = overtaking(curves)
    return Output(fig, [("when n > 1 overtakes n = 1 for good (paired by seed and step)", table)],
                  _overtaking_sentences(table), sel)


def at_selected(evals):
    """Each run's evaluation row at its validation-selected step (`evidence.select_step`)."""
    import pandas as pd

    from lab.analysis import evidence
    rows = [curve[curve["step"] == evidence.select_step(
                curve, evidence.primary_metric(curve["task"].iloc[0]))].iloc[-1]
            for _, curve in evals.groupby("run_name", sort=True)]
    return pd.DataFrame(rows)


@figure("13c_long_budget_polynomial", "Fig. 8 at long budgets: exact match by operation count",
        "long_budget",
        "Polynomial arithmetic in F7[X]/(X^5) trained on 1-2 operations: test exact match of the "
        "greedy answer by number of operations (3 and 4, shaded, are out of domain) at the "
        "validation-selected step, n = 1, 2 and 4 heads on a full-depth trunk, one panel per size "
        "and budget (tokens per non-embedding parameter). Bars: 95% t-intervals over seeds, cut "
        "to [0, 1].")
def long_budget_polynomial(sel: Selection) -> Output:
    from lab.analysis import plots, prose
    sel.require("long_budget")
    evals = _budgeted(sel.evals(), "polynomial", "fig8-")
    if evals.empty:
        raise Missing("`long_budget`: no complete polynomial (Fig. 8) run")
    runs = at_selected(evals)
    cells = _cells(runs)
    fig, axes = plots.new_figure(len(cells), ncols=min(len(cells), 4), sharey=True)
    tables = []
    for ax, (size, ratio) in zip(axes, cells):
        cell = runs[(runs["size"] == size) & (runs["ratio"] == ratio)]
        table = plots.vs_ops_table(cell)
        plots.mean_lines(ax, table, "ops", "model.n_future", label=plots.heads_label)
        trained = int(cell["task_config.max_ops"].max())
        ax.axvspan(trained + 0.5, table["ops"].max() + 0.5, color="0.85", zorder=0,
                   label="out of domain")
        ax.set_xticks(sorted(table["ops"].unique()))
        ax.set_xlabel("number of operations", fontsize=8)
        ax.set_ylim(-0.03, 1.03)
        ax.set_title(f"{size}, {ratio:g} tokens/param", fontsize=9)
        tables.append((f"{size}, {ratio:g} tokens/param: test exact match per number of "
                       "operations", prose.readable(table)))
    axes[0].set_ylabel("test exact match", fontsize=8)
    plots.legend_beside(axes[-1])
    fig.suptitle("Fig. 8 at long budgets (polynomials)", fontsize=10)
    return Output(fig, tables, [], sel)


CLAIMS = _budget_claims()
experiment("long_budget", claims=CLAIMS)(configs)
