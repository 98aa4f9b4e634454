"""Self-speculative decoding (paper, Table S2): how head count and head type change the
tokens per forward and the speedup of blockwise parallel decoding, per task.

Runs: n in {1, 2, 4} parallel heads, plus n = 4 causal and deepseek heads, per task and
seed. Quick: 300K (5 layers, so n = 4 keeps one trunk block); paper: 10M (6 layers).

Training is an ordinary sweep; the decoding measurement is a second step that writes
`speculative.json` into every complete run (what figure 8 reads):

    python -m lab.sweep speculative --preset quick
    python -m lab.experiments.speculative --preset quick     # measure(), k = 1..n per run
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab import runs
from lab.analysis.registry import Missing, Output, Selection, figure
from lab.config import RunConfig
from lab.errors import ConfigError
from lab.experiments import TASKS, experiment, make_run, seeds, unmeasured

if TYPE_CHECKING:

    import pandas as pd
    from matplotlib.figure import Figure


SIZE = {"quick": "300K", "paper": "10M"}
VARIANTS = (("parallel", 1), ("parallel", 2), ("parallel", 4), ("causal", 4), ("deepseek", 4))
RESULT = "speculative.json"


def speculative(preset: str) -> list[RunConfig]:
    """Heads n in {1, 2, 4} (parallel) and n = 4 causal and deepseek heads, per task, for decoding speed."""
    return [make_run("speculative", preset, task, SIZE[preset], n, seed, head_type=kind)
            for task in TASKS for kind, n in VARIANTS for seed in seeds(preset, SIZE[preset])]


def measure(preset: str = "quick", root: str | Path = "runs", device: str = "cpu", batch: int = 8,
            max_new: int = 32, force: bool = False, quiet: bool = False) -> list[dict[str, Any]]:
    """Measure speculative decoding (k = 1..n) on every complete run of the experiment and
    write each run's `speculative.json`; runs that have one already are skipped unless
    `force`. Returns the new measurements. Runs not trained yet are left alone."""
    from lab.decode_bench import format_table, measure_run  # torch only when measuring
    results = []
    for _, run_dir in unmeasured("speculative", preset, root, RESULT, force):
        result = measure_run(run_dir, batch=batch, max_new=max_new, device=device)
        runs.write_json(run_dir / RESULT, result)
        results.append(result)
        if not quiet:
            print(format_table(result), flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.experiments.speculative",
                                     description="Write speculative.json into every complete run "
                                                 "of the `speculative` experiment.",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--preset", default="quick", help="quick or paper")
    parser.add_argument("--runs", default="runs", help="root of the run directories")
    parser.add_argument("--device", default="cpu", help="auto, cpu, cuda or mps")
    parser.add_argument("--batch", type=int, default=8, help="prompts decoded together")
    parser.add_argument("--max-new", type=int, default=32, help="new tokens per prompt")
    parser.add_argument("--force", action="store_true",
                        help="measure runs that have a speculative.json again")
    args = parser.parse_args(argv)
    try:
        done = measure(args.preset, args.runs, args.device, args.batch, args.max_new, args.force)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"measured {len(done)} runs")
    return 0


# ----- plots of this experiment (pandas and matplotlib are imported when one is drawn) -----
def speculative_table(df: pd.DataFrame) -> pd.DataFrame:
    """Rows of speculative.json measurements (`task`, `n_future`, `head_type`, `k`,
    `tokens_per_forward`, `speedup`; one per run and k) summarised per task, heads, head type and
    k."""
    from lab.analysis import plots
    keys = ["task", "n_future", "head_type", "k"]
    tpf = plots.summarise(df, keys, "tokens_per_forward")
    speed = plots.summarise(df, keys, "speedup")
    return tpf.merge(speed, on=keys, suffixes=("_tokens_per_forward", "_speedup"))


def plot_speculative(df: pd.DataFrame, title: str = "") -> Figure:
    """Tokens per forward pass (top row) and wall-clock speedup over greedy decoding (bottom row)
    against the number k of heads used, one column per task, one line per model (head count and
    head type); dotted: k, the most that k heads can give."""
    from lab.analysis import plots
    table = speculative_table(df)
    table["line"] = "n=" + table["n_future"].astype(int).astype(str) + " " + table["head_type"].astype(str)
    lines = sorted(table["line"].unique(), key=lambda s: (int(s.split()[0][2:]), s))
    tasks = sorted(table["task"].unique())
    fig, axes = plots.new_figure(2 * len(tasks), ncols=len(tasks))
    for row, (name, ylabel) in enumerate((("tokens_per_forward", "tokens per forward pass"),
                                          ("speedup", "speedup over greedy decoding"))):
        for col, task in enumerate(tasks):
            ax = axes[row * len(tasks) + col]
            part = table[table["task"] == task].rename(columns={f"{s}_{name}": s for s in ("mean",
                                                                                           "lo",
                                                                                           "hi")})
            for line in lines:
                group = part[part["line"] == line].sort_values("k")
                if group.empty:
                    continue
                st = plots.style(lines.index(line))
                ax.plot(group["k"], group["mean"], label=line, markersize=5, **st)
                ax.vlines(group["k"], group["lo"], group["hi"], colors=st["color"], alpha=0.7,
                          gid="spread")
            ks = sorted(part["k"].unique())
            ax.plot(ks, ks, color="0.5", linestyle=":", linewidth=1, gid=plots.REFERENCE,
                    label="k (all accepted)")
            ax.set_xticks(ks)
            ax.set_xlabel("heads used k")
            ax.set_ylabel(ylabel)
            ax.set_title(task, fontsize=9)
            if row == 0:
                plots.legend_beside(ax)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


# ----- figure (the builder imports lab.analysis.plots when called: a sweep imports this module too)
# -----
def measured_rows(sel: Selection):
    """One row per run and k from each selected run's speculative.json (runs without one are
    skipped)."""
    import pandas as pd
    rows = []
    for run_dir in sel.summaries["run_dir"]:
        result = sel.run_file(run_dir, RESULT)
        if result is None:
            continue
        for row in result.get("rows", []):
            rows.append({"run_dir": run_dir, "task": result["task"], "n_future": result["n_future"],
                         "head_type": result.get("head_type"), "device": result.get("device"),
                         "batch": result.get("batch"), "k": row["k"],
                         "tokens_per_forward": row["tokens_per_forward"],
                         "speedup": row["speedup"]})
    return pd.DataFrame(rows)


@figure("8_speculative", "Self-speculative decoding", "speculative",
        "Greedy blockwise-parallel decoding with the first k heads: tokens produced per forward "
        "pass and wall-clock speedup over greedy decoding with a KV cache (outputs identical), per "
        "task.")
def speculative_figure(sel: Selection) -> Output:
    from lab.analysis import prose
    sel.require("speculative")
    rows = measured_rows(sel)
    if rows.empty:
        raise Missing(f"no {RESULT} in the complete `speculative` runs (measure them with "
                      f"`python -m lab.experiments.speculative --preset {sel.preset}`)")
    table = speculative_table(rows)
    devices = ", ".join(sorted(str(d) for d in rows["device"].dropna().unique()))
    batches = ", ".join(str(int(b)) for b in sorted(rows["batch"].dropna().unique()))
    sentences = []
    for (task, n, kind), part in table.groupby(["task", "n_future", "head_type"]):
        if n < 2:
            continue
        top = part.loc[part["k"].idxmax()]
        sentences.append(f"{task}, n={int(n)} {kind}: at k={int(top['k'])}, "
                         f"{prose.fmt(top['mean_tokens_per_forward'])} tokens per forward and a "
                         f"{prose.fmt(top['mean_speedup'])}x speedup.")
    used = sel.subset(sel.summaries[sel.summaries["run_dir"].isin(set(rows["run_dir"]))])
    columns = ("mean", "lo", "hi", "min", "max")
    shown = table.rename(columns={"n_future": "n", "head_type": "head type",
                                  "seeds_speedup": "runs",
                                  **{f"{s}_tokens_per_forward": f"tokens/forward {s}" for s in columns},
                                  **{f"{s}_speedup": f"speedup {s}" for s in columns}})
    shown = shown.drop(columns="seeds_tokens_per_forward")
    return Output(plot_speculative(rows, title="Self-speculative decoding"),
                  [("per task and k", shown)],
                  sentences, used,
                  [f"Measured on: {devices}; prompts decoded together: {batches}."])


experiment("speculative", measure=measure)(speculative)

if __name__ == "__main__":
    sys.exit(main())
