"""A table's changelog written a batch at a time, for the hot `seen` table.

Faust sends one changelog record per table write through its producer buffer: measured in the
pipeline bench (no SRM traffic), about 245 us of worker CPU per write, a third of all the work a
hit costs. The processing stage therefore writes `seen` values into the table's RocksDB store
alone while it decides (`table.data`, inside the event's iteration, so in the event's partition)
and keeps them with the batch; `flush` hands them here after ClickHouse confirmed the batch and
before the batch's offsets are acked. Each changelog partition gets one record batch, built with
aiokafka's own batch builder and sent with `acks=all`; then the store's persisted offset (Faust's
public `set_persisted_offset`) moves past it, as Faust's own sends would have done, so a restart
does not read those records again.

The records are the ones Faust would have written (same topic, partition, key and value), so
Faust's recovery, `pipeline/restore.py` and another worker taking the partition over read them as
usual. A crash before the flush leaves values in the local store that the changelog lacks: the
batch's offsets were not committed either, so its messages are decided again, and the decisions
are the same whether the first decision's value is found (same offset: the first) or not
(`pipeline.seen`). Expiry's deletions of `seen` keys go through here too (a None value is a
tombstone), so one producer orders every record of the changelog.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.structs import TopicPartition

from deploy.kafka_security import client_options
from schemas.settings import Settings

Writes = dict[int, dict[bytes, bytes | None]]  # partition -> key -> value (None: deleted)


class ChangelogWriter:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._producer: AIOKafkaProducer | None = None

    async def _started(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = AIOKafkaProducer(
                bootstrap_servers=self._settings.kafka_bootstrap,
                acks="all",
                enable_idempotence=True,
                max_batch_size=1 << 20,
                **client_options(self._settings),
            )
            await producer.start()
            self._producer = producer
        return self._producer

    async def write(self, table: Any, writes: Writes) -> None:
        """Send `writes` to `table`'s changelog, a record batch per partition; return once Kafka
        acknowledged them all, and record the offsets in the table's store."""
        if not writes:
            return
        producer = await self._started()
        topic = table.changelog_topic.get_topic_name()
        sent: list[tuple[int, int, Any]] = []  # partition, records, delivery future
        for partition, values in sorted(writes.items()):
            if not values:
                continue  # aiokafka resolves an empty batch to None, with no offset
            batch, count = producer.create_batch(), 0
            for key, value in values.items():
                if batch.append(key=key, value=value, timestamp=None) is None:  # batch full
                    future = await producer.send_batch(batch, topic, partition=partition)
                    sent.append((partition, count, future))
                    batch, count = producer.create_batch(), 0
                    batch.append(key=key, value=value, timestamp=None)
                count += 1
            future = await producer.send_batch(batch, topic, partition=partition)
            sent.append((partition, count, future))
        last: dict[int, int] = defaultdict(lambda: -1)
        for partition, count, future in sent:
            metadata = await future
            last[partition] = max(last[partition], metadata.offset + count - 1)
        for partition, offset in last.items():
            table.data.set_persisted_offset(TopicPartition(topic, partition), offset)

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
