"""Pure parts of replay and re-drive: range bounds, offset spans, which dead letters can re-drive.

No I/O here: `hitstream.replay` and `hitstream.dlq` do the Kafka and ClickHouse work.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from schemas import rawhit
from schemas.event import MAX_EVENTS_PER_HIT

EPOCH_MS_MIN = 10**12  # 2001-09-09: a bare integer this large is a time, smaller is an offset


@dataclass(frozen=True, slots=True)
class Bound:
    """One end of a replay range: a Kafka offset, or a time (epoch milliseconds)."""

    kind: str  # "offset" | "time"
    value: int


def parse_bound(text: str) -> Bound:
    """`123` (an offset), `1790000000000` or `1790000000000ms` (epoch ms), or ISO-8601.

    A bare integer below 10^12 is an offset; ISO times without a zone are UTC.
    """
    text = text.strip()
    if text.endswith("ms") and text[:-2].isdigit():
        return Bound("time", int(text[:-2]))
    if text.isdigit():
        number = int(text)
        return Bound("time", number) if number >= EPOCH_MS_MIN else Bound("offset", number)
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{text!r} is neither an offset, epoch milliseconds nor an ISO-8601 time"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return Bound("time", int(moment.timestamp() * 1000))


def resolve(
    bound: Bound | None, begin: int, end: int, offset_at_time: int | None, default: int
) -> int:
    """The offset `bound` names in a partition holding [begin, end).

    `offset_at_time` is Kafka's answer for a time bound (the first offset whose timestamp is at
    or after it; None when there is none, which means the end). Results are clamped to the
    partition; no bound gives `default`.
    """
    if bound is None:
        offset = default
    elif bound.kind == "offset":
        offset = bound.value
    else:
        offset = end if offset_at_time is None else offset_at_time
    return min(max(offset, begin), end)


def partition_range(
    start: Bound,
    stop: Bound | None,
    begin: int,
    end: int,
    times: Mapping[str, int | None],
) -> tuple[int, int]:
    """Half-open [first, last) offsets of one partition for `--from start --to stop`."""
    first = resolve(start, begin, end, times.get("from"), begin)
    last = resolve(stop, begin, end, times.get("to"), end)
    return first, max(first, last)


def spans(offsets: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted offsets as inclusive (first, last) runs: [1, 2, 3, 7] -> [(1, 3), (7, 7)]."""
    out: list[tuple[int, int]] = []
    for offset in sorted(set(offsets)):
        if out and offset == out[-1][1] + 1:
            out[-1] = (out[-1][0], offset)
        else:
            out.append((offset, offset))
    return out


def position_condition(runs: list[tuple[int, int]]) -> str:
    """SQL over `src_pos` matching every event position of the raw offsets in `runs`."""
    if not runs:
        return "0"
    return " OR ".join(
        f"src_pos BETWEEN {a * MAX_EVENTS_PER_HIT} AND {(b + 1) * MAX_EVENTS_PER_HIT - 1}"
        for a, b in runs
    )


@dataclass(frozen=True, slots=True)
class StoredLetter:
    """A row of the `dead_letters` table, as the dlq commands read it."""

    dlq_id: str
    hit_id: str
    stage: str
    reason: str
    detail: str
    source: str
    received_at_ms: int
    raw: str
    partition: int
    position: int

    @property
    def offset(self) -> int:
        return self.position // MAX_EVENTS_PER_HIT


def unfixable(letter: StoredLetter) -> str | None:
    """Why re-driving `letter` cannot help, or None when it can.

    Only validate-stage letters holding a whole v1 envelope are re-driven: a gateway letter's hit
    was cut down (too large), a sink letter holds rows rather than a hit, and a message that is
    not an envelope stays one whatever the parser.
    """
    if letter.stage != "validate":
        return f"stage {letter.stage}: the raw hit was not kept whole"
    try:
        rawhit.decode(letter.raw.encode())
    except rawhit.RawHitError as exc:
        return f"not a raw hit envelope ({exc.reason})"
    return None


def redrive_selection(
    letters: Iterable[StoredLetter],
) -> tuple[list[StoredLetter], list[tuple[StoredLetter, str]]]:
    """(the letters to re-drive, one per hit; the others with why not).

    A Monetate beacon may have a letter per bad key, and a hit re-driven before but never settled
    has letters at two offsets: either way its raw message is published once.
    """
    chosen: dict[str, StoredLetter] = {}
    skipped: list[tuple[StoredLetter, str]] = []
    for letter in letters:
        why = unfixable(letter)
        if why is not None:
            skipped.append((letter, why))
        else:
            chosen.setdefault(letter.hit_id, letter)
    return sorted(chosen.values(), key=lambda x: (x.partition, x.position)), skipped
