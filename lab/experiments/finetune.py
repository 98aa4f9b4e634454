"""The finetuning experiment: a small-scale Table S6 (and section 3.6) with its rival explanations.

Stage 1 pretrains on a "general" task (induction stories by default) with next-token loss
(n=1) and with 4 heads, for the same number of tokens, keeping checkpoints at 25% and 50%.
Stage 2 finetunes on a target task (polynomial arithmetic by default) with:

| variant        | start            | heads | how                                                    |
|----------------|------------------|-------|--------------------------------------------------------|
| ntp            | n=1 pretrained   | 1     | plain next-token finetuning (the baseline)             |
| linear         | n=1 pretrained   | 4     | linear heads, +0 layers                                |
| carve          | n=1 pretrained   | 4     | transformer heads carved from the top blocks, +0 layers|
| add            | n=1 pretrained   | 4     | transformer heads added on top, +3 layers              |
| add_zero       | n=1 pretrained   | 4     | add, new blocks start as the identity                  |
| add_freeze     | n=1 pretrained   | 4     | add, trunk frozen for the first quarter                |
| add_ramp       | n=1 pretrained   | 4     | add, new heads' loss weight ramps from 0 over half     |
| deepseek       | n=1 pretrained   | 4     | DeepSeek-V3 modules, loss weight 0.3                   |
| mtp_keep       | n=4 pretrained   | 4     | keep the 4 heads                                       |
| mtp_drop       | n=4 pretrained   | 1     | drop heads 2..4, finetune next-token                   |
| scratch_ntp    | nothing          | 1     | control: target task only, for the total tokens        |
| scratch_mtp    | nothing          | 4     | control: likewise with 4 heads                         |
| ntp@25, add@25 | 25% checkpoint   | 1 / 4 | the rival explanation: MTP helps only while a          |
| ntp@50, add@50 | 50% checkpoint   | 1 / 4 | capability is still forming                            |

All models share one vocabulary and context (the larger of the two tasks'), so a checkpoint
fits both tasks. Finetuning runs reference their pretrained run as `@<run name>` (a run of
the same experiment), so the configs do not depend on the output directory.

`report(experiment_dir)` writes `table.csv` / `table.md` (metric per variant: mean, std over
seeds, and the difference to `ntp` paired by seed with its 95% CI, `evidence.paired_table`) and `curves.csv` (shock and recovery of the next-token loss,
and representation drift, per variant, seed and step).
"""

from __future__ import annotations

import copy
import functools
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lab.analysis.claim import FINETUNING, PAPER, PAPER_CLAIMS, Claim, labelled
from lab.analysis.registry import Missing, Output, Selection, figure
from lab.config import RunConfig
from lab.experiments import experiment
from lab.runs import atomic_write, load_runs, load_summaries
from tasks import ConfigError, build_task

if TYPE_CHECKING:
    from collections.abc import Sequence

    import pandas as pd
    from matplotlib.figure import Figure

    from lab.analysis.plots import Groups


EXPERIMENT = "finetune"


@dataclass(frozen=True)
class Preset:
    size: str
    seeds: tuple[int, ...]
    pretrain_steps: int
    finetune_steps: int
    batch_size: int
    general_task: dict
    target_task: dict
    eval_every: int


PRESETS = {
    # CPU: about 50 runs of 300K-parameter models; fits 60 minutes on 2 cores with 2 workers.
    "quick": Preset(size="300K", seeds=(0, 1, 2, 3, 4), pretrain_steps=600, finetune_steps=400,
                    batch_size=32,
                    general_task={"seq_len": 64},
                    target_task={"max_ops": 2, "eval_ops": 4, "eval_size": 300},
                    eval_every=100),
    # GPU: a Table S14 size deep enough for 4 carved heads (6 layers), longer schedules.
    "paper": Preset(size="10M", seeds=(0, 1, 2), pretrain_steps=20000, finetune_steps=5000,
                    batch_size=64,
                    general_task={}, target_task={}, eval_every=500),
}

FROM_NTP_VARIANTS: dict[str, dict] = {
    "ntp": dict(heads=1, attach="keep"),
    "linear": dict(heads=4, attach="linear"),
    "carve": dict(heads=4, attach="carve"),
    "add": dict(heads=4, attach="add"),
    "add_zero": dict(heads=4, attach="add", head_init="zero"),
    "add_freeze": dict(heads=4, attach="add", freeze_fraction=0.25),
    "add_ramp": dict(heads=4, attach="add", ramp_fraction=0.5),
    "deepseek": dict(heads=4, attach="deepseek", head_weights=[1.0, 0.3, 0.3, 0.3]),
}
VARIANT_ORDER = [*FROM_NTP_VARIANTS, "mtp_keep", "mtp_drop", "ntp@25", "add@25", "ntp@50", "add@50",
                 "scratch_ntp", "scratch_mtp"]  # of the table and the figures


def _base(task: str, task_config: dict, preset: Preset, seed: int, steps: int, heads: int,
          vocab: int, block: int) -> RunConfig:
    from lab.build import build_config
    config = build_config(task, heads=heads, size=preset.size, steps=steps, seed=seed,
                          experiment=EXPERIMENT)
    config.task_config = dict(task_config)
    config.model.vocab_size, config.model.block_size = vocab, block
    t = config.train
    t.batch_size, t.eval_every, t.checkpoint_every = preset.batch_size, preset.eval_every, preset.eval_every
    t.warmup_steps = max(1, steps // 10)
    return config


def _finetune_run(p: Preset, target: str, target_cfg: dict, seed: int, vocab: int, block: int,
                  variant: str,
                  source: RunConfig, heads: int, attach: str, checkpoint: str = "",
                  **options) -> RunConfig:
    """One finetuning run of the pretraining run `source` on the target task.

    The model shape is filled in here exactly as finetuning will fill it from the checkpoint,
    so the run's name and hash are known before the checkpoint exists.
    """
    from lab.checkpoints import target_model_config  # imports torch: only when planning
    config = _base(target, target_cfg, p, seed, p.finetune_steps, heads, vocab, block)
    config.model = target_model_config(source.model, heads, attach)
    config.train.eval_at_start = True
    ft = config.finetune
    ft.init_from = f"@{source.run_name()}" + (f"/{checkpoint}" if checkpoint else "")
    ft.attach, ft.head_init = attach, options.get("head_init", "random")
    ft.freeze_trunk_steps = int(options.get("freeze_fraction", 0) * p.finetune_steps)
    ft.ramp_steps = int(options.get("ramp_fraction", 0) * p.finetune_steps)
    config.train.head_weights = options.get("head_weights")
    config.label = variant
    return config


def configs(preset: str | Preset = "quick", general: str = "induction",
            target: str = "polynomial") -> list[RunConfig]:
    """Table S6 analogue: pretrain n=1 and n=4, finetune on another task 14 ways, plus controls.

    Pretraining runs come first (the finetuning runs depend on them).
    """
    from lab.resolve import resolve
    if isinstance(preset, str) and preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; choose one of: {', '.join(PRESETS)}")
    p = PRESETS[preset] if isinstance(preset, str) else preset
    general_cfg = p.general_task if general == "induction" else {}
    target_cfg = p.target_task if target == "polynomial" else {}
    tasks = [build_task(general, general_cfg), build_task(target, target_cfg)]
    vocab = max(t.vocab_size for t in tasks)
    block = max(t.seq_len for t in tasks) - 1

    pretrain, finetune = [], []
    for seed in p.seeds:
        sources = {}
        for heads in (1, 4):
            config = _base(general, general_cfg, p, seed, p.pretrain_steps, heads, vocab, block)
            config.train.keep_checkpoints = [0.25, 0.5]
            config = resolve(config)[0]
            pretrain.append(config)
            sources[heads] = config

        tuned = functools.partial(_finetune_run, p, target, target_cfg, seed, vocab, block)
        for variant, spec in FROM_NTP_VARIANTS.items():
            finetune.append(tuned(variant, sources[1], **spec))
        finetune.append(tuned("mtp_keep", sources[4], heads=4, attach="keep"))
        finetune.append(tuned("mtp_drop", sources[4], heads=1, attach="drop"))
        for fraction in (25, 50):
            step = max(1, round(fraction / 100 * p.pretrain_steps))
            finetune.append(tuned(f"ntp@{fraction}", sources[1], heads=1, attach="keep",
                                  checkpoint=f"checkpoint-step{step}.pt"))
            finetune.append(tuned(f"add@{fraction}", sources[1], heads=4, attach="add",
                                  checkpoint=f"checkpoint-step{step}.pt"))
        for heads, name in ((1, "scratch_ntp"), (4, "scratch_mtp")):
            config = _base(target, target_cfg, p, seed, p.pretrain_steps + p.finetune_steps, heads,
                           vocab, block)
            config.label = name
            finetune.append(config)
    return [resolve(config)[0] for config in pretrain + finetune]


METRICS = ("eval/exact_match/in_domain", "eval/teacher_forced_acc", "head1/loss")


def report(experiment_dir: Path, metrics: tuple[str, ...] = METRICS) -> str:
    """Write the Table S6-style table (CSV and Markdown) and the curves' data; return the
    Markdown."""
    import pandas as pd

    summaries = load_summaries(experiment_dir)
    if summaries.empty:
        raise ConfigError(f"no runs under {experiment_dir}")
    done = summaries[summaries["status"] == "complete"].copy()
    done["variant"] = done["label"].replace("", "pretrain")
    done = done[done["variant"] != "pretrain"]
    rows = []
    for variant, group in done.groupby("variant", sort=False):
        row = {"variant": variant, "seeds": len(group)}
        for metric in metrics:
            values = group[f"final.{metric}"].astype(float)
            row[f"{metric} mean"] = values.mean()
            row[f"{metric} std"] = values.std(ddof=1) if len(values) > 1 else float("nan")
        rows.append(row)
    table = pd.DataFrame(rows)
    if "ntp" in set(table["variant"]):  # paired by seed, as every difference to a baseline
        from lab.analysis import evidence
        for metric in metrics:
            diff = evidence.paired_table(done, [], "variant", "ntp",
                                         f"final.{metric}").set_index("variant")
            for column, name in (("mean", "diff to ntp"), ("lo", "diff lo"), ("hi", "diff hi")):
                table[f"{metric} {name}"] = table["variant"].map(diff[column]).where(table["variant"] != "ntp", 0.0)
    order = VARIANT_ORDER
    table["order"] = table["variant"].map({v: i for i, v in enumerate(order)}).fillna(len(order))
    table = table.sort_values("order").drop(columns="order")
    atomic_write(experiment_dir / "table.csv",
                 lambda f: table.to_csv(f, index=False, float_format="%.4f"))
    markdown = table.to_markdown(index=False,
                                 floatfmt=".4f") if _has_tabulate() else table.to_string(index=False)
    atomic_write(experiment_dir / "table.md", lambda f: f.write(markdown + "\n"))

    curves = load_runs(experiment_dir)
    if not curves.empty:
        curves = curves[curves["finetune.init_from"].astype(str) != ""].copy()
        curves["variant"] = curves["label"]
        keep = ["variant", "seed", "step", "tokens", "head1/loss", "finetune/pretrained_head1_loss",
                "finetune/source_head1_loss", "finetune/pretrained_source_head1_loss",
                *[c for c in curves.columns if c.startswith("cka/")],
                *[m for m in metrics if m in curves.columns]]
        curves = copy.copy(curves[[c for c in keep if c in curves.columns]])
        atomic_write(experiment_dir / "curves.csv",
                     lambda f: curves.to_csv(f, index=False, float_format="%.5f"))
    return markdown


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


def measure(preset: str = "quick", root: str | Path = "runs") -> str:
    """After the sweep: write and print the table (see `report`)."""
    markdown = report(Path(root) / EXPERIMENT)
    print(f"\n{markdown}\n(written to {Path(root) / EXPERIMENT}/table.md, table.csv and curves.csv)")
    return markdown


def main(argv: list[str] | None = None) -> int:
    """`python -m lab.experiments.finetune --preset P --runs DIR`: the measuring step (`measure`)
    alone."""
    import argparse
    parser = argparse.ArgumentParser(prog="python -m lab.experiments.finetune",
                                     description="Write the finetuning table (table.md, table.csv, "
                                                 "curves.csv) "
                                                 "from the runs of the `finetune` experiment.",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--preset", default="quick", help="quick or paper")
    parser.add_argument("--runs", default="runs", help="root of the run directories")
    args = parser.parse_args(argv)
    try:
        measure(args.preset, args.runs)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


# ----- plots of this experiment (pandas and matplotlib are imported when one is drawn) -----
def finetune_diff_table(df: pd.DataFrame, metric: str, baseline: str = "ntp",
                        variant: str = "label") -> pd.DataFrame:
    """Per variant: the metric minus the baseline variant's, paired by seed
    (`evidence.paired_table`: mean, 95% t CI, min and max over seeds)."""
    from lab.analysis import evidence
    table = evidence.paired_table(df, [], variant, baseline, metric)
    return table[table["seeds"] > 0].drop(columns="result").reset_index(drop=True)


def plot_finetune_bars(df: pd.DataFrame, metric: str, xlabel: str, baseline: str = "ntp",
                       variant: str = "label", order: Sequence[str] | None = None, title: str = "",
                       more: Sequence[tuple[str, str]] = ()) -> Figure:
    """Table S6 analogue: per variant, the difference to the baseline (n'=1) finetuning, paired by
    seed. Bars: mean; whiskers: 95% CI over seeds; the zero line is the baseline. `more` adds
    one panel per `(metric, xlabel)` beside the first (e.g. a graded metric next to exact match),
    with the variants in the same rows."""
    import numpy as np
    from matplotlib.ticker import MaxNLocator

    from lab.analysis import plots
    panels = [(metric, xlabel), *more]
    tables = [finetune_diff_table(df, m, baseline, variant) for m, _ in panels]
    names = [v for v in (order or []) if any(v in set(t[variant]) for t in tables)]
    names += [v for t in tables for v in t[variant] if v not in names]
    names = list(dict.fromkeys(names))
    fig, axes = plots.new_figure(len(panels), width=5.5 if len(panels) == 1 else 3.6 * len(panels),
                                 sharey=True)
    fig.set_figheight(max(2.5, 0.32 * len(names) + 1.0))
    rows = dict(zip(names, np.arange(len(names))[::-1]))
    for ax, table, (_, label) in zip(axes, tables, panels):
        table = table.set_index(variant).loc[[v for v in names if v in set(table[variant])]]
        ys = [rows[v] for v in table.index]
        colors = [plots.COLORS[0] if m >= 0 else plots.COLORS[1] for m in table["mean"]]
        ax.barh(ys, table["mean"], color=colors, alpha=0.85)
        ax.hlines(ys, table["lo"], table["hi"], colors="black", gid="spread")
        ax.axvline(0.0, color="black", linewidth=0.8, gid=plots.REFERENCE)
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
    from lab.analysis import plots
    current, pretrained = SHOCK_COLUMNS[on]
    data = curves.assign(excess=curves[current] - curves[pretrained])
    return plots.summarise(data, [variant, "step"], "excess")


def plot_shock(curves: pd.DataFrame, variant: str = "label", order: Sequence[str] | None = None,
               groups: Groups | None = None, title: str = "", on: str = "target") -> Figure:
    """The next-token loss shock and its recovery: head-1 loss above the pretrained model's
    (on the same held-out batches of the target task) over finetuning steps; step 0 is before
    any update, so its value is the shock of attaching the heads. One panel per group of
    variants (`(title, variants)`), sharing the y axis."""
    from lab.analysis import plots
    table = shock_table(curves, variant, on)
    names, panels = plots.variant_groups(table, variant, order, groups)
    fig, axes = plots.new_figure(len(panels), sharey=True)
    for ax, (panel_title, members) in zip(axes, panels):
        plots.variant_lines(ax, table, "step", variant, names, members)
        ax.axhline(0.0, color="black", linewidth=0.8, gid=plots.REFERENCE)
        ax.set_xlabel("finetuning step")
        ax.set_ylabel("head-1 loss - pretrained's (nats)")
        if panel_title:
            ax.set_title(panel_title, fontsize=9)
        plots.legend_beside(ax)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


CKA_COLUMN = re.compile(r"^cka/(.+)$")


def drift_table(curves: pd.DataFrame, variant: str = "label") -> pd.DataFrame:
    """Linear CKA to the pretrained model per variant, depth and step."""
    from lab.analysis import plots
    columns = [c for c in curves.columns if CKA_COLUMN.match(c)]
    long = curves[[variant, "seed", "step", *columns]].melt(id_vars=[variant, "seed", "step"],
                                                            var_name="depth",
                                                             value_name="cka")
    long["depth"] = long["depth"].str.removeprefix("cka/")
    return plots.summarise(long, [variant, "depth", "step"], "cka")


def plot_drift(curves: pd.DataFrame, variant: str = "label", order: Sequence[str] | None = None,
               groups: Groups | None = None, title: str = "") -> Figure:
    """Representation drift: linear CKA between the pretrained and the finetuned model's hidden
    states on fixed probe inputs, over finetuning; one row of panels per depth, one column per
    group of variants."""
    from lab.analysis import plots
    table = drift_table(curves, variant)
    depths = sorted(table["depth"].unique(), key=lambda d: (d.startswith("head"), d))
    names, panels = plots.variant_groups(table, variant, order, groups)
    fig, axes = plots.new_figure(max(1, len(depths) * len(panels)), ncols=len(panels), sharey=True)
    for i, depth in enumerate(depths):
        for j, (panel_title, members) in enumerate(panels):
            ax = axes[i * len(panels) + j]
            plots.variant_lines(ax, table[table["depth"] == depth], "step", variant, names, members)
            ax.set_title(f"{depth}" + (f", {panel_title}" if panel_title else ""), fontsize=8)
            ax.set_xlabel("finetuning step")
            ax.set_ylabel("linear CKA to pretrained")
            if i == 0:
                plots.legend_beside(ax)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


# ----- figures (builders import lab.analysis.plots when called: a sweep imports this module too)
# -----
GROUPS = (
    ("the paper's variants, from n=1", ("ntp", "linear", "carve", "add")),
    ("gentler attachment, from n=1",
     ("ntp", "add", "add_zero", "add_freeze", "add_ramp", "deepseek")),
    ("from n=4, and from earlier checkpoints",
     ("ntp", "mtp_keep", "mtp_drop", "ntp@25", "add@25", "ntp@50", "add@50")),
)
# Every variant label the figures show, in words (the table in this module's docstring).
VARIANT_CODES = (
    " Variants: `ntp`, next-token finetuning of the n=1 model (the baseline); from n=1 with 4 "
    "heads: `linear` (linear heads), `carve` (heads carved from the top blocks), `add` (heads "
    "added on top), `add_zero` (added blocks start as the identity), `add_freeze` (trunk frozen "
    "for the first quarter), `add_ramp` (the new heads' loss weight ramps up from 0 over half "
    "the steps), `deepseek` (DeepSeek-V3 modules, loss weight 0.3); from n=4: `mtp_keep` (keep "
    "the 4 heads), `mtp_drop` (drop heads 2..4, next-token loss); `ntp@25`, `add@25`, `ntp@50`, "
    "`add@50`: `ntp` and `add` from the 25% and 50% pretraining checkpoints; `scratch_ntp`, "
    "`scratch_mtp`: the target task alone from scratch, with 1 or 4 heads.")
# A graded companion of exact match: per-token accuracy of the answer with the true prefix as input.
GRADED_METRIC = "final.eval/teacher_forced_acc"


def finetuned(sel: Selection) -> Selection:
    """The complete finetuning runs (those with a variant label), without the pretraining runs."""
    sel.require("finetuning")
    done = sel.summaries
    variants = done[done["label"].fillna("") != ""]
    if variants.empty:
        raise Missing(f"no complete finetuning variant of `{EXPERIMENT}` yet (only pretraining "
                      "runs)")
    return sel.subset(variants, [p for p in sel.planned if p.get("label")])


def ranking(metric: str, diffs) -> str:
    """One sentence on a `finetune_diff_table`: how many variants beat `ntp`, the highest and
    lowest."""
    ranked = diffs.sort_values("mean")
    return (f"{int((diffs['mean'] > 0).sum())} of {len(diffs)} variants score above `ntp` on "
            f"{metric}; "
            f"highest: {ranked.iloc[-1]['label']} ({ranked.iloc[-1]['mean']:+.3f}), lowest: "
            f"{ranked.iloc[0]['label']} ({ranked.iloc[0]['mean']:+.3f}).")


def curves(sel: Selection):
    """Every evaluation row of the finetuning runs."""
    evals = sel.evals()
    return evals[evals["finetune.init_from"].fillna("").astype(str) != ""]


@figure("7a_finetune_table", "Finetuning: difference to next-token finetuning (Table S6 analogue)",
        EXPERIMENT,
        "Target-task metric (final evaluation) of each finetuning variant minus "
        "the n'=1 next-token finetuning (`ntp`) of the same seed; bars: mean "
        "over seeds, whiskers: 95% t-intervals of the paired difference over "
        "seeds. Right, where the runs log it: teacher-forced answer accuracy, a "
        "graded measure of the same skill (exact match is all or nothing)." + VARIANT_CODES)
def variants_figure(sel: Selection) -> Output:
    from lab.analysis import plots, prose
    sel = finetuned(sel)
    df = sel.summaries
    if "ntp" not in set(df["label"]):
        raise Missing(f"the `ntp` baseline of `{EXPERIMENT}` has no complete run")
    names = df["primary_metric"].dropna().unique()
    metric_name = plots.metric_name(names[0]) if len(names) == 1 else "primary metric"
    table = finetune_diff_table(df, "primary")
    means = plots.summarise(df, ["label"], "primary")
    graded = GRADED_METRIC if GRADED_METRIC in df and df[GRADED_METRIC].notna().any() else None
    more = [(graded, f"{plots.metric_name(graded)} minus ntp")] if graded else []
    fig = plot_finetune_bars(df, "primary", f"{metric_name} minus n'=1 (ntp)", order=VARIANT_ORDER,
                                   title="Finetuning variants vs next-token finetuning", more=more)
    comparisons = [(metric_name, table)]
    if graded:
        comparisons.append((plots.metric_name(graded), finetune_diff_table(df, graded)))
    tables = [(f"{metric_name} per variant", prose.readable(means))]
    tables += [(f"{name} minus ntp, paired by seed",
                prose.readable(diffs)) for name, diffs in comparisons]
    sentences = [ranking(name, diffs) for name, diffs in comparisons if len(diffs)]
    return Output(fig, tables, sentences, sel)


@figure("7b_finetune_shock", "Finetuning: next-token loss shock and recovery", EXPERIMENT,
        "Head-1 (next-token) loss on held-out batches of the pretraining task "
        "(the target task for runs that did not log it) minus the pretrained "
        "model's own loss on the same batches, over finetuning; step 0 is before "
        "any update, so its value is the shock of the change of heads, the rest "
        "is recovery or forgetting. Bars: 95% t-intervals over seeds." + VARIANT_CODES)
def shock_figure(sel: Selection) -> Output:
    from lab.analysis import prose
    sel = finetuned(sel)
    rows = curves(sel)
    if rows.empty or "finetune/pretrained_head1_loss" not in rows:
        raise Missing("the finetuning runs logged no pretrained head-1 loss")
    source = "finetune/source_head1_loss"
    on = "source" if source in rows and rows[source].notna().all() else "target"
    table = shock_table(rows, on=on)
    start = table[table["step"] == table["step"].min()].sort_values("mean")
    end = table.sort_values("step").groupby("label").tail(1).sort_values("mean")
    sentences = []
    if len(start):
        sentences.append(f"At step {int(start['step'].iloc[0])} the excess loss ranges from "
                         f"{start.iloc[0]['mean']:+.3f} ({start.iloc[0]['label']}) to "
                         f"{start.iloc[-1]['mean']:+.3f} ({start.iloc[-1]['label']}).")
        sentences.append(f"At the last evaluation it ranges from {end.iloc[0]['mean']:+.3f} "
                         f"({end.iloc[0]['label']})"
                         f" to {end.iloc[-1]['mean']:+.3f} ({end.iloc[-1]['label']}).")
    fig = plot_shock(rows, order=VARIANT_ORDER, groups=GROUPS, on=on,
                           title="Next-token loss shock and recovery "
                                 f"({'pretraining' if on == 'source' else 'target'}"
                                 " task data)")
    return Output(fig, [("head-1 loss minus pretrained, per step", prose.readable(table))],
                  sentences, sel)


@figure("7c_finetune_drift", "Finetuning: representation drift", EXPERIMENT,
        "Linear CKA between the pretrained and the finetuned model's hidden "
        "states on fixed probe inputs, after each trunk block (`depth k`) and at "
        "head 1's output, over finetuning (1 = unchanged). Bars: 95% t-intervals "
        "over seeds, cut to [0, 1]." + VARIANT_CODES)
def drift_figure(sel: Selection) -> Output:
    from lab.analysis import prose
    sel = finetuned(sel)
    rows = curves(sel)
    if not any(c.startswith("cka/") for c in rows.columns):
        raise Missing("the finetuning runs logged no CKA")
    table = drift_table(rows)
    last = table.sort_values("step").groupby(["label", "depth"]).tail(1)
    sentences = []
    for depth, part in last.groupby("depth"):
        low = part.loc[part["mean"].idxmin()]
        high = part.loc[part["mean"].idxmax()]
        sentences.append(f"{depth}: final CKA from {prose.fmt(low['mean'])} ({low['label']}) to "
                         f"{prose.fmt(high['mean'])} ({high['label']}).")
    fig = plot_drift(rows, order=VARIANT_ORDER, groups=GROUPS,
                     title="Representation drift during finetuning")
    return Output(fig,
                  [("final CKA per variant and depth",
                    prose.readable(last.sort_values(["depth", "label"])))],
                  sentences, sel)


# ----- claims: the rows of figures/CLAIMS.md these runs test (`lab.analysis.claims`) -----
CLAIMS = (
    Claim("tableS6-carve", f"{PAPER}, Table S6",
          "4-head finetuning with '+0 layers' heads is worse than next-token finetuning",
          "finetune", labelled("carve"), labelled("ntp"), expected_sign=-1, family=PAPER_CLAIMS),
    Claim("tableS6-linear", f"{PAPER}, Table S6",
          "4-head finetuning with linear heads is worse than next-token finetuning", "finetune",
          labelled("linear"), labelled("ntp"), expected_sign=-1, family=PAPER_CLAIMS),
    Claim("tableS6-add", f"{PAPER}, Table S6",
          "4-head finetuning with '+3 layers' heads beats next-token finetuning (its only gain)",
          "finetune", labelled("add"), labelled("ntp"), family=PAPER_CLAIMS),
    Claim("fig4-recipe", f"{PAPER}, Fig. 4",
          "MTP pretraining then next-token finetuning beats next-token pretraining and finetuning",
          "finetune", labelled("mtp_drop"), labelled("ntp"), family=PAPER_CLAIMS),
    Claim("H2-forming", "Table S6, H2 (App. J)", "4-head finetuning helps while the capability is "
          "still forming: from the 25% checkpoint it beats next-token finetuning (task transfer, "
          "300K; answer NLL, graded: exact match is at the floor for both, so no step can be "
          "chosen on it: the last evaluation)", "finetune", labelled("add@25"), labelled("ntp@25"),
          measure="final_value", metric="answer_nll", expected_sign=-1, family=FINETUNING),
)

experiment(EXPERIMENT, measure=measure, claims=CLAIMS)(configs)

if __name__ == "__main__":
    sys.exit(main())
