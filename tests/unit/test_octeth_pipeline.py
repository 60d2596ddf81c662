"""Octeth in the pure stages: email HMAC'd in validate, conversions (first counts), identities
and the property catalogue in derive, the triggers rule and the first-conversion rule."""

from __future__ import annotations

from typing import Any

from pipeline import identity, rows, seen
from pipeline import octeth as rules
from pipeline.derive import derive
from pipeline.validate import validate
from schemas import rawhit
from schemas.event import Event
from schemas.formats import ParseContext
from tests.unit.factories import octeth_hit

CONTEXT = ParseContext(late_horizon_ms=7 * 86_400_000)
SECRET = b"test-secret"
EMAIL = "Event-Test-001@test.com"


def hit(body: dict[str, Any], hit_id: str = "h1") -> bytes:
    return rawhit.encode(octeth_hit(body, hit_id))


def event_of(body: dict[str, Any], hit_id: str = "h1") -> Event:
    [item] = validate(hit(body, hit_id), 0, 5, CONTEXT, SECRET).events
    return item


CONVERSION: dict[str, Any] = {
    "APIKey": "k",
    "ListID": 94,
    "id": "user-100",
    "event": "conversion",
    "email": EMAIL,
    "uuid": "u-1",
    "properties": {
        "conversion-id": "test-order-2",
        "conversion-name": "Order 2",
        "conversion-value": 50,
        "pr": "",
    },
}


def test_the_email_becomes_an_hmac_and_is_stored_nowhere_in_clear() -> None:
    item = event_of(CONVERSION)
    expected = identity.email_hmac(EMAIL, SECRET)
    assert item.dimensions[identity.EMAIL_HMAC] == expected
    assert expected == identity.email_hmac("event-test-001@test.com ", SECRET)
    bundle = derive(item)
    encoded = rows.encode(bundle).lower()
    assert b"event-test-001" not in encoded and b"@test.com" not in encoded
    [identity_row] = bundle.tables["identities"]
    named = dict(zip(rows.COLUMNS["identities"], identity_row, strict=True))
    assert (named["tenant"], named["uuid"], named["external_id"], named["email_hmac"]) == (
        "94",
        "u-1",
        "user-100",
        expected,
    )


def test_conversion_rows_first_counts_later_are_duplicates() -> None:
    item = event_of(CONVERSION)
    [row] = derive(item).tables["conversions"]
    named = dict(zip(rows.COLUMNS["conversions"], row, strict=True))
    assert (named["goal_id"], named["value_cents"], named["is_duplicate"]) == (
        "test-order-2",
        5000,
        0,
    )
    [again] = derive(item, conversion_duplicate=True).tables["conversions"]
    assert again[rows.COLUMNS["conversions"].index("is_duplicate")] == 1
    key = rules.conversion_key(item)
    assert key == b"94\x1ftest-order-2"
    first, stored = seen.first_within(None, item.event_id, item.received_at_ms, None)
    assert (first, stored) == (True, seen.FirstSeen(item.event_id, -1, item.received_at_ms))
    later = item.received_at_ms + 10**12  # the first conversion counts forever
    assert seen.first_within(stored, item.event_id, later, None) == (True, None)  # redelivered
    assert seen.first_within(stored, "another", later, None) == (False, None)


def test_property_catalogue_rows_and_no_conversion_for_other_events() -> None:
    item = event_of(
        {"APIKey": "k", "ListID": 3, "event": "pageView", "properties": {"$os": "x", "b": 1}}
    )
    bundle = derive(item)
    assert "conversions" not in bundle.tables and "identities" not in bundle.tables
    assert [r[:3] for r in bundle.tables["octeth_properties"]] == [
        ["3", "pageView", "$os"],
        ["3", "pageView", "b"],
    ]


def test_triggers_get_non_silent_events_only_without_email() -> None:
    loud = event_of(CONVERSION)
    payload = rules.trigger(loud)
    assert payload is not None and b"@test.com" not in payload.lower()
    silent = event_of({**CONVERSION, "properties": {**CONVERSION["properties"], "isSilent": 1}})
    assert rules.trigger(silent) is None
    top_silent = event_of({**CONVERSION, "isSilent": "true"})
    assert rules.trigger(top_silent) is None


def test_optimizely_conversions_keep_is_duplicate_zero() -> None:
    assert rows.COLUMNS["conversions"][-3:] == ("is_duplicate", "src_partition", "src_pos")
