"""Through the real stack: gateway -> Kafka -> Faust worker -> ClickHouse engine."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from dataclasses import replace

import pytest
from aiokafka import AIOKafkaProducer
from clickhouse_connect.driver.client import Client

from schemas import rawhit
from schemas.settings import Settings
from schemas.topics import RAW
from tests.integration.conftest import Worker, get, wait_for_rows

pytestmark = pytest.mark.integration

SEED_CONVERSION = (
    "/event?a=1234567&n=example_event&u=1316548451038r0&x87654321=1111111&v=500"
    "&g=1234567&d=8511325&s983745985=gc&time=1462472175"
)
SEED_IMPRESSION = (
    "/event?a=1234567&n=example_event&u=1316548451038r0&x987654321=1111111&g=987654321&d=8511325"
)


def scalar(client: Client, sql: str) -> object:
    return client.query(sql).result_rows[0][0]


def test_seed_conversion_and_impression_land_as_rows(
    gateway: str, worker: Worker, clickhouse: Client
) -> None:
    status, headers, body = get(gateway + SEED_CONVERSION)
    assert (status, body, headers["Cache-Control"].startswith("no-store")) == (200, b"", True)
    assert get(gateway + SEED_IMPRESSION)[0] == 200

    wait_for_rows(clickhouse, "SELECT count() FROM events", 2, worker=worker)
    wait_for_rows(clickhouse, "SELECT count() FROM impressions", 1, worker=worker)
    wait_for_rows(clickhouse, "SELECT count() FROM conversions", 1, worker=worker)
    [conversion] = clickhouse.query(
        "SELECT tenant, goal_id, visitor_id, event_name, value_cents, experiments, dimensions, "
        "occurred_at FROM conversions"
    ).result_rows
    assert conversion == (
        "1234567",
        "1234567",
        "1316548451038r0",
        "example_event",
        500,
        {"87654321": "1111111"},
        {"983745985": "gc"},
        dt.datetime(2016, 5, 5, 18, 16, 15),
    )
    [impression] = clickhouse.query(
        "SELECT tenant, experiment_id, variation_id, visitor_id FROM impressions"
    ).result_rows
    assert impression == ("1234567", "987654321", "1111111", "1316548451038r0")


def test_hit_without_visitor_is_a_dead_letter_with_its_reason(
    gateway: str, worker: Worker, clickhouse: Client
) -> None:
    status, _, _ = get(gateway + "/event?a=1&n=e&x2=3", headers={"Accept": "image/webp,*/*"})
    assert status == 200
    wait_for_rows(clickhouse, "SELECT count() FROM dead_letters", 1, worker=worker)
    [(stage, reason, source, raw)] = clickhouse.query(
        "SELECT stage, reason, source, raw FROM dead_letters"
    ).result_rows
    assert (stage, reason, source) == ("validate", "missing_user_id", "optimizely")
    assert rawhit.decode(raw.encode()).query == "a=1&n=e&x2=3"
    assert scalar(clickhouse, "SELECT count() FROM events") == 0


def raw_hits(n: int, start: int = 0) -> list[tuple[bytes, bytes]]:
    """`n` distinct hits as a direct producer would write them: (key, RawHit)."""
    out = []
    for i in range(start, start + n):
        visitor = f"v{i % 97}"
        query = f"a=42&u={visitor}&n=view&x500={i % 2}&g=500&g=9{i % 3}&v={i}"
        hit = rawhit.RawHit(
            hit_id=f"hit-{i}",
            kind="optimizely",
            received_at_ms=1_790_000_000_000 + i,
            path="/event",
            query=query,
        )
        out.append((f"42:{visitor}".encode(), rawhit.encode(hit)))
    return out


def produce(settings: Settings, records: list[tuple[bytes, bytes]]) -> None:
    async def run() -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap,
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
        )
        await producer.start()
        try:
            for key, value in records:
                await producer.send(settings.topic(RAW), value, key=key)
            await producer.flush()
        finally:
            await producer.stop()

    asyncio.run(run())


def test_killed_worker_and_full_replay_store_every_row_exactly_once(
    hits_settings: Settings, worker: Worker, clickhouse: Client
) -> None:
    produce(hits_settings, raw_hits(2000))
    wait_for_rows(clickhouse, "SELECT count() FROM events", 200, worker=worker)
    worker.kill()  # kill -9 mid-stream
    produce(hits_settings, raw_hits(2000, start=2000))
    worker.start()  # resumes from the last committed offsets
    wait_for_rows(clickhouse, "SELECT count() FROM events", 4000, timeout=120, worker=worker)
    wait_for_rows(clickhouse, "SELECT count() FROM conversions", 4000, timeout=60, worker=worker)

    # A second consumer group reads every topic from the start: a full replay.
    worker.stop()
    replay = Worker(
        replace(
            hits_settings,
            app_id=f"replay-{uuid.uuid4().hex[:6]}",
            data_dir=hits_settings.data_dir + "-replay",
        ),
        worker.log.with_name("replay.log"),
    ).start()
    try:
        produce(hits_settings, raw_hits(1, start=4000))  # a marker behind the replayed range
        wait_for_rows(clickhouse, "SELECT count() FROM events", 4001, timeout=120, worker=replay)
    finally:
        replay.stop()

    counts = clickhouse.query(
        "SELECT (SELECT count() FROM events), (SELECT uniqExact(hit_id) FROM events), "
        "(SELECT count() FROM impressions), (SELECT uniqExact(impression_id) FROM impressions), "
        "(SELECT count() FROM conversions), (SELECT uniqExact(conversion_id) FROM conversions)"
    ).result_rows[0]
    assert counts == (4001, 4001, 4001, 4001, 4001, 4001)
