"""The worker's Faust sensor: Faust's Prometheus metrics without the ones it pays for per message.

Faust's `PrometheusMonitor` runs on every message in and out, every stream event, every table
read and write and every record sent: a dozen labelled metric updates per hit, about a tenth of
the worker's CPU under load (issue 13's profile). `LeanMonitor` keeps what the alerts and the
dashboard read (committed and end offsets per partition for the consumer lag, commit latency,
rebalances, assignment and send errors) and the time of each partition's latest event (Faust's
stall check reads it), and drops the per-message metrics; throughput is in the
worker's own counters (`pipeline.metrics`: raw hits, events, rows stored).
"""

from __future__ import annotations

from time import monotonic
from typing import Any

import faust
from faust.sensors.prometheus import FaustMetrics, PrometheusMonitor
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest


class LeanMonitor(PrometheusMonitor):
    def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
        pass

    def on_message_out(self, tp: Any, offset: int, message: Any) -> None:
        pass

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> None:
        # Faust's consumer reads this to tell a stalled stream from an idle one (it logs "Stream
        # has not started processing TP" when a partition with messages has no recent event).
        self.stream_inbound_time[tp] = monotonic()

    def on_stream_event_out(
        self, tp: Any, offset: int, stream: Any, event: Any, state: Any = None
    ) -> None:
        pass

    def on_table_get(self, table: Any, key: Any) -> None:
        pass

    def on_table_set(self, table: Any, key: Any, value: Any) -> None:
        pass

    def on_table_del(self, table: Any, key: Any) -> None:
        pass

    def on_send_initiated(
        self, producer: Any, topic: str, message: Any, keysize: int, valsize: int
    ) -> None:
        return None

    def on_send_completed(self, producer: Any, state: Any, metadata: Any) -> None:
        pass

    def on_send_error(self, producer: Any, exc: BaseException, state: Any) -> None:
        self._metrics.total_error_messages_sent.inc()


def install(app: faust.App) -> None:
    """Make `LeanMonitor` the app's monitor and serve the process's metrics at /metrics."""
    prefix = app.conf.name.replace("-", "_").replace(".", "_")
    app.monitor = LeanMonitor(metrics=FaustMetrics.create(REGISTRY, prefix))

    @app.page("/metrics")
    async def metrics(self: View, request: Request) -> Response:
        return self.bytes(generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})
