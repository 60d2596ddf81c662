"""The hits topics: names, partition counts and configs, created by `deploy.topics`.

`hits.raw` and the worker's tables are co-partitioned: the hit read from raw partition p is decided
with the state of partition p of every table, and its rows carry (p, raw offset), which is what
lets the sink recognise a replayed hit (see `pipeline.progress`). `hits.dlq` keeps the dead
letters of partition p in partition p.
"""

from __future__ import annotations

from dataclasses import dataclass, field

RAW = "hits.raw"
DLQ = "hits.dlq"
TRIGGERS = "hits.triggers"
ALERTS = "hits.alerts"
EXPOSURES = "hits.exposures"

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    co_partitioned: bool
    config: dict[str, str] = field(default_factory=dict)
    doc: str = ""


TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(
        RAW,
        True,
        {"retention.ms": str(14 * DAY_MS), "compression.type": "producer"},
        "Every accepted hit, byte-faithful (the replay source). Gateway and direct producers.",
    ),
    TopicSpec(
        DLQ,
        True,
        {"retention.ms": str(30 * DAY_MS)},
        "Dead letters: reason, stage and the raw hit (history: the worker stores them itself).",
    ),
    TopicSpec(
        TRIGGERS,
        False,
        {"retention.ms": str(7 * DAY_MS)},
        "Non-silent Octeth events for downstream journeys.",
    ),
    TopicSpec(
        EXPOSURES,
        True,
        {"retention.ms": str(2 * DAY_MS)},
        "Impressions re-keyed by tenant|experiment for the live sample-ratio alarm (its table).",
    ),
    TopicSpec(
        ALERTS,
        False,
        {"retention.ms": str(30 * DAY_MS)},
        "Alerts raised by the pipeline (sample-ratio mismatch).",
    ),
)
