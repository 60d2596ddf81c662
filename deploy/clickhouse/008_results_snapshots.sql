-- Results snapshots: the three per-visitor views of the aggregates (007), stored as plain tables
-- and replaced whole every HITS_RESULTS_SNAPSHOT_EVERY_S seconds (default 300, set by `migrate`)
-- by refreshable materialized views, so a report reads finished rows (no merge of aggregate
-- states, no join): about a second at 10 million events, against several for the live views.
-- They lag the stored data by at most the refresh period plus one refresh's run: the results
-- pages and `hitstream results` say when the snapshot they read was taken
-- (`system.view_refreshes.last_success_time`) and read the live views with `source=live` /
-- `--live`; with no successful refresh yet they read the live views. Replay and re-drive refresh
-- them after rebuilding the aggregates (deploy/aggregates.py), and so does `make demo`.
--
-- A refresh replaces a table's rows atomically (a new table filled, then exchanged), so a
-- reader sees the old snapshot or the new one, never half of one. Each of the three is one
-- moment; they are refreshed on the same schedule, so they are at most a refresh apart. A
-- refresh re-reads the live views: about 15 s of CPU at 10M events on 2 cores, so the period
-- trades freshness against that load.
-- On a cluster every node keeps its own snapshot (not replicated), refreshed from the views.

CREATE TABLE IF NOT EXISTS results_exposures_snapshot
ENGINE = MergeTree ORDER BY (tenant, experiment_id, visitor_id)
EMPTY AS SELECT * FROM results_exposures_agg;

CREATE TABLE IF NOT EXISTS results_visitor_conversions_snapshot
ENGINE = MergeTree ORDER BY (tenant, experiment_id, goal_id, visitor_id)
EMPTY AS SELECT * FROM results_visitor_conversions_agg;

CREATE TABLE IF NOT EXISTS results_sessions_snapshot
ENGINE = MergeTree ORDER BY (tenant, experiment_id, event_name, visitor_id, session_id)
EMPTY AS SELECT * FROM results_sessions_agg;

CREATE MATERIALIZED VIEW IF NOT EXISTS results_exposures_refresh
REFRESH EVERY 5 MINUTE TO results_exposures_snapshot AS
SELECT * FROM results_exposures_agg;

CREATE MATERIALIZED VIEW IF NOT EXISTS results_visitor_conversions_refresh
REFRESH EVERY 5 MINUTE TO results_visitor_conversions_snapshot AS
SELECT * FROM results_visitor_conversions_agg;

CREATE MATERIALIZED VIEW IF NOT EXISTS results_sessions_refresh
REFRESH EVERY 5 MINUTE TO results_sessions_snapshot AS
SELECT * FROM results_sessions_agg;
