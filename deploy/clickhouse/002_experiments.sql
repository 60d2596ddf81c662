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

-- Goals with a role in an experiment: a guardrail is a goal that must not get worse (the results
-- flag a variation that degrades it significantly); higher_is_better 0 for goals such as errors.
CREATE TABLE IF NOT EXISTS experiment_goals
(
    tenant           LowCardinality(String),
    experiment_id    String,
    goal_id          String,
    role             LowCardinality(String) COMMENT 'guardrail',
    higher_is_better UInt8 DEFAULT 1,
    deleted          UInt8 DEFAULT 0,
    updated_at       DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (tenant, experiment_id, goal_id);
