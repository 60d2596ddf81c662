"""The local Kafka broker's start: a broker that is not ready in time is stopped, not leaked."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.local.kafka_local import KafkaBroker

pytestmark = pytest.mark.integration


def test_a_broker_not_ready_in_time_is_stopped(tmp_path: Path) -> None:
    broker = KafkaBroker(tmp_path / "broker")
    with pytest.raises(TimeoutError):
        broker.start(timeout=0.01)  # no JVM opens its port in 10 ms
    assert broker.process is not None and broker.process.poll() is not None
