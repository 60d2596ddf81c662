"""The canonical `Event`: what every wire format becomes after validation.

One hit gives one or more events; `event_id` is a uuid5 over the hit id and the event's index in
the hit, so replaying a hit yields the same ids. `lineage` names the raw message the event came
from (`hits.raw` partition, offset, index); the sink uses it to recognise replays.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field, fields, replace
from typing import Any

import orjson

VERSION = 1
NAMESPACE = uuid.UUID("6f1d4c1e-3b7a-5e0c-9a51-7c1f4b2d8e90")
MAX_EVENTS_PER_HIT = 1024


_NAMESPACE_BYTES = NAMESPACE.bytes


def stable_id(*parts: str | int) -> str:
    """A deterministic id over `parts` (uuid5): the same input always gives the same id.

    RFC 4122's name-based SHA-1 UUID, formatted as `str(uuid.uuid5(NAMESPACE, name))` is (the
    unit tests compare the two); `uuid.uuid5` itself builds a `UUID` object on the way, which
    cost a few percent of the worker's CPU at three ids per hit.
    """
    name = "\x1f".join([str(p) for p in parts]).encode()
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + name).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # the RFC 4122 variant
    x = digest.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Lineage:
    partition: int = -1
    offset: int = -1
    index: int = 0

    @property
    def position(self) -> int:
        """Totally ordered position of the event in its raw partition (offset, then index)."""
        return self.offset * MAX_EVENTS_PER_HIT + self.index


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    event_id: str
    hit_id: str
    source: str  # optimizely | monetate | octeth | native
    tenant: str  # Optimizely project, Monetate site, Octeth list
    visitor_id: str
    name: str  # event key (Optimizely n, Monetate key, Octeth event)
    occurred_at_ms: int
    received_at_ms: int
    session_id: str = ""
    account_id: str = ""
    experiments: dict[str, str] = field(default_factory=dict)  # experiment id -> variation
    goals: tuple[str, ...] = ()
    value_cents: int | None = None
    dimensions: dict[str, str] = field(default_factory=dict)
    properties: dict[str, Any] = field(default_factory=dict)  # unknown params, event props
    page_url: str = ""
    referrer: str = ""
    user_agent: str = ""
    device_type: str = ""
    flags: tuple[str, ...] = ()
    fingerprint: str = ""  # identifies exact client retries ("" when not applicable)
    lineage: Lineage = field(default_factory=Lineage)

    def with_lineage(self, partition: int, offset: int) -> Event:
        return replace(
            self, lineage=Lineage(partition=partition, offset=offset, index=self.lineage.index)
        )

    def key(self) -> bytes:
        """The Kafka key: tenant and visitor (dedup tables are co-partitioned on it)."""
        return f"{self.tenant}:{self.visitor_id}".encode()


# What `decode` reads: every field under its own name (`goals` and `flags` as arrays, `lineage` as
# [partition, offset, index]), as `encode` writes them.
_FIELDS = tuple(f.name for f in fields(Event))


def encode(event: Event) -> bytes:
    return orjson.dumps(
        {
            "v": VERSION,
            "event_id": event.event_id,
            "hit_id": event.hit_id,
            "source": event.source,
            "tenant": event.tenant,
            "visitor_id": event.visitor_id,
            "name": event.name,
            "occurred_at_ms": event.occurred_at_ms,
            "received_at_ms": event.received_at_ms,
            "session_id": event.session_id,
            "account_id": event.account_id,
            "experiments": event.experiments,
            "goals": event.goals,
            "value_cents": event.value_cents,
            "dimensions": event.dimensions,
            "properties": event.properties,
            "page_url": event.page_url,
            "referrer": event.referrer,
            "user_agent": event.user_agent,
            "device_type": event.device_type,
            "flags": event.flags,
            "fingerprint": event.fingerprint,
            "lineage": [event.lineage.partition, event.lineage.offset, event.lineage.index],
        }
    )


def decode(data: bytes) -> Event:
    """Decode an event written by `encode` (trusted: raises on a bad one; `hits.triggers`)."""
    obj = orjson.loads(data)
    if obj.get("v") != VERSION:
        raise ValueError(f"unsupported event version {obj.get('v')!r}")
    obj["goals"], obj["flags"] = tuple(obj["goals"]), tuple(obj["flags"])
    obj["lineage"] = lineage_of(obj["lineage"])
    return Event(**{name: obj[name] for name in _FIELDS})


def lineage_of(items: list[int]) -> Lineage:
    """The lineage of its wire form, [partition, offset, index]."""
    partition, offset, index = items
    return Lineage(partition=partition, offset=offset, index=index)
