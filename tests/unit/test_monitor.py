"""The worker's lean Faust sensor keeps the metrics the alerts read and skips per-message ones."""

from __future__ import annotations

from typing import Any

import faust
import pytest
from faust.types import TP
from prometheus_client import CollectorRegistry

from pipeline import monitor


@pytest.fixture
def lean(monkeypatch: pytest.MonkeyPatch) -> tuple[monitor.LeanMonitor, CollectorRegistry]:
    registry = CollectorRegistry()
    monkeypatch.setattr(monitor, "REGISTRY", registry)
    app = faust.App("lean-test", web_enabled=False)
    monitor.install(app)
    assert isinstance(app.monitor, monitor.LeanMonitor)
    return app.monitor, registry


def _value(registry: CollectorRegistry, name: str, **labels: Any) -> float | None:
    return registry.get_sample_value(name, labels)


def test_the_lag_metrics_the_alerts_read_are_kept(
    lean: tuple[monitor.LeanMonitor, CollectorRegistry],
) -> None:
    sensor, registry = lean
    tp = TP("hits.raw", 3)
    sensor.track_tp_end_offset(tp, 120)
    sensor.on_tp_commit({tp: 100})
    labels = {"topic": "hits.raw", "partition": "3"}
    assert _value(registry, "lean_test_topic_partition_end_offset", **labels) == 120
    assert _value(registry, "lean_test_topic_partition_offset_commited", **labels) == 100


def test_per_message_hooks_cost_nothing_and_record_nothing(
    lean: tuple[monitor.LeanMonitor, CollectorRegistry],
) -> None:
    sensor, registry = lean
    tp = TP("hits.raw", 0)
    state = sensor.on_stream_event_in(tp, 5, object(), object())  # type: ignore[arg-type]
    sensor.on_stream_event_out(tp, 5, object(), object(), state)  # type: ignore[arg-type]
    sensor.on_message_in(tp, 5, object())  # type: ignore[arg-type]
    sensor.on_message_out(tp, 5, object())  # type: ignore[arg-type]
    sent = sensor.on_send_initiated(object(), "t", object(), 1, 1)  # type: ignore[arg-type]
    sensor.on_send_completed(object(), sent, object())  # type: ignore[arg-type]
    assert tp in sensor.stream_inbound_time  # Faust's stall check reads it: no false alarms
    assert _value(registry, "lean_test_messages_received_total") == 0
    assert _value(registry, "lean_test_total_events_total") == 0
    sensor.on_send_error(object(), RuntimeError("broker gone"), sent)  # type: ignore[arg-type]
    assert _value(registry, "lean_test_total_error_messages_sent_total") == 1
