"""Pipeline throughput: events/s through validate, dedup and derive for one worker, versus a plain
aiokafka consumer loop doing the same parsing, a rocksdict lookup and the same derivation, in the
same run on the same backlog. Targets (issue 13): worker >= 0.5 x baseline and >= 5,000 events/s.

The worker runs whole and stores into the local ClickHouse engine; its rate is measured between
the first and the last `events` row it stores (polled with `count()`). It also prints the Kafka
messages the worker consumed and produced per hit (every topic's end offsets after the run,
changelogs included), beside the figures of the worker before the single processing stage.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from clickhouse_connect.driver.client import Client
from rocksdict import Rdict

from bench.observe import all_end_offsets, cpu_seconds, peak_rss_bytes, rss_bytes, tree
from deploy.clickhouse_client import connect
from deploy.local import services
from deploy.local.kafka_local import KafkaBroker
from deploy.local.localstack import prepare, start_clickhouse, start_worker
from deploy.local.ports import free_port
from deploy.migrate import migrate
from pipeline.derive import derive
from pipeline.validate import validate
from schemas import rawhit
from schemas.formats import ParseContext
from schemas.settings import Settings, to_environ
from schemas.topics import EXPOSURES, RAW

HITS = int(os.environ.get("BENCH_HITS", "50000"))
# Group sizes also measured after the single worker (issue 18): BENCH_GROUPS="2" (or "" for none).
GROUPS = [int(n) for n in os.environ.get("BENCH_GROUPS", "2").split(",") if n.strip()]


def _raw(i: int) -> tuple[bytes, bytes]:
    visitor = f"oeu{i % 20_000}"
    query = (
        f"a=1234567&n=add_to_cart&u={visitor}&x87654321={i % 2}&g=87654321,555&v={i}"
        "&d=8511325&s983745985=gc"
    )
    hit = rawhit.RawHit(
        hit_id=uuid.uuid4().hex,
        kind="optimizely",
        received_at_ms=1_790_000_000_000 + i,
        path="/event",
        query=query,
        headers={"user-agent": "Mozilla/5.0 Chrome/156.0", "host": "h"},
    )
    return f"1234567:{visitor}".encode(), rawhit.encode(hit)


async def _produce(settings: Settings) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, linger_ms=20, max_batch_size=512 * 1024
    )
    await producer.start()
    try:
        for i in range(HITS):
            key, value = _raw(i)
            await producer.send(settings.topic(RAW), value, key=key)
        await producer.flush()
    finally:
        await producer.stop()


async def _baseline(settings: Settings, work: Path) -> tuple[float, float]:
    consumer = AIOKafkaConsumer(
        settings.topic(RAW),
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        group_id=f"base-{uuid.uuid4().hex}",
        enable_auto_commit=False,
        max_poll_records=2000,
    )
    db = Rdict(str(work / "baseline.rdb"))
    context = ParseContext(late_horizon_ms=7 * 86_400_000)
    await consumer.start()
    done, began, cpu = 0, 0.0, 0.0
    try:
        while done < HITS:
            batches = await consumer.getmany(timeout_ms=1000)
            if not began:
                began, cpu = time.perf_counter(), time.process_time()
            for tp, messages in batches.items():
                for message in messages:
                    result = validate(message.value, tp.partition, message.offset, context)
                    for event in result.events:
                        key = f"{event.tenant}|{event.fingerprint}".encode()
                        if db.get(key) is None:
                            db[key] = event.event_id.encode()
                        derive(event)
                    done += 1
        return done / (time.perf_counter() - began), done / (time.process_time() - cpu)
    finally:
        await consumer.stop()
        db.close()


def _events_stored(client: Client) -> int:
    return int(client.query("SELECT count() FROM events").result_rows[0][0])


@dataclass(frozen=True)
class WorkerRun:
    """One measured drain of the backlog by a group of workers."""

    workers: int
    rate: float  # events/s, first stored event to the last
    per_cpu: float  # events per CPU-second of the workers' process trees
    rss_early: int  # the group's RSS once a tenth of the backlog (at most 100k events) is stored
    rss_end: int  # and once all of it is
    rss_peak: int  # the sum of each worker process's high-water RSS
    rss_by_tenth: list[int]  # the group's RSS as each tenth of the backlog was stored


def _worker_rate(settings: Settings, work: Path, workers: int = 1) -> WorkerRun:
    procs = [
        start_worker(
            replace(settings, data_dir=f"{settings.data_dir}-{n}", worker_web_port=free_port()),
            work / f"worker-{workers}-{n}.log",
        )
        for n in range(workers)
    ]
    client = connect(settings)
    early_at = min(HITS // 10, 100_000)

    def pids() -> list[int]:
        return [pid for proc in procs for pid in tree(proc.pid)]

    try:
        first = last = 0.0
        rss_early = 0
        rss_by_tenth: list[int] = []
        deadline = time.monotonic() + 3600
        while time.monotonic() < deadline:
            written = _events_stored(client)
            now = time.perf_counter()
            if written and not first:
                first, first_count = now, written
                first_cpu = cpu_seconds(pids())
            if written >= early_at and not rss_early:
                rss_early = rss_bytes(pids())
            while len(rss_by_tenth) < 10 and written >= HITS * (len(rss_by_tenth) + 1) // 10:
                rss_by_tenth.append(rss_bytes(pids()))
            if written >= HITS:
                last, last_cpu = now, cpu_seconds(pids())
                rss_end, rss_peak = rss_bytes(pids()), peak_rss_bytes(pids())
                break
            if any(proc.poll() is not None for proc in procs):
                break
            time.sleep(0.25)
        if not last:
            tail = (work / f"worker-{workers}-0.log").read_text(errors="replace")[-4000:]
            raise RuntimeError(f"the workers stored {written:,} of {HITS:,} events:\n{tail}")
        done = HITS - first_count
        return WorkerRun(
            workers,
            done / (last - first),
            done / (last_cpu - first_cpu),
            rss_early,
            rss_end,
            rss_peak,
            rss_by_tenth,
        )
    finally:
        client.close()
        for proc in procs:
            services.stop(proc)


def _faust_floor(settings: Settings, work: Path) -> tuple[float, float]:
    """(events/s, events per CPU-second) of a Faust agent that only counts (bench/faust_floor)."""
    out = work / "floor.json"
    env = {**to_environ(settings), "BENCH_HITS": str(HITS), "BENCH_FLOOR_OUT": str(out)}
    floor = services.spawn(services.python_module("bench.faust_floor"), work / "floor.log", env)
    try:
        floor.wait(timeout=600)
    finally:
        services.stop(floor)
    if not out.exists():
        tail = (work / "floor.log").read_text(errors="replace")[-4000:]
        raise RuntimeError(f"the Faust floor agent did not finish:\n{tail}")
    found = orjson.loads(out.read_bytes())
    return found["events"] / found["wall_s"], found["events"] / found["cpu_s"]


def run() -> list[str]:
    with tempfile.TemporaryDirectory(prefix="hits-bench-") as tmp:
        work = Path(tmp)
        broker = KafkaBroker(work / "kafka").start()
        port = free_port()
        clickhouse = start_clickhouse(work / "ch", port, work / "ch.log")
        try:
            settings = replace(
                Settings(),
                kafka_bootstrap=broker.bootstrap,
                partitions=4,
                clickhouse_url=f"http://127.0.0.1:{port}",
                log_level="WARNING",
                data_dir=str(work / "worker"),
                worker_web_port=free_port(),
                kafka_session_timeout_s=4.0,
            )
            prepare(settings)
            asyncio.run(_produce(settings))
            baseline, baseline_cpu = asyncio.run(_baseline(settings, work))
            floor, floor_cpu = _faust_floor(settings, work)
            one = _worker_rate(settings, work)
            ends = asyncio.run(all_end_offsets(settings))
            groups = []
            for workers in GROUPS:  # each group reads the backlog again, as its own app
                group = replace(
                    settings,
                    app_id=f"group{workers}",
                    clickhouse_database=f"group{workers}",
                    data_dir=str(work / f"group{workers}"),
                )
                migrate(group)
                groups.append(_worker_rate(group, work, workers))
        finally:
            services.stop(clickhouse)
            broker.stop()
    raw, exposed = ends.pop(settings.topic(RAW)), ends.get(settings.topic(EXPOSURES), 0)
    ends = {topic: n for topic, n in ends.items() if not topic.startswith("group")}
    produced = sum(ends.values())
    mb = 1024 * 1024
    return [
        f"plain aiokafka loop (parse, rocksdict, derive)  {baseline:>9,.0f} events/s",
        f"Faust worker (validate, dedup, derive, sink)    {one.rate:>9,.0f} events/s",
        f"ratio worker / baseline                         {one.rate / baseline:.3f}"
        "   (target >= 0.5, and >= 5,000 events/s)",
        f"Faust agent that only counts (the framework's floor) {floor:>7,.0f} events/s",
        f"per CPU-second of the process: plain loop {baseline_cpu:,.0f}, Faust floor "
        f"{floor_cpu:,.0f}, worker {one.per_cpu:,.0f} events; worker / plain loop "
        f"{one.per_cpu / baseline_cpu:.3f} (robust to other load)",
        f"Kafka messages per hit: consumed {(raw + exposed) / HITS:.2f}, produced "
        f"{produced / HITS:.2f} ("
        + ", ".join(f"{t} {n / HITS:.2f}" for t, n in sorted(ends.items()) if n)
        + ")",
        "  before the single stage (issue 13's profile): about 4 consumed and 7 produced per hit",
        f"worker RSS: {one.rss_early / mb:,.0f} MB after {min(HITS // 10, 100_000):,} events, "
        f"{one.rss_end / mb:,.0f} MB at the end (growth "
        f"{(one.rss_end - one.rss_early) / mb:+,.0f} MB), peak {one.rss_peak / mb:,.0f} MB",
        "worker RSS as each tenth of the backlog was stored: "
        + ", ".join(f"{rss / mb:,.0f}" for rss in one.rss_by_tenth)
        + " MB",
        *(
            f"{g.workers} workers: {g.rate:,.0f} events/s together, {g.per_cpu:,.0f} events per "
            f"CPU-second of the workers ({g.per_cpu / one.per_cpu:.2f} x one worker's; "
            f"{g.rate / one.rate:.2f} x its events/s on {os.cpu_count()} cores shared with Kafka "
            "and ClickHouse)"
            for g in groups
        ),
        f"({HITS:,} hits backlog, 4 partitions; 2 cores shared with Kafka and ClickHouse)",
    ]
