"""Guard against Faust delivering a partition with a hole in it.

faust-streaming 0.15.3 can drop messages it has already fetched when table recovery completes
(issue #596: the in-memory queues are cleared while the read offsets have moved on). The messages
stay in Kafka, but they are not delivered again until the worker restarts, and meanwhile later
ones are. Our topics are neither compacted nor transactional, so each partition's offsets must
arrive contiguous: `OffsetWatch` says when they do not, and the worker then exits at once
(before anything past the hole can be committed) to be restarted from the committed offset.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

GAP_EXIT_CODE = 75  # EX_TEMPFAIL: restart me


@dataclass(slots=True)
class OffsetWatch:
    expected: dict[tuple[str, int], int] = field(default_factory=dict)

    def check(self, topic: str, partition: int, offset: int, committed: int | None) -> str | None:
        """Record `offset`; return a description of the hole before it, or None when in order.

        `committed` is the group's committed offset (the next to read) for the first message of a
        partition after a start or a rebalance; a redelivery (an offset below the expected one)
        is fine: every stage downstream is idempotent.
        """
        key = (topic, partition)
        expected = self.expected.get(key, committed)
        self.expected[key] = offset + 1
        if expected is not None and offset > expected:
            return f"{topic}[{partition}]: got offset {offset}, expected {expected}"
        return None

    def reset(self) -> None:
        """After a rebalance the stream starts again at the committed offsets."""
        self.expected.clear()


def guard(app: Any, watch: OffsetWatch, record: Any) -> None:
    """Stop the worker at once (the supervisor restarts it) when Faust skipped messages.

    Faust has no public API for a partition's committed offset; its consumer's own map is read.
    """
    message = record.message
    committed = getattr(app.consumer, "_committed_offset", {}).get(message.tp)
    hole = watch.check(message.topic, message.partition, message.offset, committed)
    if hole:
        log.critical(
            "Faust skipped messages (%s): exiting to resume from the committed offset", hole
        )
        logging.shutdown()
        os._exit(GAP_EXIT_CODE)
