"""The recipe tournament: every published way of giving a pretrained next-token model multi-token
predictions (lab/recipes.py), head to head on the same bases, seeds and continuation budget.

Arms per base and seed: `ntp` (next-token continuation, the control every difference is against)
and one continuation per recipe in `lab.config.RECIPES`, selected by `finetune.recipe`. Recipes with
heads attach 4 heads on top of the base (`--attach add`, zero-initialised output projections, as the
`add4` arm of `continued` and `s6_regime`); gated adapters and registers keep the base's one head and
predict tokens t+2..t+4 with side tokens. Every arm trains for the same number of steps on the same
batches.

Bases, decided when the plan is made (`base_source`), the same way for every arm:
- the Table S6 regime's over-trained bases (`s6_regime`), when every base the tournament names
  (`S6_BASES`: size and tokens per parameter, every seed the regime trains) is committed to `bases/` (`lab.bases`).
  Continuations then reference `base:<digest>` and continue on the regime's target domain for its
  dose (10% of the base's steps), exactly as `s6_regime`'s continuations do;
- otherwise short next-token bases in the `continued` experiment's style (induction, trained here as
  stage 1, referenced as `@<run name>`), continued on the same data for as many steps.
So the plan changes, all at once, when the last S6 base is committed: a part-committed set never
mixes the two. `python -m lab.sweep tournament --dry-run` names the source in its description line.

Measure step (`python -m lab.experiments.tournament [--preset P]`): for every complete run, writes
`recipe.json` into its run directory: extra parameters (training, inference), estimated training
FLOPs, accuracy of its prediction of token t+k on held-out target data (heads or side tokens), and
self-speculative decoding at k = n (tokens per forward, and whether the output equals greedy
decoding; registers have no heads, so `none`). The `ntp` run also gets Mehra et al.'s no-training
reference: its base's head-1 distribution rolled forward, greedy and marginalised over the top
`REFERENCE_TOP` tokens. The next-token deficit (head-1 loss minus `ntp`'s) and the capability
difference (primary and graded metric minus `ntp`'s) are read from each run's metrics.jsonl by the
analysis layer, paired by seed. Figures and claims come from the results store, not from here.
"""

from __future__ import annotations

import math
from typing import Any

from lab.analysis.claim import PEERS, Claim
from lab.analysis.registry import Missing, Output, Selection, figure
from lab.config import RECIPES, RunConfig, size_value
from lab.experiments import experiment, measure_each

EXPERIMENT = "tournament"
TASK = "induction"  # fallback bases (continued's style)
FALLBACK_SIZES = {"quick": ("100K", "300K"), "paper": ("3M", "10M")}
# size -> tokens/param
S6_BASES = {"quick": {"100K": 300, "300K": 300}, "paper": {"10M": 300, "30M": 300}}
HEADS = 4
REFERENCE_TOP = 4
SPEC_PROMPTS, SPEC_NEW = 8, 24
MEASURE = "recipe.json"


def arms() -> dict[str, dict]:
    """Arm name -> heads, attach mode and recipe ("" for the next-token control)."""
    from lab import recipes
    out = {"ntp": dict(heads=1, attach="keep", recipe="")}
    for name in RECIPES:
        side = recipes.REGISTRY[name].side
        out[name] = dict(heads=1 if side else HEADS, attach="keep" if side else "add", recipe=name)
    return out


def s6_bases(preset: str,
             committed: dict[str, str] | None = None) -> list[tuple[RunConfig, str]] | None:
    """The committed S6 regime bases the tournament names, with their digests; None unless all
    are."""
    from lab import bases as store
    from lab.experiments import s6_regime
    from lab.resolve import resolve
    committed = store.by_run_name() if committed is None else committed
    wanted = S6_BASES[preset]
    chosen = []
    for base in s6_regime.bases(preset):  # every seed the regime trains of the chosen (size, ratio)
        if wanted.get(base.size) == base.train.tokens_per_param:
            base = resolve(base)[0]
            if base.run_name() not in committed:
                return None
            chosen.append((base, committed[base.run_name()]))
    return chosen or None


def base_source(preset: str) -> str:
    """Which bases the plan continues (see the module docstring)."""
    return "s6_regime (committed bases)" if s6_bases(preset) else "continued-style bases trained as stage 1"


def _own(config: RunConfig, arm: dict, label: str) -> RunConfig:
    config.experiment = EXPERIMENT
    config.finetune.recipe = arm["recipe"]
    config.label = label
    return config


def s6_runs(preset: str, chosen: list[tuple[RunConfig, str]]) -> list[RunConfig]:
    """Every arm on every committed S6 base, as `s6_regime` continues them (target domain, its
    dose)."""
    from lab.experiments import s6_regime
    out = []
    for base, digest in chosen:
        for name, arm in arms().items():
            # heads=1 keep, or 4 heads added, zero init
            shape = "ntp" if arm["heads"] == 1 else "add4"
            config = s6_regime.continuation(base, digest, shape)
            out.append(_own(config, arm, f"{name}-tpp{base.train.tokens_per_param:g}"))
    return out


def fallback_runs(preset: str) -> list[RunConfig]:
    """`continued`-style next-token bases (stage 1) and every arm on each, same data and as many
    steps."""
    from lab.experiments.continued import preset_for
    from lab.experiments.finetune import _base, _finetune_run
    from lab.resolve import resolve
    from tasks import build_task
    out = []
    for size in FALLBACK_SIZES[preset]:
        p = preset_for(preset, size)
        task = build_task(TASK, p.general_task)
        vocab, block = task.vocab_size, task.seq_len - 1
        for seed in p.seeds:  # `lab.experiments.seeds`: 5 at the cheap CPU sizes, else 3
            source = _base(TASK, p.general_task, p, seed, p.pretrain_steps, 1, vocab, block)
            source.experiment, source.label = EXPERIMENT, "base"
            source = resolve(source)[0]
            out.append(source)
            for name, arm in arms().items():
                config = _finetune_run(p, TASK, p.target_task, seed, vocab, block, name, source,
                                       heads=arm["heads"], attach=arm["attach"], head_init="zero")
                out.append(resolve(_own(config, arm, name))[0])
    return out


def configs(preset: str) -> list[RunConfig]:
    """Recipe tournament: ntp and every recipe of lab/recipes.py on the same bases, seeds and budget."""
    chosen = s6_bases(preset)
    return s6_runs(preset, chosen) if chosen else fallback_runs(preset)


# ----- measure step -----

def _speculation(model, recipe, task, config) -> dict:
    """Tokens per forward at k = n with outputs compared to greedy decoding (fp32, CPU)."""
    import torch

    from lab import decode, recipes
    from lab.decode_bench import prompt_batches
    if recipe is not None and recipe.speculation == "none":
        return {"k": None, "tokens_per_forward": None, "exact": None,
                "note": "registers have no heads: they are dropped at inference, one token per "
                        "forward"}
    [(prompts, new)] = prompt_batches(task, SPEC_PROMPTS, 1, config.model.block_size, SPEC_NEW,
                                             torch.device("cpu"))
    reference = decode.greedy_decode(model, prompts, new)
    if recipe is not None and recipe.speculation == "side":
        results = [recipes.side_speculative_decode(model, recipe, p, new) for p in prompts]
        exact = all(torch.equal(out, ref) for (out, _), ref in zip(results, reference))
        return {"k": recipe.n,
                "tokens_per_forward": len(prompts) * new / sum(f for _, f in results),
                "exact": exact}
    out, stats = decode.speculative_decode(model, prompts, new, bf16=False)
    return {"k": model.config.n_future, "tokens_per_forward": stats.tokens_per_forward,
            "exact": bool(torch.equal(out, reference))}


def measure_run(run_dir) -> dict:
    """What one complete tournament run reports besides its metrics (see the module docstring)."""
    import torch

    from lab import recipes
    from lab.checkpoints import load_checkpoint, load_source, read_config
    from lab.evaluate import batch_tensors, validation_batches
    from lab.model import MTPTransformer
    from lab.resolve import resolve
    from lab.runs import CHECKPOINT
    config = read_config(run_dir)
    task = resolve(config, run_dir.parent)[1]
    model = recipes.build_model(config)  # a recipe's extra weights (adapters, registers) load too
    model.load_state_dict(load_checkpoint(run_dir / CHECKPOINT)["model"])
    model.eval()
    recipe = recipes.make(config) if config.finetune.recipe else None
    batches = [batch_tensors(b, torch.device("cpu"), 1) for b in validation_batches(task, config)]
    batches = [(inputs, targets[0]) for inputs, targets in batches]
    out = {"recipe": config.finetune.recipe or "ntp",
           "extra_parameters": recipe.extra_parameters(model) if recipe else {"train": 0,
                                                                              "inference": 0},
           "train_flops": recipes.train_flops(model, recipe, config),
           "head_acc": recipes.head_accuracy(model, recipe, batches),
           "speculative": _speculation(model, recipe, task, config)}
    if recipe is None and config.finetune.init_from:  # the control carries its base's reference
        source_config, state = load_source(config.finetune.init_from, run_dir.parent)
        source = MTPTransformer(source_config.model)
        source.load_state_dict(state)
        source.eval()
        out["reference"] = {f"top{top}": recipes.rolled_accuracy(source, batches, HEADS, top)
                            for top in (1, REFERENCE_TOP)}
    return {**out, "metrics": flat_metrics(out)}


def flat_metrics(out: dict) -> dict[str, float]:
    """The numbers of a `recipe.json` under flat names, as claims read a run's file ("metrics"):
    `tokens_per_forward` (only where the recipe speculates), `speculative_exact` (1 or 0),
    `head_acc/k<k>`, `extra_parameters/<train|inference>`, `train_flops` and, for `ntp`,
    `reference/top<t>/k<k>`."""
    spec = out["speculative"]
    flat: dict[str, float] = {"train_flops": float(out["train_flops"])}
    if spec["tokens_per_forward"] is not None:
        flat["tokens_per_forward"] = float(spec["tokens_per_forward"])
        flat["speculative_exact"] = float(bool(spec["exact"]))
    flat |= {f"head_acc/k{k}": float(v) for k, v in enumerate(out["head_acc"], 1)}
    flat |= {f"extra_parameters/{k}": float(v) for k, v in out["extra_parameters"].items()}
    for top, values in out.get("reference", {}).items():
        flat |= {f"reference/{top}/k{k}": float(v) for k, v in enumerate(values, 1)}
    return flat


def measure(preset: str = "quick", root="runs", force: bool = False) -> int:
    """Write `recipe.json` into every complete continuation of the plan lacking one (a base has no
    recipe); returns how many."""
    return measure_each(EXPERIMENT, preset, root, MEASURE, measure_run, force,
                        keep=lambda config: bool(config.finetune.init_from))


# ----- claims: each paper's own claim as far as the lab can test it at this scale -----

MARGIN_NLL = 0.02  # nats: "costs nothing" in next-token loss, stated before the runs
MARGIN_SPEED = 0.1  # tokens per forward: "keeps" self-speculative decoding
DEFICIT = "head1/loss"  # validation batches of a continuation are target data
S6_GRADED = "polynomial/answer_nll"  # the S6 regime's target capability, graded (lower is better)
SPEED = "tokens_per_forward"  # recipe.json "metrics"


def s6_committed(preset: str = "quick") -> bool:
    """Whether every S6 base the tournament names is committed, read from the bases' index alone
    (size, tokens per parameter, seed; no torch, so claims load light): `s6_bases`'s answer."""
    from lab import bases as store
    from lab.experiments import s6_regime
    have = {(e["size"], e["tokens_per_param"], e["seed"]) for e in store.read_index().values()
            if e["experiment"] == s6_regime.EXPERIMENT}
    planned = s6_regime.BASES["paper" if preset == "paper" else "quick"]
    want = {(size, ratio, seed) for size, ratio in S6_BASES[preset].items()
            if ratio in planned.get(size, ()) for seed in s6_regime.base_seeds(preset, size, ratio)}
    return bool(want) and want <= have


def sizes(preset: str = "quick") -> tuple[str, ...]:
    """The base sizes the plan continues (the committed S6 bases', else the fallback's)."""
    return tuple(S6_BASES[preset]) if s6_committed(preset) else FALLBACK_SIZES[preset]


def arm_label(name: str, preset: str = "quick", size: str = "100K") -> str:
    """The `label` of recipe `name`'s runs at `size` in the plan (`ntp` for the control)."""
    return f"{name}-tpp{S6_BASES[preset][size]:g}" if s6_committed(preset) else name


def size_claims(size: str, preset: str = "quick") -> tuple[Claim, ...]:
    """The recipes' published claims at one base size, each paired by seed with its control."""
    bases_ = "over-trained S6 bases" if s6_committed(preset) else "short next-token bases"
    at = f" ({size}, {bases_})"

    def arm(name: str) -> dict[str, str]:
        return {"label": arm_label(name, preset, size)}

    def claim(key, source, statement, a, b, **kw):
        return Claim(f"tour-{key}-{size}", source, statement + at, EXPERIMENT, arm(a), arm(b),
                     {"size": size}, family=PEERS, **kw)
    capability = (("(answer NLL at the last evaluation, graded: from these bases exact match sits "
                   "at a plateau, 0.246, that a continuation rarely leaves; `s6_regime`)",
                   dict(measure="final_value", metric=S6_GRADED, expected_sign=-1))
                  if s6_committed(preset) else ("(primary metric, validation-selected step)", {}))
    speed = dict(file=MEASURE, metric=SPEED,
                 file_means="tokens per forward, self-speculative decoding at k = n, output equal "
                            "to greedy (recipe.json)")
    return (
        claim("gated", "Samragh et al. 2025", "gated adapters cost nothing in next-token quality: "
              f"head-1 loss on held-out target data within +-{MARGIN_NLL:g} nats of next-token "
              "continuation's", "gated", "ntp", measure="final_value", metric=DEFICIT, target=0.0,
              tolerance=MARGIN_NLL),
        claim("curriculum", "Aynetdinov & Akbik 2025", "the forward curriculum hurts next-token "
              "quality less than all heads at once (data targets, weight 1)", "curriculum_fwd",
              "data_w1", measure="final_value", metric=DEFICIT, expected_sign=-1),
        claim("curriculum-speed", "Aynetdinov & Akbik 2025", "the forward curriculum keeps "
              f"self-speculative decoding: tokens per forward within +-{MARGIN_SPEED:g} of all "
              "heads at once", "curriculum_fwd", "data_w1", target=0.0, tolerance=MARGIN_SPEED,
              **speed),
        claim("registers", "Gerontopoulos et al. 2025 (MuToR)", "registers raise a finetuned "
              "model's capability over next-token continuation " + capability[0], "registers",
              "ntp", **capability[1]),
        claim("distill", "Kirchenbauer et al. 2026; Zhao et al. 2026", "self-distillation targets "
              "raise acceptance over data targets: more tokens per forward", "distill", "data_w1",
              **speed),
    )


CLAIMS = tuple(c for size in sizes() for c in size_claims(size))

experiment(EXPERIMENT, measure=measure, claims=CLAIMS)(configs)



# ----- figure 14: the Pareto front of next-token deficit against decoding speed -----

def run_table(sel: Selection) -> Any:
    """One row per complete continuation: size, seed, recipe (`ntp` for the control), head-1 loss
    at the last evaluation (`deficit_loss`), the primary metric at the validation-selected step,
    the graded metric at the last evaluation, and `recipe.json`'s metrics."""
    import pandas as pd

    from lab.analysis import evidence
    evals = sel.evals()
    evals = evals[evals["label"].fillna("base") != "base"]
    if evals.empty:
        raise Missing(f"`{EXPERIMENT}`: no complete continuation")
    task = str(evals["task"].iloc[0])
    keys = ["run_name", "run_dir", "size", "seed", "label"]
    primary = evidence.measure_runs(evals)[[*keys, "value"]].rename(columns={"value": "primary"})
    for metric, name in ((DEFICIT, "loss"), (evidence.graded_metric(task), "graded")):
        part = evidence.measure_runs(evals, metric)[["run_name", "final_value"]]
        primary = primary.merge(part.rename(columns={"final_value": name}), on="run_name")
    files = [(sel.run_file(d, MEASURE) or {}).get("metrics", {}) for d in primary["run_dir"]]
    table = pd.concat([primary.reset_index(drop=True), pd.DataFrame(files)], axis=1)
    table["recipe"] = table["label"].str.replace(r"-tpp[0-9.]+$", "", regex=True)
    if "ntp" not in set(table["recipe"]):
        raise Missing(f"`{EXPERIMENT}`: no complete next-token continuation (`ntp`) to compare with")
    return table


HEAD2 = "head_acc/k2"  # accuracy of each recipe's own prediction of token t+2 (recipe.json)


def recipe_summary(table: Any) -> Any:
    """Per size and recipe: the paired differences to `ntp` (deficit, capability: primary and
    graded), tokens per forward, t+2 accuracy, extra parameters and training FLOPs relative to
    `ntp`."""
    import pandas as pd

    from lab.analysis import evidence, plots
    by = ["size"]
    out = None
    for column, name in (("loss", "deficit"), ("primary", "capability"),
                         ("graded", "graded")):
        diff = evidence.paired_table(table, by, "recipe", "ntp", column)
        diff = diff[[*by, "recipe", "mean", "lo", "hi", "seeds"]].rename(
            columns={"mean": name, "lo": f"{name}_lo", "hi": f"{name}_hi"})
        out = diff if out is None else out.merge(diff.drop(columns="seeds"), on=[*by, "recipe"])
    flops = table.groupby(["size", "recipe"])["train_flops"].mean()
    ratio = flops / flops.xs("ntp", level="recipe").reindex(flops.index, level="size").values
    speed = plots.summarise(table, [*by, "recipe"], SPEED, bounds=(1.0, math.inf)).rename(
        columns={"mean": "tokens/forward", "lo": "tpf_lo", "hi": "tpf_hi"})
    extra = table.groupby(["size", "recipe"])[["extra_parameters/train",
                                              "extra_parameters/inference", HEAD2]].mean()
    out = out.merge(speed[[*by, "recipe", "tokens/forward", "tpf_lo", "tpf_hi"]],
                    on=[*by, "recipe"], how="left")
    out = out.merge(extra.reset_index(), on=[*by, "recipe"], how="left")
    out["train FLOPs / ntp"] = [ratio.get((s, r), math.nan) for s, r in zip(out["size"],
                                                                             out["recipe"])]
    order = {name: i for i, name in enumerate(RECIPES)}
    out = out.sort_values(["size", "recipe"], key=lambda c: c.map(size_value) if c.name == "size"
                          else c.map(order)).reset_index(drop=True)
    return pd.DataFrame(out)


@figure("14_tournament",
        "The recipe tournament: next-token deficit against decoding speed, per recipe",
        EXPERIMENT,
        "Every recipe of lab/recipes.py continues the same next-token bases for the same steps "
        "as next-token continuation (ntp, the control). y: the next-token deficit, head-1 loss on "
        "held-out target data at the last evaluation minus ntp's, paired by seed (nats; > 0 is "
        "worse). x: tokens per forward in self-speculative decoding at k = n with outputs equal "
        "to greedy decoding (registers have no heads and decode one token per forward: drawn at "
        "1, hollow). Shape: the recipe (legend): data_w1, data_w0.3, data_w0.1 (extra heads on "
        "data targets at loss weight 1, 0.3, 0.1), data_ds (DeepSeek-V3's 0.3, then 0.1), frozen "
        "(heads on a frozen trunk, Medusa-1), gated (gated low-rank adapters on mask tokens, "
        "Samragh et al.), curriculum_fwd and curriculum_rev (one head more, or fewer, every "
        "steps/n), registers (MuToR's register tokens), distill (heads learn the base's own "
        "distribution). Colour: the capability difference, the task's graded metric (on the S6 "
        "bases the target's answer NLL; on the fallback's induction bases second-token NLL at "
        "repeated names) at the last evaluation minus ntp's (nats; blue is better). Bars: "
        "95% t-intervals over seeds (they exclude test-item sampling).")
def tournament_figure(sel: Selection) -> Output:
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import TwoSlopeNorm

    from lab.analysis import plots
    sel.require(EXPERIMENT)
    table = run_table(sel)
    summary = recipe_summary(table)
    shown = summary.assign(x=summary["tokens/forward"].fillna(1.0))
    sizes_ = sorted(shown["size"].unique(), key=size_value)
    fig, axes = plots.new_figure(len(sizes_), sharey=False)
    span = max(float(shown["graded"].abs().max()), 1e-6)
    norm, cmap = TwoSlopeNorm(0.0, -span, span), colormaps["coolwarm"]
    marker = dict(zip(RECIPES, "osD^vP*Xh<"))  # one shape per recipe, named in the legend
    for ax, size in zip(axes, sizes_):
        part = shown[shown["size"] == size]
        for _, r in part.iterrows():
            colour = cmap(norm(r["graded"]))
            xerr = ([[r["x"] - r["tpf_lo"]], [r["tpf_hi"] - r["x"]]]
                    if r["tokens/forward"] == r["tokens/forward"] else None)
            ax.errorbar(r["x"], r["deficit"], xerr=xerr,
                        yerr=[[r["deficit"] - r["deficit_lo"]], [r["deficit_hi"] - r["deficit"]]],
                        fmt=marker.get(r["recipe"], "o"), color=colour, ecolor="grey",
                        elinewidth=0.8, capsize=2, markersize=7, markeredgecolor="black",
                        markerfacecolor=colour if xerr is not None else "white",
                        label=r["recipe"])
        ax.axhline(0.0, color="grey", linewidth=0.8)
        ax.set_title(f"{size}", fontsize=9)
        ax.set_xlabel("tokens per forward (self-speculative, exact)", fontsize=8)
        ax.set_ylabel("head-1 loss minus ntp's (nats)", fontsize=8)
    plots.legend_beside(axes[-1], "recipe (shape)", gather=axes[:-1])
    bar = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=axes, shrink=0.8)
    bar.set_label("graded capability minus ntp's (nats)", fontsize=8)
    fig.suptitle("The recipe tournament: what each recipe costs and gives", fontsize=10)
    readme = readme_table(summary, reference(table))
    return Output(fig, [("per recipe and size, against ntp (paired by seed)", readme)], [], sel)


def reference(table: Any) -> dict[str, str]:
    """Per size, Mehra et al.'s no-training reference for token t+2: the base's head-1
    distribution rolled forward (greedy and over the top tokens), from the `ntp` runs' files."""
    top1, topk = "reference/top1/k2", f"reference/top{REFERENCE_TOP}/k2"
    ntp = table[table["recipe"] == "ntp"]
    if top1 not in ntp:
        return {}
    means = ntp.groupby("size")[[top1, topk]].mean()
    return {size: f"{r[top1]:.3f} greedy, {r[topk]:.3f} top-{REFERENCE_TOP}"
            for size, r in means.iterrows()}


def readme_table(summary: Any, references: dict[str, str] | None = None) -> Any:
    """What a practitioner gets and pays per recipe: rounded effects with their 95% CIs, and per
    size a row for the no-training reference (`reference`)."""
    import pandas as pd

    def ci(r, name, digits=3):
        if r[name] != r[name]:
            return "-"
        return f"{r[name]:+.{digits}f} [{r[f'{name}_lo']:+.{digits}f}, {r[f'{name}_hi']:+.{digits}f}]"
    rows = [{"size": r["size"], "recipe": r["recipe"], "seeds": str(int(r["seeds"])),
             "next-token deficit (nats)": ci(r, "deficit"),
             "capability: graded (nats)": ci(r, "graded"),
             "capability: primary": ci(r, "capability"),
             "tokens/forward": ("1 (no heads)" if r["tokens/forward"] != r["tokens/forward"]
                                else f"{r['tokens/forward']:.2f} [{r['tpf_lo']:.2f}, "
                                     f"{r['tpf_hi']:.2f}]"),
             "extra params (train / inference)": f"{r['extra_parameters/train']:,.0f} / "
                                                 f"{r['extra_parameters/inference']:,.0f}",
             "t+2 accuracy": f"{r[HEAD2]:.3f}",
             "train FLOPs / ntp": f"{r['train FLOPs / ntp']:.2f}"}
            for _, r in summary.iterrows()]
    for size, text in (references or {}).items():
        rows.append({"size": size, "recipe": "reference (base rolled forward, no training)",
                     "t+2 accuracy": text})
    return pd.DataFrame(rows).fillna("-")


if __name__ == "__main__":
    import argparse
    parser = argparse.ArgumentParser(prog="python -m lab.experiments.tournament",
                                     description="Write recipe.json (cost, speed, head-k accuracy) "
                                                 "into every complete tournament run.")
    parser.add_argument("--preset", default="quick", choices=("quick", "paper", "gpu"))
    parser.add_argument("--root", default="runs")
    parser.add_argument("--force", action="store_true",
                        help="measure runs that have recipe.json again")
    args = parser.parse_args()
    print("measured "
          f"{measure('paper' if args.preset == 'gpu' else args.preset, args.root, args.force)} runs")
