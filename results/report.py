"""`hitstream results`: the statistics of one experiment as a table or JSON (the web API's too).

hitstream results 87654321 --tenant 1234567 [--goal 555] [--slice device_type=mobile]
    [--slice 983745985=gc] [--include-bots] [--include-multi] [--alpha 0.05]
    [--correction holm|bh|none] [--prior-sd 0.3] [--target-lift 0.05] [--power 0.8]
    [--cap-cents 50000] [--cap-percentile 0.99] [--by device_type|browser|KEY [--top 5]] [--live]
    [--json]

Per variation versus the control: frequentist (z-test, Welch, always-valid mSPRT, CUPED) with
p-values adjusted across variations x goals (--correction), Bayesian (chance to beat control,
risk, credible interval; flat prior unless --prior-sd), and power (the minimum detectable
effect today, and the days to detect --target-lift at today's traffic). Revenue per visitor can
be capped (winsorized) at an absolute amount or at a percentile of the goal's converters,
computed in ClickHouse. --by breaks the results down by the device type, the browser family
or a dimension: the top values by visitors plus "other", each with its own sample-ratio check.
The figures come from the results snapshot, taken every HITS_RESULTS_SNAPSHOT_EVERY_S seconds
(the document's `source` says when), or with --live from the live aggregates (a few seconds at
10 million events).

examples:
  hitstream results 87654321 --tenant 1234567
  hitstream results 87654321 --tenant 1234567 --goal 555 --slice device_type=mobile
  hitstream results 87654321 --tenant 1234567 --slice 983745985=gc --goal 555 --goal 556
  hitstream results 87654321 --tenant 1234567 --json > results.json
  hitstream results 87654321 --tenant 1234567 --live
  hitstream results 87654321 --tenant 1234567 --include-bots --include-multi --alpha 0.01
  hitstream results 87654321 --tenant 1234567 --correction bh
  hitstream results 87654321 --tenant 1234567 --correction none --prior-sd 0.3
  hitstream results 87654321 --tenant 1234567 --target-lift 0.1 --power 0.9
  hitstream results 87654321 --tenant 1234567 --cap-percentile 0.99
  hitstream results 87654321 --tenant 1234567 --cap-cents 50000 --goal 555
  hitstream results 87654321 --tenant 1234567 --by device_type
  hitstream results 87654321 --tenant 1234567 --by browser --top 3
  hitstream results 87654321 --tenant 1234567 --by 983745985 --top 10 --goal 555
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import sys
from collections.abc import Callable
from typing import Any

import orjson
from tqdm import tqdm

from deploy.clickhouse_client import connect
from results import corrections, power, slices, stats
from results.analysis import Options, correct, days_of_traffic, extend_row, flag_guardrails
from results.overview import sample_ratio
from results.query import (
    Aggregates,
    Filters,
    GoalCounts,
    empty_counts,
    read,
    read_slices,
    reading,
)
from results.slices import SliceCounts
from results.table import render
from schemas.settings import Settings


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return value


def _goal(agg: Aggregates, goal: str, options: Options) -> dict[str, Any]:
    alpha, days = options.alpha, days_of_traffic(agg)
    counts = agg.goals.get(goal, {})
    base = counts.get(agg.control) or empty_counts(agg.visitors.get(agg.control, 0))
    rows = []
    for variation in agg.variations:
        c: GoalCounts = counts.get(variation) or empty_counts(agg.visitors.get(variation, 0))
        n = agg.visitors.get(variation, 0)
        row: dict[str, Any] = {
            "variation": variation,
            "visitors": n,
            "converters": c.converters,
            "conversions": c.conversions,
            "rate": c.converters / n if n else None,
            "revenue_cents": c.revenue.sum_y,
            "revenue_per_visitor_cents": c.revenue.sum_y / n if n else None,
            "revenue_per_order_cents": c.per_order.mean if c.conversions else None,
        }
        if variation != agg.control:
            rate = stats.compare_rates(base.converters, base.rate.n, c.converters, n, alpha=alpha)
            row["rate_vs_control"] = _plain(rate)
            row["revenue_vs_control"] = _plain(
                stats.compare_means(base.revenue, c.revenue, alpha=alpha)
            )
            row["rate_cuped"] = _plain(stats.cuped(base.rate, c.rate, alpha=alpha))
            row["revenue_cuped"] = _plain(stats.cuped(base.revenue, c.revenue, alpha=alpha))
            extend_row(row, base, c, days, options)
        rows.append(row)
    return {"goal": goal, "variations": rows, "daily": daily(agg, goal)}


def daily(agg: Aggregates, goal: str) -> list[dict[str, Any]]:
    """Cumulative exposed visitors, converters and rate per variation at the end of each day."""
    converted = agg.daily_converted.get(goal, {})
    days = sorted(
        {d for per in agg.daily_exposed.values() for d in per}
        | {d for per in converted.values() for d in per}
    )
    out = []
    for variation in agg.variations:
        visitors = converters = 0
        for day in days:
            visitors += agg.daily_exposed.get(variation, {}).get(day, 0)
            converters += converted.get(variation, {}).get(day, 0)
            rate = converters / visitors if visitors else None
            out.append(
                {"day": day.isoformat(), "variation": variation, "visitors": visitors,
                 "converters": converters, "rate": rate}
            )  # fmt: skip
    return out


def analyse(
    agg: Aggregates,
    filters: Filters,
    options: Options | None = None,
    slice_counts: dict[str, SliceCounts] | None = None,
) -> dict[str, Any]:
    """The results document: what `--json` prints and `GET /api/results/...` returns."""
    options = options or Options()
    srm = sample_ratio(agg.variations, agg.visitors, agg.weights, agg.registered)
    planned = srm["variations"]
    share = sum(agg.weights.get(v, 1.0) for v in planned) or 1.0
    names = set(agg.goals) | set(filters.goals) | (set() if filters.goals else set(agg.guardrails))
    goals = [_goal(agg, g, options) for g in sorted(names)]
    correct(goals, options.correction)
    flag_guardrails(goals, agg.guardrails, options.alpha)
    by_slice = None
    if options.by and slice_counts is not None:
        by_slice = slices.analyse(
            slice_counts, by=options.by, n=options.top, variations=agg.variations,
            control=agg.control, weights=agg.weights if agg.registered else {},
            goals=[g["goal"] for g in goals], alpha=options.alpha, correction=options.correction,
        )  # fmt: skip
    return {
        "tenant": agg.tenant,
        "experiment": agg.experiment,
        "registered": agg.registered,
        "control": agg.control,
        "alpha": options.alpha,
        "options": options.as_dict(),
        "filters": filters.as_dict(),
        "capping": {
            "cap_cents": filters.cap_cents,
            "percentile": filters.cap_percentile,
            "caps": agg.caps,
        },
        "excluded": {
            "bots": 0 if filters.include_bots else agg.bots,
            "multi": 0 if filters.include_multi else agg.multi,
        },
        "variations": [
            {
                "variation": v,
                "control": v == agg.control,
                "weight": agg.weights.get(v, 1.0) / share if v in planned else None,
                "visitors": agg.visitors.get(v, 0),
            }
            for v in agg.variations
        ],
        "srm": srm,
        "goals": goals,
        "sessions": [
            {"event": name, "sessions": {v: per.get(v, 0) for v in agg.variations}}
            for name, per in sorted(agg.sessions.items())
        ],
        "slices": by_slice,
    }


def to_json(document: dict[str, Any]) -> bytes:
    """orjson writes NaN and infinities as null."""
    return orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "results",
        help="experiment results: rates, lifts, p-values, Bayesian, power, SRM",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("experiment", help="the experiment id")
    parser.add_argument("--tenant", required=True, help="the tenant (project) id")
    parser.add_argument("--goal", action="append", default=[], help="a goal id (repeatable)")
    parser.add_argument(
        "--slice", action="append", default=[], help="key=value: a dimension or device_type"
    )
    parser.add_argument("--include-bots", action="store_true", help="keep bot visitors")
    parser.add_argument("--include-multi", action="store_true", help="multi-variation visitors")
    parser.add_argument(
        "--cap-cents", type=int, default=0, help="cap revenue per visitor at this many cents"
    )
    parser.add_argument(
        "--cap-percentile",
        type=float,
        default=0.0,
        help="cap revenue per visitor at this quantile of the goal's converters (0.99)",
    )
    parser.add_argument("--alpha", type=float, default=stats.ALPHA, help="test level (0.05)")
    parser.add_argument(
        "--correction",
        choices=corrections.METHODS,
        help="adjust p-values across variations x goals: holm (family-wise error), bh "
        "(false discovery rate), none; default HITS_RESULTS_CORRECTION (holm)",
    )
    parser.add_argument(
        "--prior-sd",
        type=float,
        help="Bayesian prior N(0, sd^2) on the relative lift, 0 = flat; default "
        "HITS_RESULTS_PRIOR_SD (0)",
    )
    parser.add_argument(
        "--target-lift",
        type=float,
        help="relative lift for the days-to-detect figure; default HITS_RESULTS_TARGET_LIFT (0.05)",
    )
    parser.add_argument(
        "--power", type=float, help=f"power of the MDE and days figures ({power.POWER})"
    )
    parser.add_argument(
        "--by",
        default="",
        help="results by slice: device_type, browser or a dimension key, each with its own SRM",
    )
    parser.add_argument(
        "--top", type=int, default=5, help="slices: the N values with the most visitors (5)"
    )
    parser.add_argument(
        "--live", action="store_true", help="the live aggregates, not the latest snapshot"
    )
    parser.add_argument("--json", action="store_true", help="print the JSON document")


def document(
    settings: Settings,
    tenant: str,
    experiment: str,
    filters: Filters,
    options: Options,
    done: Callable[[], object] = lambda: None,
) -> dict[str, Any]:
    """The results document; `done()` after each of its `steps(options)` steps."""
    client = connect(settings)
    try:
        where = reading(client, options.live)
        agg = read(client, tenant, experiment, filters, where.source)
        done()
        by = None
        if options.by:
            by = read_slices(client, tenant, experiment, filters, options.by, where.source)
            done()
        found = analyse(agg, filters, options, by)
        found["source"] = where.as_dict(dt.datetime.now(dt.UTC))
        done()
        return found
    finally:
        client.close()


def steps(options: Options) -> int:
    """How many steps `document` reports: the goals query, the slices query, the analysis."""
    return 3 if options.by else 2


def run(args: argparse.Namespace, settings: Settings) -> int:
    try:
        filters = Filters.parse_slices(
            args.slice,
            goals=tuple(args.goal),
            include_bots=args.include_bots,
            include_multi=args.include_multi,
            cap_cents=args.cap_cents,
            cap_percentile=args.cap_percentile,
        )
        options = Options.from_settings(
            settings, alpha=args.alpha, correction=args.correction, prior_sd=args.prior_sd,
            target_lift=args.target_lift, power=args.power, by=args.by, top=args.top,
            live=args.live,
        )  # fmt: skip
        options.check()
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    desc = f"reading experiment {args.experiment}"
    # on a terminal only (disable=None), and gone once done (leave=False): the output stays clean
    with tqdm(total=steps(options), desc=desc, unit="step", leave=False, disable=None) as bar:
        doc = document(settings, args.tenant, args.experiment, filters, options, bar.update)
    if args.json:
        sys.stdout.write(to_json(doc).decode() + "\n")
    else:
        print(render(doc))
    return 0
