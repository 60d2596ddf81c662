-- Per-visitor aggregates of the results views (004), kept up to date as rows arrive: each raw
-- table feeds a materialized view into a table of one row per visitor (after merges), so a
-- report reads about a row per visitor instead of grouping and joining raw rows. The `*_agg`
-- views at the end give exactly the columns of the raw views (results_exposures,
-- results_visitor_conversions, results_sessions), and `results.query` runs the same report SQL
-- over either (`hitstream aggregates check` compares them, EXCEPT both ways).
--
-- Every state is idempotent: min, max, argMin by a unique key, uniqExact, a set of conversion
-- ids. A row stored twice, a block inserted twice, a rebuild racing the worker: the aggregate
-- stays the same. A lightweight DELETE of raw rows (replay, re-drive) does not reach them, so
-- `hitstream aggregates rebuild` (deploy/aggregates.py, run by replay and re-drive themselves)
-- deletes an experiment's aggregate rows and inserts them again from the raw tables, with the
-- SELECT of each materialized view below plus a WHERE (its GROUP BY stays the last line).
-- Read with FINAL: once merged (ClickHouse merges in the background) that is a plain read.

-- Per tenant, experiment and visitor: the first exposure (its variation, time, user agent,
-- device and dimensions: argMin by the (time, impression id) key of 004), the variations seen,
-- the bot flag, and the last exposure time (for `rebuild --since/--until`).
CREATE TABLE IF NOT EXISTS visitor_exposures
(
    tenant           LowCardinality(String),
    experiment_id    String,
    visitor_id       String,
    first_variation  AggregateFunction(argMin, String, UInt256),
    first_at         SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
    last_at          SimpleAggregateFunction(max, DateTime64(3, 'UTC')),
    min_variation    SimpleAggregateFunction(min, String),
    max_variation    SimpleAggregateFunction(max, String),
    variation_set    AggregateFunction(uniqExact, String),
    bot              SimpleAggregateFunction(max, UInt8),
    first_agent      AggregateFunction(argMin, String, UInt256),
    first_device     AggregateFunction(argMin, String, UInt256),
    first_dims       AggregateFunction(argMin, String, UInt256)
)
ENGINE = AggregatingMergeTree
ORDER BY (tenant, experiment_id, visitor_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS visitor_exposures_mv TO visitor_exposures AS
SELECT
    tenant,
    experiment_id,
    visitor_id,
    argMinState(variation_id, key) AS first_variation,
    min(occurred_at) AS first_at,
    max(occurred_at) AS last_at,
    min(variation_id) AS min_variation,
    max(variation_id) AS max_variation,
    uniqExactState(variation_id) AS variation_set,
    max(toUInt8(match(user_agent,
        '(?i)bot|crawl|spider|slurp|headless|phantomjs|selenium|puppeteer|playwright|lighthouse|python-requests|scrapy'
    ))) AS bot,
    argMinState(user_agent, key) AS first_agent,
    argMinState(toString(device_type), key) AS first_device,
    argMinState(arrayStringConcat(arrayMap((k, v) -> concat(hex(k), ':', hex(v)),
                                           mapKeys(dimensions), mapValues(dimensions)), ','),
                key) AS first_dims
FROM
(
    SELECT
        tenant, experiment_id, visitor_id, variation_id, occurred_at, user_agent, device_type,
        dimensions,
        bitOr(
            bitShiftLeft(toUInt256(bitXor(reinterpretAsUInt64(toUnixTimestamp64Milli(occurred_at)),
                                          toUInt64(9223372036854775808))), 128),
            toUInt256(bitOr(bitShiftLeft(toUInt128(impression_id), 64),
                            bitShiftRight(toUInt128(impression_id), 64)))) AS key
    FROM impressions
)
GROUP BY tenant, experiment_id, visitor_id;

-- Per tenant, visitor and goal: the set of its conversions (id, time, value in cents), so a
-- conversion stored twice counts once (as `conversions FINAL` in 004); whether one is before
-- or after the exposure is decided when read, against the first exposure of the experiment.
CREATE TABLE IF NOT EXISTS visitor_conversions
(
    tenant           LowCardinality(String),
    visitor_id       String,
    goal_id          String,
    first_at         SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
    last_at          SimpleAggregateFunction(max, DateTime64(3, 'UTC')),
    conversions      SimpleAggregateFunction(groupUniqArrayArray,
                                             Array(Tuple(UUID, DateTime64(3, 'UTC'), Int64)))
)
ENGINE = AggregatingMergeTree
ORDER BY (tenant, visitor_id, goal_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS visitor_conversions_mv TO visitor_conversions AS
SELECT
    tenant,
    visitor_id,
    goal_id,
    min(occurred_at) AS first_at,
    max(occurred_at) AS last_at,
    groupUniqArray(tuple(conversion_id, occurred_at, coalesce(value_cents, 0))) AS conversions
FROM conversions
GROUP BY tenant, visitor_id, goal_id;

-- Per session with a counted first-in-session event (Monetate's rule) of an experiment: one row
-- per (visitor, session, event, the event's variation, device, dimensions, bot user agent).
CREATE TABLE IF NOT EXISTS visitor_sessions
(
    tenant           LowCardinality(String),
    experiment_id    String,
    visitor_id       String,
    session_id       String,
    event_name       String,
    variation_id     String,
    device_type      String,
    bot_agent        UInt8,
    dimensions       SimpleAggregateFunction(any, Map(String, String)),
    dims_hash        UInt64,
    first_at         SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
    last_at          SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
)
ENGINE = AggregatingMergeTree
ORDER BY (tenant, experiment_id, visitor_id, session_id, event_name, variation_id, device_type,
          bot_agent, dims_hash);

CREATE MATERIALIZED VIEW IF NOT EXISTS visitor_sessions_mv TO visitor_sessions AS
SELECT
    tenant,
    experiment_id,
    visitor_id,
    session_id,
    event_name,
    variation_id,
    device_type,
    bot_agent,
    any(dimensions) AS dimensions,
    dims_hash,
    min(occurred_at) AS first_at,
    max(occurred_at) AS last_at
FROM
(
    SELECT
        tenant,
        arrayJoin(mapKeys(experiments)) AS experiment_id,
        experiments[experiment_id] AS variation_id,
        visitor_id,
        session_id,
        name AS event_name,
        occurred_at,
        toString(device_type) AS device_type,
        dimensions,
        sipHash64(mapKeys(dimensions), mapValues(dimensions)) AS dims_hash,
        toUInt8(match(user_agent,
            '(?i)bot|crawl|spider|slurp|headless|phantomjs|selenium|puppeteer|playwright|lighthouse|python-requests|scrapy'
        )) AS bot_agent
    FROM events
    WHERE first_in_session = 1 AND counted = 1 AND duplicate_of IS NULL AND session_id != ''
)
GROUP BY tenant, experiment_id, visitor_id, session_id, event_name, variation_id, device_type,
    bot_agent, dims_hash;

-- The raw views' columns, from the aggregates (FINAL: rows of a key not merged yet are merged
-- when read).
CREATE OR REPLACE VIEW results_exposures_agg AS
SELECT
    tenant,
    experiment_id,
    visitor_id,
    finalizeAggregation(first_variation) AS variation_id,
    first_at AS first_exposure_at,
    finalizeAggregation(variation_set) AS variations,
    toUInt8(min_variation != max_variation) AS is_multi,
    bot AS is_bot,
    finalizeAggregation(first_agent) AS user_agent,
    finalizeAggregation(first_device) AS device_type,
    mapFromArrays(
        arrayMap(p -> unhex(splitByChar(':', p)[1]),
                 arrayFilter(p -> p != '', splitByChar(',', finalizeAggregation(first_dims)))),
        arrayMap(p -> unhex(splitByChar(':', p)[2]),
                 arrayFilter(p -> p != '', splitByChar(',', finalizeAggregation(first_dims)))))
        AS dimensions
FROM visitor_exposures FINAL;

CREATE OR REPLACE VIEW results_visitor_conversions_agg AS
SELECT
    x.tenant AS tenant,
    x.experiment_id AS experiment_id,
    x.visitor_id AS visitor_id,
    c.goal_id AS goal_id,
    x.variation_id AS variation_id,
    x.first_exposure_at AS first_exposure_at,
    x.is_multi AS is_multi,
    x.is_bot AS is_bot,
    x.device_type AS device_type,
    x.dimensions AS dimensions,
    x.user_agent AS user_agent,
    toUInt64(arrayCount(t -> t >= x.first_exposure_at, c.times)) AS conversions,
    toUInt8(conversions > 0) AS converted,
    if(converted, arrayMin(arrayFilter(t -> t >= x.first_exposure_at, c.times)),
       toDateTime64(0, 3, 'UTC')) AS first_conversion_at,
    arraySum((t, v) -> if(t >= x.first_exposure_at, v, toInt128(0)), c.times, c.cents)
        AS revenue_cents,
    toUInt64(arrayCount(t -> t < x.first_exposure_at, c.times)) AS pre_conversions,
    arraySum((t, v) -> if(t < x.first_exposure_at, v, toInt128(0)), c.times, c.cents)
        AS pre_revenue_cents
FROM
(
    SELECT
        tenant,
        visitor_id,
        goal_id,
        conversions.2 AS times,
        CAST(conversions.3, 'Array(Int128)') AS cents
    FROM visitor_conversions FINAL
) AS c
INNER JOIN results_exposures_agg AS x ON x.tenant = c.tenant AND x.visitor_id = c.visitor_id
SETTINGS join_algorithm = 'partial_merge';

CREATE OR REPLACE VIEW results_sessions_agg AS
SELECT
    e.tenant AS tenant,
    e.experiment_id AS experiment_id,
    e.variation_id AS variation_id,
    e.visitor_id AS visitor_id,
    e.session_id AS session_id,
    e.event_name AS event_name,
    e.device_type AS device_type,
    e.dimensions AS dimensions,
    toUInt8(e.bot_agent = 1 OR x.bot = 1) AS is_bot,
    toUInt8(x.min_variation != x.max_variation
            OR (x.visitor_id != '' AND x.min_variation != e.variation_id)) AS is_multi
FROM visitor_sessions AS e FINAL
LEFT JOIN
(
    SELECT tenant, experiment_id, visitor_id, min_variation, max_variation, bot
    FROM visitor_exposures FINAL
) AS x
    ON x.tenant = e.tenant AND x.experiment_id = e.experiment_id AND x.visitor_id = e.visitor_id
SETTINGS join_algorithm = 'partial_merge';
