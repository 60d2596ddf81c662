"""The processes of one chaos run and the faults done to them, each logged with its time.

Kafka and the ClickHouse engine come from `deploy.local.localstack.LocalStack`; the workers (each
its supervisor) and the gateways are processes of their own, restarted on the same data: a worker
on its RocksDB directory, a gateway on its spool directory. Worker i and gateway j keep their own
directory and ports across restarts (`worker_settings`, `gateway_settings`); worker 0 and gateway
0 use the run's settings as they are, so a run with one of each is the single-worker mode.
"""

from __future__ import annotations

import subprocess
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from deploy.local import services
from deploy.local.localstack import (
    LocalStack,
    http_ok,
    start_clickhouse,
    start_gateway,
    start_worker,
)
from deploy.local.ports import free_port
from schemas.settings import Settings

# A loaded machine (2 shared cores) has taken more than 60 s to bring a restarted broker back.
KAFKA_START_S = 300.0
GATEWAY_START_S = 180.0


@dataclass
class Fault:
    what: str
    at_s: float  # since the run began
    took_s: float = 0.0


def worker_settings(settings: Settings, index: int) -> Settings:
    """Worker `index` of a group: its own RocksDB directory and web port (index 0: `settings`)."""
    if index == 0:
        return settings
    return replace(settings, data_dir=f"{settings.data_dir}-w{index}", worker_web_port=free_port())


def gateway_settings(settings: Settings, index: int) -> Settings:
    """Gateway `index`: its own spool directory and port (index 0: `settings`)."""
    if index == 0:
        return settings
    return replace(settings, spool_dir=f"{settings.spool_dir}-g{index}", gateway_port=free_port())


@dataclass
class Processes:
    stack: LocalStack
    settings: Settings
    logs: Path
    gateway_count: int = 1
    began: float = field(default_factory=time.monotonic)
    workers: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)
    gateways: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)
    left: set[int] = field(default_factory=set)  # workers stopped on purpose: not revived
    faults: list[Fault] = field(default_factory=list)
    _worker_settings: dict[int, Settings] = field(default_factory=dict)
    _gateway_settings: list[Settings] = field(default_factory=list)
    _starts: dict[str, int] = field(default_factory=dict)
    _next_kill: int = 0
    # One change to the workers at a time: the fault script and the killer run in threads.
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._gateway_settings = [
            gateway_settings(self.settings, j) for j in range(self.gateway_count)
        ]

    @property
    def gateway_urls(self) -> list[str]:
        return [f"http://{s.gateway_host}:{s.gateway_port}" for s in self._gateway_settings]

    @property
    def live_workers(self) -> list[int]:
        return sorted(i for i in self.workers if i not in self.left)

    def now(self) -> float:
        return time.monotonic() - self.began

    def record(self, what: str, started: float) -> Fault:
        fault = Fault(what, round(started, 1), round(self.now() - started, 1))
        self.faults.append(fault)
        return fault

    def _log(self, name: str) -> Path:
        self._starts[name] = self._starts.get(name, 0) + 1
        return self.logs / f"{name}-{self._starts[name]}.log"

    def start_worker(self, index: int = 0) -> None:
        if index not in self._worker_settings:
            self._worker_settings[index] = worker_settings(self.settings, index)
        self.left.discard(index)
        log = self._log(f"worker{index}")
        self.workers[index] = start_worker(self._worker_settings[index], log)

    def start_gateway(self, index: int = 0) -> None:
        log = self._log(f"gateway{index}")
        self.gateways[index] = start_gateway(
            self._gateway_settings[index], log, timeout=GATEWAY_START_S
        )

    def kill_worker(self, index: int | None = None) -> None:
        """`kill -9` of a worker (its supervisor; the Faust child dies with it), and a restart;
        without `index` the live workers take turns."""
        with self._lock:
            if index is None:
                live = self.live_workers
                index = live[self._next_kill % len(live)]
                self._next_kill += 1
            started = self.now()
            services.kill(self.workers[index])
            self.start_worker(index)
            self.record(f"worker kill -9 and restart (worker {index})", started)

    def worker_joins(self, index: int) -> None:
        with self._lock:
            started = self.now()
            self.start_worker(index)
            self.record(f"worker {index} joins the group", started)

    def worker_leaves(self, index: int, ready_within_s: float = 180.0) -> None:
        """The worker stops cleanly (SIGTERM: Faust commits and leaves the group), once it is up
        (its web server answers): in a 100,000-hit run the SIGTERM once reached a worker still
        starting after a Kafka outage, which died of it (exit code 241) holding nothing."""
        ready = self._worker_settings[index]
        url = f"http://127.0.0.1:{ready.worker_web_port}/metrics"
        waited = self.now()
        deadline = time.monotonic() + ready_within_s
        while not http_ok(url) and time.monotonic() < deadline:
            time.sleep(0.5)
        with self._lock:
            started = self.now()
            self.left.add(index)
            services.stop(self.workers[index], timeout=60)
            code = self.workers[index].returncode
            self.record(
                f"worker {index} leaves cleanly (SIGTERM, exit code {code}; waited "
                f"{started - waited:.0f} s for it to be up)",
                started,
            )

    def revive_workers(self) -> None:
        """Start a worker again when it exited by itself (what systemd or Kubernetes do); never
        waits: while another change to the workers is under way it does nothing."""
        if not self._lock.acquire(blocking=False):
            return
        try:
            for index in self.live_workers:
                worker = self.workers[index]
                if worker.poll() is not None:
                    started = self.now()
                    self.start_worker(index)
                    self.record(
                        f"worker {index} exited by itself (code {worker.returncode}), restarted",
                        started,
                    )
        finally:
            self._lock.release()

    def broker_outage(self, hold_s: float) -> None:
        started = self.now()
        assert self.stack.kafka is not None
        self.stack.kafka.stop()
        stopped = self.now() - started
        time.sleep(hold_s)
        self.start_kafka()
        self.record(
            f"Kafka broker stopped (SIGTERM, {stopped:.1f} s), down {hold_s:.0f} s, restarted",
            started,
        )

    def start_kafka(self) -> None:
        assert self.stack.kafka is not None
        self.stack.kafka.start(timeout=KAFKA_START_S)

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
        """Stop the gateways and the workers (SIGTERM, -9 after a while); not Kafka, ClickHouse."""
        for process in [*self.gateways.values(), *self.workers.values()]:
            services.stop(process)
