-- The experiment registry: which variations an experiment has, the control, the planned split.
-- Managed with `hitstream experiments`; read by the worker (swapped x pairs) and the results.

CREATE TABLE IF NOT EXISTS experiments
(
    tenant           LowCardinality(String),
    experiment_id    String,
    variation_id     String,
    is_control       UInt8,
    weight           Float64 COMMENT 'planned share of traffic; shares are normalised per experiment',
    name             String,
    deleted          UInt8 DEFAULT 0,
    updated_at       DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (tenant, experiment_id, variation_id);
