"""Experiment statistics, pure (no I/O): one variation versus the control, from aggregates.

Every test works from per-arm sums (n, sum, sum of squares, and cross sums for CUPED), which is
what ClickHouse returns; nothing here needs a row per visitor. scipy does the distributions and
the tests it has; the formulas below are the ones scipy does not ship.

* Rates: two-proportion z-test with the pooled standard error (p-value, identical to Pearson's
  chi-square on the 2x2 table), Wald interval with the unpooled one for the difference.
* Means (revenue per visitor): Welch's t-test (`scipy.stats.ttest_ind_from_stats`), interval with
  the Welch-Satterthwaite degrees of freedom.
* Relative lift: Fieller's interval for the ratio of two independent means (exact when both are
  normal; it is asymmetric and unbounded when the control mean is not significantly non-zero,
  where the delta method would give a misleadingly finite interval).
* Always valid (any number of looks, any stopping rule): the normal-mixture sequential
  probability ratio test (Robbins 1970; Johari, Koomen, Pekelis, Walsh 2017; Howard et al. 2021).
  With the difference estimate d, its variance V and a N(0, tau^2) mixture over the effect,

      Lambda = sqrt(V / (V + tau^2)) * exp(tau^2 d^2 / (2 V (V + tau^2)))

  is a martingale under H0, so p = min(1, 1 / Lambda) is valid at any stopping time (Ville's
  inequality), and inverting it gives the interval d +- sqrt(V (V + tau^2) / tau^2 *
  (ln((V + tau^2) / V) - 2 ln alpha)). tau = MIXTURE_EFFECT x the pooled standard deviation of the
  metric: a standardized effect of 0.05, which makes the boundary tightest near 6,400 visitors
  per arm (tau^2 ~ 8 V there). V is the variance the fixed-horizon test uses: for rates the
  pooled (null) variance for the p-value and the unpooled one for the interval, as the z-test
  does; for means the unpooled (Welch) variance for both, since arms may differ in spread (a
  pooled V there under-states the variance of d when the smaller arm is the noisier one).
* CUPED (Deng, Xu, Kohavi, Walker 2013): Y' = Y - theta (X - mean X) with the pre-exposure value
  X of the same metric, theta = cov(X, Y) / var(X) over both arms pooled; then Welch on Y'.
* Sample-ratio mismatch: `scipy.stats.chisquare` of the exposed counts against the planned
  weights; flagged below SRM_THRESHOLD (0.001, the usual practice, Fabijan et al. 2019). Arms
  planned at weight 0 with nobody in them are left out; anybody in such an arm is a mismatch.

Too little data (an empty arm, one visitor, no variance) gives NaN for the figures it affects,
never an exception. Aggregates that cannot come from real visitors (more converters than visitors,
negative counts, a sum of squares below what the sum forces, weights that are negative or all
zero) raise `InvalidAggregates`, the one error this module raises on its inputs.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats as sps

ALPHA = 0.05
MIXTURE_EFFECT = 0.05
SRM_THRESHOLD = 0.001
NAN = math.nan
_SLACK = 1e-9  # relative float slack when checking that sums are consistent


class InvalidAggregates(ValueError):
    """Aggregates no set of visitors can produce (a bug upstream, never too little data)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Interval:
    low: float
    high: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Moments:
    """Sums over the visitors of one arm: Y the metric, X its pre-exposure value (CUPED)."""

    n: int
    sum_y: float
    sum_y2: float
    sum_x: float = 0
    sum_x2: float = 0
    sum_xy: float = 0

    @property
    def mean(self) -> float:
        return self.sum_y / self.n if self.n else NAN

    @property
    def variance(self) -> float:
        """Sample variance of Y (n - 1 in the denominator), never below 0 (float cancellation)."""
        return max(_covariance(self.n, self.sum_y, self.sum_y, self.sum_y2), 0.0)

    def check(self) -> None:
        """Raise InvalidAggregates unless some visitors could have these sums."""
        if self.n < 0:
            raise InvalidAggregates(f"negative visitor count n={self.n}")
        for name, sum_, sum2 in (("y", self.sum_y, self.sum_y2), ("x", self.sum_x, self.sum_x2)):
            if sum2 < 0 or (self.n == 0 and (sum_ or sum2)):
                raise InvalidAggregates(f"impossible sums of {name} for n={self.n}")
            if self.n and sum_ * sum_ > self.n * sum2 * (1 + _SLACK) + _SLACK:
                raise InvalidAggregates(f"sum of {name}^2 below sum^2 / n (n={self.n})")


@dataclass(frozen=True, slots=True, kw_only=True)
class Comparison:
    """A treatment arm versus the control on one metric (rate or mean)."""

    control: float
    treatment: float
    difference: float
    difference_ci: Interval
    relative: float
    relative_ci: Interval
    statistic: float
    p_value: float
    always_valid_p: float
    always_valid_ci: Interval


@dataclass(frozen=True, slots=True, kw_only=True)
class Cuped:
    theta: float
    variance_reduction: float  # 1 - Var(Y') / Var(Y), both arms pooled
    difference: float
    difference_ci: Interval
    p_value: float


@dataclass(frozen=True, slots=True, kw_only=True)
class SampleRatio:
    observed: tuple[int, ...]
    expected: tuple[float, ...]
    statistic: float
    p_value: float
    mismatch: bool


def _covariance(n: int, sum_a: float, sum_b: float, sum_ab: float) -> float:
    if n < 2:
        return NAN
    if all(isinstance(v, int) for v in (sum_a, sum_b, sum_ab)):  # exact for integer sums
        return (n * int(sum_ab) - int(sum_a) * int(sum_b)) / (n * (n - 1))
    return (sum_ab - sum_a * sum_b / n) / (n - 1)


@functools.lru_cache(maxsize=16)
def normal_quantile(alpha: float = ALPHA) -> float:
    return float(sps.norm.ppf(1 - alpha / 2))


def fieller(control: float, var_c: float, treatment: float, var_t: float, q: float) -> Interval:
    """Interval of treatment / control (independent means) at the critical value `q`.

    Solves (t - r c)^2 = q^2 (var_t + r^2 var_c); unbounded when g = q^2 var_c / c^2 >= 1.
    """
    if control == 0 or not math.isfinite(var_c + var_t):
        return Interval(low=NAN, high=NAN)
    g = q * q * var_c / (control * control)
    if g >= 1:
        return Interval(low=-math.inf, high=math.inf)
    ratio = treatment / control
    half = q / abs(control) * math.sqrt(max(var_t * (1 - g) + ratio * ratio * var_c, 0.0))
    return Interval(low=(ratio - half) / (1 - g), high=(ratio + half) / (1 - g))


def _relative(control: float, var_c: float, treatment: float, var_t: float, q: float) -> Interval:
    ratio = fieller(control, var_c, treatment, var_t, q)
    return Interval(low=ratio.low - 1, high=ratio.high - 1)


def mixture_likelihood_ratio(d: float, v: float, tau2: float) -> float:
    if not (v > 0 and tau2 > 0):
        return NAN
    exponent = tau2 * d * d / (2 * v * (v + tau2))
    return math.sqrt(v / (v + tau2)) * math.exp(min(exponent, 700.0))


def always_valid_p(d: float, v: float, tau2: float) -> float:
    """mSPRT p-value of H0: difference = 0 at one look (take the running minimum over looks)."""
    ratio = mixture_likelihood_ratio(d, v, tau2)
    return min(1.0, 1 / ratio) if math.isfinite(ratio) else NAN


def always_valid_interval(d: float, v: float, tau2: float, alpha: float = ALPHA) -> Interval:
    if not (v > 0 and tau2 > 0):
        return Interval(low=NAN, high=NAN)
    half = math.sqrt(v * (v + tau2) / tau2 * (math.log((v + tau2) / v) - 2 * math.log(alpha)))
    return Interval(low=d - half, high=d + half)


def compare_rates(
    x_c: int, n_c: int, x_t: int, n_t: int, *, alpha: float = ALPHA, effect: float = MIXTURE_EFFECT
) -> Comparison:
    """Converters x out of exposed visitors n, control (c) versus treatment (t)."""
    for x, n in ((x_c, n_c), (x_t, n_t)):
        if not 0 <= x <= n:
            raise InvalidAggregates(f"{x} converters out of {n} visitors")
    p_c = x_c / n_c if n_c else NAN
    p_t = x_t / n_t if n_t else NAN
    d = p_t - p_c
    var_c = p_c * (1 - p_c) / n_c if n_c else NAN
    var_t = p_t * (1 - p_t) / n_t if n_t else NAN
    pooled = (x_c + x_t) / (n_c + n_t) if n_c and n_t else NAN
    v0 = pooled * (1 - pooled) * (1 / n_c + 1 / n_t) if n_c and n_t else NAN
    z = d / math.sqrt(v0) if v0 > 0 else NAN
    q = normal_quantile(alpha)
    half = q * math.sqrt(var_c + var_t)
    tau2 = (effect * effect) * pooled * (1 - pooled)
    return Comparison(
        control=p_c,
        treatment=p_t,
        difference=d,
        difference_ci=Interval(low=d - half, high=d + half),
        relative=p_t / p_c - 1 if p_c else NAN,
        relative_ci=_relative(p_c, var_c, p_t, var_t, q),
        statistic=z,
        p_value=float(2 * sps.norm.sf(abs(z))) if math.isfinite(z) else NAN,
        always_valid_p=always_valid_p(d, v0, tau2),
        always_valid_ci=always_valid_interval(d, var_c + var_t, tau2, alpha),
    )


def welch(control: Moments, treatment: Moments) -> tuple[float, float, float]:
    """(t, two-sided p-value, Welch-Satterthwaite degrees of freedom) of treatment - control."""
    v_c = control.variance / control.n if control.n else NAN
    v_t = treatment.variance / treatment.n if treatment.n else NAN
    if not (v_c + v_t > 0 and control.n > 1 and treatment.n > 1):
        return NAN, NAN, NAN
    result = sps.ttest_ind_from_stats(
        treatment.mean, math.sqrt(treatment.variance), treatment.n,
        control.mean, math.sqrt(control.variance), control.n,
        equal_var=False,
    )  # fmt: skip
    df = (v_c + v_t) ** 2 / (v_c**2 / (control.n - 1) + v_t**2 / (treatment.n - 1))
    return float(result.statistic), float(result.pvalue), df


def t_quantile(alpha: float, df: float) -> float:
    return float(sps.t.ppf(1 - alpha / 2, df)) if df > 0 else NAN


def compare_means(
    control: Moments, treatment: Moments, *, alpha: float = ALPHA, effect: float = MIXTURE_EFFECT
) -> Comparison:
    """Means of a per-visitor metric (revenue per visitor), Welch's t-test."""
    control.check()
    treatment.check()
    t, p, df = welch(control, treatment)
    n_c, n_t = control.n, treatment.n
    d = treatment.mean - control.mean
    v_c = control.variance / n_c if n_c else NAN
    v_t = treatment.variance / n_t if n_t else NAN
    q = t_quantile(alpha, df)
    half = q * math.sqrt(v_c + v_t) if v_c + v_t >= 0 else NAN
    both = Moments(
        n=n_c + n_t, sum_y=control.sum_y + treatment.sum_y, sum_y2=control.sum_y2 + treatment.sum_y2
    )
    tau2 = effect * effect * both.variance
    return Comparison(
        control=control.mean,
        treatment=treatment.mean,
        difference=d,
        difference_ci=Interval(low=d - half, high=d + half),
        relative=treatment.mean / control.mean - 1 if control.mean else NAN,
        relative_ci=_relative(control.mean, v_c, treatment.mean, v_t, q),
        statistic=t,
        p_value=p,
        always_valid_p=always_valid_p(d, v_c + v_t, tau2),
        always_valid_ci=always_valid_interval(d, v_c + v_t, tau2, alpha),
    )


def cuped(control: Moments, treatment: Moments, *, alpha: float = ALPHA) -> Cuped | None:
    """CUPED-adjusted difference of means; None without pre-exposure variance to use."""
    control.check()
    treatment.check()
    arms = (control, treatment)
    n = sum(a.n for a in arms)
    sx, sy = sum(a.sum_x for a in arms), sum(a.sum_y for a in arms)
    var_x = _covariance(n, sx, sx, sum(a.sum_x2 for a in arms))
    if not var_x > 0:
        return None
    cov_xy = _covariance(n, sx, sy, sum(a.sum_xy for a in arms))
    var_y = _covariance(n, sy, sy, sum(a.sum_y2 for a in arms))
    theta = cov_xy / var_x
    adjusted = [_adjust(a, theta) for a in arms]
    _, p, df = welch(adjusted[0], adjusted[1])
    d = adjusted[1].mean - adjusted[0].mean
    enough = min(a.n for a in arms) >= 2  # else no variance in an arm: no interval
    spread = math.sqrt(sum(a.variance / a.n for a in adjusted)) if enough else NAN
    half = t_quantile(alpha, df) * spread
    reduction = 1 - (var_y - 2 * theta * cov_xy + theta * theta * var_x) / var_y if var_y else NAN
    return Cuped(
        theta=theta,
        variance_reduction=reduction,
        difference=d,
        difference_ci=Interval(low=d - half, high=d + half),
        p_value=p,
    )


def _adjust(m: Moments, theta: float) -> Moments:
    """Moments of Y' = Y - theta X (the constant theta mean(X) cancels in the difference)."""
    return Moments(
        n=m.n,
        sum_y=m.sum_y - theta * m.sum_x,
        sum_y2=m.sum_y2 - 2 * theta * m.sum_xy + theta * theta * m.sum_x2,
    )


def sample_ratio(
    observed: Sequence[int], weights: Sequence[float], threshold: float = SRM_THRESHOLD
) -> SampleRatio:
    """Chi-square goodness of fit of the exposed counts to the planned (normalised) weights.

    Arms planned at weight 0 and empty are left out of the test; a visitor in an arm planned at
    weight 0 is a mismatch by itself (p = 0).
    """
    if len(observed) != len(weights):
        raise InvalidAggregates(f"{len(observed)} counts for {len(weights)} weights")
    if any(c < 0 for c in observed) or any(not w >= 0 for w in weights):
        raise InvalidAggregates("negative (or NaN) visitor counts or weights")
    share = sum(weights)
    if not share > 0:
        raise InvalidAggregates("every planned weight is 0: nothing to compare the split with")
    total = sum(observed)
    expected = tuple(total * w / share for w in weights)
    kept = [(c, e) for c, e, w in zip(observed, expected, weights, strict=True) if w > 0]
    stray = sum(c for c, w in zip(observed, weights, strict=True) if w == 0)
    if stray:
        return SampleRatio(
            observed=tuple(observed), expected=expected, statistic=math.inf, p_value=0.0,
            mismatch=True,
        )  # fmt: skip
    if total == 0 or len(kept) < 2:
        return SampleRatio(
            observed=tuple(observed), expected=expected, statistic=NAN, p_value=NAN, mismatch=False
        )
    result = sps.chisquare([c for c, _ in kept], f_exp=[e for _, e in kept])
    p = float(result.pvalue)
    return SampleRatio(
        observed=tuple(observed),
        expected=expected,
        statistic=float(result.statistic),
        p_value=p,
        mismatch=p < threshold,
    )
