"""The gateway's publisher without Kafka, for the app's unit tests (Kafka: tests/integration)."""

from __future__ import annotations

from gateway.publisher import KafkaPublisher, PublishError
from schemas.settings import Settings, load_settings


class RecordingPublisher(KafkaPublisher):
    """Records what it is given, in order; with `fail`, refuses it as a broker that is down."""

    def __init__(self, settings: Settings | None = None, fail: bool = False) -> None:
        super().__init__(settings or load_settings({}))
        self.fail = fail
        self.sent: list[tuple[str, bytes, bytes | None]] = []

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.started = False

    async def publish(self, topic: str, value: bytes, key: bytes | None) -> None:
        if self.fail:
            raise PublishError("broker down")
        self.sent.append((topic, value, key))

    async def publish_many(self, records: list[tuple[str, bytes, bytes | None]]) -> None:
        for record in records:
            await self.publish(*record)
