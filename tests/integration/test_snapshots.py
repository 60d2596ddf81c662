"""The results snapshots (008_results_snapshots.sql) on the real engine: refreshed, they give the
live aggregates' figures; until refreshed, they keep the figures of when they were taken; a
report says which it read, and reads live when asked."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import orjson
import pytest
from clickhouse_connect.driver.client import Client

from deploy.aggregates import SNAPSHOT_REFRESHES, refresh_snapshots, snapshot_taken
from deploy.migrate import migrate
from results.query import AGGREGATES, SNAPSHOTS, Filters, read, read_slices, reading
from schemas.settings import Settings
from tests.integration.conftest import Hitstream
from tests.integration.test_results import DAY2, EXPERIMENT, TENANT, load, ms, uid

pytestmark = pytest.mark.integration


@pytest.fixture
def loaded(clickhouse: Client) -> Client:
    load(clickhouse)  # ends with a refresh
    return clickhouse


def _new_visitor(client: Client) -> None:
    client.insert(
        "impressions",
        [[TENANT, EXPERIMENT, "2", "v99", uid(), uid(), ms(DAY2, 11), ms(DAY2, 11)]],
        column_names=["tenant", "experiment_id", "variation_id", "visitor_id", "impression_id",
                      "event_id", "occurred_at", "received_at"],
    )  # fmt: skip


def test_a_refreshed_snapshot_has_the_live_figures(loaded: Client) -> None:
    where = reading(loaded, live=False)
    assert where.source == SNAPSHOTS and where.taken_at is not None
    assert dt.datetime.now(dt.UTC) - where.taken_at < dt.timedelta(minutes=1)
    for filters in (Filters(), Filters(include_bots=True, include_multi=True),
                    Filters.parse_slices(["device_type=mobile"])):  # fmt: skip
        assert read(loaded, TENANT, EXPERIMENT, filters, SNAPSHOTS) == read(
            loaded, TENANT, EXPERIMENT, filters, AGGREGATES
        )
    assert read_slices(loaded, TENANT, EXPERIMENT, Filters(), "device_type", SNAPSHOTS) == (
        read_slices(loaded, TENANT, EXPERIMENT, Filters(), "device_type", AGGREGATES)
    )
    assert reading(loaded, live=True).source == AGGREGATES


def test_a_snapshot_keeps_its_moment_until_the_next_refresh(loaded: Client) -> None:
    taken = snapshot_taken(loaded)
    before = read(loaded, TENANT, EXPERIMENT, Filters(), SNAPSHOTS)
    _new_visitor(loaded)
    live = read(loaded, TENANT, EXPERIMENT, Filters(), AGGREGATES)
    assert live.visitors["2"] == before.visitors["2"] + 1
    assert read(loaded, TENANT, EXPERIMENT, Filters(), SNAPSHOTS) == before
    refresh_snapshots(loaded)
    assert read(loaded, TENANT, EXPERIMENT, Filters(), SNAPSHOTS) == live
    after = snapshot_taken(loaded)
    assert taken is not None and after is not None and after >= taken


def test_the_document_says_which_figures_it_shows(loaded: Client, hitstream: Hitstream) -> None:
    _new_visitor(loaded)  # after the snapshot: only the live figures count it
    shown = {}
    for flags in ((), ("--live",)):
        printed = hitstream("results", EXPERIMENT, "--tenant", TENANT, "--json", *flags)
        assert printed.code == 0, printed.err
        doc = orjson.loads(printed.out)
        shown[doc["source"]["name"]] = [v["visitors"] for v in doc["variations"]]
        assert doc["options"]["live"] is bool(flags)
    assert shown == {"snapshot": [3, 3], "live": [3, 4]}
    printed = hitstream("results", EXPERIMENT, "--tenant", TENANT)
    assert "figures from the results snapshot taken" in printed.out
    printed = hitstream("results", EXPERIMENT, "--tenant", TENANT, "--live")
    assert "figures from the live aggregates" in printed.out


def test_migrate_sets_the_refresh_period(clickhouse: Client, hits_settings: Settings) -> None:
    def periods() -> set[str]:
        rows = clickhouse.query(
            "SELECT create_table_query FROM system.tables WHERE database = currentDatabase() "
            "AND name IN {views:Array(String)}",
            parameters={"views": list(SNAPSHOT_REFRESHES)},
        ).result_rows
        assert len(rows) == len(SNAPSHOT_REFRESHES)
        return {str(q).split(" REFRESH ")[1].split(" TO ")[0] for (q,) in rows}

    assert periods() == {"EVERY 5 MINUTE"}  # HITS_RESULTS_SNAPSHOT_EVERY_S=300, the default
    migrate(replace(hits_settings, results_snapshot_every_s=60))
    assert periods() == {"EVERY 1 MINUTE"}
