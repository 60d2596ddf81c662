"""`HITS_GATEWAY_PROCESSES=2`: two gateway processes share the port and the load, and a kill -9
of one loses nothing it answered 200: its spool is drained once it is back and Kafka is up."""

from __future__ import annotations

import json
import os
import re
import signal
from dataclasses import replace
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from deploy.local import services
from deploy.local.localstack import start_gateway
from deploy.local.ports import free_port, port_open, wait_until
from schemas.settings import Settings
from tests.integration.conftest import Infra, Worker, get, wait_for_rows

pytestmark = pytest.mark.integration

HITS = re.compile(
    r'^hitstream_gateway_hits_total\{outcome="(\w+)",protocol="optimizely"\} (\S+)', re.M
)


def send(base: str, first: int, count: int) -> None:
    """Each beacon on a new connection (urllib), so the kernel may pick either process."""
    for i in range(first, first + count):
        assert get(f"{base}/event?a=7&u=visitor{i}&n=procs&v={i}")[0] == 200


def own(settings: Settings, index: int, path: str) -> str:
    url = f"http://{settings.gateway_host}:{settings.gateway_process_ports_from + index}{path}"
    try:
        return get(url)[2].decode()
    except OSError as exc:  # a 503 raises in urllib; its body is still the answer
        return exc.read().decode()  # type: ignore[attr-defined,no-any-return]


def answered(settings: Settings, index: int) -> float:
    """Beacons process `index` answered (from its own /metrics)."""
    return sum(float(n) for _, n in HITS.findall(own(settings, index, "/metrics")))


def children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(p) for p in text.split()]


def serves_alone(settings: Settings, index: int) -> int:
    """The pid of the process answering on process `index`'s own port (its /proc socket owner)."""
    port = settings.gateway_process_ports_from + index
    inode = next(
        line.split()[9]
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]
        if line.split()[1].endswith(f":{port:04X}") and line.split()[3] == "0A"
    )
    for pid_dir in Path("/proc").glob("[0-9]*"):
        try:
            if any(f"socket:[{inode}]" == str(fd.readlink()) for fd in (pid_dir / "fd").iterdir()):
                return int(pid_dir.name)
        except OSError:
            continue
    raise AssertionError(f"no process listens on {port}")


def restarted(settings: Settings, victim: int) -> bool:
    try:
        return serves_alone(settings, 1) != victim
    except (AssertionError, StopIteration):
        return False


def test_two_processes_share_the_load_and_a_kill_loses_nothing(
    infra: Infra, hits_settings: Settings, worker: Worker, clickhouse: Client, tmp_path: Path
) -> None:
    settings = replace(
        hits_settings,
        gateway_processes=2,
        gateway_process_ports_from=free_port(),
        publish_timeout_s=1.0,
        spool_dir=str(tmp_path / "spool"),
    )
    supervisor = start_gateway(settings, tmp_path / "gateway.log")
    base = f"http://{settings.gateway_host}:{settings.gateway_port}"
    try:
        for port in (settings.gateway_process_ports_from + i for i in (0, 1)):
            wait_until(
                lambda port=port: port_open(settings.gateway_host, port),  # type: ignore[misc]
                timeout=30,
                what=f"the gateway process on {port}",
            )
        send(base, 0, 200)
        shares = [answered(settings, i) for i in (0, 1)]
        assert sum(shares) == 200 and min(shares) >= 20, shares  # both took a fair part
        wait_for_rows(clickhouse, "SELECT uniqExact(hit_id) FROM events", 200, worker=worker)

        infra.kafka_stop()
        send(base, 200, 60)  # spooled, by both processes
        spooled = [json.loads(own(settings, i, "/readyz"))["spooled"] for i in (0, 1)]
        assert sum(spooled) == 60 and min(spooled) > 0, spooled
        victim = serves_alone(settings, 1)
        os.kill(victim, signal.SIGKILL)  # kill -9 with a non-empty spool
        infra.kafka_start()  # (a gateway process starts only once it reaches Kafka)
        wait_until(
            lambda: restarted(settings, victim),
            timeout=90,
            what="the supervisor restarting process 1",
        )
        assert Path(settings.spool_dir, "process-1").is_dir()
        send(base, 260, 20)
        wait_for_rows(
            clickhouse, "SELECT uniqExact(hit_id) FROM events", 280, timeout=120, worker=worker
        )
        stored = clickhouse.query(
            "SELECT groupUniqArray(toUInt32(value_cents)) FROM events"
        ).result_rows[0][0]
        assert sorted(stored) == list(range(280))
        assert [json.loads(own(settings, i, "/readyz"))["spooled"] for i in (0, 1)] == [0, 0]
        processes = children(supervisor.pid)
    finally:
        services.stop(supervisor)
    wait_until(  # the gateway processes and multiprocessing's resource tracker
        lambda: not [pid for pid in processes if Path(f"/proc/{pid}").exists()],
        timeout=15,
        what="every process of the supervisor to exit",
    )
