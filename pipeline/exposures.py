"""Impressions as the live sample-ratio alarm reads them (`hits.exposures`), pure.

The processing stage copies every impression it stores (retries derive none) into an `Exposure`.
A flushed batch sends one `hits.exposures` record per experiment, keyed tenant|experiment so that
all exposures of one experiment meet in one partition of the alarm's table, holding that batch's
exposures of the experiment in order (`records` / `decode`). The alarm counts a record's first
exposures at once and remembers the record's offset, which is how `pipeline.srm.count`
recognises a redelivered record.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import orjson

from pipeline.rows import COLUMNS, RowBundle

_COLUMN = {name: i for i, name in enumerate(COLUMNS["impressions"])}
_TENANT, _EXPERIMENT = _COLUMN["tenant"], _COLUMN["experiment_id"]
_VARIATION, _VISITOR, _AT = _COLUMN["variation_id"], _COLUMN["visitor_id"], _COLUMN["received_at"]


@dataclass(frozen=True, slots=True)
class Exposure:
    tenant: str
    experiment: str
    variation: str
    visitor: str
    received_at_ms: int


def exposures(bundle: RowBundle) -> list[Exposure]:
    """One exposure per impression row of `bundle`."""
    return [
        Exposure(row[_TENANT], row[_EXPERIMENT], row[_VARIATION], row[_VISITOR], row[_AT])
        for row in bundle.tables.get("impressions", ())
    ]


def records(items: Iterable[Exposure]) -> list[tuple[bytes, bytes]]:
    """(key, value) records for `hits.exposures`: one per experiment, its exposures in order."""
    grouped: dict[tuple[str, str], list[list[object]]] = defaultdict(list)
    for e in items:
        grouped[(e.tenant, e.experiment)].append([e.variation, e.visitor, e.received_at_ms])
    return [
        (f"{tenant}|{experiment}".encode(), orjson.dumps({"t": tenant, "e": experiment, "x": x}))
        for (tenant, experiment), x in grouped.items()
    ]


def decode(value: bytes) -> list[Exposure]:
    item = orjson.loads(value)
    tenant, experiment = str(item["t"]), str(item["e"])
    return [Exposure(tenant, experiment, str(v), str(u), int(at)) for v, u, at in item["x"]]
