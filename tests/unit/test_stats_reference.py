"""hitstream's statistics against independent implementations, to 1e-6 on the same aggregates.

The reference values (tests/reference/reference_values.json) come from GrowthBook's gbstats
0.8.0, statsmodels and scipy, run by tests/reference/make_reference.py in their own virtualenv;
this test only reads them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats as sps

from results import bayes, corrections, power, ratio, stats
from results.ratio import RatioMoments
from results.stats import Moments

REFERENCE = json.loads(
    (Path(__file__).parents[1] / "reference" / "reference_values.json").read_text()
)
PRIOR = bayes.Prior(sd=REFERENCE["prior_sd"])


def close(value: float) -> Any:
    return pytest.approx(value, rel=1e-6, abs=1e-10)


def check_bayes(ours: bayes.Bayesian, flat: bayes.Bayesian, theirs: dict[str, Any]) -> None:
    for name, result in (("flat", flat), ("proper", ours)):
        for kind in ("absolute", "relative"):
            got: bayes.Posterior = getattr(result, kind)
            want = theirs[f"{kind}_{name}"]
            assert got.chance_to_beat == close(want["chance_to_beat"])
            assert got.mean == close(want["mean"])
            ci = got.credible_interval
            assert [ci.low, ci.high] == [close(v) for v in want["ci"]]
            assert got.risk_control == close(want["risk_control"])
            assert got.risk_treatment == close(want["risk_treatment"])


@pytest.mark.parametrize("case", REFERENCE["rates"], ids=lambda c: str(c["input"]))
def test_rates_match_statsmodels_and_gbstats(case: dict[str, Any]) -> None:
    x_c, n_c, x_t, n_t = case["input"]
    result = stats.compare_rates(x_c, n_c, x_t, n_t)
    assert result.statistic == close(case["z"]) and result.p_value == close(case["p"])
    check_bayes(
        bayes.compare_rates(x_c, n_c, x_t, n_t, prior=PRIOR),
        bayes.compare_rates(x_c, n_c, x_t, n_t),
        case["bayes"],
    )


def moments(d: dict[str, float]) -> Moments:
    return Moments(**d)  # type: ignore[arg-type]


@pytest.mark.parametrize("case", REFERENCE["means"], ids=lambda c: str(c["control"]["n"]))
def test_means_match_gbstats_and_scipy(case: dict[str, Any]) -> None:
    control, treatment = moments(case["control"]), moments(case["treatment"])
    result = stats.compare_means(control, treatment)
    assert result.p_value == close(case["p"]) and result.p_value == close(case["scipy_p"])
    assert result.statistic == close(case["scipy_t"])
    ci = result.difference_ci
    assert [ci.low, ci.high] == [close(v) for v in case["ci"]]
    check_bayes(
        bayes.compare_means(control, treatment, prior=PRIOR),
        bayes.compare_means(control, treatment),
        case["bayes"],
    )


@pytest.mark.parametrize("case", REFERENCE["cuped"], ids=lambda c: str(c["control"]["n"]))
def test_cuped_matches_gbstats_regression_adjustment(case: dict[str, Any]) -> None:
    result = stats.cuped(moments(case["control"]), moments(case["treatment"]))
    assert result is not None
    assert result.theta == close(case["theta"])
    assert result.difference == close(case["difference"])
    assert result.p_value == close(case["p"])
    ci = result.difference_ci
    assert [ci.low, ci.high] == [close(v) for v in case["ci"]]


@pytest.mark.parametrize("case", REFERENCE["corrections"], ids=lambda c: str(c["p"]))
def test_corrections_match_statsmodels_multipletests(case: dict[str, Any]) -> None:
    assert corrections.adjust(case["p"], "holm") == [close(v) for v in case["holm"]]
    assert corrections.adjust(case["p"], "bh") == [close(v) for v in case["bh"]]


@pytest.mark.parametrize("case", REFERENCE["srm"], ids=lambda c: str(c["observed"]))
def test_sample_ratio_matches_gbstats_and_scipy(case: dict[str, Any]) -> None:
    srm = stats.sample_ratio(case["observed"], case["weights"])
    assert srm.p_value == close(case["gbstats_p"]) and srm.p_value == close(case["scipy_p"])


@pytest.mark.parametrize("case", REFERENCE["power"], ids=lambda c: f"{c['n_c']}-{c['n_t']}")
def test_mde_matches_statsmodels_normal_power(case: dict[str, Any]) -> None:
    var = case["sd"] ** 2
    result = power.analyse(
        1.0, var, case["n_c"], var, case["n_t"], 7, alpha=case["alpha"], power=case["power"]
    )
    assert result.mde == close(case["mde"])


@pytest.mark.parametrize("case", REFERENCE["ratios"], ids=lambda c: str(c["control"]["n"]))
def test_ratio_metrics_match_gbstats_delta_method(case: dict[str, Any]) -> None:
    control = ratio.RatioMoments(**case["control"])
    treatment = ratio.RatioMoments(**case["treatment"])
    result = ratio.compare(control, treatment)
    assert result.difference == close(case["difference"]) and result.p_value == close(case["p"])
    ci = result.difference_ci
    assert [ci.low, ci.high] == [close(v) for v in case["ci"]]
    check_bayes(
        ratio.compare(control, treatment, prior=PRIOR).bayesian, result.bayesian, case["bayes"]
    )


def ratio_arm(rng: np.random.Generator, n: int, lift: float) -> tuple[RatioMoments, np.ndarray]:
    """Visitors whose orders and baskets before and after exposure share a per-visitor level."""
    level = rng.gamma(2.0, 1.0, n)
    dp = rng.poisson(0.3 * level)
    d = rng.poisson(0.3 * level)
    mp = np.array([rng.lognormal(7.0, 0.5, k).sum() for k in dp]).round() * level**1.5
    m = np.array([rng.lognormal(7.0, 0.5, k).sum() for k in d]).round() * level**1.5
    m = (m * (1 + lift)).round()
    sums = RatioMoments(
        n=n, sum_m=m.sum(), sum_m2=(m * m).sum(), sum_d=d.sum(), sum_d2=(d * d).sum(),
        sum_md=(m * d).sum(), sum_mp=mp.sum(), sum_mp2=(mp * mp).sum(), sum_dp=dp.sum(),
        sum_dp2=(dp * dp).sum(), sum_mp_dp=(mp * dp).sum(), sum_m_mp=(m * mp).sum(),
        sum_m_dp=(m * dp).sum(), sum_d_mp=(d * mp).sum(), sum_d_dp=(d * dp).sum(),
    )  # fmt: skip
    return sums, np.stack([m, d, mp, dp])


def test_ratio_cuped_equals_the_influence_function_computation_on_raw_data() -> None:
    rng = np.random.default_rng(15)
    (c, raw_c), (t, raw_t) = ratio_arm(rng, 6000, 0.0), ratio_arm(rng, 6200, 0.05)
    result = ratio.cuped(c, t)
    assert result is not None
    var, cov, pre = [], [], []
    for m, d, mp, dp in (raw_c, raw_t):  # linearised per-visitor contributions of R and Rp
        phi = (m - m.sum() / d.sum() * d) / d.mean()
        psi = (mp - mp.sum() / dp.sum() * dp) / dp.mean()
        n = len(m)
        var.append(phi.var(ddof=1) / n)
        cov.append(np.cov(phi, psi, ddof=1)[0, 1] / n)
        pre.append(psi.var(ddof=1) / n)
    theta = sum(cov) / sum(pre)
    adjusted = [v - 2 * theta * k + theta**2 * p for v, k, p in zip(var, cov, pre, strict=True)]
    ratios = [(x[0].sum() / x[1].sum(), x[2].sum() / x[3].sum()) for x in (raw_c, raw_t)]
    d = (ratios[1][0] - theta * ratios[1][1]) - (ratios[0][0] - theta * ratios[0][1])
    assert result.theta == close(theta) and result.difference == close(d)
    assert result.variance_reduction == close(1 - sum(adjusted) / sum(var))
    assert result.variance_reduction > 0.1  # the shared level makes the covariate worth it
    half = (result.difference_ci.high - result.difference_ci.low) / 2
    assert half == pytest.approx(float(sps.norm.ppf(0.975)) * math.sqrt(sum(adjusted)), rel=1e-3)
    assert ratio.cuped(RatioMoments(**{**case_sums(c), "sum_dp": 0}), t) is None


def case_sums(r: RatioMoments) -> dict[str, Any]:
    return {f: getattr(r, f) for f in r.__dataclass_fields__}
