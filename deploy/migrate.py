"""Apply the numbered, idempotent DDL files of `deploy/clickhouse/` to the configured ClickHouse.

Run by the local stack, the tests and operators alike (`python -m deploy.migrate`). Every file is
applied in order each time (each statement is idempotent); `schema_migrations` records which
files, with their checksums, were applied when. With `HITS_CLICKHOUSE_CLUSTER` each statement is
first rewritten for the cluster (`deploy.clickhouse_ddl`); `--print` shows the statements
without running them. When a file that adds materialized views (`BACKFILLED`) is applied for the
first time to tables that already hold rows, their aggregates are filled from those rows
(`deploy.aggregates.rebuild`): a materialized view only sees rows inserted after it. Last, the
results snapshots are set to refresh every `HITS_RESULTS_SNAPSHOT_EVERY_S` seconds.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
from pathlib import Path

from clickhouse_connect.driver.client import Client

from deploy.clickhouse_client import connect
from deploy.clickhouse_ddl import (
    DDL_DIR,
    Layout,
    create_database,
    migrations_table,
    rewrite,
    snapshot_schedule,
    statements,
)
from schemas.settings import Settings, load_settings

_FILE = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")
BACKFILLED = frozenset({7})  # 007_results_aggregates.sql
_RAW_ROWS = (
    "SELECT (SELECT count() FROM impressions) + (SELECT count() FROM conversions) + "
    "(SELECT count() FROM events)"
)


def migration_files(directory: Path = DDL_DIR) -> list[Path]:
    files = sorted(p for p in directory.iterdir() if _FILE.match(p.name))
    numbers = [p.name[:3] for p in files]
    if len(set(numbers)) != len(numbers):
        raise ValueError(f"two migration files share a number in {directory}")
    return files


def file_statements(path: Path, layout: Layout) -> list[str]:
    """The statements of one migration file as they run on `layout`."""
    return [s for statement in statements(path.read_text()) for s in rewrite(statement, layout)]


def plan(layout: Layout) -> list[str]:
    """Every statement `migrate` runs on `layout`, in order (without the bookkeeping inserts)."""
    return [
        create_database(layout),
        *migrations_table(layout),
        *(s for path in migration_files() for s in file_statements(path, layout)),
    ]


def migrate(settings: Settings, client: Client | None = None) -> list[str]:
    """Create the database and apply every migration file; return the file names applied."""
    layout = Layout.of(settings)
    admin = connect(settings, database="default")
    try:
        admin.command(create_database(layout))
    finally:
        admin.close()
    own = client is None
    client = client or connect(settings)
    try:
        for statement in migrations_table(layout):
            client.command(statement)
        before = {
            int(v) for (v,) in client.query("SELECT version FROM schema_migrations").result_rows
        }
        applied = []
        for path in migration_files():
            text = path.read_text()
            for statement in file_statements(path, layout):
                client.command(statement)
            client.insert(
                "schema_migrations",
                [[int(path.name[:3]), path.name, hashlib.sha256(text.encode()).hexdigest()]],
                column_names=["version", "name", "checksum"],
            )
            applied.append(path.name)
        for statement in snapshot_schedule(settings.results_snapshot_every_s, layout):
            client.command(statement)
        if BACKFILLED - before and before and int(client.query(_RAW_ROWS).result_rows[0][0]):
            from deploy.aggregates import Scope, rebuild, refresh_snapshots  # reads the files

            rebuild(client, Scope())
            refresh_snapshots(client)
        return applied
    finally:
        if own:
            client.close()


def run(settings: Settings, print_only: bool = False) -> int:
    """`python -m deploy.migrate` and `hitstream migrate`: apply the DDL, or print it only."""
    if print_only:
        layout = Layout.of(settings)
        every = snapshot_schedule(settings.results_snapshot_every_s, layout)
        print(";\n\n".join([*plan(layout), *every]) + ";")
        return 0
    for name in migrate(settings):
        print(f"applied {name} to {settings.clickhouse_database}")
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m deploy.migrate", description=__doc__)
    parser.add_argument("--print", action="store_true", help="print the DDL, run nothing")
    sys.exit(run(load_settings(), parser.parse_args().print))


if __name__ == "__main__":
    main()
