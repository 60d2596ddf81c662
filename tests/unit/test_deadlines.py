"""The publish deadline shared by a window of publishes (gateway/deadlines.py), and the publisher
that uses it, with a producer whose acknowledgements the test controls."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from gateway import publisher as module
from gateway.deadlines import Deadlines
from gateway.publisher import KafkaPublisher, PublishError
from schemas.settings import Settings


class SlowProducer:
    """Acknowledges a send only when the test resolves its future."""

    def __init__(self, **_: Any) -> None:
        self.futures: list[asyncio.Future[None]] = []

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def send(self, topic: str, value: bytes, key: bytes | None = None) -> Any:
        future = asyncio.get_running_loop().create_future()
        self.futures.append(future)
        return future


@pytest.fixture
async def publisher(monkeypatch: pytest.MonkeyPatch) -> KafkaPublisher:
    monkeypatch.setattr(module, "AIOKafkaProducer", SlowProducer)
    publisher = KafkaPublisher(Settings(publish_timeout_s=0.2))
    await publisher.start()
    return publisher


def producer(publisher: KafkaPublisher) -> SlowProducer:
    return publisher._producer  # type: ignore[return-value]


async def test_an_unacknowledged_publish_fails_at_its_deadline(publisher: KafkaPublisher) -> None:
    began = time.monotonic()
    with pytest.raises(PublishError):
        await publisher.publish("t", b"v", b"k")
    assert 0.15 <= time.monotonic() - began < 1.0
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


async def test_an_acknowledged_publish_is_not_cancelled_later(publisher: KafkaPublisher) -> None:
    task = asyncio.create_task(publisher.publish("t", b"v", b"k"))
    await asyncio.sleep(0.01)
    producer(publisher).futures[0].set_result(None)
    await task
    await asyncio.sleep(0.3)  # past the group's deadline: nothing is cancelled
    assert not task.cancelled() and task.exception() is None


async def test_publishes_of_one_window_share_one_timer(
    publisher: KafkaPublisher, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop = asyncio.get_running_loop()
    timers = []
    call_at = loop.call_at

    def counting(when: float, *args: Any, **kwargs: Any) -> asyncio.TimerHandle:
        if args and args[0].__module__ == "gateway.deadlines":
            timers.append(when)
        return call_at(when, *args, **kwargs)

    monkeypatch.setattr(loop, "call_at", counting)
    tasks = [asyncio.create_task(publisher.publish("t", b"%d" % i, None)) for i in range(50)]
    await asyncio.sleep(0.05)
    for future in producer(publisher).futures[:25]:
        future.set_result(None)
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert len(timers) == 1
    assert results[:25] == [None] * 25
    assert all(isinstance(r, PublishError) for r in results[25:])


async def test_a_cancellation_from_outside_stays_a_cancellation(publisher: KafkaPublisher) -> None:
    task = asyncio.create_task(publisher.publish("t", b"v", b"k"))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_late_joiner_never_waits_longer_than_the_timeout() -> None:
    deadlines = Deadlines(timeout=0.2, window=0.1)
    began = time.monotonic()

    async def opener() -> None:
        deadlines.join().leave()  # opens the window

    await asyncio.create_task(opener())

    async def late() -> float:
        await asyncio.sleep(0.05)
        waiter = deadlines.join()
        joined = time.monotonic()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            assert waiter.leave()
        return time.monotonic() - joined

    waited = await late()
    assert waited <= 0.2 and time.monotonic() - began < 0.5
