"""Create the hits topics with the partitions, replication and configs of the settings (idempotent).

`python -m deploy.topics` creates what is missing, then checks every topic; `--check` only checks
(for a process manager to run before the gateway or the worker): it prints one line per problem
(a co-partitioned topic whose partition count is not `HITS_PARTITIONS`, a missing topic, fewer
replicas than `HITS_KAFKA_REPLICATION_FACTOR`) and exits 1 when there is one.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from deploy.kafka_security import client_options
from schemas.settings import Settings, load_settings
from schemas.topics import TOPICS, topic_configs

METADATA_WAIT_S = 30.0
log = logging.getLogger(__name__)


class TopicMismatchError(RuntimeError):
    """An existing topic has another partition count than the settings ask for."""


@dataclass(frozen=True, slots=True)
class Found:
    """What the brokers report of one topic."""

    partitions: int
    replicas: int  # the fewest replicas of any of its partitions


def new_topics(settings: Settings, existing: set[str]) -> list[NewTopic]:
    """The topics to create: every hits topic not in `existing`, as the settings say."""
    configs = topic_configs(
        retention=settings.kafka_retention, min_insync_replicas=settings.kafka_min_insync_replicas
    )
    return [
        NewTopic(
            settings.topic(spec.name),
            settings.partitions,
            settings.kafka_replication_factor,
            topic_configs=configs[spec.name],
        )
        for spec in TOPICS
        if settings.topic(spec.name) not in existing
    ]


def problems(settings: Settings, found: dict[str, Found]) -> list[str]:
    """What differs from the settings in the topics `found` (full name -> what the brokers say)."""
    lines = []
    for spec in TOPICS:
        name = settings.topic(spec.name)
        topic = found.get(name)
        if topic is None or topic.partitions == 0:
            lines.append(f"{name}: missing (run `hitstream topics`)")
            continue
        if spec.co_partitioned and topic.partitions != settings.partitions:
            lines.append(
                f"{name}: {topic.partitions} partitions, HITS_PARTITIONS is {settings.partitions}"
                " (co-partitioned topics must match it)"
            )
        if topic.replicas < settings.kafka_replication_factor:
            lines.append(
                f"{name}: {topic.replicas} replicas, HITS_KAFKA_REPLICATION_FACTOR is "
                f"{settings.kafka_replication_factor}"
            )
    return lines


def _admin(settings: Settings) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap,
        request_timeout_ms=30000,
        **client_options(settings),
    )


async def ensure_topics(settings: Settings) -> dict[str, int]:
    """Create every hits topic that is missing; return topic -> partitions as found."""
    admin = _admin(settings)
    await admin.start()
    try:
        new = new_topics(settings, set(await admin.list_topics()))
        found = await _create_and_describe(
            admin, new, [settings.topic(spec.name) for spec in TOPICS]
        )
    finally:
        await admin.close()
    wrong = {
        settings.topic(spec.name): found[settings.topic(spec.name)].partitions
        for spec in TOPICS
        if spec.co_partitioned
        and found[settings.topic(spec.name)].partitions != settings.partitions
    }
    if wrong:
        raise TopicMismatchError(
            f"topics with a partition count other than {settings.partitions}: {wrong}"
        )
    return {name: topic.partitions for name, topic in found.items()}


async def ensure_changelogs(settings: Settings, wanted: list[NewTopic]) -> list[str]:
    """Create those of the worker's changelog topics `wanted` that are missing, wait until the
    brokers show every partition of each, and return each one whose partition count differs
    from the one asked for (a line per topic, for the caller to log)."""
    admin = _admin(settings)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        new = [topic for topic in wanted if topic.name not in existing]
        found = await _create_and_describe(admin, new, [topic.name for topic in wanted])
    finally:
        await admin.close()
    return [
        f"{topic.name}: {found[topic.name].partitions if topic.name in found else 0} partitions,"
        f" the table has {topic.num_partitions}"
        for topic in wanted
        if topic.name not in found or found[topic.name].partitions != topic.num_partitions
    ]


async def partition_counts(settings: Settings, names: list[str]) -> dict[str, int]:
    """topic -> its partitions, for those of `names` that exist (read once, no wait)."""
    admin = _admin(settings)
    await admin.start()
    try:
        found = await _describe(admin, names, wait_s=0)
    finally:
        await admin.close()
    return {name: topic.partitions for name, topic in found.items()}


async def _create_and_describe(
    admin: AIOKafkaAdminClient, new: list[NewTopic], names: list[str]
) -> dict[str, Found]:
    if new:
        with contextlib.suppress(TopicAlreadyExistsError):  # concurrently: the caller checks
            await admin.create_topics(new, timeout_ms=30000)
    return await _describe(admin, names)


async def check_topics(settings: Settings) -> list[str]:
    """The start-up check: each problem with the topics, logged as a warning and returned."""
    admin = _admin(settings)
    await admin.start()
    try:
        found = await _describe(admin, [settings.topic(spec.name) for spec in TOPICS], wait_s=0)
    finally:
        await admin.close()
    lines = problems(settings, found)
    for line in lines:
        log.warning("topic check: %s", line)
    return lines


async def _describe(
    admin: AIOKafkaAdminClient, names: list[str], wait_s: float = METADATA_WAIT_S
) -> dict[str, Found]:
    """Partitions and replicas, waiting out the moment after creation when metadata shows none."""
    deadline = asyncio.get_running_loop().time() + wait_s
    while True:
        found = {
            d["topic"]: Found(
                len(d["partitions"]), min((len(p["replicas"]) for p in d["partitions"]), default=0)
            )
            for d in await admin.describe_topics(names)
            if d.get("error_code", 0) == 0
        }
        complete = all(found.get(n, Found(0, 0)).partitions for n in names)
        if complete or asyncio.get_running_loop().time() >= deadline:
            return found
        await asyncio.sleep(0.2)


def run(settings: Settings, check: bool = False) -> int:
    """`python -m deploy.topics` and `hitstream topics`: create the missing topics and report
    every topic's partitions, or with `check` only report what differs (1 when something does)."""
    if check:
        lines = asyncio.run(check_topics(settings))
        print("\n".join(lines) or "topics match the settings")
        return 1 if lines else 0
    for name, partitions in sorted(asyncio.run(ensure_topics(settings)).items()):
        print(f"{name}: {partitions} partitions")
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m deploy.topics", description=__doc__)
    parser.add_argument("--check", action="store_true", help="only check the topics")
    sys.exit(run(load_settings(), parser.parse_args().check))


if __name__ == "__main__":
    main()
