"""The worker commits a raw offset only after ClickHouse confirmed every row it gave.

The processing stage decides and writes its tables per event, but acks a batch's messages only
after the sink stored the batch (`pipeline/stage.py`). With ClickHouse unreachable the worker
keeps deciding and retrying, and its group must commit nothing on `hits.raw`; once ClickHouse is
back (a restarted worker pointed at it), every hit is stored exactly once.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from clickhouse_connect.driver.client import Client

from deploy.local.ports import free_port
from schemas.settings import Settings
from schemas.topics import RAW
from tests.integration.conftest import Worker, wait_for_rows
from tests.integration.test_end_to_end import produce, raw_hits


async def committed(settings: Settings) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        tps = [TopicPartition(settings.topic(RAW), p) for p in range(settings.partitions)]
        found = await admin.list_consumer_group_offsets(settings.app_id, partitions=tps)
    finally:
        await admin.close()
    return sum(max(meta.offset, 0) for meta in found.values())


def test_no_offset_is_committed_before_clickhouse_stored_its_rows(
    hits_settings: Settings, clickhouse: Client, tmp_path: object
) -> None:
    produce(hits_settings, raw_hits(300))
    unreachable = replace(hits_settings, clickhouse_url=f"http://127.0.0.1:{free_port()}")
    blind = Worker(unreachable, hits_settings_log(hits_settings, "blind")).start()
    try:
        deadline = time.monotonic() + 60
        while "pipeline.sink" not in blind.log_text():  # it decided a batch, and retries it
            assert time.monotonic() < deadline, blind.log_text()[-3000:]
            assert blind.process is not None and blind.process.poll() is None, blind.log_text()
            time.sleep(0.5)
        time.sleep(3)  # three commit intervals
        assert asyncio.run(committed(hits_settings)) == 0
    finally:
        blind.kill()
    worker = Worker(hits_settings, hits_settings_log(hits_settings, "worker")).start()
    try:
        wait_for_rows(clickhouse, "SELECT count() FROM events", 300, timeout=120, worker=worker)
        deadline = time.monotonic() + 30
        while asyncio.run(committed(hits_settings)) < 300 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert asyncio.run(committed(hits_settings)) == 300
    finally:
        worker.stop()
    counts = clickhouse.query("SELECT count(), uniqExact(hit_id) FROM events").result_rows[0]
    assert counts == (300, 300)


def hits_settings_log(settings: Settings, name: str) -> Path:
    return Path(settings.data_dir).parent / f"{name}.log"
