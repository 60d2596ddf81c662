"""The Faust app: one processing agent over `hits.raw`, the SRM alarm's agent, tables and timers.

    hits.raw --process (validate, dedup, derive: pipeline/decide.py)--> batch --> ClickHouse
                        \\--> hits.exposures --srm_check (pipeline/alarm.py)--> hits.alerts
                        \\--> hits.triggers (Octeth), hits.dlq (dead letters' history)

Every table is co-partitioned with `hits.raw`, so one agent decides a hit with all its state in
one place. Agents run with concurrency 1 (Faust #606), and an exception out of one ends the
worker (`pipeline.crash`: its supervisor starts it again). Only wiring lives here: decisions are in
`pipeline.decide`, the batch and its acks in `pipeline.stage`.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import faust

from deploy.clickhouse_client import connect
from pipeline import alarm, identity, monitor
from pipeline.changelog_batches import SRM, ChangelogSender, changelog_producer
from pipeline.crash import exit_on_crash
from pipeline.decide import CONVERSIONS, SEEN, SESSIONS, Context
from pipeline.definitions import Definitions
from pipeline.gaps import GAP_EXIT_CODE, OffsetWatch, guard
from pipeline.idle import IdleWatch, limit_for
from pipeline.kafka_auth import broker_credentials
from pipeline.registry import Registry
from pipeline.sink import ClickHouseSink
from pipeline.stage import Outputs, Stage
from pipeline.tables import expiries, new_table
from schemas.formats import ParseContext
from schemas.settings import Settings
from schemas.topics import DLQ, RAW, TRIGGERS

log = logging.getLogger(__name__)


class QuietWorker(faust.Worker):
    """Faust's worker without its terminal spinner, which at WARN and above sets the root logger
    to DEBUG so that every aiokafka `log.debug` builds a record (7 % of the worker's CPU)."""

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        self.spinner = None


def create_app(settings: Settings) -> faust.App:
    session = settings.kafka_session_timeout_s
    app = faust.App(
        settings.app_id,
        broker=[f"kafka://{server}" for server in settings.kafka_bootstrap.split(",")],
        broker_credentials=broker_credentials(settings),
        store="rocksdb://",
        datadir=settings.data_dir,
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.kafka_replication_factor,
        producer_acks=-1,
        producer_linger_ms=settings.producer_linger_ms,
        broker_session_timeout=session,
        broker_heartbeat_interval=max(session / 4, 0.5),
        broker_rebalance_timeout=session,
        broker_commit_every=1000,
        broker_commit_interval=1.0,
        web_port=settings.worker_web_port,
        web_bind="127.0.0.1",
        web_in_thread=False,
        Worker=QuietWorker,
    )
    monitor.install(app)

    def topic(name: str, partitions: int | None = settings.partitions) -> Any:
        return app.topic(
            settings.topic(name), partitions=partitions, key_type=bytes, value_type=bytes
        )

    definitions = Definitions(lambda: connect(settings))
    registry = Registry(
        ParseContext(late_horizon_ms=settings.late_horizon_s * 1000), lambda: connect(settings)
    )
    secret = identity.secret_bytes(settings.identity_secret)
    watch = OffsetWatch()
    tables = {name: new_table(app, settings, name) for name in (SEEN, SESSIONS, CONVERSIONS, SRM)}
    changelogs = ChangelogSender(tables, lambda: changelog_producer(settings))
    stage = Stage(
        tables={name: tables[name] for name in (SEEN, SESSIONS, CONVERSIONS)},
        expiries=expiries(settings),
        context=lambda: Context(
            registry.context, secret, settings.retry_window_s * 1000, definitions.get
        ),
        sink=ClickHouseSink(
            lambda: connect(settings), settings.sink_retry_max_s, settings.unsafe_sink_without_dedup
        ),
        changelogs=changelogs,
        outputs=Outputs(
            exposures=alarm.install(app, settings, watch, changelogs),
            triggers=topic(TRIGGERS, None),
            dead_letters=topic(DLQ),
        ),
        batch_rows=settings.sink_batch_rows,
    )

    @app.agent(topic(RAW), concurrency=1)
    @exit_on_crash
    async def process(stream: faust.StreamT[bytes]) -> None:
        stage.stream = stream
        stream.enable_acks = False  # acked by `stage.flush`, after ClickHouse confirmed
        await changelogs.check(*stage.tables)
        if not definitions.loaded:
            await definitions.refresh()  # don't judge Monetate events against no definitions
        async for event in stream.events():
            guard(app, watch, event)
            await stage.handle(event)

    @app.timer(interval=settings.sink_batch_seconds)
    async def flush_partial_batch() -> None:
        await stage.flush()

    async def refresh_registry() -> None:
        await registry.refresh()
        await definitions.refresh()

    app.task(refresh_registry)  # at start, then on a timer
    app.timer(interval=settings.registry_refresh_s)(refresh_registry)

    idle = IdleWatch(limit_for(session))

    @app.timer(interval=5.0)
    async def rejoin_when_idle() -> None:
        """Exit (the supervisor restarts us) after holding no partition too long (pipeline/idle)."""
        if idle.exceeded(len(app.consumer.assignment()), time.monotonic()):
            log.critical("no partition for %.0f s: exiting to join the group again", idle.limit_s)
            logging.shutdown()
            os._exit(GAP_EXIT_CODE)

    @app.on_before_shutdown.connect
    async def stop_changelogs(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        await changelogs.stop()

    @app.on_partitions_revoked.connect
    async def on_revoked(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        watch.reset()  # every agent's partitions, the alarm's `hits.exposures` included
        await stage.forget()

    return app
