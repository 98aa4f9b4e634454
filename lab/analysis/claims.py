"""The claims ledger: every claim the lab tests, its measured effect with a 95% CI, and a verdict.

Each `Claim` names its source (the paper, a peer, or the lab's own earlier reading), the
experiment whose runs test it, and how to measure it:

- a *comparison* (`a` against `b`, paired by seed): the mean over seeds of a - b with a
  Student-t 95% CI (`lab.analysis.stats.paired_difference(method="t")`, which keeps its coverage at 3-5
  seeds) and the verdict of `lab.analysis.stats.verdict` for the expected sign;
- a *target* (`a` alone): the mean over seeds with its t CI and the verdict of
  `lab.analysis.stats.verdict_close` for `target +- tolerance`.

Per-run values come from `lab.analysis.evidence.measure_runs`: test metrics at the step chosen on
validation, or tokens-to-formation on validation (censored at the budget). `ledger` turns the
runs into rows and `markdown` into `figures/CLAIMS.md`; no sentence of it is written by hand.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from lab.analysis import evidence, inference, stats, verdicts
from lab.config import size_value
from lab.selection import RunFilter

PAPER = "Gloeckle et al. 2024"
PUBLISHED_GRAPHS = 20_000  # Bachmann & Nagarajan's published path-star test file
BN = "Bachmann & Nagarajan 2024"


@dataclass(frozen=True)
class Claim:
    """One testable statement. `where`, `a` and `b` are run filters, {key: value} as
    `lab.selection.RunFilter.of` reads them (`model.n_future`, `label`, `task.pause_tokens`, ...)."""

    key: str
    source: str
    statement: str
    experiment: str
    a: dict[str, Any]
    b: dict[str, Any] | None = None  # None: `a` is compared with `target`
    where: dict[str, Any] = field(default_factory=dict)
    measure: str = "value"  # "value" (test metric at the selected step), "first_value", "final_value",
    # "formation_tokens", "attention_tokens" or "readout_tokens" (`lab.analysis.evidence.measure_runs`)
    trend: str = ""  # the slope of the per-seed a - b against log10(model size) ("size") or against a's
    # mean head-k / head-1 gradient cosine ("align_cos"), not their mean
    metric: str | None = None  # test metric (default: the task's primary)
    expected_sign: int = 1
    target: float = math.nan
    tolerance: float = math.nan
    file: str = ""  # read `metric` from each run's extra JSON file of this name ("metrics" key) instead of
    # its evaluation rows: `published.json` holds the published path-star test file scored at the final checkpoint
    file_means: str = ""  # what `file` holds, shown as the measure ("on the published test file ...")
    family: str = ""  # one of FAMILIES, declared with the claim: Holm's adjustment runs within it
    graded: str | None = None  # the graded metric (lower is better) a floor falls back to; default by task

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"claim {self.key!r}: family {self.family!r} is not one of {FAMILIES}")


# The claim families, declared up front: verdicts are adjusted for the comparisons within each.
PAPER_CLAIMS, PEERS, LAB, FINETUNING = "paper", "peers", "lab", "finetuning hypotheses"
FAMILIES = (PAPER_CLAIMS, PEERS, LAB, FINETUNING)
# The graded measure behind each task's all-or-nothing primary metric (lower is better).
GRADED = {"polynomial": "answer_nll", "graph": "path_nll", "induction": "second_token_nll"}


def _n(k: int) -> dict[str, int]:
    return {"model.n_future": k}


def _label(name: str) -> dict[str, str]:
    return {"label": name}


CLAIMS: list[Claim] = [
    Claim("fig7-1M", f"{PAPER}, Fig. 7", "2-token prediction forms induction better than next-token at 1M",
          "scaling", _n(2), _n(1), {"task": "induction", "size": "1M"}, family=PAPER_CLAIMS),
    Claim("fig7-300K", f"{PAPER}, Fig. 7", "2-token prediction forms induction better than next-token at 300K",
          "scaling", _n(2), _n(1), {"task": "induction", "size": "300K"}, family=PAPER_CLAIMS),
    Claim("figS14", f"{PAPER}, Fig. S14", "with induction-rich data, 2-token prediction still helps the smallest "
          "model (1M)", "induction_rich", _n(2), _n(1), {"size": "1M"}, family=PAPER_CLAIMS),
    Claim("fig8-n2", f"{PAPER}, Fig. 8", "2-token prediction raises in-domain polynomial exact match (1M)",
          "scaling", _n(2), _n(1), {"task": "polynomial", "size": "1M"}, family=PAPER_CLAIMS),
    Claim("fig8-n4", f"{PAPER}, Fig. 8", "4-token prediction raises in-domain polynomial exact match (1M)",
          "scaling", _n(4), _n(1), {"task": "polynomial", "size": "1M"}, family=PAPER_CLAIMS),
    Claim("figS15-pause", f"{PAPER}, Fig. S15/S16", "with pause tokens, 2-token prediction still raises "
          "polynomial exact match", "pause", _n(2), _n(1), {"task.pause_tokens": 5},
          family=PAPER_CLAIMS),
    Claim("tableS6-carve", f"{PAPER}, Table S6", "4-head finetuning with '+0 layers' heads is worse than "
          "next-token finetuning", "finetune", _label("carve"), _label("ntp"), expected_sign=-1,
          family=PAPER_CLAIMS),
    Claim("tableS6-linear", f"{PAPER}, Table S6", "4-head finetuning with linear heads is worse than next-token "
          "finetuning", "finetune", _label("linear"), _label("ntp"), expected_sign=-1,
          family=PAPER_CLAIMS),
    Claim("tableS6-add", f"{PAPER}, Table S6", "4-head finetuning with '+3 layers' heads beats next-token "
          "finetuning (its only gain)", "finetune", _label("add"), _label("ntp"),
          family=PAPER_CLAIMS),
    Claim("fig4-recipe", f"{PAPER}, Fig. 4", "MTP pretraining then next-token finetuning beats next-token "
          "pretraining and finetuning", "finetune", _label("mtp_drop"), _label("ntp"),
          family=PAPER_CLAIMS),
    Claim("tableS7", f"{PAPER}, Table S7", "parameter-matched 4-token prediction ends with a higher "
          "head-1 loss than n=1 at 1M (induction): its trunk keeps 1 of 5 blocks, so the row measures the "
          "objective and the lost trunk depth together, not the objective alone", "scaling", _n(4), _n(1),
          {"task": "induction", "size": "1M"}, measure="final_value", metric="head1/loss",
          family=PAPER_CLAIMS),
    Claim("bn-next-token", f"{BN}", "next-token training of path-star G(2,5,50) picks the arm at chance: "
          "teacher-forced position 2 at 1/d = 0.5", "pathstar", _label("next-token"), metric="tf_pos_acc/2",
          target=0.5, tolerance=0.1, family=PEERS),
    Claim("bn-reverse", f"{BN}", "reverse training solves path-star G(2,5,50) (exact path about 100%)",
          "pathstar", _label("reverse"), target=1.0, tolerance=0.05, family=PEERS),
    Claim("bn-reverse-8M", f"{BN}", "reverse training solves path-star G(2,5,50) within 8M tokens (4000 steps, "
          "200,000 fixed graphs, early stopping on validation path NLL)", "pathstar_long", _label("reverse-fixed"),
          target=1.0, tolerance=0.05, family=PEERS),
    Claim("bn-reverse-32M", f"{BN}", "reverse training solves path-star G(2,5,50) within 32M tokens (16,000 steps, "
          "200,000 fixed graphs, early stopping on validation path NLL)", "pathstar_long",
          _label("reverse-fixed-16k"), target=1.0, tolerance=0.05, family=PEERS),
    Claim("bn-next-token-8M", f"{BN}", "next-token training of path-star G(2,5,50) stays at chance at position 2 "
          "(teacher-forced 1/d = 0.5) within 8M tokens (200,000 fixed graphs, early stopping)", "pathstar_long",
          _label("next-token-fixed"), metric="tf_pos_acc/2", target=0.5, tolerance=0.1,
          family=PEERS),
    Claim("bn-teacherless", f"{BN}", "teacherless training solves the small graph G(2,5,50)", "pathstar",
          _label("teacherless"), target=1.0, tolerance=0.1, family=PEERS),
    Claim("bn-teacherless-8M", f"{BN}", "teacherless training solves the small graph G(2,5,50) within 8M tokens "
          "(200,000 fixed graphs, early stopping)", "pathstar_long", _label("teacherless-fixed"), target=1.0,
          tolerance=0.1, family=PEERS),
    Claim("huang-mtp", "Huang et al. 2026", "multi-token prediction beats next-token training on path-star "
          "graphs (exact path)", "pathstar", _label("mtp"), _label("next-token"), family=PEERS),
    Claim("huang-mtp-deep", "Huang et al. 2026", "multi-token prediction beats next-token training on path-star "
          "G(2,5,50) with head 1 as deep as at n=1 (2 heads, exact path)", "heads", _n(2), _n(1), {"task": "graph"},
          family=PEERS),
    Claim("huang-mtp-horizon", "Huang et al. 2026", "multi-token prediction whose horizon covers the whole path "
          "(6 heads, path length 5) beats next-token training on path-star G(2,5,50), head 1 as deep as at n=1",
          "heads", _n(6), _n(1), {"task": "graph"}, family=PEERS),
    Claim("huang-mtp-8M", "Huang et al. 2026", "2-token prediction beats next-token training on path-star "
          "G(2,5,50) within 8M tokens (200,000 fixed graphs, early stopping, exact path)", "pathstar_long",
          _label("mtp2-fixed"), _label("next-token-fixed"), family=PEERS),
    Claim("huang-mtp4-8M", "Huang et al. 2026", "4-token prediction beats next-token training on path-star "
          "G(2,5,50) within 8M tokens (200,000 fixed graphs, early stopping, exact path)", "pathstar_long",
          _label("mtp4-fixed"), _label("next-token-fixed"), family=PEERS),
    Claim("huang-mtp-horizon-8M", "Huang et al. 2026", "multi-token prediction whose horizon covers the whole path "
          "(n = l = 5) beats next-token training on path-star G(2,5,50) within 8M tokens (200,000 fixed graphs, "
          "early stopping, exact path)", "pathstar_long", _label("mtp5-fixed"), _label("next-token-fixed"),
          family=PEERS),
    Claim("huang-mtp-horizon-32M", "Huang et al. 2026", "multi-token prediction whose horizon covers the whole "
          "path (n = l = 5) trained within 32M tokens beats next-token training at its 8M budget, where it already "
          "sits at its Clever Hans ceiling of 1/d (path-star G(2,5,50), 200,000 fixed graphs, early stopping, "
          "exact path)", "pathstar_long", _label("mtp5-fixed-16k"), _label("next-token-fixed"),
          family=PEERS),
    Claim("huang-mtp-horizon-32M-matched", "Huang et al. 2026", "multi-token prediction whose horizon covers the "
          "whole path (n = l = 5) beats next-token training, both within 32M tokens (path-star G(2,5,50), 200,000 "
          "fixed graphs, early stopping, exact path)", "pathstar_long", _label("mtp5-fixed-16k"),
          _label("next-token-fixed-16k"), family=PEERS),
    # The same arms on fresh graphs (a new sample every batch, so no training set to memorise), as Frydenlund 2025.
    Claim("bn-next-token-8M-fresh", f"{BN}", "next-token training of path-star G(2,5,50) stays at chance at "
          "position 2 (teacher-forced 1/d = 0.5) within 8M tokens of fresh graphs (early stopping)", "pathstar_long",
          _label("next-token-fresh"), metric="tf_pos_acc/2", target=0.5, tolerance=0.1,
          family=PEERS),
    Claim("bn-reverse-8M-fresh", f"{BN}", "reverse training solves path-star G(2,5,50) within 8M tokens of fresh "
          "graphs (4000 steps, early stopping on validation path NLL)", "pathstar_long", _label("reverse-fresh"),
          target=1.0, tolerance=0.05, family=PEERS),
    Claim("bn-teacherless-8M-fresh", f"{BN}", "teacherless training solves the small graph G(2,5,50) within 8M "
          "tokens of fresh graphs (early stopping)", "pathstar_long", _label("teacherless-fresh"), target=1.0,
          tolerance=0.1, family=PEERS),
    Claim("huang-mtp-8M-fresh", "Huang et al. 2026", "2-token prediction beats next-token training on path-star "
          "G(2,5,50) within 8M tokens of fresh graphs (early stopping, exact path)", "pathstar_long",
          _label("mtp2-fresh"), _label("next-token-fresh"), family=PEERS),
    Claim("huang-mtp4-8M-fresh", "Huang et al. 2026", "4-token prediction beats next-token training on path-star "
          "G(2,5,50) within 8M tokens of fresh graphs (early stopping, exact path)", "pathstar_long",
          _label("mtp4-fresh"), _label("next-token-fresh"), family=PEERS),
    Claim("huang-mtp-horizon-8M-fresh", "Huang et al. 2026", "multi-token prediction whose horizon covers the whole "
          "path (n = l = 5) beats next-token training on path-star G(2,5,50) within 8M tokens of fresh graphs "
          "(early stopping, exact path)", "pathstar_long", _label("mtp5-fresh"), _label("next-token-fresh"),
          family=PEERS),
    Claim("bn-next-token-8M-d5l3", f"{BN}", "next-token training of the larger path-star G(5,3,50) stays at chance "
          "at position 2 (teacher-forced 1/d = 0.2) within 8M tokens (200,000 fixed graphs, early stopping)",
          "pathstar_long", _label("next-token-fixed-d5l3"), metric="tf_pos_acc/2", target=0.2, tolerance=0.05,
          family=PEERS),
    Claim("bn-reverse-36M-d5l3", f"{BN}", "reverse training solves the larger path-star G(5,3,50) within 36M tokens "
          "(16,000 steps, 200,000 fixed graphs, early stopping on validation path NLL)", "pathstar_long",
          _label("reverse-fixed-16k-d5l3"), target=1.0, tolerance=0.05, family=PEERS),
    Claim("lab-reverse-one-lookup", "mtp-lab, LOG 2026-12-03 (why reverse sits at 1/d on G(5,3,50))", "reverse "
          "training of G(2,3,50), where (as on G(5,3,50)) one position of the reversed path needs the backward edge "
          "lookup, stays at the child-of-source shortcut (exact path 1/d = 0.5) within 8000 steps (200,000 fixed "
          "graphs, early stopping on validation path NLL)",
          "pathstar_long", _label("reverse-fixed-8k-d2l3"), target=0.5, tolerance=0.1, family=LAB),
    Claim("lab-reverse-degree-3", "mtp-lab, LOG 2026-12-03 (why reverse sits at 1/d on G(5,3,50))", "reverse "
          "training solves G(3,3,50) (one backward lookup per path, degree 3) within 8000 steps (200,000 fixed "
          "graphs, early stopping on validation path NLL)", "pathstar_long", _label("reverse-fixed-8k-d3l3"),
          target=1.0, tolerance=0.05, family=LAB),
    Claim("huang-mtp-horizon-8M-d5l3", "Huang et al. 2026", "multi-token prediction whose horizon covers the whole "
          "path (n = l = 3) beats next-token training on the larger path-star G(5,3,50) within 8M tokens (200,000 "
          "fixed graphs, early stopping, exact path)", "pathstar_long", _label("mtp3-fixed-d5l3"),
          _label("next-token-fixed-d5l3"), family=PEERS),
    Claim("bn-teacherless-8M-d5l3", f"{BN}", "teacherless training solves the larger path-star G(5,3,50) within 8M "
          "tokens (200,000 fixed graphs, early stopping)", "pathstar_long", _label("teacherless-fixed-d5l3"),
          target=1.0, tolerance=0.1, family=PEERS),
    Claim("huang-mtp-8M-d5l3", "Huang et al. 2026", "2-token prediction beats next-token training on the larger "
          "path-star G(5,3,50) within 8M tokens (200,000 fixed graphs, early stopping, exact path)", "pathstar_long",
          _label("mtp2-fixed-d5l3"), _label("next-token-fixed-d5l3"), family=PEERS),
    Claim("fig7-deep", f"{PAPER}, Fig. 7 (head 1 as deep as at n=1)", "2-token prediction forms induction better "
          "than next-token at 1M with heads on a full-depth trunk (tokens to formation)", "heads", _n(2), _n(1),
          {"task": "induction"}, measure="formation_tokens", expected_sign=-1, family=PAPER_CLAIMS),
    Claim("lab-dynamics", "mtp-lab, LOG 2026-11-28", "2-token prediction forms induction later than next-token "
          "at 1M (tokens to formation)", "dynamics", _n(2), _n(1), measure="formation_tokens",
          family=LAB),
    Claim("headline-n2", f"{PAPER}, Fig. 7 (head 1 as deep as at n=1)", "at the lab.run defaults (1M, 600 steps, "
          "heads on a full-depth trunk) 2-token prediction forms induction better than next-token", "headline",
          _n(2), _n(1), family=PAPER_CLAIMS),
    Claim("headline-n4", f"{PAPER}, Fig. 7 (head 1 as deep as at n=1)", "at the lab.run defaults (1M, 600 steps, "
          "heads on a full-depth trunk) 4-token prediction forms induction better than next-token", "headline",
          _n(4), _n(1), family=PAPER_CLAIMS),
    Claim("atlas-base-n2", f"{PAPER}, Fig. 7 (atlas base cell)", "with head 1 as deep as at n=1 (1M, 64-token "
          "stories), 2-token prediction forms induction earlier than next-token (tokens to formation)", "atlas",
          _n(2), _n(1), {"label": "base"}, measure="formation_tokens", expected_sign=-1,
          family=PAPER_CLAIMS),
    Claim("atlas-base-n4", f"{PAPER}, Fig. 7 (atlas base cell)", "with head 1 as deep as at n=1 (1M, 64-token "
          "stories), 4-token prediction forms induction earlier than next-token (tokens to formation)", "atlas",
          _n(4), _n(1), {"label": "base"}, measure="formation_tokens", expected_sign=-1,
          family=PAPER_CLAIMS),
    Claim("atlas-attention-n2", f"{PAPER}, Sec. 4.1 (Fig. 7 read as: MTP helps move information across "
          "positions)", "with 2-token prediction the attention of a repeated name to its earlier mention forms "
          "earlier than with next-token prediction (atlas base cell, 1M, head 1 as deep as at n=1)", "atlas", _n(2),
          _n(1), {"label": "base"}, measure="attention_tokens", expected_sign=-1,
          family=PAPER_CLAIMS),
    Claim("atlas-attention-mentions2", f"{PAPER}, Sec. 4.1 (the reading of Fig. 7)", "with 2-token prediction "
          "the copy attention forms earlier than with next-token prediction where names are mentioned twice (atlas "
          "mentions=2, where n=2 never forms induction)", "atlas", _n(2), _n(1), {"label": "mentions=2"},
          measure="attention_tokens", expected_sign=-1, family=PAPER_CLAIMS),
    Claim("atlas-readout-n2", "mtp-lab atlas (where the delay sits)", "with 2-token prediction induction takes "
          "longer to form after the copy attention has formed than with next-token prediction (atlas base cell; "
          "tokens from copy attention to formation)", "atlas", _n(2), _n(1), {"label": "base"},
          measure="readout_tokens", family=LAB),
    Claim("atlas-size", "mtp-lab atlas (Fig. 7's size range)", "the delay of 2-token prediction in forming "
          "induction shrinks with model size (300K, 1M, 3M; heads on a full-depth trunk; slope of n=2 - n=1 tokens "
          "to formation per 10x size)", "atlas", _n(2), _n(1), {"label": frozenset({"size=300K", "base", "size=3M"})},
          measure="formation_tokens", expected_sign=-1, trend="size", family=LAB),
    # Explanations of Table S6 as refutable predictions (continued pretraining unless said; head-1 loss is the
    # next-token loss on held-out data of the pretraining distribution, so a positive difference is a deficit).
    Claim("H1-shock", "Table S6, H1 (shock)", "carving 4 heads from the top blocks ('+0 layers') shocks the "
          "next-token loss more than adding zero-initialised heads (100K)", "continued", _label("carve4"),
          _label("add4"), {"size": "100K"}, measure="first_value", metric="head1/loss",
          family=FINETUNING),
    Claim("H1-deficit", "Table S6, H1 (shock)", "the more shocked carve attachment also ends further behind: "
          "higher final next-token loss than add (100K)", "continued", _label("carve4"), _label("add4"),
          {"size": "100K"}, measure="final_value", metric="head1/loss", family=FINETUNING),
    Claim("H1-init", "Table S6, H1 (shock)", "randomly initialised added heads shock the next-token loss more in "
          "the first steps than zero-initialised ones (both leave step 0 unchanged; 100K)", "continued",
          _label("add4_rand"), _label("add4"), {"size": "100K"}, measure="early_value", metric="head1/loss",
          family=FINETUNING),
    Claim("H1-init-deficit", "Table S6, H1 (shock)", "the larger early shock of randomly initialised heads also "
          "leaves a larger final deficit (final head-1 loss, 100K)", "continued", _label("add4_rand"),
          _label("add4"), {"size": "100K"}, measure="final_value", metric="head1/loss",
          family=FINETUNING),
    Claim("H2-forming", "Table S6, H2 (App. J)", "4-head finetuning helps while the capability is still forming: "
          "from the 25% checkpoint it beats next-token finetuning (task transfer, 300K; answer NLL, graded: exact "
          "match is at the floor for both, so no step can be chosen on it: the last evaluation)", "finetune",
          _label("add@25"), _label("ntp@25"), measure="final_value", metric="answer_nll", expected_sign=-1,
          family=FINETUNING),
    Claim("H2-continued", "Table S6, H2 (App. J)", "4-head continuation helps a capability that is still forming: "
          "where next-token pretraining has not formed induction (300K), add4 forms it in fewer continuation tokens "
          "than ntp", "continued", _label("add4"), _label("ntp"), {"size": "300K"}, measure="formation_tokens",
          expected_sign=-1, family=FINETUNING),
    Claim("S6-task", "Table S6 (the capability)", "4-head continuation ends with lower induction accuracy than "
          "next-token continuation (final test second-token accuracy, 100K)", "continued", _label("add4"),
          _label("ntp"), {"size": "100K"}, measure="final_value", expected_sign=-1,
          family=FINETUNING),
    Claim("H3-size", "Table S6, H3 (Table S7)", "the next-token deficit of 4-head continuation (add4 - ntp, final "
          "head-1 loss) shrinks with model size", "continued", _label("add4"), _label("ntp"),
          measure="final_value", metric="head1/loss", expected_sign=-1, trend="size",
          family=FINETUNING),
    Claim("H4-conflict", "Table S6, H4 (gradient conflict)", "the less head k's trunk gradient agrees with head "
          "1's, the larger the next-token deficit: slope of (add4 - ntp, final head-1 loss) against add4's mean "
          "gradient cosine", "continued", _label("add4"), _label("ntp"), measure="final_value", metric="head1/loss",
          expected_sign=-1, trend="align_cos", family=FINETUNING),
    Claim("H5-heads", "Table S6, H5 (dose)", "4 heads cost more next-token quality than 2 (final head-1 loss, "
          "100K)", "continued", _label("add4"), _label("add2"), {"size": "100K"}, measure="final_value",
          metric="head1/loss", family=FINETUNING),
    Claim("H5-weight", "Table S6, H5 (dose)", "extra heads at loss weight 1 cost more next-token quality than at "
          "0.1 (final head-1 loss, 100K)", "continued", _label("add4"), _label("add4_w0.1"), {"size": "100K"},
          measure="final_value", metric="head1/loss", family=FINETUNING),
    Claim("H6-layers", "Table S6, H6 (added capacity)", "'+3 layers' heads keep next-token quality better than "
          "linear heads (lower final head-1 loss, 100K)", "continued", _label("add4"), _label("linear4"),
          {"size": "100K"}, measure="final_value", metric="head1/loss", expected_sign=-1,
          family=FINETUNING),
    Claim("H6-objective", "Table S6, H6 (added capacity)", "with the layers added, the 4-token objective itself "
          "costs next-token quality: add4 ends above next-token continuation (ntp), which is the control 'the same "
          "layers with next-token loss only' since added heads sit off head 1's path (final head-1 loss, 100K)",
          "continued", _label("add4"), _label("ntp"), {"size": "100K"}, measure="final_value", metric="head1/loss",
          family=FINETUNING),
    Claim("lab-n4-1M", "mtp-lab, LOG 2026-11-28", "parameter-matched 4-token prediction has lower induction "
          "accuracy than next-token at 1M within the quick budget (a difference, not 'forms none')",
          "scaling", _n(4), _n(1), {"task": "induction", "size": "1M"},
          expected_sign=-1, family=LAB),
]


# Table S6 explanations measured at 100K, repeated at other sizes of the `continued` experiment (the
# variants of `continued.EXTRA` run at the small sizes only).
OTHER_SIZES = {"H1-shock": ("1M",), "H1-deficit": ("1M",),  # carve4 needs 5 blocks: not at 3M
               "H1-init": ("300K",), "H1-init-deficit": ("300K",),
               "S6-task": ("300K", "1M", "3M"), "H5-heads": ("3M",), "H5-weight": ("300K",), "H6-layers": ("3M",),
               "H6-objective": ("3M",)}


def at_size(claim: Claim, size: str) -> Claim:
    """The same claim measured at another model size; its key and statement name the size."""
    return replace(claim, key=f"{claim.key}-{size}", statement=claim.statement.replace("100K", size),
                   where={**claim.where, "size": size})


CLAIMS = [c for claim in CLAIMS for c in (claim, *(at_size(claim, s) for s in OTHER_SIZES.get(claim.key, ())))]

# Path-star claims measured again on Bachmann & Nagarajan's published test file (20,000 graphs): the lab's own test
# set (128 graphs in the quick preset) gives each seed a binomial standard error of about 0.04, too wide for a
# +-0.05 or +-0.1 target at 3 seeds.
ON_PUBLISHED = ("bn-next-token-8M", "bn-reverse-32M", "huang-mtp-horizon-32M-matched", "bn-next-token-8M-d5l3",
                "bn-reverse-36M-d5l3", "huang-mtp-horizon-8M-d5l3", "huang-mtp-8M-d5l3", "bn-next-token-8M-fresh",
                "bn-teacherless-8M-fresh", "huang-mtp-8M-fresh", "huang-mtp4-8M-fresh", "huang-mtp-horizon-8M-fresh")


def on_published(claim: Claim) -> Claim:
    """The same claim read from the published test file at each run's final checkpoint."""
    return replace(claim, key=f"{claim.key}-published", file="published.json",
                   file_means="on the published test file (20,000 graphs), final checkpoint",
                   statement=f"{claim.statement}; on the published test file")


CLAIMS = [c for claim in CLAIMS for c in (claim, *([on_published(claim)] if claim.key in ON_PUBLISHED else []))]


def _select(runs: pd.DataFrame, filters: dict[str, Any]) -> pd.DataFrame:
    """The rows passing `filters` (`lab.selection.RunFilter`; a frozenset value matches any member)."""
    return RunFilter.of(filters).frame(runs)


def _by_seed(runs: pd.DataFrame, column: str) -> dict[int, float]:
    return {int(s): float(v) for s, v in runs.groupby("seed")[column].mean().items()}


RunFile = Callable[[str, str], Any]  # (run_dir, file name) -> the run's extra JSON file, or None


def evaluate_claim(claim: Claim, evals: pd.DataFrame, preset: str, measured: pd.DataFrame | None = None,
                   run_file: RunFile | None = None) -> dict[str, Any]:
    """The claim's ledger row from the experiment's evaluation rows (`lab.runs.load_runs` format), or from
    their `measured` runs (`evidence.measure_runs(evals, claim.metric)`) when the caller has them; a claim
    with a `file` reads its value from each run's file through `run_file`. `verdict` is the raw verdict,
    `adjusted` the same until `ledger` adjusts it within the claim's family; `p` is the raw p-value."""
    runs = _select(evidence.measure_runs(evals, claim.metric) if measured is None else measured, claim.where)
    column = claim.measure
    if claim.file:
        runs, column = _file_values(runs, claim, run_file), "file_value"
    reading, compared_runs, prefix = _read(claim, runs, column, evals)
    notes = list(reading.notes)
    if column == "value" and len(runs):  # a noisy metric read at a chosen step: also at the last one
        last, _, last_prefix = _read(claim, runs, "final_value", evals)
        fragile = inference.plateau_label(reading.verdict, last.verdict)
        notes.append(f"{fragile + ': ' if fragile else ''}at the last evaluation "
                     f"{last.shown}, {last_prefix}{last.verdict}")
    compared = _compared(claim)
    return {"key": claim.key, "family": claim.family, "source": claim.source, "claim": claim.statement,
            "measure": _measure_name(claim), "compared": compared, "effect": reading.shown,
            "seeds": reading.seeds, "size": _one(compared_runs, "size"), "budget": _budget(compared_runs),
            "verdict": prefix + reading.verdict, "decision": reading.verdict, "prefix": prefix,
            "p": reading.p, "adjusted": prefix + reading.verdict, "power": reading.power or "-",
            "notes": "; ".join(notes) or "-",
            "command": f"python -m lab.sweep {claim.experiment} --preset {preset}"}


def _file_values(runs: pd.DataFrame, claim: Claim, run_file: RunFile | None) -> pd.DataFrame:
    """The runs that have `claim.file` with metric `claim.metric` (default: the task's primary) in its
    "metrics", that value in column `file_value`; the others are left out (not scored yet)."""
    values = []
    for run_dir, task in zip(runs["run_dir"], runs["task"]) if len(runs) else []:
        data = run_file(run_dir, claim.file) if run_file else None
        value = (data or {}).get("metrics", {}).get(claim.metric or evidence.primary_metric(task))
        values.append(math.nan if value is None else float(value))
    runs = runs.assign(file_value=values)
    return runs[runs["file_value"].notna()]


def _compared(claim: Claim) -> str:
    """What the effect compares, in words."""
    if claim.b is None:
        return f"{claim.target:g} +- {claim.tolerance:g}"
    expected = ", expected " + ("> 0" if claim.expected_sign > 0 else "< 0")
    if claim.trend:
        against = "per 10x size" if claim.trend == "size" else f"against a's {claim.trend}"
        return f"slope of a - b {against}{expected}"
    return "a - b" + expected


def _read(claim: Claim, runs: pd.DataFrame, column: str,
          evals: pd.DataFrame) -> tuple[verdicts.Reading, pd.DataFrame, str]:
    """The claim read on `column` of its runs: (reading, the runs compared, a verdict prefix naming a
    floor or ceiling whose verdict came from the graded measure)."""
    a = _select(runs, claim.a) if len(runs) else runs
    b = _select(runs, claim.b) if claim.b and len(runs) else None
    arms = pd.concat([a, b]) if b is not None else a
    if claim.trend:
        effect = _trend(claim, runs, column)
        reading = verdicts.Reading(_trend_effect(effect), stats.verdict(effect, claim.expected_sign),
                                   inference.slope_p(*_trend_xy(claim, runs, column)), effect.n)
        return reading, arms[arms["seed"].isin({s for s, _ in effect.diffs})] if len(arms) else arms, ""
    if column in evidence.FORMED:
        a_iv, b_iv = (_intervals(part, column) for part in (a, b if b is not None else a[:0]))
        reading = verdicts.formation_reading(a_iv, b_iv, claim.expected_sign)
        return reading, arms[arms["seed"].isin(a_iv.keys() & b_iv.keys())] if len(arms) else arms, ""
    a_values = _by_seed(a, column) if len(a) else {}
    b_values = (_by_seed(b, column) if len(b) else {}) if b is not None else None
    seeds = set(a_values) if b_values is None else a_values.keys() & b_values.keys()
    compared = arms[arms["seed"].isin(seeds)] if len(arms) else arms
    metric = claim.metric or (evidence.primary_metric(str(compared["task"].iloc[0])) if len(compared) else "")
    bounded = bool(metric) and verdicts.proportion(metric)
    items = _test_items(compared, column, metric) if bounded else None
    if b_values is None:
        if bounded and claim.target in (0.0, 1.0):
            reading = verdicts.binary_reading(a_values, claim.target, claim.tolerance)
        else:
            effect = stats.paired_difference(a_values, dict.fromkeys(a_values, 0.0), method="t")
            reading = verdicts.Reading(stats.format_effect(effect).removeprefix("+"), stats.verdict_close(
                effect.mean, effect.lo, effect.hi, claim.target, claim.tolerance), seeds=effect.n)
        if items and reading.seeds:
            reading.notes.append(verdicts.item_note(a_values, None, items))
        return reading, compared, ""
    reading = verdicts.t_reading(a_values, b_values, claim.expected_sign)
    if items and reading.seeds:
        reading.notes.append(verdicts.item_note(a_values, b_values, items))
    bound = verdicts.bound_label(a_values, b_values, items) if bounded and reading.seeds else ""
    if not bound:
        return reading, compared, ""
    graded = _graded(claim, compared, column, evals)
    if graded is None and bound.startswith("not measurable"):
        return verdicts.Reading(reading.shown, bound, math.nan, reading.seeds, "-", reading.notes), \
            compared, ""
    if graded is None:  # one arm at the bound: the difference is a bound, read as it is
        return reading, compared, f"{bound} (no graded measure logged; the difference is a bound): "
    metric, graded_reading = graded
    graded_reading.notes = [f"{claim.metric or 'primary metric'}: {reading.shown}", *reading.notes]
    graded_reading.shown = f"{metric} (graded): {graded_reading.shown}"
    return graded_reading, compared, f"{bound}; graded {metric}: "


def _graded(claim: Claim, runs: pd.DataFrame, column: str,
            evals: pd.DataFrame) -> tuple[str, verdicts.Reading] | None:
    """The claim read on its graded measure (lower is better, so the expected sign turns), at the same
    step rule as `column`; None when the runs do not log it."""
    metric = claim.graded or GRADED.get(str(runs["task"].iloc[0]))  # the compared runs' task
    if metric is None or evals.empty or column not in ("value", "final_value", "first_value", "early_value"):
        return None
    graded = _select(evidence.measure_runs(evals, metric), claim.where)
    if graded.empty:
        return None
    a, b = (_by_seed(_select(graded, arm), column) for arm in (claim.a, claim.b))
    if not (a.keys() & b.keys()):
        return None
    return metric, verdicts.t_reading(a, b, -claim.expected_sign)


def _intervals(part: pd.DataFrame, column: str) -> dict[int, inference.Interval]:
    """Per seed, the interval a formation-type measure lies in (the read-out: formation minus the
    attention's formation, only where the attention formed)."""
    out: dict[int, inference.Interval] = {}
    for row in part.to_dict("records") if len(part) else []:
        seed, cadence = int(row["seed"]), float(row["cadence"])
        if column == "readout_tokens":
            if not row["attention_formed"] or math.isnan(row["formation_tokens"]):
                continue
            out[seed] = verdicts.difference(
                inference.formation_interval(row["formation_tokens"], bool(row["formed"]), cadence),
                inference.formation_interval(row["attention_tokens"], True, cadence))
        elif not math.isnan(row[column]):
            flag = evidence.FORMED[column]
            out[seed] = inference.formation_interval(row[column], bool(row[flag]), cadence)
    return out


def _test_items(runs: pd.DataFrame, column: str, metric: str) -> int | None:
    """The fewest test items any compared run was scored on at the step `column` reads, where the runs
    record it: the published file (20,000 graphs); path-star's evaluation graphs, or polynomial's
    in-domain expressions (one set per operation count), under the trainer's caps
    (`train.eval_examples`, `train.final_eval_examples` at the planned last step)."""
    if not len(runs):
        return None
    if column == "file_value":
        return PUBLISHED_GRAPHS
    tasks = set(runs["task"])
    if tasks == {"graph"} and metric == "exact_path_acc":
        size, sets = runs.get("task_config.eval_graphs"), 1
    elif tasks == {"polynomial"} and metric == "exact_match/in_domain" and "task_config.max_ops" in runs:
        size = runs.get("task_config.eval_size")
        sets = np.minimum(runs["task_config.max_ops"], runs.get("task_config.eval_ops", runs["task_config.max_ops"]))
    else:
        return None
    caps = ("train.eval_examples", "train.final_eval_examples", "train.steps")
    steps = runs.get("selected_step" if column == "value" else "final_step" if column == "final_value" else "")
    if size is None or steps is None or not all(c in runs for c in caps):
        return None
    cap = runs["train.final_eval_examples"].where(steps == runs["train.steps"], runs["train.eval_examples"])
    items = sets * size.where(cap.fillna(0) <= 0, np.minimum(size, cap))
    return int(items.min()) if items.notna().all() else None


def _trend_effect(effect: stats.PairedResult) -> str:
    return stats.format_effect(effect).replace(" seeds)", " seed pairs over sizes)").replace(
        " seed)", " seed pair)")


def _trend_points(claim: Claim, runs: pd.DataFrame,
                  column: str) -> tuple[dict[tuple[int, str], float], list[float]]:
    """Per (seed, size) with both arms, a - b, and its x: log10 of the model size (`trend="size"`) or
    arm a's value of the `measure_runs` column `claim.trend`."""
    diffs: dict[tuple[int, str], float] = {}
    x: list[float] = []
    for size, part in runs.groupby("size") if len(runs) else []:
        a, b = (_by_seed(_select(part, arm), column) for arm in (claim.a, claim.b))
        along = _by_seed(_select(part, claim.a), claim.trend) if claim.trend != "size" else {}
        for seed in sorted(a.keys() & b.keys()):
            diffs[(seed, size)] = a[seed] - b[seed]
            x.append(math.log10(size_value(size)) if claim.trend == "size" else along[seed])
    return diffs, x


def _trend_xy(claim: Claim, runs: pd.DataFrame, column: str) -> tuple[list[float], list[float]]:
    diffs, x = _trend_points(claim, runs, column)
    return x, list(diffs.values())


def _trend(claim: Claim, runs: pd.DataFrame, column: str) -> stats.PairedResult:
    """The least-squares slope of the per-seed difference a - b against `_trend_points`' x, with its t
    CI (`stats.slope_ci`); `diffs` maps (seed, size) to a - b."""
    diffs, x = _trend_points(claim, runs, column)
    slope, lo, hi = stats.slope_ci(x, list(diffs.values()))
    return stats.PairedResult(slope, lo, hi, len(diffs) if not math.isnan(slope) else 0, diffs)


def _measure_name(claim: Claim) -> str:
    metric = claim.metric or "primary metric"
    if claim.file and claim.file_means:
        return f"{metric} {claim.file_means}"
    if claim.file:
        return f"{metric} in each run's {claim.file}"
    if claim.measure == "formation_tokens":
        return "tokens to formation (validation; censored at the budget)"
    if claim.measure == "readout_tokens":
        return "tokens from the copy attention's formation to induction's (validation; censored at the budget)"
    if claim.measure == "attention_tokens":
        return (f"tokens until the copy attention reaches {evidence.ATTENTION_THRESHOLD:g} (validation stories; "
                "censored at the run's end)")
    if claim.measure == "final_value":  # a loss, not a capability: no step is chosen for it
        return f"{metric} at the last evaluation"
    if claim.measure == "first_value":
        return f"{metric} at step 0 (before any update)"
    if claim.measure == "early_value":
        return f"{metric} at the first evaluation after step 0"
    return f"test {metric} at the validation-selected step"


def _one(runs: pd.DataFrame, column: str) -> str:
    values = sorted({str(v) for v in runs[column]}, key=lambda v: (size_value(v), v) if column == "size" else (0, v)) \
        if column in runs and len(runs) else []
    return ", ".join(values) if values else "-"


def _budget(runs: pd.DataFrame) -> str:
    if "budget" not in runs or not len(runs):
        return "-"
    tokens = sorted({int(t) for t in runs["budget"]})
    return ", ".join(f"{t / 1e6:.2g}M" for t in tokens)


def ledger(load: Callable[[str], pd.DataFrame], preset: str, claims: list[Claim] | None = None,
           run_file: Callable[[str, str, str], Any] | None = None) -> pd.DataFrame:
    """One row per claim. `load(experiment)` returns that experiment's evaluation rows (may be empty);
    `run_file(experiment, run_dir, name)` a run's extra JSON file, for claims with a `file`."""
    frames: dict[str, pd.DataFrame] = {}
    measured: dict[tuple[str, str | None], pd.DataFrame] = {}  # each experiment's runs measured once per metric
    rows = []
    for claim in claims or CLAIMS:
        if claim.experiment not in frames:
            frames[claim.experiment] = load(claim.experiment)
        key = (claim.experiment, claim.metric)
        if key not in measured:
            measured[key] = evidence.measure_runs(frames[claim.experiment], claim.metric)
        files = (lambda d, n, e=claim.experiment: run_file(e, d, n)) if run_file else None
        rows.append(evaluate_claim(claim, frames[claim.experiment], preset, measured[key], files))
    return adjust_families(pd.DataFrame(rows))


def adjust_families(table: pd.DataFrame) -> pd.DataFrame:
    """The ledger with `p_adjusted` and `adjusted`: each row's raw p-value adjusted by Holm's method
    within its family (`inference.adjust`); rows without a p-value (targets) keep their verdict."""
    if table.empty:
        return table
    out = inference.adjust(zip(table["key"], table["family"], table["p"], table["decision"]))
    return table.assign(p_adjusted=[o.p_adjusted for o in out], adjusted_decision=[o.verdict for o in out],
                        adjusted=[prefix + o.verdict for prefix, o in zip(table["prefix"], out)])


RULES = f"""\
{inference.LEDGER_RULES}

How each row is read (`lab/analysis/claims.py`, `lab/analysis/verdicts.py`):
- Families, declared on each claim: {", ".join(FAMILIES)}. Holm's step-down adjustment runs over
  the rows of a family that have a p-value (comparisons and slopes; targets have none and are in
  no family). *reproduced* in the text means the adjusted verdict: a raw verdict whose adjusted
  p-value is not below 0.05 reads "no detectable effect after Holm".
- Values are test metrics at the step chosen on the validation set (never a finetuned run's step 0,
  the checkpoint before any update; a flat validation curve gives its last step), the last
  evaluation where the measure says so, or Bachmann & Nagarajan's published 20,000 test graphs
  scored at each run's final checkpoint.
- Tokens to formation: bounds on the mean difference over every placement inside the evaluation
  intervals and every formation time after the budget, the exact sign-flip p at both extremes, the
  seeds formed per arm (exact McNemar test); the raw p is the larger of the two. With 3 seeds the
  smallest possible p is 0.25: {verdicts.SIGN_FLIP_SEEDS} seeds are the fewest that can give a verdict.
- A target of exactly 0 or 1 on a proportion ("solves it") is a binary outcome per seed: in the
  band or not. The count has an exact Clopper-Pearson 95% CI; *reproduced* when it lies above 1/2
  (most seeds), *not reproduced* below 1/2, else *inconclusive* ({verdicts.seeds_for_majority()}
  seeds of one outcome are the fewest that decide). Other targets keep the t interval.
- Floors and ceilings: an arm whose proportion sits at 0 (or 1) in every seed, within 0.01 or within
  the test set's exact binomial error where its size is known, has a bound, not a value. Both arms there: *not
  measurable at this floor*; one arm: the difference is a bound. Either way the verdict is the
  claim's graded measure's (answer NLL, path NLL, second-token NLL; lower is better), read by
  the same rule and named in the verdict.
- Power: the MDE of "no detectable effect" is the noncentral-t one (80% power, two-sided 0.05);
  the power column gives the power at the observed effect and the a-priori seed count that would
  give 80% for the observed effect and spread (an observed sd at 3 seeds is itself uncertain by
  a factor of 0.52 to 6.3: plan from a stated sd).
- The seed-level t intervals exclude test-item sampling: they treat each test set as fixed. Where a
  row knows its per-seed test-set size (path-star graphs, the published file), the notes add the
  item-aware interval (seed variance plus each arm's binomial item variance p(1 - p) / items).
- A claim read at the validation-selected step is also read at the last evaluation (notes); a
  verdict that differs there is labelled *fragile*."""

COLUMNS = ["key", "family", "source", "claim", "measure", "compared", "effect", "seeds", "size",
           "budget", "verdict", "p", "adjusted", "power", "notes", "command"]


def _cell(row: pd.Series, column: str) -> str:
    value = row[column]
    if column in ("p", "p_adjusted"):
        return "-" if value is None or math.isnan(value) else f"{value:.3g}"
    if column == "adjusted":
        p = row.get("p_adjusted", math.nan)
        return f"{value} (Holm p {p:.3g})" if p is not None and not math.isnan(p) else value
    return str(value).replace("|", "\\|")


def markdown(table: pd.DataFrame, preset: str, source: str) -> str:
    """`figures/CLAIMS.md` from the ledger rows: raw verdict and p-value, Holm-adjusted verdict."""
    lines = [f"# Claims tested by mtp-lab ({preset} preset)", "",
             f"Generated by `python -m lab.figures --preset {preset}` from {source}; do not edit by hand.", "",
             RULES, "", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for _, row in table.iterrows():
        cells = [_cell(row, c) if c in row else "-" for c in COLUMNS]
        cells[-1] = f"`{cells[-1]}`"
        lines.append("| " + " | ".join(cells) + " |")
    for column, name in (("decision", "Raw verdicts"), ("adjusted_decision", "After Holm within families")):
        if column in table:
            counts = table[column].str.split(r"\s*\(", regex=True).str[0].value_counts()
            lines += ["", f"{name}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) + "."]
    graded = [k for k, p in zip(table["key"], table.get("prefix", [])) if p]
    if graded:
        lines += ["", "Read at a floor or ceiling (verdict from the graded measure, or a bound): "
                  + ", ".join(graded) + "."]
    fragile = [k for k, n in zip(table["key"], table.get("notes", [])) if "fragile:" in str(n)]
    if fragile:
        lines += ["", "Fragile (the verdict differs at the last evaluation): " + ", ".join(fragile) + "."]
    return "\n".join(lines) + "\n"
