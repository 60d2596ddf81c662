"""The gateway's Prometheus metrics; labels are bounded (protocol, outcome, topic)."""

import functools

from prometheus_client import Counter, Gauge, Histogram

HITS = Counter("hitstream_gateway_hits_total", "Requests received", ["protocol", "outcome"])
PUBLISH_FAILURES = Counter(
    "hitstream_gateway_publish_failures_total",
    "Publishes not acknowledged within the deadline",
    ["topic"],
)
LATENCY = Histogram(
    "hitstream_gateway_request_seconds",
    "Time to answer",
    ["protocol"],
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
SPOOL_DEPTH = Gauge("hitstream_gateway_spool_records", "Hits waiting in the local spool")
SPOOL_DRAINED = Counter("hitstream_gateway_spool_drained_total", "Spooled hits sent to Kafka")
SPOOL_DROPS = Counter(
    "hitstream_gateway_spool_drops_total", "Hits refused because the spool was full (never silent)"
)


@functools.cache
def hits(protocol: str, outcome: str) -> Counter:
    """The `HITS` child of these labels, looked up once (`labels()` takes a lock each call)."""
    return HITS.labels(protocol, outcome)


@functools.cache
def latency(protocol: str) -> Histogram:
    return LATENCY.labels(protocol)
