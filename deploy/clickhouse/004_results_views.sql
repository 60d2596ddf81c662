-- Results views: one row per visitor of an experiment, usable from any ClickHouse client (the
-- `hitstream results` command and API add the statistics). Filter on tenant and experiment_id
-- (pushed down into the table scans), slice on device_type or dimensions['key'] (the visitor's
-- first exposure), and drop is_bot / is_multi rows for the default analysis. Times are UTC.
--
-- A visitor's variation and first_exposure_at come from the earliest impression; is_multi marks
-- a visitor exposed to more than one variation of the experiment, is_bot one whose user agent
-- matched the bot pattern on any exposure. Counts are exact (count, uniqExact).

CREATE OR REPLACE VIEW results_exposures AS
SELECT
    tenant,
    experiment_id,
    visitor_id,
    argMin(variation, (at, id)) AS variation_id,
    min(at) AS first_exposure_at,
    uniqExact(variation) AS variations,
    toUInt8(variations > 1) AS is_multi,
    toUInt8(max(match(agent,
        '(?i)bot|crawl|spider|slurp|headless|phantomjs|selenium|puppeteer|playwright|lighthouse|python-requests|scrapy'
    ))) AS is_bot,
    argMin(agent, (at, id)) AS user_agent,
    argMin(device, (at, id)) AS device_type,
    argMin(dims, (at, id)) AS dimensions
FROM
(
    SELECT
        tenant,
        experiment_id,
        visitor_id,
        variation_id AS variation,
        occurred_at AS at,
        impression_id AS id,
        user_agent AS agent,
        device_type AS device,
        dimensions AS dims
    FROM impressions
)
GROUP BY tenant, experiment_id, visitor_id;

-- Per exposed visitor and goal: conversions at or after the first exposure (the conversion of
-- the exposing hit itself counts), their revenue, and the same before it (the CUPED
-- covariate). Visitors without a conversion of the goal have no row: every sum is zero there.
-- conversions FINAL: a stored-twice row (the ReplacingMergeTree net) never counts twice.
CREATE OR REPLACE VIEW results_visitor_conversions AS
SELECT
    x.tenant AS tenant,
    x.experiment_id AS experiment_id,
    x.visitor_id AS visitor_id,
    c.goal_id AS goal_id,
    any(x.variation_id) AS variation_id,
    any(x.first_exposure_at) AS first_exposure_at,
    any(x.is_multi) AS is_multi,
    any(x.is_bot) AS is_bot,
    any(x.device_type) AS device_type,
    any(x.dimensions) AS dimensions,
    countIf(c.occurred_at >= x.first_exposure_at) AS conversions,
    toUInt8(conversions > 0) AS converted,
    minIf(c.occurred_at, c.occurred_at >= x.first_exposure_at) AS first_conversion_at,
    sumIf(toInt128(coalesce(c.value_cents, 0)), c.occurred_at >= x.first_exposure_at)
        AS revenue_cents,
    countIf(c.occurred_at < x.first_exposure_at) AS pre_conversions,
    sumIf(toInt128(coalesce(c.value_cents, 0)), c.occurred_at < x.first_exposure_at)
        AS pre_revenue_cents
FROM results_exposures AS x
INNER JOIN
(
    SELECT tenant, visitor_id, goal_id, occurred_at, value_cents FROM conversions FINAL
) AS c ON c.tenant = x.tenant AND c.visitor_id = x.visitor_id
GROUP BY x.tenant, x.experiment_id, x.visitor_id, c.goal_id;

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
