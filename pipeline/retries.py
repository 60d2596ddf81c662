"""Stage 2a: exact client retries (same fingerprint within the window) are stored once.

The table value is the first event's id and receive time, so the decision is the same however
often the first event is redelivered: a redelivered first event is still the first.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FirstSeen:
    event_id: str
    received_at_ms: int


def retry_of(
    first: FirstSeen | None, event_id: str, received_at_ms: int, window_ms: int
) -> tuple[str | None, FirstSeen | None]:
    """Return (id of the event this one repeats or None, the new table value or None to keep).

    Time is the hits' receive time, never the wall clock, so replays decide the same way.
    """
    if first is None or received_at_ms - first.received_at_ms > window_ms:
        return None, FirstSeen(event_id, received_at_ms)
    if first.event_id == event_id:
        return None, None
    return first.event_id, None


def encode(first: FirstSeen) -> bytes:
    return f"{first.event_id}|{first.received_at_ms}".encode()


def decode(data: bytes | None) -> FirstSeen | None:
    if data is None:
        return None
    event_id, _, received = data.decode().partition("|")
    return FirstSeen(event_id, int(received))


def received_at(data: bytes) -> int:
    """The receive time a stored value records (what `pipeline.expiry` ages it by)."""
    return int(data.rpartition(b"|")[2])
