"""Topic creation and the start-up check against the real Kafka (one broker: replication 1)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

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
T = TypeVar("T")


def _settings(infra: Infra, **overrides: object) -> Settings:
    return infra.settings(topic_prefix=f"k{uuid.uuid4().hex[:10]}.", partitions=4, **overrides)


async def _admin(settings: Settings, act: Callable[[AIOKafkaAdminClient], Awaitable[T]]) -> T:
    """Run `act` with an admin client of the settings' Kafka, closed afterwards."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        return await act(admin)
    finally:
        await admin.close()


async def _configs(settings: Settings, name: str) -> dict[str, str]:
    resource = ConfigResource(ConfigResourceType.TOPIC, settings.topic(name))
    [response] = await _admin(settings, lambda admin: admin.describe_configs([resource]))
    [(_, _, _, _, entries)] = response.resources
    return {entry[0]: entry[1] for entry in entries}


def _grow_hits_raw(settings: Settings, partitions: int = 6) -> list[str]:
    """Give `hits.raw` more partitions; return the check's lines once the brokers' metadata
    shows them (shortly after)."""
    grow = {settings.topic("hits.raw"): NewPartitions(partitions)}
    asyncio.run(_admin(settings, lambda admin: admin.create_partitions(grow)))
    deadline = time.monotonic() + 30
    while not (lines := asyncio.run(check_topics(settings))) and time.monotonic() < deadline:
        time.sleep(0.2)
    return lines


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
    with caplog.at_level("WARNING", logger="deploy.topics"):
        lines = _grow_hits_raw(settings)
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
    raw = NewTopic(settings.topic("hits.raw"), 4, 1)
    asyncio.run(_admin(settings, lambda admin: admin.create_topics([raw])))
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
    assert _grow_hits_raw(settings)
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
