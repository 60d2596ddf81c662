"""Session-scoped real services, per-test isolated names.

Kafka and ClickHouse: testcontainers when a Docker daemon answers, else the project's local stack
(a real KRaft broker from Maven Central's jars and the chDB engine behind its HTTP server). Each
test gets its own topic prefix, database, consumer group and RocksDB directory.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from clickhouse_connect.driver.client import Client

from deploy.clickhouse_client import connect
from deploy.local import services
from deploy.local.localstack import (
    LocalStack,
    isolated_settings,
    prepare,
    start_gateway,
    start_worker,
)
from hitstream import cli
from schemas.settings import Settings, to_environ

pytestmark = pytest.mark.integration


def docker_available() -> bool:
    """A Docker daemon answers on its socket (then testcontainers provides Kafka and ClickHouse)."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if not host.startswith("unix://"):
        return True  # a remote daemon was configured on purpose: let testcontainers use it
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(2)
        try:
            sock.connect(host.removeprefix("unix://"))
            sock.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
            return b" 200 " in sock.recv(64)
        except OSError:
            return False


@dataclass
class Infra:
    settings: Callable[..., Settings]
    kafka_stop: Callable[[], None] = lambda: None
    kafka_start: Callable[[], None] = lambda: None


@pytest.fixture(scope="session")
def infra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Infra]:
    if docker_available():
        yield from _containers()
        return
    stack = LocalStack(tmp_path_factory.mktemp("stack")).start()
    assert stack.kafka is not None
    broker = stack.kafka
    try:
        yield Infra(
            settings=stack.settings,
            kafka_stop=broker.stop,
            kafka_start=lambda: broker.start() and None,
        )
    finally:
        stack.stop()


def _containers() -> Iterator[Infra]:
    from testcontainers.clickhouse import ClickHouseContainer  # type: ignore[import-untyped]
    from testcontainers.kafka import KafkaContainer  # type: ignore[import-untyped]

    with (
        KafkaContainer("apache/kafka:4.1.1").with_kraft() as kafka,
        ClickHouseContainer("clickhouse/clickhouse-server:25.8") as clickhouse,
    ):
        url = f"http://{clickhouse.get_container_host_ip()}:{clickhouse.get_exposed_port(8123)}"

        def settings(**overrides: Any) -> Settings:
            base = dict(
                kafka_bootstrap=kafka.get_bootstrap_server(),
                clickhouse_url=url,
                clickhouse_user=clickhouse.username,
                clickhouse_password=clickhouse.password,
            )
            return Settings(**{**base, **overrides})

        yield Infra(settings=settings)


@pytest.fixture
def hits_settings(infra: Infra, tmp_path: Path) -> Settings:
    """Settings of one isolated hitstream deployment, its topics and tables created."""
    settings = isolated_settings(infra.settings(), tmp_path, "t", publish_timeout_s=5.0)
    prepare(settings)
    return settings


@pytest.fixture
def clickhouse(hits_settings: Settings) -> Iterator[Client]:
    client = connect(hits_settings)
    yield client
    client.close()


@dataclass
class Worker:
    settings: Settings
    log: Path
    process: subprocess.Popen[bytes] | None = None
    starts: int = field(default=0)

    def start(self) -> Worker:
        self.starts += 1
        self.process = start_worker(self.settings, self.log)
        return self

    def stop(self) -> None:
        if self.process:
            services.stop(self.process)

    def kill(self) -> None:
        if self.process:
            services.kill(self.process)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@pytest.fixture
def worker(hits_settings: Settings, tmp_path: Path) -> Iterator[Worker]:
    handle = Worker(hits_settings, tmp_path / "worker.log").start()
    yield handle
    handle.stop()


@pytest.fixture
def gateway(hits_settings: Settings, tmp_path: Path) -> Iterator[str]:
    process = start_gateway(hits_settings, tmp_path / "gateway.log")
    yield f"http://{hits_settings.gateway_host}:{hits_settings.gateway_port}"
    services.stop(process)


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str


Hitstream = Callable[..., Ran]


@pytest.fixture
def hitstream(
    hits_settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Hitstream:
    """`hitstream(*argv)` runs the command line against this test's stack (its settings in the
    environment) and gives its exit code and output."""
    for name, value in to_environ(hits_settings).items():
        monkeypatch.setenv(name, value)

    def run(*argv: str) -> Ran:
        capsys.readouterr()
        code = cli.main(list(argv))
        out, err = capsys.readouterr()
        return Ran(code, out, err)

    return run


def register_octeth_key(hitstream: Hitstream) -> str:
    """A new Octeth API key of account `acme`, with list 94 (through the operator CLI)."""
    assert hitstream("octeth", "account", "add", "--account", "acme", "--name", "ACME").code == 0
    assert hitstream("octeth", "list", "add", "--account", "acme", "--list", "94").code == 0
    key = hitstream("octeth", "key", "add", "--account", "acme")
    assert key.code == 0
    return key.out.strip()


@pytest.fixture
def octeth_key(hitstream: Hitstream) -> str:
    return register_octeth_key(hitstream)


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, dict(response.headers), response.read()


def wait_for_rows(
    client: Client, sql: str, expected: int, timeout: float = 60, worker: Worker | None = None
) -> int:
    """Poll `sql` (a count) until it equals `expected`; fail with the last count after `timeout`."""
    deadline = time.monotonic() + timeout
    count = -1
    while time.monotonic() < deadline:
        count = int(client.query(sql).result_rows[0][0])
        if count >= expected:
            return count
        if worker and worker.process and worker.process.poll() is not None:
            pytest.fail(
                f"worker exited ({worker.process.returncode}):\n{worker.log_text()[-3000:]}"
            )
        time.sleep(0.2)
    tail = worker.log_text()[-3000:] if worker else ""
    pytest.fail(f"{sql!r}: {count} rows after {timeout} s, expected {expected}\n{tail}")


async def read_topic(
    settings: Settings, name: str, *, within: float, expected: int | None = None
) -> list[Any]:
    """The JSON records of the hits topic `name`, from its start: all that come within `within`
    seconds, or, with `expected`, until that many came and one more second passed (an extra
    record would show by then)."""
    consumer = AIOKafkaConsumer(
        settings.topic(name),
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    found: list[Any] = []
    try:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            found.extend(orjson.loads(r.value) for rs in batch.values() for r in rs)
            if expected is not None and len(found) >= expected:
                deadline = min(deadline, time.monotonic() + 1)
    finally:
        await consumer.stop()
    return found
