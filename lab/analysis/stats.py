"""Statistics for comparing arms over seeds: bootstrap CIs, paired differences, formation times.

An arm is one configuration (n = 2 heads, or a finetuning variant) run over several seeds. The
same seed gives every arm the same data order, so two arms are compared seed by seed: the
effect is the mean over seeds of (a - b), and seeds that only one arm has are left out.

The rule for a claim of the form "a differs from b in the expected direction":

    Take the 95% confidence interval (CI) of the mean paired difference a - b.
    - "reproduced"            the CI excludes 0 and lies on the expected side of it;
    - "reversed"              the CI excludes 0 and lies on the opposite side;
    - "no detectable effect"  the CI contains 0; the verdict states the minimal detectable
                              effect (MDE) at this number of seeds, so "no effect" is never
                              read as "the effect is absent" when the experiment was too small
                              to see it;
    - "not run"               no seed has both arms.

The rule for a claim of the form "value is close to a target" (next-token accuracy ~ 1/d):

    Take the 95% CI of the value and the band target +- tolerance.
    - "reproduced"      the CI lies inside the band;
    - "not reproduced"  the CI lies entirely outside the band;
    - "inconclusive"    the CI overlaps the band's edge (or there is no CI: one seed);
    - "not run"         no value.

The CI of the ledger and the plots is the Student-t interval (`paired_difference(...,
method="t")`, `mean_ci`), which keeps its coverage at any number of seeds. The percentile
bootstrap (`bootstrap_ci`, 10 000 resamples, fixed seed; `paired_difference`'s default method)
is too narrow at very few seeds: at 3 seeds it covers the true mean about 75% of the time
instead of 95%, so no verdict uses it. Exact tests for formation, binary outcomes, families of
claims and noncentral-t power are in `lab.analysis.inference`.
The MDE is (t_{1-alpha/2} + t_{power}) * sd(diff) / sqrt(n) with n - 1 degrees of freedom,
alpha = 0.05, power = 0.8: the smallest true mean difference a paired t-test at this n and
this spread would detect 80% of the time. The t quantiles are computed exactly (closed form of
the t distribution for integer degrees of freedom), with no scipy.

Abrupt capabilities (induction) form suddenly, so they are measured as tokens-to-formation
(`formation_tokens`): the tokens at the first evaluation where a metric reaches a threshold,
or the budget, marked not formed (censored), when it never does. `censored_summary` gives the
fraction formed, the Kaplan-Meier median and the restricted mean (area under the Kaplan-Meier
survival curve up to the budget). `learning_curve_auc` is a graded alternative: the mean of
the learning curve over the tokens trained.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

LEVEL = 0.95
POWER = 0.8


def _clean(values: Iterable[float]) -> np.ndarray:
    """Values as a float array with NaNs dropped (a NaN is a missing measurement, not a value)."""
    x = np.asarray(values if isinstance(values, np.ndarray) else list(values), dtype=float).ravel()
    return x[~np.isnan(x)]


def bootstrap_ci(values: Iterable[float], stat: Callable[..., Any] = np.mean, n_boot: int = 10_000,
                 level: float = LEVEL, rng: np.random.Generator | None = None) -> tuple[float,
                                                                                        float,
                                                                                        float]:
    """(estimate, lo, hi): `stat` of the values and its percentile-bootstrap CI at `level`.

    NaNs are dropped first. One value has no CI: (x, nan, nan); no values: all nan. The default
    rng is seeded, so the same values always give the same CI. `stat` is called with axis=1 on
    the (n_boot, n) resamples when it accepts it, else once per resample."""
    x = _clean(values)
    if len(x) == 0:
        return math.nan, math.nan, math.nan
    estimate = float(stat(x))
    if len(x) == 1:
        return estimate, math.nan, math.nan
    rng = np.random.default_rng(0) if rng is None else rng
    samples = x[rng.integers(0, len(x), size=(n_boot, len(x)))]
    try:
        stats = np.asarray(stat(samples, axis=1), dtype=float)
    except TypeError:
        stats = np.array([stat(row) for row in samples], dtype=float)
    tail = (1 - level) / 2
    lo, hi = np.quantile(stats, [tail, 1 - tail])
    return estimate, float(lo), float(hi)


def t_cdf_abs(t: float, df: int) -> float:
    """P(|T| < t) for Student's t with integer `df` (Abramowitz & Stegun 26.7.3-4, exact)."""
    theta = math.atan(abs(t) / math.sqrt(df))
    s, c2 = math.sin(theta), math.cos(theta) ** 2
    if df % 2 == 0:
        term, total = 1.0, 1.0
        for k in range(2, df, 2):  # 1, (1/2)c^2, (1*3)/(2*4)c^4, ... up to c^(df-2)
            term *= c2 * (k - 1) / k
            total += term
        return s * total
    if df == 1:
        return 2 * theta / math.pi
    term, total = math.cos(theta), math.cos(theta)
    for k in range(3, df, 2):  # c, (2/3)c^3, (2*4)/(3*5)c^5, ... up to c^(df-2)
        term *= c2 * (k - 1) / k
        total += term
    return 2 / math.pi * (theta + s * total)


def t_quantile(p: float, df: int | None) -> float:
    """The p-quantile of Student's t with integer `df` (bisection on `t_cdf_abs`); normal when df is
    None."""
    if not 0 < p < 1:
        raise ValueError(f"quantile level must be in (0, 1), got {p}")
    if df is None:
        return NormalDist().inv_cdf(p)
    if df < 1:
        return math.nan
    target = abs(2 * p - 1)  # P(|T| < q) for the upper quantile q of a symmetric distribution
    lo, hi = 0.0, 1.0
    while t_cdf_abs(hi, df) < target:
        hi *= 2
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if t_cdf_abs(mid, df) < target else (lo, mid)
    return math.copysign((lo + hi) / 2, p - 0.5)


def mean_ci(values: Iterable[float], level: float = LEVEL) -> tuple[float, float, float]:
    """Mean and Student-t CI of the mean (NaNs dropped; no CI below 2 values): what the plots
    draw."""
    x = _clean(values)
    if len(x) == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if len(x) < 2:
        return mean, math.nan, math.nan
    half = t_quantile(1 - (1 - level) / 2, len(x) - 1) * float(x.std(ddof=1)) / math.sqrt(len(x))
    return mean, mean - half, mean + half


def mde(sd: float, n: int, alpha: float = 1 - LEVEL, power: float = POWER) -> float:
    """Minimal detectable effect of a paired test at n seeds with per-seed difference spread `sd`:
    (t_{1-alpha/2} + t_{power}) * sd / sqrt(n), n - 1 degrees of freedom; nan below 2 seeds."""
    if n < 2:
        return math.nan
    return (t_quantile(1 - alpha / 2, n - 1) + t_quantile(power, n - 1)) * sd / math.sqrt(n)


@dataclass
class PairedResult:
    """Mean of a - b over the seeds both arms have, its CI, and what it could have detected."""
    mean: float
    lo: float
    hi: float
    n: int
    diffs: dict[Hashable, float] = field(default_factory=dict)
    mde: float = math.nan
    dropped: int = 0
    level: float = LEVEL


def paired_difference(a: Mapping[Hashable, float], b: Mapping[Hashable, float],
                      level: float = LEVEL,
                      power: float = POWER, method: str = "bootstrap", n_boot: int = 10_000,
                      rng: np.random.Generator | None = None) -> PairedResult:
    """Mean over seeds of a[seed] - b[seed], paired because a seed fixes the data order in both
    arms.

    Seeds missing (or NaN) in either arm are left out and counted in `dropped`. The CI is the
    percentile bootstrap of the mean difference (method="bootstrap") or the Student-t interval
    (method="t", which keeps 95% coverage at 2-5 seeds where the bootstrap is too narrow)."""
    if method not in ("bootstrap", "t"):
        raise ValueError(f"method must be 'bootstrap' or 't', got {method!r}")
    ok = lambda v: v is not None and not math.isnan(float(v))
    both = [s for s in a if s in b and ok(a[s]) and ok(b[s])]
    dropped = len(set(a) | set(b)) - len(both)
    diffs = {s: float(a[s]) - float(b[s]) for s in both}
    d = np.array(list(diffs.values()), dtype=float)
    sd = float(np.std(d, ddof=1)) if len(d) > 1 else math.nan
    if method == "bootstrap":
        mean, lo, hi = bootstrap_ci(d, n_boot=n_boot, level=level, rng=rng)
    else:
        mean = float(d.mean()) if len(d) else math.nan
        half = t_quantile(1 - (1 - level) / 2,
                          len(d) - 1) * sd / math.sqrt(len(d)) if len(d) > 1 else math.nan
        lo, hi = mean - half, mean + half
    return PairedResult(mean, lo, hi, len(d), diffs, mde(sd, len(d), 1 - level, power), dropped,
                        level)


def _curve(curve: pd.DataFrame | Sequence[Mapping[str, Any]], metric: str,
           tokens_col: str) -> pd.DataFrame:
    """The (tokens, metric) evaluations of a curve, sorted by tokens, rows without the metric
    dropped."""
    df = curve if isinstance(curve, pd.DataFrame) else pd.DataFrame(list(curve))
    for col in (tokens_col, metric):
        if col not in df.columns:
            raise ValueError(f"curve has no column {col!r}")
    df = df[[tokens_col, metric]].astype(float).dropna()
    if df.empty:
        raise ValueError(f"curve has no evaluation of {metric!r}")
    return df.sort_values(tokens_col, kind="stable")


def formation_tokens(curve: pd.DataFrame | Sequence[Mapping[str, Any]], metric: str,
                     threshold: float,
                     tokens_col: str = "tokens", higher_is_better: bool = True) -> tuple[float,
                                                                                         bool]:
    """(tokens, formed): tokens at the first evaluation where `metric` reaches `threshold`.

    A run that never reaches it gives (its last evaluated tokens, False): censored at the budget,
    since all we know is that it had not formed by then. `curve` is a DataFrame or metrics.jsonl
    rows; rows without the metric are skipped. For a loss, pass higher_is_better=False."""
    df = _curve(curve, metric, tokens_col)
    values = df[metric].to_numpy()
    hit = values >= threshold if higher_is_better else values <= threshold
    if hit.any():
        return float(df[tokens_col].to_numpy()[hit.argmax()]), True
    return float(df[tokens_col].iloc[-1]), False


def relative_threshold(reference: float | Iterable[float], fraction: float = 0.5,
                       baseline: float = 0.0) -> float:
    """baseline + fraction * (peak - baseline), peak being `reference` or the largest value of a
    reference curve.

    A threshold relative to what a reference arm reaches makes formation comparable across
    tasks whose metrics top out at different values; baseline = chance accuracy makes it "half
    way from chance to the reference peak" rather than half of a number chance already gives."""
    peak = float(reference) if np.isscalar(reference) else float(np.nanmax(_clean(reference)))
    return baseline + fraction * (peak - baseline)


def kaplan_meier(times: Iterable[float], formed: Iterable[bool]) -> tuple[np.ndarray, np.ndarray]:
    """(event times, survival just after each): the Kaplan-Meier estimate of P(not formed by t).

    At tied times formations count before censorings (a run censored at t was at risk at t)."""
    t, e = np.asarray(list(times), dtype=float), np.asarray(list(formed), dtype=bool)
    if len(t) != len(e):
        raise ValueError(f"{len(t)} times but {len(e)} formed flags")
    event_times = np.unique(t[e])
    at_risk = np.array([(t >= u).sum() for u in event_times])
    events = np.array([(t[e] == u).sum() for u in event_times])
    return event_times, np.cumprod(1 - events / at_risk)


def censored_summary(times: Iterable[float], formed: Iterable[bool],
                     budget: float | None = None) -> dict[str, float]:
    """Fraction formed, Kaplan-Meier median time to formation, and restricted mean up to the budget.

    km_median is the first time the survival drops to 0.5 or below; nan when fewer than half
    formed (read: "> budget"). restricted_mean is the area under the survival curve from 0 to
    the budget (default: the largest time): the expected min(time to formation, budget), which
    uses censored runs correctly and is finite even when no run forms."""
    t, e = np.asarray(list(times), dtype=float), np.asarray(list(formed), dtype=bool)
    if len(t) == 0:
        return {"n": 0, "fraction_formed": math.nan, "km_median": math.nan,
                "restricted_mean": math.nan,
                "budget": math.nan if budget is None else float(budget)}
    tau = float(t.max()) if budget is None else float(budget)
    event_times, surv = kaplan_meier(t, e)
    below = np.nonzero(surv <= 0.5)[0]
    median = float(event_times[below[0]]) if len(below) else math.nan
    steps = np.concatenate([[0.0], event_times[event_times < tau], [tau]])
    heights = np.concatenate([[1.0], surv[event_times < tau]])
    return {"n": len(t), "fraction_formed": float(e.mean()), "km_median": median,
            "restricted_mean": float(np.sum(np.diff(steps) * heights)), "budget": tau}


def paired_formation_difference(a_times: Mapping[Hashable, float],
                                a_formed: Mapping[Hashable, bool],
                                b_times: Mapping[Hashable, float],
                                b_formed: Mapping[Hashable, bool],
                                budget: float | None = None, **kwargs: Any) -> PairedResult:
    """Paired difference of per-seed min(time to formation, budget), a - b, with its CI.

    A run that never formed counts at the budget (its own last tokens when `budget` is None). Its
    true time is later, so this understates how much slower the censored arm is: a conservative
    choice for a claim that one arm forms earlier. The mean of these values is the restricted
    mean of `censored_summary` when censoring happens only at the budget. kwargs go to
    `paired_difference`."""
    def capped(times: Mapping[Hashable, float], formed: Mapping[Hashable, bool]) -> dict[Hashable,
                                                                                         float]:
        if budget is None:
            return {s: float(t) for s, t in times.items()}
        return {s: min(float(t), budget) if formed[s] else float(budget) for s, t in times.items()}
    return paired_difference(capped(a_times, a_formed), capped(b_times, b_formed), **kwargs)


def learning_curve_auc(tokens: Iterable[float], values: Iterable[float],
                       budget: float | None = None) -> float:
    """Area under the learning curve over tokens, divided by the span: the curve's mean value.

    A graded measure (an arm that learns earlier scores higher even when both end at the same
    value). The span runs from the first evaluation to `budget` (default: the last evaluation);
    past the last evaluation the curve is held at its last value. NaN values are dropped."""
    t, v = np.asarray(list(tokens), dtype=float), np.asarray(list(values), dtype=float)
    keep = ~(np.isnan(t) | np.isnan(v))
    order = np.argsort(t[keep], kind="stable")
    t, v = t[keep][order], v[keep][order]
    if len(t) == 0:
        return math.nan
    end = float(t[-1]) if budget is None else float(budget)
    if len(t) == 1 or end <= t[0]:
        return float(v[0])
    grid = np.concatenate([t[t < end], [end]])
    y = np.interp(grid, t, v)
    return float(np.sum(np.diff(grid) * (y[1:] + y[:-1]) / 2) / (end - t[0]))


def slope_ci(x: Iterable[float], y: Iterable[float], level: float = LEVEL) -> tuple[float, float,
                                                                                    float]:
    """(slope, lo, hi): the least-squares slope of y on x and its Student-t CI (n - 2 degrees of
    freedom). NaN pairs are dropped; no CI below 3 points or with fewer than 2 distinct x."""
    xy = np.array([(a, b) for a, b in zip(x, y) if not (math.isnan(a) or math.isnan(b))],
                  dtype=float)
    if len(xy) < 2 or np.ptp(xy[:, 0]) == 0:
        return math.nan, math.nan, math.nan
    xs, ys = xy[:, 0] - xy[:, 0].mean(), xy[:, 1]
    sxx = float(xs @ xs)
    slope = float(xs @ (ys - ys.mean())) / sxx
    if len(xy) < 3:
        return slope, math.nan, math.nan
    resid = ys - ys.mean() - slope * xs
    se = math.sqrt(float(resid @ resid) / (len(xy) - 2) / sxx)
    half = t_quantile(1 - (1 - level) / 2, len(xy) - 2) * se
    return slope, slope - half, slope + half


@dataclass(frozen=True)
class Crossing:
    """Where a fitted line y = a + b x reaches 0: `x0` = -a / b, and the set of x at which the fit's
    confidence band contains 0, as (`lo`, `hi`): the Fieller interval of x0. `lo` may be -inf and `hi`
    +inf; `inside` False means the set is the complement (-inf, lo] u [hi, inf), which happens when the
    slope is not distinguishable from 0: then no size is excluded. `band_everywhere` marks a band that
    contains 0 at every x."""

    x0: float
    lo: float
    hi: float
    inside: bool = True
    band_everywhere: bool = False


def zero_crossing(x: Iterable[float], y: Iterable[float], level: float = LEVEL) -> Crossing:
    """The x at which the least-squares line of y on x reaches 0, with its Fieller interval: the x
    where |a + b (x - mean x)| <= t s sqrt(1/n + (x - mean x)^2 / Sxx) (the pointwise band of
    `slope_ci`'s fit). NaN pairs are dropped; NaNs when fewer than 3 points or 2 distinct x."""
    xy = np.array([(p, q) for p, q in zip(x, y) if not (math.isnan(p) or math.isnan(q))],
                  dtype=float)
    nan = Crossing(math.nan, math.nan, math.nan)
    if len(xy) < 3 or np.ptp(xy[:, 0]) == 0:
        return nan
    mx, n = float(xy[:, 0].mean()), len(xy)
    xs, ys = xy[:, 0] - mx, xy[:, 1]
    sxx = float(xs @ xs)
    b = float(xs @ (ys - ys.mean())) / sxx
    a = float(ys.mean())  # the fit at x = mean x
    resid = ys - a - b * xs
    s2 = float(resid @ resid) / (n - 2)
    t2 = t_quantile(1 - (1 - level) / 2, n - 2) ** 2
    x0 = mx - a / b if b != 0 else math.nan
    # (a + b u)^2 <= t2 s2 (1/n + u^2/Sxx) with u = x - mean x: q2 u^2 + q1 u + q0 <= 0
    q2, q1, q0 = b * b - t2 * s2 / sxx, 2 * a * b, a * a - t2 * s2 / n
    disc = q1 * q1 - 4 * q2 * q0
    if q2 > 0:  # the slope is significant: a bounded interval (the band reaches 0 somewhere)
        root = math.sqrt(max(disc, 0.0))
        return Crossing(x0, mx + (-q1 - root) / (2 * q2), mx + (-q1 + root) / (2 * q2))
    if disc < 0 or q2 == 0:  # the band holds 0 everywhere (or the quadratic degenerates)
        return Crossing(x0, -math.inf, math.inf, band_everywhere=disc < 0 or q0 <= 0)
    root = math.sqrt(disc)
    u1, u2 = sorted(((-q1 - root) / (2 * q2), (-q1 + root) / (2 * q2)))
    return Crossing(x0, mx + u1, mx + u2, inside=False)


def _num(x: float, sign: bool = False) -> str:
    return "nan" if math.isnan(x) else f"{x:+.3g}" if sign else f"{x:.3g}"


def _seeds(n: int) -> str:
    return f"{n} seed" + ("" if n == 1 else "s")


def verdict(effect: PairedResult, expected_sign: int) -> str:
    """The claim rule of the module docstring for a paired difference expected to have
    `expected_sign`."""
    if expected_sign not in (1, -1):
        raise ValueError(f"expected_sign must be 1 or -1, got {expected_sign}")
    if effect.n == 0:
        return "not run"
    if math.isnan(effect.lo) or math.isnan(effect.hi):
        return f"no detectable effect (no CI at {_seeds(effect.n)})"
    if effect.lo > 0 or effect.hi < 0:
        return "reproduced" if (effect.lo > 0) == (expected_sign > 0) else "reversed"
    # e.g. both arms censored at the same budget, or the same answers
    if effect.lo == effect.hi == 0:
        return f"no difference (equal in every seed, {_seeds(effect.n)})"
    if math.isnan(effect.mde):  # a slope: no MDE formula; the CI says it all
        return f"no detectable effect (CI contains 0, {_seeds(effect.n)})"
    return f"no detectable effect (MDE {_num(effect.mde)} at {_seeds(effect.n)})"


def verdict_close(estimate: float, lo: float, hi: float, target: float, tolerance: float) -> str:
    """The claim rule of the module docstring for "value is close to target", within +-
    tolerance."""
    if math.isnan(estimate):
        return "not run"
    if math.isnan(lo) or math.isnan(hi):
        return "inconclusive"
    if target - tolerance <= lo and hi <= target + tolerance:
        return "reproduced"
    if hi < target - tolerance or lo > target + tolerance:
        return "not reproduced"
    return "inconclusive"


def format_effect(result: PairedResult) -> str:
    """e.g. "+0.12 [0.05, 0.19] (3 seeds)"."""
    if result.n == 0:
        return "not run"
    ci = "no CI" if math.isnan(result.lo) else f"{_num(result.lo)}, {_num(result.hi)}"
    return f"{_num(result.mean, sign=True)} [{ci}] ({_seeds(result.n)})"
