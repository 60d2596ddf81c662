-- Results views: one row per visitor of an experiment, usable from any ClickHouse client (the
-- `hitstream results` command and API add the statistics). Filter on tenant and experiment_id
-- (pushed down into the table scans), slice on device_type or dimensions['key'] (the visitor's
-- first exposure), and drop is_bot / is_multi rows for the default analysis. Times are UTC.
--
-- A visitor's variation and first_exposure_at come from the earliest impression; is_multi marks
-- a visitor exposed to more than one variation of the experiment, is_bot one whose user agent
-- matched the bot pattern on any exposure. Counts are exact (count, uniqExact).

-- Speed (10M events: 6M impressions of 2M visitors; README, results benchmark): argMin over a
-- Map value or a tuple key is ClickHouse's generic argMin, which copies a Field per row, so the
-- key (at, id) is one UInt256 that orders exactly like the tuple: the epoch milliseconds (sign
-- bit flipped) above 128 bits, then the UUID with its two 64-bit halves swapped (ClickHouse
-- compares a UUID's second half first; checked on a million rows with ties and negative times).
-- The values are Strings; dimensions travel as `hex(key):hex(value),...` (exact for any bytes,
-- unlike JSON text) and are decoded once per visitor. is_multi is min != max (the same as
-- variations > 1), so uniqExact runs only when `variations` is read.
CREATE OR REPLACE VIEW results_exposures AS
SELECT
    tenant,
    experiment_id,
    visitor_id,
    argMin(variation, key) AS variation_id,
    min(at) AS first_exposure_at,
    uniqExact(variation) AS variations,
    toUInt8(min(variation) != max(variation)) AS is_multi,
    toUInt8(max(match(agent,
        '(?i)bot|crawl|spider|slurp|headless|phantomjs|selenium|puppeteer|playwright|lighthouse|python-requests|scrapy'
    ))) AS is_bot,
    argMin(agent, key) AS user_agent,
    argMin(device, key) AS device_type,
    mapFromArrays(
        arrayMap(p -> unhex(splitByChar(':', p)[1]),
                 arrayFilter(p -> p != '', splitByChar(',', argMin(dims, key)))),
        arrayMap(p -> unhex(splitByChar(':', p)[2]),
                 arrayFilter(p -> p != '', splitByChar(',', argMin(dims, key))))) AS dimensions
FROM
(
    SELECT
        tenant,
        experiment_id,
        visitor_id,
        variation_id AS variation,
        occurred_at AS at,
        bitOr(
            bitShiftLeft(toUInt256(bitXor(reinterpretAsUInt64(toUnixTimestamp64Milli(occurred_at)),
                                          toUInt64(9223372036854775808))), 128),
            toUInt256(bitOr(bitShiftLeft(toUInt128(impression_id), 64),
                            bitShiftRight(toUInt128(impression_id), 64)))) AS key,
        user_agent AS agent,
        toString(device_type) AS device,
        arrayStringConcat(arrayMap((k, v) -> concat(hex(k), ':', hex(v)),
                                    mapKeys(dimensions), mapValues(dimensions)), ',') AS dims
    FROM impressions
)
GROUP BY tenant, experiment_id, visitor_id;

-- Per exposed visitor and goal: conversions at or after the first exposure (the conversion of
-- the exposing hit itself counts), their revenue, and the same before it (the CUPED
-- covariate). Visitors without a conversion of the goal have no row: every sum is zero there.
-- conversions FINAL: a stored-twice row (the ReplacingMergeTree net) never counts twice. Each
-- visitor's conversions of a goal are first gathered into two arrays (times, values), then
-- joined once to the visitor's exposure and counted against first_exposure_at with array
-- functions: no second aggregation over joined rows carrying the visitor's attributes.
CREATE OR REPLACE VIEW results_visitor_conversions AS
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
        groupArray(occurred_at) AS times,
        groupArray(toInt128(coalesce(value_cents, 0))) AS cents
    FROM conversions FINAL
    GROUP BY tenant, visitor_id, goal_id
) AS c
INNER JOIN results_exposures AS x ON x.tenant = c.tenant AND x.visitor_id = c.visitor_id;

-- Sessions with each event (Monetate's rule): events that are the first of their name in their
-- session and count, with the experiment in their map; the variation is the event's own. Sliced
-- on the event's device_type and dimensions. A visitor is multi when its exposures are, or when
-- the event's variation is not the one it was first exposed to.
CREATE OR REPLACE VIEW results_sessions AS
SELECT
    e.tenant AS tenant,
    e.experiment_id AS experiment_id,
    e.variation_id AS variation_id,
    e.visitor_id AS visitor_id,
    e.session_id AS session_id,
    e.event_name AS event_name,
    e.occurred_at AS occurred_at,
    e.device_type AS device_type,
    e.dimensions AS dimensions,
    toUInt8(e.bot_agent OR x.is_bot = 1) AS is_bot,
    toUInt8(x.is_multi = 1 OR (x.visitor_id != '' AND x.variation_id != e.variation_id))
        AS is_multi
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
        device_type,
        dimensions,
        match(user_agent,
            '(?i)bot|crawl|spider|slurp|headless|phantomjs|selenium|puppeteer|playwright|lighthouse|python-requests|scrapy'
        ) AS bot_agent
    FROM events
    WHERE first_in_session = 1 AND counted = 1 AND duplicate_of IS NULL AND session_id != ''
) AS e
LEFT JOIN results_exposures AS x
    ON x.tenant = e.tenant AND x.experiment_id = e.experiment_id AND x.visitor_id = e.visitor_id;

-- Per experiment, variation and goal with the default exclusions (no bots, no multi-variation
-- visitors), unsliced; slice with the per-visitor views above or `hitstream results --slice`.
-- revenue_sq_cents (the sum of squares of revenue per visitor) gives the variance.
CREATE OR REPLACE VIEW results_summary AS
SELECT
    x.tenant AS tenant,
    x.experiment_id AS experiment_id,
    x.variation_id AS variation_id,
    x.visitors AS visitors,
    g.goal_id AS goal_id,
    g.converters AS converters,
    g.conversions_total AS conversions,
    g.revenue AS revenue_cents,
    g.revenue_sq AS revenue_sq_cents
FROM
(
    SELECT tenant, experiment_id, variation_id, count() AS visitors
    FROM results_exposures
    WHERE is_bot = 0 AND is_multi = 0
    GROUP BY tenant, experiment_id, variation_id
) AS x
LEFT JOIN
(
    SELECT
        tenant,
        experiment_id,
        variation_id,
        goal_id,
        countIf(converted = 1) AS converters,
        sum(conversions) AS conversions_total,
        sum(revenue_cents * revenue_cents) AS revenue_sq,
        sum(revenue_cents) AS revenue
    FROM results_visitor_conversions
    WHERE is_bot = 0 AND is_multi = 0
    GROUP BY tenant, experiment_id, variation_id, goal_id
) AS g ON g.tenant = x.tenant AND g.experiment_id = x.experiment_id
    AND g.variation_id = x.variation_id;
