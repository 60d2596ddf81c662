-- First-in-session counting (Monetate): whether an event is the first of its key in its session,
-- and whether it counts at all (its key is defined and its definition's conditions hold).

ALTER TABLE events ADD COLUMN IF NOT EXISTS first_in_session UInt8 DEFAULT 0
    COMMENT '1 when this event is the first of its name in its session (Monetate rule)';

ALTER TABLE events ADD COLUMN IF NOT EXISTS counted UInt8 DEFAULT 1
    COMMENT '0 when the event key is undefined or its definition conditions do not hold';

CREATE TABLE IF NOT EXISTS event_definitions
(
    tenant           LowCardinality(String),
    event_key        String,
    title            String,
    description      String,
    conditions       String COMMENT 'JSON list of {field, op, value}',
    deleted          UInt8 DEFAULT 0,
    updated_at       DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (tenant, event_key);
