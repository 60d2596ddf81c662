"""Monetate event definitions in ClickHouse (`event_definitions`, deploy/clickhouse/003).

One row per (tenant, event_key), a ReplacingMergeTree on `updated_at`: a save or a removal is
an insert, read back with `FINAL WHERE deleted = 0`. Shared by the CLI, the gateway's admin API
and the worker's refresh (pipeline/definitions.py). Blocking: async callers use a thread.
"""

from __future__ import annotations

from typing import Any

import orjson
from clickhouse_connect.driver.client import Client

from schemas import monetate_definitions as defs

COLUMNS = ["tenant", "event_key", "title", "description", "conditions", "deleted"]
QUERY = (
    "SELECT tenant, event_key, title, description, conditions FROM event_definitions FINAL "
    "WHERE deleted = 0"
)


def row(definition: defs.EventDefinition, deleted: bool = False) -> list[Any]:
    conditions = orjson.dumps(defs.to_dict(definition)["conditions"]).decode()
    return [
        definition.site,
        definition.key,
        definition.title,
        definition.description,
        conditions,
        int(deleted),
    ]


def from_row(
    tenant: str, key: str, title: str, description: str, conditions: str
) -> defs.EventDefinition | defs.Invalid:
    """A stored row back to a definition (validated again: the store is not trusted blindly)."""
    try:
        parsed = orjson.loads(conditions or "[]")
    except orjson.JSONDecodeError:
        return defs.Invalid((defs.Problem("bad_json", "conditions", "stored conditions"),))
    return defs.from_dict(
        {
            "v": defs.VERSION,
            "site": tenant,
            "key": key,
            "title": title,
            "description": description,
            "conditions": parsed,
        }
    )


def save(client: Client, definition: defs.EventDefinition) -> None:
    client.insert("event_definitions", [row(definition)], column_names=COLUMNS)


def remove(client: Client, site: str, key: str) -> bool:
    """Mark (site, key) deleted; False when there was no such live definition."""
    if get(client, site, key) is None:
        return False
    gone = defs.EventDefinition(site=site, key=key, title="-")
    client.insert("event_definitions", [row(gone, deleted=True)], column_names=COLUMNS)
    return True


def load(
    client: Client, site: str | None = None
) -> tuple[list[defs.EventDefinition], list[tuple[str, str, defs.Invalid]]]:
    """Live definitions (of `site`, or all), and the stored rows that no longer validate."""
    sql, parameters = QUERY, {}
    if site is not None:
        sql, parameters = QUERY + " AND tenant = {s:String}", {"s": site}
    good: list[defs.EventDefinition] = []
    bad: list[tuple[str, str, defs.Invalid]] = []
    result = client.query(sql + " ORDER BY tenant, event_key", parameters=parameters)
    for tenant, key, title, description, conditions in result.result_rows:
        item = from_row(str(tenant), str(key), str(title), str(description), str(conditions))
        if isinstance(item, defs.Invalid):
            bad.append((str(tenant), str(key), item))
        else:
            good.append(item)
    return good, bad


def get(client: Client, site: str, key: str) -> defs.EventDefinition | None:
    result = client.query(
        QUERY + " AND tenant = {s:String} AND event_key = {k:String}",
        parameters={"s": site, "k": key},
    )
    for tenant, event_key, title, description, conditions in result.result_rows:
        item = from_row(str(tenant), str(event_key), str(title), str(description), str(conditions))
        return None if isinstance(item, defs.Invalid) else item
    return None
