"""Headers that are not UTF-8, through the real stack: answered 200 and stored, flagged.

Raw sockets to the gateway (no HTTP client sends these bytes), Kafka, the Faust worker, rows
read back from ClickHouse: Optimizely GET and POST, the Monetate tag's beacon and Octeth.
"""

from __future__ import annotations

import socket
import time
from dataclasses import replace

import orjson
import pytest
from clickhouse_connect.driver.client import Client

from schemas.settings import Settings
from tests.integration.conftest import Worker, wait_for_rows

pytestmark = pytest.mark.integration

BAD = (
    b"User-Agent: Mozilla \xff\xfe\r\n"
    b"Referer: http://x/\xed\xa0\x80\r\n"
    b"Cookie: optimizelyBuckets=a\xc2\x97\xff\r\n"
)


@pytest.fixture
def hits_settings(hits_settings: Settings) -> Settings:
    return replace(hits_settings, registry_refresh_s=0.5)


def request(method: str, target: str, body: bytes = b"", content_type: str = "") -> bytes:
    head = f"{method} {target} HTTP/1.1\r\nHost: h\r\nConnection: close\r\n".encode() + BAD
    if content_type:
        head += f"Content-Type: {content_type}\r\n".encode()
    if method == "POST":
        head += f"Content-Length: {len(body)}\r\n".encode()
    return head + b"\r\n" + body


def status_of(settings: Settings, data: bytes) -> int:
    with socket.create_connection((settings.gateway_host, settings.gateway_port), 10) as sock:
        sock.sendall(data)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return int(answer.split(b" ", 2)[1])


def test_headers_that_are_not_utf8_are_stored_and_flagged(
    hits_settings: Settings,
    gateway: str,
    worker: Worker,
    clickhouse: Client,
    octeth_key: str,
) -> None:
    monetate = {
        "v": 1,
        "site": "shop",
        "visitor": "hb-mon",
        "session": "s1",
        "events": [{"key": "signup"}],
    }
    beacons = [
        request("GET", "/event?a=1&u=hb-get&n=e"),
        request("POST", "/event", b"a=1&u=hb-post&n=e", "text/plain;charset=UTF-8"),
        request("POST", "/monetate/collect", orjson.dumps(monetate), "text/plain"),
    ]
    assert [status_of(hits_settings, data) for data in beacons] == [200, 200, 200]

    key = octeth_key
    octeth = orjson.dumps({"APIKey": key, "ListID": 94, "event": "signup", "uuid": "hb-oct"})
    octeth_request = request("POST", "/api/v1/event", octeth, "application/json")
    deadline = time.monotonic() + 15  # the gateway sees the new key within seconds
    while (status := status_of(hits_settings, octeth_request)) == 401:
        assert time.monotonic() < deadline, "the gateway never learnt the new key"
        time.sleep(0.5)
    assert status == 200

    total = "SELECT (SELECT count() FROM events) + (SELECT count() FROM dead_letters)"
    wait_for_rows(clickhouse, total, 4, worker=worker)
    letters = clickhouse.query("SELECT reason, detail FROM dead_letters").result_rows
    assert not letters
    rows = clickhouse.query(
        "SELECT visitor_id, user_agent, page_url, has(flags, 'invalid_utf8') FROM events "
        "ORDER BY visitor_id"
    ).result_rows
    assert [tuple(row) for row in rows] == [
        ("hb-get", "Mozilla \ufffd\ufffd", "http://x/\ufffd\ufffd\ufffd", True),
        ("hb-mon", "Mozilla \ufffd\ufffd", "http://x/\ufffd\ufffd\ufffd", True),
        ("hb-oct", "Mozilla \ufffd\ufffd", "", True),
        ("hb-post", "Mozilla \ufffd\ufffd", "http://x/\ufffd\ufffd\ufffd", True),
    ]
