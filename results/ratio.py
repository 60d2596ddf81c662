"""Ratio metrics by the delta method, pure: revenue per order, with the visitor as the unit.

Per visitor, a numerator M (revenue in cents) and a denominator D (orders, i.e. conversions).
The metric of an arm is sum M / sum D, not a mean over visitors, so visitors are not independent
draws of it; the delta method gives its variance from the per-visitor moments and covariance
(Deng, Knoblich, Lu 2018, "Applying the Delta Method in Metric Analytics"):

    Var(R) n = var_M / mu_D^2 - 2 cov_MD mu_M / mu_D^3 + mu_M^2 var_D / mu_D^4

as GrowthBook's gbstats `RatioStatistic` does. The comparison is Welch's test on that variance
(Welch-Satterthwaite degrees of freedom), the Bayesian posterior the one of results.bayes.

CUPED for a ratio (`cuped`): with the same ratio before exposure, Rp = sum Mp / sum Dp, the
adjusted estimate of each arm is R - theta Rp, its variance Var(R) - 2 theta Cov(R, Rp) +
theta^2 Var(Rp), all three by the delta method on the 4-vector (M, D, Mp, Dp) of per-visitor
means; theta = (Cov_c + Cov_t) / (Var(Rp)_c + Var(Rp)_t) minimises the variance of the
difference (the pre-exposure ratios differ only by chance, so the difference stays unbiased).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats as sps

from results import bayes
from results.stats import ALPHA, NAN, Cuped, Interval, InvalidAggregates, Moments, _covariance


@dataclass(frozen=True, slots=True, kw_only=True)
class RatioMoments:
    """Sums over the visitors of one arm: M the numerator, D the denominator."""

    n: int
    sum_m: float
    sum_m2: float
    sum_d: float
    sum_d2: float
    sum_md: float
    # The same before exposure (Mp, Dp) and the cross sums, for CUPED; 0: no covariate.
    sum_mp: float = 0
    sum_mp2: float = 0
    sum_dp: float = 0
    sum_dp2: float = 0
    sum_mp_dp: float = 0
    sum_m_mp: float = 0
    sum_m_dp: float = 0
    sum_d_mp: float = 0
    sum_d_dp: float = 0

    @property
    def mean(self) -> float:
        return self.sum_m / self.sum_d if self.sum_d else NAN

    def _sums(self) -> tuple[list[float], list[list[float]]]:
        """The sums of (M, D, Mp, Dp) and of their pairwise products."""
        first = [self.sum_m, self.sum_d, self.sum_mp, self.sum_dp]
        second = [
            [self.sum_m2, self.sum_md, self.sum_m_mp, self.sum_m_dp],
            [self.sum_md, self.sum_d2, self.sum_d_mp, self.sum_d_dp],
            [self.sum_m_mp, self.sum_d_mp, self.sum_mp2, self.sum_mp_dp],
            [self.sum_m_dp, self.sum_d_dp, self.sum_mp_dp, self.sum_dp2],
        ]
        return first, second

    def delta(self) -> tuple[float, float, float]:
        """(Var(R), Cov(R, Rp), Var(Rp)) of this arm's ratio estimates, delta method."""
        if self.n < 2 or not (self.sum_d and self.sum_dp):
            return NAN, NAN, NAN
        first, second = self._sums()
        mu = [f / self.n for f in first]
        cov = [[_covariance(self.n, first[i], first[j], second[i][j]) for j in range(4)]
               for i in range(4)]  # fmt: skip
        g = [1 / mu[1], -mu[0] / mu[1] ** 2, 0.0, 0.0]  # gradient of M / D
        h = [0.0, 0.0, 1 / mu[3], -mu[2] / mu[3] ** 2]  # gradient of Mp / Dp

        def form(a: list[float], b: list[float]) -> float:
            return sum(a[i] * cov[i][j] * b[j] for i in range(4) for j in range(4)) / self.n

        return max(form(g, g), 0.0), form(g, h), max(form(h, h), 0.0)

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


def cuped(control: RatioMoments, treatment: RatioMoments, *, alpha: float = ALPHA) -> Cuped | None:
    """CUPED-adjusted difference of two ratios; None without a pre-exposure ratio to use."""
    arms = (control, treatment)
    if not all(a.sum_dp for a in arms):
        return None
    (v_c, c_c, p_c), (v_t, c_t, p_t) = control.delta(), treatment.delta()
    if not (p_c + p_t > 0):
        return None
    theta = (c_c + c_t) / (p_c + p_t)
    rp = [a.sum_mp / a.sum_dp for a in arms]
    d = (treatment.mean - theta * rp[1]) - (control.mean - theta * rp[0])
    adj = [v - 2 * theta * c + theta * theta * p for v, c, p in ((v_c, c_c, p_c), (v_t, c_t, p_t))]
    adj = [max(a, 0.0) for a in adj]
    p_value = half = NAN
    if sum(adj) > 0:
        df = sum(adj) ** 2 / (adj[0] ** 2 / (control.n - 1) + adj[1] ** 2 / (treatment.n - 1))
        p_value = float(2 * sps.t.sf(abs(d) / math.sqrt(sum(adj)), df))
        half = float(sps.t.ppf(1 - alpha / 2, df)) * math.sqrt(sum(adj))
    plain = v_c + v_t
    return Cuped(
        theta=theta,
        variance_reduction=1 - sum(adj) / plain if plain > 0 else NAN,
        difference=d,
        difference_ci=Interval(low=d - half, high=d + half),
        p_value=p_value,
    )


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
