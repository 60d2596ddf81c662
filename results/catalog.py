"""What the results index and page read besides the report itself: the tenants, a tenant's
experiments (registry and exposures), the freshness of a tenant's data and the slice values of
an experiment. I/O only; `results.overview` turns it into figures.

Every query is a constant string with `{name:Type}` binds, as in `results.query`.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from clickhouse_connect.driver.client import Client

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

TENANTS_SQL = """SELECT tenant, sum(experiments) FROM (
  SELECT tenant, uniqExact(experiment_id) AS experiments FROM impressions GROUP BY tenant
  UNION ALL SELECT tenant, 0 FROM experiments GROUP BY tenant)
GROUP BY tenant ORDER BY tenant"""

# {experiment:String} '' reads every experiment of the tenant.
_ONE = "({experiment:String} = '' OR experiment_id = {experiment:String})"
REGISTRY_SQL = f"""SELECT experiment_id, variation_id, argMax(name, updated_at),
  argMax(is_control, updated_at), argMax(weight, updated_at), argMax(deleted, updated_at)
FROM experiments WHERE tenant = {{tenant:String}} AND {_ONE}
GROUP BY experiment_id, variation_id ORDER BY experiment_id, variation_id"""
# Exposed visitors per variation from the per-visitor aggregates (migration 007), as the report
# reads them: the index and the experiment page count the same visitors, at one row a visitor.
EXPOSED_SQL = f"""SELECT experiment_id, variation_id, countIf(is_bot = 0 AND is_multi = 0),
  countIf(is_bot = 1), countIf(is_multi = 1)
FROM results_exposures_agg WHERE tenant = {{tenant:String}} AND {_ONE}
GROUP BY experiment_id, variation_id ORDER BY experiment_id, variation_id"""
SEEN_SQL = f"""SELECT experiment_id, min(occurred_at), max(occurred_at) FROM impressions
WHERE tenant = {{tenant:String}} AND {_ONE} GROUP BY experiment_id"""

# The newest hit of the tenant that is stored, in any table a hit lands in (received_at: when the
# gateway took it; inserted_at: when the sink wrote it). An empty table gives the epoch.
FRESHNESS_SQL = """SELECT max(received), max(inserted) FROM (
  SELECT max(received_at) AS received, max(inserted_at) AS inserted FROM events
  WHERE tenant = {tenant:String}
  UNION ALL SELECT max(received_at), max(inserted_at) FROM impressions
  WHERE tenant = {tenant:String}
  UNION ALL SELECT max(received_at), max(inserted_at) FROM conversions
  WHERE tenant = {tenant:String})"""

# The slice values an analyst can pick: the device type and each dimension key, the values with
# the most exposed visitors first.
DIMENSIONS_SQL = """SELECT pair.1 AS key, pair.2 AS value, uniqExact(visitor_id) AS visitors
FROM impressions ARRAY JOIN arrayPushFront(arrayZip(mapKeys(dimensions), mapValues(dimensions)),
  ('device_type', toString(device_type))) AS pair
WHERE tenant = {tenant:String} AND experiment_id = {experiment:String} AND value != ''
GROUP BY key, value ORDER BY key, visitors DESC, value LIMIT {per_key:UInt32} BY key"""


@dataclass(frozen=True, slots=True, kw_only=True)
class Experiment:
    """One experiment of a tenant as the registry and the exposures show it."""

    experiment: str
    name: str = ""
    registered: bool = False  # has registry rows (live or deleted)
    removed: bool = False  # every registry row is deleted
    control: str = ""
    weights: dict[str, float] = field(default_factory=dict)  # live registry variations
    visitors: dict[str, int] = field(default_factory=dict)  # no bots, no multi-variation
    bots: int = 0
    multi: int = 0
    first_seen: dt.datetime | None = None  # first and last exposure (occurred_at)
    last_seen: dt.datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Freshness:
    newest_received: dt.datetime | None  # None: nothing stored for the tenant
    newest_inserted: dt.datetime | None


def _rows(client: Client, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in client.query(sql, parameters=params).result_rows]


def _utc(value: Any) -> dt.datetime | None:
    if not isinstance(value, dt.datetime):
        return None
    value = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return None if value <= EPOCH else value


def tenants(client: Client) -> dict[str, int]:
    """tenant -> experiments with exposures, over every tenant with exposures or a registry."""
    return {str(t): int(n) for t, n in _rows(client, TENANTS_SQL, {})}


def experiments(client: Client, tenant: str, experiment: str = "") -> list[Experiment]:
    """The tenant's experiments (or the one named), registered or only seen, by id."""
    params = {"tenant": tenant, "experiment": experiment}
    found: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"weights": {}, "visitors": {}, "bots": 0, "multi": 0, "deleted": []}
    )
    for exp, variation, name, control, weight, deleted in _rows(client, REGISTRY_SQL, params):
        item = found[str(exp)]
        item["deleted"].append(bool(deleted))
        if deleted:
            continue
        item["name"] = item.get("name") or str(name)
        item["weights"][str(variation)] = float(weight)
        if control:
            item["control"] = str(variation)
    for exp, variation, kept, bots, multi in _rows(client, EXPOSED_SQL, params):
        item = found[str(exp)]
        item["visitors"][str(variation)] = int(kept)
        item["bots"] += int(bots)
        item["multi"] += int(multi)
    for exp, first, last in _rows(client, SEEN_SQL, params):
        found[str(exp)] |= {"first_seen": _utc(first), "last_seen": _utc(last)}
    out = []
    for exp, item in sorted(found.items()):
        deleted = item.pop("deleted")
        out.append(
            Experiment(
                experiment=exp,
                registered=bool(deleted),
                removed=bool(deleted) and all(deleted),
                **item,
            )
        )
    return out


def freshness(client: Client, tenant: str) -> Freshness:
    received, inserted = _rows(client, FRESHNESS_SQL, {"tenant": tenant})[0]
    return Freshness(newest_received=_utc(received), newest_inserted=_utc(inserted))


def dimension_values(
    client: Client, tenant: str, experiment: str, per_key: int = 20
) -> dict[str, list[str]]:
    """Slice key -> its values with the most exposed visitors (device_type first)."""
    params = {"tenant": tenant, "experiment": experiment, "per_key": per_key}
    found: dict[str, list[str]] = defaultdict(list)
    for key, value, _ in _rows(client, DIMENSIONS_SQL, params):
        found[str(key)].append(str(value))
    return dict(sorted(found.items(), key=lambda kv: (kv[0] != "device_type", kv[0])))
