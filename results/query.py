"""Per-variation aggregates of one experiment, read from the results views (004_results_views.sql),
from the per-visitor aggregates (007_results_aggregates.sql), or from their snapshots, stored
whole every few minutes (008_results_snapshots.sql; what reports read unless asked for live
figures): the same report SQL over views or tables with the same columns (`Source`), so every
path gives the same figures (the snapshots: as of when they were taken).

Every query is a constant string; the tenant, experiment, goals and slice travel as `{name:Type}`
binds (ClickHouse substitutes them server-side), never formatted into the SQL. A slice is any
number of `dimensions` key=value pairs and optionally a device type; bots and visitors exposed
to several variations are excluded unless asked for.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from clickhouse_connect.driver.client import Client

from deploy.aggregates import snapshot_taken
from results.ratio import RatioMoments
from results.slices import SliceCounts
from results.stats import Moments

DEVICE_KEY = "device_type"


@dataclass(frozen=True, slots=True)
class Source:
    """The three per-visitor views a report reads."""

    exposures: str
    conversions: str
    sessions: str


RAW = Source("results_exposures", "results_visitor_conversions", "results_sessions")
AGGREGATES = Source(
    "results_exposures_agg", "results_visitor_conversions_agg", "results_sessions_agg"
)
SNAPSHOTS = Source(  # the aggregate views stored whole periodically (008_results_snapshots.sql)
    "results_exposures_snapshot",
    "results_visitor_conversions_snapshot",
    "results_sessions_snapshot",
)


@dataclass(frozen=True, slots=True)
class Reading:
    """Where a report reads: the snapshots, taken at `taken_at`, or the live aggregate views."""

    source: Source
    taken_at: dt.datetime | None = None

    def as_dict(self, now: dt.datetime) -> dict[str, Any]:
        if self.taken_at is None:
            return {"name": "live", "taken_at": None, "age_s": None}
        age = max(0.0, (now - self.taken_at).total_seconds())
        return {"name": "snapshot", "taken_at": self.taken_at.isoformat(), "age_s": age}


def reading(client: Client, live: bool) -> Reading:
    """The snapshots, unless `live` is asked for or no snapshot has been taken yet."""
    taken = None if live else snapshot_taken(client)
    return Reading(SNAPSHOTS, taken) if taken is not None else Reading(AGGREGATES)


def over(sql: str, source: Source) -> str:
    """`sql`, written over the raw views, reading `source`'s views instead."""
    for raw, chosen in zip(
        (RAW.exposures, RAW.conversions, RAW.sessions),
        (source.exposures, source.conversions, source.sessions),
        strict=True,
    ):
        sql = re.sub(rf"\bFROM {raw}\b", f"FROM {chosen}", sql)
    return sql


@dataclass(frozen=True, slots=True, kw_only=True)
class Filters:
    goals: tuple[str, ...] = ()  # empty: every goal converted by an exposed visitor
    slice: tuple[tuple[str, str], ...] = ()  # dimensions key=value pairs, all must hold
    device_type: str = ""
    include_bots: bool = False
    include_multi: bool = False
    cap_cents: int = 0  # revenue per visitor capped at this (0: no absolute cap)
    cap_percentile: float = 0.0  # ... or at this quantile of the goal's converters (0: none)

    @classmethod
    def parse_slices(cls, pairs: Iterable[str], **kwargs: Any) -> Filters:
        """`key=value` strings (`device_type=mobile` slices on the device) into filters."""
        dims: list[tuple[str, str]] = []
        device = ""
        for pair in pairs:
            key, sep, value = pair.partition("=")
            if not sep or not key:
                raise ValueError(f"slice {pair!r} is not key=value")
            if key == DEVICE_KEY:
                device = value
            else:
                dims.append((key, value))
        filters = cls(slice=tuple(dims), device_type=device, **kwargs)
        if filters.cap_cents < 0 or not 0 <= filters.cap_percentile < 1:
            raise ValueError("caps: cents must be 0 (none) or more, percentile in [0, 1)")
        return filters

    def as_dict(self) -> dict[str, Any]:
        return {
            "goals": list(self.goals),
            "slice": dict(self.slice)
            | ({DEVICE_KEY: self.device_type} if self.device_type else {}),
            "include_bots": self.include_bots,
            "include_multi": self.include_multi,
            "cap_cents": self.cap_cents,
            "cap_percentile": self.cap_percentile,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class GoalCounts:
    converters: int
    conversions: int
    rate: Moments  # Y = converted (0/1), X = pre-exposure conversions of the goal
    revenue: Moments  # Y = revenue in cents after exposure, X = before it
    per_order: RatioMoments  # revenue (M) per conversion (D): revenue per order


@dataclass(frozen=True, slots=True, kw_only=True)
class Aggregates:
    tenant: str
    experiment: str
    registered: bool  # False: not in the registry (control guessed, equal weights)
    control: str
    weights: dict[str, float]  # variation -> planned share (normalised later)
    visitors: dict[str, int]  # variation -> exposed visitors after the filters
    bots: int  # bot visitors in the slice (excluded unless include_bots)
    multi: int  # multi-variation visitors in the slice (excluded unless include_multi)
    goals: dict[str, dict[str, GoalCounts]]  # goal -> variation -> counts
    sessions: dict[str, dict[str, int]]  # event name -> variation -> sessions with it
    daily_exposed: dict[str, dict[dt.date, int]] = field(default_factory=dict)  # v -> day -> n
    daily_converted: dict[str, dict[str, dict[dt.date, int]]] = field(default_factory=dict)
    caps: dict[str, int] = field(default_factory=dict)  # goal -> percentile cap in cents
    guardrails: dict[str, bool] = field(default_factory=dict)  # goal -> higher is better

    @property
    def variations(self) -> list[str]:
        """Control first, then the others in id order (registry and observed ones)."""
        others = sorted((set(self.weights) | set(self.visitors)) - {self.control})
        return [self.control, *others] if self.control else others


# `empty(...) OR`: without a slice the views never build `dimensions` (the binds are literals).
_FILTER = """tenant = {tenant:String} AND experiment_id = {experiment:String}
  AND (empty({slice_keys:Array(String)}) OR arrayAll((k, v) -> dimensions[k] = v,
               {slice_keys:Array(String)}, {slice_values:Array(String)}))
  AND ({device:String} = '' OR device_type = {device:String})"""
_KEEP = "({bots:UInt8} = 1 OR is_bot = 0) AND ({multi:UInt8} = 1 OR is_multi = 0)"
_GOAL = "(empty({goals:Array(String)}) OR has({goals:Array(String)}, goal_id))"

REGISTRY_SQL = """SELECT variation_id, argMax(is_control, updated_at), argMax(weight, updated_at)
FROM experiments WHERE tenant = {tenant:String} AND experiment_id = {experiment:String}
GROUP BY variation_id HAVING argMax(deleted, updated_at) = 0 ORDER BY variation_id"""

GUARDRAILS_SQL = """SELECT goal_id, argMax(higher_is_better, updated_at) FROM experiment_goals
WHERE tenant = {tenant:String} AND experiment_id = {experiment:String}
GROUP BY goal_id HAVING argMax(deleted, updated_at) = 0 AND argMax(role, updated_at) = 'guardrail'
ORDER BY goal_id"""

# Per variation and day of first exposure (the report sums the days; the chart accumulates them).
EXPOSURES_SQL = f"""SELECT variation_id, toDate(first_exposure_at) AS day, countIf({_KEEP}),
  countIf(is_bot = 1), countIf(is_multi = 1)
FROM results_exposures WHERE {_FILTER} GROUP BY variation_id, day ORDER BY variation_id, day"""

# The percentile cap of each goal: the quantile of revenue per converting visitor (after exposure).
CAPS_SQL = f"""SELECT goal_id, toInt64(floor(quantileExact({{percentile:Float64}})(revenue_cents)))
FROM results_visitor_conversions WHERE {_FILTER} AND {_KEEP} AND {_GOAL} AND converted = 1
GROUP BY goal_id ORDER BY goal_id"""

# Per goal, variation and day of first conversion after exposure (NULL: none, only before).
# Revenue per visitor, before and after exposure, is capped at the goal's percentile cap, else
# at the absolute cap (cap -1: none).
GOALS_SQL = f"""WITH indexOf({{cap_goals:Array(String)}}, goal_id) AS cap_index,
  toInt128(if(cap_index = 0, if({{cap_all:Int64}} > 0, {{cap_all:Int64}}, -1),
               {{cap_values:Array(Int64)}}[cap_index])) AS cap,
  if(cap < 0, revenue_cents, least(revenue_cents, cap)) AS rev,
  if(cap < 0, pre_revenue_cents, least(pre_revenue_cents, cap)) AS pre_rev
SELECT goal_id, variation_id, if(converted = 1, toDate(first_conversion_at), NULL)
  AS day, countIf(converted = 1), sum(conversions),
  sum(pre_conversions), sum(pre_conversions * pre_conversions), sum(pre_conversions * converted),
  sum(rev), sum(rev * rev), sum(pre_rev), sum(pre_rev * pre_rev), sum(pre_rev * rev),
  sum(conversions * conversions), sum(conversions * rev), sum(pre_conversions * pre_rev),
  sum(conversions * pre_conversions), sum(rev * pre_conversions), sum(conversions * pre_rev)
FROM results_visitor_conversions WHERE {_FILTER} AND {_KEEP} AND {_GOAL}
GROUP BY goal_id, variation_id, day ORDER BY goal_id, variation_id, day"""

SESSIONS_SQL = f"""SELECT event_name, variation_id, uniqExact(visitor_id, session_id)
FROM results_sessions WHERE {_FILTER} AND {_KEEP}
GROUP BY event_name, variation_id ORDER BY event_name, variation_id"""


# Slices (`hitstream results --by`): the device type, the browser family of the first exposure's
# user agent, or any dimension key.
BROWSER_SQL = """multiIf(match(user_agent, 'Edg(e|A|iOS)?/'), 'Edge',
  match(user_agent, 'OPR/|Opera'), 'Opera', match(user_agent, 'SamsungBrowser/'), 'Samsung',
  match(user_agent, 'Firefox/|FxiOS/'), 'Firefox', match(user_agent, 'Chrome/|CriOS/|Chromium/'),
  'Chrome', match(user_agent, 'Safari/'), 'Safari', 'other')"""
_BY = f"""multiIf({{by:String}} = 'device_type', device_type, {{by:String}} = 'browser',
  {BROWSER_SQL}, dimensions[{{by:String}}])"""
SLICE_EXPOSURES_SQL = f"""SELECT {_BY} AS value, variation_id, countIf({_KEEP}) AS kept
FROM results_exposures WHERE {_FILTER} GROUP BY value, variation_id HAVING kept > 0"""
SLICE_GOALS_SQL = f"""SELECT {_BY} AS value, goal_id, variation_id, countIf(converted = 1)
FROM results_visitor_conversions WHERE {_FILTER} AND {_KEEP} AND {_GOAL}
GROUP BY value, goal_id, variation_id"""
NO_VALUE = "(none)"


def parameters(
    tenant: str, experiment: str, filters: Filters, caps: Mapping[str, int] | None = None
) -> dict[str, Any]:
    caps = caps or {}
    return {
        "tenant": tenant,
        "experiment": experiment,
        "slice_keys": [k for k, _ in filters.slice],
        "slice_values": [v for _, v in filters.slice],
        "device": filters.device_type,
        "bots": int(filters.include_bots),
        "multi": int(filters.include_multi),
        "goals": list(filters.goals),
        "percentile": filters.cap_percentile,
        "cap_all": filters.cap_cents,
        "cap_goals": list(caps),
        "cap_values": list(caps.values()),
    }


def caps(
    client: Client, params: Mapping[str, Any], filters: Filters, source: Source = AGGREGATES
) -> dict[str, int]:
    """goal -> its percentile cap of revenue per visitor in cents (the lower of it and the
    absolute cap when both are set); empty without a percentile cap."""
    if not filters.cap_percentile > 0:
        return {}
    found = {str(g): int(c) for g, c in _rows(client, over(CAPS_SQL, source), params)}
    if filters.cap_cents > 0:
        found = {g: min(c, filters.cap_cents) for g, c in found.items()}
    return found


def _rows(client: Client, sql: str, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in client.query(sql, parameters=dict(params)).result_rows]


def read(
    client: Client,
    tenant: str,
    experiment: str,
    filters: Filters,
    source: Source = AGGREGATES,
) -> Aggregates:
    """Every aggregate the report needs, from five queries (six with a percentile cap)."""
    params = parameters(tenant, experiment, filters)
    goal_caps = caps(client, params, filters, source)
    params = parameters(tenant, experiment, filters, goal_caps)
    registry = _rows(client, REGISTRY_SQL, params)
    guardrails = {str(g): bool(up) for g, up in _rows(client, GUARDRAILS_SQL, params)}
    weights = {str(v): float(w) for v, _, w in registry}
    control = next((str(v) for v, c, _ in registry if c), "")
    visitors: dict[str, int] = defaultdict(int)
    exposed: dict[str, dict[dt.date, int]] = defaultdict(dict)
    bots = multi = 0
    for variation, day, kept, bot, both in _rows(client, over(EXPOSURES_SQL, source), params):
        visitors[str(variation)] += int(kept)
        if kept:
            exposed[str(variation)][day] = int(kept)
        bots, multi = bots + int(bot), multi + int(both)
    if not control:
        control = min(weights or visitors, default="")
    sums: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0] * 16)
    converted: dict[str, dict[str, dict[dt.date, int]]] = defaultdict(lambda: defaultdict(dict))
    for goal, variation, day, *values in _rows(client, over(GOALS_SQL, source), params):
        key = (str(goal), str(variation))
        sums[key] = [a + int(b) for a, b in zip(sums[key], values, strict=True)]
        if day is not None:
            converted[key[0]][key[1]][day] = int(values[0])
    goals: dict[str, dict[str, GoalCounts]] = defaultdict(dict)
    for (goal, variation), values in sums.items():
        c, conversions, x, x2, xy, r, r2, rx, rx2, rxy, d2, rd, xrx, dx, rx_d, drx = values
        n = visitors.get(variation, 0)
        goals[goal][variation] = GoalCounts(
            converters=c,
            conversions=conversions,
            rate=Moments(n=n, sum_y=c, sum_y2=c, sum_x=x, sum_x2=x2, sum_xy=xy),
            revenue=Moments(n=n, sum_y=r, sum_y2=r2, sum_x=rx, sum_x2=rx2, sum_xy=rxy),
            per_order=RatioMoments(
                n=n,
                sum_m=r,
                sum_m2=r2,
                sum_d=conversions,
                sum_d2=d2,
                sum_md=rd,
                sum_mp=rx,
                sum_mp2=rx2,
                sum_dp=x,
                sum_dp2=x2,
                sum_mp_dp=xrx,
                sum_m_mp=rxy,
                sum_m_dp=rx_d,
                sum_d_mp=drx,
                sum_d_dp=dx,
            ),
        )
    sessions: dict[str, dict[str, int]] = defaultdict(dict)
    for name, variation, count in _rows(client, over(SESSIONS_SQL, source), params):
        sessions[str(name)][str(variation)] = int(count)
    return Aggregates(
        tenant=tenant,
        experiment=experiment,
        registered=bool(registry),
        control=control,
        weights=weights,
        visitors=dict(visitors),
        bots=bots,
        multi=multi,
        goals=dict(goals),
        sessions=dict(sessions),
        daily_exposed=dict(exposed),
        daily_converted={g: dict(v) for g, v in converted.items()},
        caps=goal_caps,
        guardrails=guardrails,
    )


def read_slices(
    client: Client,
    tenant: str,
    experiment: str,
    filters: Filters,
    by: str,
    source: Source = AGGREGATES,
) -> dict[str, SliceCounts]:
    """Visitors and converters per value of `by` (device_type, browser or a dimension key)."""
    params = parameters(tenant, experiment, filters) | {"by": by}
    visitors: dict[str, dict[str, int]] = defaultdict(dict)
    for value, variation, kept in _rows(client, over(SLICE_EXPOSURES_SQL, source), params):
        visitors[str(value) or NO_VALUE][str(variation)] = int(kept)
    converters: dict[str, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
    for value, goal, variation, count in _rows(client, over(SLICE_GOALS_SQL, source), params):
        if count:
            converters[str(value) or NO_VALUE][str(goal)][str(variation)] = int(count)
    return {
        value: SliceCounts(
            visitors=per, converters={g: dict(c) for g, c in converters[value].items()}
        )
        for value, per in visitors.items()
    }


def empty_counts(n: int) -> GoalCounts:
    """A variation whose visitors never converted to the goal."""
    zero = Moments(n=n, sum_y=0, sum_y2=0)
    none = RatioMoments(n=n, sum_m=0, sum_m2=0, sum_d=0, sum_d2=0, sum_md=0)
    return GoalCounts(converters=0, conversions=0, rate=zero, revenue=zero, per_order=none)
