"""The gateway's publisher replaces its Kafka producer after a failed publish.

aiokafka 0.14 can burn idempotent sequence numbers while the broker is away (gateway/publisher.py);
the old producer then fails every later batch with OutOfOrderSequenceNumber, for good.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import pytest
from aiokafka.errors import KafkaConnectionError, OutOfOrderSequenceNumber

from gateway import publisher as module
from gateway.publisher import KafkaPublisher, PublishError
from schemas.settings import Settings


class FakeProducer:
    made: ClassVar[list[FakeProducer]] = []
    broken_from_start: ClassVar[set[int]] = set()  # indexes of producers whose start() fails

    def __init__(self, **_: Any) -> None:
        self.index = len(FakeProducer.made)
        FakeProducer.made.append(self)
        self.poisoned = self.index == 0  # the first one: every send refused
        self.stopped = False
        self.sent: list[bytes] = []

    async def start(self) -> None:
        if self.index in FakeProducer.broken_from_start:
            raise KafkaConnectionError("broker away")

    async def stop(self) -> None:
        self.stopped = True

    async def send(self, topic: str, value: bytes, key: bytes | None = None) -> Any:
        future = asyncio.get_running_loop().create_future()
        if self.poisoned:
            future.set_exception(OutOfOrderSequenceNumber())
        else:
            self.sent.append(value)
            future.set_result(None)
        return future

    async def send_and_wait(self, topic: str, value: bytes, key: bytes | None = None) -> None:
        await (await self.send(topic, value, key))


@pytest.fixture(autouse=True)
def fake_producer(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeProducer.made = []
    FakeProducer.broken_from_start = set()
    monkeypatch.setattr(module, "AIOKafkaProducer", FakeProducer)


async def test_a_failed_publish_replaces_the_producer_before_the_next() -> None:
    publisher = KafkaPublisher(Settings())
    await publisher.start()
    with pytest.raises(PublishError):
        await publisher.publish("t", b"1", b"k")
    await publisher.publish("t", b"2", b"k")
    await publisher.publish_many([("t", b"3", b"k")])
    first, second = FakeProducer.made
    assert first.stopped and not second.stopped
    assert second.sent == [b"2", b"3"]


async def test_a_replacement_that_cannot_connect_is_retried_next_time() -> None:
    FakeProducer.broken_from_start = {1}
    publisher = KafkaPublisher(Settings())
    await publisher.start()
    with pytest.raises(PublishError):
        await publisher.publish_many([("t", b"1", b"k")])
    with pytest.raises(PublishError, match="cannot reconnect"):
        await publisher.publish("t", b"2", b"k")
    await publisher.publish("t", b"3", b"k")
    assert [p.index for p in FakeProducer.made] == [0, 1, 2]
    assert FakeProducer.made[2].sent == [b"3"]


async def test_no_replacement_while_publishes_succeed() -> None:
    FakeProducer.made = [FakeProducer()]  # index 0 (poisoned) is used up: the next one is good
    publisher = KafkaPublisher(Settings())
    await publisher.start()
    for value in (b"1", b"2"):
        await publisher.publish("t", value, None)
    assert len(FakeProducer.made) == 2 and FakeProducer.made[1].sent == [b"1", b"2"]
