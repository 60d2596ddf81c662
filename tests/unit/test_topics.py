"""Topic creation from the settings: replication, min.insync.replicas, retention; the check."""

from __future__ import annotations

import pytest

from deploy.topics import Found, new_topics, problems
from schemas.settings import Settings, SettingsError, load_settings
from schemas.topics import DAY_MS, HOUR_MS, NAMES, TOPICS, parse_retention, topic_configs


def test_defaults_keep_the_table_and_set_min_insync_replicas() -> None:
    configs = topic_configs()
    for spec in TOPICS:
        assert configs[spec.name] == {**spec.config, "min.insync.replicas": "1"}


def test_retention_overrides_change_only_the_named_topics() -> None:
    configs = topic_configs(retention="hits.raw=30d, hits.dlq=36h", min_insync_replicas=2)
    assert configs["hits.raw"]["retention.ms"] == str(30 * DAY_MS)
    assert configs["hits.raw"]["compression.type"] == "producer"
    assert configs["hits.dlq"]["retention.ms"] == str(36 * HOUR_MS)
    assert configs["hits.alerts"]["retention.ms"] == str(30 * DAY_MS)  # the table's own
    assert {c["min.insync.replicas"] for c in configs.values()} == {"2"}


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("hits.raw=30", "not topic="),
        ("hits.raw=30w", "not topic="),
        ("hits.nope=3d", "not a hits topic"),
        ("hits.raw=0d", "at least 1"),
        ("hits.raw:3d", "not topic="),
    ],
)
def test_malformed_retention_is_refused_with_its_reason(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_retention(text)
    with pytest.raises(SettingsError, match="HITS_KAFKA_RETENTION"):
        load_settings({"HITS_KAFKA_RETENTION": text})


def test_min_insync_replicas_above_the_replication_factor_is_refused() -> None:
    with pytest.raises(SettingsError, match="must not exceed HITS_KAFKA_REPLICATION_FACTOR"):
        load_settings({"HITS_KAFKA_MIN_INSYNC_REPLICAS": "2"})
    chosen = load_settings(
        {"HITS_KAFKA_REPLICATION_FACTOR": "3", "HITS_KAFKA_MIN_INSYNC_REPLICAS": "2"}
    )
    assert (chosen.kafka_replication_factor, chosen.kafka_min_insync_replicas) == (3, 2)


def test_new_topics_carry_partitions_replication_and_configs() -> None:
    settings = Settings(
        topic_prefix="p.",
        partitions=12,
        kafka_replication_factor=3,
        kafka_min_insync_replicas=2,
        kafka_retention="hits.raw=21d",
    )
    created = {t.name: t for t in new_topics(settings, existing={"p.hits.dlq"})}
    assert set(created) == {f"p.{n}" for n in NAMES} - {"p.hits.dlq"}
    raw = created["p.hits.raw"]
    assert (raw.num_partitions, raw.replication_factor) == (12, 3)
    assert raw.topic_configs["retention.ms"] == str(21 * DAY_MS)
    assert raw.topic_configs["min.insync.replicas"] == "2"


def test_the_check_names_each_topic_that_differs_from_the_settings() -> None:
    settings = Settings(partitions=8, kafka_replication_factor=3, kafka_min_insync_replicas=2)
    found = {name: Found(8, 3) for name in NAMES}
    assert problems(settings, found) == []
    found["hits.raw"] = Found(16, 3)
    found["hits.alerts"] = Found(1, 3)  # not co-partitioned: any count is fine
    found["hits.dlq"] = Found(8, 1)
    del found["hits.exposures"]
    assert problems(settings, found) == [
        "hits.raw: 16 partitions, HITS_PARTITIONS is 8 (co-partitioned topics must match it)",
        "hits.dlq: 1 replicas, HITS_KAFKA_REPLICATION_FACTOR is 3",
        "hits.exposures: missing (run `hitstream topics`)",
    ]
