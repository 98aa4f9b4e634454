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
  at a high ratio: 300K at 300, 1M at 30 (what a CPU allows); 5 seeds below 1M, 3 at 1M.
- **Continuations** (stage 2, `continuations`): the target domain alone (the same mixture with
  the general weight at 0, so forgetting of induction is still measured), for `DOSE` of the
  base's steps (10%; at 100K also 1% and 30%), as next-token (`ntp`), carved heads ("+0 layers",
  `carve4`), linear heads (`linear4`), added heads ("+3 layers", `add4`) and n' = 2 (`add2`).

Why this target: one-operation polynomials are learnable at 100K (exact match 0.53 after 1.6M
tokens of pure polynomial training; LOG 2026-12-06), so next-token continuation can land
between floor and ceiling, and exact match has a graded counterpart (`answer_nll`).
"""

from __future__ import annotations

from lab.build import build_config
from lab.config import RunConfig, size_value
from lab.experiments import experiment, seeds

EXPERIMENT = "s6_regime"
GENERAL_SHARE = 0.9
KNOBS = ("induction.seq_len=64,induction.eval_stories=256,"
         "polynomial.max_ops=1,polynomial.eval_ops=1,polynomial.eval_size=500")
PRETRAIN_MIX = f"induction:{GENERAL_SHARE:g},polynomial:{1 - GENERAL_SHARE:g}"
TARGET_ONLY = "induction:0,polynomial:1"
BASES = {  # size -> tokens per parameter; seeds by the lab's rule (5 below 1M in quick, else 3)
    "quick": {"100K": (10, 30, 100, 300, 1000), "300K": (300,), "1M": (30,)},
    "paper": {"10M": (10, 30, 100, 300), "30M": (300,), "100M": (100,)},
}
BATCH = {"quick": 32, "paper": 128}


def base_run(preset: str, size: str, ratio: float, seed: int) -> RunConfig:
    """A next-token base on the pretraining mixture, `ratio` tokens per non-embedding parameter."""
    overrides = [f"task.components={PRETRAIN_MIX}", f"task.knobs={KNOBS}", f"train.batch_size={BATCH[preset]}",
                 "train.eval_examples=0"]
    config = build_config("mixture", heads=1, size=size, seed=seed, experiment=EXPERIMENT,
                          overrides=overrides, tokens_per_param=ratio)
    config.label = f"base-tpp{ratio:g}"
    return config


def bases(preset: str) -> list[RunConfig]:
    """Every base, cheapest (ratio x size) first, all seeds of a (size, ratio) together."""
    cells = sorted((ratio * size_value(size), size, ratio)
                   for size, ratios in BASES["paper" if preset == "paper" else "quick"].items() for ratio in ratios)
    return [base_run(preset, size, ratio, seed) for _, size, ratio in cells for seed in seeds(preset, size)]


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
CONTINUATION_EVALS = 20


def continuation(base: RunConfig, digest: str, variant: str, dose: float = DOSE) -> RunConfig:
    """Continue the committed base `digest` (the run `base`) on the target domain alone for `dose` of
    its steps (the same batch size: that fraction of its sequences), as `variant`."""
    from lab.checkpoints import target_model_config  # imports torch: only when planning continuations
    spec = VARIANTS[variant]
    steps = max(1, round(dose * base.train.steps))
    overrides = [f"task.components={TARGET_ONLY}", f"task.knobs={KNOBS}",
                 f"train.batch_size={base.train.batch_size}", "train.eval_examples=0",
                 f"train.eval_every={max(1, steps // CONTINUATION_EVALS)}", "train.log_mechanism=true"]
    config = build_config("mixture", heads=spec["heads"], size=base.size, steps=steps, seed=base.seed,
                          experiment=EXPERIMENT, overrides=overrides)
    config.train.checkpoint_every = config.train.eval_every
    config.model = target_model_config(base.model, spec["heads"], spec["attach"])
    ft = config.finetune
    ft.init_from, ft.attach, ft.head_init = f"base:{digest}", spec["attach"], spec.get("head_init", "random")
    config.label = f"{variant}-tpp{base.train.tokens_per_param:g}-dose{dose:g}"
    return config


def continuations(preset: str, committed: dict[str, str] | None = None) -> list[RunConfig]:
    """Every continuation of every base committed to `bases/` (`lab.bases`; run name -> digest): a
    continuation references its base by digest, so it is planned once its base is committed."""
    from lab import bases as store
    from lab.resolve import resolve
    committed = store.by_run_name() if committed is None else committed
    out = []
    for base in bases(preset):
        base = resolve(base)[0]
        digest = committed.get(base.run_name())
        if digest is None:
            continue
        doses = [(v, DOSE) for v in VARIANTS]
        if base.size == DOSE_SIZE and base.train.tokens_per_param == DOSE_RATIO:
            doses += [(v, d) for d in DOSES for v in DOSE_VARIANTS]
        out += [continuation(base, digest, v, d) for v, d in doses]
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
    """Probes of one complete run on both domains, and the sharpness of a base (n = 1, no init)."""
    from lab import probes
    from lab.checkpoints import load_run
    config, model, task = load_run(run_dir, allow_incomplete=False, what="s6_regime measure")
    out: dict = {}
    for domain in task.parts:
        data = held_out(task, domain)
        out[domain] = probes.future_token_probes(model, data)
        if not config.finetune.init_from:
            out[domain] |= {"sharpness/perturbation": probes.perturbation_sharpness(model, data),
                            "sharpness/top_eigenvalue": probes.top_hessian_eigenvalue(model, data)}
    return out


def measure(preset: str = "quick", root="runs", force: bool = False) -> int:
    """Write `probes.json` into every complete run of the plan that lacks one; returns how many."""
    from pathlib import Path

    from lab import runs
    from lab.experiments import plan
    done = 0
    for config in plan(EXPERIMENT, preset):
        run_dir = Path(root) / EXPERIMENT / config.run_name()
        if runs.run_state(run_dir) != "complete" or ((run_dir / PROBES).exists() and not force):
            continue
        runs.write_json(run_dir / PROBES, measure_run(run_dir))
        done += 1
    return done


experiment(EXPERIMENT, measure=measure)(configs)
