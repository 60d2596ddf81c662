"""Stage 3: batches of row bundles into ClickHouse, exactly once, offsets advancing only after.

`write` returns only when every row of the batch is stored (or dead-lettered as unstorable):
outages are retried with back-off inside it, so the agent's offsets cannot move past rows that
ClickHouse has not confirmed. Which failures are waited out (an outage, a timeout, a cluster's
Keeper or replica trouble) and which mean the data is refused is `pipeline.sink_errors.verdict`;
every attempt at a batch carries the same `insert_deduplication_token`, so an insert that
reached the table before its answer was lost is stored once.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import orjson
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError

from pipeline import metrics
from pipeline.progress import Progress, TableBatch
from pipeline.rows import COLUMNS, RowBundle, dead_letter_row, times_in_range
from pipeline.sink_errors import Verdict, verdict
from schemas.deadletter import DeadLetter
from schemas.event import MAX_EVENTS_PER_HIT, Lineage

log = logging.getLogger(__name__)

STAGE_COLUMN = {"dead_letters": "stage"}
# The broken control holds a batch's acks this long after storing it: the window in which a crash
# makes the worker store the batch again (about 0.1 s otherwise), so the control run meets it.
UNSAFE_ACK_DELAY_S = 2.0


class ClickHouseSink:
    def __init__(
        self, connect: Callable[[], Client], retry_max_s: float, unsafe_without_dedup: bool = False
    ) -> None:
        """`unsafe_without_dedup`: tests only (`HITS_UNSAFE_SINK_WITHOUT_DEDUP`, the chaos suite's
        control run): no dedup token, no block dedup and no progress marks, so redelivered rows
        are stored twice.
        """
        self._connect = connect
        self._client: Client | None = None
        self._retry_max_s = retry_max_s
        self._unsafe = unsafe_without_dedup
        self.progress = Progress()
        if unsafe_without_dedup:
            log.critical("UNSAFE: the sink inserts without dedup tokens and progress marks")

    async def write(self, bundles: Sequence[RowBundle]) -> int:
        """Store `bundles`; return the number of rows inserted (replayed rows are skipped)."""
        bundles = [b if times_in_range(b) else _out_of_range(b) for b in bundles]
        if self._unsafe:
            stored = sum([await self._store(batch) for batch in Progress().plan(bundles)])
            await asyncio.sleep(UNSAFE_ACK_DELAY_S)
            return stored
        unloaded = self.progress.unloaded(bundles)
        if unloaded:
            found = await self._retrying("read marks", lambda: self._read_marks(unloaded))
            self.progress.load(unloaded, found)
        stored = 0
        for batch in self.progress.plan(bundles):
            stored += await self._store(batch)
            self.progress.commit(batch)
        return stored

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _client_now(self) -> Client:
        if self._client is None:
            self._client = self._connect()
        return self._client

    def _read_marks(self, partitions: set[int]) -> list[tuple[str, str, int, int]]:
        client = self._client_now()
        found: list[tuple[str, str, int, int]] = []
        for table in COLUMNS:
            stage = STAGE_COLUMN.get(table, "'derive'")
            result = client.query(
                f"SELECT {stage}, src_partition, max(src_pos) FROM {table} "
                "WHERE src_partition IN {parts:Array(UInt16)} GROUP BY 1, 2",
                parameters={"parts": sorted(partitions)},
            )
            found.extend((table, s, int(p), int(pos)) for s, p, pos in result.result_rows)
        return found

    async def _store(self, batch: TableBatch) -> int:
        token = batch.dedup_token()
        try:
            await self._retrying(f"insert into {batch.table}", lambda: self._insert(batch, token))
        except DatabaseError as exc:  # the data itself is refused: store what can be stored
            log.error(
                "ClickHouse refused a batch for %s (%s); inserting row by row", batch.table, exc
            )
            return await self._store_row_by_row(batch, token)
        metrics.SINK_ROWS.labels(batch.table).inc(len(batch.rows))
        return len(batch.rows)

    def _insert(self, batch: TableBatch, token: str) -> None:
        with metrics.SINK_FLUSH_SECONDS.labels(batch.table).time():
            self._client_now().insert(
                batch.table,
                batch.rows,
                column_names=COLUMNS[batch.table],
                # unsafe: a new token each time, so not even ClickHouse's dedup of a block it has
                # seen (by its hash, which a token replaces) stores a redelivered batch once
                settings={
                    "insert_deduplication_token": f"unsafe-{uuid.uuid4()}"
                    if self._unsafe
                    else token
                },
            )

    async def _store_row_by_row(self, batch: TableBatch, token: str) -> int:
        stored = 0
        columns = COLUMNS[batch.table]
        for i, row in enumerate(batch.rows):
            one = TableBatch(batch.table, [row], batch.ranges)
            try:
                await self._retrying("insert one row", partial(self._insert, one, f"{token}#{i}"))
                stored += 1
            except DatabaseError as exc:
                letter = _unstorable(batch.table, dict(zip(columns, row, strict=False)), exc)
                dlq = TableBatch("dead_letters", [dead_letter_row(letter)], {})
                await self._retrying(
                    "dead-letter a row", partial(self._insert, dlq, f"{token}#{i}#dlq")
                )
                metrics.SINK_ROWS.labels("dead_letters").inc()
        return stored

    async def _retrying(self, what: str, call: Callable[[], Any]) -> Any:
        delay = 0.2
        while True:
            try:
                return await asyncio.to_thread(call)
            except Exception as exc:
                if verdict(exc) is not Verdict.RETRY:  # refused data: the caller's; a bug: up
                    raise
                metrics.SINK_RETRIES.inc()
                log.warning("ClickHouse %s failed (%s); retrying in %.1f s", what, exc, delay)
                self.close()
                await asyncio.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, self._retry_max_s)


def _out_of_range(bundle: RowBundle) -> RowBundle:
    letter = DeadLetter(
        hit_id="",
        stage="sink",
        reason="time_out_of_range",
        detail="a time column is outside ClickHouse's DateTime64 range",
        source="",
        received_at_ms=0,
        raw=orjson.dumps(bundle.tables).decode(),
        lineage=Lineage(
            partition=bundle.partition,
            offset=bundle.position // MAX_EVENTS_PER_HIT,
            index=bundle.position % MAX_EVENTS_PER_HIT,
        ),
    )
    return RowBundle(
        "sink",
        bundle.partition,
        bundle.position,
        {"dead_letters": [dead_letter_row(letter, bundle.position)]},
    )


def _unstorable(table: str, row: dict[str, Any], exc: Exception) -> DeadLetter:
    return DeadLetter(
        hit_id=str(row.get("hit_id", "")),
        stage="sink",
        reason="clickhouse_rejected",
        detail=f"{table}: {str(exc)[:500]}",
        source=str(row.get("source", "")),
        received_at_ms=0,
        raw=orjson.dumps(row, default=str).decode(),
        lineage=Lineage(partition=int(row.get("src_partition", 0))),
    )
