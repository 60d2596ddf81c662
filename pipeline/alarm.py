"""The live sample-ratio alarm: an agent beside the hot path (pipeline/srm.py has the test).

    processing stage --flush--> hits.exposures (keyed tenant|experiment) --srm_check--> hits.alerts

Each flush of the processing stage sends one `hits.exposures` record per experiment holding that
batch's impressions of it (`pipeline.exposures`; retries derive none), keyed tenant|experiment so
that all exposures of one experiment meet in one partition. `srm_check` keeps, in the RocksDB table
`srm` of that partition, the variation of each visitor's first exposure (`v|tenant|experiment|
visitor`) and the experiment's counts (`c|tenant|experiment`, with the offset of the last record
counted), tests after each record's first exposures, and sends one alert record when the
experiment enters the alarm state (latched: no record on clearing; a changed split in the registry
restarts the counts and clears the gauge).

Exact under redelivery (`srm.count`): the counts key is written before the visitor keys, both in
the same changelog partition and in that order (a record's changes go to the changelog as one
record batch before the record is acked: `pipeline.changelog_batches`), so a replayed record at
or below the stored offset was counted already (only visitor keys may be missing, and are then
written); a batch may be sent twice, and the visitor key makes the second copy of an exposure no
first exposure. The alert is sent
right after the table writes: a crash in between can lose it (the state stays latched, and the
gauge shows it again from the experiment's next first exposure).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import faust
import orjson
from clickhouse_connect.driver.client import Client

from deploy.clickhouse_client import connect
from deploy.refreshed import Refreshed
from pipeline import exposures, metrics, srm
from pipeline.changelog_batches import SRM, ChangelogSender, Changes
from pipeline.crash import exit_on_crash
from pipeline.gaps import OffsetWatch, guard
from schemas.settings import Settings
from schemas.topics import ALERTS, EXPOSURES

log = logging.getLogger(__name__)

SPLITS_SQL = """SELECT tenant, experiment_id, groupArray(variation_id), groupArray(w)
FROM (SELECT tenant, experiment_id, variation_id, argMax(weight, updated_at) AS w,
             argMax(deleted, updated_at) AS gone
      FROM experiments GROUP BY tenant, experiment_id, variation_id)
WHERE gone = 0 GROUP BY tenant, experiment_id"""


class Splits(Refreshed[dict[tuple[str, str], dict[str, float]]]):
    """(tenant, experiment) -> variation -> configured weight, refreshed from ClickHouse."""

    name = "experiment splits"

    def __init__(self, connect: Callable[[], Client]) -> None:
        super().__init__(connect, {})

    def read(self, client: Client) -> dict[tuple[str, str], dict[str, float]]:
        return {
            (str(t), str(e)): {str(v): float(w) for v, w in zip(vs, ws, strict=True)}
            for t, e, vs, ws in client.query(SPLITS_SQL).result_rows
        }

    def describe(self, value: dict[tuple[str, str], dict[str, float]]) -> str:
        return f"{len(value)} experiments"


def install(
    app: faust.App, settings: Settings, watch: OffsetWatch, changelogs: ChangelogSender
) -> Any:
    """Add the alarm's agent and registry refresh to the worker's app; return the
    `hits.exposures` topic the processing stage sends to. `watch` is the worker's gap guard;
    `changelogs` holds the `srm` table, whose changes each record sends before it is acked."""

    def topic(name: str, partitions: int | None = settings.partitions) -> Any:
        return app.topic(
            settings.topic(name), partitions=partitions, key_type=bytes, value_type=bytes
        )

    exposures_topic, alerts = topic(EXPOSURES), topic(ALERTS, None)
    splits = Splits(lambda: connect(settings))
    alpha, min_deviation = settings.srm_alpha, settings.srm_min_deviation

    @app.agent(exposures_topic, concurrency=1)
    @exit_on_crash
    async def srm_check(stream: faust.StreamT[bytes]) -> None:
        await changelogs.check(SRM)
        async for record in stream.events():
            guard(app, watch, record)
            found = exposures.decode(record.value)
            if not found:
                continue
            tenant, experiment = found[0].tenant, found[0].experiment
            changes = Changes()
            counted = srm.count(
                changelogs.recording(SRM, record.message.partition, changes),
                tenant,
                experiment,
                [(item.visitor, item.variation) for item in found],
                record.message.offset,
                splits.value.get((tenant, experiment)),
                alpha=alpha,
                min_deviation=min_deviation,
            )
            await changelogs.send(changes)
            if counted is None:
                continue
            step, firsts = counted
            if step.raised and step.verdict is not None:
                alert = srm.alert(
                    tenant, experiment, step.state, step.verdict,
                    alpha=alpha, min_deviation=min_deviation, at_ms=found[-1].received_at_ms,
                )  # fmt: skip
                log.warning("sample-ratio mismatch: %s", alert)
                metrics.SRM_ALERTS.labels(tenant, experiment).inc()
                await alerts.send(key=f"{tenant}|{experiment}".encode(), value=orjson.dumps(alert))
            metrics.SRM_FIRST_EXPOSURES.labels(tenant, experiment).inc(firsts)
            metrics.SRM_ALARM.labels(tenant, experiment).set(int(step.state.alarm))

    app.task(splits.refresh)  # at start, then with the registry's refresh interval
    app.timer(interval=settings.registry_refresh_s)(splits.refresh)
    return exposures_topic
