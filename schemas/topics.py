"""The hits topics: names, partition counts and configs, created by `deploy.topics`.

`hits.raw`, `hits.events`, `hits.rows` and `hits.dlq` are co-partitioned: a hit read from raw
partition p travels through partition p of every later topic, which is what lets the sink recognise
a replayed hit by its raw offset (see `pipeline.progress`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

RAW = "hits.raw"
EVENTS = "hits.events"
ROWS = "hits.rows"
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
        EVENTS,
        True,
        {"retention.ms": str(7 * DAY_MS)},
        "Canonical events, validated, keyed by tenant:visitor.",
    ),
    TopicSpec(
        ROWS,
        True,
        {"retention.ms": str(2 * DAY_MS)},
        "Per-event bundles of ClickHouse rows, after dedup and derivation (sink input).",
    ),
    TopicSpec(
        DLQ,
        True,
        {"retention.ms": str(30 * DAY_MS)},
        "Dead letters: reason, stage and the raw hit.",
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
