"""End to end on the local stack (real Kafka, chDB server, one gateway, one worker processes).

1. Sustained load: Optimizely GET beacons with browser headers at a fixed rate (BENCH_RATE,
   default 150/s: what 2 shared cores sustained; open loop, `bench.beacons`) for BENCH_SECONDS
   (default 600, the issue's 10 minutes). Every BENCH_SAMPLE_S (5 s): CPU % (of one core) of
   the gateway and of the worker's process tree, the machine's CPU %, and the worker group's
   consumer lag (end offsets minus committed, hits.raw + hits.exposures). Reported:
   answered hits/s, CPU, lag at start (a tenth in), middle and end, and the gateway's and
   worker's peak RSS (VmHWM). The lag must then drain before the latency phase.
2. Latency at half that rate for BENCH_LATENCY_SECONDS (default 60): one hit in 10 carries a
   unique visitor id of tenant 7654321; the bench records the wall time of its 200 and polls
   ClickHouse every 100 ms for the marker's row in `events`; latency = first seen - 200. The
   poll interval and query time add up to ~0.1-0.2 s. As a cross-check the server-side
   `inserted_at - received_at` of all the phase's rows (same clock). Targets p50 <= 1 s,
   p99 <= 2.5 s, with the sink's default batching (HITS_SINK_BATCH_SECONDS 0.5).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
import urllib.parse
import uuid
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import uvloop

from bench.beacons import Tally, drive
from bench.observe import CpuMeter, consumer_lag, load_average, peak_rss_bytes, tree
from bench.stack import local_stack
from deploy.local.localstack import start_gateway, start_worker
from deploy.local.ports import free_port
from schemas.settings import Settings

SECONDS = float(os.environ.get("BENCH_SECONDS", "600"))
RATE = float(os.environ.get("BENCH_RATE", "150"))
SAMPLE_S = float(os.environ.get("BENCH_SAMPLE_S", "5"))
LATENCY_SECONDS = float(os.environ.get("BENCH_LATENCY_SECONDS", "60"))
DRAIN_LIMIT_S = 300.0
MARKER_TENANT = "7654321"  # Optimizely account ids are numeric


def _beacon(tenant: str, visitor: str) -> str:
    return (
        f"/event?a={tenant}&n=add_to_cart&u={visitor}&x87654321=1111111"
        "&x98765432=2222222_3333333&g=555,87654321&v=1999&d=8511325&s983745985=gc"
    )


def _machine_busy() -> tuple[float, float]:
    fields = [float(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


@dataclass
class Sample:
    at_s: float
    answered: int
    gateway_cpu: float
    worker_cpu: float
    machine_cpu: float
    lag: int


async def _sample_loop(
    settings: Settings, gateway: int, worker: int, tally: Tally, seconds: float
) -> list[Sample]:
    gateway_cpu, worker_cpu = CpuMeter(gateway), CpuMeter(worker)
    gateway_cpu.percent(), worker_cpu.percent()
    busy, total = _machine_busy()
    began, samples = time.monotonic(), []
    while (now := time.monotonic() - began) < seconds:
        await asyncio.sleep(min(SAMPLE_S, max(seconds - now, 0.1)))
        busy2, total2 = _machine_busy()
        machine = 100 * (busy2 - busy) / max(total2 - total, 1)
        busy, total = busy2, total2
        lag = sum((await consumer_lag(settings)).values())
        samples.append(
            Sample(
                time.monotonic() - began,
                tally.ok,
                gateway_cpu.percent(),
                worker_cpu.percent(),
                machine,
                lag,
            )
        )
    return samples


async def _sustained(
    settings: Settings, gateway: int, worker: int
) -> tuple[Tally, list[Sample], float]:
    tally = Tally()

    def request(i: int) -> tuple[str, str]:
        return _beacon("1234567", f"oeu{i}"), ""

    began = time.monotonic()
    load = drive("127.0.0.1", settings.gateway_port, RATE, SECONDS, request, tally)
    _, samples = await asyncio.gather(load, _sample_loop(settings, gateway, worker, tally, SECONDS))
    return tally, samples, time.monotonic() - began


async def _query(session: aiohttp.ClientSession, settings: Settings, sql: str) -> list[list[str]]:
    url = f"{settings.clickhouse_url}/?database={settings.clickhouse_database}"
    async with session.post(url, data=sql + " FORMAT TabSeparated") as response:
        text = await response.text()
        response.raise_for_status()
    return [line.split("\t") for line in text.splitlines() if line]


async def _latency(settings: Settings) -> tuple[list[float], list[float], int]:
    """(client latencies s, server-side inserted_at - received_at s, markers lost)."""
    tally = Tally()
    run = uuid.uuid4().hex[:8]

    def request(i: int) -> tuple[str, str]:
        if i % 10:
            return _beacon("1234567", f"lat{run}-{i}"), ""
        marker = f"m{run}-{i}"
        return _beacon(MARKER_TENANT, urllib.parse.quote(marker)), marker

    seen: dict[str, float] = {}
    done = asyncio.Event()

    async def poll() -> None:
        async with aiohttp.ClientSession() as session:
            sql = (
                f"SELECT visitor_id FROM events WHERE tenant = '{MARKER_TENANT}' "
                "AND inserted_at >= now64(3) - INTERVAL 20 SECOND"
            )
            while not done.is_set() or len(seen) < len(tally.answered_at):
                for (visitor,) in await _query(session, settings, sql):
                    seen.setdefault(visitor, time.time())
                if done.is_set() and time.time() - last_answer() > 20:
                    break
                await asyncio.sleep(0.1)

    def last_answer() -> float:
        return max(tally.answered_at.values(), default=time.time())

    async def load() -> None:
        await drive("127.0.0.1", settings.gateway_port, RATE / 2, LATENCY_SECONDS, request, tally)
        done.set()

    await asyncio.gather(load(), poll())
    client = [seen[m] - t for m, t in tally.answered_at.items() if m in seen]
    async with aiohttp.ClientSession() as session:
        rows = await _query(
            session,
            settings,
            "SELECT dateDiff('millisecond', received_at, inserted_at) FROM events "
            f"WHERE tenant IN ('{MARKER_TENANT}', '1234567') AND startsWith(visitor_id, 'lat{run}')"
            f" OR (tenant = '{MARKER_TENANT}' AND startsWith(visitor_id, 'm{run}'))",
        )
    server = [int(r[0]) / 1000 for r in rows]
    return client, server, len(tally.answered_at) - len(client)


def _quantile(values: list[float], q: float) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=1000, method="inclusive")[int(q * 1000) - 1]


def run() -> list[str]:
    with local_stack(gateway_port=free_port()) as (stack, settings, work):
        worker = start_worker(settings, work / "worker.log", wait=True)
        stack.children.append(worker)
        gateway = start_gateway(settings, work / "gateway.log")
        stack.children.append(gateway)
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            tally, samples, elapsed = runner.run(_sustained(settings, gateway.pid, worker.pid))
            peaks = (peak_rss_bytes(tree(gateway.pid)), peak_rss_bytes(tree(worker.pid)))
            drain_began, left = time.monotonic(), 1
            while left and time.monotonic() - drain_began < DRAIN_LIMIT_S:
                left = sum(runner.run(consumer_lag(settings)).values())
                time.sleep(0 if not left else 1)
            drained_s = time.monotonic() - drain_began if not left else float("nan")
            # behind a backlog the markers would measure the backlog, not the pipeline
            client, server, lost = runner.run(_latency(settings)) if not left else ([], [], 0)
    return _report(tally, samples, elapsed, peaks, drained_s, client, server, lost)


def _report(
    tally: Tally,
    samples: list[Sample],
    elapsed: float,
    peaks: tuple[int, int],
    drained_s: float,
    client: list[float],
    server: list[float],
    lost: int,
) -> list[str]:
    lines = ["   t s   hits/s  gateway %  worker %  machine %      lag"]
    previous = Sample(0, 0, 0, 0, 0, 0)
    for s in samples:
        rate = (s.answered - previous.answered) / max(s.at_s - previous.at_s, 1e-9)
        lines.append(
            f"{s.at_s:6.0f} {rate:8,.0f} {s.gateway_cpu:10.0f} {s.worker_cpu:9.0f} "
            f"{s.machine_cpu:10.0f} {s.lag:8,}"
        )
        previous = s
    steady = samples[1:] or samples
    lag = [s.lag for s in samples] or [0]
    # "start": once the pipeline is warm (a tenth into the run), not the very first sample
    start, middle, end = lag[min(len(lag) // 10 + 1, len(lag) - 1)], lag[len(lag) // 2], lag[-1]
    trend = "flat" if end <= max(2 * RATE * SAMPLE_S / 5, 2 * start) else "growing"
    p50, p99 = _quantile(client, 0.5), _quantile(client, 0.99)
    s50, s99 = _quantile(server, 0.5), _quantile(server, 0.99)
    lines += [
        f"offered {RATE:,.0f} hits/s for {SECONDS:.0f} s: answered 200 {tally.ok / elapsed:,.0f}"
        f" hits/s (ratio answered / offered {tally.ok / max(tally.sent, 1):.3f}), "
        f"failed {tally.failed}, largest send backlog {tally.backlog_max:,}",
        f"CPU % of one core, median: gateway {statistics.median(s.gateway_cpu for s in steady):.0f}"
        f", worker {statistics.median(s.worker_cpu for s in steady):.0f}, "
        f"machine (2 cores, all users) {statistics.median(s.machine_cpu for s in steady):.0f}"
        "   (target: under 80)",
        f"consumer lag start {start:,} / middle {middle:,} / end {end:,}: {trend}; "
        + (
            f"drained to 0 in {drained_s:.0f} s after the load"
            if drained_s == drained_s
            else f"not drained {DRAIN_LIMIT_S:.0f} s after the load: latency not measured"
        ),
        f"peak RSS: gateway {peaks[0] / 2**20:,.0f} MiB, worker (supervisor + Faust) "
        f"{peaks[1] / 2**20:,.0f} MiB",
        f"latency 200 -> queryable at {RATE / 2:,.0f} hits/s, {len(client):,} markers "
        f"({lost} not seen): p50 {p50:.2f} s, p99 {p99:.2f} s   (targets 1.0 / 2.5; "
        f"ratios to target {p50 / 1.0:.2f} / {p99 / 2.5:.2f})",
        f"server-side inserted_at - received_at, {len(server):,} rows: p50 {s50:.2f} s, "
        f"p99 {s99:.2f} s",
        f"(one run; load generator in this process; load average {load_average()})",
    ]
    return lines


if __name__ == "__main__":
    for line in run():
        print(line, flush=True)
