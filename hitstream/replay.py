"""`hitstream replay`: re-process raw hits already in `hits.raw`, e.g. after a parser fix.

How a replay is processed, and why it is idempotent:

1. The range is resolved per partition into half-open offsets [from, to): offsets as given, times
   through Kafka's `offsets_for_times` (first message at or after the time); `--to` defaults to
   the end of the partition when the command starts, so the copies never feed the replay itself.
2. Each message is copied byte for byte back into `hits.raw`, on the partition it was read from
   (header `hitstream-replay-of: p@offset`). The running worker treats a copy like any raw hit
   at a new, higher offset: the sink's marks (`pipeline.progress`) let its rows through, and
   they carry the same stable ids as before (uuid5 over the hit id), computed by today's parser.
   Dedup state stores the first event's id, so a copy of a first event is still the first.
3. Once the worker has stored every copy (each raw message yields an `events` row or a dead
   letter; then the worker's group offsets on `hits.raw` must pass every copy), the
   rows of the superseded messages are deleted in every table (lightweight `DELETE` by
   `src_partition` and `src_pos`): the originals, any earlier message of the same hit ids (copies
   from an earlier replay or re-drive), and any earlier row with the id of a row the copies stored
   (in case a merge collapsed the earlier copy's `events` row). Rows the fixed parser no longer
   makes (a conversion that is now an impression, a dead letter that now parses) go with them,
   even when their ordering key changed, which ReplacingMergeTree alone could never collapse.

So after the command returns, every table holds each id once, without FINAL (`count()` equals
`uniqExact(id)`), and running it again, or stopping it half-way and running it again, converges to
the same rows. Between steps 2 and 3 the copies and originals coexist (views over `FINAL` still
count once). If the worker does not store the copies within `--timeout`, nothing is deleted and
the command fails: run it again once the worker is back. Only rows older than the copies are
deleted, so two overlapping replays running at once may leave a duplicate but never lose a row;
running either again converges.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from tqdm import tqdm

from deploy.clickhouse_client import connect
from deploy.kafka_security import client_options
from hitstream.replay_range import Bound, parse_bound, partition_range
from hitstream.supersede import (
    Copy,
    Message,
    RebuildFailed,
    SettleTimeout,
    producer,
    republish,
    settle,
)
from schemas import rawhit
from schemas.settings import Settings
from schemas.topics import RAW

CHUNK = 2000

EXAMPLES = """\
examples:
  # every raw hit of one day (UTC), all partitions
  hitstream replay --from 2026-11-22T00:00:00Z --to 2026-11-23T00:00:00Z
  # the last two hours, by epoch milliseconds
  hitstream replay --from $(( ($(date +%s) - 7200) * 1000 )) --to $(( $(date +%s) * 1000 ))
  # offsets 1000 up to (not including) 5000 of partition 3
  hitstream replay --from 1000 --to 5000 --partition 3
  # what would be replayed, without publishing
  hitstream replay --from 2026-11-22T00:00:00Z --dry-run

--from is inclusive and --to exclusive. A bound is an offset (an integer below 10^12), epoch
milliseconds (13 digits, or a number ending in "ms") or an ISO-8601 time (UTC unless it says).
The worker must be running: the copies go through it. Safe to run again: see README,
"Replay and re-drive".
"""


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "replay",
        help="re-process raw hits of a time or offset range (idempotent)",
        description="Re-process raw hits already in hits.raw through the current parser; the "
        "rows they give replace the old ones.",
        epilog=EXAMPLES,
    )
    parser.add_argument("--from", dest="start", required=True, type=parse_bound)
    parser.add_argument("--to", dest="stop", type=parse_bound, help="default: the end now")
    parser.add_argument("--partition", type=int, help="one partition (default: all)")
    parser.add_argument("--dry-run", action="store_true", help="show the ranges only")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds for the worker")


async def ranges(
    consumer: AIOKafkaConsumer,
    topic: str,
    partitions: set[int],
    start: Bound,
    stop: Bound | None,
    partition: int | None,
) -> dict[int, tuple[int, int]]:
    """Half-open offset ranges per partition of `topic`."""
    parts = sorted(partitions)
    if partition is not None:
        if partition not in parts:
            raise SystemExit(f"{topic} has no partition {partition} (it has {parts})")
        parts = [partition]
    tps = [TopicPartition(topic, p) for p in parts]
    begins = await consumer.beginning_offsets(tps)
    ends = await consumer.end_offsets(tps)
    looked_up: dict[str, dict[TopicPartition, int | None]] = {}
    for name, bound in (("from", start), ("to", stop)):
        if bound is not None and bound.kind == "time":
            found = await consumer.offsets_for_times(dict.fromkeys(tps, bound.value))
            looked_up[name] = {tp: (o.offset if o else None) for tp, o in found.items()}
    return {
        tp.partition: partition_range(
            start,
            stop,
            begins[tp],
            ends[tp],
            {name: by_tp.get(tp) for name, by_tp in looked_up.items()},
        )
        for tp in tps
    }


async def copy_range(
    consumer: AIOKafkaConsumer,
    kafka: AIOKafkaProducer,
    topic: str,
    spans: dict[int, tuple[int, int]],
    progress: Callable[[int], None],
) -> list[Copy]:
    """Read [first, last) of each partition and publish each message again on its partition."""
    copies: list[Copy] = []
    for partition, (first, last) in sorted(spans.items()):
        if first >= last:
            continue
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, first)
        idle = 0
        seen: set[str] = set()
        while await consumer.position(tp) < last:
            batch = await consumer.getmany(tp, timeout_ms=1000, max_records=CHUNK)
            records = [r for r in batch.get(tp, []) if r.offset < last]
            if not records:
                idle += 1
                if idle > 30:
                    raise SystemExit(f"{topic}[{partition}]: no messages before {last} in 30 s")
                continue
            idle = 0
            messages = []
            for r in records:
                hit_id = _hit_id(r.value)
                if hit_id and hit_id in seen:
                    continue  # an accidental second copy in the range: one copy per hit
                seen.add(hit_id)
                messages.append(Message(partition, r.offset, r.key, r.value))
            copies.extend(await republish(kafka, topic, messages))
            progress(len(records))
    return copies


def _hit_id(value: bytes | None) -> str:
    try:
        return rawhit.decode(value or b"").hit_id
    except rawhit.RawHitError:
        return ""


async def replay(settings: Settings, args: argparse.Namespace) -> int:
    topic = settings.topic(RAW)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        group_id=None,
        **client_options(settings),
    )
    kafka = producer(settings)
    await consumer.start()
    await kafka.start()
    try:
        partitions = await kafka.partitions_for(topic)
        spans = await ranges(consumer, topic, partitions, args.start, args.stop, args.partition)
        total = sum(last - first for first, last in spans.values())
        for p, (first, last) in sorted(spans.items()):
            print(f"{topic}[{p}] offsets {first}..{last - 1}: {last - first} hits", file=sys.stderr)
        if args.dry_run or total == 0:
            print(f"{total} hits {'would be ' if args.dry_run else ''}replayed")
            return 0
        with tqdm(total=total, desc="replayed", unit="hit", disable=None) as bar:
            copies = await copy_range(consumer, kafka, topic, spans, bar.update)
    finally:
        await kafka.stop()
        await consumer.stop()
    client = connect(settings)
    try:
        deleted = await settle(settings, client, copies, args.timeout)
    except SettleTimeout as exc:
        print(f"replay: {exc}; nothing was deleted. Run the same command again.", file=sys.stderr)
        return 1
    except RebuildFailed as exc:
        print(f"replay: superseded rows were deleted, but {exc}", file=sys.stderr)
        return 1
    finally:
        client.close()
    print(f"{len(copies)} hits replayed; superseded rows deleted: {_counts(deleted)}")
    return 0


def _counts(deleted: dict[str, int]) -> str:
    return ", ".join(f"{t} {n}" for t, n in sorted(deleted.items())) or "none"


def run(args: argparse.Namespace, settings: Settings) -> int:
    return asyncio.run(replay(settings, args))
