"""Which rows the sink has stored already: exactly-once into ClickHouse over at-least-once Kafka.

Every row carries the raw partition and the position of the event it came from. Each stage
forwards a raw partition's events in order into the same partition of the next topic, so for one
(table, stage, partition) the positions the sink sees only ever grow, except when something is
redelivered. The highest stored position (the mark) therefore tells a replayed row from a new one.
Marks are read from ClickHouse itself (one insert is one atomic block, so the table never holds
half a batch) and advanced after each confirmed insert.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pipeline.rows import RowBundle

MarkKey = tuple[str, str, int]  # table, stage, raw partition


@dataclass(slots=True)
class TableBatch:
    """Fresh rows for one table, with the position range they cover per (stage, partition)."""

    table: str
    rows: list[list[Any]] = field(default_factory=list)
    ranges: dict[tuple[str, int], tuple[int, int]] = field(default_factory=dict)

    def add(self, bundle: RowBundle, rows: list[list[Any]]) -> None:
        self.rows.extend(rows)
        key = (bundle.stage, bundle.partition)
        first, _ = self.ranges.get(key, (bundle.position, bundle.position))
        self.ranges[key] = (first, bundle.position)

    def dedup_token(self) -> str:
        """Deterministic for the rows' position ranges: a retried insert is stored once."""
        spans = ",".join(f"{s}/{p}:{a}-{b}" for (s, p), (a, b) in sorted(self.ranges.items()))
        return f"{self.table}|" + hashlib.sha256(spans.encode()).hexdigest()[:32]


@dataclass(slots=True)
class Progress:
    marks: dict[MarkKey, int] = field(default_factory=dict)
    loaded: set[int] = field(default_factory=set)

    def unloaded(self, bundles: Iterable[RowBundle]) -> set[int]:
        """Partitions whose marks must be read from ClickHouse before planning."""
        return {b.partition for b in bundles} - self.loaded

    def load(self, partitions: Iterable[int], found: Iterable[tuple[str, str, int, int]]) -> None:
        """Take the (table, stage, partition, highest position) marks read from ClickHouse."""
        for table, stage, partition, position in found:
            key = (table, stage, partition)
            self.marks[key] = max(self.marks.get(key, -1), position)
        self.loaded.update(partitions)

    def forget(self) -> None:
        """After a rebalance another worker may have stored more: read the marks again."""
        self.marks.clear()
        self.loaded.clear()

    def plan(self, bundles: Iterable[RowBundle]) -> list[TableBatch]:
        """The rows not stored yet, one batch per table, in the order they arrived."""
        running = dict(self.marks)
        batches: dict[str, TableBatch] = {}
        for bundle in bundles:
            for table, rows in bundle.tables.items():
                key = (table, bundle.stage, bundle.partition)
                if bundle.position <= running.get(key, -1):
                    continue  # stored already: a redelivery
                running[key] = bundle.position
                batches.setdefault(table, TableBatch(table)).add(bundle, rows)
        return list(batches.values())

    def commit(self, batch: TableBatch) -> None:
        """ClickHouse confirmed `batch`: its positions are stored."""
        for (stage, partition), (_, last) in batch.ranges.items():
            key = (batch.table, stage, partition)
            self.marks[key] = max(self.marks.get(key, -1), last)
