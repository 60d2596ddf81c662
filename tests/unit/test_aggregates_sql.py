"""The SQL of the results aggregates' rebuild and check (deploy/aggregates.py), without a server;
tests/integration/test_aggregates.py runs it on the engine."""

from __future__ import annotations

import re
from typing import cast

import pytest
from clickhouse_connect.driver.client import Client

from deploy.aggregates import DDL_FILE, Scope, aggregates, check_statements, rebuild_statements
from deploy.clickhouse_ddl import statements
from hitstream.supersede import RebuildFailed, rebuild_touched

EXPERIMENT = Scope(tenant="t", experiment="e")


def test_every_materialized_view_of_the_file_is_rebuilt_from_its_own_select() -> None:
    found = {(a.view, a.table) for a in aggregates()}
    assert found == {
        ("visitor_exposures_mv", "visitor_exposures"),
        ("visitor_conversions_mv", "visitor_conversions"),
        ("visitor_sessions_mv", "visitor_sessions"),
    }
    for aggregate in aggregates():
        assert aggregate.select.startswith("SELECT") and aggregate.group_by.startswith("GROUP BY")
        assert "GROUP BY" not in aggregate.select.split("\n")[-1]


def test_the_insert_columns_follow_the_table_columns() -> None:
    """INSERT ... SELECT maps by position (a materialized view by name): same order."""
    tables = {}
    for statement in statements(DDL_FILE.read_text()):
        if match := re.match(
            r"CREATE TABLE IF NOT EXISTS (\w+)\s*\((.*)\)\s*ENGINE", statement, re.S
        ):
            tables[match.group(1)] = re.findall(r"^\s{4}(\w+)\s", match.group(2), re.M)
    for aggregate in aggregates():
        outer = aggregate.select.split("\nFROM")[0]
        names = [
            (alias or column)
            for column, alias in re.findall(r"^\s{4}(?:(\w+),?$|.*?AS (\w+),?$)", outer, re.M)
        ]
        names = [re.sub(r"\W", "", n) for n in names if n]
        assert len(names) >= 6 and names == tables[aggregate.table], aggregate.view


def test_an_experiment_rebuild_deletes_then_inserts_that_experiment_only() -> None:
    sql = rebuild_statements(EXPERIMENT)
    assert [s.split()[0] for s in sql] == ["DELETE", "INSERT"] * 3
    for delete, insert in zip(sql[::2], sql[1::2], strict=True):
        where = delete.split(" WHERE ", 1)[1]
        assert f"\nWHERE {where}\nGROUP BY" in insert
        assert "tenant = {tenant:String}" in where
    conversions = [s for s in sql if "visitor_conversions" in s.split("\n")[0]]
    for statement in conversions:  # the experiment's visitors, from the raw impressions
        assert "visitor_id IN (SELECT visitor_id FROM impressions WHERE" in statement


def test_wider_scopes() -> None:
    assert all(
        "experiment_id = {experiment" not in s for s in rebuild_statements(Scope(tenant="t"))
    )
    assert rebuild_statements(Scope())[0] == "DELETE FROM visitor_exposures WHERE 1"
    with pytest.raises(ValueError, match="needs its tenant"):
        Scope(experiment="e")


def test_the_check_compares_both_ways() -> None:
    sql = check_statements(EXPERIMENT)
    assert set(sql) == {"results_exposures", "results_visitor_conversions", "results_sessions"}
    assert sql["results_exposures"].count("EXCEPT ALL") == 2
    assert sql["results_sessions"].count("EXCEPT DISTINCT") == 2
    assert "* EXCEPT occurred_at FROM results_sessions" in sql["results_sessions"]


class _Down:
    def command(self, *args: object, **kwargs: object) -> None:
        raise ConnectionError("ClickHouse away")


def test_a_failed_rebuild_after_a_supersede_names_the_commands_to_run() -> None:
    touched = {Scope(tenant="t", experiment="b"), Scope(tenant="t", experiment="a")}
    with pytest.raises(RebuildFailed) as failed:
        rebuild_touched(cast(Client, _Down()), touched)
    message = str(failed.value)
    assert "ClickHouse away" in message
    assert message.endswith(
        "hitstream aggregates rebuild --tenant t --experiment a; "
        "hitstream aggregates rebuild --tenant t --experiment b"
    )
