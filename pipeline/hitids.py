"""Stage 1a: every hit id is processed once, however often it reaches `hits.raw`.

A hit can be in `hits.raw` twice with the same hit id and the same bytes: the gateway's publish
timed out but landed, and the gateway spooled and drained it as well (gateway/delivery.py), or a
direct producer retried. Both copies carry the same Kafka key (the gateway keys a hit without a
visitor by its hit id), so they are in the same partition, and the validate agent decides here,
per event, with a RocksDB table keyed by hit id (co-partitioned with `hits.raw`).

The table stores the first copy's offset, so a redelivered first copy is still the first and a
replay decides the same. A later copy is dropped: it is byte for byte the first one (the raw topic
keeps it), so storing it would only double the hit; it is counted
(`hitstream_worker_duplicate_hits_total`) and logged with its position.

Keys are deleted by `pipeline.expiry` once their receive time is more than `state_grace_s` behind
the partition's newest hit (horizon 0: every copy carries the same receive time, so a copy that
arrives within the grace always finds its key).
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.validate import Validated

HORIZON_MS = 0  # every copy has the first's receive time: only the grace matters


@dataclass(frozen=True, slots=True)
class FirstCopy:
    offset: int  # of the first copy in its raw partition
    received_at_ms: int


def first_copy(
    stored: FirstCopy | None, offset: int, received_at_ms: int
) -> tuple[bool, FirstCopy | None]:
    """Return (whether the copy at `offset` is a duplicate, new table value or None to keep)."""
    if stored is None:
        return False, FirstCopy(offset, received_at_ms)
    return stored.offset != offset, None


def identity_of(result: Validated) -> tuple[str, int]:
    """(hit id, receive time) of a validated raw message; ("", 0) for an unreadable envelope."""
    for item in result.events:
        return item.hit_id, item.received_at_ms
    for letter in result.dead_letters:
        return letter.hit_id, letter.received_at_ms
    return "", 0


def encode(value: FirstCopy) -> bytes:
    return f"{value.offset}|{value.received_at_ms}".encode()


def decode(data: bytes | None) -> FirstCopy | None:
    if data is None:
        return None
    offset, _, received = data.decode().partition("|")
    return FirstCopy(int(offset), int(received))


def received_at(data: bytes) -> int:
    """The receive time a stored value records (what `pipeline.expiry` ages it by)."""
    return int(data.rpartition(b"|")[2])
