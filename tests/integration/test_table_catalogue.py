"""The worker's table catalogue (`pipeline.rows`) against the DDL, as migrated into chDB.

Every column the sink inserts exists with a type that takes its values, the time columns are
DateTime64 (what `rows.times_in_range` guards), and every row id names existing columns.
"""

from __future__ import annotations

import re

from clickhouse_connect.driver.client import Client

from pipeline.rows import COLUMNS, ROW_IDS, TIME_COLUMNS


def columns(client: Client, table: str) -> dict[str, str]:
    rows = client.query(
        "SELECT name, type FROM system.columns WHERE database = currentDatabase() "
        "AND table = {t:String}",
        parameters={"t": table},
    ).result_rows
    return {str(name): str(kind) for name, kind in rows}


def test_the_catalogue_matches_the_tables(clickhouse: Client) -> None:
    assert set(COLUMNS) == set(ROW_IDS)
    for table, names in COLUMNS.items():
        found = columns(clickhouse, table)
        missing = [name for name in names if name not in found]
        assert not missing, f"{table}: the DDL lacks {missing}"
        for name in set(names) & TIME_COLUMNS:
            assert found[name].startswith("DateTime64"), (table, name, found[name])
        for name in re.findall(r"\w+", ROW_IDS[table]):
            assert name in found, f"{table}: the row id names {name}, not a column"
        assert {"src_partition", "src_pos"} <= set(names), table  # the sink's marks need them
