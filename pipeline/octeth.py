"""Octeth decisions of the processing stage: which table key a conversion has, and what goes to
`hits.triggers`.

First conversion per (list, conversion id): the `octeth_conversions` table keyed by
`conversion_key` holds the first event (`pipeline.seen`, no horizon: its first counts forever).
The first event stays the first however often it is redelivered (its id is stable), so replays
decide the same way. Conversions are keyed by list and conversion id
(`schemas.octeth.partition_key`), so all with one id meet in one partition, whichever visitor
sent them.
"""

from __future__ import annotations

from schemas import event as event_codec
from schemas.event import Event
from schemas.octeth import vocabulary as octeth


def conversion_key(event: Event) -> bytes | None:
    """The table key of an Octeth conversion, or None for any other event."""
    if event.source != octeth.SOURCE:
        return None
    if event.dimensions.get("event_type") != octeth.CONVERSION:
        return None
    goal = event.dimensions.get("conversion_id")
    return None if goal is None else f"{event.tenant}\x1f{goal}".encode()


def trigger(event: Event) -> bytes | None:
    """The `hits.triggers` record of a non-silent Octeth event (no email: see
    schemas.octeth.events), or None."""
    if event.source != octeth.SOURCE or octeth.SILENT in event.flags:
        return None
    return event_codec.encode(event)
