"""Bounded tables: keys whose stored receive time falls behind a horizon are deleted.

Every bounded table here stores a receive time in its values, and its decision function already
treats a value older than the horizon as absent (`retries.retry_of`, `sessions.first_in_session`).
A key is deleted once it is older than the horizon plus a grace (`state_grace_s`) behind the
partition's watermark, so deleting it changes no decision for any hit that arrives at most the
grace behind the newest one (a drained spool, a skewed gateway clock): expiry is invisible in the
output, and replays decide the same whenever the sweeps happen.

Time is event time, never the wall clock: a partition's watermark is the latest receive time its
events carried. A sweep of partition p runs inside one of p's events, as every table change
does (the store writes to the current event's partition; the tombstone goes with the batch to
the same changelog partition, `pipeline.changelog_batches`). Sweeps run on the
first event of a partition after an assignment (so a restarted worker purges what it recovered)
and then each time the watermark has moved `every_ms` past the previous sweep.

Reading one partition's keys uses the RocksDB store's per-partition databases
(`faust.stores.rocksdb.Store`, faust-streaming pinned in pyproject.toml); tested through a real
worker in tests/integration/test_expiry.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pipeline import metrics

_YIELD_EVERY = 5_000  # keys read between two returns to the event loop (heartbeats, fetches)


@dataclass
class Expiry:
    """When to sweep a table's partitions, and which of their keys have expired."""

    table: str
    horizon_ms: int  # the decision function's: older values are treated as absent
    grace_ms: int  # how late a hit may arrive behind the watermark and still find its state
    every_ms: int
    age_of: Callable[[bytes], int]  # a stored value -> the receive time (ms) it records
    _swept_at: dict[int, int] = field(default_factory=dict)

    def due(self, partition: int, watermark_ms: int) -> bool:
        """Whether to sweep `partition` now; records the sweep when it is due."""
        last = self._swept_at.get(partition)
        if last is not None and watermark_ms - last < self.every_ms:
            return False
        self._swept_at[partition] = watermark_ms
        return True

    def expired(self, items: Iterable[tuple[bytes, bytes]], watermark_ms: int) -> list[bytes]:
        """The keys among `items` whose value is more than horizon + grace behind the watermark."""
        cutoff = watermark_ms - self.horizon_ms - self.grace_ms
        return [key for key, value in items if self.age_of(value) < cutoff]

    def forget(self) -> None:
        """After a rebalance: sweep each partition again on its next event."""
        self._swept_at.clear()


@dataclass
class Watermarks:
    """The latest receive time seen per partition (event time; never moves back)."""

    _latest: dict[int, int] = field(default_factory=dict)

    def advance(self, partition: int, received_at_ms: int) -> int:
        latest = max(self._latest.get(partition, received_at_ms), received_at_ms)
        self._latest[partition] = latest
        return latest

    def forget(self) -> None:
        self._latest.clear()


def partition_items(table: Any, partition: int) -> Iterator[tuple[bytes, bytes]]:
    """The (key, value) pairs a RocksDB-backed Faust table holds for one partition."""
    store = table.data
    yield from store._visible_items(store._db_for_partition(partition))


async def sweep(
    table: Any,
    expiry: Expiry,
    partition: int,
    watermark_ms: int,
    delete: Callable[[bytes], None],
) -> int:
    """Delete (`delete`) the expired keys of `partition` (call inside one of its events); return
    how many.

    The keys are collected first (no deletion while RocksDB iterates), yielding to the event
    loop every few thousand keys so a large table does not starve heartbeats.
    """
    chunk: list[tuple[bytes, bytes]] = []
    doomed: list[bytes] = []
    for count, item in enumerate(partition_items(table, partition), 1):
        chunk.append(item)
        if count % _YIELD_EVERY == 0:
            doomed += expiry.expired(chunk, watermark_ms)
            chunk.clear()
            await asyncio.sleep(0)
    doomed += expiry.expired(chunk, watermark_ms)
    for key in doomed:
        delete(key)
    metrics.EXPIRED_KEYS.labels(expiry.table).inc(len(doomed))
    return len(doomed)
