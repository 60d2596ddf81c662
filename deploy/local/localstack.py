"""The local stack on one machine: a real Kafka broker (KRaft), the ClickHouse engine (chDB behind
its HTTP server), and hitstream's worker and gateway as processes. Used by `make run` and the
integration tests alike.
"""

from __future__ import annotations

import asyncio
import subprocess
import urllib.request
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from deploy.local import services
from deploy.local.kafka_local import KafkaBroker
from deploy.local.ports import free_port, port_open, wait_until
from deploy.migrate import migrate
from deploy.topics import ensure_topics
from schemas.settings import Settings, to_environ


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def start_clickhouse(data_dir: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    """The chDB engine behind ClickHouse's HTTP interface (`deploy.local.chdb_server`)."""
    process = services.spawn(
        services.python_module(
            "deploy.local.chdb_server",
            "--path",
            str(data_dir),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ),
        log,
    )
    wait_until(
        lambda: http_ok(f"http://127.0.0.1:{port}/ping"),
        timeout=60,
        what=f"ClickHouse engine on port {port} (log: {log})",
        alive=lambda: process.poll() is None,
    )
    return process


@dataclass
class LocalStack:
    """Kafka and ClickHouse under `root`; `settings` points hitstream at them."""

    root: Path
    kafka_port: int = 0
    clickhouse_port: int = 0
    kafka: KafkaBroker | None = None
    clickhouse: subprocess.Popen[bytes] | None = None
    children: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self) -> LocalStack:
        self.kafka = KafkaBroker(self.root / "kafka", self.kafka_port).start()
        self.clickhouse_port = self.clickhouse_port or free_port()
        self.clickhouse = start_clickhouse(
            self.root / "clickhouse", self.clickhouse_port, self.root / "logs" / "clickhouse.log"
        )
        return self

    def settings(self, **overrides: Any) -> Settings:
        assert self.kafka is not None
        base = Settings(
            kafka_bootstrap=self.kafka.bootstrap,
            clickhouse_url=f"http://127.0.0.1:{self.clickhouse_port}",
            data_dir=str(self.root / "worker"),
        )
        return replace(base, **overrides)

    def stop(self) -> None:
        for child in reversed(self.children):
            services.stop(child)
        if self.clickhouse is not None:
            services.stop(self.clickhouse)
        if self.kafka is not None:
            self.kafka.stop()


def isolated_settings(base: Settings, root: Path, name: str, **overrides: Any) -> Settings:
    """`base` made one isolated, quick deployment, as the integration tests and the chaos runs
    use them: its own topic prefix, database, consumer group, RocksDB and spool directories
    (under `root`) and ports on a shared broker and server; 4 partitions; timeouts short enough
    for a test (a 4 s session, 0.2 s sink batches); then `overrides`."""
    uid = uuid.uuid4().hex[:10]
    isolated = replace(
        base,
        topic_prefix=f"{name}{uid}.",
        clickhouse_database=f"{name}_{uid}",
        app_id=f"{name}-{uid}",
        data_dir=str(root / f"worker-{uid}"),
        spool_dir=str(root / f"spool-{uid}"),
        partitions=4,
        kafka_session_timeout_s=4.0,
        worker_web_port=free_port(),
        gateway_port=free_port(),
        sink_batch_seconds=0.2,
    )
    return replace(isolated, **overrides)


def prepare(settings: Settings) -> None:
    """Topics and tables for `settings` (idempotent): what a fresh deployment needs first."""
    asyncio.run(ensure_topics(settings))
    migrate(settings)


def start_service(
    module: str, settings: Settings, log: Path, ready_url: str | None, timeout: float
) -> subprocess.Popen[bytes]:
    """Run `python -m module` with `settings`; return once `ready_url` answers (if given)."""
    process = services.spawn(services.python_module(module), log, to_environ(settings))
    if ready_url is not None:
        wait_until(
            lambda: http_ok(ready_url),
            timeout=timeout,
            what=f"{module} at {ready_url} (log: {log})",
            alive=lambda: process.poll() is None,
        )
    return process


def start_worker(
    settings: Settings, log: Path, wait: bool = False, timeout: float = 60
) -> subprocess.Popen[bytes]:
    """Start a worker; with `wait`, return once its web server (/metrics) answers."""
    url = f"http://127.0.0.1:{settings.worker_web_port}/metrics"
    return start_service("pipeline.worker", settings, log, url if wait else None, timeout)


def start_gateway(settings: Settings, log: Path, timeout: float = 30) -> subprocess.Popen[bytes]:
    """Start a gateway and return once it is ready (/readyz)."""
    url = f"http://{settings.gateway_host}:{settings.gateway_port}/readyz"
    return start_service("gateway", settings, log, url, timeout)


def start_results(
    settings: Settings, port: int, log: Path, timeout: float = 60
) -> subprocess.Popen[bytes]:
    """Start the results pages and API (`results.web`) on 127.0.0.1:`port`; return once it
    accepts connections (a read key, when set, would refuse an HTTP probe)."""
    process = services.spawn(
        services.python_module("results.web", "--host", "127.0.0.1", "--port", str(port)),
        log,
        to_environ(settings),
    )
    wait_until(
        lambda: port_open("127.0.0.1", port),
        timeout=timeout,
        what=f"results.web on port {port} (log: {log})",
        alive=lambda: process.poll() is None,
    )
    return process


__all__ = [
    "LocalStack",
    "port_open",
    "prepare",
    "start_gateway",
    "start_results",
    "start_worker",
]
