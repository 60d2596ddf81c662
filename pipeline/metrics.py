"""The worker's Prometheus metrics; labels are bounded (table, stage, reason, kind)."""

from prometheus_client import Counter, Histogram

HITS_READ = Counter("hitstream_worker_raw_hits_total", "Raw hits read", ["kind"])
EVENTS = Counter("hitstream_worker_events_total", "Canonical events validated", ["source"])
DEAD_LETTERS = Counter(
    "hitstream_worker_dead_letters_total", "Dead letters written", ["stage", "reason"]
)
RETRY_DUPLICATES = Counter(
    "hitstream_worker_retry_duplicates_total", "Exact client retries stored once"
)
DUPLICATE_HITS = Counter(
    "hitstream_worker_duplicate_hits_total", "Later copies of a hit id in hits.raw, dropped"
)
EXPIRED_KEYS = Counter(
    "hitstream_worker_expired_keys_total", "Table keys deleted past their horizon", ["table"]
)
SINK_ROWS = Counter("hitstream_sink_rows_total", "Rows stored in ClickHouse", ["table"])
SINK_SKIPPED = Counter(
    "hitstream_sink_replayed_rows_total", "Bundles skipped because ClickHouse already holds them"
)
SINK_RETRIES = Counter("hitstream_sink_retries_total", "ClickHouse calls retried")
SINK_FLUSH_SECONDS = Histogram("hitstream_sink_flush_seconds", "Duration of one insert", ["table"])
