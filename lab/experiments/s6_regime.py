"""Table S6 in its own regime: over-trained next-token bases, a short continuation on a shifted domain.

Llama 2 saw about 285 tokens per parameter of general data in which code was a minority; Table
S6 then continued it on code alone for 200B tokens, 10% of its pretraining, and scored code
capability. The `continued` experiment measured the lab's reading of S6 on bases of 0.3-10
tokens per parameter, continued for as long as they were pretrained, on unchanged data. This
experiment rebuilds S6's shape:

- **Bases** (stage 1): next-token models on a `mixture` of induction stories (general domain,
  90% of sequences) and polynomial arithmetic in F7[X]/(X^5) with one operation (target domain,
  10%), in one shared vocabulary, trained to a budget in tokens per parameter
  (`train.tokens_per_param`) on a finished cosine schedule. Ratio axis at 100K: 10-1000, 5 seeds;
  size axis at a high ratio: 300K at 300, 1M at 30 (what a CPU allows), 3 seeds.
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
from lab.experiments import experiment

EXPERIMENT = "s6_regime"
GENERAL_SHARE = 0.9
KNOBS = ("induction.seq_len=64,induction.eval_stories=256,"
         "polynomial.max_ops=1,polynomial.eval_ops=1,polynomial.eval_size=500")
PRETRAIN_MIX = f"induction:{GENERAL_SHARE:g},polynomial:{1 - GENERAL_SHARE:g}"
TARGET_ONLY = "induction:0,polynomial:1"
BASES = {  # size -> (tokens per parameter, seeds)
    "quick": {"100K": ((10, 30, 100, 300, 1000), range(5)), "300K": ((300,), range(3)), "1M": ((30,), range(3))},
    "paper": {"10M": ((10, 30, 100, 300), range(3)), "30M": ((300,), range(3)), "100M": ((100,), range(3))},
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
    cells = sorted((ratio * size_value(size), size, ratio, seeds)
                   for size, (ratios, seeds) in BASES["paper" if preset == "paper" else "quick"].items()
                   for ratio in ratios)
    return [base_run(preset, size, ratio, seed) for _, size, ratio, seeds in cells for seed in seeds]


@experiment(EXPERIMENT)
def configs(preset: str) -> list[RunConfig]:
    """Table S6 regime: over-trained next-token bases on a mixture, then a 10% continuation on its minority."""
    return bases(preset)
