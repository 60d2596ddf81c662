"""Multiple-testing corrections of a family of p-values (variations x goals), pure.

* holm: Holm-Bonferroni step-down; controls the family-wise error rate (any false positive).
* bh: Benjamini-Hochberg step-up; controls the false discovery rate (the share of false
  positives among the rejections), valid for independent or positively dependent tests.
* none: the p-values as they are.

Adjusted p-values (reject where adjusted p < alpha), as statsmodels' `multipletests` returns
them. NaN p-values (not enough data) are left out of the family and stay NaN.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

METHODS = ("holm", "bh", "none")


def holm(p_values: Sequence[float]) -> list[float]:
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i], reverse=True)
    adjusted = [0.0] * m
    running = 1.0
    for k, i in enumerate(order):  # k = 0 is the largest p, rank m
        running = min(running, m * p_values[i] / (m - k))
        adjusted[i] = running
    return adjusted


def adjust(p_values: Sequence[float], method: str) -> list[float]:
    """Adjusted p-values in the input's order; NaN in, NaN out (and not counted)."""
    if method not in METHODS:
        raise ValueError(f"correction {method!r}: must be one of {', '.join(METHODS)}")
    kept = [i for i, p in enumerate(p_values) if not math.isnan(p)]
    values = [p_values[i] for i in kept]
    done = (
        holm(values)
        if method == "holm"
        else benjamini_hochberg(values)
        if method == "bh"
        else values
    )
    out = [math.nan] * len(p_values)
    for i, p in zip(kept, done, strict=True):
        out[i] = p
    return out
