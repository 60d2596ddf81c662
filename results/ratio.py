"""Ratio metrics by the delta method, pure: revenue per order, with the visitor as the unit.

Per visitor, a numerator M (revenue in cents) and a denominator D (orders, i.e. conversions).
The metric of an arm is sum M / sum D, not a mean over visitors, so visitors are not independent
draws of it; the delta method gives its variance from the per-visitor moments and covariance
(Deng, Knoblich, Lu 2018, "Applying the Delta Method in Metric Analytics"):

    Var(R) n = var_M / mu_D^2 - 2 cov_MD mu_M / mu_D^3 + mu_M^2 var_D / mu_D^4

as GrowthBook's gbstats `RatioStatistic` does. The comparison is Welch's test on that variance
(Welch-Satterthwaite degrees of freedom), the Bayesian posterior the one of results.bayes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats as sps

from results import bayes
from results.stats import ALPHA, NAN, Interval, InvalidAggregates, Moments, _covariance


@dataclass(frozen=True, slots=True, kw_only=True)
class RatioMoments:
    """Sums over the visitors of one arm: M the numerator, D the denominator."""

    n: int
    sum_m: float
    sum_m2: float
    sum_d: float
    sum_d2: float
    sum_md: float

    @property
    def mean(self) -> float:
        return self.sum_m / self.sum_d if self.sum_d else NAN

    @property
    def variance(self) -> float:
        """n x the delta-method variance of sum M / sum D (the per-visitor variance)."""
        if self.n < 2 or not self.sum_d:
            return NAN
        mu_m, mu_d = self.sum_m / self.n, self.sum_d / self.n
        var_m = _covariance(self.n, self.sum_m, self.sum_m, self.sum_m2)
        var_d = _covariance(self.n, self.sum_d, self.sum_d, self.sum_d2)
        cov = _covariance(self.n, self.sum_m, self.sum_d, self.sum_md)
        value = var_m / mu_d**2 - 2 * cov * mu_m / mu_d**3 + mu_m**2 * var_d / mu_d**4
        return max(value, 0.0)

    def check(self) -> None:
        Moments(n=self.n, sum_y=self.sum_m, sum_y2=self.sum_m2).check()
        Moments(n=self.n, sum_y=self.sum_d, sum_y2=self.sum_d2).check()
        if self.sum_md**2 > self.sum_m2 * self.sum_d2 * (1 + 1e-9) + 1e-9:
            raise InvalidAggregates("cross sum above what Cauchy-Schwarz allows")


@dataclass(frozen=True, slots=True, kw_only=True)
class RatioComparison:
    control: float
    treatment: float
    difference: float
    difference_ci: Interval
    relative: float
    p_value: float
    bayesian: bayes.Bayesian


def compare(
    control: RatioMoments, treatment: RatioMoments, *, alpha: float = ALPHA,
    prior: bayes.Prior = bayes.FLAT,
) -> RatioComparison:  # fmt: skip
    control.check()
    treatment.check()
    r_c, r_t = control.mean, treatment.mean
    v_c = control.variance / control.n if control.n else NAN
    v_t = treatment.variance / treatment.n if treatment.n else NAN
    d = r_t - r_c
    p = half = NAN
    if v_c + v_t > 0:
        df = (v_c + v_t) ** 2 / (v_c**2 / (control.n - 1) + v_t**2 / (treatment.n - 1))
        t = d / math.sqrt(v_c + v_t)
        p = float(2 * sps.t.sf(abs(t), df))
        half = float(sps.t.ppf(1 - alpha / 2, df)) * math.sqrt(v_c + v_t)
    return RatioComparison(
        control=r_c,
        treatment=r_t,
        difference=d,
        difference_ci=Interval(low=d - half, high=d + half),
        relative=r_t / r_c - 1 if r_c else NAN,
        p_value=p,
        bayesian=bayes.compare(
            r_c, control.variance, control.n, r_t, treatment.variance, treatment.n,
            prior=prior, alpha=alpha,
        ),
    )  # fmt: skip
