"""Watching the running stack from outside: process CPU and memory from /proc, the worker group's
consumer lag from Kafka, and the worker's Prometheus counters. Linux only (the bench machine).
"""

from __future__ import annotations

import os
import re
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from deploy.clickhouse_client import connect
from schemas.settings import Settings
from schemas.topics import EXPOSURES, RAW

_TICK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _stat(pid: int) -> list[str]:
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()  # fields from the 3rd (state) on


def tree(pid: int) -> list[int]:
    """`pid` and all its descendants (the worker is a supervisor with a Faust child)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parents.setdefault(int(_stat(int(entry))[1]), []).append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += parents.get(current, [])
    return found


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = _stat(pid)
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / _TICK


def rss_bytes(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE
        except OSError:
            continue
    return total


def peak_rss_bytes(pids: list[int]) -> int:
    """Sum of each process's high-water RSS (VmHWM)."""
    total = 0
    for pid in pids:
        try:
            match = re.search(r"VmHWM:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
        except OSError:
            continue
        total += int(match.group(1)) * 1024 if match else 0
    return total


@dataclass
class CpuMeter:
    """CPU % (of one core) of a process tree between two calls of `percent`."""

    root: int
    _last: tuple[float, float] = field(default=(0.0, 0.0))

    def percent(self) -> float:
        now, used = time.monotonic(), cpu_seconds(tree(self.root))
        last_now, last_used = self._last
        self._last = (now, used)
        return 0.0 if not last_now else 100 * (used - last_used) / (now - last_now)


def directory_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


async def consumer_lag(settings: Settings) -> dict[str, int]:
    """Per topic of the worker's group: end offsets minus committed offsets, summed."""
    topics = [settings.topic(name) for name in (RAW, EXPOSURES)]
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    await consumer.start()
    try:
        committed = await admin.list_consumer_group_offsets(settings.app_id)
        tps = [TopicPartition(t, p) for t in topics for p in range(settings.partitions)]
        ends = await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
        await admin.close()
    lag = dict.fromkeys(topics, 0)
    for tp, end in ends.items():
        meta = committed.get(tp)
        lag[tp.topic] += end - (meta.offset if meta is not None and meta.offset >= 0 else 0)
    return lag


async def all_end_offsets(settings: Settings) -> dict[str, int]:
    """Records written so far to every topic of the cluster, by topic."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    await consumer.start()
    try:
        names = [t for t in await admin.list_topics() if not t.startswith("__")]
        tps = [
            TopicPartition(d["topic"], p["partition"])
            for d in await admin.describe_topics(names)
            for p in d["partitions"]
        ]
        found: dict[str, int] = dict.fromkeys(names, 0)
        for tp, end in (await consumer.end_offsets(tps)).items():
            found[tp.topic] += end
        return found
    finally:
        await consumer.stop()
        await admin.close()


async def end_offsets(settings: Settings, topic: str) -> int:
    """Records written to `topic` so far (all partitions)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(settings.partitions)]
        return sum((await consumer.end_offsets(tps)).values())
    finally:
        await consumer.stop()


def stored_hits(settings: Settings) -> int:
    """Rows in `events` plus `dead_letters`: what the worker has stored so far."""
    client = connect(settings)
    try:
        sql = "SELECT (SELECT count() FROM events) + (SELECT count() FROM dead_letters)"
        return int(client.query(sql).result_rows[0][0])
    finally:
        client.close()


def worker_counter(settings: Settings, name: str) -> dict[str, float]:
    """A worker counter's samples by label set, from its /metrics ({} when it does not answer)."""
    url = f"http://127.0.0.1:{settings.worker_web_port}/metrics"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            body = response.read().decode()
    except OSError:
        return {}
    pattern = rf"^{re.escape(name)}(\{{[^}}]*\}})? (\S+)$"
    return {m.group(1) or "": float(m.group(2)) for m in re.finditer(pattern, body, re.M)}


def machine() -> str:
    """`nproc`, the CPU model and RAM, for the README's table."""
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"model name\s*:\s*(.+)", cpuinfo)
    mem = re.search(r"MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text())
    ram = int(mem.group(1)) / 1024 / 1024 if mem else 0.0
    return f"{os.cpu_count()} cores, {model.group(1) if model else '?'}, {ram:.0f} GiB RAM"


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())
