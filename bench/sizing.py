"""The operator guide's sizing table, computed from measured per-process figures.

    python -m bench.sizing    # prints the table of docs/operator-guide.md ("Sizing")

`MEASURED` holds the figures of the README's benchmark table (`make bench`: `gateway`,
`pipeline`, `sink`); when a bench is run again, update them here and paste the output over the
table (tests/unit/test_sizing.py checks that the guide shows exactly this).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

TARGETS = (1_000, 10_000, 100_000)  # hits per second
HEADROOM = 0.5  # run each process at half its measured ceiling
PARTITION_STEP = 12  # partitions in multiples of 12: even over 1, 2, 3, 4, 6 or 12 workers/shards
EVENTS_PER_HIT = 1.0  # an Optimizely beacon or a Monetate event: one canonical event
ROWS_PER_EVENT = 2.0  # its events row plus an impressions or conversions row


@dataclass(frozen=True, slots=True, kw_only=True)
class Figures:
    """Per-process ceilings measured by the benches, where and when."""

    gateway_hits_per_s: float
    worker_events_per_s: float
    sink_rows_per_s: float
    measured: str


MEASURED = Figures(
    gateway_hits_per_s=6_394,
    worker_events_per_s=1_187,
    sink_rows_per_s=98_102,
    measured="2026-12-07 (sink 2026-11-23), 2 cores (Intel Xeon), 24 GiB RAM, shared",
)


@dataclass(frozen=True, slots=True)
class Plan:
    hits_per_s: int
    gateways: int
    workers: int
    partitions: int
    sinks: int


def plan(figures: Figures, hits_per_s: int) -> Plan:
    """Processes and partitions for `hits_per_s` at `HEADROOM` of each measured ceiling."""
    gateways = math.ceil(hits_per_s / (figures.gateway_hits_per_s * HEADROOM)) + 1  # a spare
    events = hits_per_s * EVENTS_PER_HIT
    workers = math.ceil(events / (figures.worker_events_per_s * HEADROOM))
    sinks = math.ceil(events * ROWS_PER_EVENT / (figures.sink_rows_per_s * HEADROOM))
    partitions = PARTITION_STEP * math.ceil(2 * max(workers, sinks) / PARTITION_STEP)
    return Plan(hits_per_s, gateways, workers, partitions, sinks)


def table(figures: Figures = MEASURED) -> str:
    rows = [
        "| hits/s | gateway processes | workers | `HITS_PARTITIONS` | sinks needed |",
        "|---|---|---|---|---|",
    ]
    for target in TARGETS:
        p = plan(figures, target)
        rows.append(f"| {target:,} | {p.gateways} | {p.workers} | {p.partitions} | {p.sinks} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(table())
