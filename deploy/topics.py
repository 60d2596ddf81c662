"""Create the hits topics with the partition counts and configs of `schemas.topics` (idempotent)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from deploy.kafka_security import client_options
from schemas.settings import Settings, load_settings
from schemas.topics import TOPICS

METADATA_WAIT_S = 30.0


class TopicMismatchError(RuntimeError):
    """An existing topic has another partition count than the settings ask for."""


async def ensure_topics(settings: Settings, replication_factor: int = 1) -> dict[str, int]:
    """Create every hits topic that is missing; return topic -> partitions as found."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap,
        request_timeout_ms=30000,
        **client_options(settings),
    )
    await admin.start()
    try:
        wanted = {settings.topic(spec.name): spec for spec in TOPICS}
        existing = set(await admin.list_topics())
        new = [
            NewTopic(name, settings.partitions, replication_factor, topic_configs=spec.config)
            for name, spec in wanted.items()
            if name not in existing
        ]
        if new:
            with contextlib.suppress(TopicAlreadyExistsError):  # concurrently: checked below
                await admin.create_topics(new, timeout_ms=30000)
        found = await _partition_counts(admin, list(wanted))
    finally:
        await admin.close()
    wrong = {
        name: n
        for name, n in found.items()
        if wanted[name].co_partitioned and n != settings.partitions
    }
    if wrong:
        raise TopicMismatchError(
            f"topics with a partition count other than {settings.partitions}: {wrong}"
        )
    return found


async def _partition_counts(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, int]:
    """Partition counts, waiting out the moment after creation when metadata still shows none."""
    deadline = asyncio.get_running_loop().time() + METADATA_WAIT_S
    while True:
        found = {d["topic"]: len(d["partitions"]) for d in await admin.describe_topics(names)}
        if all(found.get(n) for n in names) or asyncio.get_running_loop().time() > deadline:
            return found
        await asyncio.sleep(0.2)


def main() -> None:
    argparse.ArgumentParser(prog="python -m deploy.topics", description=__doc__).parse_args()
    for name, partitions in sorted(asyncio.run(ensure_topics(load_settings())).items()):
        print(f"{name}: {partitions} partitions")


if __name__ == "__main__":
    main()
