"""The cluster DDL on ClickHouse's own engine, as far as chDB goes (see `cluster_probe`).

chDB has no Keeper and no remote shard: replication and ON CLUSTER are left to a real cluster
(docs/operator-guide.md, "ClickHouse cluster"). Checked here: every cluster statement parses,
and on a one-shard cluster of this node the Distributed tables take the sink's columns, keep an
insert with a repeated `insert_deduplication_token` once (and tell different tokens apart), give
the sink's marks, and serve the results views.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from deploy.clickhouse_ddl import SHARDED

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    directory = tmp_path_factory.mktemp("cluster")
    done = subprocess.run(
        [sys.executable, "-m", "tests.integration.cluster_probe", str(directory)],
        cwd=ROOT,
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.decode().strip().splitlines()[-1])
    return result


def test_every_cluster_statement_parses(probe: dict[str, Any]) -> None:
    assert probe["unparsed"] == {}
    assert probe["parsed"] > 50


def test_sharded_tables_are_distributed_over_local_tables(probe: dict[str, Any]) -> None:
    assert probe["is_local"] == [[1]]  # the one shard is this node: no network involved
    engines = probe["engines"]
    for name in SHARDED:
        assert engines[name] == "Distributed"
        assert engines[name + "_local"] == "ReplacingMergeTree"
    assert engines["experiments"] == "ReplacingMergeTree"
    assert set(probe["sink_columns_missing"]) == SHARDED
    assert not any(probe["sink_columns_missing"].values())


def test_a_repeated_token_through_a_distributed_insert_is_stored_once(
    probe: dict[str, Any],
) -> None:
    assert probe["same_token_rows"] == 3  # three rows, each inserted three times
    assert probe["other_token_rows"] == 2  # the same row under two tokens: stored twice
    assert probe["local_rows"] == 5


def test_marks_and_results_read_through_distributed_tables(probe: dict[str, Any]) -> None:
    assert probe["marks"] == [["derive", 1, 11], ["derive", 2, 20]]
    assert probe["summary"] == [["b", 1, "g", 1, 250]]
    assert probe["monetate_view"] == 0


def test_a_lightweight_delete_is_refused_by_a_distributed_table(probe: dict[str, Any]) -> None:
    """Why `hitstream replay` cannot supersede rows in distributed mode yet (operator guide)."""
    assert "not supported" in probe["delete_on_distributed"]
