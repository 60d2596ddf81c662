"""An open-loop load generator for Optimizely GET beacons: a fixed rate, whatever the answers.

wrk is closed-loop (a connection sends its next request when the previous one is answered), so a
slow gateway lowers the offered load. Here a ticker releases `rate` requests per second into a
queue, and `connections` keep-alive HTTP/1.1 connections (plain asyncio streams: far cheaper per
request than an HTTP client library) drain it; a growing queue means the gateway fell behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.load import BROWSER_HEADERS

_HEADERS = "".join(f"{name}: {value}\r\n" for name, value in BROWSER_HEADERS.items())


@dataclass
class Tally:
    sent: int = 0
    ok: int = 0
    failed: int = 0
    answered_at: dict[str, float] = field(default_factory=dict)  # marker -> time of its 200
    backlog_max: int = 0


async def _connection(
    host: str,
    port: int,
    queue: asyncio.Queue[tuple[str, str]],
    tally: Tally,
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while True:
            path, marker = await queue.get()
            writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{_HEADERS}\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            if head[9:12] == b"200":
                tally.ok += 1
                if marker:
                    tally.answered_at[marker] = time.time()
            else:
                tally.failed += 1
            queue.task_done()
    finally:
        writer.close()


async def drive(
    host: str,
    port: int,
    rate: float,
    seconds: float,
    request: Callable[[int], tuple[str, str]],
    tally: Tally,
    connections: int = 32,
) -> None:
    """Send `rate` requests/s for `seconds`; `request(i)` gives (path, marker or "")."""
    queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    workers = [
        asyncio.create_task(_connection(host, port, queue, tally)) for _ in range(connections)
    ]
    began = time.monotonic()
    try:
        while (elapsed := time.monotonic() - began) < seconds:
            due = int(elapsed * rate)
            while tally.sent < due:
                queue.put_nowait(request(tally.sent))
                tally.sent += 1
            tally.backlog_max = max(tally.backlog_max, queue.qsize())
            await asyncio.sleep(0.005)
        with contextlib.suppress(TimeoutError):  # the last requests' answers
            await asyncio.wait_for(queue.join(), 30)
    finally:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
