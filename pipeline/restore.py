"""Rebuild missing table partitions from their changelogs before Faust starts: in bulk.

Faust recovers a changelog one record at a time (an event, a queue and bookkeeping per record):
about 125 s per million keys on the benchmark box, where reading the same records in batches
straight into RocksDB takes 3 s. So a worker whose data directory lacks a table partition (a new
node, a lost volume) first fills it here, for every partition of every table (any of them may be
assigned to it): it reads the changelog partition from its beginning to its end with a plain
consumer, applies each record (a tombstone deletes), and stores the last offset read under
Faust's own persisted-offset key. Faust then opens a partition database it finds on disk, seeks
to that offset (it re-reads the last record: harmless, a put of the same value) and reads only
what was written after. Paths and RocksDB options are Faust's own (`Store.partition_path`,
`Store.rocksdb_options`), so the databases are exactly the ones Faust would have built.

Partitions already on disk are left alone: a warm restart costs nothing here.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from deploy.kafka_security import client_options
from deploy.topics import partition_counts
from schemas.settings import Settings

log = logging.getLogger(__name__)


def missing_partitions(tables: Iterable[Any], partitions: int) -> list[tuple[Any, int]]:
    """(table, partition) pairs whose RocksDB database is not on disk yet."""
    return [
        (table, p)
        for table in tables
        for p in range(partitions)
        if not table.data.partition_path(p).exists()
    ]


async def _restore(settings: Settings, wanted: list[tuple[Any, int]]) -> int:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        enable_auto_commit=False,
        max_poll_records=10_000,
        max_partition_fetch_bytes=8 << 20,
        **client_options(settings),
    )
    await consumer.start()
    restored = 0
    try:
        names = sorted({table.changelog_topic.get_topic_name() for table, _ in wanted})
        counts = await partition_counts(settings, names)
        # only partitions the changelog has: asking the offsets of one it lacks (a changelog
        # made with fewer partitions than its table, which the agent's check refuses) waited
        # 40 s for a timeout that ended the restore at every start
        targets = {
            TopicPartition(table.changelog_topic.get_topic_name(), p): (table, p)
            for table, p in wanted
            if p < counts.get(table.changelog_topic.get_topic_name(), 0)
        }
        if not targets:
            return 0
        ends = await consumer.end_offsets(list(targets))
        begins = await consumer.beginning_offsets(list(targets))
        todo = [tp for tp in targets if ends[tp] > begins[tp]]
        if not todo:
            return 0
        consumer.assign(todo)
        await consumer.seek_to_beginning(*todo)
        for tp in todo:
            table, partition = targets[tp]
            store = table.data
            path = store.partition_path(partition)
            path.parent.mkdir(parents=True, exist_ok=True)
            db = store.rocksdb_options.open(path)
            last = -1
            try:
                while last < ends[tp] - 1:
                    batch = await consumer.getmany(tp, timeout_ms=2000, max_records=10_000)
                    for record in batch.get(tp, []):
                        if record.value is None:
                            db.delete(record.key)
                        else:
                            db.put(record.key, record.value)
                        last = record.offset
                        restored += 1
                    if not batch:
                        break  # nothing more within the timeout: Faust reads the rest
                if last >= 0:
                    db.put(store.offset_key, str(last).encode())
            finally:
                db.close()
    finally:
        await consumer.stop()
    return restored


def restore_missing(settings: Settings, tables: Iterable[Any]) -> None:
    """Fill the table partitions missing on disk from their changelogs (before `app.main()`).

    Runs on its own thread and event loop, so Faust later starts on a fresh loop of its own."""
    wanted = missing_partitions(tables, settings.partitions)
    if not wanted:
        return
    began = time.monotonic()
    outcome: list[int] = []
    thread = threading.Thread(
        target=lambda: outcome.append(asyncio.run(_restore(settings, wanted))),
        name="restore-tables",
    )
    thread.start()
    thread.join()
    if outcome and outcome[0]:
        log.info(
            "restored %d changelog records into %d table partitions in %.1f s",
            outcome[0],
            len(wanted),
            time.monotonic() - began,
        )
