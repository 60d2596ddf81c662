"""A crashing agent ends the real worker, and the worker's changelog topics exist before Faust.

The crash is Faust's own `PartitionsMismatch`, the one seen at start in a benchmark: here the
alarm table's changelog topic is made with 1 partition where `hits.exposures` has 4, so the
alarm agent raises at its first table write, every time. Before, Faust restarted the agent
inside the worker after acking the record, and the worker ran on without its alarm.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from pipeline.changelogs import create_changelogs
from pipeline.crash import AGENT_CRASH_EXIT_CODE, CrashBudget
from pipeline.exposures import Exposure, records
from schemas.settings import Settings
from schemas.topics import EXPOSURES
from tests.integration.conftest import Worker

pytestmark = pytest.mark.integration

CRASH_DEADLINE_S = 240.0  # three worker starts on a loaded machine


async def create_topic(settings: Settings, name: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        configs = {"cleanup.policy": "compact"}
        await admin.create_topics([NewTopic(name, partitions, 1, topic_configs=configs)])
    finally:
        await admin.close()


async def describe(settings: Settings, names: list[str]) -> dict[str, tuple[int, str]]:
    """topic -> (partitions, cleanup.policy)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        found = {d["topic"]: len(d["partitions"]) for d in await admin.describe_topics(names)}
        policies = {}
        for name in names:
            resource = ConfigResource(ConfigResourceType.TOPIC, name)
            [response] = await admin.describe_configs([resource])
            [(_, _, _, _, entries)] = response.resources
            policies[name] = {entry[0]: entry[1] for entry in entries}["cleanup.policy"]
    finally:
        await admin.close()
    return {name: (found[name], policies[name]) for name in names}


async def send_exposure(settings: Settings) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    try:
        for key, value in records([Exposure("7001", "9001", "1", "visitor-1", 1_700_000_000_000)]):
            await producer.send_and_wait(settings.topic(EXPOSURES), value, key=key)
    finally:
        await producer.stop()


def test_a_crashing_agent_ends_the_worker_which_its_supervisor_restarts_then_gives_up(
    hits_settings: Settings, tmp_path: Path
) -> None:
    settings = hits_settings
    asyncio.run(create_topic(settings, f"{settings.app_id}-srm-changelog", 1))
    asyncio.run(send_exposure(settings))
    worker = Worker(settings, tmp_path / "worker.log").start()
    try:
        assert worker.process is not None
        deadline = time.monotonic() + CRASH_DEADLINE_S
        while worker.process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
        log = worker.log_text()
        assert worker.process.poll() == AGENT_CRASH_EXIT_CODE, log[-3000:]
    finally:
        worker.stop()
    crash = "agent pipeline.alarm.srm_check crashed (PartitionsMismatch: "
    starts = CrashBudget().restarts + 1  # each start read the record again: it was not committed
    assert log.count(crash) == starts, log[-3000:]
    assert log.count("starting the worker again") == starts - 1
    assert "an agent crashed again: the worker exits with code 70" in log
    assert "changelog topic check: " in log  # the mismatch was told before Faust started
    # the bulk restore asked for no offsets of the changelog partitions that do not exist (it
    # once waited 40 s for them and died at every start)
    assert "KafkaTimeoutError" not in log, log[-3000:]


def test_the_changelog_topics_exist_with_the_tables_partitions_before_faust_starts(
    hits_settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr("pipeline.monitor.install", lambda app: None)  # metrics register once
    from pipeline.app import create_app

    settings = hits_settings
    app = create_app(settings)
    names = [table.changelog_topic.get_topic_name() for table in app.tables.values()]
    assert len(names) == 4
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="pipeline.changelogs"):
        create_changelogs(settings, app.tables.values())
    assert not [r for r in caplog.records if r.name == "pipeline.changelogs"]
    assert asyncio.run(describe(settings, names)) == {
        name: (settings.partitions, "compact") for name in names
    }
    create_changelogs(settings, app.tables.values())  # again: nothing to create, no problem
    assert not [r for r in caplog.records if r.name == "pipeline.changelogs"]
