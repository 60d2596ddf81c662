"""The live SRM test (pipeline/srm.py) against independent computations and by simulation."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from scipy import stats as sps

from pipeline import exposures, srm
from pipeline.derive import derive
from tests.unit.factories import event

ALPHA = 0.05


def test_bayes_factor_equals_dirichlet_multinomial_over_multinomial() -> None:
    shares = np.array([0.5, 0.3, 0.2])
    for counts in ([3, 1, 0], [40, 31, 29], [500, 200, 300], [0, 0, 7]):
        n = sum(counts)
        expected = sps.dirichlet_multinomial.logpmf(
            counts, srm.CONCENTRATION * shares, n
        ) - sps.multinomial.logpmf(counts, n, shares)
        assert float(srm.log_bayes_factor(counts, shares)) == pytest.approx(expected, abs=1e-9)


def test_bayes_factor_is_the_product_of_predictive_ratios() -> None:
    """Each exposure multiplies BF by P_mixture(next | past) / p0 (exact fractions)."""
    shares, c = [Fraction(1, 4), Fraction(3, 4)], 8
    sequence = [0, 1, 1, 0, 0, 0, 1, 0]
    counts, bf = [0, 0], Fraction(1)
    for i in sequence:
        bf *= (c * shares[i] + counts[i]) / (c + sum(counts)) / shares[i]
        counts[i] += 1
    got = srm.log_bayes_factor(counts, [0.25, 0.75], concentration=c)
    assert float(got) == pytest.approx(math.log(bf), abs=1e-12)


def first_alarms(
    rng: np.random.Generator,
    true_shares: list[float],
    shares: list[float],
    sims: int,
    steps: int,
    min_deviation: float = 0.0,
) -> np.ndarray:
    """Per simulation, the number of exposures at the first alarm (0: none within `steps`)."""
    k = len(shares)
    draws = rng.choice(k, size=(sims, steps), p=true_shares)
    counts = np.cumsum(np.eye(k, dtype=np.int64)[draws], axis=1)  # (sims, steps, k)
    log_bf = srm.log_bayes_factor(counts, shares)
    observed = counts / counts.sum(axis=-1, keepdims=True)
    deviation = np.abs(observed - np.asarray(shares) / sum(shares)).max(axis=-1)
    alarm = (log_bf >= -math.log(ALPHA)) & (deviation >= min_deviation)
    return np.where(alarm.any(axis=1), alarm.argmax(axis=1) + 1, 0)


@pytest.mark.parametrize("shares", [[0.5, 0.5], [0.5, 0.25, 0.25]])
def test_checking_after_every_exposure_keeps_false_alarms_below_alpha(shares: list[float]) -> None:
    sims, steps = 400, 5000
    rng = np.random.default_rng(7)
    alarms = first_alarms(rng, shares, shares, sims, steps)
    rate = float((alarms > 0).mean())
    assert rate <= ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / sims)
    # the same looks with a fixed-horizon chi-square at 0.05 alarm far more often (the test
    # above could fail: peeking is what it guards against)
    draws = rng.choice(len(shares), size=(sims, steps), p=shares)
    counts = np.cumsum(np.eye(len(shares), dtype=np.int64)[draws], axis=1)[:, 99::50]
    expected = counts.sum(axis=-1, keepdims=True) * np.asarray(shares)
    chi2 = ((counts - expected) ** 2 / expected).sum(axis=-1)
    naive = (sps.chi2.sf(chi2, len(shares) - 1) < ALPHA).any(axis=1).mean()
    assert naive > 3 * ALPHA


def test_a_45_55_split_of_a_50_50_experiment_alarms_within_a_few_thousand() -> None:
    alarms = first_alarms(
        np.random.default_rng(11), [0.45, 0.55], [0.5, 0.5], 100, 6000, min_deviation=0.01
    )
    assert (alarms > 0).all()
    assert float(np.median(alarms)) < 3000


def test_a_tiny_deviation_on_a_huge_sample_does_not_alarm() -> None:
    counts, shares = [5_020_000, 4_980_000], [0.5, 0.5]  # 50.2 / 49.8: z = 12.6
    assert sps.chisquare(counts).pvalue < 1e-30
    verdict = srm.check(counts, shares, alpha=ALPHA, min_deviation=0.01)
    assert verdict.log_bayes_factor > -math.log(ALPHA)  # the evidence alone would alarm
    assert verdict.deviation == pytest.approx(0.002)
    assert not verdict.alarm
    assert srm.check(counts, shares, alpha=ALPHA, min_deviation=0.001).alarm
    # and streamed: 50.2/49.8 for 200k exposures never alarms at a 1 point minimum
    alarms = first_alarms(
        np.random.default_rng(3), [0.502, 0.498], shares, 4, 200_000, min_deviation=0.01
    )
    assert (alarms == 0).all()


def test_observe_latches_the_alarm_and_restarts_on_a_new_split() -> None:
    weights = {"a": 1.0, "b": 1.0}
    state, raised = None, []
    for i in range(400):
        step = srm.observe(state, "a", i, weights, alpha=ALPHA, min_deviation=0.01)
        state = step.state
        raised.append(step.raised)
    assert sum(raised) == 1 and state is not None and state.alarm
    first = raised.index(True) + 1
    assert first == next(  # the first n with all-"a" counts past 1/alpha, independently
        n for n in range(1, 400) if float(srm.log_bayes_factor([n, 0], [1, 1])) >= math.log(20)
    )
    assert srm.decode(srm.encode(state)) == state
    step = srm.observe(state, "b", 400, {"a": 1.0, "b": 3.0}, alpha=ALPHA, min_deviation=0.01)
    assert step.reset and not step.state.alarm and step.state.counts == {"b": 1}


def test_counts_before_the_split_is_known_are_tested_once_it_is() -> None:
    state = None
    for i in range(100):
        step = srm.observe(state, "a", i, None, alpha=ALPHA, min_deviation=0.01)
        assert step.verdict is None
        state = step.state
    step = srm.observe(state, "b", 100, {"a": 1, "b": 1}, alpha=ALPHA, min_deviation=0.01)
    assert step.raised and step.state.counts == {"a": 100, "b": 1}
    record = srm.alert("t", "e", step.state, step.verdict, alpha=ALPHA, min_deviation=0.01, at_ms=5)
    assert record["counts"] == [100, 1] and record["expected_shares"] == [0.5, 0.5]


def test_exposures_are_the_impressions_of_a_bundle_keyed_by_experiment() -> None:
    # an impression of 100 and a conversion; 200 only in the map
    item = event(tenant="42", received_at_ms=1_790_000_000_500, goals=("100", "555"))
    found = exposures.exposures(derive(item))
    assert found == [exposures.Exposure("42", "100", "7", "v1", 1_790_000_000_500)]
    retry = derive(item, duplicate_of="e0")
    assert exposures.exposures(retry) == []
    other = exposures.Exposure("42", "200", "8", "v2", 1_790_000_000_600)
    records = exposures.records([*found, other, found[0]])
    assert [key for key, _ in records] == [b"42|100", b"42|200"]  # one record per experiment
    assert exposures.decode(records[0][1]) == [found[0], found[0]]  # in order
    assert exposures.decode(records[1][1]) == [other]


class CrashAfter(dict[bytes, bytes]):
    """A table whose process dies after `writes` more writes (what was written survives)."""

    def __init__(self, data: dict[bytes, bytes], writes: int) -> None:
        super().__init__(data)
        self.writes = writes

    def __setitem__(self, key: bytes, value: bytes) -> None:
        if self.writes == 0:
            raise RuntimeError("crash")
        self.writes -= 1
        super().__setitem__(key, value)


def test_every_first_exposure_counts_once_whatever_write_a_crash_interrupts() -> None:
    kwargs = {"alpha": ALPHA, "min_deviation": 0.01}
    weights = {"1": 1.0, "2": 1.0}
    for survive in (0, 1):  # the crash loses both writes, or only the visitor key
        table = CrashAfter({}, writes=survive)
        with pytest.raises(RuntimeError):
            srm.count(table, "t", "e", [("u1", "1")], 0, weights, **kwargs)
        table.writes = 100  # restarted: the same exposure is delivered again, then more
        srm.count(table, "t", "e", [("u1", "1")], 0, weights, **kwargs)
        srm.count(table, "t", "e", [("u1", "2")], 1, weights, **kwargs)  # seen: not first
        srm.count(table, "t", "e", [("u2", "2")], 2, weights, **kwargs)
        srm.count(table, "t", "e", [("u2", "2")], 2, weights, **kwargs)  # redelivered again
        state = srm.decode(table[b"c|t|e"])
        assert state is not None and state.counts == {"1": 1, "2": 1}, survive
        assert table[b"v|t|e|u1"] == b"1" and table[b"v|t|e|u2"] == b"2"


@pytest.mark.parametrize("survive", [0, 1, 2])  # the record makes 3 writes
def test_a_record_of_exposures_counts_each_first_once_whatever_a_crash_interrupts(
    survive: int,
) -> None:
    """One record: the counts key, then a visitor key per first exposure; a crash after any of
    those writes, then the record again, counts each visitor's first exposure exactly once."""
    kwargs = {"alpha": ALPHA, "min_deviation": 0.01}
    weights = {"1": 1.0, "2": 1.0}
    record = [("u1", "1"), ("u2", "2"), ("u1", "2"), ("u3", "1")]  # u1 twice: its first counts
    table = CrashAfter({b"v|t|e|u3": b"1"}, writes=survive)  # u3 was exposed before
    with pytest.raises(RuntimeError):
        srm.count(table, "t", "e", record, 7, weights, **kwargs)
    table.writes = 100
    first = srm.count(table, "t", "e", record, 7, weights, **kwargs)
    assert first is None or first[1] == 2
    assert srm.count(table, "t", "e", record, 7, weights, **kwargs) is None  # again: counted
    state = srm.decode(table[b"c|t|e"])
    assert state is not None and state.counts == {"1": 1, "2": 1} and state.offset == 7
    assert table[b"v|t|e|u1"] == b"1" and table[b"v|t|e|u2"] == b"2"


def test_a_record_is_tested_once_and_can_raise_the_alarm() -> None:
    record = [(f"u{i}", "1") for i in range(300)]  # all in one variation of a 50/50 split
    counted = srm.count({}, "t", "e", record, 0, {"1": 1, "2": 1}, alpha=ALPHA, min_deviation=0.01)
    assert counted is not None
    step, firsts = counted
    assert firsts == 300 and step.raised and step.state.alarm
