"""Workers joining and leaving while batches are pending: every hit stored exactly once.

The processing stage acks a batch only after ClickHouse stored it, so at a rebalance Faust waits
for the pending batch's acks (`wait_empty`) before it commits and hands partitions over; what is
still pending on a revoked partition is dropped unacked and read again by its next owner. Two
workers on four partitions, a second one joining mid-stream and the first leaving, must leave
each hit stored once (background merges stopped, so a row stored twice would show).
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from clickhouse_connect.driver.client import Client

from deploy.local.ports import free_port
from pipeline.rows import COLUMNS
from schemas.settings import Settings
from tests.integration.conftest import Worker, wait_for_rows
from tests.integration.test_end_to_end import produce, raw_hits


def test_workers_joining_and_leaving_store_every_hit_once(
    hits_settings: Settings, clickhouse: Client
) -> None:
    for table in COLUMNS:
        clickhouse.command(f"SYSTEM STOP MERGES {table}")
    logs = Path(hits_settings.data_dir).parent
    first = Worker(hits_settings, logs / "first.log").start()
    second = Worker(
        replace(
            hits_settings,
            data_dir=hits_settings.data_dir + "-second",
            worker_web_port=free_port(),
        ),
        logs / "second.log",
    )
    try:
        produce(hits_settings, raw_hits(1500))
        wait_for_rows(clickhouse, "SELECT count() FROM events", 100, timeout=120, worker=first)
        second.start()  # joins while the first holds pending batches: a rebalance
        produce(hits_settings, raw_hits(1500, start=1500))
        wait_for_rows(clickhouse, "SELECT count() FROM events", 2000, timeout=180, worker=second)
        first.stop()  # leaves cleanly: another rebalance, its partitions move
        produce(hits_settings, raw_hits(1000, start=3000))
        wait_for_rows(clickhouse, "SELECT count() FROM events", 4000, timeout=180, worker=second)
        time.sleep(3)  # a row stored twice would show by now
    finally:
        first.stop()
        second.stop()
    assert "partitions" in second.log_text()  # it did take partitions over
    counts = clickhouse.query(
        "SELECT (SELECT count() FROM events), (SELECT uniqExact(hit_id) FROM events), "
        "(SELECT count() FROM conversions), (SELECT uniqExact(conversion_id) FROM conversions)"
    ).result_rows[0]
    assert counts == (4000, 4000, 4000, 4000)
