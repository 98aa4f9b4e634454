"""Fig. 7 at long budgets: the induction capability n = 1, 2 and 4 end with, in tokens per parameter.

The lab's atlas found that 2-token prediction forms induction *later* than next-token
prediction, but every atlas run trained for 1-25 tokens per parameter, where Gloeckle et al.'s
small models trained for thousands and Fig. 7 plots what they *end* with. This experiment
trains each arm to a budget stated in tokens per parameter (`train.tokens_per_param`,
`lab/budget.py`: the same tokens for every head count at one size) on a finished cosine
schedule, and reports the final test capability at the validation-selected step, the
learning curve to the end, and when (if ever) n = 2 overtakes n = 1.

Arms (induction, the quick task shape: 64-token stories, 512 evaluation stories per split):

| arm      | heads   | shape                                                             | sizes |
|----------|---------|-------------------------------------------------------------------|-------|
| (base)   | 1, 2, 4 | heads on a full-depth trunk (`model.match_params=false`): head 1 as deep as n = 1 | all |
| matched  | 2, 4    | the paper's setting: parameter matching, equal loss weights       | 100K  |

Budgets (`RATIOS`): 30, 100, 300 and 1000 tokens per parameter at 100K and 300K (5 seeds), 30
at 1M (3 seeds; what one CPU allows in a 90-minute part). Validation uses the full validation
set at every evaluation, so selection compares estimates as precise as the final test.
Each (size, budget) is its own cell (label `tpp<R>`, `matched-tpp<R>`), cheapest first, so
`python -m lab.sweep long_budget --dry-run` prices the plan in parts of whole budgets and
`--part K/N` (or `--only train.tokens_per_param=30`) trains them in order.
"""

from __future__ import annotations

from lab.build import build_config
from lab.config import RunConfig, size_value
from lab.experiments import experiment

TASK = "induction"
TASK_KNOBS = ("task.seq_len=64", "task.eval_stories=512")
DEPTH_CONTROLLED = "model.match_params=false"
RATIOS = {
    "quick": {"100K": (30, 100, 300, 1000), "300K": (30, 100, 300, 1000), "1M": (30,)},
    "paper": {"1M": (300, 1000, 3000), "3M": (300, 1000, 3000), "10M": (300, 1000), "30M": (100, 300)},
}
SEEDS = {"100K": range(5), "300K": range(5)}  # every other size: 3 seeds
MATCHED_SIZE = {"quick": "100K", "paper": "1M"}
BATCH = {"quick": 32, "paper": 128}


def run(preset: str, size: str, heads: int, ratio: float, seed: int, matched: bool = False) -> RunConfig:
    """One arm at one budget: n heads on a full-depth trunk (or parameter-matched), `ratio` tokens per
    parameter of the size's next-token model."""
    overrides = [*TASK_KNOBS, f"train.batch_size={BATCH[preset]}", "train.eval_examples=0",
                 "model.match_params=true" if matched else DEPTH_CONTROLLED]
    config = build_config(TASK, heads=heads, size=size, seed=seed, experiment="long_budget",
                          overrides=overrides, tokens_per_param=ratio)
    config.label = f"{'matched-' if matched else ''}tpp{ratio:g}"  # a cell per budget: parts split by budget
    return config


def ratio_runs(preset: str, size: str, ratio: float) -> list[RunConfig]:
    """Every arm of one size and budget, on every seed (n = 1 first: the arms are paired by seed)."""
    out = []
    for seed in SEEDS.get(size, range(3)):
        out += [run(preset, size, heads, ratio, seed) for heads in (1, 2, 4)]
        if size == MATCHED_SIZE[preset]:
            out += [run(preset, size, heads, ratio, seed, matched=True) for heads in (2, 4)]
    return out


@experiment("long_budget")
def configs(preset: str) -> list[RunConfig]:
    """Fig. 7 at long budgets: induction n = 1, 2, 4 to 30-1000 tokens per parameter (final capability)."""
    ratios = RATIOS["paper" if preset == "paper" else "quick"]
    cells = sorted(((ratio * size_value(size), size, ratio) for size, budget in ratios.items() for ratio in budget))
    return [c for _, size, ratio in cells for c in ratio_runs(preset, size, ratio)]  # cheapest cells first
