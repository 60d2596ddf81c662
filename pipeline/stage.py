"""The processing stage's I/O around the pure decisions (`pipeline.decide`): tables, batches, acks.

    hits.raw --handle (per event: decide, write the stores)--> pending batch
             --flush--> ClickHouse (exactly once) + the tables' changelogs (one record batch per
                        partition), then hits.exposures, hits.triggers, hits.dlq
             --then--> the batch's raw messages are acked (Faust commits them)

The agent turns Faust's per-event acks off and hands each event to `handle`, which decides and
writes the table changes to the stores inside the event's own iteration (a RocksDB store writes to
the current event's partition), keeping them with the batch for their changelogs
(`pipeline.changelog_batches`). `flush`, run when the batch is full and on a timer, stores the
batch's rows with the sink's dedup tokens and position marks (`pipeline.progress`), sends its
table changes, then the records for the other topics, and only then acks the batch's messages:
an offset is committed only after ClickHouse and the changelogs confirmed everything it gave. A
crash before that redelivers the batch; the tables' decisions are the same for a redelivered
message (`pipeline.seen`), so its rows are the same, and the sink skips or deduplicates what was
stored already.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from pipeline import exposures, metrics
from pipeline.changelog_batches import ChangelogSender, Changes
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
    changes: Changes = field(default_factory=Changes)
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


class Stage:
    def __init__(
        self,
        tables: Mapping[str, Any],
        expiries: Mapping[str, Expiry],
        context: Callable[[], Context],
        sink: ClickHouseSink,
        changelogs: ChangelogSender,
        outputs: Outputs,
        batch_rows: int,
    ) -> None:
        self.tables, self.expiries, self.context = tables, expiries, context
        # each table's store (`table.data`, Faust's public handle on it): read and written
        # directly, one RocksDB lookup per read; changes reach the changelogs with the batch
        self.stores: dict[str, MutableMapping[bytes, bytes]] = {
            name: table.data for name, table in tables.items()
        }
        self.sink, self.changelogs = sink, changelogs
        self.outputs, self.batch_rows = outputs, batch_rows
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
        decided = decide([raw], self.stores, self.context())
        changes, partition = self.pending.changes, message.partition
        for name, values in decided.updates.items():
            store = self.stores[name]
            for key, value in values.items():
                store[key] = value
                changes.add(name, partition, key, value)
        _count(decided, message.topic)
        self.pending.add(event, decided)
        for partition, received_at_ms in decided.received_at_ms.items():
            watermark = self.watermarks.advance(partition, received_at_ms)
            for name, expiry in self.expiries.items():
                if expiry.due(partition, watermark):
                    delete = self._deleter(name, partition)
                    await sweep(self.tables[name], expiry, partition, watermark, delete)
        if self.pending.rows >= self.batch_rows:
            await self._flush_behind()

    def _deleter(self, name: str, partition: int) -> Callable[[bytes], None]:
        """Deletes a key of table `name` from its store, with a tombstone for its changelog."""
        store = self.stores[name]

        def delete(key: bytes) -> None:
            del store[key]
            self.pending.changes.add(name, partition, key, None)  # the batch filling now

        return delete

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
            await asyncio.gather(
                self.sink.write(batch.bundles), self.changelogs.send(batch.changes)
            )
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
