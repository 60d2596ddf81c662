"""The Optimizely classic Event API, complete, through the real stack.

HTTP to the gateway, Kafka, the Faust worker, rows read back from the ClickHouse engine: goals
(comma-separated and repeated), impressions mixed with conversions, backdated and future times,
x pairs reversed and repaired by the experiment registry, POST beacons, client retries, and a
thousand malformed hits of which every one is either stored or dead-lettered, exactly once.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import aiohttp
import orjson
import pytest
import yarl
from clickhouse_connect.driver.client import Client

from deploy.local.ports import wait_until
from schemas import rawhit
from schemas.settings import Settings
from tests.integration.conftest import Hitstream, Worker, get, wait_for_rows

pytestmark = pytest.mark.integration

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
SQL = "'; DROP TABLE events; --"
SNAKE_CASE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")


@pytest.fixture
def hits_settings(hits_settings: Settings, tmp_path: Path) -> Settings:
    """The shared isolated settings, plus a fast registry refresh and a per-test spool.

    Overrides conftest's fixture of the same name, so the worker, gateway and ClickHouse client
    fixtures of these tests are all built from these settings.
    """
    return replace(hits_settings, registry_refresh_s=0.5, spool_dir=str(tmp_path / "spool"))


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def query(client: Client, sql: str, **parameters: Any) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in client.query(sql, parameters=parameters).result_rows]


def send(base: str, path: str, headers: dict[str, str] | None = None) -> None:
    status, response_headers, body = get(base + path, headers)
    assert (status, body) == (200, b""), path
    assert response_headers["Cache-Control"].startswith("no-store")


def post(base: str, path: str, body: bytes, content_type: str) -> tuple[int, bytes]:
    request = urllib.request.Request(
        base + path, data=body, headers={"Content-Type": content_type}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.read()


def test_multi_goal_hit_gives_one_conversion_per_distinct_goal_in_cents(
    gateway: str, worker: Worker, clickhouse: Client
) -> None:
    # g comma-separated and repeated, with spaces, empty parts, an empty g and repeats.
    send(gateway, "/event?a=501&u=multi&n=checkout&v=1999&d=8&g=1,2&g=3&g=+2+,,1&g=&g=%203,")
    send(gateway, "/event?a=501&u=rounded&n=tip&d=8&v=12.5&g=7,7")
    send(gateway, "/event?a=501&u=refund&n=refund&d=8&v=-250&g=8")

    wait_for_rows(clickhouse, "SELECT count() FROM conversions", 5, worker=worker)
    assert query(
        clickhouse,
        "SELECT visitor_id, goal_id, event_name, value_cents, flags FROM conversions "
        "ORDER BY visitor_id, goal_id",
    ) == [
        ("multi", "1", "checkout", 1999, []),
        ("multi", "2", "checkout", 1999, []),
        ("multi", "3", "checkout", 1999, []),
        ("refund", "8", "refund", -250, ["negative_value"]),
        ("rounded", "7", "tip", 13, ["value_rounded"]),
    ]
    [(goals, value, conversion_event)] = query(
        clickhouse, "SELECT goals, value_cents, event_id FROM events WHERE visitor_id = 'multi'"
    )
    assert (goals, value) == (["1", "2", "3"], 1999)
    assert query(
        clickhouse,
        "SELECT uniqExact(conversion_id), any(event_id) FROM conversions "
        "WHERE visitor_id = 'multi'",
    ) == [(3, conversion_event)]
    assert query(clickhouse, "SELECT count() FROM impressions") == [(0,)]


def test_impression_and_conversion_in_one_hit(
    gateway: str, worker: Worker, clickhouse: Client
) -> None:
    send(gateway, "/event?a=502&u=mixer&n=buy&d=8511325&x100=7&g=100,555&v=300")

    wait_for_rows(clickhouse, "SELECT count() FROM impressions", 1, worker=worker)
    wait_for_rows(clickhouse, "SELECT count() FROM conversions", 1, worker=worker)
    assert query(
        clickhouse,
        "SELECT tenant, experiment_id, variation_id, visitor_id, flags FROM impressions",
    ) == [("502", "100", "7", "mixer", [])]
    assert query(
        clickhouse,
        "SELECT tenant, goal_id, visitor_id, event_name, value_cents, experiments FROM conversions",
    ) == [("502", "555", "mixer", "buy", 300, {"100": "7"})]
    assert query(clickhouse, "SELECT count(), any(goals) FROM events") == [(1, ["100", "555"])]


def test_backdated_and_future_times(gateway: str, worker: Worker, clickhouse: Client) -> None:
    sent_from = now_ms()
    now_s = sent_from // 1000
    late_s = now_s - 10 * 86_400  # seconds, beyond the 7-day horizon
    recent_ms = sent_from - 2 * HOUR_MS + 123  # milliseconds, inside the horizon
    late_ms = sent_from - 8 * DAY_MS + 456  # milliseconds under the seed's `timestamp` name
    near_s = now_s + 3_600  # an hour ahead: within the 23 h tolerance, kept as sent
    future_s = now_s + 25 * 3_600  # beyond it: clamped to the receive time
    for visitor, when in [
        ("late-s", f"time={late_s}"),
        ("recent-ms", f"time={recent_ms}"),
        ("late-ms", f"timestamp={late_ms}"),
        ("near", f"time={near_s}"),
        ("future", f"time={future_s}"),
    ]:
        send(gateway, f"/event?a=503&u={visitor}&n=paid&d=1&x40=1&g=41&{when}")
    sent_to = now_ms()

    wait_for_rows(clickhouse, "SELECT count() FROM conversions", 5, worker=worker)
    stored = {
        visitor: (occurred, received, flags)
        for visitor, occurred, received, flags in query(
            clickhouse,
            "SELECT visitor_id, toUnixTimestamp64Milli(occurred_at), "
            "toUnixTimestamp64Milli(received_at), flags FROM conversions",
        )
    }
    for visitor, (_, received, _) in stored.items():
        assert sent_from <= received <= sent_to, (visitor, received, sent_from, sent_to)
    assert stored["late-s"][0::2] == (late_s * 1000, ["late"])
    assert stored["recent-ms"][0::2] == (recent_ms, [])
    assert stored["late-ms"][0::2] == (late_ms, ["late"])
    assert stored["near"][0::2] == (near_s * 1000, [])
    occurred, received, flags = stored["future"]
    assert (occurred, flags) == (received, ["future_time_clamped"])
    # The event rows carry the same times.
    assert query(
        clickhouse,
        "SELECT toUnixTimestamp64Milli(occurred_at), flags FROM events WHERE visitor_id = 'late-s'",
    ) == [(late_s * 1000, ["late"])]


def test_reversed_x_pair_is_swapped_once_the_registry_knows_the_experiment(
    gateway: str,
    worker: Worker,
    clickhouse: Client,
    hitstream: Hitstream,
) -> None:
    experiment, variation, other = "880001", "770001", "770002"
    reversed_hit = f"/event?a=504&n=example_event&d=8&x{variation}={experiment}&g={experiment}"
    # Without a registry entry nothing proves the pair reversed: kept as sent, g a conversion.
    send(gateway, reversed_hit + "&u=before")
    wait_for_rows(clickhouse, "SELECT count() FROM conversions", 1, worker=worker)
    assert query(clickhouse, "SELECT experiments, flags FROM events") == [
        ({variation: experiment}, [])
    ]

    saved = hitstream(
        "experiments", "add", "--tenant", "504", "--experiment", experiment,
        "--variations", f"{variation},{other}", "--control", variation,
    )  # fmt: skip
    assert saved.code == 0
    assert f"experiment {experiment} of 504: saved" in saved.out
    wait_until(
        lambda: "experiment registry: 1 experiments" in worker.log_text(),
        timeout=30,
        what="the worker re-reading the experiment registry",
        alive=lambda: worker.process is not None and worker.process.poll() is None,
    )

    send(gateway, reversed_hit + "&u=after")
    send(gateway, f"/event?a=504&n=example_event&d=8&x{experiment}={other}&g={experiment}&u=ok")
    wait_for_rows(clickhouse, "SELECT count() FROM impressions", 2, worker=worker)
    assert query(
        clickhouse,
        "SELECT visitor_id, experiment_id, variation_id, flags FROM impressions ORDER BY 1",
    ) == [
        ("after", experiment, variation, ["x_param_swapped"]),
        ("ok", experiment, other, []),
    ]
    assert query(
        clickhouse, "SELECT experiments, flags FROM events WHERE visitor_id = 'after'"
    ) == [({experiment: variation}, ["x_param_swapped"])]
    assert query(clickhouse, "SELECT visitor_id FROM conversions") == [("before",)]


def test_post_beacons_text_plain_and_form(gateway: str, worker: Worker, clickhouse: Client) -> None:
    # navigator.sendBeacon(url, string) sends text/plain;charset=UTF-8.
    assert post(
        gateway,
        "/event",
        b"a=505&u=beacon&n=signup&d=8&x2=3&g=2&v=100",
        "text/plain;charset=UTF-8",
    ) == (200, b"")
    assert post(
        gateway,
        "/event",
        b"a=505&u=form&n=purchase&d=8&x2=4&g=9&v=450&s1=gold+tier&note=caf%C3%A9",
        "application/x-www-form-urlencoded",
    ) == (200, b"")
    # The query string is read first, then the body.
    assert post(gateway, "/event?a=505&u=split", b"n=split&d=8&g=11&u=ignored", "text/plain") == (
        200,
        b"",
    )

    wait_for_rows(clickhouse, "SELECT count() FROM events", 3, worker=worker)
    wait_for_rows(clickhouse, "SELECT count() FROM impressions", 1, worker=worker)
    wait_for_rows(clickhouse, "SELECT count() FROM conversions", 2, worker=worker)
    assert query(clickhouse, "SELECT visitor_id, experiment_id, variation_id FROM impressions") == [
        ("beacon", "2", "3")
    ]
    assert query(
        clickhouse,
        "SELECT visitor_id, goal_id, event_name, value_cents, experiments, dimensions "
        "FROM conversions ORDER BY visitor_id",
    ) == [
        ("form", "9", "purchase", 450, {"2": "4"}, {"1": "gold tier"}),
        ("split", "11", "split", None, {}, {}),
    ]
    [(properties, flags)] = query(
        clickhouse, "SELECT properties, flags FROM events WHERE visitor_id = 'form'"
    )
    assert (orjson.loads(properties), flags) == ({"note": "café"}, [])
    assert query(clickhouse, "SELECT flags FROM events WHERE visitor_id = 'split'") == [
        (["duplicate_parameter"],)
    ]


def test_client_retries_are_stored_once(gateway: str, worker: Worker, clickhouse: Client) -> None:
    backdated = now_ms() // 1000 - 60
    hit = f"/event?a=506&u=retry&n=order&d=8&x10=1&g=10,77&v=1200&time={backdated}"
    for _ in range(3):
        send(gateway, hit)
    # A different hit of the same visitor: same partition, so once its conversion is stored,
    # every row the three retries could yield is stored too.
    send(gateway, "/event?a=506&u=retry&n=order&d=8&x10=1&g=99")

    wait_for_rows(
        clickhouse, "SELECT count() FROM conversions WHERE goal_id = '99'", 1, worker=worker
    )
    events = query(
        clickhouse,
        "SELECT event_id, duplicate_of, hit_id, received_at FROM events WHERE has(goals, '77')",
    )
    assert len(events) == 3 and len({hit_id for _, _, hit_id, _ in events}) == 3
    [(first, _, _, first_received)] = [row for row in events if row[1] is None]
    assert sorted(str(row[1]) for row in events if row[1] is not None) == [str(first)] * 2
    assert first_received == min(received for *_, received in events)
    assert query(clickhouse, "SELECT event_id FROM conversions WHERE goal_id = '77'") == [(first,)]
    assert query(clickhouse, "SELECT event_id FROM impressions") == [(first,)]


# ---------------------------------------------------------------------------------------------
# A thousand malformed hits: each is stored or dead-lettered, exactly once.

MARKER = "zq"
CHECKMARKS = quote("✓" * 3000)


@dataclass(frozen=True)
class Case:
    """One hit to send; `table`/`code`: where it must land and a flag or reason it must carry
    ("" when the random input decides)."""

    kind: str
    query: str
    table: str = ""
    code: str = ""
    name: str | None = None  # the exact `n` it must be stored with
    method: str = "GET"
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def pct(data: bytes) -> str:
    return "".join(f"%{byte:02X}" for byte in data)


def visitor(rng: random.Random) -> str:
    return f"f{rng.getrandbits(48):x}"


def valid(rng: random.Random) -> Case:
    experiment = rng.randint(1, 10**9)
    goals = ",".join(str(rng.randint(1, 10**9)) for _ in range(rng.randint(0, 3)))
    return Case(
        "valid",
        f"a={rng.randint(1, 10**9)}&u={visitor(rng)}&n=view&d=1&x{experiment}={rng.randint(1, 9)}"
        f"&g={experiment},{goals}&v={rng.randint(-(10**6), 10**6)}",
        "events",
    )


def random_bytes_value(rng: random.Random) -> Case:
    return Case(
        "random_bytes_value",
        f"a=11&u={visitor(rng)}&n=r{pct(rng.randbytes(rng.randint(1, 64)))}"
        f"&{pct(rng.randbytes(4))}={pct(rng.randbytes(8))}",
        "events",
    )


def random_junk(rng: random.Random) -> Case:
    """Random bytes, each percent-encoded or, when URL-safe, literal; `&`, `=` and `%` literal."""
    out = []
    for byte in rng.randbytes(rng.randint(0, 200)):
        char = chr(byte)
        if char in "&=%" or (char.isalnum() and byte < 128) or char in "-._~,;:!*()/?@$":
            out.append(char)
        else:
            out.append(f"%{byte:02X}")
    return Case("random_junk", "".join(out))


def missing_user(rng: random.Random) -> Case:
    user = rng.choice(["", "&u=", "&u=%20%20", "&u=+", "&U=x"])
    return Case("missing_user", f"a=12&n=nobody&g=5{user}", "dead_letters", "missing_user_id")


def bad_value(rng: random.Random) -> Case:
    value = rng.choice(
        [
            *("abc", "NaN", "nan", "inf", "-Infinity", "1e5", "0x10", "1.2.3", "--5", "%zz"),
            *("5%24", "9" * 20, "1" + "0" * 13, quote("\uff11\uff12")),  # fullwidth 12
        ]
    )
    return Case("bad_value", f"a=13&u={visitor(rng)}&n=e&g=3&v={value}", "events", "bad_value")


def huge_number(rng: random.Random) -> Case:
    huge = str(rng.randint(10**24, 10**30))
    return rng.choice(
        [
            Case("huge_number", f"a={huge}&u={visitor(rng)}&n=e", "dead_letters", "bad_project_id"),
            Case("huge_number", f"a=14&u={visitor(rng)}&n=e&time={huge}", "events", "bad_time"),
            Case("huge_number", f"a=14&u={visitor(rng)}&n=e&g={huge}", "events", "bad_goal"),
            Case(
                "huge_number",
                f"a=14&u={visitor(rng)}&n=e&x{huge}=1",
                "events",
                "bad_experiment_param",
            ),
            Case("huge_number", f"a=14&u={visitor(rng)}&n=e&v={huge}", "events", "bad_value"),
        ]
    )


def malformed_escapes(rng: random.Random) -> Case:
    user = f"zz%zz{rng.getrandbits(32):x}%4"
    return Case("malformed_escapes", f"a=15&u={user}&n=%zz%&x%zz=1&g=%", "events", "bad_goal")


def not_a_number(rng: random.Random) -> Case:
    return Case("not_a_number", f"a=16&u={visitor(rng)}&n=e&time=NaN&v=NaN", "events", "bad_time")


def lone_percent(rng: random.Random) -> Case:
    return Case("lone_percent", f"a=17&u={visitor(rng)}&n=%&%=%&s1=%&%", "events")


def many_parameters(rng: random.Random) -> Case:
    """2000 parameters (refused), or exactly 1000 with the marker (the most accepted)."""
    head = f"a=18&u={visitor(rng)}&n=many"
    if rng.random() < 0.8:
        extra = "".join(f"&p{j}={j}" for j in range(2000))
        return Case("many_parameters", head + extra, "dead_letters", "too_many_parameters")
    extra = "".join(f"&p{j}={j}" for j in range(1000 - 4))
    return Case("many_parameters", head + extra, "events")


def unicode_text(rng: random.Random) -> Case:
    name = rng.choice(["Ünïcödé ✓", "中文事件", "🚀 launch", "كلمة", "e\u0301\u200d", "\ufeffbom"])
    return Case(
        "unicode",
        f"a=19&u={quote('visitor-ü-😀-' + visitor(rng))}&n={quote(name)}&s2={quote('ß')}",
        "events",
        name=name,
    )


def sql_looking(rng: random.Random) -> Case:
    value = rng.choice([SQL, "1' OR '1'='1", '"; DELETE FROM conversions; --', "`x`\\'"])
    encode = rng.choice([quote_plus, lambda text: quote(text, safe="';=")])
    return Case(
        "sql",
        f"a=20&u={visitor(rng)}&n={encode(value)}&q={encode(value)}&s3={encode(value)}",
        "events",
        name=value,
    )


def long_value(rng: random.Random) -> Case:
    user = visitor(rng)
    return rng.choice(
        [
            Case("long_value", f"a=21&u={user}&n={'n' * 3000}", "dead_letters", "bad_event_name"),
            Case("long_value", f"a=21&u={'u' * 300}&n=e", "dead_letters", "bad_user_id"),
            Case("long_value", f"a=21&u={user}&n=e&blob={'b' * 20000}", "events"),
            Case("long_value", f"a=21&u={user}&n=e&s1={CHECKMARKS}", "events"),
        ]
    )


def bad_identifiers(rng: random.Random) -> Case:
    return rng.choice(
        [
            Case("bad_ids", f"a=22&u=ab%00{visitor(rng)}&n=e", "dead_letters", "bad_user_id"),
            Case("bad_ids", "a=22&u=%FF%FE&n=e", "dead_letters", "bad_user_id"),
            Case("bad_ids", f"a=abc&u={visitor(rng)}&n=e", "dead_letters", "bad_project_id"),
            Case("bad_ids", f"u={visitor(rng)}&n=e", "dead_letters", "missing_project_id"),
            Case("bad_ids", f"a=22&u={visitor(rng)}", "dead_letters", "missing_event_name"),
            Case("bad_ids", f"a=22&u={visitor(rng)}&g=x,y", "dead_letters", "missing_event_name"),
            Case("bad_ids", f"a=22&u={visitor(rng)}&n=e&d=%zz", "events", "bad_account_id"),
            Case("bad_ids", f"a=22&u={visitor(rng)}&u=other&n=e", "events", "duplicate_parameter"),
        ]
    )


def host_project(rng: random.Random) -> Case:
    return Case(
        "host_project",
        f"u={visitor(rng)}&n=host&d=5",
        "events",
        headers={"Host": "4242.log.example.com"},
    )


def buckets_cookie(rng: random.Random) -> Case:
    good = "%7B%22987654321%22%3A%221111111%22%2C%22876543210%22%3A%222222222_3333333%22%7D"
    cookie, code = rng.choice([(good, ""), ("%7Bnot json", "bad_buckets_cookie")])
    return Case(
        "buckets_cookie",
        f"a=23&u={visitor(rng)}&n=e&d=1&g=987654321",
        "events",
        code,
        headers={"Cookie": f"other=1; optimizelyBuckets={cookie}"},
    )


def post_body(rng: random.Random) -> Case:
    body = f"a=24&u={visitor(rng)}&n=beacon&g=1&v=5".encode()
    content_type = rng.choice(["text/plain;charset=UTF-8", "application/x-www-form-urlencoded"])
    if rng.random() < 0.3:  # more than HITS_MAX_BODY_BYTES
        return Case(
            "post_body",
            "",
            "dead_letters",
            "body_too_large",
            method="POST",
            body=body + b"&pad=" + b"x" * 70_000,
            headers={"Content-Type": content_type},
        )
    junk = rng.randbytes(rng.randint(0, 64)) if rng.random() < 0.3 else b""
    return Case(
        "post_body",
        "",
        "events",
        method="POST",
        body=body + junk,
        headers={"Content-Type": content_type},
    )


GENERATORS: list[Callable[[random.Random], Case]] = [
    valid,
    valid,
    valid,
    random_bytes_value,
    random_junk,
    random_junk,
    missing_user,
    bad_value,
    huge_number,
    malformed_escapes,
    not_a_number,
    lone_percent,
    many_parameters,
    unicode_text,
    sql_looking,
    long_value,
    bad_identifiers,
    host_project,
    buckets_cookie,
    post_body,
]


def fuzz_cases(count: int, seed: int) -> list[Case]:
    rng = random.Random(seed)
    cases = [generate(rng) for generate in GENERATORS]  # every kind at least once
    cases += [rng.choice(GENERATORS)(rng) for _ in range(count - len(cases) - 1)]
    cases.append(Case("sql", f"a=20&u=robert&n={quote(SQL)}&q={quote(SQL)}", "events", name=SQL))
    return cases


async def send_concurrently(base: str, cases: list[Case], limit: int = 32) -> list[int]:
    """Send every case (the marker first in its query); return the HTTP statuses in order."""
    semaphore = asyncio.Semaphore(limit)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit), timeout=timeout
    ) as session:

        async def one(i: int, case: Case) -> int:
            rest = f"&{case.query}" if case.query else ""
            url = yarl.URL(f"{base}/event?{MARKER}={i}{rest}", encoded=True)
            async with (
                semaphore,
                session.request(
                    case.method, url, data=case.body or None, headers=case.headers
                ) as response,
            ):
                await response.read()
                return response.status

        return await asyncio.gather(*(one(i, case) for i, case in enumerate(cases)))


def marker_of_event(properties: str) -> int:
    return int(orjson.loads(properties)[MARKER])


def marker_of_dead_letter(raw: str) -> int:
    query = rawhit.decode(raw.encode()).query
    match = re.match(rf"{MARKER}=([0-9]+)(?:&|$)", query)
    assert match, query[:200]
    return int(match.group(1))


def test_a_thousand_malformed_hits_are_each_stored_or_dead_lettered_once(
    gateway: str, worker: Worker, clickhouse: Client
) -> None:
    cases = fuzz_cases(1000, seed=20260523)
    statuses = asyncio.run(send_concurrently(gateway, cases))
    refused = Counter((case.kind, status) for case, status in zip(cases, statuses, strict=True))
    assert Counter(statuses) == {200: len(cases)}, {k: n for k, n in refused.items() if k[1] != 200}

    total = "SELECT (SELECT count() FROM events) + (SELECT count() FROM dead_letters)"
    assert wait_for_rows(clickhouse, total, len(cases), timeout=90, worker=worker) == len(cases)
    assert worker.process is not None and worker.process.poll() is None, "the worker died"
    assert get(gateway + "/healthz")[0] == 200
    counts = query(
        clickhouse,
        "SELECT (SELECT count() FROM events), (SELECT uniqExact(hit_id) FROM events), "
        "(SELECT count() FROM dead_letters), (SELECT uniqExact(hit_id) FROM dead_letters), "
        "(SELECT uniqExact(h) FROM (SELECT hit_id AS h FROM events "
        "  UNION ALL SELECT hit_id AS h FROM dead_letters))",
    )[0]
    stored, stored_ids, dead, dead_ids, all_ids = counts
    assert (stored_ids, dead_ids, stored + dead, all_ids) == (
        stored,
        dead,
        len(cases),
        len(cases),
    ), counts

    # Every hit is found by its marker in exactly one place.
    events = {
        marker_of_event(properties): (name, flags)
        for properties, name, flags in query(
            clickhouse, "SELECT properties, name, flags FROM events"
        )
    }
    letters = {
        marker_of_dead_letter(raw): (stage, reason)
        for stage, reason, raw in query(clickhouse, "SELECT stage, reason, raw FROM dead_letters")
    }
    assert len(events) == stored and len(letters) == dead
    assert sorted([*events, *letters]) == list(range(len(cases)))
    for stage, reason in letters.values():
        assert stage in ("gateway", "validate") and SNAKE_CASE.fullmatch(reason), (stage, reason)

    # Where the input decides, each hit landed where the protocol says, with its code.
    wrong = []
    for i, case in enumerate(cases):
        if case.table == "events":
            got = events.get(i)
            if got is None or (case.code and case.code not in got[1]):
                wrong.append((i, case.kind, case.code, got or letters.get(i)))
            elif case.name is not None and got[0] != case.name:
                wrong.append((i, case.kind, case.name, got[0]))
        elif case.table == "dead_letters" and letters.get(i, ("", ""))[1] != case.code:
            wrong.append((i, case.kind, case.code, letters.get(i) or events.get(i)))
    assert not wrong, wrong[:10]

    # SQL-looking text is data: stored byte for byte, never executed.
    assert query(clickhouse, "EXISTS TABLE events") == [(1,)]
    assert query(
        clickhouse,
        "SELECT name, JSONExtractString(properties, 'q') FROM events WHERE visitor_id = 'robert'",
    ) == [(SQL, SQL)]
    assert query(clickhouse, "SELECT count() FROM events WHERE name = {n:String}", n=SQL)[0][0] >= 1
