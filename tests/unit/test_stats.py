"""results.stats against closed forms and published numbers, and simulated A/A experiments."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from results import stats
from results.stats import Moments

Z975 = 1.959963984540054  # the 97.5% normal quantile


def moments(y: np.ndarray, x: np.ndarray | None = None) -> Moments:
    """Per-arm sums, as the query layer returns them (integers stay exact)."""
    x = np.zeros_like(y) if x is None else x
    return Moments(
        n=len(y),
        sum_y=y.sum().item(),
        sum_y2=(y * y).sum().item(),
        sum_x=x.sum().item(),
        sum_x2=(x * x).sum().item(),
        sum_xy=(x * y).sum().item(),
    )


def test_two_proportion_z_test_matches_the_closed_form() -> None:
    # 100 of 1,000 control visitors convert, 130 of 1,000 treatment visitors.
    result = stats.compare_rates(100, 1000, 130, 1000)
    pooled = 230 / 2000
    z = 0.03 / math.sqrt(pooled * (1 - pooled) * (2 / 1000))  # 2.1027
    half = Z975 * math.sqrt(0.1 * 0.9 / 1000 + 0.13 * 0.87 / 1000)
    assert result.statistic == pytest.approx(z, rel=1e-12)
    assert result.statistic == pytest.approx(2.1027, abs=1e-4)
    assert result.p_value == pytest.approx(math.erfc(z / math.sqrt(2)), rel=1e-9)  # 0.0355
    assert result.p_value == pytest.approx(0.0355, abs=1e-4)
    assert (result.difference_ci.low, result.difference_ci.high) == pytest.approx(
        (0.03 - half, 0.03 + half), rel=1e-9
    )
    assert result.relative == pytest.approx(0.3)
    # The pooled z-test is Pearson's chi-square on the 2x2 table: z^2 = chi2, same p-value.
    chi2 = sps.chi2_contingency([[100, 900], [130, 870]], correction=False)
    assert z * z == pytest.approx(chi2.statistic, rel=1e-9)
    assert result.p_value == pytest.approx(chi2.pvalue, rel=1e-9)


def test_welch_from_sums_matches_the_published_example() -> None:
    # Wikipedia, "Welch's t-test", example 1: t = -2.46, nu = 24.99, p = 0.021 (A1 - A2).
    a1 = np.array([27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0,
                   21.7, 21.4])  # fmt: skip
    a2 = np.array([27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9,
                   20.5, 24.4])  # fmt: skip
    t, p, df = stats.welch(moments(a2), moments(a1))  # treatment A1, control A2
    assert (round(t, 2), round(df, 2), round(p, 3)) == (-2.46, 24.99, 0.021)
    raw = sps.ttest_ind(a1, a2, equal_var=False)
    assert (t, p, df) == pytest.approx((raw.statistic, raw.pvalue, raw.df), rel=1e-9)
    result = stats.compare_means(moments(a2), moments(a1))
    ci = raw.confidence_interval(0.95)
    assert (result.difference_ci.low, result.difference_ci.high) == pytest.approx(
        (ci.low, ci.high), rel=1e-9
    )


def test_integer_sums_give_the_exact_variance() -> None:
    # Revenue in cents: huge sums of squares must not lose the variance to cancellation.
    big = 10**12
    m = Moments(n=3, sum_y=3 * big + 3, sum_y2=(big) ** 2 + (big + 1) ** 2 + (big + 2) ** 2)
    assert m.variance == 1.0


def test_sample_ratio_mismatch_matches_the_book_example() -> None:
    # Kohavi, Tang, Xu, "Trustworthy Online Controlled Experiments" (2020), ch. 21: 821,588
    # versus 815,482 users on a planned 50/50 split has p ~ 1.8e-6.
    srm = stats.sample_ratio([821_588, 815_482], [1, 1])
    assert srm.expected == (818_535.0, 818_535.0)
    assert srm.statistic == pytest.approx(2 * 3053**2 / 818_535)
    assert srm.p_value == pytest.approx(1.8e-6, rel=0.02)
    assert srm.mismatch
    fine = stats.sample_ratio([5_030, 4_970, 10_000], [1, 1, 2])
    assert not fine.mismatch and fine.p_value > 0.5


def test_fieller_interval_solves_its_quadratic_and_is_unbounded_near_zero() -> None:
    c, var_c, t, var_t = 0.10, 0.0001, 0.13, 0.00012
    ci = stats.fieller(c, var_c, t, var_t, Z975)
    for r in (ci.low, ci.high):  # (t - r c)^2 = z^2 (var_t + r^2 var_c) at both limits
        assert (t - r * c) ** 2 == pytest.approx(Z975**2 * (var_t + r * r * var_c), rel=1e-9)
    assert ci.low < t / c < ci.high
    # Large samples: close to the delta method's symmetric interval around the ratio.
    delta = Z975 * (t / c) * math.sqrt(var_t / t**2 + var_c / c**2)
    big = stats.fieller(c, var_c / 100, t, var_t / 100, Z975)
    assert (big.low, big.high) == pytest.approx((t / c - delta / 10, t / c + delta / 10), rel=2e-3)
    # A control mean not significantly different from zero: the ratio is unbounded.
    assert stats.fieller(0.01, 0.0001, 0.13, 0.0001, Z975).high == math.inf


def test_mixture_sprt_matches_its_closed_form() -> None:
    d, v, tau2 = 0.02, 0.0001, 0.0004
    expected = math.sqrt(v / (v + tau2)) * math.exp(tau2 * d * d / (2 * v * (v + tau2)))
    assert stats.mixture_likelihood_ratio(d, v, tau2) == pytest.approx(expected)
    assert stats.always_valid_p(d, v, tau2) == pytest.approx(1 / expected)
    ci = stats.always_valid_interval(d, v, tau2, alpha=0.05)
    for theta in (ci.low, ci.high):  # the interval is where Lambda(theta) < 1 / alpha
        assert stats.always_valid_p(d - theta, v, tau2) == pytest.approx(0.05)
    assert ci.high - ci.low > 2 * Z975 * math.sqrt(v)  # wider than the fixed-horizon interval


def test_cuped_from_sums_equals_the_regression_adjustment_on_raw_data() -> None:
    rng = np.random.default_rng(7)
    n = 4000
    x = rng.poisson(2.0, size=2 * n).astype(np.int64)  # pre-exposure conversions
    y = (rng.random(2 * n) < 0.05 + 0.04 * np.minimum(x, 5)).astype(np.int64)
    y[n:] |= (rng.random(n) < 0.02).astype(np.int64)  # a true lift in the treatment
    control, treatment = moments(y[:n], x[:n]), moments(y[n:], x[n:])
    result = stats.cuped(control, treatment)
    assert result is not None
    theta = np.cov(x, y, ddof=1)[0, 1] / np.var(x, ddof=1)
    adjusted = y - theta * x
    raw = sps.ttest_ind(adjusted[n:], adjusted[:n], equal_var=False)
    assert result.theta == pytest.approx(theta, rel=1e-9)
    assert result.p_value == pytest.approx(raw.pvalue, rel=1e-6)
    assert result.difference == pytest.approx(adjusted[n:].mean() - adjusted[:n].mean())
    assert result.variance_reduction == pytest.approx(np.corrcoef(x, y)[0, 1] ** 2, rel=1e-9)
    plain = stats.compare_means(control, treatment)
    width = result.difference_ci.high - result.difference_ci.low
    assert width < plain.difference_ci.high - plain.difference_ci.low
    assert stats.cuped(moments(y[:n]), moments(y[n:])) is None  # no covariate variance


def test_degenerate_arms_give_nan_not_errors() -> None:
    nothing = stats.compare_rates(0, 1000, 0, 1000)
    assert math.isnan(nothing.p_value) and nothing.difference == 0
    empty = stats.compare_rates(0, 0, 3, 10)
    assert math.isnan(empty.control) and math.isnan(empty.p_value)
    assert math.isnan(stats.compare_means(Moments(n=1, sum_y=5, sum_y2=25), Moments(
        n=1, sum_y=7, sum_y2=49)).p_value)  # fmt: skip
    assert math.isnan(stats.sample_ratio([0, 0], [1, 1]).p_value)


EXPERIMENTS = 2000
ALPHA = 0.05


def binomial_band(rate: float, trials: int, sigmas: float = 4.0) -> float:
    return sigmas * math.sqrt(rate * (1 - rate) / trials)


def test_aa_fixed_horizon_false_positive_rate_is_alpha() -> None:
    rng = np.random.default_rng(20261101)
    n = 2000
    conv = rng.binomial(n, 0.08, size=(EXPERIMENTS, 2))
    rejected = sum(
        stats.compare_rates(int(c), n, int(t), n).p_value < ALPHA for c, t in conv.tolist()
    )
    assert abs(rejected / EXPERIMENTS - ALPHA) < binomial_band(ALPHA, EXPERIMENTS)


def test_aa_welch_on_revenue_false_positive_rate_is_alpha() -> None:
    rng = np.random.default_rng(11)
    n = 1000
    rejected = 0
    for _ in range(EXPERIMENTS):
        revenue = np.where(rng.random((2, n)) < 0.1, rng.lognormal(8, 1, (2, n)), 0).round()
        rejected += stats.compare_means(moments(revenue[0]), moments(revenue[1])).p_value < ALPHA
    assert abs(rejected / EXPERIMENTS - ALPHA) < binomial_band(ALPHA, EXPERIMENTS)


def test_aa_continuous_peeking_inflates_the_fixed_test_but_not_the_always_valid_one() -> None:
    rng = np.random.default_rng(5)
    looks = np.arange(100, 3001, 100)  # visitors per arm at each look: 30 looks
    draws = rng.random((EXPERIMENTS, 2, int(looks[-1]))) < 0.1
    cumulative = draws.cumsum(axis=2)[:, :, looks - 1]  # converters at each look
    naive = always_valid = 0
    for experiment in cumulative.tolist():
        results = [
            stats.compare_rates(c, n, t, n)
            for n, c, t in zip(looks.tolist(), experiment[0], experiment[1], strict=True)
        ]
        naive += any(r.p_value < ALPHA for r in results)
        always_valid += min(r.always_valid_p for r in results) < ALPHA
    assert naive / EXPERIMENTS > 2 * ALPHA  # peeking at a fixed-horizon test: ~20% false alarms
    assert always_valid / EXPERIMENTS <= ALPHA
