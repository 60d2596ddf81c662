"""Memory over simulated time: does the worker's state stay bounded when traffic goes on?

BENCH_HITS (default 36,000; ~4 min on 2 busy cores) raw hits, half Optimizely, half Monetate,
all distinct: each makes a `hit_ids` key and a `retries` key (every event with a fingerprint),
each Monetate one a `sessions` key too. They are produced straight to `hits.raw` (as a backend
producer would) with receive times spread evenly over BENCH_SIM_HOURS (default 48) hours of event
time, in 12 phases. The worker runs with HITS_RETRY_WINDOW_S = 3600 (the default) and
HITS_STATE_GRACE_S = BENCH_GRACE_S (default 1800): retry keys live ~1.5 h of event time, hit ids
0.5 h, session keys 12.5 h (the session horizon is fixed at 12 h), so over 48 h each expires
several times. After each phase has been processed the bench samples the worker's RSS
(supervisor + Faust child), its RocksDB directory size, and the live keys per table: keys
created minus `hitstream_worker_expired_keys_total{table}` from the worker's /metrics. Baseline:
the keys an unbounded table would hold (every key created).
Bounded means: live keys at the end about equal to mid-run, far below the keys created.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer

from bench.observe import (
    directory_bytes,
    load_average,
    rss_bytes,
    stored_hits,
    tree,
    worker_counter,
)
from bench.stack import local_stack
from deploy.local.localstack import start_worker
from schemas import monetate, rawhit
from schemas.settings import Settings
from schemas.topics import RAW

HITS = int(os.environ.get("BENCH_HITS", "36000"))
SIM_HOURS = float(os.environ.get("BENCH_SIM_HOURS", "48"))
GRACE_S = int(os.environ.get("BENCH_GRACE_S", "1800"))
PHASES = 12
TABLES = ("seen", "sessions")


def _hit(i: int, received_at_ms: int) -> tuple[bytes, bytes]:
    visitor = f"v{i}"
    if i % 2:
        hit = rawhit.RawHit(
            hit_id=uuid.uuid4().hex,
            kind="optimizely",
            received_at_ms=received_at_ms,
            path="/event",
            query=f"a=1234567&n=add_to_cart&u={visitor}&x87654321=1&g=87654321,555&v={i}",
            headers={"user-agent": "Mozilla/5.0 Chrome/156.0"},
        )
        return f"1234567:{visitor}".encode(), rawhit.encode(hit)
    body = {
        "v": 1,
        "site": "shop",
        "visitor": visitor,
        "session": f"s{i}",
        "session_start": received_at_ms,
        "sent_at": received_at_ms,
        "page": {"url": "https://s/p", "referrer": "", "device": "desktop", "view": f"pv{i}"},
        "experiments": {},
        "events": [{"key": "buy", "at": received_at_ms, "seq": 0}],
    }
    key, hit = monetate.direct_hit(
        orjson.dumps(body), hit_id=uuid.uuid4().hex, received_at_ms=received_at_ms
    )
    return key, rawhit.encode(hit)


async def _produce(settings: Settings, first: int, last: int, start_ms: int) -> None:
    step_ms = SIM_HOURS * 3_600_000 / HITS
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, linger_ms=20, max_batch_size=512 * 1024
    )
    await producer.start()
    try:
        for i in range(first, last):
            key, value = _hit(i, start_ms + int(i * step_ms))
            await producer.send(settings.topic(RAW), value, key=key)
        await producer.flush()
    finally:
        await producer.stop()


def _live(settings: Settings, hits: int) -> dict[str, int]:
    expired = worker_counter(settings, "hitstream_worker_expired_keys_total")
    created = {"seen": hits, "sessions": hits - hits // 2}  # one retry key per hit
    return {t: created[t] - int(expired.get(f'{{table="{t}"}}', 0)) for t in TABLES}


def run() -> list[str]:
    rows: list[tuple[float, float, int, dict[str, int], int, int]] = []
    with local_stack(
        partitions=4,
        retry_window_s=3600,
        state_grace_s=GRACE_S,
    ) as (stack, settings, work):
        worker = start_worker(settings, work / "worker.log", wait=True)
        stack.children.append(worker)
        start_ms = time.time_ns() // 1_000_000 - int(SIM_HOURS * 3_600_000)
        began = time.monotonic()
        for phase in range(1, PHASES + 1):
            first, last = (phase - 1) * HITS // PHASES, phase * HITS // PHASES
            asyncio.run(_produce(settings, first, last, start_ms))
            deadline = time.monotonic() + 900
            while stored_hits(settings) < last:
                if worker.poll() is not None or time.monotonic() > deadline:
                    tail = (work / "worker.log").read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"the worker stopped keeping up:\n{tail}")
                time.sleep(0.5)
            time.sleep(1.5)  # the sweep's counter and the sink's last batch
            rows.append(
                (
                    SIM_HOURS * phase / PHASES,
                    time.monotonic() - began,
                    last,
                    _live(settings, last),
                    rss_bytes(tree(worker.pid)),
                    directory_bytes(Path(settings.data_dir)),
                )
            )
    return _report(rows)


def _report(rows: list[tuple[float, float, int, dict[str, int], int, int]]) -> list[str]:
    lines = [" sim h  wall s     hits  hit_ids  retries  sessions  live keys  RSS MiB  store MB"]
    for sim_h, wall_s, hits, live, rss, store in rows:
        lines.append(
            f"{sim_h:6.0f} {wall_s:7.0f} {hits:8,} {live['hit_ids']:8,} {live['retries']:8,} "
            f"{live['sessions']:9,} {sum(live.values()):10,} {rss / 2**20:8,.0f} "
            f"{store / 1e6:9,.1f}"
        )
    mid, end = rows[len(rows) // 2 - 1], rows[-1]
    created = end[2] * 2 + (end[2] - end[2] // 2)
    final_keys, mid_keys = sum(end[3].values()), sum(mid[3].values())
    lines += [
        f"live keys final / mid-run ({mid[0]:.0f} h)   {final_keys / mid_keys:.3f}"
        "   (bounded: about 1; unbounded: 2)",
        f"worker RSS final / mid-run           {end[4] / mid[4]:.3f}",
        f"live keys / keys created (baseline: an unbounded table)  "
        f"{final_keys:,} / {created:,} = {final_keys / created:.3f}",
        f"({HITS:,} hits over {SIM_HOURS:.0f} h of event time, retry window 1 h, grace "
        f"{GRACE_S} s, 4 partitions; the store's size lags deletions until RocksDB compacts; "
        f"load average {load_average()})",
    ]
    return lines


if __name__ == "__main__":
    for line in run():
        print(line, flush=True)
