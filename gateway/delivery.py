"""Kafka first, the spool when Kafka cannot take a hit in time; a drainer brings spooled hits back.

While anything is spooled, new hits are spooled behind it, so hits reach Kafka in the order they
were accepted. A publish that timed out may still land later (an idempotent aiokafka batch is
never expired), so a spooled hit can reach `hits.raw` twice with the same hit id: the pipeline's
hit-id dedup owns that case.
"""

from __future__ import annotations

import asyncio
import logging

from gateway import metrics
from gateway.publisher import KafkaPublisher, PublishError
from gateway.spool import Record, Spool

log = logging.getLogger(__name__)
DRAIN_BATCH = 500


class Delivery:
    def __init__(self, publisher: KafkaPublisher, spool: Spool) -> None:
        self.publisher = publisher
        self.spool = spool
        self.spooling = spool.records > 0
        self._wake = asyncio.Event()
        metrics.SPOOL_DEPTH.set(spool.records)

    async def deliver(self, topic: str, value: bytes, key: bytes | None) -> str:
        """Return "kafka" or "spool" once the hit is durable; raise `SpoolFull` when neither."""
        if not self.spooling:
            try:
                await self.publisher.publish(topic, value, key)
                return "kafka"
            except PublishError as exc:
                log.warning("Kafka did not take a hit in time (%s): spooling", exc)
                self.spooling = True
        await self.spool.append(Record(topic, key or b"", value))
        metrics.SPOOL_DEPTH.set(self.spool.records)
        self._wake.set()
        return "spool"

    async def drain_forever(self) -> None:
        """Publish spooled hits oldest first; back off while Kafka is still away."""
        delay = 0.2
        while True:
            if self.spool.records == 0:
                self.spooling = False
                self._wake.clear()
                await self._wake.wait()
                continue
            batch = await asyncio.to_thread(self.spool.peek, DRAIN_BATCH)
            if not batch:
                self.spool.records = 0
                continue
            try:
                await self.publisher.publish_many([(r.topic, r.value, r.key) for _, _, r in batch])
            except PublishError as exc:
                log.warning("spool drain waiting for Kafka (%s)", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            delay = 0.2
            segment, offset, _ = batch[-1]
            await asyncio.to_thread(self.spool.acknowledge, segment, offset, len(batch))
            metrics.SPOOL_DEPTH.set(self.spool.records)
            metrics.SPOOL_DRAINED.inc(len(batch))
