"""Stage 1: a raw `hits.raw` message becomes canonical events, or one dead letter."""

from __future__ import annotations

from dataclasses import replace

from schemas import rawhit
from schemas.deadletter import DeadLetter
from schemas.event import MAX_EVENTS_PER_HIT, Event, Lineage
from schemas.formats import ParseContext, parse
from schemas.outcome import Rejected


def validate(
    data: bytes, partition: int, offset: int, context: ParseContext
) -> tuple[Event, ...] | DeadLetter:
    """Decode and parse one raw message read at `partition`@`offset`.

    Events get their lineage (where in `hits.raw` they came from); a rejection becomes a dead
    letter that carries the raw message itself, so nothing accepted is ever lost.
    """
    try:
        hit = rawhit.decode(data)
    except rawhit.RawHitError as exc:
        return DeadLetter(
            hit_id="",
            stage="validate",
            reason=exc.reason,
            detail=exc.detail,
            source="",
            received_at_ms=0,
            raw=rawhit.as_json_text(data),
            lineage=Lineage(partition=partition, offset=offset),
        )
    refused = hit.header(rawhit.REJECT_HEADER)
    if refused:
        reason, _, detail = refused.partition(": ")
        return _dead_letter(hit, data, partition, offset, reason, detail, stage="gateway")
    outcome = parse(hit, context)
    if isinstance(outcome, Rejected):
        return _dead_letter(hit, data, partition, offset, outcome.reason, outcome.detail)
    if not outcome.events:
        return _dead_letter(hit, data, partition, offset, "no_events", "the hit held no event")
    if len(outcome.events) > MAX_EVENTS_PER_HIT:
        return _dead_letter(
            hit,
            data,
            partition,
            offset,
            "too_many_events",
            f"{len(outcome.events)} events, at most {MAX_EVENTS_PER_HIT}",
        )
    return tuple(
        replace(e, lineage=Lineage(partition=partition, offset=offset, index=i))
        for i, e in enumerate(outcome.events)
    )


def _dead_letter(
    hit: rawhit.RawHit,
    data: bytes,
    partition: int,
    offset: int,
    reason: str,
    detail: str,
    stage: str = "validate",
) -> DeadLetter:
    return DeadLetter(
        hit_id=hit.hit_id,
        stage=stage,
        reason=reason,
        detail=detail,
        source=hit.kind,
        received_at_ms=hit.received_at_ms,
        raw=rawhit.as_json_text(data),
        lineage=Lineage(partition=partition, offset=offset),
    )
