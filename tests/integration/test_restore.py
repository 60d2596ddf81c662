"""A worker that lost its data directory rebuilds its tables in bulk (pipeline/restore.py)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client
from rocksdict import AccessType, Options, Rdict

from schemas.settings import Settings
from tests.integration.conftest import Worker, wait_for_rows
from tests.integration.test_end_to_end import produce, raw_hits
from tests.integration.test_expiry import HOUR_MS, KEY, changelog, monetate_hit, store

pytestmark = pytest.mark.integration

OFFSET_KEY = b"__faust\0offset__"  # faust.stores.rocksdb.Store.offset_key


def stored(data_dir: str, table: str) -> dict[bytes, bytes]:
    """Every key and value of a table's partition databases, read after the worker stopped."""
    found: dict[bytes, bytes] = {}
    paths = sorted(Path(data_dir).glob(f"**/{table}-*.db"))
    assert paths, f"no {table} partitions under {data_dir}"
    for path in paths:
        db = Rdict(str(path), Options(raw_mode=True), access_type=AccessType.read_only())
        try:
            found.update((k, v) for k, v in db.items() if k != OFFSET_KEY)
        finally:
            db.close()
    return found


def test_a_lost_data_dir_is_rebuilt_from_the_changelog_and_decisions_hold(
    hits_settings: Settings, worker: Worker, clickhouse: Client
) -> None:
    now = time.time_ns() // 1_000_000
    store(hits_settings, worker, clickhouse, monetate_hit("h-old", "s-old", now - 30 * HOUR_MS), 1)
    # sweeps s-old: a tombstone
    store(hits_settings, worker, clickhouse, monetate_hit("h-new", "s-new", now), 2)

    worker.stop()
    shutil.rmtree(hits_settings.data_dir)  # a new node, or a lost volume
    worker.start()
    # The same key in the same session: a repeat, decided on the restored table.
    store(hits_settings, worker, clickhouse, monetate_hit("h-again", "s-new", now + 1_000), 3)
    assert clickhouse.query(
        "SELECT hit_id, first_in_session FROM events ORDER BY hit_id"
    ).result_rows == [("h-again", 0), ("h-new", 1), ("h-old", 1)]
    assert "restored" in worker.log_text()

    worker.stop()
    latest = changelog(hits_settings, "sessions")
    assert latest[KEY] is None
    expected = {key: value for key, value in latest.items() if value is not None}
    assert stored(hits_settings.data_dir, "sessions") == expected


def test_the_seen_table_is_rebuilt_and_still_drops_copies_and_finds_retries(
    hits_settings: Settings, worker: Worker, clickhouse: Client
) -> None:
    """The `seen` changelog holds exactly the table, and a table rebuilt from it still knows
    every hit: a later copy of one is dropped, a client retry is still a retry."""
    hits = raw_hits(40)
    produce(hits_settings, hits)
    wait_for_rows(clickhouse, "SELECT count() FROM events", 40, worker=worker)
    worker.stop()
    latest = changelog(hits_settings, "seen")
    assert len(latest) == 40 and None not in latest.values()  # one retry key per hit
    assert stored(hits_settings.data_dir, "seen") == latest

    shutil.rmtree(hits_settings.data_dir)
    worker.start()
    copy = hits[7]  # the same bytes again: a copy, dropped
    retry_key, retry = raw_hits(1, start=7)[0]  # a new hit id, the same query: a client retry
    produce(hits_settings, [copy, (retry_key, retry.replace(b'"hit_id":"', b'"hit_id":"r', 1))])
    wait_for_rows(clickhouse, "SELECT count() FROM events", 41, worker=worker)
    time.sleep(2)  # the copy would have been stored with the retry
    assert clickhouse.query(
        "SELECT count(), countIf(duplicate_of IS NOT NULL), uniqExact(hit_id) FROM events"
    ).result_rows == [(41, 1, 41)]
