"""One chaos run: traffic through the real stack while faults are injected, then reconciliation.

    python -m tests.chaos.run          # CHAOS_HITS logical hits (default 200000); `make chaos`

Faults, paced by the share of logical hits sent: Kafka stopped and restarted (at 10%), the
ClickHouse engine stopped and restarted (35%), Kafka stopped again until the gateway has spooled
hits, the gateway killed with -9 with that spool non-empty, Kafka restarted and the gateway
started again on the same spool directory, which then drains (60%); and all along a worker
`kill -9` and restart every few seconds. Exits 1 when the reconciliation finds any problem.
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

from deploy.clickhouse_client import connect
from deploy.local import services
from deploy.local.localstack import LocalStack, isolated_settings, prepare
from pipeline.rows import COLUMNS
from schemas.settings import Settings
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


@dataclass
class Report:
    config: Config
    reference: Reference
    accepted: int = 0
    unanswered_attempts: int = 0
    send_s: float = 0.0
    settle_s: float = 0.0  # from the last hit sent until ClickHouse held every accepted hit
    largest_spool: int = 0
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
        lines = [
            f"chaos run: {self.config.hits} logical hits"
            f"{' (CONTROL: unsafe sink)' if self.config.unsafe_sink else ''}",
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
            "  RESULT: " + ("OK" if r.ok else "FAILED\n    " + "\n    ".join(r.problems)),
        ]
        return "\n".join(lines)


def _settings(stack: LocalStack, root: Path, unsafe: bool) -> Settings:
    return isolated_settings(
        stack.settings(),
        root,
        "chaos",
        sink_retry_max_s=2.0,
        publish_timeout_s=1.0,
        unsafe_sink_without_dedup=unsafe,
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
    spooled = [0]

    async def monitor() -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as session:
            while True:
                try:
                    async with session.get(procs.gateway_url + "/readyz") as reply:
                        spooled[0] = int((await reply.json())["spooled"])
                        report.largest_spool = max(report.largest_spool, spooled[0])
                except (aiohttp.ClientError, TimeoutError, OSError, ValueError):
                    pass
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
        """Every few seconds, once the worker has stored something since its (re)start."""
        last, at_start = time.monotonic(), -1
        while sending:
            await asyncio.sleep(0.5)
            procs.revive_worker()
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
        assert procs.gateway is not None
        services.kill(procs.gateway)
        await asyncio.to_thread(procs.stack.kafka.start)
        await asyncio.to_thread(procs.start_gateway)
        restarted = time.monotonic()
        spooled[0] = -1
        await poll(lambda: spooled[0] == 0, 300)
        report.spool_drain_s = round(time.monotonic() - restarted, 1)
        procs.record(
            f"Kafka stopped, gateway kill -9 with {report.spool_at_gateway_kill} spooled, "
            "Kafka and gateway restarted on the same spool",
            started,
        )

    async def script() -> None:
        await until(0.10)
        if config.broker_outage and sending:
            await asyncio.to_thread(procs.broker_outage, config.hold_s)
        await until(0.35)
        if config.clickhouse_outage and sending:
            await asyncio.to_thread(procs.clickhouse_outage, config.hold_s)
        await until(0.60)
        if config.gateway_kill and sending:
            await gateway_kill_with_spool()

    tasks = [asyncio.create_task(t()) for t in (monitor, worker_killer)]
    faults = asyncio.create_task(script())
    began = time.monotonic()
    await send_all(procs.gateway_url, hits, ledger, config.concurrency, config.rate)
    report.send_s = round(time.monotonic() - began, 1)
    sending = False
    await faults
    for task in tasks:
        task.cancel()
    client.close()
    return ledger


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
    settings = _settings(stack, root, config.unsafe_sink)
    prepare(settings)
    _stop_merges(settings)
    procs = Processes(stack, settings, root / "logs")
    report = Report(config, Reference.of(plan(config.hits)))
    try:
        procs.start_worker()
        procs.start_gateway()
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
            procs.revive_worker()
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
    finally:
        for process in (procs.gateway, procs.worker):
            if process is not None:
                services.stop(process)
        if own:
            stack.stop()
    return report


def main() -> int:
    hits = int(os.environ.get("CHAOS_HITS", "200000"))
    root = Path(os.environ.get("CHAOS_DIR", ".local/chaos")) / time.strftime("%Y%m%d-%H%M%S")
    root.mkdir(parents=True, exist_ok=True)
    config = replace(Config(), hits=hits)
    report = run(root, config)
    text = report.text()
    print(text)
    (root / "report.txt").write_text(text + "\n")
    (root / "report.json").write_text(json.dumps(asdict(report), indent=2, default=str))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
