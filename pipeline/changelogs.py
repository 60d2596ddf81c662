"""Create the tables' changelog topics before Faust starts, and wait until Kafka shows them.

Left to Faust, a table's changelog topic is created as the worker starts, a moment before its
consumer joins the group. A broker that has not caught up with the new topic yet reports it
without partitions; the group leader's consumer then records 0 partitions for it, and the first
table write of an agent raises `PartitionsMismatch` (source topic 4 partitions, changelog 0).
That is the likely cause of the one such crash seen (a benchmark on a loaded machine: the alarm
agent at start; not reproduced on a quiet one). Created here, with Faust's own names and
configs, and waited for until the brokers show every partition, the topics are simply found by
Faust.

Nothing here stops a start: when Kafka does not answer, Faust creates the topics as before; a
changelog with another partition count than its table is logged as a warning (its agent then
fails at the first write, and `pipeline.crash` stops the worker).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterable
from typing import Any

from aiokafka.admin import NewTopic

from deploy.topics import METADATA_WAIT_S, ensure_changelogs
from schemas.settings import Settings

log = logging.getLogger(__name__)


def changelog_topics(tables: Iterable[Any], replication_factor: int) -> list[NewTopic]:
    """The changelog topic of each Faust table, as Faust itself would declare it."""
    found = []
    for table in tables:
        topic = table.changelog_topic
        policy = {"compact"} if topic.compacting else set()
        policy |= {"delete"} if topic.deleting else set()
        configs = {"cleanup.policy": ",".join(sorted(policy))} if policy else {}
        if topic.retention:
            configs["retention.ms"] = str(int(topic.retention * 1000))
        configs.update({key: str(value) for key, value in (topic.config or {}).items()})
        found.append(
            NewTopic(
                topic.get_topic_name(),
                topic.partitions or table.partitions,
                topic.replicas or replication_factor,
                topic_configs=configs,
            )
        )
    return found


def create_changelogs(settings: Settings, tables: Iterable[Any]) -> None:
    """Create the missing changelog topics of `tables` (before `app.main()`).

    Runs on its own thread and event loop, so Faust later starts on a fresh loop of its own."""
    wanted = changelog_topics(tables, settings.kafka_replication_factor)
    outcome: list[list[str]] = []

    def run() -> None:
        try:
            outcome.append(
                asyncio.run(
                    asyncio.wait_for(ensure_changelogs(settings, wanted), 2 * METADATA_WAIT_S)
                )
            )
        except Exception as exc:  # Kafka away or slow: Faust creates them as it starts
            log.warning("changelog topics not created before the start: %s", exc)

    thread = threading.Thread(target=run, name="create-changelogs")
    thread.start()
    thread.join()
    for problem in outcome[0] if outcome else []:
        log.warning("changelog topic check: %s", problem)
