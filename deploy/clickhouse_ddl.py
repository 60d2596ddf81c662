"""The DDL `deploy.migrate` runs, as a pure function of the settings (no I/O here).

`deploy/clickhouse/*.sql` is written for one server. Without `HITS_CLICKHOUSE_CLUSTER` those
statements run exactly as written. With it, each statement is rewritten for the cluster:

- every table is created `ON CLUSTER` with the `Replicated` form of its engine; the tables that
  use insert tokens (the sink's) keep their tokens in Keeper for `DEDUP_WINDOW_BLOCKS` inserts,
  so a batch retried against another replica is stored once;
- with `HITS_CLICKHOUSE_DISTRIBUTED` the sink's tables (`SHARDED`) become `<name>_local`, one
  copy per shard, behind a `Distributed` table that keeps the original name and shards rows by
  `src_partition` (all rows of one raw partition on one shard: the sink's marks, max(src_pos)
  per partition, then come from one atomic insert on one shard, never from half a batch). So the
  sink, the results and every reader keep using the names they use today;
- without it every node holds a full replica of every table (one Keeper path per table);
- registries (`experiments`, `event_definitions`, the Octeth registry, `schema_migrations`) are
  always full replicas on every node: small, read whole, and joined locally;
- views and `ALTER`s run `ON CLUSTER` (an `ALTER` of a sharded table runs on the local and the
  Distributed table);
- materialized views (the results aggregates) run `ON CLUSTER`; in distributed mode they read the
  `<name>_local` table of their source (an insert into the Distributed table reaches each shard's
  local table, which is what fires them) and write to their aggregate table, a full replica on
  every node, so every shard's share lands in one replicated table (its states are idempotent:
  a block stored twice or dropped as a duplicate of an identical one changes nothing);
- the results snapshots (`NODE_LOCAL`) are plain tables on every node, each refreshed on its node
  from the views by its refreshable materialized view (`ON CLUSTER`): a refresh replaces a
  table whole, which a replicated table would not take from every replica at once.

A statement of a form this module does not know raises `ValueError` in cluster mode, so a new
migration cannot silently skip the cluster.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from schemas.settings import Settings

DDL_DIR = Path(__file__).resolve().parent / "clickhouse"  # the numbered migration files


def statements(sql: str) -> list[str]:
    """Split a DDL file on `;` at line ends, dropping `--` comment lines."""
    lines = [line for line in sql.splitlines() if not line.lstrip().startswith("--")]
    return [s.strip() for s in re.split(r";\s*$", "\n".join(lines), flags=re.M) if s.strip()]


# Tables the sink writes, sharded by `src_partition` in distributed mode.
SHARDED = frozenset(
    {"events", "impressions", "conversions", "dead_letters", "identities", "octeth_properties"}
)
SHARDING_KEY = "src_partition"
# The results snapshots (008_results_snapshots.sql): each table and the refreshable materialized
# view that fills it; one plain copy per node, never replicated.
SNAPSHOT_REFRESHES = {
    "results_exposures_snapshot": "results_exposures_refresh",
    "results_visitor_conversions_snapshot": "results_visitor_conversions_refresh",
    "results_sessions_snapshot": "results_sessions_refresh",
}
NODE_LOCAL = frozenset(SNAPSHOT_REFRESHES)
LOCAL_SUFFIX = "_local"
DEDUP_WINDOW_BLOCKS = 1000
DEDUP_WINDOW_SECONDS = 7 * 24 * 3600
MIGRATIONS_TABLE = "schema_migrations"

_MIGRATIONS_DDL = """CREATE TABLE IF NOT EXISTS schema_migrations
            (version UInt16, name String, checksum String,
             applied_at DateTime64(3, 'UTC') DEFAULT now64(3))
            ENGINE = ReplacingMergeTree(applied_at) ORDER BY version"""

_CREATE_TABLE = re.compile(r"^CREATE TABLE IF NOT EXISTS (\w+)(\s)")
_ENGINE = re.compile(r"ENGINE = (\w*MergeTree)(?:\(([^)]*)\))?")
_NON_REPLICATED_WINDOW = re.compile(r"non_replicated_deduplication_window = \d+")
_ALTER = re.compile(r"^ALTER TABLE (\w+) ")
_VIEW = re.compile(r"^CREATE OR REPLACE VIEW (\w+) AS\b")
_MATERIALIZED = re.compile(r"^CREATE MATERIALIZED VIEW IF NOT EXISTS (\w+) TO (\w+) AS\b")
_REFRESHED = re.compile(r"^CREATE MATERIALIZED VIEW IF NOT EXISTS (\w+)(\s+REFRESH\b)")
_SOURCE = re.compile(r"\bFROM (\w+)\b")


@dataclass(frozen=True, slots=True, kw_only=True)
class Layout:
    """Where the tables live: one server (`cluster` empty) or a named cluster."""

    database: str
    cluster: str = ""
    distributed: bool = False

    @classmethod
    def of(cls, settings: Settings) -> Layout:
        return cls(
            database=settings.clickhouse_database,
            cluster=settings.clickhouse_cluster,
            distributed=settings.clickhouse_distributed,
        )

    @property
    def on_cluster(self) -> str:
        return f" ON CLUSTER `{self.cluster}`" if self.cluster else ""


def storage_table(name: str, layout: Layout) -> str:
    """The table that holds `name`'s rows on a node (`<name>_local` behind a Distributed one)."""
    return name + LOCAL_SUFFIX if layout.distributed and name in SHARDED else name


def create_database(layout: Layout) -> str:
    return f"CREATE DATABASE IF NOT EXISTS `{layout.database}`{layout.on_cluster}"


def migrations_table(layout: Layout) -> list[str]:
    return rewrite(_MIGRATIONS_DDL, layout)


def rewrite(statement: str, layout: Layout) -> list[str]:
    """`statement` as it runs on `layout`: unchanged on one server, else its cluster form(s)."""
    if not layout.cluster:
        return [statement]
    if match := _CREATE_TABLE.match(statement):
        if match.group(1) in NODE_LOCAL:
            return [_on_cluster(statement, match.end(1), layout)]
        return _create_table(statement, match.group(1), layout)
    if match := _ALTER.match(statement):
        name = match.group(1)
        rest = statement[match.end() :]
        tables = dict.fromkeys((storage_table(name, layout), name))  # the local table first
        return [f"ALTER TABLE {t}{layout.on_cluster} {rest}" for t in tables]
    if match := _VIEW.match(statement):
        name = match.group(1)
        return [f"CREATE OR REPLACE VIEW {name}{layout.on_cluster} AS{statement[match.end() :]}"]
    if match := _REFRESHED.match(statement):
        return [_on_cluster(statement, match.end(1), layout)]
    if match := _MATERIALIZED.match(statement):
        name, target = match.groups()
        if target in SHARDED:
            raise ValueError(f"materialized view {name}: its target {target} is sharded")
        body = _SOURCE.sub(lambda m: f"FROM {storage_table(m.group(1), layout)}", statement)
        body = body[match.end() :]
        head = f"CREATE MATERIALIZED VIEW IF NOT EXISTS {name}{layout.on_cluster} TO {target} AS"
        return [head + body]
    raise ValueError(f"no cluster form known for: {statement[:80]!r}")


def _on_cluster(statement: str, at: int, layout: Layout) -> str:
    """`statement` with ON CLUSTER after its object's name (which ends at `at`)."""
    return statement[:at] + layout.on_cluster + statement[at:]


def _create_table(statement: str, name: str, layout: Layout) -> list[str]:
    engine = _ENGINE.search(statement)
    if engine is None:
        raise ValueError(f"table {name}: only MergeTree engines can be replicated")
    stored = storage_table(name, layout)
    shard = "{shard}" if stored != name else "all"
    path = f"/clickhouse/tables/{shard}/{layout.database}/{stored}"
    args = ", ".join(a for a in (f"'{path}'", "'{replica}'", engine.group(2)) if a)
    replicated = f"ENGINE = Replicated{engine.group(1)}({args})"
    head = f"CREATE TABLE IF NOT EXISTS {stored}{layout.on_cluster}"
    body = statement[len(f"CREATE TABLE IF NOT EXISTS {name}") :]
    body = body.replace(engine.group(0), replicated, 1)
    if name in SHARDED:
        window = (
            f"replicated_deduplication_window = {DEDUP_WINDOW_BLOCKS}, "
            f"replicated_deduplication_window_seconds = {DEDUP_WINDOW_SECONDS}"
        )
        if _NON_REPLICATED_WINDOW.search(body):
            body = _NON_REPLICATED_WINDOW.sub(window, body)
        elif "\nSETTINGS " not in body:
            body += "\nSETTINGS " + window
        else:
            raise ValueError(f"table {name}: add the dedup window to its SETTINGS by hand")
    created = [head + body]
    if stored != name:
        created.append(
            f"CREATE TABLE IF NOT EXISTS {name}{layout.on_cluster} AS {stored} "
            f"ENGINE = Distributed(`{layout.cluster}`, `{layout.database}`, {stored}, "
            f"{SHARDING_KEY})"
        )
    return created


def snapshot_schedule(every_s: int, layout: Layout) -> list[str]:
    """The statements that make every results snapshot refresh each `every_s` seconds
    (`HITS_RESULTS_SNAPSHOT_EVERY_S`, applied by `migrate` after the files)."""
    return [
        statement
        for view in SNAPSHOT_REFRESHES.values()
        for statement in rewrite(
            f"ALTER TABLE {view} MODIFY REFRESH EVERY {every_s} SECOND", layout
        )
    ]


def session_settings(settings: Settings) -> dict[str, str]:
    """Per-connection settings every hitstream client sends to a cluster (none on one server).

    `distributed_foreground_insert`: an insert into a Distributed table returns only when every
    shard stored its rows, carrying the query's settings, `insert_deduplication_token` among
    them, to the shard (a background insert would queue the rows and confirm at once, so the
    sink would advance offsets over rows not stored yet). `insert_deduplicate`: on explicitly,
    whatever the user's profile says.
    """
    if not settings.clickhouse_cluster:
        return {}
    chosen = {"insert_deduplicate": "1"}
    if settings.clickhouse_distributed:
        chosen["distributed_foreground_insert"] = "1"
    return chosen


def sync_replica_statements(settings: Settings, tables: frozenset[str] = SHARDED) -> list[str]:
    """What a sink should run before reading its marks on a cluster (a proposal for the sink).

    A replica that lags may not hold the newest batch yet, and marks read from it would be too
    low: `SYSTEM SYNC REPLICA ... LIGHTWEIGHT` waits until every replica fetched the parts
    already inserted. Marks are read only when partitions are assigned, so this runs rarely.
    """
    layout = Layout.of(settings)
    if not layout.cluster:
        return []
    return [
        f"SYSTEM SYNC REPLICA{layout.on_cluster} `{layout.database}`."
        f"{storage_table(t, layout)} LIGHTWEIGHT"
        for t in sorted(tables)
    ]
