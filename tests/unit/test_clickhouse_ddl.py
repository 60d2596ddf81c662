"""The DDL `deploy.migrate` runs: today's files unchanged on one server, their cluster forms."""

from __future__ import annotations

import re

import pytest

from deploy.clickhouse_ddl import (
    NODE_LOCAL,
    SHARDED,
    SNAPSHOT_REFRESHES,
    Layout,
    rewrite,
    session_settings,
    snapshot_schedule,
    statements,
    storage_table,
    sync_replica_statements,
)
from deploy.migrate import migration_files, plan
from schemas.settings import Settings, SettingsError, load_settings

ONE = Layout(database="hs")
REPLICATED = Layout(database="hs", cluster="prod")
SHARDED_LAYOUT = Layout(database="hs", cluster="prod", distributed=True)
# The bookkeeping table as migrate created it before cluster mode (kept verbatim on purpose).
OLD_MIGRATIONS_DDL = """CREATE TABLE IF NOT EXISTS schema_migrations
            (version UInt16, name String, checksum String,
             applied_at DateTime64(3, 'UTC') DEFAULT now64(3))
            ENGINE = ReplacingMergeTree(applied_at) ORDER BY version"""


def _file_tables() -> dict[str, str]:
    """Every table the migration files create -> its CREATE statement."""
    found = {}
    for path in migration_files():
        for statement in statements(path.read_text()):
            if match := re.match(r"CREATE TABLE IF NOT EXISTS (\w+)", statement):
                found[match.group(1)] = statement
    return found


TABLES = sorted([*(set(_file_tables()) - NODE_LOCAL), "schema_migrations"])


def _create(layout: Layout, name: str) -> str:
    heads = [s for s in plan(layout) if re.match(rf"CREATE TABLE IF NOT EXISTS {name}\b", s)]
    assert len(heads) == 1, heads
    return heads[0]


def test_one_server_runs_the_files_exactly_as_written() -> None:
    expected = ["CREATE DATABASE IF NOT EXISTS `hs`", OLD_MIGRATIONS_DDL]
    for path in migration_files():
        expected += statements(path.read_text())
    assert plan(ONE) == expected


def test_the_sharded_tables_are_exactly_those_the_sink_tracks_by_position() -> None:
    with_lineage = {name for name, ddl in _file_tables().items() if "src_partition" in ddl}
    assert with_lineage == SHARDED


@pytest.mark.parametrize("name", TABLES)
def test_every_table_is_replicated_on_the_cluster_as_a_full_copy(name: str) -> None:
    ddl = _create(REPLICATED, name)
    assert re.match(rf"CREATE TABLE IF NOT EXISTS {name} ON CLUSTER `prod`\s", ddl), ddl
    engine = re.search(r"ENGINE = (\w+)\('([^']*)', '\{replica\}'", ddl)
    assert engine is not None, ddl
    assert engine.group(1).startswith("Replicated") and engine.group(1).endswith("MergeTree")
    assert engine.group(2) == f"/clickhouse/tables/all/hs/{name}"
    assert "non_replicated_deduplication_window" not in ddl
    assert ("replicated_deduplication_window = 1000" in ddl) == (name in SHARDED)
    assert not any("Distributed" in s for s in plan(REPLICATED))


@pytest.mark.parametrize("name", TABLES)
def test_every_table_on_a_sharded_cluster(name: str) -> None:
    statements_ = plan(SHARDED_LAYOUT)
    if name not in SHARDED:  # registries: a full copy on every node, under their own name
        ddl = _create(SHARDED_LAYOUT, name)
        assert f"'/clickhouse/tables/all/hs/{name}', '{{replica}}'" in ddl
        assert storage_table(name, SHARDED_LAYOUT) == name
        return
    local = _create(SHARDED_LAYOUT, name + "_local")
    assert (
        f"ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{{shard}}/hs/{name}_local', "
        "'{replica}')"
    ) in local
    assert "replicated_deduplication_window = 1000" in local
    assert "replicated_deduplication_window_seconds = 604800" in local
    distributed = _create(SHARDED_LAYOUT, name)
    assert distributed == (
        f"CREATE TABLE IF NOT EXISTS {name} ON CLUSTER `prod` AS {name}_local "
        f"ENGINE = Distributed(`prod`, `hs`, {name}_local, src_partition)"
    )
    assert statements_.index(local) < statements_.index(distributed)


def test_engine_arguments_follow_the_replication_arguments() -> None:
    ddl = _create(REPLICATED, "experiments")
    assert (
        "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/all/hs/experiments', "
        "'{replica}', updated_at)"
    ) in ddl


def test_alters_of_a_sharded_table_change_the_local_then_the_distributed_table() -> None:
    alters = [s for s in plan(SHARDED_LAYOUT) if s.startswith("ALTER TABLE")]
    heads = [s.split(" ADD ")[0] for s in alters]
    assert heads == [
        "ALTER TABLE events_local ON CLUSTER `prod`",
        "ALTER TABLE events ON CLUSTER `prod`",
        "ALTER TABLE events_local ON CLUSTER `prod`",
        "ALTER TABLE events ON CLUSTER `prod`",
        "ALTER TABLE conversions_local ON CLUSTER `prod`",
        "ALTER TABLE conversions ON CLUSTER `prod`",
    ]
    one_shard = [s.split(" ADD ")[0] for s in plan(REPLICATED) if s.startswith("ALTER TABLE")]
    assert one_shard == [
        "ALTER TABLE events ON CLUSTER `prod`",
        "ALTER TABLE events ON CLUSTER `prod`",
        "ALTER TABLE conversions ON CLUSTER `prod`",
    ]


def test_views_run_on_the_cluster_and_read_the_distributed_names() -> None:
    views = [s for s in plan(SHARDED_LAYOUT) if s.startswith("CREATE OR REPLACE VIEW")]
    assert len(views) == 8
    for view in views:
        assert re.match(r"CREATE OR REPLACE VIEW \w+ ON CLUSTER `prod` AS\n", view), view
        assert "_local" not in view
    assert plan(SHARDED_LAYOUT)[0] == "CREATE DATABASE IF NOT EXISTS `hs` ON CLUSTER `prod`"


def _materialized(layout: Layout) -> dict[str, str]:
    found = {}
    for statement in plan(layout):
        match = re.match(r"CREATE MATERIALIZED VIEW IF NOT EXISTS (\w+)", statement)
        if match and "\nREFRESH " not in statement:  # the results snapshots' refreshes: below
            found[match.group(1)] = statement
    return found


def test_materialized_views_read_each_shards_local_rows_into_a_full_replica() -> None:
    one, replicated, sharded = (_materialized(x) for x in (ONE, REPLICATED, SHARDED_LAYOUT))
    sources = {"impressions", "conversions", "events"}
    assert set(one) == {"visitor_exposures_mv", "visitor_conversions_mv", "visitor_sessions_mv"}
    for name, ddl in sharded.items():
        target = name.removesuffix("_mv")
        head = f"CREATE MATERIALIZED VIEW IF NOT EXISTS {name} ON CLUSTER `prod` TO {target} AS\n"
        assert ddl.startswith(head), ddl
        assert replicated[name].startswith(head)
        read = set(re.findall(r"\bFROM (\w+)", ddl))
        assert len(read) == 1 and read <= {f"{s}_local" for s in sources}, read
        assert set(re.findall(r"\bFROM (\w+)", replicated[name])) <= sources
        assert target not in SHARDED  # a full replica on every node: every shard writes to it
        assert f"'/clickhouse/tables/all/hs/{target}'" in _create(SHARDED_LAYOUT, target)
    with pytest.raises(ValueError, match="target events is sharded"):
        rewrite("CREATE MATERIALIZED VIEW IF NOT EXISTS m TO events AS\nSELECT 1", REPLICATED)


@pytest.mark.parametrize("layout", [REPLICATED, SHARDED_LAYOUT])
def test_the_results_snapshots_are_plain_tables_on_every_node(layout: Layout) -> None:
    assert {n for n in _file_tables() if n.endswith("_snapshot")} == NODE_LOCAL and NODE_LOCAL
    for name in NODE_LOCAL:
        ddl = _create(layout, name)
        assert ddl.startswith(f"CREATE TABLE IF NOT EXISTS {name} ON CLUSTER `prod`\n"), ddl
        assert "ENGINE = MergeTree ORDER BY (tenant, experiment_id" in ddl
        assert "Replicated" not in ddl and "Distributed" not in ddl
        refresh = name.removesuffix("_snapshot") + "_refresh"
        [view] = [
            s
            for s in plan(layout)
            if s.startswith(f"CREATE MATERIALIZED VIEW IF NOT EXISTS {refresh} ")
        ]
        assert view.startswith(
            f"CREATE MATERIALIZED VIEW IF NOT EXISTS {refresh} ON CLUSTER `prod`\n"
            f"REFRESH EVERY 5 MINUTE TO {name} AS\n"
        ), view
        assert SNAPSHOT_REFRESHES[name] == refresh


def test_migrate_sets_the_snapshots_refresh_period_on_every_node() -> None:
    assert snapshot_schedule(60, ONE) == [
        f"ALTER TABLE {view} MODIFY REFRESH EVERY 60 SECOND" for view in SNAPSHOT_REFRESHES.values()
    ]
    assert snapshot_schedule(300, REPLICATED) == [
        f"ALTER TABLE {view} ON CLUSTER `prod` MODIFY REFRESH EVERY 300 SECOND"
        for view in SNAPSHOT_REFRESHES.values()
    ]


def test_a_statement_of_unknown_form_is_refused_on_a_cluster() -> None:
    odd = "CREATE TABLE t (a UInt8) ENGINE = Memory"
    assert rewrite(odd, ONE) == [odd]
    with pytest.raises(ValueError, match="no cluster form"):
        rewrite(odd, REPLICATED)
    with pytest.raises(ValueError, match="only MergeTree"):
        rewrite("CREATE TABLE IF NOT EXISTS t (a UInt8) ENGINE = Memory", REPLICATED)


def test_session_settings_make_distributed_inserts_synchronous_and_deduplicated() -> None:
    assert session_settings(Settings()) == {}
    assert session_settings(Settings(clickhouse_cluster="prod")) == {"insert_deduplicate": "1"}
    assert session_settings(Settings(clickhouse_cluster="prod", clickhouse_distributed=True)) == {
        "insert_deduplicate": "1",
        "distributed_foreground_insert": "1",
    }


def test_sync_replica_statements_name_the_local_tables() -> None:
    assert sync_replica_statements(Settings()) == []
    synced = sync_replica_statements(
        Settings(clickhouse_database="hs", clickhouse_cluster="prod", clickhouse_distributed=True)
    )
    assert synced[0] == "SYSTEM SYNC REPLICA ON CLUSTER `prod` `hs`.conversions_local LIGHTWEIGHT"
    assert len(synced) == len(SHARDED)


def test_distributed_needs_a_cluster_and_a_cluster_a_plain_name() -> None:
    with pytest.raises(SettingsError, match="requires HITS_CLICKHOUSE_CLUSTER"):
        load_settings({"HITS_CLICKHOUSE_DISTRIBUTED": "true"})
    with pytest.raises(SettingsError, match="HITS_CLICKHOUSE_CLUSTER"):
        load_settings({"HITS_CLICKHOUSE_CLUSTER": "a`b"})
    chosen = load_settings({"HITS_CLICKHOUSE_CLUSTER": "prod", "HITS_CLICKHOUSE_DISTRIBUTED": "1"})
    assert Layout.of(chosen) == Layout(database="hitstream", cluster="prod", distributed=True)
