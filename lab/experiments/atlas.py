"""Regime atlas: where multi-token prediction helps induction form, where it hurts, and what predicts the sign.

The lab's 1M reading reverses the paper's Fig. 7 (2-token prediction forms induction *later*;
LOG 2026-11-29). The atlas asks in which settings that holds. Each cell is one setting, varied
one factor at a time from a base cell, with next-token (n=1) and multi-token arms trained on
the same seeds (a seed fixes the data order, so arms are paired by seed):

- what the future tokens carry: filler predictability (`task.branching`), mention density
  (`task.mentions`), name vocabulary, sequence length, the induction-rich mix;
- model size, 100K-3M;
- depth and loss share apart from the objective: parameter matching on (the paper's rule, head
  1 shallower) and off (the base: head 1 as deep as at n=1), a deeper 9-layer 1M shape with
  matching on, and the loss weight of heads 2..n (`train.head_weights`).

Every run stops once induction has formed on its validation set (`train.stop_at` = the
formation threshold of `lab.analysis.evidence`), so a run costs what it needs and the measure is tokens
to formation, censored at the budget (1.5M tokens: three times what a 1M next-token model
needs, twice what n=2 needed in the 1M `dynamics` runs). The validated test metric is reported
too; for a run that stopped at formation it is the value there. Every evaluation also logs the
mechanism measures: the best head's prefix-matching score and its attention from a repeated name
to the token it must copy (`interp/`, `lab/interp.py`), and the alignment of each head's trunk
gradient with head 1's (`align/`, `lab/alignment.py`). Cells are labelled (`label`);
`python -m lab.sweep atlas --dry-run` states the cost and how to split the grid into parts
(`--part K/N`).
"""

from __future__ import annotations

from dataclasses import dataclass

from lab.analysis.claim import LAB, PAPER, PAPER_CLAIMS, Claim, n_future
from lab.analysis.registry import Output, Selection, figure
from lab.config import RunConfig
from lab.experiments import experiment, make_run, seeds

TASK = "induction"
# 1.5M tokens at the quick batch; formation resolved to 0.1M tokens
QUICK_STEPS, QUICK_EVAL_EVERY = 750, 50
DEPTH_CONTROLLED = "model.match_params=false"
# 12 * 96^2 * 9 = 995K
DEEP_1M = ("model.d_model=96", "model.n_layer=9", "model.n_head=4", "size=1M-L9")


@dataclass(frozen=True)
class Cell:
    """One setting of the atlas: its label, size, the head counts it compares and its overrides."""

    label: str
    factor: str  # what the cell varies, for the figure's rows
    size: str = "1M"
    heads: tuple[int, ...] = (1, 2, 4)
    overrides: tuple[str, ...] = (DEPTH_CONTROLLED,)
    weight: float | None = None  # loss weight of heads 2..n (head 1 keeps 1)
    # a cell whose n=1 runs are this cell's too (the same model and data), else its own
    base_from: str = ""


CELLS: tuple[Cell, ...] = (
    Cell("base", "base"),
    Cell("branching=0.8", "filler predictability",
         overrides=(DEPTH_CONTROLLED, "task.branching=0.8")),
    Cell("branching=2", "filler predictability",
         overrides=(DEPTH_CONTROLLED, "task.branching=2.0")),
    Cell("mentions=2", "mention density", overrides=(DEPTH_CONTROLLED, "task.mentions=2")),
    Cell("mentions=5", "mention density", overrides=(DEPTH_CONTROLLED, "task.mentions=5")),
    Cell("name_vocab=16", "name vocabulary", overrides=(DEPTH_CONTROLLED, "task.name_vocab=16")),
    Cell("name_vocab=96", "name vocabulary", overrides=(DEPTH_CONTROLLED, "task.name_vocab=96")),
    Cell("seq_len=128", "sequence length", overrides=(DEPTH_CONTROLLED, "task.seq_len=128")),
    Cell("rich=0.5", "induction-rich mix", overrides=(DEPTH_CONTROLLED, "task.induction_rich=0.5")),
    Cell("size=100K", "model size", size="100K"),
    Cell("size=300K", "model size", size="300K"),
    Cell("size=3M", "model size", size="3M", heads=(1, 2)),
    Cell("matched", "depth", heads=(2, 4), overrides=("model.match_params=true",),
         base_from="base"),
    Cell("matched-L9", "depth", overrides=("model.match_params=true", *DEEP_1M)),
    Cell("w=0.3", "loss share", heads=(2, 4), weight=0.3, base_from="base"),
    Cell("w=0.1", "loss share", heads=(2, 4), weight=0.1, base_from="base"),
)


# the paper (gpu) preset: Table S14 sizes
GPU_SIZES = {"100K": "1M", "300K": "3M", "1M": "10M", "3M": "30M"}


def cell_runs(cell: Cell, preset: str) -> list[RunConfig]:
    """The runs of one cell: every head count of the cell on every seed of its size (in the paper
    preset the next Table S14 sizes, `GPU_SIZES`, with the paper budget)."""
    schedule = (f"train.steps={QUICK_STEPS}", f"train.eval_every={QUICK_EVAL_EVERY}",
                f"train.checkpoint_every={QUICK_EVAL_EVERY}") if preset == "quick" else ()
    # imported here: planning must not load pandas
    from lab.analysis.evidence import FORMATION_THRESHOLD
    stop = (f"train.stop_at={FORMATION_THRESHOLD[TASK]}", "train.log_mechanism=true")
    size = cell.size if preset == "quick" else GPU_SIZES[cell.size]
    size_name = next((o.split("=", 1)[1] for o in cell.overrides if o.startswith("size=")), size)
    # names the size it trains
    label = f"size={size}" if cell.factor == "model size" else cell.label
    out = []
    for n in cell.heads:
        weights = () if cell.weight is None or n == 1 else (
            "train.head_weights=" + ",".join(["1", *[f"{cell.weight:g}"] * (n - 1)]),)
        out += [make_run("atlas", preset, TASK, size, n, seed,
                         overrides=(*cell.overrides, *schedule, *stop, *weights, f"label={label}"))
                for seed in seeds(preset, size_name)]
    return out


# ----- claims: the rows of figures/CLAIMS.md these runs test (`lab.analysis.claims`) -----
CLAIMS = (
    Claim("atlas-base-n2", f"{PAPER}, Fig. 7 (atlas base cell)", "with head 1 as deep as at n=1 "
          "(1M, 64-token stories), 2-token prediction forms induction earlier than next-token "
          "(tokens to formation)", "atlas", n_future(2), n_future(1), {"label": "base"},
          measure="formation_tokens", expected_sign=-1, family=PAPER_CLAIMS),
    Claim("atlas-base-n4", f"{PAPER}, Fig. 7 (atlas base cell)", "with head 1 as deep as at n=1 "
          "(1M, 64-token stories), 4-token prediction forms induction earlier than next-token "
          "(tokens to formation)", "atlas", n_future(4), n_future(1), {"label": "base"},
          measure="formation_tokens", expected_sign=-1, family=PAPER_CLAIMS),
    Claim("atlas-attention-n2",
          f"{PAPER}, Sec. 4.1 (Fig. 7 read as: MTP helps move information across positions)",
          "with "
          "2-token prediction the attention of a repeated name to its earlier mention forms "
          "earlier than with next-token prediction (atlas base cell, 1M, head 1 as deep as at n=1)",
          "atlas", n_future(2), n_future(1), {"label": "base"}, measure="attention_tokens",
          expected_sign=-1, family=PAPER_CLAIMS),
    Claim("atlas-attention-mentions2", f"{PAPER}, Sec. 4.1 (the reading of Fig. 7)", "with "
          "2-token prediction the copy attention forms earlier than with next-token prediction "
          "where names are mentioned twice (atlas mentions=2, where n=2 never forms induction)",
          "atlas", n_future(2), n_future(1), {"label": "mentions=2"}, measure="attention_tokens",
          expected_sign=-1, family=PAPER_CLAIMS),
    Claim("atlas-readout-n2", "mtp-lab atlas (where the delay sits)", "with 2-token prediction "
          "induction takes longer to form after the copy attention has formed than with "
          "next-token prediction (atlas base cell; tokens from copy attention to formation)",
          "atlas", n_future(2), n_future(1), {"label": "base"}, measure="readout_tokens",
          family=LAB),
    Claim("atlas-size", "mtp-lab atlas (Fig. 7's size range)", "the delay of 2-token prediction "
          "in forming induction shrinks with model size (300K, 1M, 3M; heads on a full-depth "
          "trunk; slope of n=2 - n=1 tokens to formation per 10x size)", "atlas", n_future(2),
          n_future(1), {"label": frozenset({"base", "size=300K", "size=3M"})},
          measure="formation_tokens", trend="size", expected_sign=-1, family=LAB),
)


@experiment("atlas", claims=CLAIMS)
def atlas(preset: str) -> list[RunConfig]:
    """Induction regime atlas: n = 1, 2, 4 across data, size, depth and loss-share cells (stops at formation)."""
    return [config for cell in CELLS for config in cell_runs(cell, preset)]


# ----- figure (the builder imports lab.analysis.plots when called: a sweep imports this module too)
# -----
MEASURES = (("formation_tokens", "tokens to formation, n - (n=1) (M tokens; < 0: earlier)", 1e-6),
            ("attention_tokens", "tokens until the copy attention forms, n - (n=1) (M tokens)",
             1e-6),
            ("readout_tokens", "tokens from copy attention to formation, n - (n=1) (M tokens)",
             1e-6),
            ("value", "second-token accuracy, n - (n=1) (test, validation-selected)", 1.0))


@figure("9_atlas", "Regime atlas: the effect of n = 2 and n = 4 on induction, cell by cell",
        "atlas",
        "Each row is one setting (one factor changed from the base: 1M, heads on a full-depth "
        "trunk, 1.5M-token budget, runs stop at formation on validation). Points: mean over "
        "seeds of the paired difference to n=1 in that cell; bars: 95% t-intervals. Left: "
        "tokens to formation (censored runs count at the budget, so a delay is understated); "
        "middle: tokens until the copy attention (a repeated name's first token to the token "
        "after its earlier mention, the attention half of the circuit) first reaches 0.1 on "
        "validation stories, and from then until formation (the read-out; censored runs give a "
        "lower bound); right: the test metric at the validation-selected step. Rows name the "
        "changed factor (`size=100K`, `w=0.3`: loss weight of heads 2..n, ...); `matched`: n=2 "
        "and n=4 with their heads taken from the trunk's blocks (the paper's parameter "
        "matching) against the base cell's n=1; `matched-L9`: the same at 9 layers (d_model "
        "96), so that 4 heads still leave a deep trunk.")
def atlas_figure(sel: Selection) -> Output:
    from lab.analysis import evidence, plots, prose
    sel.require("atlas")
    measured = shared_baselines(evidence.measure_runs(sel.evals()))
    order = [c.label for c in CELLS]
    tables, effects = [], {}
    for measure, label, scale in MEASURES:
        table = evidence.paired_effects(measured, ["label"], measure=measure)
        if table.empty:
            continue
        table = table.sort_values(["label", "model.n_future"], key=lambda col: col.map(
            order.index) if col.name == "label" else col).reset_index(drop=True)
        effects[measure] = table
        shown = table.assign(**{c: table[c] * scale for c in ("mean", "lo", "hi", "mde")})
        tables.append((label, prose.readable(shown)))
    if not effects:
        from lab.analysis.registry import Missing
        raise Missing("atlas: no cell has both n=1 and another arm complete")
    fig = plots.plot_effects(effects,
                             [(m, label, scale) for m, label, scale in MEASURES if m in effects],
                             order=order, title="Regime atlas (induction)")
    sentences = effect_sentences(effects.get("formation_tokens"))
    sentences += effect_sentences(effects.get("attention_tokens"),
                                  "tokens until the copy attention forms",
                                  "the copy attention", power=False)
    sentences += effect_sentences(effects.get("readout_tokens"),
                                  "tokens from copy attention to formation",
                                  "induction", power=False)
    sentences += predictor_sentences(measured, effects.get("formation_tokens"))
    return Output(fig, tables, sentences, sel)


def predictor_sentences(measured, effects) -> list[str]:
    """Does a cell's mean head-2 / head-1 trunk-gradient cosine (of its n=2 runs) predict its n=2
    effect on tokens to formation? The least-squares slope over cells with its 95% t CI
    (`stats.slope_ci`)."""
    from lab.analysis import stats
    if effects is None or effects.empty or "align_cos" not in measured:
        return []
    cos = measured[measured["model.n_future"] == 2].groupby("label")["align_cos"].mean().dropna()
    two = effects[effects["model.n_future"] == 2].set_index("label")["mean"]
    cells = sorted(set(cos.index) & set(two.index))
    if len(cells) < 3:
        return ["Gradient alignment as a predictor of the n=2 effect needs at least 3 cells; "
                f"{len(cells)} have "
                "both."]
    slope, lo, hi = stats.slope_ci([cos[c] for c in cells], [two[c] * 1e-6 for c in cells])
    return [f"Across {len(cells)} cells, the n=2 effect on tokens to formation changes by "
            f"{slope:+.3g}M tokens [{lo:+.3g}, {hi:+.3g}] per unit of the cell's mean cos(head 2, "
            f"head 1) trunk "
            "gradient (95% t CI; < 0: better-aligned heads delay induction less)."]


def shared_baselines(measured):
    """The per-run table with each `base_from` cell given the n=1 runs of the cell it names."""
    import pandas as pd
    if measured.empty:
        return measured
    ones = measured[measured["model.n_future"] == 1]
    shared = [ones[ones["label"] == c.base_from].assign(label=c.label) for c in CELLS if c.base_from]
    return pd.concat([measured, *shared], ignore_index=True)


def effect_sentences(table, what: str = "tokens to formation", formed: str = "induction",
                     power: bool = True) -> list[str]:
    """Which cells show n forming `formed` (timed by `what`) earlier or later than n=1, by the CI
    rule."""
    if table is None or table.empty:
        return []
    out = []
    for n, part in table.groupby("model.n_future"):
        earlier = part.loc[part["hi"] < 0, "label"].tolist()
        later = part.loc[part["lo"] > 0, "label"].tolist()
        neither = part.loc[part["verdict"].str.startswith("neither"), "label"].tolist()
        rest = len(part) - len(earlier) - len(later) - len(neither)
        out.append(f"n={n} against n=1, {what} (95% t CI over seeds excluding 0): earlier in "
                   f"{', '.join(earlier) or 'no cell'}; later in {', '.join(later) or 'no cell'}; "
                   f"{formed} formed in neither arm in "
                   f"{', '.join(neither) or 'no cell'}; {rest} of {len(part)} "
                   "cells without a detectable difference.")
        if power:
            out += power_sentence(n, part.loc[~part["label"].isin(neither)])
    return out


def power_sentence(n: int, part) -> list[str]:
    """The largest earlier formation that any informative cell's CI still allows (its lower bound),
    so that "earlier in no cell" comes with the size of a gain the grid could have missed."""
    if part.empty:
        return []
    worst = part.loc[part["lo"].idxmin()]
    allowed = part[part["lo"] < 0]
    if allowed.empty:
        return [f"Power, n={n}: in each of the {len(part)} cells where induction formed, the CI "
                "excludes any earlier formation."]
    return [f"Power, n={n}: across the {len(part)} cells where induction formed, no CI allows "
            f"n={n} to form induction more than "
            f"{-worst['lo'] / 1e6:.2f}M tokens earlier (the widest, "
            f"{worst['label']}); in "
            f"{len(part) - len(allowed)} of them the CI excludes any earlier formation."]


MECHANISM = (("val/second_token_acc", "second-token accuracy (validation)"),
             ("interp/copy_attention_max", "attention: repeated name to its copy"),
             ("interp/prefix_matching_max", "best prefix-matching score"),
             ("align/cos/head2", "cos(head 2 gradient, head 1 gradient) on the trunk"))


@figure("9b_atlas_mechanism", "Regime atlas: the mechanism over training (base cell)", "atlas",
        "For the base cell, per head count: induction on validation, the best attention head's "
        "attention from a repeated name's first token to the token it must copy, the "
        "prefix-matching score on repeated random tokens, and the cosine between head 2's and "
        "head 1's loss gradients on the shared trunk, over training tokens (bands: 95% "
        "t-intervals over seeds, cut to [0, 1] for the accuracy, attention and score, and to "
        "[-1, 1] for the cosine; runs end when induction forms).")
def mechanism_figure(sel: Selection) -> Output:
    from lab.analysis import plots, prose
    sel.require("atlas")
    evals = sel.evals()
    evals = evals[evals["label"] == "base"]
    panels = [(m, label) for m, label in MECHANISM if m in evals and evals[m].notna().any()]
    if evals.empty or not panels:
        from lab.analysis.registry import Missing
        raise Missing("atlas: the base cell has no complete run that logged the mechanism")
    sentences, tables = [], []
    for metric, label in panels:
        table = plots.dynamics_table(evals, metric)
        tables.append((f"{label} over training", prose.readable(table)))
        if metric.startswith("align/"):
            means = evals.groupby("model.n_future")[metric].mean().dropna()
            sentences.append(f"Mean {label} over training: " + ", ".join(
                f"{prose.fmt(v)} for n={int(n)}" for n, v in means.items()) + ".")
            continue
        reach = prose.first_reaching(table, "model.n_future")
        if reach:
            sentences.append(f"{label[0].upper() + label[1:]} first reaches half its highest mean "
                             f"({prose.fmt(next(iter(reach.values()))[1])}) at " + ", ".join(
                                 f"{prose.tokens_text(t)} for n={int(n)}" for n,
                                 (t, _) in reach.items()) + ".")
    fig = plots.plot_dynamics(evals, panels,
                              title="Regime atlas, base cell: mechanism over training")
    return Output(fig, tables, sentences, sel)
