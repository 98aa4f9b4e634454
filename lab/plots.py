"""Plotting functions: a DataFrame of runs in, a matplotlib Figure out.

Every function here is pure: it reads only its arguments (DataFrames as `lab.runs.load_runs`
and `load_summaries` return them, with config fields as columns such as `model.n_future`,
`size`, `seed`, `label`), writes no file and touches no global state (figures are built
with `matplotlib.figure.Figure`, not pyplot). Each figure shows the mean over seeds as a
line with markers and the 95% confidence interval of that mean (Student t over seeds; no bar
below 2 seeds) as a vertical bar. Lines differ in colour, marker and dash, so they stay apart in grey print.

For each figure there is a `*_table` function returning the numbers the figure plots (one
row per point: the grouping columns, `mean`, `lo`, `hi`, `min`, `max`, `seeds`); `lab.figures` writes
them to RESULTS.md, so the text and the picture always show the same numbers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from lab import stats
from lab.config import SIZES
from lab.config import size_value as size_key  # sort key of a size name: '300K' -> 3e5

COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#882255",
          "#332288", "#117733", "#AA4499", "#999933", "#44AA99", "#88CCEE", "#661100", "#DDCC77")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
DASHES = ("-", "--", "-.", ":")
PANEL = (3.6, 2.9)  # inches per subplot
REFERENCE = "reference"  # gid of reference lines (chance, ideal), which are not data

NTP_LABEL = {1: "n=1 (next-token)"}
Groups = Sequence[tuple[str, Sequence[str]]]  # panels of variants: (title, variant names)


def style(i: int) -> dict:
    """Colour, marker and dash of the i-th line (distinct in colour and in grey print)."""
    return {"color": COLORS[i % len(COLORS)], "marker": MARKERS[i % len(MARKERS)],
            "linestyle": DASHES[(i // len(COLORS) + i) % len(DASHES)]}


def heads_label(n: int) -> str:
    return NTP_LABEL.get(int(n), f"n={int(n)}")


def new_figure(n_panels: int, ncols: int | None = None, width: float | None = None,
               sharey: bool = False) -> tuple[Figure, list[Axes]]:
    ncols = ncols or n_panels
    nrows = -(-n_panels // ncols)
    w, h = PANEL
    fig = Figure(figsize=(width or w * ncols, h * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=sharey).ravel().tolist()
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    for ax in axes:
        ax.grid(True, alpha=0.3, linewidth=0.5)
    return fig, axes[:n_panels]


# ----- aggregation -----
def summarise(df: pd.DataFrame, by: Sequence[str], value: str) -> pd.DataFrame:
    """Mean, 95% CI of the mean over seeds (`lo`, `hi`: Student t, `lab.stats.mean_ci`; none below
    2 seeds), min, max and number of seeds of `value` per group of `by` (NaN values dropped)."""
    data = df[[*by, value]].dropna(subset=[value])
    if data.empty:
        return pd.DataFrame(columns=[*by, "mean", "lo", "hi", "min", "max", "seeds"])
    grouped = data.groupby(list(by), sort=True)[value]
    out = grouped.agg(["mean", "min", "max", "count"]).reset_index().rename(columns={"count": "seeds"})
    ci = grouped.apply(lambda v: stats.mean_ci(v)[1:]).reset_index(drop=True)
    out.insert(len(by) + 1, "lo", [c[0] for c in ci])
    out.insert(len(by) + 2, "hi", [c[1] for c in ci])
    if "size" in by:  # sizes in model-size order, not alphabetical
        out = out.sort_values(list(by), key=lambda col: col.map(size_key) if col.name == "size" else col,
                              kind="stable").reset_index(drop=True)
    return out


def _lines(ax: Axes, table: pd.DataFrame, x: str, hue: str, label=str, x_of=None, log: bool = False) -> None:
    """One mean line per `hue` value, with 95% CI bars at every point (the bars of different
    lines are nudged sideways so that they do not hide each other)."""
    groups = list(table.groupby(hue, sort=True))
    every_x = np.unique(table[x].map(x_of).to_numpy(float) if x_of else table[x].to_numpy(float))
    if log:
        every_x = np.log10(every_x)
    step = float(np.min(np.diff(every_x))) if len(every_x) > 1 else 1.0
    for i, (key, group) in enumerate(groups):
        xs = group[x].map(x_of).to_numpy(float) if x_of else group[x].to_numpy(float)
        group, xs = group.iloc[np.argsort(xs, kind="stable")], np.sort(xs, kind="stable")
        s = style(i)
        ax.plot(xs, group["mean"].to_numpy(float), label=label(key), markersize=5, linewidth=1.5, **s)
        nudge = (i - (len(groups) - 1) / 2) * 0.04 * step
        bar_x = xs * 10**nudge if log else xs + nudge
        ax.vlines(bar_x, group["lo"].to_numpy(float), group["hi"].to_numpy(float), colors=s["color"],
                  linewidth=1.2, alpha=0.7, gid="spread")


def _legend(ax: Axes, title: str | None = None) -> None:
    """The legend beside the panel, outside the axes, so it never covers data."""
    if ax.get_legend_handles_labels()[1]:
        ax.legend(title=title, fontsize=7, title_fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0),
                  borderaxespad=0.0)


# Axis words for the tasks' metrics (keys without the `eval/` or `val/` prefix).
METRIC_WORDS = {
    "second_token_acc": "second-token accuracy (repeated names)",
    "second_token_nll": "second-token NLL (nats)",
    "exact_match/in_domain": "in-domain exact match",
    "exact_match/out_of_domain": "out-of-domain exact match",
    "teacher_forced_acc": "teacher-forced answer accuracy",
    "answer_nll": "answer NLL (nats)",
    "exact_path_acc": "exact-path accuracy",
    "path_nll": "path NLL (nats)",
    "primary": "primary metric",
}


def metric_name(metric: str) -> str:
    """Words for a metric column: `best.eval/exact_path_acc` -> `exact-path accuracy`."""
    key = re.sub(r"^(final|best)\.", "", metric).removeprefix("eval/").removeprefix("val/")
    return METRIC_WORDS.get(key, key.replace("_", " "))


# ----- 1. induction (and any metric) vs model size -----
def size_order(df: pd.DataFrame) -> dict[str, float]:
    """x position of each size: its mean non-embedding parameter count when the runs report it,
    else its rank among the config presets."""
    sizes = list(dict.fromkeys(df["size"]))
    if "params.non_embedding" in df and df["params.non_embedding"].notna().all():
        means = df.groupby("size")["params.non_embedding"].mean()
        order = {s: float(means[s]) for s in sizes}
    else:
        known = list(SIZES)
        order = {s: float(known.index(s) + 1 if s in known else len(known) + 1 + i) for i, s in enumerate(sizes)}
    return dict(sorted(order.items(), key=lambda item: item[1]))


def vs_size_table(df: pd.DataFrame, metric: str, hue: str = "model.n_future") -> pd.DataFrame:
    """Mean/min/max of `metric` per size and head count (one row per run in `df`)."""
    table = summarise(df, ["size", hue], metric)
    order = size_order(df)
    table["x"] = table["size"].map(order)
    return table.sort_values(["x", hue]).drop(columns="x").reset_index(drop=True)


def plot_vs_size(df: pd.DataFrame, metrics: Sequence[tuple[str, str]], title: str = "",
                 hue: str = "model.n_future") -> Figure:
    """Each `(column, y label)` in `metrics` against model size, one line per head count.

    The x axis is the non-embedding parameter count (log scale) when `params.non_embedding`
    is present, ticks named by the size presets.
    """
    fig, axes = new_figure(len(metrics))
    order = size_order(df)
    numeric = "params.non_embedding" in df and df["params.non_embedding"].notna().all()
    for ax, (metric, ylabel) in zip(axes, metrics):
        table = vs_size_table(df, metric, hue)
        _lines(ax, table, "size", hue, label=heads_label, x_of=order.get, log=numeric)
        if numeric:
            ax.set_xscale("log")
        ax.set_xticks(list(order.values()), list(order.keys()))
        ax.minorticks_off()
        ax.set_xlabel("model size (non-embedding parameters)" if numeric else "model size")
        ax.set_ylabel(ylabel)
        _legend(ax)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


# ----- 2. polynomial arithmetic vs number of operations -----
OPS_COLUMN = re.compile(r"^(?:final\.)?eval/exact_match/ops=(\d+)$")


def ops_long(df: pd.DataFrame, keep: Sequence[str]) -> pd.DataFrame:
    """Melt the `final.eval/exact_match/ops=m` columns into rows with `ops` and `value`."""
    columns = {c: int(m.group(1)) for c in df.columns if (m := OPS_COLUMN.match(c))}
    if not columns:
        return pd.DataFrame(columns=[*keep, "ops", "value"])
    long = df[[*keep, *columns]].melt(id_vars=list(keep), var_name="column", value_name="value")
    long["ops"] = long["column"].map(columns)
    return long.drop(columns="column").dropna(subset=["value"])


def vs_ops_table(df: pd.DataFrame, facet: str | None = None, hue: str = "model.n_future") -> pd.DataFrame:
    """Mean/min/max exact match per number of operations (and facet, head count)."""
    keep = [c for c in dict.fromkeys([facet, hue, "seed"]) if c]
    table = summarise(ops_long(df, keep), [c for c in (facet, hue, "ops") if c], "value")
    return table.reset_index(drop=True)


def plot_vs_ops(df: pd.DataFrame, max_ops: int | None = None, facet: str | None = None,
                facet_label=str, title: str = "", hue: str = "model.n_future") -> Figure:
    """Exact-match accuracy against the number of operations, one line per head count, one
    panel per value of `facet` (e.g. size or pause tokens). Operation counts above `max_ops`
    (the training range) are shaded as out of domain."""
    table = vs_ops_table(df, facet, hue)
    keys = sorted(table[facet].unique(), key=_facet_key) if facet else [None]
    fig, axes = new_figure(max(1, len(keys)))
    for ax, key in zip(axes, keys):
        part = table if key is None else table[table[facet] == key]
        _lines(ax, part, "ops", hue, label=heads_label)
        if max_ops is not None and len(part) and part["ops"].max() > max_ops:
            ax.axvspan(max_ops + 0.5, part["ops"].max() + 0.5, color="0.85", zorder=0, label="out of domain")
        ax.set_xticks(sorted(part["ops"].unique()))
        ax.set_xlabel("number of operations")
        ax.set_ylabel("exact-match accuracy")
        ax.set_ylim(-0.03, 1.03)
        if key is not None:
            ax.set_title(facet_label(key), fontsize=9)
        _legend(ax)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def _facet_key(value):
    if isinstance(value, str) and value in SIZES:
        return (0, list(SIZES).index(value), "")
    if isinstance(value, (int, float, np.integer, np.floating)):
        return (0, float(value), "")
    return (1, 0, str(value))


# ----- 3. task metric vs number of heads -----
def vs_heads_table(df: pd.DataFrame, metric: str = "primary") -> pd.DataFrame:
    return summarise(df, ["task", "model.n_future"], metric)


def plot_vs_heads(df: pd.DataFrame, metric: str = "primary", title: str = "") -> Figure:
    """The task metric against the number of heads at one size, one panel per task.

    The y label is the task's metric name (`primary_metric` when `metric` is `primary`)."""
    table = vs_heads_table(df, metric)
    tasks = sorted(table["task"].unique())
    fig, axes = new_figure(max(1, len(tasks)))
    for ax, task in zip(axes, tasks):
        part = table[table["task"] == task].sort_values("model.n_future")
        s = style(0)
        ax.plot(part["model.n_future"], part["mean"], markersize=5, label="mean over seeds", **s)
        ax.vlines(part["model.n_future"], part["lo"], part["hi"], colors=s["color"], gid="spread",
                  label="95% CI over seeds")
        name = metric
        if metric in ("primary", "best_primary") and "primary_metric" in df:
            names = df.loc[df["task"] == task, "primary_metric"].dropna().unique()
            name = names[0] if len(names) else metric
        ax.set_xticks(sorted(part["model.n_future"].unique()))
        ax.set_xlabel("number of heads n")
        ax.set_ylabel(metric_name(name))
        ax.set_title(task, fontsize=9)
        _legend(ax)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def plot_heads_grid(rows: Sequence[tuple[pd.DataFrame, Callable[[str], str]]], title: str = "") -> Figure:
    """Several measures against the number of heads: one row per measure, one column per task.

    Each row is a `summarise` table over (`task`, `model.n_future`) and a function giving the row's y
    label for a task. Where a table has a `formed` column (the fraction of seeds whose capability
    formed), each point is annotated with it, so a censored tokens-to-formation mean is read as such."""
    tasks = sorted(set().union(*(set(table["task"]) for table, _ in rows)))
    fig, axes = new_figure(len(rows) * len(tasks), ncols=len(tasks))
    s = style(0)
    for r, (table, ylabel) in enumerate(rows):
        for c, task in enumerate(tasks):
            ax = axes[r * len(tasks) + c]
            part = table[table["task"] == task].sort_values("model.n_future")
            ax.plot(part["model.n_future"], part["mean"], markersize=5, label="mean over seeds", **s)
            ax.vlines(part["model.n_future"], part["lo"], part["hi"], colors=s["color"], gid="spread",
                      label="95% CI over seeds")
            if "formed" in part:
                for x, y, f in zip(part["model.n_future"], part["mean"], part["formed"]):
                    ax.annotate(f"{f:.0%}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=6)
            ax.set_xticks(sorted(part["model.n_future"].unique()))
            ax.set_ylabel(ylabel(task), fontsize=8)
            if r == 0:
                ax.set_title(task, fontsize=9)
            if r == len(rows) - 1:
                ax.set_xlabel("number of heads n")
    if axes:
        _legend(axes[len(tasks) - 1])
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


# ----- 4. path-star -----
POS_COLUMN = re.compile(r"^(?:final\.)?eval/pos_acc/(\d+)$")
TF_POS_COLUMN = re.compile(r"^(?:final\.)?eval/tf_pos_acc/(\d+)$")


def _positions(df: pd.DataFrame, variant: str, pattern: re.Pattern) -> pd.DataFrame:
    columns = {c: int(m.group(1)) for c in df.columns if (m := pattern.match(c)) and c.startswith("final.")}
    long = df[[variant, "seed", *columns]].melt(id_vars=[variant, "seed"], var_name="column", value_name="value")
    long["position"] = long["column"].map(columns)
    return summarise(long, [variant, "position"], "value")


def pathstar_tables(df: pd.DataFrame, variant: str = "label") -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(exact-path accuracy per variant, greedy accuracy per variant and path position, teacher-forced
    accuracy per variant and position; the last is empty if the runs did not log it)."""
    exact = summarise(df, [variant], "final.eval/exact_path_acc")
    return exact, _positions(df, variant, POS_COLUMN), _positions(df, variant, TF_POS_COLUMN)


GRAPH_COLUMNS = ("task_config.degree", "task_config.path_len", "task_config.num_nodes")


def pathstar_graphs(df: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """The runs per graph, as ("G(d,l,N)", rows), smallest degree first and, within one degree, the longest
    path first (the main G(2,5,50) before its G(2,3,50) probe); one unnamed group when the rows do not say
    their graph."""
    if not all(c in df for c in GRAPH_COLUMNS) or df[list(GRAPH_COLUMNS)].isna().any().any():
        return [("", df)]
    groups = sorted(df.groupby(list(GRAPH_COLUMNS)), key=lambda g: (g[0][0], -g[0][1], g[0][2]))
    return [(f"G({int(d)},{int(k)},{int(n)})", part) for (d, k, n), part in groups]


def plot_pathstar(df: pd.DataFrame, variant: str = "label", order: Sequence[str] | None = None,
                  title: str = "") -> Figure:
    """One row of panels per graph (`pathstar_graphs`), titled with it when there are several. Left:
    exact-path accuracy per training variant (bars: mean; dots: seeds; whiskers: 95% CI over seeds, cut to
    [0, 1]; dashed: 1/d, a random choice of arm). Middle: accuracy of each position of the greedily decoded
    path. Right (when logged): the same with the true path as input (teacher forcing), where the Clever Hans
    cheat shows as later positions right and position 2 at 1/d."""
    graphs = pathstar_graphs(df)
    ncols = 3 if len(pathstar_tables(df, variant)[2]) else 2
    fig, axes = new_figure(ncols * len(graphs), ncols=ncols, width=4.0 * ncols)
    for row, (name, part) in enumerate(graphs):
        _pathstar_row(axes[row * ncols:(row + 1) * ncols], part, variant, order, name if len(graphs) > 1 else "")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def _pathstar_row(axes: list[Axes], df: pd.DataFrame, variant: str, order: Sequence[str] | None,
                  graph: str) -> None:
    """The panels of `plot_pathstar` for the runs of one graph."""
    exact, per_pos, forced = pathstar_tables(df, variant)
    names = [v for v in (order or []) if v in set(exact[variant])]
    names += sorted(v for v in exact[variant] if v not in names)
    left, *rights = axes
    exact = exact.set_index(variant).loc[names]
    xs = np.arange(len(names))
    left.bar(xs, exact["mean"], color=[style(i)["color"] for i in range(len(names))], alpha=0.85)
    left.vlines(xs, exact["lo"].clip(0, 1), exact["hi"].clip(0, 1), colors="black", gid="spread")
    seeds = df.dropna(subset=["final.eval/exact_path_acc"])
    left.scatter(seeds[variant].map({v: i for i, v in enumerate(names)}), seeds["final.eval/exact_path_acc"],
                 s=12, color="black", zorder=3, gid="seeds")  # the seeds: an outcome that is all or nothing
    left.set_xticks(xs, names, rotation=35 if len(names) > 4 else 20, ha="right", fontsize=7)
    left.set_ylabel("exact-path accuracy")
    left.set_ylim(0, 1.05)
    if graph:
        left.set_title(graph, fontsize=9)
    degrees = df["task_config.degree"].dropna().unique() if "task_config.degree" in df else []
    if len(degrees) == 1:
        left.axhline(1.0 / degrees[0], color="0.3", linestyle="--", linewidth=1, gid=REFERENCE,
                     label=f"1/d = 1/{int(degrees[0])}")
        _legend(left)
    rank = {v: i for i, v in enumerate(names)}
    panels = [(per_pos, "accuracy, greedy decoding"), (forced, "accuracy, teacher-forced")][:len(rights)]
    for ax, (table, ylabel) in zip(rights, panels):
        if table.empty:
            ax.set_visible(False)
            continue
        _lines(ax, table.assign(rank=table[variant].map(rank)), "position", "rank", label=lambda r: names[r])
        ax.set_xlabel("position in the path (1 = first node)")
        ax.set_ylabel(ylabel)
        ax.set_ylim(-0.03, 1.05)
        ax.set_xticks(sorted(table["position"].unique()))
        _legend(ax)


# ----- 5. learning dynamics -----
def dynamics_table(runs: pd.DataFrame, metric: str, hue: str = "model.n_future") -> pd.DataFrame:
    """Mean, 95% CI, min and max of `metric` per head count and step (rows of `load_runs`)."""
    table = summarise(runs, [hue, "step"], metric)
    tokens = runs.groupby([hue, "step"])["tokens"].mean().round().astype("int64").rename("tokens").reset_index()
    return table.merge(tokens, on=[hue, "step"], how="left")


def ci_band(values: pd.Series) -> tuple[float, float]:
    """The 95% t-interval of a mean over seeds, as seaborn's `errorbar` callable (the same
    interval `summarise` puts in the tables)."""
    return stats.mean_ci(values)[1:]


def plot_dynamics(runs: pd.DataFrame, panels: Sequence[tuple[str, str]], title: str = "",
                  hue: str = "model.n_future") -> Figure:
    """Each `(column, y label)` over training tokens, one line per head count with its 95% CI band
    over seeds (seaborn; evaluation rows of `load_runs`, seeds aligned by step)."""
    import seaborn as sns
    fig, axes = new_figure(len(panels))
    keys = sorted(runs[hue].unique())
    data = runs.assign(heads=runs[hue].map(heads_label))
    order = [heads_label(k) for k in keys]
    for ax, (metric, ylabel) in zip(axes, panels):
        sns.lineplot(data=data.dropna(subset=[metric]), x="tokens", y=metric, hue="heads", hue_order=order,
                     style="heads", style_order=order, markers=[style(i)["marker"] for i in range(len(keys))],
                     dashes=[(None, None) if i == 0 else (4, 2 * i) for i in range(len(keys))],
                     palette=list(COLORS[:len(keys)]), errorbar=ci_band, err_style="band", markersize=5,
                     linewidth=1.5, ax=ax)
        ax.set_xlabel("training tokens")
        ax.set_ylabel(ylabel)
        ax.ticklabel_format(axis="x", style="sci", scilimits=(0, 3))
        _legend(ax)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


# ----- 6. per-head accuracy -----
HEAD_COLUMN = re.compile(r"^(?:final\.)?head(\d+)/acc$")


def head_accuracy_table(df: pd.DataFrame) -> pd.DataFrame:
    """Mean/min/max of each head's teacher-forced accuracy per task, head count and head index."""
    columns = {c: int(m.group(1)) for c in df.columns if (m := HEAD_COLUMN.match(c)) and c.startswith("final.")}
    keep = ["task", "model.n_future", "seed"]
    long = df[[*keep, *columns]].melt(id_vars=keep, var_name="column", value_name="value")
    long["head"] = long["column"].map(columns)
    return summarise(long, ["task", "model.n_future", "head"], "value")


def plot_head_accuracy(df: pd.DataFrame, title: str = "") -> Figure:
    """Accuracy of head i (predicting token t+i) against i, one line per head count n, one
    panel per task: how far ahead each head sees."""
    table = head_accuracy_table(df)
    tasks = sorted(table["task"].unique())
    fig, axes = new_figure(max(1, len(tasks)))
    for ax, task in zip(axes, tasks):
        _lines(ax, table[table["task"] == task], "head", "model.n_future", label=heads_label)
        heads = sorted(table.loc[table["task"] == task, "head"].unique())
        ax.set_xticks(heads)
        ax.set_xlabel("head i (predicts token t+i)")
        ax.set_ylabel("teacher-forced accuracy")
        ax.set_title(task, fontsize=9)
        _legend(ax)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


# ----- 7. finetuning -----
def finetune_diff_table(df: pd.DataFrame, metric: str, baseline: str = "ntp", variant: str = "label") -> pd.DataFrame:
    """Per variant: the metric minus the baseline variant's, paired by seed (mean/min/max over seeds)."""
    values = df[[variant, "seed", metric]].dropna()
    base = values[values[variant] == baseline].set_index("seed")[metric]
    paired = values[values[variant] != baseline].copy()
    paired = paired[paired["seed"].isin(base.index)]
    paired["diff"] = paired[metric].to_numpy(float) - base.loc[paired["seed"]].to_numpy(float)
    return summarise(paired, [variant], "diff")


def plot_finetune_bars(df: pd.DataFrame, metric: str, xlabel: str, baseline: str = "ntp",
                       variant: str = "label", order: Sequence[str] | None = None, title: str = "",
                       more: Sequence[tuple[str, str]] = ()) -> Figure:
    """Table S6 analogue: per variant, the difference to the baseline (n'=1) finetuning, paired by
    seed. Bars: mean; whiskers: 95% CI over seeds; the zero line is the baseline. `more` adds
    one panel per `(metric, xlabel)` beside the first (e.g. a graded metric next to exact match),
    with the variants in the same rows."""
    panels = [(metric, xlabel), *more]
    tables = [finetune_diff_table(df, m, baseline, variant) for m, _ in panels]
    names = [v for v in (order or []) if any(v in set(t[variant]) for t in tables)]
    names += [v for t in tables for v in t[variant] if v not in names]
    names = list(dict.fromkeys(names))
    fig, axes = new_figure(len(panels), width=5.5 if len(panels) == 1 else 3.6 * len(panels), sharey=True)
    fig.set_figheight(max(2.5, 0.32 * len(names) + 1.0))
    rows = dict(zip(names, np.arange(len(names))[::-1]))
    for ax, table, (_, label) in zip(axes, tables, panels):
        table = table.set_index(variant).loc[[v for v in names if v in set(table[variant])]]
        ys = [rows[v] for v in table.index]
        colors = [COLORS[0] if m >= 0 else COLORS[1] for m in table["mean"]]
        ax.barh(ys, table["mean"], color=colors, alpha=0.85)
        ax.hlines(ys, table["lo"], table["hi"], colors="black", gid="spread")
        ax.axvline(0.0, color="black", linewidth=0.8, gid=REFERENCE)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
        ax.set_xlabel(label)
    axes[0].set_yticks(list(rows.values()), names)
    axes[0].set_ylabel("finetuning variant")
    if title:
        fig.suptitle(title, fontsize=9)
    return fig


SHOCK_COLUMNS = {  # held-out data the shock is measured on -> (finetuned, pretrained) head-1 loss
    "target": ("head1/loss", "finetune/pretrained_head1_loss"),
    "source": ("finetune/source_head1_loss", "finetune/pretrained_source_head1_loss"),
}


def shock_table(curves: pd.DataFrame, variant: str = "label", on: str = "target") -> pd.DataFrame:
    """Next-token (head 1) loss minus the pretrained model's on the same batches, per variant and
    step, on held-out data of the finetuning (`target`) or the pretraining (`source`) task."""
    current, pretrained = SHOCK_COLUMNS[on]
    data = curves.assign(excess=curves[current] - curves[pretrained])
    return summarise(data, [variant, "step"], "excess")


def _variant_groups(table: pd.DataFrame, variant: str, order: Sequence[str] | None,
                    groups: Groups | None) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """Every variant in display order, and the panels: `(title, variants)` (one panel of all when
    `groups` is None; variants not in any group get a panel of their own)."""
    names = [v for v in (order or []) if v in set(table[variant])]
    names += sorted(v for v in table[variant].unique() if v not in names)
    if not groups:
        return names, [("", names)]
    panels = [(title, [v for v in members if v in names]) for title, members in groups]
    panels = [(title, members) for title, members in panels if members]
    rest = [v for v in names if not any(v in members for _, members in panels)]
    if rest:
        panels.append(("other", rest))
    return names, panels


def _variant_lines(ax: Axes, table: pd.DataFrame, x: str, variant: str, names: list[str], members: list[str]) -> None:
    """Lines of `members`, each styled by its place in `names` (the same variant looks the same in every panel)."""
    for name in members:
        part = table[table[variant] == name].sort_values(x)
        s = style(names.index(name))
        ax.plot(part[x].to_numpy(float), part["mean"].to_numpy(float), label=name, markersize=4, linewidth=1.3, **s)
        ax.vlines(part[x].to_numpy(float), part["lo"].to_numpy(float), part["hi"].to_numpy(float),
                  colors=s["color"], linewidth=1.0, alpha=0.5, gid="spread")


def plot_shock(curves: pd.DataFrame, variant: str = "label", order: Sequence[str] | None = None,
               groups: Groups | None = None, title: str = "", on: str = "target") -> Figure:
    """The next-token loss shock and its recovery: head-1 loss above the pretrained model's
    (on the same held-out batches of the target task) over finetuning steps; step 0 is before
    any update, so its value is the shock of attaching the heads. One panel per group of
    variants (`(title, variants)`), sharing the y axis."""
    table = shock_table(curves, variant, on)
    names, panels = _variant_groups(table, variant, order, groups)
    fig, axes = new_figure(len(panels), sharey=True)
    for ax, (panel_title, members) in zip(axes, panels):
        _variant_lines(ax, table, "step", variant, names, members)
        ax.axhline(0.0, color="black", linewidth=0.8, gid=REFERENCE)
        ax.set_xlabel("finetuning step")
        ax.set_ylabel("head-1 loss - pretrained's (nats)")
        if panel_title:
            ax.set_title(panel_title, fontsize=9)
        _legend(ax)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


CKA_COLUMN = re.compile(r"^cka/(.+)$")


def drift_table(curves: pd.DataFrame, variant: str = "label") -> pd.DataFrame:
    """Linear CKA to the pretrained model per variant, depth and step."""
    columns = [c for c in curves.columns if CKA_COLUMN.match(c)]
    long = curves[[variant, "seed", "step", *columns]].melt(id_vars=[variant, "seed", "step"], var_name="depth",
                                                             value_name="cka")
    long["depth"] = long["depth"].str.removeprefix("cka/")
    return summarise(long, [variant, "depth", "step"], "cka")


def plot_drift(curves: pd.DataFrame, variant: str = "label", order: Sequence[str] | None = None,
               groups: Groups | None = None, title: str = "") -> Figure:
    """Representation drift: linear CKA between the pretrained and the finetuned model's hidden
    states on fixed probe inputs, over finetuning; one row of panels per depth, one column per
    group of variants."""
    table = drift_table(curves, variant)
    depths = sorted(table["depth"].unique(), key=lambda d: (d.startswith("head"), d))
    names, panels = _variant_groups(table, variant, order, groups)
    fig, axes = new_figure(max(1, len(depths) * len(panels)), ncols=len(panels), sharey=True)
    for i, depth in enumerate(depths):
        for j, (panel_title, members) in enumerate(panels):
            ax = axes[i * len(panels) + j]
            _variant_lines(ax, table[table["depth"] == depth], "step", variant, names, members)
            ax.set_title(f"{depth}" + (f", {panel_title}" if panel_title else ""), fontsize=8)
            ax.set_xlabel("finetuning step")
            ax.set_ylabel("linear CKA to pretrained")
            if i == 0:
                _legend(ax)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


# ----- 8. self-speculative decoding -----
def speculative_table(df: pd.DataFrame) -> pd.DataFrame:
    """Rows of speculative.json measurements (`task`, `n_future`, `head_type`, `k`,
    `tokens_per_forward`, `speedup`; one per run and k) summarised per task, heads, head type and k."""
    keys = ["task", "n_future", "head_type", "k"]
    tpf = summarise(df, keys, "tokens_per_forward")
    speed = summarise(df, keys, "speedup")
    return tpf.merge(speed, on=keys, suffixes=("_tokens_per_forward", "_speedup"))


def plot_speculative(df: pd.DataFrame, title: str = "") -> Figure:
    """Tokens per forward pass (top row) and wall-clock speedup over greedy decoding (bottom row)
    against the number k of heads used, one column per task, one line per model (head count and
    head type); dotted: k, the most that k heads can give."""
    table = speculative_table(df)
    table["line"] = "n=" + table["n_future"].astype(int).astype(str) + " " + table["head_type"].astype(str)
    lines = sorted(table["line"].unique(), key=lambda s: (int(s.split()[0][2:]), s))
    tasks = sorted(table["task"].unique())
    fig, axes = new_figure(2 * len(tasks), ncols=len(tasks))
    for row, (name, ylabel) in enumerate((("tokens_per_forward", "tokens per forward pass"),
                                          ("speedup", "speedup over greedy decoding"))):
        for col, task in enumerate(tasks):
            ax = axes[row * len(tasks) + col]
            part = table[table["task"] == task].rename(columns={f"{s}_{name}": s for s in ("mean", "lo", "hi")})
            for line in lines:
                group = part[part["line"] == line].sort_values("k")
                if group.empty:
                    continue
                st = style(lines.index(line))
                ax.plot(group["k"], group["mean"], label=line, markersize=5, **st)
                ax.vlines(group["k"], group["lo"], group["hi"], colors=st["color"], alpha=0.7, gid="spread")
            ks = sorted(part["k"].unique())
            ax.plot(ks, ks, color="0.5", linestyle=":", linewidth=1, gid=REFERENCE, label="k (all accepted)")
            ax.set_xticks(ks)
            ax.set_xlabel("heads used k")
            ax.set_ylabel(ylabel)
            ax.set_title(task, fontsize=9)
            if row == 0:
                _legend(ax)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


# ----- sentences computed from the tables (RESULTS.md states numbers, never reads them off a picture) -----
def fmt(value: float) -> str:
    """A number with three decimals, `n/a` for a missing one."""
    return "n/a" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{value:.3f}"


def gap_sentences(df: pd.DataFrame, x: str, value: str, what: str, x_name=str, hue: str = "model.n_future",
                  base: int = 1) -> list[str]:
    """For each head count n other than `base`: at every x, the mean over seeds of (n - base) in `value`
    (one row per run in `df`), paired by seed, with its 95% Student-t CI (`lab.stats.paired_difference`)."""
    data = df[[x, hue, "seed", value]].dropna()
    if data.empty:
        return []
    per_seed = data.groupby([x, hue, "seed"])[value].mean()
    keys = sorted(data[x].unique(), key=size_key if x == "size" else None)
    out = []
    for n in sorted(set(data[hue]) - {base}):
        parts = []
        for k in keys:
            arm, ref = (per_seed.get((k, m)) for m in (n, base))
            if arm is None or ref is None:
                continue
            effect = stats.paired_difference(arm.to_dict(), ref.to_dict(), method="t")
            if effect.n:
                parts.append(f"{stats.format_effect(effect)} at {x_name(k)}")
        if parts:
            out.append(f"{what}, n={n} minus n={base}, paired by seed (95% t CI): " + "; ".join(parts) + ".")
    return out


def first_reaching(table: pd.DataFrame, hue: str, fraction: float = 0.5) -> dict:
    """Per hue value: the tokens at the first evaluation whose mean reaches `fraction` of the largest
    mean any line reaches, and that threshold."""
    if table.empty:
        return {}
    threshold = fraction * float(table["mean"].max())
    out = {}
    for key, group in table.sort_values("tokens").groupby(hue):
        hit = group[group["mean"] >= threshold]
        out[key] = (float(hit["tokens"].iloc[0]) if len(hit) else float("nan"), threshold)
    return out


def tokens_text(value: float) -> str:
    """`1.23M tokens`, or `never` for NaN."""
    return "never" if np.isnan(value) else f"{value / 1e6:.2f}M tokens"


def readable(table: pd.DataFrame) -> pd.DataFrame:
    """A table with the column names RESULTS.md shows (`n`, `pause tokens`, `variant`)."""
    return table.rename(columns={"model.n_future": "n", "task_config.pause_tokens": "pause tokens",
                                 "label": "variant"})


# ----- 9. paired effects per cell (the regime atlas) -----
def plot_effects(effects: dict[str, pd.DataFrame], panels: Sequence[tuple[str, str, float]],
                 row: str = "label", hue: str = "model.n_future", order: Sequence[str] | None = None,
                 title: str = "", hue_label: Callable[[Any], str] | None = None) -> Figure:
    """A forest plot per measure: one row per cell, the paired mean difference of each arm to the base
    arm with its 95% CI as a horizontal bar, a dashed line at 0 (no effect).

    `effects[measure]` is a `lab.evidence.paired_effects` table; `panels` gives (measure, x label,
    scale applied to the values); `hue_label` names a `hue` value in the legend (default: `n=k - n=1`)."""
    hue_label = hue_label or (lambda h: heads_label(h) + " - n=1")
    rows = [r for r in (order or []) if any(r in set(t[row]) for t in effects.values())]
    rows += sorted({r for t in effects.values() for r in t[row]} - set(rows))
    hues = sorted({h for t in effects.values() for h in t[hue]})
    fig, axes = new_figure(len(panels), width=PANEL[0] * 1.3 * len(panels) + 1.2)
    fig.set_figheight(max(PANEL[1], 0.28 * len(rows) + 1.2))
    y_of = {r: len(rows) - 1 - i for i, r in enumerate(rows)}
    for ax, (measure, xlabel, scale) in zip(axes, panels):
        table = effects[measure]
        for i, h in enumerate(hues):
            part = table[table[hue] == h]
            s = style(i)
            ys = part[row].map(y_of).to_numpy(float) + (i - (len(hues) - 1) / 2) * 0.22
            ax.plot(part["mean"] * scale, ys, linestyle="none", marker=s["marker"], color=s["color"], markersize=5,
                    label=hue_label(h))
            ax.hlines(ys, part["lo"] * scale, part["hi"] * scale, colors=s["color"], linewidth=1.2, gid="spread")
        ax.axvline(0.0, color="0.4", linestyle="--", linewidth=0.8, gid=REFERENCE)
        ax.set_yticks(range(len(rows)), list(reversed(rows)), fontsize=7)
        ax.set_xlabel(xlabel, fontsize=8)
        _legend(ax)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


# ----- 10. continued pretraining: the deficit to next-token continuation over tokens -----
def plot_recovery(table: pd.DataFrame, variant: str = "label", facet: str = "size",
                  order: Sequence[str] | None = None, title: str = "") -> Figure:
    """A `summarise(..., [facet, variant, "step", "tokens"], "deficit")` table as one panel per
    `facet` value (model sizes in size order): each variant's mean deficit over continuation tokens
    with its 95% CI bars, and the zero line (no deficit)."""
    names, _ = _variant_groups(table, variant, order, None)
    facets = sorted(table[facet].unique(), key=size_key) if facet == "size" else sorted(table[facet].unique())
    fig, axes = new_figure(len(facets), sharey=True)
    for ax, value in zip(axes, facets):
        part = table[table[facet] == value]
        _variant_lines(ax, part.assign(mtokens=part["tokens"] / 1e6), "mtokens", variant, names,
                       [n for n in names if n in set(part[variant])])
        ax.axhline(0.0, color="black", linewidth=0.8, gid=REFERENCE)
        ax.set_xlabel("continuation tokens (M)")
        ax.set_ylabel("head-1 loss - ntp's (nats)")
        ax.set_title(str(value), fontsize=9)
        _legend(ax)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def plot_table_s6(by_size: pd.DataFrame, recovery: pd.DataFrame, per_run: pd.DataFrame, variant: str = "label",
                  order: Sequence[str] | None = None, title: str = "") -> Figure:
    """Four panels on the next-token deficit of continued pretraining with extra heads: (a) against
    model size per variant (`summarise(..., [variant, "size"], "deficit")`), (b) over continuation
    tokens per size (`[..."size", "step", "tokens"]`), (c) against the step-0 shock and (d) against
    the mean trunk-gradient cosine, one point per run (`per_run` columns deficit, shock, align_cos)."""
    fig, (a, b, c, d) = new_figure(4, ncols=4)
    if len(by_size):
        _lines(a, by_size, "size", variant, x_of=size_key, log=True)
        sizes = sorted(by_size["size"].unique(), key=size_key)
        a.set_xscale("log")
        a.set_xticks([size_key(z) for z in sizes], sizes)
        a.minorticks_off()
    a.set_xlabel("model size (non-embedding parameters)")
    a.set_ylabel("final head-1 loss - ntp's (nats)")
    if len(recovery):
        _lines(b, recovery.assign(mtokens=recovery["tokens"] / 1e6), "mtokens", "size")
    b.set_xlabel("continuation tokens (M)")
    b.set_ylabel("add4 head-1 loss - ntp's (nats)")
    names, _ = _variant_groups(per_run, variant, order, None)
    for ax, x, xlabel in ((c, "shock", "step-0 shock: head-1 loss - ntp's (nats)"),
                          (d, "align_cos", "mean cos(head k, head 1) trunk gradient")):
        for name in names:
            part = per_run[(per_run[variant] == name) & per_run[x].notna()]
            if len(part):
                s = style(names.index(name))
                ax.plot(part[x], part["deficit"], linestyle="none", marker=s["marker"], color=s["color"],
                        markersize=4, alpha=0.8, label=name)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("final deficit (nats)")
    for ax, letter in zip((a, b, c, d), "abcd"):
        ax.axhline(0.0, color="black", linewidth=0.8, gid=REFERENCE)
        ax.set_title(f"({letter})", fontsize=9, loc="left")
        _legend(ax)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig
