"""Monetate in the pure stages and the gateway: bad keys split in validate, counting in derive,
definitions judged, the collect/tag endpoints and the admin API's guard."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from deploy import event_definitions as store
from gateway.app import create_app
from pipeline import rows
from pipeline.definitions import CONDITIONS_NOT_MET, UNDEFINED_EVENT_KEY, index, judge
from pipeline.derive import derive
from pipeline.validate import validate
from schemas import monetate, rawhit
from schemas import monetate_definitions as defs
from schemas.event import Event
from schemas.formats import ParseContext
from schemas.settings import load_settings
from tests.unit.recording_publisher import RecordingPublisher

CONTEXT = ParseContext(late_horizon_ms=7 * 86_400_000)
RECEIVED = 1_700_000_000_000


def beacon(*keys: object, site: str = "shop") -> dict[str, object]:
    return {
        "v": 1,
        "site": site,
        "visitor": "v1",
        "session": "s1",
        "page": {"url": "https://s/checkout", "device": "mobile", "view": "pv1"},
        "experiments": {"e": "A"},
        "events": [{"key": k, "at": RECEIVED, "seq": i} for i, k in enumerate(keys)],
    }


def raw_beacon(body: dict[str, object]) -> bytes:
    _, hit = monetate.direct_hit(orjson.dumps(body), hit_id="h1", received_at_ms=RECEIVED)
    return rawhit.encode(hit)


def test_each_bad_key_is_its_own_dead_letter_and_good_events_flow_on() -> None:
    result = validate(raw_beacon(beacon("ok", "bad key!", "Event Key", 7)), 2, 40, CONTEXT)
    assert [e.name for e in result.events] == ["ok", "Event Key"]
    assert [e.lineage.index for e in result.events] == [0, 2]
    assert [(d.stage, d.reason, d.lineage.index) for d in result.dead_letters] == [
        ("validate", "bad_event_key", 1),
        ("validate", "bad_event_key", 3),  # 7: not a string (the tag sends numbers as text)
    ]
    letter = result.dead_letters[0]
    assert "bad key!" in letter.detail and letter.raw and letter.source == "monetate"
    again = validate(raw_beacon(beacon("ok", "bad key!", "Event Key", 7)), 2, 40, CONTEXT)
    assert again.dead_letters[0].dlq_id == letter.dlq_id  # stable under replay


def test_a_beacon_of_only_bad_keys_gives_only_dead_letters() -> None:
    result = validate(raw_beacon(beacon("a!", "b?")), 0, 1, CONTEXT)
    assert result.events == ()
    assert len({d.dlq_id for d in result.dead_letters}) == 2


def test_derive_writes_first_in_session_and_counted_into_the_event_row() -> None:
    [event] = validate(raw_beacon(beacon("ok")), 0, 0, CONTEXT).events
    columns = rows.COLUMNS["events"]
    first = dict(zip(columns, derive(event, None, True, False).tables["events"][0], strict=True))
    assert (first["first_in_session"], first["counted"]) == (1, 0)
    default = dict(zip(columns, derive(event).tables["events"][0], strict=True))
    assert (default["first_in_session"], default["counted"]) == (0, 1)


def definition(key: str = "ok", *conditions: defs.Condition) -> defs.EventDefinition:
    return defs.EventDefinition(site="shop", key=key, title="T", conditions=conditions)


def event_of(key: str) -> Event:
    return validate(raw_beacon(beacon(key)), 0, 0, CONTEXT).events[0]


def test_judge_counts_defined_keys_whose_conditions_hold() -> None:
    assert judge(definition(), event_of("ok")) == (True, ())
    assert judge(None, event_of("ok")) == (False, (UNDEFINED_EVENT_KEY,))
    desktop = defs.Condition(field="device_type", op="equals", value="desktop")
    assert judge(definition("ok", desktop), event_of("ok")) == (False, (CONDITIONS_NOT_MET,))
    path = defs.Condition(field="page_url", op="contains", value="/checkout")
    assert judge(definition("ok", path), event_of("ok")) == (True, ())
    assert index([definition("a"), definition("b")]).keys() == {("shop", "a"), ("shop", "b")}


def test_definition_rows_round_trip() -> None:
    original = definition("Event Key", defs.Condition(field="referrer", op="in", value=("", "x")))
    tenant, key, title, description, conditions, deleted = store.row(original)
    assert deleted == 0
    assert store.from_row(tenant, key, title, description, conditions) == original
    assert isinstance(store.from_row("shop", "bad!", "T", "", "[]"), defs.Invalid)


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[tuple[TestClient, RecordingPublisher]]:
    settings = load_settings({}, spool_dir=str(tmp_path / "spool"))
    publisher = RecordingPublisher()
    async with TestClient(TestServer(create_app(settings, publisher))) as test_client:
        yield test_client, publisher


async def test_collect_publishes_a_monetate_hit_keyed_by_site_and_visitor(
    client: tuple[TestClient, RecordingPublisher],
) -> None:
    test_client, publisher = client
    body = orjson.dumps(beacon("ok"))
    response = await test_client.post(
        "/monetate/collect", data=body, headers={"Content-Type": "text/plain"}
    )
    assert response.status == 200 and await response.read() == b""
    assert response.headers["Cache-Control"].startswith("no-store")
    [(_, value, key)] = publisher.sent
    hit = rawhit.decode(value)
    assert (hit.kind, hit.body, key) == ("monetate", body, b"shop:v1")
    assert key == monetate.partition_key(body)
    junk = await test_client.post("/monetate/collect", data=b"junk")
    # keyless (no site or visitor to read): keyed by its hit id, so a second copy of the hit
    # meets the first in one partition (pipeline/seen.py)
    _, junk_value, junk_key = publisher.sent[-1]
    assert junk.status == 200 and junk_key == rawhit.decode(junk_value).hit_id.encode()
    preflight = await test_client.options(
        "/monetate/collect",
        headers={"Origin": "https://s", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://s"


async def test_tag_is_served_cacheable(client: tuple[TestClient, RecordingPublisher]) -> None:
    response = await client[0].get("/monetate/tag.js")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("application/javascript")
    assert response.headers["Cache-Control"] == "public, max-age=300"
    assert b"monetateQ" in await response.read()


async def test_admin_api_is_off_without_an_admin_key(
    client: tuple[TestClient, RecordingPublisher],
) -> None:
    for method, path in [("GET", ""), ("GET", "/shop/ok"), ("PUT", "/shop/ok"), ("DELETE", "/s/k")]:
        response = await client[0].request(method, "/admin/monetate/definitions" + path)
        assert response.status == 404
