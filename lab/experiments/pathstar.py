"""Path-star (Bachmann & Nagarajan): next-token, MTP, teacherless and reverse training on G(2,5,50).

Four ways to learn the same graphs: `next-token` (teacher forcing, n = 1), `mtp` (4 heads,
teacher forcing), `teacherless` (dummy `$` inputs after `=`, the whole path from one forward)
and `reverse` (the path written goal to source, which next-token prediction learns easily).
Quick: 1M (5 layers, so 4 heads keep one trunk block), 750 steps of fresh graphs; paper: 10M
(their 6 x 384 shape) on a fixed set of 200,000 training graphs, as they trained.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from lab.analysis.claim import BN, PEERS, Claim, labelled
from lab.analysis.registry import Output, Selection, figure
from lab.config import RunConfig
from lab.experiments import experiment, make_run, seeds

if TYPE_CHECKING:
    from collections.abc import Sequence

    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


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


# ----- claims: the rows of figures/CLAIMS.md these runs test (`lab.analysis.claims`) -----
CLAIMS = (
    Claim("bn-next-token", f"{BN}", "next-token training of path-star G(2,5,50) picks the arm at "
          "chance: teacher-forced position 2 at 1/d = 0.5", "pathstar", labelled("next-token"),
          metric="tf_pos_acc/2", target=0.5, tolerance=0.1, family=PEERS),
    Claim("bn-reverse", f"{BN}",
          "reverse training solves path-star G(2,5,50) (exact path about 100%)", "pathstar",
          labelled("reverse"), target=1.0, tolerance=0.05, family=PEERS),
    Claim("bn-teacherless", f"{BN}", "teacherless training solves the small graph G(2,5,50)",
          "pathstar", labelled("teacherless"), target=1.0, tolerance=0.1, family=PEERS),
    Claim("huang-mtp", "Huang et al. 2026",
          "multi-token prediction beats next-token training on path-star graphs (exact path)",
          "pathstar", labelled("mtp"), labelled("next-token"), family=PEERS),
)


@experiment("pathstar", claims=CLAIMS)
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


# ----- plots of this experiment (pandas and matplotlib are imported when one is drawn) -----
POS_COLUMN = re.compile(r"^(?:final\.)?eval/pos_acc/(\d+)$")
TF_POS_COLUMN = re.compile(r"^(?:final\.)?eval/tf_pos_acc/(\d+)$")


def _positions(df: pd.DataFrame, variant: str, pattern: re.Pattern) -> pd.DataFrame:
    from lab.analysis import plots
    columns = {c: int(m.group(1)) for c in df.columns if (m := pattern.match(c)) and c.startswith("final.")}
    long = df[[variant, "seed", *columns]].melt(id_vars=[variant, "seed"], var_name="column",
                                                value_name="value")
    long["position"] = long["column"].map(columns)
    return plots.summarise(long, [variant, "position"], "value", plots.UNIT)


def pathstar_tables(df: pd.DataFrame, variant: str = "label") -> tuple[pd.DataFrame, pd.DataFrame,
                                                                       pd.DataFrame]:
    """(exact-path accuracy per variant, greedy accuracy per variant and path position,
    teacher-forced accuracy per variant and position; the last is empty if the runs did not log
    it)."""
    from lab.analysis import plots
    exact = plots.summarise(df, [variant], "final.eval/exact_path_acc")
    return exact, _positions(df, variant, POS_COLUMN), _positions(df, variant, TF_POS_COLUMN)


GRAPH_COLUMNS = ("task_config.degree", "task_config.path_len", "task_config.num_nodes")


def pathstar_graphs(df: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """The runs per graph, as ("G(d,l,N)", rows), smallest degree first and, within one degree, the
    longest path first (the main G(2,5,50) before its G(2,3,50) probe); one unnamed group when the
    rows do not say their graph."""
    if not all(c in df for c in GRAPH_COLUMNS) or df[list(GRAPH_COLUMNS)].isna().any().any():
        return [("", df)]
    groups = sorted(df.groupby(list(GRAPH_COLUMNS)), key=lambda g: (g[0][0], -g[0][1], g[0][2]))
    return [(f"G({int(d)},{int(k)},{int(n)})", part) for (d, k, n), part in groups]


def plot_pathstar(df: pd.DataFrame, variant: str = "label", order: Sequence[str] | None = None,
                  title: str = "") -> Figure:
    """One row of panels per graph (`pathstar_graphs`), titled with it when there are several. Left:
    exact-path accuracy per training variant (bars: mean; dots: seeds; whiskers: 95% CI over seeds,
    cut to [0, 1]; dashed: 1/d, a random choice of arm). Middle: accuracy of each position of the
    greedily decoded path. Right (when logged): the same with the true path as input (teacher
    forcing), where the Clever Hans cheat shows as later positions right and position 2 at 1/d."""
    from lab.analysis import plots
    graphs = pathstar_graphs(df)
    ncols = 3 if len(pathstar_tables(df, variant)[2]) else 2
    fig, axes = plots.new_figure(ncols * len(graphs), ncols=ncols, width=4.0 * ncols)
    for row, (name, part) in enumerate(graphs):
        _pathstar_row(axes[row * ncols:(row + 1) * ncols], part, variant, order,
                      name if len(graphs) > 1 else "")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def _pathstar_row(axes: list[Axes], df: pd.DataFrame, variant: str, order: Sequence[str] | None,
                  graph: str) -> None:
    """The panels of `plot_pathstar` for the runs of one graph."""
    import numpy as np

    from lab.analysis import plots
    exact, per_pos, forced = pathstar_tables(df, variant)
    names = [v for v in (order or []) if v in set(exact[variant])]
    names += sorted(v for v in exact[variant] if v not in names)
    left, *rights = axes
    exact = exact.set_index(variant).loc[names]
    xs = np.arange(len(names))
    left.bar(xs, exact["mean"], color=[plots.style(i)["color"] for i in range(len(names))],
             alpha=0.85)
    left.vlines(xs, exact["lo"].clip(0, 1), exact["hi"].clip(0, 1), colors="black", gid="spread")
    seeds = df.dropna(subset=["final.eval/exact_path_acc"])
    left.scatter(seeds[variant].map({v: i for i, v in enumerate(names)}),
                 seeds["final.eval/exact_path_acc"],
                 # the seeds: an outcome that is all or nothing
                 s=12, color="black", zorder=3, gid="seeds")
    many = len(names) > 4  # slanted names would run into each other
    left.set_xticks(xs, names, rotation=90 if many else 20,
                    ha="center" if many else "right", fontsize=7)
    left.set_ylabel("exact-path accuracy")
    left.set_ylim(0, 1.05)
    if graph:
        left.set_title(graph, fontsize=9)
    degrees = df["task_config.degree"].dropna().unique() if "task_config.degree" in df else []
    if len(degrees) == 1:
        left.axhline(1.0 / degrees[0], color="0.3", linestyle="--", linewidth=1,
                     gid=plots.REFERENCE,
                     label=f"1/d = 1/{int(degrees[0])}")
        plots.legend_beside(left)
    rank = {v: i for i, v in enumerate(names)}
    panels = [(per_pos, "accuracy, greedy decoding"),
              (forced, "accuracy, teacher-forced")][:len(rights)]
    for ax, (table, ylabel) in zip(rights, panels):
        if table.empty:
            ax.set_visible(False)
            continue
        plots.mean_lines(ax, table.assign(rank=table[variant].map(rank)), "position", "rank",
                         label=lambda r: names[r])
        ax.set_xlabel("position in the path (1 = first node)")
        ax.set_ylabel(ylabel)
        ax.set_ylim(-0.03, 1.05)
        ax.set_xticks(sorted(table["position"].unique()))
        plots.legend_beside(ax)


# ----- figure (the builder imports lab.analysis.plots when called: a sweep imports this module too)
# -----
ORDER = ("next-token", "mtp", "teacherless", "reverse")


@figure("4_pathstar", "Path-star: next-token, MTP, teacherless and reverse training", "pathstar",
        "Left: exact-path accuracy on G(2,5,50) per training variant (dashed: 1/d, a random "
        "choice of arm). Middle: accuracy at each position of the greedily decoded path. Right: "
        "the same with the true path as input (teacher forcing). Position 2 is the first real "
        "decision; with the true previous node as input, every later node follows from the edge "
        "list (the Clever Hans cheat). Variants: `next-token` (n = 1), `mtp` (4 heads), "
        "`teacherless` (dummy inputs after `=`, the whole path from one forward pass) and "
        "`reverse` (the path written goal to source). Bars: 95% t-intervals over seeds, cut to "
        "[0, 1].")
def pathstar_figure(sel: Selection) -> Output:
    return pathstar_output(sel, "Path-star G(2,5,50)", ORDER)


def pathstar_output(sel: Selection, title: str, order: tuple[str, ...] | None = None) -> Output:
    """Exact-path and per-position accuracy per training variant (`label`): figure, tables,
    sentences."""
    from lab.analysis import prose
    sel.require("path-star")
    df = sel.summaries
    exact, per_pos, forced = pathstar_tables(df)
    sentences = ["Exact-path accuracy (means over seeds): "
                 + ", ".join(f"{v} {prose.fmt(m)}" for v, m in exact.set_index("label")["mean"].items()) + "."]
    for table, how in ((per_pos, "greedy decoding"), (forced, "teacher forcing")):
        lows = []
        for variant, part in table.groupby("label"):
            low = part.loc[part["mean"].idxmin()]
            lows.append(f"{variant} at position {int(low['position'])} ({prose.fmt(low['mean'])})")
        if lows:
            sentences.append(f"Least accurate position with {how}: " + ", ".join(lows) + ".")
    fig = plot_pathstar(df, order=order, title=title)
    tables = [("exact-path accuracy", prose.readable(exact)),
              ("accuracy per path position, greedy decoding", prose.readable(per_pos))]
    if len(forced):
        tables.append(("accuracy per path position, teacher-forced", prose.readable(forced)))
    return Output(fig, tables, sentences, sel)
