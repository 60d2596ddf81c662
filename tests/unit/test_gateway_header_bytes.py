"""Header values that are not UTF-8 (Latin-1 user agents, broken cookies) on every hit route.

aiohttp hands such values over as `str` with surrogate escapes; the raw hit keeps their bytes
(`headers_b64`), the answer is the route's usual one (never a 500), and the parsers read U+FFFD
and flag the event `invalid_utf8`. Requests go over a raw socket: no HTTP client sends these bytes.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestServer

from gateway import octeth as endpoint
from gateway.app import create_app
from gateway.ratelimit import TokenBucket
from schemas import monetate, octeth, optimizely, rawhit
from schemas.formats import ParseContext
from schemas.outcome import Accepted
from schemas.settings import load_settings
from tests.unit.factories import raw_hit
from tests.unit.recording_publisher import RecordingPublisher
from tests.unit.test_octeth_gateway import KEY, FixedRegistry

# The three headers, as sent by old or broken clients.
BAD_HEADERS = {
    "user-agent": b"Mozilla \xff\xfe",
    "referer": b"http://x/\xed\xa0\x80",  # UTF-8 of a lone surrogate: not UTF-8 either
    "cookie": b"optimizelyBuckets=a\xc2\x97\xff",
}
MONETATE_BODY = orjson.dumps(
    {"v": 1, "site": "shop", "visitor": "v1", "session": "s1", "events": [{"key": "signup"}]}
)
HORIZON_MS = 10**15
OCTETH_BODY = orjson.dumps({"APIKey": KEY, "ListID": 94, "event": "signup", "uuid": "u-1"})


def request(method: bytes, target: bytes, body: bytes = b"", content_type: bytes = b"") -> bytes:
    lines = [method + b" " + target + b" HTTP/1.1", b"Host: h", b"Connection: close"]
    lines += [name.encode() + b": " + value for name, value in BAD_HEADERS.items()]
    if content_type:
        lines.append(b"Content-Type: " + content_type)
    if method == b"POST":
        lines.append(b"Content-Length: " + str(len(body)).encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


async def exchange(server: TestServer, data: bytes) -> int:
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(data)
    answer = await reader.read()
    writer.close()
    return int(answer.split(b" ", 2)[1])


CASES = [
    ("optimizely", request(b"GET", b"/event?a=1&u=v&n=e")),
    ("optimizely", request(b"POST", b"/event", b"a=1&u=v&n=e", b"text/plain")),
    ("monetate", request(b"POST", b"/monetate/collect", MONETATE_BODY, b"text/plain")),
    ("octeth", request(b"POST", b"/api/v1/event", OCTETH_BODY, b"application/json")),
]


@pytest.mark.parametrize(("kind", "data"), CASES, ids=["get", "post", "monetate", "octeth"])
async def test_bytes_that_are_not_utf8_in_headers_are_kept_and_answered_200(
    tmp_path: Path, kind: str, data: bytes
) -> None:
    config = load_settings({}, spool_dir=str(tmp_path / "spool"))
    publisher = RecordingPublisher(config)
    app = create_app(config, publisher)
    app[endpoint.REGISTRY] = FixedRegistry()
    app[endpoint.LIMITER] = TokenBucket(config.octeth_rate_per_minute)
    server = TestServer(app)
    await server.start_server()
    try:
        assert await exchange(server, data) == 200
    finally:
        await server.close()
    [(_, value, _)] = publisher.sent
    hit = rawhit.decode(value)
    assert hit.kind == kind
    # Byte-faithful: the bytes received, back from the envelope.
    for name, sent in BAD_HEADERS.items():
        assert hit.header(name).encode("utf-8", "surrogateescape") == sent
    assert set(orjson.loads(value)["headers_b64"]) == set(BAD_HEADERS)


def hit_with_bad_headers(kind: str, **fields: Any) -> rawhit.RawHit:
    headers = {
        name: value.decode("utf-8", "surrogateescape") for name, value in BAD_HEADERS.items()
    }
    return raw_hit(kind=kind, path="", headers=headers, **fields)


def test_envelope_round_trip_is_exact_and_other_headers_stay_text() -> None:
    hit = hit_with_bad_headers("optimizely", query="a=1&u=v&n=e")
    hit = replace(hit, headers={**hit.headers, "host": "h"})
    data = rawhit.encode(hit)
    assert orjson.loads(data)["headers"] == {"host": "h"}
    assert rawhit.decode(data) == hit


def test_a_lone_surrogate_from_a_direct_producer_is_encoded_not_raised() -> None:
    hit = rawhit.RawHit(
        hit_id="h1", kind="native", received_at_ms=1, headers={"user-agent": "a\ud800"}
    )
    decoded = rawhit.decode(rawhit.encode(hit))
    assert decoded.header("user-agent").encode("utf-8", "surrogateescape") == b"a\xed\xa0\x80"
    assert decoded.text("user-agent") == "a\ufffd\ufffd\ufffd"


@pytest.mark.parametrize(
    "headers_b64", [[], {"user-agent": 3}, {"user-agent": "not base64!"}], ids=str
)
def test_a_bad_headers_b64_is_an_envelope_error(headers_b64: object) -> None:
    data = orjson.dumps(
        {"v": 1, "hit_id": "h", "kind": "native", "received_at_ms": 1, "headers_b64": headers_b64}
    )
    with pytest.raises(rawhit.RawHitError) as info:
        rawhit.decode(data)
    assert info.value.reason == "envelope_headers"


def test_optimizely_flags_and_keeps_the_hit() -> None:
    hit = hit_with_bad_headers("optimizely", query="a=1&u=v&n=e")
    outcome = optimizely.parse(rawhit.decode(rawhit.encode(hit)), late_horizon_ms=HORIZON_MS)
    assert isinstance(outcome, Accepted)
    [event] = outcome.events
    assert "invalid_utf8" in event.flags
    assert (event.user_agent, event.page_url) == (
        "Mozilla \ufffd\ufffd",
        "http://x/\ufffd\ufffd\ufffd",
    )
    assert event.experiments == {}  # the broken cookie gives no experiment map


def test_monetate_flags_and_keeps_the_hit() -> None:
    hit = hit_with_bad_headers("monetate", method="POST", body=MONETATE_BODY)
    outcome = monetate.parse(
        rawhit.decode(rawhit.encode(hit)), ParseContext(late_horizon_ms=HORIZON_MS)
    )
    assert isinstance(outcome, Accepted)
    [event] = outcome.events
    assert "invalid_utf8" in event.flags and "bad_event_key" not in event.flags
    assert event.user_agent == "Mozilla \ufffd\ufffd"


def test_clean_headers_raise_no_flag() -> None:
    hit = raw_hit(query="a=1&u=v&n=e", headers={"user-agent": "Mozilla é", "host": "h"})
    outcome = optimizely.parse(rawhit.decode(rawhit.encode(hit)), late_horizon_ms=HORIZON_MS)
    assert isinstance(outcome, Accepted) and outcome.events[0].flags == ("missing_account_id",)


def test_octeth_flags_and_keeps_the_hit() -> None:
    hit = hit_with_bad_headers("octeth", method="POST", body=OCTETH_BODY)
    outcome = octeth.parse(rawhit.decode(rawhit.encode(hit)))
    assert isinstance(outcome, Accepted)
    [event] = outcome.events
    assert "invalid_utf8" in event.flags and event.user_agent == "Mozilla \ufffd\ufffd"
