"""What a parser returns: `Accepted` events or a `Rejected` reason. Parsers never raise on input."""

from __future__ import annotations

from dataclasses import dataclass

from schemas.event import Event


@dataclass(frozen=True, slots=True)
class Accepted:
    events: tuple[Event, ...]


@dataclass(frozen=True, slots=True)
class Rejected:
    reason: str  # stable code, e.g. missing_user_id
    detail: str = ""  # human-readable, never an email or a secret


Outcome = Accepted | Rejected
