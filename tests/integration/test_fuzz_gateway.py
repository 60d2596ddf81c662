"""The gateway fuzzer: random and mutated requests over raw sockets, through the real stack.

Mutated seed hits, random bytes in the query, every kept header and the body, odd content types
and broken framing (tests/integration/fuzz_requests.py), from a fixed seed, against the real
gateway process, Kafka, the Faust worker and ClickHouse. It asserts: no 5xx; every beacon the
HTTP layer lets through is answered 200; the gateway still answers /healthz; and every request
answered 200 is stored, as events or a dead letter: the distinct hit ids in ClickHouse equal the
200s exactly. `FUZZ_REQUESTS` (read here, not a product setting) sets how many,
`FUZZ_SEED` the seed (not `HITS_*`: the gateway refuses unknown `HITS_*` variables).
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import Counter
from dataclasses import replace

import pytest
from clickhouse_connect.driver.client import Client

from schemas.settings import Settings
from tests.integration.conftest import Worker, get, wait_for_rows
from tests.integration.fuzz_requests import FuzzRequest, octeth, requests

pytestmark = pytest.mark.integration

REQUESTS = int(os.environ.get("FUZZ_REQUESTS", "2000"))
SEED = int(os.environ.get("FUZZ_SEED", "20261207"))
CONCURRENCY = 16
OCTETH_ANSWERS = {200, 400, 401, 413, 422}  # never 429 at this rate, never 503 with Kafka up


@pytest.fixture
def hits_settings(hits_settings: Settings) -> Settings:
    return replace(hits_settings, registry_refresh_s=0.5)


def statuses(answer: bytes, expected: int, head_only: bool) -> list[int]:
    """The status of each response in `answer` (at most `expected`), in order."""
    out: list[int] = []
    while answer.startswith(b"HTTP/1.") and len(out) < expected:
        head, _, rest = answer.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        out.append(int(lines[0].split(b" ", 2)[1]))
        length = next(
            (
                int(v)
                for n, _, v in (x.partition(b":") for x in lines[1:])
                if n.lower() == b"content-length"
            ),
            0,
        )
        answer = rest if head_only else rest[length:]
    return out


async def exchange(host: str, port: int, request: FuzzRequest) -> list[int]:
    """Send one fuzzed request; the statuses answered ([] when the gateway closed silently)."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(request.data)
        if request.half_close:
            writer.write_eof()
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), timeout=15)
    except (ConnectionResetError, BrokenPipeError):
        return []
    except TimeoutError:
        return [-1]
    finally:
        writer.close()
    return statuses(answer, request.requests, request.data.startswith(b"HEAD "))


async def send_all(settings: Settings, batch: list[FuzzRequest]) -> list[list[int]]:
    limit = asyncio.Semaphore(CONCURRENCY)

    async def one(request: FuzzRequest) -> list[int]:
        async with limit:
            return await exchange(settings.gateway_host, settings.gateway_port, request)

    return await asyncio.gather(*(one(r) for r in batch))


def wait_for_key(settings: Settings, key: str) -> None:
    """The gateway reads new Octeth keys every `registry_refresh_s`: wait until it knows ours
    (the probe that gets through is a hit: it is answered 200 and stored)."""
    probe = octeth(random.Random(0), key, mutated=False)
    deadline = time.monotonic() + 15
    while (answer := asyncio.run(send_all(settings, [probe]))) == [[401]]:
        assert time.monotonic() < deadline, "the gateway never learnt the Octeth key"
        time.sleep(0.3)
    assert answer == [[200]]


def test_fuzzed_requests_are_answered_and_every_200_is_stored(
    hits_settings: Settings, gateway: str, worker: Worker, clickhouse: Client, octeth_key: str
) -> None:
    wait_for_key(hits_settings, octeth_key)
    batch = requests(REQUESTS, SEED, octeth_key)
    started = time.monotonic()
    answers = asyncio.run(send_all(hits_settings, batch))
    elapsed = time.monotonic() - started
    seen = Counter((r.kind, s) for r, got in zip(batch, answers, strict=True) for s in got or [0])
    report = f"{len(batch)} requests in {elapsed:.1f} s: {dict(sorted(seen.items()))}"
    print(report)

    assert not [k for k in seen if k[1] >= 500 or k[1] == -1], report
    for request, got in zip(batch, answers, strict=True):
        if request.octeth:
            assert set(got) <= OCTETH_ANSWERS and len(got) == 1, (got, request.data[:300])
        elif not request.may_refuse:
            assert got == [200] * request.requests, (got, request.data[:300])
    assert get(gateway + "/healthz")[0] == 200

    # Every 200 is a hit with its own id, stored as events or dead letters: count them exactly.
    answered = 1 + sum(got.count(200) for got in answers)  # 1: the Octeth key's probe
    stored = (
        "SELECT uniqExact(h) FROM (SELECT hit_id AS h FROM events "
        "UNION ALL SELECT hit_id AS h FROM dead_letters)"
    )
    wait_for_rows(clickhouse, stored, answered, timeout=120, worker=worker)
    time.sleep(1.0)  # anything more than the 200s would show now
    assert int(clickhouse.query(stored).result_rows[0][0]) == answered, report
