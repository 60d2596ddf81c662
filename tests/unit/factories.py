"""Plain-data raw hits, events and dead letters for the pure stages' tests: the defaults, and what
a test changes by keyword."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import orjson

from schemas.deadletter import DeadLetter
from schemas.event import Event, Lineage
from schemas.rawhit import RawHit

RECEIVED = 1_700_000_000_000
RAW_HIT = RawHit(
    hit_id="h1", kind="optimizely", received_at_ms=RECEIVED, path="/event", headers={"host": "h"}
)
EVENT = Event(
    event_id="e1",
    hit_id="h1",
    source="optimizely",
    tenant="1",
    visitor_id="v1",
    name="buy",
    occurred_at_ms=RECEIVED,
    received_at_ms=RECEIVED,
    experiments={"100": "7", "200": "8"},
    goals=("100", "555", "556"),
    value_cents=500,
    lineage=Lineage(partition=2, offset=40, index=0),
)
LETTER = DeadLetter(
    hit_id="h1",
    stage="validate",
    reason="bad",
    detail="",
    source="optimizely",
    received_at_ms=RECEIVED,
    raw="{}",
    lineage=Lineage(partition=0, offset=0),
)


def raw_hit(**changes: Any) -> RawHit:
    return replace(RAW_HIT, **changes)


def octeth_hit(body: dict[str, Any], hit_id: str = "h1") -> RawHit:
    """A `POST /api/v1/event` of `body`."""
    return raw_hit(
        hit_id=hit_id,
        kind="octeth",
        method="POST",
        path="/api/v1/event",
        headers={},
        body=orjson.dumps(body),
    )


def event(**changes: Any) -> Event:
    return replace(EVENT, **changes)


def letter(**changes: Any) -> DeadLetter:
    return replace(LETTER, **changes)
