"""The results document's Bayesian, power and multiple-testing parts, from the aggregates.

`report.analyse` builds the frequentist rows; `extend_row` adds a variation's Bayesian
posteriors and power figures, and `correct` adds adjusted p-values across every
variation x goal of the document.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

from results import bayes, corrections, power, ratio, stats
from results.query import Aggregates, GoalCounts
from schemas.settings import Settings


@dataclass(frozen=True, slots=True, kw_only=True)
class Options:
    """How to analyse: the level, the correction, the Bayesian prior and the power target."""

    alpha: float = stats.ALPHA
    correction: str = "holm"
    prior_sd: float = 0.0  # on the relative lift; 0: flat
    target_lift: float = power.TARGET_LIFT
    power: float = power.POWER
    by: str = ""  # slices: device_type, browser or a dimension key ("": none)
    top: int = 5  # slices: the values with the most visitors, the rest as "other"
    live: bool = False  # read the live aggregates, not the latest snapshot

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> Options:
        base = cls(
            correction=settings.results_correction,
            prior_sd=settings.results_prior_sd,
            target_lift=settings.results_target_lift,
        )
        return dataclasses.replace(base, **{k: v for k, v in overrides.items() if v is not None})

    def check(self) -> None:
        """ValueError naming the first option out of range."""
        if not 0 < self.alpha < 1:
            raise ValueError("alpha must be between 0 and 1")
        if self.correction not in corrections.METHODS:
            raise ValueError(f"correction must be one of {', '.join(corrections.METHODS)}")
        if not self.prior_sd >= 0:
            raise ValueError("prior sd must be 0 (flat prior) or more")
        if not self.target_lift > 0:
            raise ValueError("target lift must be more than 0")
        if not 0 < self.power < 1:
            raise ValueError("power must be between 0 and 1")
        if self.top < 1:
            raise ValueError("top must be 1 or more")

    @property
    def prior(self) -> bayes.Prior:
        return bayes.Prior(sd=self.prior_sd) if self.prior_sd > 0 else bayes.FLAT

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def days_of_traffic(agg: Aggregates) -> float:
    """Days from the first to the last day with an exposure, both counted (0: none)."""
    days: set[dt.date] = {d for per in agg.daily_exposed.values() for d in per}
    return float((max(days) - min(days)).days + 1) if days else 0.0


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return value


def extend_row(
    row: dict[str, Any], base: GoalCounts, c: GoalCounts, days: float, options: Options
) -> None:
    """Add the Bayesian posteriors and the power figures of one variation versus the control."""
    prior, alpha = options.prior, options.alpha
    n_c, n_t = base.rate.n, c.rate.n
    row["rate_bayesian"] = _plain(
        bayes.compare_rates(base.converters, n_c, c.converters, n_t, prior=prior, alpha=alpha)
    )
    row["revenue_bayesian"] = _plain(
        bayes.compare_means(base.revenue, c.revenue, prior=prior, alpha=alpha)
    )
    row["per_order_vs_control"] = _plain(
        ratio.compare(base.per_order, c.per_order, alpha=alpha, prior=prior)
    )
    row["per_order_cuped"] = _plain(ratio.cuped(base.per_order, c.per_order, alpha=alpha))
    p_c = base.converters / n_c if n_c else math.nan
    p_t = c.converters / n_t if n_t else math.nan
    kwargs: dict[str, Any] = {"alpha": alpha, "power": options.power, "target": options.target_lift}
    row["rate_power"] = _plain(
        power.analyse(p_c, p_c * (1 - p_c), n_c, p_t * (1 - p_t), n_t, days, **kwargs)
    )
    row["revenue_power"] = _plain(
        power.analyse(base.revenue.mean, base.revenue.variance, n_c, c.revenue.variance, n_t,
                      days, **kwargs)
    )  # fmt: skip


def correct(goals: list[dict[str, Any]], method: str) -> None:
    """Adjusted p-values of the rate, revenue and revenue-per-order tests, one family across
    variations x goals for each metric, written beside the raw ones as `p_adjusted`."""
    for key in ("rate_vs_control", "revenue_vs_control", "per_order_vs_control"):
        cells = [row[key] for goal in goals for row in goal["variations"] if key in row]
        adjusted = corrections.adjust([c["p_value"] for c in cells], method)
        for cell, p in zip(cells, adjusted, strict=True):
            cell["p_adjusted"] = p


GUARDED = {"rate_vs_control": "conversion rate", "revenue_vs_control": "revenue per visitor"}


def flag_guardrails(goals: list[dict[str, Any]], guardrails: dict[str, bool], alpha: float) -> None:
    """Mark guardrail goals, and on each variation the metrics it makes significantly worse
    (two-sided p below alpha, not adjusted: a guardrail errs on the side of raising the alarm)."""
    for goal in goals:
        if goal["goal"] not in guardrails:
            goal["guardrail"] = None
            continue
        up = guardrails[goal["goal"]]
        goal["guardrail"] = {"higher_is_better": up}
        for row in goal["variations"]:
            if "rate_vs_control" not in row:
                continue
            row["guardrail_degraded"] = [
                name
                for key, name in GUARDED.items()
                if row[key]["p_value"] < alpha and (row[key]["difference"] < 0) == up
            ]
