"""The worker's wiring (`pipeline.app`) without Kafka: what a rebalance resets.

A revoke must reset every agent's gap guard, or a partition that comes back at a higher offset
(another worker read it meanwhile) looks like a hole and the worker exits. The alarm's guard once
had a revoke handler registered after a `return`, so it never ran.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from pipeline import gaps
from schemas.settings import Settings


async def test_a_revoke_resets_every_gap_guard(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    watches: list[gaps.OffsetWatch] = []
    original = gaps.OffsetWatch.__init__

    def tracked(self: gaps.OffsetWatch, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        watches.append(self)

    monkeypatch.setattr(gaps.OffsetWatch, "__init__", tracked)
    monkeypatch.setattr("pipeline.monitor.install", lambda app: None)  # metrics register once
    from pipeline import app as worker_app

    settings = replace(Settings(), data_dir=str(tmp_path / "worker"))
    app = worker_app.create_app(settings)
    assert watches
    for watch in watches:  # each guard has seen its partitions up to some offset
        for topic in (settings.topic("hits.raw"), settings.topic("hits.exposures")):
            assert watch.check(topic, 0, 10, None) is None
    await app.on_partitions_revoked.send(set())
    for watch in watches:  # back at a higher offset after the rebalance: no hole
        for topic in (settings.topic("hits.raw"), settings.topic("hits.exposures")):
            assert watch.check(topic, 0, 50, None) is None


def test_changelog_topics_take_the_replication_factor_of_the_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Faust creates the tables' changelog topics itself: with the hits topics' replication
    factor, not 1 (a changelog on one broker loses the tables with it)."""
    from pipeline import app as worker_app

    monkeypatch.setattr("pipeline.monitor.install", lambda app: None)  # metrics register once
    settings = replace(
        Settings(),
        data_dir=str(tmp_path / "worker"),
        kafka_replication_factor=3,
        kafka_min_insync_replicas=2,
    )
    app = worker_app.create_app(settings)
    assert app.conf.topic_replication_factor == 3
    assert app.tables
    for table in app.tables.values():  # no replicas of its own: Faust declares it with the app's
        assert table.changelog_topic.replicas is None
