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


def test_the_changelog_topics_are_created_before_faust_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Left to Faust, a changelog topic is created a moment before its consumer reads the
    metadata, which may not show it yet: the first table write then raised PartitionsMismatch
    (pipeline/changelogs.py). The worker creates them first, then restores, then starts Faust."""
    from pipeline import worker

    calls: list[str] = []

    class App:
        def __init__(self) -> None:
            self.tables = {"srm": "the srm table"}
            self.conf = type("Conf", (), {})()

        def main(self) -> None:
            calls.append("faust")

    monkeypatch.setattr("pipeline.app.create_app", lambda settings: App())
    monkeypatch.setattr(
        "pipeline.changelogs.create_changelogs",
        lambda settings, tables: calls.append(f"changelogs {list(tables)}"),
    )
    monkeypatch.setattr(
        "pipeline.restore.restore_missing", lambda settings, tables: calls.append("restore")
    )
    monkeypatch.setattr(worker, "settings_or_exit", Settings)
    monkeypatch.setattr("pathlib.Path.mkdir", lambda *args, **kwargs: None)
    monkeypatch.setattr("sys.argv", ["worker"])
    worker.run_worker()
    assert calls == ["changelogs ['the srm table']", "restore", "faust"]


def test_the_changelog_topics_are_declared_as_faust_declares_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline import app as worker_app
    from pipeline.changelogs import changelog_topics

    monkeypatch.setattr("pipeline.monitor.install", lambda app: None)  # metrics register once
    settings = replace(Settings(), data_dir=str(tmp_path / "worker"), app_id="shop", partitions=12)
    app = worker_app.create_app(settings)
    topics = changelog_topics(app.tables.values(), replication_factor=3)
    assert {t.name for t in topics} == {
        "shop-seen-changelog",
        "shop-sessions-changelog",
        "shop-octeth_conversions-changelog",
        "shop-srm-changelog",
    }
    for topic in topics:  # compacted, a partition per raw partition, the settings' replicas
        assert (topic.num_partitions, topic.replication_factor) == (12, 3)
        assert topic.topic_configs == {"cleanup.policy": "compact"}
