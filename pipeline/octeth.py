"""Octeth decisions of the dedup agent: the first conversion, and what goes to `hits.triggers`.

First conversion per (list, conversion id): a RocksDB-backed Faust table keyed by `conversion_key`
holds the first event's id. The first event stays the first however often it is redelivered (its
id is stable), so replays decide the same way (like pipeline/retries.py). Conversions are keyed
by list and conversion id (`schemas.octeth.partition_key`), so all with one id meet in one
partition, whichever visitor sent them.
"""

from __future__ import annotations

from schemas import event as event_codec
from schemas.event import Event
from schemas.octeth import vocabulary as octeth_events


def conversion_key(event: Event) -> bytes | None:
    """The table key of an Octeth conversion, or None for any other event."""
    if event.source != octeth_events.SOURCE:
        return None
    if event.dimensions.get("event_type") != octeth_events.CONVERSION:
        return None
    goal = event.dimensions.get("conversion_id")
    return None if goal is None else f"{event.tenant}\x1f{goal}".encode()


def first_conversion(stored: bytes | None, event_id: str) -> tuple[bool, bytes | None]:
    """(whether this event is a repeat, the new table value or None to keep)."""
    if stored is None:
        return False, event_id.encode()
    return stored.decode() != event_id, None


def trigger(event: Event) -> bytes | None:
    """The `hits.triggers` record of a non-silent Octeth event (no email: see
    schemas.octeth_events), or None."""
    if event.source != octeth_events.SOURCE or octeth_events.SILENT in event.flags:
        return None
    return event_codec.encode(event)
