"""Gateway throughput: Optimizely GET beacons with browser headers, one process on core 0, wrk on
core 1. Baselines in the same run: nginx answering 200 on core 0, and the gateway with publishing
stubbed. Targets: gateway >= 0.15 x nginx; stubbed-vs-real >= 0.8 (the producer is no bottleneck).
"""

from __future__ import annotations

import asyncio
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from bench.load import BEACON, WrkResult, ensure_tools, median_of, wrk
from deploy.local import services
from deploy.local.kafka_local import KafkaBroker
from deploy.local.localstack import http_ok
from deploy.local.ports import free_port, port_open, wait_until
from deploy.topics import ensure_topics
from schemas.settings import Settings, to_environ

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
        results: dict[str, list[WrkResult]] = {name: [] for name in targets}
        try:
            for _ in range(rounds):
                for name, start in targets.items():
                    process, base = start()
                    try:
                        wrk(base + BEACON, core=1, seconds=2)  # warm-up
                        results[name].append(wrk(base + BEACON, core=1, seconds=seconds))
                    finally:
                        services.stop(process)
        finally:
            broker.stop()
    med = {name: median_of(r) for name, r in results.items()}
    nginx, real, stub = (med[n] for n in targets)
    lines = [
        f"{name:<30} {r.requests_per_s:>9,.0f} req/s  p50 {r.p50_ms:6.2f} ms  "
        f"p99 {r.p99_ms:6.2f} ms  errors {r.errors}"
        for name, r in med.items()
    ]
    lines += [
        f"ratio gateway / nginx           {real.requests_per_s / nginx.requests_per_s:.3f}"
        "   (target >= 0.15)",
        f"ratio gateway / stubbed         {real.requests_per_s / stub.requests_per_s:.3f}"
        "   (target >= 0.8)",
        f"ratio stubbed / nginx           {stub.requests_per_s / nginx.requests_per_s:.3f}",
        f"({rounds} rounds x {seconds} s, medians; 1 wrk thread, 64 connections)",
    ]
    return lines
