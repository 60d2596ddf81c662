"""The live sample-ratio alarm: an agent beside the hot path (pipeline/srm.py has the test).

    dedup+derive --expose--> hits.exposures (keyed tenant|experiment) --srm_check--> hits.alerts

`expose`, awaited by the dedup agent with each bundle, copies every impression (retries already
dropped by dedup) onto `hits.exposures`, re-keyed by tenant|experiment so that all exposures of
one experiment meet in one partition. `srm_check` keeps, in the RocksDB table `srm` of that
partition, the variation of each visitor's first exposure (`v|tenant|experiment|visitor`) and the
experiment's counts (`c|tenant|experiment`, with the offset of the last exposure counted), tests
after every first exposure, and sends one alert record when the experiment enters the alarm
state (latched: no record on clearing; a changed split in the registry restarts the counts and
clears the gauge).

Exact under redelivery (`srm.count`): the counts key is written before the visitor key, both in
the same changelog partition, so a replayed exposure at or below the stored offset was counted
already (only its visitor key may be missing, and is then written); `expose` may send an
impression twice, and the visitor key makes the second one no first exposure. The alert is sent
right after the table writes: a crash in between can lose it (the state stays latched, and the
gauge shows it again from the experiment's next first exposure).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import faust
import orjson
from clickhouse_connect.driver.client import Client

from deploy.clickhouse_client import connect
from pipeline import metrics, rows, srm
from pipeline.gaps import OffsetWatch
from schemas.settings import Settings
from schemas.topics import ALERTS, EXPOSURES

log = logging.getLogger(__name__)

SPLITS_SQL = """SELECT tenant, experiment_id, groupArray(variation_id), groupArray(w)
FROM (SELECT tenant, experiment_id, variation_id, argMax(weight, updated_at) AS w,
             argMax(deleted, updated_at) AS gone
      FROM experiments GROUP BY tenant, experiment_id, variation_id)
WHERE gone = 0 GROUP BY tenant, experiment_id"""

_IMPRESSION = {name: i for i, name in enumerate(rows.COLUMNS["impressions"])}


class Splits:
    """(tenant, experiment) -> variation -> configured weight, refreshed from ClickHouse."""

    def __init__(self, connect: Callable[[], Client]) -> None:
        self.weights: dict[tuple[str, str], dict[str, float]] = {}
        self._connect = connect

    def _read(self) -> dict[tuple[str, str], dict[str, float]]:
        client = self._connect()
        try:
            return {
                (str(t), str(e)): {str(v): float(w) for v, w in zip(vs, ws, strict=True)}
                for t, e, vs, ws in client.query(SPLITS_SQL).result_rows
            }
        finally:
            client.close()

    async def refresh(self) -> None:
        try:
            weights = await asyncio.to_thread(self._read)
        except Exception as exc:  # a ClickHouse outage keeps the last splits
            log.warning("experiment splits not refreshed: %s", exc)
            return
        if weights != self.weights:
            self.weights = weights
            log.info("experiment splits: %d experiments", len(weights))


def exposures(bundle: rows.RowBundle) -> list[tuple[bytes, bytes]]:
    """(key, value) records for `hits.exposures`: one per impression row of the bundle."""
    out = []
    for row in bundle.tables.get("impressions", []):
        tenant, experiment = row[_IMPRESSION["tenant"]], row[_IMPRESSION["experiment_id"]]
        value = {
            "t": tenant,
            "e": experiment,
            "v": row[_IMPRESSION["variation_id"]],
            "u": row[_IMPRESSION["visitor_id"]],
            "at": row[_IMPRESSION["received_at"]],
        }
        out.append((f"{tenant}|{experiment}".encode(), orjson.dumps(value)))
    return out


def install(
    app: faust.App, settings: Settings, in_order: Callable[[Any, OffsetWatch], None]
) -> Callable[[rows.RowBundle], Awaitable[None]]:
    """Add the alarm's agent, table and registry refresh to the worker's app; return `expose`,
    which the dedup agent awaits with each bundle it writes (one consumer of `hits.rows` fewer
    than a separate agent: the pipeline benchmark's worker does a Faust hop less per hit)."""
    watch = OffsetWatch()

    def topic(name: str, partitions: int | None = settings.partitions) -> Any:
        return app.topic(
            settings.topic(name), partitions=partitions, key_type=bytes, value_type=bytes
        )

    exposures_topic, alerts = topic(EXPOSURES), topic(ALERTS, None)
    table = app.Table(
        "srm", partitions=settings.partitions, key_type=bytes, value_type=bytes,
        changelog_topic=None,
    )  # fmt: skip
    splits = Splits(lambda: connect(settings))
    alpha, min_deviation = settings.srm_alpha, settings.srm_min_deviation

    async def expose(bundle: rows.RowBundle) -> None:
        for key, value in exposures(bundle):
            await exposures_topic.send(key=key, value=value)

    @app.agent(exposures_topic, concurrency=1)
    async def srm_check(stream: faust.StreamT[bytes]) -> None:
        async for record in stream.events():
            in_order(record, watch)
            item = orjson.loads(record.value)
            tenant, experiment, variation = str(item["t"]), str(item["e"]), str(item["v"])
            step = srm.count(
                table,
                tenant,
                experiment,
                str(item["u"]),
                variation,
                record.message.offset,
                splits.weights.get((tenant, experiment)),
                alpha=alpha,
                min_deviation=min_deviation,
            )
            if step is None:
                continue
            if step.raised and step.verdict is not None:
                alert = srm.alert(
                    tenant, experiment, step.state, step.verdict,
                    alpha=alpha, min_deviation=min_deviation, at_ms=int(item["at"]),
                )  # fmt: skip
                log.warning("sample-ratio mismatch: %s", alert)
                metrics.SRM_ALERTS.labels(tenant, experiment).inc()
                await alerts.send(key=f"{tenant}|{experiment}".encode(), value=orjson.dumps(alert))
            metrics.SRM_FIRST_EXPOSURES.labels(tenant, experiment).inc()
            metrics.SRM_ALARM.labels(tenant, experiment).set(int(step.state.alarm))

    app.task(splits.refresh)  # at start, then with the registry's refresh interval
    app.timer(interval=settings.registry_refresh_s)(splits.refresh)
    return expose

    @app.on_partitions_revoked.connect
    async def on_revoked(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        watch.reset()
