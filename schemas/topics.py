"""The hits topics: names, partition counts and configs, created by `deploy.topics`.

`hits.raw` and the worker's tables are co-partitioned: the hit read from raw partition p is decided
with the state of partition p of every table, and its rows carry (p, raw offset), which is what
lets the sink recognise a replayed hit (see `pipeline.progress`). `hits.dlq` keeps the dead
letters of partition p in partition p.

Retention and `min.insync.replicas` come from the settings (`topic_configs`); the replication
factor too (`deploy.topics`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

RAW = "hits.raw"
DLQ = "hits.dlq"
TRIGGERS = "hits.triggers"
ALERTS = "hits.alerts"
EXPOSURES = "hits.exposures"

HOUR_MS = 3600 * 1000
DAY_MS = 24 * HOUR_MS


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

NAMES = tuple(spec.name for spec in TOPICS)
_RETENTION = re.compile(r"([\w.]+)=(\d+)([hd])")


def parse_retention(text: str) -> dict[str, int]:
    """`hits.raw=30d,hits.dlq=60d` -> topic name -> retention in ms; ValueError if malformed."""
    found: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        match = _RETENTION.fullmatch(item)
        if match is None:
            raise ValueError(f"{item!r} is not topic=<n>h or topic=<n>d")
        name, number, unit = match.groups()
        if name not in NAMES:
            raise ValueError(f"{name!r} is not a hits topic ({', '.join(NAMES)})")
        if int(number) < 1:
            raise ValueError(f"{item!r}: retention must be at least 1 {unit}")
        found[name] = int(number) * (DAY_MS if unit == "d" else HOUR_MS)
    return found


def topic_configs(
    *, retention: str = "", min_insync_replicas: int = 1
) -> dict[str, dict[str, str]]:
    """Each topic's configs at creation: the table above, retention overrides, min ISR."""
    overrides = parse_retention(retention)
    configs = {}
    for spec in TOPICS:
        config = {**spec.config, "min.insync.replicas": str(min_insync_replicas)}
        if spec.name in overrides:
            config["retention.ms"] = str(overrides[spec.name])
        configs[spec.name] = config
    return configs
