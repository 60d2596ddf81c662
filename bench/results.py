"""Results query on 10 million stored events: the queries `hitstream results` runs
(`results.query.read`) over the results snapshot (what reports read by default: the aggregate
views stored whole periodically), over the live per-visitor aggregates (`--live`) and over the
raw views (the old path), versus a plain `SELECT variation_id, count() ... GROUP BY
variation_id` over the same impressions, all over HTTP to the local ClickHouse engine (chDB),
medians; and what one refresh of the snapshots takes. The three paths must give the same
figures, and the aggregate views must equal the raw views (EXCEPT both ways).

The events are generated inside ClickHouse (`INSERT ... SELECT ... FROM numbers()`, in blocks of
a million): BENCH_EVENTS events (default 10,000,000) of one tenant, of which 60% carry an
impression of a 3-variation experiment and 40% a conversion of one of 3 goals (a quarter with a
value), over 14 days, with visitors = events / 5 (each exposed ~3 times; a variation fixed per
visitor by hash), 1% bot user agents, a tenth of events first in their session. Every event is
stored in `events`, its impression or conversion in `impressions` or `conversions`, as the
pipeline stores them; the materialized views fill the aggregates as the blocks are inserted.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from deploy import aggregates
from deploy.aggregates import refresh_snapshots
from deploy.local import services
from deploy.local.localstack import start_clickhouse
from deploy.local.ports import free_port
from deploy.migrate import migrate
from results import query
from results.query import AGGREGATES, RAW, SNAPSHOTS, Filters, over, read
from schemas.settings import Settings

TENANT, EXPERIMENT = "1234567", "87654321"
BLOCK = 1_000_000
QUERY_TIMEOUT_S = 1800
START_MS, SPAN_MS = 1_780_000_000_000, 14 * 24 * 3600 * 1000

# {n}: events in all, {v}: visitors, {i}: impressions; `number` runs over the rows of one table.
_VISITOR = "concat('v', toString({visitor}))"
_VARIATION = "toString(1 + cityHash64({visitor}) % 3)"
_COMMON = """'{tenant}' AS tenant, {visitor_id} AS visitor_id, generateUUIDv4(number) AS event_id,
    'optimizely' AS source,
    concat('s', toString({visitor}), '-', toString(intDiv(number, {v}))) AS session_id,
    fromUnixTimestamp64Milli(toInt64({start} + intDiv(number * {span}, {rows}))) AS occurred_at,
    occurred_at AS received_at,
    map('s1', if(number % 2 = 0, 'gc', 'std')) AS dimensions,
    if(number % 3 = 0, 'mobile', 'desktop') AS device_type,
    number % 8 AS src_partition, number AS src_pos"""

IMPRESSIONS_SQL = """INSERT INTO impressions (tenant, experiment_id, variation_id, visitor_id,
    impression_id, event_id, source, session_id, occurred_at, received_at, dimensions,
    user_agent, device_type, flags, src_partition, src_pos)
SELECT tenant, '{experiment}', {variation}, visitor_id, generateUUIDv4(number + 1), event_id,
    source, session_id, occurred_at, received_at, dimensions,
    if(cityHash64(visitor_id) % 100 = 0, 'Mozilla/5.0 (compatible; Googlebot/2.1)',
       'Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0') AS user_agent, device_type, [],
    src_partition, src_pos
FROM (SELECT number, {common} FROM numbers({first}, {count}))"""

CONVERSIONS_SQL = """INSERT INTO conversions (tenant, goal_id, visitor_id, conversion_id,
    event_id, event_name, source, session_id, value_cents, experiments, occurred_at, received_at,
    dimensions, flags, src_partition, src_pos)
SELECT tenant, toString(500 + number % 3), visitor_id, generateUUIDv4(number + 1), event_id,
    'purchase', source, session_id,
    if(number % 4 = 0, toInt64(cityHash64(number, 1) % 20000), NULL),
    map('{experiment}', {variation}), occurred_at, received_at, dimensions, [], src_partition,
    src_pos
FROM (SELECT number, {common} FROM numbers({first}, {count}))"""

EVENTS_SQL = """INSERT INTO events (tenant, event_id, hit_id, source, visitor_id, session_id, name,
    occurred_at, received_at, experiments, goals, dimensions, user_agent, device_type, flags,
    first_in_session, counted, src_partition, src_pos)
SELECT tenant, event_id, toString(number), source, visitor_id, session_id,
    if(number < {i}, 'view', 'purchase'), occurred_at, received_at,
    map('{experiment}', {variation}),
    [if(number < {i}, '{experiment}', toString(500 + number % 3))],
    dimensions, 'Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0', device_type, [],
    toUInt8(number % 10 = 0), 1, src_partition, src_pos
FROM (SELECT number, {common} FROM numbers({first}, {count}))"""

BASELINE_SQL = """SELECT variation_id, count() FROM impressions
WHERE tenant = {tenant:String} AND experiment_id = {experiment:String} GROUP BY variation_id"""


def _sql(template: str, rows: int, visitor: str, first: int, count: int, n: int) -> str:
    visitors, impressions = n // 5, n * 6 // 10
    common = _COMMON.format(
        tenant=TENANT, visitor_id=_VISITOR.format(visitor=visitor), visitor=visitor,
        v=visitors, start=START_MS, span=SPAN_MS, rows=rows,
    )  # fmt: skip
    return template.format(
        common=common, experiment=EXPERIMENT, variation=_VARIATION.format(visitor=visitor),
        first=first, count=count, i=impressions,
    )  # fmt: skip


def generate(client: Client, n: int) -> None:
    """n events; the impressions are events 0 .. 0.6 n, the conversions the rest."""
    visitors, impressions = n // 5, n * 6 // 10
    conversions = n - impressions
    # impressions: visitor number % V (about three each); conversions: a hashed visitor, so
    # some convert before their first exposure (the CUPED covariate) and some never were exposed
    exposed = f"number % {visitors}"
    converting = f"cityHash64(number, 2) % {visitors}"
    for first in range(0, impressions, BLOCK):
        count = min(BLOCK, impressions - first)
        client.command(_sql(IMPRESSIONS_SQL, impressions, exposed, first, count, n))
    for first in range(0, conversions, BLOCK):
        count = min(BLOCK, conversions - first)
        client.command(_sql(CONVERSIONS_SQL, conversions, converting, first, count, n))
    for first in range(0, n, BLOCK):  # the event rows of both
        count = min(BLOCK, n - first)
        visitor = f"if(number < {impressions}, {exposed}, {converting})"
        client.command(_sql(EVENTS_SQL, n, visitor, first, count, n))


def _parts(client: Client) -> dict[str, int]:
    rows = client.query(
        "SELECT table, count() FROM system.parts WHERE database = currentDatabase() AND active "
        "AND table LIKE 'visitor_%' GROUP BY table ORDER BY table"
    ).result_rows
    return {str(t): int(n) for t, n in rows}


def _settle(client: Client, timeout_s: float = 120) -> float:
    """Seconds until no merge runs in the bench's database (at most `timeout_s`)."""
    began = time.perf_counter()
    while time.perf_counter() - began < timeout_s:
        running = client.query(
            "SELECT count() FROM system.merges WHERE database = currentDatabase()"
        ).result_rows[0][0]
        if not running:
            break
        time.sleep(0.2)
    return time.perf_counter() - began


def timed(call: Callable[[], object], rounds: int, what: str = "") -> tuple[float, list[float]]:
    took = []
    for _ in range(rounds):
        began = time.perf_counter()
        call()
        took.append(time.perf_counter() - began)
        if what:  # progress on stderr: a 10M run takes long on a busy machine
            print(f"  {what}: {took[-1]:.3f} s", file=sys.stderr, flush=True)
    return statistics.median(took), took


def run(rounds: int = 3) -> list[str]:
    n = int(os.environ.get("BENCH_EVENTS", "10000000"))
    with tempfile.TemporaryDirectory(prefix="hits-bench-results-") as tmp:
        port = free_port()
        server = start_clickhouse(Path(tmp) / "ch", port, Path(tmp) / "ch.log")
        try:
            settings = replace(
                Settings(clickhouse_url=f"http://127.0.0.1:{port}"),
                clickhouse_database="bench_results",
            )
            migrate(settings)
            client = clickhouse_connect.get_client(
                host="127.0.0.1",
                port=port,
                database=settings.clickhouse_database,
                send_receive_timeout=QUERY_TIMEOUT_S,
            )  # connect()'s 60 s read timeout is what `hitstream results` has: too short here
            began = time.perf_counter()
            generate(client, n)
            load_s = time.perf_counter() - began
            print(f"  generated in {load_s:.0f} s", file=sys.stderr, flush=True)
            try:
                lines = measure(client, rounds)
            finally:
                client.close()
        finally:
            services.stop(server)
    return [lines[0] + f" (generated in {load_s:.0f} s)", *lines[1:], f"BENCH_EVENTS={n:,}"]


def measure(client: Client, rounds: int) -> list[str]:
    """The figures over the events already stored: the aggregates path, the baseline, the raw
    path, then the equality check (the slow parts last)."""
    stored = {
        t: int(client.query(f"SELECT count() FROM {t}").result_rows[0][0])
        for t in ("events", "impressions", "conversions")
    }
    params = {"tenant": TENANT, "experiment": EXPERIMENT}
    parts_left = _parts(client)
    refresh_snapshots(client)  # taken now; its tables' parts merged before it is read, as
    settled_s = _settle(client)  # they are between two refreshes (every few minutes)
    snapshot = read(client, TENANT, EXPERIMENT, Filters(), SNAPSHOTS)  # warm-up, the figures
    snap_s, all_snap = timed(
        lambda: read(client, TENANT, EXPERIMENT, Filters(), SNAPSHOTS), rounds, "snapshot"
    )
    agg = read(client, TENANT, EXPERIMENT, Filters())
    fast_s, all_fast = timed(
        lambda: read(client, TENANT, EXPERIMENT, Filters()), rounds, "aggregates"
    )
    base_s, all_base = timed(
        lambda: client.query(BASELINE_SQL, parameters=params), rounds, "baseline"
    )
    raw: list[object] = []
    raw_s, all_raw = timed(
        lambda: raw.append(read(client, TENANT, EXPERIMENT, Filters(), RAW)), rounds, "raw views"
    )
    same = snapshot == agg and all(r == agg for r in raw)
    print(f"  same figures: {same}", file=sys.stderr, flush=True)
    began = time.perf_counter()
    differences = aggregates.check(client, aggregates.Scope(tenant=TENANT, experiment=EXPERIMENT))
    check_s = time.perf_counter() - began
    print(f"  check: {differences} in {check_s:.0f} s", file=sys.stderr, flush=True)
    bind = query.parameters(TENANT, EXPERIMENT, Filters())
    by_query = {
        path: {
            name: timed(lambda q=sql, s=source: client.query(over(q, s), parameters=bind), rounds)[
                0
            ]
            for name, sql in (
                ("registry", query.REGISTRY_SQL),
                ("exposures", query.EXPOSURES_SQL),
                ("goals", query.GOALS_SQL),
                ("sessions", query.SESSIONS_SQL),
            )
        }
        for path, source in (("snapshot", SNAPSHOTS), ("live aggregates", AGGREGATES))
    }
    refresh_s, all_refresh = timed(lambda: refresh_snapshots(client), rounds, "refresh")
    equal = all(d == (0, 0) for d in differences.values())
    goals = sorted(agg.goals)
    converters = {g: sum(c.converters for c in agg.goals[g].values()) for g in goals}
    return [
        f"stored: {stored['events']:,} events, {stored['impressions']:,} impressions, "
        f"{stored['conversions']:,} conversions",
        f"exposed visitors {sum(agg.visitors.values()):,} ({agg.bots:,} bots excluded) in "
        f"{len(agg.visitors)} variations; converters per goal {converters}",
        f"results query, snapshot (what reports read)     {snap_s:8.3f} s  "
        f"(rounds: {', '.join(f'{t:.3f}' for t in all_snap)})",
        f"results query, live aggregates (--live)         {fast_s:8.3f} s  "
        f"(rounds: {', '.join(f'{t:.3f}' for t in all_fast)})",
        f"results query, raw views (the old path)       {raw_s:8.3f} s  "
        f"(rounds: {', '.join(f'{t:.3f}' for t in all_raw)})",
        f"baseline: count() GROUP BY variation_id        {base_s:8.3f} s  "
        f"(rounds: {', '.join(f'{t:.3f}' for t in all_base)})",
        f"ratio snapshot / baseline                      {snap_s / base_s:8.1f}",
        f"ratio live aggregates / baseline               {fast_s / base_s:8.1f}",
        f"ratio raw views / baseline                     {raw_s / base_s:8.1f}",
        f"ratio raw views / live aggregates              {raw_s / fast_s:8.1f}",
        f"snapshot refresh (the three views, once)       {refresh_s:8.3f} s  "
        f"(rounds: {', '.join(f'{t:.3f}' for t in all_refresh)}); the snapshot was read once "
        f"its merges had ended, {settled_s:.1f} s after its refresh",
        *(
            f"{path} by query: " + ", ".join(f"{k} {v:.3f} s" for k, v in parts.items())
            for path, parts in by_query.items()
        ),
        f"same figures on the three paths: {'yes' if same else 'NO'}; aggregate views equal the "
        f"raw views (EXCEPT both ways): {'yes' if equal else 'NO'} {differences} "
        f"(checked in {check_s:.0f} s)",
        f"active parts of the aggregate tables when measured: {parts_left}",
        f"(median of {rounds}, over HTTP to the chDB engine)",
    ]
