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
"""

from __future__ import annotations

from typing import Any

import orjson

from pipeline.identity import EMAIL_HMAC
from pipeline.rows import RowBundle
from schemas.event import Event, stable_id
from schemas.octeth import vocabulary as octeth


def derive(
    event: Event,
    duplicate_of: str | None = None,
    first_in_session: bool = False,
    counted: bool = True,
    conversion_duplicate: bool = False,
) -> RowBundle:
    lineage = event.lineage
    src = [lineage.partition, lineage.position]
    row = [*_event_row(event, duplicate_of), int(first_in_session), int(counted)]
    tables: dict[str, list[list[Any]]] = {"events": [row + src]}
    if duplicate_of is None:
        impressions, conversions = [], []
        for goal in event.goals:
            variation = event.experiments.get(goal)
            if variation is not None:
                impressions.append(_impression_row(event, goal, variation) + src)
            else:
                conversions.append(_conversion_row(event, goal) + src)
        if impressions:
            tables["impressions"] = impressions
        if conversions:
            tables["conversions"] = conversions
    if event.source == octeth.SOURCE:
        _octeth_rows(event, tables, src, conversion_duplicate or duplicate_of is not None)
    return RowBundle("derive", lineage.partition, lineage.position, tables)


def _event_row(e: Event, duplicate_of: str | None) -> list[Any]:
    return [
        e.tenant,
        e.event_id,
        e.hit_id,
        e.source,
        e.visitor_id,
        e.session_id,
        e.account_id,
        e.name,
        e.occurred_at_ms,
        e.received_at_ms,
        e.experiments,
        list(e.goals),
        e.value_cents,
        e.dimensions,
        orjson.dumps(e.properties).decode(),
        e.page_url,
        e.referrer,
        e.user_agent,
        e.device_type,
        list(e.flags),
        duplicate_of,
    ]


def _impression_row(e: Event, experiment: str, variation: str) -> list[Any]:
    return [
        e.tenant,
        experiment,
        variation,
        e.visitor_id,
        stable_id("impression", e.event_id, experiment),
        e.event_id,
        e.source,
        e.session_id,
        e.occurred_at_ms,
        e.received_at_ms,
        e.dimensions,
        e.user_agent,
        e.device_type,
        list(e.flags),
    ]


def _octeth_rows(
    e: Event, tables: dict[str, list[list[Any]]], src: list[Any], duplicate: bool
) -> None:
    goal = e.dimensions.get("conversion_id")
    if e.dimensions.get("event_type") == octeth.CONVERSION and goal is not None:
        row = _conversion_row(e, goal, is_duplicate=duplicate)
        tables.setdefault("conversions", []).append(row + src)
    email_hmac = e.dimensions.get(EMAIL_HMAC)
    if email_hmac:
        row = [
            e.tenant,
            e.visitor_id,
            e.dimensions.get("external_id", ""),
            email_hmac,
            e.received_at_ms,
            e.event_id,
        ]
        tables["identities"] = [row + src]
    if e.properties:
        tables["octeth_properties"] = [
            [e.tenant, e.name, key, *src] for key in sorted(e.properties)
        ]


def _conversion_row(e: Event, goal: str, is_duplicate: bool = False) -> list[Any]:
    return [
        e.tenant,
        goal,
        e.visitor_id,
        stable_id("conversion", e.event_id, goal),
        e.event_id,
        e.name,
        e.source,
        e.session_id,
        e.value_cents,
        e.experiments,
        e.occurred_at_ms,
        e.received_at_ms,
        e.dimensions,
        list(e.flags),
        int(is_duplicate),
    ]
