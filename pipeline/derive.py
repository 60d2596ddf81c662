"""Stage 2b: an event becomes its rows: the event itself, impressions and conversions.

A goal id equal to an experiment id in the event's experiment map is an impression of that
experiment's variation; every other goal id is one conversion. An exact client retry is stored
as an event (`duplicate_of` set) but yields no impression and no conversion.

`first_in_session` and `counted` (Monetate's "sessions with the event", decided by the dedup agent
with pipeline/sessions.py and pipeline/definitions.py) are stored on the event row as 0/1.
"""

from __future__ import annotations

from typing import Any

import orjson

from pipeline.rows import RowBundle
from schemas.event import Event, stable_id


def derive(
    event: Event,
    duplicate_of: str | None = None,
    first_in_session: bool = False,
    counted: bool = True,
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


def _conversion_row(e: Event, goal: str) -> list[Any]:
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
    ]
