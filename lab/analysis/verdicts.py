"""From a claim's per-seed values to one reading: the test that fits the measure, its raw p-value,
its verdict, what power it had, and the notes a statistician asks for.

- `t_reading`: a paired difference (Student-t CI, paired t test), the MDE from the noncentral t
  and the a-priori seed count for 80% power at the observed effect and spread;
- `formation_reading`: tokens to formation as evaluation intervals, censored at the budget
  (`inference.compare_formation`): bounds and exact sign-flip p-values, never a CI;
- `binary_reading`: a "solves it" target read per seed as in the band or not: a count with its
  Clopper-Pearson interval, reproduced when that interval lies above 1/2 (most seeds);
- `bound_label`: both arms (or one) at the metric's floor or ceiling;
- `item_note`: the interval that adds test-item sampling (`inference.item_aware_interval`).

The rules are printed in the ledger header (`lab.analysis.claims.RULES`). Imports no torch.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field

import numpy as np

from lab.analysis import inference, stats

SIGN_FLIP_SEEDS = 6  # the fewest seeds at which the exact sign-flip test reaches p < 0.05
FLOOR_TOLERANCE = 0.01  # a proportion within 0.01 of its floor (chance, else 0) or of 1 sits there
MAJORITY = 0.5  # a binary "solves it" claim is about most seeds: the share's exact CI against 1/2


@dataclass
class Reading:
    """One reading of a claim: the effect as printed, the verdict, the raw two-sided p-value of
    the test behind it (nan: no test, the row is in no family), seeds, power and notes."""

    shown: str
    verdict: str
    p: float = math.nan
    seeds: int = 0
    power: str = ""
    notes: list[str] = field(default_factory=list)


def proportion(metric: str) -> bool:
    """Whether a metric is a proportion in [0, 1] (accuracies, exact match): it has bounds."""
    name = metric.lower()
    return ("acc" in name or "exact" in name) and not name.endswith(("nll", "loss"))


def _sd(diffs: Mapping[Hashable, float]) -> float:
    d = np.array(list(diffs.values()), dtype=float)
    return float(d.std(ddof=1)) if len(d) > 1 else math.nan


def t_verdict(effect: stats.PairedResult, expected_sign: int) -> str:
    """`stats.verdict`, with the MDE of "no detectable effect" from the noncentral t (80% power)."""
    verdict = stats.verdict(effect, expected_sign)
    if verdict.startswith("no detectable effect (MDE"):
        mde = inference.mde_paired_t(_sd(effect.diffs), effect.n)
        verdict = f"no detectable effect (MDE {mde:.3g} at {effect.n} seeds, noncentral t)"
    return verdict


def power_note(effect: stats.PairedResult) -> str:
    """The a-priori seed count for 80% power at the observed effect and spread, labelled as such."""
    sd = _sd(effect.diffs)
    if effect.n < 2 or not sd > 0:
        return "-"
    now = inference.power_paired_t(effect.mean, sd, effect.n)
    need = inference.seeds_for(effect.mean, sd)
    wanted = f"{need} seeds" if need is not None else "over 10,000 seeds"
    return f"power {now:.0%} (noncentral t); 80% at the observed effect and sd: {wanted} (a-priori)"


def t_reading(a: Mapping[Hashable, float], b: Mapping[Hashable, float],
              expected_sign: int) -> Reading:
    """The paired comparison a - b: Student-t CI, paired t p-value, noncentral-t power."""
    effect = stats.paired_difference(a, b, method="t")
    return Reading(stats.format_effect(effect), t_verdict(effect, expected_sign),
                   inference.paired_t_p(effect.diffs.values()), effect.n, power_note(effect))


def intervals(tokens: Mapping[Hashable, float], formed: Mapping[Hashable, bool],
              cadence: Mapping[Hashable, float]) -> dict[Hashable, inference.Interval]:
    """Per seed, the interval formation lies in (`inference.formation_interval`); NaNs left out."""
    return {s: inference.formation_interval(t, bool(formed[s]), cadence[s])
            for s, t in tokens.items() if not math.isnan(t)}


def difference(later: inference.Interval, earlier: inference.Interval) -> inference.Interval:
    """The interval of `later - earlier` (the read-out: formation minus the attention's)."""
    return inference.Interval(max(later.lo - earlier.hi, 0.0), later.hi - earlier.lo)


def formation_reading(a: Mapping[Hashable, inference.Interval],
                      b: Mapping[Hashable, inference.Interval], expected_sign: int) -> Reading:
    """Tokens to formation a - b under interval censoring and censoring at the budget: bounds and
    the exact sign-flip p-values, counts formed per arm with the exact McNemar test, flags for
    placement and budget; the raw p is the larger of the two extremes'."""
    result = inference.compare_formation(a, b, expected_sign)
    if result.n == 0:
        return Reading("not run", "not run")
    paired = inference.paired_binary({s: v.formed for s, v in a.items()},
                                     {s: v.formed for s, v in b.items()})
    notes = [f"formed per seed: both {paired.both}, only a {paired.only_a}, "
             f"only b {paired.only_b}, "
             f"neither {paired.neither} (exact McNemar p {paired.p:.3g})"]
    if result.placement_sensitive:
        notes.append("depends on placement inside the evaluation interval")
    if result.budget_sensitive:
        notes.append("depends on the budget (when censored runs would form)")
    power = (f"the sign-flip test needs {SIGN_FLIP_SEEDS} seeds to reach p < 0.05 (smallest p at "
             f"{result.n} seeds: {2 / 2 ** result.n:.3g})" if result.n < SIGN_FLIP_SEEDS else "-")
    p = max(result.p_lo, result.p_hi)
    return Reading(inference.format_formation(result), result.verdict, p, result.n, power, notes)


def seeds_for_majority(level: float = inference.LEVEL) -> int:
    """Fewest seeds whose unanimous outcome puts the Clopper-Pearson interval clear of 1/2 (6)."""
    n = 1
    while inference.binomial_interval(n, n, level).lo <= MAJORITY:
        n += 1
    return n


def binary_reading(values: Mapping[Hashable, float], target: float, tolerance: float) -> Reading:
    """A "solves it" (or "never") target read per seed as in target +- tolerance or not: the
    count with its exact interval; reproduced when the interval lies above 1/2, not reproduced
    below, else inconclusive."""
    x = [v for v in values.values() if not math.isnan(v)]
    if not x:
        return Reading("not run", "not run")
    k = sum(abs(v - target) <= tolerance for v in x)
    share = inference.binomial_interval(k, len(x))
    shown = f"{share} of seeds within {target:g} +- {tolerance:g} (per seed: " + \
        ", ".join(f"{v:.3g}" for v in x) + ")"
    need = seeds_for_majority()
    if share.lo > MAJORITY:
        verdict = "reproduced"
    elif share.hi < MAJORITY:
        verdict = "not reproduced"
    else:
        verdict = (f"inconclusive ({k} of {len(x)} seeds; a verdict on most seeds needs {need} "
                   "of one outcome)")
    power = f"{need} seeds of one outcome give a verdict" if len(x) < need else "-"
    return Reading(shown, verdict, math.nan, len(x), power)


def bound_label(a: Mapping[Hashable, float], b: Mapping[Hashable, float] | None,
                n_items: int | None, floor: float = 0.0) -> str:
    """"not measurable at this floor" (ceiling) when both arms sit at it in every seed; "a at the
    floor in every seed" (or b, or ceiling) when one arm does; "" otherwise. A value is at the
    bound within `FLOOR_TOLERANCE`, or within the test set's exact binomial sampling error when
    `n_items` is known; `floor` is the metric's chance level (0 unless the task has one), and a
    value below it sits at it too."""
    a_x, b_x = list(a.values()), list(b.values()) if b is not None else []
    if not a_x:
        return ""
    if b_x:
        both = inference.floor_ceiling(a_x, b_x, floor=floor, tolerance=FLOOR_TOLERANCE,
                                       n_items=n_items)
        if both:
            return both
    for bound, name, side in ((floor, "floor", -1), (1.0, "ceiling", 1)):
        for arm, x in (("a", a_x), ("b", b_x)):
            if x and inference.at_bound(x, bound, FLOOR_TOLERANCE, n_items, beyond=side):
                return f"{arm} at the {name} in every seed"
    return ""


def item_note(a: Mapping[Hashable, float], b: Mapping[Hashable, float] | None, n_items: int) -> str:
    """The interval that adds test-item sampling to the seed spread, with the test-set size."""
    mean, lo, hi = inference.item_aware_interval(a, b, n_items)
    if math.isnan(mean):
        return ""
    return f"item-aware 95% CI [{lo:.3g}, {hi:.3g}] ({n_items} test items per seed)"
