"""Topic creation and the start-up check against the real Kafka (one broker: replication 1)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from deploy.local import services
from deploy.local.localstack import start_gateway
from deploy.startup import warn_of_topic_problems
from deploy.topics import check_topics, ensure_topics
from schemas.settings import Settings
from schemas.topics import DAY_MS, HOUR_MS, NAMES
from tests.integration.conftest import Infra, Worker

pytestmark = pytest.mark.integration


def _settings(infra: Infra, **overrides: object) -> Settings:
    return infra.settings(topic_prefix=f"k{uuid.uuid4().hex[:10]}.", partitions=4, **overrides)


async def _configs(settings: Settings, name: str) -> dict[str, str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, settings.topic(name))]
        )
        [(_, _, _, _, entries)] = response.resources
        return {entry[0]: entry[1] for entry in entries}
    finally:
        await admin.close()


def test_topics_are_created_with_the_configured_retention_and_min_insync(infra: Infra) -> None:
    settings = _settings(
        infra, kafka_retention="hits.raw=3d,hits.dlq=36h", kafka_min_insync_replicas=1
    )
    found = asyncio.run(ensure_topics(settings))
    assert found == {settings.topic(n): 4 for n in NAMES}
    raw = asyncio.run(_configs(settings, "hits.raw"))
    assert raw["retention.ms"] == str(3 * DAY_MS)
    assert raw["min.insync.replicas"] == "1"
    assert raw["compression.type"] == "producer"
    assert asyncio.run(_configs(settings, "hits.dlq"))["retention.ms"] == str(36 * HOUR_MS)
    assert asyncio.run(_configs(settings, "hits.alerts"))["retention.ms"] == str(30 * DAY_MS)
    assert asyncio.run(check_topics(settings)) == []


def test_the_check_warns_of_a_partition_count_other_than_the_settings(
    infra: Infra, caplog: pytest.LogCaptureFixture
) -> None:
    settings = _settings(infra)
    asyncio.run(ensure_topics(settings))

    async def add_partitions() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
        await admin.start()
        try:
            await admin.create_partitions({settings.topic("hits.raw"): NewPartitions(6)})
        finally:
            await admin.close()

    asyncio.run(add_partitions())
    deadline = time.monotonic() + 30  # the brokers' metadata shows new partitions shortly after
    with caplog.at_level("WARNING", logger="deploy.topics"):
        while not (lines := asyncio.run(check_topics(settings))) and time.monotonic() < deadline:
            time.sleep(0.2)
    expected = (
        f"{settings.topic('hits.raw')}: 6 partitions, HITS_PARTITIONS is 4 "
        "(co-partitioned topics must match it)"
    )
    assert lines == [expected]
    assert expected in caplog.text
    # One broker holds one replica: a production replication factor is reported, not assumed.
    three = dataclasses.replace(settings, kafka_replication_factor=3, kafka_min_insync_replicas=2)
    assert f"{settings.topic('hits.dlq')}: 1 replicas, HITS_KAFKA_REPLICATION_FACTOR is 3" in (
        asyncio.run(check_topics(three))
    )


def test_a_missing_topic_is_reported(infra: Infra) -> None:
    settings = _settings(infra)

    async def create_one() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(settings.topic("hits.raw"), 4, 1)])
        finally:
            await admin.close()

    asyncio.run(create_one())
    lines = asyncio.run(check_topics(settings))
    assert f"{settings.topic('hits.exposures')}: missing (run `hitstream topics`)" in lines
    assert not any(line.startswith(settings.topic("hits.raw")) for line in lines)


def test_the_gateway_and_the_worker_warn_at_start_of_a_partition_count_other_than_the_settings(
    hits_settings: Settings, tmp_path: Path
) -> None:
    """`python -m gateway` and `python -m pipeline.worker` check the topics when they start
    (`deploy.startup.warn_of_topic_problems`): `hits.raw` grown to 6 partitions while
    HITS_PARTITIONS says 4 is logged as a warning by each."""
    settings = hits_settings

    async def add_partitions() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
        await admin.start()
        try:
            await admin.create_partitions({settings.topic("hits.raw"): NewPartitions(6)})
        finally:
            await admin.close()

    asyncio.run(add_partitions())
    deadline = time.monotonic() + 30
    while not asyncio.run(check_topics(settings)) and time.monotonic() < deadline:
        time.sleep(0.2)
    expected = f"topic check: {settings.topic('hits.raw')}: 6 partitions, HITS_PARTITIONS is 4"
    gateway = start_gateway(settings, tmp_path / "gateway.log")
    services.stop(gateway)
    assert expected in (tmp_path / "gateway.log").read_text()
    worker = Worker(settings, tmp_path / "worker.log").start()
    try:
        deadline = time.monotonic() + 60
        while expected not in worker.log_text():
            assert time.monotonic() < deadline, worker.log_text()[-3000:]
            time.sleep(0.2)
    finally:
        worker.stop()
    assert '"level": "WARNING"' in next(
        line for line in worker.log_text().splitlines() if expected in line
    )


def test_the_start_up_check_does_not_stop_a_start_without_kafka(infra: Infra) -> None:
    from deploy.local.ports import free_port

    nowhere = _settings(infra, kafka_bootstrap=f"127.0.0.1:{free_port()}")
    began = time.monotonic()
    assert warn_of_topic_problems(nowhere, timeout_s=5) == []
    assert time.monotonic() - began < 8
