-- Core tables. Every row carries its lineage (src_partition, src_pos: the raw partition and the
-- event's position in it) which the sink uses to recognise replays; ReplacingMergeTree on stable
-- ids is the second net. Ordering keys start with the tenant (dead letters: with the source).

CREATE TABLE IF NOT EXISTS events
(
    tenant           LowCardinality(String),
    event_id         UUID,
    hit_id           String,
    source           LowCardinality(String),
    visitor_id       String,
    session_id       String,
    account_id       String,
    name             String,
    occurred_at      DateTime64(3, 'UTC'),
    received_at      DateTime64(3, 'UTC'),
    experiments      Map(String, String),
    goals            Array(String),
    value_cents      Nullable(Int64),
    dimensions       Map(String, String),
    properties       String COMMENT 'JSON object: unknown parameters and event properties',
    page_url         String,
    referrer         String,
    user_agent       String,
    device_type      LowCardinality(String),
    flags            Array(LowCardinality(String)),
    duplicate_of     Nullable(UUID) COMMENT 'set on an exact client retry: the first event',
    src_partition    UInt16,
    src_pos          UInt64,
    inserted_at      DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(received_at)
ORDER BY (tenant, toDate(occurred_at), visitor_id, event_id)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS impressions
(
    tenant           LowCardinality(String),
    experiment_id    String,
    variation_id     String,
    visitor_id       String,
    impression_id    UUID,
    event_id         UUID,
    source           LowCardinality(String),
    session_id       String,
    occurred_at      DateTime64(3, 'UTC'),
    received_at      DateTime64(3, 'UTC'),
    dimensions       Map(String, String),
    user_agent       String,
    device_type      LowCardinality(String),
    flags            Array(LowCardinality(String)),
    src_partition    UInt16,
    src_pos          UInt64,
    inserted_at      DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(received_at)
ORDER BY (tenant, experiment_id, visitor_id, impression_id)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS conversions
(
    tenant           LowCardinality(String),
    goal_id          String,
    visitor_id       String,
    conversion_id    UUID,
    event_id         UUID,
    event_name       String,
    source           LowCardinality(String),
    session_id       String,
    value_cents      Nullable(Int64),
    experiments      Map(String, String),
    occurred_at      DateTime64(3, 'UTC'),
    received_at      DateTime64(3, 'UTC'),
    dimensions       Map(String, String),
    flags            Array(LowCardinality(String)),
    src_partition    UInt16,
    src_pos          UInt64,
    inserted_at      DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(received_at)
ORDER BY (tenant, goal_id, visitor_id, conversion_id)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS dead_letters
(
    dlq_id           UUID,
    hit_id           String,
    stage            LowCardinality(String),
    reason           LowCardinality(String),
    detail           String,
    source           LowCardinality(String),
    received_at      DateTime64(3, 'UTC'),
    raw              String COMMENT 'the raw message, byte for byte when UTF-8',
    src_partition    UInt16,
    src_pos          UInt64,
    inserted_at      DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(received_at)
ORDER BY (source, reason, dlq_id)
SETTINGS non_replicated_deduplication_window = 1000;
