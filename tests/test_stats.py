"""lab.stats on cases whose answer is known: sampling theory, hand-computed Kaplan-Meier, exact curves."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from lab.analysis import stats
from lab.analysis.stats import PairedResult


def test_bootstrap_ci_of_a_large_normal_sample_covers_the_mean_with_the_normal_width() -> None:
    rng = np.random.default_rng(1)
    n, sd = 2000, 3.0
    est, lo, hi = stats.bootstrap_ci(rng.normal(5.0, sd, n), n_boot=4000)
    assert lo < 5.0 < hi and lo < est < hi
    assert hi - lo == pytest.approx(2 * 1.96 * sd / math.sqrt(n), rel=0.10)


def _coverage(n: int, experiments: int, interval) -> float:
    rng = np.random.default_rng(7)
    hits = 0
    for _ in range(experiments):
        lo, hi = interval(rng.normal(0.3, 1.0, n), rng)
        hits += lo <= 0.3 <= hi
    return hits / experiments


def test_bootstrap_ci_covers_about_95_percent_of_small_experiments() -> None:
    boot = lambda x, rng: stats.bootstrap_ci(x, n_boot=1000, rng=rng)[1:]
    assert 0.88 <= _coverage(30, 200, boot) <= 0.99


def test_at_three_seeds_the_bootstrap_is_too_narrow_and_the_t_interval_is_not() -> None:
    def t_interval(x: np.ndarray, rng: np.random.Generator) -> tuple[float, float]:
        r = stats.paired_difference(dict(enumerate(x)), dict.fromkeys(range(len(x)), 0.0), method="t")
        return r.lo, r.hi

    boot = lambda x, rng: stats.bootstrap_ci(x, n_boot=1000, rng=rng)[1:]
    assert _coverage(3, 300, boot) < 0.85  # about 0.75: the reason paired_difference offers method="t"
    assert 0.9 <= _coverage(3, 300, t_interval) <= 0.99


def test_bootstrap_ci_is_deterministic_drops_nans_and_has_no_ci_for_one_value() -> None:
    x = [0.1, 0.5, np.nan, 0.3, 0.9]
    assert stats.bootstrap_ci(x) == stats.bootstrap_ci(x)
    assert stats.bootstrap_ci(x) == stats.bootstrap_ci([v for v in x if not np.isnan(v)])
    assert stats.bootstrap_ci(x, stat=np.median)[0] == pytest.approx(0.4)
    est, lo, hi = stats.bootstrap_ci([0.7, np.nan])
    assert est == 0.7 and math.isnan(lo) and math.isnan(hi)
    assert all(math.isnan(v) for v in stats.bootstrap_ci([]))


def test_bootstrap_ci_accepts_a_stat_without_an_axis_argument() -> None:
    x = np.arange(10.0)
    by_row = stats.bootstrap_ci(x, stat=lambda v: float(np.mean(v)), n_boot=500)
    vectorised = stats.bootstrap_ci(x, stat=np.mean, n_boot=500)
    assert by_row == pytest.approx(vectorised)


@pytest.mark.parametrize("p,df,table", [(0.975, 1, 12.706), (0.975, 2, 4.303), (0.975, 4, 2.776),
                                        (0.975, 30, 2.042), (0.8, 5, 0.920), (0.8, 1, 1.376), (0.995, 7, 3.499)])
def test_t_quantile_matches_the_printed_t_table(p: float, df: int, table: float) -> None:
    assert stats.t_quantile(p, df) == pytest.approx(table, abs=1e-3)
    assert stats.t_quantile(1 - p, df) == pytest.approx(-table, abs=1e-3)


def test_paired_difference_of_identical_arms_is_zero_with_a_ci_containing_zero() -> None:
    a = {s: v for s, v in enumerate(np.random.default_rng(3).normal(size=5))}
    r = stats.paired_difference(a, dict(a))
    assert r.mean == 0 and r.lo <= 0 <= r.hi and r.n == 5 and r.dropped == 0


def test_paired_difference_of_a_constant_shift_is_the_shift_with_a_zero_width_ci() -> None:
    rng = np.random.default_rng(4)
    b = {s: float(v) for s, v in enumerate(rng.normal(size=4))}
    a = {s: v + 0.25 for s, v in b.items()}
    r = stats.paired_difference(a, b)
    assert r.mean == pytest.approx(0.25, abs=1e-12) and r.lo == r.hi == pytest.approx(0.25, abs=1e-12)
    assert r.diffs == pytest.approx(dict.fromkeys(b, 0.25))
    assert r.mde == pytest.approx(0.0, abs=1e-12)


def test_paired_difference_pairs_by_seed_and_counts_unpaired_seeds() -> None:
    a = {0: 1.0, 1: 2.0, 2: 4.0, 7: 100.0}
    b = {0: 0.0, 1: 1.0, 2: 1.0, 9: -100.0, 3: math.nan}
    r = stats.paired_difference(a, b)
    assert r.n == 3 and r.dropped == 3 and sorted(r.diffs) == [0, 1, 2]
    assert r.mean == pytest.approx((1 + 1 + 3) / 3)


def test_mde_follows_the_t_formula_and_shrinks_as_one_over_sqrt_n() -> None:
    rng = np.random.default_rng(5)
    diffs = rng.normal(0, 1, 400)
    for n in (3, 10):
        r = stats.paired_difference(dict(enumerate(diffs[:n])), dict.fromkeys(range(n), 0.0))
        factor = stats.t_quantile(0.975, n - 1) + stats.t_quantile(0.8, n - 1)
        assert r.mde == pytest.approx(factor * np.std(diffs[:n], ddof=1) / math.sqrt(n))
    assert stats.mde(1.0, 400) == pytest.approx(stats.mde(1.0, 100) / 2, rel=0.01)
    assert stats.mde(1.0, 2) > stats.mde(1.0, 3) > stats.mde(1.0, 10)
    assert math.isnan(stats.mde(1.0, 1))


ROWS = [{"step": 0, "tokens": 0, "eval/acc": 0.1}, {"step": 5, "tokens": 500},  # a row without the metric
        {"step": 10, "tokens": 1000, "eval/acc": 0.2}, {"step": 20, "tokens": 2000, "eval/acc": 0.8},
        {"step": 30, "tokens": 3000, "eval/acc": 0.9}]


def test_formation_tokens_is_the_first_evaluation_reaching_the_threshold() -> None:
    assert stats.formation_tokens(ROWS, "eval/acc", 0.5) == (2000.0, True)
    assert stats.formation_tokens(pd.DataFrame(ROWS[::-1]), "eval/acc", 0.8) == (2000.0, True)
    loss = [{"tokens": t, "val/loss": v} for t, v in [(0, 3.0), (10, 2.0), (20, 0.5)]]
    assert stats.formation_tokens(loss, "val/loss", 1.0, higher_is_better=False) == (20.0, True)


def test_a_run_that_never_forms_is_censored_at_its_budget() -> None:
    assert stats.formation_tokens(ROWS, "eval/acc", 0.95) == (3000.0, False)
    with pytest.raises(ValueError):
        stats.formation_tokens([{"tokens": 0}], "eval/acc", 0.5)


def test_relative_threshold_is_a_fraction_of_the_way_to_the_reference_peak() -> None:
    assert stats.relative_threshold([0.1, 0.8, 0.6]) == pytest.approx(0.4)
    assert stats.relative_threshold(0.8, fraction=0.5, baseline=0.2) == pytest.approx(0.5)


def test_censored_summary_matches_a_hand_computed_kaplan_meier() -> None:
    # at risk 5 -> formed at 10: S = 4/5; censored at 20; at risk 3 -> formed at 30: S = 4/5 * 2/3 = 8/15;
    # at risk 2 -> formed at 40: S = 8/15 * 1/2 = 4/15; censored at 50.
    s = stats.censored_summary([10, 20, 30, 40, 50], [True, False, True, True, False])
    assert s["fraction_formed"] == pytest.approx(0.6)
    assert s["km_median"] == 40  # S first drops to <= 0.5 at 40 (at 30 it is 8/15 > 0.5)
    assert s["restricted_mean"] == pytest.approx(10 * 1 + 20 * 4 / 5 + 10 * 8 / 15 + 10 * 4 / 15)
    assert s["budget"] == 50


def test_censored_summary_when_fewer_than_half_form() -> None:
    s = stats.censored_summary([100, 300, 300, 300], [True, False, False, False], budget=300)
    assert s["fraction_formed"] == 0.25 and math.isnan(s["km_median"])
    assert s["restricted_mean"] == pytest.approx(100 + 200 * 3 / 4)
    none = stats.censored_summary([300, 300], [False, False])
    assert none["fraction_formed"] == 0 and none["restricted_mean"] == 300


def test_paired_formation_difference_counts_censored_runs_at_the_budget() -> None:
    a_t, a_f = {0: 100.0, 1: 200.0, 2: 150.0}, {0: True, 1: True, 2: True}
    b_t, b_f = {0: 300.0, 1: 250.0, 2: 300.0}, {0: False, 1: True, 2: False}
    r = stats.paired_formation_difference(a_t, a_f, b_t, b_f, budget=300)
    assert r.diffs == pytest.approx({0: -200.0, 1: -50.0, 2: -150.0})
    # with censoring only at the budget the per-seed mean is the Kaplan-Meier restricted mean
    km = stats.censored_summary(list(b_t.values()), list(b_f.values()), budget=300)["restricted_mean"]
    assert km == pytest.approx(np.mean([300, 250, 300]))
    later = stats.paired_formation_difference(a_t, a_f, {0: 250.0}, {0: False}, budget=300)
    assert later.diffs == {0: -200.0} and later.dropped == 2


def test_learning_curve_auc_of_a_constant_and_a_ramp() -> None:
    t = np.linspace(0, 1000, 11)
    assert stats.learning_curve_auc(t, np.full(11, 0.3)) == pytest.approx(0.3)
    assert stats.learning_curve_auc(t, t / 1000) == pytest.approx(0.5)
    assert stats.learning_curve_auc(t[::-1], (t / 1000)[::-1]) == pytest.approx(0.5)  # unsorted input
    assert stats.learning_curve_auc(t, t / 1000, budget=2000) == pytest.approx((0.5 * 1000 + 1000) / 2000)
    assert stats.learning_curve_auc(t, t / 1000, budget=500) == pytest.approx(0.25)


def _effect(diffs: list[float]) -> PairedResult:
    return stats.paired_difference(dict(enumerate(diffs)), dict.fromkeys(range(len(diffs)), 0.0))


def test_verdict_gives_each_outcome_of_the_rule() -> None:
    up = _effect([0.10, 0.12, 0.11, 0.13])
    assert up.lo > 0 and stats.verdict(up, +1) == "reproduced" and stats.verdict(up, -1) == "reversed"
    down = _effect([-0.10, -0.12, -0.11])
    assert stats.verdict(down, -1) == "reproduced" and stats.verdict(down, +1) == "reversed"
    noise = _effect([0.2, -0.3, 0.1])
    assert noise.lo < 0 < noise.hi
    assert stats.verdict(noise, +1) == f"no detectable effect (MDE {noise.mde:.3g} at 3 seeds)"
    assert stats.verdict(stats.paired_difference({}, {1: 0.5}), +1) == "not run"
    assert stats.verdict(_effect([0.4]), +1) == "no detectable effect (no CI at 1 seed)"
    with pytest.raises(ValueError):
        stats.verdict(up, 0)


def test_verdict_close_against_a_band() -> None:
    assert stats.verdict_close(0.25, 0.24, 0.26, target=0.25, tolerance=0.02) == "reproduced"
    assert stats.verdict_close(0.40, 0.35, 0.45, target=0.25, tolerance=0.02) == "not reproduced"
    assert stats.verdict_close(0.10, 0.05, 0.15, target=0.25, tolerance=0.02) == "not reproduced"
    assert stats.verdict_close(0.26, 0.24, 0.30, target=0.25, tolerance=0.02) == "inconclusive"
    assert stats.verdict_close(0.25, math.nan, math.nan, target=0.25, tolerance=0.02) == "inconclusive"
    assert stats.verdict_close(math.nan, math.nan, math.nan, target=0.25, tolerance=0.02) == "not run"
    est, lo, hi = stats.bootstrap_ci([0.99, 1.0, 1.0, 0.995])
    assert stats.verdict_close(est, lo, hi, target=1.0, tolerance=0.02) == "reproduced"


def test_format_effect() -> None:
    assert stats.format_effect(PairedResult(0.12, 0.05, 0.19, 3)) == "+0.12 [0.05, 0.19] (3 seeds)"
    assert stats.format_effect(_effect([-0.5])) == "-0.5 [no CI] (1 seed)"
    assert stats.format_effect(stats.paired_difference({}, {})) == "not run"


def test_slope_ci_of_an_exact_line_and_of_noise() -> None:
    slope, lo, hi = stats.slope_ci([0, 1, 2, 3], [1, 3, 5, 7])
    assert (slope, lo, hi) == pytest.approx((2.0, 2.0, 2.0))
    rng = np.random.default_rng(0)
    covered = 0
    for _ in range(400):  # a true slope of 0.5 with noise: the 95% t interval covers it about 95% of the time
        x = np.arange(6.0)
        _, lo, hi = stats.slope_ci(x, 0.5 * x + rng.normal(0, 1, 6))
        covered += lo <= 0.5 <= hi
    assert 0.92 < covered / 400 < 0.98
    assert all(math.isnan(v) for v in stats.slope_ci([1, 1, 1], [0, 1, 2]))  # one distinct x: no slope
    assert math.isnan(stats.slope_ci([0, 1], [0, 1])[1])  # two points: a slope, no CI


def _covers(c: stats.Crossing, x: float) -> bool:
    return c.band_everywhere or (c.lo <= x <= c.hi if c.inside else not c.lo < x < c.hi)


def test_zero_crossing_of_an_exact_line_is_a_point() -> None:
    c = stats.zero_crossing([0, 1, 2, 4], [-6, -4, -2, 2])  # y = 2 (x - 3), no residual: no uncertainty
    assert (c.x0, c.lo, c.hi, c.inside) == pytest.approx((3.0, 3.0, 3.0, True))


def test_zero_crossing_fieller_interval_covers_the_true_root() -> None:
    rng = np.random.default_rng(1)
    x = np.repeat([0.0, 1.0, 2.0, 3.0], 3)
    covered, bounded = 0, 0
    for _ in range(400):  # y = 1 - 0.5 x: the root is 2; the Fieller set covers it about 95% of the time
        c = stats.zero_crossing(x, 1 - 0.5 * x + rng.normal(0, 0.3, len(x)))
        covered += _covers(c, 2.0)
        bounded += c.inside and math.isfinite(c.hi)
    assert 0.92 < covered / 400 < 0.98
    assert bounded > 350  # a slope of -0.5 against noise 0.3 is nearly always significant: a bounded interval


def test_zero_crossing_without_a_slope_excludes_no_size() -> None:
    c = stats.zero_crossing([0, 0, 1, 1, 2, 2], [0.1, -0.1, 0.05, -0.05, 0.1, -0.1])  # flat, centred on 0
    assert c.band_everywhere and _covers(c, 1e6)
    c = stats.zero_crossing([0, 0, 1, 1, 2, 2], [1.1, 0.9, 1.2, 0.8, 1.3, 0.9])  # flat at 1: 0 only far out
    assert not c.inside and _covers(c, 1e6) and not _covers(c, 1.0)
    assert math.isnan(stats.zero_crossing([1, 1, 1], [0, 1, 2]).x0)
