"""Reference values for results.stats/bayes/corrections/power from independent implementations.

GrowthBook's gbstats 0.8.0 (Bayesian effect model, Welch t-test, CUPED, SRM), statsmodels 0.14
(`multipletests`, `proportions_ztest`, `NormalIndPower`) and scipy, run in their own virtualenv
(gbstats needs numpy < 2; none of them is a dependency of hitstream). Writes
tests/reference/reference_values.json, which tests/unit/test_stats_reference.py compares with
hitstream's figures on the same aggregates (to 1e-6), without needing this virtualenv:

    tests/reference/gbstats_venv.sh
    .local/gbstats-venv/bin/python tests/reference/make_reference.py
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from gbstats.bayesian.tests import EffectBayesianABTest, EffectBayesianConfig, GaussianPrior
from gbstats.frequentist.tests import FrequentistConfig, TwoSidedTTest
from gbstats.models.statistics import (
    ProportionStatistic,
    RatioStatistic,
    RegressionAdjustedStatistic,
    SampleMeanStatistic,
    compute_theta,
)
from gbstats.utils import check_srm
from scipy import stats as sps
from scipy.optimize import brentq
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportions_ztest

OUT = Path(__file__).with_name("reference_values.json")
ALPHA = 0.05
PRIOR_SD = 0.3  # the proper prior of the Bayesian cases: N(0, 0.3^2) on the relative lift

RATES = [(100, 1000, 130, 1000), (50, 2000, 71, 2100), (412, 9000, 455, 9100), (3, 40, 9, 45),
         (1210, 24000, 1150, 23800)]  # fmt: skip
# arm(n, mean, sd) pairs: (control, treatment)
MEANS = [((1000, 1000.0, 3000.0), (9000, 1150.0, 300.0)), ((500, 36.5, 80.0), (520, 41.0, 95.0)),
         ((20000, 2.1, 15.0), (19800, 2.3, 16.0)), ((60, 12.0, 4.0), (55, 10.5, 6.0))]  # fmt: skip
# CUPED arms: (n, sum_y, sum_y2, sum_x, sum_x2, sum_xy)
CUPED = [((4000, 412, 412, 8000, 24000, 1300), (4000, 470, 470, 8050, 24500, 1380)),
         ((3000, 120000.0, 9.0e7, 100000.0, 7.0e7, 5.0e7),
          (3100, 131000.0, 9.6e7, 104000.0, 7.2e7, 5.3e7))]  # fmt: skip
# revenue per order: (seed, visitors, share buying, extra orders per buyer, log basket)
RATIOS = [((1, 5000, 0.08, 0.3, 8.2), (2, 5100, 0.09, 0.35, 8.25)),
          ((3, 20000, 0.05, 0.2, 7.0), (4, 19500, 0.05, 0.2, 7.0)),
          ((5, 800, 0.2, 1.0, 6.0), (6, 820, 0.15, 0.5, 6.3))]  # fmt: skip
P_FAMILIES = [[0.01, 0.04, 0.03, 0.005], [0.2, 0.001, 0.049, 0.051, 0.6, 0.0001],
              [0.5, 0.5, 0.5], [0.012, 0.012, 0.3]]  # fmt: skip
SRM = [([821588, 815482], [1, 1]), ([5030, 4970, 10000], [1, 1, 2]), ([5000, 3000], [1, 1]),
       ([1000, 2100, 2950], [0.2, 0.3, 0.5])]  # fmt: skip
# power: (n_c, n_t, sd, alpha, power)
POWER = [(1000, 1000, 0.3, 0.05, 0.8), (5000, 8000, 120.0, 0.01, 0.9), (300, 250, 2.5, 0.1, 0.8)]


def arm(n: int, mean: float, sd: float) -> dict[str, float]:
    return {"n": n, "sum_y": n * mean, "sum_y2": (n - 1) * sd**2 + n * mean * mean}


def bayes(a: Any, b: Any, relative: bool, proper: bool) -> dict[str, Any]:
    prior = GaussianPrior(mean=0, variance=PRIOR_SD**2, proper=proper)
    config = EffectBayesianConfig(
        difference_type="relative" if relative else "absolute", prior_effect=prior,
        prior_type="relative", alpha=ALPHA,
    )  # fmt: skip
    r = EffectBayesianABTest(a, b, config).compute_result()
    assert r.error_message is None, r.error_message
    return {"chance_to_beat": r.chance_to_win, "mean": r.expected, "ci": list(r.ci),
            "risk_control": r.risk[0], "risk_treatment": r.risk[1]}  # fmt: skip


def bayes_all(a: Any, b: Any) -> dict[str, Any]:
    return {
        f"{kind}_{prior}": bayes(a, b, kind == "relative", prior == "proper")
        for kind in ("absolute", "relative")
        for prior in ("flat", "proper")
    }


def rates() -> list[dict[str, Any]]:
    out = []
    for x_c, n_c, x_t, n_t in RATES:
        z, p = proportions_ztest([x_t, x_c], [n_t, n_c])
        a, b = ProportionStatistic(n=n_c, sum=x_c), ProportionStatistic(n=n_t, sum=x_t)
        out.append({"input": [x_c, n_c, x_t, n_t], "z": float(z), "p": float(p),
                    "bayes": bayes_all(a, b)})  # fmt: skip
    return out


def means() -> list[dict[str, Any]]:
    out = []
    for c, t in MEANS:
        mc, mt = arm(*c), arm(*t)
        a = SampleMeanStatistic(n=c[0], sum=mc["sum_y"], sum_squares=mc["sum_y2"])
        b = SampleMeanStatistic(n=t[0], sum=mt["sum_y"], sum_squares=mt["sum_y2"])
        welch = TwoSidedTTest(a, b, FrequentistConfig(difference_type="absolute", alpha=ALPHA))
        r = welch.compute_result()
        scipy_t = sps.ttest_ind_from_stats(t[1], t[2], t[0], c[1], c[2], c[0], equal_var=False)
        out.append({"control": mc, "treatment": mt, "p": r.p_value, "ci": list(r.ci),
                    "scipy_t": float(scipy_t.statistic), "scipy_p": float(scipy_t.pvalue),
                    "bayes": bayes_all(a, b)})  # fmt: skip
    return out


def cuped() -> list[dict[str, Any]]:
    out = []
    keys = ("n", "sum_y", "sum_y2", "sum_x", "sum_x2", "sum_xy")
    for c, t in CUPED:
        stats = []
        for n, sy, sy2, sx, sx2, sxy in (c, t):
            stats.append(RegressionAdjustedStatistic(
                n=n, post_statistic=SampleMeanStatistic(n=n, sum=sy, sum_squares=sy2),
                pre_statistic=SampleMeanStatistic(n=n, sum=sx, sum_squares=sx2),
                post_pre_sum_of_products=sxy, theta=0,
            ))  # fmt: skip
        theta = compute_theta(stats[0], stats[1])
        for s in stats:
            s.theta = theta
        r = TwoSidedTTest(stats[0], stats[1], FrequentistConfig(difference_type="absolute"))
        result = r.compute_result()
        out.append({"control": dict(zip(keys, c, strict=True)),
                    "treatment": dict(zip(keys, t, strict=True)), "theta": theta,
                    "difference": result.expected, "ci": list(result.ci),
                    "p": result.p_value})  # fmt: skip
    return out


def ratio_arms(seed: int, n: int, buy: float, orders: float, basket: float) -> dict[str, float]:
    """Per-visitor orders (Poisson among buyers) and revenue (lognormal baskets), summed."""
    rng = np.random.default_rng(seed)
    d = np.where(rng.random(n) < buy, 1 + rng.poisson(orders, n), 0).astype(np.int64)
    m = np.array([rng.lognormal(basket, 0.6, k).round().sum() for k in d], dtype=np.int64)
    return {"n": n, "sum_m": int(m.sum()), "sum_m2": int((m * m).sum()), "sum_d": int(d.sum()),
            "sum_d2": int((d * d).sum()), "sum_md": int((m * d).sum())}  # fmt: skip


def ratios() -> list[dict[str, Any]]:
    out = []
    for c, t in RATIOS:
        arms = [ratio_arms(*c), ratio_arms(*t)]
        a, b = (
            RatioStatistic(
                n=x["n"],
                m_statistic=SampleMeanStatistic(n=x["n"], sum=x["sum_m"], sum_squares=x["sum_m2"]),
                d_statistic=SampleMeanStatistic(n=x["n"], sum=x["sum_d"], sum_squares=x["sum_d2"]),
                m_d_sum_of_products=x["sum_md"],
            )
            for x in arms
        )
        r = TwoSidedTTest(a, b, FrequentistConfig(difference_type="absolute")).compute_result()
        out.append({"control": arms[0], "treatment": arms[1], "difference": r.expected,
                    "ci": list(r.ci), "p": r.p_value, "bayes": bayes_all(a, b)})  # fmt: skip
    return out


def corrections() -> list[dict[str, Any]]:
    return [
        {
            "p": family,
            "holm": list(multipletests(family, method="holm")[1]),
            "bh": list(multipletests(family, method="fdr_bh")[1]),
        }
        for family in P_FAMILIES
    ]


def srm() -> list[dict[str, Any]]:
    out = []
    for observed, weights in SRM:
        expected = [sum(observed) * w / sum(weights) for w in weights]
        scipy_p = float(sps.chisquare(observed, expected).pvalue)
        gbstats_p = check_srm(observed, weights)
        out.append({"observed": observed, "weights": weights, "gbstats_p": gbstats_p,
                    "scipy_p": scipy_p})  # fmt: skip
    return out


def power() -> list[dict[str, Any]]:
    """MDE at today's sample: the effect size (x sd) at which NormalIndPower's power (one tail at
    alpha / 2) is the target, solved to 1e-14 (its own solve_power stops near 1e-6)."""
    out = []
    for n_c, n_t, sd, alpha, pw in POWER:

        def gap(es: float, n_c: int = n_c, n_t: int = n_t, alpha: float = alpha,
                pw: float = pw) -> float:  # fmt: skip
            return float(NormalIndPower().power(
                effect_size=es, nobs1=n_c, ratio=n_t / n_c, alpha=alpha / 2, alternative="larger"
            )) - pw  # fmt: skip

        es = brentq(gap, 1e-9, 10.0, xtol=1e-15, rtol=1e-14)
        out.append({"n_c": n_c, "n_t": n_t, "sd": sd, "alpha": alpha, "power": pw,
                    "mde": float(es) * sd})  # fmt: skip
    return out


def main() -> None:
    document = {
        "made_by": "tests/reference/make_reference.py (gbstats 0.8.0, statsmodels, scipy)",
        "alpha": ALPHA,
        "prior_sd": PRIOR_SD,
        "rates": rates(),
        "means": means(),
        "cuped": cuped(),
        "ratios": ratios(),
        "corrections": corrections(),
        "srm": srm(),
        "power": power(),
    }
    text = json.dumps(document, indent=1, allow_nan=False)
    assert "NaN" not in text and all(math.isfinite(v) for v in [ALPHA])
    OUT.write_text(text + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
