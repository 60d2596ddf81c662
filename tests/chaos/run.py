"""One chaos run: traffic through the real stack while faults are injected, then reconciliation.

    python -m tests.chaos.run   # `make chaos`; CHAOS_HITS logical hits (default 200000),
                                # CHAOS_WORKERS, CHAOS_GATEWAYS, CHAOS_PARTITIONS (1, 1, 4),
                                # CHAOS_WORKER_KILL_EVERY_S (10; 30 with a group),
                                # CHAOS_SESSION_TIMEOUT_S (4; 10 with a group)

Faults, paced by the share of logical hits sent: Kafka stopped and restarted (at 10%), the
ClickHouse engine stopped and restarted (35%), Kafka stopped again until the gateway has spooled
hits, the gateway killed with -9 with that spool non-empty, Kafka restarted and the gateway
started again on the same spool directory, which then drains (60%); and all along a worker
`kill -9` and restart every few seconds (the live workers take turns).

With a group (`workers` > 1) the run starts one worker fewer: the last one joins at 20% (a
rebalance while batches are pending), worker 0 leaves cleanly (SIGTERM) at 45% and joins again
at 50% on its own RocksDB directory (a rolling restart); each gateway has its own port and spool,
the client spreads attempts over them and sends a failed attempt's retry to the next one, and
gateway 0 is the one killed with hits spooled. Exits 1 when the reconciliation finds any problem.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from deploy.clickhouse_client import connect
from deploy.local import services
from deploy.local.localstack import LocalStack, isolated_settings, prepare
from pipeline.rows import COLUMNS
from schemas.settings import Settings
from schemas.topics import RAW
from tests.chaos.faults import Fault, Processes
from tests.chaos.reconcile import Reconciliation, progress, reconcile
from tests.chaos.traffic import Ledger, Reference, plan, send_all

LEDGER_SETS = ("accepted_good", "accepted_bad", "unanswered_good", "unanswered_bad")


@dataclass(frozen=True)
class Config:
    hits: int = 200_000
    rate: float = 0.0  # logical hits per second; 0: as fast as the client goes
    concurrency: int = 48
    hold_s: float = 8.0  # how long Kafka and ClickHouse stay down
    worker_kill_every_s: float = 10.0
    broker_outage: bool = True
    clickhouse_outage: bool = True
    gateway_kill: bool = True
    settle_timeout_s: float = 1800.0
    unsafe_sink: bool = False  # the control run: the sink without dedup token and marks
    workers: int = 1
    gateways: int = 1
    partitions: int = 4
    join_leave: bool = True  # with workers > 1: the last joins late, worker 0 leaves and returns
    # The consumer group's session timeout. 4 s makes a test quick; with three workers on a
    # loaded 2-core box (load average 25) their heartbeats came late, and a 100,000-hit run
    # rebalanced 119 times in 12 minutes and stored 19 events: groups use the default, 10 s.
    session_timeout_s: float = 4.0


@dataclass
class Report:
    config: Config
    reference: Reference
    accepted: int = 0
    unanswered_attempts: int = 0
    send_s: float = 0.0
    settle_s: float = 0.0  # from the last hit sent until ClickHouse held every accepted hit
    largest_spool: int = 0
    # hits.raw messages the group has not committed, per partition, when the run was checked:
    # what "lost" rows still wait for (a stalled partition), as opposed to rows gone for good
    raw_backlog: dict[int, int] = field(default_factory=dict)
    spool_at_gateway_kill: int = 0
    spool_drain_s: float = 0.0  # restarted gateway: from its start until its spool was empty
    faults: list[Fault] = field(default_factory=list)
    result: Reconciliation | None = None

    @property
    def ok(self) -> bool:
        return self.result is not None and self.result.ok

    def text(self) -> str:
        r = self.result
        assert r is not None
        kills = sum(f.what.startswith("worker kill") for f in self.faults)
        c = self.config
        lines = [
            f"chaos run: {c.hits} logical hits"
            f"{' (CONTROL: unsafe sink)' if c.unsafe_sink else ''}; {c.workers} worker(s), "
            f"{c.gateways} gateway(s), {c.partitions} partitions, {c.session_timeout_s:.0f} s "
            f"session, a worker kill every {c.worker_kill_every_s:.0f} s",
            f"  accepted attempts (200): {self.accepted}   unanswered attempts: "
            f"{self.unanswered_attempts} (stored anyway: {r.stored_unanswered})",
            f"  reference: {asdict(self.reference)}",
            f"  sending took {self.send_s:.1f} s; ClickHouse complete {self.settle_s:.1f} s later",
            f"  largest spool depth {self.largest_spool}; {self.spool_at_gateway_kill} spooled at "
            f"the gateway kill -9, drained {self.spool_drain_s:.1f} s after its restart",
            f"  faults ({len(self.faults)}, of which {kills} worker kill -9):",
            *(
                f"    t={f.at_s:7.1f} s  {f.what} ({f.took_s:.1f} s)"
                for f in sorted(self.faults, key=lambda f: f.at_s)
            ),
            f"  rows stored: {r.rows}",
            f"  lost: {r.lost}   duplicated: {r.duplicated}",
            f"  hits.raw not committed at the check (partition: messages): {self.raw_backlog}",
            "  RESULT: " + ("OK" if r.ok else "FAILED\n    " + "\n    ".join(r.problems)),
        ]
        return "\n".join(lines)


def _settings(stack: LocalStack, root: Path, config: Config) -> Settings:
    return isolated_settings(
        stack.settings(),
        root,
        "chaos",
        sink_retry_max_s=2.0,
        publish_timeout_s=1.0,
        unsafe_sink_without_dedup=config.unsafe_sink,
        partitions=config.partitions,
        kafka_session_timeout_s=config.session_timeout_s,
    )


async def poll(condition: Callable[[], bool], seconds: float) -> None:
    """Return once `condition` holds, or after `seconds`."""
    for _ in range(int(seconds * 10)):
        if condition():
            return
        await asyncio.sleep(0.1)


async def _traffic_and_faults(procs: Processes, config: Config, report: Report) -> Ledger:
    hits = plan(config.hits)
    ledger = Ledger()
    client = connect(procs.settings)
    sending = True
    spooled = [0] * config.gateways  # per gateway, from its /readyz

    async def monitor() -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as session:
            while True:
                for index, url in enumerate(procs.gateway_urls):
                    try:
                        async with session.get(url + "/readyz") as reply:
                            spooled[index] = int((await reply.json())["spooled"])
                    except (aiohttp.ClientError, TimeoutError, OSError, ValueError):
                        pass
                report.largest_spool = max(report.largest_spool, sum(max(n, 0) for n in spooled))
                await asyncio.sleep(0.25)

    async def until(share: float) -> None:
        await poll(lambda: not sending or ledger.sent >= share * len(hits), 24 * 3600)

    def stored_events() -> int | None:
        try:
            return progress(client)[0]
        except Exception:  # the ClickHouse outage, or the engine restarting
            client.close()
            return None

    async def worker_killer() -> None:
        """Every few seconds, once the workers stored something since the last kill."""
        last, at_start = time.monotonic(), -1
        while sending:
            await asyncio.sleep(0.5)
            procs.revive_workers()
            if not sending or time.monotonic() - last < config.worker_kill_every_s:
                continue
            stored = await asyncio.to_thread(stored_events)
            if stored is None or stored > at_start:
                await asyncio.to_thread(procs.kill_worker)
                last, at_start = time.monotonic(), stored if stored is not None else -1

    async def gateway_kill_with_spool() -> None:
        started = procs.now()
        assert procs.stack.kafka is not None
        await asyncio.to_thread(procs.stack.kafka.stop)
        await poll(lambda: spooled[0] >= 20, 30)
        report.spool_at_gateway_kill = spooled[0]
        services.kill(procs.gateways[0])
        await asyncio.to_thread(procs.start_kafka)
        await asyncio.to_thread(procs.start_gateway, 0)
        restarted = time.monotonic()
        spooled[0] = -1
        await poll(lambda: spooled[0] == 0, 300)
        report.spool_drain_s = round(time.monotonic() - restarted, 1)
        procs.record(
            f"Kafka stopped, gateway 0 kill -9 with {report.spool_at_gateway_kill} spooled, "
            "Kafka and gateway restarted on the same spool",
            started,
        )

    group = config.workers > 1 and config.join_leave

    async def script() -> None:
        await until(0.10)
        if config.broker_outage and sending:
            await asyncio.to_thread(procs.broker_outage, config.hold_s)
        await until(0.20)
        if group and sending:
            await asyncio.to_thread(procs.worker_joins, config.workers - 1)
        await until(0.35)
        if config.clickhouse_outage and sending:
            await asyncio.to_thread(procs.clickhouse_outage, config.hold_s)
        await until(0.45)
        if group and sending:
            await asyncio.to_thread(procs.worker_leaves, 0)
        await until(0.50)
        if group and 0 in procs.left:  # even when sending ended: the group ends whole
            await asyncio.to_thread(procs.worker_joins, 0)
        await until(0.60)
        if config.gateway_kill and sending:
            await gateway_kill_with_spool()

    tasks = [asyncio.create_task(t()) for t in (monitor, worker_killer)]
    faults = asyncio.create_task(script())
    began = time.monotonic()
    await send_all(procs.gateway_urls, hits, ledger, config.concurrency, config.rate)
    report.send_s = round(time.monotonic() - began, 1)
    sending = False
    await faults
    for task in tasks:
        task.cancel()
    client.close()
    return ledger


async def _raw_backlog(settings: Settings) -> dict[int, int]:
    """hits.raw messages past the group's committed offset, per partition that has any."""
    topic = settings.topic(RAW)
    partitions = [TopicPartition(topic, p) for p in range(settings.partitions)]
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await consumer.start()
    await admin.start()
    try:
        ends = await consumer.end_offsets(partitions)
        committed = await admin.list_consumer_group_offsets(settings.app_id, partitions=partitions)
    finally:
        await consumer.stop()
        await admin.close()
    backlog = {
        tp.partition: ends[tp] - max(committed[tp].offset, 0) if tp in committed else ends[tp]
        for tp in partitions
    }
    return {p: n for p, n in backlog.items() if n}


def _stop_merges(settings: Settings) -> None:
    """No background merges in the run's tables: ReplacingMergeTree collapses rows stored twice
    when it merges their parts, which would hide from the reconciliation a batch stored again
    (it did, in the control run: every duplicate it stored was merged away before the check)."""
    client = connect(settings)
    try:
        for table in COLUMNS:
            client.command(f"SYSTEM STOP MERGES {table}")
    finally:
        client.close()


def run(root: Path, config: Config, stack: LocalStack | None = None) -> Report:
    """One run; with `stack` (Kafka and ClickHouse already up) its own topics and database."""
    own = stack is None
    stack = stack or LocalStack(root / "stack").start()
    settings = _settings(stack, root, config)
    prepare(settings)
    _stop_merges(settings)
    procs = Processes(stack, settings, root / "logs", gateway_count=config.gateways)
    report = Report(config, Reference.of(plan(config.hits)))
    try:
        joins_later = config.workers > 1 and config.join_leave  # the last worker joins at 20%
        for index in range(config.workers - 1 if joins_later else config.workers):
            procs.start_worker(index)
        for index in range(config.gateways):
            procs.start_gateway(index)
        ledger = asyncio.run(_traffic_and_faults(procs, config, report))
        report.accepted = ledger.accepted
        report.unanswered_attempts = len(ledger.unanswered_good) + len(ledger.unanswered_bad)
        report.faults = procs.faults
        (root / "ledger.json").write_bytes(  # to reconcile again by hand
            orjson.dumps(
                {
                    "clickhouse": settings.clickhouse_url,
                    "database": settings.clickhouse_database,
                    **{k: sorted(getattr(ledger, k)) for k in LEDGER_SETS},
                }
            )
        )
        client = connect(settings)
        began = time.monotonic()
        deadline = began + config.settle_timeout_s
        seen: list[tuple[int, ...]] = []
        while time.monotonic() < deadline:
            procs.revive_workers()
            counts = progress(client)
            complete = counts[0] >= len(ledger.accepted_good) and counts[1] >= len(
                ledger.accepted_bad
            )
            seen = [*seen[-3:], counts]
            if complete and len(seen) == 4 and len(set(seen)) == 1:
                break
            if complete and report.settle_s == 0:
                report.settle_s = round(time.monotonic() - began, 1)
            time.sleep(1)
        report.result = reconcile(client, ledger, report.reference)
        client.close()
        try:
            report.raw_backlog = asyncio.run(_raw_backlog(settings))
        except Exception as exc:  # a diagnostic only: the reconciliation stands without it
            print(f"hits.raw backlog not read: {exc!r}", file=sys.stderr)
    finally:
        procs.stop_all()
        if own:
            stack.stop()
    return report


def main() -> int:
    env = os.environ
    root = Path(env.get("CHAOS_DIR", ".local/chaos")) / time.strftime("%Y%m%d-%H%M%S")
    root.mkdir(parents=True, exist_ok=True)
    workers = int(env.get("CHAOS_WORKERS", "1"))
    group = workers > 1
    config = replace(
        Config(),
        hits=int(env.get("CHAOS_HITS", "200000")),
        workers=workers,
        gateways=int(env.get("CHAOS_GATEWAYS", "1")),
        partitions=int(env.get("CHAOS_PARTITIONS", "4")),
        worker_kill_every_s=float(env.get("CHAOS_WORKER_KILL_EVERY_S", "30" if group else "10")),
        session_timeout_s=float(env.get("CHAOS_SESSION_TIMEOUT_S", "10" if group else "4")),
    )
    report = run(root, config)
    text = report.text()
    print(text)
    (root / "report.txt").write_text(text + "\n")
    (root / "report.json").write_text(json.dumps(asdict(report), indent=2, default=str))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
