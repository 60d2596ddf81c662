"""Rebuild and check the per-visitor results aggregates (clickhouse/007_results_aggregates.sql).

The aggregates are fed by materialized views as rows arrive; a lightweight DELETE of raw rows
(replay, re-drive) does not reach them. `rebuild` deletes an experiment's aggregate rows and
inserts them again from the raw tables with each materialized view's own SELECT (read from the
migration file, so there is one definition) plus a WHERE; `check` compares the aggregate views
with the raw views (EXCEPT both ways). The SQL is built by pure functions; `rebuild`, `check` and
`affected` are the thin parts that run it.

Scopes: an experiment of a tenant; a time range of a tenant (every experiment with an exposure,
a counted session or, through its visitors, a conversion in the range, in the raw tables or in
the aggregates); a whole tenant; everything. The states are idempotent (min, max, argMin by a
unique key, sets), so a rebuild racing the worker, or run twice, leaves the same aggregates.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clickhouse_connect.driver.client import Client

from deploy import clickhouse_ddl
from deploy.clickhouse_ddl import DDL_DIR, statements

DDL_FILE = DDL_DIR / "007_results_aggregates.sql"
_MV = re.compile(
    r"^CREATE MATERIALIZED VIEW IF NOT EXISTS (\w+) TO (\w+) AS\n(.*)\n(GROUP BY [^;]*)$", re.S
)
# The per-visitor views and their aggregate twins. The raw sessions view has a row per stored
# event (repeats of one session included) and the event time; the report counts distinct
# (visitor, session) pairs, so the sessions are compared as distinct rows without the time.
PAIRS = (
    ("results_exposures", "results_exposures_agg", "ALL", "*"),
    ("results_visitor_conversions", "results_visitor_conversions_agg", "ALL", "*"),
    ("results_sessions", "results_sessions_agg", "DISTINCT", "* EXCEPT occurred_at"),
)
NO_INSERT_DEDUP = {"insert_deduplicate": 0}  # a rebuild inserts what it inserted before


@dataclass(frozen=True, slots=True)
class Aggregate:
    """One materialized view: it feeds `table` with `select` + `group_by` over raw rows."""

    view: str
    table: str
    select: str
    group_by: str


def aggregates(path: Path = DDL_FILE) -> tuple[Aggregate, ...]:
    found = []
    for statement in statements(path.read_text()):
        if match := _MV.match(statement):
            found.append(Aggregate(*match.groups()))
    return tuple(found)


@dataclass(frozen=True, slots=True, kw_only=True)
class Scope:
    """What to rebuild: `experiment` of `tenant`, or all of it (both empty: everything)."""

    tenant: str = ""
    experiment: str = ""

    def __post_init__(self) -> None:
        if self.experiment and not self.tenant:
            raise ValueError("an experiment needs its tenant")

    @property
    def params(self) -> dict[str, Any]:
        return {"tenant": self.tenant, "experiment": self.experiment}


def _exposed(scope: Scope, table: str = "impressions") -> str:
    return (
        f"SELECT visitor_id FROM {table} WHERE tenant = {{tenant:String}}"
        " AND experiment_id = {experiment:String}"
    )


def condition(aggregate: Aggregate, scope: Scope) -> str:
    """The rows of `aggregate.table` (and the raw rows that make them) in `scope`."""
    if not scope.tenant:
        return "1"
    tenant = "tenant = {tenant:String}"
    if not scope.experiment:
        return tenant
    if aggregate.table == "visitor_conversions":  # the conversions of the experiment's visitors
        return f"{tenant} AND visitor_id IN ({_exposed(scope)})"
    return f"{tenant} AND experiment_id = {{experiment:String}}"


def rebuild_statements(scope: Scope, path: Path = DDL_FILE) -> list[str]:
    """DELETE then INSERT ... SELECT for each aggregate (conversions last: they read the
    experiment's visitors from the raw impressions, never from the aggregate being rebuilt)."""
    out = []
    for aggregate in aggregates(path):
        where = condition(aggregate, scope)
        out.append(f"DELETE FROM {aggregate.table} WHERE {where}")
        out.append(
            f"INSERT INTO {aggregate.table}\n{aggregate.select}\nWHERE {where}\n"
            f"{aggregate.group_by}"
        )
    return out


def rebuild(client: Client, scope: Scope) -> None:
    for sql in rebuild_statements(scope):
        client.command(sql, parameters=scope.params, settings=NO_INSERT_DEDUP)


def check_statements(scope: Scope) -> dict[str, str]:
    """view -> a query of (raw rows missing from the aggregates, aggregate rows not raw)."""
    where = condition(Aggregate("", "", "", ""), scope)
    out = {}
    for raw, agg, mode, columns in PAIRS:
        left = f"SELECT {columns} FROM {raw} WHERE {where}"
        right = f"SELECT * FROM {agg} WHERE {where}"
        out[raw] = (
            f"SELECT (SELECT count() FROM ({left} EXCEPT {mode} {right})),"
            f" (SELECT count() FROM ({right} EXCEPT {mode} {left}))"
        )
    return out


def check(client: Client, scope: Scope) -> dict[str, tuple[int, int]]:
    """view -> (raw rows missing from its aggregate view, aggregate rows not in the raw view);
    all zero when the aggregates equal the raw views."""
    found = {}
    for view, sql in check_statements(scope).items():
        missing, extra = client.query(sql, parameters=scope.params).result_rows[0]
        found[view] = (int(missing), int(extra))
    return found


# Experiments whose aggregates rows of a raw table (a WHERE over it) feed; run before the rows
# are deleted. A conversion feeds every experiment its visitor was exposed to.
AFFECTED_SQL = {
    "impressions": "SELECT DISTINCT tenant, experiment_id FROM impressions WHERE {where}",
    "events": "SELECT DISTINCT tenant, arrayJoin(mapKeys(experiments)) FROM events WHERE {where}",
    "conversions": "SELECT DISTINCT tenant, experiment_id FROM visitor_exposures WHERE "
    "(tenant, visitor_id) IN (SELECT tenant, visitor_id FROM conversions WHERE {where})",
}


def affected(client: Client, table: str, where: str) -> set[Scope]:
    """The experiments whose aggregates the rows of `table` matching `where` feed."""
    if table not in AFFECTED_SQL:
        return set()
    rows = client.query(AFFECTED_SQL[table].format(where=where)).result_rows
    return {Scope(tenant=str(t), experiment=str(e)) for t, e in rows if e}


RANGE_SQL = """SELECT DISTINCT experiment_id FROM (
  SELECT experiment_id FROM impressions WHERE tenant = {tenant:String}
    AND occurred_at >= {since:DateTime64(3)} AND occurred_at < {until:DateTime64(3)}
  UNION ALL SELECT experiment_id FROM visitor_exposures WHERE tenant = {tenant:String}
    AND first_at < {until:DateTime64(3)} AND last_at >= {since:DateTime64(3)}
  UNION ALL SELECT experiment_id FROM visitor_sessions WHERE tenant = {tenant:String}
    AND first_at < {until:DateTime64(3)} AND last_at >= {since:DateTime64(3)}
  UNION ALL SELECT experiment_id FROM visitor_exposures WHERE tenant = {tenant:String}
    AND visitor_id IN (
      SELECT visitor_id FROM conversions WHERE tenant = {tenant:String}
        AND occurred_at >= {since:DateTime64(3)} AND occurred_at < {until:DateTime64(3)}
      UNION ALL SELECT visitor_id FROM visitor_conversions WHERE tenant = {tenant:String}
        AND first_at < {until:DateTime64(3)} AND last_at >= {since:DateTime64(3)}))
ORDER BY experiment_id"""


def in_range(client: Client, tenant: str, since: dt.datetime, until: dt.datetime) -> list[Scope]:
    """The experiments of `tenant` with an exposure, a counted session or an exposed visitor's
    conversion in [since, until), in the raw tables or the aggregates (rows deleted since)."""
    params = {"tenant": tenant, "since": since, "until": until}
    rows = client.query(RANGE_SQL, parameters=params).result_rows
    return [Scope(tenant=tenant, experiment=str(e)) for (e,) in rows]


# The refreshable materialized views of 008_results_snapshots.sql, each filling one snapshot.
SNAPSHOT_REFRESHES = tuple(clickhouse_ddl.SNAPSHOT_REFRESHES.values())
# When the oldest of the snapshots was taken (epoch seconds), 0 until each has been refreshed.
SNAPSHOT_TAKEN_SQL = """SELECT if(count() = length({views:Array(String)})
  AND countIf(last_success_time IS NULL) = 0, toUnixTimestamp(min(last_success_time)), 0)
FROM system.view_refreshes
WHERE database = currentDatabase() AND has({views:Array(String)}, view)"""


def refresh_snapshots(client: Client) -> None:
    """Refresh the results snapshots now and wait until they are replaced (after a rebuild, or
    the demo's load); raises what a failed refresh raised."""
    for view in SNAPSHOT_REFRESHES:
        client.command(f"SYSTEM REFRESH VIEW {view}")
    for view in SNAPSHOT_REFRESHES:
        client.command(f"SYSTEM WAIT VIEW {view}")


def snapshot_taken(client: Client) -> dt.datetime | None:
    """When the results snapshots were taken (the oldest of them), or None before every one has
    been refreshed once."""
    params = {"views": list(SNAPSHOT_REFRESHES)}
    epoch = int(client.query(SNAPSHOT_TAKEN_SQL, parameters=params).result_rows[0][0])
    return dt.datetime.fromtimestamp(epoch, dt.UTC) if epoch else None
