"""Plain-data events and dead letters for the pure stages' tests: the defaults, and what a test
changes by keyword."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from schemas.deadletter import DeadLetter
from schemas.event import Event, Lineage

RECEIVED = 1_700_000_000_000
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


def event(**changes: Any) -> Event:
    return replace(EVENT, **changes)


def letter(**changes: Any) -> DeadLetter:
    return replace(LETTER, **changes)
