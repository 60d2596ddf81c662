"""What chDB can check of the cluster DDL, run in its own process (one chDB engine per process).

    python -m tests.integration.cluster_probe DIR

chDB has no Keeper (no replication, no ON CLUSTER) and no TCP listener (no remote shard), but it
reads a server config: with a one-shard cluster whose only replica is this node, a Distributed
table works as on a server, inserting into and reading from the local shard. So the probe:

1. parses every statement of both cluster layouts with ClickHouse's own parser (formatQuery);
2. applies the distributed layout on that one node, with ON CLUSTER and replication removed (the
   only changes), and reports what the sink and the results see through the Distributed tables.

Prints one JSON object.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from chdb.state.sqlitelike import connect

from deploy.clickhouse_ddl import Layout, sync_replica_statements
from deploy.migrate import plan
from pipeline.rows import COLUMNS
from schemas.settings import Settings

CLUSTER = "hs"
DATABASE = "probe"
CONFIG = f"""<clickhouse>
  <tcp_port>9000</tcp_port>
  <remote_servers><{CLUSTER}><shard><internal_replication>true</internal_replication>
    <replica><host>localhost</host><port>9000</port></replica>
  </shard></{CLUSTER}></remote_servers>
  <macros><shard>01</shard><replica>r1</replica></macros>
</clickhouse>
"""
_REPLICATED = re.compile(r"ENGINE = Replicated(\w+)\('[^']*', '\{replica\}'(?:, ([^)]*))?\)")


def single_node(statement: str) -> str:
    """A cluster statement as one node without Keeper can run it: no ON CLUSTER, no replication."""
    statement = statement.replace(f" ON CLUSTER `{CLUSTER}`", "")
    statement = _REPLICATED.sub(
        lambda m: f"ENGINE = {m.group(1)}" + (f"({m.group(2)})" if m.group(2) else ""), statement
    )
    return re.sub(
        r"replicated_deduplication_window = \d+, replicated_deduplication_window_seconds = \d+",
        "non_replicated_deduplication_window = 1000",
        statement,
    )


def main(directory: Path) -> dict[str, Any]:
    (directory / "config.xml").write_text(CONFIG)
    conn = connect(f"file:{directory / 'data'}?config-file={directory / 'config.xml'}")

    def rows(sql: str) -> list[list[Any]]:
        out = conn.query(sql, "JSONCompact")
        return list(json.loads(out.bytes() or b'{"data": []}')["data"])

    found: dict[str, Any] = {}
    sharded = Layout(database=DATABASE, cluster=CLUSTER, distributed=True)
    replicated = Layout(database=DATABASE, cluster=CLUSTER)
    every = plan(sharded) + plan(replicated) + sync_replica_statements(_settings())
    unparsed = {}
    for statement in every:
        try:
            conn.query(f"SELECT formatQuery({_literal(statement)})")
        except Exception as exc:  # report every statement the parser refuses
            unparsed[statement[:120]] = str(exc)[:300]
    found["parsed"] = len(every) - len(unparsed)
    found["unparsed"] = unparsed

    found["is_local"] = rows(f"SELECT is_local FROM system.clusters WHERE cluster = '{CLUSTER}'")
    for statement in plan(sharded):
        conn.query(single_node(statement))
        if statement.startswith("CREATE DATABASE"):
            conn.query(f"USE {DATABASE}")
    found["engines"] = dict(
        rows(f"SELECT name, engine FROM system.tables WHERE database = '{DATABASE}'")
    )
    columns: dict[str, list[str]] = {}
    for name, column in rows(
        f"SELECT table, name FROM system.columns WHERE database = '{DATABASE}'"
    ):
        columns.setdefault(name, []).append(column)
    found["sink_columns_missing"] = {
        table: sorted(set(cols) - set(columns.get(table, []))) for table, cols in COLUMNS.items()
    }

    insert = (
        "INSERT INTO events (tenant, event_id, hit_id, occurred_at, received_at, src_partition, "
        "src_pos) SETTINGS distributed_foreground_insert = 1, insert_deduplication_token = '{t}' "
        "VALUES ('t', '00000000-0000-0000-0000-00000000000{i}', 'h{i}', 0, 0, {p}, {pos})"
    )
    for token in ("same", "same", "same"):
        for i, (p, pos) in enumerate([(1, 10), (1, 11), (2, 20)]):
            conn.query(insert.format(t=f"{token}{i}", i=i, p=p, pos=pos))
    found["same_token_rows"] = rows("SELECT count() FROM events")[0][0]
    for token in ("a", "b"):
        conn.query(insert.format(t=token, i=9, p=3, pos=30))
    found["other_token_rows"] = rows("SELECT count() FROM events WHERE src_partition = 3")[0][0]
    found["marks"] = rows(
        "SELECT 'derive', src_partition, max(src_pos) FROM events "
        "WHERE src_partition IN [1, 2] GROUP BY 1, 2 ORDER BY 2"
    )
    found["local_rows"] = rows("SELECT count() FROM events_local")[0][0]

    conn.query(
        "INSERT INTO impressions (tenant, experiment_id, variation_id, visitor_id, impression_id,"
        " occurred_at, received_at, src_partition, src_pos) SETTINGS "
        "distributed_foreground_insert = 1 VALUES ('t', 'x', 'b', 'v1', "
        "'00000000-0000-0000-0000-000000000001', 1000, 1000, 0, 1)"
    )
    conn.query(
        "INSERT INTO conversions (tenant, goal_id, visitor_id, conversion_id, occurred_at,"
        " received_at, value_cents, src_partition, src_pos) SETTINGS "
        "distributed_foreground_insert = 1 VALUES ('t', 'g', 'v1', "
        "'00000000-0000-0000-0000-000000000002', 2000, 2000, 250, 0, 2)"
    )
    found["summary"] = rows(
        "SELECT variation_id, visitors, goal_id, converters, revenue_cents FROM results_summary"
    )
    found["monetate_view"] = rows("SELECT count() FROM monetate_event_counts")[0][0]
    try:  # what `hitstream replay` does to superseded rows
        conn.query("DELETE FROM events WHERE src_partition = 3")
        found["delete_on_distributed"] = "ok"
    except Exception as exc:
        found["delete_on_distributed"] = str(exc)[:200]
    return found


def _literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _settings() -> Settings:
    return Settings(
        clickhouse_database=DATABASE, clickhouse_cluster=CLUSTER, clickhouse_distributed=True
    )


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1])), default=str))
