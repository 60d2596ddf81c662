"""Regression tests for the defects of issue 15, each on the call the issue gives."""

from __future__ import annotations

import math

import pytest
from scipy import stats as sps

from results import report, stats
from results.query import Aggregates, Filters, GoalCounts
from results.ratio import RatioMoments
from results.stats import Moments


def arm(n: int, m: float, sd: float) -> Moments:
    return Moments(n=n, sum_y=n * m, sum_y2=(n - 1) * sd**2 + n * m * m)


def test_always_valid_p_for_means_uses_the_unpooled_variance() -> None:
    control, treatment = arm(1000, 1000, 3000), arm(9000, 1150, 300)
    result = stats.compare_means(control, treatment)
    assert result.p_value == pytest.approx(0.114, abs=1e-3)  # Welch
    v = 3000**2 / 1000 + 300**2 / 9000  # unpooled variance of the difference
    tau2 = (
        stats.MIXTURE_EFFECT**2
        * Moments(
            n=10_000,
            sum_y=control.sum_y + treatment.sum_y,
            sum_y2=control.sum_y2 + treatment.sum_y2,
        ).variance
    )
    assert result.always_valid_p == pytest.approx(stats.always_valid_p(150, v, tau2), rel=1e-12)
    # Never more significant than the fixed-horizon test it accompanies (was 0.0014).
    assert result.always_valid_p > result.p_value
    low, high = result.always_valid_ci.low, result.always_valid_ci.high
    assert low < 0 < high and result.always_valid_p >= 0.05  # p and interval agree


def test_an_empty_arm_gives_nan_figures_not_an_exception() -> None:
    control = Moments(n=100, sum_y=10, sum_y2=10, sum_x=20, sum_x2=40, sum_xy=5)
    empty = Moments(n=0, sum_y=0, sum_y2=0)
    result = stats.cuped(control, empty)
    assert result is not None
    assert math.isnan(result.difference) and math.isnan(result.p_value)
    assert math.isnan(result.difference_ci.low)
    means = stats.compare_means(control, empty)
    assert math.isnan(means.p_value) and math.isnan(means.always_valid_p)


def test_the_report_survives_a_registered_variation_without_visitors() -> None:
    def counts(n: int, c: int) -> GoalCounts:
        rate = Moments(n=n, sum_y=c, sum_y2=c, sum_x=2 * c, sum_x2=4 * c, sum_xy=c)
        revenue = Moments(n=n, sum_y=100 * c, sum_y2=20_000 * c, sum_x=50 * c,
                          sum_x2=5_000 * c, sum_xy=9_000 * c)  # fmt: skip
        per_order = RatioMoments(n=n, sum_m=revenue.sum_y, sum_m2=revenue.sum_y2, sum_d=c,
                                 sum_d2=c, sum_md=revenue.sum_y)  # fmt: skip
        return GoalCounts(
            converters=c, conversions=c, rate=rate, revenue=revenue, per_order=per_order
        )

    agg = Aggregates(
        tenant="1", experiment="2", registered=True, control="a",
        weights={"a": 1.0, "b": 1.0, "c": 1.0}, visitors={"a": 100, "b": 110}, bots=0, multi=0,
        goals={"g": {"a": counts(100, 10), "b": counts(110, 14)}}, sessions={},
    )  # fmt: skip
    doc = report.analyse(agg, Filters())
    row = next(r for r in doc["goals"][0]["variations"] if r["variation"] == "c")
    assert row["visitors"] == 0 and math.isnan(row["rate_vs_control"]["p_value"])
    assert "c" in report.render(doc)
    assert report.to_json(doc)


def test_welch_clamps_a_float_variance_just_below_zero() -> None:
    result = stats.cuped(
        Moments(n=2, sum_y=2, sum_y2=2, sum_x=2, sum_x2=2, sum_xy=2),
        Moments(n=2, sum_y=1, sum_y2=1, sum_x=3, sum_x2=5, sum_xy=2),
    )
    assert result is not None and math.isfinite(result.difference)
    assert Moments(n=2, sum_y=0.1 + 0.2, sum_y2=0.045000000000000005).variance >= 0


def test_sample_ratio_ignores_an_empty_zero_weight_arm() -> None:
    srm = stats.sample_ratio([5000, 0, 3000], [1, 0, 1])
    expected = sps.chisquare([5000, 3000], f_exp=[4000, 4000])
    assert srm.mismatch and srm.p_value == pytest.approx(expected.pvalue, rel=1e-9)
    assert srm.p_value < 1e-100
    assert srm.expected == (4000.0, 0.0, 4000.0)
    stray = stats.sample_ratio([5000, 3, 5000], [1, 0, 1])  # visitors where none were planned
    assert stray.mismatch and stray.p_value == 0
    with pytest.raises(stats.InvalidAggregates, match="every planned weight is 0"):
        stats.sample_ratio([10, 10], [0, 0])


@pytest.mark.parametrize(
    "call",
    [
        lambda: stats.compare_rates(5, 3, 1, 10),
        lambda: stats.compare_rates(-1, 100, 5, 100),
        lambda: stats.compare_means(Moments(n=-1, sum_y=0, sum_y2=0), arm(10, 1, 1)),
        lambda: stats.compare_means(Moments(n=10, sum_y=100, sum_y2=5), arm(10, 1, 1)),
        lambda: stats.sample_ratio([10, -1], [1, 1]),
    ],
    ids=[
        "more-converters-than-visitors",
        "negative-converters",
        "negative-n",
        "sum-of-squares-too-small",
        "negative-count",
    ],
)
def test_impossible_aggregates_raise_one_documented_error(call: object) -> None:
    with pytest.raises(stats.InvalidAggregates):
        call()  # type: ignore[operator]


def test_the_report_names_an_srm_it_cannot_check() -> None:
    agg = Aggregates(
        tenant="1", experiment="2", registered=True, control="a", weights={"a": 0.0, "b": 0.0},
        visitors={"a": 10, "b": 12}, bots=0, multi=0, goals={}, sessions={},
    )  # fmt: skip
    doc = report.analyse(agg, Filters())
    assert "every planned weight is 0" in doc["srm"]["error"]
    assert "not checked: every planned weight is 0" in report.render(doc)


def test_always_valid_means_hold_alpha_over_20_looks_with_unequal_spreads() -> None:
    # The shape under a true null: 1,000 visitors with sd 3,000 against 9,000 with sd
    # 300. With the pooled variance 57.9% of experiments crossed at some look; at most 5% may.
    import numpy as np

    rng = np.random.default_rng(15)
    experiments, looks = 400, 20
    crossed = 0
    for _ in range(experiments):
        a = rng.normal(1000, 3000, 1000)
        b = rng.normal(1000, 300, 9000)
        for k in range(1, looks + 1):
            x, y = a[: 1000 * k // looks], b[: 9000 * k // looks]
            c = Moments(n=len(x), sum_y=float(x.sum()), sum_y2=float((x * x).sum()))
            t = Moments(n=len(y), sum_y=float(y.sum()), sum_y2=float((y * y).sum()))
            if stats.compare_means(c, t).always_valid_p < 0.05:
                crossed += 1
                break
    assert crossed / experiments <= 0.05
