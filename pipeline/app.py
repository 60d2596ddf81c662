"""The Faust app: three short agents wiring the pure stages to the hits topics.

    hits.raw --validate--> hits.events --dedup+derive--> hits.rows --sink--> ClickHouse
        \\-- rejects --> hits.dlq ---------------------------------sink--> dead_letters

Every agent runs with concurrency 1 (Faust #606) and forwards a raw partition's records into the
same partition of the next topic, which `pipeline.progress` relies on. Expected failures become
dead letters; anything else is a bug and stops the worker loudly instead of acking silently.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import replace
from typing import Any

import faust
from faust.sensors.prometheus import setup_prometheus_sensors

from deploy.clickhouse_client import connect
from pipeline import alarm, hitids, identity, metrics, retries, rows, sessions
from pipeline import octeth as octeth_rules
from pipeline.definitions import Definitions, judge
from pipeline.derive import derive
from pipeline.expiry import Expiry, Watermarks, sweep
from pipeline.gaps import GAP_EXIT_CODE, OffsetWatch
from pipeline.idle import IdleWatch, limit_for
from pipeline.kafka_auth import broker_credentials
from pipeline.registry import Registry
from pipeline.sink import ClickHouseSink
from pipeline.validate import validate
from schemas import deadletter, monetate, replay
from schemas import event as event_codec
from schemas.deadletter import DeadLetter
from schemas.event import Event
from schemas.formats import ParseContext
from schemas.settings import Settings
from schemas.topics import DLQ, EVENTS, RAW, ROWS, TRIGGERS

log = logging.getLogger(__name__)


class QuietWorker(faust.Worker):
    """Faust's worker without its terminal spinner.

    At log levels WARN and above the spinner sets the root logger to DEBUG so that every record
    turns it, which makes each of aiokafka's per-message `log.debug` calls build a LogRecord:
    7 % of the worker's CPU in the pipeline benchmark's profile.
    """

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
        topic_replication_factor=1,
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
    setup_prometheus_sensors(app)

    def topic(name: str) -> Any:
        return app.topic(
            settings.topic(name), partitions=settings.partitions, key_type=bytes, value_type=bytes
        )

    def table(name: str) -> Any:
        """A RocksDB-backed table co-partitioned with the hits topics (changelog: Faust's)."""
        return app.Table(name, partitions=settings.partitions, key_type=bytes, value_type=bytes)

    raw, events, rows_topic, dlq = topic(RAW), topic(EVENTS), topic(ROWS), topic(DLQ)
    triggers = app.topic(settings.topic(TRIGGERS), key_type=bytes, value_type=bytes)
    # Octeth: first conversion per (list, conversion id), see pipeline/octeth.py.
    first_conversions = table("octeth_conversions")
    identity_secret = identity.secret_bytes(settings.identity_secret)
    # Hit-id dedup (pipeline/hitids.py): the first copy's offset per hit id, bounded by event time.
    hit_ids = table("hit_ids")
    first_seen = table("retries")
    # Monetate's first-in-session rule (pipeline/sessions.py), co-partitioned like `retries`.
    # `retries` and `sessions` are bounded by event time (pipeline/expiry.py); the Octeth table
    # keeps every (list, conversion id) because its first conversion counts forever.
    first_in_session = table("sessions")
    definitions = Definitions(lambda: connect(settings))
    registry = Registry(
        ParseContext(late_horizon_ms=settings.late_horizon_s * 1000), lambda: connect(settings)
    )
    window_ms = settings.retry_window_s * 1000
    grace_ms = settings.state_grace_s * 1000
    bounded = (
        (first_seen, Expiry("retries", window_ms, grace_ms, window_ms, retries.received_at)),
        (
            first_in_session,
            Expiry(
                "sessions",
                sessions.SESSION_HORIZON_MS,
                grace_ms,
                sessions.SESSION_HORIZON_MS // 4,
                sessions.received_at,
            ),
        ),
    )
    watermarks = Watermarks()
    raw_watermarks = Watermarks()
    hit_expiry = Expiry(
        "hit_ids", hitids.HORIZON_MS, grace_ms, max(grace_ms // 4, 1), hitids.received_at
    )
    sink = ClickHouseSink(
        lambda: connect(settings), settings.sink_retry_max_s, settings.unsafe_sink_without_dedup
    )
    watch = OffsetWatch()

    def in_order(record: Any, offsets: OffsetWatch = watch) -> None:
        """Stop the worker at once when Faust skipped messages (see `pipeline.gaps`)."""
        message = record.message
        committed = getattr(app.consumer, "_committed_offset", {}).get(message.tp)
        hole = offsets.check(message.topic, message.partition, message.offset, committed)
        if hole:
            log.critical(
                "Faust skipped messages (%s): exiting to resume from the committed offset", hole
            )
            logging.shutdown()
            os._exit(GAP_EXIT_CODE)

    async def dead_letter(letter: DeadLetter) -> None:
        metrics.DEAD_LETTERS.labels(letter.stage, letter.reason).inc()
        log.debug(
            "hit %s dead-lettered at %s: %s",
            letter.hit_id,
            letter.stage,
            letter.reason,
            extra={
                "hit_id": letter.hit_id,
                "topic": settings.topic(RAW),
                "partition": letter.lineage.partition,
                "offset": letter.lineage.offset,
            },
        )
        await dlq.send(
            key=letter.hit_id.encode(),
            value=deadletter.encode(letter),
            partition=letter.lineage.partition,
        )

    async def first_copy_seen(result: Any, message: Any) -> bool:
        """Record this message's hit id; True when an earlier copy of the hit was processed."""
        hit_id, received_at_ms = hitids.identity_of(result)
        if not hit_id:
            return False
        watermark = raw_watermarks.advance(message.partition, received_at_ms)
        if hit_expiry.due(message.partition, watermark):
            await sweep(hit_ids, hit_expiry, message.partition, watermark)
        key = hit_id.encode()
        duplicate, stored = hitids.first_copy(
            hitids.decode(hit_ids.get(key)), message.offset, received_at_ms
        )
        if stored is not None:
            hit_ids[key] = hitids.encode(stored)
        if duplicate:
            metrics.DUPLICATE_HITS.inc()
            log.info(
                "hit %s at %s[%s]@%s is a copy of an earlier one: dropped",
                hit_id,
                message.topic,
                message.partition,
                message.offset,
                extra={
                    "hit_id": hit_id,
                    "topic": message.topic,
                    "partition": message.partition,
                    "offset": message.offset,
                },
            )
        return duplicate

    @app.agent(raw, concurrency=1)
    async def validate_raw(stream: faust.StreamT[bytes]) -> None:
        async for record in stream.events():
            in_order(record)
            message = record.message
            result = validate(
                record.value,
                message.partition,
                message.offset,
                registry.context,
                identity_secret,
            )
            # A deliberate copy (hitstream replay / dlq redrive, schemas/replay.py) is parsed
            # again; its rows replace the original's. Only accidental copies are dropped.
            copy = replay.replay_of(message.headers)
            if copy is None and await first_copy_seen(result, message):
                continue
            for letter in result.dead_letters:
                await dead_letter(letter)
            for item in result.events:
                metrics.EVENTS.labels(item.source).inc()
                await events.send(
                    key=item.key(), value=event_codec.encode(item), partition=message.partition
                )

    def session_count(item: Event) -> tuple[Event, bool, bool]:
        """(the event with its counting flags, first_in_session, counted) for Monetate events.

        Decided on the event's id and receive time only (never the wall clock): a replay gives
        the same answer. Other sources: not first in any session, always counted.
        """
        if item.source != monetate.SOURCE:
            return item, False, True
        counted, flags = judge(definitions.get(item.tenant, item.name), item)
        if flags:
            item = replace(item, flags=tuple(sorted({*item.flags, *flags})))
        key = sessions.table_key(item.tenant, item.session_id, item.name)
        if key is None:
            return item, False, counted
        first, new_value = sessions.first_in_session(
            sessions.decode(first_in_session.get(key)),
            item.event_id,
            item.received_at_ms,
            sessions.SESSION_HORIZON_MS,
        )
        if new_value is not None:
            first_in_session[key] = sessions.encode(new_value)
        return item, first, counted

    expose = alarm.install(app, settings, in_order)  # the live sample-ratio alarm's input

    @app.agent(events, concurrency=1)
    async def dedup_and_derive(stream: faust.StreamT[bytes]) -> None:
        async for record in stream.events():
            in_order(record)
            item = event_codec.decode(record.value)
            duplicate_of = None
            if item.fingerprint:
                key = f"{item.tenant}|{item.fingerprint}".encode()
                duplicate_of, new_value = retries.retry_of(
                    retries.decode(first_seen.get(key)),
                    item.event_id,
                    item.received_at_ms,
                    window_ms,
                )
                if new_value is not None:
                    first_seen[key] = retries.encode(new_value)
                if duplicate_of is not None:
                    metrics.RETRY_DUPLICATES.inc()
            if not definitions.loaded:
                await definitions.refresh()  # first use: don't judge against no definitions
            item, first, counted = session_count(item)
            repeat = False
            conversion_key = octeth_rules.conversion_key(item)
            if conversion_key is not None:
                repeat, stored = octeth_rules.first_conversion(
                    first_conversions.get(conversion_key), item.event_id
                )
                if stored is not None:
                    first_conversions[conversion_key] = stored
            watermark = watermarks.advance(record.message.partition, item.received_at_ms)
            for table, expiry in bounded:
                if expiry.due(record.message.partition, watermark):
                    await sweep(table, expiry, record.message.partition, watermark)
            bundle = derive(
                item,
                duplicate_of,
                first_in_session=first,
                counted=counted,
                conversion_duplicate=repeat,
            )
            trigger = octeth_rules.trigger(item)
            if trigger is not None:
                await triggers.send(key=record.message.key, value=trigger)
            await rows_topic.send(
                key=record.message.key,
                value=rows.encode(bundle),
                partition=record.message.partition,
            )
            await expose(bundle)

    @app.agent(
        app.topic(settings.topic(ROWS), settings.topic(DLQ), key_type=bytes, value_type=bytes),
        concurrency=1,
    )
    async def sink_rows(stream: faust.StreamT[bytes]) -> None:
        dlq_name = settings.topic(DLQ)
        async for batch in stream.take_events(  # type: ignore[attr-defined]
            settings.sink_batch_rows, within=settings.sink_batch_seconds
        ):
            for record in batch:
                in_order(record)
            await sink.write(
                [_bundle(record.message.topic == dlq_name, record.value) for record in batch]
            )

    @app.task
    async def load_registry() -> None:
        await registry.refresh()
        await definitions.refresh()

    @app.timer(interval=settings.registry_refresh_s)
    async def refresh_registry() -> None:
        await registry.refresh()
        await definitions.refresh()

    idle = IdleWatch(limit_for(session))

    @app.timer(interval=5.0)
    async def rejoin_when_idle() -> None:
        """Exit (the supervisor restarts us) after holding no partition too long (pipeline/idle)."""
        assigned = len(app.consumer.assignment())
        if idle.exceeded(assigned, time.monotonic()):
            log.critical(
                "no partition assigned for %.0f s: exiting to join the group again "
                "(more workers than partitions?)",
                idle.limit_s,
            )
            logging.shutdown()
            os._exit(GAP_EXIT_CODE)

    @app.on_partitions_revoked.connect
    async def on_revoked(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        sink.progress.forget()
        watch.reset()
        watermarks.forget()
        raw_watermarks.forget()
        hit_expiry.forget()
        for _, expiry in bounded:
            expiry.forget()

    return app


def _bundle(from_dlq: bool, value: bytes) -> rows.RowBundle:
    """A `hits.rows` bundle, or a `hits.dlq` dead letter turned into one (both feed the sink)."""
    return rows.dead_letter_bundle(deadletter.decode(value)) if from_dlq else rows.decode(value)
