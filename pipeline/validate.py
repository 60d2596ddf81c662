"""Stage 1: a raw `hits.raw` message becomes canonical events, or one dead letter.

A Monetate beacon may give both: its good events, and one dead letter per event whose key breaks
the key rule (`schemas.monetate.split_bad_keys`; the letter's lineage index is the event's).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from pipeline import identity
from schemas import monetate, rawhit
from schemas.deadletter import DeadLetter
from schemas.event import MAX_EVENTS_PER_HIT, Event, Lineage
from schemas.formats import ParseContext, parse
from schemas.octeth import vocabulary as octeth
from schemas.outcome import Rejected


@dataclass(frozen=True, slots=True)
class Validated:
    """What one raw message gives: events to publish, dead letters to send (either may be empty)."""

    events: tuple[Event, ...] = ()
    dead_letters: tuple[DeadLetter, ...] = ()


def validate(
    data: bytes,
    partition: int,
    offset: int,
    context: ParseContext,
    identity_secret: bytes = identity.DEV_SECRET.encode(),
) -> Validated:
    """`identity_secret`: the key of Octeth email HMACs (`pipeline.identity`)."""
    result = _validate(data, partition, offset, context, identity_secret)
    return Validated(dead_letters=(result,)) if isinstance(result, DeadLetter) else result


def _validate(
    data: bytes, partition: int, offset: int, context: ParseContext, identity_secret: bytes
) -> Validated | DeadLetter:
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
    events = tuple(
        replace(e, lineage=Lineage(partition=partition, offset=offset, index=i))
        for i, e in enumerate(outcome.events)
    )
    if hit.kind == octeth.SOURCE:
        return Validated(identity.link(events, hit, identity_secret))
    if hit.kind != monetate.SOURCE:
        return Validated(events)
    good, bad = monetate.split_bad_keys(events)
    return Validated(
        good,
        tuple(
            _dead_letter(hit, data, partition, offset, r.reason, r.detail, index=e.lineage.index)
            for e, r in bad
        ),
    )


def _dead_letter(
    hit: rawhit.RawHit,
    data: bytes,
    partition: int,
    offset: int,
    reason: str,
    detail: str,
    stage: str = "validate",
    index: int = 0,
) -> DeadLetter:
    return DeadLetter(
        hit_id=hit.hit_id,
        stage=stage,
        reason=reason,
        detail=detail,
        source=hit.kind,
        received_at_ms=hit.received_at_ms,
        raw=rawhit.as_json_text(data),
        lineage=Lineage(partition=partition, offset=offset, index=index),
    )
