"""The dead-letter record (`hits.dlq`): why a hit was refused, where, and the hit itself."""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from schemas.event import Lineage, stable_id

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
    partition, offset, index = obj["lineage"]
    return DeadLetter(
        hit_id=obj["hit_id"],
        stage=obj["stage"],
        reason=obj["reason"],
        detail=obj["detail"],
        source=obj["source"],
        received_at_ms=obj["received_at_ms"],
        raw=obj["raw"],
        lineage=Lineage(partition=partition, offset=offset, index=index),
    )
