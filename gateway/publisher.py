"""Publishing to Kafka with a deadline: acks=all, idempotence on, every send bounded in time.

aiokafka never expires a batch in idempotent mode, so without the deadline a broker outage would
hang the request that waits for it.

After a failed publish the producer is replaced before the next one. aiokafka 0.14 expires a
batch whose partition has no leader (a broker outage) in `MessageAccumulator.drain_by_nodes`,
and popping it there assigns the batch its idempotent sequence numbers before failing it: those
numbers are never sent, so the broker refuses every later batch of that producer with
`OutOfOrderSequenceNumber`, for good (found by the chaos suite: the spool never drained after a
broker restart). A new producer gets a new producer id and starts its sequences at 0. A batch of
the old one may still land after the spool's copy: the pipeline's hit-id dedup stores it once.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from deploy.kafka_security import client_options
from gateway import metrics
from gateway.deadlines import Deadlines
from gateway.partitioner import partition
from schemas.settings import Settings

log = logging.getLogger(__name__)


class PublishError(RuntimeError):
    """The hit was not acknowledged by Kafka within the deadline (retriable)."""


class KafkaPublisher:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._timeout = settings.publish_timeout_s
        self._producer: AIOKafkaProducer | None = None
        self._renew = False  # a publish failed: replace the producer before the next one
        self._renewing = asyncio.Lock()
        self._deadlines = Deadlines(self._timeout)
        self.started = False

    async def start(self) -> None:
        """Connect (aiokafka binds the producer to the running loop, so it is made here)."""
        settings = self._settings
        self._producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap,
            acks="all",
            enable_idempotence=True,
            linger_ms=settings.producer_linger_ms,
            compression_type="lz4",
            partitioner=partition,
            max_batch_size=256 * 1024,
            request_timeout_ms=max(int(settings.publish_timeout_s * 1000), 1000),
            client_id=f"hitstream-gateway-{settings.app_id}",
            **client_options(settings),
        )
        await self._producer.start()
        self.started = True

    async def _usable(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise PublishError("the publisher is not started")
        if self._renew:
            async with self._renewing:
                await self._replace()
        if self._producer is None:
            raise PublishError("the publisher is not started")
        return self._producer

    async def _replace(self) -> None:
        if self._renew and self._producer is not None:
            old = self._producer
            try:
                async with asyncio.timeout(self._timeout):
                    await old.stop()
            except (TimeoutError, KafkaError) as exc:
                log.warning("abandoning a Kafka producer that did not stop in time (%r)", exc)
            try:
                await self.start()
            except KafkaError as exc:
                raise PublishError(f"cannot reconnect to Kafka: {exc!r}") from exc
            self._renew = False
            log.info("Kafka producer replaced after a failed publish")

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
        self.started = False

    async def publish_many(self, records: list[tuple[str, bytes, bytes | None]]) -> None:
        """Publish in order and return once Kafka has them all; raise `PublishError` else."""
        producer = await self._usable()
        try:
            async with asyncio.timeout(self._timeout):
                futures = [await producer.send(t, v, key=k or None) for t, v, k in records]
                await asyncio.gather(*futures)
        except (TimeoutError, KafkaError) as exc:
            self._renew = True
            raise PublishError(f"not acknowledged within {self._timeout} s: {exc!r}") from exc

    async def publish(self, topic: str, value: bytes, key: bytes | None) -> None:
        """Return once Kafka has the record (all in-sync replicas); raise `PublishError` else.

        The hot path: one shared deadline per window of publishes (`gateway.deadlines`) instead
        of an `asyncio.timeout` each, and aiokafka's message future awaited directly."""
        producer = self._producer
        if producer is None or self._renew:
            producer = await self._usable()
        waiter = self._deadlines.join()
        try:
            await (await producer.send(topic, value, key=key or None))
        except asyncio.CancelledError:
            if waiter.leave():
                self._failed(topic)
                raise PublishError(f"not acknowledged within {self._timeout} s") from None
            raise
        except KafkaError as exc:
            waiter.leave()
            self._failed(topic)
            raise PublishError(f"not acknowledged within {self._timeout} s: {exc!r}") from exc
        waiter.leave()

    def _failed(self, topic: str) -> None:
        self._renew = True
        metrics.PUBLISH_FAILURES.labels(topic.rsplit(".", 1)[-1]).inc()
