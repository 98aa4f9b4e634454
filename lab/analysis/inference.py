"""Inference for the claims ledger: tests and intervals that hold at 3-5 seeds.

`lab.stats` gives the paired Student-t interval of a mean difference. This module adds what a
verdict needs besides it, each rule stated here and printed in the ledger header (`LEDGER_RULES`):

1. Formation (`compare_formation`). Formation is known only to lie between two evaluations,
   (last evaluation before it, first at or after it], and a run that never formed only to lie
   after its last evaluation (censored at the budget). Each seed's difference a - b therefore
   lies in an interval; the test is the exact sign-flip test of the Wilcoxon signed-rank
   statistic (`sign_flip_p`), run at the lowest and at the highest difference of every seed.
   The verdict stands only if both extremes give it; otherwise it is "undetermined", flagged as
   depending on the placement inside the evaluation intervals or on when the censored runs
   would have formed after the budget. Bounds and p-values are reported, never a "95% CI":
   3 of 3 seeds with the same sign give p = 0.25, whatever the sizes.
2. Floors and ceilings (`floor_ceiling`). When both arms sit at the metric's floor (its
   chance level, or below it) or ceiling, within a tolerance or within the test set's binomial
   sampling error, the
   comparison is "not measurable at this floor" (ceiling): a graded measure must be used.
3. Binary outcomes (`binomial_interval`, `compare_counts`, `paired_binary`) are counts with
   exact Clopper-Pearson intervals ("1 of 3, 95% CI [0.008, 0.906]"), compared by Fisher's
   exact test (independent arms) or the exact McNemar test (arms paired by seed).
4. Families (`adjust`). A claim's raw two-sided p-value (`paired_t_p`, `slope_p`, or the
   formation test) is adjusted within its family by Holm's step-down method; a raw verdict
   that does not survive adjustment reads "no detectable effect after Holm".
5. Power (`power_paired_t`, `mde_paired_t`, `seeds_for`). Power of the two-sided paired t test
   from the noncentral t. The central-t shortcut of `lab.stats.mde`, (t_{0.975} + t_{0.8}) sd /
   sqrt(n), has 76.6% power at 3 seeds (not 80%); the noncentral MDE is 3.26 sd there, not 3.10
   sd (5% larger; 1.2% at 5 seeds, 0.1% at 10). An observed sd at 3 seeds is itself uncertain by
   a factor of 0.52 to 6.3 (`sd_interval`): seed counts are planned from a stated sd.
6. Test-item sampling. The seed t interval treats the test set as fixed. `item_aware_interval`
   adds each arm's binomial item variance p(1 - p) / items to the seed variance (use it when
   only per-seed accuracies are stored; it errs wide: p(1 - p) bounds the variance of item
   difficulties, and arms that agree item by item vary less than independent ones);
   `cluster_bootstrap_ci` resamples seeds and items together (use it when per-item scores
   exist and there are 5 or more seeds; with fewer, the percentile bootstrap is too narrow).
7. Plateaus (`plateau_label`). A verdict read at the validation-selected step is also read at
   the last evaluation; when the two differ the claim is "fragile".

Imports numpy, scipy and statsmodels only (no torch, no trainer, no experiment).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize
from scipy import stats as st
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests

LEVEL = 0.95
ALPHA = 1 - LEVEL
POWER = 0.8
MAX_EXACT_SEEDS = 20  # 2^20 sign vectors: the sign-flip test stays exact and fast enough

LEDGER_RULES = """\
Verdicts follow stated rules (`lab/analysis/inference.py`). A comparison a - b is paired by seed;
its 95% CI is the Student-t interval of the mean paired difference, and its raw p-value that of
the paired t test. *reproduced*: the CI excludes 0 on the expected side; *reversed*: on the other
side; *no detectable effect*: it contains 0, with the minimal detectable effect at 80% power from
the noncentral t. Claims come in families stated up front; each verdict is given raw and after
Holm's adjustment within its family, and "reproduced" in the text means reproduced after
adjustment. Tokens to formation are known only between two evaluations, and not at all for a run
that never formed by its budget: such rows give bounds on the mean difference and the exact
sign-flip p-value at both extremes (3 of 3 seeds of one sign: p = 0.25), never a zero-width CI;
a verdict that differs between the extremes is *undetermined* and names what it depends on
(where formation happened inside the evaluation interval, or when a censored run would have
formed). Binary outcomes are counts with exact Clopper-Pearson intervals. Two arms both at the
metric's floor or ceiling (within the test set's sampling error) are *not measurable* there.
Intervals on test metrics either include test-item sampling or say that they exclude it. A claim
on a noisy metric is also read at the last evaluation; a verdict that differs there is *fragile*."""


def _clean(values: Iterable[float]) -> np.ndarray:
    """Values as a float array with NaNs dropped (a NaN is a missing measurement)."""
    x = np.asarray(list(values), dtype=float).ravel()
    return x[~np.isnan(x)]


def _head(verdict: str) -> str:
    """A verdict's leading phrase: "reversed (...)" -> "reversed"."""
    return verdict.split(" (")[0].strip()


# ----- 1. formation under interval censoring and censoring at the budget -----

@dataclass(frozen=True)
class Interval:
    """Formation lies in (lo, hi]; hi = inf means not formed by `lo` (censored at the budget)."""

    lo: float
    hi: float

    @property
    def formed(self) -> bool:
        return math.isfinite(self.hi)


def formation_interval(tokens: float, formed: bool, cadence: float) -> Interval:
    """A run's formation interval from its first evaluation at or after formation (`tokens`,
    formed) or its last evaluation (`tokens`, not formed); `cadence`: tokens between evaluations."""
    if not formed:
        return Interval(float(tokens), math.inf)
    return Interval(max(float(tokens) - float(cadence), 0.0), float(tokens))


def _signed_rank(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Wilcoxon's signed-rank sum: ranks of |x| (ties averaged, inf ranked last) with x's signs."""
    return np.sum(np.sign(x) * st.rankdata(np.abs(x), axis=axis), axis=axis)


def sign_flip_p(diffs: Sequence[float], alternative: str = "two-sided") -> float:
    """Exact p-value of the paired sign-flip test of "a - b is symmetric about 0", statistic the
    signed-rank sum, enumerating all 2^n sign vectors. Infinite differences (censored runs) are
    allowed: only their sign and rank count. Zero differences keep the statistic; nan when empty."""
    d = _clean(diffs)
    if len(d) == 0:
        return math.nan
    if len(d) > MAX_EXACT_SEEDS:
        raise ValueError(f"sign_flip_p enumerates 2^n sign vectors; n = {len(d)} is over "
                         f"{MAX_EXACT_SEEDS}")
    if not np.any(d):
        return 1.0
    result = st.permutation_test((d,), _signed_rank, permutation_type="samples", vectorized=True,
                                 n_resamples=np.inf, alternative=alternative)
    return float(min(result.pvalue, 1.0))


@dataclass(frozen=True)
class FormationComparison:
    """A paired formation comparison that does not depend on where formation happened.

    `mean_lo`/`mean_hi` bound the mean of a - b over every placement consistent with the
    evaluations (+-inf when a censored run makes it unbounded); `p_lo`/`p_hi` are the two-sided
    sign-flip p-values at the lowest and highest differences."""

    n: int
    formed_a: int
    formed_b: int
    mean_lo: float
    mean_hi: float
    p_lo: float
    p_hi: float
    verdict: str
    placement_sensitive: bool = False
    budget_sensitive: bool = False


def _bounds(a: Interval, b: Interval, after_budget: float) -> tuple[float, float]:
    """(lowest, highest) a - b; a censored run forms at most `after_budget` after its budget."""
    hi_a = a.hi if a.formed else a.lo + after_budget
    hi_b = b.hi if b.formed else b.lo + after_budget
    return a.lo - hi_b, hi_a - b.lo


def _decide(lo: np.ndarray, hi: np.ndarray, alpha: float) -> str:
    """"higher" or "lower" when the test rejects at both extremes, "none" when at neither,
    else "depends"."""
    if sign_flip_p(lo, "greater") < alpha / 2:
        return "higher"
    if sign_flip_p(hi, "less") < alpha / 2:
        return "lower"
    if sign_flip_p(hi, "greater") >= alpha / 2 and sign_flip_p(lo, "less") >= alpha / 2:
        return "none"
    return "depends"


def _worded(decision: str, expected_sign: int, n: int) -> str:
    if decision == "none":
        return f"no detectable effect (sign-flip test, {n} seed{'s' * (n != 1)})"
    return "reproduced" if (decision == "higher") == (expected_sign > 0) else "reversed"


def compare_formation(a: Mapping[Hashable, Interval], b: Mapping[Hashable, Interval],
                      expected_sign: int, alpha: float = ALPHA) -> FormationComparison:
    """Paired comparison of formation intervals a - b over the seeds both arms have.

    The verdict holds for every placement of formation inside the intervals and every time a
    censored run might have formed after its budget; else it is "undetermined", and the flags
    say whether the evaluation intervals alone (censored runs forming right at the budget)
    leave it open (`placement_sensitive`) or only the censored runs do (`budget_sensitive`)."""
    seeds = [s for s in a if s in b]
    n = len(seeds)
    formed_a, formed_b = sum(a[s].formed for s in seeds), sum(b[s].formed for s in seeds)
    if n == 0:
        return FormationComparison(0, 0, 0, math.nan, math.nan, math.nan, math.nan, "not run")
    lo, hi = (np.array(v) for v in zip(*(_bounds(a[s], b[s], math.inf) for s in seeds)))
    near_lo, near_hi = (np.array(v) for v in zip(*(_bounds(a[s], b[s], 0.0) for s in seeds)))
    full, near = _decide(lo, hi, alpha), _decide(near_lo, near_hi, alpha)
    placement, budget = near == "depends", full != near
    if formed_a == formed_b == 0:
        verdict = "neither arm formed (both censored at the budget)"
    elif full != "depends":
        verdict = _worded(full, expected_sign, n)
    else:
        why = "the placement of formation between evaluations" if placement else \
            "when the censored runs would have formed after the budget"
        verdict = f"undetermined (depends on {why})"
    return FormationComparison(n, formed_a, formed_b, float(lo.mean()), float(hi.mean()),
                               sign_flip_p(lo), sign_flip_p(hi), verdict, placement, budget)


def format_formation(result: FormationComparison) -> str:
    """e.g. "a - b between +1e+05 and +3e+05 tokens; sign-flip p 0.25; formed a 3 of 3, b 3 of 3"
    (bounds and exact p-values: never a CI)."""
    if result.n == 0:
        return "not run"
    p = f"{result.p_lo:.3g}" if result.p_lo == result.p_hi else \
        f"{min(result.p_lo, result.p_hi):.3g} to {max(result.p_lo, result.p_hi):.3g}"
    return (f"a - b between {result.mean_lo:+.3g} and {result.mean_hi:+.3g} tokens; "
            f"sign-flip p {p}; formed a {result.formed_a} of {result.n}, "
            f"b {result.formed_b} of {result.n}")


# ----- 2. floors and ceilings -----

def at_bound(values: Iterable[float], bound: float, tolerance: float = 0.0,
             n_items: int | None = None, level: float = LEVEL, beyond: int = 0) -> bool:
    """True when every value is within `tolerance` of `bound` or, for a proportion scored on
    `n_items` test items, not distinguishable from it by an exact binomial test at 1 - level.
    `beyond` = -1 (a floor) or +1 (a ceiling) also counts values past the bound: a metric's
    chance level is a floor a model can score below."""
    x = _clean(values)
    if len(x) == 0:
        return False

    def close(v: float) -> bool:
        if abs(v - bound) <= tolerance or beyond * (v - bound) > 0:
            return True
        if not n_items or not 0 <= bound <= 1:
            return False
        return st.binomtest(int(round(v * n_items)), n_items, bound).pvalue >= 1 - level
    return all(close(float(v)) for v in x)


def floor_ceiling(a: Iterable[float], b: Iterable[float], floor: float = 0.0, ceiling: float = 1.0,
                  tolerance: float = 0.0, n_items: int | None = None,
                  level: float = LEVEL) -> str | None:
    """"not measurable at this floor" (ceiling) when both arms' values sit at it (or past it),
    else None; a floor above 0 is the metric's chance level and says so."""
    a, b = list(a), list(b)
    for bound, name, side in ((floor, "floor", -1), (ceiling, "ceiling", 1)):
        if all(at_bound(x, bound, tolerance, n_items, level, beyond=side) for x in (a, b)):
            return f"not measurable at this {name}" + (f" (chance, {floor:.3g})" if side < 0 < floor
                                                       else "")
    return None


# ----- 3. binary outcomes -----

@dataclass(frozen=True)
class Proportion:
    """k of n with its exact (Clopper-Pearson) interval."""

    k: int
    n: int
    lo: float
    hi: float
    level: float = LEVEL

    def __str__(self) -> str:
        if self.n == 0:
            return "0 of 0"
        return f"{self.k} of {self.n}, {self.level:.0%} CI [{self.lo:.3f}, {self.hi:.3f}]"


def binomial_interval(k: int, n: int, level: float = LEVEL) -> Proportion:
    """The exact Clopper-Pearson interval of a proportion: 1 of 3 gives [0.008, 0.906]."""
    if not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k = {k}, n = {n}")
    if n == 0:
        return Proportion(0, 0, math.nan, math.nan, level)
    ci = st.binomtest(k, n).proportion_ci(confidence_level=level, method="exact")
    return Proportion(k, n, float(ci.low), float(ci.high), level)


def compare_counts(k_a: int, n_a: int, k_b: int, n_b: int) -> float:
    """Two-sided p of Fisher's exact test of k_a / n_a against k_b / n_b (independent arms)."""
    return float(st.fisher_exact([[k_a, n_a - k_a], [k_b, n_b - k_b]])[1])


@dataclass(frozen=True)
class PairedBinary:
    """Seeds by outcome in both arms, and the exact McNemar p-value (discordant seeds only)."""

    both: int
    only_a: int
    only_b: int
    neither: int
    p: float


def paired_binary(a: Mapping[Hashable, bool], b: Mapping[Hashable, bool]) -> PairedBinary:
    """Binary outcomes paired by seed (seeds in both arms): the exact McNemar test, i.e. the
    binomial test of only_a against only_b; 5 of 5 discordant seeds one way give p = 0.0625."""
    seeds = [s for s in a if s in b]
    count = lambda x, y: sum(bool(a[s]) == x and bool(b[s]) == y for s in seeds)
    table = [[count(True, True), count(True, False)], [count(False, True), count(False, False)]]
    p = 1.0 if table[0][1] + table[1][0] == 0 else float(mcnemar(table, exact=True).pvalue)
    return PairedBinary(table[0][0], table[0][1], table[1][0], table[1][1], p)


# ----- 4. p-values and claim families -----

def paired_t_p(diffs: Iterable[float]) -> float:
    """Two-sided p of the paired t test of mean(a - b) = 0: below 0.05 exactly when the t CI of
    `lab.stats.paired_difference` excludes 0. Equal nonzero differences give 0 (a zero-width CI),
    all-zero ones 1; nan below 2 differences."""
    d = _clean(diffs)
    if len(d) < 2:
        return math.nan
    if np.ptp(d) == 0:
        return 0.0 if d[0] != 0 else 1.0
    return float(st.ttest_1samp(d, 0.0).pvalue)


def slope_p(x: Iterable[float], y: Iterable[float]) -> float:
    """Two-sided p of the least-squares slope of y on x against 0 (n - 2 degrees of freedom, as
    `lab.stats.slope_ci`); NaN pairs dropped, nan below 3 points or 2 distinct x."""
    xy = np.array([(p, q) for p, q in zip(x, y) if not (math.isnan(p) or math.isnan(q))],
                  dtype=float)
    if len(xy) < 3 or np.ptp(xy[:, 0]) == 0:
        return math.nan
    return float(st.linregress(xy[:, 0], xy[:, 1]).pvalue)


@dataclass(frozen=True)
class Adjusted:
    """One claim's raw and family-adjusted p-value and verdict."""

    key: str
    family: str
    p: float
    p_adjusted: float
    raw: str
    verdict: str


def adjust(rows: Iterable[tuple[str, str, float, str]], method: str = "holm",
           alpha: float = ALPHA) -> list[Adjusted]:
    """(key, family, raw p, raw verdict) rows -> adjusted rows, in order. p-values are adjusted
    within each family (statsmodels `multipletests`: "holm", or "fdr_bh" for Benjamini-Hochberg);
    a row with p < alpha whose adjusted p is not is re-worded "no detectable effect after ...".
    Rows without a p-value (nan) keep their verdict and are not counted in the family."""
    rows = list(rows)
    adjusted = [math.nan] * len(rows)
    for family in dict.fromkeys(r[1] for r in rows):
        index = [i for i, r in enumerate(rows) if r[1] == family and not math.isnan(r[2])]
        if index:
            p_adj = multipletests([rows[i][2] for i in index], alpha=alpha, method=method)[1]
            for i, p in zip(index, p_adj):
                adjusted[i] = float(p)
    name = {"holm": "Holm", "fdr_bh": "Benjamini-Hochberg"}.get(method, method)
    out = []
    for (key, family, p, raw), p_adj in zip(rows, adjusted):
        lost = p < alpha and not p_adj < alpha
        verdict = f"no detectable effect after {name} (family {family})" if lost else raw
        out.append(Adjusted(key, family, p, p_adj, raw, verdict))
    return out


# ----- 5. power from the noncentral t -----

def power_paired_t(effect: float, sd: float, n: int, alpha: float = ALPHA) -> float:
    """Power of the two-sided paired t test at n seeds for a true mean difference `effect` with
    per-seed spread `sd` (noncentral t, noncentrality effect / sd * sqrt(n)); nan below 2 seeds."""
    if n < 2 or not sd > 0:
        return math.nan
    df, nc = n - 1, abs(effect) / sd * math.sqrt(n)  # the test is symmetric in the sign
    crit = st.t.ppf(1 - alpha / 2, df)
    wrong_side = float(st.nct.cdf(-crit, df, nc))  # rejecting with the wrong sign (nan far out)
    return float(st.nct.sf(crit, df, nc)) + (0.0 if math.isnan(wrong_side) else wrong_side)


def mde_paired_t(sd: float, n: int, power: float = POWER, alpha: float = ALPHA) -> float:
    """Smallest true mean difference the paired t test at n seeds detects with `power`."""
    if n < 2 or not sd > 0:
        return math.nan
    f = lambda e: power_paired_t(e, sd, n, alpha) - power
    hi = sd
    while f(hi) < 0:
        hi *= 2
    return float(optimize.brentq(f, 0.0, hi, xtol=1e-12 * sd))


def seeds_for(effect: float, sd: float, power: float = POWER, alpha: float = ALPHA,
              max_seeds: int = 10_000) -> int | None:
    """The a-priori seed count: smallest n >= 2 whose paired t test detects `effect` (spread
    `sd`) with `power`; None when even `max_seeds` would not."""
    if effect == 0 or not sd > 0:
        return None
    n = 2
    while n <= max_seeds:
        if power_paired_t(effect, sd, n, alpha) >= power:
            return n
        n += 1
    return None


def sd_interval(sd: float, n: int, level: float = LEVEL) -> tuple[float, float]:
    """Chi-square interval of a normal spread from an observed sd at n seeds: at 3 seeds
    [0.52 sd, 6.3 sd], so an MDE read off 3 seeds is known to within a factor of 12."""
    if n < 2:
        return math.nan, math.nan
    df, tail = n - 1, (1 - level) / 2
    return (sd * math.sqrt(df / st.chi2.ppf(1 - tail, df)),
            sd * math.sqrt(df / st.chi2.ppf(tail, df)))


# ----- 6. intervals that include test-item sampling -----

def item_aware_interval(a: Mapping[Hashable, float], b: Mapping[Hashable, float] | None,
                        n_items: int, level: float = LEVEL) -> tuple[float, float, float]:
    """(mean, lo, hi) of mean(a - b) over the seeds both arms have (of a alone when b is None),
    proportions on `n_items` test items shared by all seeds. Variance = seed variance / seeds +
    sum over arms of p(1 - p) / n_items (an upper bound on the item sampling a fixed test set
    adds, exact for items of equal difficulty; arms treated as independent, which errs wide
    when they agree item by item); t quantile with
    seeds - 1 degrees of freedom. With one seed only the item term remains (normal quantile)."""
    seeds = [s for s in a if b is None or s in b]
    if not seeds:
        return math.nan, math.nan, math.nan
    pa = np.array([a[s] for s in seeds], dtype=float)
    pb = np.array([b[s] for s in seeds], dtype=float) if b is not None else None
    d = pa - pb if pb is not None else pa
    item_var = sum(float(p.mean() * (1 - p.mean())) for p in (pa, pb) if p is not None) / n_items
    seed_var = float(d.var(ddof=1)) / len(d) if len(d) > 1 else 0.0
    upper = 1 - (1 - level) / 2
    q = st.t.ppf(upper, len(d) - 1) if len(d) > 1 else st.norm.ppf(upper)
    half = float(q) * math.sqrt(seed_var + item_var)
    return float(d.mean()), float(d.mean()) - half, float(d.mean()) + half


def cluster_bootstrap_ci(a_scores: np.ndarray, b_scores: np.ndarray | None = None,
                         n_boot: int = 2000, level: float = LEVEL,
                         rng: np.random.Generator | None = None) -> tuple[float, float, float]:
    """(mean, lo, hi): percentile CI of the mean of a - b (or of a) from (seeds x items) score
    matrices, paired by seed and item, resampling seeds and items independently (the crossed,
    "pigeonhole" bootstrap, which errs wide). Needs 5 or more seeds to cover; seeded default rng."""
    m = np.asarray(a_scores, dtype=float)
    m = m - (0.0 if b_scores is None else np.asarray(b_scores, dtype=float))
    if m.ndim != 2 or min(m.shape) < 2:
        raise ValueError(f"need a (seeds x items) matrix, 2 or more of each; got shape {m.shape}")
    rng = np.random.default_rng(0) if rng is None else rng
    (s, i), tail = m.shape, (1 - level) / 2
    w_seed = rng.multinomial(s, np.full(s, 1 / s), size=n_boot)  # times each seed is drawn
    w_item = rng.multinomial(i, np.full(i, 1 / i), size=n_boot)
    means = np.einsum("bs,si,bi->b", w_seed, m, w_item) / (s * i)
    lo, hi = np.quantile(means, [tail, 1 - tail])
    return float(m.mean()), float(lo), float(hi)


# ----- 7. plateaus -----

def plateau_label(selected: str, last: str) -> str:
    """"fragile" when the verdict at the validation-selected step and at the last evaluation
    differ (in their leading phrase), else ""."""
    return "fragile" if _head(selected) != _head(last) else ""
