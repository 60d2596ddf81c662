"""`make demo`: a simulated experiment through the running local stack (`make run` first).

Thousands of visitors arrive over the last week as Optimizely classic beacons: an impression
(`x{experiment}={variation}&g={experiment}`), then perhaps purchases with revenue; some returning
visitors bought before they were exposed (the CUPED covariate). Variation 2222222 has a true lift
of +40% in conversion, 3333333 none. A few visitors are bots, a few see two variations. The
experiment is registered, the beacons go through gateway, Kafka and worker into ClickHouse, and
once every row has landed the results table is printed, then the address of the tenant's
experiments on the stack's results pages.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

import aiohttp
from tqdm import tqdm

from deploy.aggregates import refresh_snapshots
from deploy.clickhouse_client import connect
from deploy.local.stack import STATE
from deploy.migrate import migrate
from results.analysis import Options
from results.query import Filters
from results.report import document
from results.table import render
from schemas.settings import Settings, load_settings

EXPERIMENT, GOAL = "87654321", "5550001"
VARIATIONS = {"1111111": 0.05, "2222222": 0.07, "3333333": 0.05}  # id -> conversion rate
CONTROL = "1111111"
BROWSERS = {
    "mobile": "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) Mobile/15E148 Safari/604.1",
    "desktop": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/140.0 Safari/537.36",
}
BOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
HOUR_MS, DAY_MS = 3_600_000, 86_400_000


@dataclass(frozen=True, slots=True)
class Hit:
    params: dict[str, str]
    user_agent: str
    impression: bool


def simulate(tenant: str, visitors: int, now_ms: int, seed: int) -> list[Hit]:
    """Every beacon of the simulated week, in no particular order (each carries its time)."""
    rng = random.Random(seed)
    return [h for i in range(visitors) for h in _visitor(rng, tenant, f"demo{seed}-{i}", now_ms)]


def _visitor(rng: random.Random, tenant: str, user: str, now_ms: int) -> list[Hit]:
    device = "mobile" if rng.random() < 0.55 else "desktop"
    agent = BOT if rng.random() < 0.02 else BROWSERS[device]
    country = rng.choice(["us", "de", "fr"])
    base = {"a": tenant, "u": user, "d": "8511325", "s1": country, "s2": device}
    names = list(VARIATIONS)
    variation = rng.choice(names)
    seen = now_ms - rng.randrange(HOUR_MS, 7 * DAY_MS)

    def beacon(at: int, goal: str, var: str, name: str, value: str = "") -> Hit:
        params = base | {"n": name, f"x{EXPERIMENT}": var, "g": goal, "time": str(at)}
        return Hit(params | ({"v": value} if value else {}), agent, goal == EXPERIMENT)

    hits = [beacon(seen, EXPERIMENT, variation, "experiment_viewed")]
    if rng.random() < 0.005:  # bucketed twice: a second variation a minute later
        other = rng.choice([n for n in names if n != variation])
        hits.append(beacon(seen + 60_000, EXPERIMENT, other, "experiment_viewed"))
    returning = rng.random() < 0.25  # bought before exposure: converts more often now too
    if returning:
        for _ in range(rng.randint(1, 3)):
            before = seen - rng.randrange(HOUR_MS, 20 * DAY_MS)
            hits.append(beacon(before, GOAL, variation, "purchase", _cents(rng)))
    rate = (
        VARIATIONS[variation] * (2.2 if returning else 0.6) * (0.8 if device == "mobile" else 1.25)
    )
    if agent != BOT and rng.random() < rate:
        for _ in range(1 if rng.random() < 0.85 else 2):
            after = min(seen + rng.randrange(60_000, 2 * DAY_MS), now_ms)
            hits.append(beacon(after, GOAL, variation, "purchase", _cents(rng)))
    return hits


def _cents(rng: random.Random) -> str:
    return str(round(rng.lognormvariate(8.2, 0.6)))  # ~ $36 median basket


async def send(
    gateway: str, hits: list[Hit], sent: Callable[[int], object], concurrency: int = 64
) -> None:
    """Send every hit as a beacon, `sent(1)` after each."""
    queue: asyncio.Queue[Hit] = asyncio.Queue()
    for hit in hits:
        queue.put_nowait(hit)

    async def worker(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            hit = queue.get_nowait()
            url = f"{gateway}/event?{urlencode(hit.params)}"
            async with session.get(url, headers={"User-Agent": hit.user_agent}) as response:
                response.raise_for_status()
                await response.read()
            sent(1)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))


def register(settings: Settings, tenant: str) -> None:
    client = connect(settings)
    try:
        client.insert(
            "experiments",
            [[tenant, EXPERIMENT, v, int(v == CONTROL), 1.0, "checkout button", 0]
             for v in VARIATIONS],
            column_names=["tenant", "experiment_id", "variation_id", "is_control", "weight",
                          "name", "deleted"],
        )  # fmt: skip
    finally:
        client.close()


def wait_for_rows(settings: Settings, tenant: str, hits: list[Hit], timeout: float) -> None:
    impressions = sum(h.impression for h in hits)
    wanted = {"impressions": impressions, "conversions": len(hits) - impressions}
    client = connect(settings)
    bar = tqdm(total=len(hits), desc="stored", unit="row", leave=False, disable=None)
    try:
        deadline = time.monotonic() + timeout
        while True:
            counts = {
                table: int(client.query(f"SELECT count() FROM {table} WHERE tenant = {{t:String}}",
                                        parameters={"t": tenant}).result_rows[0][0])
                for table in wanted
            }  # fmt: skip
            bar.update(sum(min(counts[t], n) for t, n in wanted.items()) - bar.n)
            if all(counts[t] >= n for t, n in wanted.items()):
                refresh_snapshots(client)  # the page reads the snapshot: take it now
                return
            if time.monotonic() > deadline:
                raise SystemExit(f"rows did not land in {timeout:.0f} s: {counts} of {wanted}")
            time.sleep(0.5)
    finally:
        bar.close()
        client.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m results.demo", description=__doc__)
    parser.add_argument("--visitors", type=int, default=9000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--timeout", type=float, default=90)
    args = parser.parse_args(argv)
    if not STATE.exists():
        print("the local stack is not running: make run", file=sys.stderr)
        return 1
    state = json.loads(STATE.read_text())
    settings = replace(
        load_settings(), clickhouse_url=state["clickhouse"], clickhouse_database=state["database"]
    )
    tenant = str(random.SystemRandom().randrange(10**8, 10**9))  # a fresh project per run
    began = time.monotonic()
    migrate(settings)  # idempotent: the results views, should the stack predate them
    register(settings, tenant)
    hits = simulate(tenant, args.visitors, int(time.time() * 1000), args.seed)
    with tqdm(total=len(hits), desc="sent", unit="beacon", leave=False, disable=None) as bar:
        asyncio.run(send(state["gateway"], hits, bar.update))
    print(f"sent {len(hits):,} beacons for {args.visitors:,} visitors in "
          f"{time.monotonic() - began:.1f} s (tenant {tenant})")  # fmt: skip
    wait_for_rows(settings, tenant, hits, args.timeout)
    print(f"rows landed after {time.monotonic() - began:.1f} s\n")
    options = Options.from_settings(settings)
    print(render(document(settings, tenant, EXPERIMENT, Filters(), options)))
    print(f"\nmore: hitstream results {EXPERIMENT} --tenant {tenant} [--slice 2=mobile] [--json]"
          " [--correction bh] [--prior-sd 0.3] [--target-lift 0.1]")  # fmt: skip
    print(index_line(state, tenant, settings.results_key))
    return 0


def index_line(state: dict[str, Any], tenant: str, key: str) -> str:
    """The last line of the demo: where the tenant's experiments are (the stack's results web)."""
    if "results" not in state:
        return ("results pages: the stack predates them; make down && make run, or "
                "python -m results.web --port 8090")  # fmt: skip
    hint = " (add ?key=<HITS_RESULTS_KEY> once)" if key else ""
    return f"results pages: {state['results']}/results/{tenant}{hint}"


if __name__ == "__main__":
    raise SystemExit(main())
