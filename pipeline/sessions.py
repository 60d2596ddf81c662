"""Stage 2b, Monetate's "sessions with the event": only a key's first event in a session counts.

The table (co-partitioned on tenant:visitor, like every table here) maps (tenant, session, key)
to the id of the session's first event with that key and its receive time. As in
`pipeline/retries.py` the decision is made on receive times and event ids, never on the wall
clock, so it is the same however often a message is redelivered: a redelivered first event is
still the first, a later one never becomes it.

A stored value older than the horizon (12 h, a session's longest life in the tag) counts as
expired: a new session would have a new id anyway, so this only bounds what the table keeps and
what `pipeline.expiry` deletes.
"""

from __future__ import annotations

from dataclasses import dataclass

SESSION_HORIZON_MS = 12 * 3600 * 1000
VERSION = "1"
_SEPARATOR = "\x1f"  # never in a tenant, session id or valid event key


@dataclass(frozen=True, slots=True)
class FirstInSession:
    event_id: str
    received_at_ms: int


def table_key(tenant: str, session_id: str, name: str) -> bytes | None:
    """The table key of (tenant, session, event key); None when the event has no session."""
    if not session_id:
        return None
    return _SEPARATOR.join((tenant, session_id, name)).encode()


def first_in_session(
    stored: FirstInSession | None, event_id: str, received_at_ms: int, horizon_ms: int
) -> tuple[bool, FirstInSession | None]:
    """Return (whether this event is the session's first with its key, new value or None to keep).

    `stored` older than `horizon_ms` (by this event's receive time) is treated as absent.
    """
    if stored is None or received_at_ms - stored.received_at_ms > horizon_ms:
        return True, FirstInSession(event_id, received_at_ms)
    return stored.event_id == event_id, None


def received_at(data: bytes) -> int:
    """The receive time a stored value records (what `pipeline.expiry` ages it by)."""
    value = decode(data)
    assert value is not None
    return value.received_at_ms


def encode(value: FirstInSession) -> bytes:
    return f"{VERSION}|{value.event_id}|{value.received_at_ms}".encode()


def decode(data: bytes | None) -> FirstInSession | None:
    """Decode a table value written by `encode` (our own data: a corrupt one raises ValueError)."""
    if data is None:
        return None
    version, event_id, received = data.decode().split("|")
    if version != VERSION or not event_id:
        raise ValueError(f"unsupported first-in-session value {data[:60]!r}")
    return FirstInSession(event_id, int(received))
