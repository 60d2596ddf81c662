-- Monetate event counts per experiment arm and event key: "sessions with the event" (the
-- events that are the first of their key in their session and count: defined, conditions met)
-- next to raw occurrences (every stored occurrence of the key, repeats and uncounted ones too).
-- Exact client retries (duplicate_of set) are excluded from both; events without experiments
-- appear under experiment_id '' (site totals). events FINAL: a row stored twice counts once.

CREATE OR REPLACE VIEW monetate_event_counts AS
SELECT
    tenant,
    experiment_id,
    variation_id,
    event_key,
    countIf(first_in_session = 1 AND counted = 1 AND session_id != '') AS sessions_with_event,
    count() AS occurrences,
    countIf(counted = 1) AS counted_occurrences
FROM
(
    SELECT
        tenant,
        arrayJoin(if(empty(experiments), [''], mapKeys(experiments))) AS experiment_id,
        experiments[experiment_id] AS variation_id,
        name AS event_key,
        session_id,
        first_in_session,
        counted
    FROM events FINAL
    WHERE source = 'monetate' AND duplicate_of IS NULL
)
GROUP BY tenant, experiment_id, variation_id, event_key;
