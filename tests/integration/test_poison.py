"""Poison input through the real stack, for every protocol (issue 7).

Non-UTF-8 bytes, lone surrogates, NaN/Infinity, huge numbers, deep nesting, duplicate keys,
10,000 query parameters, oversized bodies, times outside ClickHouse's range and SQL-looking text,
sent to Optimizely (GET and POST /event), Monetate (/monetate/collect) and Octeth
(/api/v1/event). A beacon always gets its 200 and becomes exactly one event or one dead letter with
a reason; Octeth answers 200 (then the event is stored) or its documented error envelope. Neither
the gateway nor the worker dies, and SQL-looking text is stored byte for byte.

Each request carries its case number in the User-Agent header, which events keep (`user_agent`)
and dead letters keep in their raw hit, so every row is traced back to its case.

The gateway's fuzz test (tests/integration/test_optimizely.py) covers many more malformed
Optimizely queries; this file is the issue's list, per protocol.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
import pytest
import yarl
from clickhouse_connect.driver.client import Client

from tests.integration.conftest import Worker, get, wait_for_rows

pytestmark = pytest.mark.integration

SQL = "x'); DROP TABLE events; --\"`\\"
BIG = "123456789012345678901234567890"
NOT_JSON: dict[str, Any] = {"want": "dead_letter", "reason": "body_not_json"}  # a beacon's answer
BAD_JSON: dict[str, Any] = {"want": "refused", "status": 400, "code": 102}  # Octeth's answer


@dataclass
class Case:
    name: str
    path: str  # with its query
    method: str = "GET"
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    want: str = "event"  # event | dead_letter | refused (a documented error, nothing stored)
    reason: str = ""  # the dead letter's reason, or a flag the event must carry
    status: int = 200
    code: int | None = None  # Octeth error code


def monetate(i: int, **fields: object) -> bytes:
    body: dict[str, object] = {
        "v": 1,
        "site": "poison",
        "visitor": f"pm{i}",
        "session": f"pm{i}-s",
        "page": {"url": "https://shop.example/", "view": f"v{i}"},
        "events": [{"key": "viewed", "seq": 0}],
    }
    body.update(fields)
    return orjson.dumps(body)


def beacon_cases() -> list[Case]:
    o = "/event?a=31&n=e&u=po"
    text = {"Content-Type": "text/plain"}
    deep_cookie = quote("[" * 2000 + "]" * 2000)
    cases = [
        Case("opt non-utf8", "/event?a=31&u=po1&n=%FF%FEname%C0"),
        Case("opt lone surrogate", "/event?a=31&u=po2&n=a%ED%A0%80b"),
        Case("opt nan", o + "3&v=NaN&time=Infinity", reason="bad_value"),
        Case("opt huge", o + f"4&v={BIG}&time={'9' * 400}&g={BIG}", reason="bad_value"),
        Case(
            "opt 10000 params",
            o + "5" + "&p=1" * 10_000,
            want="dead_letter",
            reason="too_many_parameters",
        ),
        # Past max(8190, HITS_MAX_BODY_BYTES) the HTTP layer answers 400 before any handler:
        # no hit was read, so there is nothing to keep (README, "Sending hits").
        Case("opt line over limit", o + "14&blob=" + "x" * 70_000, want="refused", status=400),
        Case("opt duplicate keys", "/event?a=31&u=po6&u=other&n=e", reason="duplicate_parameter"),
        Case("opt time before 1900", o + "7&time=-99999999999999", reason="bad_time"),
        Case("opt time after 2299", o + "8&time=99999999999999"),
        Case("opt sql", f"/event?a=31&u=po9&n={quote(SQL)}&s1={quote(SQL)}"),
        Case(
            "opt deep cookie",
            o + "10",
            headers={"Cookie": f"optimizelyBuckets={deep_cookie}"},
            reason="bad_buckets_cookie",
        ),
        Case("opt post non-utf8", "/event", "POST", b"a=31&u=po11&n=\xff\xfe\xed\xa0\x80", text),
        Case(
            "opt post oversized",
            "/event",
            "POST",
            b"a=31&u=po12&n=e&pad=" + b"x" * 70_000,
            text,
            want="dead_letter",
            reason="body_too_large",
        ),
        Case("opt post nan", "/event", "POST", b"a=31&u=po13&n=e&v=-Infinity", text),
    ]
    post = "/monetate/collect"
    nested: object = "leaf"
    for _ in range(100):
        nested = {"n": nested}

    def mon_post(name: str, body: bytes, **expected: Any) -> Case:
        return Case(name, post, "POST", body, text, **expected)

    cases += [
        mon_post("mon non-utf8", monetate(1).replace(b'"pm1"', b'"pm\xff1"'), **NOT_JSON),
        mon_post("mon lone surrogate", monetate(2).replace(b'"pm2"', b'"pm\\ud8002"'), **NOT_JSON),
        mon_post("mon nan", monetate(3).replace(b'"seq":0', b'"seq":NaN'), **NOT_JSON),
        mon_post(
            "mon infinity number",
            monetate(4).replace(b'"seq":0', b'"at":1e400,"seq":0'),
            **NOT_JSON,
        ),
        mon_post(
            "mon huge number",
            monetate(5).replace(b'"seq":0', f'"at":{BIG},"seq":{BIG}'.encode()),
            reason="bad_time",
        ),
        mon_post("mon deep nesting", b"[" * 2000 + b"]" * 2000, **NOT_JSON),
        mon_post(
            "mon nested props",
            monetate(7, events=[{"key": "viewed", "seq": 0, "props": {"deep": nested}}]),
            reason="bad_properties",
        ),
        mon_post(
            "mon duplicate keys",
            monetate(8).replace(b'"visitor":"pm8"', b'"visitor":"first","visitor":"pm8"'),
        ),
        Case("mon 10000 params", post + "?" + "&p=1" * 10_000, "POST", monetate(9), text),
        mon_post(
            "mon oversized",
            monetate(10, pad="x" * 70_000),
            want="dead_letter",
            reason="body_too_large",
        ),
        mon_post(
            "mon time before 1900",
            monetate(11, events=[{"key": "viewed", "seq": 0, "at": -99999999999999}]),
            reason="bad_time",
        ),
        mon_post(
            "mon sql", monetate(12, events=[{"key": "viewed", "seq": 0, "props": {"q": SQL}}])
        ),
        mon_post(
            "mon sql key",
            monetate(13, events=[{"key": SQL, "seq": 0}]),
            want="dead_letter",
            reason="bad_event_key",
        ),
    ]
    return cases


def octeth_cases(key: str) -> list[Case]:
    path = "/api/v1/event"
    good = {"APIKey": key, "ListID": 94, "event": "poison", "uuid": "u-poison"}
    json = {"Content-Type": "application/json"}

    def body(**fields: object) -> bytes:
        return orjson.dumps({**good, **fields})

    nested: object = 1
    for _ in range(40):
        nested = {"n": nested}

    def oct_post(name: str, data: bytes, **expected: Any) -> Case:
        return Case(name, path, "POST", data, json, **expected)

    return [
        oct_post("oct non-utf8", body(event="p\u00e9").replace(b"\xc3\xa9", b"\xff"), **BAD_JSON),
        oct_post("oct lone surrogate", body(event="psx").replace(b"psx", b"p\\ud800x"), **BAD_JSON),
        oct_post("oct nan", body(properties={"x": 0}).replace(b'"x":0', b'"x":NaN'), **BAD_JSON),
        oct_post(
            "oct infinity number",
            body(properties={"x": 0}).replace(b'"x":0', b'"x":1e400'),
            **BAD_JSON,
        ),
        oct_post(
            "oct huge number", body(properties={"x": 0}).replace(b'"x":0', f'"x":{BIG}'.encode())
        ),
        oct_post("oct deep nesting", body(properties={"deep": nested}), **BAD_JSON),
        oct_post(
            "oct duplicate keys",
            body().replace(b'"event":"poison"', b'"event":"first","event":"poison"'),
        ),
        Case("oct 10000 params", path + "?" + "&p=1" * 10_000, "POST", body(), json),
        oct_post(
            "oct oversized",
            body(properties={"pad": "x" * 70_000}),
            want="refused",
            status=413,
            code=105,
        ),
        oct_post("oct sql", body(properties={"q": SQL})),
    ]


async def send(base: str, cases: list[Case], agent: str = "poison") -> list[tuple[int, bytes]]:
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:

        async def one(i: int, case: Case) -> tuple[int, bytes]:
            url = yarl.URL(base + case.path, encoded=True)
            headers = {**case.headers, "User-Agent": f"{agent}-{i}"}
            async with session.request(case.method, url, data=case.body, headers=headers) as r:
                return r.status, await r.read()

        return list(await asyncio.gather(*(one(i, c) for i, c in enumerate(cases))))


def test_poison_input_for_every_protocol(
    gateway: str, worker: Worker, clickhouse: Client, octeth_key: str
) -> None:
    key = octeth_key
    probe = Case(
        "probe",
        "/api/v1/event",
        "POST",
        orjson.dumps({"APIKey": key, "ListID": 94, "event": "probe"}),
    )
    deadline = time.monotonic() + 20  # the gateway sees a new key within seconds
    while asyncio.run(send(gateway, [probe], "probe"))[0][0] == 401 and time.monotonic() < deadline:
        time.sleep(0.5)

    cases = beacon_cases() + octeth_cases(key)
    answers = asyncio.run(send(gateway, cases))
    wrong = []
    for case, (status, body) in zip(cases, answers, strict=True):
        code = orjson.loads(body)["Errors"][0]["Code"] if case.code is not None else None
        if (status, code) != (case.status, case.code):
            wrong.append((case.name, status, body[:200]))
    assert not wrong, wrong

    total = (
        "SELECT (SELECT count() FROM events WHERE startsWith(user_agent, 'poison-')) + "
        "(SELECT count() FROM dead_letters)"
    )
    stored = sum(c.want != "refused" for c in cases)
    wait_for_rows(clickhouse, total, stored, timeout=90, worker=worker)
    time.sleep(2)  # anything stored twice would show now
    events: dict[int, list[tuple[str, list[str], str, str]]] = {}
    for agent, name, flags, properties, source in clickhouse.query(
        "SELECT user_agent, name, flags, properties, source FROM events "
        "WHERE startsWith(user_agent, 'poison-')"
    ).result_rows:
        events.setdefault(int(agent.removeprefix("poison-")), []).append(
            (name, flags, properties, source)
        )
    letters: dict[int, list[tuple[str, str]]] = {}
    for agent, stage, reason in clickhouse.query(
        "SELECT JSONExtractString(raw, 'headers', 'user-agent'), stage, reason FROM dead_letters"
    ).result_rows:
        letters.setdefault(int(agent.removeprefix("poison-")), []).append((stage, reason))

    wrong = []
    for i, case in enumerate(cases):
        got_events, got_letters = events.get(i, []), letters.get(i, [])
        if case.want == "refused":
            if got_events or got_letters:
                wrong.append((case.name, "refused but stored", got_events, got_letters))
        elif case.want == "dead_letter":
            if (
                got_events
                or len(got_letters) != 1
                or (case.reason and got_letters[0][1] != case.reason)
            ):
                wrong.append((case.name, case.reason, got_events, got_letters))
        elif (
            got_letters
            or len(got_events) != 1
            or (case.reason and case.reason not in got_events[0][1])
        ):
            wrong.append((case.name, case.reason, got_events, got_letters))
    assert not wrong, wrong

    # SQL-looking text is data: stored byte for byte, the tables are still there.
    by_name = {c.name: i for i, c in enumerate(cases)}
    assert events[by_name["opt sql"]][0][0] == SQL
    assert orjson.loads(events[by_name["mon sql"]][0][2])["q"] == SQL
    assert orjson.loads(events[by_name["oct sql"]][0][2])["q"] == SQL
    assert clickhouse.query("EXISTS TABLE events").result_rows == [(1,)]

    assert get(gateway + "/healthz")[0] == 200
    assert worker.process is not None and worker.process.poll() is None, worker.log_text()[-2000:]
