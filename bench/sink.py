"""Sink throughput: rows/s through `ClickHouseSink` (batches of `sink_batch_rows` bundles, dedup
tokens, replay marks) versus one bulk `client.insert` per table of the same rows, in the same run,
both over HTTP to the local ClickHouse engine. Target: sink >= 0.5 x bulk.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path

from deploy.clickhouse_client import connect
from deploy.local import services
from deploy.local.localstack import start_clickhouse
from deploy.local.ports import free_port
from deploy.migrate import migrate
from pipeline.derive import derive
from pipeline.rows import COLUMNS, RowBundle
from pipeline.sink import ClickHouseSink
from schemas.event import Event, Lineage, stable_id
from schemas.settings import Settings

EVENTS = 100_000


def bundles(n: int) -> list[RowBundle]:
    out = []
    for i in range(n):
        event = Event(
            event_id=stable_id("bench", i),
            hit_id=f"h{i}",
            source="optimizely",
            tenant="1234567",
            visitor_id=f"v{i % 20_000}",
            name="add_to_cart",
            occurred_at_ms=1_790_000_000_000 + i,
            received_at_ms=1_790_000_000_000 + i,
            experiments={"87654321": str(i % 2)},
            goals=("87654321", "555"),
            value_cents=i % 5000,
            dimensions={"983745985": "gc"},
            user_agent="Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0",
            lineage=Lineage(partition=i % 8, offset=i // 8),
        )
        out.append(derive(event))
    return out


def _fresh(settings: Settings) -> Settings:
    fresh = replace(settings, clickhouse_database=f"bench_{uuid.uuid4().hex[:8]}")
    migrate(fresh)
    return fresh


def bulk(settings: Settings, data: list[RowBundle]) -> float:
    client = connect(settings)
    began = time.perf_counter()
    for table in COLUMNS:
        rows = [row for b in data for row in b.tables.get(table, [])]
        if rows:
            client.insert(table, rows, column_names=COLUMNS[table])
    took = time.perf_counter() - began
    client.close()
    return took


def through_sink(settings: Settings, data: list[RowBundle]) -> float:
    sink = ClickHouseSink(lambda: connect(settings), settings.sink_retry_max_s)
    step = settings.sink_batch_rows

    async def go() -> None:
        for i in range(0, len(data), step):
            await sink.write(data[i : i + step])

    began = time.perf_counter()
    asyncio.run(go())
    took = time.perf_counter() - began
    sink.close()
    return took


def run(rounds: int = 3) -> list[str]:
    data = bundles(EVENTS)
    rows = sum(b.row_count() for b in data)
    with tempfile.TemporaryDirectory(prefix="hits-bench-") as tmp:
        port = free_port()
        server = start_clickhouse(Path(tmp) / "ch", port, Path(tmp) / "ch.log")
        try:
            base = Settings(clickhouse_url=f"http://127.0.0.1:{port}")
            bulk_s, sink_s = [], []
            for _ in range(rounds):
                bulk_s.append(bulk(_fresh(base), data))
                sink_s.append(through_sink(_fresh(base), data))
        finally:
            services.stop(server)
    b, s = statistics.median(bulk_s), statistics.median(sink_s)
    return [
        f"bulk insert, one call per table  {rows / b:>10,.0f} rows/s  ({b:.2f} s)",
        f"ClickHouseSink, {base.sink_batch_rows}-bundle batches {rows / s:>10,.0f} rows/s  "
        f"({s:.2f} s)",
        f"ratio sink / bulk                {b / s:.3f}   (target >= 0.5)",
        f"({EVENTS:,} events = {rows:,} rows in events, impressions, conversions; "
        f"median of {rounds})",
    ]
