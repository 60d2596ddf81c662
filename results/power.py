"""Power of the fixed-horizon test, pure: what today's sample can detect, and how long a target
effect needs at today's traffic.

With today's standard error se of the difference (each arm's own variance over its size, the
interval's variance), the test at level alpha detects a true difference delta with probability
`power` when delta = (z_{1-alpha/2} + z_{power}) se: that delta is the minimum detectable effect
(MDE; the far rejection tail is ignored, as is usual). Relative MDE: MDE / |control mean|.

Visitors arrive at today's daily rate and split as they have so far, so se shrinks as
1/sqrt(days): reaching the MDE `target` (relative) takes days_so_far x (MDE_today / target)^2
days in all; `days_more` is what remains of it (0 when the target is already detectable).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats as sps

from results.stats import ALPHA, NAN

POWER = 0.8
TARGET_LIFT = 0.05


@dataclass(frozen=True, slots=True, kw_only=True)
class Power:
    power: float
    mde: float  # absolute, in the metric's unit
    mde_relative: float  # of the control mean
    target_relative: float
    days_so_far: float
    days_needed: float  # in all, at today's traffic
    days_more: float


def multiplier(alpha: float = ALPHA, power: float = POWER) -> float:
    return float(sps.norm.ppf(1 - alpha / 2) + sps.norm.ppf(power))


def mde(se: float, alpha: float = ALPHA, power: float = POWER) -> float:
    return multiplier(alpha, power) * se if se > 0 else NAN


def analyse(
    control_mean: float, var_c: float, n_c: int, var_t: float, n_t: int, days: float,
    *, alpha: float = ALPHA, power: float = POWER, target: float = TARGET_LIFT,
) -> Power:  # fmt: skip
    """From each arm's per-visitor variance and size after `days` days of traffic."""
    se = math.sqrt(var_c / n_c + var_t / n_t) if n_c > 0 and n_t > 0 else NAN
    absolute = mde(se, alpha, power)
    relative = absolute / abs(control_mean) if control_mean else NAN
    needed = days * (relative / target) ** 2 if days > 0 and target > 0 else NAN
    return Power(
        power=power,
        mde=absolute,
        mde_relative=relative,
        target_relative=target,
        days_so_far=days,
        days_needed=needed,
        days_more=max(0.0, needed - days) if math.isfinite(needed) else NAN,
    )
