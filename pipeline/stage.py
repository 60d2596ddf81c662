"""The processing stage's I/O around the pure decisions (`pipeline.decide`): tables, batches, acks.

    hits.raw --handle (per event: decide, write the tables)--> pending batch
             --flush--> ClickHouse (exactly once) + hits.exposures, hits.triggers, hits.dlq
             --then--> the batch's raw messages are acked (Faust commits them)

The agent turns Faust's per-event acks off and hands each event to `handle`, which decides and
writes the tables inside the event's own iteration (Faust writes a table change to the changelog
partition of the current event). `flush`, run when the batch is full and on a timer, stores the
batch's rows with the sink's dedup tokens and position marks (`pipeline.progress`), sends the
records for the other topics, and only then acks the batch's messages: an offset is committed
only after ClickHouse confirmed every row it gave. A crash before that redelivers the batch; the
tables' decisions are the same for a redelivered message (`pipeline.seen`), so its rows are the
same, and the sink skips or deduplicates what was stored already.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from pipeline import exposures, metrics
from pipeline.decide import Context, Decided, RawMessage, decide
from pipeline.expiry import Expiry, Watermarks, sweep
from pipeline.rows import RowBundle
from pipeline.sink import ClickHouseSink
from schemas import deadletter, replay
from schemas.deadletter import DeadLetter

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Pending:
    """What a batch holds until it is flushed: the events to ack and everything they gave."""

    events: list[Any] = field(default_factory=list)
    bundles: list[RowBundle] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    exposures: list[exposures.Exposure] = field(default_factory=list)
    triggers: list[tuple[bytes | None, bytes]] = field(default_factory=list)
    rows: int = 0

    def add(self, event: Any, decided: Decided) -> None:
        self.events.append(event)
        self.bundles += decided.bundles
        self.dead_letters += decided.dead_letters
        self.exposures += decided.exposures
        self.triggers += decided.triggers
        self.rows += decided.row_count()


@dataclass(frozen=True, slots=True)
class Outputs:
    """The topics a flush sends to (Faust topics: `send(key=, value=, partition=)`)."""

    exposures: Any
    triggers: Any
    dead_letters: Any


class StoreReads:
    """A table read straight from its store (`table.data`, Faust's public handle on it): one
    RocksDB lookup per read where the table's own `get` makes two (`in`, then the value) and
    reports each to every sensor. Writes still go through the table, so they reach its changelog.
    Plain dicts (the unit tests' tables) are read as they are."""

    __slots__ = ("table",)

    def __init__(self, table: Any) -> None:
        self.table = table

    def get(self, key: bytes) -> bytes | None:
        store: Mapping[bytes, bytes] = getattr(self.table, "data", self.table)
        return store.get(key)


class Stage:
    def __init__(
        self,
        tables: Mapping[str, MutableMapping[bytes, bytes]],
        expiries: Mapping[str, Expiry],
        context: Callable[[], Context],
        sink: ClickHouseSink,
        outputs: Outputs,
        batch_rows: int,
    ) -> None:
        self.tables, self.expiries, self.context = tables, expiries, context
        self.reads = {name: StoreReads(table) for name, table in tables.items()}
        self.sink, self.outputs, self.batch_rows = sink, outputs, batch_rows
        self.pending = Pending()
        self.stream: Any = None  # the agent's stream: acks go through it
        self.watermarks = Watermarks()
        self._lock = asyncio.Lock()
        self._flushing: asyncio.Future[None] | None = None

    async def handle(self, event: Any) -> None:
        """Decide one `hits.raw` event, write its table updates, add it to the batch."""
        message = event.message
        raw = RawMessage(
            message.partition,
            message.offset,
            message.key,
            event.value,
            replay.replay_of(message.headers) is not None,
        )
        decided = decide([raw], self.reads, self.context())
        for name, values in decided.updates.items():
            table = self.tables[name]
            for key, value in values.items():
                table[key] = value
        _count(decided, message.topic)
        self.pending.add(event, decided)
        for partition, received_at_ms in decided.received_at_ms.items():
            watermark = self.watermarks.advance(partition, received_at_ms)
            for name, expiry in self.expiries.items():
                if expiry.due(partition, watermark):
                    await sweep(self.tables[name], expiry, partition, watermark)
        if self.pending.rows >= self.batch_rows:
            await self._flush_behind()

    async def _flush_behind(self) -> None:
        """Flush a full batch while the next one fills: wait only for the flush before it (so at
        most two batches are held), which overlaps deciding with ClickHouse's insert."""
        if self._flushing is not None:
            await self._flushing  # raises what the flush raised: the agent stops
        self._flushing = asyncio.ensure_future(self.flush())

    async def flush(self) -> None:
        """Store the batch, send its records, then ack its messages (see the module's doc)."""
        async with self._lock:
            batch, self.pending = self.pending, Pending()
            if not batch.events:
                return
            await self.sink.write(batch.bundles)
            for key, value in exposures.records(batch.exposures):
                await self.outputs.exposures.send(key=key, value=value)
            for trigger_key, trigger in batch.triggers:
                await self.outputs.triggers.send(key=trigger_key, value=trigger)
            for letter in batch.dead_letters:
                await self.outputs.dead_letters.send(
                    key=letter.hit_id.encode(),
                    value=deadletter.encode(letter),
                    partition=letter.lineage.partition,
                )
            for event in batch.events:
                await self.stream.ack(event)

    async def forget(self) -> None:
        """After a revoke: what is still pending belongs to partitions another worker now reads
        from their committed offsets, so it is dropped unacked; marks and sweeps start again."""
        async with self._lock:
            self.pending = Pending()
        self.sink.progress.forget()
        self.watermarks.forget()
        for expiry in self.expiries.values():
            expiry.forget()


def _count(decided: Decided, topic: str) -> None:
    """Metrics, and log lines that say where (topic, partition, offset, hit id)."""
    for source, n in decided.events_by_source.items():
        metrics.EVENTS.labels(source).inc(n)
    if decided.retries:
        metrics.RETRY_DUPLICATES.inc(decided.retries)
    for letter in decided.dead_letters:
        metrics.DEAD_LETTERS.labels(letter.stage, letter.reason).inc()
        log.debug(
            "hit %s dead-lettered at %s: %s",
            letter.hit_id,
            letter.stage,
            letter.reason,
            extra={
                "hit_id": letter.hit_id,
                "topic": topic,
                "partition": letter.lineage.partition,
                "offset": letter.lineage.offset,
            },
        )
    for copy in decided.copies:
        metrics.DUPLICATE_HITS.inc()
        log.info(
            "the hit at %s[%s]@%s is a copy of an earlier one: dropped",
            topic,
            copy.partition,
            copy.offset,
            extra={"topic": topic, "partition": copy.partition, "offset": copy.offset},
        )
