"""Plotting functions: a DataFrame of runs in, a matplotlib Figure out.

Every function here is pure: it reads only its arguments (DataFrames as `lab.runs.load_runs`
and `load_summaries` return them, with config fields as columns such as `model.n_future`,
`size`, `seed`, `label`), writes no file and touches no global state (figures are built
with `matplotlib.figure.Figure`, not pyplot). Each figure shows the mean over seeds as a
line with markers and the 95% confidence interval of that mean (Student t over seeds; no bar
below 2 seeds) as a vertical bar, cut to [0, 1] for a bounded measure such as an accuracy
(`metric_bounds`). Lines differ in colour, marker and dash, so they stay apart in grey print.

For each figure there is a `*_table` function returning the numbers the figure plots (one
row per point: the grouping columns, `mean`, `lo`, `hi`, `min`, `max`, `seeds`); `lab.figures` writes
them to RESULTS.md, so the text and the picture always show the same numbers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from lab.analysis import stats
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


# ----- finishing a figure as a reader sees it -----
def natural_key(value: Any) -> tuple:
    """Sort key of a legend entry or facet: numbers by value, size names by size (100K < 1M < 3M),
    then text."""
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return (0, float(value), "")
    if isinstance(value, str) and re.fullmatch(r"\d+(\.\d+)?[KMB]", value):
        return (0, size_key(value), "")
    return (1, 0.0, str(value))


def legend_labels(fig: Figure) -> list[tuple[Axes, list[str]]]:
    """The legends of a figure, in panel order, with their entries."""
    return [(ax, [t.get_text() for t in ax.get_legend().get_texts()]) for ax in fig.axes
            if ax.get_visible() and ax.get_legend() is not None]


def legends_once(fig: Figure) -> None:
    """Remove every legend whose entries another legend of the figure already shows (the same lines
    are styled alike in every panel), keeping the last of identical ones (the panel furthest
    right)."""
    legends = legend_labels(fig)
    for i, (ax, labels) in enumerate(legends):
        kept = [set(other) for j, (o_ax, other) in enumerate(legends)
                if j != i and o_ax.get_legend() is not None]
        later = [set(other) for _, other in legends[i + 1:]]
        if any(set(labels) < other for other in kept) or set(labels) in later:
            ax.get_legend().remove()


def wrap_axis_labels(fig: Figure) -> None:
    """Break an axis label that is longer than its panel's side onto two or more lines."""
    import textwrap
    fig.draw_without_rendering()
    renderer = fig._get_renderer()
    for ax in fig.axes:
        box = ax.get_window_extent(renderer)
        for label, room in ((ax.xaxis.label, box.width), (ax.yaxis.label, box.height)):
            text = label.get_text()
            extent = label.get_window_extent(renderer)
            length = max(extent.width, extent.height)
            if text and "\n" not in text and length > room:
                width = max(8, int(len(text) * room / length))
                label.set_text(textwrap.fill(text, width, break_on_hyphens=False))


def fit_text(fig: Figure, tries: int = 6) -> None:
    """Grow the figure until everything drawn lies inside it (constrained layout then gives the
    panels the room), so no label, tick or legend is cut off at the edge of the image."""
    for _ in range(tries):
        fig.draw_without_rendering()
        box = fig.get_tightbbox(fig._get_renderer())  # inches
        width, height = fig.get_size_inches()
        over_x = max(0.0, -box.x0, box.x1 - width)
        over_y = max(0.0, -box.y0, box.y1 - height)
        if over_x <= 0.005 and over_y <= 0.005:
            return
        fig.set_size_inches(width + 2 * over_x + 0.05 * (over_x > 0.005),
                            height + 2 * over_y + 0.05 * (over_y > 0.005))


def finish(fig: Figure) -> Figure:
    """A figure as a reader sees it: each legend once, axis labels that fit their panel, nothing
    cut off."""
    legends_once(fig)
    wrap_axis_labels(fig)
    fit_text(fig)
    return fig


# ----- aggregation -----
UNIT = (0.0, 1.0)  # the range of an accuracy, a share or a CKA
BOUNDED = (
    (re.compile(r"(^|[/._])(acc|accuracy|exact_match|cka|prefix_matching|copy_attention)"), UNIT),
    (re.compile(r"(^|/)cos(/|$)"), (-1.0, 1.0)),
)


def metric_bounds(metric: str) -> tuple[float, float] | None:
    """The range a metric column cannot leave (accuracies, shares, CKA: [0, 1]; cosines: [-1, 1]),
    else None."""
    return next((bounds for pattern, bounds in BOUNDED if pattern.search(metric)), None)


def clip_interval(lo: float, hi: float, bounds: tuple[float, float] | None) -> tuple[float, float]:
    """A confidence interval cut to the metric's range: a mean of values in [0, 1] lies in
    [0, 1]."""
    if bounds is None:
        return lo, hi
    return float(np.clip(lo, *bounds)), float(np.clip(hi, *bounds))


def summarise(df: pd.DataFrame, by: Sequence[str], value: str,
              bounds: tuple[float, float] | None = None) -> pd.DataFrame:
    """Mean, 95% CI of the mean over seeds (`lo`, `hi`: Student t, `lab.analysis.stats.mean_ci`;
    none below 2 seeds; cut to `bounds`, by default `metric_bounds(value)`), min, max and number of
    seeds of `value` per group of `by` (NaN values dropped)."""
    bounds = bounds or metric_bounds(value)
    data = df[[*by, value]].dropna(subset=[value])
    if data.empty:
        return pd.DataFrame(columns=[*by, "mean", "lo", "hi", "min", "max", "seeds"])
    grouped = data.groupby(list(by), sort=True)[value]
    out = grouped.agg(["mean", "min", "max",
                       "count"]).reset_index().rename(columns={"count": "seeds"})
    ci = grouped.apply(lambda v: clip_interval(*stats.mean_ci(v)[1:], bounds))
    ci = ci.reset_index(drop=True)
    out.insert(len(by) + 1, "lo", [c[0] for c in ci])
    out.insert(len(by) + 2, "hi", [c[1] for c in ci])
    if "size" in by:  # sizes in model-size order, not alphabetical
        out = out.sort_values(list(by),
                              key=lambda col: col.map(size_key) if col.name == "size" else col,
                              kind="stable").reset_index(drop=True)
    return out


def mean_lines(ax: Axes, table: pd.DataFrame, x: str, hue: str, label=str, x_of=None,
               log: bool = False) -> None:
    """One mean line per `hue` value, with 95% CI bars at every point (the bars of different
    lines are nudged sideways so that they do not hide each other)."""
    groups = sorted(table.groupby(hue, sort=True), key=lambda kv: natural_key(kv[0]))
    every_x = np.unique(table[x].map(x_of).to_numpy(float) if x_of else table[x].to_numpy(float))
    if log:
        every_x = np.log10(every_x)
    step = float(np.min(np.diff(every_x))) if len(every_x) > 1 else 1.0
    for i, (key, group) in enumerate(groups):
        xs = group[x].map(x_of).to_numpy(float) if x_of else group[x].to_numpy(float)
        group, xs = group.iloc[np.argsort(xs, kind="stable")], np.sort(xs, kind="stable")
        s = style(i)
        ax.plot(xs, group["mean"].to_numpy(float), label=label(key), markersize=5, linewidth=1.5,
                **s)
        nudge = (i - (len(groups) - 1) / 2) * 0.04 * step
        bar_x = xs * 10**nudge if log else xs + nudge
        ax.vlines(bar_x, group["lo"].to_numpy(float), group["hi"].to_numpy(float),
                  colors=s["color"],
                  linewidth=1.2, alpha=0.7, gid="spread")


def ratio_axis(ax: Axes, ratios, label: str = "tokens per parameter (log scale)") -> None:
    """A log-scaled x axis ticked at exactly the budgets drawn (`ratios`), labelled plainly."""
    from matplotlib.ticker import NullFormatter
    ticks = sorted({float(r) for r in ratios})
    ax.set_xscale("log")
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.xaxis.set_minor_formatter(NullFormatter())
    if len(ticks) == 1:
        ax.set_xlim(ticks[0] / 2, ticks[0] * 2)
    ax.set_xlabel(label, fontsize=8)


def legend_beside(ax: Axes, title: str | None = None, gather: Iterable[Axes] = ()) -> None:
    """The legend beside the panel, outside the axes, so it never covers data; `gather`: panels
    whose entries join it (each label once), for panels that do not all draw the same series."""
    handles, labels = ax.get_legend_handles_labels()
    for other in gather:
        for handle, label in zip(*other.get_legend_handles_labels()):
            if label not in labels:
                handles, labels = [*handles, handle], [*labels, label]
    if labels:
        ax.legend(handles, labels, title=title, fontsize=7, title_fontsize=7, loc="upper left",
                  bbox_to_anchor=(1.02, 1.0),
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
        mean_lines(ax, table, "size", hue, label=heads_label, x_of=order.get, log=numeric)
        if numeric:
            ax.set_xscale("log")
        ax.set_xticks(list(order.values()), list(order.keys()))
        ax.minorticks_off()
        ax.set_xlabel("model size (non-embedding parameters)" if numeric else "model size")
        ax.set_ylabel(ylabel)
        legend_beside(ax)
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


def vs_ops_table(df: pd.DataFrame, facet: str | None = None,
                 hue: str = "model.n_future") -> pd.DataFrame:
    """Mean/min/max exact match per number of operations (and facet, head count)."""
    keep = [c for c in dict.fromkeys([facet, hue, "seed"]) if c]
    table = summarise(ops_long(df, keep), [c for c in (facet, hue, "ops") if c], "value", UNIT)
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
        mean_lines(ax, part, "ops", hue, label=heads_label)
        if max_ops is not None and len(part) and part["ops"].max() > max_ops:
            ax.axvspan(max_ops + 0.5, part["ops"].max() + 0.5, color="0.85", zorder=0,
                       label="out of domain")
        ax.set_xticks(sorted(part["ops"].unique()))
        ax.set_xlabel("number of operations")
        ax.set_ylabel("exact-match accuracy")
        ax.set_ylim(-0.03, 1.03)
        if key is not None:
            ax.set_title(facet_label(key), fontsize=9)
        legend_beside(ax)
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
        legend_beside(ax)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def plot_heads_grid(rows: Sequence[tuple[pd.DataFrame, Callable[[str], str]]],
                    title: str = "") -> Figure:
    """Several measures against the number of heads: one row per measure, one column per task.

    Each row is a `summarise` table over (`task`, `model.n_future`) and a function giving the row's
    y label for a task. Where a table has a `formed` column (the fraction of seeds whose capability
    formed), each point is annotated with it, so a censored tokens-to-formation mean is read as
    such."""
    tasks = sorted(set().union(*(set(table["task"]) for table, _ in rows)))
    fig, axes = new_figure(len(rows) * len(tasks), ncols=len(tasks))
    s = style(0)
    for r, (table, ylabel) in enumerate(rows):
        for c, task in enumerate(tasks):
            ax = axes[r * len(tasks) + c]
            part = table[table["task"] == task].sort_values("model.n_future")
            ax.plot(part["model.n_future"], part["mean"], markersize=5, label="mean over seeds",
                    **s)
            ax.vlines(part["model.n_future"], part["lo"], part["hi"], colors=s["color"],
                      gid="spread",
                      label="95% CI over seeds")
            if "formed" in part:
                for x, y, f in zip(part["model.n_future"], part["mean"], part["formed"]):
                    ax.annotate(f"{f:.0%}", (x, y), textcoords="offset points", xytext=(4, 4),
                                fontsize=6)
            ax.set_xticks(sorted(part["model.n_future"].unique()))
            ax.set_ylabel(ylabel(task), fontsize=8)
            if r == 0:
                ax.set_title(task, fontsize=9)
            if r == len(rows) - 1:
                ax.set_xlabel("number of heads n")
    if axes:
        legend_beside(axes[len(tasks) - 1])
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


# ----- 5. learning dynamics -----
def dynamics_table(runs: pd.DataFrame, metric: str, hue: str = "model.n_future") -> pd.DataFrame:
    """Mean, 95% CI, min and max of `metric` per head count and step (rows of `load_runs`)."""
    table = summarise(runs, [hue, "step"], metric)
    tokens = runs.groupby([hue,
                           "step"])["tokens"].mean().round().astype("int64").rename("tokens").reset_index()
    return table.merge(tokens, on=[hue, "step"], how="left")


def ci_band(values: pd.Series, bounds: tuple[float, float] | None = None) -> tuple[float, float]:
    """The 95% t-interval of a mean over seeds, cut to `bounds`, as seaborn's `errorbar` callable
    (the
    same interval `summarise` puts in the tables)."""
    return clip_interval(*stats.mean_ci(values)[1:], bounds)


def plot_dynamics(runs: pd.DataFrame, panels: Sequence[tuple[str, str]], title: str = "",
                  hue: str = "model.n_future") -> Figure:
    """Each `(column, y label)` over training tokens (millions), one line per head count with its
    95% CI band over seeds (seaborn; evaluation rows of `load_runs`, seeds aligned by step; cut to
    the metric's range, `metric_bounds`)."""
    import seaborn as sns
    fig, axes = new_figure(len(panels))
    keys = sorted(runs[hue].unique())
    data = runs.assign(heads=runs[hue].map(heads_label), mtokens=runs["tokens"] / 1e6)
    order = [heads_label(k) for k in keys]
    for ax, (metric, ylabel) in zip(axes, panels):
        bounds = metric_bounds(metric)
        sns.lineplot(data=data.dropna(subset=[metric]), x="mtokens", y=metric, hue="heads",
                     hue_order=order, style="heads", style_order=order,
                     markers=[style(i)["marker"] for i in range(len(keys))],
                     dashes=[(None, None) if i == 0 else (4, 2 * i) for i in range(len(keys))],
                     palette=list(COLORS[:len(keys)]), errorbar=lambda v, b=bounds: ci_band(v, b),
                     err_style="band", markersize=5, linewidth=1.5, ax=ax)
        ax.set_xlabel("training tokens (M)")
        ax.set_ylabel(ylabel)
        legend_beside(ax)
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
    return summarise(long, ["task", "model.n_future", "head"], "value", UNIT)


def plot_head_accuracy(df: pd.DataFrame, title: str = "") -> Figure:
    """Accuracy of head i (predicting token t+i) against i, one line per head count n, one
    panel per task: how far ahead each head sees."""
    table = head_accuracy_table(df)
    tasks = sorted(table["task"].unique())
    fig, axes = new_figure(max(1, len(tasks)))
    for ax, task in zip(axes, tasks):
        mean_lines(ax, table[table["task"] == task], "head", "model.n_future", label=heads_label)
        heads = sorted(table.loc[table["task"] == task, "head"].unique())
        ax.set_xticks(heads)
        ax.set_xlabel("head i (predicts token t+i)")
        ax.set_ylabel("teacher-forced accuracy")
        ax.set_title(task, fontsize=9)
        legend_beside(ax)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


# ----- 9. paired effects per cell (the regime atlas) -----
def plot_effects(effects: dict[str, pd.DataFrame], panels: Sequence[tuple[str, str, float]],
                 row: str = "label", hue: str = "model.n_future",
                 order: Sequence[str] | None = None,
                 title: str = "", hue_label: Callable[[Any], str] | None = None) -> Figure:
    """A forest plot per measure: one row per cell, the paired mean difference of each arm to the
    base arm with its 95% CI as a horizontal bar, a dashed line at 0 (no effect).

    `effects[measure]` is a `lab.analysis.evidence.paired_effects` table; `panels` gives (measure, x
    label, scale applied to the values); `hue_label` names a `hue` value in the legend (default:
    `n=k - n=1`)."""
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
            ax.plot(part["mean"] * scale, ys, linestyle="none", marker=s["marker"],
                    color=s["color"], markersize=5,
                    label=hue_label(h))
            ax.hlines(ys, part["lo"] * scale, part["hi"] * scale, colors=s["color"], linewidth=1.2,
                      gid="spread")
        ax.axvline(0.0, color="0.4", linestyle="--", linewidth=0.8, gid=REFERENCE)
        ax.set_yticks(range(len(rows)), list(reversed(rows)), fontsize=7)
        ax.set_xlabel(xlabel, fontsize=8)
        legend_beside(ax)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


# ----- variants as lines (finetuning, continued pretraining) -----
def variant_groups(table: pd.DataFrame, variant: str, order: Sequence[str] | None,
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


def variant_lines(ax: Axes, table: pd.DataFrame, x: str, variant: str, names: list[str],
                  members: list[str]) -> None:
    """Lines of `members`, each styled by its place in `names` (the same variant looks the same in
    every panel)."""
    for name in members:
        part = table[table[variant] == name].sort_values(x)
        s = style(names.index(name))
        ax.plot(part[x].to_numpy(float), part["mean"].to_numpy(float), label=name, markersize=4,
                linewidth=1.3, **s)
        ax.vlines(part[x].to_numpy(float), part["lo"].to_numpy(float), part["hi"].to_numpy(float),
                  colors=s["color"], linewidth=1.0, alpha=0.5, gid="spread")
