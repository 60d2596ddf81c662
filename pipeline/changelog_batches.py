"""The processing stage's table changes, sent to the tables' changelogs a batch at a time.

    decide --updates--> the table's RocksDB store, at once (the next decision reads it)
                   \\--> `Changes` of the batch --flush: `ChangelogSender.send`--> changelogs
                         (one Kafka record batch per changelog partition; awaited)
                   --then--> the persisted offsets, then the batch's raw messages are acked

Faust sends each table write as its own record (a buffer, a future, a publish and a callback per
write, and a RocksDB write of the persisted offset per record): at one write per hit that was a
fifth of the worker's CPU. The stage writes its changes to the stores itself (`table.data`, Faust's
public handle on a table's store) and sends them here, in the same topics, keys, values and
partitions as Faust would (a table is co-partitioned with `hits.raw`, so a change goes to the raw
message's partition; a deletion is a tombstone), so Faust's recovery, our bulk restore
(`pipeline.restore`) and compaction read them unchanged.

The guarantee is Faust's own: Faust flushes its producer before it commits offsets, and here a
batch's changelog records are acknowledged by Kafka (acks=all) before its raw messages are acked.
As with Faust, a store can be ahead of its changelog after a crash (written, not yet sent); the
redelivered messages then decide the same from the local store (`pipeline.seen`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer
from faust.exceptions import PartitionsMismatch
from faust.types import TP

from deploy.kafka_security import client_options
from schemas.settings import Settings

SRM = "srm"  # the live SRM alarm's table (`pipeline.alarm`); the stage's are `pipeline.decide`'s
Change = tuple[bytes, bytes | None]  # key, value (None: a deletion)


@dataclass(slots=True)
class Changes:
    """A batch's table changes, in write order, per (table name, partition)."""

    by_partition: dict[tuple[str, int], list[Change]] = field(default_factory=dict)

    def add(self, table: str, partition: int, key: bytes, value: bytes | None) -> None:
        self.by_partition.setdefault((table, partition), []).append((key, value))

    def __len__(self) -> int:
        return sum(len(changes) for changes in self.by_partition.values())


class Recording:
    """A store whose writes are also kept for the changelog (`ChangelogSender.recording`)."""

    __slots__ = ("_changes", "_name", "_partition", "_store")

    def __init__(self, store: Any, name: str, partition: int, changes: Changes) -> None:
        self._store, self._name, self._partition, self._changes = store, name, partition, changes

    def get(self, key: bytes) -> bytes | None:
        value: bytes | None = self._store.get(key)
        return value

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._store[key] = value
        self._changes.add(self._name, self._partition, key, value)


def changelog_producer(settings: Settings) -> AIOKafkaProducer:
    """acks=all like Faust's producer; not idempotent (a record sent twice is the same change,
    and aiokafka's idempotent producer can wedge after an outage: `gateway.publisher`)."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        acks="all",
        max_batch_size=512 * 1024,
        client_id=f"hitstream-changelogs-{settings.app_id}",
        **client_options(settings),
    )


class ChangelogSender:
    """Sends `Changes` to the tables' changelog topics with its own aiokafka producer."""

    def __init__(self, tables: Mapping[str, Any], producer: Callable[[], AIOKafkaProducer]) -> None:
        self._tables = tables
        self._new_producer = producer
        self._producer: AIOKafkaProducer | None = None
        self._stopped = False
        self._checked: set[str] = set()  # changelog topics found with their table's partitions

    async def start(self) -> None:
        if self._stopped:  # a flush after the worker's shutdown began: its messages stay unacked
            raise RuntimeError("the changelog producer is stopped")
        if self._producer is None:
            producer = self._new_producer()
            await producer.start()
            self._producer = producer

    async def stop(self) -> None:
        self._stopped = True
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def check(self, *names: str) -> None:
        """Refuse (`PartitionsMismatch`) a changelog of these tables whose partition count is not
        its table's, before anything is written: an agent calls it as it starts."""
        await self.start()
        assert self._producer is not None
        for name in names:
            table = self._tables[name]
            await self._check(
                self._producer, table.changelog_topic.get_topic_name(), table.partitions
            )

    def recording(self, name: str, partition: int, changes: Changes) -> Recording:
        """Table `name`'s store for code that reads and writes a table as a mapping: its writes
        are also added to `changes` (one partition: the current event's)."""
        return Recording(self._tables[name].data, name, partition, changes)

    async def send(self, changes: Changes) -> None:
        """Append `changes` to the changelogs, wait for Kafka's acks, then record each changelog
        partition's last offset as its store's persisted offset (Faust's recovery starts there)."""
        if not changes.by_partition:
            return
        await self.start()
        producer = self._producer
        assert producer is not None
        sent: list[tuple[Any, TP, int, Any]] = []  # store, changelog partition, records, future
        for (name, partition), records in changes.by_partition.items():
            table = self._tables[name]
            tp = TP(table.changelog_topic.get_topic_name(), partition)
            await self._check(producer, tp.topic, table.partitions)
            batch, count = producer.create_batch(), 0
            for key, value in records:
                if batch.append(key=key, value=value, timestamp=None) is None:  # full
                    future = await producer.send_batch(batch, tp.topic, partition=partition)
                    sent.append((table.data, tp, count, future))
                    batch, count = producer.create_batch(), 0
                    if batch.append(key=key, value=value, timestamp=None) is None:
                        raise ValueError(f"a change of {name} is larger than a record batch")
                count += 1
            future = await producer.send_batch(batch, tp.topic, partition=partition)
            sent.append((table.data, tp, count, future))
        for store, tp, count, future in sent:
            written = await future
            store.set_persisted_offset(tp, written.offset + count - 1)

    async def _check(self, producer: AIOKafkaProducer, topic: str, partitions: int) -> None:
        """A changelog with another partition count than its table would put changes where no
        restore looks for them (Faust's own check, which its per-write path made)."""
        if topic in self._checked:
            return
        found = len(await producer.partitions_for(topic))
        if found != partitions:
            raise PartitionsMismatch(
                f"the changelog topic {topic} has {found} partitions where its table has "
                f"{partitions} (co-partitioned with its source topic): recreate the changelog"
            )
        self._checked.add(topic)
