"""The dead-letter record (`hits.dlq`): why a hit was refused, where, and the hit itself."""

from __future__ import annotations

from dataclasses import dataclass, fields

import orjson

from schemas.event import Lineage, lineage_of, stable_id

VERSION = 1
STAGES = ("gateway", "validate", "derive", "sink")


@dataclass(frozen=True, slots=True, kw_only=True)
class DeadLetter:
    hit_id: str  # "" when the raw message was not even an envelope
    stage: str  # one of STAGES
    reason: str  # stable code
    detail: str
    source: str  # kind of the hit, "" when unknown
    received_at_ms: int
    raw: str  # the raw message as text (escaped when not UTF-8)
    lineage: Lineage

    @property
    def dlq_id(self) -> str:
        """Deterministic: one raw message, one stage, one dead letter, however often replayed."""
        return stable_id(
            "dlq",
            self.stage,
            self.lineage.partition,
            self.lineage.offset,
            self.lineage.index,
            self.hit_id,
        )


# What `decode` reads: every field under its own name, as `encode` writes them (`dlq_id` is
# derived from them).
_FIELDS = tuple(f.name for f in fields(DeadLetter))


def encode(letter: DeadLetter) -> bytes:
    return orjson.dumps(
        {
            "v": VERSION,
            "dlq_id": letter.dlq_id,
            "hit_id": letter.hit_id,
            "stage": letter.stage,
            "reason": letter.reason,
            "detail": letter.detail,
            "source": letter.source,
            "received_at_ms": letter.received_at_ms,
            "raw": letter.raw,
            "lineage": [letter.lineage.partition, letter.lineage.offset, letter.lineage.index],
        }
    )


def decode(data: bytes) -> DeadLetter:
    obj = orjson.loads(data)
    if obj.get("v") != VERSION:
        raise ValueError(f"unsupported dead-letter version {obj.get('v')!r}")
    obj["lineage"] = lineage_of(obj["lineage"])
    return DeadLetter(**{name: obj[name] for name in _FIELDS})
