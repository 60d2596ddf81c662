"""A/A and power simulations of results.stats: false positives of every test under a true null,
and the power of the always-valid test beside the fixed-horizon one, in the same run.

Each scenario simulates BENCH_AA_EXPERIMENTS experiments (default 10,000: the 4-6% band is then
+-4.6 binomial sd wide, at 2,000 only +-2.2, so one of the five scenarios falls outside by chance
about one run in four) of per-visitor data,
looked at 20 times (after 5%, 10%, ... 100% of the visitors), and calls the product's own
functions on the per-arm sums at each look, as `hitstream results` does:

* fixed horizon: the z-test (rates) or Welch's test (means) at the last look; should reject
  alpha = 5% of A/A experiments (within 4-6%), and far more when peeked at 20 times;
* always valid: the mSPRT p-value and interval at any of the 20 looks; must reject at most 5%.

The baselines are the nominal alpha and, for the unequal-variance means, the always-valid p-value
computed with the pooled variance (the code before issue 15's fix). Power rows: a true effect,
the share of experiments each test detects (fixed at the end, always valid at any look).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from results import stats
from results.stats import Moments

ALPHA = 0.05
LOOKS = 20


@dataclass(frozen=True)
class Scenario:
    name: str
    kind: str  # "rate" or "mean"
    n: tuple[int, int]  # visitors per arm at the last look (control, treatment)
    draw: Callable[[np.random.Generator, int, int], np.ndarray]  # (rng, arm, size) -> values


def bernoulli(p_c: float, p_t: float) -> Callable[[np.random.Generator, int, int], np.ndarray]:
    return lambda rng, arm, size: (rng.random(size) < (p_t if arm else p_c)).astype(np.int64)


def revenue(lift: float = 0.0) -> Callable[[np.random.Generator, int, int], np.ndarray]:
    """10% of visitors buy, lognormal baskets in cents (heavy right tail)."""

    def draw(rng: np.random.Generator, arm: int, size: int) -> np.ndarray:
        buys = rng.random(size) < 0.1
        return np.where(buys, rng.lognormal(8.0, 1.0, size) * (1 + lift * arm), 0.0).round()

    return draw


def spread(sd_c: float, sd_t: float, shift: float = 0.0) -> Callable[..., np.ndarray]:
    """Normal values around 1,000 with a different spread per arm."""
    return lambda rng, arm, size: rng.normal(1000 + shift * arm, sd_t if arm else sd_c, size)


def simulate(s: Scenario, experiments: int, seed: int) -> dict[str, float]:
    """Share of experiments each test rejects (fixed: last look; peeking/AV: any look)."""
    rng = np.random.default_rng(seed)
    sums = np.zeros((2, 3, experiments))  # arm, (n, sum, sum of squares), experiment
    fixed = np.zeros(experiments, bool)
    peek = np.zeros(experiments, bool)
    av_p = np.zeros(experiments, bool)
    av_ci = np.zeros(experiments, bool)
    pooled = np.zeros(experiments, bool)
    done = [0, 0]
    for look in range(1, LOOKS + 1):
        for arm in (0, 1):
            size = s.n[arm] * look // LOOKS - done[arm]
            values = s.draw(rng, arm, experiments * size).reshape(experiments, size)
            sums[arm] += [np.full(experiments, size), values.sum(1), (values * values).sum(1)]
            done[arm] += size
        for e in range(experiments):
            c = Moments(n=done[0], sum_y=sums[0, 1, e].item(), sum_y2=sums[0, 2, e].item())
            t = Moments(n=done[1], sum_y=sums[1, 1, e].item(), sum_y2=sums[1, 2, e].item())
            if s.kind == "rate":
                r = stats.compare_rates(int(c.sum_y), c.n, int(t.sum_y), t.n, alpha=ALPHA)
            else:
                r = stats.compare_means(c, t, alpha=ALPHA)
                both = Moments(n=c.n + t.n, sum_y=c.sum_y + t.sum_y, sum_y2=c.sum_y2 + t.sum_y2)
                v0 = both.variance * (1 / c.n + 1 / t.n)  # the pre-fix (pooled) variance
                tau2 = stats.MIXTURE_EFFECT**2 * both.variance
                pooled[e] |= stats.always_valid_p(r.difference, v0, tau2) < ALPHA
            rejected = r.p_value < ALPHA
            peek[e] |= rejected
            if look == LOOKS:
                fixed[e] = rejected
            av_p[e] |= r.always_valid_p < ALPHA
            av_ci[e] |= not (r.always_valid_ci.low <= 0 <= r.always_valid_ci.high)
    out = {"fixed": fixed.mean(), "peeking": peek.mean(), "av_p": av_p.mean(),
           "av_ci": av_ci.mean()}  # fmt: skip
    if s.kind == "mean":
        out["av_pooled"] = pooled.mean()
    return out


NULLS = [
    Scenario("rates 5%, 50/50, 2x5,000", "rate", (5000, 5000), bernoulli(0.05, 0.05)),
    Scenario("rates 5%, 20/80, 2,000+8,000", "rate", (2000, 8000), bernoulli(0.05, 0.05)),
    Scenario("revenue, 50/50, 2x3,000", "mean", (3000, 3000), revenue()),
    Scenario("means sd 3000 vs 300, 1,000+9,000", "mean", (1000, 9000), spread(3000, 300)),
    Scenario("means sd 300 vs 3000, 1,000+9,000", "mean", (1000, 9000), spread(300, 3000)),
]
POWERED = [
    Scenario("rates 5% -> 5.75% (+15%), 2x8,000", "rate", (8000, 8000), bernoulli(0.05, 0.0575)),
    Scenario("revenue +15%, 2x8,000", "mean", (8000, 8000), revenue(0.15)),
]


def run() -> list[str]:
    experiments = int(os.environ.get("BENCH_AA_EXPERIMENTS", "10000"))
    band = 4 * (ALPHA * (1 - ALPHA) / experiments) ** 0.5
    lines = [f"{experiments:,} experiments per scenario, {LOOKS} looks, alpha {ALPHA}; "
             f"binomial noise of a 5% rate: +-{band / 4:.2%} (1 sd)"]  # fmt: skip
    for i, s in enumerate(NULLS):
        began = time.monotonic()
        r = simulate(s, experiments, seed=1000 + i)
        ok = 0.04 <= r["fixed"] <= 0.06 and max(r["av_p"], r["av_ci"]) <= ALPHA
        lines.append(
            f"A/A {s.name}: fixed {r['fixed']:.2%} (baseline alpha 5%, ratio "
            f"{r['fixed'] / ALPHA:.2f}); peeking x{LOOKS} {r['peeking']:.2%}; always-valid p "
            f"{r['av_p']:.2%}, interval {r['av_ci']:.2%} over {LOOKS} looks"
            + (f"; pooled-variance AV p (before the fix) {r['av_pooled']:.2%}"
               if "av_pooled" in r else "")
            + f"; {'ok' if ok else 'OUT OF BOUNDS'} ({time.monotonic() - began:.0f} s)"
        )  # fmt: skip
    for i, s in enumerate(POWERED):
        r = simulate(s, experiments, seed=2000 + i)
        lines.append(
            f"power {s.name}: fixed at the end {r['fixed']:.1%}; always valid at any of "
            f"{LOOKS} looks {r['av_p']:.1%} (ratio {r['av_p'] / r['fixed']:.2f}); peeking at the "
            f"fixed test {r['peeking']:.1%} (not valid)"
        )
    return lines


if __name__ == "__main__":
    print("\n".join(run()))
