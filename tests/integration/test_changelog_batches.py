"""A batch's table changes reach the changelog on the real broker as Faust would write them.

Same partition, same order, tombstones as null values, and the persisted offset recorded is the
offset of the partition's last record (where Faust's recovery starts reading), also when a
partition's changes fill more than one record batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from faust.exceptions import PartitionsMismatch

from pipeline.changelog_batches import ChangelogSender, Changes, changelog_producer
from schemas.settings import Settings

pytestmark = pytest.mark.integration


@dataclass
class Store:
    persisted: dict[int, int] = field(default_factory=dict)

    def set_persisted_offset(self, tp: Any, offset: int) -> None:
        self.persisted[tp.partition] = offset


async def _records(settings: Settings, topic: str, partition: int) -> list[tuple[bytes, Any, int]]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False
    )
    await consumer.start()
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        found: list[tuple[bytes, Any, int]] = []
        while len(found) < end:
            batch = await consumer.getmany(tp, timeout_ms=2000)
            found += [(r.key, r.value, r.offset) for r in batch.get(tp, [])]
        return found
    finally:
        await consumer.stop()


async def _create(settings: Settings, topic: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(topic, num_partitions=partitions, replication_factor=1)]
        )
    finally:
        await admin.close()


def _sender(settings: Settings, topic: str, partitions: int) -> tuple[ChangelogSender, Store]:
    """A sender for one table `seen` of `partitions` partitions whose changelog is `topic`."""
    store = Store()
    table = SimpleNamespace(
        changelog_topic=SimpleNamespace(get_topic_name=lambda: topic),
        data=store,
        partitions=partitions,
    )
    return ChangelogSender({"seen": table}, lambda: changelog_producer(settings)), store


async def test_changes_land_in_order_per_partition_with_the_persisted_offsets(
    hits_settings: Settings,
) -> None:
    topic = hits_settings.topic("seen-changelog-test")
    await _create(hits_settings, topic, 2)
    sender, store = _sender(hits_settings, topic, 2)
    try:
        first = Changes()
        first.add("seen", 0, b"a", b"1")
        first.add("seen", 0, b"b", b"2")
        first.add("seen", 0, b"a", None)  # a deletion: a tombstone after the write it undoes
        big = b"x" * 2048
        for i in range(600):  # ~1.2 MB: more than one 512 KiB record batch
            first.add("seen", 1, f"k{i}".encode(), big)
        await sender.send(first)
        assert store.persisted == {0: 2, 1: 599}
        second = Changes()
        second.add("seen", 0, b"c", b"3")
        await sender.send(second)
        assert store.persisted == {0: 3, 1: 599}
    finally:
        await sender.stop()
    zero = await _records(hits_settings, topic, 0)
    assert zero == [(b"a", b"1", 0), (b"b", b"2", 1), (b"a", None, 2), (b"c", b"3", 3)]
    one = await _records(hits_settings, topic, 1)
    assert [(key, offset) for key, _, offset in one] == [(f"k{i}".encode(), i) for i in range(600)]
    assert all(value == big for _, value, _ in one)


async def test_a_changelog_with_other_partitions_than_its_table_is_refused(
    hits_settings: Settings,
) -> None:
    topic = hits_settings.topic("short-changelog-test")
    await _create(hits_settings, topic, 1)
    sender, store = _sender(hits_settings, topic, 4)
    changes = Changes()
    changes.add("seen", 0, b"a", b"1")  # partition 0 exists: still refused, before any send
    try:
        with pytest.raises(PartitionsMismatch, match="has 1 partitions where its table has 4"):
            await sender.send(changes)
    finally:
        await sender.stop()
    assert store.persisted == {}
