"""The parsed Octeth requests: what the validator gives the gateway and the event mapper."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple


@dataclass(frozen=True, slots=True)
class Credential:
    kind: str  # "api_key" | "session_id"
    value: str = field(repr=False)  # a secret: never logged


@dataclass(frozen=True, slots=True, kw_only=True)
class Conversion:
    id: str
    name: str
    value: Decimal  # currency units, as sent
    value_cents: int
    currency: str | None
    quantity: int


@dataclass(frozen=True, slots=True, kw_only=True)
class OctethRequest:
    list_id: int
    event: str  # the name as sent (trimmed)
    event_type: str  # canonical: page_view for its three spellings, else the name
    credential: Credential
    external_id: str | None
    uuid: str | None
    email: str | None = field(repr=False)  # never logged
    properties: dict[str, Any]
    is_silent: bool
    conversion: Conversion | None
    flags: tuple[str, ...]

    @property
    def identify_event_sent(self) -> bool:
        """True when a valid email came with the request (an identity link is recorded)."""
        return self.email is not None


class PropertiesRequest(NamedTuple):
    list_id: int
    credential: Credential
