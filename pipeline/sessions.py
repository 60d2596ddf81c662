"""Monetate's "sessions with the event": only a key's first event in a session counts.

The `sessions` table (co-partitioned with `hits.raw`, like every table here) maps (tenant, session,
key) to the session's first event with that key (`pipeline.seen.FirstSeen`). The decision is
`seen.first_within` on receive times and event ids, never the wall clock, so it is the same however
often a message is redelivered: a redelivered first event is still the first, a later one never
becomes it.

A stored value older than the horizon (12 h, a session's longest life in the tag) counts as
expired: a new session would have a new id anyway, so this only bounds what the table keeps and
what `pipeline.expiry` deletes.
"""

from __future__ import annotations

SESSION_HORIZON_MS = 12 * 3600 * 1000
_SEPARATOR = "\x1f"  # never in a tenant, session id or valid event key


def table_key(tenant: str, session_id: str, name: str) -> bytes | None:
    """The table key of (tenant, session, event key); None when the event has no session."""
    if not session_id:
        return None
    return _SEPARATOR.join((tenant, session_id, name)).encode()
