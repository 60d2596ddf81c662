"""Bounded state through a real worker: stale session keys are deleted, in the changelog too."""

from __future__ import annotations

import asyncio
import re
import time

import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from clickhouse_connect.driver.client import Client

from schemas import monetate, rawhit
from schemas.settings import Settings
from tests.integration.conftest import Worker, get, wait_for_rows
from tests.integration.test_end_to_end import produce

pytestmark = pytest.mark.integration

HOUR_MS = 3_600_000
KEY = b"shop\x1fs-old\x1fbuy"  # pipeline.sessions.table_key("shop", "s-old", "buy")


def monetate_hit(hit_id: str, session: str, received_at_ms: int) -> tuple[bytes, bytes]:
    body = {
        "v": 1,
        "site": "shop",
        "visitor": "v1",
        "session": session,
        "session_start": received_at_ms,
        "sent_at": received_at_ms,
        "page": {"url": "https://s/p", "referrer": "", "device": "desktop", "view": hit_id},
        "experiments": {},
        "events": [{"key": "buy", "at": received_at_ms, "seq": 0}],
    }
    key, hit = monetate.direct_hit(orjson.dumps(body), hit_id=hit_id, received_at_ms=received_at_ms)
    return key, rawhit.encode(hit)


def expired_keys(settings: Settings, table: str) -> float:
    _, _, body = get(f"http://127.0.0.1:{settings.worker_web_port}/metrics")
    pattern = rf'^hitstream_worker_expired_keys_total{{table="{table}"}} (\S+)$'
    match = re.search(pattern, body.decode(), re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def changelog(settings: Settings, table: str) -> dict[bytes, bytes | None]:
    """The latest value per key of a table's changelog topic (None: a tombstone)."""

    async def read() -> dict[bytes, bytes | None]:
        consumer = AIOKafkaConsumer(
            f"{settings.app_id}-{table}-changelog",
            bootstrap_servers=settings.kafka_bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        latest: dict[bytes, bytes | None] = {}
        try:
            batches = await consumer.getmany(timeout_ms=3000)
            while batches:
                for records in batches.values():
                    for record in records:
                        assert record.key is not None
                        latest[record.key] = record.value
                batches = await consumer.getmany(timeout_ms=1000)
        finally:
            await consumer.stop()
        return latest

    return asyncio.run(read())


def store(
    settings: Settings, worker: Worker, clickhouse: Client, hit: tuple[bytes, bytes], events: int
) -> None:
    """Produce one raw hit and wait until the worker stored `events` events in all."""
    produce(settings, [hit])
    wait_for_rows(clickhouse, "SELECT count() FROM events", events, worker=worker)


def test_a_stale_session_key_is_deleted_and_tombstoned(
    hits_settings: Settings, worker: Worker, clickhouse: Client
) -> None:
    now = time.time_ns() // 1_000_000
    # 30 h old: past the 12 h session horizon plus the default 12 h grace.
    store(hits_settings, worker, clickhouse, monetate_hit("h-old", "s-old", now - 30 * HOUR_MS), 1)
    assert changelog(hits_settings, "sessions")[KEY] is not None
    assert expired_keys(hits_settings, "sessions") == 0

    # A hit of the same partition 30 h later moves the watermark: the sweep deletes the old key.
    store(hits_settings, worker, clickhouse, monetate_hit("h-new", "s-new", now), 2)
    assert expired_keys(hits_settings, "sessions") == 1
    latest = changelog(hits_settings, "sessions")
    assert latest[KEY] is None  # a rebuild from the changelog does not bring it back
    assert latest[b"shop\x1fs-new\x1fbuy"] is not None
    # Expiry changed no decision: both were their session's first "buy".
    assert clickhouse.query(
        "SELECT hit_id, first_in_session FROM events ORDER BY hit_id"
    ).result_rows == [("h-new", 1), ("h-old", 1)]
