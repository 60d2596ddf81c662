"""The Octeth endpoints' golden answers, through the real app with an in-memory registry.

The publisher records what it is given (or fails: 503 104); Kafka itself is in tests/integration.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway import octeth as endpoint
from gateway.app import create_app
from gateway.octeth_registry import OctethRegistry, digest, snapshot
from gateway.ratelimit import TokenBucket
from schemas import rawhit
from schemas.octeth import MINTED_UUID_HEADER
from schemas.settings import load_settings
from tests.unit.recording_publisher import RecordingPublisher

KEY = "k-test-0123456789"
SESSION = "s-test-0123456789"
OTHER_KEY = "k-other"
UUID = "aae6840b-3b7e-4f95-a9d5-6dbf5da8d84d"


class FixedRegistry(OctethRegistry):
    def __init__(self) -> None:
        super().__init__(
            None,
            snapshot(
                [
                    ("api_key", digest(KEY), "acme"),
                    ("session_id", digest(SESSION), "acme"),
                    ("api_key", digest(OTHER_KEY), "other"),
                ],
                [(94, "acme"), (3, "acme"), (7, "other")],
            ),
        )

    async def properties(self, list_id: int) -> dict[str, list[str]]:
        return {"pageView": ["$os", "$browser", "$os"], "identify": ["emailAddress"]}


Client = tuple[TestClient[Any, Any], RecordingPublisher]


async def _client(
    tmp_path: Path, **overrides: Any
) -> tuple[TestClient[Any, Any], RecordingPublisher]:
    config = load_settings({}, max_body_bytes=2048, spool_dir=str(tmp_path / "spool"), **overrides)
    publisher = RecordingPublisher(config)
    app = create_app(config, publisher)
    app[endpoint.REGISTRY] = FixedRegistry()
    app[endpoint.LIMITER] = TokenBucket(config.octeth_rate_per_minute)
    client = TestClient(TestServer(app))
    await client.start_server()
    return client, publisher


@pytest.fixture
async def octeth(tmp_path: Path) -> AsyncIterator[Client]:
    client, publisher = await _client(tmp_path)
    yield client, publisher
    await client.close()


async def post(
    client: TestClient[Any, Any], body: Any, path: str = "/api/v1/event"
) -> tuple[int, Any, Any]:
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    response = await client.post(path, data=data, headers={"Content-Type": "application/json"})
    return response.status, orjson.loads(await response.read()), response.headers


def errors(*pairs: tuple[int, str]) -> dict[str, Any]:
    return {"Errors": [{"Code": code, "Message": message} for code, message in pairs]}


async def test_success_echoes_uuid_and_id_and_publishes_keyed_by_list_and_uuid(
    octeth: Client,
) -> None:
    client, publisher = octeth
    body = {
        "APIKey": KEY,
        "ListID": 94,
        "event": "payment_failed",
        "uuid": UUID,
        "email": "event-test-001@test.com",
        "id": "user-100",
        "properties": {"cart_id": "cart-001"},
    }
    status, answer, _ = await post(client, body)
    assert status == 200
    assert answer == {
        "status": "success",
        "uuid": UUID,
        "external_id": "user-100",
        "identify_event_sent": True,
    }
    [(topic, value, key)] = publisher.sent
    hit = rawhit.decode(value)
    assert (topic, hit.kind, key) == ("hits.raw", "octeth", f"94:{UUID}".encode())
    assert hit.header(MINTED_UUID_HEADER) == ""


async def test_success_mints_a_uuid_when_none_was_sent(octeth: Client) -> None:
    client, publisher = octeth
    status, answer, _ = await post(client, {"SessionID": SESSION, "ListID": "3", "event": "x"})
    assert status == 200 and answer["external_id"] is None
    assert answer["identify_event_sent"] is False and len(answer["uuid"]) == 36
    hit = rawhit.decode(publisher.sent[0][1])
    assert hit.header(MINTED_UUID_HEADER) == answer["uuid"]
    assert publisher.sent[0][2] == f"3:{answer['uuid']}".encode()


@pytest.mark.parametrize(
    ("body", "status", "expected"),
    [
        (b"[1]", 400, errors((102, "Request body is not a JSON object."))),
        (b"{nope", 400, errors((102, "Request body is not a JSON object."))),
        (
            {"ListID": 94, "event": "x"},
            401,
            errors((100, "Missing APIKey or SessionID parameter.")),
        ),
        (
            {"APIKey": "wrong", "ListID": 94, "event": "x"},
            401,
            errors((101, "Invalid APIKey or SessionID parameter.")),
        ),
        (
            {"APIKey": KEY, "ListID": 7, "event": "x"},  # another account's list
            422,
            errors((4, "Invalid ListID parameter")),
        ),
        (
            {"APIKey": KEY, "event": " ", "email": "nope"},
            422,
            errors(
                (4, "Invalid ListID parameter"),
                (5, "Missing event parameter."),
                (7, "Invalid email parameter."),
            ),
        ),
        (
            {"APIKey": KEY, "ListID": 94, "event": "identify"},
            422,
            errors((6, "Missing email parameter.")),
        ),
        (
            {"APIKey": KEY, "ListID": 94, "event": "conversion", "properties": {}},
            422,
            errors(
                (8, "Missing conversion-id event property."),
                (9, "Missing conversion-name event property."),
                (10, "Missing conversion-value event property."),
            ),
        ),
    ],
)
async def test_error_rows(octeth: Client, body: Any, status: int, expected: Any) -> None:
    client, publisher = octeth
    got_status, answer, _ = await post(client, body)
    assert (got_status, answer) == (status, expected)
    assert publisher.sent == []


async def test_body_too_large_is_413(octeth: Client) -> None:
    client, publisher = octeth
    status, answer, _ = await post(client, b"{" + b" " * 4096 + b"}")
    assert status == 413 and answer == errors((105, "Request body is too large."))
    assert publisher.sent == []


async def test_kafka_down_is_503_104_with_retry_after(octeth: Client) -> None:
    client, publisher = octeth
    publisher.fail = True
    status, answer, headers = await post(client, {"APIKey": KEY, "ListID": 94, "event": "x"})
    assert (status, answer) == (503, errors((104, "Service temporarily unavailable.")))
    assert int(headers["Retry-After"]) >= 1


async def test_rate_limit_is_429_103_with_retry_after_per_key(tmp_path: Path) -> None:
    client, publisher = await _client(tmp_path, octeth_rate_per_minute=2)
    try:
        body = {"APIKey": KEY, "ListID": 94, "event": "x"}
        assert [(await post(client, body))[0] for _ in range(2)] == [200, 200]
        status, answer, headers = await post(client, body)
        assert (status, answer) == (429, errors((103, "Too many requests.")))
        assert int(headers["Retry-After"]) >= 1
        other = {"APIKey": OTHER_KEY, "ListID": 7, "event": "x"}
        assert (await post(client, other))[0] == 200  # another key has its own bucket
        assert len(publisher.sent) == 3
    finally:
        await client.close()


async def test_properties_endpoint(octeth: Client) -> None:
    client, _ = octeth
    path = "/api/v1/website_events.properties"
    status, answer, _ = await post(client, {"APIKey": KEY, "ListID": 3}, path)
    assert status == 200
    assert answer == {
        "ListID": "3",
        "Properties": {"identify": ["emailAddress"], "pageView": ["$browser", "$os"]},
    }
    cases = [
        ({"APIKey": KEY}, errors((1, "Missing ListID parameter"))),
        ({"APIKey": KEY, "ListID": "x"}, errors((2, "Invalid ListID parameter"))),
        ({"APIKey": KEY, "ListID": 7}, errors((3, "List not found"))),
    ]
    for body, expected in cases:
        assert (await post(client, body, path))[:2] == (422, expected)
    assert (await post(client, {"APIKey": "nope", "ListID": 3}, path))[0] == 401


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
TOP = st.fixed_dictionaries(
    {},
    optional={
        "APIKey": st.sampled_from([KEY, OTHER_KEY, "x", ""]) | JSON,
        "SessionID": st.sampled_from([SESSION]) | JSON,
        "ListID": st.sampled_from([94, "3", 7, 0, -1, "94 "]) | JSON,
        "event": st.sampled_from(["identify", "conversion", "pageView", ""]) | JSON,
        "email": st.sampled_from(["a@b.co", "bad@", ""]) | JSON,
        "id": JSON,
        "uuid": JSON,
        "isSilent": JSON,
        "properties": st.dictionaries(
            st.sampled_from(["conversion-id", "conversion-name", "conversion-value", "isSilent"])
            | st.text(max_size=8),
            JSON,
        )
        | JSON,
    },
)
BODIES = (
    TOP.map(json.dumps).map(str.encode)
    | st.binary(max_size=64)
    | JSON.map(json.dumps).map(str.encode)
)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=BODIES, fail=st.booleans())
async def test_fuzz_no_5xx_but_503_and_every_refusal_in_the_envelope(
    tmp_path: Path, body: bytes, fail: bool
) -> None:
    client, publisher = await _client(tmp_path, octeth_rate_per_minute=1_000_000)
    publisher.fail = fail
    try:
        for path in ("/api/v1/event", "/api/v1/website_events.properties"):
            response = await client.post(path, data=body)
            status, data = response.status, await response.read()
            assert status < 500 or status == 503, (status, data)
            if status == 503:
                assert response.headers["Retry-After"]
            if status != 200:
                answer = orjson.loads(data)
                assert set(answer) == {"Errors"} and answer["Errors"]
                assert all(set(e) == {"Code", "Message"} for e in answer["Errors"])
    finally:
        await client.close()


SEED_REQUESTS = sorted(
    (Path(__file__).parent.parent / "fixtures" / "octeth" / "requests").glob("*.jsonc")
)


@pytest.mark.parametrize("path", SEED_REQUESTS, ids=lambda path: path.stem)
async def test_seed_examples_need_the_lenient_switch(path: Path, tmp_path: Path) -> None:
    """The seed's examples carry `//` comments: strict by default (400 102), 200 when lenient."""
    body = path.read_bytes().replace(b"{{user_apikey}}", KEY.encode())
    route = "/api/v1/website_events.properties" if path.stem.startswith("properties") else None
    for lenient, expected in ((False, 400), (True, 200)):
        client, publisher = await _client(tmp_path / str(lenient), octeth_lenient_json=lenient)
        try:
            status, answer, _ = await post(client, body, *([route] if route else []))
        finally:
            await client.close()
        assert status == expected, answer
        if lenient:
            assert "Errors" not in answer
            assert len(publisher.sent) == (0 if route else 1)
        else:
            assert answer == errors((102, "Request body is not a JSON object."))
            assert publisher.sent == []


async def test_conversions_with_one_id_share_a_key_whoever_sends_them(octeth: Client) -> None:
    """Keyed by list and conversion id, they meet in one partition: the first counts exactly."""
    client, publisher = octeth
    conversion = {
        "APIKey": KEY,
        "ListID": 94,
        "event": "conversion",
        "properties": {
            "conversion-id": "order-9",
            "conversion-name": "Order",
            "conversion-value": "12.50",
        },
    }
    for visitor in (UUID, "0b7c8e52-1f0e-4c55-9f7e-2d2f1c0a9e11", None):
        status, answer, _ = await post(client, {**conversion, "uuid": visitor})
        assert status == 200, answer
    status, _, _ = await post(client, {"APIKey": KEY, "ListID": 94, "event": "x", "uuid": UUID})
    assert status == 200
    keys = [key for _, _, key in publisher.sent]
    assert keys == [b"94:conversion:order-9"] * 3 + [f"94:{UUID}".encode()]
