"""Gateway throughput: Optimizely GET beacons with browser headers, one process on core 0, wrk on
core 1. Baselines in the same run: nginx answering 200 on core 0, and the gateway with publishing
stubbed. Each at 64 connections and at 512 (saturation), plus the gateway's CPU time per request
(what publishing costs, independent of the broker's latency). Targets: with Kafka >= 0.75 x
stubbed; stubbed >= 0.2 x nginx.
"""

from __future__ import annotations

import asyncio
import math
import os
import statistics
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from bench.load import BEACON, WrkResult, ensure_tools, median_of, wrk
from deploy.local import services
from deploy.local.kafka_local import KafkaBroker
from deploy.local.localstack import http_ok
from deploy.local.ports import free_port, port_open, wait_until
from deploy.topics import ensure_topics
from schemas.settings import Settings, to_environ

CONNECTIONS = 64
# With 64 connections each waiting for Kafka's acknowledgement, the rate is bounded by the
# broker's round trip (64 / latency), not by the gateway's CPU: a gateway serves thousands of
# browsers at once, so its capacity is measured with enough connections to hide that wait.
SATURATING = 512

NGINX_CONF = """worker_processes 1; daemon off; pid {dir}/nginx.pid; error_log {dir}/error.log;
events {{ worker_connections 4096; }}
http {{ access_log off; server {{ listen 127.0.0.1:{port}; location / {{ return 200; }} }} }}
"""


def _pinned(core: int, argv: list[str]) -> list[str]:
    return ["taskset", "-c", str(core), *argv]


def _start_nginx(work: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    conf = work / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=work, port=port))
    process = services.spawn(
        _pinned(0, ["nginx", "-c", str(conf), "-p", str(work)]), work / "nginx.out"
    )
    wait_until(lambda: port_open("127.0.0.1", port), timeout=10, what="nginx")
    return process, f"http://127.0.0.1:{port}"


def _start_gateway(
    module: str, settings: Settings, work: Path
) -> tuple[subprocess.Popen[bytes], str]:
    settings = replace(settings, gateway_port=free_port())
    process = services.spawn(
        _pinned(0, services.python_module(module)), work / f"{module}.log", to_environ(settings)
    )
    base = f"http://127.0.0.1:{settings.gateway_port}"
    wait_until(
        lambda: http_ok(base + "/readyz"),
        timeout=30,
        what=module,
        alive=lambda: process.poll() is None,
    )
    return process, base


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of process `pid` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Round:
    load: WrkResult  # at CONNECTIONS
    saturated: WrkResult  # at SATURATING connections
    cpu_us: float  # CPU time of the served process per request, at CONNECTIONS (nan: nginx)


def _measure(process: subprocess.Popen[bytes], url: str, seconds: int, cpu: bool) -> Round:
    wrk(url, core=1, seconds=2)  # warm-up
    before = _cpu_s(process.pid) if cpu else math.nan
    load = wrk(url, core=1, seconds=seconds, connections=CONNECTIONS)
    used = _cpu_s(process.pid) - before if cpu else math.nan
    saturated = wrk(url, core=1, seconds=seconds, connections=SATURATING)
    return Round(load, saturated, used / (load.requests_per_s * seconds) * 1e6)


def run(rounds: int = 3, seconds: int = 8) -> list[str]:
    ensure_tools("wrk", "nginx")
    with tempfile.TemporaryDirectory(prefix="hits-bench-") as tmp:
        work = Path(tmp)
        broker = KafkaBroker(work / "kafka").start()
        assert broker.process is not None
        subprocess.run(
            ["taskset", "-a", "-cp", "1", str(broker.process.pid)], capture_output=True, check=False
        )  # the broker shares the load's core
        settings = Settings(
            kafka_bootstrap=broker.bootstrap,
            spool_dir=str(work / "spool"),
            partitions=8,
            log_level="WARNING",
        )
        asyncio.run(ensure_topics(settings))
        targets: dict[str, Callable[[], tuple[subprocess.Popen[bytes], str]]] = {
            "nginx return 200": lambda: _start_nginx(work),
            "gateway, Kafka publishing": lambda: _start_gateway("gateway", settings, work),
            "gateway, publishing stubbed": lambda: _start_gateway(
                "bench.stub_gateway", settings, work
            ),
        }
        results: dict[str, list[Round]] = {name: [] for name in targets}
        try:
            for _ in range(rounds):  # interleaved: each round measures every target
                for name, start in targets.items():
                    process, base = start()
                    try:
                        cpu = not name.startswith("nginx")  # nginx's worker is a child process
                        results[name].append(_measure(process, base + BEACON, seconds, cpu))
                    finally:
                        services.stop(process)
        finally:
            broker.stop()
    return _report(results, rounds, seconds)


def _report(results: dict[str, list[Round]], rounds: int, seconds: int) -> list[str]:
    load = {name: median_of([r.load for r in rs]) for name, rs in results.items()}
    saturated = {name: median_of([r.saturated for r in rs]) for name, rs in results.items()}
    cpu = {name: statistics.median(r.cpu_us for r in rs) for name, rs in results.items()}
    nginx, real, stub = load.values()
    _, real_cpu, stub_cpu = cpu.values()
    nginx_sat, real_sat, stub_sat = saturated.values()
    lines = [
        f"{name:<28} {r.requests_per_s:>8,.0f} req/s  p50 {r.p50_ms:6.2f} ms  "
        f"p99 {r.p99_ms:6.2f} ms  errors {r.errors:<3} | {SATURATING} conns "
        f"{saturated[name].requests_per_s:>8,.0f} req/s  p99 {saturated[name].p99_ms:6.1f} ms"
        + ("" if math.isnan(cpu[name]) else f" | CPU {cpu[name]:5.0f} us/req")
        for name, r in load.items()
    ]
    lines += [
        f"ratio gateway / stubbed, {CONNECTIONS} conns   "
        f"{real.requests_per_s / stub.requests_per_s:.3f}   (target >= 0.75)",
        f"ratio gateway / stubbed, {SATURATING} conns  "
        f"{real_sat.requests_per_s / stub_sat.requests_per_s:.3f}   (target >= 0.75)",
        f"ratio CPU per request, stubbed / gateway  {stub_cpu / real_cpu:.3f}"
        "   (the publish cost; 1.0 = free)",
        f"ratio stubbed / nginx, {CONNECTIONS} conns     "
        f"{stub.requests_per_s / nginx.requests_per_s:.3f}   (target >= 0.2)",
        f"ratio stubbed / nginx, {SATURATING} conns    "
        f"{stub_sat.requests_per_s / nginx_sat.requests_per_s:.3f}",
        f"ratio gateway / nginx, {CONNECTIONS} conns     "
        f"{real.requests_per_s / nginx.requests_per_s:.3f}",
        f"({rounds} interleaved rounds x {seconds} s per figure, medians; 1 wrk thread)",
    ]
    return lines
