"""`hitstream replay` and `hitstream dlq` on the real stack: re-processed rows replace the old ones.

The parser "fix" replayed here is the experiment registry: hits sent as x{variation}={experiment}
before the registry knows the experiment are conversions; once it does, the same raw hits are
impressions of the swapped pair (another ordering key, another id). A replay must leave exactly
the new rows: no duplicate in any table (without FINAL), the old conversions gone.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import io
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from clickhouse_connect.driver.client import Client

from deploy import aggregates
from hitstream import dlq, experiments, replay
from hitstream.supersede import Message, producer, republish
from schemas import monetate, rawhit
from schemas.settings import Settings
from schemas.topics import RAW
from tests.integration.conftest import Worker, wait_for_rows
from tests.integration.test_end_to_end import produce, raw_hits

pytestmark = pytest.mark.integration

IDS = {
    "events": "event_id",
    "impressions": "impression_id",
    "conversions": "conversion_id",
    "dead_letters": "dlq_id",
    "identities": "event_id",
}


NO_DIFFERENCE = {
    "results_exposures": (0, 0),
    "results_visitor_conversions": (0, 0),
    "results_sessions": (0, 0),
}


def cli(settings: Settings, module: object, *argv: str) -> tuple[int, str]:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    module.add_parser(sub)  # type: ignore[attr-defined]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = module.run(parser.parse_args(list(argv)), settings)  # type: ignore[attr-defined]
    return code, out.getvalue()


def totals(client: Client) -> dict[str, tuple[int, int]]:
    """(count(), uniqExact(id)) per table, without FINAL."""
    return {
        table: tuple(client.query(f"SELECT count(), uniqExact({key}) FROM {table}").result_rows[0])
        for table, key in IDS.items()
    }


def end_offsets(settings: Settings) -> dict[int, int]:
    async def run() -> dict[int, int]:
        consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
        await consumer.start()
        try:
            tps = [TopicPartition(settings.topic(RAW), p) for p in range(settings.partitions)]
            return {tp.partition: int(o) for tp, o in (await consumer.end_offsets(tps)).items()}
        finally:
            await consumer.stop()

    return asyncio.run(run())


def rows_before(client: Client, table: str, ends: dict[int, int], where: str = "1") -> int:
    """Rows of `table` from raw messages below `ends` (i.e. not from a later copy)."""
    found = client.query(
        f"SELECT src_partition, intDiv(src_pos, 1024) FROM {table} WHERE {where}"
    ).result_rows
    return sum(1 for partition, offset in found if offset < ends[partition])


def optimizely_message(
    key: str, hit_id: str, received_at_ms: int, query: str
) -> tuple[bytes, bytes]:
    """(Kafka key, `hits.raw` value) of an Optimizely `GET /event` hit."""
    hit = rawhit.RawHit(
        hit_id=hit_id, kind="optimizely", received_at_ms=received_at_ms, path="/event", query=query
    )
    return key.encode(), rawhit.encode(hit)


def swapped_hit(i: int) -> tuple[bytes, bytes]:
    query = f"a=42&u=s{i}&n=buy&x770001=880001&g=880001"
    return optimizely_message(f"42:s{i}", f"swap-{i}", 1_790_000_100_000 + i, query)


def dead_hit(i: int) -> tuple[bytes, bytes]:
    query = f"a=42&n=novisitor&x2=3&v={i}"
    return optimizely_message(f"dead-{i}", f"dead-{i}", 1_790_000_200_000 + i, query)


@pytest.fixture
def fast_registry(hits_settings: Settings, tmp_path: Path) -> Iterator[Worker]:
    settings = replace(hits_settings, registry_refresh_s=0.5)
    handle = Worker(settings, tmp_path / "worker.log").start()
    yield handle
    handle.stop()


@pytest.mark.timeout(600)  # two replays, each with a rebuild of the results aggregates
def test_replay_of_stored_range_replaces_rows_without_a_duplicate(
    fast_registry: Worker, clickhouse: Client
) -> None:
    settings = fast_registry.settings
    started = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
    n, m, d = 200, 40, 10
    produce(settings, raw_hits(n) + [swapped_hit(i) for i in range(m)])
    produce(settings, [dead_hit(i) for i in range(d)])
    wait_for_rows(clickhouse, "SELECT count() FROM events", n + m, worker=fast_registry)
    wait_for_rows(clickhouse, "SELECT count() FROM conversions", n + m, worker=fast_registry)
    wait_for_rows(clickhouse, "SELECT count() FROM dead_letters", d, worker=fast_registry)
    wait_for_rows(clickhouse, "SELECT count() FROM impressions", n, worker=fast_registry)
    before = totals(clickhouse)
    assert before["conversions"] == (n + m, n + m)

    # The "parser fix": the registry learns experiment 880001; a probe hit shows the worker knows.
    clickhouse.insert(
        "experiments",
        experiments.rows_for(
            argparse.Namespace(
                tenant="42",
                experiment="880001",
                variations="770001,770002",
                control=None,
                weights=None,
                name="",
            )
        ),
        column_names=experiments.COLUMNS,
    )
    deadline = time.monotonic() + 30
    probe = m
    while True:
        produce(settings, [swapped_hit(probe)])
        time.sleep(0.6)
        if clickhouse.query(
            "SELECT count() FROM impressions WHERE experiment_id = '880001'"
        ).result_rows[0][0]:
            break
        assert time.monotonic() < deadline, "the worker never read the registry"
        probe += 1
    probes = probe - m + 1
    wait_for_rows(clickhouse, "SELECT count() FROM events", n + m + probes, worker=fast_registry)

    ends = end_offsets(settings)
    t0 = time.monotonic()
    code, out = cli(settings, replay, "replay", "--from", started.isoformat(), "--timeout", "60")
    first_run = time.monotonic() - t0
    assert code == 0, out
    replayed = n + m + d + probes
    assert out.startswith(f"{replayed} hits replayed"), out

    after = totals(clickhouse)
    for table, (count, unique) in after.items():
        assert count == unique, f"{table}: {count} rows, {unique} ids"
    assert after["events"][0] == n + m + probes
    assert after["dead_letters"][0] == d
    assert after["impressions"][0] == n + m + probes  # the swapped hits are impressions now
    assert after["conversions"][0] == n  # and their old conversions are gone
    assert (
        clickhouse.query(
            "SELECT count() FROM impressions WHERE experiment_id = '880001' "
            "AND variation_id = '770001' AND has(flags, 'x_param_swapped')"
        ).result_rows[0][0]
        == m + probes
    )
    for table in ("events", "impressions", "conversions", "dead_letters"):
        assert rows_before(clickhouse, table, ends) == 0, f"{table} kept a superseded row"
    # The deleted conversions of the swapped visitors left the results aggregates: the replay
    # rebuilt experiment 880001's, so they equal the raw views again.
    assert aggregates.check(clickhouse, aggregates.Scope()) == NO_DIFFERENCE

    # Again over the same range: the same rows, still no duplicate.
    ends = end_offsets(settings)
    code, out = cli(settings, replay, "replay", "--from", started.isoformat(), "--timeout", "60")
    assert code == 0, out
    dups = clickhouse.query(
        "SELECT src_partition, groupArray(src_pos), groupArray(inserted_at) FROM impressions "
        "GROUP BY impression_id, src_partition HAVING count() > 1 LIMIT 3"
    ).result_rows
    assert totals(clickhouse) == after, (out, ends, dups)
    for table in ("events", "dead_letters"):
        assert rows_before(clickhouse, table, ends) == 0
    print(f"replay of {replayed} raw hits: {first_run:.1f} s")


def monetate_hit(hit_id: str, keys: list[str]) -> tuple[bytes, bytes]:
    at = 1_790_000_300_000
    body = {
        "v": 1,
        "site": "site1",
        "visitor": "mv1",
        "session": "ms1",
        "session_start": at,
        "sent_at": at,
        "page": {"url": "https://s/p", "referrer": "", "device": "desktop", "view": "pv1"},
        "experiments": {"exp1": "A"},
        "events": [{"key": k, "at": at, "seq": i} for i, k in enumerate(keys)],
    }
    key, hit = monetate.direct_hit(orjson.dumps(body), hit_id=hit_id, received_at_ms=at)
    return key, rawhit.encode(hit)


async def publish(settings: Settings, messages: list[Message]) -> None:
    kafka = producer(settings)
    await kafka.start()
    try:
        await republish(kafka, settings.topic(RAW), messages)
    finally:
        await kafka.stop()


def test_dead_letters_listed_shown_and_redriven_without_doubling(
    worker: Worker, hits_settings: Settings, clickhouse: Client
) -> None:
    produce(hits_settings, raw_hits(20))
    produce(hits_settings, [dead_hit(i) for i in range(3)])
    produce(hits_settings, [monetate_hit("mixed-1", ["checkout", "bad key!"])])
    wait_for_rows(clickhouse, "SELECT count() FROM dead_letters", 4, worker=worker)
    wait_for_rows(clickhouse, "SELECT count() FROM events", 21, worker=worker)

    code, out = cli(hits_settings, dlq, "dlq", "list", "--reason", "missing_user_id")
    assert code == 0
    assert all(f"dead-{i}" in out for i in range(3)) and "mixed-1" not in out
    assert "totals: missing_user_id (validate) 3" in out
    code, out = cli(hits_settings, dlq, "dlq", "list", "--since", "2030-01-01T00:00:00Z")
    assert "totals: none" in out  # received in 2026 (the hits' receive times)
    code, out = cli(hits_settings, dlq, "dlq", "show", "mixed-1")
    assert code == 0 and "bad_event_key" in out and "/monetate/collect" in out
    assert cli(hits_settings, dlq, "dlq", "show", "nope")[0] == 1

    before = totals(clickhouse)
    code, out = cli(hits_settings, dlq, "dlq", "redrive", "--dry-run")
    assert (code, out.strip()) == (0, "4 hits would be re-driven, 0 skipped")
    assert totals(clickhouse) == before

    # A re-drive that crashed after publishing: its copies are stored beside the originals.
    crashed = [
        Message(p, offset, None, raw.encode())
        for p, offset, raw in clickhouse.query(
            "SELECT src_partition, intDiv(src_pos, 1024), any(raw) FROM dead_letters GROUP BY 1, 2"
        ).result_rows
    ]
    asyncio.run(publish(hits_settings, crashed))
    wait_for_rows(clickhouse, "SELECT count() FROM dead_letters", 8, worker=worker)
    wait_for_rows(clickhouse, "SELECT count() FROM events", 22, worker=worker)

    for _ in range(2):  # re-driving again converges, and twice doubles nothing either
        ends = end_offsets(hits_settings)
        t0 = time.monotonic()
        code, out = cli(hits_settings, dlq, "dlq", "redrive", "--timeout", "60")
        took = time.monotonic() - t0
        assert code == 0, out
        assert out.startswith("4 hits re-driven, 0 skipped; 0 now stored, 4 dead letters"), out
        # Re-processed (the parser still refuses them): each letter once, at its copy's position.
        assert totals(clickhouse) == before
        assert rows_before(clickhouse, "dead_letters", ends) == 0
        # The mixed hit's good event was re-derived from the copy, not doubled.
        where = "hit_id = 'mixed-1'"
        assert clickhouse.query(f"SELECT count() FROM events WHERE {where}").result_rows == [(1,)]
        assert rows_before(clickhouse, "events", ends, where) == 0
        assert aggregates.check(clickhouse, aggregates.Scope()) == NO_DIFFERENCE
    print(f"redrive of 4 dead letters: {took:.1f} s")
