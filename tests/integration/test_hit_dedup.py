"""A hit id that reaches `hits.raw` twice is stored once, also across a worker kill -9."""

from __future__ import annotations

import pytest
from clickhouse_connect.driver.client import Client

from schemas import rawhit
from schemas.settings import Settings
from tests.integration.conftest import Worker, wait_for_rows
from tests.integration.test_end_to_end import produce, raw_hits

pytestmark = pytest.mark.integration


def keyless_bad_hit(i: int) -> tuple[bytes, bytes]:
    hit = rawhit.RawHit(
        hit_id=f"bad-{i}", kind="optimizely", received_at_ms=1_790_000_000_000, query="a=1&n=x"
    )
    return hit.hit_id.encode(), rawhit.encode(hit)


def counts(client: Client) -> tuple[int, ...]:
    return tuple(
        client.query(
            "SELECT (SELECT count() FROM events), (SELECT uniqExact(hit_id) FROM events), "
            "(SELECT count() FROM impressions), (SELECT count() FROM conversions), "
            "(SELECT count() FROM dead_letters)"
        ).result_rows[0]
    )


def test_copies_of_a_hit_are_stored_once(
    hits_settings: Settings, worker: Worker, clickhouse: Client
) -> None:
    hits = raw_hits(300)
    bad = [keyless_bad_hit(i) for i in range(5)]
    produce(hits_settings, hits + bad)
    # the same bytes again, as a drained spool or a retrying producer sends them
    produce(hits_settings, hits[:100] + bad)
    wait_for_rows(clickhouse, "SELECT count() FROM events", 300, worker=worker)
    wait_for_rows(clickhouse, "SELECT count() FROM dead_letters", 5, worker=worker)

    worker.kill()  # the table and the committed offsets must agree after a restart
    produce(hits_settings, hits[100:200] + raw_hits(1, start=300))
    worker.start()
    wait_for_rows(clickhouse, "SELECT count() FROM events", 301, timeout=90, worker=worker)
    # each hit: one impression (g=500 is x500's experiment) and one conversion (g=9N)
    wait_for_rows(clickhouse, "SELECT count() FROM conversions", 301, worker=worker)
    assert counts(clickhouse) == (301, 301, 301, 301, 5)
