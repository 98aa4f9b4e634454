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
| mtp_drop       | n=4    | 1  | MTP pretraining, next-token continuation (the Fig. 4 recipe)  | small |
| scratch_ntp, scratch_mtp | - | 1, 4 | from scratch for the whole budget                         | small |

"small" is `SMALL` (100K, 300K); the larger sizes run the variants every hypothesis needs at
every size (H3: does the deficit shrink with size?). Every run logs the alignment of each
head's trunk gradient with head 1's (`train.log_mechanism`, H4) and, through the finetuning
trainer, the step-0 shock and representation drift (H1).
"""

from __future__ import annotations

from lab.config import SIZES as SHAPES
from lab.config import RunConfig
from lab.experiments import experiment, seeds
from lab.experiments.finetune import Preset, _base, _finetune_run
from lab.figure_registry import Missing, Output, Selection, figure

EXPERIMENT = "continued"
TASK = "induction"
SIZES = {"quick": ("100K", "300K", "1M", "3M"), "paper": ("1M", "3M", "10M", "30M")}
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
    "add4_sg": dict(heads=4, attach="add", head_init="zero", detach=True),  # stop-gradient: harm bounded at 0
}
VARIANT_ORDER = [*CORE, *EXTRA, "mtp_drop", "scratch_ntp", "scratch_mtp"]


def preset_for(preset: str, size: str) -> Preset:
    """The `finetune` experiment's preset shape for one size: the same task before and after."""
    steps = PRETRAIN_STEPS[preset]
    task = {"seq_len": 64} if preset == "quick" else {}
    return Preset(size=size, seeds=seeds(preset, size), pretrain_steps=steps, finetune_steps=steps,
                  batch_size=32 if preset == "quick" else 64, general_task=task, target_task=task,
                  eval_every=EVAL_EVERY[preset])


def fits(spec: dict, size: str) -> bool:
    """Whether a variant's heads fit the size: carving n' heads needs more than n' blocks."""
    return spec["attach"] != "carve" or SHAPES[size][1] > spec["heads"]


def size_runs(preset: str, size: str) -> list[RunConfig]:
    """Pretraining and continuation runs of one size, every seed; sources before the runs that read them."""
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
            sources[heads] = own(_base(TASK, p.general_task, p, seed, p.pretrain_steps, heads, vocab, block))
            out.append(sources[heads])
        for name, spec in variants.items():
            if fits(spec, size):
                config = _finetune_run(p, TASK, p.target_task, seed, vocab, block, name, sources[1], **spec)
                config.model.detach_extra_heads = spec.get("detach", False)
                out.append(own(config))
        if size in SMALL:
            out.append(own(_finetune_run(p, TASK, p.target_task, seed, vocab, block, "mtp_drop", sources[4],
                                         heads=1, attach="drop")))
            for heads, name in ((1, "scratch_ntp"), (4, "scratch_mtp")):
                config = _base(TASK, p.general_task, p, seed, p.pretrain_steps + p.finetune_steps, heads, vocab, block)
                config.label = name
                out.append(own(config))
    return out


@experiment(EXPERIMENT)
def continued(preset: str) -> list[RunConfig]:
    """Table S6 protocol: next-token pretraining, then the same data with n' heads, per size (H1-H6)."""
    return [config for size in SIZES[preset] for config in size_runs(preset, size)]


# ----- figure (the builder imports lab.plots when called: a sweep imports this module too) -----
DEFICIT = "head1/loss"


def deficit_curves(sel: Selection):
    """Per continuation run and evaluation: head-1 loss minus `ntp`'s at the same size, seed and step."""
    rows = sel.evals()
    rows = rows[rows["label"].fillna("").isin([*CORE, *EXTRA, "mtp_drop"])]
    if rows.empty or "ntp" not in set(rows["label"]):
        raise Missing(f"`{EXPERIMENT}`: no complete next-token continuation (`ntp`) to measure a deficit against")
    base = rows[rows["label"] == "ntp"].set_index(["size", "seed", "step"])[DEFICIT]
    rows = rows[rows["label"] != "ntp"].copy()
    keys = list(zip(rows["size"], rows["seed"], rows["step"]))
    rows["deficit"] = [row - base.get(key, float("nan")) for row, key in zip(rows[DEFICIT], keys)]
    return rows.dropna(subset=["deficit"])


@figure("10_continued_recovery", "Continued pretraining: does the next-token quality recover?", EXPERIMENT,
        "Head-1 (next-token) loss on held-out data of the pretraining distribution of each continuation variant "
        "minus next-token continuation (`ntp`) of the same size and seed, over continuation tokens (step 0: "
        "before any update, the shock). One panel per size; lines: mean over seeds, bars: 95% t-intervals. "
        "A line that returns to 0 recovers; one that stays above never does.")
def recovery_figure(sel: Selection) -> Output:
    from lab import plots
    sel.require(EXPERIMENT)
    rows = deficit_curves(sel)
    table = plots.summarise(rows, ["size", "label", "step", "tokens"], "deficit")
    fig = plots.plot_recovery(table, order=VARIANT_ORDER, title="Continued pretraining: deficit to next-token "
                                                                "continuation")
    last = table.sort_values("step").groupby(["size", "label"]).tail(1)
    sentences = [f"At the last evaluation ({size}): " + ", ".join(
        f"{r['label']} {r['mean']:+.3f} [{r['lo']:+.3f}, {r['hi']:+.3f}]" for _, r in part.iterrows()) + " nats."
        for size, part in last.groupby("size", sort=False)]
    return Output(fig, [("head-1 loss minus ntp, per step", plots.readable(table))], sentences, sel)
