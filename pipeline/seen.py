"""What the dedup tables remember: the first of something, where it was and when, in one codec.

Every decision table of the worker stores a `FirstSeen`: the id of the first event (or "" for a
hit), the raw offset it was read at, and its receive time. Decisions compare the stored value with
the current one on ids, offsets and receive times only (never the wall clock), so a redelivered
first is still the first and a replay decides the same.

The `seen` table serves two decisions with one write per hit in the common case:

- **Retries.** An event with a fingerprint (an exact client retry has the same one) is keyed
  `r<US>tenant<US>fingerprint`. A different event id within the retry window is a retry of the
  stored one: stored as an event with `duplicate_of`, deriving nothing.
- **Copies of a hit** (the same bytes twice in `hits.raw`: a publish that timed out but landed and
  was spooled too, a producer's retry). Such a copy has the same event ids as the first, at
  another offset, so the fingerprint record already tells it. A hit with no fingerprinted event
  (a dead letter, an Octeth page view) or one that is itself a retry is also keyed by its hit id,
  `h<US>hit_id`: a later copy finds the key with another offset. A copy is dropped whole.

Deliberate copies (`hitstream replay`, `dlq redrive`: `schemas.replay`) are parsed again at their
new offset and never dropped; they change no stored value.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

_US = "\x1f"  # unit separator: never in a tenant, hit id, session id or fingerprint


@dataclass(frozen=True, slots=True)
class FirstSeen:
    first_id: str  # event id of the first ("" for a hit key)
    offset: int  # raw offset of the first copy (-1 when the decision needs none)
    received_at_ms: int


def encode(value: FirstSeen) -> bytes:
    return f"{value.first_id}|{value.offset}|{value.received_at_ms}".encode()


def decode(data: bytes | None) -> FirstSeen | None:
    """Decode a value written by `encode` (our own data: a corrupt one raises ValueError)."""
    if data is None:
        return None
    rest, _, received = data.decode().rpartition("|")
    first_id, sep, offset = rest.rpartition("|")
    if not sep:
        raise ValueError(f"not a first-seen value: {data[:60]!r}")
    return FirstSeen(first_id, int(offset), int(received))


def received_at(data: bytes) -> int:
    """The receive time a stored value records (what `pipeline.expiry` ages it by)."""
    return int(data.rpartition(b"|")[2])


def hit_key(hit_id: str) -> bytes:
    return f"h{_US}{hit_id}".encode()


def retry_key(tenant: str, fingerprint: str) -> bytes:
    return f"r{_US}{tenant}{_US}{fingerprint}".encode()


def is_copy(stored: FirstSeen | None, offset: int) -> bool:
    """Whether a hit read at `offset` is a later copy of one whose hit key is `stored`."""
    return stored is not None and stored.offset != offset


class Verdict(enum.Enum):
    FIRST = "first"  # the first (or a redelivery of it): derive its rows
    RETRY = "retry"  # an exact client retry of the stored event: store it, derive nothing
    COPY = "copy"  # the same event at another offset: the whole hit is a copy, drop it


def judge_retry(
    stored: FirstSeen | None,
    event_id: str,
    offset: int,
    received_at_ms: int,
    window_ms: int,
    deliberate: bool = False,
) -> tuple[Verdict, FirstSeen | None]:
    """(what this fingerprinted event is, the new table value or None to keep).

    A stored value older than the window (by this event's receive time) is treated as absent.
    """
    if stored is None or received_at_ms - stored.received_at_ms > window_ms:
        return Verdict.FIRST, FirstSeen(event_id, offset, received_at_ms)
    if stored.first_id != event_id:
        return Verdict.RETRY, None
    if stored.offset == offset or deliberate:
        return Verdict.FIRST, None
    return Verdict.COPY, None


def first_within(
    stored: FirstSeen | None, event_id: str, received_at_ms: int, horizon_ms: int | None
) -> tuple[bool, FirstSeen | None]:
    """(whether `event_id` is the first of its key, the new value or None to keep).

    For "first per key" tables without offsets (Monetate sessions, Octeth conversions): a stored
    value older than `horizon_ms` counts as absent (None: it never expires).
    """
    if stored is None or (
        horizon_ms is not None and received_at_ms - stored.received_at_ms > horizon_ms
    ):
        return True, FirstSeen(event_id, -1, received_at_ms)
    return stored.first_id == event_id, None
