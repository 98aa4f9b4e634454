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

from lab.config import RECIPES, RunConfig
from lab.experiments import experiment

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
    return out


def measure(preset: str = "quick", root="runs", force: bool = False) -> int:
    """Write `recipe.json` into every complete continuation of the plan lacking one; returns how
    many."""
    from pathlib import Path

    from lab import runs
    from lab.experiments import plan
    done = 0
    for config in plan(EXPERIMENT, preset):
        run_dir = Path(root) / EXPERIMENT / config.run_name()
        if not config.finetune.init_from or runs.run_state(run_dir) != "complete":
            continue
        if (run_dir / MEASURE).exists() and not force:
            continue
        runs.write_json(run_dir / MEASURE, measure_run(run_dir))
        done += 1
    return done


experiment(EXPERIMENT, measure=measure)(configs)


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
