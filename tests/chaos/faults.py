"""The processes of one chaos run and the faults done to them, each logged with its time.

Kafka and the ClickHouse engine come from `deploy.local.localstack.LocalStack`; the worker (its
supervisor) and the gateway are processes of their own, restarted on the same data: the worker on
its RocksDB directory, the gateway on its spool directory.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from deploy.local import services
from deploy.local.localstack import LocalStack, start_clickhouse, start_gateway, start_worker
from schemas.settings import Settings


@dataclass
class Fault:
    what: str
    at_s: float  # since the run began
    took_s: float = 0.0


@dataclass
class Processes:
    stack: LocalStack
    settings: Settings
    logs: Path
    began: float = field(default_factory=time.monotonic)
    worker: subprocess.Popen[bytes] | None = None
    gateway: subprocess.Popen[bytes] | None = None
    faults: list[Fault] = field(default_factory=list)
    _gateway_starts: int = 0

    @property
    def gateway_url(self) -> str:
        return f"http://{self.settings.gateway_host}:{self.settings.gateway_port}"

    def now(self) -> float:
        return time.monotonic() - self.began

    def record(self, what: str, started: float) -> Fault:
        fault = Fault(what, round(started, 1), round(self.now() - started, 1))
        self.faults.append(fault)
        return fault

    def start_worker(self) -> None:
        self.worker = start_worker(self.settings, self.logs / "worker.log")

    def start_gateway(self) -> None:
        self._gateway_starts += 1
        log = self.logs / f"gateway-{self._gateway_starts}.log"
        self.gateway = start_gateway(self.settings, log, timeout=60)

    def kill_worker(self) -> None:
        """`kill -9` of the worker (its supervisor; the Faust child dies with it), and a restart."""
        started = self.now()
        if self.worker is not None:
            services.kill(self.worker)
        self.start_worker()
        self.record("worker kill -9 and restart", started)

    def revive_worker(self) -> None:
        """Start the worker again when it exited by itself (what systemd or Kubernetes do)."""
        if self.worker is not None and self.worker.poll() is not None:
            started = self.now()
            code = self.worker.returncode
            self.start_worker()
            self.record(f"worker exited by itself (code {code}), restarted", started)

    def broker_outage(self, hold_s: float) -> None:
        started = self.now()
        assert self.stack.kafka is not None
        self.stack.kafka.stop()
        stopped = self.now() - started
        time.sleep(hold_s)
        self.stack.kafka.start()
        self.record(
            f"Kafka broker stopped (SIGTERM, {stopped:.1f} s), down {hold_s:.0f} s, restarted",
            started,
        )

    def clickhouse_outage(self, hold_s: float) -> None:
        started = self.now()
        assert self.stack.clickhouse is not None
        services.stop(self.stack.clickhouse)
        time.sleep(hold_s)
        self.stack.clickhouse = start_clickhouse(
            self.stack.root / "clickhouse",
            self.stack.clickhouse_port,
            self.logs / "clickhouse-restarted.log",
        )
        self.record(f"ClickHouse engine stopped for {hold_s:.0f} s, restarted", started)

    def stop_all(self) -> None:
        for process in (self.gateway, self.worker):
            if process is not None:
                services.stop(process)
        self.stack.stop()
