"""The worker's Prometheus metrics; labels are bounded (table, stage, reason, kind; tenant and
experiment for the sample-ratio alarm: as many as the experiment registry holds)."""

from prometheus_client import Counter, Gauge, Histogram

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
SRM_FIRST_EXPOSURES = Counter(
    "hitstream_srm_first_exposures_total",
    "First exposures counted by the live sample-ratio alarm",
    ["tenant", "experiment"],
)
SRM_ALARM = Gauge(
    "hitstream_srm_alarm",
    "1 while an experiment's exposures depart from its configured split (latched)",
    ["tenant", "experiment"],
)
SRM_ALERTS = Counter(
    "hitstream_srm_alerts_total", "Sample-ratio alerts sent", ["tenant", "experiment"]
)
