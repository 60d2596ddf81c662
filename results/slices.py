"""Results by slice (a dimension, the device type or the browser family), pure: the top N values
by visitors plus "other", each with its own sample-ratio check and each variation's conversion
rate versus the control's in that slice, p-values adjusted across slices x variations x goals.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from results import corrections, stats

OTHER = "other"


@dataclass(frozen=True, slots=True, kw_only=True)
class SliceCounts:
    visitors: dict[str, int]  # variation -> exposed visitors in the slice
    converters: dict[str, dict[str, int]]  # goal -> variation -> converters


def top(counts: dict[str, SliceCounts], n: int) -> dict[str, SliceCounts]:
    """The n values with the most visitors (ties by value), the rest summed into "other"."""
    ranked = sorted(counts, key=lambda v: (-sum(counts[v].visitors.values()), v))
    kept = {v: counts[v] for v in ranked[:n]}
    rest = [counts[v] for v in ranked[n:]]
    if rest:
        visitors: dict[str, int] = defaultdict(int)
        converters: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for c in rest:
            for var, k in c.visitors.items():
                visitors[var] += k
            for goal, per in c.converters.items():
                for var, k in per.items():
                    converters[goal][var] += k
        other = SliceCounts(
            visitors=dict(visitors), converters={g: dict(p) for g, p in converters.items()}
        )
        kept[OTHER if OTHER not in kept else f"{OTHER} ({len(rest)} values)"] = other
    return kept


def analyse(
    counts: dict[str, SliceCounts], *, by: str, n: int, variations: list[str], control: str,
    weights: dict[str, float], goals: list[str], alpha: float, correction: str,
) -> dict[str, Any]:  # fmt: skip
    """The document's `slices` part."""
    planned = [v for v in variations if v in weights] if weights else variations
    plan = [weights.get(v, 1.0) for v in planned]
    out: list[dict[str, Any]] = []
    per_goal: dict[str, list[dict[str, Any]]]
    for value, c in top(counts, n).items():
        try:
            srm: dict[str, Any] = dataclasses.asdict(
                stats.sample_ratio([c.visitors.get(v, 0) for v in planned], plan)
            )
        except stats.InvalidAggregates as exc:
            srm = {"p_value": float("nan"), "mismatch": False, "error": str(exc)}
        per_goal = {}
        for goal in goals:
            conv = c.converters.get(goal, {})
            rows = []
            for v in variations:
                row: dict[str, Any] = {"variation": v, "visitors": c.visitors.get(v, 0),
                                       "converters": conv.get(v, 0)}  # fmt: skip
                row["rate"] = row["converters"] / row["visitors"] if row["visitors"] else None
                if v != control:
                    r = stats.compare_rates(
                        conv.get(control, 0), c.visitors.get(control, 0), row["converters"],
                        row["visitors"], alpha=alpha,
                    )  # fmt: skip
                    row |= {"relative": r.relative, "p_value": r.p_value}
                rows.append(row)
            per_goal[goal] = rows
        visitors = {v: c.visitors.get(v, 0) for v in variations}
        out.append({"value": value, "visitors": visitors, "srm": srm, "goals": per_goal})
    tested = [row for s in out for rows in s["goals"].values() for row in rows if "p_value" in row]
    adjusted = corrections.adjust([row["p_value"] for row in tested], correction)
    for row, p in zip(tested, adjusted, strict=True):
        row["p_adjusted"] = p
    return {"by": by, "top": n, "values": out}
