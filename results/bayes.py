"""Bayesian analysis of one variation versus the control, pure (no I/O), from per-arm moments.

The model is GrowthBook's "effect" model (gbstats' `EffectBayesianABTest`): the estimated effect
d (absolute: mean_t - mean_c; relative: (mean_t - mean_c) / mean_c) is normal with the
frequentist variance V of the estimate (relative: the delta method), and the true effect has a
Gaussian prior N(m0, s0^2). The posterior is normal with precision 1/V + 1/s0^2 and mean
(d/V + m0/s0^2) / precision; without a proper prior (the default, s0 = inf) it is N(d, V).

* chance to beat control: P(effect > 0)
* risk (expected loss): of shipping the treatment E[max(-effect, 0)]; of keeping the control
  E[max(effect, 0)], in the effect's unit (absolute or relative)
* credible interval: the central 1 - alpha of the posterior

The prior is stated on the relative effect (a lift of 0 +- `sd`); for the absolute effect it is
scaled by |control mean|, as gbstats does. Too little data gives NaN, never an exception.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats as sps

from results.stats import ALPHA, NAN, Interval, Moments


@dataclass(frozen=True, slots=True, kw_only=True)
class Prior:
    """Gaussian prior on the relative effect; sd = inf (the default) is the flat prior."""

    mean: float = 0.0
    sd: float = math.inf

    @property
    def proper(self) -> bool:
        return math.isfinite(self.sd) and self.sd > 0


FLAT = Prior()


@dataclass(frozen=True, slots=True, kw_only=True)
class Posterior:
    """The posterior of one effect (absolute or relative)."""

    mean: float
    sd: float
    chance_to_beat: float
    risk_treatment: float  # expected loss of shipping the treatment
    risk_control: float  # expected loss of keeping the control
    credible_interval: Interval


@dataclass(frozen=True, slots=True, kw_only=True)
class Bayesian:
    absolute: Posterior
    relative: Posterior
    prior: Prior


_NOTHING = Posterior(
    mean=NAN, sd=NAN, chance_to_beat=NAN, risk_treatment=NAN, risk_control=NAN,
    credible_interval=Interval(low=NAN, high=NAN),
)  # fmt: skip


def positive_part_mean(mu: float, sd: float) -> float:
    """E[max(X, 0)] for X ~ N(mu, sd^2)."""
    z = mu / sd
    return mu * float(sps.norm.cdf(z)) + sd * float(sps.norm.pdf(z))


def posterior(d: float, v: float, prior_mean: float, prior_var: float, alpha: float) -> Posterior:
    """Normal posterior of an effect estimated as d with variance v; prior_var inf: flat."""
    if not (v > 0 and math.isfinite(d + v)):
        return _NOTHING
    precision = 1 / v + (1 / prior_var if math.isfinite(prior_var) else 0.0)
    mean = (d / v + (prior_mean / prior_var if math.isfinite(prior_var) else 0.0)) / precision
    sd = math.sqrt(1 / precision)
    q = float(sps.norm.ppf(1 - alpha / 2))
    return Posterior(
        mean=mean,
        sd=sd,
        chance_to_beat=float(sps.norm.sf(0, loc=mean, scale=sd)),
        risk_treatment=positive_part_mean(-mean, sd),
        risk_control=positive_part_mean(mean, sd),
        credible_interval=Interval(low=mean - q * sd, high=mean + q * sd),
    )


def compare(
    mean_c: float, var_c: float, n_c: int, mean_t: float, var_t: float, n_t: int,
    *, prior: Prior = FLAT, alpha: float = ALPHA,
) -> Bayesian:  # fmt: skip
    """Posteriors from the arms' means and per-visitor variances (gbstats' conventions)."""
    if not (n_c > 0 and n_t > 0):
        return Bayesian(absolute=_NOTHING, relative=_NOTHING, prior=prior)
    v_abs = var_c / n_c + var_t / n_t
    prior_var = prior.sd**2 if prior.proper else math.inf
    scale = abs(mean_c)
    absolute = posterior(
        mean_t - mean_c, v_abs, prior.mean * scale, prior_var * scale * scale, alpha
    )
    if mean_c == 0 or not math.isfinite(mean_c):
        return Bayesian(absolute=absolute, relative=_NOTHING, prior=prior)
    v_rel = var_t / (mean_c**2 * n_t) + var_c * mean_t**2 / (mean_c**4 * n_c)
    relative = posterior((mean_t - mean_c) / mean_c, v_rel, prior.mean, prior_var, alpha)
    return Bayesian(absolute=absolute, relative=relative, prior=prior)


def compare_rates(
    x_c: int, n_c: int, x_t: int, n_t: int, *, prior: Prior = FLAT, alpha: float = ALPHA
) -> Bayesian:
    """Conversion rates: each arm's variance p (1 - p)."""
    p_c = x_c / n_c if n_c > 0 else NAN
    p_t = x_t / n_t if n_t > 0 else NAN
    return compare(p_c, p_c * (1 - p_c), n_c, p_t, p_t * (1 - p_t), n_t, prior=prior, alpha=alpha)


def compare_means(
    control: Moments, treatment: Moments, *, prior: Prior = FLAT, alpha: float = ALPHA
) -> Bayesian:
    """Means of a per-visitor metric: each arm's sample variance (n - 1)."""
    return compare(
        control.mean, control.variance, control.n, treatment.mean, treatment.variance,
        treatment.n, prior=prior, alpha=alpha,
    )  # fmt: skip
