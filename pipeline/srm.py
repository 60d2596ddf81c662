"""Live sample-ratio mismatch (SRM), pure: an anytime-valid test of exposure counts against the
configured split, checked after each record of first exposures (pipeline/exposures.py).

The test (Lindon and Malek 2022, "Anytime-valid inference for multinomial count data"): under H0
the exposures of an experiment are multinomial with the configured shares p0; the alternative is
a Dirichlet(c p0) mixture over the shares. The Bayes factor of the counts n (N in all)

    BF = [Gamma(c) / Gamma(c + N)] prod_i Gamma(c p0_i + n_i) / Gamma(c p0_i)  /  prod_i p0_i^n_i

is a nonnegative martingale under H0 with mean 1, so by Ville's inequality
P(BF ever >= 1 / alpha) <= alpha: checking after every exposure does not inflate false alarms.
The concentration c sets which deviations are found fastest: c = CONCENTRATION = 100 puts the
prior standard deviation of a 50/50 share at 5 points. Simulated at alpha 0.05 (tests/unit/
test_srm.py): an 80/20 split of a 50/50 experiment alarms after ~50 exposures (median), 45/55
after ~700, 48/52 after ~5,000; c = 1000 needed 140, 1,100 and 5,000.

On top of the evidence the alarm needs a practical deviation: some variation's observed share
must be at least `min_deviation` (absolute) away from its configured share, so ten million
exposures do not alarm on a 0.1 point wobble. Extra conditions can only remove alarms, so the
false-alarm bound stays alpha.

The alarm is latched: once an experiment enters the alarm state it stays there (the evidence
said the assignment was broken at some point; a later balance does not undo that) until its
configured split changes, which starts the counts afresh (`observe`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import orjson
from numpy.typing import ArrayLike, NDArray
from scipy.special import gammaln, xlogy

CONCENTRATION = 100.0
ALERT_KIND = "sample_ratio_mismatch"


def log_bayes_factor(
    counts: ArrayLike, shares: ArrayLike, concentration: float = CONCENTRATION
) -> NDArray[np.float64]:
    """ln BF of the counts (last axis: variations; leading axes: many count vectors at once)."""
    n = np.asarray(counts, dtype=np.float64)
    p = np.asarray(shares, dtype=np.float64)
    p = p / p.sum()
    a = concentration * p
    total = n.sum(axis=-1)
    log_mixture = (
        gammaln(concentration)
        - gammaln(concentration + total)
        + (gammaln(a + n) - gammaln(a)).sum(axis=-1)
    )
    log_null = xlogy(n, p).sum(axis=-1)
    return np.asarray(log_mixture - log_null, dtype=np.float64)


def max_deviation(counts: Sequence[int], shares: Sequence[float]) -> float:
    """The largest |observed share - configured share| over the variations (0 without data)."""
    total, weight = sum(counts), sum(shares)
    if not total:
        return 0.0
    return max(abs(n / total - w / weight) for n, w in zip(counts, shares, strict=True))


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    log_bayes_factor: float
    deviation: float
    alarm: bool


def check(
    counts: Sequence[int],
    shares: Sequence[float],
    alpha: float,
    min_deviation: float,
    concentration: float = CONCENTRATION,
) -> Verdict:
    """Alarm when BF >= 1 / alpha and some share is off by at least `min_deviation`."""
    if len(counts) < 2 or not sum(counts):
        return Verdict(log_bayes_factor=0.0, deviation=0.0, alarm=False)
    log_bf = float(log_bayes_factor(counts, shares, concentration))
    deviation = max_deviation(counts, shares)
    alarm = log_bf >= -math.log(alpha) and deviation >= min_deviation
    return Verdict(log_bayes_factor=log_bf, deviation=deviation, alarm=alarm)


@dataclass(frozen=True, slots=True, kw_only=True)
class State:
    """One experiment's first-exposure counts, as stored in the worker's `srm` table."""

    counts: dict[str, int]  # variation -> first exposures (unconfigured variations too)
    weights: dict[str, float]  # the split the counts are tested against ({}: not known yet)
    offset: int  # offset of the last exposure counted, in the exposures partition (replays)
    alarm: bool = False

    def observed(self) -> tuple[list[int], list[float]]:
        """Counts and shares of the configured variations, in variation order."""
        names = sorted(self.weights)
        return [self.counts.get(v, 0) for v in names], [self.weights[v] for v in names]


def encode(state: State) -> bytes:
    return orjson.dumps(
        {"n": state.counts, "w": state.weights, "o": state.offset, "a": state.alarm}
    )


def decode(data: bytes | None) -> State | None:
    if data is None:
        return None
    obj = orjson.loads(data)
    return State(counts=obj["n"], weights=obj["w"], offset=obj["o"], alarm=obj["a"])


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    state: State
    verdict: Verdict | None  # None: no configured split to test against
    raised: bool  # the experiment entered the alarm state with this exposure
    reset: bool  # the configured split changed: the counts started again


def observe(
    state: State | None,
    variations: str | Sequence[str],
    offset: int,
    weights: Mapping[str, float] | None,
    *,
    alpha: float,
    min_deviation: float,
) -> Step:
    """Count first exposures (one variation each) and test once. `weights`: the configured split
    (None: unknown).

    Counts made before the split was known are kept and tested against it once known (the
    registry lags the first exposures by a refresh at most); a changed split starts afresh.
    Testing after a group of exposures rather than after each keeps the false-alarm bound: the
    Bayes factor is a martingale, and Ville's inequality holds at any stopping time.
    """
    counts = dict(state.counts) if state else {}
    known = dict(state.weights) if state else {}
    alarm = state.alarm if state else False
    reset = False
    if weights:
        wanted = {str(k): float(v) for k, v in weights.items()}
        if known and known != wanted:
            counts, alarm, reset = {}, False, True
        known = wanted
    for variation in [variations] if isinstance(variations, str) else variations:
        counts[variation] = counts.get(variation, 0) + 1
    new = State(counts=counts, weights=known, offset=offset, alarm=alarm)
    if not known:
        return Step(state=new, verdict=None, raised=False, reset=reset)
    verdict = check(*new.observed(), alpha=alpha, min_deviation=min_deviation)
    raised = verdict.alarm and not alarm
    if raised:
        new = State(counts=counts, weights=known, offset=offset, alarm=True)
    return Step(state=new, verdict=verdict, raised=raised, reset=reset)


class Table(Protocol):
    """What `count` needs of the `srm` table: a dict, or the worker's recording store."""

    def get(self, key: bytes, /) -> bytes | None: ...

    def __setitem__(self, key: bytes, value: bytes, /) -> None: ...


def count(
    table: Table,
    tenant: str,
    experiment: str,
    seen: Sequence[tuple[str, str]],
    offset: int,
    weights: Mapping[str, float] | None,
    *,
    alpha: float,
    min_deviation: float,
) -> tuple[Step, int] | None:
    """Count the exposures `seen` ((visitor, variation), in order) of one `hits.exposures` record
    read at `offset` into `table` (the worker's `srm` table); return the step and how many were
    first exposures, or None when none was or the record was counted before (redelivered).

    The counts key (with the offset) is written before the visitor keys: if only some writes
    survived a crash, the redelivered record is recognised by its offset and only the missing
    visitor keys are written; if none did, it is counted now. Either way every first exposure
    counts once.
    """
    counts_key = f"c|{tenant}|{experiment}".encode()
    prefix = f"v|{tenant}|{experiment}|"
    state = decode(table.get(counts_key))
    if state is not None and offset <= state.offset:  # redelivered: counted already
        for visitor, variation in seen:
            key = (prefix + visitor).encode()
            if table.get(key) is None:
                table[key] = variation.encode()
        return None
    firsts: dict[bytes, str] = {}
    for visitor, variation in seen:
        key = (prefix + visitor).encode()
        if key not in firsts and table.get(key) is None:
            firsts[key] = variation
    if not firsts:
        return None
    step = observe(
        state, list(firsts.values()), offset, weights, alpha=alpha, min_deviation=min_deviation
    )
    table[counts_key] = encode(step.state)
    for key, variation in firsts.items():
        table[key] = variation.encode()
    return step, len(firsts)


def alert(
    tenant: str,
    experiment: str,
    state: State,
    verdict: Verdict,
    *,
    alpha: float,
    min_deviation: float,
    at_ms: int,
) -> dict[str, Any]:
    """The record sent to the alerts topic when an experiment enters the alarm state."""
    counts, shares = state.observed()
    total, weight = sum(counts), sum(shares)
    return {
        "kind": ALERT_KIND,
        "state": "alarm",
        "tenant": tenant,
        "experiment": experiment,
        "variations": sorted(state.weights),
        "counts": counts,
        "expected_shares": [w / weight for w in shares],
        "observed_shares": [n / total for n in counts],
        "exposures": total,
        "log_bayes_factor": verdict.log_bayes_factor,
        "deviation": verdict.deviation,
        "alpha": alpha,
        "min_deviation": min_deviation,
        "at_ms": at_ms,
    }
