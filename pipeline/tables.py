"""The worker's RocksDB-backed Faust tables: co-partitioned with `hits.raw`, bounded in memory
and, by event time, in keys (`expiries`).

Each table partition is a RocksDB database of its own (`faust.stores.rocksdb`). Faust's defaults
give each up to three 64 MiB memtables and a 2 GiB block cache; here both come from the settings
(`HITS_STATE_WRITE_BUFFER_MB`, `HITS_STATE_BLOCK_CACHE_MB`), so a worker's memory does not grow
with the keys its tables hold: they live on disk, and the memory holds the recent writes and the
blocks read most.
"""

from __future__ import annotations

from typing import Any

import faust

from pipeline import seen, sessions
from pipeline.decide import SEEN, SESSIONS
from pipeline.expiry import Expiry
from schemas.settings import Settings

_MIB = 1 << 20


def rocksdb_options(settings: Settings) -> dict[str, int]:
    """A table partition's RocksDB options: at most two memtables, a bounded block cache."""
    return {
        "write_buffer_size": settings.state_write_buffer_mb * _MIB,
        "max_write_buffer_number": 2,
        "block_cache_size": settings.state_block_cache_mb * _MIB,
    }


def new_table(app: faust.App, settings: Settings, name: str) -> Any:
    """Table `name`, co-partitioned with `hits.raw` (its changelog: `<app id>-<name>-changelog`)."""
    return app.Table(
        name,
        partitions=settings.partitions,
        key_type=bytes,
        value_type=bytes,
        options=rocksdb_options(settings),
    )


def expiries(settings: Settings) -> dict[str, Expiry]:
    """The tables whose keys expire by event time (`pipeline.expiry`), and when; Octeth's first
    conversions and the SRM alarm's first exposures count forever."""
    grace_ms, window_ms = settings.state_grace_s * 1000, settings.retry_window_s * 1000
    horizon = sessions.SESSION_HORIZON_MS
    return {
        SEEN: Expiry(SEEN, window_ms, grace_ms, max(window_ms, 1), seen.received_at),
        SESSIONS: Expiry(SESSIONS, horizon, grace_ms, horizon // 4, seen.received_at),
    }
