"""A claim as the experiments declare it: the `Claim` type, the claim families, and the filters
and variants that build rows. Plain data, no pandas and no statistics: an experiment module that
declares its claims loads nothing heavy (`lab.analysis.claims`, the ledger, evaluates them)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

PAPER = "Gloeckle et al. 2024"
PUBLISHED_GRAPHS = 20_000  # Bachmann & Nagarajan's published path-star test file
BN = "Bachmann & Nagarajan 2024"


@dataclass(frozen=True)
class Claim:
    """One testable statement. `where`, `a` and `b` are run filters, {key: value} as
    `lab.selection.RunFilter.of` reads them (`model.n_future`, `label`, `task.pause_tokens`,
    ...)."""

    key: str
    source: str
    statement: str
    experiment: str
    a: dict[str, Any]
    # None: `a` is compared with `target`. With `b` and a `target`, the paired difference a - b
    # is (an equivalence: "costs nothing" reads a - b within target +- tolerance, stated a priori)
    b: dict[str, Any] | None = None
    where: dict[str, Any] = field(default_factory=dict)
    # "value" (test metric at the selected step), "first_value", "final_value", "formation_tokens",
    # "attention_tokens" or "readout_tokens" (`lab.analysis.evidence.measure_runs`)
    measure: str = "value"
    # the slope of the per-seed a - b against log10(model size) ("size") or against a's mean head-k
    # / head-1 gradient cosine ("align_cos"), not their mean
    trend: str = ""
    # read the trend's x, arm a's metric `trend`, from each run's extra JSON file of this name
    # ("metrics" key) instead of a `measure_runs` column
    trend_file: str = ""
    metric: str | None = None  # test metric (default: the task's primary)
    expected_sign: int = 1
    target: float = math.nan
    tolerance: float = math.nan
    # read `metric` from each run's extra JSON file of this name ("metrics" key) instead of its
    # evaluation rows: `published.json` holds the published path-star test file scored at the final
    # checkpoint
    file: str = ""
    # what `file` holds, shown as the measure ("on the published test file ...")
    file_means: str = ""
    family: str = ""  # one of FAMILIES, declared with the claim: Holm's adjustment runs within it
    # the graded metric (lower is better) a floor falls back to; default by task
    graded: str | None = None

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"claim {self.key!r}: family {self.family!r} is not one of {FAMILIES}")


# The claim families, declared up front: verdicts are adjusted for the comparisons within each.
PAPER_CLAIMS, PEERS, LAB, FINETUNING = "paper", "peers", "lab", "finetuning hypotheses"
FAMILIES = (PAPER_CLAIMS, PEERS, LAB, FINETUNING)
# The graded measure behind each task's all-or-nothing primary metric (lower is better).
GRADED = {"polynomial": "answer_nll", "graph": "path_nll", "induction": "second_token_nll"}
# The chance level of a task's proportion metric, as 1 / the runs' task-config column named here: the
# floor below which a comparison is not measurable (`lab.analysis.verdicts.bound_label`). An
# induction story's second name is one of `name_vocab` (1/48 by default); elsewhere chance is 0 to
# three decimals (a polynomial answer is one of 7^5, a path one of d^l).
CHANCE = {("induction", "second_token_acc"): "task_config.name_vocab"}


def n_future(k: int) -> dict[str, int]:
    """The filter of the runs with `k` heads, for a claim's arm."""
    return {"model.n_future": k}


def labelled(name: str) -> dict[str, str]:
    """The filter of the runs labelled `name` (`RunConfig.label`), for a claim's arm."""
    return {"label": name}


def at_size(claim: Claim, size: str) -> Claim:
    """The same claim measured at another model size; its key and statement name the size."""
    return replace(claim, key=f"{claim.key}-{size}",
                   statement=claim.statement.replace("100K", size),
                   where={**claim.where, "size": size})


def on_published(claim: Claim) -> Claim:
    """The same claim read from the published test file at each run's final checkpoint."""
    return replace(claim, key=f"{claim.key}-published", file="published.json",
                   file_means="on the published test file (20,000 graphs), final checkpoint",
                   statement=f"{claim.statement}; on the published test file")
