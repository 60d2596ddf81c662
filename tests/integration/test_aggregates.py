"""The per-visitor results aggregates (007_results_aggregates.sql) on the real engine: fed by
materialized views as rows are inserted, equal to the raw views row for row, read by the report
with the same figures as the raw path, and rebuilt from the raw tables when they are not.
"""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from clickhouse_connect.driver.client import Client

from deploy import aggregates
from deploy.aggregates import Scope
from deploy.migrate import migrate
from hitstream import aggregates as command
from results.query import AGGREGATES, RAW, Filters, read, read_slices
from schemas.settings import Settings
from tests.integration.test_replay import cli
from tests.integration.test_results import EXPERIMENT, GOAL, TENANT, load

pytestmark = pytest.mark.integration

SCOPE = Scope(tenant=TENANT, experiment=EXPERIMENT)
EQUAL = {
    "results_exposures": (0, 0),
    "results_visitor_conversions": (0, 0),
    "results_sessions": (0, 0),
}
FILTERS = [
    Filters(),
    Filters(include_bots=True, include_multi=True),
    Filters(slice=(("s1", "gc"),)),
    Filters(device_type="desktop", goals=(GOAL,)),
    Filters(cap_percentile=0.5, cap_cents=2000),
]


@pytest.fixture
def loaded(clickhouse: Client) -> Client:
    load(clickhouse)
    return clickhouse


def same_report(client: Client) -> None:
    for filters in FILTERS:
        assert read(client, TENANT, EXPERIMENT, filters, AGGREGATES) == read(
            client, TENANT, EXPERIMENT, filters, RAW
        ), filters
    for by in ("device_type", "browser", "s1"):
        assert read_slices(client, TENANT, EXPERIMENT, Filters(), by, AGGREGATES) == (
            read_slices(client, TENANT, EXPERIMENT, Filters(), by, RAW)
        )


def test_aggregates_follow_inserts_and_equal_the_raw_views(loaded: Client) -> None:
    assert aggregates.check(loaded, SCOPE) == EQUAL
    assert aggregates.check(loaded, Scope()) == EQUAL
    same_report(loaded)
    # One row per visitor and experiment once merged (FINAL), though inserted in several blocks.
    rows = loaded.query(
        "SELECT count(), uniqExact(visitor_id) FROM visitor_exposures FINAL "
        "WHERE tenant = {t:String}",
        parameters={"t": TENANT},
    ).result_rows
    assert rows == [(8, 8)]


def test_an_earlier_impression_arriving_later_moves_the_first_exposure(loaded: Client) -> None:
    early = dt.datetime(2026, 2, 28, tzinfo=dt.UTC)
    loaded.insert(
        "impressions",
        [[TENANT, EXPERIMENT, "2", "v01", str(uuid.uuid4()), str(uuid.uuid4()), early, early]],
        column_names=["tenant", "experiment_id", "variation_id", "visitor_id", "impression_id",
                      "event_id", "occurred_at", "received_at"],
    )  # fmt: skip
    assert aggregates.check(loaded, SCOPE) == EQUAL
    agg = read(loaded, TENANT, EXPERIMENT, Filters(), AGGREGATES)
    assert agg.multi == 2  # v01 is in both variations now
    same_report(loaded)


def test_a_raw_delete_leaves_the_aggregates_stale_until_rebuilt(loaded: Client) -> None:
    # What replay and re-drive do to superseded rows: a lightweight DELETE of raw rows.
    loaded.command(f"DELETE FROM conversions WHERE visitor_id = 'v01' AND tenant = '{TENANT}'")
    loaded.command(f"DELETE FROM impressions WHERE visitor_id = 'v07' AND tenant = '{TENANT}'")
    loaded.command(f"DELETE FROM events WHERE visitor_id = 'v04' AND tenant = '{TENANT}'")
    stale = aggregates.check(loaded, SCOPE)
    assert stale["results_exposures"] == (0, 1)  # v07 is still in the aggregates
    assert stale["results_visitor_conversions"][1] > 0
    assert stale["results_sessions"][1] > 0
    assert read(loaded, TENANT, EXPERIMENT, Filters(), AGGREGATES) != read(
        loaded, TENANT, EXPERIMENT, Filters(), RAW
    )
    aggregates.rebuild(loaded, SCOPE)
    assert aggregates.check(loaded, SCOPE) == EQUAL
    same_report(loaded)


def test_rebuild_repairs_broken_aggregates_and_twice_changes_nothing(loaded: Client) -> None:
    loaded.command("DELETE FROM visitor_exposures WHERE visitor_id IN ('v01', 'v04')")
    loaded.command("DELETE FROM visitor_sessions WHERE visitor_id = 'v01'")
    loaded.command(  # a conversion the raw tables never had
        "INSERT INTO visitor_conversions SELECT {t:String}, 'v05', {g:String}, now64(3), now64(3),"
        " [(generateUUIDv4(), now64(3), toInt64(99))]",
        parameters={"t": TENANT, "g": GOAL},
    )
    broken = aggregates.check(loaded, SCOPE)
    assert broken["results_exposures"] == (2, 0)
    assert broken["results_visitor_conversions"][1] == 1
    assert broken["results_sessions"][0] > 0
    for _ in range(2):
        aggregates.rebuild(loaded, SCOPE)
        assert aggregates.check(loaded, SCOPE) == EQUAL
    same_report(loaded)


def test_the_command_checks_and_rebuilds_by_experiment_and_time_range(
    loaded: Client, hits_settings: Settings
) -> None:
    scope = ["--tenant", TENANT, "--experiment", EXPERIMENT]
    assert cli(hits_settings, command, "aggregates", "check", *scope)[0] == 0
    loaded.command("DELETE FROM visitor_exposures WHERE visitor_id = 'v02'")
    code, out = cli(hits_settings, command, "aggregates", "check", *scope)
    assert code == 1 and "results_exposures: DIFFERENT (1 raw rows missing, 0 extra)" in out
    since, until = "2026-03-01T00:00:00Z", "2026-03-02T00:00:00Z"
    code, out = cli(
        hits_settings, command, "aggregates", "rebuild", "--tenant", TENANT, "--from", since,
        "--to", until,
    )  # fmt: skip
    assert (code, out.splitlines()[-1]) == (0, "1 rebuilt; results snapshots refreshed"), out
    assert cli(hits_settings, command, "aggregates", "check", *scope)[0] == 0
    # Nothing of the tenant in another range: nothing to rebuild.
    code, out = cli(
        hits_settings, command, "aggregates", "rebuild", "--tenant", TENANT, "--from",
        "2030-01-01T00:00:00Z",
    )  # fmt: skip
    assert (code, out.strip()) == (0, "0 rebuilt")
    loaded.command("TRUNCATE TABLE visitor_conversions")
    assert cli(hits_settings, command, "aggregates", "check", "--all")[0] == 1
    assert cli(hits_settings, command, "aggregates", "rebuild", "--all")[0] == 0
    assert cli(hits_settings, command, "aggregates", "check", "--all")[0] == 0


def test_migrate_fills_new_aggregates_from_the_rows_already_stored(
    loaded: Client, hits_settings: Settings
) -> None:
    # A deployment from before 007: rows stored, no aggregates, 007 never applied.
    for table in ("visitor_exposures", "visitor_conversions", "visitor_sessions"):
        loaded.command(f"TRUNCATE TABLE {table}")
    loaded.command("DELETE FROM schema_migrations WHERE version = 7")
    assert aggregates.check(loaded, SCOPE)["results_exposures"] == (8, 0)
    migrate(hits_settings)
    assert aggregates.check(loaded, SCOPE) == EQUAL
