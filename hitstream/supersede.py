"""Re-publish raw hits and, once the worker has stored them, delete the rows they supersede.

Shared by `hitstream replay` and `hitstream dlq redrive`. A copy goes back into `hits.raw` on the
partition it was read from, so it travels the normal pipeline at a new, higher offset: the sink's
marks (`pipeline.progress`) see new positions and store its rows, with the same stable ids as
before (uuid5 over the hit id). Then `settle` removes every row of the superseded messages: the
originals and any earlier copy of the same hits, and rebuilds the results aggregates of every
experiment those rows fed (a DELETE does not reach a materialized view's table: see
`deploy.aggregates`). See `hitstream.replay` for the whole design.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from clickhouse_connect.driver.client import Client
from tqdm import tqdm

from deploy import aggregates
from deploy.kafka_security import client_options
from hitstream.replay_range import position_condition, spans
from pipeline.rows import COLUMNS, ROW_IDS
from schemas import replay
from schemas.event import MAX_EVENTS_PER_HIT
from schemas.settings import Settings
from schemas.topics import RAW

SPANS_PER_DELETE = 200
# Tables with a hit id: their rows tell which later messages were earlier copies of a hit.
HIT_TABLES = ("events", "dead_letters")


@dataclass(frozen=True, slots=True)
class Copy:
    partition: int
    old_offset: int
    new_offset: int


@dataclass(frozen=True, slots=True)
class Message:
    partition: int
    offset: int
    key: bytes | None
    value: bytes


class SettleTimeout(RuntimeError):
    """The worker did not store the copies in time; nothing was deleted (run again later)."""


def producer(settings: Settings) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=settings.producer_linger_ms,
        **client_options(settings),
    )


async def republish(kafka: AIOKafkaProducer, topic: str, messages: Sequence[Message]) -> list[Copy]:
    """Append `messages` to `topic`, each on its own partition, byte for byte; their new offsets."""
    futures = [
        await kafka.send(
            topic,
            m.value,
            key=m.key,
            partition=m.partition,
            headers=[replay.header(m.partition, m.offset)],
        )
        for m in messages
    ]
    sent = await asyncio.gather(*futures)
    return [Copy(m.partition, m.offset, r.offset) for m, r in zip(messages, sent, strict=True)]


def _hit_rows(partition: int, where: str, columns: str) -> str:
    return " UNION ALL ".join(
        f"SELECT {columns} FROM {t} WHERE src_partition = {partition} AND ({where})"
        for t in HIT_TABLES
    )


def stored_copies(client: Client, partition: int, new_offsets: Iterable[int]) -> int:
    """How many of the copies at `new_offsets` have reached ClickHouse (every raw message
    yields an `events` row or a dead letter)."""
    where = position_condition(spans(new_offsets))
    rows = _hit_rows(partition, where, "src_pos")
    sql = f"SELECT uniqExact(intDiv(src_pos, {MAX_EVENTS_PER_HIT})) FROM ({rows})"
    return int(client.query(sql).result_rows[0][0])


async def _committed_past(settings: Settings, ends: dict[TopicPartition, int]) -> bool:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap, **client_options(settings)
    )
    await admin.start()
    try:
        done = await admin.list_consumer_group_offsets(settings.app_id, partitions=list(ends))
    finally:
        await admin.close()
    return all(tp in done and done[tp].offset >= end for tp, end in ends.items())


async def wait_stored(
    settings: Settings, client: Client, copies: Sequence[Copy], deadline_s: float
) -> None:
    """Return once the worker has stored every copy's rows in every table.

    First every copy shows an `events` or `dead_letters` row. The worker writes a batch table by
    table, so then its group must also have committed `hits.raw` past every copy: it acks a
    batch's messages only after ClickHouse confirmed all of the batch's rows.
    """
    deadline = time.monotonic() + deadline_s
    by_partition: dict[int, list[int]] = defaultdict(list)
    for c in copies:
        by_partition[c.partition].append(c.new_offset)
    with tqdm(total=len(copies), desc="stored", unit="hit", disable=None) as bar:
        while True:
            seen = await asyncio.to_thread(
                lambda: sum(stored_copies(client, p, o) for p, o in by_partition.items())
            )
            bar.update(seen - bar.n)
            if seen >= len(copies):
                break
            if time.monotonic() > deadline:
                raise SettleTimeout(
                    f"{seen} of {len(copies)} copies stored after {deadline_s:.0f} s"
                )
            await asyncio.sleep(0.3)
    ends = {
        TopicPartition(settings.topic(RAW), p): max(offsets) + 1
        for p, offsets in by_partition.items()
    }
    while not await _committed_past(settings, ends):
        if time.monotonic() > deadline:
            raise SettleTimeout(f"the worker has not committed {sorted(ends.items())}")
        await asyncio.sleep(0.5)


def superseded_offsets(client: Client, partition: int, copies: Sequence[Copy]) -> list[int]:
    """Raw offsets whose rows the copies replace: the originals, and every earlier message of
    the same hit ids in the partition (an earlier replay's copies, an accidental duplicate)."""
    copied = spans(c.new_offset for c in copies)
    hits = _hit_rows(partition, position_condition(copied), "hit_id")
    sql = (
        f"SELECT DISTINCT intDiv(src_pos, {MAX_EVENTS_PER_HIT}) FROM "
        f"({_hit_rows(partition, _before(copies), 'src_pos, hit_id')}) "
        f"WHERE hit_id != '' AND hit_id IN ({hits})"
    )
    found = {int(offset) for (offset,) in client.query(sql).result_rows}
    return sorted(found | {c.old_offset for c in copies})


def delete_superseded(
    client: Client, copies: Sequence[Copy], touched: set[aggregates.Scope] | None = None
) -> dict[str, int]:
    """Delete, in every table, the rows the copies supersede; rows deleted per table. The
    experiments whose aggregates the deleted rows fed are added to `touched`.

    Two nets: the rows of every superseded raw message (`superseded_offsets`), and, per table,
    any other row carrying the id of a row the copies stored (an earlier copy whose hit-id rows
    a ReplacingMergeTree merge has already collapsed, so `superseded_offsets` cannot see it).
    """
    by_partition: dict[int, list[Copy]] = defaultdict(list)
    for c in copies:
        by_partition[c.partition].append(c)
    deleted: dict[str, int] = defaultdict(int)
    for partition, group in sorted(by_partition.items()):
        copied = position_condition(spans(c.new_offset for c in group))
        before = _before(group)
        runs = spans(superseded_offsets(client, partition, group))
        for i in range(0, len(runs), SPANS_PER_DELETE):
            chunk = position_condition(runs[i : i + SPANS_PER_DELETE])
            for table in COLUMNS:
                where = f"src_partition = {partition} AND ({chunk})"
                deleted[table] += _delete(client, table, where, touched)
        for table, key in ROW_IDS.items():
            where = (
                f"src_partition = {partition} AND {before} AND {key} IN "
                f"(SELECT {key} FROM {table} WHERE src_partition = {partition} AND ({copied}))"
            )
            if table == "dead_letters":
                where += " AND hit_id != ''"
            deleted[table] += _delete(client, table, where, touched)
    return {table: n for table, n in deleted.items() if n}


def _before(copies: Sequence[Copy]) -> str:
    """Rows older than every copy. Only those are superseded: a concurrent replay's newer
    copies are left alone (the two may then leave a duplicate, never a loss; run one again)."""
    return f"src_pos < {min(c.new_offset for c in copies) * MAX_EVENTS_PER_HIT}"


def _delete(client: Client, table: str, where: str, touched: set[aggregates.Scope] | None) -> int:
    count = int(client.query(f"SELECT count() FROM {table} WHERE {where}").result_rows[0][0])
    if count:
        if touched is not None:
            touched |= aggregates.affected(client, table, where)
        client.command(f"DELETE FROM {table} WHERE {where}")
    return count


class RebuildFailed(RuntimeError):
    """Superseded rows were deleted, but rebuilding the results aggregates failed."""


def rebuild_touched(client: Client, touched: set[aggregates.Scope]) -> None:
    """Rebuild the results aggregates of each experiment in `touched` from the raw tables, then
    refresh the results snapshots once."""
    left = sorted(touched, key=lambda s: (s.tenant, s.experiment))
    if not left:
        return
    while left:
        try:
            aggregates.rebuild(client, left[0])
        except Exception as exc:
            commands = "; ".join(
                f"hitstream aggregates rebuild --tenant {s.tenant} --experiment {s.experiment}"
                for s in left
            )
            raise RebuildFailed(
                f"rebuilding the results aggregates failed ({exc}); run: {commands}"
            ) from exc
        left.pop(0)
    aggregates.refresh_snapshots(client)


async def settle(
    settings: Settings, client: Client, copies: Sequence[Copy], deadline_s: float
) -> dict[str, int]:
    """Wait for the worker to store `copies`, delete what they supersede, then rebuild the
    results aggregates of the experiments the deleted rows fed."""
    if not copies:
        return {}
    await wait_stored(settings, client, copies, deadline_s)
    touched: set[aggregates.Scope] = set()
    deleted = await asyncio.to_thread(delete_superseded, client, copies, touched)
    await asyncio.to_thread(rebuild_touched, client, touched)
    return deleted
