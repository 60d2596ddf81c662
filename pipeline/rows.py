"""The ClickHouse tables the worker writes (`COLUMNS`, `TIME_COLUMNS`, `ROW_IDS`: checked against
the DDL by tests/integration/test_table_catalogue.py), the row builders that follow it (`builder`),
and the rows of one event (a `RowBundle`), as the processing stage gives them to the sink.

A bundle holds every row one event yields, across tables, so a sink batch never splits an event;
`position` is the event's position in its raw partition (see `schemas.event.Lineage`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from schemas.deadletter import DeadLetter

COLUMNS: dict[str, tuple[str, ...]] = {
    "events": (
        "tenant",
        "event_id",
        "hit_id",
        "source",
        "visitor_id",
        "session_id",
        "account_id",
        "name",
        "occurred_at",
        "received_at",
        "experiments",
        "goals",
        "value_cents",
        "dimensions",
        "properties",
        "page_url",
        "referrer",
        "user_agent",
        "device_type",
        "flags",
        "duplicate_of",
        "first_in_session",
        "counted",
        "src_partition",
        "src_pos",
    ),
    "impressions": (
        "tenant",
        "experiment_id",
        "variation_id",
        "visitor_id",
        "impression_id",
        "event_id",
        "source",
        "session_id",
        "occurred_at",
        "received_at",
        "dimensions",
        "user_agent",
        "device_type",
        "flags",
        "src_partition",
        "src_pos",
    ),
    "conversions": (
        "tenant",
        "goal_id",
        "visitor_id",
        "conversion_id",
        "event_id",
        "event_name",
        "source",
        "session_id",
        "value_cents",
        "experiments",
        "occurred_at",
        "received_at",
        "dimensions",
        "flags",
        "is_duplicate",
        "src_partition",
        "src_pos",
    ),
    "identities": (
        "tenant",
        "uuid",
        "external_id",
        "email_hmac",
        "first_seen",
        "event_id",
        "src_partition",
        "src_pos",
    ),
    "octeth_properties": ("tenant", "event", "key", "src_partition", "src_pos"),
    "dead_letters": (
        "dlq_id",
        "hit_id",
        "stage",
        "reason",
        "detail",
        "source",
        "received_at",
        "raw",
        "src_partition",
        "src_pos",
    ),
}
TIME_COLUMNS = frozenset({"occurred_at", "received_at", "first_seen"})
# What identifies a row, per table: the id replay and re-drive supersede by (`hitstream.supersede`;
# a dead letter's id includes its raw offset, so its hit, stage and reason stand for it).
ROW_IDS: dict[str, str] = {
    "events": "event_id",
    "impressions": "impression_id",
    "conversions": "conversion_id",
    "identities": "(tenant, uuid, external_id, email_hmac, event_id)",
    "octeth_properties": "(tenant, event, key)",
    "dead_letters": "(hit_id, stage, reason)",  # hit_id '' (no envelope) is no identity
}
# DateTime64(3) holds 1900-01-01 .. 2299-12-31; outside it ClickHouse clamps or wraps silently.
MIN_TIME_MS = -2208988800000
MAX_TIME_MS = 10413791999999


def clamp_time(ms: int) -> int:
    return min(max(ms, MIN_TIME_MS), MAX_TIME_MS)


def builder(
    table: str, parameters: str, values: Mapping[str, str], names: Mapping[str, Any] | None = None
) -> Callable[..., list[Any]]:
    """A function of `parameters` that returns a row of `table` in the catalogue's column order,
    each column's value being the Python expression `values[column]` over the parameters (and
    `names`, the other names the expressions use).

    Compiled once into a plain list display (`lambda e, pos: [e.tenant, ..., pos]`), so a row costs
    what a hand-written positional one does; a dict or keyword arguments per row cost about 1.5 us
    more each, which the worker's CPU cannot spare. A column without a value, or a value for a
    column the table lacks, raises here, at import.
    """
    columns = COLUMNS[table]
    missing = [c for c in columns if c not in values]
    unknown = [c for c in values if c not in columns]
    if missing or unknown:
        raise ValueError(f"{table} row: no value for {missing}; not its columns: {unknown}")
    display = ", ".join(f"({values[c]})" for c in columns)
    built: Callable[..., list[Any]] = eval(f"lambda {parameters}: [{display}]", dict(names or {}))
    return built


@dataclass(frozen=True, slots=True)
class RowBundle:
    stage: str  # the stage that produced the rows (derive, validate, ...)
    partition: int  # raw partition
    position: int  # Lineage.position in that partition
    tables: dict[str, list[list[Any]]]

    def row_count(self) -> int:
        return sum(len(rows) for rows in self.tables.values())


def encode(bundle: RowBundle) -> bytes:
    return orjson.dumps(
        {"stage": bundle.stage, "p": bundle.partition, "pos": bundle.position, "t": bundle.tables}
    )


def decode(data: bytes) -> RowBundle:
    obj = orjson.loads(data)
    return RowBundle(obj["stage"], obj["p"], obj["pos"], obj["t"])


_dead_letter_row = builder(
    "dead_letters",
    "letter, pos",
    {
        "dlq_id": "letter.dlq_id",
        "hit_id": "letter.hit_id",
        "stage": "letter.stage",
        "reason": "letter.reason",
        "detail": "letter.detail",
        "source": "letter.source",
        "received_at": "clamp_time(letter.received_at_ms)",
        "raw": "letter.raw",
        "src_partition": "max(letter.lineage.partition, 0)",
        "src_pos": "max(pos, 0)",
    },
    {"clamp_time": clamp_time},
)


def dead_letter_row(letter: DeadLetter, position: int | None = None) -> list[Any]:
    """The `dead_letters` row of `letter`, at its own position unless `position` is given."""
    return _dead_letter_row(letter, letter.lineage.position if position is None else position)


def dead_letter_bundle(letter: DeadLetter) -> RowBundle:
    return RowBundle(
        letter.stage,
        letter.lineage.partition,
        letter.lineage.position,
        {"dead_letters": [dead_letter_row(letter)]},
    )


def times_in_range(bundle: RowBundle) -> bool:
    """True when every time column of every row is inside ClickHouse's DateTime64 range."""
    for table, rows in bundle.tables.items():
        indexes = [i for i, c in enumerate(COLUMNS[table]) if c in TIME_COLUMNS]
        for row in rows:
            if any(not MIN_TIME_MS <= row[i] <= MAX_TIME_MS for i in indexes):
                return False
    return True
