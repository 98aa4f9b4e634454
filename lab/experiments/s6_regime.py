"""Table S6 in its own regime: over-trained next-token bases, a short continuation on a shifted domain.

Llama 2 saw about 285 tokens per parameter of general data in which code was a minority; Table
S6 then continued it on code alone for 200B tokens, 10% of its pretraining, and scored code
capability. The `continued` experiment measured the lab's reading of S6 on bases of 0.3-10
tokens per parameter, continued for as long as they were pretrained, on unchanged data. This
experiment rebuilds S6's shape:

- **Bases** (stage 1): next-token models on a `mixture` of induction stories (general domain,
  90% of sequences) and polynomial arithmetic in F7[X]/(X^5) with one operation (target domain,
  10%), in one shared vocabulary, trained to a budget in tokens per parameter
  (`train.tokens_per_param`) on a finished cosine schedule. Ratio axis at 100K: 10-1000; size axis
  at a high ratio: 300K at 300, 1M at 30 (what a CPU allows), and 300K at 10 (a few CPU minutes, so
  H3 reads at three budgets); 5 seeds on the ratio axis and for short bases, 3 for the size axis's
  long ones (`base_seeds`).
- **Continuations** (stage 2, `continuations`): the target domain alone (the same mixture with
  the general weight at 0, so forgetting of induction is still measured), for `DOSE` of the
  base's steps (10%; at 100K also 1% and 30%), as next-token (`ntp`), carved heads ("+0 layers",
  `carve4`), linear heads (`linear4`), added heads ("+3 layers", `add4`) and n' = 2 (`add2`).

Why this target: one-operation polynomials are learnable at 100K (exact match 0.53 after 1.6M
tokens of pure polynomial training; LOG 2026-12-06), so next-token continuation can land
between floor and ceiling, and exact match has a graded counterpart (`answer_nll`).
"""

from __future__ import annotations

import math
import re
from typing import Any

from lab.analysis.claim import FINETUNING, Claim
from lab.analysis.registry import Missing, Output, Selection, figure
from lab.build import build_config
from lab.config import RunConfig, size_value
from lab.experiments import SEEDS, experiment, measure_each, seeds

EXPERIMENT = "s6_regime"
GENERAL_SHARE = 0.9
KNOBS = ("induction.seq_len=64,induction.eval_stories=256,"
         "polynomial.max_ops=1,polynomial.eval_ops=1,polynomial.eval_size=500")
PRETRAIN_MIX = f"induction:{GENERAL_SHARE:g},polynomial:{1 - GENERAL_SHARE:g}"
TARGET_ONLY = "induction:0,polynomial:1"
BASES = {  # size -> tokens per parameter; seeds: `base_seeds`
    "quick": {"100K": (10, 30, 100, 300, 1000), "300K": (10, 300), "1M": (30,)},
    "paper": {"10M": (10, 30, 100, 300), "30M": (10, 300), "100M": (100,)},
}
BATCH = {"quick": 32, "paper": 128}


def base_run(preset: str, size: str, ratio: float, seed: int) -> RunConfig:
    """A next-token base on the pretraining mixture, `ratio` tokens per non-embedding parameter."""
    overrides = [f"task.components={PRETRAIN_MIX}", f"task.knobs={KNOBS}",
                 f"train.batch_size={BATCH[preset]}",
                 "train.eval_examples=0"]
    config = build_config("mixture", heads=1, size=size, seed=seed, experiment=EXPERIMENT,
                          overrides=overrides, tokens_per_param=ratio)
    config.label = f"base-tpp{ratio:g}"
    return config


RATIO_AXIS = {"quick": "100K", "paper": "10M"}  # the size whose bases span the ratio axis; others: size axis


SHORT_BASE_TOKENS = 10_000_000  # a base of at most this many tokens trains in minutes on one CPU thread


def base_seeds(preset: str, size: str, ratio: float) -> tuple[int, ...]:
    """The ratio axis and short bases get the lab's seeds (5 at 100K and 300K in quick); the size
    axis's long bases 3, as 1M does: one 300K base at 300 tokens/param costs over an hour on one CPU
    thread, no quick run."""
    short = ratio * size_value(size) <= SHORT_BASE_TOKENS
    return seeds(preset, size) if size == RATIO_AXIS[_preset(preset)] or short else SEEDS


def _preset(preset: str) -> str:
    return "paper" if preset == "paper" else "quick"


def bases(preset: str) -> list[RunConfig]:
    """Every base, cheapest (ratio x size) first, all seeds of a (size, ratio) together."""
    cells = sorted((ratio * size_value(size), size, ratio)
                   for size, ratios in BASES[_preset(preset)].items() for ratio in ratios)
    return [base_run(preset, size, ratio,
                     seed) for _, size, ratio in cells for seed in base_seeds(preset, size, ratio)]


VARIANTS: dict[str, dict] = {  # Table S6's rows, and n' = 2
    "ntp": dict(heads=1, attach="keep"),
    "carve4": dict(heads=4, attach="carve"),  # "+0 layers": heads carved from the top blocks
    "linear4": dict(heads=4, attach="linear"),
    "add4": dict(heads=4, attach="add", head_init="zero"),  # "+3 layers"
    "add2": dict(heads=2, attach="add", head_init="zero"),  # n' = 2
}
DOSE = 0.1  # continuation steps / base steps: Table S6's 200B of 2T tokens
DOSES = (0.01, 0.3)  # the dose axis: at DOSE_SIZE and DOSE_RATIO, for ntp and add4
DOSE_SIZE, DOSE_RATIO, DOSE_VARIANTS = "100K", 100, ("ntp", "add4")
# evaluations over a continuation (plus step 0): evaluation, not training, is its cost
CONTINUATION_EVALS = 8


def continuation(base: RunConfig, digest: str, variant: str, dose: float = DOSE) -> RunConfig:
    """Continue the committed base `digest` (the run `base`) on the target domain alone for `dose`
    of its steps (the same batch size: that fraction of its sequences), as `variant`."""
    # imports torch: only when planning continuations
    from lab.checkpoints import target_model_config
    spec = VARIANTS[variant]
    steps = max(1, round(dose * base.train.steps))
    overrides = [f"task.components={TARGET_ONLY}", f"task.knobs={KNOBS}",
                 f"train.batch_size={base.train.batch_size}", "train.eval_examples=0",
                 f"train.eval_every={max(1, steps // CONTINUATION_EVALS)}"]
    config = build_config("mixture", heads=spec["heads"], size=base.size, steps=steps,
                          seed=base.seed,
                          experiment=EXPERIMENT, overrides=overrides)
    config.train.checkpoint_every = config.train.eval_every
    config.model = target_model_config(base.model, spec["heads"], spec["attach"])
    ft = config.finetune
    ft.init_from, ft.attach, ft.head_init = f"base:{digest}", spec["attach"], spec.get("head_init",
                                                                                       "random")
    config.label = f"{variant}-tpp{base.train.tokens_per_param:g}-dose{dose:g}"
    return config


def continuations(preset: str, digests: dict[str, str] | None = None) -> list[RunConfig]:
    """Every continuation of the bases committed to `bases/` (`lab.bases`; run name -> digest): a
    continuation references its base by digest, so a (size, ratio) cell's continuations are planned
    once all its seeds' bases are committed (an arm never plans fewer seeds than its bases)."""
    from lab import bases as store
    from lab.resolve import resolve
    digests = store.by_run_name() if digests is None else digests
    cells: dict[tuple, list] = {}
    for base in bases(preset):
        base = resolve(base)[0]
        cells.setdefault((base.size, base.train.tokens_per_param), []).append(
            (base, digests.get(base.run_name())))
    out = []
    for (size, ratio), members in cells.items():
        if any(digest is None for _, digest in members):
            continue
        doses = [(v, DOSE) for v in VARIANTS]
        if size == DOSE_SIZE and ratio == DOSE_RATIO:
            doses += [(v, d) for d in DOSES for v in DOSE_VARIANTS]
        out += [continuation(base, digest, v, d) for base, digest in members for v, d in doses]
    return out


def configs(preset: str) -> list[RunConfig]:
    """Table S6 regime: over-trained next-token bases on a mixture, then a 10% continuation on its minority."""
    return bases(preset) + continuations(preset)


PROBES = "probes.json"  # per run: linear probes (H7) and, for bases, sharpness (H1); `measure`
PROBE_SEQUENCES = 256  # held-out sequences per domain


def held_out(task, domain: str, n: int = PROBE_SEQUENCES) -> list:
    """Fixed held-out sequences of one domain of the mixture (a stream no training step draws)."""
    import numpy as np
    rng = np.random.default_rng([task.config.eval_seed, 0x50524F42, list(task.parts).index(domain)])
    return [task.parts[domain].sample_batch(rng, 64) for _ in range(max(1, n // 64))]


def measure_run(run_dir) -> dict:
    """Probes of one complete run on both domains, and the sharpness of a base (n = 1, no init), as
    `{"metrics": {"<domain>/probe/layer<l>/k<k>": ..., "<domain>/sharpness/...": ...}}`."""
    from lab import probes
    from lab.checkpoints import load_run
    config, model, task = load_run(run_dir, allow_incomplete=False, what="s6_regime measure")
    out: dict = {}
    for domain in task.parts:
        data = held_out(task, domain)
        values = probes.future_token_probes(model, data)
        if not config.finetune.init_from:
            values |= {"sharpness/perturbation": probes.perturbation_sharpness(model, data),
                       "sharpness/top_eigenvalue": probes.top_hessian_eigenvalue(model, data)}
        out |= {f"{domain}/{k}": v for k, v in values.items()}
    return {"metrics": out}


CONFLICT = "conflict.json"  # per multi-head continuation: its heads' gradient agreement (H4)
TARGET = "polynomial"  # the target domain of every continuation
ALIGN = f"{TARGET}/align/cos_mean"


def measure_conflict(run_dir) -> dict:
    """H4's gradient conflict at a multi-head continuation's final checkpoint: the cosine between
    each extra head's trunk gradient and head 1's, summed over held-out target sequences
    (`lab.alignment.gradient_alignment`), per head and as their mean `polynomial/align/cos_mean`."""
    import torch

    from lab import alignment
    from lab.checkpoints import load_run
    from lab.evaluate import batch_tensors
    config, model, task = load_run(run_dir, allow_incomplete=False, what="s6_regime measure")
    n = config.model.n_future
    data = [batch_tensors(b, torch.device("cpu"), n) for b in held_out(task, TARGET)]
    values = alignment.gradient_alignment(model, data)
    cosines = [v for k, v in values.items() if k.startswith("align/cos/")]
    values["align/cos_mean"] = sum(cosines) / len(cosines) if cosines else float("nan")
    return {"metrics": {f"{TARGET}/{k}": v for k, v in values.items()}}


def measure(preset: str = "quick", root="runs", force: bool = False) -> int:
    """Write `probes.json` into every complete run of the plan that lacks one, and `conflict.json`
    into every multi-head continuation that lacks one; returns how many files were written."""
    return (measure_each(EXPERIMENT, preset, root, PROBES, measure_run, force)
            + measure_each(EXPERIMENT, preset, root, CONFLICT, measure_conflict, force,
                           keep=lambda config: config.model.n_future > 1))


# ----- claims: the hypotheses again, per ratio (CLAIMS.md rows name the base's tokens per
# parameter) -----

# validation batches of a continuation are target-domain data: its next-token loss there
DEFICIT = "head1/loss"
# every quick size has 5 blocks: embeddings, 4 trunk blocks, head 1 = layer 5
HEAD1_OUTPUT = "polynomial/probe/layer5/k2"
SOURCE = "Table S6 regime"


def _arm(variant: str, ratio: float, dose: float = DOSE) -> dict[str, str]:
    return {"label": f"{variant}-tpp{ratio:g}-dose{dose:g}"}


def ratio_claims(ratio: float, size: str = "100K") -> tuple[Claim, ...]:
    """The hypotheses at one base budget: the tax (deficit), H1 (shock), H4 (gradient conflict), H5
    (dose), H6 (layers), H7 (specialisation) and the capability, each add4 (or carve4, add2) against its control, paired by
    seed."""
    at = f"{size}, base at {ratio:g} tokens/param, 10% continuation"
    where = {"size": size}

    def claim(key, statement, a, b, **kw):
        return Claim(f"{key}-{size}-tpp{ratio:g}", f"{SOURCE}, {key.split('-')[0]}",
                     f"{statement} ({at})",
                     EXPERIMENT, a, b, where, family=FINETUNING, **kw)
    return (
        claim("S6-deficit",
              "4-head continuation ('+3 layers') ends with a higher next-token loss on the target "
              "domain than next-token continuation (the tax)", _arm("add4", ratio),
              _arm("ntp", ratio),
              measure="final_value", metric=DEFICIT),
        claim("H1-shock",
              "heads carved from the top blocks ('+0 layers') shock and never recover: carve4 ends "
              "with a higher next-token loss than add4", _arm("carve4", ratio), _arm("add4", ratio),
              measure="final_value", metric=DEFICIT),
        claim("H4-conflict",
              "the less the added heads' trunk gradients agree with head 1's (mean cosine on "
              "held-out target data at the end), the larger the next-token deficit: slope of "
              "(add4 - ntp, final head-1 loss) against add4's cosine, over seeds",
              _arm("add4", ratio), _arm("ntp", ratio), measure="final_value", metric=DEFICIT,
              trend=ALIGN, trend_file=CONFLICT, expected_sign=-1),
        claim("H5-heads", "4 heads cost more next-token quality than 2", _arm("add4", ratio),
              _arm("add2", ratio),
              measure="final_value", metric=DEFICIT),
        claim("H6-layers", "'+3 layers' heads keep next-token quality better than linear heads",
              _arm("add4", ratio), _arm("linear4", ratio), measure="final_value", metric=DEFICIT,
              expected_sign=-1),
        claim("H7-spec",
              "4-head continuation makes head 1's output state carry more of token t+2 than "
              "next-token continuation (linear probe, target domain)"
              , _arm("add4", ratio), _arm("ntp", ratio),
              file=PROBES, metric=HEAD1_OUTPUT,
              file_means="t+2 probe accuracy at head 1's output (probes.json)"),
        claim("S6-task",
              "4-head continuation does not beat next-token continuation on the target capability "
              "(polynomial answer NLL at the last evaluation, graded; lower is better)",
              _arm("add4", ratio),
              _arm("ntp", ratio), measure="final_value", metric="polynomial/answer_nll"),
    )


def committed(index: dict | None = None) -> dict[str, list[float]]:
    """Size -> the base budgets whose every seed's base is committed, as the plan orders them
    (default: the committed bases' index, `lab.bases`): their continuations are planned
    (`continuations`), so their claims name planned runs (`tests/test_extending.py`); a budget
    still training has no rows yet."""
    from lab import bases as store
    index = store.read_index() if index is None else index
    have: dict[tuple[str, float], set[int]] = {}
    for e in index.values():
        if e["experiment"] == EXPERIMENT:
            have.setdefault((e["size"], e["tokens_per_param"]), set()).add(e["seed"])
    out = {size: [r for r in ratios if have.get((size, r), set()) >= set(base_seeds("quick", size, r))]
           for size, ratios in BASES["quick"].items()}
    return {size: ratios for size, ratios in out.items() if ratios}


def size_claims(by_size: dict[str, list[float]]) -> tuple[Claim, ...]:
    """H3 at every base budget committed at two or more sizes: the slope of the deficit (add4 -
    ntp, final head-1 loss on the target) per decade of model size, paired by seed within size."""
    sizes_at: dict[float, list[str]] = {}
    for size, ratios in by_size.items():
        for ratio in ratios:
            sizes_at.setdefault(ratio, []).append(size)
    return tuple(
        Claim(f"H3-size-tpp{ratio:g}", f"{SOURCE}, H3", "the next-token deficit of 4-head "
              "continuation (add4 - ntp, final head-1 loss on the target) shrinks with model size "
              f"({', '.join(sizes)}, bases at {ratio:g} tokens/param, 10% continuation)",
              EXPERIMENT, _arm("add4", ratio), _arm("ntp", ratio), measure="final_value",
              trend="size", metric=DEFICIT, expected_sign=-1, family=FINETUNING)
        for ratio, sizes in sorted(sizes_at.items()) if len(sizes) >= 2)


def claims(by_size: dict[str, list[float]]) -> tuple[Claim, ...]:
    """Every row this experiment has runs for: the hypotheses per committed (size, budget), then H3
    across sizes."""
    return (*(c for size, ratios in by_size.items() for ratio in ratios
              for c in ratio_claims(ratio, size)), *size_claims(by_size))


CLAIMS = claims(committed())

experiment(EXPERIMENT, measure=measure, claims=CLAIMS)(configs)


# ----- figure 12: the deficit, the capability and the base against tokens per parameter -----

LABEL = re.compile(r"^(?P<variant>[a-z0-9]+)-tpp(?P<ratio>[0-9.]+)-dose(?P<dose>[0-9.]+)$")


def continuation_table(sel: Selection) -> Any:
    """One row per continuation evaluation: variant, base ratio, dose, size, seed, the fraction of
    the continuation done, and each metric minus `ntp`'s at the same size, ratio, dose, seed and
    step."""
    rows = sel.evals()
    parsed = rows["label"].fillna("").str.extract(LABEL)
    rows = rows.assign(variant=parsed["variant"], ratio=parsed["ratio"].astype(float),
                       dose=parsed["dose"].astype(float)).dropna(subset=["variant"])
    if rows.empty or "ntp" not in set(rows["variant"]):
        raise Missing(f"`{EXPERIMENT}`: no complete next-token continuation (`ntp`) to compare with")
    rows = rows.assign(fraction=rows["step"] / rows.groupby("run_name")["step"].transform("max"))
    keys = ["size", "ratio", "dose", "seed", "step"]
    metrics = [DEFICIT, "eval/polynomial/answer_nll", "eval/polynomial/exact_match/in_domain",
               "eval/induction/second_token_acc"]
    control = rows.loc[rows["variant"] == "ntp", [*keys, *metrics]]
    rows = rows[rows["variant"] != "ntp"].merge(control, on=keys, how="left", suffixes=("", "_ntp"))
    for m in metrics:
        rows[f"diff:{m}"] = rows[m] - rows[f"{m}_ntp"]
    return rows


def base_table(sel: Selection) -> Any:
    """One row per complete base: its size, ratio, seed, final validation loss, how converged it is
    (`slope`: nats per doubling of tokens over its last doubling, `lab.budget.doubling_slope`) and
    its probes/sharpness."""
    import pandas as pd

    from lab.budget import doubling_slope
    evals = sel.evals()
    out = []
    for _, run in sel.summaries.iterrows():
        label = str(run.get("label") or "")
        if not label.startswith("base-tpp"):
            continue
        curve = evals[evals["run_name"] == run["run_name"]].sort_values("step")
        data = (sel.run_file(run["run_dir"], PROBES) or {}).get("metrics", {})
        out.append({"size": run["size"], "seed": run["seed"],
                    "ratio": float(label.removeprefix("base-tpp")),
                    "val_loss": float(curve[DEFICIT].iloc[-1]) if len(curve) else math.nan,
                    "slope": doubling_slope(curve["tokens"].tolist(), curve[DEFICIT].tolist()),
                    **{k: v for k, v in data.items() if "sharpness" in k or k == HEAD1_OUTPUT}})
    return pd.DataFrame(out)


@figure("12_s6_regime",
        "Table S6 in its own regime: the deficit against the base's tokens per parameter and size",
        EXPERIMENT,
        "Next-token bases trained on a mixture of induction stories (90% of sequences) and "
        "one-operation polynomials (10%) to a budget in tokens per parameter (finished cosine "
        "schedules; 10-1000 at 100K, the size axis at 300K and 1M), then continued on polynomials "
        "alone for 10% of their steps. Variants: ntp (next-token continuation, the control), add4 "
        "('+3 layers': 3 heads added on top, zero output projections), add2 (one head added), "
        "carve4 ('+0 layers': heads carved from the top blocks), linear4 (linear heads). (a) final "
        "next-token deficit at 100K: head-1 loss on held-out polynomial data minus ntp's, paired "
        "by seed (nats; > 0 is worse); (b) add4's deficit over the continuation per size and base "
        "budget (fraction 0: the shock); (c) the target capability difference at 100K, polynomial "
        "answer NLL (graded) minus ntp's; (d) the base's sharpness, the top eigenvalue of the "
        "Hessian of head 1's loss on held-out polynomial data (power iteration), per size; (e) "
        "and (f) add4's final deficit and capability difference against model size, one line per "
        "base budget reached at two or more sizes. Bars: 95% t-intervals over seeds (they exclude "
        "test-item sampling).")
def s6_regime_figure(sel: Selection) -> Output:
    from lab.analysis import plots
    sel.require(EXPERIMENT)
    table = continuation_table(sel)
    final = table[(table["fraction"] == 1.0) & (table["dose"] == DOSE)]
    axis_size = RATIO_AXIS[_preset(sel.preset)]
    ratio_axis = final[final["size"] == axis_size]
    fig, axes = plots.new_figure(6, ncols=3)
    deficit = plots.summarise(ratio_axis, ["variant", "ratio"], f"diff:{DEFICIT}")
    plots.mean_lines(axes[0], deficit, "ratio", "variant", log=True)
    add4 = table[(table["variant"] == "add4") & (table["dose"] == DOSE)]
    # one line per (size, budget), in size then budget order
    cells = {size_value(z) * 1e4 + r: f"{z}, {r:g} tokens/param"
             for z, r in zip(add4["size"], add4["ratio"])}
    recovery = plots.summarise(add4.assign(cell=add4["size"].map(size_value) * 1e4 + add4["ratio"]),
                               ["cell", "fraction"], f"diff:{DEFICIT}")
    plots.mean_lines(axes[1], recovery, "fraction", "cell", label=cells.get)
    capability = plots.summarise(ratio_axis, ["variant", "ratio"], "diff:eval/polynomial/answer_nll")
    plots.mean_lines(axes[2], capability, "ratio", "variant", log=True)
    bases_ = base_table(sel)
    converged = (plots.summarise(bases_, ["size", "ratio"], "slope").merge(
        plots.summarise(bases_, ["size", "ratio"], "val_loss")[["size", "ratio", "mean"]],
        on=["size", "ratio"], suffixes=("", "_val_loss")) if len(bases_) else bases_)
    sharpness = "polynomial/sharpness/top_eigenvalue"
    if sharpness in bases_:
        sharp = plots.summarise(bases_, ["size", "ratio"], sharpness)
        plots.mean_lines(axes[3], sharp, "ratio", "size", log=True)
    across = final[(final["variant"] == "add4")
                   & final["ratio"].isin(ratios_at_sizes(final, minimum=2))]
    by_size = {}
    for ax, metric in zip(axes[4:], (DEFICIT, "eval/polynomial/answer_nll")):
        by_size[metric] = plots.summarise(across, ["ratio", "size"], f"diff:{metric}")
        if len(by_size[metric]):
            plots.mean_lines(ax, by_size[metric], "size", "ratio", x_of=size_value, log=True,
                             label=lambda r: f"bases at {r:g} tokens/param")
            sizes = sorted(set(by_size[metric]["size"]), key=size_value)
            ax.set_xscale("log")
            ax.set_xticks([size_value(z) for z in sizes], sizes)
            ax.minorticks_off()
    titles = (f"(a) final next-token deficit ({axis_size})",
              "(b) add4 deficit over the continuation",
              f"(c) capability: answer NLL minus ntp's ({axis_size})", "(d) base sharpness",
              "(e) add4 final deficit against size", "(f) add4 capability against size")
    xlabels = ("base tokens/param (log scale)", "fraction of the continuation",
               "base tokens/param (log scale)", "base tokens/param (log scale)",
               "non-embedding parameters (log scale)", "non-embedding parameters (log scale)")
    for ax, title, xlabel in zip(axes, titles, xlabels):
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(xlabel, fontsize=8)
        if "tokens/param" in xlabel:
            plots.ratio_axis(ax, table["ratio"], xlabel)
        if ax is not axes[3]:
            ax.axhline(0.0, color="grey", linewidth=0.8)
        if ax.get_legend_handles_labels()[0]:
            plots.legend_beside(ax)
    for ax in (axes[0], axes[1], axes[4]):
        ax.set_ylabel("head-1 loss minus ntp's (nats)", fontsize=8)
    for ax in (axes[2], axes[5]):
        ax.set_ylabel("answer NLL minus ntp's (nats)", fontsize=8)
    axes[3].set_ylabel("top Hessian eigenvalue", fontsize=8)
    fig.suptitle("Table S6 in its own regime", fontsize=10)
    return Output(fig, [(f"final deficit (nats), per variant and base budget ({axis_size})",
                         deficit),
                        (f"capability difference (answer NLL, nats; {axis_size})", capability),
                        ("add4 final deficit (nats) per base budget and size",
                         by_size[DEFICIT]),
                        ("add4 capability difference (answer NLL, nats) per base budget and size",
                         by_size["eval/polynomial/answer_nll"]),
                        ("bases: how converged (slope = validation loss change per doubling of "
                         "tokens over the last doubling, nats; mean_val_loss = final validation "
                         "loss on the mixture)", converged)], [], sel)


def ratios_at_sizes(frame, minimum: int = 2) -> list[float]:
    """The base budgets that `frame` (rows with `size` and `ratio`) holds at `minimum` sizes or
    more: the size axis."""
    counts = frame.groupby("ratio")["size"].nunique()
    return sorted(counts[counts >= minimum].index)
