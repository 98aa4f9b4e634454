"""Continued pretraining, Table S6's protocol: next-token pretraining, then the same data with n' heads.

Gloeckle et al. continued Llama 2 (pretrained with next-token loss) on code with 4-token
prediction and saw no gain; they suppose the new loss "changes the initialization too brutally
and never really recovers". The `finetune` experiment switches task for a short budget; here
the continuation trains on the pretraining distribution itself, for as long as the pretraining
(`CONTINUE_STEPS` = `PRETRAIN_STEPS`), so "never recovers" becomes a curve: the deficit of
each variant against next-token continuation (`ntp`) over continuation tokens, in head-1
(next-token) loss on held-out data of that distribution and in the task metric.

Stage 1 pretrains n=1 on induction (and n=4 where the Fig. 4 recipe runs); stage 2 continues:

| variant        | from   | n' | how                                                           | sizes |
|----------------|--------|----|---------------------------------------------------------------|-------|
| ntp            | n=1    | 1  | next-token continuation: the control every deficit is against | all   |
| add2, add4     | n=1    | 2, 4 | heads added on top, output projections zero ("+n'-1 layers") | all  |
| carve4         | n=1    | 4  | heads carved from the top blocks ("+0 layers")                | L > 4 |
| linear4        | n=1    | 4  | linear heads                                                  | all   |
| add3, deepseek4 | n=1  | 3, 4 | head count, DeepSeek-V3 modules                            | small |
| add4_w0.3, add4_w0.1 | n=1 | 4 | loss weight of heads 2..n (DeepSeek-V3: 0.3, then 0.1)    | small |
| add4_sg        | n=1    | 4  | heads 2..n read a detached next-token path (stop-gradient)    | small |
| add4_rand      | n=1    | 4  | added heads randomly initialised: a larger early shock (H1)   | small |
| add4_lr0.3     | n=1    | 4  | pretrained weights at 0.3x the learning rate (new heads at 1x) | small |
| add4_warm      | n=1    | 4  | learning-rate warm-up over half the continuation (else 10%)   | small |
| mtp_drop       | n=4    | 1  | MTP pretraining, next-token continuation (the Fig. 4 recipe)  | small |
| scratch_ntp, scratch_mtp | - | 1, 4 | from scratch for the whole budget                         | small |

"small" is `SMALL` (100K, 300K); the larger sizes run the variants every hypothesis needs at
every size (H3: does the deficit shrink with size?). Every run logs the alignment of each
head's trunk gradient with head 1's (`train.log_mechanism`, H4) and, through the finetuning
trainer, the step-0 shock and representation drift (H1).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from lab.analysis.claim import FINETUNING, Claim, at_size, labelled
from lab.analysis.registry import Missing, Output, Selection, figure
from lab.config import SIZES as SHAPES
from lab.config import RunConfig, size_value
from lab.experiments import experiment, seeds
from lab.experiments.finetune import Preset, _base, _finetune_run

if TYPE_CHECKING:
    from collections.abc import Sequence

    import pandas as pd
    from matplotlib.figure import Figure


EXPERIMENT = "continued"
TASK = "induction"
SIZES = {"quick": ("100K", "300K", "1M", "3M"), "paper": ("1M", "3M", "10M", "30M")}
DECISIVE_SIZES = ("1M",)  # S6-task-1M reversed raw, not after Holm, at 3 seeds: 5 seeds at 1M
SMALL = ("100K", "300K")
PRETRAIN_STEPS = {"quick": 500, "paper": 20000}
EVAL_EVERY = {"quick": 50, "paper": 500}

CORE: dict[str, dict] = {  # every size
    "ntp": dict(heads=1, attach="keep"),
    "add2": dict(heads=2, attach="add", head_init="zero"),
    "add4": dict(heads=4, attach="add", head_init="zero"),
    "carve4": dict(heads=4, attach="carve"),
    "linear4": dict(heads=4, attach="linear"),
}
EXTRA: dict[str, dict] = {  # the small sizes
    "add3": dict(heads=3, attach="add", head_init="zero"),
    "deepseek4": dict(heads=4, attach="deepseek"),
    "add4_w0.3": dict(heads=4, attach="add", head_init="zero", head_weights=[1.0, 0.3, 0.3, 0.3]),
    "add4_w0.1": dict(heads=4, attach="add", head_init="zero", head_weights=[1.0, 0.1, 0.1, 0.1]),
    # stop-gradient: harm bounded at 0
    "add4_sg": dict(heads=4, attach="add", head_init="zero", detach=True),
    # H1: a larger early shock, same step 0
    "add4_rand": dict(heads=4, attach="add", head_init="random"),
    # pretrained weights at 0.3x lr
    "add4_lr0.3": dict(heads=4, attach="add", head_init="zero", lr_scale=0.3),
    # warm-up over half
    "add4_warm": dict(heads=4, attach="add", head_init="zero", warmup_fraction=0.5),
}
VARIANT_ORDER = [*CORE, *EXTRA, "mtp_drop", "scratch_ntp", "scratch_mtp"]


def preset_for(preset: str, size: str) -> Preset:
    """The `finetune` experiment's preset shape for one size: the same task before and after."""
    steps = PRETRAIN_STEPS[preset]
    task = {"seq_len": 64} if preset == "quick" else {}
    return Preset(size=size, seeds=seeds(preset, size, decisive=size in DECISIVE_SIZES), pretrain_steps=steps, finetune_steps=steps,
                  batch_size=32 if preset == "quick" else 64, general_task=task, target_task=task,
                  eval_every=EVAL_EVERY[preset])


def fits(spec: dict, size: str) -> bool:
    """Whether a variant's heads fit the size: carving n' heads needs more than n' blocks."""
    return spec["attach"] != "carve" or SHAPES[size][1] > spec["heads"]


def size_runs(preset: str, size: str) -> list[RunConfig]:
    """Pretraining and continuation runs of one size, every seed; sources before the runs that read
    them."""
    from lab.resolve import resolve
    from tasks import build_task
    p = preset_for(preset, size)
    task = build_task(TASK, p.general_task)
    vocab, block = task.vocab_size, task.seq_len - 1
    variants = {**CORE, **(EXTRA if size in SMALL else {})}

    def own(config: RunConfig) -> RunConfig:
        config.experiment = EXPERIMENT
        config.train.log_mechanism = True
        return resolve(config)[0]

    out: list[RunConfig] = []
    for seed in p.seeds:
        sources = {}
        for heads in (1, 4) if size in SMALL else (1,):
            sources[heads] = own(_base(TASK, p.general_task, p, seed, p.pretrain_steps, heads,
                                       vocab, block))
            out.append(sources[heads])
        for name, spec in variants.items():
            if fits(spec, size):
                config = _finetune_run(p, TASK, p.target_task, seed, vocab, block, name, sources[1],
                                       **spec)
                config.model.detach_extra_heads = spec.get("detach", False)
                config.finetune.pretrained_lr_scale = spec.get("lr_scale", 1.0)
                if "warmup_fraction" in spec:
                    config.train.warmup_steps = int(spec["warmup_fraction"] * p.finetune_steps)
                out.append(own(config))
        if size in SMALL:
            out.append(own(_finetune_run(p, TASK, p.target_task, seed, vocab, block, "mtp_drop",
                                         sources[4],
                                         heads=1, attach="drop")))
            for heads, name in ((1, "scratch_ntp"), (4, "scratch_mtp")):
                config = _base(TASK, p.general_task, p, seed, p.pretrain_steps + p.finetune_steps,
                               heads, vocab, block)
                config.label = name
                out.append(own(config))
    return out


# ----- claims: the rows of figures/CLAIMS.md these runs test (`lab.analysis.claims`) -----
_ROWS = (
    # Explanations of Table S6 as refutable predictions (continued pretraining unless said; head-1
    # loss is the next-token loss on held-out data of the pretraining distribution, so a positive
    # difference is a deficit).
    Claim("H1-shock", "Table S6, H1 (shock)", "carving 4 heads from the top blocks ('+0 layers') "
          "shocks the next-token loss more than adding zero-initialised heads (100K)", "continued",
          labelled("carve4"), labelled("add4"), {"size": "100K"}, measure="first_value",
          metric="head1/loss", family=FINETUNING),
    Claim("H1-deficit", "Table S6, H1 (shock)", "the more shocked carve attachment also ends "
          "further behind: higher final next-token loss than add (100K)", "continued",
          labelled("carve4"), labelled("add4"), {"size": "100K"}, measure="final_value",
          metric="head1/loss", family=FINETUNING),
    Claim("H1-init", "Table S6, H1 (shock)", "randomly initialised added heads shock the "
          "next-token loss more in the first steps than zero-initialised ones (both leave step 0 "
          "unchanged; 100K)", "continued", labelled("add4_rand"), labelled("add4"),
          {"size": "100K"},
          measure="early_value", metric="head1/loss", family=FINETUNING),
    Claim("H1-init-deficit", "Table S6, H1 (shock)", "the larger early shock of randomly "
          "initialised heads also leaves a larger final deficit (final head-1 loss, 100K)",
          "continued", labelled("add4_rand"), labelled("add4"), {"size": "100K"},
          measure="final_value",
          metric="head1/loss", family=FINETUNING),
    Claim("H2-continued", "Table S6, H2 (App. J)", "4-head continuation helps a capability that "
          "is still forming: where next-token pretraining has not formed induction (300K), add4 "
          "forms it in fewer continuation tokens than ntp", "continued", labelled("add4"),
          labelled("ntp"), {"size": "300K"}, measure="formation_tokens", expected_sign=-1,
          family=FINETUNING),
    Claim("S6-task", "Table S6 (the capability)", "4-head continuation ends with lower induction "
          "accuracy than next-token continuation (final test second-token accuracy, 100K)",
          "continued", labelled("add4"), labelled("ntp"), {"size": "100K"}, measure="final_value",
          expected_sign=-1, family=FINETUNING),
    Claim("H3-size", "Table S6, H3 (Table S7)", "the next-token deficit of 4-head continuation "
          "(add4 - ntp, final head-1 loss) shrinks with model size", "continued", labelled("add4"),
          labelled("ntp"), measure="final_value", trend="size", metric="head1/loss",
          expected_sign=-1,
          family=FINETUNING),
    Claim("H4-conflict", "Table S6, H4 (gradient conflict)", "the less head k's trunk gradient "
          "agrees with head 1's, the larger the next-token deficit: slope of (add4 - ntp, final "
          "head-1 loss) against add4's mean gradient cosine", "continued", labelled("add4"),
          labelled("ntp"), measure="final_value", trend="align_cos", metric="head1/loss",
          expected_sign=-1, family=FINETUNING),
    Claim("H5-heads", "Table S6, H5 (dose)",
          "4 heads cost more next-token quality than 2 (final head-1 loss, 100K)", "continued",
          labelled("add4"), labelled("add2"), {"size": "100K"}, measure="final_value",
          metric="head1/loss", family=FINETUNING),
    Claim("H5-weight", "Table S6, H5 (dose)", "extra heads at loss weight 1 cost more next-token "
          "quality than at 0.1 (final head-1 loss, 100K)", "continued", labelled("add4"),
          labelled("add4_w0.1"), {"size": "100K"}, measure="final_value", metric="head1/loss",
          family=FINETUNING),
    Claim("H6-layers", "Table S6, H6 (added capacity)", "'+3 layers' heads keep next-token "
          "quality better than linear heads (lower final head-1 loss, 100K)", "continued",
          labelled("add4"), labelled("linear4"), {"size": "100K"}, measure="final_value",
          metric="head1/loss", expected_sign=-1, family=FINETUNING),
    Claim("H6-objective", "Table S6, H6 (added capacity)", "with the layers added, the 4-token "
          "objective itself costs next-token quality: add4 ends above next-token continuation "
          "(ntp), which is the control 'the same layers with next-token loss only' since added "
          "heads sit off head 1's path (final head-1 loss, 100K)", "continued", labelled("add4"),
          labelled("ntp"), {"size": "100K"}, measure="final_value", metric="head1/loss",
          family=FINETUNING),
)
# The explanations measured at 100K, repeated at other sizes (the variants of `EXTRA` run at the
# small sizes only); each repeat follows its row.
OTHER_SIZES = {"H1-shock": ("1M",), "H1-deficit": ("1M",),  # carve4 needs 5 blocks: not at 3M
               "H1-init": ("300K",), "H1-init-deficit": ("300K",),
               "S6-task": ("300K", "1M", "3M"), "H5-heads": ("3M",), "H5-weight": ("300K",),
               "H6-layers": ("3M",), "H6-objective": ("3M",)}
CLAIMS = tuple(c for row in _ROWS
               for c in (row, *(at_size(row, s) for s in OTHER_SIZES.get(row.key, ()))))


@experiment(EXPERIMENT, claims=CLAIMS)
def continued(preset: str) -> list[RunConfig]:
    """Table S6 protocol: next-token pretraining, then the same data with n' heads, per size (H1-H6)."""
    return [config for size in SIZES[preset] for config in size_runs(preset, size)]


# ----- plots of this experiment (pandas and matplotlib are imported when one is drawn) -----
def plot_table_s6(by_size: pd.DataFrame, recovery: pd.DataFrame, per_run: pd.DataFrame,
                  variant: str = "label",
                  order: Sequence[str] | None = None, title: str = "") -> Figure:
    """Four panels on the next-token deficit of continued pretraining with extra heads: (a) against
    model size per variant (`plots.summarise(..., [variant, "size"], "deficit")`), (b) over
    continuation tokens per size (`[..."size", "step", "tokens"]`), (c) against the step-0 shock and
    (d) against the mean trunk-gradient cosine, one point per run (`per_run` columns deficit, shock,
    align_cos)."""
    from lab.analysis import plots
    fig, (a, b, c, d) = plots.new_figure(4, ncols=4)
    if len(by_size):
        plots.mean_lines(a, by_size, "size", variant, x_of=plots.size_key, log=True)
        sizes = sorted(by_size["size"].unique(), key=plots.size_key)
        a.set_xscale("log")
        a.set_xticks([plots.size_key(z) for z in sizes], sizes)
        a.minorticks_off()
    a.set_xlabel("model size (non-embedding parameters)")
    a.set_ylabel("final head-1 loss - ntp's (nats)")
    if len(recovery):
        plots.mean_lines(b, recovery.assign(mtokens=recovery["tokens"] / 1e6), "mtokens", "size")
    b.set_xlabel("continuation tokens (M)")
    b.set_ylabel("add4 head-1 loss - ntp's (nats)")
    names, _ = plots.variant_groups(per_run, variant, order, None)
    for ax, x, xlabel in ((c, "shock", "step-0 shock: head-1 loss - ntp's (nats)"),
                          (d, "align_cos", "mean cos(head k, head 1) trunk gradient")):
        for name in names:
            part = per_run[(per_run[variant] == name) & per_run[x].notna()]
            if len(part):
                s = plots.style(names.index(name))
                ax.plot(part[x], part["deficit"], linestyle="none", marker=s["marker"],
                        color=s["color"],
                        markersize=4, alpha=0.8, label=name)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("final deficit (nats)")
    for ax, letter in zip((a, b, c, d), "abcd"):
        ax.axhline(0.0, color="black", linewidth=0.8, gid=plots.REFERENCE)
        ax.set_title(f"({letter})", fontsize=9, loc="left")
        plots.legend_beside(ax)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


# ----- figure (the builder imports lab.analysis.plots when called: a sweep imports this module too)
# -----
DEFICIT = "head1/loss"


def deficit_curves(sel: Selection):
    """Per continuation run and evaluation: head-1 loss minus `ntp`'s at the same size, seed and
    step."""
    rows = sel.evals()
    rows = rows[rows["label"].fillna("").isin([*CORE, *EXTRA, "mtp_drop"])]
    if rows.empty or "ntp" not in set(rows["label"]):
        raise Missing(f"`{EXPERIMENT}`: no complete next-token continuation (`ntp`) to measure a "
                      "deficit against")
    base = rows[rows["label"] == "ntp"].set_index(["size", "seed", "step"])[DEFICIT]
    rows = rows[rows["label"] != "ntp"].copy()
    keys = list(zip(rows["size"], rows["seed"], rows["step"]))
    rows["deficit"] = [row - base.get(key, float("nan")) for row, key in zip(rows[DEFICIT], keys)]
    return rows.dropna(subset=["deficit"])


def per_run(sel: Selection):
    """One row per continuation run: `deficit` (final head-1 loss minus `ntp`'s at the same size and
    seed), `shock` (the same at step 0, before any update: `ntp` at step 0 is the pretrained model)
    and `align_cos` (its mean head-k / head-1 trunk-gradient cosine)."""
    from lab.analysis import evidence
    measured = evidence.measure_runs(sel.evals(), DEFICIT)
    measured = measured[measured["label"].fillna("").isin([*CORE, *EXTRA, "mtp_drop"])]
    base = measured.loc[measured["label"] == "ntp",
                        ["size", "seed", "first_value", "early_value", "final_value"]]
    rows = measured[measured["label"] != "ntp"].merge(base, on=["size", "seed"], how="left",
                                                      suffixes=("", "_ntp"))
    return rows.assign(deficit=rows["final_value"] - rows["final_value_ntp"],
                       shock=rows["first_value"] - rows["first_value_ntp"],
                       early_shock=rows["early_value"] - rows["early_value_ntp"]).dropna(subset=["deficit"])


def _size(exponent: float) -> str:
    return "-inf" if exponent == -math.inf else "inf" if exponent == math.inf else f"{10 ** exponent:.2g}"


def vanishing_size(runs_table, label: str = "add4") -> str:
    """H3 extrapolated: the fitted deficit of `label` against log10(parameters), the size at which
    it would reach 0, and the Fieller 95% interval of that size (`stats.zero_crossing`), as one
    sentence."""
    from lab.analysis import stats
    part = runs_table[runs_table["label"] == label]
    sizes = sorted(set(part["size"]), key=size_value)
    if len(sizes) < 2:
        return f"H3 extrapolation: {label} ran at {len(sizes)} size(s); a trend needs 2 or more."
    c = stats.zero_crossing([math.log10(size_value(s)) for s in part["size"]],
                            list(part["deficit"]))
    head = (f"H3 extrapolation ({label} - ntp, final head-1 loss, {len(part)} runs over sizes "
            f"{', '.join(sizes)}, linear in log10 parameters): ")
    if c.band_everywhere:
        return head + "the fit's 95% band contains 0 at every size: no size is excluded as the one where it vanishes."
    if not c.inside:
        return (head + "the slope is not distinguishable from 0, and the fit's 95% band excludes "
                       f"0 from {_size(c.lo)} to {_size(c.hi)} parameters: by this trend the "
                f"deficit does not vanish anywhere "
                "in that range.")
    where = "inside" if size_value(sizes[0]) <= 10 ** c.x0 <= size_value(sizes[-1]) else "outside"
    return (head + f"it would reach 0 at {_size(c.x0)} parameters (95% interval {_size(c.lo)} to "
                   f"{_size(c.hi)}; {where} the measured range).")


RECIPES = ("add4", "carve4", "linear4", "deepseek4", "add4_w0.3", "add4_w0.1", "add4_sg",
           "add4_lr0.3",
           "add4_warm")  # the 4-head continuations


def recipe_sentences(runs_table) -> list[str]:
    """The recipe search: per size, the 4-head recipe with the smallest final deficit against `ntp`,
    with its paired 95% CI, and whether any recipe *improves* next-token loss (a CI below 0 after a
    Bonferroni correction over the recipes tried at that size: picking the best of k is a
    selection)."""
    from lab.analysis import stats
    out, sg_better = [], False
    for size, part in sorted(runs_table.groupby("size"), key=lambda kv: size_value(kv[0])):
        tried = {r: dict(zip(g["seed"],
                             g["deficit"])) for r, g in part.groupby("label") if r in RECIPES}
        if not tried:
            continue
        level = 1 - (1 - stats.LEVEL) / len(tried)
        effects = {r: stats.paired_difference(d, dict.fromkeys(d, 0.0), level=level, method="t")
                   for r, d in tried.items()}
        best = min(effects, key=lambda r: effects[r].mean)
        better = [r for r, e in effects.items() if e.hi < 0]
        sg_better = sg_better or "add4_sg" in better
        verdict = (f"{', '.join(better)} improve(s) on next-token continuation" if better else
                   "no recipe improves on next-token continuation (no corrected CI lies below 0)")
        out.append(f"Recipe search, {size} ({len(tried)} recipes, {level:.1%} Bonferroni CIs): the "
                   "smallest deficit "
                   f"is {best}'s, {stats.format_effect(effects[best])}; {verdict}.")
    if sg_better:
        out.append(SG_NOTE)
    return out


SG_NOTE = ("With the stop-gradient (add4_sg) the trunk receives head 1's gradient only, as in ntp; "
           "a difference from ntp can come only from the global gradient-norm clip "
           "(`train.grad_clip`), which also counts the extra heads' gradients and so shortens the "
           "trunk's steps: a step-size effect, not a transfer from the multi-token objective.")


@figure("10_table_s6", "What explains Table S6: continued pretraining with n' heads", EXPERIMENT,
        "Next-token deficit: head-1 loss on held-out data of the pretraining distribution minus "
        "next-token continuation's (`ntp`) at the same size and seed (nats; > 0 is worse). (a) "
        "final deficit against model size per n' (heads added on top); (b) the deficit of 4 "
        "added heads over continuation tokens, per size (step 0: the shock); (c) final deficit "
        "against the step-0 shock, per run; (d) final deficit against the run's mean cosine "
        "between head k's and head 1's trunk gradients. Bars: 95% t-intervals over seeds. The "
        "verdicts below come from the H1-H6 rows of CLAIMS.md. Variants, each continuing the "
        "n=1 model on the same data: `add2`, `add3`, `add4`: n' = 2, 3 or 4 heads, the new ones "
        "added on top (output projections zero); `carve4`: 4 heads carved from the top blocks; "
        "`linear4`: 4 linear heads; `deepseek4`: 4 DeepSeek-V3 modules; `add4_w0.3`, "
        "`add4_w0.1`: add4 with heads 2..4 weighted 0.3 or 0.1 in the loss; `add4_sg`: heads "
        "2..4 read the trunk through a stop-gradient; `add4_rand`: added heads randomly "
        "initialised; `add4_lr0.3`: pretrained weights at 0.3x the learning rate; `add4_warm`: "
        "learning-rate warm-up over half the continuation; and `mtp_drop`: the n=4 model "
        "continued with next-token loss.")
def table_s6_figure(sel: Selection) -> Output:
    from lab.analysis import claims, plots, prose
    sel.require(EXPERIMENT)
    runs_table = per_run(sel)
    if runs_table.empty:
        raise Missing(f"`{EXPERIMENT}`: no continuation run with its `ntp` control complete")
    by_size = plots.summarise(runs_table[runs_table["label"].isin(["add2", "add3", "add4"])],
                              ["label", "size"],
                              "deficit")
    curves = deficit_curves(sel)
    recovery = plots.summarise(curves[curves["label"] == "add4"], ["size", "step", "tokens"],
                               "deficit")
    fig = plot_table_s6(by_size, recovery, runs_table, order=VARIANT_ORDER,
                              title="What explains Table S6 (continued pretraining)")
    sentences = []
    ours = list(CLAIMS)  # H2 reads `finetune`: CLAIMS.md
    evals = sel.evals()
    for claim, (_, row) in zip(ours, claims.ledger(lambda _: evals, sel.preset, ours).iterrows()):
        result = row["verdict"] if row["verdict"] == "not run" else f"{row['effect']}, {row['verdict']}"
        sentences.append(f"{claim.key} ({claim.statement}): {result}.")
    sentences += [vanishing_size(runs_table), *recipe_sentences(runs_table)]
    tables = [("final deficit per n' and size", prose.readable(by_size)),
              ("deficit of add4 over continuation tokens", prose.readable(recovery)),
              ("per run: final deficit, step-0 shock, gradient cosine",
               prose.readable(runs_table[["label", "size", "seed", "deficit", "shock",
                                          "early_shock", "align_cos"]]
                              .sort_values(["label", "size", "seed"])))]
    return Output(fig, tables, sentences, sel, verdicts=sentences)
