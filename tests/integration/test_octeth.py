"""Octeth through the real stack: the CLI registry, the gateway, Kafka, the worker, ClickHouse.

The seed's purchase journey (page view, cart, checkout, failed and succeeded payment, conversion)
plus a repeated conversion and a silent event: events stored, the first conversion counted and
the repeat stored as a duplicate, identity links with an HMAC (never the email in clear), the
triggers topic receiving the non-silent events only, then the properties endpoint listing the
keys those events carried.
"""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest
from clickhouse_connect.driver.client import Client

from pipeline import identity
from schemas.settings import Settings
from schemas.topics import TRIGGERS
from tests.integration.conftest import Worker, read_topic, wait_for_rows

pytestmark = pytest.mark.integration

UUID = "aae6840b-3b7e-4f95-a9d5-6dbf5da8d84d"
EMAILS = ("2006@test.com", "event-test-001@test.com")


def post(url: str, body: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
    req = urllib.request.Request(url, data=orjson.dumps(body), method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, dict(response.headers), orjson.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), orjson.loads(exc.read())


def journey(key: str) -> list[dict[str, Any]]:
    base = {"APIKey": key, "ListID": 94}
    buyer = {"uuid": UUID, "email": EMAILS[1], "id": "user-100"}
    conversion = {
        **base,
        **buyer,
        "event": "conversion",
        "properties": {
            "conversion-id": "test-order-2",
            "conversion-name": "Order 2",
            "conversion-value": 50,
            "conversion-currency": "USD",
            "conversion-quantity": 2,
            "pr": "",
        },
    }
    return [
        {
            **base,
            "id": "user-id-2006",
            "event": "test",
            "email": EMAILS[0],
            "properties": {"number-of-subscribers-imported": 100},
        },
        {**base, "event": "page_view"},
        {
            **base,
            "event": "add_to_shopping_cart",
            "uuid": UUID,
            "properties": {"product": "My Product", "product_id": 101},
        },
        {**base, "event": "checkout_page_visited", "uuid": UUID},
        {**base, **buyer, "event": "payment_failed", "properties": {"cart_id": "cart-001"}},
        {**base, **buyer, "event": "payment_succeeded", "properties": {"cart_id": "cart-001"}},
        conversion,
        conversion,  # the same order again: stored, flagged as a duplicate conversion
        {**base, "event": "pageView", "uuid": UUID, "properties": {"isSilent": True}},
    ]


def test_octeth_purchase_journey(
    hits_settings: Settings,
    clickhouse: Client,
    worker: Worker,
    gateway: str,
    octeth_key: str,
    tmp_path: Path,
) -> None:
    key = octeth_key
    assert len(key) >= 32
    stored = clickhouse.query("SELECT credential_sha256 FROM octeth_credentials").result_rows
    assert stored and all(key not in str(row) for row in stored)

    url = f"{gateway}/api/v1/event"
    body = journey(key)
    deadline = time.monotonic() + 15  # the gateway sees the new key within seconds
    status, _, answer = post(url, body[0])
    while status == 401 and time.monotonic() < deadline:
        time.sleep(0.5)
        status, _, answer = post(url, body[0])
    assert status == 200, answer
    assert answer["external_id"] == "user-id-2006" and answer["identify_event_sent"] is True
    answers = [answer] + [post(url, item)[2] for item in body[1:]]
    assert all(a["status"] == "success" for a in answers), answers
    assert [a["uuid"] for a in answers[2:]] == [UUID] * 7
    assert answers[6] == {
        "status": "success",
        "uuid": UUID,
        "external_id": "user-100",
        "identify_event_sent": True,
    }
    assert post(url, {"APIKey": "nope", "ListID": 94, "event": "x"})[0] == 401
    assert post(url, {"APIKey": key, "ListID": 95, "event": "x"})[2] == {
        "Errors": [{"Code": 4, "Message": "Invalid ListID parameter"}]
    }

    wait_for_rows(
        clickhouse, "SELECT count() FROM events WHERE source = 'octeth'", 9, worker=worker
    )
    wait_for_rows(clickhouse, "SELECT count() FROM identities", 5, worker=worker)
    wait_for_rows(clickhouse, "SELECT count() FROM octeth_properties", 1, worker=worker)
    # a batch is inserted table by table: the conversions may land after the identities
    wait_for_rows(
        clickhouse, "SELECT count() FROM conversions WHERE source = 'octeth'", 2, worker=worker
    )
    conversions = clickhouse.query(
        "SELECT goal_id, value_cents, is_duplicate FROM conversions FINAL "
        "WHERE source = 'octeth' ORDER BY received_at, is_duplicate"
    ).result_rows
    assert [tuple(r) for r in conversions] == [("test-order-2", 5000, 0), ("test-order-2", 5000, 1)]

    secret = identity.secret_bytes(hits_settings.identity_secret)
    links = clickhouse.query(
        "SELECT DISTINCT uuid, external_id, email_hmac FROM identities FINAL ORDER BY external_id"
    ).result_rows
    minted = answers[0]["uuid"]
    assert [tuple(r) for r in links] == [
        (UUID, "user-100", identity.email_hmac(EMAILS[1], secret)),
        (minted, "user-id-2006", identity.email_hmac(EMAILS[0], secret)),
    ]

    triggers = asyncio.run(read_topic(hits_settings, TRIGGERS, within=30, expected=8))
    assert sorted(t["name"] for t in triggers) == sorted(
        [
            *("test", "page_view", "add_to_shopping_cart", "checkout_page_visited"),
            *("payment_failed", "payment_succeeded", "conversion", "conversion"),
        ]
    )

    props_url = f"{gateway}/api/v1/website_events.properties"
    deadline = time.monotonic() + 30
    expected = {
        "test": ["number-of-subscribers-imported"],
        "add_to_shopping_cart": ["product", "product_id"],
        "payment_failed": ["cart_id"],
        "payment_succeeded": ["cart_id"],
        "conversion": [
            "conversion-currency",
            "conversion-id",
            "conversion-name",
            "conversion-quantity",
            "conversion-value",
            "pr",
        ],
        "pageView": ["isSilent"],
    }
    while True:
        status, _, answer = post(props_url, {"APIKey": key, "ListID": 94})
        if answer == {"ListID": "94", "Properties": expected} or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert (status, answer) == (200, {"ListID": "94", "Properties": expected})

    # No email in clear: not in any ClickHouse table, not in the worker's or the gateway's logs.
    tables = clickhouse.query(
        "SELECT name FROM system.tables WHERE database = {db:String}",
        parameters={"db": hits_settings.clickhouse_database},
    ).result_rows
    for (table,) in tables:
        dump = clickhouse.raw_query(f"SELECT * FROM `{table}` FORMAT TSV").lower()
        for email in EMAILS:
            assert email.encode() not in dump, table
        assert b"@test.com" not in dump, table
    logs = worker.log_text() + (tmp_path / "gateway.log").read_text(errors="replace")
    assert logs and all(email not in logs.lower() for email in EMAILS)
    assert key not in logs
