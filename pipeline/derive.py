"""Stage 2b: an event becomes its rows: the event itself, impressions and conversions.

A goal id equal to an experiment id in the event's experiment map is an impression of that
experiment's variation; every other goal id is one conversion. An exact client retry is stored
as an event (`duplicate_of` set) but yields no impression and no conversion.

Octeth events (source `octeth`) also give: a conversion row for a `conversion` event (goal id =
its conversion id; `is_duplicate` = 1 unless it is the first of its (list, conversion id), decided
by the dedup agent), an `identities` row when the validate stage put an `email_hmac` in the
dimensions (pipeline/identity.py), and one `octeth_properties` row per property key (the
catalogue of `POST /api/v1/website_events.properties`).

`first_in_session` and `counted` (Monetate's "sessions with the event", decided by the dedup agent
with pipeline/sessions.py and pipeline/definitions.py) are stored on the event row as 0/1.

Each row is built by a `pipeline.rows.builder`: the value of each column by name, laid out in the
table catalogue's order (`pipeline.rows.COLUMNS`), at the cost of a hand-written positional row.
"""

from __future__ import annotations

from typing import Any

import orjson

from pipeline.identity import EMAIL_HMAC
from pipeline.rows import RowBundle, builder
from schemas.event import Event, stable_id
from schemas.octeth import vocabulary as octeth

_NAMES = {"dumps": orjson.dumps, "stable_id": stable_id, "EMAIL_HMAC": EMAIL_HMAC}
# the columns every row of an event shares, and where the event stands in its raw partition
_EVENT = {
    "tenant": "e.tenant",
    "visitor_id": "e.visitor_id",
    "event_id": "e.event_id",
    "source": "e.source",
    "session_id": "e.session_id",
    "occurred_at": "e.occurred_at_ms",
    "received_at": "e.received_at_ms",
    "dimensions": "e.dimensions",
    "flags": "list(e.flags)",
    "src_partition": "p",
    "src_pos": "pos",
}
_event_row = builder(
    "events",
    "e, duplicate_of, first_in_session, counted, p, pos",
    {
        **_EVENT,
        "hit_id": "e.hit_id",
        "account_id": "e.account_id",
        "name": "e.name",
        "experiments": "e.experiments",
        "goals": "list(e.goals)",
        "value_cents": "e.value_cents",
        "properties": "dumps(e.properties).decode()",
        "page_url": "e.page_url",
        "referrer": "e.referrer",
        "user_agent": "e.user_agent",
        "device_type": "e.device_type",
        "duplicate_of": "duplicate_of",
        "first_in_session": "int(first_in_session)",
        "counted": "int(counted)",
    },
    _NAMES,
)
_impression_row = builder(
    "impressions",
    "e, experiment, variation, p, pos",
    {
        **_EVENT,
        "experiment_id": "experiment",
        "variation_id": "variation",
        "impression_id": 'stable_id("impression", e.event_id, experiment)',
        "user_agent": "e.user_agent",
        "device_type": "e.device_type",
    },
    _NAMES,
)
_conversion_row = builder(
    "conversions",
    "e, goal, is_duplicate, p, pos",
    {
        **_EVENT,
        "goal_id": "goal",
        "conversion_id": 'stable_id("conversion", e.event_id, goal)',
        "event_name": "e.name",
        "value_cents": "e.value_cents",
        "experiments": "e.experiments",
        "is_duplicate": "int(is_duplicate)",
    },
    _NAMES,
)
_identity_row = builder(
    "identities",
    "e, p, pos",
    {
        "tenant": "e.tenant",
        "uuid": "e.visitor_id",
        "external_id": 'e.dimensions.get("external_id", "")',
        "email_hmac": "e.dimensions[EMAIL_HMAC]",
        "first_seen": "e.received_at_ms",
        "event_id": "e.event_id",
        "src_partition": "p",
        "src_pos": "pos",
    },
    _NAMES,
)
_property_row = builder(
    "octeth_properties",
    "e, key, p, pos",
    {"tenant": "e.tenant", "event": "e.name", "key": "key", "src_partition": "p", "src_pos": "pos"},
)


def derive(
    event: Event,
    duplicate_of: str | None = None,
    first_in_session: bool = False,
    counted: bool = True,
    conversion_duplicate: bool = False,
) -> RowBundle:
    p, pos = event.lineage.partition, event.lineage.position
    tables: dict[str, list[list[Any]]] = {
        "events": [_event_row(event, duplicate_of, first_in_session, counted, p, pos)]
    }
    if duplicate_of is None:
        impressions, conversions = [], []
        for goal in event.goals:
            variation = event.experiments.get(goal)
            if variation is not None:
                impressions.append(_impression_row(event, goal, variation, p, pos))
            else:
                conversions.append(_conversion_row(event, goal, False, p, pos))
        if impressions:
            tables["impressions"] = impressions
        if conversions:
            tables["conversions"] = conversions
    if event.source == octeth.SOURCE:
        _octeth_rows(event, tables, p, pos, conversion_duplicate or duplicate_of is not None)
    return RowBundle("derive", p, pos, tables)


def _octeth_rows(
    e: Event, tables: dict[str, list[list[Any]]], p: int, pos: int, duplicate: bool
) -> None:
    goal = e.dimensions.get("conversion_id")
    if e.dimensions.get("event_type") == octeth.CONVERSION and goal is not None:
        tables.setdefault("conversions", []).append(_conversion_row(e, goal, duplicate, p, pos))
    if e.dimensions.get(EMAIL_HMAC):
        tables["identities"] = [_identity_row(e, p, pos)]
    if e.properties:
        tables["octeth_properties"] = [
            _property_row(e, key, p, pos) for key in sorted(e.properties)
        ]
