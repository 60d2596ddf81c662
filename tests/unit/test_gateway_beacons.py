"""The beacon endpoint's contract with browsers: always 200, no-store, CORS, GIF on request.

The publisher here records what it is given (the real Kafka path is in tests/integration).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from gateway.app import create_app
from gateway.beacons import GIF
from gateway.spool import Spool
from schemas import rawhit
from schemas.settings import Settings, load_settings
from tests.unit.recording_publisher import RecordingPublisher

SETTINGS = load_settings({}, max_body_bytes=2048)


@pytest.fixture(autouse=True)
def settings(tmp_path: Path) -> Settings:
    """Each test's spool in its own temporary directory."""
    global SETTINGS
    SETTINGS = load_settings({}, max_body_bytes=2048, spool_dir=str(tmp_path / "spool"))
    return SETTINGS


@pytest.fixture
async def client_and_sent() -> AsyncIterator[tuple[TestClient, RecordingPublisher]]:
    publisher = RecordingPublisher()
    async with TestClient(TestServer(create_app(SETTINGS, publisher))) as client:
        yield client, publisher


async def test_get_event_publishes_the_query_byte_for_byte(client_and_sent) -> None:  # type: ignore[no-untyped-def]
    client, publisher = client_and_sent
    response = await client.get("/event?a=1&u=v%201&n=e&x2=3", headers={"Origin": "https://shop"})
    assert response.status == 200 and await response.read() == b""
    assert response.headers["Cache-Control"].startswith("no-store")
    assert response.headers["Access-Control-Allow-Origin"] == "https://shop"
    [(topic, value, key)] = publisher.sent
    hit = rawhit.decode(value)
    assert (topic, hit.kind, hit.query, key) == (
        "hits.raw",
        "optimizely",
        "a=1&u=v%201&n=e&x2=3",
        b"1:v 1",
    )


async def test_image_request_gets_a_gif(client_and_sent) -> None:  # type: ignore[no-untyped-def]
    client, _ = client_and_sent
    response = await client.get("/event?a=1&u=v", headers={"Accept": "image/avif,image/*"})
    assert response.content_type == "image/gif" and await response.read() == GIF


async def test_sendbeacon_post_body_is_kept(client_and_sent) -> None:  # type: ignore[no-untyped-def]
    client, publisher = client_and_sent
    response = await client.post(
        "/event", data=b"a=1&u=v&n=e", headers={"Content-Type": "text/plain;charset=UTF-8"}
    )
    assert response.status == 200
    hit = rawhit.decode(publisher.sent[0][1])
    assert (hit.method, hit.body) == ("POST", b"a=1&u=v&n=e")


async def test_oversized_body_is_cut_and_marked_for_the_dead_letters(client_and_sent) -> None:  # type: ignore[no-untyped-def]
    client, publisher = client_and_sent
    response = await client.post("/event", data=b"x" * 10_000)
    assert response.status == 200
    hit = rawhit.decode(publisher.sent[0][1])
    assert len(hit.body) == 2048 and hit.header(rawhit.REJECT_HEADER).startswith("body_too_large")


async def test_long_query_and_cookie_are_published_not_refused(settings: Settings) -> None:
    """Past aiohttp's 8190-byte default a request would get its 400 before any handler."""
    publisher = RecordingPublisher()
    app = create_app(replace(settings, max_body_bytes=65536), publisher)
    query = "a=1&u=v&n=e" + "".join(f"&p{i}={i}" for i in range(2000))
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/event?" + query, headers={"Cookie": "c=" + "x" * 20_000})
    assert response.status == 200
    assert rawhit.decode(publisher.sent[0][1]).query == query


async def test_preflight_allows_any_page(client_and_sent) -> None:  # type: ignore[no-untyped-def]
    client, _ = client_and_sent
    response = await client.options(
        "/event", headers={"Origin": "https://a.example", "Access-Control-Request-Method": "POST"}
    )
    assert response.status == 204
    assert response.headers["Access-Control-Allow-Origin"] == "https://a.example"


async def test_a_broker_outage_spools_the_hit_before_the_200(settings: Settings) -> None:
    publisher = RecordingPublisher(fail=True)
    async with TestClient(TestServer(create_app(settings, publisher))) as client:
        assert (await client.get("/event?a=1&u=v")).status == 200
        ready = await (await client.get("/readyz")).json()
        metrics = await (await client.get("/metrics")).text()
    assert (ready["kafka"], ready["spooled"]) == (False, 1)
    assert 'hitstream_gateway_hits_total{outcome="spool",protocol="optimizely"}' in metrics
    [(_, _, record)] = Spool(Path(settings.spool_dir), 1 << 20).peek(10)
    assert rawhit.decode(record.value).query == "a=1&u=v" and record.key == b"1:v"


async def test_health_and_readiness() -> None:
    publisher = RecordingPublisher()
    async with TestClient(TestServer(create_app(SETTINGS, publisher))) as client:
        assert (await client.get("/healthz")).status == 200
        assert (await client.get("/readyz")).status == 200


async def test_a_body_in_several_segments_is_read_whole(settings: Settings) -> None:
    """`StreamReader.read(n)` returns what has arrived: the body used to be cut at the first."""
    publisher = RecordingPublisher()
    server = TestServer(create_app(settings, publisher))
    await server.start_server()
    body = b"a=1&u=v&n=e&" + b"p=x&" * 200
    try:
        reader, writer = await asyncio.open_connection(server.host, server.port)
        head = f"POST /event HTTP/1.1\r\nHost: h\r\nContent-Length: {len(body)}\r\n\r\n"
        writer.write(head.encode() + body[:100])
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(body[100:])
        assert (await reader.readline()).startswith(b"HTTP/1.1 200")
        writer.close()
    finally:
        await server.close()
    assert rawhit.decode(publisher.sent[0][1]).body == body
