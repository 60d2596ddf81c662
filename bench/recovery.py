"""Worker restart with BENCH_KEYS (default 1,000,000) keys in the dedup tables.

How the tables are filled: the keys are produced straight into the tables' changelog topics
(`<app id>-<table>-changelog`, compacted, one partition per raw partition), in the very formats
the worker writes (`retries`: tenant|fingerprint -> event id|receive time; `sessions`:
tenant^session^event -> 1|event id|receive time; `hit_ids`: hit id -> offset|receive time),
split evenly over the three tables. That is what a worker leaves behind after ~500k hits, reached
in seconds instead of minutes; the receive times are "now", so no key is expired by the first
sweep, which still reads every key of its partition (the real cost of a restart).

Measured, each as the time from starting `python -m pipeline.worker` to the first new marker
hit stored in ClickHouse (one marker per partition is waiting in `hits.raw`), and to all of them:
- empty tables (the fixed cost of a Faust worker start, for reference);
- rebuild: no data dir, the tables recovered from the changelog (target <= 50 s per million);
- warm restart: stopped with SIGTERM, started again on the same data dir (target <= 15 s).
Baseline: a plain aiokafka consumer reading the same changelog topics into one rocksdict per
table partition (the floor a rebuild could reach on this machine). Ratio: baseline / rebuild.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from rocksdict import Rdict

from bench.observe import directory_bytes, load_average, stored_hits
from bench.stack import local_stack
from deploy.local import services
from deploy.local.localstack import start_worker
from pipeline import seen
from schemas import rawhit
from schemas.settings import Settings
from schemas.topics import RAW

KEYS = int(os.environ.get("BENCH_KEYS", "1000000"))
TABLES = ("seen", "sessions")
STOP_TIMEOUT_S = 20.0  # then SIGKILL (services.stop): the warm restart follows a kill -9


def changelog(settings: Settings, table: str) -> str:
    return f"{settings.app_id}-{table}-changelog"


def _entry(table: str, i: int, now_ms: int) -> tuple[bytes, bytes]:
    value = seen.encode(seen.FirstSeen(str(uuid.UUID(int=i)), i, now_ms))
    if table == "seen":
        return seen.retry_key("1234567", f"fp{i:012d}"), value
    return f"shop\x1fs{i}\x1fbuy".encode(), value


async def _fill(settings: Settings) -> float:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:  # the empty-table start already made Faust create them (same partitions, compacted)
        with contextlib.suppress(TopicAlreadyExistsError):
            await admin.create_topics(
                [
                    NewTopic(
                        changelog(settings, t),
                        settings.partitions,
                        1,
                        topic_configs={"cleanup.policy": "compact"},
                    )
                    for t in TABLES
                ]
            )
    finally:
        await admin.close()
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        linger_ms=50,
        max_batch_size=1 << 20,
        compression_type="lz4",
    )
    await producer.start()
    began = time.perf_counter()
    now_ms = time.time_ns() // 1_000_000
    try:
        for i in range(KEYS):
            table = TABLES[i % len(TABLES)]
            key, value = _entry(table, i, now_ms)
            await producer.send(
                changelog(settings, table), value, key=key, partition=i % settings.partitions
            )
        await producer.flush()
    finally:
        await producer.stop()
    return time.perf_counter() - began


async def _baseline(settings: Settings, work: Path) -> float:
    """Read every changelog record into one rocksdict per table partition, like Faust's store."""
    tps = [
        TopicPartition(changelog(settings, t), p)
        for t in TABLES
        for p in range(settings.partitions)
    ]
    began = time.perf_counter()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        enable_auto_commit=False,
        max_poll_records=10_000,
        fetch_max_bytes=64 << 20,
        max_partition_fetch_bytes=8 << 20,
    )
    await consumer.start()
    dbs = {tp: Rdict(str(work / "baseline" / f"{tp.topic}-{tp.partition}.db")) for tp in tps}
    try:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        left = sum(ends.values())
        while left > 0:
            for tp, records in (await consumer.getmany(timeout_ms=1000)).items():
                db = dbs[tp]
                for record in records:
                    assert record.key is not None
                    if record.value is None:
                        del db[record.key]
                    else:
                        db[record.key] = record.value
                left -= len(records)
        return time.perf_counter() - began
    finally:
        await consumer.stop()
        for db in dbs.values():
            db.close()


async def _markers(settings: Settings) -> None:
    """One new Optimizely hit per raw partition, for a (re)started worker to process."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    try:
        for p in range(settings.partitions):
            visitor = f"marker-{uuid.uuid4().hex[:12]}"
            hit = rawhit.RawHit(
                hit_id=uuid.uuid4().hex,
                kind="optimizely",
                received_at_ms=time.time_ns() // 1_000_000,
                path="/event",
                query=f"a=1234567&n=restart&u={visitor}&x87654321=1&g=555",
                headers={"user-agent": "bench"},
            )
            await producer.send_and_wait(
                settings.topic(RAW),
                rawhit.encode(hit),
                key=f"1234567:{visitor}".encode(),
                partition=p,
            )
    finally:
        await producer.stop()


@dataclass(frozen=True)
class Start:
    first_s: float  # worker process start -> the first marker stored in ClickHouse
    all_s: float  # ... -> one marker per partition stored


def _start(settings: Settings, work: Path, label: str) -> tuple[Start, subprocess.Popen[bytes]]:
    before = stored_hits(settings)
    asyncio.run(_markers(settings))
    began = time.monotonic()
    worker = start_worker(settings, work / f"worker-{label}.log")
    first = 0.0
    deadline = began + 600
    while time.monotonic() < deadline and worker.poll() is None:
        written = stored_hits(settings) - before
        if written and not first:
            first = time.monotonic() - began
        if written >= settings.partitions:
            return Start(first, time.monotonic() - began), worker
        time.sleep(0.1)
    tail = (work / f"worker-{label}.log").read_text(errors="replace")[-3000:]
    services.stop(worker)
    raise RuntimeError(f"{label}: the worker did not process the markers:\n{tail}")


def run() -> list[str]:
    with local_stack(partitions=4) as (_stack, settings, work):
        empty, worker = _start(settings, work, "empty")
        services.stop(worker)
        shutil.rmtree(settings.data_dir)  # the rebuild starts without a data dir
        fill_s = asyncio.run(_fill(settings))
        baseline = asyncio.run(_baseline(settings, work))
        rebuild, worker = _start(settings, work, "rebuild")
        stopping = time.monotonic()
        services.stop(worker, timeout=STOP_TIMEOUT_S)
        stop_s = time.monotonic() - stopping
        store_mb = directory_bytes(Path(settings.data_dir)) / 1e6
        warm, worker = _start(settings, work, "warm")
        services.stop(worker)
    per_million = rebuild.first_s * 1_000_000 / KEYS
    return [
        f"{KEYS:,} keys produced to the changelogs of {', '.join(TABLES)} in {fill_s:.1f} s "
        f"(4 partitions; RocksDB dir after rebuild {store_mb:,.0f} MB)",
        f"baseline: aiokafka -> rocksdict, all changelogs  {baseline:6.1f} s",
        f"worker start, empty tables       first event {empty.first_s:6.1f} s   "
        f"all partitions {empty.all_s:6.1f} s",
        f"rebuild from changelog (no dir)  first event {rebuild.first_s:6.1f} s   "
        f"all partitions {rebuild.all_s:6.1f} s   = {per_million:.1f} s per million keys "
        "(target <= 50)",
        f"warm restart (same dir)          first event {warm.first_s:6.1f} s   "
        f"all partitions {warm.all_s:6.1f} s   (target <= 15)",
        f"stopping the rebuilt worker: SIGTERM -> exit {stop_s:.1f} s"
        + (
            " (did not exit: SIGKILL; the warm restart followed a kill)"
            if stop_s >= STOP_TIMEOUT_S
            else ""
        ),
        f"ratio baseline / rebuild         {baseline / rebuild.first_s:.3f}   "
        f"(rebuild beyond the worker's empty start: {rebuild.first_s - empty.first_s:.1f} s)",
        f"(one run; session timeout 6 s as in `make run`; load average {load_average()})",
    ]


if __name__ == "__main__":
    for line in run():
        print(line, flush=True)
