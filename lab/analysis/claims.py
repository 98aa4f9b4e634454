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

import pandas as pd

from lab.analysis import evidence, stats
from lab.config import size_value
from lab.selection import RunFilter

PAPER = "Gloeckle et al. 2024"
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


def _n(k: int) -> dict[str, int]:
    return {"model.n_future": k}


def _label(name: str) -> dict[str, str]:
    return {"label": name}


CLAIMS: list[Claim] = [
    Claim("fig7-1M", f"{PAPER}, Fig. 7", "2-token prediction forms induction better than next-token at 1M",
          "scaling", _n(2), _n(1), {"task": "induction", "size": "1M"}),
    Claim("fig7-300K", f"{PAPER}, Fig. 7", "2-token prediction forms induction better than next-token at 300K",
          "scaling", _n(2), _n(1), {"task": "induction", "size": "300K"}),
    Claim("figS14", f"{PAPER}, Fig. S14", "with induction-rich data, 2-token prediction still helps the smallest "
          "model (1M)", "induction_rich", _n(2), _n(1), {"size": "1M"}),
    Claim("fig8-n2", f"{PAPER}, Fig. 8", "2-token prediction raises in-domain polynomial exact match (1M)",
          "scaling", _n(2), _n(1), {"task": "polynomial", "size": "1M"}),
    Claim("fig8-n4", f"{PAPER}, Fig. 8", "4-token prediction raises in-domain polynomial exact match (1M)",
          "scaling", _n(4), _n(1), {"task": "polynomial", "size": "1M"}),
    Claim("figS15-pause", f"{PAPER}, Fig. S15/S16", "with pause tokens, 2-token prediction still raises "
          "polynomial exact match", "pause", _n(2), _n(1), {"task.pause_tokens": 5}),
    Claim("tableS6-carve", f"{PAPER}, Table S6", "4-head finetuning with '+0 layers' heads is worse than "
          "next-token finetuning", "finetune", _label("carve"), _label("ntp"), expected_sign=-1),
    Claim("tableS6-linear", f"{PAPER}, Table S6", "4-head finetuning with linear heads is worse than next-token "
          "finetuning", "finetune", _label("linear"), _label("ntp"), expected_sign=-1),
    Claim("tableS6-add", f"{PAPER}, Table S6", "4-head finetuning with '+3 layers' heads beats next-token "
          "finetuning (its only gain)", "finetune", _label("add"), _label("ntp")),
    Claim("fig4-recipe", f"{PAPER}, Fig. 4", "MTP pretraining then next-token finetuning beats next-token "
          "pretraining and finetuning", "finetune", _label("mtp_drop"), _label("ntp")),
    Claim("tableS7", f"{PAPER}, Table S7", "at small sizes 4-token prediction costs next-token quality "
          "(head-1 loss higher than n=1 at 1M, induction)", "scaling", _n(4), _n(1),
          {"task": "induction", "size": "1M"}, measure="final_value", metric="head1/loss"),
    Claim("bn-next-token", f"{BN}", "next-token training of path-star G(2,5,50) picks the arm at chance: "
          "teacher-forced position 2 at 1/d = 0.5", "pathstar", _label("next-token"), metric="tf_pos_acc/2",
          target=0.5, tolerance=0.1),
    Claim("bn-reverse", f"{BN}", "reverse training solves path-star G(2,5,50) (exact path about 100%)",
          "pathstar", _label("reverse"), target=1.0, tolerance=0.05),
    Claim("bn-reverse-8M", f"{BN}", "reverse training solves path-star G(2,5,50) within 8M tokens (4000 steps, "
          "200,000 fixed graphs, early stopping on validation path NLL)", "pathstar_long", _label("reverse-fixed"),
          target=1.0, tolerance=0.05),
    Claim("bn-reverse-32M", f"{BN}", "reverse training solves path-star G(2,5,50) within 32M tokens (16,000 steps, "
          "200,000 fixed graphs, early stopping on validation path NLL)", "pathstar_long",
          _label("reverse-fixed-16k"), target=1.0, tolerance=0.05),
    Claim("bn-next-token-8M", f"{BN}", "next-token training of path-star G(2,5,50) stays at chance at position 2 "
          "(teacher-forced 1/d = 0.5) within 8M tokens (200,000 fixed graphs, early stopping)", "pathstar_long",
          _label("next-token-fixed"), metric="tf_pos_acc/2", target=0.5, tolerance=0.1),
    Claim("bn-teacherless", f"{BN}", "teacherless training solves the small graph G(2,5,50)", "pathstar",
          _label("teacherless"), target=1.0, tolerance=0.1),
    Claim("bn-teacherless-8M", f"{BN}", "teacherless training solves the small graph G(2,5,50) within 8M tokens "
          "(200,000 fixed graphs, early stopping)", "pathstar_long", _label("teacherless-fixed"), target=1.0,
          tolerance=0.1),
    Claim("huang-mtp", "Huang et al. 2026", "multi-token prediction beats next-token training on path-star "
          "graphs (exact path)", "pathstar", _label("mtp"), _label("next-token")),
    Claim("huang-mtp-deep", "Huang et al. 2026", "multi-token prediction beats next-token training on path-star "
          "G(2,5,50) with head 1 as deep as at n=1 (2 heads, exact path)", "heads", _n(2), _n(1), {"task": "graph"}),
    Claim("huang-mtp-horizon", "Huang et al. 2026", "multi-token prediction whose horizon covers the whole path "
          "(6 heads, path length 5) beats next-token training on path-star G(2,5,50), head 1 as deep as at n=1",
          "heads", _n(6), _n(1), {"task": "graph"}),
    Claim("huang-mtp-8M", "Huang et al. 2026", "2-token prediction beats next-token training on path-star "
          "G(2,5,50) within 8M tokens (200,000 fixed graphs, early stopping, exact path)", "pathstar_long",
          _label("mtp2-fixed"), _label("next-token-fixed")),
    Claim("huang-mtp4-8M", "Huang et al. 2026", "4-token prediction beats next-token training on path-star "
          "G(2,5,50) within 8M tokens (200,000 fixed graphs, early stopping, exact path)", "pathstar_long",
          _label("mtp4-fixed"), _label("next-token-fixed")),
    Claim("huang-mtp-horizon-8M", "Huang et al. 2026", "multi-token prediction whose horizon covers the whole path "
          "(n = l = 5) beats next-token training on path-star G(2,5,50) within 8M tokens (200,000 fixed graphs, "
          "early stopping, exact path)", "pathstar_long", _label("mtp5-fixed"), _label("next-token-fixed")),
    Claim("huang-mtp-horizon-32M", "Huang et al. 2026", "multi-token prediction whose horizon covers the whole "
          "path (n = l = 5) trained within 32M tokens beats next-token training at its 8M budget, where it already "
          "sits at its Clever Hans ceiling of 1/d (path-star G(2,5,50), 200,000 fixed graphs, early stopping, "
          "exact path)", "pathstar_long", _label("mtp5-fixed-16k"), _label("next-token-fixed")),
    Claim("huang-mtp-horizon-32M-matched", "Huang et al. 2026", "multi-token prediction whose horizon covers the "
          "whole path (n = l = 5) beats next-token training, both within 32M tokens (path-star G(2,5,50), 200,000 "
          "fixed graphs, early stopping, exact path)", "pathstar_long", _label("mtp5-fixed-16k"),
          _label("next-token-fixed-16k")),
    # The same arms on fresh graphs (a new sample every batch, so no training set to memorise), as Frydenlund 2025.
    Claim("bn-next-token-8M-fresh", f"{BN}", "next-token training of path-star G(2,5,50) stays at chance at "
          "position 2 (teacher-forced 1/d = 0.5) within 8M tokens of fresh graphs (early stopping)", "pathstar_long",
          _label("next-token-fresh"), metric="tf_pos_acc/2", target=0.5, tolerance=0.1),
    Claim("bn-reverse-8M-fresh", f"{BN}", "reverse training solves path-star G(2,5,50) within 8M tokens of fresh "
          "graphs (4000 steps, early stopping on validation path NLL)", "pathstar_long", _label("reverse-fresh"),
          target=1.0, tolerance=0.05),
    Claim("bn-teacherless-8M-fresh", f"{BN}", "teacherless training solves the small graph G(2,5,50) within 8M "
          "tokens of fresh graphs (early stopping)", "pathstar_long", _label("teacherless-fresh"), target=1.0,
          tolerance=0.1),
    Claim("huang-mtp-8M-fresh", "Huang et al. 2026", "2-token prediction beats next-token training on path-star "
          "G(2,5,50) within 8M tokens of fresh graphs (early stopping, exact path)", "pathstar_long",
          _label("mtp2-fresh"), _label("next-token-fresh")),
    Claim("huang-mtp4-8M-fresh", "Huang et al. 2026", "4-token prediction beats next-token training on path-star "
          "G(2,5,50) within 8M tokens of fresh graphs (early stopping, exact path)", "pathstar_long",
          _label("mtp4-fresh"), _label("next-token-fresh")),
    Claim("huang-mtp-horizon-8M-fresh", "Huang et al. 2026", "multi-token prediction whose horizon covers the whole "
          "path (n = l = 5) beats next-token training on path-star G(2,5,50) within 8M tokens of fresh graphs "
          "(early stopping, exact path)", "pathstar_long", _label("mtp5-fresh"), _label("next-token-fresh")),
    Claim("bn-next-token-8M-d5l3", f"{BN}", "next-token training of the larger path-star G(5,3,50) stays at chance "
          "at position 2 (teacher-forced 1/d = 0.2) within 8M tokens (200,000 fixed graphs, early stopping)",
          "pathstar_long", _label("next-token-fixed-d5l3"), metric="tf_pos_acc/2", target=0.2, tolerance=0.05),
    Claim("bn-reverse-36M-d5l3", f"{BN}", "reverse training solves the larger path-star G(5,3,50) within 36M tokens "
          "(16,000 steps, 200,000 fixed graphs, early stopping on validation path NLL)", "pathstar_long",
          _label("reverse-fixed-16k-d5l3"), target=1.0, tolerance=0.05),
    Claim("lab-reverse-one-lookup", "mtp-lab, LOG 2026-12-03 (why reverse sits at 1/d on G(5,3,50))", "reverse "
          "training of G(2,3,50), where (as on G(5,3,50)) one position of the reversed path needs the backward edge "
          "lookup, stays at the child-of-source shortcut (exact path 1/d = 0.5) within 8000 steps (200,000 fixed "
          "graphs, early stopping on validation path NLL); every G(2,5,50) reverse seed left it by 4500",
          "pathstar_long", _label("reverse-fixed-8k-d2l3"), target=0.5, tolerance=0.1),
    Claim("lab-reverse-degree-3", "mtp-lab, LOG 2026-12-03 (why reverse sits at 1/d on G(5,3,50))", "reverse "
          "training solves G(3,3,50) (one backward lookup per path, degree 3) within 8000 steps (200,000 fixed "
          "graphs, early stopping on validation path NLL)", "pathstar_long", _label("reverse-fixed-8k-d3l3"),
          target=1.0, tolerance=0.05),
    Claim("huang-mtp-horizon-8M-d5l3", "Huang et al. 2026", "multi-token prediction whose horizon covers the whole "
          "path (n = l = 3) beats next-token training on the larger path-star G(5,3,50) within 8M tokens (200,000 "
          "fixed graphs, early stopping, exact path)", "pathstar_long", _label("mtp3-fixed-d5l3"),
          _label("next-token-fixed-d5l3")),
    Claim("bn-teacherless-8M-d5l3", f"{BN}", "teacherless training solves the larger path-star G(5,3,50) within 8M "
          "tokens (200,000 fixed graphs, early stopping)", "pathstar_long", _label("teacherless-fixed-d5l3"),
          target=1.0, tolerance=0.1),
    Claim("huang-mtp-8M-d5l3", "Huang et al. 2026", "2-token prediction beats next-token training on the larger "
          "path-star G(5,3,50) within 8M tokens (200,000 fixed graphs, early stopping, exact path)", "pathstar_long",
          _label("mtp2-fixed-d5l3"), _label("next-token-fixed-d5l3")),
    Claim("fig7-deep", f"{PAPER}, Fig. 7 (head 1 as deep as at n=1)", "2-token prediction forms induction better "
          "than next-token at 1M with heads on a full-depth trunk (tokens to formation)", "heads", _n(2), _n(1),
          {"task": "induction"}, measure="formation_tokens", expected_sign=-1),
    Claim("lab-dynamics", "mtp-lab, LOG 2026-11-28", "2-token prediction forms induction later than next-token "
          "at 1M (tokens to formation)", "dynamics", _n(2), _n(1), measure="formation_tokens"),
    Claim("headline-n2", f"{PAPER}, Fig. 7 (head 1 as deep as at n=1)", "at the lab.run defaults (1M, 600 steps, "
          "heads on a full-depth trunk) 2-token prediction forms induction better than next-token", "headline",
          _n(2), _n(1)),
    Claim("headline-n4", f"{PAPER}, Fig. 7 (head 1 as deep as at n=1)", "at the lab.run defaults (1M, 600 steps, "
          "heads on a full-depth trunk) 4-token prediction forms induction better than next-token", "headline",
          _n(4), _n(1)),
    Claim("atlas-base-n2", f"{PAPER}, Fig. 7 (atlas base cell)", "with head 1 as deep as at n=1 (1M, 64-token "
          "stories), 2-token prediction forms induction earlier than next-token (tokens to formation)", "atlas",
          _n(2), _n(1), {"label": "base"}, measure="formation_tokens", expected_sign=-1),
    Claim("atlas-base-n4", f"{PAPER}, Fig. 7 (atlas base cell)", "with head 1 as deep as at n=1 (1M, 64-token "
          "stories), 4-token prediction forms induction earlier than next-token (tokens to formation)", "atlas",
          _n(4), _n(1), {"label": "base"}, measure="formation_tokens", expected_sign=-1),
    Claim("atlas-attention-n2", f"{PAPER}, Sec. 4.1 (Fig. 7 read as: MTP helps move information across "
          "positions)", "with 2-token prediction the attention of a repeated name to its earlier mention forms "
          "earlier than with next-token prediction (atlas base cell, 1M, head 1 as deep as at n=1)", "atlas", _n(2),
          _n(1), {"label": "base"}, measure="attention_tokens", expected_sign=-1),
    Claim("atlas-attention-mentions2", f"{PAPER}, Sec. 4.1 (the reading of Fig. 7)", "with 2-token prediction "
          "the copy attention forms earlier than with next-token prediction where names are mentioned twice (atlas "
          "mentions=2, where n=2 never forms induction)", "atlas", _n(2), _n(1), {"label": "mentions=2"},
          measure="attention_tokens", expected_sign=-1),
    Claim("atlas-readout-n2", "mtp-lab atlas (where the delay sits)", "with 2-token prediction induction takes "
          "longer to form after the copy attention has formed than with next-token prediction (atlas base cell; "
          "tokens from copy attention to formation)", "atlas", _n(2), _n(1), {"label": "base"},
          measure="readout_tokens"),
    Claim("atlas-size", "mtp-lab atlas (Fig. 7's size range)", "the delay of 2-token prediction in forming "
          "induction shrinks with model size (300K, 1M, 3M; heads on a full-depth trunk; slope of n=2 - n=1 tokens "
          "to formation per 10x size)", "atlas", _n(2), _n(1), {"label": frozenset({"size=300K", "base", "size=3M"})},
          measure="formation_tokens", expected_sign=-1, trend="size"),
    # Explanations of Table S6 as refutable predictions (continued pretraining unless said; head-1 loss is the
    # next-token loss on held-out data of the pretraining distribution, so a positive difference is a deficit).
    Claim("H1-shock", "Table S6, H1 (shock)", "carving 4 heads from the top blocks ('+0 layers') shocks the "
          "next-token loss more than adding zero-initialised heads (100K)", "continued", _label("carve4"),
          _label("add4"), {"size": "100K"}, measure="first_value", metric="head1/loss"),
    Claim("H1-deficit", "Table S6, H1 (shock)", "the more shocked carve attachment also ends further behind: "
          "higher final next-token loss than add (100K)", "continued", _label("carve4"), _label("add4"),
          {"size": "100K"}, measure="final_value", metric="head1/loss"),
    Claim("H1-init", "Table S6, H1 (shock)", "randomly initialised added heads shock the next-token loss more in "
          "the first steps than zero-initialised ones (both leave step 0 unchanged; 100K)", "continued",
          _label("add4_rand"), _label("add4"), {"size": "100K"}, measure="early_value", metric="head1/loss"),
    Claim("H1-init-deficit", "Table S6, H1 (shock)", "the larger early shock of randomly initialised heads also "
          "leaves a larger final deficit (final head-1 loss, 100K)", "continued", _label("add4_rand"),
          _label("add4"), {"size": "100K"}, measure="final_value", metric="head1/loss"),
    Claim("H2-forming", "Table S6, H2 (App. J)", "4-head finetuning helps while the capability is still forming: "
          "from the 25% checkpoint it beats next-token finetuning (task transfer, 300K; answer NLL, graded: exact "
          "match is at the floor for both, so no step can be chosen on it: the last evaluation)", "finetune",
          _label("add@25"), _label("ntp@25"), measure="final_value", metric="answer_nll", expected_sign=-1),
    Claim("H2-continued", "Table S6, H2 (App. J)", "4-head continuation helps a capability that is still forming: "
          "where next-token pretraining has not formed induction (300K), add4 forms it in fewer continuation tokens "
          "than ntp", "continued", _label("add4"), _label("ntp"), {"size": "300K"}, measure="formation_tokens",
          expected_sign=-1),
    Claim("S6-task", "Table S6 (the capability)", "4-head continuation ends with lower induction accuracy than "
          "next-token continuation (final test second-token accuracy, 100K)", "continued", _label("add4"),
          _label("ntp"), {"size": "100K"}, measure="final_value", expected_sign=-1),
    Claim("H3-size", "Table S6, H3 (Table S7)", "the next-token deficit of 4-head continuation (add4 - ntp, final "
          "head-1 loss) shrinks with model size", "continued", _label("add4"), _label("ntp"),
          measure="final_value", metric="head1/loss", expected_sign=-1, trend="size"),
    Claim("H4-conflict", "Table S6, H4 (gradient conflict)", "the less head k's trunk gradient agrees with head "
          "1's, the larger the next-token deficit: slope of (add4 - ntp, final head-1 loss) against add4's mean "
          "gradient cosine", "continued", _label("add4"), _label("ntp"), measure="final_value", metric="head1/loss",
          expected_sign=-1, trend="align_cos"),
    Claim("H5-heads", "Table S6, H5 (dose)", "4 heads cost more next-token quality than 2 (final head-1 loss, "
          "100K)", "continued", _label("add4"), _label("add2"), {"size": "100K"}, measure="final_value",
          metric="head1/loss"),
    Claim("H5-weight", "Table S6, H5 (dose)", "extra heads at loss weight 1 cost more next-token quality than at "
          "0.1 (final head-1 loss, 100K)", "continued", _label("add4"), _label("add4_w0.1"), {"size": "100K"},
          measure="final_value", metric="head1/loss"),
    Claim("H6-layers", "Table S6, H6 (added capacity)", "'+3 layers' heads keep next-token quality better than "
          "linear heads (lower final head-1 loss, 100K)", "continued", _label("add4"), _label("linear4"),
          {"size": "100K"}, measure="final_value", metric="head1/loss", expected_sign=-1),
    Claim("H6-objective", "Table S6, H6 (added capacity)", "with the layers added, the 4-token objective itself "
          "costs next-token quality: add4 ends above next-token continuation (ntp), which is the control 'the same "
          "layers with next-token loss only' since added heads sit off head 1's path (final head-1 loss, 100K)",
          "continued", _label("add4"), _label("ntp"), {"size": "100K"}, measure="final_value", metric="head1/loss"),
    Claim("lab-n4-1M", "mtp-lab, LOG 2026-11-28", "parameter-matched 4-token prediction forms no induction "
          "at 1M within the quick budget", "scaling", _n(4), _n(1), {"task": "induction", "size": "1M"},
          expected_sign=-1),
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
    with a `file` reads its value from each run's file through `run_file`."""
    runs = _select(evidence.measure_runs(evals, claim.metric) if measured is None else measured, claim.where)
    column = claim.measure
    if claim.file:
        runs, column = _file_values(runs, claim, run_file), "file_value"
    a = _select(runs, claim.a)
    a_values = _by_seed(a, column) if len(a) else {}
    if claim.b is None:
        effect = stats.paired_difference(a_values, dict.fromkeys(a_values, 0.0), method="t")
        verdict = stats.verdict_close(effect.mean, effect.lo, effect.hi, claim.target, claim.tolerance)
        compared = f"{claim.target:g} +- {claim.tolerance:g}"
    elif claim.trend:
        effect = _trend(claim, runs, column)
        verdict = stats.verdict(effect, claim.expected_sign)
        against = "per 10x size" if claim.trend == "size" else f"against a's {claim.trend}"
        compared = f"slope of a - b {against}, expected " + ("> 0" if claim.expected_sign > 0 else "< 0")
    else:
        b = _select(runs, claim.b)
        b_values = _by_seed(b, column) if len(b) else {}
        effect = stats.paired_difference(a_values, b_values, method="t")
        verdict = stats.verdict(effect, claim.expected_sign)
        compared = "a - b, expected " + ("> 0" if claim.expected_sign > 0 else "< 0")
    arms = pd.concat([_select(runs, claim.a), *([_select(runs, claim.b)] if claim.b else [])]) if len(runs) else runs
    measured = arms[arms["seed"].isin({s for s, *_ in effect.diffs} if claim.trend else effect.diffs)] \
        if len(arms) else arms  # the runs compared: their sizes and budgets
    shown = stats.format_effect(effect)
    if claim.b is None:  # a value, not a difference: no sign
        shown = shown.removeprefix("+")
    if claim.trend:
        shown = shown.replace(" seeds)", " seed pairs over sizes)").replace(" seed)", " seed pair)")
    if column in evidence.FORMED and len(measured):
        shown += _formation_note(measured, claim, effect)
    return {"key": claim.key, "source": claim.source, "claim": claim.statement, "measure": _measure_name(claim),
            "compared": compared, "effect": shown, "seeds": effect.n,
            "size": _one(measured, "size"), "budget": _budget(measured), "verdict": verdict,
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


def _formation_note(measured: pd.DataFrame, claim: Claim, effect: stats.PairedResult) -> str:
    """What bounds a tokens-to-formation effect: '; formed: a 2 of 3, b 3 of 3' when an arm has runs censored at
    the budget (the difference is then a bound), and the evaluation cadence when the CI is narrower than it
    (formation is only known to lie between two evaluations)."""
    note = ""
    counts = [(name, _select(measured, arm)) for name, arm in (("a", claim.a), ("b", claim.b)) if arm]
    flag = evidence.FORMED[claim.measure]
    if not all(part[flag].all() for _, part in counts):
        note += "; formed: " + ", ".join(f"{name} {int(part[flag].sum())} of {len(part)}"
                                         for name, part in counts) + " (the rest count at the budget)"
    cadence = float(measured["cadence"].max()) if "cadence" in measured else math.nan
    if effect.n and effect.hi - effect.lo < cadence:
        note += f"; resolution {cadence:.3g} tokens (the evaluation cadence)"
    return note


def _trend(claim: Claim, runs: pd.DataFrame, column: str) -> stats.PairedResult:
    """The least-squares slope of the per-seed difference a - b, over every (size, seed) with both arms,
    against log10 of the model size (`trend="size"`) or against arm a's value of the `measure_runs`
    column `claim.trend`, with its t CI (`stats.slope_ci`); `diffs` maps (seed, size) to a - b."""
    diffs: dict[tuple[int, str], float] = {}
    x: list[float] = []
    for size, part in runs.groupby("size") if len(runs) else []:
        a, b = (_by_seed(_select(part, arm), column) for arm in (claim.a, claim.b))
        along = _by_seed(_select(part, claim.a), claim.trend) if claim.trend != "size" else {}
        for seed in sorted(a.keys() & b.keys()):
            diffs[(seed, size)] = a[seed] - b[seed]
            x.append(math.log10(size_value(size)) if claim.trend == "size" else along[seed])
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
    return pd.DataFrame(rows)


RULES = """\
Verdicts follow one rule (`lab/stats.py`). A comparison a - b is paired by seed (the same seed
gives both arms the same data order); its 95% CI is the Student-t interval of the mean paired
difference. *reproduced*: the CI excludes 0 on the expected side; *reversed*: it excludes 0 on
the other side; *no detectable effect*: it contains 0, and the minimal detectable effect (MDE,
80% power) at this seed count is given; *not run*: no seed has both arms. A claim "value close
to a target" is *reproduced* when the CI lies inside target +- tolerance, *not reproduced* when
it lies outside, else *inconclusive*. Values are test metrics at the step chosen on the
validation set (or tokens to formation detected on validation, censored at the budget), except
where the measure names the published test file: Bachmann & Nagarajan's 20,000 test graphs,
scored on each run's final checkpoint (which no test metric chose)."""


def markdown(table: pd.DataFrame, preset: str, source: str) -> str:
    """`figures/CLAIMS.md` from the ledger rows."""
    columns = ["key", "source", "claim", "measure", "compared", "effect", "seeds", "size", "budget", "verdict",
               "command"]
    lines = [f"# Claims tested by mtp-lab ({preset} preset)", "",
             f"Generated by `python -m lab.figures --preset {preset}` from {source}; do not edit by hand.", "",
             RULES, "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for _, row in table.iterrows():
        cells = [str(row[c]).replace("|", "\\|") for c in columns]
        cells[-1] = f"`{cells[-1]}`"
        lines.append("| " + " | ".join(cells) + " |")
    counts = table["verdict"].str.split(" [(]").str[0].value_counts()
    lines += ["", "Verdicts: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) + "."]
    return "\n".join(lines) + "\n"
